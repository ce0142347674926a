//! G.711 (ITU-T Rec. G.711) µ-law (PCMU) and A-law (PCMA) companding in pure Rust, and the
//! G.711 [`Encoder`]/[`Decoder`] wrappers that bridge the 48 kHz internal audio to the 8 kHz
//! codec rate with the [`Resampler`] (a 20 ms frame is 960 samples at 48 kHz and 160 bytes
//! on the wire).
//!
//! The sample conversions are bit-exact with the ITU-T G.191 Software Tool Library
//! reference (`g711.c`: `ulaw_compress`, `ulaw_expand`, `alaw_compress`, `alaw_expand`),
//! which takes the 14 (µ-law) or 13 (A-law) most significant bits of a 16-bit sample and
//! uses the one's complement of negative samples.
//!
//! G.711 has no packet loss concealment of its own, so the decoder provides one: a lost
//! frame is replaced by repeating the last pitch period of the audio decoded before the
//! loss, fading by 6 dB per 20 ms of concealment and reaching silence after 60 ms; when real
//! audio resumes, the first 2.5 ms are cross-faded from the concealment. G.711 has no
//! forward error correction, so [`Decoder::recover`] conceals too.

use crate::media::codec::common::{CodecError, CodecKind, Decoder, Encoder};
use crate::media::dsp::resample::Resampler;
use crate::media::frame::FrameDuration;

/// The G.711 codec rate in Hz.
pub const G711_RATE: u32 = 8_000;

/// Which companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, RTP payload `PCMU` (North America, Japan).
    MuLaw,
    /// A-law, RTP payload `PCMA` (Europe and most of the world).
    ALaw,
}

impl Law {
    /// Compands one 16-bit linear sample to a G.711 code.
    #[inline]
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::MuLaw => ulaw_encode(sample),
            Law::ALaw => alaw_encode(sample),
        }
    }

    /// Expands one G.711 code to a 16-bit linear sample.
    #[inline]
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Law::MuLaw => ulaw_decode(code),
            Law::ALaw => alaw_decode(code),
        }
    }

    /// Compands `pcm` into `out` (sample for byte) and returns the count, the shorter of the two.
    pub fn encode_slice(self, pcm: &[i16], out: &mut [u8]) -> usize {
        let n = pcm.len().min(out.len());
        match self {
            Law::MuLaw => out.iter_mut().zip(pcm).for_each(|(o, &s)| *o = ulaw_encode(s)),
            Law::ALaw => out.iter_mut().zip(pcm).for_each(|(o, &s)| *o = alaw_encode(s)),
        }
        n
    }

    /// Expands `codes` into `out` and returns the count, the shorter of the two.
    pub fn decode_slice(self, codes: &[u8], out: &mut [i16]) -> usize {
        let n = codes.len().min(out.len());
        let table = match self {
            Law::MuLaw => &ULAW_DECODE,
            Law::ALaw => &ALAW_DECODE,
        };
        out.iter_mut().zip(codes).for_each(|(o, &c)| *o = table[usize::from(c)]);
        n
    }

    /// The codec this law is carried as in RTP.
    pub const fn kind(self) -> CodecKind {
        match self {
            Law::MuLaw => CodecKind::Pcmu,
            Law::ALaw => CodecKind::Pcma,
        }
    }
}

/// µ-law compression of one sample (G.191 `ulaw_compress`).
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    let x = i32::from(sample);
    // 14-bit magnitude (one's complement for negatives), biased by 33.
    let magnitude = if x < 0 { (!x) >> 2 } else { x >> 2 };
    let absno = (magnitude + 33).min(0x1FFF);
    // Segment number 1..=8: one plus the bit length of absno >> 6.
    let segno = 1 + (32 - (absno >> 6).leading_zeros()) as i32;
    let high = 8 - segno;
    let low = 0xF - ((absno >> segno) & 0xF);
    let code = ((high << 4) | low) as u8;
    if x >= 0 { code | 0x80 } else { code }
}

/// A-law compression of one sample (G.191 `alaw_compress`).
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    let x = i32::from(sample);
    // 12-bit magnitude, one's complement for negatives: 0..=2047.
    let mut ix = if x < 0 { (!x) >> 4 } else { x >> 4 };
    if ix > 15 {
        // Exponent 1..=7 is the bit length of ix minus 4; keep 4 mantissa bits.
        let exp = (32 - ix.leading_zeros()) as i32 - 4;
        ix = ((ix >> (exp - 1)) - 16) + (exp << 4);
    }
    if x >= 0 {
        ix |= 0x80;
    }
    (ix ^ 0x55) as u8
}

/// µ-law expansion of one code (G.191 `ulaw_expand`).
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

/// A-law expansion of one code (G.191 `alaw_expand`).
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

const fn ulaw_expand(code: u8) -> i16 {
    let inverted = !code;
    let exponent = ((inverted >> 4) & 0x07) as i32;
    let mantissa = (inverted & 0x0F) as i32;
    let step = 4 << (exponent + 1);
    let magnitude = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
    (if code < 0x80 { -magnitude } else { magnitude }) as i16
}

const fn alaw_expand(code: u8) -> i16 {
    let ix = ((code ^ 0x55) & 0x7F) as i32;
    let exponent = ix >> 4;
    let mut mantissa = ix & 0x0F;
    if exponent > 0 {
        mantissa += 16;
    }
    mantissa = (mantissa << 4) + 8;
    if exponent > 1 {
        mantissa <<= exponent - 1;
    }
    (if code > 127 { mantissa } else { -mantissa }) as i16
}

const fn build_table(law: Law) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = match law {
            Law::MuLaw => ulaw_expand(i as u8),
            Law::ALaw => alaw_expand(i as u8),
        };
        i += 1;
    }
    table
}

static ULAW_DECODE: [i16; 256] = build_table(Law::MuLaw);
static ALAW_DECODE: [i16; 256] = build_table(Law::ALaw);

/// 8 kHz samples in the largest frame.
const MAX_FRAME_8K: usize = FrameDuration::Ms20.samples_at(G711_RATE);
/// 48 kHz samples per 8 kHz sample.
const UPSAMPLE: usize = (crate::media::frame::SAMPLE_RATE / G711_RATE) as usize;

/// G.711 encoder: decimates one 48 kHz frame to 8 kHz and compands it (160 bytes per 20 ms).
#[derive(Debug)]
pub struct G711Encoder {
    law: Law,
    frame: FrameDuration,
    down: Resampler,
    buf: [i16; MAX_FRAME_8K],
}

impl G711Encoder {
    /// Creates an encoder for `law` taking `frame`-long 48 kHz frames.
    pub fn new(law: Law, frame: FrameDuration) -> Self {
        G711Encoder {
            law,
            frame,
            down: telephony_resampler(crate::media::frame::SAMPLE_RATE, G711_RATE),
            buf: [0; MAX_FRAME_8K],
        }
    }
}

/// The fixed 48 kHz <-> 8 kHz converters (always valid ratios).
fn telephony_resampler(from: u32, to: u32) -> Resampler {
    match Resampler::new(from, to) {
        Ok(r) => r,
        // Both ratios are constants that reduce to 6:1; construction cannot fail.
        Err(e) => unreachable!("telephony resampler {from}->{to}: {e}"),
    }
}

impl Encoder for G711Encoder {
    fn encode(&mut self, pcm48k: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        let expected = self.frame.samples();
        if pcm48k.len() != expected {
            return Err(CodecError::FrameLength { expected, actual: pcm48k.len() });
        }
        let bytes = self.frame.samples_at(G711_RATE);
        if out.len() < bytes {
            return Err(CodecError::OutputTooSmall { needed: bytes, available: out.len() });
        }
        let n = self
            .down
            .process(pcm48k, &mut self.buf)
            .map_err(|_| CodecError::Internal("G.711 decimator output size"))?;
        Ok(self.law.encode_slice(&self.buf[..n], out))
    }

    fn kind(&self) -> CodecKind {
        self.law.kind()
    }
}

/// G.711 decoder: expands a payload of any length and interpolates it to 48 kHz, with
/// pitch-repetition loss concealment (see the module docs).
#[derive(Debug)]
pub struct G711Decoder {
    law: Law,
    frame: FrameDuration,
    up: Resampler,
    buf: [i16; MAX_FRAME_8K],
    plc: Plc,
}

impl G711Decoder {
    /// Creates a decoder for `law`; `frame` is the length of one concealed frame.
    pub fn new(law: Law, frame: FrameDuration) -> Self {
        G711Decoder {
            law,
            frame,
            up: telephony_resampler(G711_RATE, crate::media::frame::SAMPLE_RATE),
            buf: [0; MAX_FRAME_8K],
            plc: Plc::new(),
        }
    }
}

impl Decoder for G711Decoder {
    fn decode(&mut self, payload: &[u8], out48k: &mut [i16]) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        let needed = payload.len().saturating_mul(UPSAMPLE);
        if out48k.len() < needed {
            return Err(CodecError::OutputTooSmall { needed, available: out48k.len() });
        }
        let mut written = 0;
        for chunk in payload.chunks(MAX_FRAME_8K) {
            let n = self.law.decode_slice(chunk, &mut self.buf);
            written += self
                .up
                .process(&self.buf[..n], &mut out48k[written..])
                .map_err(|_| CodecError::Internal("G.711 interpolator output size"))?;
        }
        self.plc.good_frame(&mut out48k[..written]);
        Ok(written)
    }

    fn conceal(&mut self, out48k: &mut [i16]) -> Result<usize, CodecError> {
        let n = self.frame.samples();
        let available = out48k.len();
        let out = out48k.get_mut(..n).ok_or(CodecError::OutputTooSmall { needed: n, available })?;
        self.plc.conceal(out);
        Ok(n)
    }

    fn recover(&mut self, _next_payload: &[u8], out48k: &mut [i16]) -> Result<usize, CodecError> {
        self.conceal(out48k)
    }

    fn kind(&self) -> CodecKind {
        self.law.kind()
    }
}

/// Samples of decoded history kept for concealment (20 ms at 48 kHz).
const PLC_HISTORY: usize = 960;
/// Shortest pitch period searched (400 Hz).
const PLC_MIN_PITCH: usize = 120;
/// Longest pitch period searched (about 67 Hz).
const PLC_MAX_PITCH: usize = 720;
/// Correlation window of the pitch search (5 ms).
const PLC_WINDOW: usize = PLC_HISTORY - PLC_MAX_PITCH;
/// Concealed samples per 6 dB of attenuation (20 ms).
const PLC_FADE_STEP: usize = 960;
/// Concealed samples after which the output is silent (60 ms).
const PLC_FADE_END: usize = 3 * PLC_FADE_STEP;
/// Cross-fade from concealment back to decoded audio (2.5 ms).
const PLC_CROSSFADE: usize = 120;

/// Pitch-repetition packet loss concealment over 48 kHz audio.
#[derive(Debug)]
struct Plc {
    /// The most recent decoded (not concealed) audio, newest sample last.
    history: Box<[i16]>,
    /// Whether `history` holds decoded audio yet.
    primed: bool,
    /// Samples concealed since the last decoded frame (0 when not concealing).
    concealed: usize,
    /// Pitch period in samples used for the current concealment.
    pitch: usize,
    /// Position in the repeated period of the next concealed sample.
    pos: usize,
}

impl Plc {
    fn new() -> Self {
        Plc {
            history: vec![0; PLC_HISTORY].into_boxed_slice(),
            primed: false,
            concealed: 0,
            pitch: PLC_MIN_PITCH,
            pos: 0,
        }
    }

    /// Gain after `c` concealed samples: -6 dB per fade step, linearly interpolated, then silence.
    fn gain(c: usize) -> f32 {
        if c >= PLC_FADE_END {
            return 0.0;
        }
        let step = c / PLC_FADE_STEP;
        let from = 0.5f32.powi(step as i32);
        let to = if step + 1 >= PLC_FADE_END / PLC_FADE_STEP { 0.0 } else { from * 0.5 };
        let frac = (c % PLC_FADE_STEP) as f32 / PLC_FADE_STEP as f32;
        from + (to - from) * frac
    }

    /// The next concealment sample (advances the repetition).
    fn next_sample(&mut self) -> f32 {
        let v = f32::from(self.history[PLC_HISTORY - self.pitch + self.pos]) * Self::gain(self.concealed);
        self.pos += 1;
        if self.pos == self.pitch {
            self.pos = 0;
        }
        self.concealed += 1;
        v
    }

    fn conceal(&mut self, out: &mut [i16]) {
        if !self.primed {
            out.fill(0);
            return;
        }
        if self.concealed == 0 {
            self.pitch = find_pitch(&self.history);
            self.pos = 0;
        }
        if self.concealed >= PLC_FADE_END {
            out.fill(0);
            self.concealed = self.concealed.saturating_add(out.len());
            return;
        }
        for o in out.iter_mut() {
            *o = self.next_sample() as i16;
        }
    }

    /// Records freshly decoded audio; after a concealment, cross-fades its start.
    fn good_frame(&mut self, out: &mut [i16]) {
        if self.concealed > 0 && self.primed {
            let n = out.len().min(PLC_CROSSFADE);
            for (i, o) in out[..n].iter_mut().enumerate() {
                let w = (i + 1) as f32 / (n + 1) as f32;
                let conceal = self.next_sample();
                *o = (f32::from(*o) * w + conceal * (1.0 - w)).round() as i16;
            }
        }
        self.concealed = 0;
        if out.len() >= PLC_HISTORY {
            self.history.copy_from_slice(&out[out.len() - PLC_HISTORY..]);
        } else {
            self.history.copy_within(out.len().., 0);
            self.history[PLC_HISTORY - out.len()..].copy_from_slice(out);
        }
        self.primed = true;
    }
}

/// Finds the pitch period of the end of `history` by normalized cross-correlation of the last
/// [`PLC_WINDOW`] samples with earlier ones: a coarse search on every 4th lag and sample,
/// then a refinement around the best coarse lag.
fn find_pitch(history: &[i16]) -> usize {
    let end = history.len();
    let target = &history[end - PLC_WINDOW..];
    let score = |lag: usize, stride: usize| -> f32 {
        let past = &history[end - PLC_WINDOW - lag..end - lag];
        let (mut corr, mut energy) = (0.0f32, 0.0f32);
        for i in (0..PLC_WINDOW).step_by(stride) {
            let (a, b) = (f32::from(target[i]), f32::from(past[i]));
            corr += a * b;
            energy += b * b;
        }
        if corr <= 0.0 || energy <= 0.0 { 0.0 } else { corr / energy.sqrt() }
    };
    let mut best = (PLC_MIN_PITCH, 0.0f32);
    for lag in (PLC_MIN_PITCH..=PLC_MAX_PITCH).step_by(4) {
        let s = score(lag, 4);
        if s > best.1 {
            best = (lag, s);
        }
    }
    let coarse = best.0;
    best = (coarse, 0.0);
    for lag in coarse.saturating_sub(3).max(PLC_MIN_PITCH)..=(coarse + 3).min(PLC_MAX_PITCH) {
        let s = score(lag, 1);
        if s > best.1 {
            best = (lag, s);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (linear input, µ-law code, A-law code) produced by the ITU-T G.191 STL reference.
    const ENCODE_TABLE: &[(i16, u8, u8)] = &[
        (0, 0xFF, 0xD5),
        (1, 0xFF, 0xD5),
        (-1, 0x7F, 0x55),
        (2, 0xFF, 0xD5),
        (-2, 0x7F, 0x55),
        (3, 0xFF, 0xD5),
        (-3, 0x7F, 0x55),
        (4, 0xFE, 0xD5),
        (-4, 0x7F, 0x55),
        (5, 0xFE, 0xD5),
        (-5, 0x7E, 0x55),
        (7, 0xFE, 0xD5),
        (-7, 0x7E, 0x55),
        (8, 0xFE, 0xD5),
        (-8, 0x7E, 0x55),
        (15, 0xFD, 0xD5),
        (-15, 0x7D, 0x55),
        (16, 0xFD, 0xD4),
        (-16, 0x7D, 0x55),
        (31, 0xFB, 0xD4),
        (-31, 0x7B, 0x54),
        (32, 0xFB, 0xD7),
        (-32, 0x7B, 0x54),
        (100, 0xF2, 0xD3),
        (-100, 0x73, 0x53),
        (127, 0xEF, 0xD2),
        (-128, 0x6F, 0x52),
        (131, 0xEF, 0xDD),
        (-132, 0x6F, 0x5D),
        (500, 0xDC, 0xCA),
        (-500, 0x5C, 0x4A),
        (1000, 0xCE, 0xFA),
        (-1000, 0x4E, 0x7A),
        (4095, 0xAF, 0x9A),
        (-4096, 0x2F, 0x1A),
        (8191, 0x9F, 0x8A),
        (-8192, 0x1F, 0x0A),
        (12345, 0x97, 0xBD),
        (-12345, 0x17, 0x3D),
        (30000, 0x82, 0xA8),
        (-30000, 0x02, 0x28),
        (32124, 0x80, 0xAA),
        (-32124, 0x00, 0x2A),
        (32256, 0x80, 0xAA),
        (-32256, 0x00, 0x2A),
        (32767, 0x80, 0xAA),
        (-32768, 0x00, 0x2A),
    ];

    /// (code, µ-law value, A-law value) from the G.191 STL reference expanders.
    const DECODE_TABLE: &[(u8, i16, i16)] = &[
        (0x00, -32124, -5504),
        (0x01, -31100, -5248),
        (0x0F, -16764, -6784),
        (0x10, -15996, -2752),
        (0x7E, -8, -880),
        (0x7F, 0, -848),
        (0x80, 32124, 5504),
        (0x81, 31100, 5248),
        (0xD5, 716, 8),
        (0x55, -716, -8),
        (0xAA, 5372, 32256),
        (0x2A, -5372, -32256),
        (0xEF, 132, 1696),
        (0xF0, 120, 688),
        (0xFE, 8, 880),
        (0xFF, 0, 848),
        (0x70, -120, -688),
        (0xF5, 80, 528),
    ];

    fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
        bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
    }

    #[test]
    fn known_values() {
        for &(x, u, a) in ENCODE_TABLE {
            assert_eq!(ulaw_encode(x), u, "µ-law encode {x}");
            assert_eq!(alaw_encode(x), a, "A-law encode {x}");
        }
        for &(c, u, a) in DECODE_TABLE {
            assert_eq!(ulaw_decode(c), u, "µ-law decode {c:#x}");
            assert_eq!(alaw_decode(c), a, "A-law decode {c:#x}");
        }
    }

    #[test]
    fn bit_exact_with_reference_over_all_inputs() {
        // FNV-1a over the codes of every 16-bit input (-32768..=32767) and over the 256
        // expanded values (little-endian), computed with the G.191 STL reference code.
        let all = || i16::MIN..=i16::MAX;
        assert_eq!(fnv(all().map(ulaw_encode)), 354_692_590_946_716_717);
        assert_eq!(fnv(all().map(alaw_encode)), 17_307_445_993_695_924_005);
        assert_eq!(fnv((0..=255u8).flat_map(|c| ulaw_decode(c).to_le_bytes())), 13_339_211_118_338_482_600);
        assert_eq!(fnv((0..=255u8).flat_map(|c| alaw_decode(c).to_le_bytes())), 7_582_444_160_614_126_245);
    }

    #[test]
    fn encode_of_decode_is_identity() {
        for c in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A-law {c:#x}");
            // µ-law has two zeros: 0x7F (-0) expands to 0, which compands to 0xFF (+0).
            let expected = if c == 0x7F { 0xFF } else { c };
            assert_eq!(ulaw_encode(ulaw_decode(c)), expected, "µ-law {c:#x}");
        }
    }

    #[test]
    fn companding_is_monotonic_and_close() {
        for law in [Law::MuLaw, Law::ALaw] {
            let mut prev = i16::MIN;
            for x in i16::MIN..=i16::MAX {
                let y = law.decode(law.encode(x));
                assert!(y >= prev, "{law:?} not monotonic at {x}");
                prev = y;
                // The largest quantization step is 1024 (top segment), so the error is at most
                // half of it, plus the clipping of the extreme values.
                let err = (i32::from(y) - i32::from(x)).abs();
                assert!(err <= 644, "{law:?} error {err} at {x}");
                // Above the low segments the relative error stays under 4.5 % (a half step,
                // a little more just below a segment boundary).
                if x.unsigned_abs() > 256 && x.unsigned_abs() < 32_000 {
                    assert!(err as f32 / f32::from(x.unsigned_abs()) < 0.045, "{law:?} {x} -> {y}");
                }
            }
        }
    }

    #[test]
    fn slices() {
        let pcm = [0i16, 1000, -1000, 32767];
        let mut codes = [0u8; 8];
        assert_eq!(Law::MuLaw.encode_slice(&pcm, &mut codes), 4);
        assert_eq!(&codes[..4], &[0xFF, 0xCE, 0x4E, 0x80]);
        let mut out = [0i16; 2];
        assert_eq!(Law::MuLaw.decode_slice(&codes[..4], &mut out), 2);
        assert_eq!(out, [0, 988]);
        assert_eq!(Law::ALaw.kind(), CodecKind::Pcma);
    }

    fn tone(freq: f64, start: usize, len: usize, amp: f64) -> Vec<i16> {
        (start..start + len)
            .map(|n| (amp * (2.0 * std::f64::consts::PI * freq * n as f64 / 48_000.0).sin()) as i16)
            .collect()
    }

    fn goertzel_amplitude(x: &[i16], freq: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / 48_000.0;
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &v in x {
            let s = f64::from(v) + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        (s1 * s1 + s2 * s2 - coeff * s1 * s2).sqrt() * 2.0 / x.len() as f64
    }

    #[test]
    fn codec_round_trip_keeps_a_tone() {
        for law in [Law::MuLaw, Law::ALaw] {
            let mut enc = G711Encoder::new(law, FrameDuration::Ms20);
            let mut dec = G711Decoder::new(law, FrameDuration::Ms20);
            let mut payload = [0u8; 160];
            let mut out = [0i16; 960];
            for f in 0..10 {
                let pcm = tone(1000.0, f * 960, 960, 10_000.0);
                assert_eq!(enc.encode(&pcm, &mut payload).unwrap(), 160);
                assert_eq!(dec.decode(&payload, &mut out).unwrap(), 960);
            }
            let amp = goertzel_amplitude(&out, 1000.0);
            assert!((amp / 10_000.0 - 1.0).abs() < 0.05, "{law:?}: 1 kHz amplitude {amp}");
            // Payloads of other lengths (30 ms) decode too.
            let mut long = [0i16; 1440];
            assert_eq!(dec.decode(&[0xFF; 240], &mut long).unwrap(), 1440);
            assert!(matches!(dec.decode(&[0xFF; 241], &mut long), Err(CodecError::OutputTooSmall { .. })));
        }
    }

    #[test]
    fn concealment_repeats_then_fades_to_silence() {
        let mut enc = G711Encoder::new(Law::MuLaw, FrameDuration::Ms20);
        let mut dec = G711Decoder::new(Law::MuLaw, FrameDuration::Ms20);
        let mut payload = [0u8; 160];
        let mut out = [0i16; 960];
        // Concealing before any audio gives silence.
        assert_eq!(dec.conceal(&mut out).unwrap(), 960);
        assert!(out.iter().all(|&s| s == 0));
        for f in 0..5 {
            enc.encode(&tone(250.0, f * 960, 960, 8_000.0), &mut payload).unwrap();
            dec.decode(&payload, &mut out).unwrap();
        }
        let mut concealed = Vec::new();
        for _ in 0..4 {
            dec.recover(&payload, &mut out).unwrap();
            concealed.push(out);
        }
        let level = |x: &[i16]| goertzel_amplitude(x, 250.0);
        // First frame fades from 0 dB to -6 dB: average amplitude ≈ 0.75.
        assert!(level(&concealed[0]) > 0.6 * 8_000.0, "first concealed frame {}", level(&concealed[0]));
        assert!(level(&concealed[1]) < level(&concealed[0]) * 0.6);
        assert!(level(&concealed[2]) < level(&concealed[1]) * 0.6);
        assert!(concealed[3].iter().all(|&s| s == 0), "silent after 60 ms");
    }

    #[test]
    fn concealment_and_resume_are_smooth() {
        let mut enc = G711Encoder::new(Law::ALaw, FrameDuration::Ms20);
        let mut dec = G711Decoder::new(Law::ALaw, FrameDuration::Ms20);
        let mut payload = [0u8; 160];
        let mut out = [0i16; 960];
        let mut played = Vec::new();
        for f in 0..12 {
            enc.encode(&tone(210.0, f * 960, 960, 8_000.0), &mut payload).unwrap();
            if f == 6 || f == 7 {
                dec.conceal(&mut out).unwrap();
            } else {
                dec.decode(&payload, &mut out).unwrap();
            }
            played.extend_from_slice(&out);
        }
        // A 210 Hz tone at amplitude 8000 moves at most ~220 per sample; concealment seams
        // and the resume cross-fade must not add clicks much larger than that.
        let max_step = played.windows(2).skip(960).map(|w| (i32::from(w[1]) - i32::from(w[0])).abs()).max().unwrap();
        assert!(max_step < 700, "largest sample step {max_step}");
    }

    #[test]
    fn pitch_search_finds_the_period() {
        let hist = tone(200.0, 0, PLC_HISTORY, 9_000.0);
        let p = find_pitch(&hist);
        assert!(p.abs_diff(240) <= 1 || p.abs_diff(480) <= 1, "pitch {p}");
        let silent = [0i16; PLC_HISTORY];
        assert!((PLC_MIN_PITCH..=PLC_MAX_PITCH).contains(&find_pitch(&silent)));
    }

    #[test]
    fn ten_ms_frames() {
        let mut enc = G711Encoder::new(Law::MuLaw, FrameDuration::Ms10);
        let mut dec = G711Decoder::new(Law::MuLaw, FrameDuration::Ms10);
        let mut payload = [0u8; 160];
        let mut out = [0i16; 960];
        assert_eq!(enc.encode(&tone(1000.0, 0, 480, 5000.0), &mut payload).unwrap(), 80);
        assert_eq!(dec.decode(&payload[..80], &mut out).unwrap(), 480);
        assert_eq!(dec.conceal(&mut out).unwrap(), 480);
    }
}
