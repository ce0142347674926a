//! The control server: a phone driven over a local WebSocket, in the same
//! action and event vocabulary as the typed API (see [`wire`]), and the
//! pages that stand in for call-center iframe widgets.
//!
//! A CRM that embedded a vendor's webphone widget (NXCloud, myCC, NICE MAX)
//! talks to it by `postMessage`. [`ControlServer`] serves, on one port:
//! - `GET /control?token=T` upgraded to a WebSocket: on connection the
//!   client gets `{"event":"state","status":{...}}` (a [`PhoneStatus`]);
//!   then every [`Event`] of the phone as JSON, `{"event":"status",...}` at
//!   each status change, and an `action_result` for each action it sends
//!   (one [`Action`](crate::Action) per text frame). A wrong or missing
//!   token gets `401` and no upgrade.
//! - `GET /nxcloud`, `/mycc`, `/max`: pages a CRM embeds as its iframe in
//!   place of the vendor's; each speaks that widget's `postMessage`
//!   vocabulary to its parent and this server's to the phone.
//!
//! Clients come and go without touching the calls: one that disconnects
//! mid-call leaves the call up, several clients at once each see every
//! event. The server listens on `127.0.0.1` unless told otherwise and
//! refuses a non-loopback address unless [`ControlConfig::allow_remote`]
//! says so (the token then travels in clear: put TLS in front).

pub mod wire;

mod http;

/// The request-head reader, for the fuzz targets in `fuzz/` (feature
/// `fuzzing`). Not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Reads a request head: path, token and upgrade key, or `None`.
    pub fn parse_head(head: &[u8]) -> Option<(String, Option<String>, Option<String>)> {
        super::http::parse_head(head).ok().map(|h| (h.path, h.token, h.websocket_key))
    }
}

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::action::{ActionOutcome, PhoneStatus};
use crate::error::Error;
use crate::event::Event;
use crate::media::AudioSetup;
use crate::phone::Phone;
use crate::secret::Password;
use http::{HeadError, RequestHead};
use wire::Request;

/// How long a new connection may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest message a client may send (an action is a few hundred bytes).
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// Pages served in place of the iframe widgets, and the control client
/// they share: path, content type, body.
const PAGES: [(&str, &str, &str); 4] = [
    ("/nxcloud", HTML, include_str!("pages/nxcloud.html")),
    ("/mycc", HTML, include_str!("pages/mycc.html")),
    ("/max", HTML, include_str!("pages/max.html")),
    ("/control.js", "text/javascript; charset=utf-8", include_str!("pages/control.js")),
];

const HTML: &str = "text/html; charset=utf-8";

/// Chooses the audio of a call placed or answered without an `"audio"`.
pub type DefaultAudio = Arc<dyn Fn() -> AudioSetup + Send + Sync>;

/// Where and how the control server listens.
#[derive(Clone)]
pub struct ControlConfig {
    /// The address to listen on (default `127.0.0.1:0`: a free port).
    pub listen: SocketAddr,
    /// What a client must give as `?token=` (never logged).
    pub token: Password,
    /// Allow a non-loopback `listen` address (default false: the server is
    /// for programs and pages on this machine).
    pub allow_remote: bool,
    /// The audio of `call` and `answer` actions that name none (default:
    /// [`AudioSetup::default`]).
    pub default_audio: Option<DefaultAudio>,
    /// Where a `record` action that names no `path` writes (a widget's
    /// record button has no file to give): `call-<key>-<ms>.wav` in this
    /// directory. Without it such an action is refused.
    pub recordings: Option<PathBuf>,
}

impl ControlConfig {
    /// Listens on `127.0.0.1` on a free port, with `token`.
    pub fn new(token: impl Into<Password>) -> Self {
        ControlConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: token.into(),
            allow_remote: false,
            default_audio: None,
            recordings: None,
        }
    }

    /// Writes recordings asked for without a path into `dir`.
    pub fn recordings(mut self, dir: impl Into<PathBuf>) -> Self {
        self.recordings = Some(dir.into());
        self
    }

    /// Gives `call` and `answer` actions without an `"audio"` this audio
    /// (a bot's prompt, a test tone, the devices).
    pub fn default_audio(mut self, choose: impl Fn() -> AudioSetup + Send + Sync + 'static) -> Self {
        self.default_audio = Some(Arc::new(choose));
        self
    }
}

impl std::fmt::Debug for ControlConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlConfig")
            .field("listen", &self.listen)
            .field("token", &self.token)
            .field("allow_remote", &self.allow_remote)
            .field("default_audio", &self.default_audio.is_some())
            .field("recordings", &self.recordings)
            .finish()
    }
}

/// A running control server; dropping it (or [`stop`](Self::stop)) closes
/// the listener and every client connection. The phone goes on.
pub struct ControlServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Starts serving `phone`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an empty token or a non-loopback address
    /// without [`ControlConfig::allow_remote`], or when the address cannot
    /// be bound.
    pub async fn start(phone: Phone, config: ControlConfig) -> Result<ControlServer, Error> {
        if config.token.expose().is_empty() {
            return Err(Error::Config("the control server needs a token".into()));
        }
        if !config.listen.ip().is_loopback() && !config.allow_remote {
            return Err(Error::Config(format!(
                "the control server listens on loopback addresses only (asked for {}; see ControlConfig::allow_remote)",
                config.listen
            )));
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::Config(format!("control server on {}: {e}", config.listen)))?;
        let addr = listener.local_addr().map_err(|e| Error::Config(format!("control server: {e}")))?;
        let (shutdown, stop) = watch::channel(false);
        let shared = Arc::new(Shared {
            phone,
            token: config.token,
            default_audio: config.default_audio,
            recordings: config.recordings,
        });
        let task = tokio::spawn(accept_loop(listener, shared, stop));
        tracing::info!(%addr, "control server listening");
        Ok(ControlServer { addr, shutdown, task: Some(task) })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the base of the pages' and the WebSocket's URLs.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops listening and closes every client connection (their calls go on).
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

struct Shared {
    phone: Phone,
    token: Password,
    default_audio: Option<DefaultAudio>,
    recordings: Option<PathBuf>,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let shared = Arc::clone(&shared);
                    let stop = stop.clone();
                    clients.spawn(async move { serve_connection(stream, peer, shared, stop).await });
                }
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "control server: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = clients.join_next() => {}
            _ = stop.changed() => break,
        }
    }
    clients.shutdown().await;
}

async fn serve_connection(mut stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, http::read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(HeadError::Closed)) | Err(_) => return,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = ?e, "control server: bad request");
            let status =
                if e == HeadError::TooLarge { "431 Request Header Fields Too Large" } else { "400 Bad Request" };
            let _ = stream.write_all(&http::response(status, "text/plain", "bad request\n")).await;
            return;
        }
    };
    let RequestHead { method, path, token, websocket_key } = head;
    if method != "GET" {
        let _ = stream.write_all(&http::response("405 Method Not Allowed", "text/plain", "GET only\n")).await;
        return;
    }
    if path == "/control" {
        let Some(key) = websocket_key else {
            let _ = stream.write_all(&http::response("426 Upgrade Required", "text/plain", "WebSocket only\n")).await;
            return;
        };
        if !token.is_some_and(|t| same_secret(t.as_bytes(), shared.token.expose().as_bytes())) {
            tracing::info!(%peer, "control server: refused a client with a wrong or no token");
            let _ =
                stream.write_all(&http::response("401 Unauthorized", "text/plain", "wrong or missing token\n")).await;
            return;
        }
        if stream.write_all(&http::switching_protocols(&key)).await.is_err() {
            return;
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_CLIENT_MESSAGE))
            .max_frame_size(Some(MAX_CLIENT_MESSAGE));
        let ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await;
        tracing::info!(%peer, "control client connected");
        client_session(ws, &shared, stop).await;
        tracing::info!(%peer, "control client gone");
        return;
    }
    let reply = match PAGES.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, page)) => http::response("200 OK", content_type, page),
        None => http::response("404 Not Found", "text/plain", "no such page\n"),
    };
    let _ = stream.write_all(&reply).await;
}

/// Compares two secrets in time that depends on their lengths only.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One client: events and status out, actions in, until it leaves or the
/// server stops. Actions run concurrently (a call that is being set up does
/// not hold the events back); their results go out as they finish.
async fn client_session(ws: WebSocketStream<TcpStream>, shared: &Shared, mut stop: watch::Receiver<bool>) {
    let phone = &shared.phone;
    let (mut out, mut incoming) = ws.split();
    let mut events = phone.events();
    let mut status = phone.status_changes();
    let state = json!({"event": "state", "status": status.borrow_and_update().clone()});
    if send_json(&mut out, &state).await.is_err() {
        return;
    }
    let mut running: JoinSet<Value> = JoinSet::new();
    loop {
        tokio::select! {
            msg = incoming.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        let reply = wire::bad_request(None, "send actions as text frames");
                        if send_json(&mut out, &reply).await.is_err() { return; }
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let text = match &shared.recordings {
                    Some(dir) => with_recording_path(&text, dir).map_or(text, Utf8Bytes::from),
                    None => text,
                };
                match wire::parse_request(&text) {
                    Request::Action { id, mut action } => {
                        if let (Some(choose), false) = (&shared.default_audio, wire::has_audio(&text)) {
                            wire::give_audio(&mut action, choose());
                        }
                        let phone = phone.clone();
                        running.spawn(async move {
                            let name = action.name();
                            let outcome: Result<ActionOutcome, Error> = phone.execute(*action).await;
                            wire::action_result(id, name, outcome)
                        });
                    }
                    Request::Quit { id } => {
                        let reply = json!({"event": "action_result", "id": id, "action": "quit", "ok": true});
                        let _ = send_json(&mut out, &reply).await;
                        break;
                    }
                    Request::Bad { id, message } => {
                        if send_json(&mut out, &wire::bad_request(id, &message)).await.is_err() { return; }
                    }
                }
            }
            Some(done) = running.join_next() => {
                let reply = done.unwrap_or_else(|e| wire::failure(None, None, "internal", &e.to_string()));
                if send_json(&mut out, &reply).await.is_err() { break; }
            }
            event = events.recv() => match event {
                Some(event) => if send_event(&mut out, &event).await.is_err() { break },
                None => break,
            },
            changed = status.changed() => {
                if changed.is_err() { break; }
                let now: PhoneStatus = status.borrow_and_update().clone();
                if send_json(&mut out, &json!({"event": "status", "status": now})).await.is_err() { break; }
            }
            _ = stop.changed() => break,
        }
    }
    let _ = out.send(Message::Close(None)).await;
}

/// A `record` action without a `path`, given one in `dir`; `None` for any
/// other message.
fn with_recording_path(text: &str, dir: &Path) -> Option<String> {
    let mut v: Value = serde_json::from_str(text).ok()?;
    let map = v.as_object_mut()?;
    if map.get("action")?.as_str()? != "record" || map.contains_key("path") {
        return None;
    }
    let call = map.get("call").and_then(Value::as_u64).map_or_else(|| "current".to_string(), |k| k.to_string());
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let path = dir.join(format!("call-{call}-{ms}.wav"));
    map.insert("path".into(), Value::String(path.to_string_lossy().into_owned()));
    Some(v.to_string())
}

type Sink = futures_util::stream::SplitSink<WebSocketStream<TcpStream>, Message>;

async fn send_event(out: &mut Sink, event: &Event) -> Result<(), ()> {
    match serde_json::to_value(event) {
        Ok(v) => send_json(out, &v).await,
        Err(e) => {
            tracing::warn!(error = %e, "control server: an event did not serialize");
            Ok(())
        }
    }
}

async fn send_json(out: &mut Sink, value: &Value) -> Result<(), ()> {
    out.send(Message::Text(Utf8Bytes::from(value.to_string()))).await.map_err(|_| ())
}
