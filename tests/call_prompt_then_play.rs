//! Scenario: an IVR's media control through Kamailio. Bob answers with a
//! short WAV prompt (a 440 Hz tone, not looping); when it runs out he gets
//! `SendAudioEnded` and, through his `Call` handle, switches to a 660 Hz
//! tone mid-call. Alice hears the prompt, then silence is not the end: she
//! hears the new tone. All measured at Alice's side.

mod support;

use std::path::Path;

use support::*;
use webphone::{AudioSetup, CallOptions, CallStats, Event, SendAudio};

/// Writes `secs` of a `hz` sine at -12 dBFS, 48 kHz mono.
fn write_prompt(path: &Path, hz: f64, secs: f64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create prompt");
    let amp = 32767.0 * 10f64.powf(-12.0 / 20.0);
    for i in 0..(48_000.0 * secs) as usize {
        let t = i as f64 / 48_000.0;
        w.write_sample((amp * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16).expect("sample");
    }
    w.finalize().expect("finalize prompt");
}

fn share(s: &CallStats, hz: f64) -> f64 {
    s.tracked.iter().find(|(f, _)| (*f - hz).abs() < 0.5).map_or(0.0, |(_, r)| *r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_runs_out_then_the_bot_plays_something_else() {
    let kamailio = start_kamailio();
    let dir = std::env::temp_dir().join(format!("webphone-prompt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prompt = dir.join("prompt.wav");
    write_prompt(&prompt, 440.0, 0.6);

    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;
    let listen = AudioSetup { track_frequencies: vec![440.0, 660.0], ..Default::default() };
    let call = alice.call("bob", CallOptions { audio: listen, ..Default::default() }).await.expect("placed").key();
    let incoming = bob_log.wait_incoming().await;
    let bot = bob.call_handle(incoming.key);
    let prompt_audio =
        AudioSetup { send: SendAudio::WavFile { path: prompt.clone(), looping: false }, ..Default::default() };
    bot.answer_with(prompt_audio).await.expect("answered");
    alice_log.wait_confirmed(call).await;

    // The prompt is heard, then it runs out and Bob is told so, once.
    let heard_prompt =
        wait_stats(&alice, call, "the 440 Hz prompt at Alice", |s| s.decoded_frames >= 25 && share(s, 440.0) >= 0.8)
            .await;
    assert!(share(&heard_prompt, 660.0) < 0.05, "{heard_prompt:#?}");
    let ended = bob_log.wait_for("SendAudioEnded", |e| matches!(e, Event::SendAudioEnded { .. })).await;
    assert_eq!(ended.call().map(|c| c.key), Some(incoming.key));

    // Bob plays something else mid-call; Alice hears it.
    bot.play(SendAudio::Tone { frequency_hz: 660.0, level_dbfs: -12.0 }).await.expect("play");
    let after = wait_stats(&alice, call, "the 660 Hz tone at Alice after the switch", |s| {
        s.rx_dominant_hz.is_some_and(|f| (f - 660.0).abs() < 5.0) && share(s, 660.0) >= 0.3
    })
    .await;
    assert!(share(&after, 440.0) > 0.0, "the prompt was heard before: {after:#?}");
    // Everything Bob saw, the first SendAudioEnded included: a tone never runs out.
    let ends = bob_log.drain().iter().filter(|e| matches!(e, Event::SendAudioEnded { .. })).count();
    assert_eq!(ends, 1, "the prompt's end was reported once, the tone's never");

    alice.hangup(call).await.expect("hang up");
    bob_log.wait_ended(incoming.key).await;
    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
