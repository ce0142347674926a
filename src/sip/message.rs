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
use super::text::{is_lws, is_token, is_token_byte, trim_lws};
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
    /// 488 Not Acceptable Here
    pub const NOT_ACCEPTABLE_HERE: StatusCode = StatusCode(488);
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
    /// 513 Message Too Large
    pub const MESSAGE_TOO_LARGE: StatusCode = StatusCode(513);
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
            513 => "Message Too Large",
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
        // Dispatch on length and first letter; one comparison at most.
        Some(match (n.len(), n.first()?.to_ascii_lowercase()) {
            (1, b'v') => Via,
            (1, b'f') => From,
            (1, b't') => To,
            (1, b'i') => CallId,
            (1, b'm') => Contact,
            (1, b'l') => ContentLength,
            (1, b'c') => ContentType,
            (1, b'e') => ContentEncoding,
            (1, b'k') => Supported,
            (1, b'x') => SessionExpires,
            (1, b'r') => ReferTo,
            (1, b'b') => ReferredBy,
            (1, b'o') => Event,
            (1, b'u') => AllowEvents,
            (1, b's') => Subject,
            (2, b't') if eq("To") => To,
            (3, b'v') if eq("Via") => Via,
            (4, b'f') if eq("From") => From,
            (4, b'c') if eq("CSeq") => CSeq,
            (4, b'd') if eq("Date") => Date,
            (5, b'r') if eq("Route") => Route,
            (5, b'a') if eq("Allow") => Allow,
            (5, b'e') if eq("Event") => Event,
            (6, b'a') if eq("Accept") => Accept,
            (6, b'm') if eq("Min-SE") => MinSe,
            (6, b'r') if eq("Reason") => Reason,
            (6, b's') if eq("Server") => Server,
            (7, b'c') if eq("Call-ID") => CallId,
            (7, b'c') if eq("Contact") => Contact,
            (7, b'e') if eq("Expires") => Expires,
            (7, b'r') if eq("Require") => Require,
            (7, b's') if eq("Subject") => Subject,
            (8, b'r') if eq("Refer-To") => ReferTo,
            (8, b'r') if eq("Replaces") => Replaces,
            (9, b's') if eq("Supported") => Supported,
            (10, b'u') if eq("User-Agent") => UserAgent,
            (11, b'm') if eq("Min-Expires") => MinExpires,
            (11, b'r') if eq("Referred-By") => ReferredBy,
            (11, b'r') if eq("Retry-After") => RetryAfter,
            (11, b'u') if eq("Unsupported") => Unsupported,
            (12, b'a') if eq("Allow-Events") => AllowEvents,
            (12, b'c') if eq("Content-Type") => ContentType,
            (12, b'm') if eq("Max-Forwards") => MaxForwards,
            (12, b'r') if eq("Record-Route") => RecordRoute,
            (13, b'a') if eq("Authorization") => Authorization,
            (13, b'p') if eq("Proxy-Require") => ProxyRequire,
            (14, b'c') if eq("Content-Length") => ContentLength,
            (15, b's') if eq("Session-Expires") => SessionExpires,
            (16, b'c') if eq("Content-Encoding") => ContentEncoding,
            (16, b'w') if eq("WWW-Authenticate") => WwwAuthenticate,
            (18, b'p') if eq("Proxy-Authenticate") => ProxyAuthenticate,
            (18, b's') if eq("Subscription-State") => SubscriptionState,
            (19, b'p') if eq("Proxy-Authorization") => ProxyAuthorization,
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

/// One header line: a name and its (unfolded) value. `Debug` redacts the
/// values of Authorization and Proxy-Authorization (digest responses).
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// The name.
    pub name: HeaderName,
    /// The value, trimmed of surrounding white space, valid UTF-8.
    pub value: Bytes,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = matches!(self.name, HeaderName::Authorization | HeaderName::ProxyAuthorization);
        let value = if secret { "<redacted>" } else { self.value_str() };
        f.debug_struct("Header").field("name", &self.name).field("value", &value).finish()
    }
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
    /// True when `body` is non-empty and Content-Type says `application/sdp`.
    pub fn carries_sdp(&self, body: &[u8]) -> bool {
        !body.is_empty()
            && self
                .typed::<super::header::ContentType>()
                .is_some_and(|ct| ct.is_ok_and(|ct| ct.media_type == "application/sdp"))
    }

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

/// Why a buffer is not a SIP message. Such input is dropped (and logged),
/// except a request whose head is well formed but whose framing is not (a
/// bad Content-Length, over the size limit): that one is answered from its
/// head ([`ParseError::answer_status`], [`Message::request_head`]).
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

impl ParseError {
    /// The status a request refused this way is owed when its head can be
    /// read ([`Message::request_head`]): 400 for a malformed Content-Length
    /// or a body shorter than it declares (RFC 3261 §18.3), 513 for a
    /// message over [`MAX_MESSAGE_SIZE`] (§21.5.14). `None` for errors in
    /// the head itself, which leave nothing to answer.
    pub fn answer_status(&self) -> Option<StatusCode> {
        match self {
            ParseError::BadContentLength | ParseError::TruncatedBody { .. } => Some(StatusCode::BAD_REQUEST),
            ParseError::TooLarge => Some(StatusCode::MESSAGE_TOO_LARGE),
            _ => None,
        }
    }
}

/// How much of a buffer makes the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// Head and body, the body as long as Content-Length says.
    Whole,
    /// The head only: Content-Length is neither checked nor applied.
    HeadOnly,
}

impl Message {
    /// Parses one message from `buf` (one WebSocket frame's payload).
    /// Leading CRLFs are skipped; bytes after the body that Content-Length
    /// declares are ignored (RFC 3261 §18.3).
    pub fn parse(buf: Bytes) -> Result<Message, ParseError> {
        if buf.len() > MAX_MESSAGE_SIZE {
            return Err(ParseError::TooLarge);
        }
        Self::parse_framed(buf, Framing::Whole)
    }

    /// Parses `buf` as [`Framing`] says.
    fn parse_framed(buf: Bytes, framing: Framing) -> Result<Message, ParseError> {
        let start = buf.iter().position(|&b| b != b'\r' && b != b'\n').ok_or(ParseError::Empty)?;
        // One pass over the head: the header lines up to the empty line.
        // Errors come in this order: no end, not UTF-8, a bad header line.
        let line_end = find_crlf(&buf, start).ok_or(ParseError::NoHeaderEnd)?;
        let (head_end, parsed) = parse_headers(&buf, line_end + 2, framing)?;
        let head = std::str::from_utf8(&buf[start..head_end + 2]).map_err(|_| ParseError::NotUtf8)?;
        let (headers, content_length) = parsed?;
        let body_start = head_end + 4;
        let start_line = &head[..line_end - start];

        let available = buf.len() - body_start;
        let body = match content_length {
            _ if framing == Framing::HeadOnly => Bytes::new(),
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
            // Method SP Request-URI SP SIP-Version, read liberally as RFC 4475
            // §3.1.2.7-10 allows: extra or trailing SP, LWS next to a URI
            // separator, and <> around the URI are ignored. None of them is
            // kept: serialization writes the canonical form.
            let (method, rest) = start_line.split_once(' ').ok_or(ParseError::BadStartLine)?;
            let (uri, version) = rest.trim_end_matches(' ').rsplit_once(' ').ok_or(ParseError::BadStartLine)?;
            let method = Method::parse(method).ok_or(ParseError::BadStartLine)?;
            let version = Version::parse(version).ok_or(ParseError::BadStartLine)?;
            let uri = request_uri(uri).ok_or(ParseError::BadRequestUri)?;
            Ok(Message::Request(Request { method, uri, version, headers, body }))
        }
    }

    /// The request head of a frame that [`Message::parse`] refused for its
    /// framing ([`ParseError::answer_status`]: a bad Content-Length, a body
    /// shorter than declared, a message over the size limit), read from its
    /// first [`MAX_MESSAGE_SIZE`] bytes with Content-Length and body
    /// ignored, so that the sender can be answered from its Via, From, To,
    /// Call-ID and CSeq. `None` when that head is not a readable request.
    pub fn request_head(buf: &Bytes) -> Option<Request> {
        let head = buf.slice(..buf.len().min(MAX_MESSAGE_SIZE));
        match Self::parse_framed(head, Framing::HeadOnly) {
            Ok(Message::Request(req)) => Some(req),
            _ => None,
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

/// The Request-URI from the text between method and version: LWS is
/// dropped where it touches a separator (`sip:u@x; lr`), and one pair of
/// enclosing `<>` is removed. Other embedded LWS is malformed.
fn request_uri(text: &str) -> Option<Uri> {
    const SEP: [char; 6] = [';', '?', '&', '=', ':', '@'];
    let text = text.trim_matches([' ', '\t']);
    let text = text.strip_prefix('<').and_then(|t| t.strip_suffix('>')).map_or(text, |t| t.trim_matches([' ', '\t']));
    if !text.contains([' ', '\t']) {
        return Uri::parse(text).ok();
    }
    let mut joined = String::with_capacity(text.len());
    let mut prev: Option<&str> = None;
    for word in text.split([' ', '\t']).filter(|w| !w.is_empty()) {
        if prev.is_some_and(|p| !p.ends_with(SEP) && !word.starts_with(SEP)) {
            return None;
        }
        joined.push_str(word);
        prev = Some(word);
    }
    Uri::parse(&joined).ok()
}

/// Index of the first `needle` in `hay[from..]`, eight bytes at a time.
fn find_byte(hay: &[u8], from: usize, needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let rest = hay.get(from..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut base = from;
    for c in &mut chunks {
        let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ pattern;
        // The lowest byte flagged here is the first zero byte of `word`.
        let zero = word.wrapping_sub(LO) & !word & HI;
        if zero != 0 {
            return Some(base + (zero.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks.remainder().iter().position(|&b| b == needle).map(|i| base + i)
}

/// Index of the first CRLF at or after `from`.
fn find_crlf(b: &[u8], mut from: usize) -> Option<usize> {
    let start = from;
    loop {
        let nl = find_byte(b, from, b'\n')?;
        if nl > start && b[nl - 1] == b'\r' {
            return Some(nl - 1);
        }
        from = nl + 1;
    }
}

/// `a..e` without the LWS at either end.
fn trim_range(b: &[u8], mut a: usize, mut e: usize) -> (usize, usize) {
    while a < e && is_lws(b[a]) {
        a += 1;
    }
    while e > a && is_lws(b[e - 1]) {
        e -= 1;
    }
    (a, e)
}

/// The headers and the Content-Length, or the first malformed line's error.
type ParsedHeaders = Result<(Headers, Option<usize>), ParseError>;

/// Reads the header lines from `pos` (just after the start line) up to the
/// empty line, unfolding continuation lines. Returns where the CRLFCRLF that
/// ends the head starts, and the headers with the Content-Length or the
/// first malformed line's error. `NoHeaderEnd` is the only direct error:
/// the caller checks the head's encoding before reporting a bad line.
fn parse_headers(buf: &Bytes, mut pos: usize, framing: Framing) -> Result<(usize, ParsedHeaders), ParseError> {
    let bytes = &buf[..];
    let mut head = HeadBuilder {
        headers: Headers(Vec::with_capacity(16)),
        head_only: framing == Framing::HeadOnly,
        ..HeadBuilder::default()
    };
    let mut error = None;
    loop {
        let end = find_crlf(bytes, pos).ok_or(ParseError::NoHeaderEnd)?;
        if end == pos {
            break;
        }
        if error.is_none() {
            error = head.line(buf, pos, end).err();
        }
        pos = end + 2;
    }
    if error.is_none() {
        error = head.finish(buf).err();
    }
    let parsed = match error {
        Some(e) => Err(e),
        None => Ok((head.headers, head.content_length)),
    };
    Ok((pos - 2, parsed))
}

#[derive(Default)]
struct HeadBuilder {
    headers: Headers,
    content_length: Option<usize>,
    /// The header being built: its name and value range in the buffer.
    current: Option<(HeaderName, usize, usize)>,
    /// Its value unfolded, once a continuation line is seen.
    folded: Option<Vec<u8>>,
    /// Content-Length is not read ([`Framing::HeadOnly`]).
    head_only: bool,
}

impl HeadBuilder {
    /// One header line (`pos..end`, CRLF excluded, not empty).
    fn line(&mut self, buf: &Bytes, pos: usize, end: usize) -> Result<(), ParseError> {
        let bytes = &buf[..];
        if is_lws(bytes[pos]) {
            let Some((_, a, b)) = &self.current else { return Err(ParseError::BadHeaderLine) };
            let (ca, cb) = trim_range(bytes, pos, end);
            if ca < cb {
                let s = self.folded.get_or_insert_with(|| bytes[*a..*b].to_vec());
                if !s.is_empty() {
                    s.push(b' ');
                }
                s.extend_from_slice(&bytes[ca..cb]);
            }
            return Ok(());
        }
        self.finish(buf)?;
        // token *(SP / HTAB) ":" value
        let mut i = pos;
        while i < end && is_token_byte(bytes[i]) {
            i += 1;
        }
        let name_end = i;
        while i < end && is_lws(bytes[i]) {
            i += 1;
        }
        if name_end == pos || i == end || bytes[i] != b':' {
            return Err(ParseError::BadHeaderLine);
        }
        let (a, b) = trim_range(bytes, i + 1, end);
        let name =
            HeaderName::known(&bytes[pos..name_end]).unwrap_or_else(|| HeaderName::Other(buf.slice(pos..name_end)));
        self.current = Some((name, a, b));
        Ok(())
    }

    /// Adds the header being built, if any.
    fn finish(&mut self, buf: &Bytes) -> Result<(), ParseError> {
        let Some((name, a, b)) = self.current.take() else { return Ok(()) };
        let value = match self.folded.take() {
            Some(s) => Bytes::from(s),
            None => buf.slice(a..b),
        };
        if name == HeaderName::ContentLength && !self.head_only {
            let v = &value[..];
            if self.content_length.is_some() || v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
                return Err(ParseError::BadContentLength);
            }
            self.content_length = Some(v.iter().fold(0, |n, d| n * 10 + usize::from(d - b'0')));
        }
        self.headers.0.push(Header { name, value });
        Ok(())
    }
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
    /// The reason phrase as received, or the canonical one when it was empty.
    pub fn reason_phrase(&self) -> &str {
        if self.reason.is_empty() { self.status.canonical_reason() } else { &self.reason }
    }

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
    fn debug_redacts_credentials() {
        let mut h = Headers::new();
        h.push(HeaderName::Authorization, "Digest username=\"a\", response=\"0123abcd\"");
        h.push(HeaderName::ProxyAuthorization, "Digest response=\"4567ef\"");
        h.push(HeaderName::CallId, "visible");
        let text = format!("{h:?}");
        assert!(!text.contains("0123abcd") && !text.contains("4567ef"), "{text}");
        assert!(text.contains("visible") && text.contains("<redacted>"), "{text}");
    }

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
        let Message::Response(r) = Message::parse_slice(raw.as_bytes()).expect("parses") else {
            panic!("not a response")
        };
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
    fn byte_search_matches_a_plain_scan() {
        let hay = b"abc\r\ndefghijklmnop\nq\r\n\r\nrst\n\n\r\r\n0123456789abcdef\n";
        for needle in [b'\n', b'\r', b'a', b'f', b'z', 0] {
            for from in 0..=hay.len() + 1 {
                let plain = hay.get(from..).and_then(|h| h.iter().position(|&b| b == needle)).map(|i| i + from);
                assert_eq!(find_byte(hay, from, needle), plain, "{needle} from {from}");
            }
        }
        assert_eq!(find_crlf(b"a\nb\r\n", 0), Some(3));
        assert_eq!(find_crlf(b"\r\n", 1), None);
        assert_eq!(find_crlf(b"a\rb", 0), None);
    }

    #[test]
    fn errors_keep_their_precedence() {
        // No end beats a bad line; a bad encoding beats a bad line.
        assert_eq!(Message::parse_slice(b"OPTIONS sip:x SIP/2.0\r\nno colon\r\n"), Err(ParseError::NoHeaderEnd));
        assert_eq!(Message::parse_slice(b"OPTIONS sip:x SIP/2.0\r\nno colon\xff\r\n\r\n"), Err(ParseError::NotUtf8));
        // A bad line beats a bad start line.
        assert_eq!(Message::parse_slice(b"BAD\r\nno colon\r\n\r\n"), Err(ParseError::BadHeaderLine));
        assert_eq!(Message::parse_slice(b"BAD\r\n\r\n"), Err(ParseError::BadStartLine));
        // A folded line with nothing to continue.
        assert_eq!(Message::parse_slice(b"OPTIONS sip:x SIP/2.0\r\n x: y\r\n\r\n"), Err(ParseError::BadHeaderLine));
        // The body after the first empty line, however the head ends.
        let Ok(m) = Message::parse_slice(b"\r\nSIP/2.0 200 OK\r\nX: a\r\r\n\r\nbody") else { panic!("parses") };
        assert_eq!((m.headers().get(&HeaderName::new("x")), &m.body()[..]), (Some("a\r"), &b"body"[..]));
    }

    #[test]
    fn liberal_request_line() {
        // RFC 4475 §3.1.2.7-10: <> around the URI, LWS in it, extra and
        // trailing SP are ignored, and not re-sent.
        for (raw, line) in [
            ("INVITE <sip:u@x> SIP/2.0", "INVITE sip:u@x SIP/2.0"),
            ("INVITE sip:u@x; lr SIP/2.0", "INVITE sip:u@x;lr SIP/2.0"),
            ("OPTIONS  sip:x  SIP/2.0", "OPTIONS sip:x SIP/2.0"),
            ("OPTIONS sip:x SIP/2.0  ", "OPTIONS sip:x SIP/2.0"),
        ] {
            let msg = Message::parse_slice(format!("{raw}\r\nCall-ID: a\r\n\r\n").as_bytes()).expect(raw);
            assert!(msg.to_bytes().starts_with(format!("{line}\r\n").as_bytes()), "{raw}");
        }
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
        assert_eq!(
            Message::parse_slice(b"OPTIONS sip:x SIP/2.0\r\nl: 0\r\nl: 0\r\n\r\n"),
            Err(ParseError::BadContentLength)
        );
        assert_eq!(Message::parse_slice(b"OPTIONS sip:x\r\n\r\n"), Err(ParseError::BadStartLine));
        assert_eq!(Message::parse_slice(b" OPTIONS sip:x SIP/2.0\r\n\r\n"), Err(ParseError::BadStartLine));
        assert_eq!(Message::parse_slice(b"OPTIONS sip:a b@x SIP/2.0\r\n\r\n"), Err(ParseError::BadRequestUri));
        assert_eq!(Message::parse_slice(b"SIP/2.0 1000 Big\r\n\r\n"), Err(ParseError::BadStatusCode));
        assert_eq!(Message::parse_slice(b"OPTIONS sip:x SIP/2.0\r\nno colon\r\n\r\n"), Err(ParseError::BadHeaderLine));
    }
}
