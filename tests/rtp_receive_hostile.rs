//! Hostile RTP into the receive path: datagrams that are real Opus RTP,
//! RTP with damaged headers (padding, extension and CSRC bits, truncation),
//! or plain noise are unmarshalled by the `rtc` crate as RTP and as RTCP,
//! and what parses as RTP goes into a `ReceivePipeline` (Opus, PT 111,
//! 20 ms) ticked on a 20 ms clock. Nothing panics, and the counters account
//! for every packet and every tick. The proptest counterpart of
//! `fuzz/fuzz_targets/rtp.rs`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use rtc::shared::marshal::{Marshal, Unmarshal};
use webphone::media::FrameDuration;
use webphone::media::codec::{self, CodecKind};
use webphone::media::jitter::JitterConfig;
use webphone::media::pipeline::ReceivePipeline;
use webphone::media::sink::NullSink;

const OPUS_PT: u8 = 111;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..Config::default()
    }
}

/// A few real 20 ms Opus frames (a 440 Hz tone, then silence).
fn opus_frames() -> Vec<Vec<u8>> {
    let mut enc = codec::encoder(CodecKind::Opus, FrameDuration::Ms20).expect("the Opus encoder opens");
    let mut out = [0u8; 1500];
    (0..6)
        .map(|k| {
            let pcm: Vec<i16> = (0..960)
                .map(|i| {
                    let t = (k * 960 + i) as f64 / 48_000.0;
                    if k < 4 { ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16 } else { 0 }
                })
                .collect();
            let n = enc.encode(&pcm, &mut out).expect("encodes");
            out[..n].to_vec()
        })
        .collect()
}

#[derive(Clone, Debug)]
enum Payload {
    Opus(usize),
    Bytes(Vec<u8>),
}

#[derive(Clone, Debug)]
enum Datagram {
    /// An RTP packet: payload type, sequence and timestamp steps from the
    /// previous one, payload, then header damage: bits set in the first
    /// byte (padding, extension, CSRC count) and bytes cut off the end.
    Rtp { pt: u8, seq_step: i16, ts_jitter: i32, payload: Payload, first_byte_or: u8, cut: usize },
    /// Anything at all.
    Noise(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Step {
    datagram: Datagram,
    gap_ms: u8,
    ticks: u8,
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![3 => (0usize..6).prop_map(Payload::Opus), 1 => vec(any::<u8>(), 0..200).prop_map(Payload::Bytes)]
}

fn datagram() -> impl Strategy<Value = Datagram> {
    let pt = prop_oneof![8 => Just(OPUS_PT), 1 => Just(101u8), 1 => 0u8..128];
    let seq_step = prop_oneof![8 => Just(1i16), 2 => -3i16..6, 1 => any::<i16>()];
    let ts_jitter = prop_oneof![4 => Just(0i32), 2 => -2000i32..2000, 1 => any::<i32>()];
    let damage = prop_oneof![6 => Just(0u8), 1 => Just(0x20u8), 1 => Just(0x10u8), 1 => 0x01u8..0x0f, 1 => any::<u8>()];
    let cut = prop_oneof![6 => Just(0usize), 1 => 1usize..20];
    prop_oneof![
        6 => (pt, seq_step, ts_jitter, payload(), damage, cut).prop_map(
            |(pt, seq_step, ts_jitter, payload, first_byte_or, cut)| {
                Datagram::Rtp { pt, seq_step, ts_jitter, payload, first_byte_or, cut }
            }
        ),
        1 => vec(any::<u8>(), 0..120).prop_map(Datagram::Noise),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (datagram(), 0u8..60, 0u8..3).prop_map(|(datagram, gap_ms, ticks)| Step { datagram, gap_ms, ticks })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn hostile_rtp_never_panics_and_is_accounted_for(steps in vec(step(), 1..150), first_seq: u16, first_ts: u32) {
        let opus = opus_frames();
        let mut pipeline = ReceivePipeline::new(
            Box::new(NullSink::new()),
            CodecKind::Opus,
            OPUS_PT,
            FrameDuration::Ms20,
            JitterConfig::new(FrameDuration::Ms20, 48_000),
        )
        .expect("the Opus decoder opens");
        let start = Instant::now();
        let (mut now, mut next_tick) = (start, start);
        let (mut seq, mut ts) = (first_seq, first_ts);
        let (mut pushed, mut ticks) = (0u64, 0u64);

        for s in steps {
            let bytes = match s.datagram {
                Datagram::Rtp { pt, seq_step, ts_jitter, payload, first_byte_or, cut } => {
                    seq = seq.wrapping_add_signed(seq_step);
                    ts = ts.wrapping_add((i32::from(seq_step) * 960) as u32);
                    let packet = rtc::rtp::Packet {
                        header: rtc::rtp::Header {
                            version: 2,
                            payload_type: pt,
                            sequence_number: seq,
                            timestamp: ts.wrapping_add_signed(ts_jitter),
                            ssrc: 0x1234_5678,
                            ..Default::default()
                        },
                        payload: Bytes::from(match payload {
                            Payload::Opus(i) => opus[i].clone(),
                            Payload::Bytes(b) => b,
                        }),
                    };
                    let mut bytes = packet.marshal().expect("a plain RTP packet marshals").to_vec();
                    bytes[0] |= first_byte_or;
                    bytes.truncate(bytes.len().saturating_sub(cut));
                    bytes
                }
                Datagram::Noise(bytes) => bytes,
            };

            if let Ok(rtcp) = rtc::rtcp::packet::unmarshal(&mut &bytes[..]) {
                rtcp.iter().for_each(|p| drop((p.header(), p.destination_ssrc(), p.to_string())));
            }
            now += Duration::from_millis(u64::from(s.gap_ms));
            if let Ok(p) = rtc::rtp::Packet::unmarshal(&mut &bytes[..]) {
                prop_assert!(p.payload.len() + 12 <= bytes.len());
                let h = &p.header;
                pipeline.push_packet(h.payload_type, h.sequence_number, h.timestamp, &p.payload, now);
                pushed += 1;
            }
            for _ in 0..s.ticks {
                next_tick = next_tick.max(now) + FrameDuration::Ms20.duration();
                now = next_tick;
                let _ = pipeline.tick(now);
                ticks += 1;
            }
        }

        let s = pipeline.stats();
        prop_assert_eq!(s.packets + s.other_payload_types, pushed);
        prop_assert_eq!(s.jitter.received, s.packets);
        let played = s.frames_decoded + s.decode_errors;
        prop_assert_eq!(played, s.jitter.played);
        prop_assert_eq!(s.frames_recovered + s.frames_concealed, s.jitter.concealed);
        prop_assert_eq!(played + s.jitter.concealed + s.frames_waiting, ticks);
    }
}

/// The property above is not vacuous: clean Opus RTP through the same
/// steps is decoded.
#[test]
fn clean_opus_rtp_is_decoded() {
    let opus = opus_frames();
    let mut pipeline = ReceivePipeline::new(
        Box::new(NullSink::new()),
        CodecKind::Opus,
        OPUS_PT,
        FrameDuration::Ms20,
        JitterConfig::new(FrameDuration::Ms20, 48_000),
    )
    .expect("the Opus decoder opens");
    let t0 = Instant::now();
    for i in 0..50u16 {
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::Header {
                version: 2,
                payload_type: OPUS_PT,
                sequence_number: i,
                timestamp: u32::from(i) * 960,
                ..Default::default()
            },
            payload: Bytes::from(opus[usize::from(i) % 4].clone()),
        };
        let bytes = packet.marshal().expect("marshals");
        let p = rtc::rtp::Packet::unmarshal(&mut &bytes[..]).expect("parses");
        let now = t0 + Duration::from_millis(u64::from(i) * 20);
        pipeline.push_packet(p.header.payload_type, p.header.sequence_number, p.header.timestamp, &p.payload, now);
        let _ = pipeline.tick(now + Duration::from_millis(5));
    }
    let s = pipeline.stats();
    assert!(s.frames_decoded >= 45, "{s:?}");
    assert_eq!((s.decode_errors, s.jitter.lost), (0, 0));
}
