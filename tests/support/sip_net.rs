//! An N-party fake-time network for the sans-IO SIP core: N `UserAgent`s
//! behind a small in-memory stateless proxy, one fake clock, a fake media
//! side, and a record of every message. No sockets, no sleeping.
//!
//! Include it with `#[path = "support/sip_net.rs"] mod sip_net;` (it does not
//! pull in the Kamailio helpers of `support/mod.rs`).
//!
//! # Model
//! - Party `i` is user `name` at `sip:{name}@example.com`, Contact
//!   `sip:{name}@{name}host.invalid;transport=ws`, Via host
//!   `{name}host.invalid`. Its fake SDP is labelled with the upper-cased
//!   first letter of its name: `v=0 offer from A` (with the one audio line
//!   a phone needs before it rings, see [`fake_offer`]), `v=0 answer from B`.
//! - Every message a party sends goes to the proxy `sip:proxy.invalid`. Requests: a top Route naming the proxy
//!   is removed (any other top Route is undeliverable), Max-Forwards is
//!   decremented, the proxy's Via is pushed (its branch is derived from the
//!   sender's, so CANCEL and non-2xx ACK match the INVITE's transaction),
//!   `Record-Route: <sip:proxy.invalid;lr>` is added to dialog-creating
//!   requests (INVITE, REFER, SUBSCRIBE without a To tag), and the request
//!   goes to the party whose name is the Request-URI user. Responses: the
//!   proxy pops its own Via and forwards to the party whose Via host is next;
//!   a response whose top Via is not the proxy's is undeliverable.
//! - Messages travel through one FIFO queue, in order; undeliverable ones
//!   are kept in [`Net::undeliverable`] (as lost packets would be).
//! - [`Net::drive`] moves messages until every party is quiet;
//!   [`Net::run_for`] also jumps the clock to each due `poll_timeout`.
//! - Hooks: [`Net::drop_from`] loses a party's messages matching a rule
//!   before they leave it; [`Net::filter`] sees (and may rewrite or lose)
//!   every message on every hop.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use webphone::dialog::auth::DigestClient;
use webphone::dialog::register::RegistrationConfig;
use webphone::dialog::{AgentConfig, AgentEvent, CallEvent, MediaRequest, Output, UserAgent};
use webphone::sip::{HeaderName, Headers, Host, Message, Method, NameAddr, Request, Response, SipUri, Uri};
use webphone::{CallKey, CallRequest};

// The only core paths that moved during the call redesign, named once here
// so scenarios import them from the harness.
/// How calls behave (lines, session timers, auto-answer); after the call
/// redesign it is `webphone::dialog::CallSettings`.
pub use webphone::dialog::CallSettings;
/// A call's snapshot, as carried by [`CallEvent`]s.
pub type CallSnapshot = webphone::dialog::call::CallSnapshot;

/// The proxy's host.
pub const PROXY_HOST: &str = "proxy.invalid";
/// What the proxy adds to dialog-creating requests.
pub const PROXY_RECORD_ROUTE: &str = "<sip:proxy.invalid;lr>";
/// The domain of every party's address of record.
pub const DOMAIN: &str = "example.com";

/// One user agent of the net, by its index in [`Net::new`]'s list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Party(pub usize);

impl fmt::Debug for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "party {}", self.0)
    }
}

/// An end of one hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// A user agent.
    Party(Party),
    /// The in-memory proxy.
    Proxy,
}

/// Which of a party's messages it loses.
pub type DropRule = fn(&Message) -> bool;

/// Sees every message on every hop before delivery: may rewrite it; returns
/// `false` to lose it.
pub type Filter = Box<dyn FnMut(Node, Node, &mut Message) -> bool>;

/// One message handed to its next hop.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Who sent it on this hop.
    pub from: Node,
    /// Who received it.
    pub to: Node,
    /// The message as received.
    pub msg: Message,
}

/// One user agent and its identity.
pub struct Member {
    /// User name (Request-URI user that reaches it).
    pub name: String,
    /// Its Via host.
    pub via_host: String,
    /// Label used in its fake SDP (`A` for `alice`).
    pub label: String,
    /// The core under test.
    pub ua: UserAgent,
}

/// The network, its clock and everything that happened on it.
pub struct Net {
    /// The user agents, indexed by [`Party`].
    pub members: Vec<Member>,
    /// The fake clock.
    pub now: Instant,
    /// Call events, with the party that reported each.
    pub events: Vec<(Party, CallEvent)>,
    /// Media requests, with the party that made each.
    pub media: Vec<(Party, MediaRequest)>,
    /// Every message a party sent, as sent (lost ones included).
    pub wire: Vec<(Party, Message)>,
    /// Every message delivered, hop by hop, as received.
    pub deliveries: Vec<Delivery>,
    /// Messages the proxy could not route (dropped, like lost packets).
    pub undeliverable: Vec<Message>,
    /// Messages from this party matching this rule are lost as they leave it.
    pub drop_from: Option<(Party, DropRule)>,
    /// See [`Filter`].
    pub filter: Option<Filter>,
    /// Answer media requests at once with fake SDP (else the test does it).
    pub auto_media: bool,
    queue: VecDeque<(Node, Node, Message)>,
}

/// A user agent for `user` with fixed seed and the given call settings.
pub fn agent(user: &str, seed: u64, calls: CallSettings) -> UserAgent {
    let host = format!("{user}host.invalid");
    let mut contact_uri = SipUri::new(Some(user), Host::Domain(host.clone()));
    contact_uri.params.set("transport", Some("ws".into()));
    let domain = Host::Domain(DOMAIN.into());
    let registration = RegistrationConfig {
        registrar: Uri::Sip(SipUri::new(None, domain.clone())),
        aor: Uri::Sip(SipUri::new(Some(user), domain)),
        display_name: Some(user.to_uppercase()),
        contact: NameAddr::new(Uri::Sip(contact_uri)),
        expires: 600,
        retry_min: Duration::from_secs(1),
        retry_max: Duration::from_secs(60),
        on_permanent_failure: webphone::PermanentFailurePolicy::Stop,
    };
    let cfg = AgentConfig {
        via_transport: "WS",
        via_host: host,
        user_agent: "test".into(),
        timers: Default::default(),
        seed: Some(seed),
        calls,
    };
    UserAgent::new(cfg, registration, DigestClient::new(user, "pw"))
}

impl Net {
    /// Parties named and configured as given (party `i` is `parties[i]`),
    /// connected, behind the proxy.
    pub fn new(parties: Vec<(&str, CallSettings)>) -> Net {
        let now = Instant::now();
        let members = parties
            .into_iter()
            .enumerate()
            .map(|(i, (name, settings))| {
                let mut ua = agent(name, i as u64 + 1, settings);
                ua.handle_connected(now, "WS");
                Member {
                    name: name.to_string(),
                    via_host: format!("{name}host.invalid"),
                    label: name.chars().next().map(|c| c.to_uppercase().to_string()).unwrap_or_default(),
                    ua,
                }
            })
            .collect();
        Net {
            members,
            now,
            events: Vec::new(),
            media: Vec::new(),
            wire: Vec::new(),
            deliveries: Vec::new(),
            undeliverable: Vec::new(),
            drop_from: None,
            filter: None,
            auto_media: true,
            queue: VecDeque::new(),
        }
    }

    /// The core of `p`.
    pub fn ua(&mut self, p: Party) -> &mut UserAgent {
        &mut self.members[p.0].ua
    }

    fn parties(&self) -> impl Iterator<Item = Party> + use<> {
        (0..self.members.len()).map(Party)
    }

    /// Moves messages and answers media requests until every party is quiet.
    pub fn drive(&mut self) {
        loop {
            let mut progressed = false;
            for p in self.parties() {
                while let Some(out) = self.ua(p).poll_output() {
                    progressed = true;
                    self.handle_output(p, out);
                }
            }
            while let Some((from, to, msg)) = self.queue.pop_front() {
                progressed = true;
                self.deliver(from, to, msg);
            }
            if !progressed {
                return;
            }
        }
    }

    /// Puts `msg` on the wire as if `p` had sent it (a retransmission, or a
    /// message the test crafted); [`Self::drive`] delivers it.
    pub fn send_as(&mut self, p: Party, msg: Message) {
        self.transmit(p, msg);
    }

    fn handle_output(&mut self, p: Party, out: Output) {
        match out {
            Output::Transmit(bytes) => {
                let msg = Message::parse(bytes).expect("the UA sent unparseable SIP");
                self.transmit(p, msg);
            }
            Output::Event(AgentEvent::Call(ev)) => self.events.push((p, ev)),
            Output::Event(_) => {}
            Output::Media(req) => self.handle_media(p, req),
            other => panic!("an output the harness does not know: {other:?}"),
        }
    }

    fn transmit(&mut self, p: Party, msg: Message) {
        let dropped = self.drop_from.is_some_and(|(s, f)| s == p && f(&msg));
        self.wire.push((p, msg.clone()));
        if !dropped {
            self.queue.push_back((Node::Party(p), Node::Proxy, msg));
        }
    }

    fn handle_media(&mut self, p: Party, req: MediaRequest) {
        self.media.push((p, req.clone()));
        if self.auto_media {
            let now = self.now;
            let label = self.members[p.0].label.clone();
            let sdp = match &req {
                MediaRequest::Offer { .. } => Some(fake_offer(&label)),
                // A re-offer states its direction, as real SDP does (hold is read from it).
                MediaRequest::Reoffer { direction, .. } => {
                    Some(format!("v=0 reoffer from {label}\r\na={direction}\r\n"))
                }
                MediaRequest::Answer { .. } => Some(format!("v=0 answer from {label}")),
                _ => None,
            };
            if let Some(sdp) = sdp {
                self.ua(p).handle_local_sdp(req.call(), Ok(Bytes::from(sdp)), now);
            }
        }
    }

    fn deliver(&mut self, from: Node, to: Node, mut msg: Message) {
        if let Some(filter) = self.filter.as_mut()
            && !filter(from, to, &mut msg)
        {
            return;
        }
        self.deliveries.push(Delivery { from, to, msg: msg.clone() });
        match to {
            Node::Party(p) => {
                let now = self.now;
                self.ua(p).handle_message(msg.to_bytes(), now);
            }
            Node::Proxy => self.proxy(msg),
        }
    }

    /// The stateless proxy (see the module docs).
    fn proxy(&mut self, msg: Message) {
        let next = match &msg {
            Message::Request(req) => self.proxy_request(req.clone()).map(|(to, req)| (to, Message::Request(req))),
            Message::Response(resp) => {
                self.proxy_response(resp.clone()).map(|(to, resp)| (to, Message::Response(resp)))
            }
        };
        match next {
            Some((to, forwarded)) => self.queue.push_back((Node::Proxy, Node::Party(to), forwarded)),
            None => self.undeliverable.push(msg),
        }
    }

    fn proxy_request(&self, mut req: Request) -> Option<(Party, Request)> {
        if let Some(top) = first_value(&req.headers, &HeaderName::Route) {
            if !names_proxy(&top) {
                return None;
            }
            req.headers = without_first_value(&req.headers, &HeaderName::Route);
        }
        let user = match &req.uri {
            Uri::Sip(u) => u.user.clone(),
            _ => None,
        };
        let to = user.and_then(|u| self.members.iter().position(|m| m.name == u))?;
        let max_forwards = req.headers.get(&HeaderName::MaxForwards).and_then(|v| v.parse::<u32>().ok()).unwrap_or(70);
        if max_forwards == 0 {
            return None;
        }
        req.headers.set(HeaderName::MaxForwards, (max_forwards - 1).to_string());
        let client_branch = first_value(&req.headers, &HeaderName::Via)
            .and_then(|v| v.split(";branch=").nth(1).map(|b| b.split(';').next().unwrap_or("").to_string()))
            .unwrap_or_default();
        let mut front = vec![(HeaderName::Via, format!("SIP/2.0/WS {PROXY_HOST};branch=z9hG4bKpx.{client_branch}"))];
        let creates_dialog = matches!(req.method, Method::Invite | Method::Refer | Method::Subscribe)
            && !req.headers.get(&HeaderName::To).is_some_and(|t| t.contains(";tag="));
        if creates_dialog {
            front.push((HeaderName::RecordRoute, PROXY_RECORD_ROUTE.to_string()));
        }
        req.headers = prepended(&req.headers, front);
        Some((Party(to), req))
    }

    fn proxy_response(&self, mut resp: Response) -> Option<(Party, Response)> {
        let ours = first_value(&resp.headers, &HeaderName::Via).is_some_and(|v| via_host(&v) == PROXY_HOST);
        if !ours {
            return None;
        }
        resp.headers = without_first_value(&resp.headers, &HeaderName::Via);
        let next = first_value(&resp.headers, &HeaderName::Via).map(|v| via_host(&v).to_string());
        let to = next.and_then(|h| self.members.iter().position(|m| m.via_host == h))?;
        Some((Party(to), resp))
    }

    /// Advances the clock to each due timer up to `d` later.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.drive();
            let next = self.members.iter().filter_map(|m| m.ua.poll_timeout()).min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    for m in &mut self.members {
                        m.ua.handle_timeout(now);
                    }
                }
                _ => break,
            }
        }
        self.now = end;
        self.drive();
    }

    /// `from` calls `target` (a user name or URI); drives the net.
    pub fn call(&mut self, from: Party, target: &str) -> CallKey {
        let now = self.now;
        let key =
            self.ua(from).call(CallRequest { target: target.into(), ..Default::default() }, now).expect("call placed");
        self.drive();
        key
    }

    /// `p` answers `key`; drives the net.
    pub fn answer(&mut self, p: Party, key: CallKey) {
        let now = self.now;
        self.ua(p).answer(key, now).expect("answered");
        self.drive();
    }

    /// `p` hangs up `key`; drives the net.
    pub fn hangup(&mut self, p: Party, key: CallKey) {
        let now = self.now;
        self.ua(p).hangup(key, now).expect("hung up");
        self.drive();
    }

    /// The calls that came in at `p`, in order.
    pub fn incoming_calls(&self, p: Party) -> Vec<CallKey> {
        self.events
            .iter()
            .filter_map(|(s, e)| match e {
                CallEvent::Incoming(c) if *s == p => Some(c.key),
                _ => None,
            })
            .collect()
    }

    /// The first call that came in at `p`.
    pub fn incoming(&self, p: Party) -> CallKey {
        *self.incoming_calls(p).first().unwrap_or_else(|| panic!("{p:?} saw no incoming call"))
    }

    /// The first call `p` reported ended.
    pub fn ended(&self, p: Party) -> Option<&CallSnapshot> {
        self.events.iter().find_map(|(s, e)| match e {
            CallEvent::Ended(c) if *s == p => Some(c),
            _ => None,
        })
    }

    /// How `p` reported `key` ended, if it did.
    pub fn ended_call(&self, p: Party, key: CallKey) -> Option<&CallSnapshot> {
        self.events.iter().find_map(|(s, e)| match e {
            CallEvent::Ended(c) if *s == p && c.key == key => Some(c),
            _ => None,
        })
    }

    /// True once `p` reported any call confirmed.
    pub fn confirmed(&self, p: Party) -> bool {
        self.events.iter().any(|(s, e)| *s == p && matches!(e, CallEvent::Confirmed(_)))
    }

    /// True once `p` reported `key` confirmed.
    pub fn confirmed_call(&self, p: Party, key: CallKey) -> bool {
        self.events.iter().any(|(s, e)| *s == p && matches!(e, CallEvent::Confirmed(c) if c.key == key))
    }

    /// The `method` requests `from` sent, as sent.
    pub fn requests(&self, from: Party, method: Method) -> Vec<&Request> {
        self.wire
            .iter()
            .filter_map(|(s, m)| match m {
                Message::Request(r) if *s == from && r.method == method => Some(r),
                _ => None,
            })
            .collect()
    }

    /// The responses `from` sent, as sent.
    pub fn responses(&self, from: Party) -> Vec<&Response> {
        self.wire
            .iter()
            .filter_map(|(s, m)| match m {
                Message::Response(r) if *s == from => Some(r),
                _ => None,
            })
            .collect()
    }

    /// The status codes of the responses `from` sent, in order.
    pub fn statuses(&self, from: Party) -> Vec<u16> {
        self.responses(from).iter().map(|r| r.status.as_u16()).collect()
    }

    /// The `method` requests delivered to `to`, as received.
    pub fn received_requests(&self, to: Party, method: Method) -> Vec<&Request> {
        self.deliveries
            .iter()
            .filter_map(|d| match &d.msg {
                Message::Request(r) if d.to == Node::Party(to) && r.method == method => Some(r),
                _ => None,
            })
            .collect()
    }

    /// Deliveries on the hop `from` → `to`.
    pub fn hops(&self, from: Node, to: Node) -> impl Iterator<Item = &Message> {
        self.deliveries.iter().filter(move |d| d.from == from && d.to == to).map(|d| &d.msg)
    }
}

/// The first comma-separated value of the first `name` header line.
pub fn first_value(headers: &Headers, name: &HeaderName) -> Option<String> {
    let line = headers.get(name)?;
    webphone::sip::split_list(line).next().map(str::to_string)
}

/// `headers` without the first value of `name` (the rest of its line stays).
pub fn without_first_value(headers: &Headers, name: &HeaderName) -> Headers {
    let mut out = Headers::new();
    let mut done = false;
    for h in headers.iter() {
        if !done && h.name == *name {
            done = true;
            let rest: Vec<&str> = webphone::sip::split_list(h.value_str()).skip(1).collect();
            if !rest.is_empty() {
                out.push(h.name.clone(), rest.join(", "));
            }
            continue;
        }
        out.push(h.name.clone(), h.value.clone());
    }
    out
}

/// `headers` with `front` before them.
pub fn prepended(headers: &Headers, front: Vec<(HeaderName, String)>) -> Headers {
    let mut out = Headers::new();
    for (name, value) in front {
        out.push(name, value);
    }
    for h in headers.iter() {
        out.push(h.name.clone(), h.value.clone());
    }
    out
}

/// The sent-by host of one Via value.
pub fn via_host(via: &str) -> &str {
    let sent_by = via.split_whitespace().nth(1).unwrap_or("");
    let sent_by = sent_by.split(';').next().unwrap_or("");
    sent_by.split(':').next().unwrap_or("")
}

/// True when a Route value names the proxy.
fn names_proxy(route: &str) -> bool {
    route.trim_start_matches('<').starts_with(&format!("sip:{PROXY_HOST}"))
}

/// Call settings without a session timer (so scenarios see no refreshes
/// they did not ask for), otherwise the defaults.
pub fn no_session_timer() -> CallSettings {
    CallSettings { session_expires: None, ..Default::default() }
}

/// Removes `UPDATE` from every Allow header of `msg` (a filter that makes
/// the receiving party refresh sessions with re-INVITE).
pub fn strip_update_from_allow(msg: &mut Message) {
    let headers = match msg {
        Message::Request(r) => &mut r.headers,
        Message::Response(r) => &mut r.headers,
    };
    let allow: Vec<String> = headers
        .get_all(&HeaderName::Allow)
        .flat_map(webphone::sip::split_list)
        .filter(|m| !m.eq_ignore_ascii_case("UPDATE"))
        .map(str::to_string)
        .collect();
    if !allow.is_empty() {
        headers.set(HeaderName::Allow, allow.join(", "));
    }
}

/// Alice (party 0) calls bob (party 1) with a 90 s session timer that alice
/// refreshes; every message bob sends has `UPDATE` removed from its Allow
/// (so alice refreshes with re-INVITEs) and then goes through `on_bob`.
/// Returns the confirmed call's keys at alice and at bob.
pub fn call_refreshed_by_reinvite(mut on_bob: impl FnMut(&mut Message) + 'static) -> (Net, CallKey, CallKey) {
    let settings = CallSettings { session_expires: Some(90), ..Default::default() };
    let mut net = Net::new(vec![("alice", settings.clone()), ("bob", settings)]);
    net.filter = Some(Box::new(move |from, _to, msg| {
        if from == Node::Party(Party(1)) {
            strip_update_from_allow(msg);
            on_bob(msg);
        }
        true
    }));
    let at_alice = net.call(Party(0), "bob");
    let at_bob = net.incoming(Party(1));
    net.answer(Party(1), at_bob);
    assert!(net.confirmed(Party(0)) && net.confirmed(Party(1)), "the call is confirmed");
    (net, at_alice, at_bob)
}

/// The fake offer of the member labelled `label`: its label, then the one
/// audio `m=` line that an offer needs before a phone rings for it.
pub fn fake_offer(label: &str) -> String {
    format!("v=0 offer from {label}\r\nm=audio 9 RTP/AVP 0\r\n")
}
