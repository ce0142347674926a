//! Scenario: Kamailio is killed 2 s into a call with real media and
//! restarted; the call must survive it. Media is peer to peer and goes on
//! through the outage (tones still heard, no loss); both phones reconnect,
//! register again and refresh their dialog's target, so that when one side
//! hangs up the other's `CallEnded` arrives at once with `by: remote` (JsSIP
//! and SIP.js lose the call here: the proxy's alias still names the dead
//! connection). Run twice: the caller hangs up, then the callee.

mod support;

use std::time::{Duration, Instant};

use support::*;
use webphone::{AudioSetup, CallKey, CallOptions, Event, Originator, Phone, SendAudio};

fn tone(hz: f64, hear: f64) -> AudioSetup {
    AudioSetup {
        send: SendAudio::Tone { frequency_hz: hz, level_dbfs: -12.0 },
        track_frequencies: vec![hear],
        ..Default::default()
    }
}

async fn hears(phone: &Phone, call: CallKey, hz: f64, frames: u64, what: &str) {
    let start = phone.call_stats(call).await.expect("stats").decoded_frames;
    wait_stats(phone, call, what, move |s| {
        s.decoded_frames >= start + frames && s.rx_dominant_hz.is_some_and(|f| (f - hz).abs() < 5.0)
    })
    .await;
}

async fn survive_restart(caller_hangs_up: bool) {
    let mut kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;
    let a = alice.call("bob", CallOptions { audio: tone(440.0, 880.0), ..Default::default() }).await.unwrap().key();
    let b = bob_log.wait_incoming().await.key;
    bob.answer_with(b, tone(880.0, 440.0)).await.unwrap();
    alice_log.wait_confirmed(a).await;
    hears(&alice, a, 880.0, 50, "Bob's tone at Alice").await;

    kamailio.stop();
    alice_log.wait_for("Alice disconnected", |e| matches!(e, Event::Disconnected { .. })).await;
    bob_log.wait_for("Bob disconnected", |e| matches!(e, Event::Disconnected { .. })).await;
    // One second of the outage: audio flows both ways all along.
    hears(&alice, a, 880.0, 50, "Bob's tone at Alice during the outage").await;
    hears(&bob, b, 440.0, 50, "Alice's tone at Bob during the outage").await;

    kamailio.restart();
    for log in [&mut alice_log, &mut bob_log] {
        log.wait_for("registered again", |e| matches!(e, Event::Registered { .. })).await;
        log.seen_or_wait("target refreshed", |e| matches!(e, Event::TargetRefreshed { .. })).await;
    }
    let (hanger, hanger_key, hanger_log, other_key, other_log) = if caller_hangs_up {
        (&alice, a, &mut alice_log, b, &mut bob_log)
    } else {
        (&bob, b, &mut bob_log, a, &mut alice_log)
    };
    let hung_up = Instant::now();
    hanger.hangup(hanger_key).await.unwrap();
    let other_end = other_log.wait_ended(other_key).await;
    let took = hung_up.elapsed();
    assert!(took < Duration::from_secs(1), "the far end learned it in {took:?}");
    assert_eq!(other_end.end.as_ref().unwrap().by, Originator::Remote);
    let own_end = hanger_log.wait_ended(hanger_key).await.end.unwrap();
    assert_eq!(own_end.bye_status, None, "the BYE was answered: {own_end:?}");
    let stats = [&alice_log, &bob_log].map(|log| {
        log.seen
            .iter()
            .find_map(|e| match e {
                Event::CallEnded { stats: Some(s), .. } => Some(s.clone()),
                _ => None,
            })
            .expect("final stats")
    });
    for s in &stats {
        assert!(s.loss < 0.01, "media uninterrupted: loss {}", s.loss);
    }
    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_hangs_up_after_the_restart() {
    survive_restart(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callee_hangs_up_after_the_restart() {
    survive_restart(false).await;
}
