//! Per-frame cost of the media hot path, one 20 ms frame (960 samples at 48 kHz) per
//! iteration:
//! - `opus_encode_20ms` / `opus_decode_20ms`: Opus at the default settings (32 kbit/s,
//!   complexity 5, FEC on, 10 % expected loss);
//! - `pcmu_encode_20ms` / `pcmu_decode_20ms`: G.711 µ-law including the 48 kHz <-> 8 kHz
//!   resampling.
//!
//! The jitter buffer's insert + pop is in `benches/pipeline.rs` (`receive_steps/jitter_insert_pop`), next to
//! the pipelines it belongs to.
//!
//! The input is the synthetic voiced signal of [`SyntheticVoice`] (150 Hz harmonics, syllable-rate envelope, noise).
//!
//! Run: `cargo bench --bench media` (medians are in
//! `target/criterion/<name>/new/estimates.json`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use webphone::media;
use webphone::media::io::source::SyntheticVoice;

use media::FrameDuration;
use media::codec::{self, CodecKind};

const FRAMES: usize = 50;

/// One second of the speech-like test signal ([`SyntheticVoice`]), as 50 frames of 20 ms.
fn voice() -> Vec<Vec<i16>> {
    SyntheticVoice::new().samples(48_000).chunks(960).map(<[i16]>::to_vec).collect()
}

fn encode_all(kind: CodecKind, pcm: &[Vec<i16>]) -> Vec<Vec<u8>> {
    let mut enc = codec::encoder(kind, FrameDuration::Ms20).unwrap();
    let mut buf = [0u8; 1500];
    pcm.iter()
        .map(|frame| {
            let n = enc.encode(frame, &mut buf).unwrap();
            buf[..n].to_vec()
        })
        .collect()
}

fn bench_codec(c: &mut Criterion, kind: CodecKind, name: &str) {
    let pcm = voice();
    let mut enc = codec::encoder(kind, FrameDuration::Ms20).unwrap();
    let mut out = [0u8; 1500];
    let mut i = 0;
    c.bench_function(&format!("{name}_encode_20ms"), |b| {
        b.iter(|| {
            i = (i + 1) % FRAMES;
            black_box(enc.encode(black_box(&pcm[i]), &mut out).unwrap())
        })
    });

    let packets = encode_all(kind, &pcm);
    let mut dec = codec::decoder(kind, FrameDuration::Ms20).unwrap();
    let mut pcm_out = [0i16; 960];
    let mut i = 0;
    c.bench_function(&format!("{name}_decode_20ms"), |b| {
        b.iter(|| {
            i = (i + 1) % FRAMES;
            black_box(dec.decode(black_box(&packets[i]), &mut pcm_out).unwrap())
        })
    });
}

fn codecs(c: &mut Criterion) {
    bench_codec(c, CodecKind::Opus, "opus");
    bench_codec(c, CodecKind::Pcmu, "pcmu");
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = codecs
}
criterion_main!(benches);
