//! Glare on a re-INVITE: our re-INVITE answered 491 Request Pending is sent
//! again after RFC 3261 §14.1's random wait (2.1–4 s for the side that owns
//! the Call-ID, as the caller does), once, with a new CSeq; its 2xx is
//! ACKed and the call goes on. The user sees one outcome, not an error.
//!
//! Sans-IO core, fake clock, alice and bob behind the in-memory proxy.
//! Alice refreshes the session with re-INVITEs (the filter hides bob's
//! UPDATE) and the filter turns bob's first 200 to a re-INVITE into the 491
//! a crossing re-INVITE of bob's would have caused.

#[path = "support/sip_net.rs"]
mod sip_net;

use std::time::Duration;

use sip_net::{Node, Party, call_refreshed_by_reinvite};
use webphone::sip::{HeaderName, Message, Method, StatusCode};

const ALICE: Party = Party(0);
const BOB: Party = Party(1);

#[test]
fn a_reinvite_answered_491_is_retried_after_the_glare_wait() {
    let mut turned = false;
    let (mut net, _, _) = call_refreshed_by_reinvite(move |msg| {
        if let Message::Response(r) = msg
            && r.status.as_u16() == 200
            && r.headers.get(&HeaderName::CSeq) == Some("2 INVITE")
            && !turned
        {
            turned = true;
            r.status = StatusCode::new(491).unwrap();
            r.reason = "Request Pending".into();
            r.body = Default::default();
            r.headers.remove(&HeaderName::ContentType);
        }
    });

    // The refresh at 45 s meets a 491.
    net.run_for(Duration::from_secs(45));
    let invites = net.requests(ALICE, Method::Invite);
    assert_eq!(invites.len(), 2, "the refresh re-INVITE");
    assert_eq!(invites[1].headers.get(&HeaderName::CSeq), Some("2 INVITE"));
    let got_491 = net
        .hops(Node::Proxy, Node::Party(ALICE))
        .any(|m| matches!(m, Message::Response(r) if r.status.as_u16() == 491));
    assert!(got_491, "alice got the 491");
    let at_491 = net.now;

    // Nothing before 2.1 s (alice owns the Call-ID), the retry by 4 s.
    net.run_for(Duration::from_millis(2090));
    assert_eq!(net.requests(ALICE, Method::Invite).len(), 2, "no retry before 2.1 s");
    net.run_for(Duration::from_millis(1920));
    let invites = net.requests(ALICE, Method::Invite);
    assert_eq!(invites.len(), 3, "one retry within 4 s of the 491");
    let retry = invites[2];
    assert!(net.now.duration_since(at_491) <= Duration::from_millis(4010));
    assert_eq!(retry.headers.get(&HeaderName::CSeq), Some("3 INVITE"), "a new transaction");
    assert_eq!(retry.body, invites[1].body, "the same offer");
    assert_eq!(retry.headers.get(&HeaderName::SessionExpires), Some("90;refresher=uac"), "still a refresh");

    // Its 200 is ACKed; the call goes on past the ACK wait, with no BYE.
    assert!(net.statuses(BOB).contains(&200));
    let acks = net.requests(ALICE, Method::Ack);
    assert!(acks.iter().any(|a| a.headers.get(&HeaderName::CSeq) == Some("3 ACK")), "the retry's 2xx is ACKed");
    net.run_for(Duration::from_secs(33));
    assert_eq!(net.requests(ALICE, Method::Invite).len(), 3, "exactly one retry");
    assert!(net.requests(ALICE, Method::Bye).is_empty() && net.requests(BOB, Method::Bye).is_empty());
    assert!(net.ended(ALICE).is_none() && net.ended(BOB).is_none(), "the call is up");
}
