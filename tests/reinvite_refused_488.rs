//! A re-offer the media side cannot take (no common codec, a broken SDP)
//! is refused with 488 Not Acceptable Here and the call goes on with its
//! current session (RFC 3261 §14.2): it is not hung up, as it would be if
//! the media of the call itself had failed.
//!
//! Sans-IO core, fake clock, alice and bob behind the in-memory proxy.
//! Alice's session refresh is a re-INVITE with her SDP (the filter hides
//! bob's UPDATE), so it reaches bob as an offer; bob's media side is made
//! to fail on it.

#[path = "support/sip_net.rs"]
mod sip_net;

use std::time::Duration;

use sip_net::{Party, call_refreshed_by_reinvite};
use webphone::dialog::MediaRequest;
use webphone::sip::{HeaderName, Method};

const ALICE: Party = Party(0);
const BOB: Party = Party(1);

#[test]
fn a_reoffer_the_media_cannot_answer_gets_488_and_the_call_stays_up() {
    let (mut net, _, b_key) = call_refreshed_by_reinvite(|_| {});

    // The refresh re-INVITE at 45 s carries alice's SDP: bob's media is asked for an answer.
    net.auto_media = false;
    let asked = net.media.len();
    net.run_for(Duration::from_secs(45));
    assert_eq!(net.requests(ALICE, Method::Invite).len(), 2, "the re-INVITE");
    let answer_asked = net.media[asked..]
        .iter()
        .any(|(p, r)| *p == BOB && matches!(r, MediaRequest::Answer { call, .. } if *call == b_key));
    assert!(answer_asked, "bob's media side was asked to answer the re-offer: {:?}", &net.media[asked..]);

    // Bob's media cannot answer it.
    let now = net.now;
    net.ua(BOB).handle_local_sdp(b_key, Err("no common codec".into()), now);
    net.drive();
    let refused = net.responses(BOB).into_iter().rev().find(|r| r.headers.get(&HeaderName::CSeq) == Some("2 INVITE"));
    assert_eq!(refused.map(|r| r.status.as_u16()), Some(488), "the re-offer is refused with 488");
    assert!(
        !net.media.iter().any(|(p, r)| *p == BOB && matches!(r, MediaRequest::Close { .. })),
        "bob's media is not closed"
    );

    // No BYE either way; the call lives on and ends normally.
    net.auto_media = true;
    net.run_for(Duration::from_secs(10));
    assert!(net.requests(ALICE, Method::Bye).is_empty() && net.requests(BOB, Method::Bye).is_empty());
    assert!(net.ended(ALICE).is_none() && net.ended(BOB).is_none(), "the call is up after the 488");
    net.hangup(BOB, b_key);
    assert_eq!(net.requests(BOB, Method::Bye).len(), 1);
    assert!(net.ended(ALICE).is_some() && net.ended(BOB).is_some());
}
