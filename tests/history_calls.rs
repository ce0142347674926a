//! Scenario: the call history through a real Kamailio. Alice runs the
//! Bizfly facade with a history; Bob, with a history of his own, calls her
//! with Bizfly's call-center id and an order id, sends DTMF once she
//! answered, and hangs up; then calls again and she rejects it (486).
//! Both histories hold both calls with what happened (direction, parties,
//! headers received and sent, the three timestamps, end cause, media
//! figures, digits); Alice's `histories` and `note` work in Bizfly's
//! shapes, and the records export as JSON and CSV.

mod support;

use serde_json::{Value, json};
use support::*;
use webphone::compat::bizfly::{BizflySdk, Listeners};
use webphone::history::{CallRecord, to_csv, to_json};
use webphone::{AudioSetup, CallDirection, CallOptions, DtmfMethod, DtmfOptions, Event, Mode, Originator, SendAudio};

fn temp_db(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("webphone-history-{name}-{}.sqlite", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_and_rejected_calls_are_recorded_on_both_sides() {
    let kamailio = start_kamailio();
    let (alice_db, bob_db) = (temp_db("alice"), temp_db("bob"));
    let (bob, mut bob_log) = registered_phone_with(&kamailio, "bob", BOB_PASSWORD, |b| b.history(&bob_db)).await;

    let (tx, mut registered) = tokio::sync::mpsc::unbounded_channel();
    let listeners = Listeners::new()
        .on("registered", move |_| {
            let _ = tx.send(());
        })
        .unwrap();
    let config = phone_config(&[kamailio.ws_url()], "alice", ALICE_PASSWORD)
        .allow_loopback(true)
        .ice_check_interval(std::time::Duration::from_millis(20))
        .history(&alice_db)
        .build()
        .unwrap();
    let (sdk, result) = BizflySdk::init(config, Mode::Active, listeners).await;
    assert_eq!(result.status, "success");
    tokio::time::timeout(TIMEOUT, registered.recv()).await.expect("registered in time");
    let alice = sdk.phone().clone();
    let mut alice_log = EventLog::new(alice.events());
    let empty = sdk.histories(None).await;
    assert_eq!((empty.status, &empty.data), ("success", &json!([])));

    // 1. Answered: Bob sends digits, then hangs up.
    let headers = vec![
        ("X-bizfly-call-center-call-id".to_string(), "cc-7".to_string()),
        ("X-Order-Id".to_string(), "66493f1afaa3".to_string()),
    ];
    let tone = AudioSetup { send: SendAudio::Tone { frequency_hz: 880.0, level_dbfs: -12.0 }, ..Default::default() };
    let b1 =
        bob.call("alice", CallOptions { headers: headers.clone(), audio: tone, ..Default::default() }).await.unwrap();
    let a1 = alice_log.wait_incoming().await;
    assert_eq!(sdk.answer_call().await.status, "success");
    alice_log.wait_confirmed(a1.key).await;
    bob_log.wait_confirmed(b1.key()).await;
    // Media flows both ways before the digits.
    wait_stats(&alice, a1.key, "audio at Alice", |s| s.decoded_frames >= 10).await;
    wait_stats(&bob, b1.key(), "audio at Bob", |s| s.decoded_frames >= 10).await;
    let rfc4733 = DtmfOptions { method: DtmfMethod::Rfc4733, ..Default::default() };
    b1.send_dtmf("12#", rfc4733).await.unwrap();
    for digit in ['1', '2', '#'] {
        alice_log.wait_for("a digit", |e| matches!(e, Event::DtmfReceived { digit: d, .. } if *d == digit)).await;
    }
    bob_log.wait_for("the last digit sent", |e| matches!(e, Event::DtmfSent { digit: '#', .. })).await;
    b1.hangup().await.unwrap();
    let a1_end = alice_log.wait_ended(a1.key).await;
    let b1_end = bob_log.wait_ended(b1.key()).await;

    // 2. Rejected.
    let b2 = bob.call("alice", CallOptions::default()).await.unwrap();
    let a2 = alice_log.wait_incoming().await;
    alice.reject(a2.key, 486).await.unwrap();
    alice_log.wait_ended(a2.key).await;
    bob_log.wait_ended(b2.key()).await;

    // Alice's history, newest first.
    let records = alice.history(10).await.unwrap();
    assert_eq!(records.len(), 2, "{records:#?}");
    let (rejected, answered) = (&records[0], &records[1]);

    assert_eq!((answered.call_id.as_str(), answered.direction), (a1.call_id.as_str(), CallDirection::Incoming));
    assert_eq!(answered.remote.user.as_deref(), Some("bob"));
    assert_eq!(answered.local.user.as_deref(), Some("alice"));
    for h in &headers {
        assert!(answered.headers.contains(h), "{h:?} in {:?}", answered.headers);
    }
    assert_eq!(answered.started_ms, a1_end.started_ms);
    assert_eq!(answered.answered_ms, a1_end.connected_ms);
    assert!(answered.answered_ms.is_some());
    assert_eq!(answered.ended_ms, a1_end.ended_ms);
    assert_eq!(answered.end.as_ref().map(|e| e.by), Some(Originator::Remote));
    assert_eq!(answered.dtmf_received, "12#");
    assert_eq!(answered.dtmf_sent, "");
    let stats = answered.stats.as_ref().expect("final media figures");
    assert!(stats["rx_packets"].as_u64().unwrap_or(0) > 0, "{stats:#}");

    assert_eq!(rejected.call_id, a2.call_id);
    assert_eq!(rejected.answered_ms, None);
    assert!(rejected.ended_ms.is_some());
    let end = rejected.end.clone().expect("end cause");
    assert_eq!((end.by, end.status), (Originator::Local, Some(486)));
    assert_eq!(rejected.stats, None, "never had media");

    // Bob's history: the same calls, outgoing, with what he sent.
    let bobs = bob.history(10).await.unwrap();
    assert_eq!(bobs.len(), 2, "{bobs:#?}");
    let (b_rejected, b_answered) = (&bobs[0], &bobs[1]);
    assert_eq!((b_answered.call_id.as_str(), b_answered.direction), (a1.call_id.as_str(), CallDirection::Outgoing));
    assert_eq!(b_answered.sent_headers, headers);
    assert_eq!(b_answered.dtmf_sent, "12#");
    assert_eq!((b_answered.answered_ms, b_answered.ended_ms), (b1_end.connected_ms, b1_end.ended_ms));
    assert_eq!(b_answered.end.as_ref().map(|e| e.by), Some(Originator::Local));
    let end = b_rejected.end.clone().expect("end cause");
    assert_eq!((end.by, end.status, b_rejected.answered_ms), (Originator::Remote, Some(486), None));

    // Bizfly: histories with the call-center id as callId, note by it.
    let result = sdk.histories(Some(1)).await;
    assert_eq!(result.status, "success");
    let items = result.data.as_array().expect("a list");
    assert_eq!(items.len(), 1, "limit 1");
    assert_eq!(items[0]["callId"], a2.call_id.as_str(), "no call-center id: the SIP Call-ID");
    let items = sdk.histories(None).await.data;
    assert_eq!(items[1]["callId"], "cc-7");
    assert_eq!(sdk.note("cc-7", &json!({ "note": "Note" })).await.status, "success");
    assert_eq!(sdk.note("cc-7", &json!({ "rate": 1, "report": "Good" })).await.status, "success");
    let by_item_id = items[0]["id"].as_i64().unwrap().to_string();
    assert_eq!(sdk.note(&by_item_id, &json!({ "note": "busy, call back" })).await.status, "success");
    let unknown = sdk.note("cc-nobody", &json!({ "note": "x" })).await;
    assert_eq!((unknown.status, unknown.data.clone()), ("error", Value::Null));
    assert!(unknown.error.is_some());
    let bad = sdk.note("cc-7", &json!({ "mood": "fine" })).await;
    assert_eq!(bad.status, "error");
    let items = sdk.histories(None).await.data;
    assert_eq!(
        (items[1]["note"].as_str(), items[1]["rate"].as_i64(), items[1]["report"].as_str()),
        (Some("Note"), Some(1), Some("Good"))
    );
    assert_eq!(items[0]["note"], "busy, call back");

    // Exports.
    let records: Vec<CallRecord> = alice.history(10).await.unwrap();
    let exported: Value = serde_json::from_str(&to_json(&records)).unwrap();
    assert_eq!(exported[1]["call_id"], a1.call_id.as_str());
    let csv = to_csv(&records);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains(&a1.call_id) && csv.contains("busy, call back"), "{csv}");

    assert_eq!(sdk.stop().await.status, "success");
    bob.stop().await.unwrap();
    // The file outlives the phone.
    let reopened = webphone::history::Store::open(&alice_db).unwrap().recent(10).unwrap();
    assert_eq!(reopened, records);
    for path in [alice_db, bob_db] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
