//! A call's DTMF inside its audio machine: the telephone-events negotiated,
//! the RFC 4733 sender and receivers, and the call's one queue of digits to
//! send.
//!
//! Every digit asked for on the call goes into that one queue, whatever
//! its method, and they leave in order, one at a time: the next starts
//! only after the previous one ended and its gap passed (a `,` waits 2 s),
//! so digits of different requests and methods never overlap.
//! - RFC 4733: the sender's packets replace the audio until its last end packet.
//! - In-band: the tone replaces the source until its last sample.
//! - INFO: [`AudioEvent::DtmfInfoDue`] asks for the INFO to be sent now (the
//!   SIP core sends it; the media knows no dialogs), and the digit's
//!   duration is waited as if it played.
//!
//! `auto` is decided when the digit's turn comes: RFC 4733 when a
//! telephone-event is negotiated by then, else INFO. A digit that needs the
//! media waits while the call does not send (on hold); the queue lives as
//! long as the call's audio, so it is dropped when the call ends.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::dtmf::rfc4733;
use crate::dtmf::tone::{DEFAULT_LEVEL_DBFS, DtmfTone};
use crate::dtmf::{DtmfMethod, DtmfStep, event_code, symbol};
use crate::media::engine::call_audio::AudioEvent;
use crate::media::frame::SAMPLE_RATE;
use crate::media::rtc::peer::Negotiated;

/// The digit being sent in the media.
pub(super) enum Sending {
    /// As RFC 4733 events, by [`Dtmf::sender`].
    Event { digit: char, gap: Duration },
    /// As a tone in the audio.
    Tone { digit: char, gap: Duration, tone: DtmfTone },
}

/// A call's DTMF (see the module docs).
pub(super) struct Dtmf {
    /// Payload type and clock we send events with.
    pub(super) send_te: Option<(u8, u32)>,
    pub(super) sender: Option<rfc4733::Sender>,
    /// One receiver per telephone-event payload type the peer may use.
    receivers: Vec<(u8, rfc4733::Receiver)>,
    /// What waits, with the method asked for.
    queue: VecDeque<(DtmfStep, DtmfMethod)>,
    /// The digit being sent in the media, if any.
    pub(super) current: Option<Sending>,
    /// No new digit before this (the last digit's end and gap, or a pause).
    idle_until: Option<Instant>,
    /// What the setup asked for in-band detection (`None`: when no telephone-event).
    detect: Option<bool>,
}

impl Dtmf {
    pub(super) fn new(negotiated: &Negotiated, detect: Option<bool>) -> Dtmf {
        let mut d = Dtmf {
            send_te: None,
            sender: None,
            receivers: Vec::new(),
            queue: VecDeque::new(),
            current: None,
            idle_until: None,
            detect,
        };
        d.negotiated(negotiated);
        d
    }

    /// Takes the telephone-events of a (re)negotiation.
    pub(super) fn negotiated(&mut self, n: &Negotiated) {
        let send = n.telephone_event_pt.zip(n.telephone_event_rate);
        if send != self.send_te {
            self.send_te = send;
            self.sender = send.map(|(_, rate)| rfc4733::Sender::new(rate, n.codec.clock_rate));
        }
        for (pt, rate) in n.telephone_events_received.iter().flatten() {
            if !self.receivers.iter().any(|(p, _)| p == pt) {
                self.receivers.push((*pt, rfc4733::Receiver::new(*rate)));
            }
        }
        self.receivers.retain(|(p, _)| n.telephone_events_received.iter().flatten().any(|(pt, _)| pt == p));
    }

    /// Whether in-band detection runs.
    pub(super) fn detecting(&self) -> bool {
        self.detect.unwrap_or(self.receivers.is_empty())
    }

    /// The receiver of a telephone-event payload type.
    pub(super) fn receiver(&mut self, pt: u8) -> Option<&mut rfc4733::Receiver> {
        self.receivers.iter_mut().find(|(p, _)| *p == pt).map(|(_, r)| r)
    }

    /// When a receiver must time an event out.
    pub(super) fn next_timeout(&self) -> Option<Instant> {
        self.receivers.iter().filter_map(|(_, r)| r.poll_timeout()).min().map(Instant::from_std)
    }

    /// Times out the receivers' events due at `now`.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        for (_, r) in &mut self.receivers {
            r.handle_timeout(now.into_std());
        }
    }

    /// Moves the receivers' finished events into `events`.
    pub(super) fn drain_received(&mut self, events: &mut VecDeque<AudioEvent>) {
        for (_, r) in &mut self.receivers {
            while let Some(e) = r.poll_event() {
                if let Some(digit) = symbol(e.event) {
                    events.push_back(AudioEvent::DtmfReceived {
                        digit,
                        duration_ms: e.duration_ms,
                        method: DtmfMethod::Rfc4733,
                    });
                }
            }
        }
    }

    /// Queues steps to send by `method`, after those already queued.
    pub(super) fn push(&mut self, steps: Vec<DtmfStep>, method: DtmfMethod) {
        self.queue.extend(steps.into_iter().map(|s| (s, method)));
    }

    /// The method a digit asked for as `method` goes by now.
    fn resolve(&self, method: DtmfMethod) -> DtmfMethod {
        match method {
            DtmfMethod::Auto if self.sender.is_some() => DtmfMethod::Rfc4733,
            DtmfMethod::Auto => DtmfMethod::Info,
            m => m,
        }
    }

    /// Starts what is due at `now` when nothing is being sent: pauses, INFO
    /// digits (as [`AudioEvent::DtmfInfoDue`] in `events`), and at most one
    /// media digit, when the call sends (`can_send`); `timestamp` is the RTP
    /// timestamp of the frame about to be sent.
    pub(super) fn start_next(
        &mut self,
        now: Instant,
        timestamp: u32,
        can_send: bool,
        events: &mut VecDeque<AudioEvent>,
    ) {
        while self.current.is_none() && self.idle_until.is_none_or(|t| now >= t) {
            let Some(&(step, method)) = self.queue.front() else { return };
            let method = self.resolve(method);
            let (digit, duration_ms, gap_ms) = match step {
                DtmfStep::Digit { digit, duration_ms, gap_ms } => (digit, duration_ms, gap_ms),
                DtmfStep::Pause { ms } => {
                    self.queue.pop_front();
                    self.idle_until = Some(now + Duration::from_millis(u64::from(ms)));
                    continue;
                }
            };
            if method != DtmfMethod::Info && !can_send {
                // The media does not go out (on hold): the queue waits, in order.
                return;
            }
            self.queue.pop_front();
            let gap = Duration::from_millis(u64::from(gap_ms));
            match method {
                DtmfMethod::Info => {
                    events.push_back(AudioEvent::DtmfInfoDue { digit, duration_ms });
                    self.idle_until = Some(now + Duration::from_millis(u64::from(duration_ms)) + gap);
                }
                DtmfMethod::Inband => {
                    if let Some(tone) = DtmfTone::new(digit, duration_ms, DEFAULT_LEVEL_DBFS, SAMPLE_RATE) {
                        self.current = Some(Sending::Tone { digit, gap, tone });
                    }
                }
                _ => match (self.sender.as_mut(), event_code(digit)) {
                    (Some(sender), Some(code)) => {
                        sender.start(code, Duration::from_millis(u64::from(duration_ms)), timestamp);
                        self.current = Some(Sending::Event { digit, gap });
                    }
                    _ => tracing::warn!(%digit, "no telephone-event negotiated: DTMF digit dropped"),
                },
            }
        }
    }

    /// The media digit being sent went out in full in the frame sent at
    /// `now` (lasting `frame`): its gap starts after its last end packet, or
    /// after the frame that carries its last tone sample.
    pub(super) fn finish(&mut self, now: Instant, frame: Duration, events: &mut VecDeque<AudioEvent>) {
        let (digit, end, method) = match self.current.take() {
            Some(Sending::Event { digit, gap }) => (digit, now + gap, DtmfMethod::Rfc4733),
            Some(Sending::Tone { digit, gap, .. }) => (digit, now + frame + gap, DtmfMethod::Inband),
            None => return,
        };
        self.idle_until = Some(end);
        events.push_back(AudioEvent::DtmfSent { digit, method });
    }
}
