//! The sans-IO SIP core: transactions, registration and digest auth behind
//! one [`UserAgent`] that owns no socket, task or clock.
//!
//! # The drive loop
//! The driver (see `crate::phone`) feeds inputs and drains outputs:
//! ```text
//! loop {
//!     // inputs, each with the current time
//!     ua.handle_connected(now) / ua.handle_disconnected(now)
//!     ua.handle_message(bytes, now)           // one WebSocket frame
//!     ua.register(now) / ua.unregister(now)   // user commands
//!     ua.handle_timeout(now)                  // when poll_timeout() is due
//!     // outputs
//!     while let Some(out) = ua.poll_output() {
//!         match out { Output::Transmit(b) => send(b), Output::Event(e) => emit(e) }
//!     }
//!     sleep_until(ua.poll_timeout())
//! }
//! ```
//! Because time is an argument, tests drive registration refreshes and
//! transaction timeouts by passing later `Instant`s, without sleeping.

pub mod auth;
pub mod register;
pub mod transaction;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::sip::validate::{Capabilities, check_request, check_response, rejection_response, response_to};
use crate::sip::{HeaderName, Host, Message, Method, Request, Response, StatusCode, Via};
use register::{Registration, RegistrationConfig, RegistrationEvent, random_token};
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
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes as one WebSocket text message.
    Transmit(Bytes),
    /// Report this to the application.
    Event(AgentEvent),
}

/// Events of the SIP core (the driver adds connection events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentEvent {
    /// Registration progress.
    Registration(RegistrationEvent),
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
}

/// The SIP user agent core.
#[derive(Debug)]
pub struct UserAgent {
    cfg: AgentConfig,
    caps: Capabilities,
    registration: Registration,
    clients: HashMap<TransactionKey, (ClientTransaction, Owner)>,
    servers: HashMap<TransactionKey, ServerTransaction>,
    outputs: VecDeque<Output>,
    connected: bool,
    rng: StdRng,
}

impl UserAgent {
    /// A core that is not connected and not registered.
    pub fn new(cfg: AgentConfig, registration: RegistrationConfig, auth: auth::DigestClient) -> UserAgent {
        let mut rng = match cfg.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        let reg_rng = StdRng::seed_from_u64(rand::Rng::random(&mut rng));
        UserAgent {
            caps: Capabilities {
                methods: vec![Method::Options, Method::Ack, Method::Bye, Method::Cancel],
                ..Default::default()
            },
            registration: Registration::new(registration, auth, reg_rng),
            clients: HashMap::new(),
            servers: HashMap::new(),
            outputs: VecDeque::new(),
            connected: false,
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
        if let Some(req) = self.registration.register(self.connected) {
            self.send_request(req, Owner::Registration, now);
        }
    }

    /// Command: remove our binding.
    pub fn unregister(&mut self, now: Instant) {
        if let Some(req) = self.registration.unregister(self.connected) {
            self.send_request(req, Owner::Registration, now);
        }
    }

    /// Input: the transport connected; `via_transport` is `WS` or `WSS`.
    pub fn handle_connected(&mut self, now: Instant, via_transport: &'static str) {
        self.connected = true;
        self.cfg.via_transport = via_transport;
        if let Some(req) = self.registration.handle_connected() {
            self.send_request(req, Owner::Registration, now);
        }
    }

    /// Input: the transport is gone. Transactions on it end; the binding,
    /// tied to the connection, is gone too.
    pub fn handle_disconnected(&mut self, _now: Instant) {
        self.connected = false;
        self.clients.clear();
        self.servers.clear();
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
            }
        }
        for tx in self.servers.values_mut() {
            if let Some(t) = tx.handle_timeout(now) {
                tracing::debug!(?t, key = ?tx.key(), "server transaction timer fired");
            }
        }
        self.servers.retain(|_, tx| !tx.is_terminated());
        if let Some(req) = self.registration.handle_timeout(now, self.connected) {
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
        clients.chain(servers).chain(self.registration.poll_timeout()).min()
    }

    fn emit(&mut self, ev: AgentEvent) {
        self.outputs.push_back(Output::Event(ev));
    }

    fn transmit(&mut self, bytes: Bytes) {
        self.outputs.push_back(Output::Transmit(bytes));
    }

    /// Adds our Via (fresh branch), Max-Forwards and User-Agent, starts a
    /// client transaction and queues the request.
    fn send_request(&mut self, mut req: Request, owner: Owner, now: Instant) {
        let branch = format!("z9hG4bK{}", random_token(&mut self.rng, 16));
        let via = Via::new(self.cfg.via_transport, Host::Domain(self.cfg.via_host.clone()), &branch);
        let mut headers = crate::sip::Headers::new();
        headers.push_typed(&via);
        headers.push(HeaderName::MaxForwards, "70");
        for h in req.headers.iter() {
            headers.push(h.name.clone(), h.value.clone());
        }
        headers.push(HeaderName::UserAgent, self.cfg.user_agent.clone());
        req.headers = headers;
        let bytes = req.to_bytes();
        tracing::debug!(method = %req.method, %branch, "sending request");
        tracing::trace!(message = %crate::sip::redacted(&bytes), "SIP out");
        match ClientTransaction::new(req, &self.cfg.timers, now) {
            Some(tx) => {
                self.clients.insert(tx.key().clone(), (tx, owner));
                self.transmit(bytes);
            }
            None => tracing::error!("request without a branch: not sent"),
        }
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
            tracing::debug!(status = resp.status.as_u16(), "response matches no transaction: dropped");
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
                let (next, ev) = self.registration.handle_response(&resp, now);
                if let Some(ev) = ev {
                    self.emit(AgentEvent::Registration(ev));
                }
                if let Some(req) = next {
                    self.send_request(req, Owner::Registration, now);
                }
            }
        }
    }

    fn handle_request(&mut self, req: Request, now: Instant) {
        let Some(key) = TransactionKey::of_request(&req) else {
            tracing::warn!(method = %req.method, "request without a Via branch: answering 400");
            self.respond_stateless(&req, StatusCode::BAD_REQUEST);
            return;
        };
        if req.method == Method::Ack {
            if let Some(tx) = self.servers.get_mut(&key) {
                tx.handle_ack();
            }
            return;
        }
        if let Some(tx) = self.servers.get(&key) {
            if let Some(bytes) = tx.handle_retransmission() {
                self.transmit(bytes);
            }
            return;
        }
        let response = match check_request(&req, &self.caps) {
            Err(rejection) => {
                tracing::warn!(method = %req.method, why = rejection.why, status = rejection.status.as_u16(), "rejecting request");
                self.emit(AgentEvent::MalformedMessage { why: rejection.why.to_string() });
                rejection_response(&req, &rejection)
            }
            Ok(()) => self.answer(&req),
        };
        if let Some(mut tx) = ServerTransaction::new(&req, &self.cfg.timers) {
            if let Some(bytes) = tx.send_response(&response, now) {
                self.transmit(bytes);
            }
            if !tx.is_terminated() {
                self.servers.insert(key, tx);
            }
        }
    }

    /// The response to a valid request outside any dialog we know.
    fn answer(&mut self, req: &Request) -> Response {
        match req.method {
            Method::Options => {
                let mut resp = response_to(req, StatusCode::OK);
                self.add_to_tag(&mut resp);
                let allow = self.caps.methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
                resp.headers.push(HeaderName::Allow, allow);
                resp.headers.push(HeaderName::Accept, "application/sdp");
                resp.headers.push(HeaderName::Supported, "outbound");
                resp
            }
            // BYE / CANCEL for a dialog or transaction we do not have.
            _ => response_to(req, StatusCode::CALL_DOES_NOT_EXIST),
        }
    }

    fn add_to_tag(&mut self, resp: &mut Response) {
        if let Some(to) = resp.headers.get(&HeaderName::To) {
            if !to.contains(";tag=") {
                let tagged = format!("{to};tag={}", random_token(&mut self.rng, 10));
                resp.headers.set(HeaderName::To, tagged);
            }
        }
    }

    fn respond_stateless(&mut self, req: &Request, status: StatusCode) {
        if req.method != Method::Ack {
            self.transmit(response_to(req, status).to_bytes());
        }
    }
}

/// How long to wait for the answer to an unregistration when stopping.
pub const UNREGISTER_GRACE: Duration = Duration::from_secs(2);
