//! Scenario: unregister removes the binding at the registrar (Expires: 0),
//! and registering again works.

mod support;

use support::*;
use webphone::{Event, Phone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregister_removes_the_binding() {
    let kamailio = start_kamailio();
    let phone = Phone::new(phone_config(&[kamailio.ws_url()], "alice", ALICE_PASSWORD).build().unwrap());
    let mut log = EventLog::new(phone.events());
    phone.start().unwrap();
    log.wait_for("Registered", |e| matches!(e, Event::Registered { .. })).await;
    assert!(kamailio.rpc("ul.lookup", &["location", "alice@example.com"]).contains("transport=ws"));

    phone.unregister().unwrap();
    let ev = log.wait_for("Unregistered", |e| matches!(e, Event::Unregistered { .. })).await;
    assert!(matches!(ev, Event::Unregistered { ref reason, .. } if reason == "unregistered"), "{ev:?}");
    assert!(!phone.is_registered());
    assert!(phone.is_connected(), "unregistering keeps the connection");
    let lookup = kamailio.rpc("ul.lookup", &["location", "alice@example.com"]);
    assert!(!lookup.contains("transport=ws"), "binding still there: {lookup}");
    assert!(kamailio.log().contains("saving binding for alice expires=0"));

    phone.register().unwrap();
    log.wait_for("Registered again", |e| matches!(e, Event::Registered { .. })).await;
    assert!(kamailio.rpc("ul.lookup", &["location", "alice@example.com"]).contains("transport=ws"));

    // stop() unregisters too.
    phone.stop().await.unwrap();
    let lookup = kamailio.rpc("ul.lookup", &["location", "alice@example.com"]);
    assert!(!lookup.contains("transport=ws"), "stop() left the binding: {lookup}");
}
