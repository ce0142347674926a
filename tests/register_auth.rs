//! Scenario: register through a real Kamailio with digest authentication
//! (401 challenge, authenticated retry, binding saved with the granted expiry).

mod support;

use support::*;
use webphone::{Event, Phone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_digest_auth() {
    let kamailio = start_kamailio();
    let phone =
        Phone::new(phone_config(&[kamailio.ws_url()], "alice", ALICE_PASSWORD).register_expires(300).build().unwrap());
    let mut log = EventLog::new(phone.events());
    phone.start().unwrap();

    let connected = log.wait_for("Connected", |e| matches!(e, Event::Connected { .. })).await;
    assert_eq!(connected, Event::Connected { server: kamailio.ws_url() });
    let registered = log.wait_for("Registered", |e| matches!(e, Event::Registered { .. })).await;
    assert_eq!(registered, Event::Registered { server: kamailio.ws_url(), expires: 300 });
    assert!(phone.is_connected() && phone.is_registered());

    // Kamailio really holds the binding, with our WebSocket contact.
    let binding = kamailio.rpc("ul.lookup", &["location", "alice@example.com"]);
    assert!(binding.contains("transport=ws"), "no ws binding in {binding}");
    assert!(binding.contains(".invalid"), "contact host should be *.invalid: {binding}");
    assert!(kamailio.log().contains("saving binding for alice expires=300"));

    phone.stop().await.unwrap();
    assert!(!phone.is_registered());
    assert!(log.drain().iter().any(|e| matches!(e, Event::Unregistered { .. })), "{:#?}", log.seen);
}
