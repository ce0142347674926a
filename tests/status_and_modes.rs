//! The phone's state with the seeds' status codes (Aliyun's table) through
//! a call, a consultation call on the second line, hold and hang-ups; and
//! the modes (Bizfly `setMode`): `outgoing` refuses incoming calls with
//! 486, `inactive` also refuses to dial.
//!
//! Sans-IO core, fake clock, alice, bob and carol behind the in-memory
//! proxy (no registrar: an idle phone here is `unregistered`, -1).

#[path = "support/sip_net.rs"]
mod sip_net;

use sip_net::{CallSettings, Net, Party};
use webphone::dialog::{CallError, CallRequest};
use webphone::{Mode, PhoneState};

const ALICE: Party = Party(0);
const BOB: Party = Party(1);
const CAROL: Party = Party(2);

fn net() -> Net {
    let s = CallSettings { session_expires: None, ..Default::default() };
    Net::new(vec![("alice", s.clone()), ("bob", s.clone()), ("carol", s)])
}

fn state(net: &mut Net, p: Party) -> (PhoneState, i32) {
    let s = net.ua(p).phone_state();
    (s, s.code())
}

#[test]
fn status_codes_through_a_consultation() {
    let mut net = net();
    assert_eq!(state(&mut net, ALICE), (PhoneState::Unregistered, -1));
    net.auto_media = false;
    let to_bob = net.call(ALICE, "bob");
    assert_eq!(state(&mut net, ALICE), (PhoneState::Dialing, 8), "waiting for the offer");
    net.auto_media = true;
    let now = net.now;
    net.ua(ALICE).handle_local_sdp(to_bob, Ok(sip_net::fake_offer("A").into()), now);
    net.drive();
    assert_eq!(state(&mut net, ALICE), (PhoneState::Dialing, 8), "ringing out");
    assert_eq!(state(&mut net, BOB), (PhoneState::Ringing, 6));
    let at_bob = net.incoming(BOB);
    net.answer(BOB, at_bob);
    assert_eq!(state(&mut net, ALICE), (PhoneState::OutboundCall, 10));
    assert_eq!(state(&mut net, BOB), (PhoneState::InboundCall, 9));

    // A second line: bob is held first, then carol rings.
    net.auto_media = false;
    let now = net.now;
    let to_carol = net.ua(ALICE).call(CallRequest { target: "carol".into(), ..Default::default() }, now).unwrap();
    net.auto_media = true;
    net.drive();
    // The hold re-offer waits for alice's media: the hold is not agreed yet.
    let pending: Vec<_> = net.media.iter().filter(|(p, _)| *p == ALICE).map(|(_, r)| r.clone()).collect();
    for r in pending.iter().rev().take(2) {
        let sdp = match r {
            webphone::dialog::MediaRequest::Reoffer { .. } => "v=0 hold\r\na=sendonly\r\n",
            _ => "v=0 offer\r\nm=audio 9 RTP/AVP 0\r\n",
        };
        let now = net.now;
        net.ua(ALICE).handle_local_sdp(r.call(), Ok(sdp.into()), now);
    }
    net.drive();
    assert_eq!(net.ua(ALICE).call_held(to_bob), Some((true, false)), "bob is held");
    assert_eq!(state(&mut net, ALICE), (PhoneState::ConsultationDialing, 16));
    let at_carol = net.incoming(CAROL);
    net.answer(CAROL, at_carol);
    assert_eq!(state(&mut net, ALICE), (PhoneState::ConsultationCall, 17));

    net.hangup(CAROL, at_carol);
    assert_eq!(state(&mut net, ALICE), (PhoneState::Held, 12), "only the held call is left");
    let now = net.now;
    net.ua(ALICE).resume(to_bob, now).unwrap();
    net.drive();
    assert_eq!(state(&mut net, ALICE), (PhoneState::OutboundCall, 10));
    net.hangup(ALICE, to_bob);
    assert_eq!(state(&mut net, ALICE), (PhoneState::Unregistered, -1));
    let _ = to_carol;
}

#[test]
fn modes_refuse_what_they_exclude() {
    let mut net = net();
    net.ua(BOB).set_mode(Mode::Outgoing);
    let to_bob = net.call(ALICE, "bob");
    assert!(net.incoming_calls(BOB).is_empty(), "bob never rang");
    let end = net.ended_call(ALICE, to_bob).expect("refused").end.clone().unwrap();
    assert_eq!(end.status, Some(486));
    // An outgoing-only phone still dials.
    let from_bob = net.call(BOB, "carol");
    assert!(!net.incoming_calls(CAROL).is_empty(), "carol rings: {from_bob:?}");

    net.ua(CAROL).set_mode(Mode::Inactive);
    let now = net.now;
    let refused = net.ua(CAROL).call(CallRequest { target: "alice".into(), ..Default::default() }, now);
    assert_eq!(refused, Err(CallError::ModeForbids));
    assert_eq!(net.ua(CAROL).mode(), Mode::Inactive);
}
