//! Scenario: a wrong password ends in one RegistrationFailed with status
//! 401 and no automatic retry (never a retry storm).

mod support;

use support::*;
use webphone::{Event, Phone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_fails_once() {
    let kamailio = start_kamailio();
    let phone = Phone::new(phone_config(&[kamailio.ws_url()], "alice", "not-the-password").build().unwrap());
    let mut log = EventLog::new(phone.events());
    phone.start().unwrap();

    let failed = log.wait_for("RegistrationFailed", |e| matches!(e, Event::RegistrationFailed { .. })).await;
    let Event::RegistrationFailed { status, retry_in_ms, .. } = failed else { unreachable!() };
    assert_eq!(status, Some(401));
    assert_eq!(retry_in_ms, None, "a wrong password must not be retried automatically");
    assert!(!phone.is_registered());

    // Ask Kamailio for a round trip on the same connection: an explicit
    // register() after the failure is answered (one more failed attempt),
    // which proves the connection is alive and that nothing else was sent.
    phone.register().unwrap();
    log.wait_for("second RegistrationFailed", |e| matches!(e, Event::RegistrationFailed { .. })).await;
    phone.stop().await.unwrap();

    let attempts = kamailio.log().matches("auth: REGISTER from 'alice' failed").count();
    assert_eq!(attempts, 2, "one credentialed REGISTER per register() call, got {attempts}:\n{}", kamailio.log());
    assert!(!log.drain().iter().any(|e| matches!(e, Event::Registered { .. })));
}
