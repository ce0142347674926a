//! Our receive path under arbitrary datagrams: each is unmarshalled as RTCP
//! (reading what webrtc and our RTCP monitor read) and as RTP by the `rtc`
//! crate, and what parses as RTP is fed, as webrtc hands it to us, into a
//! `ReceivePipeline` (Opus, PT 111, 20 ms) ticked on a 20 ms clock. Shared by
//! `tests/rtp_receive_hostile.rs` and the `fuzz/fuzz_targets/rtp.rs` fuzz
//! target (included by path).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use rtc::shared::marshal::Unmarshal;
use webphone::media::FrameDuration;
use webphone::media::codec::CodecKind;
use webphone::media::io::sink::NullSink;
use webphone::media::pipeline::ReceivePipeline;
use webphone::media::receive::jitter::JitterConfig;

/// The Opus payload type the pipeline decodes.
pub const OPUS_PT: u8 = 111;

/// A receive pipeline with a fake clock and the counts to check it against.
pub struct RtpExercise {
    pipeline: ReceivePipeline,
    now: Instant,
    next_tick: Instant,
    pushed: u64,
    ticks: u64,
}

impl Default for RtpExercise {
    fn default() -> Self {
        Self::new()
    }
}

impl RtpExercise {
    /// A fresh Opus receive pipeline.
    pub fn new() -> RtpExercise {
        let pipeline = ReceivePipeline::new(
            Box::new(NullSink::new()),
            CodecKind::Opus,
            OPUS_PT,
            FrameDuration::Ms20,
            JitterConfig::new(FrameDuration::Ms20, 48_000),
        )
        .expect("the Opus decoder opens");
        let start = Instant::now();
        RtpExercise { pipeline, now: start, next_tick: start, pushed: 0, ticks: 0 }
    }

    /// `bytes` arrives `gap_ms` after the previous datagram; then `ticks`
    /// frame ticks run.
    pub fn datagram(&mut self, bytes: &[u8], gap_ms: u64, ticks: u32) {
        rtcp(bytes);
        self.now += Duration::from_millis(gap_ms);
        if let Ok(p) = rtc::rtp::Packet::unmarshal(&mut &bytes[..]) {
            assert!(p.payload.len() + 12 <= bytes.len());
            let h = &p.header;
            self.pipeline.push_packet(h.payload_type, h.sequence_number, h.timestamp, &p.payload, self.now);
            self.pushed += 1;
        }
        for _ in 0..ticks {
            self.next_tick = self.next_tick.max(self.now) + FrameDuration::Ms20.duration();
            self.now = self.next_tick;
            let _ = self.pipeline.tick(self.now);
            self.ticks += 1;
        }
    }

    /// Panics unless the counters account for every packet pushed and every
    /// tick run.
    pub fn check_accounting(&self) {
        let s = self.pipeline.stats();
        assert_eq!(s.packets + s.other_payload_types, self.pushed);
        assert_eq!(s.jitter.received, s.packets);
        let played = s.frames_decoded + s.decode_errors;
        assert_eq!(played, s.jitter.played);
        assert_eq!(s.frames_recovered + s.frames_concealed, s.jitter.concealed);
        assert_eq!(played + s.jitter.concealed + s.frames_waiting, self.ticks, "{s:?}");
    }

    /// The pipeline, for further checks.
    pub fn pipeline(&self) -> &ReceivePipeline {
        &self.pipeline
    }
}

/// What webrtc and our RTCP monitor read from a compound RTCP packet.
fn rtcp(bytes: &[u8]) {
    let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut &bytes[..]) else { return };
    for p in &packets {
        let _ = (p.header(), p.destination_ssrc(), p.raw_size(), p.to_string());
        // The same extraction and DLSR conversion our RTCP monitor uses.
        for b in webphone::media::rtc::peer::report_blocks(p.as_ref()) {
            let _ = webphone::media::rtc::peer::dlsr(b);
        }
    }
}
