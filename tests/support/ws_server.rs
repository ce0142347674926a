//! An in-process SIP-over-WebSocket server on 127.0.0.1 (plain or TLS) that
//! tests script by hand: it echoes the `sip` subprotocol and hands each
//! accepted connection to the test, which answers REGISTER, plays whatever
//! input it likes (hostile frames included) and probes the phone's answers.
//!
//! Every SIP frame the phone sends is checked against the limits the phone
//! holds others to (64 KB of SIP): a phone must never send more than it
//! accepts.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use webphone::sip::MAX_MESSAGE_SIZE;

use super::TIMEOUT;
use super::raw_ws::{SipMsg, branch, request, response, token};

/// What the server's connections run over (TCP or TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A listening server; [`WsServer::accept`] hands over its connections.
pub struct WsServer {
    /// `ws://127.0.0.1:PORT` or `wss://...`.
    pub url: String,
    conns: mpsc::UnboundedReceiver<ServerConn>,
}

impl WsServer {
    /// Listens on a free loopback port (over TLS when `tls` is given).
    pub async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> WsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let scheme = if tls.is_some() { "wss" } else { "ws" };
        let (tx, conns) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let tls = tls.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let stream: Box<dyn Io> = match tls {
                        Some(cfg) => match tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await {
                            Ok(s) => Box::new(s),
                            Err(_) => return, // the phone refused our certificate
                        },
                        None => Box::new(tcp),
                    };
                    #[allow(clippy::result_large_err)] // the callback's error type is tungstenite's
                    let echo_sip = |req: &Request, mut resp: Response| {
                        let offered =
                            req.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok()).unwrap_or("");
                        if offered.split(',').any(|p| p.trim() == "sip") {
                            resp.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
                        }
                        Ok(resp)
                    };
                    let config = WebSocketConfig::default();
                    let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(stream, echo_sip, Some(config)).await
                    else {
                        return;
                    };
                    let _ = tx.send(ServerConn { ws, received: Vec::new() });
                });
            }
        });
        WsServer { url: format!("{scheme}://127.0.0.1:{port}"), conns }
    }

    /// The next connection a phone opens; panics after [`TIMEOUT`].
    pub async fn accept(&mut self) -> ServerConn {
        match tokio::time::timeout(TIMEOUT, self.conns.recv()).await {
            Ok(Some(conn)) => conn,
            _ => panic!("no connection from the phone within {TIMEOUT:?}"),
        }
    }

    /// A connection if one is already waiting.
    pub fn try_accept(&mut self) -> Option<ServerConn> {
        self.conns.try_recv().ok()
    }
}

/// One accepted connection, driven by the test.
pub struct ServerConn {
    ws: WebSocketStream<Box<dyn Io>>,
    /// Every SIP message received, in order (for failure reports).
    pub received: Vec<String>,
}

/// The message text of a received frame, checked against the size limit.
fn sip_text(msg: &WsMessage) -> Option<String> {
    let text = match msg {
        WsMessage::Text(t) => t.to_string(),
        WsMessage::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => return None,
    };
    assert!(text.len() <= MAX_MESSAGE_SIZE, "the phone sent a {} byte message: over its own limit", text.len());
    (!text.trim().is_empty()).then_some(text) // a CRLF keep-alive is no message
}

impl ServerConn {
    /// Sends one text frame.
    pub async fn send(&mut self, text: impl Into<String>) {
        self.ws.send(WsMessage::Text(text.into().into())).await.expect("WebSocket send");
    }

    /// Sends one frame of any kind.
    pub async fn send_frame(&mut self, msg: WsMessage) {
        self.ws.send(msg).await.expect("WebSocket send");
    }

    /// Writes raw bytes on the connection, under the WebSocket framing (to
    /// break it).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let io = self.ws.get_mut();
        io.write_all(bytes).await.expect("raw write");
        io.flush().await.expect("raw flush");
    }

    /// The next frame, any kind; `None` when the connection ended (closed,
    /// or an error). Panics after [`TIMEOUT`].
    pub async fn next_frame(&mut self, what: &str) -> Option<WsMessage> {
        match tokio::time::timeout(TIMEOUT, self.ws.next()).await {
            Ok(Some(Ok(msg))) => Some(msg),
            Ok(_) => None,
            Err(_) => panic!("timed out waiting for {what}; received:\n{}", self.received.join("\n----\n")),
        }
    }

    /// The next SIP message (pings and keep-alives skipped); panics after
    /// [`TIMEOUT`] or when the connection ends.
    pub async fn recv(&mut self, what: &str) -> SipMsg {
        loop {
            let Some(frame) = self.next_frame(what).await else {
                panic!("connection ended waiting for {what}; received:\n{}", self.received.join("\n----\n"))
            };
            let Some(text) = sip_text(&frame) else { continue };
            self.received.push(text.clone());
            return SipMsg::parse(&text).unwrap_or_else(|| panic!("not a SIP message: {text:?}"));
        }
    }

    /// Reads messages until one matches `pred` (the others are kept in
    /// [`ServerConn::received`]).
    pub async fn recv_until(&mut self, what: &str, pred: impl Fn(&SipMsg) -> bool) -> SipMsg {
        loop {
            let m = self.recv(what).await;
            if pred(&m) {
                return m;
            }
        }
    }

    /// Waits for the phone's REGISTER and accepts it for 600 s: 200 with
    /// the Contact it asked for. Returns the REGISTER.
    pub async fn answer_register(&mut self) -> SipMsg {
        let reg = self.recv_until("REGISTER", |m| m.method() == Some("REGISTER")).await;
        let contact = reg.header("Contact").unwrap_or("").to_string();
        let contact = contact.split(";expires=").next().unwrap_or("").to_string();
        let ok = response(&reg, 200, "OK", Some(&token()), &[("Contact", format!("{contact};expires=600"))], "");
        self.send(ok).await;
        reg
    }

    /// The phone's Contact URI as this connection's REGISTER gave it, for
    /// request URIs.
    pub fn target(reg: &SipMsg) -> String {
        reg.contact_uri().unwrap_or_else(|| "sip:alice@127.0.0.1".to_string())
    }

    /// Sends `messages` and reads `answers` SIP messages, at the same time
    /// (the phone answers while we write: neither side's buffers fill).
    pub async fn exchange(&mut self, messages: Vec<String>, answers: usize) -> Vec<SipMsg> {
        let (mut sink, mut stream) = (&mut self.ws).split();
        let send = async move {
            for m in messages {
                sink.feed(WsMessage::Text(m.into())).await.expect("WebSocket send");
            }
            sink.flush().await.expect("WebSocket flush");
        };
        let read = async {
            let mut got = Vec::with_capacity(answers);
            while got.len() < answers {
                match stream.next().await {
                    Some(Ok(frame)) => {
                        if let Some(text) = sip_text(&frame) {
                            got.push(SipMsg::parse(&text).unwrap_or_else(|| panic!("not SIP: {text:?}")));
                        }
                    }
                    other => panic!("connection ended after {} of {answers} answers: {other:?}", got.len()),
                }
            }
            got
        };
        let deadline = TIMEOUT * 3;
        let ((), got) = tokio::time::timeout(deadline, futures_util::future::join(send, read))
            .await
            .unwrap_or_else(|_| panic!("{answers} answers not in within {deadline:?}"));
        got
    }

    /// Checks that the phone behind this connection still does its job:
    /// OPTIONS gets 200, an INVITE rings (180) and is cancelled (200 to
    /// the CANCEL, 487 to the INVITE), a BYE for no dialog gets 481.
    pub async fn probe(&mut self, target: &str) {
        let options = out_of_dialog("OPTIONS", target, "");
        let answers = self.exchange(vec![options], 1).await;
        assert_eq!(answers[0].status(), Some(200), "OPTIONS: {}", answers[0].start);

        let invite = invite(target, &offer());
        let (branch_param, call_id, from) = (via_branch(&invite), call_id(&invite), from(&invite));
        self.send(invite.clone()).await;
        let ringing = self
            .recv_until("180 to the INVITE", |m| m.cseq().1 == "INVITE" && m.status().is_some_and(|s| s >= 180))
            .await;
        assert_eq!(ringing.status(), Some(180), "{}", ringing.start);
        let cancel = request(
            "CANCEL",
            target,
            &[
                ("Via", format!("SIP/2.0/WS server.invalid;branch={branch_param}")),
                ("Max-Forwards", "70".into()),
                ("From", from.clone()),
                ("To", format!("<{target}>")),
                ("Call-ID", call_id.clone()),
                ("CSeq", "1 CANCEL".into()),
            ],
            "",
        );
        let answers = self.exchange(vec![cancel], 2).await;
        let mut statuses: Vec<_> = answers.iter().map(|m| (m.cseq().1, m.status())).collect();
        statuses.sort();
        assert_eq!(
            statuses,
            [("CANCEL".to_string(), Some(200)), ("INVITE".to_string(), Some(487))],
            "CANCEL and INVITE answers"
        );
        let final_invite = answers.iter().find(|m| m.cseq().1 == "INVITE").expect("the 487");
        let ack = request(
            "ACK",
            target,
            &[
                ("Via", format!("SIP/2.0/WS server.invalid;branch={branch_param}")),
                ("Max-Forwards", "70".into()),
                ("From", from),
                ("To", final_invite.header("To").unwrap_or("").to_string()),
                ("Call-ID", call_id),
                ("CSeq", "1 ACK".into()),
            ],
            "",
        );
        self.send(ack).await;

        let bye = in_unknown_dialog("BYE", target);
        let answers = self.exchange(vec![bye], 1).await;
        assert_eq!(answers[0].status(), Some(481), "BYE for no dialog: {}", answers[0].start);
    }

    /// Waits until the phone closes the connection (a Close frame, or the
    /// connection ends); returns the Close frame's code, if one came.
    pub async fn wait_closed(&mut self, what: &str) -> Option<u16> {
        loop {
            match self.next_frame(what).await {
                Some(WsMessage::Close(frame)) => return Some(frame.map_or(1005, |f| u16::from(f.code))),
                Some(other) => {
                    let _ = sip_text(&other);
                }
                None => return None,
            }
        }
    }
}

/// Common headers of a request from the server outside any dialog.
fn headers(method: &str, target: &str, to_tag: Option<&str>) -> Vec<(&'static str, String)> {
    let to = match to_tag {
        Some(tag) => format!("<{target}>;tag={tag}"),
        None => format!("<{target}>"),
    };
    vec![
        ("Via", format!("SIP/2.0/WS server.invalid;branch={}", branch())),
        ("Max-Forwards", "70".into()),
        ("From", format!("<sip:hostile@example.com>;tag={}", token())),
        ("To", to),
        ("Call-ID", token()),
        ("CSeq", format!("1 {method}")),
    ]
}

/// A request outside any dialog (OPTIONS, ...), with `body` as SDP if any.
pub fn out_of_dialog(method: &str, target: &str, body: &str) -> String {
    let mut h = headers(method, target, None);
    if !body.is_empty() {
        h.push(("Content-Type", "application/sdp".into()));
    }
    request(method, target, &h, body)
}

/// A request inside a dialog the phone does not know (BYE, INFO, ...).
pub fn in_unknown_dialog(method: &str, target: &str) -> String {
    request(method, target, &headers(method, target, Some(&token())), "")
}

/// An INVITE carrying `sdp`.
pub fn invite(target: &str, sdp: &str) -> String {
    let mut h = headers("INVITE", target, None);
    h.push(("Contact", "<sip:hostile@server.invalid;transport=ws>".into()));
    h.push(("Content-Type", "application/sdp".into()));
    request("INVITE", target, &h, sdp)
}

/// A plausible WebRTC audio offer (never answered: probes cancel it).
pub fn offer() -> String {
    offer_with(
        "a=fingerprint:sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9",
        0,
    )
}

/// An offer with this fingerprint line and `extra` more media sections.
pub fn offer_with(fingerprint: &str, extra: usize) -> String {
    let mut sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n{fingerprint}\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:111 opus/48000/2\r\n\
         a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\n"
    );
    for i in 0..extra {
        sdp.push_str(&format!("m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:{}\r\na=sendrecv\r\n", i + 1));
    }
    sdp
}

fn header_of(raw: &str, name: &str) -> String {
    SipMsg::parse(raw).and_then(|m| m.header(name).map(str::to_string)).unwrap_or_default()
}

/// The branch of a request's Via.
pub fn via_branch(raw: &str) -> String {
    header_of(raw, "Via").split("branch=").nth(1).unwrap_or("").split(';').next().unwrap_or("").to_string()
}

/// A request's Call-ID.
pub fn call_id(raw: &str) -> String {
    header_of(raw, "Call-ID")
}

/// A request's From.
pub fn from(raw: &str) -> String {
    header_of(raw, "From")
}

/// Bytes of a binary frame, for tests that build their own.
pub fn binary(bytes: &[u8]) -> WsMessage {
    WsMessage::Binary(Bytes::copy_from_slice(bytes))
}

/// The resident set size of this process, in kB (Linux).
pub fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}
