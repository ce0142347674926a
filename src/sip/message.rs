//! SIP requests and responses: framing, the start line, the header list, and
//! serialization (RFC 3261 §7, with RFC 7118's one message per WebSocket
//! frame).
//!
//! Parsing is zero-copy over [`bytes::Bytes`]: header values are slices of
//! the received buffer (folded values are the one exception: they are
//! unfolded into a fresh buffer). Values are typed on demand through
//! [`Headers::typed`] and [`Headers::typed_all`]; unknown headers are kept
//! verbatim. Parsing checks framing and the start line; header semantics are
//! checked by [`super::validate`].

use std::fmt;
use std::io::Write as _;

use bytes::Bytes;

use super::header::{HeaderError, TypedHeader};
use super::text::{is_lws, is_token, trim_lws};
use super::uri::Uri;

/// Largest message we accept (a WebSocket frame carries one message).
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// A SIP method. Methods are case-sensitive (RFC 3261 §7.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// REGISTER
    Register,
    /// OPTIONS
    Options,
    /// INFO (RFC 6086)
    Info,
    /// UPDATE (RFC 3311)
    Update,
    /// PRACK (RFC 3262)
    Prack,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// REFER (RFC 3515)
    Refer,
    /// MESSAGE (RFC 3428)
    Message,
    /// PUBLISH (RFC 3903)
    Publish,
    /// Any other token.
    Extension(String),
}

impl Method {
    /// Parses a method token; `None` when it is not a token.
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other if is_token(other) => Method::Extension(other.to_string()),
            _ => return None,
        })
    }

    /// The method as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A response status code, 100 to 699.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusCode(u16);

impl StatusCode {
    /// 100 Trying
    pub const TRYING: StatusCode = StatusCode(100);
    /// 180 Ringing
    pub const RINGING: StatusCode = StatusCode(180);
    /// 200 OK
    pub const OK: StatusCode = StatusCode(200);
    /// 400 Bad Request
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    /// 401 Unauthorized
    pub const UNAUTHORIZED: StatusCode = StatusCode(401);
    /// 403 Forbidden
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    /// 404 Not Found
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    /// 405 Method Not Allowed
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    /// 406 Not Acceptable
    pub const NOT_ACCEPTABLE: StatusCode = StatusCode(406);
    /// 407 Proxy Authentication Required
    pub const PROXY_AUTHENTICATION_REQUIRED: StatusCode = StatusCode(407);
    /// 408 Request Timeout
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    /// 415 Unsupported Media Type
    pub const UNSUPPORTED_MEDIA_TYPE: StatusCode = StatusCode(415);
    /// 416 Unsupported URI Scheme
    pub const UNSUPPORTED_URI_SCHEME: StatusCode = StatusCode(416);
    /// 420 Bad Extension
    pub const BAD_EXTENSION: StatusCode = StatusCode(420);
    /// 423 Interval Too Brief
    pub const INTERVAL_TOO_BRIEF: StatusCode = StatusCode(423);
    /// 481 Call/Transaction Does Not Exist
    pub const CALL_DOES_NOT_EXIST: StatusCode = StatusCode(481);
    /// 486 Busy Here
    pub const BUSY_HERE: StatusCode = StatusCode(486);
    /// 487 Request Terminated
    pub const REQUEST_TERMINATED: StatusCode = StatusCode(487);
    /// 500 Server Internal Error
    pub const SERVER_INTERNAL_ERROR: StatusCode = StatusCode(500);
    /// 501 Not Implemented
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    /// 503 Service Unavailable
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    /// 505 Version Not Supported
    pub const VERSION_NOT_SUPPORTED: StatusCode = StatusCode(505);
    /// 603 Decline
    pub const DECLINE: StatusCode = StatusCode(603);

    /// A status code; `None` outside 100..=699.
    pub fn new(code: u16) -> Option<StatusCode> {
        (100..=699).contains(&code).then_some(StatusCode(code))
    }

    /// The numeric code.
    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// 1xx
    pub fn is_provisional(self) -> bool {
        self.0 < 200
    }

    /// 2xx
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }

    /// 200 and above.
    pub fn is_final(self) -> bool {
        self.0 >= 200
    }

    /// The reason phrase RFC 3261 suggests, or a generic one per class.
    pub fn canonical_reason(self) -> &'static str {
        match self.0 {
            100 => "Trying",
            180 => "Ringing",
            181 => "Call Is Being Forwarded",
            182 => "Queued",
            183 => "Session Progress",
            200 => "OK",
            202 => "Accepted",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            407 => "Proxy Authentication Required",
            408 => "Request Timeout",
            415 => "Unsupported Media Type",
            416 => "Unsupported URI Scheme",
            420 => "Bad Extension",
            423 => "Interval Too Brief",
            480 => "Temporarily Unavailable",
            481 => "Call/Transaction Does Not Exist",
            482 => "Loop Detected",
            483 => "Too Many Hops",
            486 => "Busy Here",
            487 => "Request Terminated",
            488 => "Not Acceptable Here",
            491 => "Request Pending",
            500 => "Server Internal Error",
            501 => "Not Implemented",
            503 => "Service Unavailable",
            504 => "Server Time-out",
            505 => "Version Not Supported",
            600 => "Busy Everywhere",
            603 => "Decline",
            c if c < 200 => "Session Progress",
            c if c < 300 => "OK",
            c if c < 400 => "Redirection",
            c if c < 500 => "Client Error",
            c if c < 600 => "Server Error",
            _ => "Global Failure",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A header name. Known names are matched case-insensitively, including
/// their compact forms (RFC 3261 §7.3.3); others are kept as written.
#[derive(Clone, Debug, Eq)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    ContentLength,
    ContentType,
    ContentEncoding,
    Route,
    RecordRoute,
    MaxForwards,
    Expires,
    MinExpires,
    WwwAuthenticate,
    ProxyAuthenticate,
    Authorization,
    ProxyAuthorization,
    Allow,
    AllowEvents,
    Accept,
    Supported,
    Require,
    ProxyRequire,
    Unsupported,
    SessionExpires,
    MinSe,
    ReferTo,
    ReferredBy,
    Replaces,
    Event,
    SubscriptionState,
    Reason,
    RetryAfter,
    UserAgent,
    Server,
    Subject,
    Date,
    /// Any other header, its name as written.
    Other(Bytes),
}

impl HeaderName {
    /// Maps a received name to a known header, else keeps it as [`HeaderName::Other`].
    pub fn from_bytes(name: Bytes) -> HeaderName {
        Self::known(&name).unwrap_or(HeaderName::Other(name))
    }

    /// A name from text, known or not.
    pub fn new(name: &str) -> HeaderName {
        Self::known(name.as_bytes()).unwrap_or_else(|| HeaderName::Other(Bytes::copy_from_slice(name.as_bytes())))
    }

    fn known(n: &[u8]) -> Option<HeaderName> {
        use HeaderName::*;
        let eq = |s: &str| n.eq_ignore_ascii_case(s.as_bytes());
        Some(match n.len() {
            1 => match n[0].to_ascii_lowercase() {
                b'v' => Via,
                b'f' => From,
                b't' => To,
                b'i' => CallId,
                b'm' => Contact,
                b'l' => ContentLength,
                b'c' => ContentType,
                b'e' => ContentEncoding,
                b'k' => Supported,
                b'x' => SessionExpires,
                b'r' => ReferTo,
                b'b' => ReferredBy,
                b'o' => Event,
                b'u' => AllowEvents,
                b's' => Subject,
                _ => return None,
            },
            _ if eq("Via") => Via,
            _ if eq("From") => From,
            _ if eq("To") => To,
            _ if eq("Call-ID") => CallId,
            _ if eq("CSeq") => CSeq,
            _ if eq("Contact") => Contact,
            _ if eq("Content-Length") => ContentLength,
            _ if eq("Content-Type") => ContentType,
            _ if eq("Content-Encoding") => ContentEncoding,
            _ if eq("Route") => Route,
            _ if eq("Record-Route") => RecordRoute,
            _ if eq("Max-Forwards") => MaxForwards,
            _ if eq("Expires") => Expires,
            _ if eq("Min-Expires") => MinExpires,
            _ if eq("WWW-Authenticate") => WwwAuthenticate,
            _ if eq("Proxy-Authenticate") => ProxyAuthenticate,
            _ if eq("Authorization") => Authorization,
            _ if eq("Proxy-Authorization") => ProxyAuthorization,
            _ if eq("Allow") => Allow,
            _ if eq("Allow-Events") => AllowEvents,
            _ if eq("Accept") => Accept,
            _ if eq("Supported") => Supported,
            _ if eq("Require") => Require,
            _ if eq("Proxy-Require") => ProxyRequire,
            _ if eq("Unsupported") => Unsupported,
            _ if eq("Session-Expires") => SessionExpires,
            _ if eq("Min-SE") => MinSe,
            _ if eq("Refer-To") => ReferTo,
            _ if eq("Referred-By") => ReferredBy,
            _ if eq("Replaces") => Replaces,
            _ if eq("Event") => Event,
            _ if eq("Subscription-State") => SubscriptionState,
            _ if eq("Reason") => Reason,
            _ if eq("Retry-After") => RetryAfter,
            _ if eq("User-Agent") => UserAgent,
            _ if eq("Server") => Server,
            _ if eq("Subject") => Subject,
            _ if eq("Date") => Date,
            _ => return None,
        })
    }

    /// The canonical (long) name; an unknown name as written.
    pub fn as_str(&self) -> &str {
        use HeaderName::*;
        match self {
            Via => "Via",
            From => "From",
            To => "To",
            CallId => "Call-ID",
            CSeq => "CSeq",
            Contact => "Contact",
            ContentLength => "Content-Length",
            ContentType => "Content-Type",
            ContentEncoding => "Content-Encoding",
            Route => "Route",
            RecordRoute => "Record-Route",
            MaxForwards => "Max-Forwards",
            Expires => "Expires",
            MinExpires => "Min-Expires",
            WwwAuthenticate => "WWW-Authenticate",
            ProxyAuthenticate => "Proxy-Authenticate",
            Authorization => "Authorization",
            ProxyAuthorization => "Proxy-Authorization",
            Allow => "Allow",
            AllowEvents => "Allow-Events",
            Accept => "Accept",
            Supported => "Supported",
            Require => "Require",
            ProxyRequire => "Proxy-Require",
            Unsupported => "Unsupported",
            SessionExpires => "Session-Expires",
            MinSe => "Min-SE",
            ReferTo => "Refer-To",
            ReferredBy => "Referred-By",
            Replaces => "Replaces",
            Event => "Event",
            SubscriptionState => "Subscription-State",
            Reason => "Reason",
            RetryAfter => "Retry-After",
            UserAgent => "User-Agent",
            Server => "Server",
            Subject => "Subject",
            Date => "Date",
            // Names come from a UTF-8-checked head or from &str.
            Other(b) => std::str::from_utf8(b).unwrap_or("X-Invalid"),
        }
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line: a name and its (unfolded) value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The name.
    pub name: HeaderName,
    /// The value, trimmed of surrounding white space, valid UTF-8.
    pub value: Bytes,
}

impl Header {
    /// The value as text.
    pub fn value_str(&self) -> &str {
        // Values are built from &str or from a head checked to be UTF-8.
        std::str::from_utf8(&self.value).unwrap_or("")
    }
}

/// The ordered header list of a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Self(Vec::with_capacity(12))
    }

    /// Appends a header.
    pub fn push(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.0.push(Header { name, value: value.into() });
    }

    /// Appends a typed header.
    pub fn push_typed<T: TypedHeader + fmt::Display>(&mut self, value: &T) {
        self.push(T::NAME, value.to_string());
    }

    /// Replaces every header named `name` by one with `value`.
    pub fn set(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.remove(&name);
        self.push(name, value);
    }

    /// Removes every header named `name`.
    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|h| h.name != *name);
    }

    /// The first value of `name`, as text.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0.iter().find(|h| h.name == *name).map(Header::value_str)
    }

    /// Every value of `name` in order (one per header line).
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |h| h.name == *name).map(Header::value_str)
    }

    /// How many header lines are named `name`.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| h.name == *name).count()
    }

    /// The first value of a single-valued typed header: `None` when absent.
    pub fn typed<T: TypedHeader>(&self) -> Option<Result<T, HeaderError>> {
        self.get(&T::NAME).map(T::parse)
    }

    /// Every element of a typed header: all lines, each split at top-level
    /// commas for list headers.
    pub fn typed_all<T: TypedHeader>(&self) -> Result<Vec<T>, HeaderError> {
        let mut out = Vec::new();
        for line in self.get_all(&T::NAME) {
            if T::LIST {
                for item in super::text::split_top_level(line, b',') {
                    out.push(T::parse(trim_lws(item))?);
                }
            } else {
                out.push(T::parse(line)?);
            }
        }
        Ok(out)
    }

    /// Iterates over all headers in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The protocol version on a start line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Version {
    /// SIP/2.0
    Sip2,
    /// Any other `SIP/x.y` (a request with it is answered 505).
    Other(String),
}

impl Version {
    fn parse(s: &str) -> Option<Version> {
        if s == "SIP/2.0" {
            return Some(Version::Sip2);
        }
        let rest = s.get(..4).filter(|p| p.eq_ignore_ascii_case("SIP/")).map(|_| &s[4..])?;
        let (major, minor) = rest.split_once('.')?;
        let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return None;
        }
        if major == "2" && minor == "0" { Some(Version::Sip2) } else { Some(Version::Other(s.to_string())) }
    }

    fn as_str(&self) -> &str {
        match self {
            Version::Sip2 => "SIP/2.0",
            Version::Other(s) => s,
        }
    }
}

/// A SIP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
    /// The protocol version.
    pub version: Version,
    /// The headers (Content-Length is recomputed on serialization).
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
}

/// A SIP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The protocol version.
    pub version: Version,
    /// The status code.
    pub status: StatusCode,
    /// The reason phrase as received (may be empty).
    pub reason: String,
    /// The headers (Content-Length is recomputed on serialization).
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
}

/// A request or a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// Why a buffer is not a SIP message. Such input is dropped (and logged):
/// without a well-formed head no response can be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but white space.
    #[error("empty message")]
    Empty,
    /// Larger than [`MAX_MESSAGE_SIZE`].
    #[error("message larger than {MAX_MESSAGE_SIZE} bytes")]
    TooLarge,
    /// No empty line ends the header section.
    #[error("no empty line after the headers")]
    NoHeaderEnd,
    /// The head is not UTF-8.
    #[error("header section is not UTF-8")]
    NotUtf8,
    /// The start line is neither a request line nor a status line.
    #[error("malformed start line")]
    BadStartLine,
    /// The Request-URI does not parse.
    #[error("malformed Request-URI")]
    BadRequestUri,
    /// The status code is not three digits in 100..=699.
    #[error("malformed status code")]
    BadStatusCode,
    /// A header line has no colon or a name that is not a token.
    #[error("malformed header line")]
    BadHeaderLine,
    /// Content-Length is not a non-negative integer, or appears twice.
    #[error("malformed or repeated Content-Length")]
    BadContentLength,
    /// Content-Length is larger than the bytes that follow the head.
    #[error("body shorter than Content-Length ({declared} declared, {available} present)")]
    TruncatedBody {
        /// Declared length.
        declared: usize,
        /// Bytes present.
        available: usize,
    },
}

impl Message {
    /// Parses one message from `buf` (one WebSocket frame's payload).
    /// Leading CRLFs are skipped; bytes after the body that Content-Length
    /// declares are ignored (RFC 3261 §18.3).
    pub fn parse(buf: Bytes) -> Result<Message, ParseError> {
        if buf.len() > MAX_MESSAGE_SIZE {
            return Err(ParseError::TooLarge);
        }
        let start = buf.iter().position(|&b| b != b'\r' && b != b'\n').ok_or(ParseError::Empty)?;
        let head_end = find_crlfcrlf(&buf[start..]).ok_or(ParseError::NoHeaderEnd)? + start;
        let head = std::str::from_utf8(&buf[start..head_end + 2]).map_err(|_| ParseError::NotUtf8)?;
        let body_start = head_end + 4;

        let line_end = head.find("\r\n").ok_or(ParseError::BadStartLine)?;
        let start_line = &head[..line_end];
        let (headers, content_length) = parse_headers(&buf, start, &head[line_end + 2..], start + line_end + 2)?;

        let available = buf.len() - body_start;
        let body = match content_length {
            Some(n) if n > available => return Err(ParseError::TruncatedBody { declared: n, available }),
            Some(n) => buf.slice(body_start..body_start + n),
            None => buf.slice(body_start..),
        };

        if start_line.starts_with("SIP/") {
            let (version, rest) = start_line.split_once(' ').ok_or(ParseError::BadStartLine)?;
            let version = Version::parse(version).ok_or(ParseError::BadStartLine)?;
            let (code, reason) = match rest.split_once(' ') {
                Some((c, r)) => (c, r),
                None => (rest, ""),
            };
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::BadStatusCode);
            }
            let status = code.parse().ok().and_then(StatusCode::new).ok_or(ParseError::BadStatusCode)?;
            Ok(Message::Response(Response { version, status, reason: reason.to_string(), headers, body }))
        } else {
            let mut parts = start_line.split(' ');
            let (Some(method), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(ParseError::BadStartLine);
            };
            let method = Method::parse(method).ok_or(ParseError::BadStartLine)?;
            let version = Version::parse(version).ok_or(ParseError::BadStartLine)?;
            let uri = Uri::parse(uri).map_err(|_| ParseError::BadRequestUri)?;
            Ok(Message::Request(Request { method, uri, version, headers, body }))
        }
    }

    /// Parses from a byte slice (copies it once).
    pub fn parse_slice(buf: &[u8]) -> Result<Message, ParseError> {
        Self::parse(Bytes::copy_from_slice(buf))
    }

    /// The headers of either kind.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// The body of either kind.
    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    /// Serializes to wire bytes.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

fn find_crlfcrlf(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 3 < b.len() {
        // Step on the '\n' positions: a CRLFCRLF has '\n' at i+1 and i+3.
        if b[i + 3] != b'\n' {
            i += if b[i + 3] == b'\r' { 1 } else { 4 };
            continue;
        }
        if b[i] == b'\r' && b[i + 1] == b'\n' && b[i + 2] == b'\r' {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Splits the header section (`text` starts at `offset` in `buf`) into
/// headers, unfolding continuation lines. Returns the Content-Length too.
fn parse_headers(buf: &Bytes, _start: usize, text: &str, offset: usize) -> Result<(Headers, Option<usize>), ParseError> {
    let mut headers = Headers::new();
    let mut content_length = None;
    // The header being built: name, value range in `buf`, or an unfolded copy.
    let mut current: Option<(HeaderName, usize, usize, Option<String>)> = None;
    let mut pos = 0;
    let mut finish = |cur: Option<(HeaderName, usize, usize, Option<String>)>, headers: &mut Headers| -> Result<(), ParseError> {
        if let Some((name, a, b, folded)) = cur {
            let value = match folded {
                Some(s) => Bytes::from(s),
                None => buf.slice(a..b),
            };
            if name == HeaderName::ContentLength {
                let v = std::str::from_utf8(&value).map_err(|_| ParseError::BadContentLength)?;
                if content_length.is_some() || v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ParseError::BadContentLength);
                }
                content_length = Some(v.parse::<usize>().map_err(|_| ParseError::BadContentLength)?);
            }
            headers.0.push(Header { name, value });
        }
        Ok(())
    };
    while pos < text.len() {
        let end = text[pos..].find("\r\n").map_or(text.len(), |e| pos + e);
        let line = &text[pos..end];
        if line.as_bytes().first().copied().is_some_and(is_lws) {
            let (_, a, b, folded) = current.as_mut().ok_or(ParseError::BadHeaderLine)?;
            let cont = trim_lws(line);
            if !cont.is_empty() {
                let s = folded.get_or_insert_with(|| text[*a - offset..*b - offset].to_string());
                if !s.is_empty() {
                    s.push(' ');
                }
                s.push_str(cont);
            }
        } else {
            finish(current.take(), &mut headers)?;
            let colon = line.find(':').ok_or(ParseError::BadHeaderLine)?;
            let name = trim_lws(&line[..colon]);
            if !is_token(name) {
                return Err(ParseError::BadHeaderLine);
            }
            let raw_value = &line[colon + 1..];
            let value = trim_lws(raw_value);
            let value_start = offset + pos + colon + 1 + (raw_value.len() - raw_value.trim_start_matches([' ', '\t']).len());
            let name_start = offset + pos + (line.len() - line.trim_start_matches([' ', '\t']).len());
            let name = HeaderName::known(name.as_bytes())
                .unwrap_or_else(|| HeaderName::Other(buf.slice(name_start..name_start + name.len())));
            current = Some((name, value_start, value_start + value.len(), None));
        }
        pos = end + 2;
    }
    finish(current.take(), &mut headers)?;
    Ok((headers, content_length))
}

fn write_headers(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for h in headers.iter() {
        if h.name == HeaderName::ContentLength {
            continue;
        }
        out.extend_from_slice(h.name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(&h.value);
        out.extend_from_slice(b"\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    out.extend_from_slice(body);
}

fn estimated_len(headers: &Headers, body: &[u8]) -> usize {
    128 + body.len() + headers.iter().map(|h| h.value.len() + 24).sum::<usize>()
}

impl Request {
    /// A request with no headers and an empty body.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request { method, uri, version: Version::Sip2, headers: Headers::new(), body: Bytes::new() }
    }

    /// Serializes to wire bytes, with a Content-Length matching the body.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(estimated_len(&self.headers, &self.body));
        let _ = write!(out, "{} {} {}\r\n", self.method, self.uri, self.version.as_str());
        write_headers(&mut out, &self.headers, &self.body);
        Bytes::from(out)
    }
}

impl Response {
    /// A response with the canonical reason phrase and no headers.
    pub fn new(status: StatusCode) -> Response {
        Response {
            version: Version::Sip2,
            status,
            reason: status.canonical_reason().to_string(),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Serializes to wire bytes, with a Content-Length matching the body.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(estimated_len(&self.headers, &self.body));
        let _ = write!(out, "{} {} {}\r\n", self.version.as_str(), self.status, self.reason);
        write_headers(&mut out, &self.headers, &self.body);
        Bytes::from(out)
    }
}

impl fmt::Display for Message {
    /// The wire form, with a non-UTF-8 body shown lossily (for logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &str = "REGISTER sip:example.com SIP/2.0\r\n\
        Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bK776asdhds\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:alice@example.com>\r\n\
        From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710\r\n\
        CSeq: 1 REGISTER\r\n\
        Contact: <sip:x@abc.invalid;transport=ws>;+sip.instance=\"<urn:uuid:1>\";expires=600\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn parses_a_request() {
        let Message::Request(r) = Message::parse(Bytes::from_static(REGISTER.as_bytes())).expect("parses") else {
            panic!("not a request")
        };
        assert_eq!(r.method, Method::Register);
        assert_eq!(r.headers.get(&HeaderName::CallId), Some("a84b4c76e66710"));
        assert_eq!(r.headers.len(), 8);
        assert!(r.body.is_empty());
    }

    #[test]
    fn compact_names_folding_and_space_before_colon() {
        let raw = "SIP/2.0 180 Ringing\r\nv : SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\ni:abc\r\nSubject: a\r\n  b\r\n\tc\r\nX-Custom: keep Me\r\nl: 5\r\n\r\nhelloEXTRA";
        let Message::Response(r) = Message::parse_slice(raw.as_bytes()).expect("parses") else { panic!("not a response") };
        assert_eq!(r.status.as_u16(), 180);
        assert_eq!(r.headers.get(&HeaderName::Via), Some("SIP/2.0/WS x.invalid;branch=z9hG4bK1"));
        assert_eq!(r.headers.get(&HeaderName::CallId), Some("abc"));
        assert_eq!(r.headers.get(&HeaderName::Subject), Some("a b c"));
        assert_eq!(r.headers.get(&HeaderName::new("x-custom")), Some("keep Me"));
        assert_eq!(&r.body[..], b"hello");
    }

    #[test]
    fn serializes_with_reason_spaces_and_content_length() {
        let mut r = Response::new(StatusCode::new(488).expect("valid code"));
        r.headers.push(HeaderName::CallId, "x");
        r.body = Bytes::from_static(b"v=0\r\n");
        let text = String::from_utf8(r.to_bytes().to_vec()).expect("utf8");
        assert_eq!(text, "SIP/2.0 488 Not Acceptable Here\r\nCall-ID: x\r\nContent-Length: 5\r\n\r\nv=0\r\n");
    }

    #[test]
    fn framing_errors() {
        assert_eq!(Message::parse_slice(b"\r\n\r\n"), Err(ParseError::Empty));
        assert_eq!(Message::parse_slice(b"OPTIONS sip:x SIP/2.0\r\nCall-ID: a\r\n"), Err(ParseError::NoHeaderEnd));
        assert!(matches!(
            Message::parse_slice(b"OPTIONS sip:x SIP/2.0\r\nl: 10\r\n\r\nab"),
            Err(ParseError::TruncatedBody { declared: 10, available: 2 })
        ));
        assert_eq!(Message::parse_slice(b"OPTIONS sip:x SIP/2.0\r\nl: -1\r\n\r\n"), Err(ParseError::BadContentLength));
        assert_eq!(Message::parse_slice(b"OPTIONS sip:x SIP/2.0\r\nl: 0\r\nl: 0\r\n\r\n"), Err(ParseError::BadContentLength));
        assert_eq!(Message::parse_slice(b"OPTIONS  sip:x SIP/2.0\r\n\r\n"), Err(ParseError::BadStartLine));
        assert_eq!(Message::parse_slice(b"SIP/2.0 1000 Big\r\n\r\n"), Err(ParseError::BadStatusCode));
        assert_eq!(Message::parse_slice(b"OPTIONS sip:x SIP/2.0\r\nno colon\r\n\r\n"), Err(ParseError::BadHeaderLine));
    }
}
