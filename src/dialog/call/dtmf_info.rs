//! DTMF by SIP INFO (RFC 6086 with `application/dtmf-relay` bodies), both
//! ways. A digit to send leaves at once as one INFO: when each digit goes
//! is the call's one DTMF queue's business, in the call's audio (it paces
//! the digits of every method, so that they never overlap), which hands
//! INFO digits here when their turn comes. `DtmfSent` is reported when the
//! INFO is answered 2xx. A received DTMF INFO is answered 200 and reported;
//! a body without a symbol gets 400 (other body types never get here: the
//! agent answers them 415 with `Accept`).

use std::collections::VecDeque;
use std::time::Instant;

use crate::dialog::CallEvent;
use crate::dtmf::info::{self, InfoError};
use crate::sip::validate::response_to;
use crate::sip::{HeaderName, Method, Request, Response, StatusCode};

use super::{Call, CallCtx, CallError, CallState, Originator, Purpose};
use crate::dialog::transaction::TransactionKey;

/// A call's INFO digits sent without a final response yet, oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct InfoDtmf {
    in_flight: VecDeque<char>,
}

impl Call {
    /// Command: send one digit by INFO now (`digit` one of the 16 symbols).
    pub(crate) fn send_dtmf_info(
        &mut self,
        ctx: &mut CallCtx<'_>,
        digit: char,
        duration_ms: u32,
    ) -> Result<(), CallError> {
        if self.state != CallState::Confirmed {
            return Err(CallError::InvalidState);
        }
        let mut req = self.dialog.request(Method::Info, ctx.contact);
        req.headers.push(HeaderName::ContentType, info::DTMF_RELAY);
        req.body = info::relay_body(digit, duration_ms).into();
        ctx.send(req, Purpose::Info);
        self.info_dtmf.in_flight.push_back(digit);
        Ok(())
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
            self.bye(ctx, Originator::System, "the peer lost the dialog", now);
        } else {
            tracing::warn!(call = %self.key, code, "DTMF INFO refused");
        }
    }

    /// Input: an INFO of ours got no final response.
    pub(super) fn handle_info_timeout(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        self.info_dtmf.in_flight.pop_front();
        self.bye(ctx, Originator::System, "in-dialog request timed out", now);
    }
}
