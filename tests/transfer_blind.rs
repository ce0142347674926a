//! Blind transfer between three user agents behind the in-memory proxy, on
//! one fake clock (RFC 3515, RFC 5589 §6): alice calls bob, bob REFERs
//! alice to carol. Both roles are ours: bob the transferor, alice the
//! transferee. Success, the target busy, the REFER refused, a NOTIFY before
//! the 202, a NOTIFY crossing a BYE, no final NOTIFY, and `Refer-Sub: false`.

#[path = "support/sip_net.rs"]
mod sip_net;

use std::time::Duration;

use sip_net::{CallSettings, Net, Party};
use webphone::TransferPolicy;
use webphone::dialog::{CallEvent, CallKey};
use webphone::sip::{HeaderName, Message, Method, StatusCode, sipfrag};

const ALICE: Party = Party(0);
const BOB: Party = Party(1);
const CAROL: Party = Party(2);

fn settings() -> CallSettings {
    CallSettings { session_expires: None, ..Default::default() }
}

/// alice → bob confirmed, carol idle: (net, alice's key, bob's key).
fn call_with(alice: CallSettings, bob: CallSettings) -> (Net, CallKey, CallKey) {
    let mut net = Net::new(vec![("alice", alice), ("bob", bob), ("carol", settings())]);
    let a = net.call(ALICE, "bob");
    let b = net.incoming(BOB);
    net.answer(BOB, b);
    assert!(net.confirmed_call(ALICE, a) && net.confirmed_call(BOB, b));
    (net, a, b)
}

fn transfer(net: &mut Net, p: Party, key: CallKey, target: &str) {
    let now = net.now;
    net.ua(p).transfer(key, target, now).expect("transfer accepted");
    net.drive();
}

/// What `p` reported of transfers, in order, as short strings.
fn transfer_events(net: &Net, p: Party) -> Vec<String> {
    net.events
        .iter()
        .filter(|(s, _)| *s == p)
        .filter_map(|(_, e)| match e {
            CallEvent::TransferProgress { status, .. } => Some(format!("progress {status}")),
            CallEvent::TransferAccepted { .. } => Some("accepted".into()),
            CallEvent::TransferFailed { status, .. } => Some(format!("failed {status:?}")),
            CallEvent::TransferRequested { target, .. } => Some(format!("requested {target}")),
            _ => None,
        })
        .collect()
}

/// The status lines of the NOTIFYs `p` sent, with their Subscription-State.
fn notifies(net: &Net, p: Party) -> Vec<(u16, String)> {
    net.requests(p, Method::Notify)
        .iter()
        .map(|n| {
            let (code, _) = sipfrag::status_line(&n.body).expect("a sipfrag body");
            let state = n.headers.get(&HeaderName::SubscriptionState).unwrap_or("").to_string();
            (code, state)
        })
        .collect()
}

fn new_call_of(net: &Net, p: Party, old: CallKey) -> CallKey {
    net.events
        .iter()
        .find_map(|(s, e)| match e {
            CallEvent::Outgoing(c) if *s == p && c.transferred_from == Some(old) => Some(c.key),
            _ => None,
        })
        .expect("a call placed for the transfer")
}

#[test]
fn blind_transfer_succeeds_and_the_transferor_leaves() {
    let (mut net, a, b) = call_with(settings(), settings());
    transfer(&mut net, BOB, b, "carol");

    // The REFER as sent.
    let refer = net.requests(BOB, Method::Refer)[0].clone();
    assert_eq!(refer.headers.get(&HeaderName::ReferTo), Some("<sip:carol@example.com>"));
    assert_eq!(refer.headers.get(&HeaderName::ReferredBy), Some("<sip:bob@example.com>"));
    let refer_cseq = refer.headers.get(&HeaderName::CSeq).unwrap().split(' ').next().unwrap().to_string();
    // alice accepted with 202 and a NOTIFY 100 matched by the REFER's CSeq.
    assert!(net.statuses(ALICE).contains(&202));
    let first = net.requests(ALICE, Method::Notify)[0].clone();
    assert_eq!(first.headers.get(&HeaderName::Event), Some(format!("refer;id={refer_cseq}").as_str()));
    assert_eq!(first.headers.get(&HeaderName::ContentType), Some("message/sipfrag;version=2.0"));
    assert!(first.headers.get(&HeaderName::SubscriptionState).unwrap().starts_with("active"));
    assert_eq!(transfer_events(&net, ALICE), ["requested sip:carol@example.com"]);

    // alice called carol with Referred-By, holding bob's call first.
    let new = new_call_of(&net, ALICE, a);
    let invite = net.received_requests(CAROL, Method::Invite)[0].clone();
    assert_eq!(invite.headers.get(&HeaderName::ReferredBy), Some("<sip:bob@example.com>"));
    assert_eq!(net.ua(ALICE).call_held(a), Some((true, false)), "alice held bob's call before calling carol");
    assert_eq!(transfer_events(&net, BOB), ["progress 100", "progress 180"]);

    let c = net.incoming(CAROL);
    net.answer(CAROL, c);
    assert!(net.confirmed_call(ALICE, new) && net.confirmed_call(CAROL, c));
    assert_eq!(transfer_events(&net, BOB), ["progress 100", "progress 180", "accepted"]);
    let states = notifies(&net, ALICE);
    assert_eq!(states.iter().map(|(c, _)| *c).collect::<Vec<_>>(), [100, 180, 200]);
    assert_eq!(states.last().unwrap().1, "terminated;reason=noresource");
    // bob ended his call (the default), alice's old call ended by his BYE.
    let bob_end = net.ended_call(BOB, b).expect("bob's call ended").end.clone().unwrap();
    assert_eq!(bob_end.reason, "transferred");
    assert!(net.ended_call(ALICE, a).is_some());
    assert!(net.ended_call(ALICE, new).is_none(), "alice and carol talk on");
    assert_eq!(net.ua(ALICE).call_keys(), [new]);
    // Nothing left over: every call's bookkeeping is gone.
    net.run_for(Duration::from_secs(120));
    assert!(net.ua(BOB).call_keys().is_empty());
    assert_eq!(transfer_events(&net, BOB).len(), 3, "one outcome only");
}

#[test]
fn target_busy_fails_the_transfer_and_the_call_stays_resumable() {
    let (mut net, a, b) = call_with(settings(), settings());
    let now = net.now;
    net.ua(BOB).hold(b, now).unwrap();
    net.drive();
    transfer(&mut net, BOB, b, "carol");
    let c = net.incoming(CAROL);
    let now = net.now;
    net.ua(CAROL).reject(c, StatusCode::BUSY_HERE, now).unwrap();
    net.drive();

    assert_eq!(transfer_events(&net, BOB), ["progress 100", "progress 180", "failed Some(486)"]);
    assert_eq!(notifies(&net, ALICE).last().unwrap().0, 486);
    assert!(net.ended_call(BOB, b).is_none(), "the call stays up");
    let now = net.now;
    net.ua(BOB).resume(b, now).expect("resumable");
    net.drive();
    assert_eq!(net.ua(BOB).call_held(b), Some((false, true)), "bob resumed; alice still holds from her side");
    let now = net.now;
    net.ua(ALICE).resume(a, now).unwrap();
    net.drive();
    assert_eq!(net.ua(BOB).call_held(b), Some((false, false)), "talking again");
}

#[test]
fn refused_refer_fails_the_transfer() {
    let alice = CallSettings { transfer_policy: TransferPolicy::Reject, ..settings() };
    let (mut net, _a, b) = call_with(alice, settings());
    transfer(&mut net, BOB, b, "carol");
    assert!(net.statuses(ALICE).contains(&603));
    assert_eq!(transfer_events(&net, BOB), ["failed Some(603)"]);
    assert!(net.received_requests(CAROL, Method::Invite).is_empty());
    assert!(net.ended_call(BOB, b).is_none());
}

#[test]
fn notify_before_the_202_counts_as_acceptance() {
    let (mut net, _a, b) = call_with(settings(), settings());
    // alice's 202 is lost: the NOTIFYs still tell bob everything.
    net.drop_from = Some((ALICE, |m| matches!(m, Message::Response(r) if r.status.as_u16() == 202)));
    transfer(&mut net, BOB, b, "carol");
    let c = net.incoming(CAROL);
    net.answer(CAROL, c);
    net.run_for(Duration::from_secs(40)); // past the REFER's own time-out
    assert_eq!(transfer_events(&net, BOB), ["progress 100", "progress 180", "accepted"]);
}

#[test]
fn notify_crossing_our_bye_is_answered_and_reported() {
    let (mut net, a, b) = call_with(settings(), settings());
    transfer(&mut net, BOB, b, "carol");
    let c = net.incoming(CAROL);
    // bob hangs up while carol is ringing: alice's subscription outlives the
    // dialog's INVITE usage, so her final NOTIFY still reaches bob.
    net.hangup(BOB, b);
    assert!(net.ended_call(ALICE, a).is_some());
    net.answer(CAROL, c);
    assert_eq!(transfer_events(&net, BOB), ["progress 100", "progress 180", "accepted"]);
    let answered: Vec<u16> = net.statuses(BOB);
    assert!(!answered.contains(&481), "no NOTIFY was refused: {answered:?}");
    net.run_for(Duration::from_secs(1));
    assert!(net.ua(BOB).call_keys().is_empty());
}

#[test]
fn no_final_notify_fails_after_the_timeout_and_keeps_the_call() {
    let bob = CallSettings { transfer_timeout: Duration::from_secs(30), ..settings() };
    let (mut net, _a, b) = call_with(settings(), bob);
    // alice's NOTIFYs after the first are lost.
    net.drop_from = Some((
        ALICE,
        |m| matches!(m, Message::Request(r) if r.method == Method::Notify && !r.body.starts_with(b"SIP/2.0 100")),
    ));
    transfer(&mut net, BOB, b, "carol");
    net.run_for(Duration::from_secs(29));
    assert_eq!(transfer_events(&net, BOB), ["progress 100"]);
    net.run_for(Duration::from_secs(2));
    assert_eq!(transfer_events(&net, BOB), ["progress 100", "failed None"]);
    assert!(net.ended_call(BOB, b).is_none(), "the call stays up");
}

#[test]
fn refer_sub_false_gets_no_notifies() {
    let (mut net, a, b) = call_with(settings(), settings());
    // bob's REFER waives the subscription (RFC 4488).
    net.filter = Some(Box::new(|_, _, msg: &mut Message| {
        if let Message::Request(r) = msg
            && r.method == Method::Refer
            && r.headers.get(&HeaderName::new("Refer-Sub")).is_none()
        {
            r.headers.push(HeaderName::new("Refer-Sub"), "false");
        }
        true
    }));
    transfer(&mut net, BOB, b, "carol");
    let ok = net.responses(ALICE).into_iter().find(|r| r.status.as_u16() == 202).expect("202").clone();
    assert_eq!(ok.headers.get(&HeaderName::new("Refer-Sub")), Some("false"));
    assert!(net.requests(ALICE, Method::Notify).is_empty());
    assert_eq!(transfer_events(&net, BOB), ["accepted"], "the 202 is all bob learns");
    let c = net.incoming(CAROL);
    net.answer(CAROL, c);
    assert!(net.confirmed_call(ALICE, new_call_of(&net, ALICE, a)));
    assert!(net.requests(ALICE, Method::Notify).is_empty());
}
