//! Scenario: the binding is refreshed before the granted expiry, each
//! refresh in one round trip (the last challenge is reused with the next
//! nonce count, so Kamailio sees consecutive CSeqs with no 401 between).

mod support;

use support::*;
use webphone::{Event, Phone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_before_expiry_without_new_challenges() {
    let kamailio = start_kamailio();
    let phone =
        Phone::new(phone_config(&[kamailio.ws_url()], "alice", ALICE_PASSWORD).register_expires(2).build().unwrap());
    let mut log = EventLog::new(phone.events());
    phone.start().unwrap();
    let started = tokio::time::Instant::now();
    for _ in 0..3 {
        let ev = log.wait_for("Registered", |e| matches!(e, Event::Registered { .. })).await;
        assert!(matches!(ev, Event::Registered { expires: 2, .. }), "{ev:?}");
    }
    // Initial registration plus two refreshes, each 1 s after the previous
    // (a 2 s binding is refreshed at half its life).
    assert!(started.elapsed().as_secs_f64() < 4.0, "refreshes came late: {:?}", started.elapsed());
    assert!(!log.drain().iter().any(|e| matches!(e, Event::Unregistered { .. } | Event::RegistrationFailed { .. })));
    phone.stop().await.unwrap();

    let klog = kamailio.log();
    for cseq in 2..=4 {
        let line = format!("saving binding for alice expires=2 cseq={cseq}\n");
        assert!(
            klog.contains(&line),
            "REGISTER with CSeq {cseq} should be saved directly (no 401 in between):\n{klog}"
        );
    }
}
