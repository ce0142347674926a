//! Scenario: Alice calls Bob through a real Kamailio and hangs up before Bob
//! answers. While Bob rings, that is a CANCEL: Alice's INVITE ends with 487
//! (by Alice), Bob's ringing call ends by the caller with 487. Hanging up
//! right after `call()` returns, or just as Kamailio relays the INVITE,
//! must end the call cleanly on both sides too, whichever moment it hits.

mod support;

use std::collections::HashSet;

use support::*;
use webphone::{CallInfo, CallOptions, Event, Originator};

fn ended_calls(log: &EventLog) -> Vec<&CallInfo> {
    log.seen
        .iter()
        .filter_map(|e| match e {
            Event::CallEnded { call, .. } => Some(call),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_ringing_ends_both_sides_with_487() {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;

    let call = alice.call("bob", CallOptions::default()).await.expect("call placed").key();
    let incoming = bob_log.wait_incoming().await;
    alice_log.wait_for("CallProgress 180", |e| matches!(e, Event::CallProgress { status: 180, .. })).await;
    alice.hangup(call).await.expect("hung up");

    let a = alice_log.wait_ended(call).await;
    let a_end = a.end.clone().expect("end cause");
    assert_eq!(a_end.by, Originator::Local, "{a:#?}");
    assert_eq!(a_end.status, Some(487), "{a:#?}");
    assert!(a.connected_ms.is_none(), "{a:#?}");

    let b = bob_log.wait_ended(incoming.key).await;
    let b_end = b.end.clone().expect("end cause");
    assert_eq!(b_end.by, Originator::Remote, "{b:#?}");
    assert_eq!(b_end.status, Some(487), "{b:#?}");
    assert!(b_end.reason.to_ascii_lowercase().contains("cancel"), "reason {:?}", b_end.reason);
    assert!(b.connected_ms.is_none(), "{b:#?}");
    assert_eq!(b.call_id, a.call_id);

    // Bob's 487 for the INVITE came back through the proxy (the cfg logs
    // relayed 3xx-6xx replies; CANCEL itself is relayed without a log line).
    wait_for_kamailio_log(&kamailio, "reply 487 Request Terminated for INVITE").await;
    let log = kamailio.log();
    assert!(
        log.lines().any(|l| l.contains(&a.call_id) && l.contains("reply 487")),
        "the relayed 487 belongs to the call:\n{log}"
    );

    // Neither phone is left with a call: Bob can still answer a new one.
    let again = alice.call("bob", CallOptions::default()).await.expect("second call placed").key();
    let incoming = bob_log.wait_incoming().await;
    bob.answer(incoming.key).await.expect("answered");
    alice_log.wait_confirmed(again).await;
    bob_log.wait_confirmed(incoming.key).await;
    alice.hangup(again).await.unwrap();
    alice_log.wait_ended(again).await;
    bob_log.wait_ended(incoming.key).await;

    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
}

/// When Alice hangs up in one attempt.
#[derive(Clone, Copy, Debug)]
enum HangupAt {
    /// As soon as `call()` returned (the offer is still being made).
    Returned,
    /// When CallOutgoing arrived.
    OutgoingEvent,
    /// When Kamailio logs that it relays the authenticated INVITE to Bob
    /// (Alice may not have any provisional response yet).
    InviteRelayed,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangup_right_after_dialing_ends_cleanly_on_both_sides() {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;

    let mut call_ids = Vec::new();
    for at in [HangupAt::Returned, HangupAt::OutgoingEvent, HangupAt::InviteRelayed] {
        let call = alice.call("bob", CallOptions::default()).await.expect("call placed").key();
        match at {
            HangupAt::Returned => {}
            HangupAt::OutgoingEvent => {
                alice_log
                    .wait_for("CallOutgoing", |e| matches!(e, Event::CallOutgoing { call: c } if c.key == call))
                    .await;
            }
            HangupAt::InviteRelayed => {
                let outgoing = alice_log
                    .wait_for("CallOutgoing", |e| matches!(e, Event::CallOutgoing { call: c } if c.key == call))
                    .await;
                let Event::CallOutgoing { call: info } = outgoing else { unreachable!() };
                // Kamailio logs the relayed INVITE with the Call-ID in the line's prefix.
                let found = tokio::task::block_in_place(|| {
                    let deadline = std::time::Instant::now() + TIMEOUT;
                    loop {
                        if kamailio
                            .log()
                            .lines()
                            .any(|l| l.contains(&info.call_id) && l.contains("relaying INVITE to <"))
                        {
                            return true;
                        }
                        if std::time::Instant::now() > deadline {
                            return false;
                        }
                        std::thread::yield_now();
                    }
                });
                assert!(found, "Kamailio never relayed the INVITE of {}:\n{}", info.call_id, kamailio.log());
            }
        }
        alice.hangup(call).await.expect("hung up");
        let a = alice_log.wait_ended(call).await;
        let a_end = a.end.clone().expect("end cause");
        assert_eq!(a_end.by, Originator::Local, "{at:?}: {a:#?}");
        assert!(a.connected_ms.is_none(), "{at:?}: {a:#?}");
        assert!(
            a_end.status.is_none() || a_end.status == Some(487),
            "{at:?}: ended before dialing (no status) or cancelled (487): {a:#?}"
        );
        call_ids.push((at, a.call_id.clone(), a_end));
    }

    // A last call that Bob answers: it proves both phones are in a clean
    // state, and that everything about the earlier calls reached Bob before it.
    let last = alice.call("bob", CallOptions::default()).await.expect("last call placed").key();
    let last_info = loop {
        let incoming = bob_log.wait_incoming().await;
        if !call_ids.iter().any(|(_, id, _)| *id == incoming.call_id) {
            break incoming;
        }
    };
    bob.answer(last_info.key).await.expect("answered");
    alice_log.wait_confirmed(last).await;
    bob_log.wait_confirmed(last_info.key).await;

    // Every earlier call that rang at Bob ended there, cancelled by Alice.
    let rang: Vec<CallInfo> = bob_log
        .seen
        .iter()
        .filter_map(|e| match e {
            Event::CallIncoming { call } if call.key != last_info.key => Some(call.clone()),
            _ => None,
        })
        .collect();
    for incoming in &rang {
        let b = match ended_calls(&bob_log).into_iter().find(|c| c.key == incoming.key) {
            Some(b) => b.clone(),
            None => bob_log.wait_ended(incoming.key).await,
        };
        let b_end = b.end.clone().expect("end cause");
        assert_eq!(b_end.by, Originator::Remote, "{b:#?}");
        assert_eq!(b_end.status, Some(487), "{b:#?}");
        let (at, _, a_end) = call_ids.iter().find(|(_, id, _)| *id == b.call_id).expect("one of ours");
        assert_eq!(a_end.status, Some(487), "{at:?}: Bob rang, so Alice's INVITE was cancelled: {a_end:?}");
    }
    // A call Bob never saw must not have reached him through the proxy either.
    let rang_ids: HashSet<&str> = rang.iter().map(|c| c.call_id.as_str()).collect();
    let log = kamailio.log();
    for (at, id, _) in &call_ids {
        let relayed = log.lines().any(|l| l.contains(id.as_str()) && l.contains("relaying INVITE"));
        assert_eq!(relayed, rang_ids.contains(id.as_str()), "{at:?}: relayed INVITE {id} vs Bob's events");
    }
    eprintln!(
        "outcomes: {:?}",
        call_ids.iter().map(|(at, id, end)| (at, rang_ids.contains(id.as_str()), end)).collect::<Vec<_>>()
    );

    alice.hangup(last).await.unwrap();
    alice_log.wait_ended(last).await;
    bob_log.wait_ended(last_info.key).await;
    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
}
