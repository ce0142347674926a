//! Scenario: Alice calls Bob through a real Kamailio (digest auth on, 407 on
//! the INVITE), Bob answers; real webrtc-rs media with Opus on loopback.
//! Alice sends 440 Hz, Bob 880 Hz, and each side's meter must find the
//! other's tone as the dominant frequency of most received frames. Alice
//! hangs up; both see CallEnded with the right originator.

mod support;

use std::time::Duration;

use support::*;
use webphone::media::{AudioSetup, SendAudio};
use webphone::{CallDirection, CallOptions, Event, Originator};

fn tone(hz: f64) -> AudioSetup {
    AudioSetup {
        send: SendAudio::Tone { frequency_hz: hz, level_dbfs: -12.0 },
        track_frequencies: vec![440.0, 880.0],
        ..Default::default()
    }
}

fn ratio(stats: &webphone::media::CallStats, hz: f64) -> f64 {
    stats.tracked.iter().find(|(f, _)| (*f - hz).abs() < 0.5).map_or(0.0, |(_, r)| *r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tones_cross_both_ways_through_kamailio() {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;

    let call = alice
        .call(
            "bob",
            CallOptions {
                headers: vec![("X-Order-Id".into(), "A-17".into())],
                audio: tone(440.0),
                ..Default::default()
            },
        )
        .await
        .expect("call placed")
        .key();
    let incoming = bob_log.wait_for("CallIncoming", |e| matches!(e, Event::CallIncoming { .. })).await;
    let Event::CallIncoming { call: info } = incoming else { unreachable!() };
    assert_eq!(info.direction, CallDirection::Incoming);
    assert_eq!(info.remote.user.as_deref(), Some("alice"));
    assert!(info.headers.contains(&("X-Order-Id".to_string(), "A-17".to_string())), "{:?}", info.headers);
    alice_log.wait_for("CallProgress (ringing)", |e| matches!(e, Event::CallProgress { status: 180, .. })).await;
    bob.answer_with(info.key, tone(880.0)).await.expect("answered");

    let confirmed = alice_log.wait_for("CallConfirmed", |e| matches!(e, Event::CallConfirmed { .. })).await;
    let Event::CallConfirmed { call: alice_info } = confirmed else { unreachable!() };
    assert!(alice_info.connected_ms.is_some_and(|c| c >= alice_info.started_ms));
    bob_log.wait_for("CallConfirmed", |e| matches!(e, Event::CallConfirmed { .. })).await;

    // Two seconds of audio each way, most frames dominated by the far tone.
    let enough = |hz: f64| move |s: &webphone::media::CallStats| s.decoded_frames >= 100 && ratio(s, hz) >= 0.9;
    let at_alice = wait_stats(&alice, call, "880 Hz at Alice", enough(880.0)).await;
    let at_bob = wait_stats(&bob, info.key, "440 Hz at Bob", enough(440.0)).await;
    assert_eq!(at_alice.codec.as_deref(), Some("opus"));
    assert!(ratio(&at_alice, 440.0) < 0.05 && ratio(&at_bob, 880.0) < 0.05, "no own tone echoed back");
    assert!(at_alice.rx_dominant_hz.is_some_and(|f| (f - 880.0).abs() < 5.0), "{at_alice:#?}");
    assert!(at_bob.rx_dominant_hz.is_some_and(|f| (f - 440.0).abs() < 5.0), "{at_bob:#?}");
    assert!(at_alice.tx_packets >= 100 && at_bob.tx_packets >= 100);

    alice.hangup(call).await.unwrap();
    let ended = alice_log.wait_for("CallEnded", |e| matches!(e, Event::CallEnded { .. })).await;
    let Event::CallEnded { call: a, stats: a_stats } = ended else { unreachable!() };
    assert_eq!(a.end.as_ref().map(|e| e.by), Some(Originator::Local));
    // The final figures travel on CallEnded (the call's stats are gone after it).
    let a_stats = a_stats.expect("Alice's CallEnded carries the final stats");
    assert!(a_stats.decoded_frames >= at_alice.decoded_frames && ratio(&a_stats, 880.0) >= 0.9, "{a_stats:#?}");
    assert!(alice.call_stats(call).await.is_err(), "stats of an ended call come only on CallEnded");
    let ended = bob_log.wait_for("CallEnded", |e| matches!(e, Event::CallEnded { .. })).await;
    let Event::CallEnded { call: b, stats: b_stats } = ended else { unreachable!() };
    assert!(b_stats.is_some_and(|s| s.tx_packets >= at_bob.tx_packets), "Bob's final stats");
    assert_eq!(b.end.as_ref().map(|e| e.by), Some(Originator::Remote));
    assert!(b.ended_ms.is_some() && b.connected_ms.is_some());
    let _ = Duration::ZERO;
    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
}
