//! A session refresh sent as a re-INVITE (the peer does not allow UPDATE)
//! must be ACKed like any INVITE answered with 2xx (RFC 3261 §13.2.2.4),
//! with the re-INVITE's CSeq number, and so must every retransmission of
//! that 2xx. Without the ACK the peer, whose 2xx waits for one, ends the
//! call after 64*T1.
//!
//! Sans-IO core, fake clock, alice and bob behind the in-memory proxy; the
//! proxy's filter hook strips `UPDATE` from every Allow bob sends, so alice
//! (the refresher) refreshes with re-INVITEs.

#[path = "support/sip_net.rs"]
mod sip_net;

use std::time::Duration;

use sip_net::{CallSettings, Net, Node, PROXY_RECORD_ROUTE, Party, strip_update_from_allow};
use webphone::sip::{HeaderName, Message, Method, Request, Response};

const ALICE: Party = Party(0);
const BOB: Party = Party(1);

/// 64*T1 with the default T1 of 500 ms: how long a UAS waits for the ACK of its 2xx.
const ACK_WAIT: Duration = Duration::from_secs(32);

/// Alice calls bob with a 90 s session timer (alice refreshes); bob's Allow
/// reaches alice without UPDATE; the call is answered and confirmed.
fn confirmed_call_with_update_hidden() -> Net {
    let settings = CallSettings { session_expires: Some(90), ..Default::default() };
    let mut net = Net::new(vec![("alice", settings.clone()), ("bob", settings)]);
    net.filter = Some(Box::new(|from, _to, msg| {
        if from == Node::Party(BOB) {
            strip_update_from_allow(msg);
        }
        true
    }));
    net.call(ALICE, "bob");
    let at_bob = net.incoming(BOB);
    net.answer(BOB, at_bob);
    assert!(net.confirmed(ALICE) && net.confirmed(BOB));
    let ok = response_of(&net, BOB, 200, "1 INVITE").expect("bob's 200 to the INVITE");
    assert_eq!(ok.headers.get(&HeaderName::SessionExpires), Some("90;refresher=uac"), "alice refreshes");
    assert!(allows(ok, "UPDATE"), "bob itself allows UPDATE: the filter below is what hides it");
    let seen_by_alice = net
        .hops(Node::Proxy, Node::Party(ALICE))
        .find_map(|m| match m {
            Message::Response(r) if r.status.as_u16() == 200 => Some(r),
            _ => None,
        })
        .expect("alice got the 200");
    assert!(!allows(seen_by_alice, "UPDATE") && allows(seen_by_alice, "INVITE"), "UPDATE hidden from alice");
    net
}

fn allows(resp: &Response, method: &str) -> bool {
    resp.headers.get_all(&HeaderName::Allow).flat_map(webphone::sip::split_list).any(|m| m == method)
}

/// The last `status` response `from` sent with this CSeq.
fn response_of<'a>(net: &'a Net, from: Party, status: u16, cseq: &str) -> Option<&'a Response> {
    net.responses(from)
        .into_iter()
        .rev()
        .find(|r| r.status.as_u16() == status && r.headers.get(&HeaderName::CSeq) == Some(cseq))
}

/// How many `status` responses `from` sent with this CSeq.
fn count_responses(net: &Net, from: Party, status: u16, cseq: &str) -> usize {
    net.responses(from)
        .iter()
        .filter(|r| r.status.as_u16() == status && r.headers.get(&HeaderName::CSeq) == Some(cseq))
        .count()
}

/// The ACKs alice sent with CSeq number `seq`.
fn acks_with_seq(net: &Net, seq: &str) -> Vec<Request> {
    let want = format!("{seq} ACK");
    net.requests(ALICE, Method::Ack)
        .into_iter()
        .filter(|r| r.headers.get(&HeaderName::CSeq) == Some(want.as_str()))
        .cloned()
        .collect()
}

/// Runs to alice's first refresh and returns the re-INVITE's CSeq number.
fn run_to_the_refresh(net: &mut Net) -> String {
    net.run_for(Duration::from_secs(44));
    assert_eq!(net.requests(ALICE, Method::Invite).len(), 1, "no refresh before half the interval");
    net.run_for(Duration::from_secs(1));
    assert!(net.requests(ALICE, Method::Update).is_empty(), "bob does not allow UPDATE");
    let invites = net.requests(ALICE, Method::Invite);
    assert_eq!(invites.len(), 2, "alice refreshed with a re-INVITE at 45 s");
    let reinvite = invites[1];
    assert!(reinvite.headers.get(&HeaderName::To).unwrap().contains(";tag="), "in the dialog");
    assert_eq!(reinvite.headers.get(&HeaderName::SessionExpires), Some("90;refresher=uac"));
    let cseq = reinvite.headers.get(&HeaderName::CSeq).unwrap();
    let seq = cseq.strip_suffix(" INVITE").expect("CSeq method INVITE").to_string();
    assert_ne!(seq, "1");
    let ok = response_of(net, BOB, 200, cseq).expect("bob answered the re-INVITE with 200");
    assert_eq!(ok.headers.get(&HeaderName::SessionExpires), Some("90;refresher=uac"));
    seq
}

#[test]
fn the_2xx_to_a_refresh_reinvite_is_acked_and_the_call_survives() {
    let mut net = confirmed_call_with_update_hidden();
    let seq = run_to_the_refresh(&mut net);
    let reinvite_cseq = format!("{seq} INVITE");

    // The 200 OK to the re-INVITE is followed by an ACK with its CSeq number, to bob.
    let acks = acks_with_seq(&net, &seq);
    assert_eq!(
        acks.len(),
        1,
        "alice must ACK bob's 200 to the re-INVITE (CSeq {reinvite_cseq}) exactly once; ACKs sent: {:#?}",
        net.requests(ALICE, Method::Ack).iter().map(|r| r.headers.get(&HeaderName::CSeq)).collect::<Vec<_>>()
    );
    let ack = &acks[0];
    assert_eq!(ack.uri.to_string(), "sip:bob@bobhost.invalid;transport=ws", "to bob's Contact");
    assert_eq!(ack.headers.get(&HeaderName::Route), Some(PROXY_RECORD_ROUTE), "along the route set");
    let reinvite = net.requests(ALICE, Method::Invite)[1];
    for h in [HeaderName::CallId, HeaderName::From, HeaderName::To] {
        assert_eq!(ack.headers.get(&h), reinvite.headers.get(&h), "the ACK's {h} is the re-INVITE's");
    }
    let want = format!("{seq} ACK");
    assert!(
        net.received_requests(BOB, Method::Ack).iter().any(|r| r.headers.get(&HeaderName::CSeq) == Some(want.as_str())),
        "the ACK reached bob"
    );

    // Bob's 200 is not sent again and again, and the call is not ended for a missing ACK.
    let oks = count_responses(&net, BOB, 200, &reinvite_cseq);
    net.run_for(ACK_WAIT + Duration::from_secs(1));
    assert_eq!(count_responses(&net, BOB, 200, &reinvite_cseq), oks, "bob's 200 is not retransmitted");
    assert!(net.requests(BOB, Method::Bye).is_empty(), "bob sent no BYE");
    assert!(net.ended(ALICE).is_none() && net.ended(BOB).is_none(), "the refreshed call is up");

    // The next refresh (45 s after the first) is a re-INVITE ACKed the same way.
    net.run_for(Duration::from_secs(45) - ACK_WAIT - Duration::from_secs(1));
    let invites = net.requests(ALICE, Method::Invite);
    assert_eq!(invites.len(), 3, "second refresh");
    let seq2 = invites[2].headers.get(&HeaderName::CSeq).unwrap().strip_suffix(" INVITE").unwrap().to_string();
    assert_eq!(acks_with_seq(&net, &seq2).len(), 1, "the second refresh is ACKed too");
    net.run_for(ACK_WAIT + Duration::from_secs(1));
    assert!(net.ended(ALICE).is_none() && net.ended(BOB).is_none(), "the call is still up after two refreshes");
}

#[test]
fn a_retransmitted_2xx_to_the_refresh_is_acked_again() {
    let mut net = confirmed_call_with_update_hidden();
    let seq = run_to_the_refresh(&mut net);
    let reinvite_cseq = format!("{seq} INVITE");
    let ok = response_of(&net, BOB, 200, &reinvite_cseq).expect("bob's 200").clone();
    let before = acks_with_seq(&net, &seq).len();
    // Bob sends its 200 again (its ACK was lost, say); it reaches alice through the proxy.
    net.send_as(BOB, Message::Response(ok));
    net.drive();
    assert_eq!(
        acks_with_seq(&net, &seq).len(),
        before + 1,
        "every 2xx to the re-INVITE (CSeq {reinvite_cseq}) is ACKed, retransmissions included"
    );
}
