//! The per-frame audio work of one call, as plain structs with no I/O and
//! no clock reads, so it can be benchmarked and tested alone:
//! - [`SendPipeline`]: source → mute → encoder → RTP packet fields;
//! - [`ReceivePipeline`]: RTP → jitter buffer → decoder (with PLC / FEC) →
//!   meter → mute and volume → sink.
//!
//! Nothing here allocates per frame: buffers are sized at construction.

use std::time::Instant;

use crate::media::codec::common::{CodecError, CodecKind, Decoder, Encoder, decoder, encoder};
use crate::media::dsp::meter::{FrameAnalysis, Meter, MeterConfig, MeterHandle};
use crate::media::frame::FrameDuration;
use crate::media::io::sink::AudioSink;
use crate::media::io::source::AudioSource;
use crate::media::receive::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};

/// The receive meter computes the dominant frequency every this many frames
/// unless a frequency is tracked (see [`MeterConfig::spectrum_interval`]).
const RECEIVE_SPECTRUM_INTERVAL: u32 = 25;

/// Largest RTP payload we produce.
const MAX_PAYLOAD: usize = 1500;

/// One RTP packet's worth of fields, borrowed from the pipeline.
#[derive(Debug, PartialEq, Eq)]
pub struct RtpOut<'a> {
    /// Payload type.
    pub payload_type: u8,
    /// Timestamp in the codec's clock.
    pub timestamp: u32,
    /// Marker bit (first packet of a talk spurt).
    pub marker: bool,
    /// Encoded audio.
    pub payload: &'a [u8],
}

/// Send-side counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Frames taken from the source.
    pub frames: u64,
    /// Packets produced.
    pub packets: u64,
    /// Payload bytes produced.
    pub bytes: u64,
    /// Frames the encoder failed on (skipped).
    pub encode_errors: u64,
    /// The source has ended (a non-looping file played out).
    pub source_ended: bool,
}

/// Source → encoder → RTP.
pub struct SendPipeline {
    source: Box<dyn AudioSource>,
    encoder: Box<dyn Encoder>,
    pcm: Vec<i16>,
    payload: Vec<u8>,
    payload_type: u8,
    timestamp: u32,
    timestamp_step: u32,
    first: bool,
    muted: bool,
    stats: SendStats,
}

impl SendPipeline {
    /// A pipeline sending `source` with `codec` on `payload_type`, starting
    /// at the given (random) RTP timestamp. Sequence numbers belong to the
    /// peer connection, which numbers only the packets it really sends.
    pub fn new(
        source: Box<dyn AudioSource>,
        codec: CodecKind,
        payload_type: u8,
        frame: FrameDuration,
        first_timestamp: u32,
    ) -> Result<SendPipeline, CodecError> {
        let encoder = encoder(codec, frame)?;
        Ok(SendPipeline {
            source,
            timestamp_step: encoder.rtp_timestamp_increment(frame),
            encoder,
            pcm: vec![0; frame.samples()],
            payload: vec![0; MAX_PAYLOAD],
            payload_type,
            timestamp: first_timestamp,
            first: true,
            muted: false,
            stats: SendStats::default(),
        })
    }

    /// Sends silence instead of the source while muted (the source keeps
    /// its place: a file is not paused).
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    /// Switches to another codec and payload type (a renegotiation); the
    /// RTP timestamp continues and the next packet has the marker bit.
    pub fn set_codec(&mut self, codec: CodecKind, payload_type: u8, frame: FrameDuration) -> Result<(), CodecError> {
        let encoder = encoder(codec, frame)?;
        self.timestamp_step = encoder.rtp_timestamp_increment(frame);
        self.encoder = encoder;
        self.payload_type = payload_type;
        self.first = true;
        Ok(())
    }

    /// Replaces the source.
    pub fn set_source(&mut self, source: Box<dyn AudioSource>) {
        self.source = source;
        self.stats.source_ended = false;
    }

    /// Counters so far.
    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// The RTP timestamp the next packet will carry.
    pub fn next_timestamp(&self) -> u32 {
        self.timestamp
    }

    /// The RTP clock rate's timestamp step per frame.
    pub fn timestamp_step(&self) -> u32 {
        self.timestamp_step
    }

    /// The samples of the last frame produced (after mute and overlay):
    /// what the far end hears.
    pub fn last_frame(&self) -> &[i16] {
        &self.pcm
    }

    /// Produces the next frame's packet. On an encoder error the frame is
    /// skipped (its timestamp still advances, as for silence suppression).
    pub fn next_packet(&mut self) -> Result<RtpOut<'_>, CodecError> {
        self.next_packet_with(|_| {})
    }

    /// As [`next_packet`](Self::next_packet), with `overlay` applied to the
    /// frame's samples (after mute) before it is encoded: in-band DTMF.
    pub fn next_packet_with(&mut self, overlay: impl FnOnce(&mut [i16])) -> Result<RtpOut<'_>, CodecError> {
        let more = self.source.read(&mut self.pcm);
        self.stats.source_ended |= !more;
        if self.muted {
            self.pcm.fill(0);
        }
        overlay(&mut self.pcm);
        self.stats.frames += 1;
        let timestamp = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(self.timestamp_step);
        let len = match self.encoder.encode(&self.pcm, &mut self.payload) {
            Ok(n) => n,
            Err(e) => {
                self.stats.encode_errors += 1;
                return Err(e);
            }
        };
        let marker = std::mem::take(&mut self.first);
        self.stats.packets += 1;
        self.stats.bytes += len as u64;
        Ok(RtpOut { payload_type: self.payload_type, timestamp, marker, payload: &self.payload[..len] })
    }
}

/// Receive-side counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReceiveStats {
    /// Audio packets handed to the jitter buffer.
    pub packets: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Packets of another payload type (telephone-event, comfort noise...).
    pub other_payload_types: u64,
    /// Frames decoded from a packet.
    pub frames_decoded: u64,
    /// Frames recovered from the next packet's in-band FEC.
    pub frames_recovered: u64,
    /// Frames concealed (PLC, or fade for G.711).
    pub frames_concealed: u64,
    /// Frames of silence while the buffer fills.
    pub frames_waiting: u64,
    /// Decoder errors (the frame is concealed instead).
    pub decode_errors: u64,
    /// The jitter buffer's own figures.
    pub jitter: JitterStats,
}

/// RTP → jitter buffer → decoder → meter → volume → sink.
pub struct ReceivePipeline {
    jitter: JitterBuffer,
    decoder: Box<dyn Decoder>,
    payload_type: u8,
    pcm: Vec<i16>,
    sink: Box<dyn AudioSink>,
    meter: Meter,
    muted: bool,
    /// Linear gain in 1/1024 steps (1024 = unity).
    gain: i32,
    stats: ReceiveStats,
    first_packet: Option<Instant>,
    first_audio: Option<Instant>,
    /// Sequence numbers taken by packets that are not audio (telephone-events
    /// on the same SSRC): audio packets are renumbered past them, so the
    /// jitter buffer never counts them as lost.
    seq_offset: u16,
    /// In-band DTMF detection on the decoded audio, when asked for.
    dtmf: Option<crate::dtmf::goertzel::Detector>,
}

impl ReceivePipeline {
    /// A pipeline decoding `codec` from `payload_type` into `sink`.
    pub fn new(
        sink: Box<dyn AudioSink>,
        codec: CodecKind,
        payload_type: u8,
        frame: FrameDuration,
        jitter: JitterConfig,
    ) -> Result<ReceivePipeline, CodecError> {
        Ok(ReceivePipeline {
            jitter: JitterBuffer::new(jitter),
            decoder: decoder(codec, frame)?,
            payload_type,
            pcm: vec![0; frame.samples()],
            sink,
            meter: Meter::with_config(MeterConfig {
                spectrum_interval: RECEIVE_SPECTRUM_INTERVAL,
                ..MeterConfig::default()
            }),
            muted: false,
            gain: 1024,
            stats: ReceiveStats::default(),
            first_packet: None,
            first_audio: None,
            seq_offset: 0,
            dtmf: None,
        })
    }

    /// Switches to another codec and payload type (a renegotiation): a new
    /// decoder, and the jitter buffer starts over with `jitter` (its
    /// counters are kept). Packets of the old payload type no longer play.
    pub fn set_codec(
        &mut self,
        codec: CodecKind,
        payload_type: u8,
        frame: FrameDuration,
        jitter: JitterConfig,
    ) -> Result<(), CodecError> {
        self.decoder = decoder(codec, frame)?;
        self.payload_type = payload_type;
        self.jitter.reconfigure(jitter);
        Ok(())
    }

    /// Replaces the sink.
    pub fn set_sink(&mut self, sink: Box<dyn AudioSink>) {
        self.sink = sink;
    }

    /// A handle on the meter of what arrives (before mute and volume).
    pub fn meter(&self) -> MeterHandle {
        self.meter.handle()
    }

    /// Stops playing what arrives (it is still decoded and metered).
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    /// Playback volume, 0.0 (silent) to 1.0 (as received); up to 4.0 amplifies.
    pub fn set_volume(&mut self, volume: f32) {
        self.gain = (volume.clamp(0.0, 4.0) * 1024.0).round() as i32;
    }

    /// Counters so far.
    pub fn stats(&self) -> ReceiveStats {
        ReceiveStats { jitter: self.jitter.stats(), ..self.stats }
    }

    /// Whether the next tick would find no packet to play while playing
    /// (see [`JitterBuffer::awaiting_next`]).
    pub fn awaiting_next(&self) -> bool {
        self.jitter.awaiting_next()
    }

    /// When the first packet of the audio's payload type arrived.
    pub fn first_packet(&self) -> Option<Instant> {
        self.first_packet
    }

    /// When non-silent audio was first played out.
    pub fn first_audio(&self) -> Option<Instant> {
        self.first_audio
    }

    /// Starts tracking how often `hz` is the dominant frequency heard.
    pub fn track(&mut self, hz: f64) {
        self.meter.track(hz);
    }

    /// Share of non-silent frames in which `hz` (tracked) was dominant.
    pub fn tracked_ratio(&self, hz: f64) -> Option<f64> {
        self.meter.tracked_ratio(hz)
    }

    /// A packet of the audio's SSRC that is not audio (a telephone-event)
    /// took a sequence number: the audio packets after it are numbered as if
    /// it had not been sent, so its number is not a lost audio packet.
    pub fn skip_sequence(&mut self) {
        self.stats.other_payload_types += 1;
        self.seq_offset = self.seq_offset.wrapping_add(1);
    }

    /// Turns in-band DTMF detection on the decoded audio on or off.
    pub fn set_dtmf_detection(&mut self, on: bool) {
        match (on, self.dtmf.is_some()) {
            (true, false) => self.dtmf = Some(crate::dtmf::goertzel::Detector::new(crate::media::frame::SAMPLE_RATE)),
            (false, true) => self.dtmf = None,
            _ => {}
        }
    }

    /// The next digit the in-band detector heard end.
    pub fn poll_dtmf(&mut self) -> Option<crate::dtmf::goertzel::Detected> {
        self.dtmf.as_mut()?.poll_digit()
    }

    /// A received RTP packet.
    pub fn push_packet(&mut self, payload_type: u8, sequence: u16, timestamp: u32, payload: &[u8], arrival: Instant) {
        if payload_type != self.payload_type {
            self.stats.other_payload_types += 1;
            return;
        }
        let sequence = sequence.wrapping_sub(self.seq_offset);
        self.stats.packets += 1;
        self.stats.bytes += payload.len() as u64;
        self.first_packet.get_or_insert(arrival);
        // Whatever the buffer does with it is counted in its stats.
        let _ = self.jitter.insert(sequence, timestamp, payload, arrival);
    }

    /// The samples of the last frame played (volume and mute applied).
    pub fn last_frame(&self) -> &[i16] {
        &self.pcm
    }

    /// One frame tick: plays out one frame into the sink. Returns the
    /// meter's analysis of it.
    pub fn tick(&mut self, now: Instant) -> FrameAnalysis {
        let decoded = match self.jitter.pop(now) {
            Playout::Frame(payload) => match self.decoder.decode(payload, &mut self.pcm) {
                Ok(n) => {
                    self.stats.frames_decoded += 1;
                    Some(n)
                }
                Err(_) => {
                    self.stats.decode_errors += 1;
                    self.decoder.conceal(&mut self.pcm).ok()
                }
            },
            Playout::Lost { next: Some(next) } => {
                self.stats.frames_recovered += 1;
                self.decoder.recover(next, &mut self.pcm).ok()
            }
            Playout::Lost { next: None } => {
                self.stats.frames_concealed += 1;
                self.decoder.conceal(&mut self.pcm).ok()
            }
            Playout::Waiting => {
                self.stats.frames_waiting += 1;
                None
            }
        };
        match decoded {
            // A shorter packet (10 ms in a 20 ms pipeline) must not replay the last frame's tail.
            Some(n) if n < self.pcm.len() => self.pcm[n..].fill(0),
            Some(_) => {}
            None => self.pcm.fill(0),
        }
        let analysis = self.meter.process(&self.pcm);
        if let Some(d) = self.dtmf.as_mut() {
            d.handle_samples(&self.pcm);
        }
        if !analysis.silent && self.first_audio.is_none() {
            self.first_audio = Some(now);
        }
        if self.muted {
            self.pcm.fill(0);
        } else if self.gain != 1024 {
            for s in &mut self.pcm {
                *s = ((i32::from(*s) * self.gain) >> 10).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
            }
        }
        self.sink.write(&self.pcm);
        analysis
    }
}
