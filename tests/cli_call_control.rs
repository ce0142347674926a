//! Scenario: call control from the CLI's one-shot verbs, as real processes
//! through Kamailio:
//! - `call --hold-at 1 --resume-at 2`: both reports show the hold and the
//!   resume, each from its side;
//! - `answer --transfer-to carol --transfer-at 1`: Bob transfers Alice's
//!   call to Carol; Alice's report shows the call the transfer gave her,
//!   with Carol's tone heard; Bob's shows the transfer accepted; all three
//!   exit 0.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const CAROL_PASSWORD: &str = "carol-Secret-91d0";

fn report(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("report {}: {e}", path.display()));
    serde_json::from_str(&text).expect("report is JSON")
}

fn common(kamailio: &support::kamailio::Kamailio, user: &str) -> Vec<String> {
    ["--server", &kamailio.ws_url(), "--user", user, "--domain", DOMAIN, "--allow-loopback"]
        .map(str::to_string)
        .to_vec()
}

/// Starts `webphone answer` for `user` and waits until it is registered.
fn answering(
    kamailio: &support::kamailio::Kamailio,
    user: &str,
    password: &str,
    extra: &[&str],
    report: &Path,
) -> Child {
    let child = Command::new(cli())
        .arg("answer")
        .args(common(kamailio, user))
        .args(["--max-calls", "1", "--json-events", "--report"])
        .arg(report)
        .args(extra)
        .env("WEBPHONE_PASSWORD", password)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn answer");
    let deadline = Instant::now() + TIMEOUT;
    while !kamailio.rpc("ul.lookup", &["location", &format!("{user}@example.com")]).contains("transport=ws") {
        assert!(Instant::now() < deadline, "{user} never registered:\n{}", kamailio.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// The names of the events in a report (with `by` for hold events).
fn event_names(r: &serde_json::Value) -> Vec<String> {
    r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| match e["by"].as_str() {
            Some(by) => format!("{} {by}", e["event"].as_str().unwrap()),
            None => e["event"].as_str().unwrap().to_string(),
        })
        .collect()
}

fn wait_ok(mut child: Child, who: &str) {
    let status = child.wait().expect("exits");
    assert!(status.success(), "{who} failed");
}

#[test]
fn hold_and_resume_at_set_times() {
    let kamailio = start_kamailio();
    let dir = std::env::temp_dir().join(format!("webphone-cli-hold-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (bob_report, alice_report) = (dir.join("bob.json"), dir.join("alice.json"));
    let bob = answering(&kamailio, "bob", BOB_PASSWORD, &["--tone", "880"], &bob_report);
    let alice = Command::new(cli())
        .args(["call", "bob"])
        .args(common(&kamailio, "alice"))
        .args(["--tone", "440", "--hold-at", "1", "--resume-at", "2", "--duration", "3", "--report"])
        .arg(&alice_report)
        .env("WEBPHONE_PASSWORD", ALICE_PASSWORD)
        .output()
        .expect("run call");
    assert!(alice.status.success(), "call failed: {}", String::from_utf8_lossy(&alice.stderr));
    wait_ok(bob, "answer");
    let (a, b) = (report(&alice_report), report(&bob_report));
    let a_events = event_names(&a);
    let held = a_events.iter().position(|e| e == "call_held local").expect("alice held");
    let resumed = a_events.iter().position(|e| e == "call_resumed local").expect("alice resumed");
    assert!(held < resumed);
    let b_events = event_names(&b);
    assert!(b_events.contains(&"call_held remote".to_string()), "{b_events:?}");
    assert!(b_events.contains(&"call_resumed remote".to_string()), "{b_events:?}");
    let hz = a["calls"][0]["audio"]["rx_dominant_hz"].as_f64().unwrap_or(0.0);
    assert!((hz - 880.0).abs() < 5.0, "alice heard {hz} Hz after resuming");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn blind_transfer_at_a_set_time() {
    let kamailio = start_kamailio_with_users(&[("carol", CAROL_PASSWORD)]);
    let dir = std::env::temp_dir().join(format!("webphone-cli-transfer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (alice_report, bob_report, carol_report) =
        (dir.join("alice.json"), dir.join("bob.json"), dir.join("carol.json"));
    let carol = answering(&kamailio, "carol", CAROL_PASSWORD, &["--tone", "660"], &carol_report);
    let transfer = ["--tone", "880", "--transfer-to", "carol", "--transfer-at", "1"];
    let bob = answering(&kamailio, "bob", BOB_PASSWORD, &transfer, &bob_report);
    let alice = Command::new(cli())
        .args(["call", "bob"])
        .args(common(&kamailio, "alice"))
        .args(["--tone", "440", "--duration", "2", "--report"])
        .arg(&alice_report)
        .env("WEBPHONE_PASSWORD", ALICE_PASSWORD)
        .output()
        .expect("run call");
    assert!(alice.status.success(), "call failed: {}", String::from_utf8_lossy(&alice.stderr));
    wait_ok(bob, "bob's answer");
    wait_ok(carol, "carol's answer");

    let b = report(&bob_report);
    let bob_call = &b["calls"][0];
    assert_eq!(bob_call["transfer"]["outcome"], "accepted", "{bob_call:#}");
    assert_eq!(bob_call["end"]["reason"], "transferred");
    let progress: Vec<u64> =
        bob_call["transfer"]["progress"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect();
    assert!(progress.contains(&180), "{progress:?}");

    let a = report(&alice_report);
    let calls = a["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert_eq!(calls[0]["end"]["by"], "remote", "bob ended the first call");
    assert_eq!(calls[1]["transferred_from"], calls[0]["key"]);
    assert_eq!(calls[1]["confirmed"], true);
    let hz = calls[1]["audio"]["rx_dominant_hz"].as_f64().unwrap_or(0.0);
    assert!((hz - 660.0).abs() < 5.0, "alice heard {hz} Hz from carol");

    let c = report(&carol_report);
    let hz = c["calls"][0]["audio"]["rx_dominant_hz"].as_f64().unwrap_or(0.0);
    assert!((hz - 440.0).abs() < 5.0, "carol heard {hz} Hz from alice");
    let _ = std::fs::remove_dir_all(&dir);
}
