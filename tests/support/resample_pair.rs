//! Our [`Resampler`] and rubato's synchronous FFT resampler behind one frame-by-frame
//! interface, for the side-by-side comparison of `tests/resample_quality.rs` (quality) and
//! `benches/resample.rs` (speed, included by path).
//!
//! Both are driven the way the pipeline drives a converter: one 20 ms frame of mono `i16` in,
//! the converted frame out, into buffers allocated once. rubato is used as its documentation
//! recommends for a fixed ratio: [`Fft`] with [`FixedSync::Both`] and the chunk size set to
//! one 20 ms input frame, so that every call takes exactly one frame and returns exactly one
//! frame (for 48 kHz -> 8 kHz, 960 in and 160 out), as ours does. Its `Async` resamplers
//! exist for ratios that drift or change, which the pipeline never asks for.
#![allow(dead_code)]

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};
use webphone::media::dsp::resample::Resampler;

/// The conversions the pipeline makes: G.711 at 8 kHz both ways, sound cards at 16 kHz and
/// 44.1 kHz both ways, WAV files at any of them to 48 kHz.
pub const CONVERSIONS: [(u32, u32); 6] =
    [(8_000, 48_000), (16_000, 48_000), (44_100, 48_000), (48_000, 8_000), (48_000, 16_000), (48_000, 44_100)];

/// Samples in one 20 ms frame at `rate`.
pub fn frame_len(rate: u32) -> usize {
    rate as usize / 50
}

/// A sample-rate converter fed one 20 ms frame per call.
pub trait FrameResampler {
    /// A short name for tables and bench ids.
    fn name(&self) -> &'static str;
    /// Converts one input frame into `output`, returning the samples written.
    fn process_frame(&mut self, input: &[i16], output: &mut [i16]) -> usize;
    /// The delay the implementation reports, in output samples.
    fn nominal_delay(&self) -> f64;
}

/// Ours, as `src/media/codec/g711.rs` and `src/media/io/device.rs` use it.
pub struct Ours(pub Resampler);

impl Ours {
    pub fn new(from: u32, to: u32) -> Ours {
        Ours(Resampler::new(from, to).unwrap())
    }
}

impl FrameResampler for Ours {
    fn name(&self) -> &'static str {
        "ours"
    }

    fn process_frame(&mut self, input: &[i16], output: &mut [i16]) -> usize {
        self.0.process(input, output).unwrap()
    }

    fn nominal_delay(&self) -> f64 {
        self.0.delay()
    }
}

/// rubato 5's `Fft<f32>`, one 20 ms frame per chunk, with the `i16` <-> `f32` conversion the
/// pipeline would need around it (values kept in `i16` scale, rounded and saturated on the way out
/// exactly as ours does).
pub struct Rubato {
    fft: Fft<f32>,
    input: Vec<f32>,
    output: Vec<f32>,
}

impl Rubato {
    pub fn new(from: u32, to: u32) -> Rubato {
        let fft = Fft::<f32>::new(from as usize, to as usize, frame_len(from), 1, FixedSync::Both).unwrap();
        assert_eq!(fft.input_frames_next(), frame_len(from), "{from} -> {to}: rubato's chunk is not one frame");
        assert_eq!(fft.output_frames_next(), frame_len(to), "{from} -> {to}: rubato's chunk is not one frame");
        let input = vec![0.0; fft.input_frames_max()];
        let output = vec![0.0; fft.output_frames_max()];
        Rubato { fft, input, output }
    }
}

impl FrameResampler for Rubato {
    fn name(&self) -> &'static str {
        "rubato"
    }

    fn process_frame(&mut self, input: &[i16], output: &mut [i16]) -> usize {
        for (f, &s) in self.input.iter_mut().zip(input) {
            *f = f32::from(s);
        }
        let frames_in = self.input.len();
        let frames_out = self.output.len();
        let adapter_in = InterleavedSlice::new(&self.input[..], 1, frames_in).unwrap();
        let mut adapter_out = InterleavedSlice::new_mut(&mut self.output[..], 1, frames_out).unwrap();
        let (_, written) = self.fft.process_into_buffer(&adapter_in, &mut adapter_out, None).unwrap();
        for (o, &f) in output.iter_mut().zip(&self.output[..written]) {
            *o = f.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16;
        }
        written
    }

    fn nominal_delay(&self) -> f64 {
        self.fft.output_delay() as f64
    }
}
