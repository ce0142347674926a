//! One call as the SIP core sees it: its state, its dialog (tags, CSeqs,
//! route set, remote target) and the information reported to the
//! application ([`CallSnapshot`]).
//!
//! The transitions live in `super::invite` (the `UserAgent` methods that
//! handle INVITE, CANCEL, BYE, ACK and UPDATE); this module only holds data
//! and builds in-dialog requests and responses from it.

use std::time::{Duration, Instant};

use bytes::Bytes;

pub use crate::contract::CallKey;
use crate::sip::validate::response_to;
use crate::sip::{CSeq, HeaderName, Method, NameAddr, Request, Response, StatusCode, Uri};

/// Who placed the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallDirection {
    /// We called.
    Outgoing,
    /// We were called.
    Incoming,
}

/// Who or what ended a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EndCause {
    /// Who ended it.
    pub by: Originator,
    /// The SIP status involved, if any (487 for a cancelled call, 486 busy...).
    pub status: Option<u16>,
    /// A reason phrase or description.
    pub reason: String,
}

/// A party of a call.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
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
}

/// Call states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallState {
    /// Outgoing: waiting for the media side's offer.
    OfferPending,
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
    AnswerPending,
    /// Incoming: 200 OK sent, waiting for the ACK.
    WaitingAck,
    /// Both: the dialog is confirmed.
    Confirmed,
    /// Ended.
    Ended,
}

/// RFC 4028 session timer state of a confirmed call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionTimer {
    /// Session interval in seconds.
    pub interval: u32,
    /// True when we refresh; false when the peer must.
    pub we_refresh: bool,
    /// When to refresh (we refresh) or give up (peer refreshes).
    pub deadline: Instant,
}

impl SessionTimer {
    pub(crate) fn new(interval: u32, we_refresh: bool, now: Instant) -> SessionTimer {
        let secs = u64::from(interval);
        let deadline = if we_refresh {
            now + Duration::from_secs(secs / 2)
        } else {
            // RFC 4028 §10: BYE at expiry minus min(32 s, interval / 3).
            now + Duration::from_secs(secs - (secs / 3).min(32))
        };
        SessionTimer { interval, we_refresh, deadline }
    }
}

/// One call.
#[derive(Debug)]
pub(crate) struct Call {
    pub key: CallKey,
    pub state: CallState,
    pub direction: CallDirection,
    pub call_id: String,
    pub local: NameAddr,
    pub remote: NameAddr,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    pub local_cseq: u32,
    /// CSeq of our INVITE (for ACK and CANCEL).
    pub invite_cseq: u32,
    pub remote_target: Option<Uri>,
    /// Route set, first hop first (raw name-addr values).
    pub route_set: Vec<String>,
    /// Outgoing: the INVITE as last sent (for CANCEL and auth retry).
    pub invite: Option<Request>,
    /// Incoming: the INVITE received.
    pub remote_invite: Option<Request>,
    /// Our last SDP (offer or answer).
    pub local_sdp: Option<Bytes>,
    /// Incoming INVITE without SDP: our 200 carries the offer, the ACK the answer.
    pub late_offer: bool,
    /// Outgoing: an early (18x) answer was applied already.
    pub answer_applied: bool,
    /// Outgoing: credentials were sent for this INVITE.
    pub challenged: bool,
    /// Extra headers for the INVITE (application's custom headers).
    pub extra_headers: Vec<(String, String)>,
    /// Peer accepts UPDATE (for session refresh without SDP).
    pub peer_allows_update: bool,
    pub session_timer: Option<SessionTimer>,
    /// Incoming, auto-answer time.
    pub auto_answer_at: Option<Instant>,
    /// Incoming, give up waiting for the ACK of our 2xx.
    pub ack_deadline: Option<Instant>,
    /// A re-INVITE / UPDATE carrying an offer, waiting for the media side's answer.
    pub pending_offer: Option<(Request, super::transaction::TransactionKey)>,
    /// Outgoing, being cancelled: why (reported when the INVITE's final
    /// response comes) and when to stop waiting for it (64*T1 after the CANCEL).
    pub cancel_cause: Option<EndCause>,
    pub cancel_deadline: Option<Instant>,
    pub snapshot: CallSnapshot,
}

impl Call {
    /// Builds an in-dialog request (BYE, UPDATE, re-INVITE): Request-URI =
    /// remote target, Route = route set, tags, next CSeq. No Via yet.
    pub(crate) fn in_dialog_request(&mut self, method: Method, contact: &NameAddr) -> Request {
        let target = self.remote_target.clone().unwrap_or_else(|| self.remote.uri.clone());
        let mut req = Request::new(method.clone(), target);
        if !self.route_set.is_empty() {
            req.headers.push(HeaderName::Route, self.route_set.join(", "));
        }
        self.push_dialog_headers(&mut req);
        self.local_cseq += 1;
        req.headers.push_typed(&CSeq { seq: self.local_cseq, method: method.clone() });
        if method != Method::Bye {
            req.headers.push(HeaderName::Contact, contact.to_string());
        }
        req
    }

    /// The ACK for a 2xx to our INVITE (a request of its own: new branch).
    pub(crate) fn ack(&self, body: Option<Bytes>) -> Request {
        let target = self.remote_target.clone().unwrap_or_else(|| self.remote.uri.clone());
        let mut req = Request::new(Method::Ack, target);
        if !self.route_set.is_empty() {
            req.headers.push(HeaderName::Route, self.route_set.join(", "));
        }
        self.push_dialog_headers(&mut req);
        req.headers.push_typed(&CSeq { seq: self.invite_cseq, method: Method::Ack });
        // The ACK for a 2xx carries the INVITE's credentials (RFC 3261 §13.2.2.4).
        if let Some(invite) = &self.invite {
            for h in invite.headers.iter() {
                if matches!(h.name, HeaderName::Authorization | HeaderName::ProxyAuthorization) {
                    req.headers.push(h.name.clone(), h.value.clone());
                }
            }
        }
        if let Some(body) = body {
            req.headers.push(HeaderName::ContentType, "application/sdp");
            req.body = body;
        }
        req
    }

    fn push_dialog_headers(&self, req: &mut Request) {
        let mut from = self.local.clone();
        from.params.set("tag", Some(self.local_tag.clone()));
        let mut to = self.remote.clone();
        if let Some(tag) = &self.remote_tag {
            to.params.set("tag", Some(tag.clone()));
        }
        req.headers.push(HeaderName::From, from.to_string());
        req.headers.push(HeaderName::To, to.to_string());
        req.headers.push(HeaderName::CallId, self.call_id.clone());
    }

    /// A response to the incoming INVITE with our To tag, Record-Route and
    /// (for 1xx/2xx) Contact, as a UAS in a dialog must send it.
    pub(crate) fn response_to_invite(&self, status: StatusCode, contact: &NameAddr) -> Option<Response> {
        let req = self.remote_invite.as_ref()?;
        let mut resp = response_to(req, status);
        if status.as_u16() > 100
            && let Some(to) = resp.headers.get(&HeaderName::To).map(str::to_string)
            && !to.contains(";tag=")
        {
            resp.headers.set(HeaderName::To, format!("{to};tag={}", self.local_tag));
        }
        if status.as_u16() > 100 && status.as_u16() < 300 {
            for rr in req.headers.get_all(&HeaderName::RecordRoute) {
                resp.headers.push(HeaderName::RecordRoute, rr.to_string());
            }
            resp.headers.push(HeaderName::Contact, contact.to_string());
        }
        Some(resp)
    }

    /// True when `req` belongs to this call's dialog.
    pub(crate) fn matches(&self, call_id: &str, local_tag: Option<&str>, remote_tag: Option<&str>) -> bool {
        self.call_id == call_id
            && local_tag == Some(self.local_tag.as_str())
            && (self.remote_tag.is_none() || remote_tag == self.remote_tag.as_deref())
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.state == CallState::Ended
    }

    /// When this call needs `handle_timeout`.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [self.session_timer.as_ref().map(|t| t.deadline), self.auto_answer_at, self.ack_deadline, self.cancel_deadline]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Headers the SIP layer interprets; everything else received on the
/// initial request/response is reported to the application.
pub(crate) fn is_extension_header(name: &HeaderName) -> bool {
    matches!(name, HeaderName::Other(_) | HeaderName::Subject)
}
