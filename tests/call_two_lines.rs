//! Scenario: lines. Alice (max_calls 2) holds two confirmed calls at once,
//! to Bob and to Carol, both with audio; a third call (to Dave) is refused
//! locally with `CallError::Busy` and never reaches the wire. Bob
//! (max_calls 1), busy with Alice, refuses an incoming call from Dave with
//! 486, which Dave sees as the remote end of his call. When Alice hangs up
//! one line, she can place the call to Dave.

mod support;

use support::*;
use webphone::media::CallStats;
use webphone::{CallError, CallOptions, Error, Event, Originator};

const CAROL_PASSWORD: &str = "carol-Secret-91d0";
const DAVE_PASSWORD: &str = "dave-Secret-4e8b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_lines_busy_third_call_and_busy_callee() {
    let kamailio = start_kamailio_with_users(&[("carol", CAROL_PASSWORD), ("dave", DAVE_PASSWORD)]);
    // Two independent lines, as a bot has them: no hold of line 1 when line 2
    // is placed (the softphone policy is tests/lines_policy.rs's and
    // tests/call_hold_resume.rs's).
    let (alice, mut alice_log) =
        registered_phone_with(&kamailio, "alice", ALICE_PASSWORD, |b| b.max_calls(2).hold_other_lines(false)).await;
    let (bob, mut bob_log) = registered_phone_with(&kamailio, "bob", BOB_PASSWORD, |b| b.max_calls(1)).await;
    let (carol, mut carol_log) = registered_phone(&kamailio, "carol", CAROL_PASSWORD).await;
    let (dave, mut dave_log) = registered_phone(&kamailio, "dave", DAVE_PASSWORD).await;

    // Line 1: Alice → Bob.
    let to_bob = alice.call("bob", CallOptions::default()).await.expect("call to bob").key();
    let at_bob = bob_log.wait_incoming().await;
    bob.answer(at_bob.key).await.expect("bob answers");
    alice_log.wait_confirmed(to_bob).await;
    bob_log.wait_confirmed(at_bob.key).await;

    // Line 2: Alice → Carol, while the first call is up.
    let to_carol = alice.call("carol", CallOptions::default()).await.expect("call to carol").key();
    let at_carol = carol_log.wait_incoming().await;
    assert_eq!(at_carol.remote.user.as_deref(), Some("alice"));
    carol.answer(at_carol.key).await.expect("carol answers");
    alice_log.wait_confirmed(to_carol).await;
    carol_log.wait_confirmed(at_carol.key).await;
    assert_ne!(to_bob, to_carol);

    // Both lines carry media at the same time.
    let flowing = |s: &CallStats| s.rx_packets > 10 && s.tx_packets > 10;
    wait_stats(&alice, to_bob, "media on line 1", flowing).await;
    wait_stats(&alice, to_carol, "media on line 2", flowing).await;

    // Line 3: refused locally, nothing on the wire.
    let third = alice.call("dave", CallOptions::default()).await;
    assert_eq!(third, Err(Error::Call(CallError::Busy)));
    assert!(
        !alice_log
            .drain()
            .iter()
            .any(|e| matches!(e, Event::CallOutgoing { call } if call.remote.user.as_deref() == Some("dave"))),
        "no CallOutgoing for the refused call: {:#?}",
        alice_log.seen
    );

    // Bob has one line and it is busy: Dave's call gets 486 from Bob.
    let dave_call = dave.call("bob", CallOptions::default()).await.expect("dave calls bob").key();
    let d = dave_log.wait_ended(dave_call).await;
    let d_end = d.end.clone().expect("end cause");
    assert_eq!(d_end.by, Originator::Remote, "{d:#?}");
    assert_eq!(d_end.status, Some(486), "{d:#?}");
    assert!(d.connected_ms.is_none(), "{d:#?}");
    wait_for_kamailio_log(&kamailio, "reply 486 Busy Here for INVITE").await;
    // Bob never rang for it, and his call with Alice is untouched.
    let bob_incoming = bob_log.drain().iter().filter(|e| matches!(e, Event::CallIncoming { .. })).count();
    assert_eq!(bob_incoming, 1, "{:#?}", bob_log.seen);
    assert!(!bob_log.seen.iter().any(|e| matches!(e, Event::CallEnded { .. })), "{:#?}", bob_log.seen);
    wait_stats(&bob, at_bob.key, "Bob's call still flowing", |s| s.rx_packets > 20).await;

    // Alice frees a line; now the call to Dave goes out.
    alice.hangup(to_carol).await.expect("hang up line 2");
    alice_log.wait_ended(to_carol).await;
    let c = carol_log.wait_ended(at_carol.key).await;
    assert_eq!(c.end.as_ref().map(|e| e.by), Some(Originator::Remote));
    let to_dave = alice.call("dave", CallOptions::default()).await.expect("line 2 is free again").key();
    let at_dave = dave_log.wait_incoming().await;
    assert_eq!(at_dave.remote.user.as_deref(), Some("alice"));
    dave.answer(at_dave.key).await.expect("dave answers");
    alice_log.wait_confirmed(to_dave).await;

    for key in [to_bob, to_dave] {
        alice.hangup(key).await.expect("hang up");
        alice_log.wait_ended(key).await;
    }
    bob_log.wait_ended(at_bob.key).await;
    dave_log.wait_ended(at_dave.key).await;
    for phone in [alice, bob, carol, dave] {
        phone.stop().await.unwrap();
    }
}
