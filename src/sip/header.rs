//! Typed views of the headers a user agent acts on.
//!
//! Each type parses one header value (or one element of a comma-separated
//! list) and prints it back in canonical form. Name-addr headers (From, To,
//! Route, Record-Route, Refer-To, Referred-By) share [`NameAddr`] and are
//! read with [`super::Headers::name_addr`] / [`super::Headers::name_addrs`];
//! token lists (Allow, Supported, Require, ...) with
//! [`super::Headers::tokens`].

use std::fmt;

use super::message::{HeaderName, Headers, Method};
use super::text::{Params, find_byte, find_top_level, is_token, quote, read_quoted, split_top_level, trim_lws};
use super::uri::{Host, Uri, parse_hostport};

/// A header value that does not match its grammar.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed {header} header")]
pub struct HeaderError {
    /// Canonical name of the header.
    pub header: &'static str,
}

/// A header with a typed representation.
pub trait TypedHeader: Sized {
    /// The header's name.
    const NAME: HeaderName;
    /// True when one line may carry several comma-separated elements.
    const LIST: bool = false;
    /// Parses one value (one list element for list headers).
    fn parse(value: &str) -> Result<Self, HeaderError>;
}

fn err(header: &'static str) -> HeaderError {
    HeaderError { header }
}

fn parse_u32_clamped(s: &str) -> Option<u32> {
    let s = trim_lws(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // delta-seconds beyond 2^32-1 mean 2^32-1 (RFC 3261 §25.1).
    Some(s.parse::<u64>().map_or(u32::MAX, |v| v.min(u32::MAX as u64) as u32))
}

fn parse_u32_strict(s: &str) -> Option<u32> {
    let s = trim_lws(s);
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok()
}

/// Splits `value` at its first top-level `;` into the main part and params.
fn split_params(value: &str) -> (&str, &str) {
    match find_top_level(value, b';') {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    }
}

// ---------------------------------------------------------------- Via

/// One Via element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper-case as written (`WS`, `WSS`, `UDP`, ...).
    pub transport: String,
    /// sent-by host.
    pub host: Host,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`, ...).
    pub params: Params,
}

impl Via {
    /// A Via for `transport` from `host` with a fresh `branch`.
    pub fn new(transport: &str, host: Host, branch: &str) -> Via {
        let mut params = Params::new();
        params.set("branch", Some(branch.to_string()));
        Via { transport: transport.to_string(), host, port: None, params }
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }
}

impl TypedHeader for Via {
    const NAME: HeaderName = HeaderName::Via;
    const LIST: bool = true;

    fn parse(value: &str) -> Result<Via, HeaderError> {
        let e = || err("Via");
        let (main, params) = split_params(value);
        // sent-protocol: "SIP" LWS? "/" LWS? version LWS? "/" LWS? transport
        let mut parts = main.splitn(3, '/');
        let (Some(name), Some(version), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(e());
        };
        if !trim_lws(name).eq_ignore_ascii_case("SIP") || trim_lws(version) != "2.0" {
            return Err(e());
        }
        let rest = trim_lws(rest);
        let split = rest.find([' ', '\t']).ok_or_else(e)?;
        let transport = &rest[..split];
        let sent_by = trim_lws(&rest[split..]);
        if !is_token(transport) || sent_by.is_empty() || sent_by.contains([' ', '\t']) {
            return Err(e());
        }
        let (host, port) = parse_hostport(sent_by).map_err(|_| e())?;
        let params = Params::parse(params).ok_or_else(e)?;
        Ok(Via { transport: transport.to_string(), host, port, params })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

// ---------------------------------------------------------------- name-addr

/// `[display] <uri>;params` or `uri;params` (From, To, Contact, Route, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted.
    pub display: Option<String>,
    /// The address.
    pub uri: Uri,
    /// Header parameters (not URI parameters): `tag`, `expires`, ...
    pub params: Params,
}

impl NameAddr {
    /// An address with no display name or parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr { display: None, uri, params: Params::new() }
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    /// Parses a name-addr or addr-spec with header parameters.
    pub fn parse(value: &str) -> Option<NameAddr> {
        let v = trim_lws(value);
        let (display, after_display) = if v.starts_with('"') {
            let (d, rest) = read_quoted(v)?;
            (Some(d), trim_lws(rest))
        } else if let Some(lt) = find_byte(v, b'<') {
            let words = trim_lws(&v[..lt]);
            // display-name = *(token LWS); anything else is malformed.
            if !words.split([' ', '\t']).filter(|w| !w.is_empty()).all(is_token) {
                return None;
            }
            ((!words.is_empty()).then(|| words.to_string()), &v[lt..])
        } else {
            (None, v)
        };
        if let Some(inner) = after_display.strip_prefix('<') {
            let close = find_byte(inner, b'>')?;
            let uri = Uri::parse(&inner[..close]).ok()?;
            let params = Params::parse(&inner[close + 1..])?;
            Some(NameAddr { display, uri, params })
        } else {
            if display.is_some() {
                return None;
            }
            // addr-spec: the URI may carry neither parameters nor headers.
            let (uri, params) = split_params(after_display);
            if uri.contains('?') {
                return None;
            }
            Some(NameAddr { display: None, uri: Uri::parse(trim_lws(uri)).ok()?, params: Params::parse(params)? })
        }
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{} ", quote(d))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// One Contact element: `*` or an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contact {
    /// `Contact: *` (REGISTER removing all bindings).
    Star,
    /// An address with its parameters (`expires`, `+sip.instance`, ...).
    Address(NameAddr),
}

impl Contact {
    /// The address, unless this is `*`.
    pub fn address(&self) -> Option<&NameAddr> {
        match self {
            Contact::Star => None,
            Contact::Address(a) => Some(a),
        }
    }

    /// The `expires` parameter.
    pub fn expires(&self) -> Option<u32> {
        self.address()?.params.get("expires").flatten().and_then(parse_u32_clamped)
    }
}

impl TypedHeader for Contact {
    const NAME: HeaderName = HeaderName::Contact;
    const LIST: bool = true;

    fn parse(value: &str) -> Result<Contact, HeaderError> {
        if trim_lws(value) == "*" {
            return Ok(Contact::Star);
        }
        NameAddr::parse(value).map(Contact::Address).ok_or_else(|| err("Contact"))
    }
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Star => f.write_str("*"),
            Contact::Address(a) => a.fmt(f),
        }
    }
}

// ---------------------------------------------------------------- CSeq

/// `CSeq: <number> <method>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (at most 2^32-1).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl TypedHeader for CSeq {
    const NAME: HeaderName = HeaderName::CSeq;

    fn parse(value: &str) -> Result<CSeq, HeaderError> {
        let v = trim_lws(value);
        let split = v.find([' ', '\t']).ok_or_else(|| err("CSeq"))?;
        let seq = parse_u32_strict(&v[..split]).ok_or_else(|| err("CSeq"))?;
        let method = Method::parse(trim_lws(&v[split..])).ok_or_else(|| err("CSeq"))?;
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

// ---------------------------------------------------------------- numbers

macro_rules! delta_header {
    ($(#[$doc:meta])* $ty:ident, $name:expr, $label:literal, $parse:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $ty(pub u32);

        impl TypedHeader for $ty {
            const NAME: HeaderName = $name;
            fn parse(value: &str) -> Result<Self, HeaderError> {
                $parse(split_params(value).0).map($ty).ok_or_else(|| err($label))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

delta_header!(
    /// `Expires: <seconds>` (overlarge values clamp to 2^32-1).
    Expires, HeaderName::Expires, "Expires", parse_u32_clamped);
delta_header!(
    /// `Min-Expires: <seconds>` (RFC 3261 §20.23).
    MinExpires, HeaderName::MinExpires, "Min-Expires", parse_u32_clamped);
delta_header!(
    /// `Max-Forwards: <hops>`.
    MaxForwards, HeaderName::MaxForwards, "Max-Forwards", parse_u32_strict);
delta_header!(
    /// `Min-SE: <seconds>` (RFC 4028).
    MinSe, HeaderName::MinSe, "Min-SE", parse_u32_clamped);

// ---------------------------------------------------------------- Content-Type

/// `Content-Type: type/subtype;params`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentType {
    /// `type/subtype`, lower-cased.
    pub media_type: String,
    /// Parameters (`boundary`, `charset`, ...).
    pub params: Params,
}

impl TypedHeader for ContentType {
    const NAME: HeaderName = HeaderName::ContentType;

    fn parse(value: &str) -> Result<ContentType, HeaderError> {
        let e = || err("Content-Type");
        let (main, params) = split_params(value);
        let (t, s) = main.split_once('/').ok_or_else(e)?;
        let (t, s) = (trim_lws(t), trim_lws(s));
        if !is_token(t) || !is_token(s) {
            return Err(e());
        }
        Ok(ContentType {
            media_type: format!("{t}/{s}").to_ascii_lowercase(),
            params: Params::parse(params).ok_or_else(e)?,
        })
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.media_type, self.params)
    }
}

// ---------------------------------------------------------------- session timers

/// `Session-Expires: <seconds>;refresher=uac|uas` (RFC 4028).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionExpires {
    /// Session interval in seconds.
    pub delta: u32,
    /// `refresher` parameter: `uac` or `uas`, lower-cased.
    pub refresher: Option<String>,
    /// All parameters as received.
    pub params: Params,
}

impl TypedHeader for SessionExpires {
    const NAME: HeaderName = HeaderName::SessionExpires;

    fn parse(value: &str) -> Result<SessionExpires, HeaderError> {
        let e = || err("Session-Expires");
        let (main, params) = split_params(value);
        let delta = parse_u32_clamped(main).ok_or_else(e)?;
        let params = Params::parse(params).ok_or_else(e)?;
        let refresher = params.value("refresher").map(|r| r.to_ascii_lowercase());
        Ok(SessionExpires { delta, refresher, params })
    }
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.delta, self.params)
    }
}

// ---------------------------------------------------------------- transfer

/// `Replaces: call-id;to-tag=..;from-tag=..[;early-only]` (RFC 3891).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replaces {
    /// The Call-ID of the dialog to replace.
    pub call_id: String,
    /// Its to-tag.
    pub to_tag: String,
    /// Its from-tag.
    pub from_tag: String,
    /// `early-only` flag.
    pub early_only: bool,
}

impl TypedHeader for Replaces {
    const NAME: HeaderName = HeaderName::Replaces;

    fn parse(value: &str) -> Result<Replaces, HeaderError> {
        let e = || err("Replaces");
        let (call_id, params) = split_params(value);
        let call_id = trim_lws(call_id);
        if call_id.is_empty() || call_id.contains([' ', '\t']) {
            return Err(e());
        }
        let params = Params::parse(params).ok_or_else(e)?;
        Ok(Replaces {
            call_id: call_id.to_string(),
            to_tag: params.value("to-tag").ok_or_else(e)?,
            from_tag: params.value("from-tag").ok_or_else(e)?,
            early_only: params.contains("early-only"),
        })
    }
}

impl fmt::Display for Replaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};to-tag={};from-tag={}", self.call_id, self.to_tag, self.from_tag)?;
        if self.early_only {
            f.write_str(";early-only")?;
        }
        Ok(())
    }
}

/// `Refer-To` (RFC 3515): an address whose URI may embed headers, such as
/// `?Replaces=...` for attended transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferTo(pub NameAddr);

impl ReferTo {
    /// The `Replaces` header embedded in the target URI, if any.
    pub fn replaces(&self) -> Option<Result<Replaces, HeaderError>> {
        let value = self.0.uri.as_sip()?.header("Replaces")?;
        Some(Replaces::parse(&value))
    }
}

impl TypedHeader for ReferTo {
    const NAME: HeaderName = HeaderName::ReferTo;

    fn parse(value: &str) -> Result<ReferTo, HeaderError> {
        NameAddr::parse(value).map(ReferTo).ok_or_else(|| err("Refer-To"))
    }
}

impl fmt::Display for ReferTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

// ---------------------------------------------------------------- events

/// `Event: package;id=..` (RFC 6665).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Event package (`refer`, `dialog`, ...), as written.
    pub package: String,
    /// Parameters (`id`).
    pub params: Params,
}

impl TypedHeader for Event {
    const NAME: HeaderName = HeaderName::Event;

    fn parse(value: &str) -> Result<Event, HeaderError> {
        let (main, params) = split_params(value);
        let package = trim_lws(main);
        if !is_token(package) {
            return Err(err("Event"));
        }
        Ok(Event { package: package.to_string(), params: Params::parse(params).ok_or_else(|| err("Event"))? })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.package, self.params)
    }
}

/// `Subscription-State: active|pending|terminated;expires=..;reason=..`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionState {
    /// The state, lower-cased.
    pub state: String,
    /// Parameters (`expires`, `reason`, `retry-after`).
    pub params: Params,
}

impl SubscriptionState {
    /// The `expires` parameter.
    pub fn expires(&self) -> Option<u32> {
        self.params.get("expires").flatten().and_then(parse_u32_clamped)
    }
}

impl TypedHeader for SubscriptionState {
    const NAME: HeaderName = HeaderName::SubscriptionState;

    fn parse(value: &str) -> Result<SubscriptionState, HeaderError> {
        let (main, params) = split_params(value);
        let state = trim_lws(main);
        if !is_token(state) {
            return Err(err("Subscription-State"));
        }
        Ok(SubscriptionState {
            state: state.to_ascii_lowercase(),
            params: Params::parse(params).ok_or_else(|| err("Subscription-State"))?,
        })
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.state, self.params)
    }
}

/// One `Reason` element (RFC 3326): `SIP;cause=200;text="Call completed"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// Protocol (`SIP`, `Q.850`), as written.
    pub protocol: String,
    /// `cause` parameter.
    pub cause: Option<u16>,
    /// `text` parameter, unquoted.
    pub text: Option<String>,
    /// All parameters.
    pub params: Params,
}

impl TypedHeader for Reason {
    const NAME: HeaderName = HeaderName::Reason;
    const LIST: bool = true;

    fn parse(value: &str) -> Result<Reason, HeaderError> {
        let (main, params) = split_params(value);
        let protocol = trim_lws(main);
        if !is_token(protocol) {
            return Err(err("Reason"));
        }
        let params = Params::parse(params).ok_or_else(|| err("Reason"))?;
        let cause = match params.value("cause") {
            Some(c) => Some(c.parse::<u16>().map_err(|_| err("Reason"))?),
            None => None,
        };
        Ok(Reason { protocol: protocol.to_string(), cause, text: params.value("text"), params })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.protocol, self.params)
    }
}

/// `Retry-After: <seconds> [(comment)];duration=..`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryAfter {
    /// Seconds to wait.
    pub seconds: u32,
    /// The comment, without parentheses.
    pub comment: Option<String>,
    /// Parameters (`duration`).
    pub params: Params,
}

impl TypedHeader for RetryAfter {
    const NAME: HeaderName = HeaderName::RetryAfter;

    fn parse(value: &str) -> Result<RetryAfter, HeaderError> {
        let e = || err("Retry-After");
        let v = trim_lws(value);
        let digits = v.bytes().take_while(u8::is_ascii_digit).count();
        // Overlarge values are malformed here (RFC 4475 §3.1.2.5).
        let seconds = parse_u32_strict(&v[..digits]).ok_or_else(e)?;
        let mut rest = trim_lws(&v[digits..]);
        let mut comment = None;
        if let Some(c) = rest.strip_prefix('(') {
            let close = c.rfind(')').ok_or_else(e)?;
            comment = Some(c[..close].to_string());
            rest = trim_lws(&c[close + 1..]);
        }
        Ok(RetryAfter { seconds, comment, params: Params::parse(rest).ok_or_else(e)? })
    }
}

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.seconds)?;
        if let Some(c) = &self.comment {
            write!(f, " ({c})")?;
        }
        write!(f, "{}", self.params)
    }
}

// ---------------------------------------------------------------- accessors

impl Headers {
    /// The first `name` header parsed as a name-addr (From, To, Referred-By).
    pub fn name_addr(&self, name: &HeaderName) -> Option<Result<NameAddr, HeaderError>> {
        let label = static_label(name);
        self.get(name).map(|v| NameAddr::parse(v).ok_or(HeaderError { header: label }))
    }

    /// Every element of a name-addr list header (Route, Record-Route), in order.
    pub fn name_addrs(&self, name: &HeaderName) -> Result<Vec<NameAddr>, HeaderError> {
        let label = static_label(name);
        let mut out = Vec::new();
        for line in self.get_all(name) {
            for item in split_top_level(line, b',') {
                out.push(NameAddr::parse(item).ok_or(HeaderError { header: label })?);
            }
        }
        Ok(out)
    }

    /// Every token of a token-list header (Allow, Supported, Require, ...).
    pub fn tokens(&self, name: &HeaderName) -> Result<Vec<String>, HeaderError> {
        let label = static_label(name);
        let mut out = Vec::new();
        for line in self.get_all(name) {
            for item in line.split(',') {
                let t = trim_lws(item);
                if t.is_empty() {
                    continue;
                }
                if !is_token(t) {
                    return Err(HeaderError { header: label });
                }
                out.push(t.to_string());
            }
        }
        Ok(out)
    }
}

fn static_label(name: &HeaderName) -> &'static str {
    match name {
        HeaderName::From => "From",
        HeaderName::To => "To",
        HeaderName::Route => "Route",
        HeaderName::RecordRoute => "Record-Route",
        HeaderName::ReferredBy => "Referred-By",
        HeaderName::ReferTo => "Refer-To",
        HeaderName::Contact => "Contact",
        HeaderName::Allow => "Allow",
        HeaderName::Supported => "Supported",
        HeaderName::Require => "Require",
        HeaderName::ProxyRequire => "Proxy-Require",
        HeaderName::Unsupported => "Unsupported",
        HeaderName::Accept => "Accept",
        _ => "extension",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_ipv6_and_params() {
        let v = Via::parse("SIP / 2.0 / WSS [2001:db8::9]:443 ;branch=z9hG4bK1;rport;received=[::1]").expect("valid");
        assert_eq!(v.transport, "WSS");
        assert_eq!(v.port, Some(443));
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.to_string(), "SIP/2.0/WSS [2001:db8::9]:443;branch=z9hG4bK1;rport;received=[::1]");
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/2.0/UDP host;;branch=1").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let a = NameAddr::parse(r#""Bob \"B\"" <sip:bob@b.example;transport=ws>;tag=x1"#).expect("valid");
        assert_eq!(a.display.as_deref(), Some(r#"Bob "B""#));
        assert_eq!(a.tag(), Some("x1"));
        let b = NameAddr::parse("sip:watson@example.com;tag=9").expect("addr-spec");
        assert_eq!(b.tag(), Some("9"));
        assert!(b.uri.as_sip().expect("sip").params.is_empty());
        let c = NameAddr::parse("Bob<sip:bob@b.example>").expect("no LWS before <");
        assert_eq!(c.display.as_deref(), Some("Bob"));
        assert!(NameAddr::parse("sip:u@x?Route=%3Csip:y%3E").is_none());
        assert!(NameAddr::parse("< sip:u@x >").is_none());
        assert!(NameAddr::parse("\"unterminated <sip:u@x>").is_none());
    }

    #[test]
    fn contact_star_and_expires() {
        assert_eq!(Contact::parse("*"), Ok(Contact::Star));
        let c = Contact::parse(r#"<sip:a@x.invalid;transport=ws>;expires=600;+sip.instance="<urn:uuid:1>""#)
            .expect("valid");
        assert_eq!(c.expires(), Some(600));
    }

    #[test]
    fn cseq_bounds() {
        assert_eq!(CSeq::parse("4294967295 INVITE").expect("max").seq, u32::MAX);
        assert!(CSeq::parse("4294967296 INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
    }

    #[test]
    fn refer_to_with_replaces() {
        let r = ReferTo::parse("<sip:bob@b.example?Replaces=12345%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>").expect("valid");
        let rep = r.replaces().expect("present").expect("valid");
        assert_eq!(rep.call_id, "12345@host");
        assert_eq!((rep.to_tag.as_str(), rep.from_tag.as_str()), ("1", "2"));
    }

    #[test]
    fn misc_headers() {
        let se = SessionExpires::parse("90;refresher=UAC").expect("valid");
        assert_eq!((se.delta, se.refresher.as_deref()), (90, Some("uac")));
        let ra = RetryAfter::parse("18000 (in a meeting);duration=3600").expect("valid");
        assert_eq!((ra.seconds, ra.comment.as_deref()), (18000, Some("in a meeting")));
        assert!(RetryAfter::parse("949302838503028349304023988").is_err());
        let reason = Reason::parse(r#"SIP ;cause=200 ;text="Call completed elsewhere""#).expect("valid");
        assert_eq!((reason.cause, reason.text.as_deref()), (Some(200), Some("Call completed elsewhere")));
        let ss = SubscriptionState::parse("Active;expires=60").expect("valid");
        assert_eq!((ss.state.as_str(), ss.expires()), ("active", Some(60)));
        assert_eq!(Expires::parse("99999999999999").expect("clamps").0, u32::MAX);
        let ct = ContentType::parse("Application/SDP").expect("valid");
        assert_eq!(ct.media_type, "application/sdp");
    }
}
