//! Scenarios: the Aliyun workbench SDK's documented flows (seed 002)
//! through `compat::sipml::aliyun`, against Kamailio with real media. The
//! agent (Alice) runs the workbench with hooks recording what they get;
//! Bob and Carol are plain phones. Checked: the hooks' names, payloads and
//! order, the status codes (`onStatusChange`, `getStatusCode`), the
//! interceptors (a refused dial sends no INVITE; a refused hang-up leaves
//! the call up), the numbered errors (9001, 8003), auto-answer, after-call
//! work (manual release, and timed), hold / retrieve, and the consultation
//! flow (retrieve, then transfer to the consulted party).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;
use webphone::compat::sipml::aliyun::{AfterCallRule, Consent, Done, Hooks, Workbench, WorkbenchConfig};
use webphone::{AudioSetup, CallOptions, Event, SendAudio};

const CAROL_PASSWORD: &str = "carol-Secret-91d0";

fn tone(hz: f64) -> AudioSetup {
    AudioSetup { send: SendAudio::Tone { frequency_hz: hz, level_dbfs: -12.0 }, ..Default::default() }
}

/// What the hooks got, in order, with when.
struct Heard(tokio::sync::mpsc::UnboundedReceiver<(&'static str, Value, Instant)>);

/// Every hook recording into one channel.
fn recording_hooks() -> (Hooks, Heard) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut hooks = Hooks::new();
    for name in webphone::compat::sipml::aliyun::HOOK_NAMES {
        let tx = tx.clone();
        hooks = hooks.on(name, move |v| drop(tx.send((name, v.clone(), Instant::now())))).unwrap();
    }
    (hooks, Heard(rx))
}

impl Heard {
    async fn next(&mut self) -> (&'static str, Value, Instant) {
        tokio::time::timeout(TIMEOUT, self.0.recv()).await.expect("a hook call in time").expect("listening")
    }

    /// The hook calls up to and including the first `name` (`name` and
    /// its payload last).
    async fn until(&mut self, name: &str) -> Vec<(&'static str, Value)> {
        let mut seen = Vec::new();
        loop {
            let (n, v, _) = self.next().await;
            seen.push((n, v));
            if n == name {
                return seen;
            }
        }
    }

    /// The hook calls up to `onStatusChange` to `code`.
    async fn until_status(&mut self, code: i32) -> Vec<(&'static str, Value)> {
        let mut seen = Vec::new();
        loop {
            let Ok(next) = tokio::time::timeout(TIMEOUT, self.0.recv()).await else {
                panic!("no status {code} in time; the hooks called since: {seen:#?}");
            };
            let (n, v, _) = next.expect("listening");
            let done = n == "onStatusChange" && v["code"] == code;
            seen.push((n, v));
            if done {
                return seen;
            }
        }
    }
}

fn names(seen: &[(&'static str, Value)]) -> Vec<&'static str> {
    seen.iter().map(|(n, _)| *n).collect()
}

fn statuses(seen: &[(&'static str, Value)]) -> Vec<(i64, i64)> {
    seen.iter()
        .filter(|(n, _)| *n == "onStatusChange")
        .map(|(_, v)| (v["code"].as_i64().unwrap(), v["lastCode"].as_i64().unwrap()))
        .collect()
}

fn agent_config(kamailio: &Kamailio) -> webphone::PhoneConfig {
    phone_config(&[kamailio.ws_url()], "alice", ALICE_PASSWORD)
        .allow_loopback(true)
        .ice_check_interval(Duration::from_millis(20))
        .build()
        .unwrap()
}

fn agent_audio(hz: f64) -> Option<webphone::compat::sipml::aliyun::AgentAudio> {
    Some(Arc::new(move || AudioSetup { track_frequencies: vec![880.0, 660.0], ..tone(hz) }))
}

async fn heard_tone(phone: &webphone::Phone, call: webphone::CallKey, hz: f64, what: &str) {
    wait_stats(phone, call, what, |s| s.rx_dominant_hz.is_some_and(|f| (f - hz).abs() < 10.0)).await;
}

/// Registers the workbench and waits until it is idle and registered.
async fn register(workbench: &Workbench, heard: &mut Heard) {
    assert_eq!(workbench.register().await, Ok(Done::Done));
    let mut seen = heard.until_status(3).await;
    if !names(&seen).contains(&"onRegister") {
        seen.extend(heard.until("onRegister").await);
    }
    assert!(names(&seen).contains(&"onReady"), "{seen:#?}");
    assert_eq!(workbench.get_status_code().code, 3);
}

/// Outbound: a refused dial (no INVITE), a rewritten one, connected, 8003,
/// hold / retrieve, a refused then a consented hang-up, manual after-call
/// work (incoming calls refused, `call` 9001) until `ready()`; then a call
/// whose microphone fails: 8001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_call_interceptors_hold_and_manual_after_call_work() {
    let kamailio = start_kamailio();
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;

    let (hooks, mut heard) = recording_hooks();
    let dial_payloads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_dials = dial_payloads.clone();
    let hangups = Arc::new(AtomicUsize::new(0));
    let asked = hangups.clone();
    let hooks = hooks
        .on_before_call_dialing(move |payload| {
            seen_dials.lock().unwrap().push(payload.clone());
            Box::pin(async move {
                // A check that takes its time (a CRM asked over HTTP, say).
                tokio::task::yield_now().await;
                match payload["callee"].as_str() {
                    Some("blocked") => Consent::Refuse,
                    Some("dial-bob") => Consent::ProceedTo("bob".into()),
                    _ => Consent::Proceed,
                }
            })
        })
        .on_before_call_hangup(move |_| {
            let first = asked.fetch_add(1, Ordering::SeqCst) == 0;
            Box::pin(async move { if first { Consent::Refuse } else { Consent::Proceed } })
        });
    // The agent's microphone, until it breaks (a file that is not there).
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let microphone = broken.clone();
    let audio: webphone::compat::sipml::aliyun::AgentAudio = Arc::new(move || {
        if microphone.load(Ordering::SeqCst) {
            let path = std::env::temp_dir().join("webphone-no-such-microphone.wav");
            AudioSetup { send: SendAudio::WavFile { path, looping: false }, ..Default::default() }
        } else {
            tone(440.0)
        }
    });
    let options = WorkbenchConfig { after_call_rule: AfterCallRule::Manual, audio: Some(audio), ..Default::default() };
    let workbench = Workbench::new(agent_config(&kamailio), options, hooks);
    assert_eq!(heard.next().await.0, "onInit");
    assert!(Hooks::new().on("onCallCome", |_| {}).is_err(), "a misspelt hook is refused");

    // Not registered yet: 9001, to the caller and to onErrorNotify.
    let refused = workbench.call_hold().await.unwrap_err();
    assert_eq!(refused.error_code, json!(9001));
    let (name, notice, _) = heard.next().await;
    assert_eq!(name, "onErrorNotify");
    assert_eq!(notice["errorCode"], 9001);
    assert_eq!(notice["errorMsgTip"], "当前状态不能操作该api");

    register(&workbench, &mut heard).await;

    // onBeforeCallDialing refuses: nothing is dialed.
    assert_eq!(workbench.call("blocked", "").await, Ok(Done::Intercepted));
    assert_eq!(workbench.get_status_code().code, 3);
    // It consents with another callee: that one is dialed.
    assert_eq!(workbench.call("dial-bob", "").await, Ok(Done::Done));
    let payloads = dial_payloads.lock().unwrap().clone();
    assert_eq!(
        payloads,
        [json!({"callee": "blocked", "userId": "alice"}), json!({"callee": "dial-bob", "userId": "alice"})]
    );
    let seen = heard.until("onCallDialing").await;
    assert_eq!(names(&seen), ["onStatusChange", "onCallDialing"], "{seen:#?}");
    assert_eq!(statuses(&seen), [(8, 3)]);
    let dialing = &seen[1].1;
    assert_eq!((dialing["callee"].as_str(), dialing["caller"].as_str()), (Some("bob"), Some("alice")));
    assert_eq!(dialing["callType"], "outbound");
    // Bob's first call is the consented one: the refused one sent no INVITE.
    let incoming = bob_log.wait_incoming().await;
    assert_eq!(incoming.call_id, dialing["jobId"].as_str().unwrap(), "Bob's first INVITE is the second dial");
    bob.answer_with(incoming.key, tone(880.0)).await.unwrap();
    let seen = heard.until("onCallEstablish").await;
    assert_eq!(names(&seen), ["onStatusChange", "onCallEstablish"], "{seen:#?}");
    assert_eq!(statuses(&seen), [(10, 8)]);
    assert_eq!(workbench.get_status_code().code, 10);
    let key = workbench.phone().status().calls[0];
    heard_tone(workbench.phone(), key, 880.0, "Bob's 880 Hz at the agent").await;
    heard_tone(&bob, incoming.key, 440.0, "the agent's 440 Hz at Bob").await;

    // A second call while in one: 8003.
    assert_eq!(workbench.call("bob", "").await.unwrap_err().error_code, json!(8003));
    assert_eq!(heard.next().await.1["errorCode"], 8003);

    // Hold and retrieve: 12 and back.
    assert_eq!(workbench.call_hold().await, Ok(Done::Done));
    assert_eq!(statuses(&heard.until_status(12).await), [(12, 10)]);
    assert_eq!(workbench.call_hold().await.unwrap_err().error_code, json!(9001), "12 allows only retrieve");
    assert_eq!(heard.next().await.1["errorCode"], 9001);
    assert_eq!(workbench.call_retrieve().await, Ok(Done::Done));
    assert_eq!(statuses(&heard.until_status(10).await), [(10, 12)]);
    assert_eq!(workbench.mute_agent().await, Ok(Done::Done));
    assert_eq!(workbench.un_mute_agent().await, Ok(Done::Done));
    assert_eq!(workbench.change_volume_in_call(0.5).await, Ok(Done::Done));
    assert_eq!(workbench.send_dtmf('3').await, Ok(Done::Done));
    bob_log.wait_for("the agent's 3", |e| matches!(e, Event::DtmfReceived { digit: '3', .. })).await;

    // onBeforeCallHangup refuses: the call stays up; then it consents.
    assert_eq!(workbench.hang_up().await, Ok(Done::Intercepted));
    assert_eq!(workbench.get_status_code().code, 10);
    assert_eq!(workbench.hang_up().await, Ok(Done::Done));
    let seen = heard.until("onCallRelease").await;
    assert_eq!(names(&seen), ["onStatusChange", "onHangUp", "onCallRelease"], "{seen:#?}");
    assert_eq!(statuses(&seen), [(5, 10)], "after-call work");
    assert_eq!(seen[1].1, "outbound");
    assert_eq!(seen[2].1["callContext"]["end"]["by"], "local");
    bob_log.wait_ended(incoming.key).await;

    // In after-call work: no calls in or out.
    let b = bob.call("alice", CallOptions::default()).await.unwrap().key();
    let ended = bob_log.wait_ended(b).await;
    assert_eq!(ended.end.and_then(|e| e.status), Some(486), "the agent takes no calls in status 5");
    assert_eq!(workbench.call("bob", "").await.unwrap_err().error_code, json!(9001));
    assert_eq!(heard.next().await.1["errorCode"], 9001);
    assert_eq!(workbench.get_status_code().code, 5);

    // ready(): idle again.
    assert_eq!(workbench.ready().await, Ok(Done::Done));
    let seen = heard.until("onReady").await;
    assert_eq!(statuses(&seen), [(3, 5)], "{seen:#?}");
    assert_eq!(workbench.get_status_code().code, 3);
    assert_eq!(workbench.get_status_code().last_code, 5);

    // The microphone fails: the call ends and onErrorNotify says 8001.
    broken.store(true, Ordering::SeqCst);
    assert_eq!(workbench.call("bob", "").await, Ok(Done::Done));
    let b = bob_log.wait_incoming().await.key;
    bob.answer_with(b, tone(880.0)).await.unwrap();
    let seen = heard.until("onCallRelease").await;
    let notice = seen.iter().find(|(n, _)| *n == "onErrorNotify").map(|(_, v)| v).expect("onErrorNotify");
    assert_eq!(notice["errorCode"], 8001, "{seen:#?}");
    assert_eq!(notice["errorMsgTip"], "GetUserMediaFailed");
    assert!(notice["errorMsg"].as_str().is_some_and(|m| m.contains("webphone-no-such-microphone")), "{notice:#}");
    bob_log.wait_ended(b).await;

    workbench.phone().stop().await.unwrap();
    bob.stop().await.unwrap();
}

/// Inbound: onCallComing, auto-answer after the delay, answer() now 9001,
/// the caller hangs up, after-call work that ends by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_auto_answer_and_timed_after_call_work() {
    let kamailio = start_kamailio();
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;
    let (hooks, mut heard) = recording_hooks();
    let wrap_up = Duration::from_millis(800);
    let options = WorkbenchConfig {
        after_call_rule: AfterCallRule::After(wrap_up),
        auto_answer_call: Some(Duration::from_millis(300)),
        audio: agent_audio(440.0),
    };
    let workbench = Workbench::new(agent_config(&kamailio), options, hooks);
    assert_eq!(heard.next().await.0, "onInit");
    register(&workbench, &mut heard).await;

    let b = bob.call("alice", CallOptions { audio: tone(880.0), ..Default::default() }).await.unwrap().key();
    let seen = heard.until("onCallComing").await;
    assert_eq!(names(&seen), ["onStatusChange", "onCallComing"], "{seen:#?}");
    assert_eq!(statuses(&seen), [(6, 3)]);
    let coming = &seen[1].1;
    assert_eq!((coming["caller"].as_str(), coming["callee"].as_str()), (Some("bob"), Some("alice")));
    assert_eq!(coming["callType"], "inbound");

    // Nobody answers: autoAnswerCall does.
    let seen = heard.until("onCallEstablish").await;
    assert_eq!(statuses(&seen), [(9, 6)], "{seen:#?}");
    let context = &seen.last().unwrap().1["callContext"];
    let waited = context["connected_ms"].as_u64().unwrap() - context["started_ms"].as_u64().unwrap();
    assert!(waited >= 300, "answered after {waited} ms, before autoAnswerCall's 300");
    bob_log.wait_confirmed(b).await;
    let key = workbench.phone().status().calls[0];
    heard_tone(workbench.phone(), key, 880.0, "Bob's 880 Hz at the agent").await;
    heard_tone(&bob, b, 440.0, "the agent's 440 Hz at Bob").await;
    assert_eq!(workbench.answer().await.unwrap_err().error_code, json!(9001), "nothing rings");
    assert_eq!(heard.next().await.1["errorCode"], 9001);

    bob.hangup(b).await.unwrap();
    let mut seen = Vec::new();
    let mut at = None;
    while at.is_none() {
        let (name, value, when) = heard.next().await;
        if name == "onStatusChange" && value["code"] == 5 {
            at = Some(when);
        }
        seen.push((name, value));
    }
    seen.extend(heard.until("onCallRelease").await);
    assert_eq!(names(&seen), ["onStatusChange", "onHangUp", "onCallRelease"], "{seen:#?}");
    assert_eq!(seen[1].1, "inbound");
    assert_eq!(statuses(&seen), [(5, 9)]);
    // It ends by itself, no earlier than afterCallRule.
    let (name, value, when) = heard.next().await;
    assert_eq!((name, value["code"].as_i64(), value["lastCode"].as_i64()), ("onStatusChange", Some(3), Some(5)));
    assert!(when - at.unwrap() >= wrap_up, "after-call work lasted {:?}", when - at.unwrap());
    assert_eq!(heard.next().await.0, "onReady");

    workbench.phone().stop().await.unwrap();
    bob.stop().await.unwrap();
}

/// Consultation: the agent in a call with Bob consults Carol (16, then 17),
/// retrieves Bob (Carol's call ends), consults again, cannot finish before
/// Carol answers (9001 in 16), then joins Bob and Carol: they talk, both of
/// the agent's calls end (no after-call work with a zero rule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attended_transfer_retrieve_then_finish() {
    let kamailio = start_kamailio_with_users(&[("carol", CAROL_PASSWORD)]);
    // The calls the transfer makes (Bob's to Carol, the one replacing
    // Carol's) send their tones too.
    let (bob, mut bob_log) =
        registered_phone_with(&kamailio, "bob", BOB_PASSWORD, |b| b.transfer_audio(|_| tone(880.0))).await;
    let (carol, mut carol_log) =
        registered_phone_with(&kamailio, "carol", CAROL_PASSWORD, |b| b.transfer_audio(|_| tone(660.0))).await;
    let (hooks, mut heard) = recording_hooks();
    let options = WorkbenchConfig {
        after_call_rule: AfterCallRule::After(Duration::ZERO),
        audio: agent_audio(440.0),
        ..Default::default()
    };
    let workbench = Workbench::new(agent_config(&kamailio), options, hooks);
    register(&workbench, &mut heard).await;

    assert_eq!(workbench.call("bob", "").await, Ok(Done::Done));
    let b = bob_log.wait_incoming().await.key;
    bob.answer_with(b, tone(880.0)).await.unwrap();
    heard.until_status(10).await;

    // Consult Carol, then take Bob back.
    assert_eq!(workbench.initiate_attended_transfer("carol", "").await, Ok(Done::Done));
    let c1 = carol_log.wait_incoming().await.key;
    assert_eq!(statuses(&heard.until_status(16).await), [(16, 10)], "consultation dialing");
    carol.answer_with(c1, tone(660.0)).await.unwrap();
    let seen = heard.until_status(17).await;
    assert_eq!(statuses(&seen), [(17, 16)]);
    assert_eq!(workbench.third_call_retrieve().await, Ok(Done::Done));
    let seen = heard.until_status(10).await;
    assert_eq!(statuses(&seen).last(), Some(&(10, 12)), "{seen:#?}");
    carol_log.wait_ended(c1).await;
    heard_tone(workbench.phone(), workbench.phone().status().calls[0], 880.0, "Bob back at the agent").await;

    // Consult again: finishing before Carol answers is 9001.
    assert_eq!(workbench.initiate_attended_transfer("carol", "").await, Ok(Done::Done));
    let c2 = carol_log.wait_incoming().await.key;
    heard.until_status(16).await;
    assert_eq!(workbench.third_call_transfer_finished().await.unwrap_err().error_code, json!(9001));
    assert_eq!(heard.next().await.1["errorCode"], 9001);
    carol.answer_with(c2, tone(660.0)).await.unwrap();
    heard.until_status(17).await;
    heard_tone(workbench.phone(), workbench.phone().status().calls[1], 660.0, "Carol at the agent").await;

    // Finish: Bob and Carol are joined, the agent's calls end.
    assert_eq!(workbench.third_call_transfer_finished().await, Ok(Done::Done));
    let mut seen = heard.until_status(3).await;
    // The status comes before the event that caused it: the second release follows.
    seen.extend(heard.until("onCallRelease").await);
    assert_eq!(names(&seen).iter().filter(|n| **n == "onCallRelease").count(), 2, "{seen:#?}");
    assert_eq!(statuses(&seen), [(12, 17), (3, 12)], "the consultation ends first: {seen:#?}");
    assert!(!statuses(&seen).iter().any(|(code, _)| *code == 5), "a zero afterCallRule: no after-call work");
    let new =
        bob_log.wait_for("Bob's call to Carol", |e| matches!(e, Event::CallConfirmed { call } if call.key != b)).await;
    let Event::CallConfirmed { call: bob_to_carol } = new else { unreachable!() };
    let replaced = carol_log
        .wait_for("Carol's call replaced", |e| matches!(e, Event::CallReplaced { old, .. } if old.key == c2))
        .await;
    let Event::CallReplaced { new: carol_from_bob, .. } = replaced else { unreachable!() };
    heard_tone(&carol, carol_from_bob.key, 880.0, "Bob at Carol").await;
    heard_tone(&bob, bob_to_carol.key, 660.0, "Carol at Bob").await;

    bob.hangup(bob_to_carol.key).await.unwrap();
    carol_log.wait_ended(carol_from_bob.key).await;
    workbench.phone().stop().await.unwrap();
    bob.stop().await.unwrap();
    carol.stop().await.unwrap();
}
