//! Scenario: mute and volume on a live call between two real phones through
//! a real Kamailio (Alice sends 440 Hz, Bob 880 Hz, both track both).
//! Once audio flows both ways: `mute(call, true)` makes Bob hear silence
//! while Alice still hears 880 Hz; `mute(call, false)` brings 440 Hz back
//! to Bob; `mute_incoming(call, true)` leaves Alice's figures running (the
//! meter sits before the mute, by design: packets and decoded frames keep
//! growing and 880 Hz is still measured); `set_volume` succeeds; and every
//! one of these on a call that does not exist fails with `NoSuchCall`.

mod support;

use support::*;
use webphone::media::{AudioSetup, CallStats, SendAudio};
use webphone::{CallError, CallKey, CallOptions, Error, Event};

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

/// Audible (well above silence) and dominated by `hz` right now.
fn hearing(stats: &CallStats, hz: f64) -> bool {
    stats.rx_level_dbfs > -40.0 && stats.rx_dominant_hz.is_some_and(|f| (f - hz).abs() < 10.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_unmute_mute_incoming_and_volume() {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;

    let call =
        alice.call("bob", CallOptions { audio: tone(440.0), ..Default::default() }).await.expect("call placed").key();
    let info = bob_log.wait_incoming().await;
    bob.answer_with(info.key, tone(880.0)).await.expect("answered");
    alice_log.wait_confirmed(call).await;
    bob_log.wait_confirmed(info.key).await;

    // --- audio both ways
    let enough = |hz: f64| move |s: &CallStats| s.decoded_frames >= 50 && ratio(s, hz) >= 0.9 && hearing(s, hz);
    let at_alice = wait_stats(&alice, call, "880 Hz at Alice", enough(880.0)).await;
    let at_bob = wait_stats(&bob, info.key, "440 Hz at Bob", enough(440.0)).await;

    // --- Alice mutes what she sends: Bob hears silence, Alice still hears 880
    alice.mute(call, true).await.expect("mute");
    let silent = wait_stats(&bob, info.key, "silence at Bob while Alice is muted", |s| s.rx_level_dbfs < -60.0).await;
    assert!(silent.rx_packets > at_bob.rx_packets, "muting sends silence, not nothing: {silent:#?}");
    // The silence lasts: a few more packets later Bob still hears nothing.
    let still_silent =
        wait_stats(&bob, info.key, "more silent packets at Bob", |s| s.rx_packets >= silent.rx_packets + 25).await;
    assert!(still_silent.rx_level_dbfs < -60.0, "{still_silent:#?}");
    let alice_while_muted = wait_stats(&alice, call, "880 Hz at Alice while she is muted", |s| {
        s.rx_packets >= at_alice.rx_packets + 25 && hearing(s, 880.0)
    })
    .await;
    assert!(alice_while_muted.tx_packets > at_alice.tx_packets, "{alice_while_muted:#?}");

    // --- unmute: Bob hears 440 again
    alice.mute(call, false).await.expect("unmute");
    wait_stats(&bob, info.key, "440 Hz at Bob again after unmute", |s| {
        s.rx_packets >= still_silent.rx_packets + 5 && hearing(s, 440.0)
    })
    .await;

    // --- Alice mutes what she hears: still received, decoded and metered
    alice.mute_incoming(call, true).await.expect("mute incoming");
    let before = alice.call_stats(call).await.expect("stats");
    let after = wait_stats(&alice, call, "880 Hz still received and metered at Alice", |s| {
        s.rx_packets >= before.rx_packets + 25 && s.decoded_frames >= before.decoded_frames + 25 && hearing(s, 880.0)
    })
    .await;
    assert!(ratio(&after, 880.0) >= 0.9, "{after:#?}");
    // Bob is not affected by Alice muting her playback.
    let bob_before = bob.call_stats(info.key).await.expect("stats");
    wait_stats(&bob, info.key, "440 Hz at Bob while Alice's playback is muted", |s| {
        s.rx_packets >= bob_before.rx_packets + 10 && hearing(s, 440.0)
    })
    .await;
    alice.mute_incoming(call, false).await.expect("unmute incoming");

    // --- volume
    alice.set_volume(call, 0.5).await.expect("set_volume");
    wait_stats(&alice, call, "880 Hz at Alice at half volume (meter before volume)", |s| {
        s.rx_packets >= after.rx_packets + 10 && hearing(s, 880.0)
    })
    .await;

    // --- a call that does not exist
    let nobody = CallKey(9_999);
    let no_such = Err(Error::Call(CallError::NoSuchCall));
    assert_eq!(alice.mute(nobody, true).await, no_such);
    assert_eq!(alice.mute_incoming(nobody, true).await, no_such);
    assert_eq!(alice.set_volume(nobody, 0.5).await, no_such);
    assert_eq!(alice.call_stats(nobody).await.map(|_| ()), no_such);

    alice.hangup(call).await.expect("hang up");
    alice_log.wait_ended(call).await;
    bob_log.wait_ended(info.key).await;
    // An ended call is gone too.
    assert_eq!(alice.mute(call, true).await, no_such);
    assert_eq!(alice.set_volume(call, 1.0).await, no_such);
    assert!(!alice_log.seen.iter().any(|e| matches!(e, Event::MalformedMessage { .. })), "{:#?}", alice_log.seen);

    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
}
