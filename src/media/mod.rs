//! Call media: one WebRTC peer connection per call ([`peer`]) and the audio
//! pipeline around it, at 48 kHz mono in 10 or 20 ms frames inside,
//! resampling only at the edges.
//!
//! - [`source`] / [`sink`]: what a call sends (silence, tone, WAV file, the
//!   application's PCM) and where what it hears goes (nothing, a WAV file,
//!   the application); [`meter`] measures level and frequency.
//! - [`codec`]: Opus ([`opus`], via libopus) and G.711 ([`g711`], pure
//!   Rust, with [`resample`]); [`jitter`]: the adaptive jitter buffer.
//! - [`pipeline`]: the per-frame work as plain structs (benchmarkable);
//!   [`playout`]: the receive side's frame clock, phase-locked to arrivals.
//! - [`quality`]: loss, jitter and no-audio alerts; [`impairment`]: a
//!   seeded loss and jitter stage for call tests.
//! - `engine`: per-call lifecycle, on a media runtime of its own.
//! - [`sdp`]: fixes applied to remote SDP for interoperability.
//! - `device` (feature `device`): the sound card, through cpal.

pub mod app_channel;
pub(crate) mod call_audio;
pub mod codec;
#[cfg(feature = "device")]
pub mod device;
pub(crate) mod engine;
pub mod g711;
pub mod impairment;
pub mod jitter;
pub mod meter;
pub mod opus;
pub mod peer;
pub mod pipeline;
pub mod playout;
pub mod quality;
pub mod resample;
pub mod sdp;
pub mod sink;
pub mod source;
pub mod wav;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use app_channel::{AppSink, AppSinkReader, AppSource, AppSourceWriter, app_sink_channel, app_source_channel};
pub use peer::{IceConfig, IceServer};

use pipeline::{ReceivePipeline, SendStats};
use sink::AudioSink;
use source::AudioSource;

/// The internal sample rate of all PCM audio, in Hz.
pub const SAMPLE_RATE: u32 = 48_000;

/// The largest number of samples in one internal frame (20 ms at 48 kHz).
pub const MAX_FRAME_SAMPLES: usize = FrameDuration::Ms20.samples();

/// The duration of one audio frame (one RTP packet's worth of audio).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FrameDuration {
    /// 10 ms frames (480 samples at 48 kHz).
    Ms10,
    /// 20 ms frames (960 samples at 48 kHz), the usual RTP packetization time.
    #[default]
    Ms20,
}

impl FrameDuration {
    /// Samples in one frame at the internal rate of [`SAMPLE_RATE`] (48 kHz).
    pub const fn samples(self) -> usize {
        self.samples_at(SAMPLE_RATE)
    }

    /// Samples in one frame at `rate_hz` (e.g. 160 for 20 ms at 8 kHz).
    pub const fn samples_at(self, rate_hz: u32) -> usize {
        rate_hz as usize * self.millis() as usize / 1000
    }

    /// The frame duration in milliseconds.
    pub const fn millis(self) -> u32 {
        match self {
            FrameDuration::Ms10 => 10,
            FrameDuration::Ms20 => 20,
        }
    }

    /// The frame duration as a [`std::time::Duration`].
    pub const fn duration(self) -> Duration {
        Duration::from_millis(self.millis() as u64)
    }
}

/// What a call sends.
#[derive(Default)]
pub enum SendAudio {
    /// Silence (the default).
    #[default]
    Silence,
    /// A sine tone.
    Tone {
        /// Frequency in Hz.
        frequency_hz: f64,
        /// Level in dBFS (e.g. -12.0).
        level_dbfs: f64,
    },
    /// A WAV file (any rate, mono or stereo; converted to 48 kHz mono).
    WavFile {
        /// The file.
        path: PathBuf,
        /// Start again at the end.
        looping: bool,
    },
    /// PCM the application pushes through an [`AppSourceWriter`].
    App(AppSource),
    /// Any [`AudioSource`] of the application's own (a speech synthesizer, a
    /// generator); it is read once per frame on the call's audio task, so it
    /// must not block.
    Custom(Box<dyn AudioSource>),
    /// A sound-card input (microphone), see [`device::DeviceSource`].
    #[cfg(feature = "device")]
    Device {
        /// The device's name or id (see [`device::list_devices`]); `None` for the system default.
        name: Option<String>,
    },
}

/// Where what a call receives goes.
#[derive(Default)]
pub enum ReceiveAudio {
    /// Nowhere (it is still decoded and metered for statistics).
    #[default]
    Discard,
    /// Recorded to a 48 kHz mono 16-bit WAV file.
    WavFile(PathBuf),
    /// To the application, read through an [`AppSinkReader`].
    App(AppSink),
    /// Any [`AudioSink`] of the application's own; it is written once per
    /// frame on the call's audio task, so it must not block.
    Custom(Box<dyn AudioSink>),
    /// To a sound-card output (speaker, headset), see [`device::DeviceSink`].
    #[cfg(feature = "device")]
    Device {
        /// The device's name or id (see [`device::list_devices`]); `None` for the system default.
        name: Option<String>,
    },
}

impl std::fmt::Debug for SendAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendAudio::Silence => f.write_str("Silence"),
            SendAudio::Tone { frequency_hz, level_dbfs } => {
                f.debug_struct("Tone").field("frequency_hz", frequency_hz).field("level_dbfs", level_dbfs).finish()
            }
            SendAudio::WavFile { path, looping } => {
                f.debug_struct("WavFile").field("path", path).field("looping", looping).finish()
            }
            SendAudio::App(s) => f.debug_tuple("App").field(s).finish(),
            SendAudio::Custom(_) => f.write_str("Custom(..)"),
            #[cfg(feature = "device")]
            SendAudio::Device { name } => f.debug_struct("Device").field("name", name).finish(),
        }
    }
}

impl std::fmt::Debug for ReceiveAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReceiveAudio::Discard => f.write_str("Discard"),
            ReceiveAudio::WavFile(p) => f.debug_tuple("WavFile").field(p).finish(),
            ReceiveAudio::App(s) => f.debug_tuple("App").field(s).finish(),
            ReceiveAudio::Custom(_) => f.write_str("Custom(..)"),
            #[cfg(feature = "device")]
            ReceiveAudio::Device { name } => f.debug_struct("Device").field("name", name).finish(),
        }
    }
}

/// A call's audio choices.
#[derive(Debug, Default)]
pub struct AudioSetup {
    /// What we send.
    pub send: SendAudio,
    /// What we do with what we hear.
    pub receive: ReceiveAudio,
    /// Frequencies whose presence in the received audio is tracked
    /// (reported in [`CallStats::tracked`]); for call tests.
    pub track_frequencies: Vec<f64>,
}

impl AudioSetup {
    /// Builds the source and sink (opening files).
    pub(crate) fn build(self) -> Result<BuiltAudio, String> {
        Ok(BuiltAudio { source: self.send.build()?, sink: self.receive.build()?, tracked: self.track_frequencies })
    }
}

impl SendAudio {
    /// Opens the source (a file, a device: may block).
    pub(crate) fn build(self) -> Result<Box<dyn AudioSource>, String> {
        let source: Box<dyn AudioSource> = match self {
            SendAudio::Silence => Box::new(source::Silence),
            SendAudio::Tone { frequency_hz, level_dbfs } => Box::new(source::Tone::new(frequency_hz, level_dbfs)),
            SendAudio::WavFile { path, looping } => Box::new(
                source::WavSource::open(&path).map_err(|e| format!("{}: {e}", path.display()))?.looping(looping),
            ),
            SendAudio::App(src) => Box::new(src),
            SendAudio::Custom(src) => src,
            #[cfg(feature = "device")]
            SendAudio::Device { name } => {
                Box::new(device::DeviceSource::open(name.as_deref()).map_err(|e| format!("media device failed: {e}"))?)
            }
        };
        Ok(source)
    }
}

impl ReceiveAudio {
    /// Opens the sink (a file, a device: may block).
    pub(crate) fn build(self) -> Result<Box<dyn AudioSink>, String> {
        let sink: Box<dyn AudioSink> = match self {
            ReceiveAudio::Discard => Box::new(sink::NullSink::new()),
            ReceiveAudio::WavFile(path) => {
                Box::new(sink::WavRecorder::create(&path).map_err(|e| format!("{}: {e}", path.display()))?)
            }
            ReceiveAudio::App(s) => Box::new(s),
            ReceiveAudio::Custom(s) => s,
            #[cfg(feature = "device")]
            ReceiveAudio::Device { name } => {
                Box::new(device::DeviceSink::open(name.as_deref()).map_err(|e| format!("media device failed: {e}"))?)
            }
        };
        Ok(sink)
    }
}

/// A call's opened source and sink, and the frequencies it tracks.
pub(crate) struct BuiltAudio {
    pub(crate) source: Box<dyn AudioSource>,
    pub(crate) sink: Box<dyn AudioSink>,
    pub(crate) tracked: Vec<f64>,
}

/// Media settings of a phone.
#[derive(Clone, Debug)]
pub struct MediaConfig {
    /// The peer connection settings (ICE servers, loopback, codecs).
    pub peer: peer::PeerConfig,
    /// Frame duration (20 ms default).
    pub frame: FrameDuration,
    /// How long ICE/DTLS may take before the call's media is declared failed.
    pub connect_timeout: Duration,
    /// How long after its arrival a packet is played on a clean network
    /// (the receive clock's phase, see [`playout`]); default 1 ms. A packet
    /// that misses its tick anyway gets a short grace (a quarter frame, at
    /// most 4 ms) before the frame is concealed.
    pub playout_margin: Duration,
    /// Jitter buffer delay bounds: lowest target (default one frame), highest
    /// target (default 400 ms) and the delay before the first frame (default
    /// 40 ms).
    pub jitter_min: Duration,
    /// See [`jitter_min`](Self::jitter_min).
    pub jitter_max: Duration,
    /// See [`jitter_min`](Self::jitter_min).
    pub jitter_initial: Duration,
    /// When quality alerts are raised.
    pub quality: quality::QualityThresholds,
    /// Simulated loss and jitter on received packets (call tests only).
    pub impairment: Option<impairment::Impairment>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            peer: peer::PeerConfig::default(),
            frame: FrameDuration::Ms20,
            connect_timeout: Duration::from_secs(20),
            playout_margin: Duration::from_millis(1),
            jitter_min: Duration::ZERO,
            jitter_max: Duration::from_millis(400),
            jitter_initial: Duration::from_millis(40),
            quality: quality::QualityThresholds::default(),
            impairment: None,
        }
    }
}

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
            .field("rtt_ms", &self.rtt_ms)
            .field("rx_level_dbfs", &self.rx_level_dbfs)
            .field("rx_dominant_hz", &self.rx_dominant_hz)
            .field("tracked", &self.tracked)
            .field("media_connected", &self.media_connected.is_some())
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
    fn update(
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
        if self.first_audio_ms.is_none() {
            self.first_audio_ms = first_audio.map(|at| epoch_ms(at, now.into_std()));
        }
        self.first_audio = first_audio;
        self.tracked.clear();
        self.tracked.extend(tracked.iter().map(|hz| (*hz, pipeline.tracked_ratio(*hz).unwrap_or(0.0))));
    }
}
