//! Where outgoing audio comes from: the [`AudioSource`] trait and its generators and players.
//!
//! A source is a plain struct driven by a frame clock it does not own: the pipeline calls
//! [`AudioSource::read`] once per frame with a buffer of exactly one frame (480 or 960 samples of 48 kHz mono
//! `i16`, see [`FrameDuration`](crate::media::frame::FrameDuration)), and the source fills it. `read` never allocates, blocks
//! or panics; all state is allocated at construction.
//!
//! - [`Silence`]: zeros, forever.
//! - [`Tone`]: a sine at an exact frequency and level, phase-continuous across frames of any length.
//! - [`WavSource`]: a WAV file decoded once at construction (any common layout, resampled to 48 kHz by
//!   [`wav`] with the [`Resampler`](crate::media::dsp::resample::Resampler)), played once or looped.
//! - [`AppSource`]: PCM pushed by application code from another thread, see [`app_channel`](super::app_channel).

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::media::frame::SAMPLE_RATE;
pub use crate::media::io::app_channel::AppSource;
use crate::media::io::wav::{self, DecodeOptions, WavError, WavInfo};

/// A producer of 48 kHz mono PCM, read one frame at a time by the pipeline's clock.
pub trait AudioSource: Send {
    /// Fill exactly one frame. Returns false when the source has ended (then `out` is silence).
    fn read(&mut self, out: &mut [i16]) -> bool;
}

impl<S: AudioSource + ?Sized> AudioSource for Box<S> {
    fn read(&mut self, out: &mut [i16]) -> bool {
        (**self).read(out)
    }
}

impl<S: AudioSource + ?Sized> AudioSource for &mut S {
    fn read(&mut self, out: &mut [i16]) -> bool {
        (**self).read(out)
    }
}

/// A deterministic speech-like test signal that never ends: a 150 Hz voiced
/// buzz (12 harmonics at 1/h), a 4 Hz syllable envelope and a little noise,
/// peaking near −6 dBFS. Codecs spend on it about what they spend on speech
/// (a pure tone is far cheaper for Opus), so benches and load tests use it.
/// Each sample costs a dozen sines: precompute a second and replay it where
/// the generator's own cost would matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticVoice {
    n: u64,
    rng: u32,
}

impl Default for SyntheticVoice {
    fn default() -> Self {
        Self::new()
    }
}

impl SyntheticVoice {
    /// The signal from its start.
    pub fn new() -> Self {
        SyntheticVoice { n: 0, rng: 12_345 }
    }

    /// The next `len` samples.
    pub fn samples(&mut self, len: usize) -> Vec<i16> {
        let mut out = vec![0; len];
        self.read(&mut out);
        out
    }

    fn next_sample(&mut self) -> i16 {
        use std::f64::consts::PI;
        let t = self.n as f64 / f64::from(SAMPLE_RATE);
        self.n += 1;
        let envelope = 0.55 + 0.45 * (2.0 * PI * 4.0 * t).sin();
        let voiced: f64 = (1..=12).map(|h| (2.0 * PI * 150.0 * f64::from(h) * t).sin() / f64::from(h)).sum();
        self.rng = self.rng.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = f64::from(self.rng >> 16) / 65_536.0 - 0.5;
        (envelope * (voiced * 5_000.0 + noise * 800.0)) as i16
    }
}

impl AudioSource for SyntheticVoice {
    fn read(&mut self, out: &mut [i16]) -> bool {
        for s in out.iter_mut() {
            *s = self.next_sample();
        }
        true
    }
}

/// Digital silence that never ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Silence;

impl AudioSource for Silence {
    fn read(&mut self, out: &mut [i16]) -> bool {
        out.fill(0);
        true
    }
}

/// One cycle in the phase accumulator: the phase is a `u64` fraction of a cycle, so the frequency resolution is
/// 48 000 / 2⁶⁴ Hz (about 3·10⁻¹⁵ Hz) and the phase never drifts, whatever the run time.
const CYCLE: f64 = 18_446_744_073_709_551_616.0; // 2^64

/// A continuous sine tone that never ends.
///
/// The level is the peak amplitude relative to full scale: 0 dBFS is a peak of 32767, so a full-scale tone
/// measures −3.01 dBFS RMS on a [`Meter`](crate::media::dsp::meter::Meter). The phase is kept in a 64-bit fixed-point
/// accumulator and re-anchored at the start of every frame, with a rotating phasor inside the frame (four
/// multiplications per sample, no per-sample `sin`): the waveform is the same whatever the frame length and is
/// within one LSB of `round(A·sin(2π·f·n/48000))` for every sample `n`. The first sample is at phase 0 (value
/// 0), so the start does not click; [`Tone::set_frequency`] keeps the phase and [`Tone::set_level_dbfs`] ramps
/// linearly over the next frame, so changes do not click either.
#[derive(Debug, Clone)]
pub struct Tone {
    frequency_hz: f64,
    level_dbfs: f64,
    phase: u64,
    step: u64,
    rotation: (f64, f64),
    amplitude: f64,
    target_amplitude: f64,
}

impl Tone {
    /// A tone of `frequency_hz` (clamped to 0..=24 000 Hz; NaN gives 0 Hz) at `level_dbfs` peak (clamped to at
    /// most 0 dBFS; NaN or −∞ give silence).
    pub fn new(frequency_hz: f64, level_dbfs: f64) -> Self {
        let mut tone = Tone {
            frequency_hz: 0.0,
            level_dbfs: f64::NEG_INFINITY,
            phase: 0,
            step: 0,
            rotation: (1.0, 0.0),
            amplitude: 0.0,
            target_amplitude: 0.0,
        };
        tone.set_frequency(frequency_hz);
        tone.set_level_dbfs(level_dbfs);
        tone.amplitude = tone.target_amplitude;
        tone
    }

    /// The frequency in Hz, after clamping.
    pub fn frequency_hz(&self) -> f64 {
        self.frequency_hz
    }

    /// The peak level in dBFS, after clamping.
    pub fn level_dbfs(&self) -> f64 {
        self.level_dbfs
    }

    /// Changes the frequency from the next sample on, keeping the phase (no discontinuity).
    pub fn set_frequency(&mut self, frequency_hz: f64) {
        let nyquist = f64::from(SAMPLE_RATE) / 2.0;
        let f = if frequency_hz.is_nan() { 0.0 } else { frequency_hz.clamp(0.0, nyquist) };
        self.frequency_hz = f;
        // f / fs ≤ 0.5, so the product is at most 2^63 and fits.
        self.step = (f / f64::from(SAMPLE_RATE) * CYCLE).round() as u64;
        let angle = self.step as f64 / CYCLE * std::f64::consts::TAU;
        self.rotation = (angle.cos(), angle.sin());
    }

    /// Changes the level; the amplitude ramps linearly to it over the next frame read.
    pub fn set_level_dbfs(&mut self, level_dbfs: f64) {
        let db = if level_dbfs.is_nan() { f64::NEG_INFINITY } else { level_dbfs.min(0.0) };
        self.level_dbfs = db;
        self.target_amplitude = 32767.0 * 10f64.powf(db / 20.0);
    }
}

impl AudioSource for Tone {
    fn read(&mut self, out: &mut [i16]) -> bool {
        let theta = self.phase as f64 / CYCLE * std::f64::consts::TAU;
        let (mut s, mut c) = theta.sin_cos();
        let (rc, rs) = self.rotation;
        let a0 = self.amplitude;
        let da = if out.is_empty() { 0.0 } else { (self.target_amplitude - a0) / out.len() as f64 };
        for (i, o) in out.iter_mut().enumerate() {
            let a = a0 + da * i as f64;
            // |a·s| ≤ 32767 (plus rounding noise); `as` saturates anyway.
            *o = (a * s).round() as i16;
            let next_s = s * rc + c * rs;
            c = c * rc - s * rs;
            s = next_s;
        }
        self.amplitude = self.target_amplitude;
        self.phase = self.phase.wrapping_add(self.step.wrapping_mul(out.len() as u64));
        true
    }
}

/// Audio from a WAV file, decoded to 48 kHz mono at construction and played once or in a loop.
///
/// Decoding the whole file up front keeps `read` to a `memcpy` and makes every format error an `Err` at open
/// time (see [`wav::decode`] for the formats accepted). The price is memory: 96 KB per second of audio (a
/// five-minute prompt takes 29 MB), with [`wav::DEFAULT_MAX_SECONDS`] as the default cap.
///
/// Played once, the last partial frame is padded with silence and `read` returns true; the call after that
/// returns false. Looped, playback wraps to the start with no gap; an empty file ends at once either way.
#[derive(Debug, Clone)]
pub struct WavSource {
    samples: Box<[i16]>,
    position: usize,
    looping: bool,
    info: Option<WavInfo>,
}

impl WavSource {
    /// Opens and decodes the file at `path` with the default [`DecodeOptions`]; plays once.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, WavError> {
        Self::open_with(path, &DecodeOptions::default())
    }

    /// Opens and decodes the file at `path` with `options` (length limit); plays once.
    pub fn open_with(path: impl AsRef<Path>, options: &DecodeOptions) -> Result<Self, WavError> {
        let decoded = wav::decode_file(path, options)?;
        Ok(Self::from_decoded(decoded))
    }

    /// Decodes a WAV stream (a file already open, bytes in memory through `std::io::Cursor`, ...); plays once.
    pub fn from_reader<R: Read>(reader: R) -> Result<Self, WavError> {
        Self::from_reader_with(reader, &DecodeOptions::default())
    }

    /// Decodes a WAV stream with `options`; plays once.
    pub fn from_reader_with<R: Read>(reader: R, options: &DecodeOptions) -> Result<Self, WavError> {
        Ok(Self::from_decoded(wav::decode(reader, options)?))
    }

    /// Plays PCM that is already 48 kHz mono; plays once.
    pub fn from_pcm(samples: impl Into<Box<[i16]>>) -> Self {
        WavSource { samples: samples.into(), position: 0, looping: false, info: None }
    }

    fn from_decoded(decoded: wav::Decoded) -> Self {
        WavSource { samples: decoded.samples.into_boxed_slice(), position: 0, looping: false, info: Some(decoded.info) }
    }

    /// Plays in a loop (`true`) or once (`false`).
    pub fn looping(mut self, looping: bool) -> Self {
        self.looping = looping;
        self
    }

    /// Switches between looping and playing once, keeping the position.
    pub fn set_looping(&mut self, looping: bool) {
        self.looping = looping;
    }

    /// Whether playback loops.
    pub fn is_looping(&self) -> bool {
        self.looping
    }

    /// Goes back to the start (also restarts a source that has ended).
    pub fn rewind(&mut self) {
        self.position = 0;
    }

    /// What the file was before conversion (`None` for [`WavSource::from_pcm`]).
    pub fn info(&self) -> Option<&WavInfo> {
        self.info.as_ref()
    }

    /// The decoded audio, 48 kHz mono.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// The length of the decoded audio.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(SAMPLE_RATE))
    }

    /// The next sample to play, as an index into [`WavSource::samples`].
    pub fn position(&self) -> usize {
        self.position
    }

    /// True once a non-looping source has played everything (or the audio is empty).
    pub fn is_ended(&self) -> bool {
        self.samples.is_empty() || (!self.looping && self.position >= self.samples.len())
    }
}

impl AudioSource for WavSource {
    fn read(&mut self, out: &mut [i16]) -> bool {
        if self.is_ended() {
            out.fill(0);
            return false;
        }
        let mut filled = 0;
        while filled < out.len() {
            let remaining = self.samples.get(self.position..).unwrap_or(&[]);
            if remaining.is_empty() {
                if self.looping {
                    self.position = 0;
                    continue;
                }
                break;
            }
            let n = remaining.len().min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&remaining[..n]);
            filled += n;
            self.position += n;
        }
        out[filled..].fill(0);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_voice_is_deterministic_whatever_the_frame_size() {
        let whole = SyntheticVoice::new().samples(4_800);
        let mut v = SyntheticVoice::new();
        let mut pieces = Vec::new();
        for len in [480, 960, 7, 1_000, 2_353] {
            let mut frame = vec![0; len];
            assert!(v.read(&mut frame));
            pieces.extend(frame);
        }
        assert_eq!(whole, pieces);
        let peak = whole.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!((8_000..32_000).contains(&peak), "peak {peak}");
    }

    fn run(source: &mut impl AudioSource, frames: usize, frame_len: usize) -> Vec<i16> {
        let mut all = Vec::with_capacity(frames * frame_len);
        let mut frame = vec![0i16; frame_len];
        for _ in 0..frames {
            assert!(source.read(&mut frame));
            all.extend_from_slice(&frame);
        }
        all
    }

    #[test]
    fn silence_is_zero_and_never_ends() {
        let mut frame = [7i16; 960];
        for _ in 0..3 {
            assert!(Silence.read(&mut frame));
            assert!(frame.iter().all(|&s| s == 0));
        }
    }

    #[test]
    fn tone_matches_the_ideal_sine_over_ten_seconds() {
        // Exact frequency and no phase drift: every sample of 10 s is within 1 LSB of the ideal waveform,
        // whatever the frame length (and a non-integer frequency works too).
        for (freq, frame_len) in [(440.0, 960), (1000.0, 480), (3000.0, 960), (1234.567, 333)] {
            let mut tone = Tone::new(freq, -6.0);
            let amp = 32767.0 * 10f64.powf(-6.0 / 20.0);
            let frames = 480_000 / frame_len;
            let got = run(&mut tone, frames, frame_len);
            for (n, &s) in got.iter().enumerate() {
                let ideal = amp * (std::f64::consts::TAU * freq * n as f64 / 48_000.0).sin();
                assert!((f64::from(s) - ideal).abs() <= 1.0, "{freq} Hz sample {n}: {s} vs {ideal}");
            }
        }
    }

    #[test]
    fn tone_has_no_discontinuity_at_frame_boundaries() {
        for freq in [300.0, 440.0, 997.0, 3000.0] {
            let mut tone = Tone::new(freq, 0.0);
            let got = run(&mut tone, 200, 960);
            // The steepest slope of A·sin(ωn) is A·ω per sample; allow rounding.
            let bound = 32767.0 * std::f64::consts::TAU * freq / 48_000.0 + 2.0;
            let max_delta = got.windows(2).map(|w| (i32::from(w[1]) - i32::from(w[0])).abs()).max().unwrap_or(0);
            assert!(f64::from(max_delta) <= bound, "{freq} Hz: max delta {max_delta} > {bound}");
            assert_eq!(got[0], 0, "starts at phase 0");
            let peak = got.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0);
            assert!((32760..=32767).contains(&peak), "peak {peak}");
        }
    }

    #[test]
    fn frequency_and_level_changes_are_smooth() {
        let mut tone = Tone::new(440.0, -20.0);
        let mut got = run(&mut tone, 5, 960);
        tone.set_frequency(880.0);
        tone.set_level_dbfs(0.0);
        got.extend(run(&mut tone, 5, 960));
        let bound = 32767.0 * std::f64::consts::TAU * 880.0 / 48_000.0 + 2.0;
        let max_delta = got.windows(2).map(|w| (i32::from(w[1]) - i32::from(w[0])).abs()).max().unwrap_or(0);
        assert!(f64::from(max_delta) <= bound, "max delta {max_delta}");
        assert_eq!(tone.frequency_hz(), 880.0);
        assert_eq!(tone.level_dbfs(), 0.0);
    }

    #[test]
    fn tone_parameters_are_clamped() {
        let mut t = Tone::new(f64::NAN, f64::NAN);
        assert_eq!(t.frequency_hz(), 0.0);
        let mut frame = [1i16; 960];
        assert!(t.read(&mut frame));
        assert!(frame.iter().all(|&s| s == 0));
        let t = Tone::new(1e9, 12.0);
        assert_eq!(t.frequency_hz(), 24_000.0);
        assert_eq!(t.level_dbfs(), 0.0);
        let t = Tone::new(-5.0, f64::NEG_INFINITY);
        assert_eq!(t.frequency_hz(), 0.0);
    }

    #[test]
    fn wav_source_plays_once_then_ends() {
        let pcm: Vec<i16> = (1..=2000).map(|i| i as i16).collect();
        let mut src = WavSource::from_pcm(pcm.clone());
        let mut frame = [0i16; 960];
        assert!(src.read(&mut frame));
        assert_eq!(frame[..], pcm[..960]);
        assert!(src.read(&mut frame));
        assert!(src.read(&mut frame));
        assert_eq!(frame[..80], pcm[1920..]);
        assert!(frame[80..].iter().all(|&s| s == 0));
        assert!(src.is_ended());
        frame.fill(5);
        assert!(!src.read(&mut frame));
        assert!(frame.iter().all(|&s| s == 0));
        src.rewind();
        assert!(src.read(&mut frame));
        assert_eq!(frame[0], 1);
    }

    #[test]
    fn wav_source_loops_without_gaps() {
        // Shorter than a frame, so one frame wraps several times.
        let pcm: Vec<i16> = (1..=300).map(|i| i as i16).collect();
        let mut src = WavSource::from_pcm(pcm.clone()).looping(true);
        let got = run(&mut src, 4, 960);
        for (n, &s) in got.iter().enumerate() {
            assert_eq!(s, pcm[n % 300]);
        }
        let mut empty = WavSource::from_pcm(Vec::new()).looping(true);
        let mut frame = [3i16; 480];
        assert!(!empty.read(&mut frame));
        assert!(frame.iter().all(|&s| s == 0));
    }

    #[test]
    fn wav_source_decodes_and_resamples_a_file() {
        // 0.1 s of a 1 kHz tone at 8 kHz, stereo with the tone on the left only: 4800 samples at 48 kHz.
        let mut bytes = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut bytes, spec).expect("test writer");
        for n in 0..800 {
            let v = (20_000.0 * (std::f64::consts::TAU * 1000.0 * f64::from(n) / 8_000.0).sin()).round() as i16;
            w.write_sample(v).expect("test write");
            w.write_sample(0i16).expect("test write");
        }
        w.finalize().expect("test finalize");
        bytes.set_position(0);
        let options = DecodeOptions::new().with_max_seconds(1);
        let mut src = WavSource::from_reader_with(bytes, &options).expect("decode");
        assert_eq!(src.samples().len(), 4800);
        assert_eq!(src.duration(), Duration::from_millis(100));
        let info = src.info().copied().expect("info");
        assert_eq!((info.sample_rate, info.channels, info.frames_decoded), (8_000, 2, 800));
        // Half the left channel's level once the filter has settled (within 1 %).
        let peak = src.samples()[480..4320].iter().map(|v| i32::from(v.unsigned_abs())).max().unwrap_or(0);
        assert!((9_900..=10_100).contains(&peak), "peak {peak}");
        let got = run(&mut src, 5, 960);
        assert_eq!(got, src.samples());
        assert!(!src.read(&mut [0i16; 960]));
    }

    #[test]
    fn boxed_sources_work() {
        let mut sources: Vec<Box<dyn AudioSource>> = vec![Box::new(Silence), Box::new(Tone::new(440.0, -3.0))];
        let mut frame = [0i16; 480];
        for s in &mut sources {
            assert!(s.read(&mut frame));
        }
    }
}
