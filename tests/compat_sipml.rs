//! Scenario: SIPml5's documented flow through `compat::sipml`, against
//! Kamailio with real media. Alice runs a SIPml5 `Stack` with a `register`
//! session and `call-audio` sessions; Bob and Carol are plain phones.
//! Alice calls Bob (tones both ways, measured), holds and resumes, is held
//! by Bob, gets his INFO digit, then transfers him to Carol (blind). Bob
//! calls her back: `i_new_call`, she accepts; Bob transfers her to Carol:
//! `i_ect_requested`, she accepts the transfer and follows the new call's
//! session from `i_ect_new_call`. A third call she rejects. Then she
//! unregisters and stops. Each object's event types, their order, codes
//! and data are checked.

mod support;

use std::time::Duration;

use support::*;
use webphone::compat::sipml::{EventsListener, Session, SipmlEvent, Stack, StackConfig};
use webphone::{AudioSetup, CallOptions, DtmfMethod, DtmfOptions, Event, SendAudio};

const CAROL_PASSWORD: &str = "carol-Secret-91d0";

fn tone(hz: f64) -> AudioSetup {
    AudioSetup { send: SendAudio::Tone { frequency_hz: hz, level_dbfs: -12.0 }, ..Default::default() }
}

/// One SIPml5 object's events, as its listener got them.
struct Heard(tokio::sync::mpsc::UnboundedReceiver<SipmlEvent>);

fn listener() -> (EventsListener, Heard) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (EventsListener::all(move |e| drop(tx.send(e.clone()))), Heard(rx))
}

impl Heard {
    async fn next(&mut self) -> SipmlEvent {
        tokio::time::timeout(TIMEOUT, self.0.recv()).await.expect("a SIPml5 event in time").expect("listening")
    }

    /// The next event, which must be of type `kind`.
    async fn expect(&mut self, kind: &str) -> SipmlEvent {
        let e = self.next().await;
        assert_eq!(e.kind, kind, "{e:#?}");
        e
    }

    /// The events up to and including the first of type `kind`.
    async fn until(&mut self, kind: &str) -> Vec<SipmlEvent> {
        let mut seen = Vec::new();
        loop {
            let e = self.next().await;
            let done = e.kind == kind;
            seen.push(e);
            if done {
                return seen;
            }
        }
    }
}

fn kinds(events: &[SipmlEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_flow_through_the_stack_and_sessions() {
    let kamailio = start_kamailio_with_users(&[("carol", CAROL_PASSWORD)]);
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;
    let (carol, mut carol_log) = registered_phone(&kamailio, "carol", CAROL_PASSWORD).await;

    let config = StackConfig {
        realm: DOMAIN.into(),
        impi: "alice".into(),
        impu: format!("sip:alice@{DOMAIN}"),
        password: ALICE_PASSWORD.into(),
        display_name: Some("Alice".into()),
        websocket_proxy_url: kamailio.ws_url(),
    };
    let config = config.builder().unwrap().allow_loopback(true).ice_check_interval(Duration::from_millis(20));
    let (on_stack, mut stack_heard) = listener();
    let stack = Stack::new(config.build().unwrap(), on_stack);
    assert!(EventsListener::only(&["conected"], |_| {}).is_err(), "a misspelt event type is refused");
    assert!(stack.new_session("call-audiovideo", listener().0).is_err(), "audio only");

    stack.start().unwrap();
    stack_heard.expect("starting").await;
    stack_heard.expect("started").await;
    assert!(!stack.phone().is_registered(), "SIPml5 registers only when a register session asks");
    let (on_register, mut register_heard) = listener();
    let registration = stack.new_session("register", on_register).unwrap();
    registration.register().await.unwrap();
    register_heard.expect("connecting").await;
    assert_eq!(register_heard.expect("connected").await.code, Some(200));

    // call-audio to Bob.
    let (on_call, mut call_heard) = listener();
    let call = stack.new_session("call-audio", on_call).unwrap();
    call.call("bob", tone(440.0)).await.unwrap();
    let key = call.id().expect("the session's call");
    let b = bob_log.wait_incoming().await.key;
    bob.answer_with(b, tone(880.0)).await.unwrap();
    let connecting = call_heard.expect("connecting").await;
    assert_eq!((connecting.session, connecting.data["call"]["direction"].as_str()), (Some(key), Some("outgoing")));
    let ringing = call_heard.expect("i_ao_request").await;
    assert_eq!(ringing.code, Some(180), "{ringing:#?}");
    assert_eq!(call_heard.expect("connected").await.code, Some(200));
    wait_stats(stack.phone(), key, "Bob's 880 Hz at Alice", |s| {
        s.rx_dominant_hz.is_some_and(|f| (f - 880.0).abs() < 10.0)
    })
    .await;
    wait_stats(&bob, b, "Alice's 440 Hz at Bob", |s| s.rx_dominant_hz.is_some_and(|f| (f - 440.0).abs() < 10.0)).await;

    // Hold and resume, ours and Bob's.
    call.hold().await.unwrap();
    call_heard.expect("m_local_hold_ok").await;
    call.resume().await.unwrap();
    call_heard.expect("m_local_resume_ok").await;
    bob.hold(b).await.unwrap();
    call_heard.expect("m_remote_hold").await;
    bob.resume(b).await.unwrap();
    call_heard.expect("m_remote_resume").await;

    // DTMF: Bob's by SIP INFO is `i_info`; ours reaches Bob.
    let info = DtmfOptions { method: DtmfMethod::Info, ..Default::default() };
    bob.send_dtmf(b, "5", info).await.unwrap();
    let e = call_heard.expect("i_info").await;
    assert_eq!(e.data["digit"], "5", "{e:#?}");
    call.dtmf('7').await.unwrap();
    bob_log.wait_for("Alice's 7", |e| matches!(e, Event::DtmfReceived { digit: '7', .. })).await;

    // Blind transfer of Bob to Carol.
    call.transfer("carol").await.unwrap();
    let c = carol_log.wait_incoming().await.key;
    carol.answer_with(c, tone(660.0)).await.unwrap();
    let ect = call_heard.until("terminated").await;
    // Bob holds us while he calls Carol (his other line): m_remote_hold may come in between.
    let ect_kinds: Vec<_> = kinds(&ect).into_iter().filter(|k| *k != "m_remote_hold").collect();
    assert_eq!(&ect_kinds[..2], ["o_ect_trying", "o_ect_accepted"], "{ect:#?}");
    let completed = ect_kinds.iter().position(|k| *k == "o_ect_completed").expect("o_ect_completed");
    assert!(ect_kinds[2..completed].iter().all(|k| *k == "o_ect_notify"), "{ect_kinds:?}");
    assert_eq!(&ect_kinds[completed..], ["o_ect_completed", "terminated"], "{ect_kinds:?}");
    assert_eq!(ect.last().unwrap().description, "transferred");
    let new =
        bob_log.wait_for("Bob's call to Carol", |e| matches!(e, Event::CallConfirmed { call } if call.key != b)).await;
    let Event::CallConfirmed { call: bob_to_carol } = new else { unreachable!() };
    bob.hangup(bob_to_carol.key).await.unwrap();
    carol_log.wait_ended(c).await;

    // Bob calls Alice: i_new_call; she accepts.
    let b2 = bob.call("alice", CallOptions { audio: tone(880.0), ..Default::default() }).await.unwrap().key();
    let e = stack_heard.expect("i_new_call").await;
    assert_eq!(e.data["call"]["remote"]["user"], "bob", "{e:#?}");
    let incoming: Session = e.new_session.expect("e.newSession");
    let (on_incoming, mut incoming_heard) = listener();
    incoming.set_listener(on_incoming);
    incoming.accept(tone(440.0)).await.unwrap();
    incoming_heard.expect("connecting").await;
    incoming_heard.expect("connected").await;
    bob_log.wait_confirmed(b2).await;

    // Bob transfers her to Carol: she is asked, accepts, follows the new call.
    bob.transfer(b2, "carol").await.unwrap();
    let e = incoming_heard.expect("i_ect_requested").await;
    assert!(e.data["target"].as_str().is_some_and(|t| t.contains("carol")), "{e:#?}");
    incoming.accept_transfer(tone(440.0)).await.unwrap();
    let e = incoming_heard.expect("i_ect_new_call").await;
    let to_carol = e.new_session.expect("the new call's session");
    let (on_new, mut new_heard) = listener();
    to_carol.set_listener(on_new);
    let c2 = carol_log.wait_incoming().await.key;
    carol.answer_with(c2, tone(660.0)).await.unwrap();
    new_heard.expect("connecting").await;
    let progress = new_heard.until("connected").await;
    assert!(kinds(&progress).iter().all(|k| ["i_ao_request", "connected"].contains(k)), "{progress:#?}");
    // She holds Bob while she calls Carol (her other line): m_local_hold_ok may come in between.
    let old: Vec<_> =
        kinds(&incoming_heard.until("terminated").await).into_iter().filter(|k| *k != "m_local_hold_ok").collect();
    assert_eq!(old, ["i_ect_completed", "terminated"]);
    wait_stats(stack.phone(), to_carol.id().unwrap(), "Carol's 660 Hz", |s| {
        s.rx_dominant_hz.is_some_and(|f| (f - 660.0).abs() < 10.0)
    })
    .await;
    to_carol.hangup().await.unwrap();
    new_heard.expect("terminating").await;
    new_heard.expect("terminated").await;
    carol_log.wait_ended(c2).await;

    // A call she rejects: 603.
    let b3 = bob.call("alice", CallOptions::default()).await.unwrap().key();
    let rejected = stack_heard.expect("i_new_call").await.new_session.unwrap();
    rejected.reject().await.unwrap();
    let ended = bob_log.wait_ended(b3).await;
    assert_eq!(ended.end.and_then(|e| e.status), Some(603));

    registration.unregister().await.unwrap();
    register_heard.expect("terminating").await;
    register_heard.expect("terminated").await;
    stack.stop().await.unwrap();
    stack_heard.expect("stopping").await;
    stack_heard.expect("stopped").await;
    // SIPml5 stacks start again after a stop.
    stack.start().unwrap();
    stack_heard.expect("starting").await;
    stack_heard.expect("started").await;
    assert!(stack.start().is_err(), "already running");
    stack.stop().await.unwrap();
    stack_heard.expect("stopping").await;
    stack_heard.expect("stopped").await;
    bob.stop().await.unwrap();
    carol.stop().await.unwrap();
}
