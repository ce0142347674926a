//! The sans-IO SIP core: one [`UserAgent`] that owns no socket, task or
//! clock. It owns the transactions, registration, digest auth and the
//! lines, and routes to each call (its own state machine, [`call`]) the
//! requests, responses, timers, commands and SDP that are that call's.
//!
//! # The drive loop
//! The driver (`crate::driver`) feeds inputs and drains outputs, in this
//! order, with the current time in every input:
//! ```text
//! loop {
//!     // inputs
//!     ua.handle_connected(now, "WSS") / ua.handle_disconnected(now)
//!     ua.handle_message(frame, now)               // one WebSocket frame
//!     ua.register(now) / ua.unregister(now)       // commands ...
//!     ua.call(request, now) / ua.answer(key, now) / ua.reject(key, status, now) / ua.hangup(key, now)
//!     ua.handle_local_sdp(key, Ok(sdp) | Err(why), now)   // the media side's answer to a MediaRequest
//!     ua.handle_media_failure(key, why, now)      // ICE/DTLS failed or was lost
//!     ua.handle_timeout(now)                      // when poll_timeout() is due (early is harmless)
//!     // outputs, until None
//!     while let Some(out) = ua.poll_output() {
//!         match out {
//!             Output::Transmit(bytes) => ws.send(bytes),     // one SIP message per frame
//!             Output::Event(event) => report(event),         // registration, calls, malformed input
//!             Output::Media(request) => media.handle(request), // SDP work, answered by handle_local_sdp
//!         }
//!     }
//!     sleep_until(ua.poll_timeout())
//! }
//! ```
//! Because time is an argument, tests drive registration refreshes,
//! transaction timeouts, session timers and glare retries by passing later
//! `Instant`s, without sleeping (`tests/support/sip_net.rs` wires several
//! agents behind an in-memory proxy on one fake clock).

pub mod auth;
pub mod call;
mod lines;
pub mod register;
mod status;
pub mod transaction;
mod transfer;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;

pub use crate::contract::MediaRequest;
use crate::sip::validate::{Capabilities, check_request, check_response, rejection_response, response_to};
use crate::sip::{HeaderName, Message, Method, NameAddr, Request, Response, StatusCode};
use auth::DigestClient;
pub(crate) use call::CallState;
use call::{Call, Purpose, Stamp};
pub use call::{CallError, CallKey, CallRequest, CallSettings, CallSnapshot, TransferPolicy};
use register::{Registration, RegistrationConfig, RegistrationEvent, random_token};
pub use status::{Mode, PhoneState};
use transaction::{ClientAction, ClientTransaction, ServerTransaction, Timers, TransactionKey};

/// Identity and behaviour of the core, fixed for the phone's life.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Via transport token: `WS` or `WSS`.
    pub via_transport: &'static str,
    /// The random `*.invalid` host used in Via (as browsers do).
    pub via_host: String,
    /// `User-Agent` header value.
    pub user_agent: String,
    /// Transaction timers.
    pub timers: Timers,
    /// Seed for tags, branches and cnonces (`None`: from the OS).
    pub seed: Option<u64>,
    /// How calls behave (lines, session timers, auto-answer).
    pub calls: CallSettings,
}

/// Something the driver must do.
// Outputs are moved once each, straight from the queue to the driver; boxing
// the larger variants would add an allocation per event for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Send these bytes as one WebSocket text message.
    Transmit(Bytes),
    /// Report this to the application.
    Event(AgentEvent),
    /// The media side must do this, then call [`UserAgent::handle_local_sdp`]
    /// for offers and answers.
    Media(MediaRequest),
}

/// What happened to a call.
// Moved once each from the core to the application; CallReplaced carries
// two calls, and boxing it would allocate per event for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallEvent {
    /// We placed a call (the INVITE follows once media has its offer).
    Outgoing(CallSnapshot),
    /// A call came in and is ringing here.
    Incoming(CallSnapshot),
    /// The callee's side reported progress (180 ringing, 183 early media).
    Progress {
        /// The call.
        call: CallSnapshot,
        /// 18x status.
        status: u16,
        /// Reason phrase.
        reason: String,
        /// The response carried SDP: early media flows.
        early_media: bool,
    },
    /// The call is answered and confirmed.
    Confirmed(CallSnapshot),
    /// The call ended (see its `end` cause).
    Ended(CallSnapshot),
    /// The call is held: by us (our re-offer was accepted) or by the peer
    /// (its offer stopped receiving).
    Held {
        /// The call.
        call: CallSnapshot,
        /// Who holds it.
        by: call::Originator,
    },
    /// The call is no longer held by `by`.
    Resumed {
        /// The call.
        call: CallSnapshot,
        /// Who resumed it.
        by: call::Originator,
    },
    /// Our hold or resume failed; the call goes on as it was.
    HoldFailed {
        /// The call.
        call: CallSnapshot,
        /// The final response, if one came (488, 5xx; 408 for a time-out).
        status: Option<u16>,
        /// Why.
        reason: String,
    },
    /// The peer sent a DTMF digit by SIP INFO (answered 200).
    DtmfReceived {
        /// The call.
        call: CallSnapshot,
        /// One of the 16 symbols (upper case).
        digit: char,
        /// Its duration as the INFO said (250 ms when it did not).
        duration_ms: u32,
    },
    /// A DTMF digit we sent by SIP INFO was accepted (2xx).
    DtmfSent {
        /// The call.
        call: CallSnapshot,
        /// The symbol.
        digit: char,
    },
    /// Our transfer's target is being called: the status the transferee
    /// reported (a NOTIFY's `message/sipfrag`, 1xx).
    TransferProgress {
        /// The call being transferred.
        call: CallSnapshot,
        /// The status line's code (100 Trying, 180 Ringing...).
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// Our transfer succeeded: the target answered the transferee (final
    /// NOTIFY 2xx; or a 2xx with `Refer-Sub: false`, all we learn then).
    TransferAccepted {
        /// The call that was transferred.
        call: CallSnapshot,
    },
    /// Our transfer failed; the call stays as it was (held, if it was).
    TransferFailed {
        /// The call.
        call: CallSnapshot,
        /// The REFER's refusal or the target's final status, when there was one.
        status: Option<u16>,
        /// Why.
        reason: String,
    },
    /// The peer asks us to call someone else (REFER).
    TransferRequested {
        /// The call the REFER came in.
        call: CallSnapshot,
        /// Whom to call (the Refer-To URI, without embedded headers).
        target: String,
        /// The Referred-By header, if any.
        referred_by: Option<String>,
        /// The new call is to replace a dialog of the target (attended transfer).
        replaces: bool,
    },
    /// After a reconnection, the peer took our target refresh: its requests
    /// reach us again over the new connection.
    TargetRefreshed {
        /// The call.
        call: CallSnapshot,
    },
    /// The target refresh after a reconnection failed; it is tried again
    /// after `retry_in` (the call goes on).
    TargetRefreshFailed {
        /// The call.
        call: CallSnapshot,
        /// The final response, if one came.
        status: Option<u16>,
        /// Why.
        reason: String,
        /// When the next attempt goes out.
        retry_in: std::time::Duration,
    },
    /// An INVITE with Replaces took the place of one of our calls: `new` is
    /// being answered and `old` is ending.
    CallReplaced {
        /// The call replaced.
        old: CallSnapshot,
        /// The call that replaces it.
        new: CallSnapshot,
    },
}

/// Events of the SIP core (the driver adds connection events).
#[allow(clippy::large_enum_variant)] // see `Output`
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentEvent {
    /// Registration progress.
    Registration(RegistrationEvent),
    /// Call progress.
    Call(CallEvent),
    /// A received message was malformed and dropped or rejected.
    MalformedMessage {
        /// What was wrong (never message content).
        why: String,
    },
}

/// Who owns a client transaction, so its response reaches the right place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Registration,
    /// A call, for this purpose.
    Call(CallKey, Purpose),
}

/// The SIP user agent core.
#[derive(Debug)]
pub struct UserAgent {
    cfg: AgentConfig,
    caps: Capabilities,
    auth: DigestClient,
    /// Our address of record (From of our requests), with display name.
    aor: NameAddr,
    /// Our Contact.
    contact: NameAddr,
    stamp: Stamp,
    registration: Registration,
    calls: BTreeMap<CallKey, Call>,
    next_call: u64,
    clients: HashMap<TransactionKey, (ClientTransaction, Owner)>,
    servers: HashMap<TransactionKey, ServerTransaction>,
    outputs: VecDeque<Output>,
    connected: bool,
    mode: Mode,
    transfers: transfer::Transfers,
    rng: StdRng,
}

impl UserAgent {
    /// A core that is not connected and not registered.
    pub fn new(cfg: AgentConfig, registration: RegistrationConfig, auth: DigestClient) -> UserAgent {
        let mut rng = match cfg.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        let reg_rng = StdRng::seed_from_u64(rand::Rng::random(&mut rng));
        let mut aor = NameAddr::new(registration.aor.clone());
        aor.display = registration.display_name.clone();
        UserAgent {
            caps: Capabilities {
                methods: vec![
                    Method::Invite,
                    Method::Ack,
                    Method::Bye,
                    Method::Cancel,
                    Method::Options,
                    Method::Update,
                    Method::Info,
                    Method::Refer,
                    Method::Notify,
                ],
                extensions: vec!["timer", "replaces", "norefersub"],
                content_types: vec![
                    "application/sdp",
                    crate::dtmf::info::DTMF_RELAY,
                    crate::dtmf::info::DTMF,
                    "message/sipfrag",
                ],
            },
            auth,
            aor,
            contact: registration.contact.clone(),
            stamp: Stamp {
                via_transport: cfg.via_transport,
                via_host: cfg.via_host.clone(),
                user_agent: cfg.user_agent.clone(),
            },
            registration: Registration::new(registration, reg_rng),
            calls: BTreeMap::new(),
            next_call: 0,
            clients: HashMap::new(),
            servers: HashMap::new(),
            outputs: VecDeque::new(),
            connected: false,
            mode: Mode::Active,
            transfers: Default::default(),
            rng,
            cfg,
        }
    }

    /// True while a registrar holds our binding.
    pub fn is_registered(&self) -> bool {
        self.registration.is_registered()
    }

    /// True while the transport is up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// True while an unregistration or other client transaction is in flight.
    pub fn has_pending_transactions(&self) -> bool {
        !self.clients.is_empty()
    }

    /// Command: register (now, or as soon as the transport is up).
    pub fn register(&mut self, now: Instant) {
        if let Some(req) = self.registration.register(self.connected, &mut self.auth) {
            self.send_request(req, Owner::Registration, now);
        }
    }

    /// Command: remove our binding.
    pub fn unregister(&mut self, now: Instant) {
        if let Some(req) = self.registration.unregister(self.connected, &mut self.auth) {
            self.send_request(req, Owner::Registration, now);
        }
    }

    /// Input: the transport connected; `via_transport` is `WS` or `WSS`.
    pub fn handle_connected(&mut self, now: Instant, via_transport: &'static str) {
        self.connected = true;
        // Requests are stamped from here on; `cfg` keeps what was configured.
        self.stamp.via_transport = via_transport;
        if let Some(req) = self.registration.handle_connected(&mut self.auth) {
            self.send_request(req, Owner::Registration, now);
        }
        // Calls that outlived the old connection: the peer must learn the new way to us.
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for key in keys {
            self.with_call(key, now, |call, ctx| {
                call.cancel_orphaned_invite(ctx, now);
                call.handle_reconnected(ctx, now);
            });
        }
        self.prune_calls();
    }

    /// Input: the transport is gone. Transactions on it end; the binding,
    /// tied to the connection, is gone too.
    pub fn handle_disconnected(&mut self, now: Instant) {
        self.connected = false;
        self.clients.clear();
        self.servers.clear();
        // Ended calls too: a BYE of theirs may wait for its answer.
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for key in keys {
            self.with_call(key, now, |call, ctx| call.handle_disconnected(ctx, now));
        }
        self.prune_calls();
        if let Some(ev) = self.registration.handle_disconnected() {
            self.emit(AgentEvent::Registration(ev));
        }
    }

    /// Input: one received WebSocket message.
    pub fn handle_message(&mut self, bytes: Bytes, now: Instant) {
        match Message::parse(bytes) {
            Ok(Message::Request(req)) => self.handle_request(req, now),
            Ok(Message::Response(resp)) => self.handle_response(resp, now),
            Err(e) => {
                tracing::warn!(error = %e, "dropping unparseable SIP message");
                self.emit(AgentEvent::MalformedMessage { why: e.to_string() });
            }
        }
    }

    /// Input: time passed. Call when [`Self::poll_timeout`] is due (calling
    /// early is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut timed_out = Vec::new();
        for (key, (tx, owner)) in &mut self.clients {
            if tx.handle_timeout(now) {
                timed_out.push((key.clone(), *owner));
            }
        }
        for (key, owner) in timed_out {
            self.clients.remove(&key);
            match owner {
                Owner::Registration => {
                    if let Some(ev) = self.registration.handle_transaction_timeout(now) {
                        self.emit(AgentEvent::Registration(ev));
                    }
                }
                Owner::Call(key, purpose) => {
                    self.with_call(key, now, |call, ctx| call.handle_transaction_timeout(ctx, purpose, now));
                }
            }
        }
        let due: Vec<CallKey> =
            self.calls.values().filter(|c| c.poll_timeout().is_some_and(|t| t <= now)).map(Call::key).collect();
        for key in due {
            self.with_call(key, now, |call, ctx| call.handle_timeout(ctx, now));
        }
        self.handle_transfer_timeouts(now);
        self.prune_calls();
        for tx in self.servers.values_mut() {
            if let Some(t) = tx.handle_timeout(now) {
                tracing::debug!(?t, key = ?tx.key(), "server transaction timer fired");
            }
        }
        self.servers.retain(|_, tx| !tx.is_terminated());
        if let Some(req) = self.registration.handle_timeout(now, self.connected, &mut self.auth) {
            self.send_request(req, Owner::Registration, now);
        }
    }

    /// Output: the next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Output: the earliest time [`Self::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let clients = self.clients.values().filter_map(|(tx, _)| tx.poll_timeout());
        let servers = self.servers.values().filter_map(ServerTransaction::poll_timeout);
        let calls = self.calls.values().filter_map(Call::poll_timeout);
        clients
            .chain(servers)
            .chain(calls)
            .chain(self.registration.poll_timeout())
            .chain(self.transfers.next_deadline())
            .min()
    }

    fn emit(&mut self, ev: AgentEvent) {
        self.outputs.push_back(Output::Event(ev));
    }

    fn transmit(&mut self, bytes: Bytes) {
        self.outputs.push_back(Output::Transmit(bytes));
    }

    /// The Allow header value: the methods we accept.
    pub(crate) fn allow_header(&self) -> String {
        self.caps.methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
    }

    /// Stamps `req` (Via, Max-Forwards, User-Agent), starts a client
    /// transaction and queues it. Returns the request as sent.
    fn send_request(&mut self, mut req: Request, owner: Owner, now: Instant) -> Option<Request> {
        self.stamp.apply(&mut req, &mut self.rng);
        self.send_prepared(req, owner, now)
    }

    /// Starts a client transaction for a request that already carries its
    /// Via (CANCEL reuses the INVITE's) and queues it.
    fn send_prepared(&mut self, req: Request, owner: Owner, now: Instant) -> Option<Request> {
        let bytes = req.to_bytes();
        tracing::debug!(method = %req.method, "sending request");
        tracing::trace!(message = %crate::sip::redacted(&bytes), "SIP out");
        match ClientTransaction::new(req.clone(), &self.cfg.timers, now) {
            Some(tx) => {
                self.clients.insert(tx.key().clone(), (tx, owner));
                self.transmit(bytes);
                Some(req)
            }
            None => {
                tracing::error!("request without a branch: not sent");
                None
            }
        }
    }

    /// Sends `resp` through the server transaction `key`.
    fn send_response(&mut self, key: &TransactionKey, resp: Response, now: Instant) {
        let Some(tx) = self.servers.get_mut(key) else {
            tracing::debug!(status = resp.status.as_u16(), "no server transaction for the response: not sent");
            return;
        };
        let sent = tx.send_response(&resp, now);
        if tx.is_terminated() {
            self.servers.remove(key);
        }
        if let Some(bytes) = sent {
            tracing::trace!(message = %crate::sip::redacted(&bytes), "SIP out");
            self.transmit(bytes);
        }
    }

    /// Answers `req` with `status`, adding a To tag to final responses.
    fn reply(&mut self, req: &Request, key: &TransactionKey, status: StatusCode, now: Instant) {
        let mut resp = response_to(req, status);
        if status.as_u16() > 100 {
            self.add_to_tag(&mut resp);
        }
        self.send_response(key, resp, now);
    }

    fn handle_response(&mut self, resp: Response, now: Instant) {
        if let Err(defect) = check_response(&resp) {
            tracing::warn!(%defect, status = resp.status.as_u16(), "dropping response");
            self.emit(AgentEvent::MalformedMessage { why: defect.to_string() });
            return;
        }
        let Some(key) = TransactionKey::of_response(&resp) else {
            tracing::debug!("response without a usable Via branch: dropped");
            return;
        };
        let Some((tx, owner)) = self.clients.get_mut(&key) else {
            if !self.handle_stray_2xx(&resp, now) {
                tracing::debug!(status = resp.status.as_u16(), "response matches no transaction: dropped");
            }
            return;
        };
        let owner = *owner;
        let action = tx.handle_response(&resp, now);
        if tx.is_terminated() {
            self.clients.remove(&key);
        }
        match action {
            ClientAction::Absorb => return,
            ClientAction::Deliver => {}
            ClientAction::DeliverAndAck(ack) => self.transmit(ack),
        }
        match owner {
            Owner::Registration => {
                let (next, ev) = self.registration.handle_response(&resp, now, &mut self.auth);
                if let Some(ev) = ev {
                    self.emit(AgentEvent::Registration(ev));
                }
                if let Some(req) = next {
                    self.send_request(req, Owner::Registration, now);
                }
            }
            Owner::Call(key, purpose) => {
                self.with_call(key, now, |call, ctx| call.handle_response(ctx, purpose, &resp, now));
            }
        }
    }

    fn handle_request(&mut self, req: Request, now: Instant) {
        tracing::trace!(method = %req.method, "request in");
        let Some(key) = TransactionKey::of_request(&req) else {
            tracing::warn!(method = %req.method, "request without a Via branch: answering 400");
            self.respond_stateless(&req, StatusCode::BAD_REQUEST);
            return;
        };
        if req.method == Method::Ack {
            match self.servers.get_mut(&key) {
                Some(tx) => tx.handle_ack(),
                None => self.handle_dialog_ack(&req, now),
            }
            return;
        }
        if let Some(tx) = self.servers.get(&key) {
            if let Some(bytes) = tx.handle_retransmission() {
                self.transmit(bytes);
            }
            return;
        }
        let Some(tx) = ServerTransaction::new(&req, &self.cfg.timers) else { return };
        self.servers.insert(key.clone(), tx);
        if let Err(rejection) = check_request(&req, &self.caps) {
            tracing::warn!(method = %req.method, why = rejection.why, status = rejection.status.as_u16(), "rejecting request");
            self.emit(AgentEvent::MalformedMessage { why: rejection.why.to_string() });
            let mut resp = rejection_response(&req, &rejection);
            self.add_to_tag(&mut resp);
            self.send_response(&key, resp, now);
            return;
        }
        if self.handle_call_request(&req, &key, now) {
            return;
        }
        let resp = self.answer_out_of_dialog(&req);
        self.send_response(&key, resp, now);
    }

    /// The response to a valid request that is not for a call.
    fn answer_out_of_dialog(&mut self, req: &Request) -> Response {
        match req.method {
            Method::Options => {
                let mut resp = response_to(req, StatusCode::OK);
                self.add_to_tag(&mut resp);
                resp.headers.push(HeaderName::Allow, self.allow_header());
                resp.headers.push(HeaderName::Accept, "application/sdp");
                resp.headers.push(HeaderName::Supported, call::SUPPORTED);
                resp
            }
            // Nothing else reaches here for a dialog we know.
            _ => {
                let mut resp = response_to(req, StatusCode::CALL_DOES_NOT_EXIST);
                self.add_to_tag(&mut resp);
                resp
            }
        }
    }

    fn add_to_tag(&mut self, resp: &mut Response) {
        if let Some(to) = resp.headers.get(&HeaderName::To)
            && !to.contains(";tag=")
        {
            let tagged = format!("{to};tag={}", random_token(&mut self.rng, 10));
            resp.headers.set(HeaderName::To, tagged);
        }
    }

    fn respond_stateless(&mut self, req: &Request, status: StatusCode) {
        if req.method != Method::Ack {
            self.transmit(response_to(req, status).to_bytes());
        }
    }
}
