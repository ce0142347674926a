//! Scenario: Alice's phone behind the control server, driven by plain
//! WebSocket clients, calls Bob through Kamailio with real media.
//! - The door: a wrong or missing token gets 401 and no upgrade; a page is
//!   served; an unknown path is 404; a garbage request is 400.
//! - Two clients at once: both get the state first, then every event.
//! - Bad input gets a `bad_request` result (with the client's id when it
//!   gave one), an unknown action too; the connection stays usable.
//! - A client places the call (`action_result` with the call's key; Bob
//!   hears the server's default audio, 440 Hz); that client disconnects
//!   mid-call and the call goes on (Bob keeps hearing Alice); the other
//!   client hangs up and sees `call_ended`.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webphone::control::{ControlConfig, ControlServer};
use webphone::{AudioSetup, SendAudio};

const TOKEN: &str = "control-token-9d2e";

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(server: &ControlServer, token: &str) -> Result<Client, String> {
    let url = format!("ws://{}/control?token={token}", server.local_addr());
    tokio_tungstenite::connect_async(url).await.map(|(ws, _)| ws).map_err(|e| e.to_string())
}

/// The next JSON message that satisfies `want`, skipping the others.
async fn next_where(ws: &mut Client, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let wait = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("the server sends JSON");
                    if want(&v) {
                        return v;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("connection ended waiting for {what}: {other:?}"),
            }
        }
    };
    tokio::time::timeout(TIMEOUT, wait).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn send(ws: &mut Client, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.expect("send");
}

/// A raw HTTP exchange: the status line of the answer.
async fn http_status(server: &ControlServer, request: &str) -> String {
    let mut s = TcpStream::connect(server.local_addr()).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, s.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_drive_a_call_and_the_call_outlives_them() {
    let kamailio = start_kamailio();
    let (alice, _alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;
    let config = ControlConfig::new(TOKEN).default_audio(|| AudioSetup {
        send: SendAudio::Tone { frequency_hz: 440.0, level_dbfs: -12.0 },
        ..Default::default()
    });
    let server = ControlServer::start(alice.clone(), config).await.expect("server starts");
    assert!(server.local_addr().ip().is_loopback());

    // The door.
    for bad in ["wrong-token", ""] {
        let err = connect(&server, bad).await.expect_err("refused");
        assert!(err.contains("401"), "{err}");
    }
    let err =
        tokio_tungstenite::connect_async(format!("ws://{}/control", server.local_addr())).await.expect_err("no token");
    assert!(err.to_string().contains("401"), "{err}");
    assert_eq!(http_status(&server, "GET /nxcloud HTTP/1.1\r\nHost: x\r\n\r\n").await, "HTTP/1.1 200 OK");
    assert_eq!(http_status(&server, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").await, "HTTP/1.1 404 Not Found");
    assert_eq!(http_status(&server, "\x16\x03\x01 garbage\r\n\r\n").await, "HTTP/1.1 400 Bad Request");
    // A non-loopback address is refused unless asked for (before any bind:
    // 192.0.2.1 is a documentation address).
    let mut remote = ControlConfig::new(TOKEN);
    remote.listen = "192.0.2.1:0".parse().unwrap();
    assert!(ControlServer::start(alice.clone(), remote).await.is_err());

    // Two clients: each starts with the state.
    let mut one = connect(&server, TOKEN).await.expect("client one");
    let mut two = connect(&server, TOKEN).await.expect("client two");
    for ws in [&mut one, &mut two] {
        let state = next_where(ws, "state", |v| v["event"] == "state").await;
        assert_eq!(state["status"]["registered"], true, "{state}");
        assert_eq!(state["status"]["calls"], json!([]), "{state}");
    }

    // Bad input: answered, and the connection goes on.
    ws_text(&mut one, "{not json").await;
    let bad = next_where(&mut one, "bad_request", |v| v["event"] == "action_result").await;
    assert_eq!((bad["ok"].clone(), bad["error"]["kind"].clone()), (json!(false), json!("bad_request")), "{bad}");
    send(&mut one, json!({"id": "x1", "action": "teleport", "call": 1})).await;
    let unknown = next_where(&mut one, "unknown action", |v| v["event"] == "action_result").await;
    assert_eq!(unknown["id"], "x1", "{unknown}");
    assert_eq!(unknown["error"]["kind"], "bad_request", "{unknown}");
    send(&mut one, json!({"id": 2, "action": "hangup", "call": 99})).await;
    let no_call = next_where(&mut one, "hangup of no call", |v| v["event"] == "action_result").await;
    assert_eq!((no_call["id"].clone(), no_call["ok"].clone()), (json!(2), json!(false)), "{no_call}");

    // Client one calls Bob; Bob answers and hears the server's tone.
    send(&mut one, json!({"id": 3, "action": "call", "target": "bob"})).await;
    let placed = next_where(&mut one, "call result", |v| v["event"] == "action_result" && v["id"] == 3).await;
    assert_eq!(placed["ok"], true, "{placed}");
    let key = placed["call"].as_u64().expect("call key");
    let incoming = bob_log.wait_incoming().await;
    let bob_audio = AudioSetup { track_frequencies: vec![440.0], ..Default::default() };
    bob.answer_with(incoming.key, bob_audio).await.expect("bob answers");
    for ws in [&mut one, &mut two] {
        let confirmed = next_where(ws, "call_confirmed", |v| v["event"] == "call_confirmed").await;
        assert_eq!(confirmed["call"]["key"], key, "{confirmed}");
    }
    let heard = wait_stats(&bob, incoming.key, "440 Hz at bob", |s| {
        s.decoded_frames >= 50 && s.rx_dominant_hz.is_some_and(|f| (f - 440.0).abs() < 5.0)
    })
    .await;

    // Client one leaves mid-call: the call goes on.
    drop(one);
    let before = heard.decoded_frames;
    wait_stats(&bob, incoming.key, "audio after the client left", |s| {
        s.decoded_frames >= before + 100 && s.rx_dominant_hz.is_some_and(|f| (f - 440.0).abs() < 5.0)
    })
    .await;
    assert_eq!(alice.status().calls.len(), 1, "the call is still up");

    // Client two hangs up.
    send(&mut two, json!({"id": 4, "action": "hangup", "call": key})).await;
    // Its result, the end and the status that follows, in whichever order they come.
    let (mut hung, mut ended, mut idle) = (None, None, None);
    while hung.is_none() || ended.is_none() || idle.is_none() {
        let v = next_where(&mut two, "the hang-up's result, call_ended and an idle status", |v| {
            (v["event"] == "action_result" && v["id"] == 4)
                || v["event"] == "call_ended"
                || (v["event"] == "status" && v["status"]["calls"] == json!([]))
        })
        .await;
        match v["event"].as_str() {
            Some("action_result") => hung = Some(v),
            Some("call_ended") => ended = Some(v),
            _ => idle = Some(v),
        }
    }
    assert_eq!(hung.unwrap()["ok"], true);
    let ended = ended.unwrap();
    assert_eq!(ended["call"]["end"]["by"], "local", "{ended}");
    assert_eq!(idle.unwrap()["status"]["registered"], true);
    bob_log.wait_ended(incoming.key).await;

    // Stopping the server closes its clients; the phone goes on.
    server.stop().await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = two.next().await {
            if m.is_close() {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the client was closed");
    assert!(alice.status().registered);
    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
}

async fn ws_text(ws: &mut Client, text: &str) {
    ws.send(Message::Text(text.to_string().into())).await.expect("send");
}
