//! Scenario: the CLI end to end. `webphone answer` (Bob, 880 Hz, one call)
//! and `webphone call` (Alice, 440 Hz, hangs up after 2 s) run as real
//! processes through Kamailio; both exit 0 and their reports show the
//! call confirmed, audio received, and the other side's tone heard.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn report(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("report {}: {e}", path.display()));
    serde_json::from_str(&text).expect("report is JSON")
}

#[test]
fn call_and_answer_verbs_through_kamailio() {
    let kamailio = start_kamailio();
    let dir = std::env::temp_dir().join(format!("webphone-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (bob_report, alice_report, heard) = (dir.join("bob.json"), dir.join("alice.json"), dir.join("heard.wav"));
    let common = |user: &str| -> Vec<String> {
        vec![
            "--server".into(),
            kamailio.ws_url(),
            "--user".into(),
            user.into(),
            "--domain".into(),
            DOMAIN.into(),
            "--allow-loopback".into(),
        ]
    };

    let mut bob = Command::new(cli())
        .arg("answer")
        .args(common("bob"))
        .args(["--tone", "880", "--max-calls", "1", "--json-events", "--report"])
        .arg(&bob_report)
        .env("WEBPHONE_PASSWORD", BOB_PASSWORD)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn answer");
    // Wait until Bob's binding is at the registrar.
    let deadline = Instant::now() + TIMEOUT;
    while !kamailio.rpc("ul.lookup", &["location", "bob@example.com"]).contains("transport=ws") {
        assert!(Instant::now() < deadline, "bob never registered:\n{}", kamailio.log());
        std::thread::sleep(Duration::from_millis(50));
    }

    let alice = Command::new(cli())
        .arg("call")
        .arg("bob")
        .args(common("alice"))
        .args(["--tone", "440", "--duration", "2", "--header", "X-Order-Id: 7", "--record"])
        .arg(&heard)
        .arg("--report")
        .arg(&alice_report)
        .env("WEBPHONE_PASSWORD", ALICE_PASSWORD)
        .output()
        .expect("run call");
    assert!(
        alice.status.success(),
        "call failed: {}\n{}",
        String::from_utf8_lossy(&alice.stderr),
        String::from_utf8_lossy(&alice.stdout)
    );
    let bob_status = bob.wait().expect("answer exits after one call");
    assert!(bob_status.success(), "answer failed");

    let a = report(&alice_report);
    let b = report(&bob_report);
    for (who, r, want) in [("alice", &a, 880.0), ("bob", &b, 440.0)] {
        assert_eq!(r["registered"], true, "{who}");
        let call = &r["calls"][0];
        assert_eq!(call["confirmed"], true, "{who}: {call:#}");
        let hz = call["audio"]["rx_dominant_hz"].as_f64().unwrap_or(0.0);
        assert!((hz - want).abs() < 5.0, "{who} heard {hz} Hz, wanted {want}");
        assert!(call["audio"]["rx_packets"].as_u64().unwrap_or(0) >= 50, "{who}: {call:#}");
        let started = call["started_ms"].as_u64().unwrap();
        let first_audio = call["first_audio_ms"].as_u64().expect("first audio time");
        let first_rtp = call["first_rtp_ms"].as_u64().expect("first RTP time");
        assert!(first_rtp <= first_audio, "{who}: first RTP {first_rtp} after first audio {first_audio}");
        assert!(
            first_audio >= started && first_audio - started < 3000,
            "{who}: first audio {first_audio} vs start {started}"
        );
        println!("{who}: call() to first audio {} ms", first_audio - started);
        if let Some(connected) = call["connected_ms"].as_u64() {
            println!("{who}: answer to first RTP {} ms", first_rtp.saturating_sub(connected));
        }
    }
    assert_eq!(a["calls"][0]["direction"], "outgoing");
    assert_eq!(a["calls"][0]["end"]["by"], "local");
    assert_eq!(b["calls"][0]["direction"], "incoming");
    assert_eq!(b["calls"][0]["end"]["by"], "remote");
    assert!(b["calls"][0]["headers"].to_string().contains("X-Order-Id"), "{:#}", b["calls"][0]);
    // The recording holds about two seconds of 48 kHz mono audio.
    let wav = hound::WavReader::open(&heard).expect("recording");
    assert_eq!((wav.spec().sample_rate, wav.spec().channels), (48_000, 1));
    assert!(wav.duration() >= 48_000, "{} samples", wav.duration());
    let _ = std::fs::remove_dir_all(&dir);
}
