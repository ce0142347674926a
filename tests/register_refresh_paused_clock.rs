//! Scenario: the real driver (`webphone::Phone`) on tokio's paused clock.
//! An in-process SIP-over-WebSocket registrar on loopback grants 60 s; the
//! phone refreshes the binding 54 s later (a margin of a tenth of the
//! interval, at least 5 s: `refresh_after`), and the test sees that refresh
//! after 54 s of tokio's virtual time while the wall clock moves far less.
//!
//! # Why auto-advance is harmless here
//! With the clock paused, tokio advances it to the next timer whenever no
//! task can run and a zero-timeout poll of the I/O driver finds no event.
//! It would therefore jump over any wait that is neither a timer nor an
//! I/O event already ready: a `spawn_blocking` DNS lookup, work on another
//! thread, a packet still in flight on a real network. This scenario has
//! none of these:
//! - the phone, the registrar and the test share one current-thread runtime;
//! - the server URL is an IP literal (no resolver thread), and every write
//!   on a loopback TCP socket makes the peer readable before the writer
//!   yields, so while a message is in flight its I/O event is ready and the
//!   clock stays put (the connect handshake likewise);
//! - the registration needs nothing from the media engine's own runtime;
//! - keep-alive pings are pushed beyond the scenario (1 h of silence), so
//!   the only timers are the refresh, the REGISTER transaction's timer F,
//!   the connect timeout, and the test's own waits.
//!
//! If a jump happened anyway it would be loud, not silent: the connect
//! timeout is generous (1 h, beyond every wait of the test), so a jump
//! while connecting or while a REGISTER is unanswered ends one of the
//! test's waits (or REGISTER's timer F, 32 s) with a failure naming what
//! was awaited, and the test also checks that no connection failure,
//! disconnection or registration failure was reported.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{Request as WsRequest, Response as WsResponse};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use webphone::sip::validate::response_to;
use webphone::sip::{HeaderName, Message, Method, Request, StatusCode};
use webphone::{Event, Events, Phone, PhoneConfig, PingKind};

/// What the registrar grants.
const GRANTED: u32 = 60;
/// When the phone refreshes a 60 s binding: 60 s minus a margin of
/// max(5 s, 60 s / 10).
const REFRESH_AFTER: Duration = Duration::from_secs(54);
/// Longest virtual wait for anything (the refresh included).
const VIRTUAL_WAIT: Duration = Duration::from_secs(600);

/// One REGISTER as the registrar saw it, and when (virtual time) it was answered.
struct Seen {
    request: Request,
    answered_at: Instant,
}

/// A registrar on a loopback port: accepts one WebSocket connection
/// (echoing the `sip` subprotocol), answers every REGISTER with 200 and a
/// binding of [`GRANTED`] seconds (0 when removing), and reports each.
#[allow(clippy::result_large_err)] // the handshake callback's error type is tungstenite's
async fn registrar() -> (String, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let url = format!("ws://{}", listener.local_addr().expect("local address"));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let callback = |req: &WsRequest, mut resp: WsResponse| {
            let offered = req.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok()).unwrap_or("");
            if offered.split(',').any(|p| p.trim() == "sip") {
                resp.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
            }
            Ok(resp)
        };
        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else { return };
        while let Some(Ok(frame)) = ws.next().await {
            let WsMessage::Text(text) = frame else { continue };
            let Ok(Message::Request(req)) = Message::parse_slice(text.as_bytes()) else { continue };
            if req.method != Method::Register {
                continue;
            }
            let removing = req.headers.get(&HeaderName::Expires) == Some("0");
            let expires = if removing { 0 } else { GRANTED };
            let mut ok = response_to(&req, StatusCode::OK);
            let to = ok.headers.get(&HeaderName::To).unwrap_or("").to_string();
            ok.headers.set(HeaderName::To, format!("{to};tag=registrar"));
            if let Some(contact) = req.headers.get(&HeaderName::Contact) {
                let uri = contact.find('>').map_or(contact, |end| &contact[..=end]).to_string();
                ok.headers.push(HeaderName::Contact, format!("{uri};expires={expires}"));
            }
            ok.headers.push(HeaderName::Expires, expires.to_string());
            if ws.send(WsMessage::Text(String::from_utf8_lossy(&ok.to_bytes()).into_owned().into())).await.is_err() {
                return;
            }
            if tx.send(Seen { request: req, answered_at: Instant::now() }).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

/// The next REGISTER the registrar answered; panics after [`VIRTUAL_WAIT`]
/// of virtual time.
async fn next_register(rx: &mut mpsc::UnboundedReceiver<Seen>, what: &str) -> Seen {
    match tokio::time::timeout(VIRTUAL_WAIT, rx.recv()).await {
        Ok(Some(seen)) => seen,
        Ok(None) => panic!("the registrar stopped before {what}"),
        Err(_) => panic!("no {what} within {VIRTUAL_WAIT:?} of virtual time"),
    }
}

/// Waits (virtual time) for an event matching `pred`, keeping every event in `seen`.
async fn wait_event(events: &mut Events, seen: &mut Vec<Event>, what: &str, pred: impl Fn(&Event) -> bool) {
    loop {
        match tokio::time::timeout(VIRTUAL_WAIT, events.recv()).await {
            Ok(Some(ev)) => {
                let done = pred(&ev);
                seen.push(ev);
                if done {
                    return;
                }
            }
            Ok(None) => panic!("event stream ended waiting for {what}; seen: {seen:#?}"),
            Err(_) => panic!("no {what} within {VIRTUAL_WAIT:?} of virtual time; seen: {seen:#?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn registration_refresh_runs_on_virtual_time() {
    let wall_start = std::time::Instant::now();
    let (url, mut registers) = registrar().await;
    let config = PhoneConfig::builder()
        .user("alice")
        .password("alice-pw")
        .domain("example.com")
        .server(url)
        .seed(7)
        .connect_timeout(Duration::from_secs(3600))
        .keepalive(Duration::from_secs(3600), Duration::from_secs(60), PingKind::WebSocket)
        .build()
        .expect("valid config");
    let phone = Phone::new(config);
    let mut events = phone.events();
    let mut seen = Vec::new();
    phone.start().expect("started");

    let first = next_register(&mut registers, "first REGISTER").await;
    wait_event(&mut events, &mut seen, "Registered", |e| matches!(e, Event::Registered { expires: GRANTED, .. })).await;
    let second = next_register(&mut registers, "refresh REGISTER").await;
    wait_event(&mut events, &mut seen, "Registered again", |e| matches!(e, Event::Registered { .. })).await;
    let wall = wall_start.elapsed();

    // The refresh came when the core said, on virtual time.
    let virtual_gap = second.answered_at - first.answered_at;
    assert!(
        virtual_gap >= REFRESH_AFTER && virtual_gap < REFRESH_AFTER + Duration::from_secs(1),
        "refresh {virtual_gap:?} after the first binding (virtual), expected {REFRESH_AFTER:?}"
    );
    // ... and the test did not wait for it in real time.
    assert!(wall < Duration::from_secs(10), "{wall:?} of wall time for {virtual_gap:?} of virtual time");
    // It is a refresh of the same binding.
    let header = |s: &Seen, h: HeaderName| s.request.headers.get(&h).map(str::to_string);
    assert_eq!(header(&second, HeaderName::CallId), header(&first, HeaderName::CallId), "same Call-ID");
    let cseq = |s: &Seen| -> u32 {
        let value = header(s, HeaderName::CSeq).expect("CSeq");
        value.split_whitespace().next().and_then(|n| n.parse().ok()).expect("CSeq number")
    };
    assert_eq!(cseq(&second), cseq(&first) + 1);

    phone.stop().await.expect("stopped");
    while let Some(ev) = events.recv().await {
        seen.push(ev);
    }
    let failures: Vec<&Event> = seen
        .iter()
        .filter(|e| match e {
            Event::ConnectFailed { .. } | Event::RegistrationFailed { .. } => true,
            Event::Disconnected { reason, .. } => reason != "stopped",
            _ => false,
        })
        .collect();
    assert!(failures.is_empty(), "no failure while running: {failures:#?}");
    assert_eq!(
        seen.iter().filter(|e| matches!(e, Event::Registered { .. })).count(),
        2,
        "registered, then refreshed once: {seen:#?}"
    );
}
