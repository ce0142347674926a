//! Two lines at once through a proxy: alice calls bob, then carol on her
//! second line; both calls are confirmed; carol hangs up, then bob. Each
//! call ends on its own, and every in-dialog request follows the route set
//! the proxy's Record-Route built (sans-IO core, fake clock, no sockets).

#[path = "support/sip_net.rs"]
mod sip_net;

use std::time::Duration;

use sip_net::{CallSettings, Net, Node, PROXY_HOST, PROXY_RECORD_ROUTE, Party, first_value, via_host};
use webphone::dialog::{CallEvent, MediaRequest};
use webphone::sip::{HeaderName, Message, Method, Request};
use webphone::{CallDirection, CallKey, Originator};

const ALICE: Party = Party(0);
const BOB: Party = Party(1);
const CAROL: Party = Party(2);

/// Two independent lines: no session timer, and no hold of the first call
/// when the second is placed (tests/lines_policy.rs covers that policy).
fn no_timer() -> CallSettings {
    CallSettings { session_expires: None, hold_other_lines: false, ..Default::default() }
}

/// The `method` request of call `call_id` that `to` received from the proxy.
fn received<'a>(net: &'a Net, to: Party, method: Method, call_id: &str) -> &'a Request {
    let found = net
        .received_requests(to, method.clone())
        .into_iter()
        .find(|r| r.headers.get(&HeaderName::CallId) == Some(call_id));
    found.unwrap_or_else(|| panic!("{to:?} received no {method} in call {call_id}"))
}

/// The one `method` request `from` sent in call `call_id`.
fn sent<'a>(net: &'a Net, from: Party, method: Method, call_id: &str) -> &'a Request {
    let all: Vec<_> = net
        .requests(from, method.clone())
        .into_iter()
        .filter(|r| r.headers.get(&HeaderName::CallId) == Some(call_id))
        .collect();
    assert_eq!(all.len(), 1, "{from:?} sent one {method} in call {call_id}");
    all[0]
}

/// An in-dialog request sent with the proxy as its route, and received
/// from the proxy with that Route consumed and the proxy's Via on top.
fn assert_through_proxy(net: &Net, from: Party, to: Party, method: Method, call_id: &str) {
    let out = sent(net, from, method.clone(), call_id);
    assert_eq!(out.headers.get(&HeaderName::Route), Some(PROXY_RECORD_ROUTE), "{method} from {from:?} routed");
    let contact = format!("sip:{}@{}host.invalid;transport=ws", net.members[to.0].name, net.members[to.0].name);
    assert_eq!(out.uri.to_string(), contact, "{method} from {from:?} targets the remote Contact");
    let got = received(net, to, method.clone(), call_id);
    assert_eq!(got.headers.get(&HeaderName::Route), None, "the proxy consumed its Route");
    let top_via = first_value(&got.headers, &HeaderName::Via).expect("Via");
    assert_eq!(via_host(&top_via), PROXY_HOST, "{method} reached {to:?} through the proxy");
    assert!(
        net.hops(Node::Proxy, Node::Party(to)).any(|m| matches!(m, Message::Request(r) if r == got)),
        "{method} delivered on the proxy → {to:?} hop"
    );
}

fn call_id(net: &mut Net, p: Party, key: CallKey) -> String {
    net.ua(p).call_snapshot(key).expect("call exists").call_id.clone()
}

#[test]
fn two_lines_through_a_proxy_end_one_by_one() {
    let mut net = Net::new(vec![("alice", no_timer()), ("bob", no_timer()), ("carol", no_timer())]);

    // Line 1: alice → bob.
    let to_bob = net.call(ALICE, "bob");
    let at_bob = net.incoming(BOB);
    net.answer(BOB, at_bob);
    assert!(net.confirmed_call(ALICE, to_bob) && net.confirmed_call(BOB, at_bob));
    let bob_call_id = call_id(&mut net, ALICE, to_bob);
    net.run_for(Duration::from_secs(5));

    // Line 2: alice → carol, while bob's call stays up.
    let to_carol = net.call(ALICE, "carol");
    assert_ne!(to_carol, to_bob);
    let at_carol = net.incoming(CAROL);
    assert_eq!(net.incoming_calls(BOB), vec![at_bob], "bob is not called again");
    net.answer(CAROL, at_carol);
    assert!(net.confirmed_call(ALICE, to_carol) && net.confirmed_call(CAROL, at_carol));
    let carol_call_id = call_id(&mut net, ALICE, to_carol);
    assert_ne!(carol_call_id, bob_call_id);
    let mut keys = net.ua(ALICE).call_keys();
    keys.sort();
    let mut expected = vec![to_bob, to_carol];
    expected.sort();
    assert_eq!(keys, expected, "alice has two lines up");

    // The INVITEs went through the proxy, which record-routed them.
    for (callee, id) in [(BOB, &bob_call_id), (CAROL, &carol_call_id)] {
        let invite = received(&net, callee, Method::Invite, id);
        assert_eq!(invite.headers.get(&HeaderName::RecordRoute), Some(PROXY_RECORD_ROUTE));
        assert_eq!(via_host(&first_value(&invite.headers, &HeaderName::Via).unwrap()), PROXY_HOST);
    }
    // Each 2xx ACK follows the route set (Route from Record-Route).
    assert_through_proxy(&net, ALICE, BOB, Method::Ack, &bob_call_id);
    assert_through_proxy(&net, ALICE, CAROL, Method::Ack, &carol_call_id);

    // Carol hangs up: only line 2 ends.
    net.run_for(Duration::from_secs(7));
    net.hangup(CAROL, at_carol);
    assert_through_proxy(&net, CAROL, ALICE, Method::Bye, &carol_call_id);
    let a_end = net.ended_call(ALICE, to_carol).expect("alice saw carol's call end").clone();
    assert_eq!(a_end.end.as_ref().unwrap().by, Originator::Remote);
    assert_eq!(a_end.ended.unwrap() - a_end.connected.unwrap(), Duration::from_secs(7));
    let c_end = net.ended_call(CAROL, at_carol).expect("carol's call ended").clone();
    assert_eq!(c_end.end.as_ref().unwrap().by, Originator::Local);
    assert_eq!(c_end.direction, CallDirection::Incoming);
    assert!(net.ended_call(ALICE, to_bob).is_none() && net.ended_call(BOB, at_bob).is_none(), "line 1 stays up");
    assert_eq!(net.ua(ALICE).call_keys(), vec![to_bob]);
    assert!(net.media.contains(&(ALICE, MediaRequest::Close { call: to_carol })));
    assert!(!net.media.contains(&(ALICE, MediaRequest::Close { call: to_bob })));
    // Alice's 200 to the BYE went back to carol through the proxy.
    let bye_ok = net.hops(Node::Proxy, Node::Party(CAROL)).any(|m| {
        matches!(m, Message::Response(r) if r.status.as_u16() == 200
            && r.headers.get(&HeaderName::CSeq).is_some_and(|c| c.ends_with("BYE")))
    });
    assert!(bye_ok, "carol got the 200 to her BYE through the proxy");

    // Bob hangs up: line 1 ends.
    net.run_for(Duration::from_secs(3));
    net.hangup(BOB, at_bob);
    assert_through_proxy(&net, BOB, ALICE, Method::Bye, &bob_call_id);
    let a_end = net.ended_call(ALICE, to_bob).expect("alice saw bob's call end").clone();
    assert_eq!(a_end.end.as_ref().unwrap().by, Originator::Remote);
    assert_eq!(a_end.ended.unwrap() - a_end.connected.unwrap(), Duration::from_secs(15));
    assert_eq!(net.ended_call(BOB, at_bob).expect("bob's call ended").end.as_ref().unwrap().by, Originator::Local);

    // Every call event, in order, per party.
    let kinds = |p: Party| -> Vec<(&'static str, CallKey)> {
        net.events
            .iter()
            .filter(|(s, _)| *s == p)
            .filter_map(|(_, e)| match e {
                CallEvent::Outgoing(c) => Some(("outgoing", c.key)),
                CallEvent::Incoming(c) => Some(("incoming", c.key)),
                CallEvent::Confirmed(c) => Some(("confirmed", c.key)),
                CallEvent::Ended(c) => Some(("ended", c.key)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        kinds(ALICE),
        vec![
            ("outgoing", to_bob),
            ("confirmed", to_bob),
            ("outgoing", to_carol),
            ("confirmed", to_carol),
            ("ended", to_carol),
            ("ended", to_bob),
        ]
    );
    assert_eq!(kinds(BOB), vec![("incoming", at_bob), ("confirmed", at_bob), ("ended", at_bob)]);
    assert_eq!(kinds(CAROL), vec![("incoming", at_carol), ("confirmed", at_carol), ("ended", at_carol)]);

    // Nothing was lost on the way, and every line is released.
    assert!(net.undeliverable.is_empty(), "undeliverable: {:#?}", net.undeliverable);
    for p in [ALICE, BOB, CAROL] {
        assert!(net.ua(p).call_keys().is_empty(), "{p:?} still has calls");
    }
}
