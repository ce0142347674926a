//! Scenario: the CLI's `phone` verb end to end. Two `webphone phone`
//! processes (Alice, Bob) registered through Kamailio are driven only by
//! JSON action lines on stdin; everything is read back from their JSON
//! lines on stdout: Alice calls, Bob answers, each side's stats show the
//! other's tone, bad lines get `ok:false`, Alice hangs up, Bob's
//! `call_ended` carries his final figures, and both exit 0 on `quit` / EOF.

mod support;

use std::io::{BufRead, BufReader, Write};

use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

/// A `webphone phone` process: its stdin, and its stdout lines as JSON.
struct PhoneProcess {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl PhoneProcess {
    fn start(kamailio: &Kamailio, name: &'static str, password: &str) -> PhoneProcess {
        let mut child = Command::new(cli())
            .args(["phone", "--server", &kamailio.ws_url(), "--user", name, "--domain", DOMAIN, "--allow-loopback"])
            .env("WEBPHONE_PASSWORD", password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn webphone phone");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        PhoneProcess { name, child, stdin, lines, seen: Vec::new() }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).expect("write to phone");
    }

    /// The next line matching `want` (earlier ones are kept in `seen`).
    fn wait(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if want(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("{}: no {what} within {TIMEOUT:?}; saw:\n{:#?}", self.name, self.seen),
            }
        }
    }

    fn event(&mut self, name: &str) -> Value {
        self.wait(name, |v| v["event"] == name)
    }

    /// Sends an action with `id` and returns its `action_result`.
    fn act(&mut self, id: u64, mut action: Value) -> Value {
        action["id"] = json!(id);
        self.send(&action.to_string());
        self.wait(&format!("action_result {id}"), |v| v["event"] == "action_result" && v["id"] == id)
    }

    /// Asks for stats until `enough` holds.
    fn wait_stats(&mut self, first_id: u64, what: &str, enough: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        for id in first_id.. {
            let result = self.act(id, json!({"action": "stats"}));
            assert_eq!(result["ok"], true, "{}: {result:#}", self.name);
            if enough(&result["stats"]) {
                return result["stats"].clone();
            }
            assert!(Instant::now() < deadline, "{}: {what} never seen: {result:#}", self.name);
            // Stats are recomputed every few frames: ask again a little later.
            std::thread::sleep(Duration::from_millis(100));
        }
        unreachable!()
    }

    fn exit_status(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Share of non-silent frames in which `hz` dominated, from a stats object.
fn tracked(stats: &Value, hz: f64) -> f64 {
    stats["tracked"]
        .as_array()
        .and_then(|t| t.iter().find(|p| (p[0].as_f64().unwrap_or(0.0) - hz).abs() < 0.5))
        .and_then(|p| p[1].as_f64())
        .unwrap_or(0.0)
}

fn tone(hz: f64, hear: f64) -> Value {
    json!({"send": {"tone": {"frequency_hz": hz, "level_dbfs": -12.0}}, "track_frequencies": [hear]})
}

#[test]
fn two_phone_processes_driven_by_json_lines_call_each_other() {
    let kamailio = start_kamailio();
    let mut alice = PhoneProcess::start(&kamailio, "alice", ALICE_PASSWORD);
    let mut bob = PhoneProcess::start(&kamailio, "bob", BOB_PASSWORD);
    alice.event("registered");
    bob.event("registered");

    // Lines that are not actions are answered, never fatal.
    let bad = alice.act(1, json!({"action": "fly"}));
    assert_eq!((&bad["ok"], &bad["error"]["kind"]), (&json!(false), &json!("bad_request")), "{bad:#}");
    alice.send("this is not json");
    let bad = alice.wait("a result for a non-JSON line", |v| v["event"] == "action_result" && v["id"].is_null());
    assert_eq!(bad["error"]["kind"], "bad_request", "{bad:#}");
    let none = alice.act(2, json!({"action": "hangup", "call": 999}));
    assert_eq!((&none["ok"], &none["error"]["kind"]), (&json!(false), &json!("no_such_call")), "{none:#}");

    let nothing = alice.act(4, json!({"action": "answer"}));
    assert_eq!((&nothing["ok"], &nothing["error"]["kind"]), (&json!(false), &json!("not_allowed")), "{nothing:#}");
    let idle = alice.act(5, json!({"action": "status"}));
    assert_eq!(idle["status"]["code"], 3, "idle: {idle:#}");

    let placed = alice.act(3, json!({"action": "call", "target": "bob", "audio": tone(440.0, 880.0)}));
    assert_eq!(placed["ok"], true, "{placed:#}");
    let key = placed["call"].clone();
    assert!(key.is_u64(), "{placed:#}");
    let incoming = bob.event("call_incoming");
    assert_eq!(incoming["call"]["direction"], "incoming");
    let answered = bob.act(1, json!({"action": "answer", "audio": tone(880.0, 440.0)}));
    assert_eq!(answered["ok"], true, "{answered:#}");
    let confirmed = alice.event("call_confirmed");
    assert_eq!(confirmed["call"]["key"], key);
    bob.event("call_confirmed");

    // Each side hears the other's tone.
    let heard = |hz: f64| move |s: &Value| s["decoded_frames"].as_u64().unwrap_or(0) >= 50 && tracked(s, hz) >= 0.8;
    let at_alice = alice.wait_stats(10, "880 Hz", heard(880.0));
    let at_bob = bob.wait_stats(10, "440 Hz", heard(440.0));
    assert_eq!(at_alice["codec"], "opus");
    assert!(tracked(&at_bob, 880.0) < 0.05, "no echo of bob's own tone: {at_bob:#}");

    let status = alice.act(100, json!({"action": "status"}));
    assert_eq!(status["status"]["registered"], true, "{status:#}");
    assert_eq!(status["status"]["calls"], json!([key]), "{status:#}");
    assert_eq!(status["status"]["code"], 10, "outbound call: {status:#}");
    let lines = alice.act(103, json!({"action": "lines"}));
    let line = &lines["lines"][0];
    assert_eq!(
        (&line["line"], &line["state"], &line["call"]["key"]),
        (&json!(1), &json!("connected"), &key),
        "{lines:#}"
    );

    // Hold and resume through the JSON vocabulary.
    assert_eq!(alice.act(104, json!({"action": "hold"}))["ok"], true);
    // The status changes first, so that whoever reacts to the event sees it.
    let changed = alice.wait("status 12", |v| v["event"] == "status_changed" && v["code"] == 12);
    assert_eq!(changed["last"], 10, "{changed:#}");
    let held = alice.event("call_held");
    assert_eq!(held["by"], "local", "{held:#}");
    assert_eq!(bob.event("call_held")["by"], "remote");
    assert_eq!(alice.act(105, json!({"action": "lines"}))["lines"][0]["held_local"], true);
    assert_eq!(alice.act(106, json!({"action": "resume"}))["ok"], true);
    assert_eq!(alice.event("call_resumed")["by"], "local");
    bob.event("call_resumed");

    let hung_up = alice.act(101, json!({"action": "hangup"}));
    assert_eq!(hung_up["ok"], true, "the current call is hung up: {hung_up:#}");
    let ended = alice.event("call_ended");
    assert_eq!(ended["call"]["end"]["by"], "local");
    let ended = bob.event("call_ended");
    assert_eq!(ended["call"]["end"]["by"], "remote");
    assert!(ended["stats"]["rx_packets"].as_u64().unwrap_or(0) >= 50, "final figures on call_ended: {ended:#}");

    alice.send(r#"{"id": 102, "action": "quit"}"#);
    let quit = alice.wait("quit result", |v| v["event"] == "action_result" && v["id"] == 102);
    assert_eq!(quit["ok"], true);
    assert!(alice.exit_status().success(), "alice exits 0 on quit");
    assert!(bob.exit_status().success(), "bob exits 0 when stdin closes");
}
