//! Regression: a call may ring longer than 64*T1 (32 s). RFC 3261
//! §17.1.1.2: timer B only fires in the INVITE client transaction's Calling
//! state; once a provisional response arrived (Proceeding), the caller waits
//! for the final response however long the callee rings. (The bug: the
//! caller ended every call still ringing after 32 s with 408 "no answer"
//! and sent no CANCEL, so the callee kept ringing and a late answer was
//! dropped.) Sans-IO, on fake time.

use std::time::{Duration, Instant};

use bytes::Bytes;
use webphone::dialog::auth::DigestClient;
use webphone::dialog::register::RegistrationConfig;
use webphone::dialog::transaction::{ClientAction, ClientState, ClientTransaction, Timers};
use webphone::dialog::{AgentConfig, AgentEvent, CallEvent, MediaRequest, Output, UserAgent};
use webphone::dialog::{CallRequest, CallSettings};
use webphone::sip::validate::response_to;
use webphone::sip::{HeaderName, Host, Message, NameAddr, Request, SipUri, StatusCode, Uri};

fn invite_fixture() -> Request {
    let raw = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bKabc\r\n\
               From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c\r\n\
               CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    match Message::parse_slice(raw.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("bad fixture: {other:?}"),
    }
}

#[test]
fn invite_transaction_timer_b_stops_at_the_first_provisional_response() {
    let t0 = Instant::now();
    let timers = Timers::default();

    // Nothing at all comes back: timer B fires at 64*T1.
    let mut silent = ClientTransaction::new(invite_fixture(), &timers, t0).expect("branch");
    assert_eq!(silent.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    assert!(silent.handle_timeout(t0 + Duration::from_secs(32)));

    // 180 Ringing: Proceeding, no timer; the 200 after a minute is delivered.
    let mut tx = ClientTransaction::new(invite_fixture(), &timers, t0).expect("branch");
    let ringing = response_to(tx.request(), StatusCode::RINGING);
    assert_eq!(tx.handle_response(&ringing, t0 + Duration::from_secs(1)), ClientAction::Deliver);
    assert_eq!(tx.state(), ClientState::Proceeding);
    assert_eq!(tx.poll_timeout(), None, "no timer B in Proceeding");
    assert!(!tx.handle_timeout(t0 + Duration::from_secs(60)));
    let ok = response_to(tx.request(), StatusCode::OK);
    assert_eq!(tx.handle_response(&ok, t0 + Duration::from_secs(61)), ClientAction::Deliver);
    assert!(tx.is_terminated());
}

fn alice() -> UserAgent {
    let domain = Host::Domain("example.com".into());
    let mut contact = SipUri::new(Some("alice"), Host::Domain("alicehost.invalid".into()));
    contact.params.set("transport", Some("ws".into()));
    let registration = RegistrationConfig {
        registrar: Uri::Sip(SipUri::new(None, domain.clone())),
        aor: Uri::Sip(SipUri::new(Some("alice"), domain)),
        display_name: None,
        contact: NameAddr::new(Uri::Sip(contact)),
        expires: 600,
        retry_min: Duration::from_secs(1),
        retry_max: Duration::from_secs(60),
        on_permanent_failure: webphone::PermanentFailurePolicy::Stop,
    };
    let cfg = AgentConfig {
        via_transport: "WS",
        via_host: "alicehost.invalid".into(),
        user_agent: "test".into(),
        timers: Timers::default(),
        seed: Some(7),
        calls: CallSettings { session_expires: None, ..Default::default() },
    };
    UserAgent::new(cfg, registration, DigestClient::new("alice", "pw"))
}

/// Drains the agent: (transmitted messages, call events, media requests).
fn drain(ua: &mut UserAgent) -> (Vec<Message>, Vec<CallEvent>, Vec<MediaRequest>) {
    let (mut wire, mut events, mut media) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(out) = ua.poll_output() {
        match out {
            Output::Transmit(b) => wire.push(Message::parse(b).expect("parseable")),
            Output::Event(AgentEvent::Call(e)) => events.push(e),
            Output::Event(_) => {}
            Output::Media(m) => media.push(m),
            other => panic!("unexpected output {other:?}"),
        }
    }
    (wire, events, media)
}

#[test]
fn a_call_ringing_for_a_minute_is_still_up_and_can_be_answered() {
    let t0 = Instant::now();
    let mut ua = alice();
    ua.handle_connected(t0, "WS");
    let key = ua.call(CallRequest { target: "bob".into(), ..Default::default() }, t0).expect("call");
    ua.handle_local_sdp(key, Ok(Bytes::from_static(b"v=0 offer")), t0);
    let (wire, _, _) = drain(&mut ua);
    let invite = wire
        .into_iter()
        .find_map(|m| match m {
            Message::Request(r) if r.method == webphone::sip::Method::Invite => Some(r),
            _ => None,
        })
        .expect("INVITE sent");

    let with_tag = |status| {
        let mut r = response_to(&invite, status);
        let to = r.headers.get(&HeaderName::To).expect("To").to_string();
        r.headers.set(HeaderName::To, format!("{to};tag=bobtag"));
        r.headers.push(HeaderName::Contact, "<sip:bob@bobhost.invalid;transport=ws>");
        r
    };
    ua.handle_message(with_tag(StatusCode::RINGING).to_bytes(), t0 + Duration::from_millis(50));
    drain(&mut ua);

    // Bob rings for a minute; the caller's timers run all that time.
    let mut now = t0;
    while now < t0 + Duration::from_secs(60) {
        now = ua.poll_timeout().filter(|t| *t <= t0 + Duration::from_secs(60)).unwrap_or(t0 + Duration::from_secs(60));
        ua.handle_timeout(now);
        let (wire, events, _) = drain(&mut ua);
        assert!(
            !events.iter().any(|e| matches!(e, CallEvent::Ended(_))),
            "the call ended while ringing at {:?}: {events:#?}",
            now - t0
        );
        assert!(wire.is_empty(), "nothing to send while ringing, at {:?}: {wire:#?}", now - t0);
    }

    let mut ok = with_tag(StatusCode::OK);
    ok.headers.push(HeaderName::ContentType, "application/sdp");
    ok.body = Bytes::from_static(b"v=0 answer");
    ua.handle_message(ok.to_bytes(), now);
    let (wire, events, _) = drain(&mut ua);
    assert!(events.iter().any(|e| matches!(e, CallEvent::Confirmed(_))), "{events:#?}");
    assert!(
        wire.iter().any(|m| matches!(m, Message::Request(r) if r.method == webphone::sip::Method::Ack)),
        "the late 200 is ACKed: {wire:#?}"
    );
}
