//! Scenario: Alice calls someone Kamailio cannot reach: a user of the
//! domain who is not registered, a user the domain does not have at all,
//! and a user of another domain. The first two get 404 from the registrar's
//! location lookup, the third 403 (the proxy never relays elsewhere). Each
//! ends at Alice by the remote side with that status, and Alice can call
//! again afterwards.

mod support;

use support::*;
use webphone::{CallOptions, Event, Originator};

const CAROL_PASSWORD: &str = "carol-Secret-91d0";

async fn call_fails(
    alice: &webphone::Phone,
    alice_log: &mut EventLog,
    target: &str,
    status: u16,
) -> webphone::CallInfo {
    let call = alice.call(target, CallOptions::default()).await.expect("call placed").key();
    let a = alice_log.wait_ended(call).await;
    let end = a.end.clone().expect("end cause");
    assert_eq!(end.by, Originator::Remote, "{target}: {a:#?}");
    assert_eq!(end.status, Some(status), "{target}: {a:#?}");
    assert!(a.connected_ms.is_none(), "{target}: {a:#?}");
    assert!(a.ended_ms.is_some_and(|e| e >= a.started_ms), "{target}: {a:#?}");
    assert!(
        !alice_log.seen.iter().any(
            |e| matches!(e, Event::CallConfirmed { call } | Event::CallProgress { call, .. } if call.key == a.key)
        ),
        "{target}: no progress or answer: {:#?}",
        alice_log.seen
    );
    assert!(alice.call_stats(call).await.is_err(), "{target}: the call's media is released");
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_to_a_provisioned_but_unregistered_user_gets_404() {
    // carol has an account (she could register) but is not registered.
    let kamailio = start_kamailio_with_users(&[("carol", CAROL_PASSWORD)]);
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;

    let a = call_fails(&alice, &mut alice_log, "carol", 404).await;
    assert_eq!(a.remote.user.as_deref(), Some("carol"));
    assert_eq!(a.end.as_ref().map(|e| e.reason.as_str()), Some("Not Found"));
    // The INVITE was authenticated, then the location lookup failed.
    let log = kamailio.log();
    assert!(
        log.lines().any(|l| l.contains(&a.call_id) && l.contains("lookup <sip:carol@example.com> failed")),
        "no failed lookup for carol:\n{log}"
    );
    assert!(!log.contains("relaying INVITE"), "nothing was relayed:\n{log}");

    // The line is free again: a second attempt behaves the same.
    call_fails(&alice, &mut alice_log, "sip:carol@example.com", 404).await;
    alice.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_to_a_user_the_domain_does_not_have_gets_404() {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;

    let a = call_fails(&alice, &mut alice_log, "nobody", 404).await;
    assert_eq!(a.remote.user.as_deref(), Some("nobody"));
    let log = kamailio.log();
    assert!(
        log.lines().any(|l| l.contains(&a.call_id) && l.contains("lookup <sip:nobody@example.com> failed")),
        "no failed lookup for nobody:\n{log}"
    );
    alice.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_to_another_domain_is_refused_with_403() {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;

    let a = call_fails(&alice, &mut alice_log, "carol@elsewhere.example.net", 403).await;
    assert_eq!(a.remote.uri, "sip:carol@elsewhere.example.net");
    wait_for_kamailio_log(&kamailio, "rejecting request for foreign domain <sip:carol@elsewhere.example.net>").await;
    alice.stop().await.unwrap();
}
