//! Scenario: a call recorded on command mid-call, through a real Kamailio.
//! Alice (sending 440 Hz, with a history) calls Bob (sending 880 Hz); once
//! audio flows she records the call in stereo, then stops. The WAV file
//! holds what she sent on the left (440 Hz) and what she heard on the
//! right (880 Hz), no frame was dropped, and her history keeps the path.
//! Then a mixed recording of the same call holds both tones in one channel.

mod support;

use support::*;
use webphone::media::RecordChannels;
use webphone::{AudioSetup, CallOptions, Event, SendAudio};

fn tone(hz: f64) -> AudioSetup {
    AudioSetup { send: SendAudio::Tone { frequency_hz: hz, level_dbfs: -12.0 }, ..Default::default() }
}

/// The power of `hz` in `samples` (48 kHz), Goertzel.
fn power(samples: &[i16], hz: f64) -> f64 {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / 48_000.0).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / samples.len().max(1) as f64
}

/// Records `call` of `phone` into `path` until `frames` more frames were
/// played, then stops; returns the file's channels and samples.
async fn record(
    phone: &webphone::Phone,
    log: &mut EventLog,
    call: webphone::CallKey,
    path: &std::path::Path,
    channels: RecordChannels,
) -> (u16, Vec<i16>) {
    phone.record(call, path, channels).await.expect("recording");
    log.wait_for("RecordingStarted", |e| matches!(e, Event::RecordingStarted { path: p, .. } if p == path)).await;
    let from = phone.call_stats(call).await.unwrap().decoded_frames;
    wait_stats(phone, call, "a second of audio recorded", |s| s.decoded_frames >= from + 50).await;
    phone.stop_recording(call).await.unwrap();
    let stopped = log.wait_for("RecordingStopped", |e| matches!(e, Event::RecordingStopped { .. })).await;
    let Event::RecordingStopped { path: p, error, .. } = stopped else { unreachable!() };
    assert_eq!((p.as_path(), error), (path, None));
    let mut wav = hound::WavReader::open(path).expect("a complete WAV file");
    let spec = wav.spec();
    assert_eq!((spec.sample_rate, spec.bits_per_sample), (48_000, 16));
    (spec.channels, wav.samples::<i16>().map(Result::unwrap).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_recorded_in_stereo_and_mixed_on_command() {
    let kamailio = start_kamailio();
    let dir = std::env::temp_dir().join(format!("webphone-recording-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("history.sqlite");
    let (alice, mut alice_log) = registered_phone_with(&kamailio, "alice", ALICE_PASSWORD, |b| b.history(&db)).await;
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;

    let call = alice.call("bob", CallOptions { audio: tone(440.0), ..Default::default() }).await.unwrap().key();
    let incoming = bob_log.wait_incoming().await;
    bob.answer_with(incoming.key, tone(880.0)).await.unwrap();
    alice_log.wait_confirmed(call).await;
    wait_stats(&alice, call, "Bob's tone at Alice", |s| s.rx_dominant_hz.is_some_and(|hz| (hz - 880.0).abs() < 5.0))
        .await;

    let stereo = dir.join("stereo.wav");
    let (channels, samples) = record(&alice, &mut alice_log, call, &stereo, RecordChannels::Stereo).await;
    assert_eq!(channels, 2);
    assert!(samples.len() >= 2 * 48_000, "at least a second: {} samples", samples.len());
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let (l440, l880, r440, r880) =
        (power(&left, 440.0), power(&left, 880.0), power(&right, 440.0), power(&right, 880.0));
    assert!(l440 > 100.0 * l880, "left is what Alice sent (440 Hz): {l440:.0} vs {l880:.0}");
    assert!(r880 > 100.0 * r440, "right is what Alice heard (880 Hz): {r880:.0} vs {r440:.0}");

    let mixed = dir.join("mixed.wav");
    let (channels, samples) = record(&alice, &mut alice_log, call, &mixed, RecordChannels::Mixed).await;
    assert_eq!(channels, 1);
    let (m440, m880, m660) = (power(&samples, 440.0), power(&samples, 880.0), power(&samples, 660.0));
    assert!(m440 > 100.0 * m660 && m880 > 100.0 * m660, "both tones: {m440:.0}, {m880:.0} vs {m660:.0} at 660 Hz");

    assert_eq!(alice.call_stats(call).await.unwrap().recording_dropped_frames, 0);
    alice.hangup(call).await.unwrap();
    alice_log.wait_ended(call).await;
    let record = alice.history(1).await.unwrap().remove(0);
    assert_eq!(record.recording.as_deref(), Some(mixed.to_str().unwrap()), "the latest recording");
    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
