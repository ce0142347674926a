//! A minimal SIP-over-WebSocket relay for `webphone demo`: phones connect to
//! it on loopback, REGISTER (accepted without authentication), and it
//! relays requests to the phone whose address-of-record or contact user is
//! in the Request-URI, and responses back to the connection the request
//! came from (matched by the top Via branch). It is not a proxy for real
//! use: no authentication, no Record-Route, one process, loopback only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use webphone::sip::validate::response_to;
use webphone::sip::{Contact, HeaderName, Message, Method, StatusCode, TypedHeader, Via};

type ConnId = u64;

#[derive(Default)]
struct Routes {
    conns: HashMap<ConnId, mpsc::UnboundedSender<String>>,
    /// AoR user or contact user → connection.
    users: HashMap<String, ConnId>,
    /// Top Via branch of a relayed request → the connection it came from.
    branches: HashMap<String, ConnId>,
}

/// Media on 127.0.0.1 only: for phones in a loopback lab (the relay's, or
/// `--allow-loopback`).
pub fn loopback_media(b: webphone::PhoneConfigBuilder) -> webphone::PhoneConfigBuilder {
    b.allow_loopback(true).media_interfaces(vec![std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)])
}

/// A running relay.
pub struct Relay {
    pub url: String,
}

/// Starts the relay on a free loopback port.
pub async fn start() -> std::io::Result<Relay> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}", listener.local_addr()?);
    let routes = Arc::new(Mutex::new(Routes::default()));
    tokio::spawn(async move {
        let mut next: ConnId = 0;
        while let Ok((tcp, _)) = listener.accept().await {
            next += 1;
            tokio::spawn(serve(tcp, next, routes.clone()));
        }
    });
    Ok(Relay { url })
}

#[allow(clippy::result_large_err)] // the handshake callback's error type is tungstenite's
fn accept_sip(
    req: &Request,
    mut resp: Response,
) -> Result<Response, tokio_tungstenite::tungstenite::handshake::server::ErrorResponse> {
    let offered = req.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok()).unwrap_or("");
    if offered.split(',').any(|p| p.trim() == "sip") {
        resp.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
    }
    Ok(resp)
}

async fn serve(tcp: tokio::net::TcpStream, id: ConnId, routes: Arc<Mutex<Routes>>) {
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, accept_sip).await else { return };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    routes.lock().unwrap().conns.insert(id, tx.clone());
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(WsMessage::Text(text.into())).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(frame)) = stream.next().await {
        let WsMessage::Text(text) = frame else { continue };
        if text.trim().is_empty() {
            continue;
        }
        let Ok(msg) = Message::parse_slice(text.as_bytes()) else { continue };
        let mut r = routes.lock().unwrap();
        match msg {
            Message::Request(req) if req.method == Method::Register => {
                let mut ok = response_to(&req, StatusCode::OK);
                if let Some(Ok(to)) = req.headers.name_addr(&HeaderName::To)
                    && let Some(user) = to.uri.user()
                {
                    r.users.insert(user.to_string(), id);
                }
                for c in req.headers.typed_all::<Contact>().unwrap_or_default() {
                    if let Some(a) = c.address() {
                        if let Some(user) = a.uri.user() {
                            r.users.insert(user.to_string(), id);
                        }
                        ok.headers.push(HeaderName::Contact, c.to_string());
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&ok.to_bytes()).into_owned());
            }
            Message::Request(req) => {
                let target = req.uri.user().and_then(|u| r.users.get(u).copied());
                match target.and_then(|t| r.conns.get(&t).cloned()) {
                    Some(out) => {
                        if let Some(branch) = top_branch(&req.headers) {
                            r.branches.insert(branch, id);
                        }
                        let _ = out.send(text.to_string());
                    }
                    None if req.method != Method::Ack => {
                        let nf = response_to(&req, StatusCode::NOT_FOUND);
                        let _ = tx.send(String::from_utf8_lossy(&nf.to_bytes()).into_owned());
                    }
                    None => {}
                }
            }
            Message::Response(resp) => {
                let origin = top_branch(&resp.headers).and_then(|b| r.branches.get(&b).copied());
                if let Some(out) = origin.and_then(|o| r.conns.get(&o).cloned()) {
                    let _ = out.send(text.to_string());
                }
            }
        }
    }
    let mut r = routes.lock().unwrap();
    r.conns.remove(&id);
    r.users.retain(|_, c| *c != id);
    drop(r);
    writer.abort();
}

fn top_branch(headers: &webphone::sip::Headers) -> Option<String> {
    let top = headers.get(&HeaderName::Via)?;
    let first = webphone::sip::split_list(top).next()?;
    Via::parse(first).ok()?.branch().map(str::to_string)
}
