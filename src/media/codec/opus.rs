//! The Opus codec (RFC 6716) over the system libopus, through the `audiopus` binding:
//! [`OpusEncoder`] and [`OpusDecoder`], configured by [`OpusConfig`].
//!
//! Both run at 48 kHz mono, so no resampling is involved. The encoder uses the VoIP
//! application mode with in-band forward error correction (LBRR) on and an expected
//! packet loss of 10 % by default, which makes every packet carry a low-bitrate copy of the
//! previous frame. The decoder exposes the three ways of producing a frame: normal
//! decoding, packet loss concealment (libopus PLC), and recovery of a lost frame from the
//! FEC data in the packet that follows it.
//!
//! Payloads are validated (packet structure and duration) before libopus decodes them, and
//! libopus itself rejects malformed packets, so arbitrary bytes from the network produce a
//! [`CodecError`], never a panic.

use audiopus::coder::{Decoder as RawDecoder, Encoder as RawEncoder};
use audiopus::packet::Packet;
use audiopus::{Application, Bitrate, Channels, ErrorCode, MutSignals, SampleRate, Signal};

use crate::media::codec::common::{CodecError, CodecKind, Decoder, Encoder};
use crate::media::frame::FrameDuration;

/// The largest Opus packet duration (120 ms) in samples at 48 kHz.
pub const MAX_PACKET_SAMPLES: usize = 5760;

/// The largest useful encoder output buffer (libopus' recommended maximum packet size).
pub const MAX_PACKET_BYTES: usize = 4000;

/// Opus encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusConfig {
    /// Target bitrate in bits per second, 6 000 ..= 510 000. Default 32 000.
    pub bitrate: u32,
    /// Computational complexity 0 ..= 10 (higher: better quality, more CPU). Default 5.
    pub complexity: u8,
    /// Expected packet loss in percent, 0 ..= 100: the more, the more bits go to FEC.
    /// Default 10.
    pub expected_loss_percent: u8,
    /// In-band forward error correction. Default on.
    pub fec: bool,
    /// Discontinuous transmission (tiny packets during silence). Default off.
    pub dtx: bool,
}

impl Default for OpusConfig {
    fn default() -> Self {
        OpusConfig { bitrate: 32_000, complexity: 5, expected_loss_percent: 10, fec: true, dtx: false }
    }
}

impl OpusConfig {
    fn validate(&self) -> Result<(), CodecError> {
        if !(6_000..=510_000).contains(&self.bitrate) {
            return Err(CodecError::Config("Opus bitrate must be 6000..=510000 bit/s"));
        }
        if self.complexity > 10 {
            return Err(CodecError::Config("Opus complexity must be 0..=10"));
        }
        if self.expected_loss_percent > 100 {
            return Err(CodecError::Config("expected packet loss must be 0..=100 %"));
        }
        Ok(())
    }
}

/// Maps an `audiopus` error to a [`CodecError`] without allocating.
fn map_error(e: audiopus::Error) -> CodecError {
    match e {
        audiopus::Error::EmptyPacket => CodecError::EmptyPayload,
        audiopus::Error::Opus(ErrorCode::InvalidPacket) => CodecError::InvalidPayload("corrupt Opus packet"),
        audiopus::Error::Opus(ErrorCode::BufferTooSmall) => {
            CodecError::InvalidPayload("Opus packet longer than the output buffer")
        }
        audiopus::Error::Opus(ErrorCode::BadArgument) => CodecError::Config("Opus rejected an argument"),
        audiopus::Error::Opus(ErrorCode::AllocFail) => CodecError::Internal("Opus could not allocate memory"),
        audiopus::Error::Opus(_) => CodecError::Internal("Opus internal error"),
        audiopus::Error::PacketTooLarge => CodecError::InvalidPayload("Opus packet too large"),
        audiopus::Error::SignalsTooLarge => CodecError::OutputTooSmall { needed: 0, available: 0 },
        _ => CodecError::Config("invalid Opus setting"),
    }
}

/// Opus encoder: one frame of 48 kHz mono PCM in, one Opus packet out.
#[derive(Debug)]
pub struct OpusEncoder {
    inner: RawEncoder,
    frame: FrameDuration,
}

impl OpusEncoder {
    /// Creates an encoder for `frame`-long frames with `config`.
    ///
    /// # Errors
    /// [`CodecError::Config`] for out-of-range settings, [`CodecError::Internal`] if libopus
    /// cannot create the encoder.
    pub fn new(frame: FrameDuration, config: &OpusConfig) -> Result<Self, CodecError> {
        config.validate()?;
        let inner = RawEncoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip).map_err(map_error)?;
        let mut encoder = OpusEncoder { inner, frame };
        encoder.inner.set_signal(Signal::Voice).map_err(map_error)?;
        encoder.inner.set_inband_fec(config.fec).map_err(map_error)?;
        encoder.inner.set_dtx(config.dtx).map_err(map_error)?;
        encoder.set_bitrate(config.bitrate)?;
        encoder.set_complexity(config.complexity)?;
        encoder.set_expected_loss(config.expected_loss_percent)?;
        Ok(encoder)
    }

    /// Changes the target bitrate (bits per second, 6 000 ..= 510 000).
    ///
    /// # Errors
    /// [`CodecError::Config`] when out of range.
    pub fn set_bitrate(&mut self, bitrate: u32) -> Result<(), CodecError> {
        OpusConfig { bitrate, ..OpusConfig::default() }.validate()?;
        let bps = i32::try_from(bitrate).map_err(|_| CodecError::Config("Opus bitrate out of range"))?;
        self.inner.set_bitrate(Bitrate::BitsPerSecond(bps)).map_err(map_error)
    }

    /// Changes the complexity (0 ..= 10).
    ///
    /// # Errors
    /// [`CodecError::Config`] when out of range.
    pub fn set_complexity(&mut self, complexity: u8) -> Result<(), CodecError> {
        OpusConfig { complexity, ..OpusConfig::default() }.validate()?;
        self.inner.set_complexity(complexity).map_err(map_error)
    }

    /// Changes the expected packet loss (0 ..= 100 %), e.g. from RTCP receiver reports.
    ///
    /// # Errors
    /// [`CodecError::Config`] when out of range.
    pub fn set_expected_loss(&mut self, percent: u8) -> Result<(), CodecError> {
        OpusConfig { expected_loss_percent: percent, ..OpusConfig::default() }.validate()?;
        self.inner.set_packet_loss_perc(percent).map_err(map_error)
    }
}

impl Encoder for OpusEncoder {
    fn encode(&mut self, pcm48k: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        let expected = self.frame.samples();
        if pcm48k.len() != expected {
            return Err(CodecError::FrameLength { expected, actual: pcm48k.len() });
        }
        if out.is_empty() {
            return Err(CodecError::OutputTooSmall { needed: 1, available: 0 });
        }
        let len = out.len().min(MAX_PACKET_BYTES);
        self.inner.encode(pcm48k, &mut out[..len]).map_err(map_error)
    }

    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }
}

/// Opus decoder: packets of any Opus duration in, 48 kHz mono PCM out, with PLC and FEC.
#[derive(Debug)]
pub struct OpusDecoder {
    inner: RawDecoder,
    frame: FrameDuration,
}

impl OpusDecoder {
    /// Creates a decoder; `frame` is the length of one concealed or recovered frame.
    ///
    /// # Errors
    /// [`CodecError::Internal`] if libopus cannot create the decoder.
    pub fn new(frame: FrameDuration) -> Result<Self, CodecError> {
        let inner = RawDecoder::new(SampleRate::Hz48000, Channels::Mono).map_err(map_error)?;
        Ok(OpusDecoder { inner, frame })
    }

    /// The first `frame.samples()` samples of `out`, or an error when it is shorter.
    fn frame_slice<'a>(&self, out: &'a mut [i16]) -> Result<&'a mut [i16], CodecError> {
        let n = self.frame.samples();
        let available = out.len();
        out.get_mut(..n).ok_or(CodecError::OutputTooSmall { needed: n, available })
    }
}

impl Decoder for OpusDecoder {
    fn decode(&mut self, payload: &[u8], out48k: &mut [i16]) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        // Parse the TOC and frame count first: rejects malformed packets and tells exactly how
        // much output the packet needs.
        let needed = audiopus::packet::nb_samples(Packet::try_from(payload).map_err(map_error)?, SampleRate::Hz48000)
            .map_err(map_error)?;
        if needed == 0 {
            return Err(CodecError::InvalidPayload("Opus packet without frames"));
        }
        if needed > out48k.len() {
            return Err(CodecError::OutputTooSmall { needed, available: out48k.len() });
        }
        let signals = MutSignals::try_from(&mut out48k[..needed]).map_err(map_error)?;
        let packet = Packet::try_from(payload).map_err(map_error)?;
        self.inner.decode(Some(packet), signals, false).map_err(map_error)
    }

    fn conceal(&mut self, out48k: &mut [i16]) -> Result<usize, CodecError> {
        let out = self.frame_slice(out48k)?;
        let signals = MutSignals::try_from(out).map_err(map_error)?;
        self.inner.decode(None, signals, false).map_err(map_error)
    }

    fn recover(&mut self, next_payload: &[u8], out48k: &mut [i16]) -> Result<usize, CodecError> {
        let Ok(packet) = Packet::try_from(next_payload) else {
            return self.conceal(out48k);
        };
        let out = self.frame_slice(out48k)?;
        let signals = MutSignals::try_from(out).map_err(map_error)?;
        // libopus decodes the LBRR copy of the previous frame carried in `packet` (and falls
        // back to PLC itself when the packet carries none). A corrupt packet: plain PLC.
        match self.inner.decode(Some(packet), signals, true) {
            Ok(n) => Ok(n),
            Err(_) => self.conceal(out48k),
        }
    }

    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::f64::consts::PI;

    fn tone(freq: f64, start: usize, len: usize, amp: f64) -> Vec<i16> {
        (start..start + len).map(|n| (amp * (2.0 * PI * freq * n as f64 / 48_000.0).sin()) as i16).collect()
    }

    /// Amplitude of the `freq` component of `x` (Goertzel).
    fn amplitude_at(x: &[i16], freq: f64) -> f64 {
        let w = 2.0 * PI * freq / 48_000.0;
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &v in x {
            let s = f64::from(v) + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0).sqrt() * 2.0 / x.len() as f64
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn tone_survives_encode_decode() {
        for frame in [FrameDuration::Ms20, FrameDuration::Ms10] {
            let n = frame.samples();
            let mut enc = OpusEncoder::new(frame, &OpusConfig::default()).unwrap();
            let mut dec = OpusDecoder::new(frame).unwrap();
            let mut packet = [0u8; 1500];
            let mut out = vec![0i16; n];
            let mut decoded = Vec::new();
            for f in 0..50 {
                let len = enc.encode(&tone(1000.0, f * n, n, 10_000.0), &mut packet).unwrap();
                assert!(len > 0 && len < 400, "packet of {len} bytes");
                assert_eq!(dec.decode(&packet[..len], &mut out).unwrap(), n);
                decoded.extend_from_slice(&out);
            }
            let tail = &decoded[decoded.len() - 4800..];
            let amp = amplitude_at(tail, 1000.0);
            assert!(amp > 8_000.0 && amp < 12_000.0, "{frame:?}: 1 kHz amplitude {amp}");
            // Nearly all the energy is the tone.
            let tone_power = amp * amp / 2.0;
            assert!(tone_power / rms(tail).powi(2) > 0.95);
            assert!(amplitude_at(tail, 3000.0) < 300.0);
        }
    }

    #[test]
    fn fec_recovers_a_lost_frame() {
        // A tone that changes pitch exactly at the lost frame: concealment can only continue
        // the old pitch, while FEC carries the new one.
        let frame = FrameDuration::Ms20;
        let mut enc = OpusEncoder::new(frame, &OpusConfig::default()).unwrap();
        let mut packets = Vec::new();
        for f in 0..30 {
            let freq = if f < 20 { 440.0 } else { 880.0 };
            let mut p = [0u8; 1500];
            let len = enc.encode(&tone(freq, f * 960, 960, 10_000.0), &mut p).unwrap();
            packets.push(p[..len].to_vec());
        }
        let mut with_fec = OpusDecoder::new(frame).unwrap();
        let mut with_plc = OpusDecoder::new(frame).unwrap();
        let mut out = [0i16; 960];
        for p in &packets[..20] {
            with_fec.decode(p, &mut out).unwrap();
            with_plc.decode(p, &mut out).unwrap();
        }
        // Packet 20 is lost.
        let mut recovered = [0i16; 960];
        assert_eq!(with_fec.recover(&packets[21], &mut recovered).unwrap(), 960);
        let mut concealed = [0i16; 960];
        assert_eq!(with_plc.conceal(&mut concealed).unwrap(), 960);
        assert!(rms(&recovered) > 2_000.0, "recovered frame is nearly silent: rms {}", rms(&recovered));
        let fec_880 = amplitude_at(&recovered[480..], 880.0);
        let plc_880 = amplitude_at(&concealed[480..], 880.0);
        assert!(fec_880 > 3_000.0 && fec_880 > 3.0 * plc_880, "FEC 880 Hz {fec_880}, PLC 880 Hz {plc_880}");
        // Decoding continues normally with the packet that carried the FEC.
        assert_eq!(with_fec.decode(&packets[21], &mut out).unwrap(), 960);
        assert!(amplitude_at(&out, 880.0) > 5_000.0);
    }

    #[test]
    fn concealment_produces_audio_then_recovers() {
        let mut enc = OpusEncoder::new(FrameDuration::Ms20, &OpusConfig::default()).unwrap();
        let mut dec = OpusDecoder::new(FrameDuration::Ms20).unwrap();
        let mut p = [0u8; 1500];
        let mut out = [0i16; 960];
        for f in 0..10 {
            let len = enc.encode(&tone(500.0, f * 960, 960, 10_000.0), &mut p).unwrap();
            dec.decode(&p[..len], &mut out).unwrap();
        }
        assert_eq!(dec.conceal(&mut out).unwrap(), 960);
        assert!(rms(&out) > 1_000.0);
        // An empty "next" payload cannot carry FEC: plain concealment.
        assert_eq!(dec.recover(&[], &mut out).unwrap(), 960);
        // So can garbage.
        assert_eq!(dec.recover(&[0xFF], &mut out).unwrap(), 960);
    }

    #[test]
    fn invalid_packets_are_errors() {
        let mut dec = OpusDecoder::new(FrameDuration::Ms20).unwrap();
        let mut out = [0i16; 960];
        assert_eq!(dec.decode(&[], &mut out), Err(CodecError::EmptyPayload));
        // Code 3 (arbitrary frame count) without its count byte.
        assert!(matches!(dec.decode(&[0x03], &mut out), Err(CodecError::InvalidPayload(_))));
        // Code 1 (two equal frames) with an odd remainder.
        assert!(matches!(dec.decode(&[0x01, 0x00], &mut out), Err(CodecError::InvalidPayload(_))));
        // Code 3 with zero frames.
        assert!(matches!(dec.decode(&[0x03, 0x00], &mut out), Err(CodecError::InvalidPayload(_))));
        // Code 2 whose first-frame length runs past the end.
        assert!(matches!(dec.decode(&[0x02, 0xF0, 0x01], &mut out), Err(CodecError::InvalidPayload(_))));
        // 120 ms (two 60 ms SILK frames) does not fit a 20 ms buffer.
        assert_eq!(
            dec.decode(&[0x1B, 0x02, 0x00, 0x00], &mut out),
            Err(CodecError::OutputTooSmall { needed: 5760, available: 960 })
        );
        // The decoder still works afterwards.
        assert_eq!(dec.conceal(&mut out).unwrap(), 960);
    }

    #[test]
    fn bad_configuration_is_rejected() {
        let bad = [
            OpusConfig { bitrate: 100, ..OpusConfig::default() },
            OpusConfig { complexity: 11, ..OpusConfig::default() },
            OpusConfig { expected_loss_percent: 101, ..OpusConfig::default() },
        ];
        for config in bad {
            assert!(matches!(OpusEncoder::new(FrameDuration::Ms20, &config), Err(CodecError::Config(_))));
        }
        let mut enc =
            OpusEncoder::new(FrameDuration::Ms20, &OpusConfig { complexity: 10, ..OpusConfig::default() }).unwrap();
        enc.set_bitrate(64_000).unwrap();
        enc.set_expected_loss(0).unwrap();
        assert!(enc.set_bitrate(1_000_000).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..600), short in any::<bool>()) {
            let mut dec = OpusDecoder::new(FrameDuration::Ms20).unwrap();
            let mut big = [0i16; MAX_PACKET_SAMPLES];
            let out: &mut [i16] = if short { &mut big[..960] } else { &mut big };
            let len = out.len();
            match dec.decode(&payload, out) {
                Ok(n) => prop_assert!(n <= len && n % 120 == 0),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            prop_assert_eq!(dec.recover(&payload, out).unwrap(), 960);
            prop_assert_eq!(dec.conceal(out).unwrap(), 960);
        }
    }
}
