//! WAV files in and out of the internal format, and sample-rate conversion.
//!
//! This module owns everything that touches the WAV container (through `hound`) and every conversion between
//! a file's layout and the internal 48 kHz mono `i16` PCM:
//!
//! - [`decode`] / [`decode_file`]: read a whole file, convert 8/16/24/32-bit integer or 32-bit float samples,
//!   downmix any number of channels to mono (mean of the channels) and resample to [`SAMPLE_RATE`]. Used by
//!   [`WavSource`](super::source::WavSource) at construction, never on the real-time path.
//! - [`Resampler`]: the conversion interface, with [`SincResampler`] (Kaiser-windowed sinc, whole-buffer) as the
//!   default; another implementation can be passed through [`DecodeOptions::with_resampler`].
//! - [`WavError`]: the typed error of opening, decoding and writing. Malformed input is always an `Err`, never a
//!   panic.
//! - The output format of [`WavRecorder`](super::sink::WavRecorder): 48 kHz mono 16-bit PCM.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use super::SAMPLE_RATE;

/// The lowest sample rate [`decode`] accepts, in Hz.
pub const MIN_INPUT_RATE: u32 = 1_000;
/// The highest sample rate [`decode`] accepts, in Hz.
pub const MAX_INPUT_RATE: u32 = 768_000;
/// The default limit on the decoded duration, in seconds (one hour: 345.6 MB of internal PCM).
pub const DEFAULT_MAX_SECONDS: u32 = 3_600;

/// Why a WAV file could not be read or written.
#[derive(Debug)]
#[non_exhaustive]
pub enum WavError {
    /// The file could not be opened, read or written (not found, permission denied, disk full, ...).
    Io(io::Error),
    /// The bytes are not a well-formed WAV file (bad RIFF/WAVE tags, inconsistent `fmt ` chunk, missing `data`
    /// chunk, header cut short, ...). The message says what was wrong.
    Malformed(&'static str),
    /// The file is a WAV file, but in a layout this module does not decode (compressed formats such as ADPCM or
    /// A-law, 64-bit float, odd bit depths, a sample rate outside [`MIN_INPUT_RATE`]..=[`MAX_INPUT_RATE`]).
    Unsupported(String),
    /// The file is longer than the configured limit ([`DecodeOptions::with_max_seconds`]).
    TooLong {
        /// The duration the header announces, in whole seconds.
        seconds: u64,
        /// The limit in force, in seconds.
        max_seconds: u32,
    },
}

impl fmt::Display for WavError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WavError::Io(e) => write!(f, "WAV I/O error: {e}"),
            WavError::Malformed(why) => write!(f, "malformed WAV file: {why}"),
            WavError::Unsupported(what) => write!(f, "unsupported WAV format: {what}"),
            WavError::TooLong { seconds, max_seconds } => {
                write!(f, "WAV file too long: {seconds} s (limit {max_seconds} s)")
            }
        }
    }
}

impl std::error::Error for WavError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WavError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for WavError {
    fn from(e: io::Error) -> Self {
        WavError::Io(e)
    }
}

/// hound reports a read past the end of the stream as an `io::Error` of kind `Other` with this message (or,
/// from some readers, `UnexpectedEof`): that is a file cut short, not an I/O failure.
fn is_short_read(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::UnexpectedEof
        || (e.kind() == io::ErrorKind::Other
            && e.raw_os_error().is_none()
            && e.to_string() == "Failed to read enough bytes.")
}

impl From<hound::Error> for WavError {
    fn from(e: hound::Error) -> Self {
        match e {
            hound::Error::IoError(e) => WavError::Io(e),
            hound::Error::FormatError(why) => WavError::Malformed(why),
            hound::Error::UnfinishedSample => WavError::Malformed("unfinished sample"),
            hound::Error::TooWide => WavError::Unsupported("sample container wider than its format".into()),
            hound::Error::InvalidSampleFormat => WavError::Unsupported("sample format mismatch".into()),
            hound::Error::Unsupported => WavError::Unsupported("format tag or bit depth".into()),
        }
    }
}

/// Maps an error met while reading a header: running out of bytes there means the file is malformed.
fn header_error(e: hound::Error) -> WavError {
    match e {
        hound::Error::IoError(e) if is_short_read(&e) => WavError::Malformed("file ends inside its header"),
        other => other.into(),
    }
}

/// How the samples of a WAV file are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleKind {
    /// Integer PCM (8-bit unsigned, 16/24/32-bit signed).
    Int,
    /// IEEE 754 32-bit float, nominally in [-1.0, 1.0].
    Float,
}

/// What a decoded file was, before conversion to the internal format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WavInfo {
    /// The file's sample rate, in Hz.
    pub sample_rate: u32,
    /// The file's channel count (downmixed to mono on decode).
    pub channels: u16,
    /// Valid bits per sample (8, 16, 24 or 32).
    pub bits_per_sample: u16,
    /// Integer or float samples.
    pub sample_kind: SampleKind,
    /// Sample frames (one sample per channel) actually decoded from the file.
    pub frames_decoded: u64,
    /// True when the `data` chunk was shorter than its header announced: the audio decoded up to that point is
    /// kept (files from a recorder that crashed before finalising are common).
    pub truncated: bool,
}

/// Sample-rate conversion of a whole mono buffer.
///
/// [`decode`] calls it once per file, off the real-time path, so implementations may allocate. Samples are
/// nominally in [-1.0, 1.0]; the output should hold about `input.len() * to_hz / from_hz` samples (rounded up)
/// with the same time origin as the input (no added delay).
pub trait Resampler: Send + Sync {
    /// Appends `input`, sampled at `from_hz`, resampled to `to_hz`, to `out`.
    fn resample(&self, input: &[f32], from_hz: u32, to_hz: u32, out: &mut Vec<f32>);
}

/// A band-limited resampler: a Kaiser-windowed sinc kernel evaluated from an oversampled table with linear
/// interpolation, zero-phase (no delay), any rational or irrational ratio.
///
/// The cutoff is `rolloff` × the lower of the two Nyquist frequencies (so it also low-passes when
/// downsampling). With the defaults (24 zero crossings per side, rolloff 0.9, Kaiser β = 8) the passband is flat
/// to 0.1 dB up to 0.8 × the lower Nyquist frequency (3.2 kHz for an 8 kHz file, 17.6 kHz for 44.1 kHz) and
/// everything from that Nyquist frequency up (images when upsampling, aliases when downsampling) is attenuated
/// by about 80 dB. Cost: `2 × zero_crossings / rolloff` taps per output sample when upsampling (about 53),
/// proportionally more when downsampling. It runs once per file, at construction.
#[derive(Debug, Clone)]
pub struct SincResampler {
    zero_crossings: usize,
    rolloff: f64,
    kaiser_beta: f64,
}

impl Default for SincResampler {
    fn default() -> Self {
        SincResampler { zero_crossings: 24, rolloff: 0.9, kaiser_beta: 8.0 }
    }
}

/// Kernel table points per input sample interval.
const TABLE_OVERSAMPLE: usize = 512;

impl SincResampler {
    /// A resampler with the default quality (see the type docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the kernel half-length in zero crossings of the sinc (clamped to 2..=64). Longer is sharper and
    /// slower.
    pub fn with_zero_crossings(mut self, zero_crossings: usize) -> Self {
        self.zero_crossings = zero_crossings.clamp(2, 64);
        self
    }

    /// Sets the cutoff as a fraction of the lower Nyquist frequency (clamped to 0.5..=0.99).
    pub fn with_rolloff(mut self, rolloff: f64) -> Self {
        self.rolloff = if rolloff.is_finite() { rolloff.clamp(0.5, 0.99) } else { 0.9 };
        self
    }
}

/// The zeroth-order modified Bessel function of the first kind (power series; converges fast for β ≤ 20).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..64 {
        term *= q / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

impl Resampler for SincResampler {
    fn resample(&self, input: &[f32], from_hz: u32, to_hz: u32, out: &mut Vec<f32>) {
        if input.is_empty() || from_hz == 0 || to_hz == 0 {
            return;
        }
        if from_hz == to_hz {
            out.extend_from_slice(input);
            return;
        }
        let (from, to) = (u64::from(from_hz), u64::from(to_hz));
        // Cutoff in cycles per input sample, and the kernel's half-width in input samples.
        let scale = (to as f64 / from as f64).min(1.0);
        let fc = 0.5 * self.rolloff * scale;
        let half_width = self.zero_crossings as f64 / (2.0 * fc);
        let table_len = (half_width * TABLE_OVERSAMPLE as f64).ceil() as usize + 2;
        let i0_beta = bessel_i0(self.kaiser_beta);
        let table: Vec<f32> = (0..table_len)
            .map(|i| {
                let t = i as f64 / TABLE_OVERSAMPLE as f64;
                let u = t / half_width;
                if u >= 1.0 {
                    return 0.0;
                }
                let x = 2.0 * fc * t;
                let sinc = if x == 0.0 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) };
                let window = bessel_i0(self.kaiser_beta * (1.0 - u * u).sqrt()) / i0_beta;
                (2.0 * fc * sinc * window) as f32
            })
            .collect();
        let kernel = |t: f64| -> f32 {
            let x = t.abs() * TABLE_OVERSAMPLE as f64;
            let i = x as usize;
            if i + 1 >= table.len() {
                return 0.0;
            }
            let frac = (x - i as f64) as f32;
            table[i] + (table[i + 1] - table[i]) * frac
        };

        let n_in = input.len() as u64;
        let n_out = (n_in * to).div_ceil(from);
        let reach = half_width.ceil() as i64;
        let last = input.len() as i64 - 1;
        out.reserve(usize::try_from(n_out).unwrap_or(0));
        for m in 0..n_out {
            // Exact input position of output sample m: m * from / to.
            let num = m * from;
            let base = (num / to) as i64;
            let frac = (num % to) as f64 / to as f64;
            let lo = (base - reach + 1).max(0);
            let hi = (base + reach).min(last);
            let mut acc = 0.0f32;
            for j in lo..=hi {
                let t = (base - j) as f64 + frac;
                acc += input[j as usize] * kernel(t);
            }
            out.push(acc);
        }
    }
}

/// How [`decode`] converts a file.
pub struct DecodeOptions {
    resampler: Box<dyn Resampler>,
    max_seconds: u32,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { resampler: Box::new(SincResampler::default()), max_seconds: DEFAULT_MAX_SECONDS }
    }
}

impl fmt::Debug for DecodeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodeOptions").field("max_seconds", &self.max_seconds).finish_non_exhaustive()
    }
}

impl DecodeOptions {
    /// The defaults: [`SincResampler`] and a [`DEFAULT_MAX_SECONDS`] limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `resampler` for files that are not at [`SAMPLE_RATE`].
    pub fn with_resampler(mut self, resampler: Box<dyn Resampler>) -> Self {
        self.resampler = resampler;
        self
    }

    /// Refuses files announcing more than `max_seconds` of audio ([`WavError::TooLong`]).
    pub fn with_max_seconds(mut self, max_seconds: u32) -> Self {
        self.max_seconds = max_seconds;
        self
    }
}

/// A file decoded to the internal format.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// 48 kHz mono PCM.
    pub samples: Vec<i16>,
    /// What the file was.
    pub info: WavInfo,
}

/// Converts a float sample (nominally [-1, 1]) to `i16`, rounding and saturating; NaN becomes 0.
pub fn f32_to_i16(x: f32) -> i16 {
    if x.is_nan() {
        return 0;
    }
    // `as` saturates; the clamp makes +1.0 map to 32767 instead of overflowing the positive range.
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Opens and decodes the WAV file at `path` (see [`decode`]).
pub fn decode_file(path: impl AsRef<Path>, options: &DecodeOptions) -> Result<Decoded, WavError> {
    let file = File::open(path)?;
    decode(BufReader::with_capacity(64 * 1024, file), options)
}

/// Decodes a whole WAV stream to 48 kHz mono `i16`.
///
/// Accepts integer PCM of 8 (unsigned), 16, 24 (in 3- or 4-byte containers) and 32 bits, and 32-bit float, in
/// `WAVE_FORMAT_PCM`, `WAVE_FORMAT_IEEE_FLOAT` or `WAVE_FORMAT_EXTENSIBLE` headers; any number of channels (the
/// mean is taken); any rate in [`MIN_INPUT_RATE`]..=[`MAX_INPUT_RATE`] (resampled with the options' resampler).
/// A 48 kHz mono 16-bit file is copied bit-exactly. A `data` chunk cut short is accepted up to the last complete
/// sample frame ([`WavInfo::truncated`]). Anything else is an error; nothing here panics on malformed input.
pub fn decode<R: Read>(reader: R, options: &DecodeOptions) -> Result<Decoded, WavError> {
    let mut wav = hound::WavReader::new(reader).map_err(header_error)?;
    let spec = wav.spec();
    let sample_kind = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 8 | 16 | 24 | 32) => SampleKind::Int,
        (hound::SampleFormat::Float, 32) => SampleKind::Float,
        (format, bits) => return Err(WavError::Unsupported(format!("{bits}-bit {format:?} samples"))),
    };
    if !(MIN_INPUT_RATE..=MAX_INPUT_RATE).contains(&spec.sample_rate) {
        return Err(WavError::Unsupported(format!("sample rate {} Hz", spec.sample_rate)));
    }
    let channels = usize::from(spec.channels.max(1));
    let announced_frames = u64::from(wav.duration());
    if announced_frames > u64::from(options.max_seconds) * u64::from(spec.sample_rate) {
        let seconds = announced_frames / u64::from(spec.sample_rate);
        return Err(WavError::TooLong { seconds, max_seconds: options.max_seconds });
    }

    // The header's length is bounded above (checked against the limit) but may exceed the real data: reserve a
    // bounded amount and let the vector grow if the data really is that long.
    let reserve = usize::try_from(announced_frames.min(1 << 20)).unwrap_or(0);
    let mut mono: Vec<f32> = Vec::with_capacity(reserve);
    let mut truncated = false;
    let mut acc = 0.0f32;
    let mut in_frame = 0usize;
    let per_channel = 1.0 / channels as f32;
    let mut push = |value: f32| {
        acc += value;
        in_frame += 1;
        if in_frame == channels {
            mono.push(acc * per_channel);
            acc = 0.0;
            in_frame = 0;
        }
    };
    let mut on_error = |e: hound::Error| -> Result<(), WavError> {
        match e {
            hound::Error::IoError(e) if is_short_read(&e) => {
                truncated = true;
                Ok(())
            }
            other => Err(other.into()),
        }
    };
    match sample_kind {
        SampleKind::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            for sample in wav.samples::<i32>() {
                match sample {
                    Ok(s) => push(s as f32 * scale),
                    Err(e) => {
                        on_error(e)?;
                        break;
                    }
                }
            }
        }
        SampleKind::Float => {
            for sample in wav.samples::<f32>() {
                match sample {
                    Ok(s) if s.is_finite() => push(s.clamp(-1.0, 1.0)),
                    Ok(_) => push(0.0),
                    Err(e) => {
                        on_error(e)?;
                        break;
                    }
                }
            }
        }
    }
    let frames_decoded = mono.len() as u64;

    let resampled;
    let at_48k: &[f32] = if spec.sample_rate == SAMPLE_RATE {
        &mono
    } else {
        let mut out = Vec::new();
        options.resampler.resample(&mono, spec.sample_rate, SAMPLE_RATE, &mut out);
        drop(std::mem::take(&mut mono));
        resampled = out;
        &resampled
    };
    let samples = at_48k.iter().map(|&x| f32_to_i16(x)).collect();
    Ok(Decoded {
        samples,
        info: WavInfo {
            sample_rate: spec.sample_rate,
            channels: spec.channels,
            bits_per_sample: spec.bits_per_sample,
            sample_kind,
            frames_decoded,
            truncated,
        },
    })
}

/// The format [`WavRecorder`](super::sink::WavRecorder) writes: 48 kHz, mono, 16-bit integer PCM.
pub(crate) fn recorder_spec() -> hound::WavSpec {
    hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Writes a WAV file in memory with hound.
    fn wav_bytes<S: hound::Sample + Copy>(spec: hound::WavSpec, samples: &[S]) -> Vec<u8> {
        let mut cursor = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut cursor, spec).expect("test writer");
            for &s in samples {
                w.write_sample(s).expect("test write");
            }
            w.finalize().expect("test finalize");
        }
        cursor.into_inner()
    }

    fn spec(rate: u32, channels: u16, bits: u16, format: hound::SampleFormat) -> hound::WavSpec {
        hound::WavSpec { channels, sample_rate: rate, bits_per_sample: bits, sample_format: format }
    }

    fn sine(rate: u32, freq: f64, amp: f64, n: usize) -> Vec<f64> {
        (0..n).map(|i| amp * (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin()).collect()
    }

    /// Amplitude and phase-free fit of a sine at `freq` (48 kHz) over `x`, plus the RMS of the residual.
    fn fit(x: &[i16], freq: f64) -> (f64, f64) {
        let w = std::f64::consts::TAU * freq / 48_000.0;
        let (mut s, mut c) = (0.0, 0.0);
        for (i, &v) in x.iter().enumerate() {
            s += f64::from(v) * (w * i as f64).sin();
            c += f64::from(v) * (w * i as f64).cos();
        }
        let n = x.len() as f64;
        let (a, b) = (2.0 * s / n, 2.0 * c / n);
        let amp = (a * a + b * b).sqrt();
        let resid: f64 = x
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let e = f64::from(v) - a * (w * i as f64).sin() - b * (w * i as f64).cos();
                e * e
            })
            .sum::<f64>()
            / n;
        (amp, resid.sqrt())
    }

    #[test]
    fn mono_16bit_48k_is_bit_exact() {
        let samples: Vec<i16> = (0..5000).map(|i| ((i * 7919) % 65536 - 32768) as i16).collect();
        let bytes = wav_bytes(spec(48_000, 1, 16, hound::SampleFormat::Int), &samples);
        let decoded = decode(Cursor::new(bytes), &DecodeOptions::default()).expect("decode");
        assert_eq!(decoded.samples, samples);
        assert_eq!(decoded.info.frames_decoded, 5000);
        assert!(!decoded.info.truncated);
    }

    #[test]
    fn bit_depths_scale_to_the_same_level() {
        let x = sine(48_000, 1000.0, 0.5, 4800);
        let s8: Vec<i8> = x.iter().map(|v| (v * 128.0).round() as i8).collect();
        let s24: Vec<i32> = x.iter().map(|v| (v * 8_388_608.0).round() as i32).collect();
        let s32: Vec<i32> = x.iter().map(|v| (v * 2_147_483_648.0).round() as i32).collect();
        let f: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let files = [
            wav_bytes(spec(48_000, 1, 8, hound::SampleFormat::Int), &s8),
            wav_bytes(spec(48_000, 1, 24, hound::SampleFormat::Int), &s24),
            wav_bytes(spec(48_000, 1, 32, hound::SampleFormat::Int), &s32),
            wav_bytes(spec(48_000, 1, 32, hound::SampleFormat::Float), &f),
        ];
        for bytes in files {
            let d = decode(Cursor::new(bytes), &DecodeOptions::default()).expect("decode");
            let (amp, resid) = fit(&d.samples, 1000.0);
            assert!((amp - 16384.0).abs() < 200.0, "amp {amp} for {:?}", d.info);
            assert!(resid < 200.0, "resid {resid} for {:?}", d.info);
        }
    }

    #[test]
    fn stereo_is_averaged() {
        // Left carries the tone, right is silent: mono gets half the amplitude.
        let x = sine(48_000, 500.0, 0.8, 4800);
        let interleaved: Vec<i16> = x.iter().flat_map(|v| [(v * 32767.0) as i16, 0]).collect();
        let bytes = wav_bytes(spec(48_000, 2, 16, hound::SampleFormat::Int), &interleaved);
        let d = decode(Cursor::new(bytes), &DecodeOptions::default()).expect("decode");
        assert_eq!(d.samples.len(), 4800);
        let (amp, _) = fit(&d.samples, 500.0);
        assert!((amp - 0.4 * 32767.0).abs() < 50.0, "amp {amp}");
    }

    #[test]
    fn resampler_preserves_tones_and_length() {
        let r = SincResampler::default();
        for (rate, freq) in [(8_000u32, 1000.0), (16_000, 3000.0), (44_100, 440.0), (96_000, 5000.0)] {
            let n = rate as usize / 2;
            let x: Vec<f32> = sine(rate, freq, 0.5, n).iter().map(|&v| v as f32).collect();
            let mut out = Vec::new();
            r.resample(&x, rate, 48_000, &mut out);
            assert_eq!(out.len(), (n * 48_000).div_ceil(rate as usize), "length at {rate}");
            // Skip the kernel's edge transients at both ends.
            let body: Vec<i16> = out[2000..out.len() - 2000].iter().map(|&v| f32_to_i16(v)).collect();
            let (amp, resid) = fit(&body, freq);
            assert!((amp - 16384.0).abs() < 50.0, "amp {amp} at {rate}");
            assert!(resid < 30.0, "resid {resid} at {rate}");
        }
    }

    #[test]
    fn upsampling_images_are_suppressed() {
        // 3 kHz at 8 kHz (0.75 of Nyquist): a naive upsampler would put an image at 5 kHz.
        let x: Vec<f32> = sine(8_000, 3000.0, 0.5, 8_000).iter().map(|&v| v as f32).collect();
        let mut out = Vec::new();
        SincResampler::default().resample(&x, 8_000, 48_000, &mut out);
        let body: Vec<i16> = out[3000..out.len() - 3000].iter().map(|&v| f32_to_i16(v)).collect();
        let (tone, _) = fit(&body, 3000.0);
        let (image, _) = fit(&body, 5000.0);
        assert!((20.0 * (tone / 16384.0).log10()).abs() < 0.1, "passband {tone}");
        assert!(20.0 * (image / 16384.0).log10() < -70.0, "image {image}");
    }

    #[test]
    fn downsampling_removes_content_above_the_new_nyquist() {
        let x: Vec<f32> = sine(96_000, 30_000.0, 0.5, 48_000).iter().map(|&v| v as f32).collect();
        let mut out = Vec::new();
        SincResampler::default().resample(&x, 96_000, 48_000, &mut out);
        let peak = out[1000..out.len() - 1000].iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(peak < 0.5 * 1e-3, "alias peak {peak}");
    }

    #[test]
    fn rejects_unsupported_and_overlong_files() {
        let bytes = wav_bytes(spec(500, 1, 16, hound::SampleFormat::Int), &[0i16; 10]);
        assert!(matches!(decode(Cursor::new(bytes), &DecodeOptions::default()), Err(WavError::Unsupported(_))));
        let bytes = wav_bytes(spec(8_000, 1, 16, hound::SampleFormat::Int), &vec![0i16; 16_001]);
        let opts = DecodeOptions::default().with_max_seconds(2);
        assert!(matches!(decode(Cursor::new(bytes.clone()), &opts), Err(WavError::TooLong { seconds: 2, .. })));
        let opts = DecodeOptions::default().with_max_seconds(3);
        assert!(decode(Cursor::new(bytes), &opts).is_ok());
        let exact = wav_bytes(spec(8_000, 1, 16, hound::SampleFormat::Int), &vec![0i16; 16_000]);
        assert!(decode(Cursor::new(exact), &DecodeOptions::default().with_max_seconds(2)).is_ok());
    }

    #[test]
    fn truncated_data_keeps_what_was_there() {
        let samples: Vec<i16> = (0..1000).map(|i| i as i16).collect();
        let mut bytes = wav_bytes(spec(48_000, 1, 16, hound::SampleFormat::Int), &samples);
        bytes.truncate(bytes.len() - 501); // 250 whole samples and half of one gone
        let d = decode(Cursor::new(bytes), &DecodeOptions::default()).expect("decode");
        assert!(d.info.truncated);
        assert_eq!(d.samples, samples[..749]);
    }

    #[test]
    fn malformed_headers_are_errors() {
        assert!(matches!(decode(Cursor::new(b"".to_vec()), &DecodeOptions::default()), Err(WavError::Malformed(_))));
        assert!(matches!(
            decode(Cursor::new(b"RIFF\0\0\0\0WAVX".to_vec()), &DecodeOptions::default()),
            Err(WavError::Malformed(_))
        ));
        let good = wav_bytes(spec(48_000, 1, 16, hound::SampleFormat::Int), &[1i16, 2, 3]);
        for cut in 0..44 {
            let r = decode(Cursor::new(good[..cut].to_vec()), &DecodeOptions::default());
            assert!(matches!(r, Err(WavError::Malformed(_))), "cut {cut}: {r:?}");
        }
        let missing = decode_file("/nonexistent/dir/x.wav", &DecodeOptions::default());
        assert!(matches!(missing, Err(WavError::Io(_))));
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn valid_header() -> Vec<u8> {
            wav_bytes(spec(44_100, 2, 24, hound::SampleFormat::Int), &[1i32, -2, 3, -4, 5, -6])
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                let _ = decode(Cursor::new(bytes), &DecodeOptions::default().with_max_seconds(2));
            }

            #[test]
            fn random_bytes_after_riff_wave_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
                let mut bytes = b"RIFF\x24\x08\x00\x00WAVEfmt ".to_vec();
                bytes.extend(tail);
                let _ = decode(Cursor::new(bytes), &DecodeOptions::default().with_max_seconds(2));
            }

            #[test]
            fn corrupted_valid_files_never_panic(
                edits in proptest::collection::vec((0usize..80, any::<u8>()), 1..6),
                cut in 0usize..80,
            ) {
                let mut bytes = valid_header();
                for (at, value) in edits {
                    if let Some(b) = bytes.get_mut(at) {
                        *b = value;
                    }
                }
                bytes.truncate(bytes.len().saturating_sub(cut % 8));
                let r = decode(Cursor::new(bytes), &DecodeOptions::default().with_max_seconds(2));
                if let Ok(d) = r {
                    prop_assert!(d.samples.len() <= 2 * 48_000 + 48_000);
                }
            }
        }
    }
}
