//! Scenario: Alice calls a callee that has not rung yet — a raw
//! SIP-over-WebSocket client registered as bob that answers the INVITE
//! with 100 Trying only (as a slow gateway or a phone still setting up
//! does) — and hangs up. 100 Trying is a provisional response, so RFC 3261
//! §9.1 lets Alice CANCEL at once; the proxy relays the CANCEL, the callee
//! answers 200 (CANCEL) and 487 (INVITE), and Alice's call ends by Alice
//! with 487.

mod support;

use support::raw_ws::{RawSip, response, token};
use support::*;
use webphone::{CallOptions, Originator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangup_after_100_trying_sends_cancel_at_once() {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let mut bob = RawSip::connect(&kamailio.ws_url()).await;
    bob.register("bob", BOB_PASSWORD, DOMAIN).await;

    let call = alice.call("bob", CallOptions::default()).await.expect("call placed").key();
    let invite = bob.recv_until("INVITE", |m| m.method() == Some("INVITE")).await;
    bob.send(response(&invite, 100, "Trying", None, &[], "")).await;
    // Kamailio answered Alice's INVITE with its own 100 Trying before relaying it.
    alice.hangup(call).await.expect("hung up");

    let cancel = bob.recv_until("CANCEL", |m| m.method() == Some("CANCEL")).await;
    bob.send(response(&cancel, 200, "OK", None, &[], "")).await;
    let tag = token();
    bob.send(response(&invite, 487, "Request Terminated", Some(&tag), &[], "")).await;
    bob.recv_until("ACK for the 487", |m| m.method() == Some("ACK")).await;

    let a = alice_log.wait_ended(call).await;
    let end = a.end.clone().expect("end cause");
    assert_eq!(end.by, Originator::Local, "{a:#?}");
    assert_eq!(end.status, Some(487), "{a:#?}");
    bob.close().await;
    alice.stop().await.unwrap();
}
