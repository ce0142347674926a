//! One call as its own sans-IO state machine.
//!
//! [`super::UserAgent`] owns the transactions and routes to a `Call`
//! what belongs to it: requests in its dialog, responses to the requests it
//! sent (each tagged with the `Purpose` it was sent for), its timers, the
//! application's commands and the media side's SDP. The call answers with
//! `CallOutput`s that the agent carries out (start a client transaction,
//! send a response through a server transaction, ask the media side for
//! SDP, report an event).
//!
//! The rooms:
//! - this module: the call's data, its dialog (tags, CSeqs, route set,
//!   remote target), what the application sees ([`CallSnapshot`]), the
//!   timer table, and the routing of inputs;
//! - `setup`: the initial INVITE in both roles, CANCEL, the ACK, BYE and
//!   the end of the call;
//! - `session`: the offer/answer sub-state (`OfferAnswer`) that the
//!   initial INVITE, re-INVITE and UPDATE all go through, in both
//!   directions, with 491 glare handling;
//! - `session_timer`: RFC 4028 session timers;
//! - `hold`: hold and resume, the application's wish apart from what was
//!   agreed;
//! - `transfer`: REFER and its NOTIFYs, as transferor and transferee;
//! - `target_refresh`: a WebSocket drop, and the target refresh after it;
//! - `dtmf_info`: DTMF digits by SIP INFO.

mod dtmf_info;
mod hold;
mod session;
mod session_timer;
mod setup;
mod target_refresh;
mod transfer;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;

pub use crate::contract::CallKey;
use crate::contract::MediaRequest;
use crate::sip::validate::response_to;
use crate::sip::{CSeq, HeaderName, Host, Method, NameAddr, Request, Response, StatusCode, Uri, Via};

use super::CallEvent;
use super::auth::DigestClient;
use super::register::random_token;
use super::transaction::{Timers, TransactionKey};
use hold::Hold;
pub(crate) use session::OfferAnswer;
use session::OfferCarrier;
pub(crate) use session_timer::SessionTimer;
pub(crate) use setup::SUPPORTED;
pub use transfer::TransferPolicy;
pub(crate) use transfer::{ReferRequest, names_dialog};

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
    /// The phone's mode does not allow it (placing a call while inactive).
    #[error("the phone's mode does not allow it")]
    ModeForbids,
    /// An extra header is malformed (name not a token, CR/LF in the value).
    #[error("invalid header {0:?}")]
    InvalidHeader(String),
    /// A DTMF digit (or digit string) holds something else than `0-9 * # A-D`
    /// (and `,` in a string).
    #[error("invalid DTMF digits: {0}")]
    InvalidDigits(String),
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
    /// Lines as a softphone has them: placing, answering or resuming a call
    /// first holds every other confirmed call, so at most one has audio
    /// both ways (Bizfly's `createLine2`). Off for bots that talk to many
    /// callers at once.
    pub hold_other_lines: bool,
    /// What to do when the peer asks us to transfer (REFER).
    pub transfer_policy: TransferPolicy,
    /// End a call once its blind transfer succeeded (the final NOTIFY said
    /// 2xx). An attended transfer always ends both calls.
    pub end_after_transfer: bool,
    /// How long a transfer of ours waits for its final NOTIFY (refreshed by
    /// each NOTIFY) before it is reported failed; the call stays up.
    pub transfer_timeout: Duration,
}

impl Default for CallSettings {
    fn default() -> Self {
        CallSettings {
            session_expires: Some(1800),
            min_se: 90,
            max_calls: 2,
            auto_answer: None,
            hold_other_lines: true,
            transfer_policy: TransferPolicy::Accept,
            end_after_transfer: true,
            transfer_timeout: Duration::from_secs(60),
        }
    }
}

/// Who placed the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallDirection {
    /// We called.
    Outgoing,
    /// We were called.
    Incoming,
}

/// Who or what ended a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Originator {
    /// This phone (hang-up, cancel, reject).
    Local,
    /// The other party or the network (BYE, CANCEL, error response).
    Remote,
    /// Neither: a timer or a failure (no ACK, session expired, media failed).
    System,
}

/// Why a call ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EndCause {
    /// Who ended it.
    pub by: Originator,
    /// The SIP status involved, if any (487 for a cancelled call, 486 busy...).
    pub status: Option<u16>,
    /// A reason phrase or description.
    pub reason: String,
    /// Our BYE failed with this status (408: no answer, 503: the connection
    /// was lost): the call ended here, but the far end may not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bye_status: Option<u16>,
}

/// A party of a call.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Party {
    /// The address (From / To URI).
    pub uri: String,
    /// User part of the address, when it has one.
    pub user: Option<String>,
    /// Display name, when given.
    pub display_name: Option<String>,
}

impl Party {
    pub(crate) fn from_name_addr(a: &NameAddr) -> Party {
        Party { uri: a.uri.to_string(), user: a.uri.user().map(str::to_string), display_name: a.display.clone() }
    }
}

/// What the application sees of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSnapshot {
    /// Local handle.
    pub key: CallKey,
    /// SIP Call-ID.
    pub call_id: String,
    /// Who called.
    pub direction: CallDirection,
    /// This phone's party.
    pub local: Party,
    /// The other party.
    pub remote: Party,
    /// Extension headers received on the initial INVITE (incoming) or the
    /// final response (outgoing): every header the SIP layer does not
    /// itself interpret, name and value as received.
    pub headers: Vec<(String, String)>,
    /// When the call started (INVITE sent or received).
    pub started: Instant,
    /// When it was answered.
    pub connected: Option<Instant>,
    /// When it ended.
    pub ended: Option<Instant>,
    /// Why it ended.
    pub end: Option<EndCause>,
    /// This call was placed because the peer of that call asked us to
    /// transfer it (REFER).
    pub transferred_from: Option<CallKey>,
}

/// Where a call is in its life (the offer/answer exchange has its own
/// sub-state, [`OfferAnswer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallState {
    /// Outgoing: waiting for the media side's offer.
    Dialing,
    /// Outgoing: INVITE sent, no provisional response yet.
    Calling,
    /// Outgoing: a provisional response came.
    Early,
    /// Outgoing: hung up before any provisional response; CANCEL follows the first one.
    CancelPending,
    /// Outgoing: CANCEL sent, waiting for the INVITE's final response.
    Cancelling,
    /// Incoming: ringing, waiting for the application.
    Ringing,
    /// Incoming: answered, waiting for the media side's answer (or offer).
    Answering,
    /// Incoming: 200 OK sent, waiting for the ACK.
    WaitingAck,
    /// Both: the dialog is confirmed.
    Confirmed,
    /// Ended.
    Ended,
}

/// Why a client transaction of a call was started, so that its response
/// (or its time-out) reaches the code that asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Purpose {
    /// The initial INVITE.
    Invite,
    /// CANCEL of the initial INVITE.
    Cancel,
    /// BYE.
    Bye,
    /// A re-INVITE (an offer of ours, or a session refresh).
    ReInvite,
    /// An UPDATE (a session refresh without SDP).
    Update,
    /// An INFO carrying a DTMF digit.
    Info,
    /// A REFER (we transfer the call).
    Refer,
    /// A NOTIFY about a call we placed on the peer's REFER.
    Notify,
    /// An UPDATE (or a re-INVITE: `reinvite`) refreshing the dialog's
    /// target after the connection came back.
    TargetRefresh {
        /// It is a re-INVITE (the peer does not allow UPDATE).
        reinvite: bool,
    },
}

/// Something the agent must do for a call.
// Moved once each from the core to the application; CallReplaced carries
// two calls, and boxing it would allocate per event for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum CallOutput {
    /// Start a client transaction for this request (already stamped with
    /// its Via, or carrying the INVITE's for a CANCEL).
    Request(Request, Purpose),
    /// Send this request outside any transaction (the ACK for a 2xx).
    Ack(Request),
    /// Send this response through the server transaction `key`.
    Respond(TransactionKey, Response),
    /// Ask the media side for this.
    Media(MediaRequest),
    /// Report this.
    Event(CallEvent),
    /// End this other call, the consultation call of a completed attended
    /// transfer, unless its peer (which accepted the Replaces) ends it first.
    EndReplaced(CallKey),
}

/// What a call needs from the agent while it handles an input: identity,
/// settings, randomness and the place to put its outputs.
pub(crate) struct CallCtx<'a> {
    pub contact: &'a NameAddr,
    pub allow: &'a str,
    pub settings: &'a CallSettings,
    pub timers: &'a Timers,
    pub stamp: &'a Stamp,
    pub auth: &'a mut DigestClient,
    pub rng: &'a mut StdRng,
    pub out: &'a mut VecDeque<CallOutput>,
}

impl CallCtx<'_> {
    fn emit(&mut self, event: CallEvent) {
        self.out.push_back(CallOutput::Event(event));
    }

    fn media(&mut self, request: MediaRequest) {
        self.out.push_back(CallOutput::Media(request));
    }

    fn respond(&mut self, tx: &TransactionKey, resp: Response) {
        self.out.push_back(CallOutput::Respond(tx.clone(), resp));
    }

    /// Stamps `req` with a fresh Via and queues it as a client transaction;
    /// returns the request as sent.
    fn send(&mut self, mut req: Request, purpose: Purpose) -> Request {
        self.stamp.apply(&mut req, self.rng);
        self.out.push_back(CallOutput::Request(req.clone(), purpose));
        req
    }

    fn send_ack(&mut self, mut ack: Request) -> Request {
        self.stamp.apply(&mut ack, self.rng);
        self.out.push_back(CallOutput::Ack(ack.clone()));
        ack
    }

    fn token(&mut self, len: usize) -> String {
        random_token(self.rng, len)
    }
}

/// What every request we originate carries: our Via (fresh branch),
/// Max-Forwards and User-Agent.
#[derive(Clone, Debug)]
pub(crate) struct Stamp {
    /// Via transport token: `WS` or `WSS`.
    pub via_transport: &'static str,
    /// The random `*.invalid` host used in Via.
    pub via_host: String,
    /// `User-Agent` header value.
    pub user_agent: String,
}

impl Stamp {
    pub(crate) fn apply(&self, req: &mut Request, rng: &mut StdRng) {
        let branch = format!("z9hG4bK{}", random_token(rng, 16));
        let via = Via::new(self.via_transport, Host::Domain(self.via_host.clone()), &branch);
        let mut headers = crate::sip::Headers::new();
        headers.push_typed(&via);
        headers.push(HeaderName::MaxForwards, "70");
        for h in req.headers.iter() {
            if !matches!(h.name, HeaderName::Via | HeaderName::MaxForwards | HeaderName::UserAgent) {
                headers.push(h.name.clone(), h.value.clone());
            }
        }
        headers.push(HeaderName::UserAgent, self.user_agent.clone());
        req.headers = headers;
    }
}

/// The call's timers, one table: each fires [`Call::handle_timeout`].
#[derive(Clone, Debug, Default)]
struct CallTimers {
    /// Incoming: answer by ourselves.
    auto_answer: Option<Instant>,
    /// Incoming: give up waiting for the ACK of our 2xx (64*T1).
    ack: Option<Instant>,
    /// Outgoing, being cancelled: stop waiting for the INVITE's final response.
    cancel: Option<Instant>,
    /// Our re-offer got 491: send it again then (RFC 3261 §14.1).
    offer_retry: Option<Instant>,
}

impl CallTimers {
    fn next(&self) -> Option<Instant> {
        [self.auto_answer, self.ack, self.cancel, self.offer_retry].into_iter().flatten().min()
    }

    fn clear(&mut self) {
        *self = CallTimers::default();
    }
}

/// Takes the timer if it is due.
fn due(timer: &mut Option<Instant>, now: Instant) -> bool {
    if timer.is_some_and(|t| now >= t) {
        *timer = None;
        true
    } else {
        false
    }
}

/// The dialog's identity and routing (RFC 3261 §12).
#[derive(Debug)]
struct Dialog {
    call_id: String,
    local: NameAddr,
    remote: NameAddr,
    local_tag: String,
    remote_tag: Option<String>,
    local_cseq: u32,
    remote_target: Option<Uri>,
    /// Route set, first hop first (raw name-addr values).
    route_set: Vec<String>,
    /// The peer accepts UPDATE (for session refresh without SDP).
    peer_allows_update: bool,
}

impl Dialog {
    /// Builds an in-dialog request (BYE, UPDATE, re-INVITE): Request-URI =
    /// remote target, Route = route set, tags, next CSeq. No Via yet.
    fn request(&mut self, method: Method, contact: &NameAddr) -> Request {
        self.local_cseq += 1;
        let mut req = self.request_with_cseq(method.clone(), self.local_cseq);
        if method != Method::Bye {
            req.headers.push(HeaderName::Contact, contact.to_string());
        }
        req
    }

    fn request_with_cseq(&self, method: Method, seq: u32) -> Request {
        let target = self.remote_target.clone().unwrap_or_else(|| self.remote.uri.clone());
        let mut req = Request::new(method.clone(), target);
        if !self.route_set.is_empty() {
            req.headers.push(HeaderName::Route, self.route_set.join(", "));
        }
        let mut from = self.local.clone();
        from.params.set("tag", Some(self.local_tag.clone()));
        let mut to = self.remote.clone();
        if let Some(tag) = &self.remote_tag {
            to.params.set("tag", Some(tag.clone()));
        }
        req.headers.push(HeaderName::From, from.to_string());
        req.headers.push(HeaderName::To, to.to_string());
        req.headers.push(HeaderName::CallId, self.call_id.clone());
        req.headers.push_typed(&CSeq { seq, method });
        req
    }

    /// The ACK for a 2xx to our INVITE or re-INVITE with CSeq `seq` (a
    /// request of its own: new branch), with the INVITE's credentials
    /// (RFC 3261 §13.2.2.4).
    fn ack(&self, invite: &Request, seq: u32, body: Option<Bytes>) -> Request {
        let mut req = self.request_with_cseq(Method::Ack, seq);
        for h in invite.headers.iter() {
            if matches!(h.name, HeaderName::Authorization | HeaderName::ProxyAuthorization) {
                req.headers.push(h.name.clone(), h.value.clone());
            }
        }
        if let Some(body) = body {
            req.headers.push(HeaderName::ContentType, "application/sdp");
            req.body = body;
        }
        req
    }

    /// Takes the remote target and route set from a 2xx or 18x to our INVITE.
    fn learn_from_response(&mut self, resp: &Response) {
        self.remote_tag =
            resp.headers.name_addr(&HeaderName::To).and_then(Result::ok).and_then(|t| t.tag().map(str::to_string));
        if let Some(addr) = first_contact(&resp.headers) {
            self.remote_target = Some(addr);
        }
    }

    fn matches(&self, call_id: &str, local_tag: Option<&str>, remote_tag: Option<&str>) -> bool {
        self.call_id == call_id
            && local_tag == Some(self.local_tag.as_str())
            && (self.remote_tag.is_none() || remote_tag == self.remote_tag.as_deref())
    }
}

/// One call.
#[derive(Debug)]
pub(crate) struct Call {
    key: CallKey,
    state: CallState,
    direction: CallDirection,
    dialog: Dialog,
    /// CSeq of our initial INVITE (for its ACK and CANCEL).
    invite_cseq: u32,
    /// Outgoing: the INVITE as last sent (for CANCEL and auth retry).
    invite: Option<Request>,
    /// Incoming: the INVITE received.
    remote_invite: Option<Request>,
    /// Our last re-INVITE (for its ACK and a retry after 491).
    reinvite: Option<Request>,
    /// The offer/answer exchange in progress, if any.
    offer_answer: OfferAnswer,
    /// Who holds the call.
    hold: Hold,
    /// Our current SDP (last offer or answer).
    local_sdp: Option<Bytes>,
    /// Outgoing: the answer came early (18x) and was applied already.
    early_answer_applied: bool,
    /// Outgoing: credentials were sent for this INVITE.
    challenged: bool,
    /// Extra headers for the INVITE (application's custom headers).
    extra_headers: Vec<(String, String)>,
    session_timer: Option<SessionTimer>,
    timers: CallTimers,
    /// The last ACK we sent for a 2xx to our INVITE or re-INVITE (sent again
    /// when the 2xx is retransmitted).
    last_ack: Option<Request>,
    /// Outgoing, being cancelled: why (reported when the INVITE's final
    /// response comes).
    cancel_cause: Option<EndCause>,
    /// DTMF digits sent by INFO, awaiting their final responses.
    info_dtmf: dtmf_info::InfoDtmf,
    /// Our REFER in progress (we transfer the call).
    transfer: Option<transfer::Transfer>,
    /// The peer's REFER we accepted (we owe it NOTIFYs).
    referred: Option<transfer::Referred>,
    /// A target refresh to make after reconnecting.
    target_refresh: Option<target_refresh::TargetRefresh>,
    /// Our BYE waits for its answer: the call's end is reported then.
    bye_pending: bool,
    /// Ended by a connection drop while calling out: CANCEL once reconnected.
    cancel_on_reconnect: bool,
    snapshot: CallSnapshot,
}

impl Call {
    pub(crate) fn key(&self) -> CallKey {
        self.key
    }

    pub(crate) fn snapshot(&self) -> &CallSnapshot {
        &self.snapshot
    }

    pub(crate) fn state(&self) -> CallState {
        self.state
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.state == CallState::Ended
    }

    /// This call's dialog as (Call-ID, local tag, remote tag), once it has one.
    pub(crate) fn dialog_id(&self) -> Option<(String, String, String)> {
        let d = &self.dialog;
        Some((d.call_id.clone(), d.local_tag.clone(), d.remote_tag.clone()?))
    }

    /// True when a request with these Call-ID and tags belongs to this call.
    pub(crate) fn matches(&self, call_id: &str, local_tag: Option<&str>, remote_tag: Option<&str>) -> bool {
        self.dialog.matches(call_id, local_tag, remote_tag)
    }

    /// True when `invite_tx` is the transaction of this call's incoming INVITE.
    pub(crate) fn has_invite_transaction(&self, invite_tx: &TransactionKey) -> bool {
        self.direction == CallDirection::Incoming
            && self.remote_invite.as_ref().and_then(TransactionKey::of_request).as_ref() == Some(invite_tx)
    }

    /// When this call needs [`Call::handle_timeout`].
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [
            self.timers.next(),
            self.session_timer.as_ref().map(|t| t.deadline),
            self.transfer_deadline(),
            self.target_refresh_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Input: time passed.
    pub(crate) fn handle_timeout(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        if due(&mut self.timers.auto_answer, now) {
            let _ = self.answer(ctx, now);
        }
        if due(&mut self.timers.cancel, now) {
            let (by, reason) =
                self.cancel_cause.take().map_or((Originator::Local, "cancelled".into()), |c| (c.by, c.reason));
            self.end(ctx, by, Some(408), &format!("{reason} (no final response to the CANCEL)"), now);
        }
        if due(&mut self.timers.ack, now) {
            self.bye(ctx, Originator::System, "no ACK for our 200 OK", now);
        }
        if due(&mut self.timers.offer_retry, now) {
            self.retry_offer(ctx, now);
        }
        if self.session_timer.as_ref().is_some_and(|t| now >= t.deadline) {
            self.handle_session_timer(ctx, now);
        }
        self.handle_transfer_timeout(ctx, now);
        self.handle_target_refresh_timer(ctx, now);
    }

    /// Input: a request in this call's dialog (or a new INVITE's CANCEL).
    pub(crate) fn handle_request(&mut self, ctx: &mut CallCtx<'_>, req: &Request, tx: &TransactionKey, now: Instant) {
        match req.method {
            Method::Bye => {
                ctx.respond(tx, response_to(req, StatusCode::OK));
                self.end(ctx, Originator::Remote, None, "BYE", now);
            }
            Method::Cancel => self.handle_cancel(ctx, req, tx, now),
            Method::Invite | Method::Update => self.handle_remote_offer(ctx, req, tx, now),
            Method::Info => self.handle_info(ctx, req, tx),
            Method::Notify => self.handle_notify(ctx, req, tx, now),
            _ => {
                let mut resp = response_to(req, StatusCode::new(501).unwrap_or(StatusCode::BAD_REQUEST));
                resp.headers.push(HeaderName::Allow, ctx.allow.to_string());
                ctx.respond(tx, resp);
            }
        }
    }

    /// Input: an ACK for our 2xx (it matched no server transaction).
    pub(crate) fn handle_ack(&mut self, ctx: &mut CallCtx<'_>, req: &Request, now: Instant) {
        if self.state == CallState::WaitingAck {
            self.confirm_by_ack(ctx, req, now);
        } else {
            self.handle_reinvite_ack(ctx);
        }
    }

    /// Input: the response to a request this call sent for `purpose`.
    pub(crate) fn handle_response(&mut self, ctx: &mut CallCtx<'_>, purpose: Purpose, resp: &Response, now: Instant) {
        match purpose {
            Purpose::Invite => self.handle_invite_response(ctx, resp, now),
            Purpose::Cancel => {}
            Purpose::Bye => self.handle_bye_response(ctx, resp),
            Purpose::ReInvite | Purpose::Update => self.handle_offer_response(ctx, purpose, resp, now),
            Purpose::TargetRefresh { reinvite } => self.handle_target_refresh_response(ctx, reinvite, resp, now),
            Purpose::Info => self.handle_info_response(ctx, resp, now),
            Purpose::Refer => self.handle_refer_response(ctx, resp, now),
            Purpose::Notify => {}
        }
    }

    /// Input: a client transaction of this call got no final response.
    pub(crate) fn handle_transaction_timeout(&mut self, ctx: &mut CallCtx<'_>, purpose: Purpose, now: Instant) {
        match purpose {
            Purpose::Invite => self.end(ctx, Originator::System, Some(408), "no answer (timeout)", now),
            Purpose::Cancel => {}
            Purpose::Bye => self.finish_bye(ctx, Some(408), "the BYE got no answer"),
            Purpose::TargetRefresh { reinvite } => self.handle_target_refresh_timeout(ctx, reinvite, now),
            Purpose::ReInvite
                if matches!(self.offer_answer, OfferAnswer::OfferSent(OfferCarrier::ReInvite { refresh: false })) =>
            {
                // A hold or resume the peer never answered: the call goes on as it was.
                self.offer_answer = OfferAnswer::Idle;
                self.reoffer_failed(ctx, Some(408), "no answer to the re-INVITE (timeout)");
            }
            Purpose::ReInvite | Purpose::Update => {
                self.bye(ctx, Originator::System, "in-dialog request timed out", now)
            }
            Purpose::Info => self.handle_info_timeout(ctx, now),
            Purpose::Refer => self.handle_refer_timeout(ctx, now),
            Purpose::Notify => {}
        }
    }

    /// Input: a 2xx to an INVITE of ours whose transaction is gone (a
    /// retransmission the peer sends until it sees our ACK): ACK it again.
    /// True when it was ours.
    pub(crate) fn handle_retransmitted_2xx(&mut self, ctx: &mut CallCtx<'_>, cseq: u32) -> bool {
        match &self.last_ack {
            Some(ack) if ack.headers.typed::<CSeq>().and_then(Result::ok).is_some_and(|c| c.seq == cseq) => {
                let ack = ack.clone();
                ctx.send_ack(ack);
                true
            }
            _ => false,
        }
    }

    /// Whether a retransmitted 2xx with this Call-ID and From tag is ours.
    pub(crate) fn sent_from(&self, call_id: &str, from_tag: Option<&str>) -> bool {
        self.dialog.call_id == call_id && Some(self.dialog.local_tag.as_str()) == from_tag
    }

    fn emit_snapshot(&self, ctx: &mut CallCtx<'_>, event: fn(CallSnapshot) -> CallEvent) {
        ctx.emit(event(self.snapshot.clone()));
    }
}

/// Headers the SIP layer interprets; everything else received on the
/// initial request/response is reported to the application.
fn is_extension_header(name: &HeaderName) -> bool {
    matches!(name, HeaderName::Other(_) | HeaderName::Subject)
}

fn extension_headers(headers: &crate::sip::Headers) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|h| is_extension_header(&h.name))
        .map(|h| (h.name.to_string(), h.value_str().to_string()))
        .collect()
}

/// The URI of the first Contact, used verbatim as the remote target
/// (Kamailio adds `;alias=...` for WebSocket peers: it must stay).
fn first_contact(headers: &crate::sip::Headers) -> Option<Uri> {
    let contacts = headers.typed_all::<crate::sip::Contact>().ok()?;
    contacts.first()?.address().map(|a| a.uri.clone())
}

fn allows_update(headers: &crate::sip::Headers) -> bool {
    headers.tokens(&HeaderName::Allow).is_ok_and(|t| t.iter().any(|m| m.eq_ignore_ascii_case("UPDATE")))
}

pub(crate) fn tag_of(value: Option<&str>) -> Option<String> {
    NameAddr::parse(value?).and_then(|a| a.tag().map(str::to_string))
}
