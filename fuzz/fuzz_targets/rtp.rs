//! Our receive path under hostile RTP: each datagram is unmarshalled as
//! RTP and as RTCP by the `rtc` crate (what webrtc runs on what arrives),
//! and what parses as RTP is fed, as webrtc hands it to us, into a
//! `ReceivePipeline` (Opus, PT 111, 20 ms) ticked on a 20 ms clock. The
//! pipeline's counters must account for every packet and every tick.
//!
//! Run from the repository root:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run rtp -- -max_total_time=600`.

#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rtc::shared::marshal::Unmarshal;
use webphone::media::FrameDuration;
use webphone::media::codec::CodecKind;
use webphone::media::jitter::JitterConfig;
use webphone::media::pipeline::ReceivePipeline;
use webphone::media::sink::NullSink;

const OPUS_PT: u8 = 111;

#[derive(Arbitrary, Debug)]
struct Datagram {
    /// Milliseconds after the previous datagram (at most 255).
    gap_ms: u8,
    /// Frame ticks after it (0 to 3).
    ticks: u8,
    bytes: Vec<u8>,
}

fuzz_target!(|datagrams: Vec<Datagram>| {
    let mut pipeline = ReceivePipeline::new(
        Box::new(NullSink::new()),
        CodecKind::Opus,
        OPUS_PT,
        FrameDuration::Ms20,
        JitterConfig::new(FrameDuration::Ms20, 48_000),
    )
    .expect("the Opus decoder opens");
    let start = Instant::now();
    let mut now = start;
    let mut next_tick = start;
    let (mut pushed, mut ticks) = (0u64, 0u64);

    for d in &datagrams {
        rtcp(&d.bytes);
        now += Duration::from_millis(u64::from(d.gap_ms));
        if let Ok(p) = rtc::rtp::Packet::unmarshal(&mut &d.bytes[..]) {
            assert!(p.payload.len() + 12 <= d.bytes.len());
            let h = &p.header;
            pipeline.push_packet(h.payload_type, h.sequence_number, h.timestamp, &p.payload, now);
            pushed += 1;
        }
        for _ in 0..d.ticks % 4 {
            next_tick = next_tick.max(now) + FrameDuration::Ms20.duration();
            now = next_tick;
            let _ = pipeline.tick(now);
            ticks += 1;
        }
    }

    let s = pipeline.stats();
    assert_eq!(s.packets + s.other_payload_types, pushed);
    assert_eq!(s.jitter.received, s.packets);
    let played = s.frames_decoded + s.decode_errors;
    assert_eq!(played, s.jitter.played);
    assert_eq!(s.frames_recovered + s.frames_concealed, s.jitter.concealed);
    assert_eq!(played + s.jitter.concealed + s.frames_waiting, ticks, "{s:?}");
});

/// What webrtc and our RTCP monitor read from a compound RTCP packet.
fn rtcp(bytes: &[u8]) {
    let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut &bytes[..]) else { return };
    for p in &packets {
        let _ = (p.header(), p.destination_ssrc(), p.raw_size(), p.to_string());
        // The same extraction and DLSR conversion our RTCP monitor uses.
        for b in webphone::media::peer::report_blocks(p.as_ref()) {
            let _ = webphone::media::peer::dlsr(b);
        }
    }
}
