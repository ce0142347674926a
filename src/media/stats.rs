//! A call's media figures ([`CallStats`]).

use std::time::Instant;

use crate::media::engine::pipeline::{ReceivePipeline, SendStats};

/// A call's media figures, on demand ([`crate::Phone::call_stats`]).
///
/// Its `Debug` shows times as durations: `first_audio` after `media_connected`.
#[derive(Clone, Default, PartialEq, serde::Serialize)]
pub struct CallStats {
    /// Negotiated codec (`opus`, `PCMU`, `PCMA`).
    pub codec: Option<String>,
    /// RTP packets sent.
    pub tx_packets: u64,
    /// RTP payload bytes sent.
    pub tx_bytes: u64,
    /// Audio packets received.
    pub rx_packets: u64,
    /// Their payload bytes.
    pub rx_bytes: u64,
    /// Packets never received in time (lost or late), as the jitter buffer saw it.
    pub rx_lost: u64,
    /// Packets that arrived after their playout time (dropped).
    pub rx_late: u64,
    /// Share of expected packets lost, 0..1.
    pub loss: f64,
    /// Interarrival jitter (RFC 3550), ms.
    pub jitter_ms: f64,
    /// The jitter buffer's target delay, ms.
    pub jitter_buffer_ms: f64,
    /// Frames concealed (PLC or fade).
    pub concealed_frames: u64,
    /// Frames recovered by Opus in-band FEC.
    pub fec_frames: u64,
    /// Frames decoded normally.
    pub decoded_frames: u64,
    /// Frame ticks run (each sent and each played frame is one).
    pub audio_ticks: u64,
    /// Ticks that ran more than half a frame after their time (an
    /// overloaded machine: the far end hears it as jitter, we as a gap).
    pub late_ticks: u64,
    /// Times the playout clock moved its phase to follow the packets.
    pub playout_adjustments: u64,
    /// Packets dropped by the simulated impairment, when configured.
    pub impairment_dropped: u64,
    /// Frames a recording of the call dropped because its writer was
    /// behind (a disk slower than real time).
    pub recording_dropped_frames: u64,
    /// Round-trip time from ICE consent checks, ms.
    pub rtt_ms: Option<f64>,
    /// Level of the latest received frame, dBFS.
    pub rx_level_dbfs: f64,
    /// Strongest frequency heard recently, Hz; `None` again after half a
    /// second of silence.
    pub rx_dominant_hz: Option<f64>,
    /// Tracked frequencies: (Hz, share of non-silent frames where it dominated).
    pub tracked: Vec<(f64, f64)>,
    /// When the media connected.
    #[serde(skip)]
    pub media_connected: Option<Instant>,
    /// When the first audio packet arrived.
    #[serde(skip)]
    pub first_rtp: Option<Instant>,
    /// The same, in milliseconds since the Unix epoch.
    pub first_rtp_ms: Option<u64>,
    /// When non-silent remote audio was first played out.
    #[serde(skip)]
    pub first_audio: Option<Instant>,
    /// The same, in milliseconds since the Unix epoch.
    pub first_audio_ms: Option<u64>,
}

impl std::fmt::Debug for CallStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first_audio_after_connect =
            self.first_audio.zip(self.media_connected).map(|(a, c)| a.saturating_duration_since(c));
        f.debug_struct("CallStats")
            .field("codec", &self.codec)
            .field("tx_packets", &self.tx_packets)
            .field("tx_bytes", &self.tx_bytes)
            .field("rx_packets", &self.rx_packets)
            .field("rx_bytes", &self.rx_bytes)
            .field("rx_lost", &self.rx_lost)
            .field("rx_late", &self.rx_late)
            .field("loss", &self.loss)
            .field("jitter_ms", &self.jitter_ms)
            .field("jitter_buffer_ms", &self.jitter_buffer_ms)
            .field("concealed_frames", &self.concealed_frames)
            .field("fec_frames", &self.fec_frames)
            .field("decoded_frames", &self.decoded_frames)
            .field("audio_ticks", &self.audio_ticks)
            .field("late_ticks", &self.late_ticks)
            .field("playout_adjustments", &self.playout_adjustments)
            .field("impairment_dropped", &self.impairment_dropped)
            .field("recording_dropped_frames", &self.recording_dropped_frames)
            .field("rtt_ms", &self.rtt_ms)
            .field("rx_level_dbfs", &self.rx_level_dbfs)
            .field("rx_dominant_hz", &self.rx_dominant_hz)
            .field("tracked", &self.tracked)
            .field("media_connected", &self.media_connected.is_some())
            .field("first_rtp_ms", &self.first_rtp_ms)
            .field("first_audio_after_connect", &first_audio_after_connect)
            .field("first_audio_ms", &self.first_audio_ms)
            .finish()
    }
}

/// Wall-clock milliseconds since the epoch of `at`, a moment before `now`.
fn epoch_ms(at: Instant, now: Instant) -> u64 {
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    now_ms.saturating_sub(now.saturating_duration_since(at).as_millis() as u64)
}

impl CallStats {
    /// Refreshes the figures from the pipelines (no allocation once the
    /// tracked list has its size).
    pub(crate) fn update(
        &mut self,
        send: &SendStats,
        pipeline: &ReceivePipeline,
        tracked: &[f64],
        dominant_hz: Option<f64>,
        level_dbfs: f64,
        now: tokio::time::Instant,
    ) {
        let recv = &pipeline.stats();
        let first_audio = pipeline.first_audio();
        self.tx_packets = send.packets;
        self.tx_bytes = send.bytes;
        self.rx_packets = recv.packets;
        self.rx_bytes = recv.bytes;
        self.rx_lost = recv.jitter.lost;
        self.rx_late = recv.jitter.late;
        let expected = recv.jitter.played + recv.jitter.lost;
        self.loss = if expected > 0 { recv.jitter.lost as f64 / expected as f64 } else { 0.0 };
        self.jitter_ms = recv.jitter.jitter_ms;
        self.jitter_buffer_ms = recv.jitter.target_delay_ms;
        self.concealed_frames = recv.frames_concealed;
        self.fec_frames = recv.frames_recovered;
        self.decoded_frames = recv.frames_decoded;
        self.rx_level_dbfs = level_dbfs;
        self.rx_dominant_hz = dominant_hz;
        if self.first_rtp_ms.is_none() {
            self.first_rtp_ms = pipeline.first_packet().map(|at| epoch_ms(at, now.into_std()));
        }
        self.first_rtp = pipeline.first_packet();
        if self.first_audio_ms.is_none() {
            self.first_audio_ms = first_audio.map(|at| epoch_ms(at, now.into_std()));
        }
        self.first_audio = first_audio;
        self.tracked.clear();
        self.tracked.extend(tracked.iter().map(|hz| (*hz, pipeline.tracked_ratio(*hz).unwrap_or(0.0))));
    }
}
