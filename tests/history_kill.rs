//! Scenario: no call is lost when the process is killed mid-call. Bob runs
//! the CLI (`webphone answer --history DB`) as a real process; Alice calls
//! him through Kamailio. Once the call is up and its record shows the
//! answer, Bob's process is killed (SIGKILL: no chance to clean up). The
//! database is intact, and holds the call with its start and answer times
//! and no end; it still takes notes.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;
use webphone::history::{CallRef, Note, Store};
use webphone::{AudioSetup, CallDirection, CallOptions, SendAudio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_survives_its_process_being_killed() {
    let kamailio = start_kamailio();
    let db = std::env::temp_dir().join(format!("webphone-history-kill-{}.sqlite", std::process::id()));
    let remove_db = || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    };
    remove_db();

    let mut bob = Command::new(cli())
        .arg("answer")
        .args(["--server", &kamailio.ws_url(), "--user", "bob", "--domain", DOMAIN, "--allow-loopback"])
        .args(["--tone", "880", "--max-calls", "1", "--history"])
        .arg(&db)
        .env("WEBPHONE_PASSWORD", BOB_PASSWORD)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn answer");
    let deadline = Instant::now() + TIMEOUT;
    while !kamailio.rpc("ul.lookup", &["location", "bob@example.com"]).contains("transport=ws") {
        assert!(Instant::now() < deadline, "bob never registered:\n{}", kamailio.log());
        std::thread::sleep(Duration::from_millis(50));
    }

    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let audio = AudioSetup { send: SendAudio::Tone { frequency_hz: 440.0, level_dbfs: -12.0 }, ..Default::default() };
    let call = alice.call("bob", CallOptions { audio, ..Default::default() }).await.unwrap();
    let confirmed = alice_log.wait_confirmed(call.key()).await;
    wait_stats(&alice, call.key(), "Bob's audio at Alice", |s| s.decoded_frames >= 10).await;

    // Bob's record shows the answer while the call goes on (read beside
    // the writer: WAL).
    let reader = Store::open(&db).expect("Bob's history");
    let deadline = Instant::now() + TIMEOUT;
    let during = loop {
        let records = reader.recent(10).unwrap();
        if let Some(r) = records.iter().find(|r| r.answered_ms.is_some()) {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "Bob's record never showed the answer: {records:#?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(reader);
    assert_eq!(during.ended_ms, None, "the call is up");

    bob.kill().expect("SIGKILL");
    let status = bob.wait().expect("Bob exits");
    assert!(!status.success(), "killed: {status:?}");

    // The file is intact...
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    // ... and holds the call as it was when the process died.
    let store = Store::open(&db).expect("reopened after the kill");
    let records = store.recent(10).unwrap();
    assert_eq!(records.len(), 1, "{records:#?}");
    let r = &records[0];
    assert_eq!((r.call_id.as_str(), r.direction), (confirmed.call_id.as_str(), CallDirection::Incoming));
    assert_eq!(r.remote.user.as_deref(), Some("alice"));
    assert!(r.started_ms > 0 && r.answered_ms.is_some_and(|a| a >= r.started_ms), "{r:#?}");
    assert_eq!((r.ended_ms, &r.end, &r.stats), (None, &None, &None), "no end was ever written: {r:#?}");
    // It still takes notes.
    let note = Note { note: Some("cut off".into()), ..Default::default() };
    assert_eq!(store.note(&CallRef::CallId(r.call_id.clone()), &note, 1).unwrap(), 1);
    drop(store);

    call.hangup().await.unwrap();
    alice_log.wait_ended(call.key()).await;
    alice.stop().await.unwrap();
    remove_db();
}
