//! Client registration (RFC 3261 §10): REGISTER with digest authentication,
//! 423 handling, refresh before the granted expiry, retry after transient
//! failures, and unregistration.
//!
//! Sans-IO. [`Registration`] builds REGISTER requests without a Via (the
//! [`super::UserAgent`] adds it and runs the transaction) and consumes the
//! responses. Its rules:
//! - one REGISTER in flight at a time; the Call-ID and From tag stay the
//!   same for every REGISTER of this phone, the CSeq grows by one;
//! - a 401/407 is answered once with credentials; a second challenge for
//!   the same exchange means the credentials are wrong (unless it says
//!   `stale=true`), and ends in [`RegistrationEvent::Failed`] with no retry,
//!   so a wrong password never causes a request storm;
//! - refreshes reuse the last challenge (nonce count + 1), so a healthy
//!   refresh is one round trip;
//! - 423 raises the requested expiry to Min-Expires and retries;
//! - timeouts and 5xx retry later (Retry-After when given, else backoff);
//!   403, 404 and 6xx do not.

use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;

use super::auth::{Challenge, DigestClient, preferred};
use crate::sip::{
    CSeq, Contact, Expires, HeaderName, Method, MinExpires, NameAddr, Request, Response, RetryAfter, Uri,
};

/// What to register, and for how long.
#[derive(Clone, Debug)]
pub struct RegistrationConfig {
    /// Request-URI of the REGISTER (`sip:domain`).
    pub registrar: Uri,
    /// Address of record (`sip:user@domain`), used in From and To.
    pub aor: Uri,
    /// Display name for the From header.
    pub display_name: Option<String>,
    /// Our Contact, with its parameters (`+sip.instance`, `reg-id`).
    pub contact: NameAddr,
    /// Requested expiry in seconds.
    pub expires: u32,
    /// Shortest and longest wait before retrying after a transient failure.
    pub retry_min: Duration,
    /// See `retry_min`.
    pub retry_max: Duration,
}

/// What the registration reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationEvent {
    /// The registrar accepted the binding for `expires` seconds.
    Registered {
        /// Granted expiry in seconds.
        expires: u32,
    },
    /// The binding is gone (unregistered, or the connection carrying it closed).
    Unregistered {
        /// Why, for the user.
        reason: String,
    },
    /// Registration failed.
    Failed {
        /// Final status, when the registrar answered (408 for a timeout).
        status: Option<u16>,
        /// Reason phrase or description.
        reason: String,
        /// When it will be retried automatically; `None` means never.
        retry_in: Option<Duration>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Registered,
}

/// The registration state machine of one phone.
#[derive(Debug)]
pub struct Registration {
    cfg: RegistrationConfig,
    call_id: String,
    from_tag: String,
    cseq: u32,
    expires: u32,
    state: State,
    /// The registrar may hold our binding: a REGISTER succeeded on this
    /// connection and no unregistration has succeeded since (stays true
    /// through a failed refresh, so `unregister` still removes it).
    bound: bool,
    /// The public GRUU of our binding, from the last 2xx (RFC 5627).
    gruu: Option<Uri>,
    wanted: bool,
    /// REGISTER in flight: the expiry it asked for.
    pending: Option<u32>,
    /// Credentials went out in the current exchange.
    challenged: bool,
    stale_retries: u8,
    interval_retries: u8,
    challenge: Option<Challenge>,
    timer: Option<Instant>,
    failures: u32,
    rng: StdRng,
}

impl Registration {
    /// A registration that has not started.
    pub fn new(cfg: RegistrationConfig, mut rng: StdRng) -> Registration {
        let call_id = random_token(&mut rng, 22);
        let from_tag = random_token(&mut rng, 10);
        let expires = cfg.expires;
        Registration {
            cfg,
            call_id,
            from_tag,
            cseq: 0,
            expires,
            state: State::Idle,
            bound: false,
            gruu: None,
            wanted: false,
            pending: None,
            challenged: false,
            stale_retries: 0,
            interval_retries: 0,
            challenge: None,
            timer: None,
            failures: 0,
            rng,
        }
    }

    /// True while the registrar holds our binding.
    pub fn is_registered(&self) -> bool {
        self.state == State::Registered
    }

    /// True when the user wants to be registered.
    pub fn is_wanted(&self) -> bool {
        self.wanted
    }

    /// Call-ID shared by all our REGISTERs.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The user asks to register (again). Returns the REGISTER to send, or
    /// `None` when one is already in flight or the transport is down (the
    /// caller then calls [`Self::handle_connected`] later).
    pub fn register(&mut self, connected: bool, auth: &mut DigestClient) -> Option<Request> {
        self.wanted = true;
        self.failures = 0;
        if !connected || self.pending.is_some() {
            return None;
        }
        Some(self.build(self.expires, true, auth))
    }

    /// The user asks to unregister. Returns the REGISTER with expiry 0, or
    /// `None` when there is no binding to remove or a REGISTER is in flight
    /// (when that one succeeds, the unregistration follows it).
    pub fn unregister(&mut self, connected: bool, auth: &mut DigestClient) -> Option<Request> {
        self.wanted = false;
        self.timer = None;
        if !connected || self.pending.is_some() || !self.bound {
            return None;
        }
        Some(self.build(0, true, auth))
    }

    /// The transport is up: register if the user wants to be.
    pub fn handle_connected(&mut self, auth: &mut DigestClient) -> Option<Request> {
        if !self.wanted || self.pending.is_some() {
            return None;
        }
        self.timer = None;
        Some(self.build(self.expires, true, auth))
    }

    /// The transport is gone: the binding was bound to that connection.
    pub fn handle_disconnected(&mut self) -> Option<RegistrationEvent> {
        self.pending = None;
        self.timer = None;
        self.bound = false;
        if self.state == State::Registered {
            self.state = State::Idle;
            return Some(RegistrationEvent::Unregistered { reason: "connection closed".into() });
        }
        None
    }

    /// When to call [`Self::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer
    }

    /// Refresh or retry time reached: the REGISTER to send, if any.
    pub fn handle_timeout(&mut self, now: Instant, connected: bool, auth: &mut DigestClient) -> Option<Request> {
        match self.timer {
            Some(t) if now >= t => {}
            _ => return None,
        }
        self.timer = None;
        if !self.wanted || !connected || self.pending.is_some() {
            return None;
        }
        Some(self.build(self.expires, true, auth))
    }

    /// The REGISTER transaction timed out (no final response in 64*T1).
    pub fn handle_transaction_timeout(&mut self, now: Instant) -> Option<RegistrationEvent> {
        self.pending?;
        self.pending = None;
        Some(self.transient_failure(408, "Request Timeout".into(), None, now))
    }

    /// A final response to our REGISTER. Returns a REGISTER to send at once
    /// (authenticated retry, 423 retry) and/or an event.
    pub fn handle_response(
        &mut self,
        resp: &Response,
        now: Instant,
        auth: &mut DigestClient,
    ) -> (Option<Request>, Option<RegistrationEvent>) {
        let Some(asked) = self.pending else {
            return (None, None);
        };
        if resp.status.is_provisional() {
            return (None, None);
        }
        self.pending = None;
        let code = resp.status.as_u16();
        match code {
            200..=299 => {
                self.challenged = false;
                self.stale_retries = 0;
                self.interval_retries = 0;
                self.failures = 0;
                if asked == 0 {
                    self.state = State::Idle;
                    self.bound = false;
                    self.timer = None;
                    // register() was called while the unregistration was in flight.
                    let next = self.wanted.then(|| self.build(self.expires, true, auth));
                    return (next, Some(RegistrationEvent::Unregistered { reason: "unregistered".into() }));
                }
                let granted = self.granted_expiry(resp).unwrap_or(asked);
                if granted == 0 {
                    // A registrar that accepts a binding for 0 s will do so
                    // again: report it and do not retry on our own.
                    self.bound = false;
                    return (None, Some(self.permanent_failure(code, "registrar granted 0 seconds".into())));
                }
                self.state = State::Registered;
                self.bound = true;
                self.gruu = self.public_gruu(resp);
                if !self.wanted {
                    // unregister() was called while this REGISTER was in flight.
                    return (Some(self.build(0, true, auth)), Some(RegistrationEvent::Registered { expires: granted }));
                }
                self.timer = Some(now + refresh_after(granted));
                (None, Some(RegistrationEvent::Registered { expires: granted }))
            }
            401 | 407 => {
                let header = if code == 401 { HeaderName::WwwAuthenticate } else { HeaderName::ProxyAuthenticate };
                let challenges: Vec<Challenge> =
                    resp.headers.get_all(&header).filter_map(|v| Challenge::parse(v, code == 407).ok()).collect();
                let Some(challenge) = preferred(&challenges).cloned() else {
                    return (None, Some(self.permanent_failure(code, "no usable digest challenge".into())));
                };
                let stale_retry = challenge.stale && self.stale_retries < 2;
                if self.challenged && !stale_retry {
                    self.challenge = None;
                    return (None, Some(self.permanent_failure(code, resp.reason_phrase().to_string())));
                }
                if challenge.stale {
                    self.stale_retries += 1;
                }
                self.challenge = Some(challenge);
                // Credentials answering a challenge of this exchange (pre-emptive
                // ones, from an older challenge, do not count).
                self.challenged = true;
                (Some(self.build(asked, false, auth)), None)
            }
            423 => match resp.headers.typed::<MinExpires>() {
                Some(Ok(MinExpires(min))) if asked != 0 && self.interval_retries < 3 && min > self.expires => {
                    self.interval_retries += 1;
                    self.expires = min;
                    (Some(self.build(min, false, auth)), None)
                }
                _ => (None, Some(self.permanent_failure(code, resp.reason_phrase().to_string()))),
            },
            403 | 404 | 600..=699 => (None, Some(self.permanent_failure(code, resp.reason_phrase().to_string()))),
            _ => {
                let retry_after = resp.headers.typed::<RetryAfter>().and_then(Result::ok).map(|r| r.seconds);
                (None, Some(self.transient_failure(code, resp.reason_phrase().to_string(), retry_after, now)))
            }
        }
    }

    fn permanent_failure(&mut self, code: u16, reason: String) -> RegistrationEvent {
        self.state = State::Idle;
        self.wanted = false;
        self.timer = None;
        self.challenged = false;
        RegistrationEvent::Failed { status: Some(code), reason, retry_in: None }
    }

    fn transient_failure(
        &mut self,
        code: u16,
        reason: String,
        retry_after: Option<u32>,
        now: Instant,
    ) -> RegistrationEvent {
        self.state = State::Idle;
        self.challenged = false;
        self.failures += 1;
        let retry_in = self.wanted.then(|| match retry_after {
            Some(s) => Duration::from_secs(u64::from(s)).max(self.cfg.retry_min),
            None => {
                let exp = self.failures.saturating_sub(1).min(16);
                self.cfg.retry_min.saturating_mul(1 << exp).min(self.cfg.retry_max)
            }
        });
        self.timer = retry_in.map(|d| now + d);
        RegistrationEvent::Failed { status: Some(code), reason, retry_in }
    }

    /// Our binding's expiry in a 2xx: the `expires` of the Contact that is
    /// ours, else the Expires header.
    fn granted_expiry(&self, resp: &Response) -> Option<u32> {
        let binding = self.our_binding(resp).map(Contact::Address);
        binding.and_then(|c| c.expires()).or_else(|| resp.headers.typed::<Expires>().and_then(Result::ok).map(|e| e.0))
    }

    /// Our Contact among a 2xx's bindings.
    fn our_binding(&self, resp: &Response) -> Option<NameAddr> {
        let ours = self.cfg.contact.uri.as_sip()?;
        let contacts = resp.headers.typed_all::<Contact>().ok()?;
        contacts.into_iter().find_map(|c| {
            let addr = c.address()?;
            let theirs = addr.uri.as_sip()?;
            (theirs.user == ours.user && theirs.host == ours.host).then(|| addr.clone())
        })
    }

    /// The public GRUU the registrar gave our binding (RFC 5627 `pub-gruu`),
    /// if it gave one and it is a SIP URI.
    fn public_gruu(&self, resp: &Response) -> Option<Uri> {
        let binding = self.our_binding(resp)?;
        let value = binding.params.value("pub-gruu")?;
        let uri = Uri::parse(value.trim_matches('"')).ok()?;
        uri.as_sip().is_some_and(|u| u.params.contains("gr")).then_some(uri)
    }

    /// The public GRUU of our binding while registered (RFC 5627): a
    /// Contact that reaches this very device through the registrar,
    /// whatever connection it is on now.
    pub fn gruu(&self) -> Option<&Uri> {
        self.gruu.as_ref().filter(|_| self.bound)
    }

    fn build(&mut self, expires: u32, fresh_exchange: bool, auth: &mut DigestClient) -> Request {
        if fresh_exchange {
            self.challenged = false;
            self.stale_retries = 0;
        }
        self.cseq += 1;
        self.pending = Some(expires);
        let mut req = Request::new(Method::Register, self.cfg.registrar.clone());
        let mut to = NameAddr::new(self.cfg.aor.clone());
        req.headers.push(HeaderName::To, to.to_string());
        to.display = self.cfg.display_name.clone();
        to.params.set("tag", Some(self.from_tag.clone()));
        req.headers.push(HeaderName::From, to.to_string());
        req.headers.push(HeaderName::CallId, self.call_id.clone());
        req.headers.push_typed(&CSeq { seq: self.cseq, method: Method::Register });
        let mut contact = self.cfg.contact.clone();
        contact.params.set("expires", Some(expires.to_string()));
        req.headers.push(HeaderName::Contact, contact.to_string());
        req.headers.push_typed(&Expires(expires));
        if self.cfg.contact.params.contains("+sip.instance") {
            // RFC 5627 §4.1: ask for a GRUU (the registrar gives one only with an instance id).
            req.headers.push(HeaderName::Supported, "gruu");
        }
        if let Some(ch) = &self.challenge {
            let cnonce = random_token(&mut self.rng, 16);
            let uri = req.uri.to_string();
            let authorization = auth.authorize(ch, Method::Register.as_str(), &uri, &req.body, &cnonce);
            let name =
                if authorization.is_proxy() { HeaderName::ProxyAuthorization } else { HeaderName::Authorization };
            req.headers.push(name, authorization.to_string());
        }
        req
    }
}

/// When to refresh a binding granted for `granted` seconds: a margin of a
/// tenth of the interval, at least 5 s and at most 60 s, never more than
/// half of it.
pub fn refresh_after(granted: u32) -> Duration {
    let g = u64::from(granted);
    let margin = (g / 10).clamp(5, 60).min(g / 2);
    Duration::from_secs(g - margin).max(Duration::from_secs(1))
}

/// A random alphanumeric token (tags, Call-IDs, branches, cnonces).
pub fn random_token(rng: &mut impl Rng, len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}
