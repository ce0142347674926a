//! Scenario: hold and resume with real WebRTC media through Kamailio. Alice
//! (440 Hz) and Bob (880 Hz) talk; Alice holds: both sides report it, Bob
//! stops sending (he answered `recvonly`) and hears silence from Alice (or
//! her hold music, when she has one), and Alice, who expects nothing while
//! she holds, raises no "no audio" alert. Alice resumes: each hears the
//! other's tone again. Same ICE and DTLS session throughout (no
//! reconnection, no new peer).

mod support;

use std::time::Duration;

use support::*;
use webphone::media::receive::quality::QualityMetric;
use webphone::{AudioSetup, CallOptions, CallStats, Event, Originator, SendAudio};

fn tone(hz: f64, hear: f64) -> AudioSetup {
    AudioSetup {
        send: SendAudio::Tone { frequency_hz: hz, level_dbfs: -12.0 },
        track_frequencies: vec![hear],
        ..Default::default()
    }
}

fn share(s: &CallStats, hz: f64) -> f64 {
    s.tracked.iter().find(|(f, _)| (*f - hz).abs() < 0.5).map_or(0.0, |(_, r)| *r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_stops_the_far_end_sending_and_resume_brings_it_back() {
    let kamailio = start_kamailio();
    // A short no-audio threshold: a false alert while held would show within the test.
    let quick_alerts = |b: webphone::PhoneConfigBuilder| {
        b.quality_thresholds(webphone::media::receive::quality::QualityThresholds {
            no_audio: Duration::from_secs(1),
            ..Default::default()
        })
    };
    let (alice, mut alice_log) = registered_phone_with(&kamailio, "alice", ALICE_PASSWORD, quick_alerts).await;
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;
    let call =
        alice.call("bob", CallOptions { audio: tone(440.0, 880.0), ..Default::default() }).await.expect("placed");
    let incoming = bob_log.wait_incoming().await;
    bob.answer_with(incoming.key, tone(880.0, 440.0)).await.expect("answered");
    alice_log.wait_confirmed(call.key()).await;
    wait_stats(&alice, call.key(), "880 Hz at Alice", |s| s.decoded_frames >= 50 && share(s, 880.0) >= 0.8).await;

    call.hold().await.expect("hold");
    let held = alice_log.wait_for("CallHeld at Alice", |e| matches!(e, Event::CallHeld { .. })).await;
    assert!(matches!(held, Event::CallHeld { by: Originator::Local, .. }), "{held:?}");
    let held = bob_log.wait_for("CallHeld at Bob", |e| matches!(e, Event::CallHeld { .. })).await;
    assert!(matches!(held, Event::CallHeld { by: Originator::Remote, .. }), "{held:?}");

    // Bob stops sending: his packet count stands still while Alice's audio still reaches him.
    let bob_stopped = wait_stats(&bob, incoming.key, "Bob's sending to stop", {
        let last = std::sync::Mutex::new(u64::MAX);
        move |s| {
            let mut last = last.lock().unwrap();
            let still = s.tx_packets == *last;
            *last = s.tx_packets;
            still
        }
    })
    .await;
    let alice_then = alice.call_stats(call.key()).await.unwrap();
    // Alice keeps sending (sendonly), but silence: she has no hold source.
    wait_stats(&bob, incoming.key, "silence from Alice while she holds", |s| {
        s.rx_packets >= bob_stopped.rx_packets + 50 && s.rx_level_dbfs < -60.0
    })
    .await;
    let alice_now = alice.call_stats(call.key()).await.unwrap();
    assert!(alice_now.rx_packets <= alice_then.rx_packets + 2, "Alice receives nothing while she holds");
    let bob_now = bob.call_stats(incoming.key).await.unwrap();
    assert!(bob_now.tx_packets <= bob_stopped.tx_packets + 2, "Bob sends nothing while held");
    assert!(
        !alice_log.drain().iter().any(
            |e| matches!(e, Event::CallQuality { alert, .. } if alert.metric == QualityMetric::NoAudio && alert.active)
        ),
        "no false no-audio alert while holding"
    );

    call.resume().await.expect("resume");
    let resumed = alice_log.wait_for("CallResumed at Alice", |e| matches!(e, Event::CallResumed { .. })).await;
    assert!(matches!(resumed, Event::CallResumed { by: Originator::Local, .. }), "{resumed:?}");
    bob_log.wait_for("CallResumed at Bob", |e| matches!(e, Event::CallResumed { by: Originator::Remote, .. })).await;
    let back = wait_stats(&alice, call.key(), "Bob's tone back at Alice", |s| {
        s.rx_packets >= alice_now.rx_packets + 50 && s.rx_dominant_hz.is_some_and(|f| (f - 880.0).abs() < 5.0)
    })
    .await;
    assert_eq!(back.codec.as_deref(), Some("opus"), "the same session");

    call.hangup().await.expect("hang up");
    bob_log.wait_ended(incoming.key).await;
    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_far_end_hears_the_hold_source_while_held() {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;
    let music =
        AudioSetup { hold: Some(SendAudio::Tone { frequency_hz: 523.0, level_dbfs: -12.0 }), ..tone(440.0, 880.0) };
    let call = alice.call("bob", CallOptions { audio: music, ..Default::default() }).await.expect("placed");
    let incoming = bob_log.wait_incoming().await;
    bob.answer_with(incoming.key, tone(880.0, 440.0)).await.expect("answered");
    alice_log.wait_confirmed(call.key()).await;
    let dominant = |hz: f64| move |s: &CallStats| s.rx_dominant_hz.is_some_and(|f| (f - hz).abs() < 5.0);
    wait_stats(&bob, incoming.key, "Alice's tone at Bob", dominant(440.0)).await;
    call.hold().await.expect("hold");
    bob_log.wait_for("CallHeld at Bob", |e| matches!(e, Event::CallHeld { by: Originator::Remote, .. })).await;
    wait_stats(&bob, incoming.key, "the hold music at Bob", dominant(523.0)).await;
    call.resume().await.expect("resume");
    bob_log.wait_for("CallResumed at Bob", |e| matches!(e, Event::CallResumed { by: Originator::Remote, .. })).await;
    wait_stats(&bob, incoming.key, "Alice's tone back at Bob", dominant(440.0)).await;
    call.hangup().await.expect("hang up");
    bob_log.wait_ended(incoming.key).await;
    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
}
