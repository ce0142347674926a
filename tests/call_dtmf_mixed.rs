//! Scenario: one DTMF queue per call, whatever the method. Alice calls Bob
//! through a real Kamailio with real webrtc-rs media (Opus, telephone-event
//! negotiated; Bob also listens for in-band tones) and asks, back to back,
//! for `12` by RFC 4733, `34` by SIP INFO, `,56` in-band and `7` by `auto`.
//! Bob must hear 1234567 in that order, each by the method it was sent
//! with, and Alice must report one `DtmfSent` per digit, in order (that
//! they never overlap is shown on fake time by `call_audio`'s tests). Then
//! Alice queues five long digits and hangs up after the first: the rest
//! are dropped with the call (nothing reported sent after `CallEnded`).

mod support;

use support::*;
use webphone::media::{AudioSetup, SendAudio};
use webphone::{CallOptions, DtmfMethod, DtmfOptions, Event};

fn setup() -> AudioSetup {
    AudioSetup {
        send: SendAudio::Tone { frequency_hz: 440.0, level_dbfs: -20.0 },
        detect_inband_dtmf: Some(true),
        ..Default::default()
    }
}

fn options(method: DtmfMethod) -> DtmfOptions {
    DtmfOptions { method, duration_ms: None, gap_ms: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_methods_keep_their_order_and_hangup_drops_the_queue() {
    use DtmfMethod::{Auto, Inband, Info, Rfc4733};
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    // Bob hears in-band tones: a jitter buffer deep enough that a starved
    // sender's bursts are not concealed or skipped (see call_dtmf.rs).
    let ms = std::time::Duration::from_millis;
    let (bob, mut bob_log) =
        registered_phone_with(&kamailio, "bob", BOB_PASSWORD, |b| b.jitter_buffer(ms(60), ms(400), ms(60))).await;
    let call = alice.call("bob", CallOptions { audio: setup(), ..Default::default() }).await.unwrap().key();
    let incoming = bob_log.wait_incoming().await;
    bob.answer_with(incoming.key, setup()).await.unwrap();
    alice_log.wait_confirmed(call).await;
    bob_log.wait_confirmed(incoming.key).await;
    wait_stats(&alice, call, "audio at Alice", |s| s.decoded_frames >= 25).await;
    wait_stats(&bob, incoming.key, "audio at Bob", |s| s.decoded_frames >= 25).await;

    for (digits, method) in [("12", Rfc4733), ("34", Info), (",56", Inband), ("7", Auto)] {
        alice.send_dtmf(call, digits, options(method)).await.unwrap();
    }
    let want = [('1', Rfc4733), ('2', Rfc4733), ('3', Info), ('4', Info), ('5', Inband), ('6', Inband), ('7', Rfc4733)];
    let mut heard = vec![];
    while heard.len() < want.len() {
        match bob_log.wait_for("a digit at Bob", |e| matches!(e, Event::DtmfReceived { .. })).await {
            Event::DtmfReceived { digit, method, .. } => heard.push((digit, method)),
            _ => unreachable!(),
        }
    }
    assert_eq!(heard, want, "Bob's events: {:#?}", bob_log.seen);
    let mut sent = vec![];
    while sent.len() < want.len() {
        match alice_log.wait_for("a digit sent by Alice", |e| matches!(e, Event::DtmfSent { .. })).await {
            Event::DtmfSent { digit, method, .. } => sent.push((digit, method)),
            _ => unreachable!(),
        }
    }
    assert_eq!(sent, want, "`auto` goes by RFC 4733 when negotiated");

    // Five digits of a second each; hang up once the first went out.
    let long = DtmfOptions { method: Rfc4733, duration_ms: Some(1000), gap_ms: None };
    alice.send_dtmf(call, "99999", long).await.unwrap();
    alice_log.wait_for("the first 9 sent", |e| matches!(e, Event::DtmfSent { digit: '9', .. })).await;
    alice.hangup(call).await.unwrap();
    alice_log.wait_ended(call).await;
    bob_log.wait_ended(incoming.key).await;
    alice.stop().await.unwrap();
    alice_log.wait_for("Stopped", |e| matches!(e, Event::Stopped)).await;
    let ended_at = alice_log.seen.iter().position(|e| matches!(e, Event::CallEnded { .. })).unwrap();
    let nines = |seen: &[Event]| seen.iter().filter(|e| matches!(e, Event::DtmfSent { digit: '9', .. })).count();
    assert_eq!(nines(&alice_log.seen[ended_at..]), 0, "{:#?}", alice_log.seen);
    assert!(nines(&alice_log.seen) <= 2, "{:#?}", alice_log.seen);
    let heard_nines = bob_log.seen.iter().filter(|e| matches!(e, Event::DtmfReceived { digit: '9', .. })).count();
    assert!((1..=2).contains(&heard_nines), "{:#?}", bob_log.seen);
    bob.stop().await.unwrap();
}
