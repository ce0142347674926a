//! Scenario: auto-answer. Bob's phone is configured to answer incoming
//! calls by itself after 300 ms (Aliyun's `autoAnswerCall`). Alice calls
//! him through a real Kamailio and nobody touches Bob's phone: it rings
//! (Alice sees 180), answers on its own, and the call is confirmed on both
//! sides no earlier than 300 ms after it started at Bob. Media is set up
//! too (Bob's default audio: silence out, received audio discarded but
//! metered), so Bob measures Alice's 440 Hz. Alice hangs up.
//!
//! Second scenario, a voice bot: Bob auto-answers at once with the audio his
//! configuration chooses for the caller (`incoming_audio`).

mod support;

use std::time::Duration;

use support::*;
use webphone::media::{AudioSetup, SendAudio};
use webphone::{CallDirection, CallOptions, Event, Originator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_answers_by_himself_after_the_delay() {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let (bob, mut bob_log) =
        registered_phone_with(&kamailio, "bob", BOB_PASSWORD, |b| b.auto_answer(Some(Duration::from_millis(300))))
            .await;

    let call = alice
        .call(
            "bob",
            CallOptions {
                audio: AudioSetup {
                    send: SendAudio::Tone { frequency_hz: 440.0, level_dbfs: -12.0 },
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("call placed")
        .key();
    let incoming = bob_log.wait_incoming().await;
    assert_eq!(incoming.direction, CallDirection::Incoming);
    assert_eq!(incoming.remote.user.as_deref(), Some("alice"));

    // No answer command: Bob's phone answers by itself.
    let at_bob = bob_log.wait_confirmed(incoming.key).await;
    let connected = at_bob.connected_ms.expect("connected_ms on CallConfirmed");
    assert!(
        connected >= at_bob.started_ms + 300,
        "answered {} ms after the call started, before the 300 ms auto-answer delay: {at_bob:#?}",
        connected.saturating_sub(at_bob.started_ms)
    );
    let at_alice = alice_log.wait_confirmed(call).await;
    assert!(at_alice.connected_ms.is_some_and(|c| c >= at_alice.started_ms + 300), "{at_alice:#?}");
    let ringing_at = alice_log.seen.iter().position(|e| matches!(e, Event::CallProgress { status: 180, .. }));
    let confirmed_at = alice_log.seen.iter().position(|e| matches!(e, Event::CallConfirmed { .. }));
    assert!(ringing_at.is_some() && ringing_at < confirmed_at, "180 before the answer: {:#?}", alice_log.seen);

    // The auto-answered call has working media.
    let stats = wait_stats(&bob, incoming.key, "Alice's 440 Hz at the auto-answering Bob", |s| {
        s.decoded_frames >= 25 && s.rx_dominant_hz.is_some_and(|f| (f - 440.0).abs() < 10.0)
    })
    .await;
    assert_eq!(stats.codec.as_deref(), Some("opus"), "{stats:#?}");

    alice.hangup(call).await.expect("hang up");
    let ended = alice_log.wait_ended(call).await;
    assert_eq!(ended.end.as_ref().map(|e| e.by), Some(Originator::Local), "{ended:#?}");
    let ended = bob_log.wait_ended(incoming.key).await;
    assert_eq!(ended.end.as_ref().map(|e| e.by), Some(Originator::Remote), "{ended:#?}");

    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
}

/// A voice bot: Bob auto-answers at once and his configuration picks each
/// incoming call's audio from who calls (880 Hz for Alice, and he tracks
/// her 440 Hz). Both tones must cross.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_answered_calls_get_the_audio_the_configuration_chooses() {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let (bob, mut bob_log) = registered_phone_with(&kamailio, "bob", BOB_PASSWORD, |b| {
        b.auto_answer(Some(Duration::ZERO)).incoming_audio(|call| {
            let hz = if call.remote.user.as_deref() == Some("alice") { 880.0 } else { 1000.0 };
            AudioSetup {
                send: SendAudio::Tone { frequency_hz: hz, level_dbfs: -12.0 },
                track_frequencies: vec![440.0],
                ..Default::default()
            }
        })
    })
    .await;

    let audio = AudioSetup {
        send: SendAudio::Tone { frequency_hz: 440.0, level_dbfs: -12.0 },
        track_frequencies: vec![880.0],
        ..Default::default()
    };
    let call = alice.call("bob", CallOptions { audio, ..Default::default() }).await.expect("call placed").key();
    let incoming = bob_log.wait_incoming().await;
    bob_log.wait_confirmed(incoming.key).await;
    alice_log.wait_confirmed(call).await;

    let ratio = |s: &webphone::media::CallStats, hz: f64| {
        s.tracked.iter().find(|(f, _)| (*f - hz).abs() < 0.5).map_or(0.0, |(_, r)| *r)
    };
    wait_stats(&alice, call, "Bob's chosen 880 Hz at Alice", |s| s.decoded_frames >= 50 && ratio(s, 880.0) >= 0.9)
        .await;
    wait_stats(&bob, incoming.key, "Alice's 440 Hz at Bob", |s| s.decoded_frames >= 50 && ratio(s, 440.0) >= 0.9).await;

    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
}
