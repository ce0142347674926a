//! DTMF by SIP INFO (RFC 6086 with `application/dtmf-relay` bodies), both
//! ways. Digits to send queue per call and leave one INFO at a time, each
//! after the previous digit's duration and gap (a `,` waits 2 s); the queue
//! is dropped when the call ends. A received DTMF INFO is answered 200 and
//! reported; a body without a symbol gets 400 (other body types never get
//! here: the agent answers them 415 with `Accept`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::dialog::CallEvent;
use crate::dtmf::DtmfStep;
use crate::dtmf::info::{self, InfoError};
use crate::sip::validate::response_to;
use crate::sip::{HeaderName, Method, Request, Response, StatusCode};

use super::{Call, CallCtx, CallError, CallState, Originator, Purpose};
use crate::dialog::transaction::TransactionKey;

/// A call's INFO digits: what waits, and what was sent without a final response yet.
#[derive(Clone, Debug, Default)]
pub(crate) struct InfoDtmf {
    queue: VecDeque<DtmfStep>,
    /// When the next step may start (the current digit's duration and gap, or a pause).
    pub(super) next: Option<Instant>,
    in_flight: VecDeque<char>,
}

impl InfoDtmf {
    fn clear(&mut self) {
        self.queue.clear();
        self.next = None;
    }
}

impl Call {
    /// Command: send digits by INFO, after those already queued.
    pub(crate) fn send_dtmf_info(
        &mut self,
        ctx: &mut CallCtx<'_>,
        steps: Vec<DtmfStep>,
        now: Instant,
    ) -> Result<(), CallError> {
        if self.state != CallState::Confirmed {
            return Err(CallError::InvalidState);
        }
        self.info_dtmf.queue.extend(steps);
        if self.info_dtmf.next.is_none() {
            self.next_info_digit(ctx, now);
        }
        Ok(())
    }

    /// When the INFO queue needs [`Call::handle_timeout`].
    pub(super) fn info_dtmf_deadline(&self) -> Option<Instant> {
        self.info_dtmf.next.filter(|_| !self.is_ended())
    }

    /// The queue's timer fired (called from `handle_timeout`).
    pub(super) fn handle_info_dtmf_timeout(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        if self.info_dtmf.next.is_some_and(|t| now >= t) {
            self.info_dtmf.next = None;
            self.next_info_digit(ctx, now);
        }
    }

    fn next_info_digit(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        if self.state != CallState::Confirmed {
            self.info_dtmf.clear();
            return;
        }
        match self.info_dtmf.queue.pop_front() {
            Some(DtmfStep::Digit { digit, duration_ms, gap_ms }) => {
                let mut req = self.dialog.request(Method::Info, ctx.contact);
                req.headers.push(HeaderName::ContentType, info::DTMF_RELAY);
                req.body = info::relay_body(digit, duration_ms).into();
                ctx.send(req, Purpose::Info);
                self.info_dtmf.in_flight.push_back(digit);
                self.info_dtmf.next = Some(now + Duration::from_millis(u64::from(duration_ms + gap_ms)));
            }
            Some(DtmfStep::Pause { ms }) => {
                self.info_dtmf.next = Some(now + Duration::from_millis(u64::from(ms)));
            }
            None => self.info_dtmf.next = None,
        }
    }

    /// Input: an INFO in this call's dialog.
    pub(super) fn handle_info(&mut self, ctx: &mut CallCtx<'_>, req: &Request, tx: &TransactionKey) {
        let content_type = req.headers.get(&HeaderName::ContentType).unwrap_or("");
        if req.body.is_empty() {
            // An empty INFO (a keep-alive of some PBXs): nothing to do.
            ctx.respond(tx, response_to(req, StatusCode::OK));
            return;
        }
        match info::parse(content_type, &req.body) {
            Ok(d) => {
                ctx.respond(tx, response_to(req, StatusCode::OK));
                ctx.emit(CallEvent::DtmfReceived {
                    call: self.snapshot.clone(),
                    digit: d.digit,
                    duration_ms: d.duration_ms,
                });
            }
            Err(InfoError::UnsupportedType) => {
                let mut resp = response_to(req, StatusCode::new(415).unwrap_or(StatusCode::BAD_REQUEST));
                resp.headers.push(HeaderName::Accept, format!("{}, {}", info::DTMF_RELAY, info::DTMF));
                ctx.respond(tx, resp);
            }
            Err(InfoError::NoSignal) => ctx.respond(tx, response_to(req, StatusCode::BAD_REQUEST)),
        }
    }

    /// Input: the final (or provisional) response to one of our INFOs.
    pub(super) fn handle_info_response(&mut self, ctx: &mut CallCtx<'_>, resp: &Response, now: Instant) {
        let code = resp.status.as_u16();
        if code < 200 {
            return;
        }
        let digit = self.info_dtmf.in_flight.pop_front();
        if (200..300).contains(&code) {
            if let Some(digit) = digit {
                ctx.emit(CallEvent::DtmfSent { call: self.snapshot.clone(), digit });
            }
        } else if matches!(code, 408 | 481) {
            self.info_dtmf.clear();
            self.bye(ctx, Originator::System, "the peer lost the dialog", now);
        } else {
            tracing::warn!(call = %self.key, code, "DTMF INFO refused");
        }
    }

    /// Input: an INFO of ours got no final response.
    pub(super) fn handle_info_timeout(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        self.info_dtmf.in_flight.pop_front();
        self.info_dtmf.clear();
        self.bye(ctx, Originator::System, "in-dialog request timed out", now);
    }
}
