//! The codec abstraction: which codecs exist ([`CodecKind`]), the [`Encoder`] and
//! [`Decoder`] traits that every codec implements over 48 kHz mono PCM, the factory
//! functions [`encoder`] and [`decoder`], and the shared [`CodecError`].
//!
//! Encoders take exactly one frame of 48 kHz PCM and write one RTP payload; decoders
//! take one RTP payload and write 48 kHz PCM. Codecs that run at another clock rate
//! (G.711 at 8 kHz) resample internally, so callers only ever see 48 kHz audio.

use std::fmt;

use crate::media::codec::g711::{G711Decoder, G711Encoder, Law};
use crate::media::codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use crate::media::frame::FrameDuration;

/// The audio codecs this crate can encode and decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// Opus (RFC 6716, RTP payload format RFC 7587), 48 kHz.
    Opus,
    /// G.711 µ-law (PCMU), 8 kHz.
    Pcmu,
    /// G.711 A-law (PCMA), 8 kHz.
    Pcma,
}

impl CodecKind {
    /// The RTP clock rate in Hz: 48000 for Opus, 8000 for G.711.
    pub const fn clock_rate(self) -> u32 {
        match self {
            CodecKind::Opus => 48_000,
            CodecKind::Pcmu | CodecKind::Pcma => 8_000,
        }
    }

    /// The encoding name used in SDP `a=rtpmap` lines (`opus`, `PCMU`, `PCMA`).
    pub const fn rtp_name(self) -> &'static str {
        match self {
            CodecKind::Opus => "opus",
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
        }
    }

    /// The number of channels announced in SDP: RFC 7587 requires `opus/48000/2` even for
    /// mono streams; G.711 is mono.
    pub const fn sdp_channels(self) -> u8 {
        match self {
            CodecKind::Opus => 2,
            CodecKind::Pcmu | CodecKind::Pcma => 1,
        }
    }

    /// The default RTP payload type: 111 (dynamic, the WebRTC convention) for Opus, and the
    /// static types 0 for PCMU and 8 for PCMA (RFC 3551).
    pub const fn default_payload_type(self) -> u8 {
        match self {
            CodecKind::Opus => 111,
            CodecKind::Pcmu => 0,
            CodecKind::Pcma => 8,
        }
    }

    /// Looks a codec up by its SDP encoding name, ignoring ASCII case.
    pub fn from_rtp_name(name: &str) -> Option<Self> {
        [CodecKind::Opus, CodecKind::Pcmu, CodecKind::Pcma]
            .into_iter()
            .find(|k| k.rtp_name().eq_ignore_ascii_case(name))
    }

    /// RTP timestamp units covered by one frame of `frame` duration at this codec's clock rate.
    pub const fn timestamp_increment(self, frame: FrameDuration) -> u32 {
        self.clock_rate() / 1000 * frame.millis()
    }
}

impl fmt::Display for CodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rtp_name())
    }
}

/// Why an encode or decode call failed.
///
/// Every variant is cheap to build (no allocation), so errors on hostile input cost nothing
/// extra on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The PCM input was not exactly one frame long.
    #[error("expected {expected} PCM samples per frame, got {actual}")]
    FrameLength {
        /// Samples one frame must have.
        expected: usize,
        /// Samples that were passed.
        actual: usize,
    },
    /// The caller's output buffer is too small for the result.
    #[error("output buffer too small: need {needed}, have {available}")]
    OutputTooSmall {
        /// Elements (bytes or samples) the result needs.
        needed: usize,
        /// Elements the buffer has.
        available: usize,
    },
    /// The RTP payload was empty.
    #[error("empty payload")]
    EmptyPayload,
    /// The payload could not be decoded (corrupt or not of this codec).
    #[error("invalid payload: {0}")]
    InvalidPayload(&'static str),
    /// A codec setting was out of range or the codec refused it.
    #[error("invalid codec configuration: {0}")]
    Config(&'static str),
    /// The codec library reported an internal failure.
    #[error("codec failure: {0}")]
    Internal(&'static str),
}

/// Encodes frames of 48 kHz mono PCM into RTP payloads of one codec.
pub trait Encoder: Send {
    /// Encodes exactly one frame (`FrameDuration::samples()` samples of 48 kHz PCM) into
    /// `out` and returns the payload length in bytes.
    ///
    /// # Errors
    /// [`CodecError::FrameLength`] when `pcm48k` is not one frame long,
    /// [`CodecError::OutputTooSmall`] when `out` cannot hold the payload, or a codec failure.
    fn encode(&mut self, pcm48k: &[i16], out: &mut [u8]) -> Result<usize, CodecError>;

    /// Which codec this is.
    fn kind(&self) -> CodecKind;

    /// How far the RTP timestamp advances per frame of `frame` duration (960 for Opus at
    /// 20 ms, 160 for G.711 at 20 ms).
    fn rtp_timestamp_increment(&self, frame: FrameDuration) -> u32 {
        self.kind().timestamp_increment(frame)
    }
}

/// Decodes RTP payloads of one codec into 48 kHz mono PCM, with loss concealment.
pub trait Decoder: Send {
    /// Decodes one payload into `out48k` and returns the number of samples written.
    ///
    /// # Errors
    /// [`CodecError::EmptyPayload`], [`CodecError::InvalidPayload`] for data the codec
    /// rejects, or [`CodecError::OutputTooSmall`] when the payload holds more audio than
    /// `out48k` can take. The decoder stays usable after an error; callers usually
    /// [`conceal`](Decoder::conceal) instead.
    fn decode(&mut self, payload: &[u8], out48k: &mut [i16]) -> Result<usize, CodecError>;

    /// Conceals one lost frame (packet loss concealment): writes one frame of plausible
    /// audio continuing what was played before, fading to silence over longer losses.
    /// Returns the number of samples written (one frame).
    ///
    /// # Errors
    /// [`CodecError::OutputTooSmall`] when `out48k` is shorter than one frame.
    fn conceal(&mut self, out48k: &mut [i16]) -> Result<usize, CodecError>;

    /// Recovers the lost frame that precedes `next_payload` from the in-band forward error
    /// correction data carried in `next_payload` when the codec has it (Opus with FEC), else
    /// conceals it like [`conceal`](Decoder::conceal). `next_payload` itself is not
    /// consumed: decode it normally afterwards. Returns the number of samples written.
    ///
    /// # Errors
    /// [`CodecError::OutputTooSmall`] when `out48k` is shorter than one frame.
    fn recover(&mut self, next_payload: &[u8], out48k: &mut [i16]) -> Result<usize, CodecError>;

    /// Which codec this is.
    fn kind(&self) -> CodecKind;
}

/// Creates an encoder for `kind` producing `frame`-long packets, with default settings
/// (for Opus: [`OpusConfig::default`]).
///
/// # Errors
/// [`CodecError::Internal`] or [`CodecError::Config`] if the codec library refuses to
/// create an encoder (for Opus: out of memory).
pub fn encoder(kind: CodecKind, frame: FrameDuration) -> Result<Box<dyn Encoder>, CodecError> {
    Ok(match kind {
        CodecKind::Opus => Box::new(OpusEncoder::new(frame, &OpusConfig::default())?),
        CodecKind::Pcmu => Box::new(G711Encoder::new(Law::MuLaw, frame)),
        CodecKind::Pcma => Box::new(G711Encoder::new(Law::ALaw, frame)),
    })
}

/// Creates a decoder for `kind`; `frame` is the duration of one concealed frame.
///
/// # Errors
/// [`CodecError::Internal`] if the codec library refuses to create a decoder.
pub fn decoder(kind: CodecKind, frame: FrameDuration) -> Result<Box<dyn Decoder>, CodecError> {
    Ok(match kind {
        CodecKind::Opus => Box::new(OpusDecoder::new(frame)?),
        CodecKind::Pcmu => Box::new(G711Decoder::new(Law::MuLaw, frame)),
        CodecKind::Pcma => Box::new(G711Decoder::new(Law::ALaw, frame)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_checks_offers_for_exactly_our_codecs() {
        let ours = [CodecKind::Opus, CodecKind::Pcmu, CodecKind::Pcma];
        assert_eq!(crate::contract::AUDIO_ENCODINGS, ours.map(CodecKind::rtp_name));
    }

    #[test]
    fn kind_constants() {
        assert_eq!(CodecKind::Opus.clock_rate(), 48_000);
        assert_eq!(CodecKind::Pcmu.clock_rate(), 8_000);
        assert_eq!(CodecKind::Pcma.clock_rate(), 8_000);
        assert_eq!(CodecKind::Opus.default_payload_type(), 111);
        assert_eq!(CodecKind::Pcmu.default_payload_type(), 0);
        assert_eq!(CodecKind::Pcma.default_payload_type(), 8);
        assert_eq!(CodecKind::Opus.rtp_name(), "opus");
        assert_eq!(CodecKind::from_rtp_name("pcmu"), Some(CodecKind::Pcmu));
        assert_eq!(CodecKind::from_rtp_name("G722"), None);
        assert_eq!(CodecKind::Pcma.to_string(), "PCMA");
    }

    #[test]
    fn timestamp_increments() {
        for kind in [CodecKind::Opus, CodecKind::Pcmu, CodecKind::Pcma] {
            let enc = encoder(kind, FrameDuration::Ms20).unwrap();
            assert_eq!(enc.kind(), kind);
            let expected = if kind == CodecKind::Opus { 960 } else { 160 };
            assert_eq!(enc.rtp_timestamp_increment(FrameDuration::Ms20), expected);
            assert_eq!(enc.rtp_timestamp_increment(FrameDuration::Ms10), expected / 2);
        }
    }

    #[test]
    fn every_codec_round_trips_one_frame() {
        for kind in [CodecKind::Opus, CodecKind::Pcmu, CodecKind::Pcma] {
            for frame in [FrameDuration::Ms10, FrameDuration::Ms20] {
                let mut enc = encoder(kind, frame).unwrap();
                let mut dec = decoder(kind, frame).unwrap();
                assert_eq!(dec.kind(), kind);
                let pcm: Vec<i16> = (0..frame.samples()).map(|i| ((i as f32 * 0.13).sin() * 8000.0) as i16).collect();
                let mut payload = [0u8; 1500];
                let mut out = vec![0i16; frame.samples()];
                for _ in 0..3 {
                    let n = enc.encode(&pcm, &mut payload).unwrap();
                    assert!(n > 0);
                    assert_eq!(dec.decode(&payload[..n], &mut out).unwrap(), frame.samples());
                }
                assert_eq!(dec.conceal(&mut out).unwrap(), frame.samples());
                let n = enc.encode(&pcm, &mut payload).unwrap();
                assert_eq!(dec.recover(&payload[..n], &mut out).unwrap(), frame.samples());
                // Wrong frame lengths and short buffers are errors, not panics.
                assert!(matches!(enc.encode(&pcm[1..], &mut payload), Err(CodecError::FrameLength { .. })));
                assert!(enc.encode(&pcm, &mut payload[..0]).is_err());
                assert!(matches!(dec.conceal(&mut out[..10]), Err(CodecError::OutputTooSmall { .. })));
                assert_eq!(dec.decode(&[], &mut out), Err(CodecError::EmptyPayload));
            }
        }
    }
}
