//! Attended transfer between three user agents behind the in-memory proxy,
//! on one fake clock (RFC 5589 §7, RFC 3891): alice calls bob, bob consults
//! carol on his second line, then either retrieves alice or completes the
//! transfer (REFER to carol's Contact with Replaces); carol's call with bob
//! is replaced by alice's. All three roles are ours. Also the transferee
//! policy `ask`.

#[path = "support/sip_net.rs"]
mod sip_net;

use std::time::Duration;

use sip_net::{CallSettings, Net, Node, Party, no_session_timer};
use webphone::dialog::{CallEvent, CallKey};
use webphone::sip::{HeaderName, Message, Method, ReferTo, Replaces, TypedHeader};
use webphone::{CallRequest, PhoneState, TransferPolicy};

const ALICE: Party = Party(0);
const BOB: Party = Party(1);
const CAROL: Party = Party(2);

/// alice → bob confirmed; bob consults carol, who answers:
/// (net, alice's key, bob's key with alice, bob's key with carol, carol's key).
fn consulting(alice: CallSettings) -> (Net, CallKey, CallKey, CallKey, CallKey) {
    let mut net = Net::new(vec![("alice", alice), ("bob", no_session_timer()), ("carol", no_session_timer())]);
    let a = net.call(ALICE, "bob");
    let b = net.incoming(BOB);
    net.answer(BOB, b);
    let now = net.now;
    let consult = net.ua(BOB).consult(b, CallRequest { target: "carol".into(), ..Default::default() }, now).unwrap();
    net.drive();
    assert_eq!(net.ua(BOB).call_held(b), Some((true, false)), "alice is held during the consultation");
    assert_eq!(net.ua(BOB).phone_state(), PhoneState::ConsultationDialing);
    let c = net.incoming(CAROL);
    net.answer(CAROL, c);
    assert!(net.confirmed_call(BOB, consult));
    assert_eq!(net.ua(BOB).phone_state(), PhoneState::ConsultationCall);
    (net, a, b, consult, c)
}

fn replaced(net: &Net, p: Party) -> Option<(CallKey, CallKey)> {
    net.events.iter().find_map(|(s, e)| match e {
        CallEvent::CallReplaced { old, new } if *s == p => Some((old.key, new.key)),
        _ => None,
    })
}

#[test]
fn consult_then_complete_connects_alice_and_carol() {
    let (mut net, a, b, consult, c) = consulting(no_session_timer());
    let now = net.now;
    net.ua(BOB).complete(b, consult, now).expect("complete");
    net.drive();

    // The REFER names carol's Contact (not her AoR) with Replaces naming
    // bob's dialog with carol from carol's side.
    let refer = net.requests(BOB, Method::Refer)[0].clone();
    let ReferTo(target) = ReferTo::parse(refer.headers.get(&HeaderName::ReferTo).unwrap()).unwrap();
    let sip = target.uri.as_sip().expect("a SIP URI");
    assert_eq!(sip.host.to_string(), "carolhost.invalid", "carol's Contact: {target}");
    let replaces = Replaces::parse(&sip.header("Replaces").expect("Replaces embedded")).unwrap();
    let carol_call = net
        .events
        .iter()
        .find_map(|(s, e)| match e {
            CallEvent::Incoming(c) if *s == CAROL => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(replaces.call_id, carol_call.call_id);

    // alice's INVITE carried the Replaces; carol took it in place of bob's call.
    let invite = net.received_requests(CAROL, Method::Invite).last().cloned().cloned().unwrap();
    assert_eq!(Replaces::parse(invite.headers.get(&HeaderName::Replaces).unwrap()).unwrap(), replaces);
    let (old, new) = replaced(&net, CAROL).expect("carol reports the replacement");
    assert_eq!(old, c);
    assert!(net.confirmed_call(CAROL, new), "answered at once, no ringing for the app");
    assert_eq!(net.incoming_calls(CAROL).len(), 2);
    assert!(net.ended_call(CAROL, c).is_some());

    // bob learned the outcome and left both calls; the consultation was ended
    // by carol, who accepted the Replaces (RFC 3891 §3), not by a BYE of bob's.
    assert!(net.events.iter().any(|(s, e)| *s == BOB && matches!(e, CallEvent::TransferAccepted { .. })));
    let byes_on = |net: &Net, from: Party| {
        net.requests(from, Method::Bye)
            .iter()
            .filter(|r| r.headers.get(&HeaderName::CallId) == Some(carol_call.call_id.as_str()))
            .count()
    };
    assert_eq!((byes_on(&net, CAROL), byes_on(&net, BOB)), (1, 0));
    assert!(net.ended_call(BOB, b).is_some() && net.ended_call(BOB, consult).is_some());
    assert!(net.ended_call(ALICE, a).is_some());
    net.run_for(Duration::from_secs(1));
    assert!(net.ua(BOB).call_keys().is_empty());
    assert_eq!(net.ua(ALICE).call_keys().len(), 1, "alice talks to carol");
    assert_eq!(net.ua(CAROL).call_keys(), [new]);
    assert_eq!(net.ua(CAROL).call_held(new), Some((false, false)));
}

#[test]
fn a_consulted_party_that_keeps_the_replaced_call_gets_our_bye_after_the_grace() {
    let (mut net, _a, b, consult, c) = consulting(no_session_timer());
    // carol's BYE for the replaced dialog is lost.
    net.filter = Some(Box::new(|from, _to, msg| {
        !(from == Node::Party(CAROL) && matches!(msg, Message::Request(r) if r.method == Method::Bye))
    }));
    let now = net.now;
    net.ua(BOB).complete(b, consult, now).expect("complete");
    net.drive();
    assert!(replaced(&net, CAROL).is_some_and(|(old, _)| old == c), "carol replaced it (her BYE is lost)");
    assert!(net.ended_call(BOB, consult).is_none(), "bob waits for carol's BYE");
    net.run_for(Duration::from_millis(1900));
    assert!(net.ended_call(BOB, consult).is_none(), "still within the grace");
    net.run_for(Duration::from_millis(200));
    assert!(net.ended_call(BOB, consult).is_some(), "bob hung it up himself");
    assert_eq!(net.requests(BOB, Method::Bye).len(), 2, "one BYE to alice, one to carol");
}

#[test]
fn retrieve_drops_the_consultation_and_resumes_the_first_call() {
    let (mut net, _a, b, consult, c) = consulting(no_session_timer());
    let now = net.now;
    assert_eq!(net.ua(BOB).retrieve(consult, now), Ok(b));
    net.drive();
    assert!(net.ended_call(BOB, consult).is_some() && net.ended_call(CAROL, c).is_some());
    assert_eq!(net.ua(BOB).call_held(b), Some((false, false)));
    assert_eq!(net.ua(BOB).phone_state(), PhoneState::InboundCall);
    let now = net.now;
    assert!(net.ua(BOB).retrieve(b, now).is_err(), "the first call is no consultation");
}

#[test]
fn ask_policy_waits_for_the_application_and_declines_when_it_never_answers() {
    let ask = CallSettings { transfer_policy: TransferPolicy::Ask, ..no_session_timer() };
    let (mut net, a, b, consult, _c) = consulting(ask.clone());
    let now = net.now;
    net.ua(BOB).complete(b, consult, now).unwrap();
    net.drive();
    assert!(
        net.events.iter().any(|(s, e)| *s == ALICE && matches!(e, CallEvent::TransferRequested { replaces: true, .. }))
    );
    assert!(!net.statuses(ALICE).contains(&202), "nothing answered yet");
    let now = net.now;
    net.ua(ALICE).answer_transfer(a, true, now).expect("accepted by the app");
    net.drive();
    assert!(net.statuses(ALICE).contains(&202));
    assert!(net.events.iter().any(|(s, e)| *s == BOB && matches!(e, CallEvent::TransferAccepted { .. })));

    // Unanswered: 603 after the wait.
    let (mut net, a, b, consult, _c) = consulting(ask);
    let now = net.now;
    net.ua(BOB).complete(b, consult, now).unwrap();
    net.run_for(Duration::from_secs(21));
    assert!(net.statuses(ALICE).contains(&603));
    assert!(
        net.events.iter().any(|(s, e)| *s == BOB && matches!(e, CallEvent::TransferFailed { status: Some(603), .. }))
    );
    let now = net.now;
    assert!(net.ua(ALICE).answer_transfer(a, true, now).is_err(), "too late");
}
