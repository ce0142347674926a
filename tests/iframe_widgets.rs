//! Scenario: the iframe widget pages (`/nxcloud`, `/mycc`, `/max`) of a
//! `webphone serve` process, registered as Alice through Kamailio, embedded
//! by CRM pages (tests/browser/crm/) written against the vendors' documents,
//! in headless Chromium. Bob is a library phone in the test. Each test
//! places and receives calls through its widget's postMessage vocabulary,
//! checks every message the CRM gets back (names, fields, order), and that
//! Bob hears the serve process's 440 Hz tone.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use serde_json::{Value, json};
use support::browser::Browser;
use support::*;
use webphone::media::{AudioSetup, CallStats, SendAudio};
use webphone::{CallInfo, CallKey, CallOptions, Event, Originator, Phone};

const TOKEN: &str = "iframe-token-5c1f";

/// `webphone serve` as Alice, sending 440 Hz in every call.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(kamailio: &Kamailio) -> Serve {
        Serve::start_with(kamailio, &[])
    }

    /// With more command-line arguments.
    fn start_with(kamailio: &Kamailio, extra: &[&str]) -> Serve {
        let mut child = Command::new(cli())
            .args(["serve", "--server", &kamailio.ws_url(), "--user", "alice", "--domain", DOMAIN])
            .args(["--allow-loopback", "--tone", "440", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("WEBPHONE_PASSWORD", ALICE_PASSWORD)
            .env("WEBPHONE_CONTROL_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn webphone serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        // Progress lines for people come first; then the JSON line with the URL.
        let serving = loop {
            let line = rx.recv_timeout(TIMEOUT * 2).expect("webphone serve prints its URL");
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                break v;
            }
        };
        assert_eq!(serving["event"], "serving", "{serving}");
        let url = serving["url"].as_str().expect("url").to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Serve { child, url }
    }

    /// The widget page's URL, with the token.
    fn page(&self, name: &str) -> String {
        format!("{}/{name}?token={TOKEN}", self.url)
    }
}

/// The one file that appears in `dir` and whose WAV header is complete.
async fn wait_for_file(dir: &std::path::Path) -> std::path::PathBuf {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let files: Vec<_> = std::fs::read_dir(dir).expect("recordings dir").flatten().map(|e| e.path()).collect();
        if let [file] = files.as_slice()
            && hound::WavReader::open(file).is_ok_and(|r| r.duration() > 0)
        {
            return file.clone();
        }
        assert!(files.len() <= 1, "one recording only: {files:?}");
        assert!(tokio::time::Instant::now() < deadline, "no complete recording in {}: {files:?}", dir.display());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One CRM tab in Chromium and every message its page received.
struct Crm {
    browser: Browser,
    messages: Vec<Value>,
}

const TAB: &str = "crm";

impl Crm {
    async fn open(url: &str) -> Crm {
        let mut browser = Browser::start_crm().await;
        browser.command(TAB, "open", json!({"url": url})).await;
        Crm { browser, messages: Vec::new() }
    }

    /// The next message the CRM page received.
    async fn next(&mut self) -> Value {
        let data = self.browser.wait(TAB, "message", None).await["data"].clone();
        self.messages.push(data.clone());
        data
    }

    /// Posts `message` as the CRM page in `frame` (a part of its URL) does.
    async fn post(&mut self, frame: Option<&str>, message: Value) {
        self.browser.command(TAB, "post", json!({"frame": frame, "message": message})).await;
    }

    /// Clicks the widget's button `text` (the agent's hand).
    async fn click(&mut self, frame: Option<&str>, text: &str) {
        self.browser.command(TAB, "click", json!({"frame": frame, "text": text})).await;
    }
}

/// The CRM page `crm_page` embedding `widget`.
fn crm_url(crm_page: &str, widget: &str) -> String {
    format!("http://localhost/crm/{crm_page}.html?widget={}", percent_encoded(widget))
}

fn percent_encoded(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Bob's audio: 880 Hz out, listening for Alice's 440 Hz.
fn bob_audio() -> AudioSetup {
    AudioSetup {
        send: SendAudio::Tone { frequency_hz: 880.0, level_dbfs: -12.0 },
        track_frequencies: vec![440.0],
        ..Default::default()
    }
}

fn share(stats: &CallStats, hz: f64) -> f64 {
    stats.tracked.iter().find(|(f, _)| (*f - hz).abs() < 0.5).map_or(0.0, |(_, r)| *r)
}

/// Waits until Bob hears Alice's 440 Hz in the call now.
async fn bob_hears_alice(bob: &Phone, call: CallKey) -> CallStats {
    wait_stats(bob, call, "Alice's 440 Hz at Bob", |s| {
        s.decoded_frames >= 50
            && share(s, 440.0) >= 0.9
            && s.rx_level_dbfs > -40.0
            && s.rx_dominant_hz.is_some_and(|f| (f - 440.0).abs() < 10.0)
    })
    .await
}

/// Bob calls Alice; returns his call as it rings at Alice's end.
async fn bob_calls_alice(bob: &Phone, bob_log: &mut EventLog, headers: Vec<(String, String)>) -> CallInfo {
    let key = bob
        .call("alice", CallOptions { headers, audio: bob_audio(), ..Default::default() })
        .await
        .expect("Bob calls")
        .key();
    bob_log.wait_for("Bob's call rings", |e| matches!(e, Event::CallProgress { call, .. } if call.key == key)).await;
    match bob_log.seen.iter().find(|e| matches!(e, Event::CallOutgoing { call } if call.key == key)) {
        Some(Event::CallOutgoing { call }) => call.clone(),
        _ => panic!("no CallOutgoing for Bob's call: {:#?}", bob_log.seen),
    }
}

fn ended_by(ended: &CallInfo) -> Option<Originator> {
    ended.end.as_ref().map(|e| e.by)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nxcloud_widget_logs_in_calls_out_with_order_data_and_takes_calls() {
    let kamailio = start_kamailio();
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;
    let serve = Serve::start(&kamailio);
    let mut crm = Crm::open(&crm_url("nxcloud", &serve.page("nxcloud"))).await;
    // The widget's frame, by its URL (the CRM's own carries it encoded).
    let widget = format!("{}/nxcloud", serve.url);

    // The CRM posts `init` when the frame loads (as NXCloud's document does).
    let login = crm.next().await;
    assert_eq!(login, json!({"type": "login", "content": {"email": "agent@example.com", "sipNum": "", "groupNo": ""}}));
    assert_eq!(crm.next().await, json!({"type": "agentExists", "content": {"code": 1}}));
    assert_eq!(crm.next().await, json!({"type": "dialStatus", "content": {"code": 4}}));

    // callOut: orderId and params travel on the INVITE and come back.
    let params = r#"{"ticket":"T-9","lang":"en"}"#;
    let call_out = json!({"type": "callOut", "content": {
        "caller": "", "callee": "bob", "countryCode": "", "orderId": "66493f1afaa3", "params": params}});
    crm.post(None, call_out).await;
    let incoming = bob_log.wait_incoming().await;
    assert!(incoming.headers.contains(&("X-Order-Id".into(), "66493f1afaa3".into())), "{:?}", incoming.headers);
    assert!(incoming.headers.contains(&("X-Params".into(), params.into())), "{:?}", incoming.headers);
    let calling = crm.next().await;
    let c = &calling["content"];
    assert_eq!(calling["type"], "dialStatus");
    assert_eq!(
        (&c["code"], &c["direction"], &c["caller"], &c["callee"], &c["orderId"], &c["params"]),
        (&json!(0), &json!(1), &json!("alice"), &json!("bob"), &json!("66493f1afaa3"), &json!(params)),
        "{calling:#}"
    );
    assert_eq!(c["callId"], json!(incoming.call_id), "the SIP Call-ID");
    let started = c["callStartTimestamp"].as_u64().expect("a start in ms");
    assert_eq!((&c["callConnectedTimestamp"], &c["callHangUpTimestamp"]), (&json!(""), &json!("")), "{calling:#}");

    bob.answer_with(incoming.key, bob_audio()).await.expect("Bob answers");
    let in_call = crm.next().await;
    let c = &in_call["content"];
    assert_eq!((&c["code"], &c["orderId"], &c["params"]), (&json!(2), &json!("66493f1afaa3"), &json!(params)));
    let connected = c["callConnectedTimestamp"].as_u64().expect("connected in ms");
    assert!(connected >= started && c["callStartTimestamp"] == json!(started), "{in_call:#}");
    bob_hears_alice(&bob, incoming.key).await;

    bob.hangup(incoming.key).await.expect("Bob hangs up");
    let hung_up = crm.next().await;
    let c = &hung_up["content"];
    assert_eq!(
        (&c["code"], &c["callId"], &c["orderId"]),
        (&json!(5), &json!(incoming.call_id), &json!("66493f1afaa3"))
    );
    assert!(c["callHangUpTimestamp"].as_u64().is_some_and(|t| t >= connected), "{hung_up:#}");
    assert!(c.get("hangupCode").is_none(), "a normal hang-up has no failure code: {hung_up:#}");

    // A call to nobody: NXCloud's "incorrect number".
    crm.post(None, json!({"type": "callOut", "content": {"caller": "", "callee": "nobody", "countryCode": "", "orderId": "o-2", "params": ""}})).await;
    let calling = crm.next().await;
    assert_eq!((&calling["content"]["code"], &calling["content"]["callee"]), (&json!(0), &json!("nobody")));
    let failed = crm.next().await;
    let c = &failed["content"];
    assert_eq!((&c["code"], &c["hangupCode"], &c["orderId"]), (&json!(5), &json!(812), &json!("o-2")), "{failed:#}");
    assert_eq!(c["callConnectedTimestamp"], "", "never connected");

    // Bob calls in with an order id of his own; the agent answers and hangs
    // up with the widget's buttons.
    let bobs = bob_calls_alice(&bob, &mut bob_log, vec![("X-Order-Id".into(), "IN-7".into())]).await;
    let ringing = crm.next().await;
    let c = &ringing["content"];
    assert_eq!(
        (&c["code"], &c["direction"], &c["caller"], &c["callee"], &c["orderId"], &c["callId"]),
        (&json!(1), &json!(0), &json!("bob"), &json!("alice"), &json!("IN-7"), &json!(bobs.call_id)),
        "{ringing:#}"
    );
    let other: Value = serde_json::from_str(c["other"].as_str().expect("other is a JSON string")).expect("JSON");
    assert_eq!(other["X-Order-Id"], "IN-7", "{other}");
    crm.click(Some(&widget), "Answer").await;
    bob_log.wait_confirmed(bobs.key).await;
    let in_call = crm.next().await;
    assert_eq!((&in_call["content"]["code"], &in_call["content"]["direction"]), (&json!(2), &json!(0)));
    bob_hears_alice(&bob, bobs.key).await;
    crm.click(Some(&widget), "Hang up").await;
    assert_eq!(ended_by(&bob_log.wait_ended(bobs.key).await), Some(Originator::Remote));
    let hung_up = crm.next().await;
    assert_eq!((&hung_up["content"]["code"], &hung_up["content"]["orderId"]), (&json!(5), &json!("IN-7")));

    // loginOut, then a callOut while logged out: code 6.
    crm.post(None, json!({"type": "loginOut"})).await;
    assert_eq!(crm.next().await, json!({"type": "logout"}));
    crm.post(None, json!({"type": "callOut", "content": {"callee": "bob"}})).await;
    assert_eq!(crm.next().await, json!({"type": "dialStatus", "content": {"code": 6}}));

    let order: Vec<String> = crm
        .messages
        .iter()
        .map(|m| {
            format!(
                "{}{}",
                m["type"].as_str().unwrap_or("?"),
                m["content"]["code"].as_i64().map(|c| format!(" {c}")).unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            "login",
            "agentExists 1",
            "dialStatus 4",
            "dialStatus 0",
            "dialStatus 2",
            "dialStatus 5",
            "dialStatus 0",
            "dialStatus 5",
            "dialStatus 1",
            "dialStatus 2",
            "dialStatus 5",
            "logout",
            "dialStatus 6"
        ]
    );
    let received = crm.browser.drain().iter().filter(|e| e["event"] == "message").count();
    assert_eq!(received, crm.messages.len(), "nothing more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mycc_widget_reports_registration_ringing_and_answer_both_ways() {
    let kamailio = start_kamailio();
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;
    let serve = Serve::start(&kamailio);
    let mut crm = Crm::open(&crm_url("mycc", &serve.page("mycc"))).await;
    let widget = format!("{}/mycc", serve.url);

    let registered = crm.next().await;
    assert_eq!(registered["type"], "OnRegistered", "{registered:#}");

    // Click to call.
    crm.post(None, json!({"type": "OutboundCallRequest", "data": {"target": "bob"}})).await;
    let incoming = bob_log.wait_incoming().await;
    let ringing = crm.next().await;
    let d = &ringing["data"];
    assert_eq!(ringing["type"], "OnCallRinging", "{ringing:#}");
    assert_eq!(
        (&d["callId"], &d["callerIdNumber"], &d["direction"], &d["request"], &d["calleeIdNumber"]),
        (&json!(incoming.call_id), &json!("alice"), &json!("inbound"), &json!("bob@example.com"), &Value::Null),
        "{ringing:#}"
    );
    assert_eq!((&d["ownerId"], &d["queueAgentInteraction"]), (&json!("alice"), &json!(false)));
    assert_eq!(
        (&d["state"]["@c"], &d["state"]["direction"], &d["state"]["resourceType"]),
        (&json!(".CreateOtherLeg"), &json!("outbound"), &json!("offnet-termination"))
    );
    bob.answer_with(incoming.key, bob_audio()).await.expect("Bob answers");
    let answer = crm.next().await;
    let a = &answer["data"];
    assert_eq!(answer["type"], "OnCallAnswer", "{answer:#}");
    assert_eq!(
        (&a["interactionID"], &a["callId"], &a["calleeIdNumber"], &a["state"]["@c"]),
        (&d["interactionID"], &d["callId"], &json!("bob"), &json!(".AnsweringWithOtherLeg")),
        "{answer:#}"
    );
    assert!(a["state"]["timestamp"].as_u64().is_some(), "{answer:#}");
    bob_hears_alice(&bob, incoming.key).await;
    bob.hangup(incoming.key).await.expect("Bob hangs up");
    bob_log.wait_ended(incoming.key).await;

    // An incoming call, answered and ended with the widget's buttons.
    let bobs = bob_calls_alice(&bob, &mut bob_log, Vec::new()).await;
    let ringing = crm.next().await;
    let d = &ringing["data"];
    assert_eq!(
        (&ringing["type"], &d["callId"], &d["callerIdNumber"], &d["request"], &d["calleeIdNumber"]),
        (&json!("OnCallRinging"), &json!(bobs.call_id), &json!("bob"), &json!("alice@example.com"), &Value::Null),
        "{ringing:#}"
    );
    crm.click(Some(&widget), "Answer").await;
    bob_log.wait_confirmed(bobs.key).await;
    let answer = crm.next().await;
    assert_eq!(
        (&answer["type"], &answer["data"]["callId"], &answer["data"]["calleeIdNumber"]),
        (&json!("OnCallAnswer"), &json!(bobs.call_id), &json!("alice")),
        "{answer:#}"
    );
    bob_hears_alice(&bob, bobs.key).await;
    crm.click(Some(&widget), "Hang up").await;
    assert_eq!(ended_by(&bob_log.wait_ended(bobs.key).await), Some(Originator::Remote));

    let types: Vec<&str> = crm.messages.iter().map(|m| m["type"].as_str().unwrap_or("?")).collect();
    assert_eq!(types, ["OnRegistered", "OnCallRinging", "OnCallAnswer", "OnCallRinging", "OnCallAnswer"]);
    let received = crm.browser.drain().iter().filter(|e| e["event"] == "message").count();
    assert_eq!(received, crm.messages.len(), "nothing more");
}

/// The MAX page's events so far, one list: (message index, event).
fn max_events(crm: &Crm) -> Vec<Value> {
    crm.messages.iter().flat_map(|m| m["events"].as_array().cloned().unwrap_or_default()).collect()
}

impl Crm {
    /// Waits for a MAX event matching `want` after the one at `seen` (a
    /// cursor: contact and agent events are each in order, but the two kinds
    /// interleave as they come).
    async fn max_event(&mut self, seen: &mut usize, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        loop {
            let events = max_events(self);
            if let Some(i) = events[*seen..].iter().position(&want) {
                *seen += i + 1;
                return events[*seen - 1].clone();
            }
            let m = self.next().await;
            assert_eq!(m["issuer"], "MAX", "{what}: {m:#}");
        }
    }
}

fn contact(status: &'static str) -> impl Fn(&Value) -> bool {
    move |e| e["Type"] == "CallContactEvent" && e["Status"] == status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_page_acknowledges_subscriptions_and_takes_the_commands() {
    let kamailio = start_kamailio();
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;
    let recordings = std::env::temp_dir().join(format!("webphone-max-recordings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&recordings);
    std::fs::create_dir_all(&recordings).expect("recordings dir");
    let serve = Serve::start_with(&kamailio, &["--recordings", recordings.to_str().expect("utf-8 path")]);
    // In MAX the CRM page is the child: the page embeds it.
    let crm_page = "http://localhost/crm/max.html";
    let mut crm = Crm::open(&format!("{}&crm={}", serve.page("max"), percent_encoded(crm_page))).await;
    let frame = Some("localhost/crm/max.html");

    let ack = crm.next().await;
    assert_eq!((&ack["issuer"], &ack["contactId"]), (&json!("MAX"), &Value::Null), "{ack:#}");
    assert_eq!(
        ack["events"][0],
        json!({"messageType": "ClientEventSubscriptionAcknowledge", "contactId": null, "reason": "Success", "status": "OK"})
    );
    assert_eq!(
        (&ack["events"][1]["Type"], &ack["events"][1]["CurrentState"]),
        (&json!("AgentState"), &json!("Available"))
    );
    assert_eq!(ack["events"].as_array().map(Vec::len), Some(2), "no contacts yet: {ack:#}");
    // A second subscription of the same window is not answered.
    crm.post(
        frame,
        json!({"issuer": "MyTestSite", "messageType": "RegisterForClientEvents", "subscriptionTypes": ["agent"]}),
    )
    .await;
    let mut seen = 2;
    let mut agent_seen = 2;

    let bobs = bob_calls_alice(&bob, &mut bob_log, Vec::new()).await;
    let ev = crm.max_event(&mut seen, "Incoming", contact("Incoming")).await;
    assert_eq!(
        (&ev["ANI"], &ev["DNIS"], &ev["IsInbound"], &ev["CallId"], &ev["FinalState"]),
        (&json!("bob"), &json!("alice"), &json!(true), &json!(bobs.call_id), &json!(false)),
        "{ev:#}"
    );
    let contact_id = ev["ContactID"].clone();
    crm.post(frame, json!({"messageType": "AnswerEvent"})).await;
    crm.max_event(&mut seen, "Active", contact("Active")).await;
    bob_log.wait_confirmed(bobs.key).await;
    let heard = bob_hears_alice(&bob, bobs.key).await;

    crm.post(frame, json!({"messageType": "HoldEvent"})).await;
    crm.max_event(&mut seen, "Holding", contact("Holding")).await;
    bob_log.wait_for("held by Alice", |e| matches!(e, Event::CallHeld { by: Originator::Remote, .. })).await;
    crm.post(frame, json!({"messageType": "HoldEvent"})).await;
    crm.max_event(&mut seen, "Active again", contact("Active")).await;
    bob_log.wait_for("resumed by Alice", |e| matches!(e, Event::CallResumed { by: Originator::Remote, .. })).await;

    crm.post(frame, json!({"messageType": "MuteEvent"})).await;
    crm.max_event(&mut seen, "muted", |e| e["Type"] == "CallContactEvent" && e["IsMuted"] == true).await;
    let silent = wait_stats(&bob, bobs.key, "silence at Bob while Alice is muted", |s| s.rx_level_dbfs < -60.0).await;
    assert!(silent.rx_packets > heard.rx_packets, "muting sends silence: {silent:#?}");
    crm.post(frame, json!({"messageType": "MuteEvent"})).await;
    crm.max_event(&mut seen, "unmuted", |e| e["Type"] == "CallContactEvent" && e["IsMuted"] == false).await;
    wait_stats(&bob, bobs.key, "440 Hz at Bob again", |s| {
        s.rx_packets > silent.rx_packets
            && s.rx_level_dbfs > -40.0
            && s.rx_dominant_hz.is_some_and(|f| (f - 440.0).abs() < 10.0)
    })
    .await;

    // RecordEvent: the call is recorded into the server's recordings directory
    // (stereo: what Alice sends left) and the contact says so.
    crm.post(frame, json!({"messageType": "RecordEvent"})).await;
    let logging =
        crm.max_event(&mut seen, "recording", |e| e["Type"] == "CallContactEvent" && e["IsLogging"] == true).await;
    assert_eq!(logging["ContactID"], contact_id, "{logging:#}");
    // A second one is not a second recording: MAX's record is one-shot.
    crm.post(frame, json!({"messageType": "RecordEvent"})).await;
    // Let a second of the call be recorded (Bob decodes 50 more frames).
    let recording_from = wait_stats(&bob, bobs.key, "audio at Bob", |s| s.decoded_frames > 0).await.decoded_frames;
    wait_stats(&bob, bobs.key, "a second of recorded call", |s| s.decoded_frames >= recording_from + 50).await;

    crm.post(frame, json!({"messageType": "HangupEvent"})).await;
    let gone = crm.max_event(&mut seen, "Disconnected", contact("Disconnected")).await;
    assert_eq!((&gone["FinalState"], &gone["ContactID"]), (&json!(true), &contact_id));
    assert_eq!(ended_by(&bob_log.wait_ended(bobs.key).await), Some(Originator::Remote));
    // The recording was completed with the call: one stereo WAV whose left
    // channel is Alice's 440 Hz.
    let file = wait_for_file(&recordings).await;
    let mut wav = hound::WavReader::open(&file).expect("a complete WAV file");
    assert_eq!((wav.spec().channels, wav.spec().sample_rate), (2, 48_000), "{}", file.display());
    let left: Vec<i16> = wav.samples::<i16>().step_by(2).map(|s| s.expect("sample")).collect();
    assert!(left.len() >= 24_000, "at least half a second recorded: {} frames", left.len());
    let crossings = left.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count() as f64;
    let hz = crossings / 2.0 / (left.len() as f64 / 48_000.0);
    assert!((hz - 440.0).abs() < 40.0, "the left channel is Alice's tone: {hz:.0} Hz");
    let _ = std::fs::remove_dir_all(&recordings);
    crm.max_event(&mut agent_seen, "Available again", |e| {
        e["Type"] == "AgentState" && e["CurrentState"] == "Available"
    })
    .await;

    // RefuseEvent: Bob's next call is declined.
    let bobs2 = bob_calls_alice(&bob, &mut bob_log, Vec::new()).await;
    crm.max_event(&mut seen, "Incoming (2)", contact("Incoming")).await;
    crm.post(frame, json!({"messageType": "RefuseEvent"})).await;
    crm.max_event(&mut seen, "Disconnected (2)", contact("Disconnected")).await;
    let refused = bob_log.wait_ended(bobs2.key).await;
    assert_eq!(refused.end.as_ref().and_then(|e| e.status), Some(603), "{refused:#?}");
    crm.max_event(&mut agent_seen, "Available at the end", |e| {
        e["Type"] == "AgentState" && e["CurrentState"] == "Available"
    })
    .await;

    // Every event, in order per kind; one acknowledgement only.
    let events = max_events(&crm);
    let acks = events.iter().filter(|e| e["messageType"] == "ClientEventSubscriptionAcknowledge").count();
    assert_eq!(acks, 1);
    let agent: Vec<&str> =
        events.iter().filter(|e| e["Type"] == "AgentState").filter_map(|e| e["CurrentState"].as_str()).collect();
    assert_eq!(agent, ["Available", "InboundContact", "Available", "InboundContact", "Available"]);
    let contacts: Vec<String> = events
        .iter()
        .filter(|e| e["Type"] == "CallContactEvent")
        .map(|e| {
            format!(
                "{} {}{}{}",
                e["ContactID"].as_str().unwrap_or("?"),
                e["Status"].as_str().unwrap_or("?"),
                if e["IsMuted"] == true { " muted" } else { "" },
                if e["IsLogging"] == true { " recorded" } else { "" }
            )
        })
        .collect();
    let first = contact_id.as_str().unwrap();
    let second = events.iter().rev().find(|e| e["Type"] == "CallContactEvent").unwrap()["ContactID"]
        .as_str()
        .unwrap()
        .to_string();
    let want: Vec<String> = [
        format!("{first} Incoming"),
        format!("{first} Active"),
        format!("{first} Holding"),
        format!("{first} Active"),
        format!("{first} Active muted"),
        format!("{first} Active"),
        format!("{first} Active recorded"),
        format!("{first} Disconnected recorded"),
        format!("{second} Incoming"),
        format!("{second} Disconnected"),
    ]
    .into();
    assert_eq!(contacts, want);
}
