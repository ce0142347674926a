//! A WebSocket drop during calls, on the in-memory proxy and one fake clock:
//! a confirmed call survives and refreshes its target when the connection
//! is back (UPDATE, or re-INVITE when the peer does not allow UPDATE),
//! retrying with backoff when that fails; calls still being set up end with
//! a cause that says why, and an orphaned INVITE is cancelled once
//! reconnected. And the BYE's outcome: `CallEnded` says when the far end
//! may not know.

#[path = "support/sip_net.rs"]
mod sip_net;

use std::time::Duration;

use sip_net::{CallSettings, Net, Party, strip_update_from_allow};
use webphone::dialog::{CallEvent, CallKey};
use webphone::sip::{HeaderName, Message, Method, StatusCode};

const ALICE: Party = Party(0);
const BOB: Party = Party(1);

fn settings() -> CallSettings {
    CallSettings { session_expires: None, ..Default::default() }
}

fn confirmed() -> (Net, CallKey, CallKey) {
    let mut net = Net::new(vec![("alice", settings()), ("bob", settings())]);
    let a = net.call(ALICE, "bob");
    let b = net.incoming(BOB);
    net.answer(BOB, b);
    (net, a, b)
}

fn reconnect(net: &mut Net, p: Party) {
    let now = net.now;
    net.ua(p).handle_disconnected(now);
    net.drive();
    let now = net.now;
    net.ua(p).handle_connected(now, "WS");
    net.drive();
}

fn refreshes(net: &Net, p: Party) -> Vec<&'static str> {
    net.events
        .iter()
        .filter(|(s, _)| *s == p)
        .filter_map(|(_, e)| match e {
            CallEvent::TargetRefreshed { .. } => Some("refreshed"),
            CallEvent::TargetRefreshFailed { .. } => Some("failed"),
            _ => None,
        })
        .collect()
}

#[test]
fn a_confirmed_call_refreshes_its_target_by_update_after_reconnecting() {
    let (mut net, a, b) = confirmed();
    reconnect(&mut net, ALICE);
    let update = net.requests(ALICE, Method::Update);
    assert_eq!(update.len(), 1, "one UPDATE");
    assert!(update[0].body.is_empty(), "without SDP");
    assert!(update[0].headers.get(&HeaderName::Contact).is_some(), "with our Contact: the proxy records it");
    assert_eq!(refreshes(&net, ALICE), ["refreshed"]);
    assert!(net.ended_call(ALICE, a).is_none() && net.ended_call(BOB, b).is_none());
    // The registration is made again too.
    assert!(net.requests(ALICE, Method::Register).len() <= 1 || net.ua(ALICE).is_connected());
}

#[test]
fn a_peer_without_update_gets_a_reinvite_with_our_sdp() {
    let mut net = Net::new(vec![("alice", settings()), ("bob", settings())]);
    net.filter = Some(Box::new(|_, _, msg: &mut Message| {
        strip_update_from_allow(msg);
        true
    }));
    let a = net.call(ALICE, "bob");
    let b = net.incoming(BOB);
    net.answer(BOB, b);
    let invites = net.requests(ALICE, Method::Invite).len();
    reconnect(&mut net, ALICE);
    assert!(net.requests(ALICE, Method::Update).is_empty());
    let all = net.requests(ALICE, Method::Invite);
    assert_eq!(all.len(), invites + 1, "one re-INVITE");
    assert!(String::from_utf8_lossy(&all.last().unwrap().body).contains("offer from A"), "our current SDP");
    assert_eq!(net.requests(ALICE, Method::Ack).len(), 2, "the re-INVITE's 2xx is ACKed");
    assert_eq!(refreshes(&net, ALICE), ["refreshed"]);
    assert!(net.ended_call(ALICE, a).is_none());
}

#[test]
fn a_failed_refresh_is_reported_and_retried_with_backoff_never_ending_the_call() {
    let (mut net, a, _b) = confirmed();
    // bob answers every UPDATE 500, three times.
    let mut refusals = 3;
    net.filter = Some(Box::new(move |_, _, msg: &mut Message| {
        if let Message::Response(r) = msg
            && r.headers.get(&HeaderName::CSeq).is_some_and(|c| c.ends_with("UPDATE"))
            && r.status.is_success()
            && refusals > 0
        {
            refusals -= 1;
            r.status = StatusCode::SERVER_INTERNAL_ERROR;
            r.reason = "Server Internal Error".into();
        }
        true
    }));
    reconnect(&mut net, ALICE);
    assert_eq!(refreshes(&net, ALICE), ["failed"]);
    let retries: Vec<Duration> = net
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            CallEvent::TargetRefreshFailed { retry_in, status: Some(500), .. } => Some(*retry_in),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [Duration::from_secs(1)]);
    net.run_for(Duration::from_millis(999));
    assert_eq!(net.requests(ALICE, Method::Update).len(), 1, "not before the backoff");
    net.run_for(Duration::from_secs(10));
    assert_eq!(refreshes(&net, ALICE), ["failed", "failed", "failed", "refreshed"]);
    let waits: Vec<Duration> = net
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            CallEvent::TargetRefreshFailed { retry_in, .. } => Some(*retry_in),
            _ => None,
        })
        .collect();
    assert_eq!(waits, [1, 2, 4].map(Duration::from_secs));
    assert!(net.ended_call(ALICE, a).is_none(), "the call never ended");
}

#[test]
fn calls_being_set_up_end_with_a_cause_and_an_orphaned_invite_is_cancelled() {
    let mut net = Net::new(vec![("alice", settings()), ("bob", settings())]);
    let a = net.call(ALICE, "bob");
    let b = net.incoming(BOB);
    reconnect(&mut net, ALICE);
    let end = net.ended_call(ALICE, a).expect("alice's call ended").end.clone().unwrap();
    assert_eq!(end.reason, "connection lost while calling out");
    let cancel = net.requests(ALICE, Method::Cancel);
    assert_eq!(cancel.len(), 1, "CANCEL sent on the new connection");
    let end = net.ended_call(BOB, b).expect("bob stops ringing").end.clone().unwrap();
    assert_eq!(end.status, Some(487));
    net.run_for(Duration::from_secs(60));
    assert!(net.ua(ALICE).call_keys().is_empty());

    // Ringing here when the connection drops.
    let mut net = Net::new(vec![("alice", settings()), ("bob", settings())]);
    net.call(ALICE, "bob");
    let b = net.incoming(BOB);
    reconnect(&mut net, BOB);
    let end = net.ended_call(BOB, b).expect("bob's ringing call ended").end.clone().unwrap();
    assert_eq!(end.reason, "connection lost while ringing here");
}

#[test]
fn a_hold_in_flight_when_the_connection_drops_is_reported_failed() {
    let (mut net, a, _b) = confirmed();
    net.drop_from = Some((ALICE, |m| matches!(m, Message::Request(r) if r.method == Method::Invite)));
    let now = net.now;
    net.ua(ALICE).hold(a, now).unwrap();
    net.drive();
    net.drop_from = None;
    reconnect(&mut net, ALICE);
    assert!(net.events.iter().any(|(p, e)| *p == ALICE && matches!(e, CallEvent::HoldFailed { .. })));
    assert_eq!(refreshes(&net, ALICE), ["refreshed"], "the refresh went out after the hold was given up");
    let now = net.now;
    net.ua(ALICE).hold(a, now).expect("hold again");
    net.drive();
    assert_eq!(net.ua(ALICE).call_held(a), Some((true, false)));
}

/// How `p`'s call `key` ended, once reported.
fn end_of(net: &Net, p: Party, key: CallKey) -> Option<webphone::EndCause> {
    net.ended_call(p, key).and_then(|c| c.end.clone())
}

#[test]
fn call_ended_says_when_the_bye_failed() {
    // Answered: nothing to add.
    let (mut net, a, _) = confirmed();
    net.hangup(ALICE, a);
    assert_eq!(end_of(&net, ALICE, a).unwrap().bye_status, None);

    // Refused 481: reported at once, with the status.
    let (mut net, a, _) = confirmed();
    net.filter = Some(Box::new(|_, _, msg: &mut Message| {
        if let Message::Response(r) = msg
            && r.headers.get(&HeaderName::CSeq).is_some_and(|c| c.ends_with("BYE"))
        {
            r.status = StatusCode::CALL_DOES_NOT_EXIST;
        }
        true
    }));
    net.hangup(ALICE, a);
    let end = end_of(&net, ALICE, a).expect("reported");
    assert_eq!((end.bye_status, end.reason.as_str()), (Some(481), "hung up"));

    // Lost: reported when the BYE times out (64*T1), with 408.
    let (mut net, a, _) = confirmed();
    net.drop_from = Some((ALICE, |m| matches!(m, Message::Request(r) if r.method == Method::Bye)));
    net.hangup(ALICE, a);
    assert!(end_of(&net, ALICE, a).is_none(), "not before the BYE's outcome");
    assert!(net.ua(ALICE).call_keys().is_empty(), "the line is free at once");
    net.run_for(Duration::from_secs(33));
    assert_eq!(end_of(&net, ALICE, a).expect("reported").bye_status, Some(408));

    // The connection drops while the BYE waits: 503.
    let (mut net, a, _) = confirmed();
    net.drop_from = Some((ALICE, |m| matches!(m, Message::Request(r) if r.method == Method::Bye)));
    net.hangup(ALICE, a);
    let now = net.now;
    net.ua(ALICE).handle_disconnected(now);
    net.drive();
    assert_eq!(end_of(&net, ALICE, a).expect("reported").bye_status, Some(503));
}
