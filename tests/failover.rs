//! Scenario: two servers, the first down. The phone fails over to the
//! second at once and registers there.

mod support;

use support::*;
use webphone::{Event, Phone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_the_second_server() {
    let kamailio = start_kamailio();
    let dead = format!("ws://127.0.0.1:{}", unused_port());
    let live = kamailio.ws_url();
    let phone = Phone::new(phone_config(&[dead.clone(), live.clone()], "alice", ALICE_PASSWORD).build().unwrap());
    let mut log = EventLog::new(phone.events());
    phone.start().unwrap();

    let ev = log.wait_for("ConnectFailed", |e| matches!(e, Event::ConnectFailed { .. })).await;
    let Event::ConnectFailed { server, next_server, retry_in_ms, kind, .. } = ev else { unreachable!() };
    assert_eq!((server.as_str(), next_server.as_deref(), retry_in_ms), (dead.as_str(), Some(live.as_str()), Some(0)));
    assert_eq!(kind, webphone::FailureKind::ConnectionRefused);
    assert_eq!(
        log.wait_for("Connected", |e| matches!(e, Event::Connected { .. })).await,
        Event::Connected { server: live.clone() }
    );
    let ev = log.wait_for("Registered", |e| matches!(e, Event::Registered { .. })).await;
    assert_eq!(ev, Event::Registered { server: live, expires: 600 });
    phone.stop().await.unwrap();
}
