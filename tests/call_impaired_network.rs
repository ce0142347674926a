//! Scenario: a call over a bad network. Alice calls Bob through Kamailio and
//! sends 440 Hz; what Bob receives loses 5 % of all UDP for real (an
//! nftables rule in the loopback-only namespace: `numgen random mod 100 lt
//! 5 drop`) and then passes a seeded impairment stage that delays each
//! packet by 0–30 ms (which reorders them) before the jitter buffer.
//!
//! Bob must still hear the tone as the dominant frequency in at least 95 %
//! of the frames, with the loss recovered by Opus FEC or concealed, the
//! jitter buffer's target grown to cover the jitter, and a packet-loss
//! quality alert raised. Then the network fails completely (100 % drop):
//! Bob gets a no-audio alert, and when the network is back, its clearing.
//! The jitter buffer's figures are printed (`--nocapture`).

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;
use webphone::media::receive::impairment::Impairment;
use webphone::media::receive::quality::{QualityMetric, QualityThresholds};
use webphone::media::{AudioSetup, CallStats, SendAudio};
use webphone::{CallOptions, Event};

const TABLE: &str = "webphone_impairment";

/// An nftables table dropping a share of UDP in this (loopback-only)
/// namespace; removed on drop, also when the test fails.
struct UdpLoss;

impl UdpLoss {
    fn set(percent: u32) -> UdpLoss {
        let _ = nft(&["delete", "table", "inet", TABLE]);
        nft(&["add", "table", "inet", TABLE]).expect("nft add table (nftables installed? running as root?)");
        nft(&["add", "chain", "inet", TABLE, "input", "{ type filter hook input priority 0 ; }"]).expect("nft chain");
        let rule = if percent >= 100 {
            "meta l4proto udp drop".to_string()
        } else {
            format!("meta l4proto udp numgen random mod 100 lt {percent} drop")
        };
        let mut args = vec!["add", "rule", "inet", TABLE, "input"];
        args.extend(rule.split(' '));
        nft(&args).expect("nft rule");
        UdpLoss
    }
}

impl Drop for UdpLoss {
    fn drop(&mut self) {
        let _ = nft(&["delete", "table", "inet", TABLE]);
    }
}

fn nft(args: &[&str]) -> Result<(), String> {
    let out = Command::new("nft").args(args).output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("nft {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
    }
}

fn ratio(stats: &CallStats, hz: f64) -> f64 {
    stats.tracked.iter().find(|(f, _)| (*f - hz).abs() < 0.5).map_or(0.0, |(_, r)| *r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tone_survives_loss_and_jitter_and_alerts_report_the_network() {
    let kamailio = start_kamailio();
    let (alice, _alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let (bob, mut bob_log) = registered_phone_with(&kamailio, "bob", BOB_PASSWORD, |b| {
        b.receive_impairment(Some(Impairment { loss: 0.0, jitter: Duration::from_millis(30), seed: 4475 }))
            .quality_thresholds(QualityThresholds {
                loss: 0.02,
                no_audio: Duration::from_secs(2),
                ..QualityThresholds::default()
            })
    })
    .await;
    // Real loss from here on (SIP runs over TCP and is not touched; ICE and
    // DTLS are, and must cope).
    let loss = UdpLoss::set(5);

    let audio = AudioSetup {
        send: SendAudio::Tone { frequency_hz: 440.0, level_dbfs: -12.0 },
        track_frequencies: vec![440.0],
        ..Default::default()
    };
    let _call = alice.call("bob", CallOptions { audio, ..Default::default() }).await.expect("call placed").key();
    let incoming = bob_log.wait_incoming().await;
    let listen = AudioSetup { track_frequencies: vec![440.0], ..Default::default() };
    bob.answer_with(incoming.key, listen).await.expect("answered");
    bob_log.wait_confirmed(incoming.key).await;

    // Ten seconds of audio at Bob (polled, with a generous deadline: ICE and
    // DTLS also lose packets).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    let stats = loop {
        poll.tick().await;
        let s = match bob.call_stats(incoming.key).await {
            Ok(s) => s,
            // Say how the call ended, if it did.
            Err(e) => panic!("no stats ({e}); bob's events: {:#?}", bob_log.drain()),
        };
        if s.decoded_frames + s.fec_frames + s.concealed_frames >= 500 {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "not enough audio in time: {s:#?}");
    };
    let played = stats.decoded_frames + stats.fec_frames + stats.concealed_frames;
    println!(
        "impaired call at Bob after {played} frames: tone 440 Hz dominant in {:.1} % of frames; \
         loss {:.2} % ({} lost, {} late), jitter {:.1} ms, jitter buffer target {:.0} ms, \
         {} decoded, {} recovered by FEC, {} concealed",
        100.0 * ratio(&stats, 440.0),
        100.0 * stats.loss,
        stats.rx_lost,
        stats.rx_late,
        stats.jitter_ms,
        stats.jitter_buffer_ms,
        stats.decoded_frames,
        stats.fec_frames,
        stats.concealed_frames,
    );
    assert!(ratio(&stats, 440.0) >= 0.95, "{stats:#?}");
    assert!(stats.rx_lost > 0 && stats.loss > 0.01 && stats.loss < 0.15, "the loss is real: {stats:#?}");
    assert!(stats.jitter_ms > 3.0, "the jitter stage is in effect: {stats:#?}");
    assert!(stats.jitter_buffer_ms >= 40.0, "the buffer grew for the jitter: {stats:#?}");
    assert!(stats.fec_frames > 0, "lost frames were recovered from FEC: {stats:#?}");
    assert!(stats.concealed_frames > 0, "{stats:#?}");

    let alert = bob_log
        .wait_for("packet-loss alert", |e| {
            matches!(e, Event::CallQuality { alert, .. } if alert.metric == QualityMetric::PacketLoss && alert.active)
        })
        .await;
    println!("{alert:?}");

    // The network fails: nothing arrives for two seconds → no-audio alert.
    drop(loss);
    let outage = UdpLoss::set(100);
    bob_log
        .wait_for(
            "no-audio alert",
            |e| matches!(e, Event::CallQuality { alert, .. } if alert.metric == QualityMetric::NoAudio && alert.active),
        )
        .await;
    // Back: the alert clears.
    drop(outage);
    bob_log
        .wait_for("no-audio cleared", |e| {
            matches!(e, Event::CallQuality { alert, .. } if alert.metric == QualityMetric::NoAudio && !alert.active)
        })
        .await;

    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
}
