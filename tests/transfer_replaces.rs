//! The transfer target's rules for an INVITE with `Replaces` (RFC 3891
//! §3), on the in-memory proxy and one fake clock: alice calls bob, and
//! dave sends bob INVITEs whose Replaces name that dialog in various ways.

#[path = "support/sip_net.rs"]
mod sip_net;

use std::time::Duration;

use sip_net::{CallSettings, Net, Party};
use webphone::CallRequest;
use webphone::dialog::{CallEvent, CallKey};
use webphone::sip::{HeaderName, Method, NameAddr};

const ALICE: Party = Party(0);
const BOB: Party = Party(1);
const DAVE: Party = Party(2);

fn settings() -> CallSettings {
    CallSettings { session_expires: None, ..Default::default() }
}

/// alice calls bob (answered when `answer`): (net, alice's key, bob's key).
fn alice_calls_bob(answer: bool) -> (Net, CallKey, CallKey) {
    let mut net = Net::new(vec![("alice", settings()), ("bob", settings()), ("dave", settings())]);
    let a = net.call(ALICE, "bob");
    let b = net.incoming(BOB);
    if answer {
        net.answer(BOB, b);
    }
    (net, a, b)
}

/// The dialog as bob sees it: (Call-ID, bob's tag, alice's tag).
fn bobs_dialog(net: &Net) -> (String, String, String) {
    let invite = net.received_requests(BOB, Method::Invite)[0].clone();
    let call_id = invite.headers.get(&HeaderName::CallId).unwrap().to_string();
    let alice_tag = NameAddr::parse(invite.headers.get(&HeaderName::From).unwrap()).unwrap().tag().unwrap().to_string();
    let ringing = net.responses(BOB).into_iter().find(|r| r.status.as_u16() == 180).unwrap().clone();
    let bob_tag = NameAddr::parse(ringing.headers.get(&HeaderName::To).unwrap()).unwrap().tag().unwrap().to_string();
    (call_id, bob_tag, alice_tag)
}

/// dave calls bob with this Replaces value; returns dave's call and the
/// final status he got (None: still pending).
fn dave_replaces(net: &mut Net, replaces: String) -> (CallKey, Option<u16>) {
    let now = net.now;
    let request =
        CallRequest { target: "bob".into(), headers: vec![("Replaces".into(), replaces)], ..Default::default() };
    let d = net.ua(DAVE).call(request, now).unwrap();
    net.drive();
    let status = net.events.iter().find_map(|(s, e)| match e {
        CallEvent::Ended(c) if *s == DAVE && c.key == d => c.end.as_ref().and_then(|e| e.status),
        _ => None,
    });
    (d, status)
}

#[test]
fn replaces_a_confirmed_dialog_in_either_tag_order() {
    for reversed in [false, true] {
        let (mut net, a, b) = alice_calls_bob(true);
        let (call_id, bob_tag, alice_tag) = bobs_dialog(&net);
        let value = if reversed {
            format!("{call_id};to-tag={alice_tag};from-tag={bob_tag}")
        } else {
            format!("{call_id};to-tag={bob_tag};from-tag={alice_tag}")
        };
        let (d, status) = dave_replaces(&mut net, value);
        assert_eq!(status, None, "reversed={reversed}: dave's call is not refused");
        assert!(net.confirmed_call(DAVE, d), "reversed={reversed}: bob answered dave at once");
        let (old, new) = net
            .events
            .iter()
            .find_map(|(s, e)| match e {
                CallEvent::CallReplaced { old, new } if *s == BOB => Some((old.key, new.key)),
                _ => None,
            })
            .expect("bob reports the replacement");
        assert_eq!(old, b);
        assert!(net.confirmed_call(BOB, new));
        assert!(net.ended_call(BOB, b).is_some() && net.ended_call(ALICE, a).is_some(), "alice got BYE");
        assert_eq!(net.ua(BOB).call_keys(), [new]);
    }
}

#[test]
fn refusals_follow_rfc_3891() {
    // Unknown dialog: 481.
    let (mut net, _, _) = alice_calls_bob(true);
    let (_, status) = dave_replaces(&mut net, "nosuchcall;to-tag=x;from-tag=y".into());
    assert_eq!(status, Some(481));

    // early-only on a confirmed dialog: 486.
    let (mut net, _, b) = alice_calls_bob(true);
    let (call_id, bob_tag, alice_tag) = bobs_dialog(&net);
    let (_, status) = dave_replaces(&mut net, format!("{call_id};to-tag={bob_tag};from-tag={alice_tag};early-only"));
    assert_eq!(status, Some(486));
    assert!(net.ended_call(BOB, b).is_none(), "the call is untouched");

    // A dialog that ended: 603.
    let (mut net, a, _) = alice_calls_bob(true);
    let (call_id, bob_tag, alice_tag) = bobs_dialog(&net);
    net.hangup(ALICE, a);
    let (_, status) = dave_replaces(&mut net, format!("{call_id};to-tag={bob_tag};from-tag={alice_tag}"));
    assert_eq!(status, Some(603));
    // ... also once bob has forgotten the call itself.
    net.run_for(Duration::from_secs(60));
    assert!(net.ua(BOB).call_keys().is_empty());
    let (_, status) = dave_replaces(&mut net, format!("{call_id};to-tag={alice_tag};from-tag={bob_tag}"));
    assert_eq!(status, Some(603));

    // An early dialog bob did not originate (alice's call rings at bob): 481.
    let (mut net, _, b) = alice_calls_bob(false);
    let (call_id, bob_tag, alice_tag) = bobs_dialog(&net);
    let (_, status) = dave_replaces(&mut net, format!("{call_id};to-tag={bob_tag};from-tag={alice_tag}"));
    assert_eq!(status, Some(481));
    assert!(net.ended_call(BOB, b).is_none(), "still ringing");

    // A malformed Replaces: 400.
    let (mut net, _, _) = alice_calls_bob(true);
    let (_, status) = dave_replaces(&mut net, "callid;to-tag=x".into());
    assert_eq!(status, Some(400));
}

#[test]
fn replaces_an_early_dialog_we_originated() {
    // bob calls alice, who rings: the early dialog is bob's.
    let mut net = Net::new(vec![("alice", settings()), ("bob", settings()), ("dave", settings())]);
    let b = net.call(BOB, "alice");
    let a = net.incoming(ALICE);
    let ringing = net.responses(ALICE).into_iter().find(|r| r.status.as_u16() == 180).unwrap().clone();
    let call_id = ringing.headers.get(&HeaderName::CallId).unwrap().to_string();
    let bob_tag = NameAddr::parse(ringing.headers.get(&HeaderName::From).unwrap()).unwrap().tag().unwrap().to_string();
    let alice_tag = NameAddr::parse(ringing.headers.get(&HeaderName::To).unwrap()).unwrap().tag().unwrap().to_string();
    let (d, status) = dave_replaces(&mut net, format!("{call_id};to-tag={bob_tag};from-tag={alice_tag}"));
    assert_eq!(status, None);
    assert!(net.confirmed_call(DAVE, d));
    assert!(!net.requests(BOB, Method::Cancel).is_empty(), "bob cancelled his call to alice");
    assert_eq!(net.ended_call(ALICE, a).and_then(|c| c.end.as_ref()).and_then(|e| e.status), Some(487));
    assert!(net.ended_call(BOB, b).is_some());
}
