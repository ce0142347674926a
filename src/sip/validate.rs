//! What a user agent checks before acting on a parsed message (RFC 3261
//! §8.2 for requests, §8.1.3.3 for responses), and the response it owes
//! the sender when a request fails a check.
//!
//! Parsing ([`super::Message::parse`]) only frames the message; these checks
//! type the headers a UA relies on, so a request with a broken Via or CSeq
//! gets a 400 built from its raw headers instead of being half-processed.

use super::header::{CSeq, Contact, ContentType, Via};
use super::message::{HeaderName, Method, Request, Response, StatusCode, Version};
use super::uri::Uri;

/// What this user agent supports, for the checks that depend on it.
#[derive(Clone, Debug)]
pub struct Capabilities {
    /// Methods we accept (others get 405 when known, 501 when unknown).
    pub methods: Vec<Method>,
    /// Option tags we support (a `Require` with others gets 420).
    pub extensions: Vec<&'static str>,
    /// Body types we accept (others get 415).
    pub content_types: Vec<&'static str>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            methods: vec![
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Cancel,
                Method::Options,
                Method::Info,
                Method::Update,
                Method::Refer,
                Method::Notify,
                Method::Message,
            ],
            extensions: vec!["timer", "replaces", "outbound", "path", "gruu", "norefersub"],
            content_types: vec![
                "application/sdp",
                "application/dtmf-relay",
                "application/dtmf",
                "message/sipfrag",
                "text/plain",
            ],
        }
    }
}

/// A request we refuse, and what the refusal must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The status to answer with.
    pub status: StatusCode,
    /// Why, for logs (never contains message content).
    pub why: &'static str,
    /// Headers the response must carry (Allow, Unsupported, Accept).
    pub headers: Vec<(HeaderName, String)>,
}

impl Rejection {
    fn new(code: u16, why: &'static str) -> Rejection {
        // Codes used here are all within 100..=699.
        let status = StatusCode::new(code).unwrap_or(StatusCode::BAD_REQUEST);
        Rejection { status, why, headers: Vec::new() }
    }

    fn with(mut self, name: HeaderName, value: String) -> Rejection {
        self.headers.push((name, value));
        self
    }
}

/// Why a received response is discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("response discarded: {0}")]
pub struct ResponseDefect(pub &'static str);

/// Headers that must appear exactly once in a request or response.
const SINGLE: [(HeaderName, &str); 4] = [
    (HeaderName::From, "missing or repeated From"),
    (HeaderName::To, "missing or repeated To"),
    (HeaderName::CallId, "missing or repeated Call-ID"),
    (HeaderName::CSeq, "missing or repeated CSeq"),
];

fn check_common(headers: &super::Headers) -> Result<CSeq, &'static str> {
    for (name, why) in &SINGLE {
        if headers.count(name) != 1 {
            return Err(why);
        }
    }
    if headers.count(&HeaderName::MaxForwards) > 1 {
        return Err("repeated Max-Forwards");
    }
    let vias = headers.typed_all::<Via>().map_err(|_| "malformed Via")?;
    if vias.is_empty() {
        return Err("no Via");
    }
    for name in [HeaderName::From, HeaderName::To] {
        headers.name_addr(&name).transpose().map_err(|_| "malformed From or To")?;
    }
    headers.typed_all::<Contact>().map_err(|_| "malformed Contact")?;
    let call_id = headers.get(&HeaderName::CallId).unwrap_or("");
    if call_id.is_empty() || call_id.contains([' ', '\t']) {
        return Err("malformed Call-ID");
    }
    headers.typed::<CSeq>().ok_or("missing CSeq")?.map_err(|_| "malformed CSeq")
}

/// Checks a received request; `Err` carries the response to send.
pub fn check_request(req: &Request, caps: &Capabilities) -> Result<(), Rejection> {
    if req.version != Version::Sip2 {
        return Err(Rejection::new(505, "unsupported SIP version"));
    }
    let cseq = check_common(&req.headers).map_err(|why| Rejection::new(400, why))?;
    if !caps.methods.contains(&req.method) {
        let allow = caps.methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
        let code = if matches!(req.method, Method::Extension(_)) { 501 } else { 405 };
        return Err(Rejection::new(code, "method not supported").with(HeaderName::Allow, allow));
    }
    if cseq.method != req.method {
        return Err(Rejection::new(400, "CSeq method differs from the request method"));
    }
    match &req.uri {
        Uri::Sip(u) if !u.headers.is_empty() => return Err(Rejection::new(400, "headers in the Request-URI")),
        Uri::Sip(_) | Uri::Tel(_) => {}
        Uri::Other { .. } => return Err(Rejection::new(416, "Request-URI scheme not supported")),
    }
    let required = req.headers.tokens(&HeaderName::Require).map_err(|_| Rejection::new(400, "malformed Require"))?;
    let unsupported: Vec<_> = required.into_iter().filter(|t| !caps.extensions.contains(&t.as_str())).collect();
    if !unsupported.is_empty() && req.method != Method::Ack && req.method != Method::Cancel {
        return Err(Rejection::new(420, "required extension not supported")
            .with(HeaderName::Unsupported, unsupported.join(", ")));
    }
    if !req.body.is_empty() {
        let accepted = || caps.content_types.join(", ");
        match req.headers.typed::<ContentType>() {
            Some(Ok(ct))
                if caps.content_types.contains(&ct.media_type.as_str()) || ct.media_type.starts_with("multipart/") => {}
            Some(Ok(_)) | None => {
                return Err(Rejection::new(415, "body type not supported").with(HeaderName::Accept, accepted()));
            }
            Some(Err(_)) => return Err(Rejection::new(400, "malformed Content-Type")),
        }
    }
    if matches!(req.method, Method::Invite | Method::Options) && req.headers.count(&HeaderName::Accept) > 0 {
        let accept = req.headers.get_all(&HeaderName::Accept).collect::<Vec<_>>().join(",");
        let takes_sdp = accept.split(',').any(|t| {
            let t = t.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            t.is_empty() || t == "application/sdp" || t == "application/*" || t == "*/*"
        });
        if !takes_sdp {
            return Err(Rejection::new(406, "Accept excludes application/sdp"));
        }
    }
    Ok(())
}

/// Checks a received response; a defective one is discarded.
pub fn check_response(resp: &Response) -> Result<(), ResponseDefect> {
    if resp.version != Version::Sip2 {
        return Err(ResponseDefect("unsupported SIP version"));
    }
    check_common(&resp.headers).map_err(ResponseDefect)?;
    // RFC 3261 §8.1.3.3: a response with more than one Via is not for us.
    if resp.headers.typed_all::<Via>().map_or(0, |v| v.len()) > 1 {
        return Err(ResponseDefect("more than one Via"));
    }
    if let Some(Err(_)) = resp.headers.typed::<super::header::RetryAfter>() {
        return Err(ResponseDefect("malformed Retry-After"));
    }
    Ok(())
}

/// Builds the response a UAS owes for `req` with `status`: Via, From, To,
/// Call-ID and CSeq copied verbatim (RFC 3261 §8.2.6.2). The caller adds a
/// To tag where the response creates or belongs to a dialog.
pub fn response_to(req: &Request, status: StatusCode) -> Response {
    let mut resp = Response::new(status);
    for h in req.headers.iter() {
        if matches!(h.name, HeaderName::Via | HeaderName::From | HeaderName::To | HeaderName::CallId | HeaderName::CSeq)
        {
            resp.headers.push(h.name.clone(), h.value.clone());
        }
    }
    resp
}

/// The response for a rejected request.
pub fn rejection_response(req: &Request, rejection: &Rejection) -> Response {
    let mut resp = response_to(req, rejection.status);
    for (name, value) in &rejection.headers {
        resp.headers.push(name.clone(), value.clone());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Message;

    fn request(raw: &str) -> Request {
        match Message::parse_slice(raw.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    const HEAD: &str =
        "Via: SIP/2.0/WS a.invalid;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c1\r\n";

    #[test]
    fn accepts_a_plain_options() {
        let r = request(&format!("OPTIONS sip:b@x SIP/2.0\r\n{HEAD}CSeq: 1 OPTIONS\r\n\r\n"));
        assert_eq!(check_request(&r, &Capabilities::default()), Ok(()));
    }

    #[test]
    fn a_response_with_two_vias_is_discarded() {
        let raw = format!(
            "SIP/2.0 200 OK\r\n{HEAD}Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK2\r\nCSeq: 1 OPTIONS\r\n\r\n"
        );
        let Ok(Message::Response(r)) = Message::parse_slice(raw.as_bytes()) else { panic!("not a response") };
        assert_eq!(check_response(&r), Err(ResponseDefect("more than one Via")));
        let one = raw.replace("Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK2\r\n", "");
        let Ok(Message::Response(r)) = Message::parse_slice(one.as_bytes()) else { panic!("not a response") };
        assert_eq!(check_response(&r), Ok(()));
    }

    #[test]
    fn rejections_carry_the_right_status_and_headers() {
        let caps = Capabilities::default();
        let r = request(&format!("FOO sip:b@x SIP/2.0\r\n{HEAD}CSeq: 1 FOO\r\n\r\n"));
        let rej = check_request(&r, &caps).expect_err("unknown method");
        assert_eq!(rej.status.as_u16(), 501);
        assert_eq!(rej.headers[0].0, HeaderName::Allow);
        let r = request(&format!("OPTIONS sip:b@x SIP/2.0\r\n{HEAD}CSeq: 1 INVITE\r\n\r\n"));
        assert_eq!(check_request(&r, &caps).expect_err("mismatch").status.as_u16(), 400);
        let r = request(&format!("OPTIONS sip:b@x SIP/2.0\r\n{HEAD}CSeq: 1 OPTIONS\r\nRequire: foo, timer\r\n\r\n"));
        let rej = check_request(&r, &caps).expect_err("420");
        assert_eq!((rej.status.as_u16(), rej.headers[0].1.as_str()), (420, "foo"));
        let resp = rejection_response(&r, &rej);
        assert_eq!(resp.headers.get(&HeaderName::CallId), Some("c1"));
        assert_eq!(resp.headers.get(&HeaderName::Unsupported), Some("foo"));
    }
}
