//! The agent's side of calls: the lines (how many calls may exist), the
//! commands that create and drive calls, and the routing of requests,
//! responses and SDP to the [`Call`] they belong to. What a call does with
//! them is its own business (`call/`).

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use super::call::{Call, CallCtx, CallError, CallKey, CallOutput, CallRequest, CallSnapshot, CallState, tag_of};
use super::transaction::TransactionKey;
use super::{AgentEvent, Output, Owner, UserAgent};
use crate::contract::check_remote_offer;
use crate::sip::validate::response_to;
use crate::sip::{
    CSeq, ContentType, HeaderName, Method, MinSe, Request, Response, SessionExpires, SipUri, StatusCode, Uri,
};

impl UserAgent {
    /// Command: place a call. The call exists at once (a
    /// [`super::CallEvent::Outgoing`] follows) and the INVITE leaves when the
    /// media side hands over its offer.
    pub fn call(&mut self, request: CallRequest, now: Instant) -> Result<CallKey, CallError> {
        self.place_call(request, None, now)
    }

    /// Places a call (for the application, or on the peer's REFER:
    /// `transferred_from`).
    pub(super) fn place_call(
        &mut self,
        request: CallRequest,
        transferred_from: Option<CallKey>,
        now: Instant,
    ) -> Result<CallKey, CallError> {
        if self.mode == super::Mode::Inactive {
            return Err(CallError::ModeForbids);
        }
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
        self.hold_other_lines(None, now);
        let key = self.next_call_key();
        let aor = self.aor.clone();
        self.create_call(key, now, |ctx| Some(Call::outgoing(ctx, key, &aor, target, request, transferred_from, now)));
        Ok(key)
    }

    /// Command: answer a ringing incoming call. The 200 OK leaves when the
    /// media side hands over its answer (or, for a late-offer INVITE, its offer).
    pub fn answer(&mut self, key: CallKey, now: Instant) -> Result<(), CallError> {
        if self.call_state(key) == Some(CallState::Ringing) {
            self.hold_other_lines(Some(key), now);
        }
        self.with_call(key, now, |call, ctx| call.answer(ctx, now)).unwrap_or(Err(CallError::NoSuchCall))
    }

    /// Command: refuse a ringing incoming call with `status` (486 Busy Here, 603 Decline, ...).
    pub fn reject(&mut self, key: CallKey, status: StatusCode, now: Instant) -> Result<(), CallError> {
        self.with_call(key, now, |call, ctx| call.reject(ctx, status, now)).unwrap_or(Err(CallError::NoSuchCall))
    }

    /// Command: end a call in whatever state it is: CANCEL before an
    /// answer, BYE after, 486 while ringing.
    pub fn hangup(&mut self, key: CallKey, now: Instant) -> Result<(), CallError> {
        self.with_call(key, now, |call, ctx| call.hangup(ctx, now)).ok_or(CallError::NoSuchCall)
    }

    /// Command: hold a confirmed call (re-offer `sendonly`, or `inactive`
    /// while the peer holds us). Idempotent; [`super::CallEvent::Held`] or
    /// [`super::CallEvent::HoldFailed`] follows.
    pub fn hold(&mut self, key: CallKey, now: Instant) -> Result<(), CallError> {
        self.with_call(key, now, |call, ctx| call.set_held(ctx, true)).unwrap_or(Err(CallError::NoSuchCall))
    }

    /// Command: resume a call we hold (re-offer `sendrecv`, or `recvonly`
    /// while the peer holds us). Idempotent.
    pub fn resume(&mut self, key: CallKey, now: Instant) -> Result<(), CallError> {
        if self.call_state(key) == Some(CallState::Confirmed) {
            self.hold_other_lines(Some(key), now);
        }
        self.with_call(key, now, |call, ctx| call.set_held(ctx, false)).unwrap_or(Err(CallError::NoSuchCall))
    }

    /// The lines policy ([`super::CallSettings::hold_other_lines`]): holds
    /// every confirmed call but `except`.
    fn hold_other_lines(&mut self, except: Option<CallKey>, now: Instant) {
        if !self.cfg.calls.hold_other_lines {
            return;
        }
        for key in self.call_keys() {
            if Some(key) != except && self.call_state(key) == Some(CallState::Confirmed) {
                let _ = self.hold(key, now);
            }
        }
    }

    /// Whether a call is held by us and by the peer.
    pub fn call_held(&self, key: CallKey) -> Option<(bool, bool)> {
        self.calls.get(&key).map(Call::held)
    }

    /// Command: send one DTMF digit by SIP INFO (`application/dtmf-relay`)
    /// now; [`CallEvent::DtmfSent`](super::CallEvent::DtmfSent) follows its
    /// 2xx. The call must be confirmed. The core does not pace digits: the
    /// driver's per-call DTMF queue (in the call's audio) says when each goes.
    pub fn send_dtmf_info(
        &mut self,
        key: CallKey,
        digit: char,
        duration_ms: u32,
        now: Instant,
    ) -> Result<(), CallError> {
        let digit = crate::dtmf::normalize(digit)
            .ok_or_else(|| CallError::InvalidDigits(format!("{digit:?} is not a DTMF symbol (0-9 * # A-D)")))?;
        let duration_ms = duration_ms.clamp(crate::dtmf::DURATION_RANGE_MS.0, crate::dtmf::DURATION_RANGE_MS.1);
        self.with_call(key, now, |call, ctx| call.send_dtmf_info(ctx, digit, duration_ms))
            .unwrap_or(Err(CallError::NoSuchCall))
    }

    /// Input: the media side's SDP for `key` (the offer or answer asked
    /// for by a [`super::MediaRequest`]), or why it could not make one.
    pub fn handle_local_sdp(&mut self, key: CallKey, sdp: Result<Bytes, String>, now: Instant) {
        self.with_call(key, now, |call, ctx| call.handle_local_sdp(ctx, sdp, now));
    }

    /// Input: the call's media failed after setup (the answer could not be
    /// applied, ICE/DTLS never connected): end the call the right way for
    /// its state.
    pub fn handle_media_failure(&mut self, key: CallKey, reason: &str, now: Instant) {
        self.with_call(key, now, |call, ctx| call.handle_media_failure(ctx, reason, now));
    }

    /// Snapshot of a call, if it exists.
    pub fn call_snapshot(&self, key: CallKey) -> Option<&CallSnapshot> {
        self.calls.get(&key).map(Call::snapshot)
    }

    /// Where a call is, if it exists.
    pub(crate) fn call_state(&self, key: CallKey) -> Option<CallState> {
        self.calls.get(&key).map(Call::state)
    }

    /// Keys of the calls that have not ended.
    pub fn call_keys(&self) -> Vec<CallKey> {
        self.calls.values().filter(|c| !c.is_ended()).map(Call::key).collect()
    }

    /// Ends every call without signalling (the phone is stopping and can no
    /// longer send), reporting each as ended by the system.
    pub fn abandon_calls(&mut self, reason: &str, now: Instant) {
        for key in self.call_keys() {
            self.with_call(key, now, |call, ctx| call.abandon(ctx, reason, now));
        }
    }

    fn active_calls(&self) -> usize {
        self.calls.values().filter(|c| !c.is_ended()).count()
    }

    fn next_call_key(&mut self) -> CallKey {
        self.next_call += 1;
        CallKey(self.next_call)
    }

    /// Runs `f` on the call `key` with a context, then carries out what
    /// the call asked for. `None` when there is no such call.
    pub(super) fn with_call<R>(
        &mut self,
        key: CallKey,
        now: Instant,
        f: impl FnOnce(&mut Call, &mut CallCtx<'_>) -> R,
    ) -> Option<R> {
        self.with_ctx(key, now, |calls, ctx| calls.get_mut(&key).map(|call| f(call, ctx)))
    }

    /// Creates a call with `make` and carries out what it asked for.
    fn create_call(&mut self, key: CallKey, now: Instant, make: impl FnOnce(&mut CallCtx<'_>) -> Option<Call>) {
        self.with_ctx(key, now, |calls, ctx| {
            if let Some(call) = make(ctx) {
                calls.insert(key, call);
            }
        });
    }

    /// Runs `f` with the calls and a context for call `key`, then carries
    /// out the outputs it queued.
    fn with_ctx<R>(
        &mut self,
        key: CallKey,
        now: Instant,
        f: impl FnOnce(&mut BTreeMap<CallKey, Call>, &mut CallCtx<'_>) -> R,
    ) -> R {
        let mut out = VecDeque::new();
        let allow = self.allow_header();
        let contact = self.dialog_contact();
        let mut ctx = CallCtx {
            contact: &contact,
            allow: &allow,
            settings: &self.cfg.calls,
            timers: &self.cfg.timers,
            stamp: &self.stamp,
            auth: &mut self.auth,
            rng: &mut self.rng,
            out: &mut out,
        };
        let result = f(&mut self.calls, &mut ctx);
        self.carry_out(key, out, now);
        result
    }

    /// Carries out a call's outputs, in order.
    fn carry_out(&mut self, key: CallKey, out: VecDeque<CallOutput>, now: Instant) {
        for output in out {
            match output {
                CallOutput::Request(req, purpose) => {
                    self.send_prepared(req, Owner::Call(key, purpose), now);
                }
                CallOutput::Ack(ack) => {
                    let bytes = ack.to_bytes();
                    tracing::trace!(message = %crate::sip::redacted(&bytes), "SIP out");
                    self.transmit(bytes);
                }
                CallOutput::Respond(tx, resp) => self.send_response(&tx, resp, now),
                CallOutput::Media(request) => self.outputs.push_back(Output::Media(request)),
                CallOutput::Event(event) => {
                    self.relay_transfer_progress(key, &event, now);
                    self.emit(AgentEvent::Call(event));
                }
                CallOutput::EndReplaced(consult) => self.end_replaced_later(consult, now),
            }
        }
    }

    /// The Contact of our dialogs: the public GRUU the registrar gave us
    /// (RFC 5627), which reaches this device through the registrar whatever
    /// connection it is on (so in-dialog requests survive a reconnection on
    /// both sides, and an attended transfer can name it), else our Contact.
    fn dialog_contact(&self) -> crate::sip::NameAddr {
        match self.registration.gruu() {
            Some(gruu) => crate::sip::NameAddr::new(gruu.clone()),
            None => self.contact.clone(),
        }
    }

    /// Forgets ended calls (their transactions may still finish).
    pub(super) fn prune_calls(&mut self) {
        self.forget_transfers_of_ended();
        // A call with a transfer's subscription to finish stays (see `Call::lingers`).
        self.calls.retain(|_, c| !c.is_ended() || c.lingers());
    }

    pub(super) fn resolve_target(&self, target: &str) -> Result<Uri, CallError> {
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

    /// An incoming request that belongs to calls: a new INVITE, CANCEL, or
    /// any request inside a call's dialog. Returns false when it is not for
    /// a call.
    pub(super) fn handle_call_request(&mut self, req: &Request, tx: &TransactionKey, now: Instant) -> bool {
        let to_tag = tag_of(req.headers.get(&HeaderName::To));
        let from_tag = tag_of(req.headers.get(&HeaderName::From));
        let call_id = req.headers.get(&HeaderName::CallId).unwrap_or("").to_string();
        if req.method == Method::Invite && to_tag.is_none() {
            self.handle_new_invite(req, tx, now);
            return true;
        }
        if req.method == Method::Cancel {
            let invite_tx = TransactionKey { branch: tx.branch.clone(), method: Method::Invite };
            let key = self.calls.values().find(|c| c.has_invite_transaction(&invite_tx)).map(Call::key);
            match key {
                Some(key) => {
                    self.with_call(key, now, |call, ctx| call.handle_request(ctx, req, tx, now));
                }
                None => self.reply(req, tx, StatusCode::CALL_DOES_NOT_EXIST, now),
            }
            return true;
        }
        if to_tag.is_none() {
            return false;
        }
        // A NOTIFY about our transfer may come after the call ended.
        let alive = |c: &Call| !c.is_ended() || (req.method == Method::Notify && c.lingers());
        let key = self
            .calls
            .values()
            .find(|c| alive(c) && c.matches(&call_id, to_tag.as_deref(), from_tag.as_deref()))
            .map(Call::key);
        match key {
            Some(key) if req.method == Method::Refer => self.handle_refer(key, req, tx, now),
            Some(key) => {
                self.with_call(key, now, |call, ctx| call.handle_request(ctx, req, tx, now));
            }
            None => self.reply(req, tx, StatusCode::CALL_DOES_NOT_EXIST, now),
        }
        true
    }

    fn handle_new_invite(&mut self, req: &Request, tx: &TransactionKey, now: Instant) {
        let min_se = self.cfg.calls.min_se;
        if let Some(Ok(se)) = req.headers.typed::<SessionExpires>()
            && se.delta < min_se
        {
            let mut resp = response_to(req, StatusCode::new(422).unwrap_or(StatusCode::BAD_REQUEST));
            resp.headers.push_typed(&MinSe(min_se));
            self.send_response(tx, resp, now);
            return;
        }
        if !req.body.is_empty() {
            let is_sdp =
                matches!(req.headers.typed::<ContentType>(), Some(Ok(ct)) if ct.media_type == "application/sdp");
            if !is_sdp {
                let mut resp = response_to(req, StatusCode::UNSUPPORTED_MEDIA_TYPE);
                resp.headers.push(HeaderName::Accept, "application/sdp");
                self.send_response(tx, resp, now);
                return;
            }
            // Checked before it rings: an offer we cannot use gets 488 at once.
            if let Err(refusal) = check_remote_offer(&req.body) {
                tracing::warn!(%refusal, "refusing an INVITE's offer");
                self.report_malformed(&format!("INVITE offer refused: {refusal}"), now);
                self.reply(req, tx, StatusCode::NOT_ACCEPTABLE_HERE, now);
                return;
            }
        }
        if req.headers.get(&HeaderName::Replaces).is_some() {
            // It takes the place of a call we have: no line or mode check.
            self.handle_replacing_invite(req, tx, now);
            return;
        }
        if self.active_calls() >= self.cfg.calls.max_calls || self.mode != super::Mode::Active {
            self.reply(req, tx, StatusCode::BUSY_HERE, now);
            return;
        }
        self.accept_new_invite(req, tx, now);
    }

    /// Creates the incoming call of a checked new INVITE (it rings); 400
    /// when the INVITE lacks what a call needs.
    pub(super) fn accept_new_invite(&mut self, req: &Request, tx: &TransactionKey, now: Instant) -> Option<CallKey> {
        let key = self.next_call_key();
        let mut created = false;
        self.create_call(key, now, |ctx| {
            let call = Call::incoming(ctx, key, req, tx, now);
            created = call.is_some();
            call
        });
        if !created {
            self.reply(req, tx, StatusCode::BAD_REQUEST, now);
        }
        created.then_some(key)
    }

    /// An ACK that matched no server transaction: the ACK for our 2xx to an
    /// INVITE or re-INVITE.
    pub(super) fn handle_dialog_ack(&mut self, req: &Request, now: Instant) {
        let call_id = req.headers.get(&HeaderName::CallId).unwrap_or("");
        let to_tag = tag_of(req.headers.get(&HeaderName::To));
        let from_tag = tag_of(req.headers.get(&HeaderName::From));
        let key = self
            .calls
            .values()
            .find(|c| !c.is_ended() && c.matches(call_id, to_tag.as_deref(), from_tag.as_deref()))
            .map(Call::key);
        match key {
            Some(key) => {
                self.with_call(key, now, |call, ctx| call.handle_ack(ctx, req, now));
            }
            None => tracing::debug!("ACK for no dialog: dropped"),
        }
    }

    /// A 2xx for an INVITE whose transaction is gone: a retransmission the
    /// peer sends until it sees our ACK (RFC 3261 §13.2.2.4): ACK it again.
    pub(super) fn handle_stray_2xx(&mut self, resp: &Response, now: Instant) -> bool {
        let Some(Ok(cseq)) = resp.headers.typed::<CSeq>() else { return false };
        if cseq.method != Method::Invite || !resp.status.is_success() {
            return false;
        }
        let call_id = resp.headers.get(&HeaderName::CallId).unwrap_or("");
        let from_tag = tag_of(resp.headers.get(&HeaderName::From));
        let key = self.calls.values().find(|c| c.sent_from(call_id, from_tag.as_deref())).map(Call::key);
        match key {
            Some(key) => {
                self.with_call(key, now, |call, ctx| call.handle_retransmitted_2xx(ctx, cseq.seq)).unwrap_or(false)
            }
            None => false,
        }
    }
}
