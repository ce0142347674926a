//! Setting a call up and tearing it down (RFC 3261 §13-15): the initial
//! INVITE in both roles, provisional and final responses, digest retry,
//! CANCEL, the ACK that confirms the dialog, BYE, and the end of the call.

use std::time::Instant;

use bytes::Bytes;

use super::session::{OfferAnswer, OfferCarrier, RemoteOffer};
use super::{
    Call, CallCtx, CallDirection, CallError, CallRequest, CallState, CallTimers, Dialog, EndCause, Originator, Party,
    Purpose, SessionTimer, allows_update, extension_headers, first_contact,
};
use crate::contract::{CallKey, MediaDirection, MediaRequest};
use crate::dialog::CallEvent;
use crate::dialog::auth::{Challenge, preferred};
use crate::sip::validate::response_to;
use crate::sip::{CSeq, HeaderName, Method, MinSe, NameAddr, Request, Response, SessionExpires, StatusCode, Uri};

/// The option tags our INVITEs and their 2xx announce: session timers
/// (RFC 4028), Replaces (RFC 3891) and `Refer-Sub` (RFC 4488).
pub(crate) const SUPPORTED: &str = "timer, replaces, norefersub";

impl Call {
    /// A call we place to `target`. It exists at once (a
    /// [`CallEvent::Outgoing`] is reported) and asks the media side for the
    /// offer; the INVITE leaves when the offer comes
    /// ([`Call::handle_local_sdp`]).
    pub(crate) fn outgoing(
        ctx: &mut CallCtx<'_>,
        key: CallKey,
        aor: &NameAddr,
        target: Uri,
        request: CallRequest,
        transferred_from: Option<CallKey>,
        now: Instant,
    ) -> Call {
        let mut local = aor.clone();
        if request.display_name.is_some() {
            local.display = request.display_name.clone();
        }
        let remote = NameAddr::new(target);
        let call_id = ctx.token(24);
        let local_tag = ctx.token(10);
        let snapshot = super::CallSnapshot {
            key,
            call_id: call_id.clone(),
            direction: CallDirection::Outgoing,
            local: Party::from_name_addr(&local),
            remote: Party::from_name_addr(&remote),
            headers: Vec::new(),
            started: now,
            connected: None,
            ended: None,
            end: None,
            transferred_from,
        };
        let call = Call {
            key,
            state: CallState::Dialing,
            direction: CallDirection::Outgoing,
            dialog: Dialog {
                call_id,
                local,
                remote,
                local_tag,
                remote_tag: None,
                local_cseq: 0,
                remote_target: None,
                route_set: Vec::new(),
                peer_allows_update: false,
            },
            invite_cseq: 0,
            invite: None,
            remote_invite: None,
            reinvite: None,
            offer_answer: OfferAnswer::MakingOffer(OfferCarrier::Invite),
            hold: Default::default(),
            local_sdp: None,
            early_answer_applied: false,
            challenged: false,
            extra_headers: request.headers,
            session_timer: None,
            timers: CallTimers::default(),
            last_ack: None,
            cancel_cause: None,
            info_dtmf: Default::default(),
            transfer: None,
            referred: None,
            target_refresh: None,
            bye_pending: false,
            cancel_on_reconnect: false,
            snapshot,
        };
        call.emit_snapshot(ctx, CallEvent::Outgoing);
        ctx.media(MediaRequest::Offer { call: key, direction: MediaDirection::SendRecv });
        call
    }

    /// A call that came in with `req` (a new INVITE, already checked by the
    /// agent): rings (100, then 180) and is reported as
    /// [`CallEvent::Incoming`]. `None` when the INVITE lacks From or To.
    pub(crate) fn incoming(
        ctx: &mut CallCtx<'_>,
        key: CallKey,
        req: &Request,
        tx: &crate::dialog::transaction::TransactionKey,
        now: Instant,
    ) -> Option<Call> {
        let (Some(Ok(from)), Some(Ok(to))) =
            (req.headers.name_addr(&HeaderName::From), req.headers.name_addr(&HeaderName::To))
        else {
            return None;
        };
        let mut route_set = Vec::new();
        for line in req.headers.get_all(&HeaderName::RecordRoute) {
            route_set.extend(crate::sip::split_list(line).map(str::to_string));
        }
        let cseq = req.headers.typed::<CSeq>().and_then(Result::ok).map_or(1, |c| c.seq);
        let mut local = to.clone();
        local.params.remove("tag");
        let mut remote = from.clone();
        let remote_tag = remote.tag().map(str::to_string);
        remote.params.remove("tag");
        let snapshot = super::CallSnapshot {
            key,
            call_id: req.headers.get(&HeaderName::CallId).unwrap_or("").to_string(),
            direction: CallDirection::Incoming,
            local: Party::from_name_addr(&to),
            remote: Party::from_name_addr(&from),
            headers: extension_headers(&req.headers),
            started: now,
            connected: None,
            ended: None,
            end: None,
            transferred_from: None,
        };
        let offer_answer = if req.body.is_empty() {
            // Late offer: our 200 will carry the offer, the ACK the answer.
            OfferAnswer::Idle
        } else {
            OfferAnswer::RemoteOffer(Box::new(RemoteOffer { request: req.clone(), tx: tx.clone(), asked: false }))
        };
        let mut call = Call {
            key,
            state: CallState::Ringing,
            direction: CallDirection::Incoming,
            dialog: Dialog {
                call_id: snapshot.call_id.clone(),
                local,
                remote,
                local_tag: ctx.token(10),
                remote_tag,
                // Our CSeq space in this dialog is ours alone (RFC 3261 §12.1.1).
                local_cseq: 0,
                remote_target: first_contact(&req.headers),
                route_set,
                peer_allows_update: allows_update(&req.headers),
            },
            invite_cseq: cseq,
            invite: None,
            remote_invite: Some(req.clone()),
            reinvite: None,
            offer_answer,
            hold: Default::default(),
            local_sdp: None,
            early_answer_applied: false,
            challenged: false,
            extra_headers: Vec::new(),
            session_timer: None,
            timers: CallTimers { auto_answer: ctx.settings.auto_answer.map(|d| now + d), ..CallTimers::default() },
            last_ack: None,
            cancel_cause: None,
            info_dtmf: Default::default(),
            transfer: None,
            referred: None,
            target_refresh: None,
            bye_pending: false,
            cancel_on_reconnect: false,
            snapshot,
        };
        ctx.respond(tx, response_to(req, StatusCode::TRYING));
        call.respond_to_invite(ctx, StatusCode::RINGING, None, now);
        call.emit_snapshot(ctx, CallEvent::Incoming);
        Some(call)
    }

    /// Command: answer a ringing incoming call. The 200 OK leaves when the
    /// media side hands over its answer (or, for a late-offer INVITE, its offer).
    pub(crate) fn answer(&mut self, ctx: &mut CallCtx<'_>, _now: Instant) -> Result<(), CallError> {
        if self.state != CallState::Ringing {
            return Err(CallError::InvalidState);
        }
        self.state = CallState::Answering;
        self.timers.auto_answer = None;
        match &mut self.offer_answer {
            OfferAnswer::RemoteOffer(offer) => {
                offer.asked = true;
                let offer = offer.request.body.clone();
                ctx.media(MediaRequest::Answer { call: self.key, offer, direction: MediaDirection::SendRecv });
            }
            _ => {
                self.offer_answer = OfferAnswer::MakingOffer(OfferCarrier::Ok200);
                ctx.media(MediaRequest::Offer { call: self.key, direction: MediaDirection::SendRecv });
            }
        }
        Ok(())
    }

    /// Command: refuse a ringing incoming call with `status` (486 Busy Here, 603 Decline, ...).
    pub(crate) fn reject(&mut self, ctx: &mut CallCtx<'_>, status: StatusCode, now: Instant) -> Result<(), CallError> {
        if !matches!(self.state, CallState::Ringing | CallState::Answering) || status.as_u16() < 300 {
            return Err(CallError::InvalidState);
        }
        self.respond_to_invite(ctx, status, None, now);
        self.end(ctx, Originator::Local, Some(status.as_u16()), status.canonical_reason(), now);
        Ok(())
    }

    /// Command: end the call in whatever state it is: CANCEL before an
    /// answer, BYE after, 486 while ringing here.
    pub(crate) fn hangup(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        match self.state {
            CallState::Dialing => self.end(ctx, Originator::Local, None, "cancelled before dialing", now),
            CallState::Calling => self.state = CallState::CancelPending,
            CallState::Early => self.send_cancel(ctx, now),
            CallState::CancelPending | CallState::Cancelling | CallState::Ended => {}
            CallState::Ringing | CallState::Answering => {
                self.respond_to_invite(ctx, StatusCode::BUSY_HERE, None, now);
                self.end(ctx, Originator::Local, Some(486), "Busy Here", now);
            }
            CallState::WaitingAck | CallState::Confirmed => self.bye(ctx, Originator::Local, "hung up", now),
        }
    }

    /// Input: the phone is stopping and can no longer signal.
    pub(crate) fn abandon(&mut self, ctx: &mut CallCtx<'_>, reason: &str, now: Instant) {
        self.cancel_on_reconnect = false;
        if self.bye_pending() {
            self.finish_bye(ctx, None, &format!("{reason} before the BYE was answered"));
        }
        self.end(ctx, Originator::System, None, reason, now);
    }

    pub(super) fn send_invite(&mut self, ctx: &mut CallCtx<'_>, sdp: Bytes) {
        self.dialog.local_cseq += 1;
        self.invite_cseq = self.dialog.local_cseq;
        let d = &self.dialog;
        let mut req = Request::new(Method::Invite, d.remote.uri.clone());
        let mut from = d.local.clone();
        from.params.set("tag", Some(d.local_tag.clone()));
        req.headers.push(HeaderName::From, from.to_string());
        req.headers.push(HeaderName::To, d.remote.to_string());
        req.headers.push(HeaderName::CallId, d.call_id.clone());
        req.headers.push_typed(&CSeq { seq: self.invite_cseq, method: Method::Invite });
        req.headers.push(HeaderName::Contact, ctx.contact.to_string());
        req.headers.push(HeaderName::Allow, ctx.allow.to_string());
        req.headers.push(HeaderName::Supported, SUPPORTED);
        if let Some(se) = ctx.settings.session_expires {
            req.headers.push(HeaderName::SessionExpires, se.max(ctx.settings.min_se).to_string());
            req.headers.push_typed(&MinSe(ctx.settings.min_se));
        }
        for (name, value) in &self.extra_headers {
            req.headers.push(HeaderName::new(name), value.clone());
        }
        req.headers.push(HeaderName::ContentType, "application/sdp");
        req.body = sdp;
        self.state = CallState::Calling;
        self.offer_answer = OfferAnswer::OfferSent(OfferCarrier::Invite);
        self.invite = Some(ctx.send(req, Purpose::Invite));
    }

    pub(super) fn send_cancel(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        let Some(invite) = self.invite.clone() else { return };
        self.state = CallState::Cancelling;
        self.timers.cancel = Some(now + ctx.timers.transaction_timeout());
        let mut cancel = Request::new(Method::Cancel, invite.uri.clone());
        for h in invite.headers.iter() {
            if matches!(
                h.name,
                HeaderName::Via | HeaderName::Route | HeaderName::From | HeaderName::To | HeaderName::CallId
            ) || h.name == HeaderName::MaxForwards
            {
                cancel.headers.push(h.name.clone(), h.value.clone());
            }
        }
        cancel.headers.push_typed(&CSeq { seq: self.invite_cseq, method: Method::Cancel });
        cancel.headers.push(HeaderName::Reason, "SIP;cause=487;text=\"Request Terminated\"");
        // A CANCEL carries the INVITE's Via: it is not stamped again.
        ctx.out.push_back(super::CallOutput::Request(cancel, Purpose::Cancel));
    }

    /// Sends BYE and ends the call: the media stops at once (RFC 3261
    /// §15.1.1), and [`CallEvent::Ended`] is reported when the BYE is
    /// answered, saying so when it was not with a 2xx (the far end may not
    /// know the call ended).
    pub(super) fn bye(&mut self, ctx: &mut CallCtx<'_>, by: Originator, reason: &str, now: Instant) {
        if self.is_ended() {
            return;
        }
        let bye = self.dialog.request(Method::Bye, ctx.contact);
        ctx.send(bye, Purpose::Bye);
        self.bye_pending = true;
        self.end(ctx, by, None, reason, now);
    }

    /// Whether our BYE waits for its answer (the call has ended, its
    /// [`CallEvent::Ended`] is not reported yet).
    pub(crate) fn bye_pending(&self) -> bool {
        self.bye_pending
    }

    /// Input: the final response to our BYE (`None`: none came).
    pub(super) fn handle_bye_response(&mut self, ctx: &mut CallCtx<'_>, resp: &Response) {
        if resp.status.is_provisional() {
            return;
        }
        if resp.status.is_success() {
            self.finish_bye(ctx, None, "");
        } else {
            let why = format!("the BYE got {} {}", resp.status.as_u16(), resp.reason_phrase());
            self.finish_bye(ctx, Some(resp.status.as_u16()), &why);
        }
    }

    /// Reports the end of a call whose BYE has its outcome: `status` the
    /// BYE's failure (408 for no answer), if it failed, and why.
    pub(super) fn finish_bye(&mut self, ctx: &mut CallCtx<'_>, status: Option<u16>, why: &str) {
        if !std::mem::take(&mut self.bye_pending) {
            return;
        }
        if let (Some(status), Some(end)) = (status, self.snapshot.end.as_mut()) {
            tracing::info!(call = %self.key, status, why, "the call ended, but the far end may not know");
            end.bye_status = Some(status);
        }
        self.emit_snapshot(ctx, CallEvent::Ended);
    }

    /// Sends a response to the incoming INVITE through its server
    /// transaction, with our To tag, Record-Route and (1xx/2xx) Contact, as
    /// a UAS in a dialog must; a 2xx negotiates the session timer and
    /// starts waiting for the ACK.
    pub(super) fn respond_to_invite(
        &mut self,
        ctx: &mut CallCtx<'_>,
        status: StatusCode,
        sdp: Option<Bytes>,
        now: Instant,
    ) {
        let Some(req) = self.remote_invite.as_ref() else { return };
        let Some(tx) = crate::dialog::transaction::TransactionKey::of_request(req) else { return };
        let mut resp = response_to(req, status);
        if status.as_u16() > 100
            && let Some(to) = resp.headers.get(&HeaderName::To).map(str::to_string)
            && !to.contains(";tag=")
        {
            resp.headers.set(HeaderName::To, format!("{to};tag={}", self.dialog.local_tag));
        }
        if status.as_u16() > 100 && status.as_u16() < 300 {
            for rr in req.headers.get_all(&HeaderName::RecordRoute) {
                resp.headers.push(HeaderName::RecordRoute, rr.to_string());
            }
            resp.headers.push(HeaderName::Contact, ctx.contact.to_string());
        }
        if status.is_success() {
            resp.headers.push(HeaderName::Allow, ctx.allow.to_string());
            resp.headers.push(HeaderName::Supported, SUPPORTED);
            if let Some(answer) = SessionTimer::for_answer(req, ctx.settings.min_se, now) {
                if answer.require {
                    resp.headers.push(HeaderName::Require, "timer");
                }
                resp.headers.push(HeaderName::SessionExpires, answer.session_expires);
                self.session_timer = Some(answer.timer);
            }
            if let Some(sdp) = sdp {
                resp.headers.push(HeaderName::ContentType, "application/sdp");
                resp.body = sdp;
            }
            self.state = CallState::WaitingAck;
            self.timers.ack = Some(now + ctx.timers.transaction_timeout());
        }
        ctx.respond(&tx, resp);
    }

    /// A response to our initial INVITE.
    pub(super) fn handle_invite_response(&mut self, ctx: &mut CallCtx<'_>, resp: &Response, now: Instant) {
        let code = resp.status.as_u16();
        if resp.status.is_provisional() {
            // Any provisional response, 100 included, allows a CANCEL (RFC 3261 §9.1).
            let pending_cancel = self.state == CallState::CancelPending;
            if self.state == CallState::Calling {
                self.state = CallState::Early;
            }
            if code != 100 {
                self.dialog.remote_tag = resp
                    .headers
                    .name_addr(&HeaderName::To)
                    .and_then(Result::ok)
                    .and_then(|t| t.tag().map(str::to_string));
                let early_media = resp.headers.carries_sdp(&resp.body);
                if early_media && !self.early_answer_applied {
                    self.early_answer_applied = true;
                    ctx.media(MediaRequest::ApplyAnswer { call: self.key, answer: resp.body.clone() });
                }
                ctx.emit(CallEvent::Progress {
                    call: self.snapshot.clone(),
                    status: code,
                    reason: resp.reason.clone(),
                    early_media,
                });
            }
            if pending_cancel {
                self.send_cancel(ctx, now);
            }
            return;
        }
        if resp.status.is_success() {
            self.handle_invite_2xx(ctx, resp, now);
            return;
        }
        // 300-699 (the transaction already sent the ACK).
        if matches!(code, 401 | 407) && !self.challenged && self.state != CallState::Cancelling {
            let header = if code == 401 { HeaderName::WwwAuthenticate } else { HeaderName::ProxyAuthenticate };
            let challenges: Vec<Challenge> =
                resp.headers.get_all(&header).filter_map(|v| Challenge::parse(v, code == 407).ok()).collect();
            if let Some(challenge) = preferred(&challenges).cloned() {
                self.retry_with_credentials(ctx, &challenge, now);
                return;
            }
        }
        let (by, reason) = match (self.state, self.cancel_cause.take()) {
            (CallState::Cancelling | CallState::CancelPending, Some(cause)) => (cause.by, cause.reason),
            (CallState::Cancelling | CallState::CancelPending, None) => (Originator::Local, "cancelled".to_string()),
            _ => (Originator::Remote, resp.reason_phrase().to_string()),
        };
        self.end(ctx, by, Some(code), &reason, now);
    }

    fn retry_with_credentials(&mut self, ctx: &mut CallCtx<'_>, challenge: &Challenge, now: Instant) {
        let Some(mut invite) = self.invite.clone() else { return };
        if self.state == CallState::CancelPending {
            // Hung up while being challenged: nothing to retry.
            self.end(ctx, Originator::Local, None, "cancelled", now);
            return;
        }
        let cnonce = ctx.token(16);
        self.challenged = true;
        self.dialog.local_cseq += 1;
        self.invite_cseq = self.dialog.local_cseq;
        let uri = invite.uri.to_string();
        let authorization = ctx.auth.authorize(challenge, Method::Invite.as_str(), &uri, &invite.body, &cnonce);
        let name = if authorization.is_proxy() { HeaderName::ProxyAuthorization } else { HeaderName::Authorization };
        invite.headers.set(HeaderName::CSeq, CSeq { seq: self.invite_cseq, method: Method::Invite }.to_string());
        invite.headers.remove(&HeaderName::Authorization);
        invite.headers.remove(&HeaderName::ProxyAuthorization);
        invite.headers.push(name, authorization.to_string());
        self.invite = Some(ctx.send(invite, Purpose::Invite));
    }

    fn handle_invite_2xx(&mut self, ctx: &mut CallCtx<'_>, resp: &Response, now: Instant) {
        let was = self.state;
        self.dialog.learn_from_response(resp);
        let mut routes: Vec<String> = Vec::new();
        for line in resp.headers.get_all(&HeaderName::RecordRoute) {
            routes.extend(crate::sip::split_list(line).map(str::to_string));
        }
        routes.reverse();
        self.dialog.route_set = routes;
        self.dialog.peer_allows_update = allows_update(&resp.headers);
        self.snapshot.headers = extension_headers(&resp.headers);
        if let Some(Ok(to)) = resp.headers.name_addr(&HeaderName::To) {
            self.snapshot.remote = Party::from_name_addr(&to);
        }
        if let Some(invite) = &self.invite {
            let ack = self.dialog.ack(invite, self.invite_cseq, None);
            self.last_ack = Some(ctx.send_ack(ack));
        }
        self.timers.cancel = None;
        if matches!(was, CallState::Cancelling | CallState::CancelPending) {
            // The answer crossed our CANCEL: the call is up, end it.
            self.state = CallState::Confirmed;
            self.offer_answer = OfferAnswer::Idle;
            let (by, reason) =
                self.cancel_cause.take().map_or((Originator::Local, "cancelled".to_string()), |c| (c.by, c.reason));
            self.bye(ctx, by, &reason, now);
            return;
        }
        self.state = CallState::Confirmed;
        self.snapshot.connected = Some(now);
        // Never below our Min-SE: a tiny interval must not become a refresh storm.
        self.session_timer = resp.headers.typed::<SessionExpires>().and_then(Result::ok).map(|se| {
            SessionTimer::new(se.delta.max(ctx.settings.min_se), se.refresher.as_deref() != Some("uas"), now)
        });
        if resp.headers.carries_sdp(&resp.body) && !self.early_answer_applied {
            self.early_answer_applied = true;
            ctx.media(MediaRequest::ApplyAnswer { call: self.key, answer: resp.body.clone() });
        }
        self.offer_answer = OfferAnswer::Idle;
        self.emit_snapshot(ctx, CallEvent::Confirmed);
    }

    /// A CANCEL of the incoming INVITE.
    pub(super) fn handle_cancel(
        &mut self,
        ctx: &mut CallCtx<'_>,
        req: &Request,
        tx: &crate::dialog::transaction::TransactionKey,
        now: Instant,
    ) {
        let mut ok = response_to(req, StatusCode::OK);
        if let Some(to) = ok.headers.get(&HeaderName::To).map(str::to_string)
            && !to.contains(";tag=")
        {
            ok.headers.set(HeaderName::To, format!("{to};tag={}", self.dialog.local_tag));
        }
        ctx.respond(tx, ok);
        if matches!(self.state, CallState::Ringing | CallState::Answering) {
            self.respond_to_invite(ctx, StatusCode::REQUEST_TERMINATED, None, now);
            self.end(ctx, Originator::Remote, Some(487), "cancelled by the caller", now);
        }
    }

    /// The ACK for our 2xx to the initial INVITE: the dialog is confirmed.
    pub(super) fn confirm_by_ack(&mut self, ctx: &mut CallCtx<'_>, req: &Request, now: Instant) {
        self.state = CallState::Confirmed;
        self.timers.ack = None;
        self.snapshot.connected = Some(now);
        if matches!(self.offer_answer, OfferAnswer::OfferSent(OfferCarrier::Ok200)) {
            self.offer_answer = OfferAnswer::Idle;
            if !req.headers.carries_sdp(&req.body) {
                // Our 200 carried the offer: the ACK must carry the answer (RFC 3261 §13.2.1).
                self.bye(ctx, Originator::System, "the ACK carried no SDP answer", now);
                return;
            }
            ctx.media(MediaRequest::ApplyAnswer { call: self.key, answer: req.body.clone() });
        }
        self.emit_snapshot(ctx, CallEvent::Confirmed);
    }

    /// Ends the call: records the cause, refuses an offer still waiting for
    /// our answer, releases its media, reports it.
    pub(super) fn end(
        &mut self,
        ctx: &mut CallCtx<'_>,
        by: Originator,
        status: Option<u16>,
        reason: &str,
        now: Instant,
    ) {
        if self.is_ended() {
            return;
        }
        self.state = CallState::Ended;
        self.session_timer = None;
        self.timers.clear();
        self.snapshot.ended = Some(now);
        self.snapshot.end = Some(EndCause { by, status, reason: reason.to_string(), bye_status: None });
        self.transfer_call_ended(ctx);
        // A re-INVITE / UPDATE still waiting for our answer is refused (RFC 3261 §15.1.2).
        if let OfferAnswer::RemoteOffer(offer) = std::mem::replace(&mut self.offer_answer, OfferAnswer::Idle)
            && offer.is_in_dialog()
        {
            ctx.respond(&offer.tx, response_to(&offer.request, StatusCode::REQUEST_TERMINATED));
        }
        ctx.media(MediaRequest::Close { call: self.key });
        if !self.bye_pending {
            self.emit_snapshot(ctx, CallEvent::Ended);
        }
    }
}
