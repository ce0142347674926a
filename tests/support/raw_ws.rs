//! A minimal raw SIP-over-WebSocket client for scenarios our `Phone` never
//! produces (an INVITE without SDP, ...): it writes SIP text by hand, reads
//! frames, and parses just enough of what comes back (start line, headers
//! with compact forms, body). Digest answers use
//! `webphone::dialog::auth::{Challenge, DigestClient}`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webphone::dialog::auth::{Challenge, DigestClient};

use super::TIMEOUT;

/// A fresh random token (hex), for tags, branches and Call-IDs.
pub fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A fresh RFC 3261 branch.
pub fn branch() -> String {
    format!("z9hG4bK{}", token())
}

/// One parsed SIP message.
#[derive(Clone, Debug)]
pub struct SipMsg {
    /// `SIP/2.0 200 OK` or `INVITE sip:... SIP/2.0`.
    pub start: String,
    /// Headers in order, names as received.
    pub headers: Vec<(String, String)>,
    /// The body (text).
    pub body: String,
}

fn long_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let long = match lower.as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        "k" => "supported",
        "x" => "session-expires",
        other => other,
    };
    long.to_string()
}

impl SipMsg {
    /// Parses one message; `None` when it is not SIP.
    pub fn parse(text: &str) -> Option<SipMsg> {
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let start = lines.next()?.to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // folded continuation
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        Some(SipMsg { start, headers, body: body.to_string() })
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        let rest = self.start.strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        if self.start.starts_with("SIP/2.0 ") { None } else { self.start.split(' ').next() }
    }

    /// Every value of header `name` (long or compact form, any case),
    /// comma-separated lists not split.
    pub fn all(&self, name: &str) -> Vec<&str> {
        let want = long_name(name);
        self.headers.iter().filter(|(n, _)| long_name(n) == want).map(|(_, v)| v.as_str()).collect()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> (u32, String) {
        let v = self.header("CSeq").unwrap_or("");
        let mut it = v.split_whitespace();
        let n = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        (n, it.next().unwrap_or("").to_string())
    }

    /// The `tag` parameter of the To header.
    pub fn to_tag(&self) -> Option<String> {
        tag_param(self.header("To")?)
    }

    /// The URI inside `<...>` of the first Contact.
    pub fn contact_uri(&self) -> Option<String> {
        let c = self.header("Contact")?;
        let start = c.find('<')? + 1;
        let end = c[start..].find('>')? + start;
        Some(c[start..end].to_string())
    }

    /// Every Record-Route entry, in header order, lists split.
    pub fn record_routes(&self) -> Vec<String> {
        self.all("Record-Route")
            .into_iter()
            .flat_map(|v| split_name_addrs(v).into_iter().map(str::to_string).collect::<Vec<_>>())
            .collect()
    }
}

fn tag_param(value: &str) -> Option<String> {
    // Parameters after the closing '>' (or after the URI when there is none).
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("tag").then(|| v.trim().to_string())
    })
}

/// Splits a comma-separated list of name-addrs, keeping commas inside `<...>` or quotes.
fn split_name_addrs(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    for (i, ch) in value.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// Renders a request: start line, `headers` in order, Content-Length, body.
pub fn request(method: &str, uri: &str, headers: &[(&str, String)], body: &str) -> String {
    let mut s = format!("{method} {uri} SIP/2.0\r\n");
    for (n, v) in headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s
}

/// A SIP-over-WebSocket connection driven by hand.
pub struct RawSip {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every message received, in order (for failure reports).
    pub received: Vec<String>,
    /// The host of our Via and Contact (`*.invalid`, as browsers do).
    pub host: String,
}

impl RawSip {
    /// Opens `url` offering the `sip` subprotocol.
    pub async fn connect(url: &str) -> RawSip {
        let mut req = url.into_client_request().expect("ws url");
        req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
        let (ws, resp) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(req))
            .await
            .expect("WebSocket handshake timed out")
            .expect("WebSocket handshake");
        assert_eq!(
            resp.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok()),
            Some("sip"),
            "server did not accept the sip subprotocol"
        );
        RawSip { ws, received: Vec::new(), host: format!("{}.invalid", token()) }
    }

    /// Our Via header value with a fresh branch; returns (value, branch).
    pub fn via(&self) -> (String, String) {
        let b = branch();
        (format!("SIP/2.0/WS {};branch={b};rport", self.host), b)
    }

    /// Sends one SIP message as a text frame.
    pub async fn send(&mut self, text: String) {
        self.ws.send(WsMessage::Text(text.into())).await.expect("WebSocket send");
    }

    /// The next SIP message (pings and keep-alives skipped); panics after [`TIMEOUT`].
    pub async fn recv(&mut self, what: &str) -> SipMsg {
        loop {
            let next = match tokio::time::timeout(TIMEOUT, self.ws.next()).await {
                Ok(n) => n,
                Err(_) => panic!("timed out waiting for {what}; received so far:\n{}", self.received.join("\n----\n")),
            };
            let text = match next {
                Some(Ok(WsMessage::Text(t))) => t.to_string(),
                Some(Ok(WsMessage::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                Some(Ok(WsMessage::Close(_))) | None => {
                    panic!("connection closed waiting for {what}; received:\n{}", self.received.join("\n----\n"))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("WebSocket error waiting for {what}: {e}"),
            };
            if text.trim().is_empty() {
                continue; // CRLF keep-alive
            }
            self.received.push(text.clone());
            match SipMsg::parse(&text) {
                Some(m) => return m,
                None => panic!("not a SIP message: {text:?}"),
            }
        }
    }

    /// Reads messages until one matches `pred`, skipping (and keeping in
    /// [`RawSip::received`]) the others.
    pub async fn recv_until(&mut self, what: &str, pred: impl Fn(&SipMsg) -> bool) -> SipMsg {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left == Duration::ZERO {
                panic!("timed out waiting for {what}; received:\n{}", self.received.join("\n----\n"));
            }
            let m = self.recv(what).await;
            if pred(&m) {
                return m;
            }
        }
    }

    /// Registers `user@domain` (answering the 401 challenge); returns the 200.
    pub async fn register(&mut self, user: &str, password: &str, domain: &str) -> SipMsg {
        let call_id = token();
        let from_tag = token();
        let mut digest = DigestClient::new(user, password);
        let mut auth: Option<(&'static str, String)> = None;
        for cseq in 1..=2u32 {
            let (via, _) = self.via();
            let mut headers = vec![
                ("Via", via),
                ("Max-Forwards", "70".to_string()),
                ("From", format!("<sip:{user}@{domain}>;tag={from_tag}")),
                ("To", format!("<sip:{user}@{domain}>")),
                ("Call-ID", call_id.clone()),
                ("CSeq", format!("{cseq} REGISTER")),
                ("Contact", format!("<sip:{user}@{};transport=ws>", self.host)),
                ("Expires", "300".to_string()),
            ];
            if let Some((n, v)) = &auth {
                headers.push((*n, v.clone()));
            }
            self.send(request("REGISTER", &format!("sip:{domain}"), &headers, "")).await;
            let resp = self
                .recv_until("REGISTER response", |m| m.status().is_some_and(|s| s >= 200) && m.cseq().0 == cseq)
                .await;
            match resp.status() {
                Some(200) => return resp,
                Some(401) if auth.is_none() => {
                    let ch = Challenge::parse(resp.header("WWW-Authenticate").expect("WWW-Authenticate"), false)
                        .expect("digest challenge");
                    let a = digest.authorize(&ch, "REGISTER", &format!("sip:{domain}"), b"", &token());
                    auth = Some((a.header_name(), a.to_string()));
                }
                other => panic!("REGISTER answered {other:?}: {}", resp.start),
            }
        }
        panic!("REGISTER not accepted after the challenge")
    }

    /// Closes the WebSocket.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A response to `req` (Via, From, To, Call-ID, CSeq copied; `to_tag` added
/// to To when given), with `extra` headers and `body`.
pub fn response(
    req: &SipMsg,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[(&str, String)],
    body: &str,
) -> String {
    let mut s = format!("SIP/2.0 {status} {reason}\r\n");
    for via in req.all("Via") {
        s.push_str(&format!("Via: {via}\r\n"));
    }
    s.push_str(&format!("From: {}\r\n", req.header("From").unwrap_or("")));
    let to = req.header("To").unwrap_or("");
    match to_tag {
        Some(tag) if tag_param(to).is_none() => s.push_str(&format!("To: {to};tag={tag}\r\n")),
        _ => s.push_str(&format!("To: {to}\r\n")),
    }
    s.push_str(&format!("Call-ID: {}\r\n", req.header("Call-ID").unwrap_or("")));
    s.push_str(&format!("CSeq: {}\r\n", req.header("CSeq").unwrap_or("")));
    for (n, v) in extra {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s
}
