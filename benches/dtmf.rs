//! What DTMF costs on the audio path, each measured next to an anchor in the same run.
//!
//! | Bench                        | Measures                                                        | Anchor |
//! |------------------------------|-----------------------------------------------------------------|--------|
//! | `dtmf_detect/goertzel_voice` | the in-band detector ([`Detector::handle_samples`]) on one decoded 20 ms frame of synthetic voice (48 kHz, 960 samples) | `dtmf_detect/opus_decode`: our Opus decoder on the packet of that frame (what every received frame costs anyway) |
//! | `dtmf_detect/goertzel_tone`  | the same on frames of a DTMF tone (every block accepted)        | as above |
//! | `rfc4733/send_packet`        | [`Sender::tick`] and [`EventPayload::encode`]: one telephone-event packet of a 100 ms digit at 8 kHz, 20 ms frames (the sender restarts when a digit ends) | `rfc4733/opus_encode`: our Opus encoder on one voice frame, the packet it replaces |
//! | `rfc4733/receive_packet`     | [`Receiver::handle_packet`] and `poll_event` on that packet sequence | as above |
//!
//! The goal of the issue: the detector under 2 % of the Opus decode of the same frame.
//!
//! Run: `cargo bench --bench dtmf` (medians in `$CARGO_TARGET_DIR/criterion/<group>/<id>/new/estimates.json`).
//!
//! [`Detector::handle_samples`]: webphone::dtmf::goertzel::Detector::handle_samples
//! [`Sender::tick`]: webphone::dtmf::rfc4733::Sender::tick
//! [`EventPayload::encode`]: webphone::dtmf::rfc4733::EventPayload::encode
//! [`Receiver::handle_packet`]: webphone::dtmf::rfc4733::Receiver::handle_packet

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use webphone::dtmf::goertzel::Detector;
use webphone::dtmf::rfc4733::{EventPacket, Receiver, Sender};
use webphone::dtmf::tone::DtmfTone;
use webphone::media::FrameDuration;
use webphone::media::codec::{CodecKind, decoder, encoder};
use webphone::media::io::source::{AudioSource, SyntheticVoice};

const FRAME: usize = 960;

fn voice_frames(n: usize) -> Vec<Vec<i16>> {
    let mut v = SyntheticVoice::new();
    (0..n)
        .map(|_| {
            let mut f = vec![0; FRAME];
            v.read(&mut f);
            f
        })
        .collect()
}

fn detect(c: &mut Criterion) {
    let frames = voice_frames(50);
    let mut enc = encoder(CodecKind::Opus, FrameDuration::Ms20).expect("opus");
    let mut buf = vec![0u8; 1500];
    let packets: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let n = enc.encode(f, &mut buf).expect("encodes");
            buf[..n].to_vec()
        })
        .collect();
    let mut dec = decoder(CodecKind::Opus, FrameDuration::Ms20).expect("opus");
    let decoded: Vec<Vec<i16>> = packets
        .iter()
        .map(|p| {
            let mut pcm = vec![0; FRAME];
            dec.decode(p, &mut pcm).expect("decodes");
            pcm
        })
        .collect();
    let mut tone = DtmfTone::new('5', 1000, -10.0, 48_000).expect("a symbol");
    let tone_frames: Vec<Vec<i16>> = (0..50)
        .map(|_| {
            let mut f = vec![0; FRAME];
            tone.fill(&mut f);
            f
        })
        .collect();

    let mut g = c.benchmark_group("dtmf_detect");
    let mut pcm = vec![0i16; FRAME];
    let mut i = 0;
    g.bench_function("opus_decode", |b| {
        b.iter(|| {
            i = (i + 1) % packets.len();
            black_box(dec.decode(black_box(&packets[i]), &mut pcm).expect("decodes"));
        })
    });
    let mut d = Detector::new(48_000);
    g.bench_function("goertzel_voice", |b| {
        b.iter(|| {
            i = (i + 1) % decoded.len();
            d.handle_samples(black_box(&decoded[i]));
            black_box(d.poll_digit());
        })
    });
    let mut d = Detector::new(48_000);
    g.bench_function("goertzel_tone", |b| {
        b.iter(|| {
            i = (i + 1) % tone_frames.len();
            d.handle_samples(black_box(&tone_frames[i]));
            black_box(d.poll_digit());
        })
    });
    g.finish();
}

fn rfc4733(c: &mut Criterion) {
    let frames = voice_frames(50);
    let mut enc = encoder(CodecKind::Opus, FrameDuration::Ms20).expect("opus");
    let mut buf = vec![0u8; 1500];
    let mut g = c.benchmark_group("rfc4733");
    let mut i = 0;
    g.bench_function("opus_encode", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            black_box(enc.encode(black_box(&frames[i]), &mut buf).expect("encodes"));
        })
    });
    let frame = Duration::from_millis(20);
    let mut sender = Sender::new(8000, 48_000);
    let mut ts = 0u32;
    g.bench_function("send_packet", |b| {
        b.iter(|| {
            let p = match sender.tick(frame) {
                Some(p) => p,
                None => {
                    ts = ts.wrapping_add(9600);
                    sender.start(5, Duration::from_millis(100), ts);
                    sender.tick(frame).expect("a started event sends")
                }
            };
            black_box(p.payload.encode());
        })
    });
    // The packets of 50 digits, received in a loop.
    let mut s = Sender::new(8000, 48_000);
    let mut packets: Vec<EventPacket> = vec![];
    for k in 0..50u32 {
        s.start((k % 16) as u8, Duration::from_millis(100), k * 9600);
        packets.extend(std::iter::from_fn(|| s.tick(frame)));
    }
    let encoded: Vec<(u32, bool, [u8; 4])> =
        packets.iter().map(|p| (p.timestamp, p.marker, p.payload.encode())).collect();
    let mut r = Receiver::new(8000);
    let t0 = Instant::now();
    let mut n = 0usize;
    let mut round = 0u32;
    g.bench_function("receive_packet", |b| {
        b.iter(|| {
            let (ts, marker, payload) = encoded[n];
            n += 1;
            if n == encoded.len() {
                n = 0;
                round += 1;
            }
            // Each round moves the timestamps on, as a long call would.
            let ts = ts.wrapping_add(round.wrapping_mul(50 * 9600));
            r.handle_packet(ts, marker, black_box(&payload), t0);
            black_box(r.poll_event());
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = detect, rfc4733
}
criterion_main!(benches);
