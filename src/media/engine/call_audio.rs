//! One call's audio as a state machine without I/O: [`CallAudio`] owns the
//! send and receive pipelines, the playout clock, the impairment stage and
//! the quality monitor, and is driven by inputs that carry the time; it
//! reads no clock, opens no socket and spawns nothing. The engine's audio
//! task is a thin shell around it (see `engine`).
//!
//! Time is [`tokio::time::Instant`], the one clock of the audio path, so the
//! machine and its shell both run on tokio's paused clock in tests.
//!
//! # The drive loop
//!
//! Inputs are `handle_*`, outputs `poll_*`. After every input, drain the
//! outputs, then sleep until [`CallAudio::poll_timeout`] or the next input:
//!
//! ```ignore
//! loop {
//!     while let Some(p) = audio.poll_transmit() { peer.send_rtp(p.payload_type, p.marker, p.timestamp, p.payload).await; }
//!     while let Some(e) = audio.poll_event() { report(e); }
//!     if audio.stats_due() { audio.publish_stats(&mut shared_stats, now); }
//!     select! {
//!         () = sleep_until(audio.poll_timeout()) => audio.handle_timeout(Instant::now()),
//!         p = rtp.recv() => audio.handle_rtp(p, arrival),
//!         c = controls.recv() => audio.handle_control(c),
//!     }
//! }
//! ```
//!
//! [`handle_timeout`](CallAudio::handle_timeout) runs at most one frame of
//! each clock (send, playout) per call: when the shell was late, `poll_timeout`
//! is already past and the next call catches up (a burst, as
//! `MissedTickBehavior::Burst`), with a transmit drained in between.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::contract::MediaDirection;
use crate::dtmf::rfc4733::{self, PAYLOAD_LEN};
use crate::dtmf::{DtmfMethod, DtmfStep};
use crate::media::codec::common::CodecError;
use crate::media::dsp::meter::{DBFS_FLOOR, FrameAnalysis};
use crate::media::engine::call_dtmf::{Dtmf, Sending};
use crate::media::engine::pipeline::{ReceivePipeline, RtpOut, SendPipeline};
use crate::media::frame::FrameDuration;
use crate::media::io::recording::Recorder;
use crate::media::io::sink::AudioSink;
use crate::media::io::source::AudioSource;
use crate::media::receive::impairment::ImpairmentStage;
use crate::media::receive::jitter::JitterConfig;
use crate::media::receive::playout::PlayoutClock;
use crate::media::receive::quality::{QualityAlert, QualityMonitor, QualitySample};
use crate::media::rtc::peer::{Codec, Negotiated, RtpIn};
use crate::media::setup::{BuiltAudio, MediaConfig};
use crate::media::stats::CallStats;

/// How long a playout tick may wait for a packet that is due but not yet
/// here, before concealing (at most a quarter frame, so never a late tick).
const PLAYOUT_GRACE: Duration = Duration::from_millis(4);

/// Send ticks between two quality checks (one second with 20 ms frames).
const QUALITY_TICKS: u64 = 50;

/// Send ticks between two stats publications.
const STATS_TICKS: u64 = 5;

/// How long the received audio must stay silent before the dominant
/// frequency heard is forgotten.
const DOMINANT_HOLD: Duration = Duration::from_millis(500);

/// Largest RTP payload the send pipeline produces.
const MAX_PAYLOAD: usize = 1500;

/// A change of a running call's audio, applied from the next frame on.
pub(crate) enum AudioControl {
    /// Send silence instead of the source (or stop).
    MuteSend(bool),
    /// Stop playing what arrives (it is still decoded and metered).
    MuteReceive(bool),
    /// Playback volume, 0.0 to 4.0.
    Volume(f32),
    /// Send this source from now on.
    Source(Box<dyn AudioSource>),
    /// We hold the call (`true`) or resumed it: while held the peer hears
    /// the hold source, or silence.
    LocalHold(bool),
    /// Play into this sink from now on.
    Sink(Box<dyn AudioSink>),
    /// Send these DTMF steps by `method`, after every digit queued before
    /// (the call's one DTMF queue, see `call_dtmf`).
    Dtmf { steps: Vec<DtmfStep>, method: DtmfMethod },
    /// Record both directions into this from now on (`None`: stop
    /// recording; dropping the recorder completes its file).
    Record(Option<Recorder>),
}

impl std::fmt::Debug for AudioControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AudioControl::MuteSend(m) => f.debug_tuple("MuteSend").field(m).finish(),
            AudioControl::MuteReceive(m) => f.debug_tuple("MuteReceive").field(m).finish(),
            AudioControl::Volume(v) => f.debug_tuple("Volume").field(v).finish(),
            AudioControl::Source(_) => f.write_str("Source(..)"),
            AudioControl::LocalHold(h) => f.debug_tuple("LocalHold").field(h).finish(),
            AudioControl::Sink(_) => f.write_str("Sink(..)"),
            AudioControl::Dtmf { steps, method } => {
                f.debug_struct("Dtmf").field("steps", steps).field("method", method).finish()
            }
            AudioControl::Record(r) => f.debug_tuple("Record").field(&r.is_some()).finish(),
        }
    }
}

/// What happened in a call's audio.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AudioEvent {
    /// A quality threshold was passed or is back to normal.
    Quality(QualityAlert),
    /// The send source ran out (a non-looping file played to its end);
    /// raised once per source.
    SourceEnded,
    /// A DTMF digit was received (RFC 4733 or heard in-band), when it ended.
    DtmfReceived { digit: char, duration_ms: u32, method: DtmfMethod },
    /// A DTMF digit was sent (its last end packet, or its last tone sample).
    DtmfSent { digit: char, method: DtmfMethod },
    /// A DTMF digit to send by SIP INFO: its turn in the call's queue came,
    /// send the INFO now.
    DtmfInfoDue { digit: char, duration_ms: u32 },
}

/// A packet waiting in [`CallAudio::poll_transmit`].
#[derive(Clone, Copy)]
struct PendingPacket {
    payload_type: u8,
    timestamp: u32,
    marker: bool,
    len: usize,
}

impl PendingPacket {
    /// Copies an encoded packet's payload into `buffer` (it outlives the
    /// pipeline's borrow) and describes it.
    fn stage(p: &RtpOut<'_>, buffer: &mut [u8]) -> PendingPacket {
        let len = p.payload.len().min(buffer.len());
        buffer[..len].copy_from_slice(&p.payload[..len]);
        PendingPacket { payload_type: p.payload_type, timestamp: p.timestamp, marker: p.marker, len }
    }
}

/// One call's audio (see the module docs).
pub(crate) struct CallAudio {
    frame: FrameDuration,
    jitter: JitterConfig,
    codec: Codec,
    direction: MediaDirection,
    send: SendPipeline,
    recv: ReceivePipeline,
    tracked: Vec<f64>,
    connected_at: Instant,

    /// When the next send tick is due.
    next_send: Instant,
    /// When the next playout tick is due; `None` until the first packet.
    playout_due: Option<Instant>,
    /// While a playout tick waits a moment for its packet: until when.
    grace_until: Option<Instant>,
    clock: PlayoutClock,
    impairment: Option<ImpairmentStage<RtpIn>>,
    quality: QualityMonitor,

    send_ticks: u64,
    ticks: u64,
    late_ticks: u64,
    last_analysis: FrameAnalysis,
    /// The dominant frequency heard, kept over short silences.
    dominant_hz: Option<f64>,
    /// Since when the received audio has been silent.
    silent_since: Option<Instant>,
    source_end_reported: bool,

    pending: Option<PendingPacket>,
    payload: Vec<u8>,
    events: VecDeque<AudioEvent>,
    stats_due: bool,
    dtmf: Dtmf,
    /// We hold the call: the hold source (or silence) replaces the source.
    local_hold: bool,
    hold_source: Option<Box<dyn AudioSource>>,
    /// Where both directions are recorded, while they are.
    recorder: Option<Recorder>,
    /// Frames dropped by recorders that were stopped.
    recording_dropped: u64,
}

impl CallAudio {
    /// A call's audio, connected at `now`, sending `audio.source` with the
    /// negotiated codec from RTP timestamp `first_timestamp` on.
    pub(crate) fn new(
        cfg: &MediaConfig,
        negotiated: Negotiated,
        audio: BuiltAudio,
        first_timestamp: u32,
        now: Instant,
    ) -> Result<CallAudio, CodecError> {
        let frame = cfg.frame;
        let codec = negotiated.codec;
        let jitter = JitterConfig {
            min_delay: cfg.jitter_min,
            max_delay: cfg.jitter_max,
            initial_delay: cfg.jitter_initial,
            ..JitterConfig::new(frame, codec.clock_rate)
        };
        let BuiltAudio { source, sink, tracked, detect_dtmf, hold } = audio;
        let dtmf = Dtmf::new(&negotiated, detect_dtmf);
        let send = SendPipeline::new(source, codec.kind, codec.payload_type, frame, first_timestamp)?;
        let mut recv = ReceivePipeline::new(
            sink,
            codec.kind,
            codec.payload_type,
            frame,
            JitterConfig { clock_rate: codec.clock_rate, ..jitter },
        )?;
        for hz in &tracked {
            recv.track(*hz);
        }
        recv.set_dtmf_detection(dtmf.detecting());
        Ok(CallAudio {
            frame,
            jitter,
            codec,
            direction: negotiated.direction,
            send,
            recv,
            tracked,
            connected_at: now,
            next_send: now,
            playout_due: None,
            grace_until: None,
            clock: PlayoutClock::new(frame.duration(), cfg.playout_margin),
            impairment: cfg.impairment.map(ImpairmentStage::new),
            quality: QualityMonitor::new(cfg.quality, now.into_std()),
            send_ticks: 0,
            ticks: 0,
            late_ticks: 0,
            last_analysis: FrameAnalysis { index: 0, level_dbfs: DBFS_FLOOR, peak: 0, silent: true, dominant_hz: None },
            dominant_hz: None,
            silent_since: None,
            source_end_reported: false,
            pending: None,
            payload: vec![0; MAX_PAYLOAD],
            events: VecDeque::with_capacity(8),
            stats_due: true,
            dtmf,
            local_hold: false,
            hold_source: hold,
            recorder: None,
            recording_dropped: 0,
        })
    }

    /// The codec in use.
    pub(crate) fn codec(&self) -> Codec {
        self.codec
    }

    // ---- inputs ------------------------------------------------------------------------------

    /// Runs what is due at `now`: at most one send tick, the impaired
    /// packets due, and at most one playout tick.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_send {
            self.send_tick(now);
        }
        if let Some(stage) = self.impairment.as_mut() {
            let mut delivered = false;
            while let Some((p, at)) = stage.pop_due(now.into_std()) {
                deliver(&mut self.recv, &mut self.clock, &mut self.dtmf, self.codec.payload_type, &p, at);
                delivered = true;
            }
            if delivered {
                self.after_delivery(now);
            }
        }
        if self.playout_due.is_some_and(|due| now >= due) {
            self.playout_tick(now);
        }
        if self.dtmf.next_timeout().is_some_and(|t| now >= t) {
            self.dtmf.handle_timeout(now);
            self.dtmf.drain_received(&mut self.events);
        }
    }

    /// A received RTP packet that arrived at `arrival` (through the
    /// impairment stage when one is configured).
    pub(crate) fn handle_rtp(&mut self, packet: RtpIn, arrival: Instant) {
        match self.impairment.as_mut() {
            Some(stage) => {
                if let Some((p, at)) = stage.push(packet, arrival.into_std()) {
                    deliver(&mut self.recv, &mut self.clock, &mut self.dtmf, self.codec.payload_type, &p, at);
                    self.after_delivery(arrival);
                }
            }
            None => {
                deliver(
                    &mut self.recv,
                    &mut self.clock,
                    &mut self.dtmf,
                    self.codec.payload_type,
                    &packet,
                    arrival.into_std(),
                );
                self.after_delivery(arrival);
            }
        }
        self.dtmf.drain_received(&mut self.events);
    }

    /// A change of mute, volume, source or sink: it applies from the next frame on.
    pub(crate) fn handle_control(&mut self, control: AudioControl) {
        match control {
            AudioControl::MuteSend(m) => self.send.set_muted(m),
            AudioControl::LocalHold(h) => self.local_hold = h,
            AudioControl::MuteReceive(m) => self.recv.set_muted(m),
            AudioControl::Volume(v) => self.recv.set_volume(v),
            AudioControl::Source(s) => {
                self.send.set_source(s);
                self.source_end_reported = false;
            }
            AudioControl::Sink(s) => self.recv.set_sink(s),
            AudioControl::Dtmf { steps, method } => self.dtmf.push(steps, method),
            AudioControl::Record(recorder) => {
                if let Some(old) = std::mem::replace(&mut self.recorder, recorder) {
                    self.recording_dropped += old.dropped();
                }
            }
        }
    }

    /// A completed renegotiation (a re-INVITE either way): the codec and
    /// payload type, and the direction, apply from the next frame on. A
    /// codec change restarts the jitter buffer (its counters are kept).
    ///
    /// # Errors
    ///
    /// The new codec could not be set up; the audio keeps the old one.
    pub(crate) fn handle_negotiated(&mut self, negotiated: Negotiated, now: Instant) -> Result<(), CodecError> {
        let was_receiving = self.direction.has_recv();
        self.direction = negotiated.direction;
        if !was_receiving && self.direction.has_recv() {
            // Nothing was expected while on hold: judge silence from now on.
            self.quality = QualityMonitor::new(*self.quality.thresholds(), now.into_std());
        }
        self.dtmf.negotiated(&negotiated);
        self.recv.set_dtmf_detection(self.dtmf.detecting());
        let c = negotiated.codec;
        if c != self.codec {
            let jitter = JitterConfig { clock_rate: c.clock_rate, ..self.jitter };
            self.send.set_codec(c.kind, c.payload_type, self.frame)?;
            self.recv.set_codec(c.kind, c.payload_type, self.frame, jitter)?;
            tracing::debug!(from = ?self.codec, to = ?c, "codec renegotiated");
            self.codec = c;
            self.stats_due = true;
        }
        Ok(())
    }

    // ---- outputs -----------------------------------------------------------------------------

    /// When [`handle_timeout`](Self::handle_timeout) must run next.
    pub(crate) fn poll_timeout(&self) -> Instant {
        let mut at = self.next_send;
        if let Some(due) = self.playout_due {
            at = at.min(due);
        }
        if let Some(due) = self.impairment.as_ref().and_then(|s| s.next_due()) {
            at = at.min(Instant::from_std(due));
        }
        if let Some(due) = self.dtmf.next_timeout() {
            at = at.min(due);
        }
        at
    }

    /// The packet the last send tick produced, once.
    pub(crate) fn poll_transmit(&mut self) -> Option<RtpOut<'_>> {
        let p = self.pending.take()?;
        Some(RtpOut {
            payload_type: p.payload_type,
            timestamp: p.timestamp,
            marker: p.marker,
            payload: &self.payload[..p.len],
        })
    }

    /// The next event, oldest first.
    pub(crate) fn poll_event(&mut self) -> Option<AudioEvent> {
        self.events.pop_front()
    }

    /// Whether the figures changed enough to be published (every few frames).
    pub(crate) fn stats_due(&self) -> bool {
        self.stats_due
    }

    /// Writes the current figures into `out` (no allocation once `out` has
    /// its codec name and tracked list).
    pub(crate) fn publish_stats(&mut self, out: &mut CallStats, now: Instant) {
        self.stats_due = false;
        let name = self.codec.kind.rtp_name();
        if out.codec.as_deref() != Some(name) {
            out.codec = Some(name.to_string());
        }
        out.media_connected = Some(self.connected_at.into_std());
        out.update(&self.send.stats(), &self.recv, &self.tracked, self.dominant_hz, self.last_analysis.level_dbfs, now);
        out.audio_ticks = self.ticks;
        out.late_ticks = self.late_ticks;
        out.playout_adjustments = self.clock.adjustments();
        out.impairment_dropped = self.impairment.as_ref().map_or(0, |i| i.stats().dropped);
        out.recording_dropped_frames = self.recording_dropped + self.recorder.as_ref().map_or(0, Recorder::dropped);
    }

    // ---- the frame clocks --------------------------------------------------------------------

    fn send_tick(&mut self, now: Instant) {
        let due = self.next_send;
        self.next_send = due + self.frame.duration();
        self.send_ticks += 1;
        self.ticks += 1;
        if now.saturating_duration_since(due) > self.frame.duration() / 2 {
            self.late_ticks += 1;
        }
        self.dtmf.start_next(now, self.send.next_timestamp(), self.direction.has_send(), &mut self.events);
        if self.direction.has_send() {
            let frame = self.frame.duration();
            let mut finished = false;
            match self.dtmf.current.as_mut() {
                Some(Sending::Event { .. }) => {
                    // RFC 4733: the event replaces the audio; the audio still runs
                    // (source position, timestamps) but is not sent.
                    let _ = self.send.next_packet();
                    let sender = self.dtmf.sender.as_mut();
                    if let (Some(packet), Some((pt, _))) = (sender.and_then(|s| s.tick(frame)), self.dtmf.send_te) {
                        self.payload[..PAYLOAD_LEN].copy_from_slice(&packet.payload.encode());
                        self.pending = Some(PendingPacket {
                            payload_type: pt,
                            timestamp: packet.timestamp,
                            marker: packet.marker,
                            len: PAYLOAD_LEN,
                        });
                    }
                    finished = !self.dtmf.sender.as_ref().is_some_and(rfc4733::Sender::is_busy);
                }
                Some(Sending::Tone { tone, .. }) => {
                    // In-band: the tone replaces the source for the frame.
                    if let Ok(p) = self.send.next_packet_with(|pcm| {
                        tone.fill(pcm);
                    }) {
                        self.pending = Some(PendingPacket::stage(&p, &mut self.payload));
                    }
                    finished = tone.is_done();
                }
                // Encoder failures are counted in SendStats, not logged per frame.
                None if self.local_hold => {
                    let hold = &mut self.hold_source;
                    let packet = self.send.next_packet_with(|pcm| match hold {
                        Some(music) => {
                            music.read(pcm);
                        }
                        None => pcm.fill(0),
                    });
                    if let Ok(p) = packet {
                        self.pending = Some(PendingPacket::stage(&p, &mut self.payload));
                    }
                }
                None => {
                    if let Ok(p) = self.send.next_packet() {
                        self.pending = Some(PendingPacket::stage(&p, &mut self.payload));
                    }
                }
            }
            if let Some(recorder) = self.recorder.as_mut() {
                recorder.local(self.send.last_frame());
            }
            if finished {
                self.dtmf.finish(now, frame, &mut self.events);
            }
            if self.send.stats().source_ended && !self.source_end_reported {
                self.source_end_reported = true;
                self.events.push_back(AudioEvent::SourceEnded);
            }
        }
        if self.send_ticks.is_multiple_of(STATS_TICKS) {
            self.stats_due = true;
        }
        if self.send_ticks.is_multiple_of(QUALITY_TICKS) && self.direction.has_recv() {
            let r = self.recv.stats();
            let sample = QualitySample {
                expected: r.jitter.played + r.jitter.lost,
                lost: r.jitter.lost,
                jitter_ms: r.jitter.jitter_ms,
                packets: r.packets,
            };
            let events = &mut self.events;
            self.quality.observe(now.into_std(), sample, |alert| events.push_back(AudioEvent::Quality(alert)));
        }
    }

    fn playout_tick(&mut self, now: Instant) {
        let frame = self.frame.duration();
        if self.recv.awaiting_next() && self.grace_until.is_none() {
            // The packet for this tick is not here yet: give it a moment (a hiccup of
            // either side's scheduler) rather than conceal a frame and add a frame of delay.
            let until = now + (frame / 4).min(PLAYOUT_GRACE);
            self.grace_until = Some(until);
            self.playout_due = Some(until);
            return;
        }
        self.grace_until = None;
        self.ticks += 1;
        if let Some(due) = self.clock.on_tick()
            && now.into_std().saturating_duration_since(due) > frame / 2
        {
            self.late_ticks += 1;
        }
        let a = self.recv.tick(now.into_std());
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.remote(self.recv.last_frame());
        }
        while let Some(d) = self.recv.poll_dtmf() {
            self.events.push_back(AudioEvent::DtmfReceived {
                digit: d.digit,
                duration_ms: d.duration_ms,
                method: DtmfMethod::Inband,
            });
        }
        if a.dominant_hz.is_some() {
            self.dominant_hz = a.dominant_hz;
        }
        if a.silent {
            let since = *self.silent_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= DOMINANT_HOLD {
                self.dominant_hz = None;
            }
        } else {
            self.silent_since = None;
        }
        self.last_analysis = a;
        self.playout_due = self.clock.next_tick().map(Instant::from_std);
    }

    /// After packets reached the jitter buffer: start the playout clock, or
    /// end a grace wait that got its packet.
    fn after_delivery(&mut self, now: Instant) {
        if self.playout_due.is_none() {
            self.playout_due = self.clock.next_tick().map(Instant::from_std);
        } else if self.grace_until.is_some() && !self.recv.awaiting_next() {
            // What the tick was waiting for came: play it now.
            self.playout_due = Some(now);
        }
    }
}

/// Hands a received packet to the jitter buffer and its arrival to the
/// playout clock; a telephone-event goes to its RFC 4733 receiver instead
/// (never into the jitter buffer or its loss counters).
fn deliver(
    recv: &mut ReceivePipeline,
    clock: &mut PlayoutClock,
    dtmf: &mut Dtmf,
    audio_pt: u8,
    p: &RtpIn,
    arrival: std::time::Instant,
) {
    if p.payload_type != audio_pt
        && let Some(r) = dtmf.receiver(p.payload_type)
    {
        r.handle_packet(p.timestamp, p.marker, &p.payload, arrival);
        recv.skip_sequence();
        return;
    }
    recv.push_packet(p.payload_type, p.sequence, p.timestamp, &p.payload, arrival);
    if p.payload_type == audio_pt {
        clock.on_packet(arrival);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::dtmf::symbol;
    use crate::media::codec::common::CodecKind;
    use crate::media::io::sink::NullSink;
    use crate::media::io::source::{Silence, Tone};

    const OPUS: Codec = Codec { kind: CodecKind::Opus, payload_type: 111, clock_rate: 48_000 };
    const PCMU: Codec = Codec { kind: CodecKind::Pcmu, payload_type: 0, clock_rate: 8_000 };
    const FRAME: Duration = Duration::from_millis(20);

    fn negotiated(codec: Codec) -> Negotiated {
        Negotiated {
            codec,
            telephone_event_pt: None,
            telephone_event_rate: None,
            telephone_events_received: [None; 2],
            direction: MediaDirection::SendRecv,
        }
    }

    fn machine(source: Box<dyn AudioSource>, codec: Codec, now: Instant) -> CallAudio {
        machine_with(source, negotiated(codec), FrameDuration::Ms20, now)
    }

    fn machine_with(source: Box<dyn AudioSource>, n: Negotiated, frame: FrameDuration, now: Instant) -> CallAudio {
        machine_detecting(source, n, frame, None, now)
    }

    fn machine_detecting(
        source: Box<dyn AudioSource>,
        n: Negotiated,
        frame: FrameDuration,
        detect_dtmf: Option<bool>,
        now: Instant,
    ) -> CallAudio {
        let audio = BuiltAudio { source, sink: Box::new(NullSink::new()), tracked: vec![], detect_dtmf, hold: None };
        let cfg = MediaConfig { frame, ..MediaConfig::default() };
        CallAudio::new(&cfg, n, audio, 1234, now).expect("codecs build")
    }

    /// Chromium's answer: Opus with telephone-event/48000 (110) and /8000 (126).
    fn with_telephone_events(codec: Codec, send: (u8, u32)) -> Negotiated {
        Negotiated {
            telephone_event_pt: Some(send.0),
            telephone_event_rate: Some(send.1),
            telephone_events_received: [Some((110, 48_000)), Some((126, 8000))],
            ..negotiated(codec)
        }
    }

    /// Ends after `frames` frames of a tone.
    struct Ending(u32);

    impl AudioSource for Ending {
        fn read(&mut self, out: &mut [i16]) -> bool {
            out.fill(if self.0 > 0 { 1000 } else { 0 });
            self.0 = self.0.saturating_sub(1);
            self.0 > 0
        }
    }

    /// Runs the send clock once (at its due time) and returns the packet's payload.
    fn next_payload(a: &mut CallAudio) -> Vec<u8> {
        let t = a.poll_timeout();
        a.handle_timeout(t);
        a.poll_transmit().expect("a packet per send tick").payload.to_vec()
    }

    fn events(a: &mut CallAudio) -> Vec<AudioEvent> {
        std::iter::from_fn(|| a.poll_event()).collect()
    }

    #[test]
    fn a_recording_gets_every_frame_sent_from_the_next_one_on() {
        let path = std::env::temp_dir().join(format!("webphone-call-audio-rec-{}.wav", std::process::id()));
        let t0 = Instant::now();
        let mut a = machine(Box::new(Ending(u32::MAX)), OPUS, t0);
        next_payload(&mut a);
        let (tx, rx) = std::sync::mpsc::channel();
        let recorder = Recorder::start(&path, crate::media::RecordChannels::Stereo, move |d| tx.send(d).unwrap());
        a.handle_control(AudioControl::Record(Some(recorder.unwrap())));
        for _ in 0..5 {
            next_payload(&mut a);
        }
        a.handle_control(AudioControl::Record(None));
        next_payload(&mut a);
        let done = rx.recv().expect("the file is completed when the recording stops");
        assert_eq!(done.error, None);
        let mut stats = CallStats::default();
        a.publish_stats(&mut stats, t0);
        assert_eq!(stats.recording_dropped_frames, 0);
        let samples: Vec<i16> = hound::WavReader::open(&path).unwrap().samples().map(Result::unwrap).collect();
        let _ = std::fs::remove_file(&path);
        // Five 20 ms frames, stereo: ours (the source's 1000) left, nothing heard right.
        assert_eq!(samples.len(), 5 * 960 * 2);
        assert!(samples.chunks(2).all(|lr| lr == [1000, 0]), "{:?}", &samples[..8]);
    }

    #[test]
    fn mute_applies_at_the_very_next_frame() {
        let t0 = Instant::now();
        let mut a = machine(Box::new(Tone::new(1000.0, -12.0)), PCMU, t0);
        // μ-law near-silence: 0xFF/0x7F and the next few codes. The resampler's
        // 3 ms delay carries the tone's tail into the frame's start.
        let silent = |p: &[u8]| p.len() == 160 && p[60..].iter().all(|b| b & 0x7F >= 0x7C);
        assert!(!silent(&next_payload(&mut a)));
        a.handle_control(AudioControl::MuteSend(true));
        assert!(silent(&next_payload(&mut a)));
        assert!(silent(&next_payload(&mut a)));
        a.handle_control(AudioControl::MuteSend(false));
        assert!(!silent(&next_payload(&mut a)));
        a.handle_control(AudioControl::Source(Box::new(Silence)));
        assert!(silent(&next_payload(&mut a)));
        assert!(a.poll_transmit().is_none(), "one packet per tick, handed out once");
    }

    #[test]
    fn send_ticks_run_on_their_own_clock_and_count_late_ones() {
        let t0 = Instant::now();
        let mut a = machine(Box::new(Silence), PCMU, t0);
        assert_eq!(a.poll_timeout(), t0, "the first frame is due at once");
        a.handle_timeout(t0);
        assert_eq!(a.poll_timeout(), t0 + FRAME);
        // Woken early: nothing due, nothing sent.
        a.handle_timeout(t0 + FRAME / 2);
        assert!(a.poll_transmit().is_some() && a.poll_transmit().is_none());
        // Woken 50 ms late: the missed ticks burst, one per call, the first two late.
        let late = t0 + FRAME + Duration::from_millis(50);
        let mut sent = 0;
        while a.poll_timeout() <= late {
            a.handle_timeout(late);
            sent += usize::from(a.poll_transmit().is_some());
        }
        assert_eq!(sent, 3);
        assert_eq!(a.poll_timeout(), t0 + 4 * FRAME);
        let mut stats = CallStats::default();
        a.publish_stats(&mut stats, late);
        assert_eq!((stats.audio_ticks, stats.late_ticks), (4, 2));
    }

    #[test]
    fn a_source_that_ends_raises_one_event() {
        let t0 = Instant::now();
        let mut a = machine(Box::new(Ending(3)), OPUS, t0);
        let mut ended = 0;
        for _ in 0..10 {
            next_payload(&mut a);
            ended += events(&mut a).iter().filter(|e| **e == AudioEvent::SourceEnded).count();
        }
        assert_eq!(ended, 1);
        // A new source that ends: once more.
        a.handle_control(AudioControl::Source(Box::new(Ending(2))));
        for _ in 0..10 {
            next_payload(&mut a);
            ended += events(&mut a).iter().filter(|e| **e == AudioEvent::SourceEnded).count();
        }
        assert_eq!(ended, 2);
    }

    /// Two machines on one fake clock, A's packets reaching B `latency` later;
    /// what A sent and reported is logged with the time.
    struct Pair {
        a: CallAudio,
        b: CallAudio,
        now: Instant,
        seq: u16,
        in_flight: VecDeque<(Instant, RtpIn)>,
        /// A's packets as sent: when, payload type, timestamp, payload.
        a_sent: Vec<(Instant, u8, u32, Bytes)>,
        /// A's events, when they came out.
        a_events: Vec<(Instant, AudioEvent)>,
    }

    impl Pair {
        fn new(codec: Codec) -> Pair {
            Pair::with(negotiated(codec), FrameDuration::Ms20)
        }

        fn with(n: Negotiated, frame: FrameDuration) -> Pair {
            let now = Instant::now();
            let a = machine_with(Box::new(Tone::new(1000.0, -12.0)), n, frame, now);
            let b = machine_with(Box::new(Silence), n, frame, now);
            Pair::of(a, b, now)
        }

        fn of(a: CallAudio, b: CallAudio, now: Instant) -> Pair {
            Pair { a, b, now, seq: 0, in_flight: VecDeque::new(), a_sent: vec![], a_events: vec![] }
        }

        /// A's events so far, without their times.
        fn a_events(&self) -> Vec<AudioEvent> {
            self.a_events.iter().map(|(_, e)| e.clone()).collect()
        }

        /// Runs both machines for `d` of fake time.
        fn run(&mut self, d: Duration) {
            const LATENCY: Duration = Duration::from_millis(3);
            let end = self.now + d;
            loop {
                let next_arrival = self.in_flight.front().map(|(at, _)| *at);
                let t = [Some(self.a.poll_timeout()), Some(self.b.poll_timeout()), next_arrival]
                    .into_iter()
                    .flatten()
                    .min()
                    .expect("A always has a send tick");
                if t > end {
                    break;
                }
                self.now = t;
                if self.a.poll_timeout() <= t {
                    self.a.handle_timeout(t);
                }
                if let Some(p) = self.a.poll_transmit() {
                    self.a_sent.push((t, p.payload_type, p.timestamp, Bytes::copy_from_slice(p.payload)));
                    let packet = RtpIn {
                        payload_type: p.payload_type,
                        sequence: self.seq,
                        timestamp: p.timestamp,
                        marker: p.marker,
                        ssrc: 1,
                        payload: Bytes::copy_from_slice(p.payload),
                        arrival: (t + LATENCY).into_std(),
                    };
                    self.seq = self.seq.wrapping_add(1);
                    self.in_flight.push_back((t + LATENCY, packet));
                }
                self.a_events.extend(std::iter::from_fn(|| self.a.poll_event()).map(|e| (t, e)));
                while self.in_flight.front().is_some_and(|(at, _)| *at <= t) {
                    let (at, p) = self.in_flight.pop_front().expect("checked");
                    self.b.handle_rtp(p, at);
                }
                if self.b.poll_timeout() <= t {
                    self.b.handle_timeout(t);
                }
                while self.b.poll_transmit().is_some() {}
            }
            self.now = end;
        }

        fn b_stats(&mut self) -> CallStats {
            let mut s = CallStats::default();
            self.b.publish_stats(&mut s, self.now);
            s
        }
    }

    #[test]
    fn audio_flows_switches_codec_and_forgets_the_tone_after_silence() {
        let mut pair = Pair::new(OPUS);
        pair.run(Duration::from_secs(2));
        let s = pair.b_stats();
        assert_eq!(s.codec.as_deref(), Some("opus"));
        assert!(s.decoded_frames >= 90, "{s:?}");
        assert_eq!((s.late_ticks, s.concealed_frames), (0, 0), "{s:?}");
        assert!(s.rx_dominant_hz.is_some_and(|hz| (hz - 1000.0).abs() < 15.0), "{s:?}");
        let debug = format!("{s:?}");
        assert!(!debug.contains("Instant") && debug.contains("first_audio_after_connect: Some("), "{debug}");

        // Both sides renegotiate PCMU (B first: a few Opus packets are then ignored).
        pair.b.handle_negotiated(negotiated(PCMU), pair.now).unwrap();
        pair.a.handle_negotiated(negotiated(PCMU), pair.now).unwrap();
        let before = pair.b_stats().decoded_frames;
        pair.run(Duration::from_secs(2));
        let s = pair.b_stats();
        assert_eq!(s.codec.as_deref(), Some("PCMU"));
        assert!(s.decoded_frames >= before + 90, "{s:?}");
        assert!(s.rx_dominant_hz.is_some_and(|hz| (hz - 1000.0).abs() < 15.0), "{s:?}");

        // A goes silent: after half a second of silence B no longer reports the tone.
        pair.a.handle_control(AudioControl::Source(Box::new(Silence)));
        pair.run(Duration::from_millis(300));
        assert!(pair.b_stats().rx_dominant_hz.is_some(), "short silences keep it");
        pair.run(Duration::from_millis(700));
        assert_eq!(pair.b_stats().rx_dominant_hz, None);
    }

    #[test]
    fn hold_stops_sending_and_quality_checks() {
        let mut pair = Pair::new(PCMU);
        pair.run(Duration::from_secs(1));
        let hold = Negotiated { direction: MediaDirection::SendOnly, ..negotiated(PCMU) };
        let held = Negotiated { direction: MediaDirection::RecvOnly, ..negotiated(PCMU) };
        pair.a.handle_negotiated(held, pair.now).unwrap();
        pair.b.handle_negotiated(hold, pair.now).unwrap();
        pair.run(Duration::from_millis(100));
        let sent = pair.b_stats().rx_packets;
        // Nothing arrives for longer than the no-audio threshold: no alert on hold.
        pair.run(Duration::from_secs(10));
        assert_eq!(pair.b_stats().rx_packets, sent);
        assert!(events(&mut pair.b).is_empty());
    }

    fn received(events: &[AudioEvent]) -> Vec<(char, u32, DtmfMethod)> {
        events
            .iter()
            .filter_map(|e| match e {
                AudioEvent::DtmfReceived { digit, duration_ms, method } => Some((*digit, *duration_ms, *method)),
                _ => None,
            })
            .collect()
    }

    fn sent(events: &[AudioEvent]) -> String {
        events
            .iter()
            .filter_map(|e| if let AudioEvent::DtmfSent { digit, .. } = e { Some(*digit) } else { None })
            .collect()
    }

    /// Every symbol as RFC 4733 events on either telephone-event, with 20
    /// and 10 ms frames: each arrives once, with its duration, and none of
    /// the events' sequence numbers counts as lost audio.
    #[test]
    fn rfc4733_digits_reach_the_receiver_and_are_not_audio_loss() {
        for (send, frame) in [((126, 8000), FrameDuration::Ms20), ((110, 48_000), FrameDuration::Ms10)] {
            let mut pair = Pair::with(with_telephone_events(OPUS, send), frame);
            pair.run(Duration::from_secs(1));
            let steps = crate::dtmf::parse_digits("0123456789*#ABCD", None, None).unwrap();
            pair.a.handle_control(AudioControl::Dtmf { steps, method: DtmfMethod::Rfc4733 });
            pair.run(Duration::from_secs(5));
            let got = received(&events(&mut pair.b));
            let digits: String = got.iter().map(|g| g.0).collect();
            assert_eq!(digits, "0123456789*#ABCD", "{send:?}");
            assert!(got.iter().all(|g| g.1 == 100 && g.2 == DtmfMethod::Rfc4733), "{got:?}");
            assert_eq!(sent(&pair.a_events()), "0123456789*#ABCD");
            let s = pair.b_stats();
            assert_eq!((s.rx_lost, s.concealed_frames > 0), (0, true), "{s:?}");
        }
    }

    /// In-band tones through Opus, detected because no telephone-event was
    /// negotiated: every symbol once, most of its length, with 20 and 10 ms
    /// frames, default and short digits.
    #[test]
    fn inband_digits_are_heard_when_no_telephone_event_was_negotiated() {
        for frame in [FrameDuration::Ms20, FrameDuration::Ms10] {
            for (duration, gap) in [(100, 70), (80, 60)] {
                let mut pair = Pair::with(negotiated(OPUS), frame);
                pair.run(Duration::from_millis(500));
                let steps = crate::dtmf::parse_digits("0123456789*#ABCD", Some(duration), Some(gap)).unwrap();
                pair.a.handle_control(AudioControl::Dtmf { steps, method: DtmfMethod::Inband });
                pair.run(Duration::from_secs(4));
                let got = received(&events(&mut pair.b));
                let digits: String = got.iter().map(|g| g.0).collect();
                assert_eq!(digits, "0123456789*#ABCD", "{frame:?}");
                assert!(
                    got.iter().all(|g| g.2 == DtmfMethod::Inband && (duration - 30..=duration + 20).contains(&g.1)),
                    "{frame:?}: {got:?}"
                );
                assert_eq!(sent(&pair.a_events()), "0123456789*#ABCD");
            }
        }
    }

    fn steps(digits: &str) -> Vec<DtmfStep> {
        crate::dtmf::parse_digits(digits, Some(100), Some(70)).unwrap()
    }

    /// One DTMF queue for every method: requests by RFC 4733, INFO, in-band
    /// and `auto` made back to back go out in order, one digit at a time:
    /// each digit's span as sent (RFC 4733: first to last packet of its
    /// event; in-band: its loud frames; INFO: from the moment it is due for
    /// its duration) ends at least the gap (70 ms) before the next begins,
    /// and `,` adds 2 s. Media digits are reported by `DtmfSent`, INFO ones by
    /// `DtmfInfoDue`, once each; the far end hears the media ones in order.
    /// With 20 and 10 ms frames.
    #[test]
    fn digits_of_every_method_share_one_queue_in_order_never_overlapping() {
        use DtmfMethod::{Auto, Inband, Info, Rfc4733};
        for frame in [FrameDuration::Ms20, FrameDuration::Ms10] {
            let n = with_telephone_events(PCMU, (126, 8000));
            let t0 = Instant::now();
            // A sends silence: any loud PCMU frame is a tone.
            let a = machine_with(Box::new(Silence), n, frame, t0);
            let b = machine_detecting(Box::new(Silence), n, frame, Some(true), t0);
            let mut pair = Pair::of(a, b, t0);
            pair.run(Duration::from_millis(200));
            for (digits, method) in [("12", Rfc4733), ("3", Info), (",45", Inband), ("6", Auto), ("7", Info)] {
                pair.a.handle_control(AudioControl::Dtmf { steps: steps(digits), method });
            }
            pair.run(Duration::from_secs(5));

            let mut spans: Vec<(Instant, Instant, char, DtmfMethod)> = vec![];
            let (mut last_event_ts, mut last_loud) = (None, None);
            for (t, pt, ts, payload) in &pair.a_sent {
                match pt {
                    // The packets of one event share its timestamp.
                    126 => {
                        match spans.last_mut() {
                            Some(s) if s.3 == Rfc4733 && last_event_ts == Some(*ts) => s.1 = *t,
                            _ => spans.push((*t, *t, symbol(payload[0]).expect("a DTMF event"), Rfc4733)),
                        }
                        last_event_ts = Some(*ts);
                    }
                    0 if payload.iter().any(|b| b & 0x7F < 0x70) => {
                        match (spans.last_mut(), last_loud) {
                            (Some(s), Some(l)) if s.3 == Inband && *t - l == frame.duration() => s.1 = *t,
                            _ => spans.push((*t, *t, '?', Inband)),
                        }
                        last_loud = Some(*t);
                    }
                    _ => {}
                }
            }
            for (t, e) in &pair.a_events {
                if let AudioEvent::DtmfInfoDue { digit, duration_ms } = e {
                    spans.push((*t, *t + Duration::from_millis(u64::from(*duration_ms)), *digit, Info));
                }
            }
            spans.sort_by_key(|s| s.0);
            let order: Vec<DtmfMethod> = spans.iter().map(|s| s.3).collect();
            assert_eq!(order, [Rfc4733, Rfc4733, Info, Inband, Inband, Rfc4733, Info], "{frame:?}: {spans:?}");
            let digits: String = spans.iter().map(|s| s.2).collect();
            assert_eq!(digits, "123??67", "{frame:?}");
            for (i, pair_of) in spans.windows(2).enumerate() {
                let (prev, next) = (pair_of[0], pair_of[1]);
                assert!(prev.1 >= prev.0);
                let gap = next.0.saturating_duration_since(prev.1);
                let want = if i == 2 { Duration::from_millis(2070) } else { Duration::from_millis(70) };
                assert!(next.0 > prev.1 && gap >= want, "{frame:?}: span {} then {}: gap {gap:?}", i, i + 1);
            }
            let a_events = pair.a_events();
            assert_eq!(sent(&a_events), "12456", "{frame:?}");
            let due: Vec<_> = a_events
                .iter()
                .filter_map(|e| {
                    if let AudioEvent::DtmfInfoDue { digit, duration_ms } = e {
                        Some((*digit, *duration_ms))
                    } else {
                        None
                    }
                })
                .collect();
            assert_eq!(due, [('3', 100), ('7', 100)], "{frame:?}");
            let methods: Vec<DtmfMethod> = a_events
                .iter()
                .filter_map(|e| if let AudioEvent::DtmfSent { method, .. } = e { Some(*method) } else { None })
                .collect();
            assert_eq!(methods, [Rfc4733, Rfc4733, Inband, Inband, Rfc4733], "{frame:?}: `auto` took RFC 4733");
            let got = received(&events(&mut pair.b));
            let heard: Vec<(char, DtmfMethod)> = got.iter().map(|g| (g.0, g.2)).collect();
            assert_eq!(
                heard,
                [('1', Rfc4733), ('2', Rfc4733), ('4', Inband), ('5', Inband), ('6', Rfc4733)],
                "{frame:?}"
            );
        }
    }

    /// Runs one machine alone until `until`: its events with their times,
    /// and the payload types it sent.
    fn run_alone(a: &mut CallAudio, until: Instant) -> (Vec<(Instant, AudioEvent)>, Vec<u8>) {
        let (mut events, mut sent) = (vec![], vec![]);
        while a.poll_timeout() <= until {
            let t = a.poll_timeout();
            a.handle_timeout(t);
            sent.extend(a.poll_transmit().map(|p| p.payload_type));
            events.extend(std::iter::from_fn(|| a.poll_event()).map(|e| (t, e)));
        }
        (events, sent)
    }

    /// While the call sends nothing (held), a media digit waits and the INFO
    /// digit queued behind it waits too (order is kept); on resume both go.
    /// `auto` goes by INFO once no telephone-event is negotiated.
    #[test]
    fn the_queue_waits_on_hold_in_order_and_auto_without_telephone_event_is_info() {
        let t0 = Instant::now();
        let n = with_telephone_events(PCMU, (126, 8000));
        let held = Negotiated { direction: MediaDirection::RecvOnly, ..n };
        let mut a = machine_with(Box::new(Silence), held, FrameDuration::Ms20, t0);
        a.handle_control(AudioControl::Dtmf { steps: steps("1"), method: DtmfMethod::Rfc4733 });
        a.handle_control(AudioControl::Dtmf { steps: steps("2"), method: DtmfMethod::Info });
        let (events, sent) = run_alone(&mut a, t0 + Duration::from_secs(3));
        assert!(events.is_empty() && sent.is_empty(), "{events:?} {sent:?}");

        let resumed = t0 + Duration::from_secs(3);
        a.handle_negotiated(n, resumed).unwrap();
        let (events, sent) = run_alone(&mut a, resumed + Duration::from_secs(1));
        assert!(sent.contains(&126));
        let events: Vec<AudioEvent> = events.into_iter().map(|(_, e)| e).collect();
        assert_eq!(
            events,
            [
                AudioEvent::DtmfSent { digit: '1', method: DtmfMethod::Rfc4733 },
                AudioEvent::DtmfInfoDue { digit: '2', duration_ms: 100 }
            ]
        );

        let later = resumed + Duration::from_secs(1);
        a.handle_negotiated(negotiated(PCMU), later).unwrap();
        a.handle_control(AudioControl::Dtmf { steps: steps("3"), method: DtmfMethod::Auto });
        let (events, sent) = run_alone(&mut a, later + Duration::from_secs(1));
        assert!(!sent.contains(&126));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1, AudioEvent::DtmfInfoDue { digit: '3', duration_ms: 100 });
    }
}
