//! Deterministic scenario tests of the sans-IO [`UserAgent`] against an
//! in-test registrar that answers the way Kamailio 5.6 does (auth module
//! with `qop=auth`, registrar module, nathelper `received`).
//!
//! No sockets, no sleeping, no runtime: time is an `Instant` the tests move
//! by hand, usually straight to `ua.poll_timeout()`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use md5::{Digest as _, Md5};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};
use webphone::dialog::auth::DigestClient;
use webphone::dialog::register::{RegistrationConfig, RegistrationEvent, refresh_after};
use webphone::dialog::transaction::Timers;
use webphone::dialog::{AgentConfig, AgentEvent, Output, UserAgent};
use webphone::sip::{
    CSeq, Contact, Expires, HeaderName, Host, MAX_MESSAGE_SIZE, Message, Method, NameAddr, Request, Response,
    StatusCode, Uri, Via,
};
use webphone::{FailureKind, PermanentFailurePolicy};

const REALM: &str = "example.com";
const USER: &str = "alice";
const PASSWORD: &str = "secret";
const CONTACT: &str =
    "<sip:k4x9q2md@abc.invalid;transport=ws>;+sip.instance=\"<urn:uuid:6f1b7a54-3c2d-4e8f-9a0b-1c2d3e4f5a6b>\"";
const RECEIVED: &str = "sip:127.0.0.1:37502;transport=ws";
const RETRY_MIN: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(120);
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(32);
const HOUR: Duration = Duration::from_secs(3600);

// ------------------------------------------------------------------ setup

fn registration_config(expires: u32) -> RegistrationConfig {
    registration_config_with(expires, PermanentFailurePolicy::Stop)
}

fn registration_config_with(expires: u32, on_permanent_failure: PermanentFailurePolicy) -> RegistrationConfig {
    RegistrationConfig {
        registrar: Uri::parse("sip:example.com").expect("registrar URI"),
        aor: Uri::parse("sip:alice@example.com").expect("AOR"),
        display_name: Some("Alice".into()),
        contact: NameAddr::parse(CONTACT).expect("contact"),
        expires,
        retry_min: RETRY_MIN,
        retry_max: RETRY_MAX,
        on_permanent_failure,
    }
}

fn new_agent(expires: u32) -> UserAgent {
    new_agent_with(registration_config(expires))
}

fn new_agent_with(registration: RegistrationConfig) -> UserAgent {
    UserAgent::new(
        AgentConfig {
            via_transport: "WS",
            via_host: "abc.invalid".into(),
            user_agent: "test".into(),
            timers: Timers::default(),
            seed: Some(1),
            calls: Default::default(),
        },
        registration,
        DigestClient::new(USER, PASSWORD),
    )
}

// ------------------------------------------------------------------ digest

fn md5_hex(s: &str) -> String {
    format!("{:x}", Md5::digest(s.as_bytes()))
}

/// The parameters of a `Digest` credentials header value (names
/// lower-cased, quoted values unescaped). Repeated parameters are an error.
fn digest_params(value: &str) -> Result<HashMap<String, String>, String> {
    let rest = value.strip_prefix("Digest ").ok_or_else(|| format!("not a Digest credential: {value:?}"))?;
    let mut out = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(' ' | ',')) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("parameter {name:?} has no value"));
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => val.push(chars.next().ok_or("dangling backslash")?),
                    Some('"') => break,
                    Some(c) => val.push(c),
                    None => return Err("unterminated quoted string".into()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        let name = name.trim().to_ascii_lowercase();
        if out.insert(name.clone(), val.trim().to_string()).is_some() {
            return Err(format!("repeated parameter {name}"));
        }
    }
    Ok(out)
}

/// The digest parameters of a request's Authorization header.
fn authorization(req: &Request) -> Option<HashMap<String, String>> {
    assert!(req.headers.count(&HeaderName::Authorization) <= 1, "several Authorization headers");
    req.headers.get(&HeaderName::Authorization).map(|v| digest_params(v).expect("Authorization parses"))
}

/// How a registrar judges a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    Good,
    /// Known but expired nonce, or a replayed nonce count: `stale=true`.
    Stale,
    /// Anything else: challenge again.
    Bad(String),
}

/// Verifies `req`'s credentials the way Kamailio's auth module does, with
/// `password` for [`USER`]. `nonces` maps nonces to their last nc seen
/// (updated on success); `expired` lists nonces that timed out.
fn verify_digest(
    req: &Request,
    password: &str,
    current_nonce: &str,
    nonces: &mut HashMap<String, u32>,
    expired: &[String],
) -> Verdict {
    let Some(p) = authorization(req) else { return Verdict::Bad("no credentials".into()) };
    let get = |k: &str| p.get(k).map(String::as_str);
    if get("username") != Some(USER) {
        return Verdict::Bad(format!("username {:?}", get("username")));
    }
    if get("realm") != Some(REALM) {
        return Verdict::Bad(format!("realm {:?}", get("realm")));
    }
    let uri = req.uri.to_string();
    if get("uri") != Some(uri.as_str()) {
        return Verdict::Bad(format!("uri {:?} for Request-URI {uri:?}", get("uri")));
    }
    if get("qop") != Some("auth") {
        return Verdict::Bad(format!("qop {:?}", get("qop")));
    }
    if !matches!(get("algorithm"), None | Some("MD5")) {
        return Verdict::Bad(format!("algorithm {:?}", get("algorithm")));
    }
    if get("opaque").is_some() {
        return Verdict::Bad("opaque echoed though none was sent".into());
    }
    let Some(cnonce) = get("cnonce").filter(|c| !c.is_empty()) else {
        return Verdict::Bad("no cnonce".into());
    };
    let Some(nc_hex) = get("nc").filter(|n| n.len() == 8 && n.bytes().all(|b| b.is_ascii_hexdigit())) else {
        return Verdict::Bad(format!("nc {:?}", get("nc")));
    };
    let nc = u32::from_str_radix(nc_hex, 16).expect("hex checked");
    let Some(nonce) = get("nonce") else { return Verdict::Bad("no nonce".into()) };
    let ha1 = md5_hex(&format!("{USER}:{REALM}:{password}"));
    let ha2 = md5_hex(&format!("{}:{uri}", req.method));
    let expected = md5_hex(&format!("{ha1}:{nonce}:{nc_hex}:{cnonce}:auth:{ha2}"));
    if get("response") != Some(expected.as_str()) {
        return Verdict::Bad("response mismatch".into());
    }
    if expired.iter().any(|n| n == nonce) {
        return Verdict::Stale;
    }
    if nonce != current_nonce && !nonces.contains_key(nonce) {
        return Verdict::Bad(format!("unknown nonce {nonce:?}"));
    }
    let last = nonces.entry(nonce.to_string()).or_insert(0);
    if nc <= *last {
        return Verdict::Stale;
    }
    *last = nc;
    Verdict::Good
}

// ------------------------------------------------------------------ registrar

/// Kamailio's response skeleton: Via with `received`/`rport`, From, To with
/// the registrar's tag, Call-ID, CSeq, Server.
fn reply(req: &Request, code: u16, reason: &str) -> Response {
    let mut resp = Response::new(StatusCode::new(code).expect("status code"));
    resp.reason = reason.to_string();
    for h in req.headers.iter() {
        match h.name {
            HeaderName::Via => {
                resp.headers.push(HeaderName::Via, format!("{};received=127.0.0.1;rport=37502", h.value_str()))
            }
            HeaderName::To => resp
                .headers
                .push(HeaderName::To, format!("{};tag=2a8e3c5f9b1d7e4a6c0f2b8d4e6a1c3f.b7e2", h.value_str())),
            HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                resp.headers.push(h.name.clone(), h.value.clone())
            }
            _ => {}
        }
    }
    resp
}

fn with(mut resp: Response, headers: &[(HeaderName, String)]) -> Response {
    for (n, v) in headers {
        resp.headers.push(n.clone(), v.clone());
    }
    resp.headers.push(HeaderName::Server, "kamailio (5.6.4 (x86_64/linux))");
    resp
}

fn challenge_value(nonce: &str, stale: bool) -> String {
    let stale = if stale { ", stale=true" } else { "" };
    format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", qop=\"auth\"{stale}")
}

/// The expiry a REGISTER asks for: the Contact's `expires`, else Expires,
/// else Kamailio's default_expires.
fn requested_expiry(req: &Request) -> u32 {
    let contacts = req.headers.typed_all::<Contact>().expect("Contact parses");
    contacts
        .first()
        .and_then(Contact::expires)
        .or_else(|| req.headers.typed::<Expires>().and_then(Result::ok).map(|e| e.0))
        .unwrap_or(3600)
}

/// A 200 for a binding of `granted` seconds (0: removed, no Contact).
fn ok_for(req: &Request, granted: u32) -> Response {
    let mut extra = Vec::new();
    if granted > 0 {
        let contact = req.headers.typed_all::<Contact>().expect("Contact parses");
        let addr = contact.first().and_then(Contact::address).expect("REGISTER has a Contact address");
        extra.push((HeaderName::Contact, format!("<{}>;expires={granted};received=\"{RECEIVED}\"", addr.uri)));
    }
    with(reply(req, 200, "OK"), &extra)
}

/// What the registrar does with one REGISTER.
#[derive(Clone, Debug)]
enum Answer {
    /// Kamailio's logic: challenge, verify, 423, 200.
    Kamailio,
    /// Drop the request.
    Silent,
    /// A fixed final response with extra headers.
    Status(u16, &'static str, Vec<(HeaderName, String)>),
}

/// An in-test registrar answering like Kamailio 5.6.
struct Registrar {
    password: String,
    nonce: String,
    nonce_serial: u32,
    /// Nonces issued and their last nc.
    nonces: HashMap<String, u32>,
    expired: Vec<String>,
    min_expires: u32,
    max_expires: u32,
    /// Answers for the next requests; `default` after that.
    script: VecDeque<Answer>,
    default: Answer,
    /// Granted expiry of the binding, if any.
    binding: Option<u32>,
    /// Every 401 sent: (nonce, stale).
    challenges: Vec<(String, bool)>,
    /// Digests that failed verification, and why.
    rejected: Vec<String>,
    /// Digests accepted.
    accepted: usize,
}

impl Registrar {
    fn kamailio() -> Registrar {
        Registrar {
            password: PASSWORD.into(),
            nonce: String::new(),
            nonce_serial: 0,
            nonces: HashMap::new(),
            expired: Vec::new(),
            min_expires: 1,
            max_expires: 3600,
            script: VecDeque::new(),
            default: Answer::Kamailio,
            binding: None,
            challenges: Vec::new(),
            rejected: Vec::new(),
            accepted: 0,
        }
        .with_new_nonce()
    }

    fn with_new_nonce(mut self) -> Registrar {
        self.new_nonce();
        self
    }

    fn new_nonce(&mut self) {
        self.nonce_serial += 1;
        self.nonce = format!("Zw{:04}CdZv4R3Jk9mQz0hX5yWcT1nLpUeS", self.nonce_serial);
    }

    /// The current nonce passes `nonce_expire`: the next digest with it gets
    /// `stale=true` and a fresh nonce.
    fn expire_nonce(&mut self) {
        self.expired.push(self.nonce.clone());
        self.new_nonce();
    }

    /// Kamailio restarted with a new secret: every old nonce is unknown
    /// (401 without `stale`), and bindings are gone.
    fn restart(&mut self) {
        self.nonces.clear();
        self.expired.clear();
        self.binding = None;
        self.new_nonce();
    }

    fn challenge(&mut self, req: &Request, stale: bool) -> Response {
        self.challenges.push((self.nonce.clone(), stale));
        with(reply(req, 401, "Unauthorized"), &[(HeaderName::WwwAuthenticate, challenge_value(&self.nonce, stale))])
    }

    /// Answers one REGISTER (`None`: no answer).
    fn handle(&mut self, req: &Request) -> Option<Response> {
        assert_eq!(req.method, Method::Register, "the registrar only gets REGISTERs");
        let answer = self.script.pop_front().unwrap_or_else(|| self.default.clone());
        match answer {
            Answer::Silent => None,
            Answer::Status(code, reason, headers) => Some(with(reply(req, code, reason), &headers)),
            Answer::Kamailio => Some(self.answer_like_kamailio(req)),
        }
    }

    fn answer_like_kamailio(&mut self, req: &Request) -> Response {
        if req.headers.get(&HeaderName::Authorization).is_none() {
            return self.challenge(req, false);
        }
        match verify_digest(req, &self.password, &self.nonce, &mut self.nonces, &self.expired) {
            Verdict::Good => self.accepted += 1,
            Verdict::Stale => {
                // An expired nonce was already replaced; a replayed nc on
                // the current one retires it.
                if authorization(req).and_then(|p| p.get("nonce").cloned()).as_deref() == Some(self.nonce.as_str()) {
                    self.new_nonce();
                }
                return self.challenge(req, true);
            }
            Verdict::Bad(why) => {
                self.rejected.push(why);
                return self.challenge(req, false);
            }
        }
        let asked = requested_expiry(req);
        if asked == 0 {
            self.binding = None;
            return ok_for(req, 0);
        }
        if asked < self.min_expires {
            return with(
                reply(req, 423, "Interval Too Brief"),
                &[(HeaderName::MinExpires, self.min_expires.to_string())],
            );
        }
        let granted = asked.min(self.max_expires);
        self.binding = Some(granted);
        ok_for(req, granted)
    }
}

// ------------------------------------------------------------------ the pair

/// A [`UserAgent`] wired to a [`Registrar`] on a fake clock.
struct Pair {
    ua: UserAgent,
    reg: Registrar,
    t0: Instant,
    now: Instant,
    connected: bool,
    /// Every REGISTER the UA sent, with when.
    sent: Vec<(Instant, Request)>,
    /// Every registration event, with when.
    events: Vec<(Instant, RegistrationEvent)>,
    /// Other agent events.
    other_events: Vec<AgentEvent>,
    /// Responses the UA sent (to requests the test fed it).
    replies: Vec<Response>,
}

impl Pair {
    /// The UA is told to register, then connects; messages flow until quiet.
    fn start(expires: u32, reg: Registrar) -> Pair {
        Pair::start_agent(new_agent(expires), reg)
    }

    /// Like [`Pair::start`] with this agent.
    fn start_agent(ua: UserAgent, reg: Registrar) -> Pair {
        let t0 = Instant::now();
        let mut p = Pair {
            ua,
            reg,
            t0,
            now: t0,
            connected: false,
            sent: Vec::new(),
            events: Vec::new(),
            other_events: Vec::new(),
            replies: Vec::new(),
        };
        p.ua.register(t0);
        p.drive();
        assert!(p.sent.is_empty(), "nothing may be sent before the transport is up");
        p.connect();
        p
    }

    fn connect(&mut self) {
        self.connected = true;
        self.ua.handle_connected(self.now, "WS");
        self.drive();
    }

    fn disconnect(&mut self) {
        self.connected = false;
        self.ua.handle_disconnected(self.now);
        self.drive();
    }

    /// Moves messages between the UA and the registrar until quiet.
    fn drive(&mut self) {
        for _ in 0..100 {
            let mut inbound = Vec::new();
            while let Some(out) = self.ua.poll_output() {
                match out {
                    Output::Transmit(bytes) => match Message::parse(bytes).expect("the UA sends parseable SIP") {
                        Message::Request(req) => {
                            assert_eq!(req.method, Method::Register, "unexpected request");
                            assert!(self.connected, "REGISTER sent while disconnected");
                            if let Some(resp) = self.reg.handle(&req) {
                                inbound.push(resp.to_bytes());
                            }
                            self.sent.push((self.now, req));
                        }
                        Message::Response(resp) => self.replies.push(resp),
                    },
                    Output::Event(AgentEvent::Registration(ev)) => self.events.push((self.now, ev)),
                    Output::Event(other) => self.other_events.push(other),
                    Output::Media(m) => panic!("registration asked for media: {m:?}"),
                    other => panic!("unexpected output {other:?}"),
                }
            }
            if inbound.is_empty() {
                return;
            }
            for bytes in inbound {
                self.ua.handle_message(bytes, self.now);
            }
        }
        panic!("message storm: still busy after 100 rounds");
    }

    /// Jumps the clock to `ua.poll_timeout()` and handles it.
    fn jump_to_timeout(&mut self) -> Instant {
        let t = self.ua.poll_timeout().expect("something is scheduled");
        assert!(t >= self.now, "poll_timeout in the past");
        self.at(t);
        t
    }

    /// Sets the clock to `t`, calls handle_timeout, drives.
    fn at(&mut self, t: Instant) {
        assert!(t >= self.now, "time goes forward");
        self.now = t;
        self.ua.handle_timeout(t);
        self.drive();
    }

    /// Lets `d` pass, handling every timeout on the way at its due time.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..100_000 {
            match self.ua.poll_timeout() {
                Some(t) if t <= end => self.at(t.max(self.now)),
                _ => {
                    self.at(end);
                    return;
                }
            }
        }
        panic!("timer storm");
    }

    /// `hours` of idleness: handle_timeout at each poll_timeout, or every hour.
    fn idle_hours(&mut self, hours: u32) {
        let end = self.now + HOUR * hours;
        while self.now < end {
            let next = self.ua.poll_timeout().unwrap_or(self.now + HOUR).max(self.now).min(self.now + HOUR);
            self.at(next.max(self.now + Duration::from_millis(1)));
        }
    }

    fn reg_events(&self) -> Vec<RegistrationEvent> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }

    fn last_sent(&self) -> &Request {
        &self.sent.last().expect("a REGISTER was sent").1
    }

    /// When the last `Registered` event happened.
    fn registered_at(&self) -> Instant {
        self.events
            .iter()
            .rev()
            .find(|(_, e)| matches!(e, RegistrationEvent::Registered { .. }))
            .map(|(t, _)| *t)
            .expect("registered")
    }

    /// Feeds one raw message to the UA and drains its outputs.
    fn feed(&mut self, raw: &[u8]) {
        self.ua.handle_message(Bytes::copy_from_slice(raw), self.now);
        self.drive();
    }
}

// ------------------------------------------------------------------ request views

fn header<'a>(req: &'a Request, name: &HeaderName) -> &'a str {
    req.headers.get(name).unwrap_or_else(|| panic!("no {name} header"))
}

fn cseq(req: &Request) -> CSeq {
    req.headers.typed::<CSeq>().expect("CSeq present").expect("CSeq parses")
}

fn from_tag(req: &Request) -> String {
    let from = req.headers.name_addr(&HeaderName::From).expect("From present").expect("From parses");
    from.tag().expect("From tag").to_string()
}

fn via(req: &Request) -> Via {
    let vias = req.headers.typed_all::<Via>().expect("Via parses");
    assert_eq!(vias.len(), 1, "one Via");
    vias[0].clone()
}

fn branch(req: &Request) -> String {
    via(req).branch().expect("branch").to_string()
}

fn contact(req: &Request) -> NameAddr {
    let contacts = req.headers.typed_all::<Contact>().expect("Contact parses");
    assert_eq!(contacts.len(), 1, "one Contact");
    contacts[0].address().expect("not *").clone()
}

fn expires_header(req: &Request) -> u32 {
    req.headers.typed::<Expires>().expect("Expires present").expect("Expires parses").0
}

fn contact_expires(req: &Request) -> Option<String> {
    contact(req).params.value("expires")
}

fn auth_param(req: &Request, name: &str) -> String {
    authorization(req).expect("Authorization").get(name).cloned().unwrap_or_else(|| panic!("no {name} parameter"))
}

fn registered(expires: u32) -> RegistrationEvent {
    RegistrationEvent::Registered { expires }
}

fn is_failed(e: &RegistrationEvent) -> bool {
    matches!(e, RegistrationEvent::Failed { .. })
}

// ------------------------------------------------------------------ scenarios

#[test]
fn register_401_then_200() {
    let p = Pair::start(600, Registrar::kamailio());
    assert_eq!(p.reg_events(), [registered(600)]);
    assert!(p.ua.is_registered());
    assert!(!p.ua.has_pending_transactions());
    assert_eq!(p.sent.len(), 2, "one challenge, one authenticated REGISTER");
    let (first, second) = (&p.sent[0].1, &p.sent[1].1);

    assert!(authorization(first).is_none(), "no credentials before a challenge");
    assert_eq!(header(first, &HeaderName::CallId), header(second, &HeaderName::CallId));
    assert_eq!(from_tag(first), from_tag(second));
    assert_eq!(cseq(second).seq, cseq(first).seq + 1);
    assert_eq!(cseq(first).method, Method::Register);
    assert_eq!(cseq(second).method, Method::Register);

    // The second REGISTER's digest is right (verified by the registrar).
    assert_eq!((p.reg.accepted, p.reg.rejected.as_slice()), (1, &[] as &[String]));
    assert_eq!(auth_param(second, "nonce"), p.reg.challenges[0].0);
    assert_eq!(auth_param(second, "nc"), "00000001");
    assert_eq!(auth_param(second, "uri"), "sip:example.com");

    for req in [first, second] {
        assert_eq!(req.uri.to_string(), "sip:example.com");
        let v = via(req);
        assert_eq!(v.transport, "WS");
        assert!(matches!(&v.host, Host::Domain(d) if d.ends_with(".invalid")), "Via host {:?}", v.host);
        assert!(v.branch().is_some_and(|b| b.starts_with("z9hG4bK") && b.len() > 7));
        assert_eq!(header(req, &HeaderName::MaxForwards), "70");
        assert_eq!(header(req, &HeaderName::UserAgent), "test");
        let to = req.headers.name_addr(&HeaderName::To).expect("To").expect("To parses");
        assert_eq!(to.uri.to_string(), "sip:alice@example.com");
        assert!(to.tag().is_none(), "no To tag on REGISTER");
        let c = contact(req);
        let uri = c.uri.as_sip().expect("sip contact");
        assert_eq!(uri.params.value("transport").as_deref(), Some("ws"));
        assert!(c.params.contains("+sip.instance"));
        assert_eq!(c.params.value("expires").as_deref(), Some("600"));
        assert_eq!(expires_header(req), 600);
    }
    assert_ne!(branch(first), branch(second), "a fresh branch per request");
}

#[test]
fn refresh_before_expiry() {
    let mut p = Pair::start(600, Registrar::kamailio());
    assert_eq!(p.reg_events(), [registered(600)]);
    let t_reg = p.registered_at();
    assert_eq!(refresh_after(600), Duration::from_secs(540));
    assert_eq!(p.ua.poll_timeout(), Some(t_reg + refresh_after(600)));

    // One millisecond early: nothing.
    p.at(t_reg + refresh_after(600) - Duration::from_millis(1));
    assert_eq!(p.sent.len(), 2);
    assert_eq!(p.ua.poll_timeout(), Some(t_reg + refresh_after(600)));

    let t = p.jump_to_timeout();
    assert_eq!(t, t_reg + Duration::from_secs(540));
    assert_eq!(p.sent.len(), 3, "one refresh, answered without a new challenge");
    assert_eq!(p.sent[2].0, t);
    assert_eq!(p.reg.challenges.len(), 1);
    let refresh = &p.sent[2].1;
    assert_eq!(auth_param(refresh, "nonce"), auth_param(&p.sent[1].1, "nonce"));
    assert_eq!(auth_param(refresh, "nc"), "00000002");
    assert_ne!(auth_param(refresh, "cnonce"), auth_param(&p.sent[1].1, "cnonce"));
    assert_eq!(cseq(refresh).seq, cseq(&p.sent[1].1).seq + 1);
    assert_eq!(header(refresh, &HeaderName::CallId), header(&p.sent[0].1, &HeaderName::CallId));
    assert_eq!(p.reg_events(), [registered(600), registered(600)]);
    assert_eq!(p.ua.poll_timeout(), Some(t + refresh_after(600)));
}

#[test]
fn granted_less_than_requested() {
    let mut reg = Registrar::kamailio();
    reg.max_expires = 60;
    let mut p = Pair::start(600, reg);
    assert_eq!(p.reg_events(), [registered(60)]);
    assert_eq!(p.last_sent().headers.typed::<Expires>().map(|e| e.ok()), Some(Some(Expires(600))));
    let t_reg = p.registered_at();
    assert_eq!(refresh_after(60), Duration::from_secs(54));
    assert_eq!(p.ua.poll_timeout(), Some(t_reg + Duration::from_secs(54)));
    let t = p.jump_to_timeout();
    assert_eq!(t - t_reg, Duration::from_secs(54));
    assert_eq!(p.sent.len(), 3);
    assert_eq!(p.reg_events(), [registered(60), registered(60)]);
}

#[test]
fn stale_nonce_reauthenticates() {
    let mut p = Pair::start(600, Registrar::kamailio());
    let old_nonce = p.reg.nonce.clone();
    p.reg.expire_nonce();
    let new_nonce = p.reg.nonce.clone();
    p.jump_to_timeout();
    assert_eq!(p.sent.len(), 4, "refresh, then one retry with the new nonce");
    assert_eq!(p.reg.challenges.last(), Some(&(new_nonce.clone(), true)));
    let (refresh, retry) = (&p.sent[2].1, &p.sent[3].1);
    assert_eq!(auth_param(refresh, "nonce"), old_nonce);
    assert_eq!(auth_param(refresh, "nc"), "00000002");
    assert_eq!(auth_param(retry, "nonce"), new_nonce);
    assert_eq!(auth_param(retry, "nc"), "00000001");
    assert_eq!(cseq(retry).seq, cseq(refresh).seq + 1);
    assert_eq!(p.reg_events(), [registered(600), registered(600)]);
    assert!(!p.events.iter().any(|(_, e)| is_failed(e)));
    assert!(p.reg.rejected.is_empty(), "{:?}", p.reg.rejected);
}

#[test]
fn wrong_password_fails_once_without_storm() {
    let mut reg = Registrar::kamailio();
    reg.password = "not-the-secret".into();
    let mut p = Pair::start(600, reg);
    assert_eq!(p.sent.len(), 2);
    let events = p.reg_events();
    assert!(
        matches!(events.as_slice(), [RegistrationEvent::Failed { status: Some(401), retry_in: None, .. }]),
        "{events:?}"
    );
    assert_eq!(p.reg.rejected, ["response mismatch"]);
    // The second challenge carried the same nonce.
    assert_eq!(p.reg.challenges[0], p.reg.challenges[1]);
    assert!(!p.ua.is_registered());

    p.idle_hours(48);
    assert_eq!(p.sent.len(), 2, "no REGISTER after a definitive auth failure");
    assert_eq!(p.reg_events().len(), 1);
    assert_eq!(p.ua.poll_timeout(), None);

    // A reconnect does not restart it either; only the user does.
    p.disconnect();
    p.connect();
    assert_eq!(p.sent.len(), 2);
    p.ua.register(p.now);
    p.drive();
    assert_eq!(p.sent.len(), 4, "register() tries once more (and fails once more)");
}

#[test]
fn interval_too_brief_423() {
    let mut reg = Registrar::kamailio();
    reg.min_expires = 120;
    let mut p = Pair::start(30, reg);
    assert_eq!(p.reg_events(), [registered(120)]);
    assert_eq!(p.sent.len(), 3, "challenge, 423, accepted");
    let last = p.last_sent();
    assert_eq!(expires_header(last), 120);
    assert_eq!(contact_expires(last).as_deref(), Some("120"));
    assert_eq!(expires_header(&p.sent[1].1), 30);
    let t_reg = p.registered_at();
    assert_eq!(p.ua.poll_timeout(), Some(t_reg + refresh_after(120)));
    // The refresh keeps asking for 120.
    p.jump_to_timeout();
    assert_eq!(expires_header(p.last_sent()), 120);
    assert_eq!(p.reg_events(), [registered(120), registered(120)]);
}

#[test]
fn transaction_timeout_retries_with_backoff() {
    let mut reg = Registrar::kamailio();
    reg.default = Answer::Silent;
    let mut p = Pair::start(600, reg);
    assert_eq!(p.sent.len(), 1);
    assert!(p.ua.has_pending_transactions());
    assert_eq!(p.ua.poll_timeout(), Some(p.t0 + TRANSACTION_TIMEOUT));

    p.at(p.t0 + TRANSACTION_TIMEOUT - Duration::from_millis(1));
    assert!(p.events.is_empty());

    let t = p.jump_to_timeout();
    assert_eq!(t, p.t0 + TRANSACTION_TIMEOUT);
    let first_retry = match p.reg_events().as_slice() {
        [RegistrationEvent::Failed { status: Some(408), retry_in: Some(d), .. }] => *d,
        other => panic!("{other:?}"),
    };
    assert_eq!(first_retry, RETRY_MIN);
    assert_eq!(p.ua.poll_timeout(), Some(t + first_retry));
    assert_eq!(p.sent.len(), 1);

    let t_retry = p.jump_to_timeout();
    assert_eq!(t_retry, t + first_retry);
    assert_eq!(p.sent.len(), 2);
    assert_eq!(p.sent[1].0, t_retry);
    assert_eq!(header(&p.sent[1].1, &HeaderName::CallId), header(&p.sent[0].1, &HeaderName::CallId));

    // Second timeout: the wait doubles.
    p.jump_to_timeout();
    let second_retry = match p.events.last() {
        Some((_, RegistrationEvent::Failed { status: Some(408), retry_in: Some(d), .. })) => *d,
        other => panic!("{other:?}"),
    };
    assert_eq!(second_retry, RETRY_MIN * 2);

    // The registrar comes back: the next retry registers.
    p.reg.default = Answer::Kamailio;
    p.jump_to_timeout();
    assert_eq!(p.events.last().map(|(_, e)| e.clone()), Some(registered(600)));
}

#[test]
fn server_error_honours_retry_after() {
    let mut reg = Registrar::kamailio();
    reg.script.push_back(Answer::Status(503, "Service Unavailable", vec![(HeaderName::RetryAfter, "7".into())]));
    let mut p = Pair::start(600, reg);
    assert_eq!(p.sent.len(), 1);
    let events = p.reg_events();
    assert!(
        matches!(events.as_slice(), [RegistrationEvent::Failed { status: Some(503), retry_in: Some(d), .. }] if *d == Duration::from_secs(7)),
        "{events:?}"
    );
    assert_eq!(p.ua.poll_timeout(), Some(p.t0 + Duration::from_secs(7)));
    p.at(p.t0 + Duration::from_millis(6_999));
    assert_eq!(p.sent.len(), 1);
    p.jump_to_timeout();
    assert_eq!(p.sent[1].0, p.t0 + Duration::from_secs(7));
    assert_eq!(p.sent.len(), 3, "retry, challenge, authenticated");
    assert_eq!(p.events.last().map(|(_, e)| e.clone()), Some(registered(600)));
}

#[test]
fn forbidden_is_permanent() {
    let mut reg = Registrar::kamailio();
    // Kamailio: challenge, then 403 when the auth user may not register the AOR.
    reg.script.push_back(Answer::Kamailio);
    reg.script.push_back(Answer::Status(403, "Forbidden auth ID", vec![]));
    let mut p = Pair::start(600, reg);
    assert_eq!(p.sent.len(), 2);
    let events = p.reg_events();
    assert!(
        matches!(events.as_slice(), [RegistrationEvent::Failed { status: Some(403), retry_in: None, reason, kind: FailureKind::Forbidden }] if reason == "Forbidden auth ID"),
        "{events:?}"
    );
    assert_eq!(p.ua.poll_timeout(), None);
    p.idle_hours(24);
    p.disconnect();
    p.connect();
    p.idle_hours(1);
    assert_eq!(p.sent.len(), 2);
    assert_eq!(p.reg_events().len(), 1);
}

#[test]
fn forbidden_is_retried_after_the_policy_delay_when_asked() {
    let mut reg = Registrar::kamailio();
    reg.script.push_back(Answer::Kamailio);
    reg.script.push_back(Answer::Status(403, "Forbidden", vec![]));
    let policy = PermanentFailurePolicy::RetryAfter(Duration::from_secs(600));
    let mut p = Pair::start_agent(new_agent_with(registration_config_with(600, policy)), reg);
    assert_eq!(p.sent.len(), 2);
    let events = p.reg_events();
    assert!(
        matches!(events.as_slice(), [RegistrationEvent::Failed { status: Some(403), retry_in: Some(d), kind: FailureKind::Forbidden, .. }] if *d == Duration::from_secs(600)),
        "{events:?}"
    );
    assert_eq!(p.ua.poll_timeout(), Some(p.t0 + Duration::from_secs(600)));
    p.jump_to_timeout();
    assert_eq!(p.sent[2].0, p.t0 + Duration::from_secs(600), "one retry, after the policy's delay");
    assert_eq!(p.events.last().map(|(_, e)| e.clone()), Some(registered(600)), "the account was fixed meanwhile");
}

#[test]
fn unregister_sends_expires_zero() {
    let mut p = Pair::start(600, Registrar::kamailio());
    p.run_for(Duration::from_secs(100));
    assert_eq!(p.reg.binding, Some(600));
    p.ua.unregister(p.now);
    p.drive();
    assert_eq!(p.sent.len(), 3);
    let unreg = p.last_sent();
    assert_eq!(expires_header(unreg), 0);
    assert_eq!(contact_expires(unreg).as_deref(), Some("0"));
    assert_eq!(auth_param(unreg, "nc"), "00000002", "pre-emptive credentials");
    assert_eq!(header(unreg, &HeaderName::CallId), header(&p.sent[0].1, &HeaderName::CallId));
    assert_eq!(p.reg.binding, None);
    let events = p.reg_events();
    assert!(
        matches!(events.as_slice(), [RegistrationEvent::Registered { .. }, RegistrationEvent::Unregistered { .. }]),
        "{events:?}"
    );
    assert!(!p.ua.is_registered());
    assert!(!p.ua.has_pending_transactions());
    assert_eq!(p.ua.poll_timeout(), None);
    p.idle_hours(24);
    assert_eq!(p.sent.len(), 3);
}

#[test]
fn disconnect_drops_binding_and_reconnect_reregisters() {
    let mut p = Pair::start(600, Registrar::kamailio());
    assert!(p.ua.is_registered());
    p.run_for(Duration::from_secs(30));
    p.disconnect();
    let events = p.reg_events();
    match events.as_slice() {
        [RegistrationEvent::Registered { .. }, RegistrationEvent::Unregistered { reason }] => {
            assert!(reason.contains("connection closed"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!p.ua.is_registered());
    assert_eq!(p.ua.poll_timeout(), None, "nothing to do while disconnected");
    p.idle_hours(1);
    assert_eq!(p.sent.len(), 2);

    let t_connect = p.now;
    p.connect();
    assert_eq!(p.sent.len(), 3, "re-registered at once with pre-emptive credentials");
    assert_eq!(p.sent[2].0, t_connect);
    assert_eq!(header(&p.sent[2].1, &HeaderName::CallId), header(&p.sent[0].1, &HeaderName::CallId));
    assert_eq!(p.events.last().map(|(_, e)| e.clone()), Some(registered(600)));
    assert!(p.ua.is_registered());
}

/// A registrar restart invalidates every nonce: the pre-emptive credentials
/// of the re-REGISTER get a 401 without `stale`. That is the first
/// challenge of the exchange, so the UA must answer it.
#[test]
fn registrar_restart_new_nonce_reauthenticates() {
    let mut p = Pair::start(600, Registrar::kamailio());
    p.disconnect();
    p.reg.restart();
    p.run_for(Duration::from_secs(5));
    p.connect();
    assert_eq!(p.sent.len(), 4, "pre-emptive REGISTER, 401, answered");
    assert!(authorization(&p.sent[2].1).is_some());
    assert_eq!(auth_param(&p.sent[3].1, "nonce"), p.reg.nonce);
    assert_eq!(auth_param(&p.sent[3].1, "nc"), "00000001");
    assert_eq!(p.events.last().map(|(_, e)| e.clone()), Some(registered(600)));
    assert!(!p.events.iter().any(|(_, e)| is_failed(e)), "{:?}", p.events);
}

/// The user unregisters while a REGISTER is in flight: the REGISTER's
/// answer comes first, then one unregistration; never two in flight.
#[test]
fn unregister_while_register_in_flight() {
    let mut reg = Registrar::kamailio();
    reg.script.push_back(Answer::Kamailio);
    reg.script.push_back(Answer::Silent);
    let mut p = Pair::start(600, reg);
    assert_eq!(p.sent.len(), 2);
    let pending = p.sent[1].1.clone();
    p.ua.unregister(p.now);
    p.drive();
    assert_eq!(p.sent.len(), 2, "no second REGISTER while one is in flight");
    // The registrar answers the authenticated REGISTER late.
    let mut nonces = p.reg.nonces.clone();
    assert_eq!(verify_digest(&pending, PASSWORD, &p.reg.nonce, &mut nonces, &[]), Verdict::Good);
    p.reg.nonces = nonces;
    let ok = ok_for(&pending, 600);
    p.feed(&ok.to_bytes());
    assert_eq!(p.sent.len(), 3);
    assert_eq!(expires_header(p.last_sent()), 0);
    assert!(!p.ua.is_registered());
    assert_eq!(p.ua.poll_timeout(), None);
    assert!(matches!(p.events.last(), Some((_, RegistrationEvent::Unregistered { .. }))), "{:?}", p.events);
}

/// The user registers again while an unregistration is in flight: once it
/// is answered, the UA registers.
#[test]
fn register_while_unregister_in_flight() {
    let mut p = Pair::start(600, Registrar::kamailio());
    p.reg.script.push_back(Answer::Silent);
    p.ua.unregister(p.now);
    p.drive();
    assert_eq!(p.sent.len(), 3);
    let unreg = p.sent[2].1.clone();
    p.ua.register(p.now);
    p.drive();
    assert_eq!(p.sent.len(), 3, "no second REGISTER while one is in flight");
    let mut nonces = p.reg.nonces.clone();
    assert_eq!(verify_digest(&unreg, PASSWORD, &p.reg.nonce, &mut nonces, &[]), Verdict::Good);
    p.reg.nonces = nonces;
    p.feed(&ok_for(&unreg, 0).to_bytes());
    assert_eq!(p.sent.len(), 4, "registers again after the unregistration");
    assert_eq!(expires_header(p.last_sent()), 600);
    assert_eq!(p.events.last().map(|(_, e)| e.clone()), Some(registered(600)));
    assert!(p.ua.is_registered());
}

const KAMAILIO_OPTIONS: &str = "OPTIONS sip:k4x9q2md@abc.invalid;transport=ws SIP/2.0\r\n\
    Via: SIP/2.0/WS 127.0.0.1:8080;branch=z9hG4bK7462189\r\n\
    From: <sip:pinger@example.com>;tag=uloc-1-65f0a1b2-4c3d-1-0-e4f5a6b7\r\n\
    To: <sip:k4x9q2md@abc.invalid;transport=ws>\r\n\
    Call-ID: 7c4e2a1b-19f3-4b6d-8e0a-2f5c9d1e3b7a\r\n\
    CSeq: 1 OPTIONS\r\n\
    Max-Forwards: 69\r\n\
    Content-Length: 0\r\n\r\n";

#[test]
fn options_answered_200() {
    let mut p = Pair::start(600, Registrar::kamailio());
    let Ok(Message::Request(options)) = Message::parse_slice(KAMAILIO_OPTIONS.as_bytes()) else {
        panic!("fixture parses")
    };
    p.feed(KAMAILIO_OPTIONS.as_bytes());
    assert_eq!(p.replies.len(), 1);
    assert!(p.other_events.is_empty(), "{:?}", p.other_events);
    let r = &p.replies[0];
    assert_eq!(r.status.as_u16(), 200);
    for name in [HeaderName::Via, HeaderName::From, HeaderName::CallId, HeaderName::CSeq] {
        assert_eq!(r.headers.get(&name), options.headers.get(&name), "{name}");
    }
    assert_eq!(r.headers.count(&HeaderName::Via), 1);
    let to = r.headers.name_addr(&HeaderName::To).expect("To").expect("To parses");
    assert_eq!(to.uri.to_string(), "sip:k4x9q2md@abc.invalid;transport=ws");
    assert!(to.tag().is_some_and(|t| !t.is_empty()), "To tag");
    let allow = r.headers.tokens(&HeaderName::Allow).expect("Allow parses");
    for m in ["OPTIONS", "ACK", "BYE", "CANCEL"] {
        assert!(allow.iter().any(|a| a == m), "{allow:?}");
    }

    // The next keepalive (new branch, new Call-ID) is answered too.
    let next = KAMAILIO_OPTIONS.replace("z9hG4bK7462189", "z9hG4bK1938452").replace("7c4e2a1b", "8d5f3b2c");
    p.feed(next.as_bytes());
    assert_eq!(p.replies.len(), 2);
    assert_eq!(p.replies[1].status.as_u16(), 200);
    assert_eq!(p.replies[1].headers.get(&HeaderName::CallId), Some("8d5f3b2c-19f3-4b6d-8e0a-2f5c9d1e3b7a"));
    // Registration is untouched.
    assert_eq!(p.sent.len(), 2);
    assert!(p.ua.is_registered());
}

#[test]
fn malformed_request_gets_400() {
    let mut p = Pair::start(600, Registrar::kamailio());
    let broken = KAMAILIO_OPTIONS.replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS");
    p.feed(broken.as_bytes());
    assert_eq!(p.replies.len(), 1);
    let r = &p.replies[0];
    assert_eq!(r.status.as_u16(), 400);
    assert_eq!(r.headers.get(&HeaderName::CSeq), Some("one OPTIONS"));
    assert_eq!(r.headers.get(&HeaderName::CallId), Some("7c4e2a1b-19f3-4b6d-8e0a-2f5c9d1e3b7a"));
    assert_eq!(r.headers.get(&HeaderName::Via), Some("SIP/2.0/WS 127.0.0.1:8080;branch=z9hG4bK7462189"));
    assert!(matches!(p.other_events.as_slice(), [AgentEvent::MalformedMessage { .. }]), "{:?}", p.other_events);
    assert_eq!(p.sent.len(), 2);
}

#[test]
fn a_request_without_via_gets_a_400_with_what_can_be_copied() {
    let mut p = Pair::start(600, Registrar::kamailio());
    let no_via = KAMAILIO_OPTIONS.replace("Via: SIP/2.0/WS 127.0.0.1:8080;branch=z9hG4bK7462189\r\n", "");
    p.feed(no_via.as_bytes());
    let [r] = p.replies.as_slice() else { panic!("one reply: {:?}", p.replies) };
    assert_eq!(r.status.as_u16(), 400);
    assert_eq!(r.headers.get(&HeaderName::Via), None);
    assert_eq!(
        r.headers.get(&HeaderName::From),
        Some("<sip:pinger@example.com>;tag=uloc-1-65f0a1b2-4c3d-1-0-e4f5a6b7")
    );
    assert!(
        r.headers.get(&HeaderName::To).is_some_and(|to| to.starts_with("<sip:k4x9q2md@abc.invalid;transport=ws>;tag="))
    );
    assert_eq!(r.headers.get(&HeaderName::CallId), Some("7c4e2a1b-19f3-4b6d-8e0a-2f5c9d1e3b7a"));
    assert_eq!(r.headers.get(&HeaderName::CSeq), Some("1 OPTIONS"));
}

#[test]
fn a_broken_content_length_gets_400_when_the_head_can_be_read() {
    let mut p = Pair::start(600, Registrar::kamailio());
    let bad = [
        KAMAILIO_OPTIONS.replace("Content-Length: 0", "Content-Length: ten"),
        KAMAILIO_OPTIONS.replace("Content-Length: 0", "Content-Length: 0\r\nContent-Length: 0"),
        KAMAILIO_OPTIONS.replace("Content-Length: 0", "Content-Length: 500"),
        KAMAILIO_OPTIONS.replace("Content-Length: 0", "Content-Length: 99999999999"),
    ];
    for (i, raw) in bad.iter().enumerate() {
        p.feed(raw.as_bytes());
        assert_eq!(p.replies.len(), i + 1, "input {i} answered");
        let r = &p.replies[i];
        assert_eq!(r.status.as_u16(), 400, "input {i}");
        assert_eq!(r.headers.get(&HeaderName::Via), Some("SIP/2.0/WS 127.0.0.1:8080;branch=z9hG4bK7462189"));
        assert_eq!(r.headers.get(&HeaderName::CSeq), Some("1 OPTIONS"));
    }
    // A response with a broken Content-Length is only dropped; so is a
    // request whose head cannot be read.
    p.feed(b"SIP/2.0 200 OK\r\nContent-Length: 9\r\n\r\n");
    p.feed(b"OPTIONS sip:x SIP/2.0\r\nno colon here\r\nContent-Length: 9\r\n\r\n");
    assert_eq!(p.replies.len(), bad.len());
}

#[test]
fn a_request_over_the_size_limit_gets_513_when_its_head_can_be_read() {
    let mut p = Pair::start(600, Registrar::kamailio());
    let pad = "a".repeat(MAX_MESSAGE_SIZE);
    let big =
        KAMAILIO_OPTIONS.replace("Content-Length: 0\r\n\r\n", &format!("Content-Length: {}\r\n\r\n{pad}", pad.len()));
    p.feed(big.as_bytes());
    let [r] = p.replies.as_slice() else { panic!("one reply: {:?}", p.replies) };
    assert_eq!(r.status.as_u16(), 513);
    assert_eq!(r.headers.get(&HeaderName::CallId), Some("7c4e2a1b-19f3-4b6d-8e0a-2f5c9d1e3b7a"));
    // 1 MB of headers: no end of head within the limit, nothing to answer.
    let huge_head = KAMAILIO_OPTIONS.replace("Max-Forwards: 69", &format!("X-Pad: {}", "b".repeat(1 << 20)));
    p.feed(huge_head.as_bytes());
    assert_eq!(p.replies.len(), 1);
    assert!(p.ua.is_registered());
}

#[test]
fn a_response_that_would_exceed_the_size_limit_is_never_sent() {
    let mut p = Pair::start(600, Registrar::kamailio());
    // An OPTIONS just under the limit, nearly all of it Via: its 200 (Via
    // copied, Allow and Accept added) would be over the limit.
    let target = MAX_MESSAGE_SIZE - 40;
    let short = KAMAILIO_OPTIONS.replace("branch=z9hG4bK7462189", "branch=z9hG4bK7462189;x=");
    let via_pad = "v".repeat(target - short.len());
    let options = short.replace(";x=", &format!(";x={via_pad}"));
    assert_eq!(options.len(), target);
    p.feed(options.as_bytes());
    // Every reply the UA sent parsed, so none was over the limit; this one
    // is a 500 in place of the 200 that would not fit.
    let [r] = p.replies.as_slice() else { panic!("one reply: {:?}", p.replies) };
    assert_eq!(r.status.as_u16(), 500);
    assert!(r.to_bytes().len() <= MAX_MESSAGE_SIZE);
}

#[test]
fn garbage_is_dropped() {
    let mut p = Pair::start(600, Registrar::kamailio());
    let before = p.ua.poll_timeout();
    let mut inputs: Vec<Vec<u8>> = vec![
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03".to_vec(),
        b"hello world".to_vec(),
        b"\r\n\r\n".to_vec(),
        b"\xff\xfe\x00\x00\r\n\r\n".to_vec(),
        b"SIP/2.0 2000 OK\r\n\r\n".to_vec(),
        Vec::new(),
    ];
    // Deterministic pseudo-random bytes (xorshift).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..200 {
        let len = 1 + (i * 7) % 300;
        inputs.push(
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect(),
        );
    }
    for (i, input) in inputs.iter().enumerate() {
        p.feed(input);
        assert!(p.replies.is_empty(), "input {i} got a reply");
    }
    // The first is reported at once, the rest counted into one report a
    // second later.
    assert!(matches!(p.other_events.as_slice(), [AgentEvent::MalformedMessage { count: 1, .. }]));
    p.jump_to_timeout();
    let counts: Vec<u64> = p
        .other_events
        .iter()
        .map(|e| match e {
            AgentEvent::MalformedMessage { count, .. } => *count,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(counts, [1, inputs.len() as u64 - 1]);
    assert_eq!(p.sent.len(), 2);
    assert_eq!(p.reg_events(), [registered(600)]);
    assert_eq!(p.ua.poll_timeout(), before);
}

#[test]
fn unknown_response_is_dropped() {
    let mut reg = Registrar::kamailio();
    reg.default = Answer::Silent;
    let mut p = Pair::start(600, reg);
    assert_eq!(p.sent.len(), 1);
    let pending = p.sent[0].1.clone();
    let before = p.ua.poll_timeout();
    // Same Call-ID and CSeq as the pending REGISTER, another branch.
    let mut stray = ok_for(&pending, 600);
    stray.headers.set(HeaderName::Via, "SIP/2.0/WS abc.invalid;branch=z9hG4bKneversent;received=127.0.0.1");
    p.feed(&stray.to_bytes());
    assert!(p.events.is_empty(), "{:?}", p.events);
    assert!(p.other_events.is_empty(), "{:?}", p.other_events);
    assert!(p.replies.is_empty());
    assert_eq!(p.sent.len(), 1);
    assert!(p.ua.has_pending_transactions(), "the real transaction is still waiting");
    assert!(!p.ua.is_registered());
    assert_eq!(p.ua.poll_timeout(), before);

    // A 200 for a REGISTER that was answered already (retransmission) is dropped too.
    let mut p = Pair::start(600, Registrar::kamailio());
    let again = ok_for(&p.sent[1].1, 600);
    p.feed(&again.to_bytes());
    assert_eq!(p.reg_events(), [registered(600)]);
    assert_eq!(p.sent.len(), 2);
}

// ------------------------------------------------------------------ proptest

/// How the fuzzing registrar answers the REGISTER it holds.
#[derive(Clone, Debug)]
enum Reply {
    Ok,
    Challenge,
    Stale,
    Forbidden,
    TooBrief,
    ServerError(u32),
    Timeout408,
    NoAnswer,
}

#[derive(Clone, Debug)]
enum Step {
    Answer(Reply),
    Register,
    Unregister,
    Disconnect,
    Connect,
    JumpToTimeout,
    Advance(u64),
    AdvanceHours(u32),
}

fn reply_strategy() -> impl Strategy<Value = Reply> {
    prop_oneof![
        5 => Just(Reply::Ok),
        2 => Just(Reply::Challenge),
        1 => Just(Reply::Stale),
        1 => Just(Reply::Forbidden),
        1 => Just(Reply::TooBrief),
        1 => (0u32..40).prop_map(Reply::ServerError),
        1 => Just(Reply::Timeout408),
        1 => Just(Reply::NoAnswer),
    ]
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => reply_strategy().prop_map(Step::Answer),
        2 => Just(Step::Register),
        1 => Just(Step::Unregister),
        1 => Just(Step::Disconnect),
        2 => Just(Step::Connect),
        4 => Just(Step::JumpToTimeout),
        2 => (1u64..40_000).prop_map(Step::Advance),
        1 => (1u32..5).prop_map(Step::AdvanceHours),
    ]
}

/// A UA and a registrar whose answers the test chooses, checking the
/// invariants after every output.
struct Fuzz {
    ua: UserAgent,
    now: Instant,
    connected: bool,
    /// The user's last command was register().
    wanted: bool,
    /// A Failed with retry_in None came after the last register().
    gave_up: bool,
    /// The REGISTER the registrar holds unanswered.
    held: Option<Request>,
    /// The UA's REGISTER transaction, as the model sees it: branch and when sent.
    in_flight: Option<(String, Instant)>,
    call_id: Option<String>,
    from_tag: Option<String>,
    last_cseq: u32,
    nonce_serial: u32,
    registers: usize,
}

impl Fuzz {
    fn new(expires: u32) -> Fuzz {
        Fuzz {
            ua: new_agent(expires),
            now: Instant::now(),
            connected: false,
            wanted: false,
            gave_up: false,
            held: None,
            in_flight: None,
            call_id: None,
            from_tag: None,
            last_cseq: 0,
            nonce_serial: 0,
            registers: 0,
        }
    }

    fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match step {
            Step::Register => {
                self.wanted = true;
                self.gave_up = false;
                self.ua.register(self.now);
            }
            Step::Unregister => {
                self.wanted = false;
                self.ua.unregister(self.now);
            }
            Step::Disconnect => {
                if !self.connected {
                    return Ok(());
                }
                self.connected = false;
                self.held = None;
                self.in_flight = None;
                self.ua.handle_disconnected(self.now);
            }
            Step::Connect => {
                if self.connected {
                    return Ok(());
                }
                self.connected = true;
                self.ua.handle_connected(self.now, "WS");
            }
            Step::JumpToTimeout => {
                if let Some(t) = self.ua.poll_timeout() {
                    prop_assert!(t >= self.now, "poll_timeout in the past");
                    self.tick(t);
                }
            }
            Step::Advance(ms) => self.tick(self.now + Duration::from_millis(*ms)),
            Step::AdvanceHours(h) => self.tick(self.now + HOUR * *h),
            Step::Answer(reply) => {
                let Some(req) = self.held.take() else { return Ok(()) };
                let Some(resp) = self.answer(&req, reply) else { return Ok(()) };
                if self.in_flight.as_ref().is_some_and(|(b, _)| *b == branch(&req)) {
                    self.in_flight = None;
                }
                self.ua.handle_message(resp.to_bytes(), self.now);
            }
        }
        self.drain()?;
        prop_assert_eq!(self.ua.has_pending_transactions(), self.in_flight.is_some());
        if let Some(t) = self.ua.poll_timeout() {
            prop_assert!(t > self.now, "poll_timeout {:?} not after now", t - self.now);
        }
        if self.wanted && self.connected && !self.gave_up {
            prop_assert!(self.ua.poll_timeout().is_some(), "the user wants a registration but nothing is scheduled");
        }
        Ok(())
    }

    fn tick(&mut self, t: Instant) {
        self.now = t;
        if self.in_flight.as_ref().is_some_and(|(_, sent)| *sent + TRANSACTION_TIMEOUT <= t) {
            self.in_flight = None;
        }
        self.ua.handle_timeout(t);
    }

    fn answer(&mut self, req: &Request, reply: &Reply) -> Option<Response> {
        let asked = requested_expiry(req);
        let mut nonce = || {
            self.nonce_serial += 1;
            format!("n{}", self.nonce_serial)
        };
        Some(match reply {
            Reply::Ok => ok_for(req, asked),
            Reply::Challenge => {
                with(reply_to(req, 401), &[(HeaderName::WwwAuthenticate, challenge_value(&nonce(), false))])
            }
            Reply::Stale => with(reply_to(req, 401), &[(HeaderName::WwwAuthenticate, challenge_value(&nonce(), true))]),
            Reply::Forbidden => with(reply_to(req, 403), &[]),
            Reply::TooBrief => with(reply_to(req, 423), &[(HeaderName::MinExpires, (asked + 60).to_string())]),
            Reply::ServerError(s) => with(reply_to(req, 500), &[(HeaderName::RetryAfter, s.to_string())]),
            Reply::Timeout408 => with(reply_to(req, 408), &[]),
            Reply::NoAnswer => return None,
        })
    }

    fn drain(&mut self) -> Result<(), TestCaseError> {
        while let Some(out) = self.ua.poll_output() {
            match out {
                Output::Transmit(bytes) => {
                    let msg = Message::parse(bytes);
                    prop_assert!(msg.is_ok(), "unparseable: {:?}", msg);
                    let Ok(Message::Request(req)) = msg else {
                        return Err(TestCaseError::fail("the UA sent a response unasked"));
                    };
                    prop_assert_eq!(&req.method, &Method::Register);
                    prop_assert!(self.connected, "REGISTER sent while disconnected");
                    // After a final failure only an explicit unregister() may
                    // send again: an expires=0 REGISTER for a binding the
                    // registrar may still hold.
                    let removal = header(&req, &HeaderName::Expires) == "0";
                    prop_assert!(!self.gave_up || removal, "REGISTER sent after a final failure without register()");
                    prop_assert!(self.in_flight.is_none(), "two REGISTER transactions in flight");
                    let call_id = header(&req, &HeaderName::CallId).to_string();
                    prop_assert_eq!(self.call_id.get_or_insert_with(|| call_id.clone()), &call_id);
                    let tag = from_tag(&req);
                    prop_assert_eq!(self.from_tag.get_or_insert_with(|| tag.clone()), &tag);
                    let seq = cseq(&req).seq;
                    prop_assert!(seq > self.last_cseq, "CSeq {} after {}", seq, self.last_cseq);
                    self.last_cseq = seq;
                    prop_assert_eq!(contact_expires(&req), Some(expires_header(&req).to_string()));
                    self.in_flight = Some((branch(&req), self.now));
                    self.held = Some(req);
                    self.registers += 1;
                }
                Output::Event(AgentEvent::Registration(RegistrationEvent::Failed { retry_in: None, .. })) => {
                    self.gave_up = true;
                }
                Output::Event(_) => {}
                Output::Media(m) => return Err(TestCaseError::fail(format!("registration asked for media: {m:?}"))),
                other => return Err(TestCaseError::fail(format!("unexpected output {other:?}"))),
            }
        }
        Ok(())
    }
}

fn reply_to(req: &Request, code: u16) -> Response {
    let reason = StatusCode::new(code).expect("status").canonical_reason();
    reply(req, code, reason)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x005e_ed0f_5e1f),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_interleavings_keep_invariants(
        expires in prop_oneof![Just(30u32), Just(600u32)],
        start_registered in any::<bool>(),
        steps in proptest::collection::vec(step_strategy(), 1..60),
    ) {
        let mut f = Fuzz::new(expires);
        if start_registered {
            f.step(&Step::Register)?;
            f.step(&Step::Connect)?;
        }
        for step in &steps {
            f.step(step)?;
        }
    }
}

#[test]
fn zero_second_grant_is_reported_and_not_retried() {
    let mut reg = Registrar::kamailio();
    reg.script.push_back(Answer::Kamailio);
    reg.script.push_back(Answer::Status(200, "OK", vec![(HeaderName::Expires, "0".into())]));
    let mut p = Pair::start(600, reg);
    let events = p.reg_events();
    assert!(
        matches!(events.as_slice(), [RegistrationEvent::Failed { status: Some(200), retry_in: None, .. }]),
        "{events:?}"
    );
    assert!(!p.ua.is_registered());
    p.idle_hours(24);
    assert_eq!(p.sent.len(), 2);
}

#[test]
fn interval_too_brief_on_unregister_does_not_register_again() {
    let mut p = Pair::start(600, Registrar::kamailio());
    p.reg.script.push_back(Answer::Status(423, "Interval Too Brief", vec![(HeaderName::MinExpires, "3600".into())]));
    p.ua.unregister(p.now);
    p.drive();
    assert_eq!(p.sent.len(), 3, "the unregistration is not turned into a registration");
    assert_eq!(expires_header(p.last_sent()), 0);
    assert!(matches!(p.reg_events().last(), Some(RegistrationEvent::Failed { status: Some(423), retry_in: None, .. })));
    p.idle_hours(24);
    assert_eq!(p.sent.len(), 3);
}
