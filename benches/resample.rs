//! Per-frame cost of sample-rate conversion, ours against rubato's FFT resampler
//! (`tests/support/resample_pair.rs`, where the choice of rubato's flavour is explained), on
//! the conversions the pipeline makes. One iteration converts one 20 ms frame, streaming: the
//! converter keeps its state from frame to frame and writes into a buffer allocated once,
//! as the pipeline drives it. The input is one second of samples of the synthetic voiced signal
//! of [`SyntheticVoice`] taken as if at the input rate (the content changes neither converter's cost).
//!
//! Bench ids: `resample/<from>-><to>/ours` and `resample/<from>-><to>/rubato`; the two of a
//! conversion run back to back in the same process, which is the comparison that counts on a
//! loaded machine. Quality is measured by `tests/resample_quality.rs`.
//!
//! Run: `cargo bench --bench resample` (medians in `target/criterion/resample/*/*/new/estimates.json`).

#[path = "../tests/support/resample_pair.rs"]
mod resample_pair;

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use resample_pair::{CONVERSIONS, FrameResampler, Ours, Rubato, frame_len};
use webphone::media::io::source::SyntheticVoice;

/// Frames of test signal cycled through.
const FRAMES: usize = 50;

fn bench_one(group: &mut BenchmarkGroup<'_, WallTime>, (from, to): (u32, u32), r: &mut dyn FrameResampler) {
    let input: Vec<Vec<i16>> = SyntheticVoice::new()
        .samples(from as usize)
        .chunks(frame_len(from))
        .take(FRAMES)
        .map(<[i16]>::to_vec)
        .collect();
    let mut out = vec![0i16; frame_len(to) + 1];
    let mut i = 0;
    group.bench_function(BenchmarkId::new(format!("{from}->{to}"), r.name()), |b| {
        b.iter(|| {
            i = (i + 1) % input.len();
            black_box(r.process_frame(black_box(&input[i]), &mut out))
        })
    });
}

fn resamplers(c: &mut Criterion) {
    let mut group = c.benchmark_group("resample");
    for (from, to) in CONVERSIONS {
        bench_one(&mut group, (from, to), &mut Ours::new(from, to));
        bench_one(&mut group, (from, to), &mut Rubato::new(from, to));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = resamplers
}
criterion_main!(benches);
