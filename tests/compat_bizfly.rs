//! Scenario: the Bizfly SDK's documented flow (seed 004) through
//! `compat::bizfly`, against Kamailio with real media. Alice runs the SDK
//! with listeners; Bob calls her with Bizfly's call-center id header; she
//! answers, checks `ping`, holds and unholds, then transfers the call to
//! Carol from line 1 (blind). The listener names, their order, the data
//! they get (`callId` from the header) and the `{status, error, data}`
//! results are checked.

mod support;

use serde_json::Value;
use support::*;
use webphone::compat::bizfly::{BizflySdk, Listeners};
use webphone::{AudioSetup, CallOptions, Event, Mode, SendAudio};

const CAROL_PASSWORD: &str = "carol-Secret-91d0";

fn tone(hz: f64) -> AudioSetup {
    AudioSetup { send: SendAudio::Tone { frequency_hz: hz, level_dbfs: -12.0 }, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_flow_through_the_facade() {
    let kamailio = start_kamailio_with_users(&[("carol", CAROL_PASSWORD)]);
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;
    let (carol, mut carol_log) = registered_phone(&kamailio, "carol", CAROL_PASSWORD).await;

    let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel::<(&'static str, Value)>();
    let mut listeners = Listeners::new();
    for name in ["registered", "callIncoming", "callConfirmed", "callEnded", "referAccepted", "referFailed"] {
        let tx = tx.clone();
        listeners = listeners.on(name, move |data| drop(tx.send((name, data.clone())))).expect("a Bizfly name");
    }
    assert!(Listeners::new().on("callEnd", |_| {}).is_err(), "a misspelt listener is refused");
    let config = phone_config(&[kamailio.ws_url()], "alice", ALICE_PASSWORD)
        .allow_loopback(true)
        .ice_check_interval(std::time::Duration::from_millis(20))
        .build()
        .unwrap();
    let (sdk, result) = BizflySdk::init(config, Mode::Active, listeners).await;
    assert_eq!((result.status, &result.error), ("success", &None));
    let mut next = async || {
        tokio::time::timeout(TIMEOUT, heard.recv()).await.expect("a listener call in time").expect("listening")
    };
    assert_eq!(next().await.0, "registered");
    assert!(sdk.is_registered() && sdk.is_connected());

    // Nothing rings: the SDK's error shape.
    let refused = sdk.answer_call().await;
    assert_eq!(refused.status, "error");
    assert!(refused.error.is_some() && refused.data.is_null());

    // Bob calls with the call center's id.
    let headers = vec![("X-bizfly-call-center-call-id".to_string(), "cc-42".to_string())];
    let b = bob.call("alice", CallOptions { headers, audio: tone(880.0), ..Default::default() }).await.unwrap().key();
    let (name, data) = next().await;
    assert_eq!(name, "callIncoming");
    assert_eq!(data["callId"], "cc-42", "{data:#}");
    assert_eq!(data["direction"], "incoming");
    assert_eq!(sdk.answer_call().await.status, "success");
    let (name, data) = next().await;
    assert_eq!((name, data["callId"].as_str()), ("callConfirmed", Some("cc-42")));
    bob_log.wait_confirmed(b).await;

    let ping = sdk.ping().await;
    assert_eq!(ping["line1"]["state"], "connected", "{ping:#}");
    assert!(ping["line2"].is_null());
    assert_eq!(sdk.current_line().await, Some(1));

    // Hold and unhold on the current line.
    let mut alice_events = sdk.phone().events();
    assert_eq!(sdk.hold().await.status, "success");
    while !matches!(alice_events.recv().await, Some(Event::CallHeld { .. })) {}
    assert!(sdk.is_on_hold().await);
    assert_eq!(sdk.unhold().await.status, "success");
    while !matches!(alice_events.recv().await, Some(Event::CallResumed { .. })) {}
    assert!(!sdk.is_on_hold().await);
    assert_eq!(sdk.mute().await.status, "success");
    assert!(sdk.is_muted().await);

    // transferCall on line 1: blind, to Carol.
    assert_eq!(sdk.transfer_call(Some("carol")).await.status, "success");
    let c = carol_log.wait_incoming().await.key;
    carol.answer_with(c, tone(660.0)).await.unwrap();
    let (name, data) = next().await;
    assert_eq!((name, data["callId"].as_str()), ("referAccepted", Some("cc-42")));
    let (name, data) = next().await;
    assert_eq!((name, data["callId"].as_str()), ("callEnded", Some("cc-42")));
    assert_eq!(data["cause"]["reason"], "transferred");
    assert!(sdk.ping().await["line1"].is_null());
    assert_eq!(sdk.current_mode().await, Mode::Active);
    assert_eq!(sdk.set_mode(Mode::Outgoing).await.status, "success");
    assert_eq!(sdk.current_mode().await, Mode::Outgoing);

    let new = bob_log
        .wait_for("Bob's call from the transfer", |e| matches!(e, Event::CallConfirmed { call } if call.key != b))
        .await;
    let Event::CallConfirmed { call } = new else { unreachable!() };
    bob.hangup(call.key).await.unwrap();
    carol_log.wait_ended(c).await;
    assert_eq!(sdk.stop().await.status, "success");
    bob.stop().await.unwrap();
    carol.stop().await.unwrap();
}
