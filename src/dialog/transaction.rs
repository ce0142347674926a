//! SIP transactions (RFC 3261 §17, with RFC 6026's Accepted state) for a
//! reliable transport (WebSocket, RFC 7118): nothing is retransmitted, so the
//! timers that remain are B/F (no final response), H (no ACK for a negative
//! INVITE response) and L (absorb INVITE retransmissions after a 2xx). The
//! timers that are zero on a reliable transport (D, I, J, K) terminate the
//! transaction at once.
//!
//! Sans-IO: every input takes `now`, and [`ClientTransaction::poll_timeout`]
//! / [`ServerTransaction::poll_timeout`] say when to call `handle_timeout`.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::sip::{CSeq, HeaderName, Method, Request, Response, TypedHeader, Via};

/// RFC 3261 timer base values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// T1, the round-trip estimate (500 ms).
    pub t1: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { t1: Duration::from_millis(500) }
    }
}

impl Timers {
    /// 64*T1: timers B, F, H and L.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// Identifies a transaction: the top Via branch and the method (CANCEL
/// shares the INVITE's branch; ACK for a negative response matches INVITE).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// The top Via `branch`.
    pub branch: String,
    /// The method (`Ack` is mapped to `Invite`).
    pub method: Method,
}

impl TransactionKey {
    /// Key of a received or sent request (`None` when the top Via or its
    /// branch is missing or malformed).
    pub fn of_request(req: &Request) -> Option<TransactionKey> {
        let branch = top_branch(&req.headers)?;
        let method = if req.method == Method::Ack { Method::Invite } else { req.method.clone() };
        Some(TransactionKey { branch, method })
    }

    /// Key of a received response (top Via branch and CSeq method).
    pub fn of_response(resp: &Response) -> Option<TransactionKey> {
        let branch = top_branch(&resp.headers)?;
        let method = resp.headers.typed::<CSeq>()?.ok()?.method;
        Some(TransactionKey { branch, method })
    }
}

fn top_branch(headers: &crate::sip::Headers) -> Option<String> {
    let top = headers.get(&HeaderName::Via)?;
    let first = top.split(',').next()?;
    Via::parse(first).ok()?.branch().map(str::to_string)
}

/// Client transaction state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// Request sent, nothing back yet (Calling / Trying).
    Waiting,
    /// A provisional response arrived.
    Proceeding,
    /// Finished.
    Terminated,
}

/// What the transaction user should do with a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAction {
    /// Pass the response to the transaction user.
    Deliver,
    /// Pass it on, and send this ACK (INVITE answered with 300-699).
    DeliverAndAck(Bytes),
    /// A response for a finished transaction: drop it (a 2xx retransmission
    /// to an INVITE is the dialog's business and is delivered by the caller).
    Absorb,
}

/// A client transaction over a reliable transport.
#[derive(Debug)]
pub struct ClientTransaction {
    key: TransactionKey,
    request: Request,
    state: ClientState,
    deadline: Option<Instant>,
}

impl ClientTransaction {
    /// Starts a transaction for `request` (which carries its Via with a
    /// branch already). The caller sends `request` once.
    pub fn new(request: Request, timers: &Timers, now: Instant) -> Option<ClientTransaction> {
        let key = TransactionKey::of_request(&request)?;
        Some(ClientTransaction {
            key,
            request,
            state: ClientState::Waiting,
            deadline: Some(now + timers.transaction_timeout()),
        })
    }

    /// The key responses are matched on.
    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    /// The request this transaction sent.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Handles a response matched to this transaction.
    pub fn handle_response(&mut self, resp: &Response, _now: Instant) -> ClientAction {
        if self.state == ClientState::Terminated {
            return ClientAction::Absorb;
        }
        if resp.status.is_provisional() {
            self.state = ClientState::Proceeding;
            // RFC 3261 §17.1.1.2: timer B runs in Calling only (timer F goes on).
            if self.key.method == Method::Invite {
                self.deadline = None;
            }
            return ClientAction::Deliver;
        }
        self.state = ClientState::Terminated;
        self.deadline = None;
        if self.key.method == Method::Invite && !resp.status.is_success() {
            return ClientAction::DeliverAndAck(self.ack_for(resp).to_bytes());
        }
        ClientAction::Deliver
    }

    /// Timer B/F: returns true when the transaction timed out now (the
    /// transaction user treats that as a 408).
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        match self.deadline {
            Some(d) if now >= d => {
                self.state = ClientState::Terminated;
                self.deadline = None;
                true
            }
            _ => false,
        }
    }

    /// When to call [`Self::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// True once finished.
    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    /// The ACK for a 300-699 response to INVITE (RFC 3261 §17.1.1.3): same
    /// Request-URI, top Via, From, Call-ID, Route; To from the response.
    fn ack_for(&self, resp: &Response) -> Request {
        let req = &self.request;
        let mut ack = Request::new(Method::Ack, req.uri.clone());
        if let Some(via) = req.headers.get(&HeaderName::Via) {
            ack.headers.push(HeaderName::Via, via.to_string());
        }
        for h in req.headers.iter() {
            if matches!(h.name, HeaderName::MaxForwards | HeaderName::From | HeaderName::CallId | HeaderName::Route) {
                ack.headers.push(h.name.clone(), h.value.clone());
            }
        }
        if let Some(to) = resp.headers.get(&HeaderName::To) {
            ack.headers.push(HeaderName::To, to.to_string());
        }
        let seq = req.headers.typed::<CSeq>().and_then(Result::ok).map_or(1, |c| c.seq);
        ack.headers.push_typed(&CSeq { seq, method: Method::Ack });
        ack
    }
}

/// Server transaction state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// Request received, no final response yet.
    Proceeding,
    /// INVITE answered with 300-699: waiting for the ACK (timer H).
    Completed,
    /// INVITE answered with 2xx: absorbing retransmissions (timer L).
    Accepted,
    /// Finished.
    Terminated,
}

/// What happened when a server transaction's timer fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerTimeout {
    /// Timer H: no ACK came for a negative INVITE response.
    NoAck,
    /// The transaction simply ended (timer L).
    Ended,
}

/// A server transaction over a reliable transport.
#[derive(Debug)]
pub struct ServerTransaction {
    key: TransactionKey,
    state: ServerState,
    last_response: Option<Bytes>,
    deadline: Option<Instant>,
    timers: Timers,
}

impl ServerTransaction {
    /// Starts a server transaction for a received request (not ACK).
    pub fn new(req: &Request, timers: &Timers) -> Option<ServerTransaction> {
        let key = TransactionKey::of_request(req)?;
        Some(ServerTransaction {
            key,
            state: ServerState::Proceeding,
            last_response: None,
            deadline: None,
            timers: *timers,
        })
    }

    /// The key retransmissions and ACKs are matched on.
    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    /// Current state.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The same request arrived again: what to resend, if anything.
    pub fn handle_retransmission(&self) -> Option<Bytes> {
        self.last_response.clone()
    }

    /// Records `resp` as sent and returns its bytes; `None` when a final
    /// response was already sent (the response must not go out).
    pub fn send_response(&mut self, resp: &Response, now: Instant) -> Option<Bytes> {
        if self.state != ServerState::Proceeding {
            return None;
        }
        let bytes = resp.to_bytes();
        self.last_response = Some(bytes.clone());
        if resp.status.is_final() {
            if self.key.method != Method::Invite {
                self.state = ServerState::Terminated; // timer J = 0
            } else if resp.status.is_success() {
                self.state = ServerState::Accepted;
                self.deadline = Some(now + self.timers.transaction_timeout());
            } else {
                self.state = ServerState::Completed;
                self.deadline = Some(now + self.timers.transaction_timeout());
            }
        }
        Some(bytes)
    }

    /// The ACK for a negative INVITE response arrived (timer I = 0).
    pub fn handle_ack(&mut self) {
        if self.state == ServerState::Completed {
            self.state = ServerState::Terminated;
            self.deadline = None;
        }
    }

    /// Handles timer H / L.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<ServerTimeout> {
        match self.deadline {
            Some(d) if now >= d => {
                let what =
                    if self.state == ServerState::Completed { ServerTimeout::NoAck } else { ServerTimeout::Ended };
                self.state = ServerState::Terminated;
                self.deadline = None;
                Some(what)
            }
            _ => None,
        }
    }

    /// When to call [`Self::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// True once finished.
    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{Message, StatusCode, validate::response_to};

    fn request(method: &str) -> Request {
        let raw = format!(
            "{method} sip:b@x SIP/2.0\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bKabc\r\nFrom: <sip:a@x>;tag=1\r\n\
             To: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 7 {method}\r\nMax-Forwards: 70\r\n\r\n"
        );
        match Message::parse_slice(raw.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("bad fixture: {other:?}"),
        }
    }

    #[test]
    fn non_invite_client_times_out_at_64_t1() {
        let t0 = Instant::now();
        let timers = Timers::default();
        let mut tx = ClientTransaction::new(request("REGISTER"), &timers, t0).expect("has branch");
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        assert!(!tx.handle_timeout(t0 + Duration::from_millis(31_999)));
        let trying = response_to(tx.request(), StatusCode::TRYING);
        assert_eq!(tx.handle_response(&trying, t0), ClientAction::Deliver);
        assert_eq!(tx.state(), ClientState::Proceeding);
        assert!(tx.handle_timeout(t0 + Duration::from_secs(32)));
        assert!(tx.is_terminated());
        assert_eq!(tx.handle_response(&response_to(tx.request(), StatusCode::OK), t0), ClientAction::Absorb);
    }

    #[test]
    fn invite_client_acks_negative_final_response_with_same_branch() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(request("INVITE"), &Timers::default(), t0).expect("has branch");
        let mut busy = response_to(tx.request(), StatusCode::BUSY_HERE);
        busy.headers.set(HeaderName::To, "<sip:b@x>;tag=callee");
        let ClientAction::DeliverAndAck(ack) = tx.handle_response(&busy, t0) else { panic!("no ACK") };
        let Ok(Message::Request(ack)) = Message::parse(ack) else { panic!("ACK does not parse") };
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(TransactionKey::of_request(&ack), Some(tx.key().clone()));
        assert_eq!(ack.headers.get(&HeaderName::To), Some("<sip:b@x>;tag=callee"));
        assert_eq!(ack.headers.get(&HeaderName::CSeq), Some("7 ACK"));
        assert_eq!(tx.poll_timeout(), None, "timer D is zero on a reliable transport");
    }

    #[test]
    fn invite_server_waits_for_ack_then_timer_h() {
        let t0 = Instant::now();
        let req = request("INVITE");
        let mut tx = ServerTransaction::new(&req, &Timers::default()).expect("has branch");
        assert!(tx.send_response(&response_to(&req, StatusCode::RINGING), t0).is_some());
        assert!(tx.handle_retransmission().is_some());
        assert!(tx.send_response(&response_to(&req, StatusCode::BUSY_HERE), t0).is_some());
        assert!(tx.send_response(&response_to(&req, StatusCode::OK), t0).is_none(), "one final response only");
        assert_eq!(tx.state(), ServerState::Completed);
        assert_eq!(tx.handle_timeout(t0 + Duration::from_secs(31)), None);
        assert_eq!(tx.handle_timeout(t0 + Duration::from_secs(32)), Some(ServerTimeout::NoAck));

        let mut tx = ServerTransaction::new(&req, &Timers::default()).expect("has branch");
        tx.send_response(&response_to(&req, StatusCode::BUSY_HERE), t0);
        tx.handle_ack();
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_server_2xx_absorbs_retransmissions_until_timer_l() {
        let t0 = Instant::now();
        let req = request("INVITE");
        let mut tx = ServerTransaction::new(&req, &Timers::default()).expect("has branch");
        tx.send_response(&response_to(&req, StatusCode::OK), t0);
        assert_eq!(tx.state(), ServerState::Accepted);
        assert_eq!(tx.handle_timeout(t0 + Duration::from_secs(32)), Some(ServerTimeout::Ended));
    }

    #[test]
    fn non_invite_server_terminates_on_final() {
        let t0 = Instant::now();
        let req = request("OPTIONS");
        let mut tx = ServerTransaction::new(&req, &Timers::default()).expect("has branch");
        tx.send_response(&response_to(&req, StatusCode::OK), t0);
        assert!(tx.is_terminated());
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn ack_and_cancel_keys() {
        let invite = TransactionKey::of_request(&request("INVITE")).expect("key");
        let ack = TransactionKey::of_request(&request("ACK")).expect("key");
        let cancel = TransactionKey::of_request(&request("CANCEL")).expect("key");
        assert_eq!(invite, ack);
        assert_ne!(invite, cancel);
    }
}
