//! Scenario: transfer with real WebRTC media through Kamailio, three phones.
//! Alice sends 440 Hz, Bob 880 Hz, Carol 660 Hz; each listens for the
//! others' tones. Alice calls Bob, then:
//! - blind: Bob transfers Alice to Carol; Alice hears Carol;
//! - attended: Bob consults Carol, then completes; Carol's call with Bob is
//!   replaced by Alice's, and Alice hears Carol;
//! - target busy: Carol refuses; Bob hears of it, the call with Alice is
//!   still there, and resuming it brings Alice's tone back.
//!
//! The attended case sends Alice's INVITE to Carol's Contact, which Kamailio
//! aliased to her WebSocket connection: the test configuration routes such
//! INVITEs (see `tests/support/kamailio.cfg.in`).

mod support;

use support::*;
use webphone::{AudioSetup, CallKey, CallOptions, CallStats, Event, Phone, PhoneConfigBuilder, SendAudio};

const CAROL_PASSWORD: &str = "carol-Secret-91d0";
const ALICE_HZ: f64 = 440.0;
const BOB_HZ: f64 = 880.0;
const CAROL_HZ: f64 = 660.0;

fn tone(hz: f64) -> AudioSetup {
    AudioSetup {
        send: SendAudio::Tone { frequency_hz: hz, level_dbfs: -12.0 },
        track_frequencies: vec![ALICE_HZ, BOB_HZ, CAROL_HZ],
        ..Default::default()
    }
}

fn share(s: &CallStats, hz: f64) -> f64 {
    s.tracked.iter().find(|(f, _)| (*f - hz).abs() < 0.5).map_or(0.0, |(_, r)| *r)
}

/// Waits until `phone` hears `hz` on `call` (most of 50 frames).
async fn hears(phone: &Phone, call: CallKey, hz: f64, what: &str) {
    let start = phone.call_stats(call).await.expect("stats").decoded_frames;
    wait_stats(phone, call, what, move |s| {
        s.decoded_frames >= start + 50 && s.rx_dominant_hz.is_some_and(|f| (f - hz).abs() < 5.0)
    })
    .await;
}

struct Three {
    _kamailio: support::kamailio::Kamailio,
    alice: Phone,
    alice_log: EventLog,
    bob: Phone,
    bob_log: EventLog,
    carol: Phone,
    carol_log: EventLog,
    /// Alice's call with Bob, and Bob's key for it.
    a: CallKey,
    b: CallKey,
}

/// Alice talking to Bob; Alice's and Carol's calls that a transfer gives
/// them send their tones.
async fn alice_talks_to_bob() -> Three {
    let kamailio = start_kamailio_with_users(&[("carol", CAROL_PASSWORD)]);
    let alice_cfg = |b: PhoneConfigBuilder| b.transfer_audio(|_| tone(ALICE_HZ));
    let (alice, mut alice_log) = registered_phone_with(&kamailio, "alice", ALICE_PASSWORD, alice_cfg).await;
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;
    let carol_cfg = |b: PhoneConfigBuilder| b.transfer_audio(|_| tone(CAROL_HZ));
    let (carol, carol_log) = registered_phone_with(&kamailio, "carol", CAROL_PASSWORD, carol_cfg).await;
    let a = alice.call("bob", CallOptions { audio: tone(ALICE_HZ), ..Default::default() }).await.expect("placed").key();
    let b = bob_log.wait_incoming().await.key;
    bob.answer_with(b, tone(BOB_HZ)).await.expect("answered");
    alice_log.wait_confirmed(a).await;
    hears(&alice, a, BOB_HZ, "Bob's tone at Alice").await;
    hears(&bob, b, ALICE_HZ, "Alice's tone at Bob").await;
    Three { _kamailio: kamailio, alice, alice_log, bob, bob_log, carol, carol_log, a, b }
}

/// The call Alice placed because Bob transferred her.
async fn alices_transfer_call(t: &mut Three) -> CallKey {
    let a = t.a;
    let ev = t
        .alice_log
        .wait_for(
            "Alice's call for the transfer",
            |e| matches!(e, Event::CallOutgoing { call } if call.transferred_from == Some(a)),
        )
        .await;
    match ev {
        Event::CallOutgoing { call } => call.key,
        _ => unreachable!(),
    }
}

async fn stop(t: Three) {
    for p in [&t.alice, &t.bob, &t.carol] {
        p.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blind_transfer_connects_alice_to_carol() {
    let mut t = alice_talks_to_bob().await;
    t.bob.transfer(t.b, "carol").await.expect("transfer");
    let requested =
        t.alice_log.wait_for("TransferRequested at Alice", |e| matches!(e, Event::TransferRequested { .. })).await;
    assert!(matches!(&requested, Event::TransferRequested { target, replaces: false, .. } if target.contains("carol")));
    let new = alices_transfer_call(&mut t).await;
    let c = t.carol_log.wait_incoming().await.key;
    t.bob_log.wait_for("progress 180 at Bob", |e| matches!(e, Event::TransferProgress { status: 180, .. })).await;
    t.carol.answer_with(c, tone(CAROL_HZ)).await.expect("Carol answers");
    t.bob_log.wait_for("TransferAccepted at Bob", |e| matches!(e, Event::TransferAccepted { .. })).await;
    let bob_end = t.bob_log.wait_ended(t.b).await;
    assert_eq!(bob_end.end.unwrap().reason, "transferred");
    t.alice_log
        .seen_or_wait("Alice's new call confirmed", |e| matches!(e, Event::CallConfirmed { call } if call.key == new))
        .await;
    t.alice_log
        .seen_or_wait("Alice's call with Bob ended", |e| matches!(e, Event::CallEnded { call, .. } if call.key == t.a))
        .await;
    hears(&t.alice, new, CAROL_HZ, "Carol's tone at Alice").await;
    hears(&t.carol, c, ALICE_HZ, "Alice's tone at Carol").await;
    let alice_now = t.alice.call_stats(new).await.unwrap();
    assert!(share(&alice_now, BOB_HZ) < 0.05, "no trace of Bob on Alice's new call");
    t.alice.hangup(new).await.unwrap();
    t.carol_log.wait_ended(c).await;
    stop(t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attended_transfer_replaces_bobs_call_with_carol() {
    let mut t = alice_talks_to_bob().await;
    let consult =
        t.bob.consult(t.b, "carol", CallOptions { audio: tone(BOB_HZ), ..Default::default() }).await.expect("consult");
    t.bob_log.wait_for("Alice held by Bob", |e| matches!(e, Event::CallHeld { call, .. } if call.key == t.b)).await;
    let c = t.carol_log.wait_incoming().await.key;
    t.carol.answer_with(c, tone(CAROL_HZ)).await.expect("Carol answers");
    t.bob_log.wait_confirmed(consult.key()).await;
    hears(&t.bob, consult.key(), CAROL_HZ, "Carol's tone at Bob (consulting)").await;
    assert_eq!(t.bob.status().code, 17, "consultation call");

    t.bob.complete(t.b, consult.key()).await.expect("complete");
    let replaced = t.carol_log.wait_for("CallReplaced at Carol", |e| matches!(e, Event::CallReplaced { .. })).await;
    let Event::CallReplaced { old, new: carol_new } = replaced else { unreachable!() };
    assert_eq!(old.key, c);
    let new = alices_transfer_call(&mut t).await;
    t.bob_log.wait_for("TransferAccepted at Bob", |e| matches!(e, Event::TransferAccepted { .. })).await;
    for key in [t.b, consult.key()] {
        t.bob_log
            .seen_or_wait("Bob's calls ended", |e| matches!(e, Event::CallEnded { call, .. } if call.key == key))
            .await;
    }
    t.alice_log
        .seen_or_wait("Alice's new call confirmed", |e| matches!(e, Event::CallConfirmed { call } if call.key == new))
        .await;
    t.carol_log
        .seen_or_wait(
            "Carol's new call confirmed",
            |e| matches!(e, Event::CallConfirmed { call } if call.key == carol_new.key),
        )
        .await;
    hears(&t.alice, new, CAROL_HZ, "Carol's tone at Alice").await;
    hears(&t.carol, carol_new.key, ALICE_HZ, "Alice's tone at Carol").await;
    t.alice_log
        .seen_or_wait("Alice's call with Bob ended", |e| matches!(e, Event::CallEnded { call, .. } if call.key == t.a))
        .await;
    t.carol_log
        .seen_or_wait("Carol's call with Bob ended", |e| matches!(e, Event::CallEnded { call, .. } if call.key == c))
        .await;
    assert_eq!(t.bob.status().code, 3, "Bob is idle");
    t.carol.hangup(carol_new.key).await.unwrap();
    t.alice_log.wait_ended(new).await;
    stop(t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_to_a_busy_target_fails_and_the_call_resumes() {
    let mut t = alice_talks_to_bob().await;
    t.bob.hold(t.b).await.expect("hold");
    t.bob_log.wait_for("CallHeld at Bob", |e| matches!(e, Event::CallHeld { call, .. } if call.key == t.b)).await;
    t.bob.transfer(t.b, "carol").await.expect("transfer");
    let c = t.carol_log.wait_incoming().await.key;
    t.carol.reject(c, 486).await.expect("Carol is busy");
    let failed = t.bob_log.wait_for("TransferFailed at Bob", |e| matches!(e, Event::TransferFailed { .. })).await;
    assert!(matches!(failed, Event::TransferFailed { status: Some(486), .. }), "{failed:?}");
    // Alice's own attempt ended; her call with Bob is still there.
    let new = alices_transfer_call(&mut t).await;
    t.alice_log.wait_ended(new).await;
    t.bob.resume(t.b).await.expect("resume");
    t.bob_log.wait_for("CallResumed at Bob", |e| matches!(e, Event::CallResumed { call, .. } if call.key == t.b)).await;
    // Alice held Bob's call when she dialled Carol: she resumes it too.
    t.alice.resume(t.a).await.expect("Alice resumes");
    hears(&t.bob, t.b, ALICE_HZ, "Alice's tone back at Bob").await;
    hears(&t.alice, t.a, BOB_HZ, "Bob's tone back at Alice").await;
    t.alice.hangup(t.a).await.unwrap();
    t.bob_log.wait_ended(t.b).await;
    stop(t).await;
}
