//! Calls in the SIP core: the `UserAgent` methods that place, answer,
//! reject and end calls, and that handle INVITE, CANCEL, ACK, BYE and
//! UPDATE for them (RFC 3261 §13-15, RFC 4028 session timers).
//!
//! SDP never comes from here: when a call needs an offer or an answer, the
//! core emits [`super::MediaRequest`] and waits for
//! [`super::UserAgent::handle_local_sdp`]; remote SDP goes out as
//! `MediaRequest::ApplyAnswer` / `Answer`.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::auth::{Challenge, preferred};
use super::call::{
    Call, CallDirection, CallKey, CallSnapshot, CallState, EndCause, Originator, Party, SessionTimer,
    is_extension_header,
};
use super::register::random_token;
use super::transaction::TransactionKey;
use super::{AgentEvent, CallEvent, Owner, UserAgent};
use crate::contract::{MediaDirection, MediaRequest};
use crate::sip::{
    CSeq, ContentType, HeaderName, Method, MinSe, NameAddr, Request, Response, SessionExpires, SipUri, StatusCode, Uri,
};

/// What the application asks for when placing a call.
#[derive(Clone, Debug, Default)]
pub struct CallRequest {
    /// The target: a full URI, or a user / number resolved in our domain.
    pub target: String,
    /// Display name for our From header (defaults to the configured one).
    pub display_name: Option<String>,
    /// Extra headers for the INVITE (`X-Order-Id`, ...).
    pub headers: Vec<(String, String)>,
}

/// Why a call command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No call with this key (or it ended).
    #[error("no such call")]
    NoSuchCall,
    /// The command does not fit the call's state (answering an outgoing call...).
    #[error("not allowed in the call's current state")]
    InvalidState,
    /// The target is not a usable address.
    #[error("invalid call target {0:?}")]
    InvalidTarget(String),
    /// Already as many calls as lines.
    #[error("all lines are busy")]
    Busy,
    /// The transport is down.
    #[error("not connected")]
    NotConnected,
    /// An extra header is malformed (name not a token, CR/LF in the value).
    #[error("invalid header {0:?}")]
    InvalidHeader(String),
}

/// Call behaviour of the core.
#[derive(Clone, Debug)]
pub struct CallSettings {
    /// Session interval we ask for on outgoing calls (`None`: no session timer requested).
    pub session_expires: Option<u32>,
    /// The smallest session interval we accept (RFC 4028 Min-SE, at least 90).
    pub min_se: u32,
    /// How many calls may exist at once (lines).
    pub max_calls: usize,
    /// Answer incoming calls by themselves after this delay.
    pub auto_answer: Option<Duration>,
}

impl Default for CallSettings {
    fn default() -> Self {
        CallSettings { session_expires: Some(1800), min_se: 90, max_calls: 2, auto_answer: None }
    }
}

impl UserAgent {
    /// Command: place a call. The call exists at once (a [`CallEvent::Outgoing`]
    /// follows) and the INVITE leaves when the media side hands over its offer.
    pub fn call(&mut self, request: CallRequest, now: Instant) -> Result<CallKey, CallError> {
        if !self.connected {
            return Err(CallError::NotConnected);
        }
        if self.active_calls() >= self.cfg.calls.max_calls {
            return Err(CallError::Busy);
        }
        let target = self.resolve_target(&request.target)?;
        for (name, value) in &request.headers {
            if !crate::sip::is_header_name(name) || value.contains(['\r', '\n']) {
                return Err(CallError::InvalidHeader(name.clone()));
            }
        }
        let key = self.next_call_key();
        let mut local = self.aor.clone();
        if request.display_name.is_some() {
            local.display = request.display_name.clone();
        }
        let remote = NameAddr::new(target.clone());
        let call_id = random_token(&mut self.rng, 24);
        let local_tag = random_token(&mut self.rng, 10);
        let snapshot = CallSnapshot {
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
        };
        let call = Call {
            key,
            state: CallState::OfferPending,
            direction: CallDirection::Outgoing,
            call_id,
            local,
            remote,
            local_tag,
            remote_tag: None,
            local_cseq: 0,
            invite_cseq: 0,
            remote_target: None,
            route_set: Vec::new(),
            invite: None,
            remote_invite: None,
            local_sdp: None,
            late_offer: false,
            answer_applied: false,
            challenged: false,
            extra_headers: request.headers,
            peer_allows_update: false,
            session_timer: None,
            auto_answer_at: None,
            ack_deadline: None,
            pending_offer: None,
            cancel_cause: None,
            cancel_deadline: None,
            snapshot,
        };
        self.emit(AgentEvent::Call(CallEvent::Outgoing(call.snapshot.clone())));
        self.calls.insert(key, call);
        self.media(MediaRequest::Offer { call: key, direction: MediaDirection::SendRecv });
        Ok(key)
    }

    /// Command: answer a ringing incoming call. The 200 OK leaves when the
    /// media side hands over its answer (or, for a late-offer INVITE, its offer).
    pub fn answer(&mut self, key: CallKey, _now: Instant) -> Result<(), CallError> {
        let call = self.calls.get_mut(&key).ok_or(CallError::NoSuchCall)?;
        if call.state != CallState::Ringing {
            return Err(CallError::InvalidState);
        }
        call.state = CallState::AnswerPending;
        call.auto_answer_at = None;
        let request = match call.remote_invite.as_ref().map(|r| r.body.clone()) {
            Some(offer) if !offer.is_empty() => {
                MediaRequest::Answer { call: key, offer, direction: MediaDirection::SendRecv }
            }
            _ => {
                call.late_offer = true;
                MediaRequest::Offer { call: key, direction: MediaDirection::SendRecv }
            }
        };
        self.media(request);
        Ok(())
    }

    /// Command: refuse a ringing incoming call with `status` (486 Busy Here, 603 Decline, ...).
    pub fn reject(&mut self, key: CallKey, status: StatusCode, now: Instant) -> Result<(), CallError> {
        let call = self.calls.get(&key).ok_or(CallError::NoSuchCall)?;
        if !matches!(call.state, CallState::Ringing | CallState::AnswerPending) || status.as_u16() < 300 {
            return Err(CallError::InvalidState);
        }
        self.respond_to_invite(key, status, None, now);
        self.end_call(key, Originator::Local, Some(status.as_u16()), status.canonical_reason(), now);
        Ok(())
    }

    /// Command: end a call in whatever state it is: CANCEL before an
    /// answer, BYE after, 486 while ringing.
    pub fn hangup(&mut self, key: CallKey, now: Instant) -> Result<(), CallError> {
        let call = self.calls.get_mut(&key).ok_or(CallError::NoSuchCall)?;
        match call.state {
            CallState::OfferPending => {
                self.end_call(key, Originator::Local, None, "cancelled before dialing", now);
            }
            CallState::Calling => call.state = CallState::CancelPending,
            CallState::Early => self.send_cancel(key, now),
            CallState::CancelPending | CallState::Cancelling | CallState::Ended => {}
            CallState::Ringing | CallState::AnswerPending => {
                self.respond_to_invite(key, StatusCode::BUSY_HERE, None, now);
                self.end_call(key, Originator::Local, Some(486), "Busy Here", now);
            }
            CallState::WaitingAck | CallState::Confirmed => self.send_bye(key, Originator::Local, "hung up", now),
        }
        Ok(())
    }

    /// Input: the media side's SDP for `key` (the offer or answer asked
    /// for by a [`MediaRequest`]), or why it could not make one.
    pub fn handle_local_sdp(&mut self, key: CallKey, sdp: Result<Bytes, String>, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else { return };
        let sdp = match sdp {
            Ok(sdp) => sdp,
            Err(why) => {
                tracing::warn!(%key, %why, "media failed");
                match call.state {
                    CallState::Ringing | CallState::AnswerPending => {
                        let status = StatusCode::new(488).unwrap_or(StatusCode::BAD_REQUEST);
                        self.respond_to_invite(key, status, None, now);
                        self.end_call(key, Originator::System, Some(488), &format!("media: {why}"), now);
                    }
                    CallState::Confirmed | CallState::WaitingAck => {
                        self.send_bye(key, Originator::System, &format!("media: {why}"), now)
                    }
                    _ => self.end_call(key, Originator::System, None, &format!("media: {why}"), now),
                }
                return;
            }
        };
        call.local_sdp = Some(sdp.clone());
        match call.state {
            CallState::OfferPending => self.send_invite(key, now),
            CallState::AnswerPending => self.respond_to_invite(key, StatusCode::OK, Some(sdp), now),
            CallState::Confirmed => {
                // Answer to a re-INVITE / UPDATE offer: sent from the pending server transaction.
                self.answer_pending_offer(key, sdp, now);
            }
            _ => {}
        }
    }

    /// Input: the call's media failed after setup (the answer could not be
    /// applied, ICE/DTLS never connected): end the call the right way for
    /// its state.
    pub fn handle_media_failure(&mut self, key: CallKey, reason: &str, now: Instant) {
        let Some(call) = self.calls.get(&key) else { return };
        let why = format!("media: {reason}");
        match call.state {
            CallState::Calling | CallState::Early => {
                // The call ends when the INVITE's final response (487) comes,
                // so a 200 crossing the CANCEL is still ACKed and hung up.
                let early = call.state == CallState::Early;
                if let Some(call) = self.calls.get_mut(&key) {
                    call.cancel_cause = Some(EndCause { by: Originator::System, status: None, reason: why });
                    call.state = CallState::CancelPending;
                }
                if early {
                    self.send_cancel(key, now);
                }
            }
            CallState::CancelPending | CallState::Cancelling | CallState::Ended => {}
            _ => self.handle_local_sdp(key, Err(reason.to_string()), now),
        }
    }

    /// Snapshot of a call, if it exists.
    pub fn call_snapshot(&self, key: CallKey) -> Option<&CallSnapshot> {
        self.calls.get(&key).map(|c| &c.snapshot)
    }

    /// Keys of the calls that have not ended.
    pub fn call_keys(&self) -> Vec<CallKey> {
        self.calls.values().filter(|c| !c.is_ended()).map(|c| c.key).collect()
    }

    pub(super) fn active_calls(&self) -> usize {
        self.calls.values().filter(|c| !c.is_ended()).count()
    }

    fn next_call_key(&mut self) -> CallKey {
        self.next_call += 1;
        CallKey(self.next_call)
    }

    fn resolve_target(&self, target: &str) -> Result<Uri, CallError> {
        let t = target.trim();
        let invalid = || CallError::InvalidTarget(target.to_string());
        if t.contains(':') {
            let uri = Uri::parse(t).map_err(|_| invalid())?;
            return match uri {
                Uri::Sip(_) | Uri::Tel(_) => Ok(uri),
                Uri::Other { .. } => Err(invalid()),
            };
        }
        let (user, host) = match t.split_once('@') {
            Some((u, h)) => (u, crate::sip::Host::parse(h).map_err(|_| invalid())?),
            None => (t, self.domain_host()),
        };
        if user.is_empty() || !user.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/#".contains(&b)) {
            return Err(invalid());
        }
        Ok(Uri::Sip(SipUri::new(Some(user), host)))
    }

    fn domain_host(&self) -> crate::sip::Host {
        match &self.aor.uri {
            Uri::Sip(u) => u.host.clone(),
            _ => crate::sip::Host::Domain("invalid".into()),
        }
    }

    fn send_invite(&mut self, key: CallKey, now: Instant) {
        let contact = self.contact.clone();
        let session_expires = self.cfg.calls.session_expires;
        let min_se = self.cfg.calls.min_se;
        let allow = self.allow_header();
        let Some(call) = self.calls.get_mut(&key) else { return };
        call.local_cseq += 1;
        call.invite_cseq = call.local_cseq;
        let mut req = Request::new(Method::Invite, call.remote.uri.clone());
        let mut from = call.local.clone();
        from.params.set("tag", Some(call.local_tag.clone()));
        req.headers.push(HeaderName::From, from.to_string());
        req.headers.push(HeaderName::To, call.remote.to_string());
        req.headers.push(HeaderName::CallId, call.call_id.clone());
        req.headers.push_typed(&CSeq { seq: call.invite_cseq, method: Method::Invite });
        req.headers.push(HeaderName::Contact, contact.to_string());
        req.headers.push(HeaderName::Allow, allow);
        req.headers.push(HeaderName::Supported, "timer");
        if let Some(se) = session_expires {
            req.headers.push(HeaderName::SessionExpires, se.max(min_se).to_string());
            req.headers.push_typed(&MinSe(min_se));
        }
        for (name, value) in &call.extra_headers {
            req.headers.push(HeaderName::new(name), value.clone());
        }
        req.headers.push(HeaderName::ContentType, "application/sdp");
        req.body = call.local_sdp.clone().unwrap_or_default();
        call.state = CallState::Calling;
        let sent = self.send_request(req, Owner::Invite(key), now);
        if let Some(call) = self.calls.get_mut(&key) {
            call.invite = sent;
        }
    }

    fn send_cancel(&mut self, key: CallKey, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else { return };
        let Some(invite) = call.invite.clone() else { return };
        call.state = CallState::Cancelling;
        call.cancel_deadline = Some(now + self.cfg.timers.transaction_timeout());
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
        cancel.headers.push_typed(&CSeq { seq: call.invite_cseq, method: Method::Cancel });
        cancel.headers.push(HeaderName::Reason, "SIP;cause=487;text=\"Request Terminated\"");
        self.send_prepared(cancel, Owner::Cancel(key), now);
    }

    pub(super) fn send_bye(&mut self, key: CallKey, by: Originator, reason: &str, now: Instant) {
        let contact = self.contact.clone();
        let Some(call) = self.calls.get_mut(&key) else { return };
        if call.is_ended() {
            return;
        }
        let bye = call.in_dialog_request(Method::Bye, &contact);
        self.send_request(bye, Owner::InDialog(key), now);
        self.end_call(key, by, None, reason, now);
    }

    /// Sends a response to the incoming INVITE of `key` through its server transaction.
    fn respond_to_invite(&mut self, key: CallKey, status: StatusCode, sdp: Option<Bytes>, now: Instant) {
        let contact = self.contact.clone();
        let allow = self.allow_header();
        let min_se = self.cfg.calls.min_se;
        let timers = self.cfg.timers;
        let Some(call) = self.calls.get_mut(&key) else { return };
        let Some(mut resp) = call.response_to_invite(status, &contact) else { return };
        let Some(tx_key) = call.remote_invite.as_ref().and_then(TransactionKey::of_request) else { return };
        if status.is_success() {
            resp.headers.push(HeaderName::Allow, allow);
            resp.headers.push(HeaderName::Supported, "timer");
            let invite = call.remote_invite.as_ref();
            let requested = invite.and_then(|r| r.headers.typed::<SessionExpires>()).and_then(Result::ok);
            if let Some(se) = requested {
                let interval = se.delta.max(min_se);
                let caller_supports = invite.is_some_and(|r| {
                    let has =
                        |name| r.headers.tokens(&name).is_ok_and(|t| t.iter().any(|o| o.eq_ignore_ascii_case("timer")));
                    has(HeaderName::Supported) || has(HeaderName::Require)
                });
                // RFC 4028 §9: a caller without timer support cannot refresh
                // (a proxy added the header): we refresh, and require nothing.
                let refresher = match (caller_supports, se.refresher.as_deref()) {
                    (false, _) => "uas".to_string(),
                    (true, r) => r.unwrap_or("uac").to_string(),
                };
                if caller_supports {
                    resp.headers.push(HeaderName::Require, "timer");
                }
                resp.headers.push(HeaderName::SessionExpires, format!("{interval};refresher={refresher}"));
                call.session_timer = Some(SessionTimer::new(interval, refresher == "uas", now));
            }
            if let Some(sdp) = sdp {
                resp.headers.push(HeaderName::ContentType, "application/sdp");
                resp.body = sdp;
            }
            call.state = CallState::WaitingAck;
            call.ack_deadline = Some(now + timers.transaction_timeout());
        }
        self.send_response(&tx_key, resp, now);
    }

    /// A response to one of our INVITEs.
    pub(super) fn handle_invite_response(&mut self, key: CallKey, resp: &Response, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else { return };
        let code = resp.status.as_u16();
        if resp.status.is_provisional() {
            // Any provisional response, 100 included, allows a CANCEL (RFC 3261 §9.1).
            if code == 100 {
                let pending_cancel = call.state == CallState::CancelPending;
                if call.state == CallState::Calling {
                    call.state = CallState::Early;
                }
                if pending_cancel {
                    self.send_cancel(key, now);
                }
                return;
            }
            call.remote_tag =
                resp.headers.name_addr(&HeaderName::To).and_then(Result::ok).and_then(|t| t.tag().map(str::to_string));
            let early_media = resp.headers.carries_sdp(&resp.body);
            let pending_cancel = call.state == CallState::CancelPending;
            if call.state == CallState::Calling {
                call.state = CallState::Early;
            }
            if early_media && !call.answer_applied {
                call.answer_applied = true;
                self.media(MediaRequest::ApplyAnswer { call: key, answer: resp.body.clone() });
            }
            let Some(call) = self.calls.get(&key) else { return };
            let snapshot = call.snapshot.clone();
            self.emit(AgentEvent::Call(CallEvent::Progress {
                call: snapshot,
                status: code,
                reason: resp.reason.clone(),
                early_media,
            }));
            if pending_cancel {
                self.send_cancel(key, now);
            }
            return;
        }
        if resp.status.is_success() {
            self.handle_invite_2xx(key, resp, now);
            return;
        }
        // 300-699 (the transaction already sent the ACK).
        if matches!(code, 401 | 407) && !call.challenged && call.state != CallState::Cancelling {
            let header = if code == 401 { HeaderName::WwwAuthenticate } else { HeaderName::ProxyAuthenticate };
            let challenges: Vec<Challenge> =
                resp.headers.get_all(&header).filter_map(|v| Challenge::parse(v, code == 407).ok()).collect();
            if let Some(challenge) = preferred(&challenges).cloned() {
                self.retry_invite_with_credentials(key, &challenge, now);
                return;
            }
        }
        let (by, reason) = match (call.state, call.cancel_cause.take()) {
            (CallState::Cancelling | CallState::CancelPending, Some(cause)) => (cause.by, cause.reason),
            (CallState::Cancelling | CallState::CancelPending, None) => (Originator::Local, "cancelled".to_string()),
            _ => (Originator::Remote, resp.reason_phrase().to_string()),
        };
        self.end_call(key, by, Some(code), &reason, now);
    }

    fn retry_invite_with_credentials(&mut self, key: CallKey, challenge: &Challenge, now: Instant) {
        let cnonce = random_token(&mut self.rng, 16);
        let Some(call) = self.calls.get_mut(&key) else { return };
        let Some(mut invite) = call.invite.clone() else { return };
        call.challenged = true;
        call.local_cseq += 1;
        call.invite_cseq = call.local_cseq;
        let uri = invite.uri.to_string();
        let authorization = self.auth.authorize(challenge, Method::Invite.as_str(), &uri, &invite.body, &cnonce);
        let name = if authorization.is_proxy() { HeaderName::ProxyAuthorization } else { HeaderName::Authorization };
        invite.headers.remove(&HeaderName::Via);
        invite.headers.remove(&HeaderName::MaxForwards);
        invite.headers.remove(&HeaderName::UserAgent);
        invite.headers.set(HeaderName::CSeq, CSeq { seq: call.invite_cseq, method: Method::Invite }.to_string());
        invite.headers.remove(&HeaderName::Authorization);
        invite.headers.remove(&HeaderName::ProxyAuthorization);
        invite.headers.push(name, authorization.to_string());
        let state = call.state;
        call.invite = Some(invite.clone());
        if state == CallState::CancelPending {
            // Hung up while being challenged: nothing to retry.
            self.end_call(key, Originator::Local, None, "cancelled", now);
            return;
        }
        let sent = self.send_request(invite, Owner::Invite(key), now);
        if let Some(call) = self.calls.get_mut(&key) {
            call.invite = sent;
        }
    }

    fn handle_invite_2xx(&mut self, key: CallKey, resp: &Response, now: Instant) {
        let min_se = self.cfg.calls.min_se;
        let Some(call) = self.calls.get_mut(&key) else { return };
        let was = call.state;
        call.remote_tag =
            resp.headers.name_addr(&HeaderName::To).and_then(Result::ok).and_then(|t| t.tag().map(str::to_string));
        if let Some(addr) = first_contact(&resp.headers) {
            call.remote_target = Some(addr);
        }
        let mut routes: Vec<String> = Vec::new();
        for line in resp.headers.get_all(&HeaderName::RecordRoute) {
            routes.extend(crate::sip::split_list(line).map(str::to_string));
        }
        routes.reverse();
        call.route_set = routes;
        call.peer_allows_update = allows_update(resp);
        call.snapshot.headers = resp
            .headers
            .iter()
            .filter(|h| is_extension_header(&h.name))
            .map(|h| (h.name.to_string(), h.value_str().to_string()))
            .collect();
        if let Some(Ok(to)) = resp.headers.name_addr(&HeaderName::To) {
            call.snapshot.remote = Party::from_name_addr(&to);
        }
        let ack = call.ack(None);
        self.send_stateless(ack);
        let Some(call) = self.calls.get_mut(&key) else { return };
        if matches!(was, CallState::Cancelling | CallState::CancelPending) {
            // The answer crossed our CANCEL: the call is up, end it.
            call.state = CallState::Confirmed;
            call.cancel_deadline = None;
            let cause = call.cancel_cause.take();
            let (by, reason) = cause.map_or((Originator::Local, "cancelled".to_string()), |c| (c.by, c.reason));
            self.send_bye(key, by, &reason, now);
            return;
        }
        call.state = CallState::Confirmed;
        call.snapshot.connected = Some(now);
        let se = resp.headers.typed::<SessionExpires>().and_then(Result::ok);
        // Never below our Min-SE: a tiny interval must not become a refresh storm.
        call.session_timer =
            se.map(|se| SessionTimer::new(se.delta.max(min_se), se.refresher.as_deref() != Some("uas"), now));
        if resp.headers.carries_sdp(&resp.body) && !call.answer_applied {
            call.answer_applied = true;
            self.media(MediaRequest::ApplyAnswer { call: key, answer: resp.body.clone() });
        }
        let snapshot = self.calls.get(&key).map(|c| c.snapshot.clone());
        if let Some(s) = snapshot {
            self.emit(AgentEvent::Call(CallEvent::Confirmed(s)));
        }
    }

    /// A 2xx for an INVITE whose transaction is gone: a retransmission the
    /// peer sends until it sees our ACK (RFC 3261 §13.2.2.4): ACK it again.
    pub(super) fn handle_stray_2xx(&mut self, resp: &Response) -> bool {
        let Some(Ok(cseq)) = resp.headers.typed::<CSeq>() else { return false };
        if cseq.method != Method::Invite || !resp.status.is_success() {
            return false;
        }
        let call_id = resp.headers.get(&HeaderName::CallId).unwrap_or("");
        let from_tag = tag_of(resp.headers.get(&HeaderName::From));
        let Some(call) =
            self.calls.values().find(|c| c.call_id == call_id && Some(c.local_tag.as_str()) == from_tag.as_deref())
        else {
            return false;
        };
        if call.invite_cseq == cseq.seq && call.remote_tag.is_some() {
            let ack = call.ack(None);
            self.send_stateless(ack);
        }
        true
    }

    /// A response to BYE / UPDATE / re-INVITE we sent in a dialog.
    pub(super) fn handle_in_dialog_response(&mut self, key: CallKey, resp: &Response, now: Instant) {
        let min_se = self.cfg.calls.min_se;
        let Some(call) = self.calls.get_mut(&key) else { return };
        if call.is_ended() || resp.status.is_provisional() {
            return;
        }
        let code = resp.status.as_u16();
        if resp.status.is_success() {
            if let Some(Ok(se)) = resp.headers.typed::<SessionExpires>() {
                let interval = se.delta.max(min_se);
                call.session_timer = Some(SessionTimer::new(interval, se.refresher.as_deref() != Some("uas"), now));
            } else if let Some(t) = &call.session_timer {
                call.session_timer = Some(SessionTimer::new(t.interval, t.we_refresh, now));
            }
            return;
        }
        if matches!(code, 408 | 481) {
            self.send_bye(key, Originator::System, "the peer lost the dialog", now);
        }
    }

    /// An incoming request that belongs to calls: INVITE (new or re-),
    /// CANCEL, BYE, UPDATE. Returns false when it is not for a call.
    pub(super) fn handle_call_request(&mut self, req: &Request, tx: &TransactionKey, now: Instant) -> bool {
        let to_tag = tag_of(req.headers.get(&HeaderName::To));
        let from_tag = tag_of(req.headers.get(&HeaderName::From));
        let call_id = req.headers.get(&HeaderName::CallId).unwrap_or("").to_string();
        match req.method {
            Method::Invite if to_tag.is_none() => {
                self.handle_new_invite(req, tx, now);
                true
            }
            Method::Cancel => {
                self.handle_cancel(req, tx, now);
                true
            }
            Method::Invite | Method::Bye | Method::Update => {
                let key = self
                    .calls
                    .values()
                    .find(|c| !c.is_ended() && c.matches(&call_id, to_tag.as_deref(), from_tag.as_deref()))
                    .map(|c| c.key);
                let Some(key) = key else {
                    self.reply(req, tx, StatusCode::CALL_DOES_NOT_EXIST, now);
                    return true;
                };
                match req.method {
                    Method::Bye => {
                        self.reply(req, tx, StatusCode::OK, now);
                        self.end_call(key, Originator::Remote, None, "BYE", now);
                    }
                    _ => self.handle_offer_in_dialog(key, req, tx, now),
                }
                true
            }
            _ => false,
        }
    }

    fn handle_new_invite(&mut self, req: &Request, tx: &TransactionKey, now: Instant) {
        let min_se = self.cfg.calls.min_se;
        if let Some(Ok(se)) = req.headers.typed::<SessionExpires>()
            && se.delta < min_se
        {
            let mut resp =
                crate::sip::validate::response_to(req, StatusCode::new(422).unwrap_or(StatusCode::BAD_REQUEST));
            resp.headers.push_typed(&MinSe(min_se));
            self.send_response(tx, resp, now);
            return;
        }
        if self.active_calls() >= self.cfg.calls.max_calls {
            self.reply(req, tx, StatusCode::BUSY_HERE, now);
            return;
        }
        if !req.body.is_empty() {
            let is_sdp =
                matches!(req.headers.typed::<ContentType>(), Some(Ok(ct)) if ct.media_type == "application/sdp");
            if !is_sdp {
                let mut resp = crate::sip::validate::response_to(req, StatusCode::UNSUPPORTED_MEDIA_TYPE);
                resp.headers.push(HeaderName::Accept, "application/sdp");
                self.send_response(tx, resp, now);
                return;
            }
        }
        let (Some(Ok(from)), Some(Ok(to))) =
            (req.headers.name_addr(&HeaderName::From), req.headers.name_addr(&HeaderName::To))
        else {
            self.reply(req, tx, StatusCode::BAD_REQUEST, now);
            return;
        };
        let key = self.next_call_key();
        let local_tag = random_token(&mut self.rng, 10);
        let remote_target = first_contact(&req.headers);
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
        let snapshot = CallSnapshot {
            key,
            call_id: req.headers.get(&HeaderName::CallId).unwrap_or("").to_string(),
            direction: CallDirection::Incoming,
            local: Party::from_name_addr(&to),
            remote: Party::from_name_addr(&from),
            headers: req
                .headers
                .iter()
                .filter(|h| is_extension_header(&h.name))
                .map(|h| (h.name.to_string(), h.value_str().to_string()))
                .collect(),
            started: now,
            connected: None,
            ended: None,
            end: None,
        };
        let auto_answer_at = self.cfg.calls.auto_answer.map(|d| now + d);
        let call = Call {
            key,
            state: CallState::Ringing,
            direction: CallDirection::Incoming,
            call_id: snapshot.call_id.clone(),
            local,
            remote,
            local_tag,
            remote_tag,
            // Our CSeq space in this dialog is ours alone (RFC 3261 §12.1.1).
            local_cseq: 0,
            invite_cseq: cseq,
            remote_target,
            route_set,
            invite: None,
            remote_invite: Some(req.clone()),
            local_sdp: None,
            late_offer: req.body.is_empty(),
            answer_applied: false,
            challenged: false,
            extra_headers: Vec::new(),
            peer_allows_update: req
                .headers
                .get_all(&HeaderName::Allow)
                .any(|a| a.to_ascii_uppercase().contains("UPDATE")),
            session_timer: None,
            auto_answer_at,
            ack_deadline: None,
            pending_offer: None,
            cancel_cause: None,
            cancel_deadline: None,
            snapshot,
        };
        self.calls.insert(key, call);
        self.reply(req, tx, StatusCode::TRYING, now);
        self.respond_to_invite(key, StatusCode::RINGING, None, now);
        if let Some(c) = self.calls.get(&key) {
            let snapshot = c.snapshot.clone();
            self.emit(AgentEvent::Call(CallEvent::Incoming(snapshot)));
        }
    }

    fn handle_cancel(&mut self, req: &Request, tx: &TransactionKey, now: Instant) {
        let invite_tx = TransactionKey { branch: tx.branch.clone(), method: Method::Invite };
        let key = self
            .calls
            .values()
            .find(|c| {
                c.direction == CallDirection::Incoming
                    && c.remote_invite.as_ref().and_then(TransactionKey::of_request).as_ref() == Some(&invite_tx)
            })
            .map(|c| (c.key, c.state));
        match key {
            None => self.reply(req, tx, StatusCode::CALL_DOES_NOT_EXIST, now),
            Some((key, state)) => {
                self.reply(req, tx, StatusCode::OK, now);
                if matches!(state, CallState::Ringing | CallState::AnswerPending) {
                    self.respond_to_invite(key, StatusCode::REQUEST_TERMINATED, None, now);
                    self.end_call(key, Originator::Remote, Some(487), "cancelled by the caller", now);
                }
            }
        }
    }

    /// An ACK that matched no server transaction: the ACK for our 2xx.
    pub(super) fn handle_dialog_ack(&mut self, req: &Request, now: Instant) {
        let call_id = req.headers.get(&HeaderName::CallId).unwrap_or("");
        let to_tag = tag_of(req.headers.get(&HeaderName::To));
        let from_tag = tag_of(req.headers.get(&HeaderName::From));
        let Some(call) = self.calls.values_mut().find(|c| c.matches(call_id, to_tag.as_deref(), from_tag.as_deref()))
        else {
            tracing::debug!("ACK for no dialog: dropped");
            return;
        };
        if call.state != CallState::WaitingAck {
            return;
        }
        call.state = CallState::Confirmed;
        call.ack_deadline = None;
        call.snapshot.connected = Some(now);
        let key = call.key;
        if call.late_offer {
            if !req.headers.carries_sdp(&req.body) {
                // Our 200 carried the offer: the ACK must carry the answer (RFC 3261 §13.2.1).
                self.send_bye(key, Originator::System, "the ACK carried no SDP answer", now);
                return;
            }
            self.media(MediaRequest::ApplyAnswer { call: key, answer: req.body.clone() });
        }
        if let Some(c) = self.calls.get(&key) {
            let snapshot = c.snapshot.clone();
            self.emit(AgentEvent::Call(CallEvent::Confirmed(snapshot)));
        }
    }

    /// re-INVITE or UPDATE in a confirmed dialog: a session refresh, with or
    /// without a new offer.
    fn handle_offer_in_dialog(&mut self, key: CallKey, req: &Request, tx: &TransactionKey, now: Instant) {
        let min_se = self.cfg.calls.min_se;
        let Some(call) = self.calls.get_mut(&key) else { return };
        if call.state != CallState::Confirmed || call.pending_offer.is_some() {
            // RFC 3261 §14.2: an offer while another is pending.
            let status = StatusCode::new(491).unwrap_or(StatusCode::BAD_REQUEST);
            self.reply(req, tx, status, now);
            return;
        }
        if let Some(addr) = first_contact(&req.headers) {
            call.remote_target = Some(addr);
        }
        let se = req.headers.typed::<SessionExpires>().and_then(Result::ok);
        let interval =
            se.as_ref().map_or(call.session_timer.as_ref().map(|t| t.interval), |s| Some(s.delta.max(min_se)));
        let refresher = se.as_ref().and_then(|s| s.refresher.clone()).unwrap_or_else(|| "uac".into());
        call.session_timer = interval.map(|i| SessionTimer::new(i, refresher == "uas", now));
        if !req.body.is_empty() {
            call.pending_offer = Some((req.clone(), tx.clone()));
            self.media(MediaRequest::Answer {
                call: key,
                offer: req.body.clone(),
                direction: MediaDirection::SendRecv,
            });
            return;
        }
        let mut resp = crate::sip::validate::response_to(req, StatusCode::OK);
        resp.headers.push(HeaderName::Contact, self.contact.to_string());
        if let Some(i) = interval {
            resp.headers.push(HeaderName::Require, "timer");
            resp.headers.push(HeaderName::SessionExpires, format!("{i};refresher={refresher}"));
        }
        if req.method == Method::Invite {
            // A re-INVITE without an offer: offer our current SDP again.
            if let Some(sdp) = call.local_sdp.clone() {
                resp.headers.push(HeaderName::ContentType, "application/sdp");
                resp.body = sdp;
            }
        }
        self.send_response(tx, resp, now);
    }

    fn answer_pending_offer(&mut self, key: CallKey, sdp: Bytes, now: Instant) {
        let contact = self.contact.to_string();
        let Some(call) = self.calls.get_mut(&key) else { return };
        let Some((req, tx)) = call.pending_offer.take() else { return };
        let mut resp = crate::sip::validate::response_to(&req, StatusCode::OK);
        resp.headers.push(HeaderName::Contact, contact);
        if let Some(t) = &call.session_timer {
            let refresher = if t.we_refresh { "uas" } else { "uac" };
            resp.headers.push(HeaderName::Require, "timer");
            resp.headers.push(HeaderName::SessionExpires, format!("{};refresher={refresher}", t.interval));
        }
        resp.headers.push(HeaderName::ContentType, "application/sdp");
        resp.body = sdp;
        self.send_response(&tx, resp, now);
    }

    /// Timers of one call: auto-answer, missing ACK, session refresh/expiry.
    pub(super) fn handle_call_timeout(&mut self, key: CallKey, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else { return };
        if call.auto_answer_at.is_some_and(|t| now >= t) {
            call.auto_answer_at = None;
            let _ = self.answer(key, now);
            return;
        }
        if call.cancel_deadline.is_some_and(|t| now >= t) {
            call.cancel_deadline = None;
            let cause = call.cancel_cause.take();
            let (by, reason) = cause.map_or((Originator::Local, "cancelled".to_string()), |c| (c.by, c.reason));
            self.end_call(key, by, Some(408), &format!("{reason} (no final response to the CANCEL)"), now);
            return;
        }
        if call.ack_deadline.is_some_and(|t| now >= t) {
            call.ack_deadline = None;
            self.send_bye(key, Originator::System, "no ACK for our 200 OK", now);
            return;
        }
        let Some(timer) = call.session_timer.clone() else { return };
        if now < timer.deadline {
            return;
        }
        if !timer.we_refresh {
            self.send_bye(key, Originator::System, "session timer expired", now);
            return;
        }
        let contact = self.contact.clone();
        let method = if call.peer_allows_update { Method::Update } else { Method::Invite };
        let mut req = call.in_dialog_request(method.clone(), &contact);
        req.headers.push(HeaderName::Supported, "timer");
        req.headers.push(HeaderName::SessionExpires, format!("{};refresher=uac", timer.interval));
        if method == Method::Invite
            && let Some(sdp) = call.local_sdp.clone()
        {
            req.headers.push(HeaderName::ContentType, "application/sdp");
            req.body = sdp;
        }
        // Until the answer arrives, do not refresh again.
        call.session_timer =
            Some(SessionTimer { deadline: now + Duration::from_secs(u64::from(timer.interval) / 2), ..timer });
        self.send_request(req, Owner::InDialog(key), now);
    }

    /// Ends a call: records the cause, releases its media, reports it.
    pub(super) fn end_call(&mut self, key: CallKey, by: Originator, status: Option<u16>, reason: &str, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else { return };
        if call.is_ended() {
            return;
        }
        call.state = CallState::Ended;
        call.session_timer = None;
        call.auto_answer_at = None;
        call.ack_deadline = None;
        call.cancel_deadline = None;
        call.snapshot.ended = Some(now);
        call.snapshot.end = Some(EndCause { by, status, reason: reason.to_string() });
        let snapshot = call.snapshot.clone();
        // A re-INVITE / UPDATE still waiting for our answer is refused (RFC 3261 §15.1.2).
        if let Some((req, tx)) = call.pending_offer.take() {
            let resp = crate::sip::validate::response_to(&req, StatusCode::REQUEST_TERMINATED);
            self.send_response(&tx, resp, now);
        }
        self.media(MediaRequest::Close { call: key });
        self.emit(AgentEvent::Call(CallEvent::Ended(snapshot)));
    }

    /// Forgets ended calls (their transactions may still finish).
    pub(super) fn prune_calls(&mut self) {
        self.calls.retain(|_, c| !c.is_ended());
    }

    /// Ends every call without signalling (the phone is stopping and can no
    /// longer send), reporting each as ended by the system.
    pub fn abandon_calls(&mut self, reason: &str, now: Instant) {
        let keys: Vec<_> = self.calls.values().filter(|c| !c.is_ended()).map(|c| c.key).collect();
        for key in keys {
            self.end_call(key, Originator::System, None, reason, now);
        }
    }

    /// The transport is gone: calls still being set up cannot complete.
    pub(super) fn end_unconfirmed_calls(&mut self, now: Instant) {
        let keys: Vec<_> =
            self.calls.values().filter(|c| !c.is_ended() && c.state != CallState::Confirmed).map(|c| c.key).collect();
        for key in keys {
            self.end_call(key, Originator::System, None, "connection lost", now);
        }
    }
}

/// The URI of the first Contact, used verbatim as the remote target
/// (Kamailio adds `;alias=...` for WebSocket peers: it must stay).
fn first_contact(headers: &crate::sip::Headers) -> Option<Uri> {
    let contacts = headers.typed_all::<crate::sip::Contact>().ok()?;
    contacts.first()?.address().map(|a| a.uri.clone())
}

fn allows_update(resp: &Response) -> bool {
    resp.headers.tokens(&HeaderName::Allow).is_ok_and(|t| t.iter().any(|m| m.eq_ignore_ascii_case("UPDATE")))
}

fn tag_of(value: Option<&str>) -> Option<String> {
    NameAddr::parse(value?).and_then(|a| a.tag().map(str::to_string))
}
