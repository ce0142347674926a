//! Transfer against real browsers: JsSIP 3.13 in headless Chromium as bob
//! and carol (two pages of one Chromium, both sending 1000 Hz), our phone
//! as alice (440 Hz), through a real Kamailio. In every role: JsSIP
//! transfers us (blind; attended, where the consultation call was placed
//! by JsSIP or received by it, so its Replaces tags come in either order),
//! and we transfer JsSIP (blind; attended, completing with Replaces to the
//! consulted browser's Contact). Where alice ends up talking to carol, the
//! audio is proven both ways.

mod support;

use serde_json::{Value, json};
use support::browser::Browser;
use support::*;
use webphone::{AudioSetup, CallKey, CallOptions, Event, Originator, SendAudio};

const BROWSER_HZ: f64 = 1000.0;
const PHONE_HZ: f64 = 440.0;
const CAROL_PASSWORD: &str = "carol-Secret-9d1e";

fn tone() -> AudioSetup {
    AudioSetup {
        send: SendAudio::Tone { frequency_hz: PHONE_HZ, level_dbfs: -12.0 },
        track_frequencies: vec![BROWSER_HZ, PHONE_HZ],
        ..Default::default()
    }
}

fn with_tone() -> CallOptions {
    CallOptions { audio: tone(), ..Default::default() }
}

/// Kamailio, Chromium with JsSIP as bob and carol, and alice, whose calls
/// given by a transfer send her tone too.
async fn setup() -> (Kamailio, Browser, webphone::Phone, EventLog) {
    let kamailio = start_kamailio_with_users(&[("carol", CAROL_PASSWORD)]);
    let mut browser = Browser::start(BROWSER_HZ as u32).await;
    browser.register("bob", &kamailio, "bob", BOB_PASSWORD).await;
    browser.register("carol", &kamailio, "carol", CAROL_PASSWORD).await;
    let (alice, log) =
        registered_phone_with(&kamailio, "alice", ALICE_PASSWORD, |b| b.transfer_audio(|_| tone())).await;
    (kamailio, browser, alice, log)
}

/// The first event matching `pred`, already seen or still to come (the
/// order of a transfer's events across calls is not fixed).
async fn saw(log: &mut EventLog, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    if let Some(e) = log.drain().iter().find(|e| pred(e)) {
        return e.clone();
    }
    log.wait_for(what, pred).await
}

/// `CallEnded` of `key`, already seen or still to come.
async fn ended(log: &mut EventLog, key: CallKey) -> webphone::CallInfo {
    match saw(log, &format!("CallEnded of {key}"), |e| matches!(e, Event::CallEnded { call, .. } if call.key == key))
        .await
    {
        Event::CallEnded { call, .. } => call,
        _ => unreachable!(),
    }
}

fn name(v: &Value) -> String {
    v["call"].as_str().unwrap_or_else(|| panic!("no call in {v}")).to_string()
}

/// A browser calls alice, alice answers with her tone: the browser's call.
async fn browser_calls_alice(
    browser: &mut Browser,
    ua: &str,
    alice: &webphone::Phone,
    log: &mut EventLog,
) -> (String, CallKey) {
    let call = name(&browser.command(ua, "call", json!({"target": "alice"})).await);
    let incoming = log.wait_incoming().await;
    alice.answer_with(incoming.key, tone()).await.expect("answered");
    browser.wait(ua, "confirmed", Some(&call)).await;
    log.wait_confirmed(incoming.key).await;
    (call, incoming.key)
}

/// Alice calls a browser, which answers: the browser's call.
async fn alice_calls_browser(
    browser: &mut Browser,
    ua: &str,
    alice: &webphone::Phone,
    log: &mut EventLog,
) -> (String, CallKey) {
    let out = alice.call(ua, with_tone()).await.expect("placed");
    let incoming = browser.wait(ua, "incoming", None).await;
    let call = name(&incoming);
    browser.command(ua, "answer", json!({"call": call})).await;
    log.wait_confirmed(out.key()).await;
    browser.wait(ua, "confirmed", Some(&call)).await;
    (call, out.key())
}

/// Bob calls carol, carol answers: (bob's call, carol's call).
async fn bob_calls_carol(browser: &mut Browser) -> (String, String) {
    let at_bob = name(&browser.command("bob", "call", json!({"target": "carol"})).await);
    let at_carol = name(&browser.wait("carol", "incoming", None).await);
    browser.command("carol", "answer", json!({"call": at_carol})).await;
    browser.wait("bob", "confirmed", Some(&at_bob)).await;
    (at_bob, at_carol)
}

/// Alice and carol hear each other in alice's `key` and carol's `call`.
async fn alice_and_carol_talk(browser: &mut Browser, alice: &webphone::Phone, key: CallKey, call: &str) {
    wait_stats(alice, key, "carol's 1000 Hz at alice", |s| {
        s.decoded_frames >= 50 && s.rx_dominant_hz.is_some_and(|f| (f - BROWSER_HZ).abs() < 5.0)
    })
    .await;
    browser.wait_tone("carol", call, PHONE_HZ, true).await;
}

/// The NOTIFY progress bob's REFER in `call` got, until its final one.
async fn refer_progress(browser: &mut Browser, call: &str) -> Vec<(String, u64)> {
    let mut seen = Vec::new();
    loop {
        let n = browser.wait("bob", "refer_notify", Some(call)).await;
        let kind = n["kind"].as_str().unwrap_or_default().to_string();
        seen.push((kind.clone(), n["status"].as_u64().unwrap_or(0)));
        if kind == "accepted" || kind == "failed" {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jssip_transfers_us_blind() {
    let (_kamailio, mut browser, alice, mut log) = setup().await;
    let (call, key) = browser_calls_alice(&mut browser, "bob", &alice, &mut log).await;

    browser.command("bob", "refer", json!({"call": call, "target": "sip:carol@example.com"})).await;
    let answer = browser.wait("bob", "refer_request", Some(&call)).await;
    assert_eq!((answer["ok"].as_bool(), answer["status"].as_u64()), (Some(true), Some(202)), "{answer}");
    let asked = saw(&mut log, "TransferRequested", |e| matches!(e, Event::TransferRequested { .. })).await;
    let Event::TransferRequested { call: info, target, referred_by, replaces } = asked else { unreachable!() };
    assert_eq!(info.key, key);
    assert!(target.contains("carol@example.com") && !replaces, "{target}");
    assert!(referred_by.is_some_and(|r| r.contains("bob@example.com")));

    // Alice (accepting, the default) calls carol, who answers.
    let incoming = browser.wait("carol", "incoming", None).await;
    assert_eq!(incoming["from"], "sip:alice@example.com", "{incoming}");
    let at_carol = name(&incoming);
    let invite = browser.sip("carol", "in", "INVITE").pop().expect("carol's INVITE");
    assert!(invite.contains("Referred-By: <sip:bob@example.com>"), "{invite}");
    browser.command("carol", "answer", json!({"call": at_carol})).await;
    let confirmed = log
        .wait_for(
            "alice's call to carol confirmed",
            |e| matches!(e, Event::CallConfirmed { call } if call.remote.user.as_deref() == Some("carol")),
        )
        .await;
    let Event::CallConfirmed { call: to_carol } = confirmed else { unreachable!() };

    // Bob hears the new call's progress by NOTIFY, ending with its 200.
    let progress = refer_progress(&mut browser, &call).await;
    assert_eq!(progress.first(), Some(&("trying".to_string(), 100)), "{progress:?}");
    assert_eq!(progress.last(), Some(&("accepted".to_string(), 200)), "{progress:?}");
    alice_and_carol_talk(&mut browser, &alice, to_carol.key, &at_carol).await;

    // The transferor ends the old call.
    browser.command("bob", "hangup", json!({"call": call})).await;
    let old = ended(&mut log, key).await;
    assert_eq!(old.end.map(|e| e.by), Some(Originator::Remote));
    alice.hangup(to_carol.key).await.unwrap();
    browser.wait("carol", "ended", Some(&at_carol)).await;
    alice.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_transfer_jssip_blind() {
    let (_kamailio, mut browser, alice, mut log) = setup().await;
    let (call, key) = alice_calls_browser(&mut browser, "bob", &alice, &mut log).await;

    alice.transfer(key, "carol").await.expect("transfer");
    let refer = browser.wait("bob", "refer", Some(&call)).await;
    assert_eq!(refer["refer_to"], "<sip:carol@example.com>", "{refer}");
    assert_eq!(refer["referred_by"], "<sip:alice@example.com>", "{refer}");
    let new_call = name(&browser.command("bob", "accept_refer", json!({"call": call})).await);
    let at_carol = name(&browser.wait("carol", "incoming", None).await);
    browser.command("carol", "answer", json!({"call": at_carol})).await;
    browser.wait("bob", "confirmed", Some(&new_call)).await;

    let progress = log.wait_for("TransferProgress", |e| matches!(e, Event::TransferProgress { status: 100, .. })).await;
    assert!(matches!(progress, Event::TransferProgress { call, .. } if call.key == key));
    log.wait_for("TransferAccepted", |e| matches!(e, Event::TransferAccepted { call } if call.key == key)).await;
    // A blind transfer's call ends once it succeeded: we hang up on bob.
    let ended = log.wait_ended(key).await;
    assert_eq!(ended.end.map(|e| e.by), Some(Originator::Local));
    let ended = browser.wait("bob", "ended", Some(&call)).await;
    assert_eq!(ended["originator"], "remote", "{ended}");
    // Bob and carol talk (both send 1000 Hz).
    browser.wait_tone("carol", &at_carol, BROWSER_HZ, true).await;
    browser.command("bob", "hangup", json!({"call": new_call})).await;
    browser.wait("carol", "ended", Some(&at_carol)).await;
    alice.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_transfer_jssip_attended() {
    let (_kamailio, mut browser, alice, mut log) = setup().await;
    let (call, key) = alice_calls_browser(&mut browser, "bob", &alice, &mut log).await;
    let consult = alice.consult(key, "carol", with_tone()).await.expect("consult");
    let at_carol = name(&browser.wait("carol", "incoming", None).await);
    browser.command("carol", "answer", json!({"call": at_carol})).await;
    log.wait_confirmed(consult.key()).await;
    alice_and_carol_talk(&mut browser, &alice, consult.key(), &at_carol).await;

    alice.complete(key, consult.key()).await.expect("complete");
    let refer = browser.wait("bob", "refer", Some(&call)).await;
    // The Refer-To names carol's Contact (JsSIP's, a GRUU here) with Replaces.
    let refer_to = refer["refer_to"].as_str().unwrap_or_default();
    let contact_ok = browser
        .sip("carol", "out", "SIP/2.0 200")
        .iter()
        .filter_map(|r| r.lines().find_map(|l| l.strip_prefix("Contact: <").and_then(|c| c.split('>').next())))
        .any(|c| refer_to.starts_with(&format!("<{c}?Replaces=")));
    assert!(contact_ok, "Refer-To {refer_to} is not carol's Contact with Replaces");
    let new_call = name(&browser.command("bob", "accept_refer", json!({"call": call})).await);
    browser.wait("carol", "replaces", Some(&at_carol)).await;
    let replacing = browser.wait("carol", "incoming", None).await;
    assert_eq!(replacing["replaces"], json!(at_carol), "{replacing}");
    browser.command("carol", "answer", json!({"call": name(&replacing)})).await;
    browser.wait("bob", "confirmed", Some(&new_call)).await;

    saw(&mut log, "TransferAccepted", |e| matches!(e, Event::TransferAccepted { call } if call.key == key)).await;
    // Both of alice's calls end: carol's old one replaced, bob's by us.
    ended(&mut log, consult.key()).await;
    ended(&mut log, key).await;
    browser.wait("carol", "ended", Some(&at_carol)).await;
    browser.wait("bob", "ended", Some(&call)).await;
    browser.wait_tone("carol", &name(&replacing), BROWSER_HZ, true).await;
    browser.command("bob", "hangup", json!({"call": new_call})).await;
    alice.stop().await.unwrap();
}

/// Bob talks with carol and with alice (`bob_placed_consult`: bob called
/// alice; else alice called bob), then refers carol to alice replacing his
/// call with alice. Carol's INVITE with Replaces must replace that call.
async fn jssip_attended_transfer_to_us(bob_placed_consult: bool) {
    let (_kamailio, mut browser, alice, mut log) = setup().await;
    let (bob_to_carol, at_carol) = bob_calls_carol(&mut browser).await;
    let (consult, key) = if bob_placed_consult {
        browser_calls_alice(&mut browser, "bob", &alice, &mut log).await
    } else {
        alice_calls_browser(&mut browser, "bob", &alice, &mut log).await
    };

    browser
        .command("bob", "refer", json!({"call": bob_to_carol, "target": "sip:alice@example.com", "replaces": consult}))
        .await;
    browser.wait("carol", "refer", Some(&at_carol)).await;
    let new_call = name(&browser.command("carol", "accept_refer", json!({"call": at_carol})).await);
    let invite = browser
        .wait_for("carol's INVITE to alice", |e| {
            e["event"] == "sip"
                && e["ua"] == "carol"
                && e["dir"] == "out"
                && e["text"].as_str().is_some_and(|t| t.starts_with("INVITE sip:alice"))
        })
        .await;
    assert!(invite["text"].as_str().is_some_and(|t| t.contains("\r\nReplaces: ")), "{invite}");

    // Alice takes carol's call in place of bob's, without ringing anyone.
    let replaced = saw(&mut log, "CallReplaced", |e| matches!(e, Event::CallReplaced { .. })).await;
    let Event::CallReplaced { old, new: replacing } = replaced else { unreachable!() };
    assert_eq!(old.key, key);
    assert_eq!(replacing.remote.user.as_deref(), Some("carol"));
    browser.wait("carol", "confirmed", Some(&new_call)).await;
    let old = ended(&mut log, key).await;
    assert_eq!(old.end.map(|e| e.by), Some(Originator::Local), "we end the replaced call");
    let at_bob = browser.wait("bob", "ended", Some(&consult)).await;
    assert_eq!(at_bob["originator"], "remote", "{at_bob}");
    let progress = refer_progress(&mut browser, &bob_to_carol).await;
    assert_eq!(progress.last(), Some(&("accepted".to_string(), 200)), "{progress:?}");
    alice_and_carol_talk(&mut browser, &alice, replacing.key, &new_call).await;

    alice.hangup(replacing.key).await.unwrap();
    browser.wait("carol", "ended", Some(&new_call)).await;
    browser.command("bob", "hangup", json!({"call": bob_to_carol})).await;
    alice.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jssip_transfers_to_us_attended_replacing_a_call_it_placed() {
    jssip_attended_transfer_to_us(true).await;
}

/// JsSIP builds Replaces from its From/To tags, reversed (RFC 3891 wants
/// them from the target's view) when it received the consultation call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jssip_transfers_to_us_attended_replacing_a_call_it_received() {
    jssip_attended_transfer_to_us(false).await;
}
