//! Scenarios against a real browser: JsSIP 3.13 in headless Chromium (see
//! `support/browser.rs`) registered as bob, our phone as alice, through a
//! real Kamailio, real WebRTC both sides. The browser's fake microphone
//! plays 1000 Hz, alice sends 440 Hz; each side proves what it hears with
//! its own meter (our frequency tracker; a Goertzel meter on the browser's
//! remote stream).
//!
//! Covered: calls both ways with audio both ways; hold from JsSIP
//! (`sendonly`, we answer `recvonly`) and from us (the browser hears our
//! hold music, 523 Hz); JsSIP's session refresh; DTMF both ways by RFC
//! 4733 (Chromium plays received telephone-events out as tones, which the
//! browser's meter hears) and by SIP INFO. Each test has its own Kamailio
//! and Chromium.

mod support;

use serde_json::json;
use support::browser::{Browser, packets};
use support::*;
use webphone::media::receive::quality::{QualityMetric, QualityThresholds};
use webphone::{AudioSetup, CallKey, CallStats, DtmfMethod, DtmfOptions, Event, Originator, SendAudio};

/// What the browser's microphone plays.
const BROWSER_HZ: f64 = 1000.0;
/// What alice sends.
const PHONE_HZ: f64 = 440.0;
const ALL_DIGITS: &str = "0123456789*#ABCD";

/// What the browser hears while alice holds.
const HOLD_MUSIC_HZ: f64 = 523.0;

fn tone() -> AudioSetup {
    AudioSetup {
        send: SendAudio::Tone { frequency_hz: PHONE_HZ, level_dbfs: -12.0 },
        hold: Some(SendAudio::Tone { frequency_hz: HOLD_MUSIC_HZ, level_dbfs: -12.0 }),
        track_frequencies: vec![BROWSER_HZ, PHONE_HZ],
        ..Default::default()
    }
}

fn share(s: &CallStats, hz: f64) -> f64 {
    s.tracked.iter().find(|(f, _)| (*f - hz).abs() < 0.5).map_or(0.0, |(_, r)| *r)
}

/// Alice hears the browser's tone in most frames.
async fn alice_hears_browser(alice: &webphone::Phone, key: CallKey, after_frames: u64) -> CallStats {
    wait_stats(alice, key, "the browser's 1000 Hz at alice", |s| {
        s.decoded_frames >= after_frames + 50
            && share(s, BROWSER_HZ) >= 0.8
            && s.rx_dominant_hz.is_some_and(|f| (f - BROWSER_HZ).abs() < 5.0)
    })
    .await
}

/// Kamailio, Chromium with JsSIP registered as bob, and alice.
async fn setup(no_audio_alert: Option<std::time::Duration>) -> (Kamailio, Browser, webphone::Phone, EventLog) {
    let kamailio = start_kamailio();
    let mut browser = Browser::start(BROWSER_HZ as u32).await;
    browser.register("bob", &kamailio, "bob", BOB_PASSWORD).await;
    let (alice, log) = registered_phone_with(&kamailio, "alice", ALICE_PASSWORD, |b| match no_audio_alert {
        Some(after) => b.quality_thresholds(QualityThresholds { no_audio: after, ..Default::default() }),
        None => b,
    })
    .await;
    (kamailio, browser, alice, log)
}

/// JsSIP calls alice, alice answers; both hear each other. Returns alice's
/// call and the browser's.
async fn browser_calls_alice(browser: &mut Browser, alice: &webphone::Phone, log: &mut EventLog) -> (CallKey, String) {
    let call = browser.command("bob", "call", json!({"target": "alice"})).await;
    let call = call["call"].as_str().expect("call name").to_string();
    let incoming = log.wait_incoming().await;
    assert_eq!(incoming.remote.user.as_deref(), Some("bob"));
    let ringing = browser.wait("bob", "progress", Some(&call)).await;
    assert_eq!(ringing["status"], 180, "{ringing}");
    alice.answer_with(incoming.key, tone()).await.expect("answered");
    browser.wait("bob", "confirmed", Some(&call)).await;
    log.wait_confirmed(incoming.key).await;
    alice_hears_browser(alice, incoming.key, 0).await;
    browser.wait_tone("bob", &call, PHONE_HZ, true).await;
    (incoming.key, call)
}

/// The audio m-line's direction attribute in `sdp`.
fn direction(sdp: &str) -> &'static str {
    ["sendrecv", "sendonly", "recvonly", "inactive"]
        .into_iter()
        .find(|d| sdp.lines().any(|l| l.trim_end() == format!("a={d}")))
        .unwrap_or("sendrecv")
}

/// Loss and no-audio alerts raised so far. Jitter is left out: on loopback
/// it measures how busy the machine is (two Chromiums and the test on two
/// shared cores), not the peer.
fn raised_alerts(log: &mut EventLog) -> Vec<Event> {
    log.drain()
        .iter()
        .filter(
            |e| matches!(e, Event::CallQuality { alert, .. } if alert.active && alert.metric != QualityMetric::Jitter),
        )
        .cloned()
        .collect()
}

async fn hang_up_from_browser(browser: &mut Browser, call: &str, alice_log: &mut EventLog, key: CallKey) {
    browser.command("bob", "hangup", json!({"call": call})).await;
    let ended = alice_log.wait_ended(key).await;
    assert_eq!(ended.end.map(|e| e.by), Some(Originator::Remote));
    let ended = browser.wait("bob", "ended", Some(call)).await;
    assert_eq!(ended["originator"], "local", "{ended}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jssip_calls_us_and_audio_crosses_both_ways() {
    let (_kamailio, mut browser, alice, mut log) = setup(None).await;
    let (key, call) = browser_calls_alice(&mut browser, &alice, &mut log).await;

    let at_alice = alice.call_stats(key).await.unwrap();
    assert_eq!(at_alice.codec.as_deref(), Some("opus"));
    assert!(share(&at_alice, PHONE_HZ) < 0.05, "no own tone echoed: {at_alice:#?}");
    let heard = browser.measure_tone("bob", &call, BROWSER_HZ).await;
    assert_eq!(heard.present, 0.0, "the browser hears only alice, not itself: {heard:?}");
    let stats = browser.stats("bob", &call).await;
    let codec = &stats["codecs"][stats["inbound"][0]["codec_id"].as_str().expect("inbound codec")];
    assert!(codec.as_str().is_some_and(|c| c.starts_with("audio/opus/48000")), "{stats}");
    // Our answer as the browser took it: one audio m-line, sendrecv, Opus.
    let answer = browser.wire_sdp("bob", "in", 1).await;
    assert_eq!(direction(&answer), "sendrecv", "{answer}");
    assert!(answer.contains("opus/48000/2"), "{answer}");
    assert!(raised_alerts(&mut log).is_empty(), "no quality alert on a clean call: {:#?}", log.seen);

    hang_up_from_browser(&mut browser, &call, &mut log, key).await;
    alice.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_call_jssip_and_audio_crosses_both_ways() {
    let (_kamailio, mut browser, alice, mut log) = setup(None).await;
    let out = alice.call("bob", webphone::CallOptions { audio: tone(), ..Default::default() }).await.expect("placed");
    let incoming = browser.wait("bob", "incoming", None).await;
    assert_eq!(incoming["from"], "sip:alice@example.com", "{incoming}");
    let call = incoming["call"].as_str().expect("call name").to_string();
    browser.command("bob", "answer", json!({"call": call})).await;
    let offer = browser.wire_sdp("bob", "in", 1).await;
    assert_eq!(direction(&offer), "sendrecv", "{offer}");
    let confirmed = log.wait_confirmed(out.key()).await;
    browser.wait("bob", "confirmed", Some(&call)).await;
    let heard = alice_hears_browser(&alice, out.key(), 0).await;
    // Media start, for the record (speed is measured, not asserted, here).
    if let (Some(answered), Some(rtp), Some(audio)) = (confirmed.connected_ms, heard.first_rtp_ms, heard.first_audio_ms)
    {
        println!(
            "alice: 200 OK to first RTP {} ms, to first audio {} ms",
            rtp.saturating_sub(answered),
            audio.saturating_sub(answered)
        );
    }
    if let (Some(c), Some(r)) = (heard.media_connected, heard.first_rtp) {
        println!("alice: media connected to first RTP {:?}", r.saturating_duration_since(c));
    }
    browser.wait_tone("bob", &call, PHONE_HZ, true).await;
    assert!(raised_alerts(&mut log).is_empty(), "no quality alert on a clean call: {:#?}", log.seen);

    out.hangup().await.unwrap();
    let ended = browser.wait("bob", "ended", Some(&call)).await;
    assert_eq!(ended["originator"], "remote", "{ended}");
    log.wait_ended(out.key()).await;
    alice.stop().await.unwrap();
}

/// The same call between two JsSIP phones in Chromium, for the record
/// beside `we_call_jssip_and_audio_crosses_both_ways`: the caller's 200 OK to
/// its first RTP packet, as Chromium times it (the remote track's unmute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jssip_calls_jssip_for_comparison() {
    const CAROL_PASSWORD: &str = "carol-Secret-9d1e";
    let kamailio = start_kamailio_with_users(&[("carol", CAROL_PASSWORD)]);
    let mut browser = Browser::start(BROWSER_HZ as u32).await;
    browser.register("bob", &kamailio, "bob", BOB_PASSWORD).await;
    browser.register("carol", &kamailio, "carol", CAROL_PASSWORD).await;
    let out = browser.command("carol", "call", json!({"target": "bob"})).await;
    let out = out["call"].as_str().expect("call name").to_string();
    let incoming = browser.wait("bob", "incoming", None).await;
    let call = incoming["call"].as_str().expect("call name").to_string();
    browser.command("bob", "answer", json!({"call": call})).await;
    browser.wait("carol", "confirmed", Some(&out)).await;
    let first = browser.wait("carol", "first_rtp", Some(&out)).await;
    println!("chromium (JsSIP caller): 200 OK to first RTP {} ms", first["after_accepted_ms"]);
    browser.wait_tone("bob", &call, BROWSER_HZ, true).await;
    browser.wait_tone("carol", &out, BROWSER_HZ, true).await;
    browser.command("carol", "hangup", json!({"call": out})).await;
    browser.wait("bob", "ended", Some(&call)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jssip_holds_we_answer_recvonly_and_unhold_brings_audio_back() {
    // A short no-audio threshold: a false alert during the hold would show.
    let (_kamailio, mut browser, alice, mut log) = setup(Some(std::time::Duration::from_secs(1))).await;
    let (key, call) = browser_calls_alice(&mut browser, &alice, &mut log).await;

    let (sent, received) = (browser.sdp_count("bob", "out"), browser.sdp_count("bob", "in"));
    browser.command("bob", "hold", json!({"call": call})).await;
    let held = log.wait_for("CallHeld", |e| matches!(e, Event::CallHeld { .. })).await;
    assert!(matches!(held, Event::CallHeld { by: Originator::Remote, .. }), "{held:?}");
    let hold = browser.wait("bob", "hold", Some(&call)).await;
    assert_eq!(hold["originator"], "local");
    assert_eq!(direction(&browser.wire_sdp("bob", "out", sent + 1).await), "sendonly");
    let answer = browser.wire_sdp("bob", "in", received + 1).await;
    assert_eq!(direction(&answer), "recvonly", "we answer a sendonly offer recvonly: {answer}");

    // We stop sending: the browser's packet count stands still and our tone is gone.
    browser.wait_tone("bob", &call, PHONE_HZ, false).await;
    let before = packets(&browser.stats("bob", &call).await, "inbound");
    let at_alice = alice.call_stats(key).await.unwrap();
    // Over more than the 1 s no-audio threshold (the browser, holding, still sends; JsSIP mutes its track).
    wait_stats(&alice, key, "the browser's packets during the hold", |s| s.rx_packets >= at_alice.rx_packets + 75)
        .await;
    let after = packets(&browser.stats("bob", &call).await, "inbound");
    assert!(after <= before + 2, "we send nothing while held: {before} -> {after}");
    let alice_now = alice.call_stats(key).await.unwrap();
    assert!(alice_now.tx_packets <= at_alice.tx_packets + 2, "{at_alice:#?} -> {alice_now:#?}");
    assert!(raised_alerts(&mut log).is_empty(), "no alert while held: {:#?}", log.seen);

    let received = browser.sdp_count("bob", "in");
    browser.command("bob", "unhold", json!({"call": call})).await;
    let resumed = log.wait_for("CallResumed", |e| matches!(e, Event::CallResumed { .. })).await;
    assert!(matches!(resumed, Event::CallResumed { by: Originator::Remote, .. }), "{resumed:?}");
    browser.wait("bob", "unhold", Some(&call)).await;
    let answer = browser.wire_sdp("bob", "in", received + 1).await;
    assert_eq!(direction(&answer), "sendrecv", "{answer}");
    browser.wait_tone("bob", &call, PHONE_HZ, true).await;
    alice_hears_browser(&alice, key, alice_now.decoded_frames).await;
    assert!(raised_alerts(&mut log).is_empty(), "no alert after the hold: {:#?}", log.seen);

    hang_up_from_browser(&mut browser, &call, &mut log, key).await;
    alice.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_hold_jssip_and_resume() {
    let (_kamailio, mut browser, alice, mut log) = setup(Some(std::time::Duration::from_secs(1))).await;
    let (key, call) = browser_calls_alice(&mut browser, &alice, &mut log).await;

    let (sent, received) = (browser.sdp_count("bob", "out"), browser.sdp_count("bob", "in"));
    alice.hold(key).await.expect("hold");
    let held = log.wait_for("CallHeld", |e| matches!(e, Event::CallHeld { .. })).await;
    assert!(matches!(held, Event::CallHeld { by: Originator::Local, .. }), "{held:?}");
    let hold = browser.wait("bob", "hold", Some(&call)).await;
    assert_eq!(hold["originator"], "remote", "JsSIP sees the hold from the far side: {hold}");
    let offer = browser.wire_sdp("bob", "in", received + 1).await;
    assert_eq!(direction(&offer), "sendonly", "we hold with sendonly: {offer}");
    assert_eq!(direction(&browser.wire_sdp("bob", "out", sent + 1).await), "recvonly");

    // The browser stops sending; we go on sending our hold music instead of
    // our tone. Over 1.5 s (more than the no-audio threshold):
    let sent_before = browser.wait_still("bob", &call, "outbound").await;
    let before = packets(&browser.stats("bob", &call).await, "inbound");
    let at_alice = alice.call_stats(key).await.unwrap();
    browser.wait_packets("bob", &call, "inbound", before + 75).await;
    browser.wait_tone("bob", &call, HOLD_MUSIC_HZ, true).await;
    browser.wait_tone("bob", &call, PHONE_HZ, false).await;
    let after = packets(&browser.stats("bob", &call).await, "outbound");
    assert!(after <= sent_before + 2, "the held browser sends nothing: {sent_before} -> {after}");
    let alice_now = alice.call_stats(key).await.unwrap();
    assert!(alice_now.rx_packets <= at_alice.rx_packets + 2, "{at_alice:#?} -> {alice_now:#?}");
    assert!(raised_alerts(&mut log).is_empty(), "no alert while holding: {:#?}", log.seen);

    alice.resume(key).await.expect("resume");
    let resumed = log.wait_for("CallResumed", |e| matches!(e, Event::CallResumed { .. })).await;
    assert!(matches!(resumed, Event::CallResumed { by: Originator::Local, .. }), "{resumed:?}");
    let unhold = browser.wait("bob", "unhold", Some(&call)).await;
    assert_eq!(unhold["originator"], "remote");
    alice_hears_browser(&alice, key, alice_now.decoded_frames).await;
    browser.wait_tone("bob", &call, PHONE_HZ, true).await;
    let resumed_out = packets(&browser.stats("bob", &call).await, "outbound");
    assert!(resumed_out > after + 10, "the browser sends again: {after} -> {resumed_out}");

    alice.hangup(key).await.unwrap();
    browser.wait("bob", "ended", Some(&call)).await;
    log.wait_ended(key).await;
    alice.stop().await.unwrap();
}

/// Alice's received digits (by `method`) until there are `n`, with how
/// long each lasted.
async fn received_digits(log: &mut EventLog, method: DtmfMethod, n: usize) -> (String, Vec<u32>) {
    let (mut got, mut durations) = (String::new(), Vec::new());
    while got.len() < n {
        match log.wait_for("DtmfReceived", |e| matches!(e, Event::DtmfReceived { .. })).await {
            Event::DtmfReceived { digit, method: m, duration_ms, .. } => {
                assert_eq!(m, method, "{digit} came by {m:?}");
                got.push(digit);
                durations.push(duration_ms);
            }
            _ => unreachable!(),
        }
    }
    (got, durations)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_both_ways_by_rfc4733_and_info() {
    let (_kamailio, mut browser, alice, mut log) = setup(None).await;
    let (key, call) = browser_calls_alice(&mut browser, &alice, &mut log).await;

    // From the browser: Chromium's RTCDTMFSender (RFC 4733), then JsSIP's INFO.
    for (transport, method) in [("RFC2833", DtmfMethod::Rfc4733), ("INFO", DtmfMethod::Info)] {
        let args = json!({"call": call, "digits": ALL_DIGITS, "transport_type": transport,
                          "duration": 100, "inter_tone_gap": 100});
        browser.command("bob", "dtmf", args).await;
        let (digits, durations) = received_digits(&mut log, method, ALL_DIGITS.len()).await;
        assert_eq!(digits, ALL_DIGITS, "by {transport}");
        // 100 ms each: said so by INFO, measured from the events' durations by RFC 4733.
        assert!(durations.iter().all(|d| (80..=140).contains(d)), "by {transport}: {durations:?}");
    }
    let s = alice.call_stats(key).await.unwrap();
    assert_eq!(s.rx_lost, 0, "Chromium's telephone-events counted as lost audio: {s:#?}");

    // To the browser by INFO: JsSIP reports each (newDTMF).
    let info = DtmfOptions { method: DtmfMethod::Info, duration_ms: Some(100), gap_ms: Some(50) };
    alice.send_dtmf(key, ALL_DIGITS, info).await.unwrap();
    let mut got = String::new();
    while got.len() < ALL_DIGITS.len() {
        let e = browser.wait_for("dtmf from alice", |e| e["event"] == "dtmf" && e["originator"] == "remote").await;
        assert_eq!(e["duration"], 100, "{e}");
        got.push_str(e["tone"].as_str().expect("tone"));
    }
    assert_eq!(got, ALL_DIGITS);

    // To the browser by RFC 4733: Chromium plays the events out as tones, which its meter hears.
    let rtp = DtmfOptions { method: DtmfMethod::Rfc4733, duration_ms: Some(160), gap_ms: Some(160) };
    alice.send_dtmf(key, ALL_DIGITS, rtp).await.unwrap();
    let mut heard = String::new();
    while heard.len() < ALL_DIGITS.len() {
        let e = browser.wait("bob", "heard_dtmf", Some(&call)).await;
        heard.push_str(e["digit"].as_str().expect("digit"));
    }
    assert_eq!(heard, ALL_DIGITS);
    for method in [DtmfMethod::Info, DtmfMethod::Rfc4733] {
        for _ in 0..ALL_DIGITS.len() {
            log.wait_for("DtmfSent", |e| matches!(e, Event::DtmfSent { method: m, .. } if *m == method)).await;
        }
    }

    hang_up_from_browser(&mut browser, &call, &mut log, key).await;
    // Nothing was reported twice.
    browser.drain();
    let count = |event: &str| browser.seen.iter().filter(|e| e["event"] == event && e["originator"] != "local").count();
    assert_eq!((count("dtmf"), count("heard_dtmf")), (ALL_DIGITS.len(), ALL_DIGITS.len()));
    let received = log.seen.iter().filter(|e| matches!(e, Event::DtmfReceived { .. })).count();
    assert_eq!(received, 2 * ALL_DIGITS.len(), "no digit doubled: {:#?}", log.seen);
    alice.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_outlives_jssip_session_refresh_by_update() {
    let (_kamailio, mut browser, alice, mut log) = setup(None).await;
    let (key, call) = browser_calls_alice(&mut browser, &alice, &mut log).await;
    // JsSIP asks for 90 s sessions (its minimum); we leave the refreshing
    // to it, and it refreshes by UPDATE halfway: 45 s into the call.
    let is_update = |e: &serde_json::Value, dir: &str, start: &str| {
        e["event"] == "sip"
            && e["dir"] == dir
            && e["text"].as_str().is_some_and(|t| t.starts_with(start) && t.contains(" UPDATE\r\n"))
    };
    let wait = std::time::Duration::from_secs(70);
    let update = browser.wait_within(wait, "JsSIP's refreshing UPDATE", |e| is_update(e, "out", "UPDATE ")).await;
    let update = update["text"].as_str().unwrap_or_default().to_string();
    assert!(update.contains("Session-Expires: 90;refresher=uac"), "{update}");
    let answer = browser.wait_for("our answer to the UPDATE", |e| is_update(e, "in", "SIP/2.0 ")).await;
    let answer = answer["text"].as_str().unwrap_or_default();
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    assert!(answer.contains("Session-Expires: 90;refresher=uac"), "{answer}");

    // The call goes on, audio both ways.
    let frames = alice.call_stats(key).await.unwrap().decoded_frames;
    alice_hears_browser(&alice, key, frames).await;
    browser.wait_tone("bob", &call, PHONE_HZ, true).await;
    assert!(raised_alerts(&mut log).is_empty(), "{:#?}", log.seen);
    hang_up_from_browser(&mut browser, &call, &mut log, key).await;
    alice.stop().await.unwrap();
}
