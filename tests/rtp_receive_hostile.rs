//! Hostile RTP into the receive path: datagrams that are real Opus RTP,
//! RTP with damaged headers (padding, extension and CSRC bits, truncation),
//! or plain noise are unmarshalled by the `rtc` crate as RTP and as RTCP,
//! and what parses as RTP goes into a `ReceivePipeline` (Opus, PT 111,
//! 20 ms) ticked on a 20 ms clock. Nothing panics, and the counters account
//! for every packet and every tick (`support/rtp_exercise.rs`, shared with
//! the `fuzz/fuzz_targets/rtp.rs` fuzz target).

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use rtc::shared::marshal::Marshal;
use webphone::media::FrameDuration;
use webphone::media::codec::{self, CodecKind};

#[path = "support/rtp_exercise.rs"]
mod rtp_exercise;

use rtp_exercise::{OPUS_PT, RtpExercise};

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
        let mut run = RtpExercise::new();
        let (mut seq, mut ts) = (first_seq, first_ts);

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

            run.datagram(&bytes, u64::from(s.gap_ms), u32::from(s.ticks));
        }
        run.check_accounting();
    }
}

/// The property above is not vacuous: clean Opus RTP through the same
/// steps is decoded.
#[test]
fn clean_opus_rtp_is_decoded() {
    let opus = opus_frames();
    let mut run = RtpExercise::new();
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
        run.datagram(&packet.marshal().expect("marshals"), 0, 1);
    }
    run.check_accounting();
    let s = run.pipeline().stats();
    assert!(s.frames_decoded >= 45, "{s:?}");
    assert_eq!((s.decode_errors, s.jitter.lost), (0, 0));
}
