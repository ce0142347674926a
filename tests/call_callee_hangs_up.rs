//! Scenario: Alice calls Bob through a real Kamailio, Bob answers, tones
//! cross both ways (440 Hz from Alice, 880 Hz from Bob), then Bob, the
//! callee, hangs up: his BYE goes back through the proxy along the route
//! set. Alice sees the call ended by the remote side, Bob by himself, and
//! each side's timestamps are ordered started <= connected <= ended.

mod support;

use support::*;
use webphone::media::{AudioSetup, CallStats, SendAudio};
use webphone::{CallInfo, CallOptions, Event, Originator};

fn tone(hz: f64) -> AudioSetup {
    AudioSetup {
        send: SendAudio::Tone { frequency_hz: hz, level_dbfs: -12.0 },
        track_frequencies: vec![440.0, 880.0],
        ..Default::default()
    }
}

fn ratio(stats: &CallStats, hz: f64) -> f64 {
    stats.tracked.iter().find(|(f, _)| (*f - hz).abs() < 0.5).map_or(0.0, |(_, r)| *r)
}

fn assert_ordered(who: &str, c: &CallInfo) {
    let connected = c.connected_ms.unwrap_or_else(|| panic!("{who}: never connected: {c:#?}"));
    let ended = c.ended_ms.unwrap_or_else(|| panic!("{who}: no end time: {c:#?}"));
    assert!(c.started_ms <= connected && connected <= ended, "{who}: started <= connected <= ended: {c:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_hangs_up_after_audio_flowed_both_ways() {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;

    let call = alice.call("bob", CallOptions { audio: tone(440.0), ..Default::default() }).await.expect("placed").key();
    let incoming = bob_log.wait_incoming().await;
    bob.answer_with(incoming.key, tone(880.0)).await.expect("answered");
    alice_log.wait_confirmed(call).await;
    bob_log.wait_confirmed(incoming.key).await;

    // Audio both ways: about a second of the far tone on each side.
    let enough = |hz: f64| move |s: &CallStats| s.decoded_frames >= 50 && ratio(s, hz) >= 0.9;
    let at_alice = wait_stats(&alice, call, "880 Hz at Alice", enough(880.0)).await;
    let at_bob = wait_stats(&bob, incoming.key, "440 Hz at Bob", enough(440.0)).await;
    assert!(at_alice.rx_packets > 0 && at_alice.tx_packets > 0, "{at_alice:#?}");
    assert!(at_bob.rx_packets > 0 && at_bob.tx_packets > 0, "{at_bob:#?}");

    bob.hangup(incoming.key).await.expect("Bob hung up");

    let b = bob_log.wait_ended(incoming.key).await;
    let b_end = b.end.clone().expect("end cause");
    assert_eq!(b_end.by, Originator::Local, "{b:#?}");
    assert_ordered("Bob", &b);

    let a = alice_log.wait_ended(call).await;
    let a_end = a.end.clone().expect("end cause");
    assert_eq!(a_end.by, Originator::Remote, "{a:#?}");
    assert!(a_end.reason.contains("BYE"), "Alice's call ended by Bob's BYE: {a_end:?}");
    assert_ordered("Alice", &a);
    assert_eq!(a.call_id, b.call_id);

    // The BYE went through the proxy (loose routing) to Alice.
    wait_for_kamailio_log(&kamailio, "relaying BYE to <sip:").await;
    let log = kamailio.log();
    assert!(
        log.lines().any(|l| l.contains(&a.call_id) && l.contains("relaying BYE")),
        "the relayed BYE belongs to the call:\n{log}"
    );
    // After the end, the call's media is gone on both sides.
    assert!(alice.call_stats(call).await.is_err());
    assert!(bob.call_stats(incoming.key).await.is_err());
    // Nothing else ended on either side.
    let ends = |log: &mut EventLog| log.drain().iter().filter(|e| matches!(e, Event::CallEnded { .. })).count();
    assert_eq!(ends(&mut alice_log), 1);
    assert_eq!(ends(&mut bob_log), 1);

    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
}
