//! URIs as SIP carries them: `sip:` / `sips:` (RFC 3261 §19.1), `tel:`
//! (RFC 3966), and any other absolute URI kept opaque.
//!
//! Escapes (`%HH`) are kept as written: comparison helpers unescape once,
//! never recursively (RFC 4475 §3.1.1.3).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::text::{Params, find_byte, rfind_byte};

/// A URI found in a Request-URI, a name-addr or a Via.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// `tel:` (RFC 3966).
    Tel(TelUri),
    /// Any other scheme, kept as written (e.g. `urn:`, `http:`).
    Other {
        /// The scheme, lower-cased.
        scheme: String,
        /// Everything after the colon.
        rest: String,
    },
}

/// A `sip:` / `sips:` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` when true.
    pub secure: bool,
    /// User part, escapes kept as written.
    pub user: Option<String>,
    /// Password part of the userinfo (discouraged, but legal).
    pub password: Option<String>,
    /// Host.
    pub host: Host,
    /// Port, when given.
    pub port: Option<u16>,
    /// URI parameters (`;transport=ws`, `;lr`, `;alias=...`).
    pub params: Params,
    /// URI headers (`?Replaces=...`), names and values as written (escaped).
    pub headers: Vec<(String, String)>,
}

/// A `tel:` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelUri {
    /// The number as written (visual separators kept).
    pub number: String,
    /// Parameters such as `phone-context`.
    pub params: Params,
}

/// A host: a domain name or an IP address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name (or an `*.invalid` placeholder), as written.
    Domain(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    V6(Ipv6Addr),
}

/// Why a URI did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed URI")]
pub struct UriError;

impl Host {
    /// Parses a host: `[v6]`, dotted IPv4, or a domain name.
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError)?;
            return Ipv6Addr::from_str(inner).map(Host::V6).map_err(|_| UriError);
        }
        if s.is_empty() {
            return Err(UriError);
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && let Ok(v4) = Ipv4Addr::from_str(s)
        {
            return Ok(Host::V4(v4));
        }
        if s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_') {
            Ok(Host::Domain(s.to_string()))
        } else {
            Err(UriError)
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Splits `host[:port]` (host may be a bracketed IPv6 reference).
pub(crate) fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), UriError> {
    let (host, port) = if s.starts_with('[') {
        let close = find_byte(s, b']').ok_or(UriError)?;
        let rest = &s[close + 1..];
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p),
            None if rest.is_empty() => None,
            None => return Err(UriError),
        };
        (&s[..=close], port)
    } else {
        match rfind_byte(s, b':') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| UriError)?)
        }
        Some(_) => return Err(UriError),
        None => None,
    };
    Ok((Host::parse(host)?, port))
}

/// Characters allowed in the user part besides unreserved and `%` escapes.
fn is_user_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'.'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
                | b'('
                | b')'
                | b'%'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b','
                | b';'
                | b'?'
                | b'/'
        )
}

fn is_uri_byte(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'<' | b'>' | b'"')
}

impl Uri {
    /// Parses an absolute URI.
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        let colon = find_byte(s, b':').ok_or(UriError)?;
        let scheme = &s[..colon];
        let rest = &s[colon + 1..];
        if scheme.is_empty()
            || !scheme.as_bytes()[0].is_ascii_alphabetic()
            || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(UriError);
        }
        if rest.is_empty() || !rest.bytes().all(is_uri_byte) {
            return Err(UriError);
        }
        if scheme.eq_ignore_ascii_case("sip") {
            SipUri::parse_after_scheme(rest, false).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse_after_scheme(rest, true).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            TelUri::parse_after_scheme(rest).map(Uri::Tel)
        } else {
            Ok(Uri::Other { scheme: scheme.to_ascii_lowercase(), rest: rest.to_string() })
        }
    }

    /// The SIP URI, when this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// The user part (SIP) or number (tel), when present.
    pub fn user(&self) -> Option<&str> {
        match self {
            Uri::Sip(u) => u.user.as_deref(),
            Uri::Tel(t) => Some(&t.number),
            Uri::Other { .. } => None,
        }
    }

    /// The scheme as lower-case text.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other { scheme, .. } => scheme,
        }
    }
}

impl FromStr for Uri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uri::parse(s)
    }
}

impl SipUri {
    /// A `sip:user@host` URI with no port or parameters.
    pub fn new(user: Option<&str>, host: Host) -> SipUri {
        SipUri {
            secure: false,
            user: user.map(str::to_string),
            password: None,
            host,
            port: None,
            params: Params::new(),
            headers: Vec::new(),
        }
    }

    fn parse_after_scheme(s: &str, secure: bool) -> Result<SipUri, UriError> {
        // '@' appears only at the end of the userinfo, which may itself hold
        // '?' and ';' (RFC 4475 §3.1.1.2): split there before looking for headers.
        let (userinfo, after_user) = match find_byte(s, b'@') {
            Some(at) => (Some(&s[..at]), &s[at + 1..]),
            None => (None, s),
        };
        let (hostpart, headers) = match find_byte(after_user, b'?') {
            Some(q) => (&after_user[..q], Some(&after_user[q + 1..])),
            None => (after_user, None),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match find_byte(ui, b':') {
                    Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() || !u.bytes().all(is_user_byte) || !valid_escapes(u) {
                    return Err(UriError);
                }
                (Some(u.to_string()), p.map(str::to_string))
            }
        };
        let (hostport, params) = match find_byte(hostpart, b';') {
            Some(i) => (&hostpart[..i], &hostpart[i..]),
            None => (hostpart, ""),
        };
        let (host, port) = parse_hostport(hostport)?;
        let params = Params::parse(params).ok_or(UriError)?;
        let headers = match headers {
            None => Vec::new(),
            Some(h) => h
                .split('&')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').ok_or(UriError)?;
                    if k.is_empty() {
                        return Err(UriError);
                    }
                    Ok((k.to_string(), v.to_string()))
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(SipUri { secure, user, password, host, port, params, headers })
    }

    /// The user part with `%HH` escapes decoded once (bytes that are not
    /// UTF-8 are replaced).
    pub fn user_unescaped(&self) -> Option<String> {
        self.user.as_deref().map(unescape)
    }

    /// The value of URI header `name` (case-insensitive), unescaped once.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| unescape(v))
    }
}

/// True when every `%` starts a `%HH` escape.
fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Decodes `%HH` escapes once; a `%` not followed by two hex digits is kept.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1).and_then(hex_val), b.get(i + 2).and_then(hex_val))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

/// Escapes characters not allowed in a URI header value or user part.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' | b'+')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl TelUri {
    fn parse_after_scheme(s: &str) -> Result<TelUri, UriError> {
        let (number, params) = match find_byte(s, b';') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        };
        let ok = !number.is_empty()
            && number
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#'));
        if !ok {
            return Err(UriError);
        }
        Ok(TelUri { number: number.to_string(), params: Params::parse(params).ok_or(UriError)? })
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(t) => write!(f, "tel:{}{}", t.number, t.params),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(pw) = &self.password {
                write!(f, ":{pw}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)?;
        for (i, (k, v)) in self.headers.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sip_uri_with_everything() {
        let u = Uri::parse("sips:alice:pw@[2001:db8::1]:5061;transport=ws;lr?Replaces=abc%40x&X=1").expect("valid");
        let Uri::Sip(s) = &u else { panic!("not sip") };
        assert!(s.secure);
        assert_eq!(s.user.as_deref(), Some("alice"));
        assert_eq!(s.password.as_deref(), Some("pw"));
        assert_eq!(s.host, Host::V6("2001:db8::1".parse().expect("v6")));
        assert_eq!(s.port, Some(5061));
        assert_eq!(s.params.get("transport"), Some(Some("ws")));
        assert!(s.params.contains("lr"));
        assert_eq!(s.header("replaces").as_deref(), Some("abc@x"));
        assert_eq!(u.to_string(), "sips:alice:pw@[2001:db8::1]:5061;transport=ws;lr?Replaces=abc%40x&X=1");
    }

    #[test]
    fn parses_tel_and_other_schemes() {
        let t = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").expect("valid");
        assert_eq!(t.user(), Some("+1-201-555-0123"));
        assert_eq!(t.scheme(), "tel");
        let o = Uri::parse("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6").expect("valid");
        assert_eq!(o.scheme(), "urn");
    }

    #[test]
    fn userinfo_may_hold_question_marks_and_semicolons() {
        let u = Uri::parse("sip:a?b,/;;*:p&w=1@example.com?X=1").expect("valid");
        let s = u.as_sip().expect("sip");
        assert_eq!((s.user.as_deref(), s.password.as_deref()), (Some("a?b,/;;*"), Some("p&w=1")));
        assert_eq!(s.host, Host::Domain("example.com".into()));
        assert_eq!(s.header("x").as_deref(), Some("1"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["sip:", "sip:user@", "sip:a b@x", "sip:x:99999", "nocolon", "sip:[::1", "sip:u%4@x", "sip:x:"] {
            assert!(Uri::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn unescapes_once() {
        assert_eq!(unescape("value%2541"), "value%41");
        assert_eq!(unescape("%00abc"), "\0abc");
        assert_eq!(escape("a b@c"), "a%20b%40c");
    }
}
