//! Per-frame cost of the real-time audio path: one 20 ms frame (960 samples at 48 kHz) per iteration.
//!
//! - `tone_read`: [`Tone`] filling a frame.
//! - `meter_process/tone` and `meter_process/silence`: [`Meter::process`] on a continuous tone (the FFT path,
//!   every frame) and on silence (the FFT is skipped); `meter_process/tone_receive_interval`: the same tone with
//!   the spectrum every 25th frame, as a call's receive pipeline runs it.
//! - `meter_measure_tone`: one [`Meter::measure_tone`] query (Goertzel over the 8192-sample window).
//! - `app_source_push_read`: the application pushes a frame and the pipeline reads it.
//! - `app_sink_write_read`: the pipeline writes a frame and the application reads it.
//! - `wav_source_read`, `wav_recorder_write`: file playback and recording (into a discarding writer).
//!
//! Run: `cargo bench --bench audio_io` (medians are in
//! `target/criterion/<name>/new/estimates.json`).

use std::hint::black_box;
use std::io::{self, Seek, SeekFrom, Write};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use webphone::media::dsp::meter::{Meter, MeterConfig};
use webphone::media::io::app_channel::{app_sink_channel, app_source_channel};
use webphone::media::io::sink::{AudioSink, WavRecorder};
use webphone::media::io::source::{AudioSource, Tone, WavSource};

const FRAME: usize = 960;

/// A `Write + Seek` that keeps nothing, so recording can run for millions of frames.
#[derive(Default)]
struct Discard {
    position: u64,
    len: u64,
}

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.position += buf.len() as u64;
        self.len = self.len.max(self.position);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Discard {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.position = match pos {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.saturating_add_signed(d),
            SeekFrom::Current(d) => self.position.saturating_add_signed(d),
        };
        Ok(self.position)
    }
}

fn sources(c: &mut Criterion) {
    let mut frame = [0i16; FRAME];
    let mut tone = Tone::new(440.0, -6.0);
    c.bench_function("tone_read", |b| b.iter(|| black_box(tone.read(black_box(&mut frame)))));

    let mut pcm = vec![0i16; 48_000];
    Tone::new(1000.0, -6.0).read(&mut pcm);
    let mut wav = WavSource::from_pcm(pcm).looping(true);
    c.bench_function("wav_source_read", |b| b.iter(|| black_box(wav.read(black_box(&mut frame)))));
}

fn meter(c: &mut Criterion) {
    let mut group = c.benchmark_group("meter_process");
    let mut tone_frames = vec![[0i16; FRAME]; 50];
    let mut tone = Tone::new(1234.5, -10.0);
    for f in &mut tone_frames {
        tone.read(f);
    }
    let mut meter = Meter::new();
    let mut i = 0;
    group.bench_function("tone", |b| {
        b.iter(|| {
            i = (i + 1) % tone_frames.len();
            black_box(meter.process(black_box(&tone_frames[i])))
        })
    });
    let mut meter = Meter::with_config(MeterConfig { spectrum_interval: 25, ..MeterConfig::default() });
    group.bench_function("tone_receive_interval", |b| {
        b.iter(|| {
            i = (i + 1) % tone_frames.len();
            black_box(meter.process(black_box(&tone_frames[i])))
        })
    });
    let silence = [0i16; FRAME];
    let mut meter = Meter::new();
    group.bench_function("silence", |b| b.iter(|| black_box(meter.process(black_box(&silence)))));
    group.finish();

    let mut meter = Meter::new();
    for f in &tone_frames {
        meter.process(f);
    }
    c.bench_function("meter_measure_tone", |b| b.iter(|| black_box(meter.measure_tone(black_box(1234.5)))));
}

fn channels(c: &mut Criterion) {
    let mut frame = [0i16; FRAME];
    let mut data = [0i16; FRAME];
    Tone::new(440.0, -6.0).read(&mut data);

    let (mut writer, mut source) = app_source_channel(10);
    c.bench_function("app_source_push_read", |b| {
        b.iter(|| {
            black_box(writer.push(black_box(&data)));
            black_box(source.read(black_box(&mut frame)))
        })
    });

    let (mut sink, mut reader) = app_sink_channel(10);
    c.bench_function("app_sink_write_read", |b| {
        b.iter(|| {
            sink.write(black_box(&data));
            black_box(reader.read(black_box(&mut frame)))
        })
    });

    let new_recorder = || match WavRecorder::new(io::BufWriter::with_capacity(64 * 1024, Discard::default())) {
        Ok(r) => r,
        Err(e) => panic!("recorder: {e}"),
    };
    let mut recorder = new_recorder();
    c.bench_function("wav_recorder_write", |b| {
        b.iter(|| {
            // Stay clear of the 4 GiB WAV limit, past which the recorder only counts drops.
            if recorder.samples_written() > 1 << 30 {
                recorder = new_recorder();
            }
            recorder.write(black_box(&data))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = sources, meter, channels
}
criterion_main!(benches);
