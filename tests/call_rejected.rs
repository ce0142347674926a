//! Scenario: Alice calls Bob through a real Kamailio (digest auth on), Bob
//! rings and rejects the call (486 Busy Here, then 603 Decline). Alice sees
//! the call end by the remote side with Bob's status; Bob sees it end
//! locally; Kamailio relayed the final response.

mod support;

use support::*;
use webphone::{CallDirection, CallOptions, Originator};

async fn reject_with(status: u16, reason: &str) {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;

    let call = alice.call("bob", CallOptions::default()).await.expect("call placed").key();
    let incoming = bob_log.wait_incoming().await;
    assert_eq!(incoming.direction, CallDirection::Incoming);
    assert_eq!(incoming.remote.user.as_deref(), Some("alice"));
    bob.reject(incoming.key, status).await.expect("rejected");

    let b = bob_log.wait_ended(incoming.key).await;
    let b_end = b.end.clone().expect("end cause");
    assert_eq!(b_end.by, Originator::Local, "{b:#?}");
    assert_eq!(b_end.status, Some(status), "{b:#?}");
    assert!(b.connected_ms.is_none(), "never connected: {b:#?}");
    assert!(b.ended_ms.is_some_and(|e| e >= b.started_ms), "{b:#?}");

    let a = alice_log.wait_ended(call).await;
    let a_end = a.end.clone().expect("end cause");
    assert_eq!(a_end.by, Originator::Remote, "{a:#?}");
    assert_eq!(a_end.status, Some(status), "{a:#?}");
    assert!(a_end.reason.contains(reason), "reason {:?} should mention {reason:?}", a_end.reason);
    assert!(a.connected_ms.is_none(), "never connected: {a:#?}");
    assert!(a.ended_ms.is_some_and(|e| e >= a.started_ms), "{a:#?}");
    assert!(
        !alice_log.seen.iter().any(|e| matches!(e, webphone::Event::CallConfirmed { .. })),
        "Alice never confirmed: {:#?}",
        alice_log.seen
    );

    // The proxy saw the final response go by (MANAGE_REPLY logs 3xx-6xx).
    wait_for_kamailio_log(&kamailio, &format!("reply {status} {reason} for INVITE")).await;

    // The call is gone on both sides: no stats for it any more.
    assert!(alice.call_stats(call).await.is_err());
    assert!(bob.call_stats(incoming.key).await.is_err());

    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_here_486_ends_the_call_on_both_sides() {
    reject_with(486, "Busy Here").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decline_603_ends_the_call_on_both_sides() {
    reject_with(603, "Decline").await;
}
