//! Scenario: the server stops answering but the TCP connection stays open
//! (Kamailio frozen with SIGSTOP). Keep-alive pings go unanswered, the
//! phone declares the connection dead, and recovers once the server is back.

mod support;

use std::time::Duration;

use support::*;
use webphone::{Event, Phone, PingKind};

async fn detects_and_recovers(kind: PingKind) {
    let mut kamailio = start_kamailio();
    let config = phone_config(&[kamailio.ws_url()], "alice", ALICE_PASSWORD)
        .keepalive(Duration::from_millis(300), Duration::from_millis(700), kind)
        .build()
        .unwrap();
    let phone = Phone::new(config);
    let mut log = EventLog::new(phone.events());
    phone.start().unwrap();
    log.wait_for("Registered", |e| matches!(e, Event::Registered { .. })).await;

    kamailio.pause();
    let ev = log.wait_for("Disconnected", |e| matches!(e, Event::Disconnected { .. })).await;
    assert!(matches!(&ev, Event::Disconnected { reason, .. } if reason.contains("keep-alive")), "{ev:?}");
    kamailio.resume();
    log.wait_for("Registered again", |e| matches!(e, Event::Registered { .. })).await;
    phone.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_ping_detects_a_frozen_server() {
    detects_and_recovers(PingKind::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_crlf_ping_detects_a_frozen_server() {
    detects_and_recovers(PingKind::DoubleCrlf).await;
}
