//! WAV files in and out of the internal format.
//!
//! This module owns everything that touches the WAV container (through `hound`) and every conversion between
//! a file's layout and the internal 48 kHz mono `i16` PCM:
//!
//! - [`decode`] / [`decode_file`]: read a whole file, convert 8/16/24/32-bit integer or 32-bit float samples,
//!   downmix any number of channels to mono (mean of the channels) and resample to [`SAMPLE_RATE`] with the
//!   crate's one sample-rate converter, [`resample::Resampler`](Resampler). Used by
//!   [`WavSource`](super::source::WavSource) at construction, never on the real-time path.
//! - [`WavError`]: the typed error of opening, decoding and writing. Malformed input is always an `Err`, never a
//!   panic.
//! - The output format of [`WavRecorder`](super::sink::WavRecorder): 48 kHz mono 16-bit PCM.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::media::dsp::resample::{ResampleError, Resampler};
use crate::media::frame::SAMPLE_RATE;

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
    /// The sample rate is within [`MIN_INPUT_RATE`]..=[`MAX_INPUT_RATE`], but the [`Resampler`] cannot convert it
    /// to [`SAMPLE_RATE`]: `48000 / sample_rate` does not reduce to at most
    /// [`MAX_PHASES`](crate::media::dsp::resample::MAX_PHASES) phases (44 056 Hz, for instance, reduces to 6000 / 5507).
    /// Every common rate (8, 11.025, 12, 16, 22.05, 24, 32, 44.1, 88.2, 96, 192 kHz, ...) converts.
    UnsupportedRatio {
        /// The file's sample rate, in Hz.
        sample_rate: u32,
        /// What the resampler reported.
        error: ResampleError,
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
            WavError::UnsupportedRatio { sample_rate, error } => {
                write!(f, "WAV sample rate {sample_rate} Hz cannot be converted to {SAMPLE_RATE} Hz: {error}")
            }
        }
    }
}

impl std::error::Error for WavError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WavError::Io(e) => Some(e),
            WavError::UnsupportedRatio { error, .. } => Some(error),
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

/// How [`decode`] converts a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    max_seconds: u32,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { max_seconds: DEFAULT_MAX_SECONDS }
    }
}

impl DecodeOptions {
    /// The defaults: a [`DEFAULT_MAX_SECONDS`] limit.
    pub fn new() -> Self {
        Self::default()
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
/// mean is taken); any rate in [`MIN_INPUT_RATE`]..=[`MAX_INPUT_RATE`] that the [`Resampler`] can convert to
/// [`SAMPLE_RATE`] (every common rate; [`WavError::UnsupportedRatio`] otherwise, before any sample is read).
/// A 48 kHz mono 16-bit file is copied bit-exactly. A `data` chunk cut short is accepted up to the last complete
/// sample frame ([`WavInfo::truncated`]). Anything else is an error; nothing here panics on malformed input.
///
/// Samples are rounded to `i16` after the downmix and, for other rates, resampled from there: the passband is
/// flat up to 0.85 × the lower Nyquist frequency and everything above that Nyquist frequency is attenuated by at
/// least 60 dB (see [`resample`](crate::media::dsp::resample)). The filter's group delay is removed, so a resampled file has
/// `ceil(frames × 48000 / rate)` samples with the same time origin as the file, to within half a sample.
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
    // Built before reading: a rate the resampler cannot convert fails at once.
    let resampler = if spec.sample_rate == SAMPLE_RATE {
        None
    } else {
        let resampler = Resampler::new(spec.sample_rate, SAMPLE_RATE)
            .map_err(|error| WavError::UnsupportedRatio { sample_rate: spec.sample_rate, error })?;
        Some(resampler)
    };

    // The header's length is bounded above (checked against the limit) but may exceed the real data: reserve a
    // bounded amount and let the vector grow if the data really is that long.
    let reserve = usize::try_from(announced_frames.min(1 << 20)).unwrap_or(0);
    let mut mono: Vec<i16> = Vec::with_capacity(reserve);
    let mut truncated = false;
    let mut acc = 0.0f32;
    let mut in_frame = 0usize;
    let per_channel = 1.0 / channels as f32;
    let mut push = |value: f32| {
        acc += value;
        in_frame += 1;
        if in_frame == channels {
            mono.push(f32_to_i16(acc * per_channel));
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
    let samples = match resampler {
        None => mono,
        Some(mut resampler) => resample_whole(&mut resampler, &mono)
            .map_err(|error| WavError::UnsupportedRatio { sample_rate: spec.sample_rate, error })?,
    };
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

/// Resamples a whole buffer with a fresh `resampler` and removes its group delay: the result has
/// `ceil(input.len() × to / from)` samples, output sample `m` sitting at input time `m × from / to` to within
/// half an output sample. Both ends are filtered as if the input were surrounded by silence.
fn resample_whole(resampler: &mut Resampler, input: &[i16]) -> Result<Vec<i16>, ResampleError> {
    const CHUNK: usize = 4096;
    const SILENCE: [i16; CHUNK] = [0; CHUNK];
    let (from, to) = (u64::from(resampler.from_hz()), u64::from(resampler.to_hz()));
    let wanted = usize::try_from((input.len() as u64).saturating_mul(to).div_ceil(from)).unwrap_or(usize::MAX);
    // The delay is non-negative and bounded by the filter length.
    let mut skip = resampler.delay().round() as usize;
    let mut out = Vec::with_capacity(wanted);
    let mut scratch = vec![0i16; resampler.max_output_len(CHUNK)];
    let mut chunks = input.chunks(CHUNK);
    while out.len() < wanted {
        // After the input, silence pushes out the last samples still inside the filter.
        let chunk = chunks.next().unwrap_or(&SILENCE);
        // Cannot fail: `scratch` holds the worst case for a chunk.
        let produced = resampler.process(chunk, &mut scratch)?;
        let fresh = scratch.get(..produced).unwrap_or_default();
        let dropped = skip.min(fresh.len());
        skip -= dropped;
        let take = (fresh.len() - dropped).min(wanted - out.len());
        out.extend_from_slice(&fresh[dropped..dropped + take]);
    }
    Ok(out)
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

    /// Least-squares fit of `a·sin(ωn) + b·cos(ωn)` at `freq` (48 kHz), where `n` counts from `first` (the index
    /// of `x[0]` in the whole signal): returns `(a, b, rms of the residual)`.
    fn fit_at(x: &[i16], first: usize, freq: f64) -> (f64, f64, f64) {
        let w = std::f64::consts::TAU * freq / 48_000.0;
        let at = |i: usize| w * (first + i) as f64;
        let (mut ss, mut sc, mut cc, mut ys, mut yc) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (i, &v) in x.iter().enumerate() {
            let (s, c) = at(i).sin_cos();
            let y = f64::from(v);
            (ss, sc, cc, ys, yc) = (ss + s * s, sc + s * c, cc + c * c, ys + y * s, yc + y * c);
        }
        let det = ss * cc - sc * sc;
        let (a, b) = ((ys * cc - yc * sc) / det, (yc * ss - ys * sc) / det);
        let resid: f64 = x
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let (s, c) = at(i).sin_cos();
                (f64::from(v) - a * s - b * c).powi(2)
            })
            .sum::<f64>()
            / x.len() as f64;
        (a, b, resid.sqrt())
    }

    /// Amplitude and phase-free fit of a sine at `freq` (48 kHz) over `x`, plus the RMS of the residual.
    fn fit(x: &[i16], freq: f64) -> (f64, f64) {
        let (a, b, resid) = fit_at(x, 0, freq);
        ((a * a + b * b).sqrt(), resid)
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

    /// A file at `rate` carrying `amp · sin(2π·freq·t)` on every channel scaled by `gains` (one per channel),
    /// `n` frames long, in the given sample format.
    fn tone_file(
        rate: u32,
        gains: &[f64],
        bits: u16,
        format: hound::SampleFormat,
        freq: f64,
        amp: f64,
        n: usize,
    ) -> Vec<u8> {
        let x = sine(rate, freq, amp, n);
        let frames = x.iter().flat_map(|&v| gains.iter().map(move |g| v * g));
        let channels = gains.len() as u16;
        let spec = spec(rate, channels, bits, format);
        match (format, bits) {
            (hound::SampleFormat::Float, _) => wav_bytes(spec, &frames.map(|v| v as f32).collect::<Vec<_>>()),
            (_, 16) => wav_bytes(spec, &frames.map(|v| (v * 32768.0).round() as i16).collect::<Vec<_>>()),
            (_, bits) => {
                let full = (1u64 << (bits - 1)) as f64;
                wav_bytes(spec, &frames.map(|v| (v * full).round().min(full - 1.0) as i32).collect::<Vec<_>>())
            }
        }
    }

    #[test]
    fn resampled_files_keep_tone_level_timing_and_length() {
        use hound::SampleFormat::{Float, Int};
        // (rate, per-channel gains, bits, format, tone): the mono mix is always a sine of amplitude 0.5.
        let cases: [(u32, &[f64], u16, hound::SampleFormat, f64); 7] = [
            (8_000, &[1.2, 0.8], 16, Int, 1000.0),
            (16_000, &[1.0], 16, Int, 3000.0),
            (22_050, &[1.0], 24, Int, 2500.0),
            (44_100, &[1.0], 32, Float, 440.0),
            (44_100, &[1.0, 1.0], 24, Int, 15_000.0),
            (96_000, &[1.0], 32, Int, 5000.0),
            (11_025, &[0.5, 1.5, 1.0], 32, Float, 800.0),
        ];
        for (rate, gains, bits, format, freq) in cases {
            let n = rate as usize / 2;
            let bytes = tone_file(rate, gains, bits, format, freq, 0.5, n);
            let d = decode(Cursor::new(bytes), &DecodeOptions::default()).expect("decode");
            let what = format!("{rate} Hz, {} ch, {bits}-bit {format:?}, {freq} Hz", gains.len());
            assert_eq!(d.samples.len(), (n * 48_000).div_ceil(rate as usize), "length: {what}");
            assert_eq!(d.info.frames_decoded, n as u64, "{what}");
            assert_eq!((d.info.sample_rate, d.info.channels), (rate, gains.len() as u16), "{what}");
            // Skip the filter's transients at both ends (the file starts and stops abruptly).
            let body = &d.samples[2000..d.samples.len() - 2000];
            let (a, b, resid) = fit_at(body, 2000, freq);
            let amp = (a * a + b * b).sqrt();
            assert!((amp - 16384.0).abs() < 50.0, "amp {amp}: {what}");
            assert!(resid < 30.0, "resid {resid}: {what}");
            // No added delay: the phase is that of the file's sine, to within half a 48 kHz sample.
            let lag = b.atan2(a).abs() / (std::f64::consts::TAU * freq / 48_000.0);
            assert!(lag <= 0.51, "lag {lag} samples: {what}");
        }
    }

    #[test]
    fn upsampling_images_are_suppressed() {
        // 3 kHz at 8 kHz (0.75 of Nyquist): a naive upsampler would put an image at 5 kHz.
        let bytes = tone_file(8_000, &[1.0], 16, hound::SampleFormat::Int, 3000.0, 0.5, 8_000);
        let d = decode(Cursor::new(bytes), &DecodeOptions::default()).expect("decode");
        let body = &d.samples[3000..d.samples.len() - 3000];
        let (tone, _) = fit(body, 3000.0);
        let (image, _) = fit(body, 5000.0);
        assert!((20.0 * (tone / 16384.0).log10()).abs() < 0.1, "passband {tone}");
        assert!(20.0 * (image / 16384.0).log10() < -70.0, "image {image}");
    }

    #[test]
    fn downsampling_removes_content_above_the_new_nyquist() {
        // 30 kHz at 96 kHz would alias to 18 kHz at 48 kHz.
        let bytes = tone_file(96_000, &[1.0], 32, hound::SampleFormat::Float, 30_000.0, 0.5, 48_000);
        let d = decode(Cursor::new(bytes), &DecodeOptions::default()).expect("decode");
        assert_eq!(d.samples.len(), 24_000);
        let peak = d.samples[1000..d.samples.len() - 1000].iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
        assert!(f64::from(peak) < 16384.0 * 1e-3, "alias peak {peak}");
    }

    #[test]
    fn rates_the_resampler_cannot_convert_are_a_typed_error() {
        // 48000 / 44056 reduces to 6000 / 5507: more phases than the resampler builds.
        let bytes = wav_bytes(spec(44_056, 1, 16, hound::SampleFormat::Int), &[0i16; 100]);
        let err = decode(Cursor::new(bytes), &DecodeOptions::default()).expect_err("44 056 Hz");
        assert!(
            matches!(
                err,
                WavError::UnsupportedRatio {
                    sample_rate: 44_056,
                    error: ResampleError::UnsupportedRatio { from_hz: 44_056, to_hz: 48_000 }
                }
            ),
            "{err:?}"
        );
        assert!(std::error::Error::source(&err).is_some());
        assert!(err.to_string().contains("44056 Hz"), "{err}");
        // Rejected from the header alone, even when the data is cut short.
        let mut bytes = wav_bytes(spec(47_999, 2, 24, hound::SampleFormat::Int), &[0i32; 100]);
        bytes.truncate(bytes.len() - 7);
        let r = decode(Cursor::new(bytes), &DecodeOptions::default());
        assert!(matches!(r, Err(WavError::UnsupportedRatio { sample_rate: 47_999, .. })), "{r:?}");
        // The common rates and both ends of the accepted range convert.
        for rate in [MIN_INPUT_RATE, 8_000, 11_025, 12_000, 22_050, 32_000, 44_100, 88_200, 192_000, MAX_INPUT_RATE] {
            let bytes = wav_bytes(spec(rate, 1, 16, hound::SampleFormat::Int), &[1000i16; 200]);
            let d = decode(Cursor::new(bytes), &DecodeOptions::default()).unwrap_or_else(|e| panic!("{rate}: {e}"));
            assert_eq!(d.samples.len(), (200 * 48_000usize).div_ceil(rate as usize), "{rate}");
        }
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
