//! Scenario: Kamailio is stopped and restarted while we are registered. The
//! phone reports Disconnected, retries with backoff while the server is
//! down, reconnects when it is back and registers again.

mod support;

use support::*;
use webphone::{Event, Phone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_and_reregisters_after_server_restart() {
    let mut kamailio = start_kamailio();
    let url = kamailio.ws_url();
    let phone = Phone::new(phone_config(std::slice::from_ref(&url), "alice", ALICE_PASSWORD).build().unwrap());
    let mut log = EventLog::new(phone.events());
    phone.start().unwrap();
    log.wait_for("Registered", |e| matches!(e, Event::Registered { .. })).await;

    kamailio.stop();
    let ev = log.wait_for("Disconnected", |e| matches!(e, Event::Disconnected { .. })).await;
    let Event::Disconnected { retry_in_ms, .. } = ev else { unreachable!() };
    assert!(retry_in_ms.is_some_and(|ms| ms <= 100), "first retry within the minimum backoff: {retry_in_ms:?}");
    log.wait_for("Unregistered", |e| matches!(e, Event::Unregistered { .. })).await;
    assert!(!phone.is_connected() && !phone.is_registered());

    // While the server is down, attempts fail and the waits grow.
    let mut delays = Vec::new();
    while delays.len() < 3 {
        if let Event::ConnectFailed { retry_in_ms, next_server, .. } =
            log.wait_for("ConnectFailed", |e| matches!(e, Event::ConnectFailed { .. })).await
        {
            assert_eq!(next_server.as_deref(), Some(url.as_str()));
            delays.push(retry_in_ms.expect("a refused connection is retried"));
        }
    }
    assert!(delays.iter().all(|d| *d >= 50 && *d <= 1000), "backoff within bounds: {delays:?}");
    assert!(delays[2] >= delays[0], "backoff grows: {delays:?}");

    kamailio.restart();
    log.wait_for("Connected again", |e| matches!(e, Event::Connected { .. })).await;
    let ev = log.wait_for("Registered again", |e| matches!(e, Event::Registered { .. })).await;
    assert_eq!(ev, Event::Registered { server: url, expires: 600 });
    assert!(kamailio.rpc("ul.lookup", &["location", "alice@example.com"]).contains("transport=ws"));
    phone.stop().await.unwrap();
}
