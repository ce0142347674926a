//! Hold and resume between two user agents behind the in-memory proxy, on
//! one fake clock (RFC 3264 §8.4, RFC 6337): the directions offered in
//! every combination of who holds, the events on both sides, idempotence,
//! a hold asked for while another exchange is in progress, and holds that
//! fail (488, no answer) leaving the call up as it was.

#[path = "support/sip_net.rs"]
mod sip_net;

use std::time::Duration;

use sip_net::{CallSettings, Net, Node, Party};
use webphone::dialog::{CallEvent, CallKey, MediaRequest};
use webphone::sip::{HeaderName, Message, Method, StatusCode};
use webphone::{MediaDirection, Originator};

const ALICE: Party = Party(0);
const BOB: Party = Party(1);

fn no_timer() -> CallSettings {
    CallSettings { session_expires: None, ..Default::default() }
}

/// A confirmed call: (net, alice's key, bob's key).
fn confirmed() -> (Net, CallKey, CallKey) {
    let mut net = Net::new(vec![("alice", no_timer()), ("bob", no_timer())]);
    let a = net.call(ALICE, "bob");
    let b = net.incoming(BOB);
    net.answer(BOB, b);
    assert!(net.confirmed(ALICE) && net.confirmed(BOB));
    (net, a, b)
}

/// The hold events `p` reported, in order: ("held" | "resumed", by).
fn hold_events(net: &Net, p: Party) -> Vec<(&'static str, Originator)> {
    net.events
        .iter()
        .filter(|(s, _)| *s == p)
        .filter_map(|(_, e)| match e {
            CallEvent::Held { by, .. } => Some(("held", *by)),
            CallEvent::Resumed { by, .. } => Some(("resumed", *by)),
            _ => None,
        })
        .collect()
}

/// The directions `p` asked its media side to re-offer, in order.
fn reoffers(net: &Net, p: Party) -> Vec<MediaDirection> {
    net.media
        .iter()
        .filter(|(s, _)| *s == p)
        .filter_map(|(_, r)| match r {
            MediaRequest::Reoffer { direction, .. } => Some(*direction),
            _ => None,
        })
        .collect()
}

fn hold(net: &mut Net, p: Party, key: CallKey, held: bool) {
    let now = net.now;
    let ua = net.ua(p);
    if held { ua.hold(key, now) } else { ua.resume(key, now) }.expect("hold/resume accepted");
    net.drive();
}

#[test]
fn hold_and_resume_from_either_side_in_every_combination() {
    let (mut net, a, b) = confirmed();
    let invites_before = net.requests(ALICE, Method::Invite).len();

    hold(&mut net, ALICE, a, true);
    assert_eq!(reoffers(&net, ALICE), [MediaDirection::SendOnly], "hold offers sendonly");
    assert_eq!(net.requests(ALICE, Method::Invite).len(), invites_before + 1, "one re-INVITE");
    let reinvite = net.requests(ALICE, Method::Invite).last().cloned().cloned().unwrap();
    assert!(String::from_utf8_lossy(&reinvite.body).contains("a=sendonly"));
    let acked = format!("{} ACK", reinvite.headers.get(&HeaderName::CSeq).unwrap().split(' ').next().unwrap());
    assert!(net.requests(ALICE, Method::Ack).iter().any(|r| r.headers.get(&HeaderName::CSeq) == Some(acked.as_str())));
    assert!(
        net.media.iter().any(|(p, r)| *p == ALICE && matches!(r, MediaRequest::ApplyAnswer { call, .. } if *call == a)),
        "alice's media applies bob's answer to the hold"
    );
    assert_eq!(hold_events(&net, ALICE), [("held", Originator::Local)]);
    assert_eq!(hold_events(&net, BOB), [("held", Originator::Remote)]);
    assert_eq!(net.ua(ALICE).call_held(a), Some((true, false)));
    assert_eq!(net.ua(BOB).call_held(b), Some((false, true)));

    // A second hold changes nothing: no re-INVITE, no event.
    hold(&mut net, ALICE, a, true);
    assert_eq!(net.requests(ALICE, Method::Invite).len(), invites_before + 1, "hold is idempotent");

    // Bob holds too: he is held already, so he offers inactive.
    hold(&mut net, BOB, b, true);
    assert_eq!(reoffers(&net, BOB), [MediaDirection::Inactive]);
    assert_eq!(hold_events(&net, BOB).last(), Some(&("held", Originator::Local)));
    assert_eq!(hold_events(&net, ALICE).last(), Some(&("held", Originator::Remote)));

    // Alice resumes while bob still holds: recvonly.
    hold(&mut net, ALICE, a, false);
    assert_eq!(reoffers(&net, ALICE).last(), Some(&MediaDirection::RecvOnly));
    assert_eq!(hold_events(&net, ALICE).last(), Some(&("resumed", Originator::Local)));
    assert_eq!(hold_events(&net, BOB).last(), Some(&("resumed", Originator::Remote)));

    // Bob resumes: sendrecv, nobody holds.
    hold(&mut net, BOB, b, false);
    assert_eq!(reoffers(&net, BOB).last(), Some(&MediaDirection::SendRecv));
    assert_eq!(net.ua(ALICE).call_held(a), Some((false, false)));
    assert_eq!(net.ua(BOB).call_held(b), Some((false, false)));
    assert_eq!(
        hold_events(&net, ALICE),
        [
            ("held", Originator::Local),
            ("held", Originator::Remote),
            ("resumed", Originator::Local),
            ("resumed", Originator::Remote)
        ]
    );
    assert!(net.ended(ALICE).is_none() && net.ended(BOB).is_none());
}

#[test]
fn a_resume_asked_for_while_the_hold_is_pending_follows_it() {
    let (mut net, a, _) = confirmed();
    net.auto_media = false;
    let now = net.now;
    net.ua(ALICE).hold(a, now).unwrap();
    net.drive();
    // Alice's media makes the hold offer; bob's media has not answered yet.
    net.ua(ALICE).handle_local_sdp(a, Ok("v=0 hold\r\na=sendonly\r\n".into()), now);
    net.drive();
    net.ua(ALICE).resume(a, now).unwrap();
    net.ua(ALICE).hold(a, now).unwrap();
    net.ua(ALICE).resume(a, now).unwrap();
    net.drive();
    assert_eq!(reoffers(&net, ALICE), [MediaDirection::SendOnly], "nothing more while the hold is pending");
    let b = net.incoming(BOB);
    net.auto_media = true;
    let now = net.now;
    net.ua(BOB).handle_local_sdp(b, Ok("v=0 answer\r\na=recvonly\r\n".into()), now);
    net.drive();
    // The hold completes, then the resume the application asked for last goes out.
    assert_eq!(reoffers(&net, ALICE), [MediaDirection::SendOnly, MediaDirection::SendRecv]);
    assert_eq!(hold_events(&net, ALICE), [("held", Originator::Local), ("resumed", Originator::Local)]);
    assert_eq!(net.ua(ALICE).call_held(a), Some((false, false)));
}

#[test]
fn a_refused_hold_leaves_the_call_as_it_was_and_a_later_hold_works() {
    let (mut net, a, _) = confirmed();
    let mut refused = false;
    net.filter = Some(Box::new(move |from, _to, msg| {
        if from == Node::Party(BOB)
            && let Message::Response(r) = msg
            && r.status.as_u16() == 200
            && r.headers.get(&HeaderName::CSeq).is_some_and(|c| c.ends_with("INVITE") && !c.starts_with("1 "))
            && !refused
        {
            refused = true;
            r.status = StatusCode::new(488).unwrap();
            r.reason = "Not Acceptable Here".into();
            r.body = Default::default();
            r.headers.remove(&HeaderName::ContentType);
        }
        true
    }));
    hold(&mut net, ALICE, a, true);
    let failed: Vec<_> = net
        .events
        .iter()
        .filter_map(|(p, e)| match e {
            CallEvent::HoldFailed { status, .. } if *p == ALICE => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [Some(488)], "HoldFailed with the status");
    assert!(
        net.media.iter().any(|(p, r)| *p == ALICE && matches!(r, MediaRequest::RollbackOffer { call } if *call == a)),
        "the refused offer is rolled back"
    );
    assert!(hold_events(&net, ALICE).is_empty());
    assert_eq!(net.ua(ALICE).call_held(a), Some((false, false)));
    assert!(net.ended(ALICE).is_none() && net.requests(ALICE, Method::Bye).is_empty(), "the call is up");

    // Asked again, the hold goes through.
    hold(&mut net, ALICE, a, true);
    assert_eq!(hold_events(&net, ALICE), [("held", Originator::Local)]);
}

#[test]
fn a_hold_never_answered_fails_after_64_t1_and_the_call_stays() {
    let (mut net, a, _) = confirmed();
    net.filter = Some(Box::new(|from, _to, msg| {
        // Bob's answers to the re-INVITE are lost.
        !(from == Node::Party(BOB)
            && matches!(msg, Message::Response(r) if r.headers.get(&HeaderName::CSeq).is_some_and(|c| c.ends_with("INVITE"))))
    }));
    hold(&mut net, ALICE, a, true);
    net.run_for(Duration::from_secs(31));
    assert!(!net.events.iter().any(|(_, e)| matches!(e, CallEvent::HoldFailed { .. })), "not before 64*T1");
    net.run_for(Duration::from_secs(2));
    let failed = net.events.iter().find_map(|(p, e)| match e {
        CallEvent::HoldFailed { status, .. } if *p == ALICE => Some(*status),
        _ => None,
    });
    assert_eq!(failed, Some(Some(408)));
    assert!(net.requests(ALICE, Method::Bye).is_empty() && net.ended(ALICE).is_none(), "the call is up");
}
