//! Call scenarios on the sans-IO core: two `UserAgent`s behind the in-memory
//! proxy of `support/sip_net.rs`, a fake media side that answers SDP
//! requests at once, and a fake clock. No sockets, no sleeping.

#[path = "support/sip_net.rs"]
mod sip_net;

use std::time::Duration;

use bytes::Bytes;
use sip_net::{CallSettings, Net, Party};
use webphone::CallRequest;
use webphone::MediaDirection;
use webphone::dialog::{CallEvent, MediaRequest};
use webphone::sip::validate::response_to;
use webphone::sip::{HeaderName, Message, Method, StatusCode};
use webphone::{CallDirection, Originator};

/// The caller, alice.
const A: Party = Party(0);
/// The callee, bob.
const B: Party = Party(1);

/// Alice and bob behind the proxy.
fn pair(a: CallSettings, b: CallSettings) -> Net {
    Net::new(vec![("alice", a), ("bob", b)])
}

fn no_timer() -> CallSettings {
    CallSettings { session_expires: None, ..Default::default() }
}

#[test]
fn call_answer_hangup() {
    let mut net = pair(no_timer(), no_timer());
    let a_key = net.call(A, "bob");
    assert!(matches!(net.events[0], (A, CallEvent::Outgoing(_))));
    let b_key = net.incoming(B);
    assert_eq!(net.statuses(B), vec![100, 180]);
    assert!(
        net.events
            .iter()
            .any(|(s, e)| *s == A && matches!(e, CallEvent::Progress { status: 180, early_media: false, .. }))
    );

    let invite = net.requests(A, Method::Invite)[0].clone();
    assert_eq!(invite.uri.to_string(), "sip:bob@example.com");
    assert_eq!(invite.headers.get(&HeaderName::ContentType), Some("application/sdp"));
    assert_eq!(&invite.body[..], b"v=0 offer from A");

    let now = net.now;
    net.ua(B).answer(b_key, now).unwrap();
    net.drive();
    assert!(net.media.contains(&(
        B,
        MediaRequest::Answer {
            call: b_key,
            offer: Bytes::from_static(b"v=0 offer from A"),
            direction: MediaDirection::SendRecv
        }
    )));
    assert!(
        net.media.contains(&(
            A,
            MediaRequest::ApplyAnswer { call: a_key, answer: Bytes::from_static(b"v=0 answer from B") }
        ))
    );
    assert!(net.confirmed(A) && net.confirmed(B));
    assert_eq!(net.requests(A, Method::Ack).len(), 1);
    // The ACK goes to the Contact of the 200 and carries both tags.
    let ack = net.requests(A, Method::Ack)[0];
    assert_eq!(ack.uri.to_string(), "sip:bob@bobhost.invalid;transport=ws");
    assert!(ack.headers.get(&HeaderName::To).unwrap().contains(";tag="));

    net.run_for(Duration::from_secs(5));
    let now = net.now;
    net.ua(A).hangup(a_key, now).unwrap();
    net.drive();
    let bye = net.requests(A, Method::Bye)[0];
    assert_eq!(bye.uri.to_string(), "sip:bob@bobhost.invalid;transport=ws");
    assert_eq!(bye.headers.get(&HeaderName::Route), Some(sip_net::PROXY_RECORD_ROUTE), "via the proxy");
    let a_end = net.ended(A).unwrap().clone();
    let b_end = net.ended(B).unwrap().clone();
    assert_eq!(a_end.end.as_ref().unwrap().by, Originator::Local);
    assert_eq!(b_end.end.as_ref().unwrap().by, Originator::Remote);
    assert_eq!(b_end.direction, CallDirection::Incoming);
    assert_eq!(a_end.connected.unwrap() - a_end.started, Duration::ZERO);
    assert_eq!(a_end.ended.unwrap() - a_end.connected.unwrap(), Duration::from_secs(5));
    assert!(net.media.contains(&(A, MediaRequest::Close { call: a_key })));
    assert!(net.media.contains(&(B, MediaRequest::Close { call: b_key })));
    assert_eq!(net.statuses(B).last(), Some(&200), "BYE answered");
    assert!(net.ua(A).call_keys().is_empty() && net.ua(B).call_keys().is_empty());
}

#[test]
fn callee_rejects_busy() {
    let mut net = pair(no_timer(), no_timer());
    net.call(A, "bob");
    let b_key = net.incoming(B);
    let now = net.now;
    net.ua(B).reject(b_key, StatusCode::BUSY_HERE, now).unwrap();
    net.drive();
    let end = net.ended(A).unwrap().end.clone().unwrap();
    assert_eq!((end.by, end.status), (Originator::Remote, Some(486)));
    assert_eq!(net.ended(B).unwrap().end.as_ref().unwrap().by, Originator::Local);
    assert_eq!(net.requests(A, Method::Ack).len(), 1, "the INVITE transaction ACKs the 486");
    net.run_for(Duration::from_secs(60));
    assert!(net.ua(B).poll_timeout().is_none(), "timer H stopped by the ACK");
}

#[test]
fn caller_cancels_while_ringing() {
    let mut net = pair(no_timer(), no_timer());
    let a_key = net.call(A, "bob");
    net.incoming(B);
    let now = net.now;
    net.ua(A).hangup(a_key, now).unwrap();
    net.drive();
    let cancel = net.requests(A, Method::Cancel)[0];
    let invite = net.requests(A, Method::Invite)[0];
    assert_eq!(
        cancel.headers.get(&HeaderName::Via),
        invite.headers.get(&HeaderName::Via),
        "CANCEL reuses the INVITE's Via"
    );
    assert!(net.statuses(B).contains(&487));
    let a_end = net.ended(A).unwrap().end.clone().unwrap();
    let b_end = net.ended(B).unwrap().end.clone().unwrap();
    assert_eq!((a_end.by, a_end.status), (Originator::Local, Some(487)));
    assert_eq!((b_end.by, b_end.status), (Originator::Remote, Some(487)));
}

#[test]
fn hangup_before_any_provisional_sends_cancel_after_the_first() {
    let mut net = pair(no_timer(), no_timer());
    // B's 100 and 180 are lost for now.
    net.drop_from = Some((B, |m| matches!(m, Message::Response(r) if r.status.is_provisional())));
    let a_key = net.call(A, "bob");
    let now = net.now;
    net.ua(A).hangup(a_key, now).unwrap();
    net.drive();
    assert!(net.requests(A, Method::Cancel).is_empty(), "no CANCEL before a provisional response");
    net.drop_from = None;
    // B rings again (a new 180 would come with any retransmission; here the app re-signals).
    let b_key = net.incoming(B);
    let invite = net.requests(A, Method::Invite)[0].clone();
    let mut ringing = response_to(&invite, StatusCode::RINGING);
    ringing.headers.set(HeaderName::To, format!("{};tag=x", invite.headers.get(&HeaderName::To).unwrap()));
    let now = net.now;
    net.ua(A).handle_message(ringing.to_bytes(), now);
    net.drive();
    assert_eq!(net.requests(A, Method::Cancel).len(), 1);
    assert!(net.ended(B).is_some_and(|c| c.key == b_key));
    assert_eq!(net.ended(A).unwrap().end.as_ref().unwrap().status, Some(487));
}

#[test]
fn callee_hangs_up_first() {
    let mut net = pair(no_timer(), no_timer());
    net.call(A, "bob");
    let b_key = net.incoming(B);
    let now = net.now;
    net.ua(B).answer(b_key, now).unwrap();
    net.drive();
    let now = net.now;
    net.ua(B).hangup(b_key, now).unwrap();
    net.drive();
    let bye = net.requests(B, Method::Bye)[0];
    assert_eq!(bye.uri.to_string(), "sip:alice@alicehost.invalid;transport=ws", "to A's Contact");
    assert_eq!(net.ended(A).unwrap().end.as_ref().unwrap().by, Originator::Remote);
    assert_eq!(net.ended(B).unwrap().end.as_ref().unwrap().by, Originator::Local);
}

#[test]
fn proxy_challenge_is_answered_with_credentials() {
    let mut net = pair(no_timer(), no_timer());
    // The first INVITE is "answered by a proxy" with 407 instead of reaching B.
    net.drop_from = Some((A, |m| matches!(m, Message::Request(r) if r.method == Method::Invite)));
    let a_key = net.call(A, "bob");
    net.drop_from = None;
    let first = net.requests(A, Method::Invite)[0].clone();
    let mut challenge = response_to(&first, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    challenge.headers.set(HeaderName::To, format!("{};tag=proxy", first.headers.get(&HeaderName::To).unwrap()));
    challenge.headers.push(HeaderName::ProxyAuthenticate, "Digest realm=\"example.com\", nonce=\"n1\", qop=\"auth\"");
    let now = net.now;
    net.ua(A).handle_message(challenge.to_bytes(), now);
    net.drive();
    let invites = net.requests(A, Method::Invite);
    assert_eq!(invites.len(), 2);
    let ack = net.requests(A, Method::Ack)[0];
    assert_eq!(ack.headers.get(&HeaderName::Via), first.headers.get(&HeaderName::Via), "407 ACKed in its transaction");
    let second = invites[1];
    assert_eq!(second.headers.get(&HeaderName::CSeq), Some("2 INVITE"));
    assert_eq!(second.headers.get(&HeaderName::CallId), first.headers.get(&HeaderName::CallId));
    assert_eq!(second.headers.get(&HeaderName::From), first.headers.get(&HeaderName::From), "same From tag");
    assert_ne!(second.headers.get(&HeaderName::Via), first.headers.get(&HeaderName::Via), "new branch");
    let auth = second.headers.get(&HeaderName::ProxyAuthorization).expect("credentials");
    assert!(auth.contains("nonce=\"n1\"") && auth.contains("uri=\"sip:bob@example.com\""), "{auth}");
    // The authenticated INVITE reached B; answering completes the call.
    let b_key = net.incoming(B);
    let now = net.now;
    net.ua(B).answer(b_key, now).unwrap();
    net.drive();
    assert!(net.confirmed(A));
    // A second challenge for the same call is not answered again.
    assert!(net.ua(A).call_snapshot(a_key).is_some());
}

#[test]
fn late_offer_is_answered_with_an_offer_and_the_ack_carries_the_answer() {
    let mut net = pair(no_timer(), no_timer());
    let invite = "INVITE sip:bob@bobhost.invalid;transport=ws SIP/2.0\r\n\
        Via: SIP/2.0/WS 127.0.0.1:5080;branch=z9hG4bKlate1\r\n\
        From: \"Carol\" <sip:carol@example.com>;tag=c1\r\nTo: <sip:bob@example.com>\r\n\
        Call-ID: late-offer-1\r\nCSeq: 10 INVITE\r\nContact: <sip:carol@10.0.0.9;transport=ws>\r\n\
        Record-Route: <sip:127.0.0.1:5080;transport=ws;lr>\r\nX-Order-Id: 42\r\nContent-Length: 0\r\n\r\n";
    let now = net.now;
    net.ua(B).handle_message(Bytes::from_static(invite.as_bytes()), now);
    net.drive();
    let incoming = net.events.iter().find_map(|(_, e)| match e {
        CallEvent::Incoming(c) => Some(c.clone()),
        _ => None,
    });
    let incoming = incoming.expect("incoming");
    assert_eq!(incoming.remote.display_name.as_deref(), Some("Carol"));
    assert_eq!(incoming.headers, vec![("X-Order-Id".to_string(), "42".to_string())]);
    net.ua(B).answer(incoming.key, now).unwrap();
    // The 200 goes to the proxy, which cannot route it (Carol is not on the net): fine.
    net.drive();
    assert!(net.media.contains(&(B, MediaRequest::Offer { call: incoming.key, direction: MediaDirection::SendRecv })));
    let ok = net.wire.iter().rev().find_map(|(s, m)| match m {
        Message::Response(r) if *s == B && r.status.as_u16() == 200 => Some(r.clone()),
        _ => None,
    });
    let ok = ok.expect("200 OK");
    assert_eq!(&ok.body[..], b"v=0 offer from B");
    assert_eq!(ok.headers.get(&HeaderName::RecordRoute), Some("<sip:127.0.0.1:5080;transport=ws;lr>"));
    let ack = "ACK sip:bob@bobhost.invalid;transport=ws SIP/2.0\r\nVia: SIP/2.0/WS 127.0.0.1:5080;branch=z9hG4bKlate2\r\n\
        From: \"Carol\" <sip:carol@example.com>;tag=c1\r\nTo: <sip:bob@example.com>;tag=TAG\r\nCall-ID: late-offer-1\r\n\
        CSeq: 10 ACK\r\nContent-Type: application/sdp\r\nContent-Length: 13\r\n\r\nv=0 answer C\n";
    let to_tag =
        webphone::sip::NameAddr::parse(ok.headers.get(&HeaderName::To).unwrap()).unwrap().tag().unwrap().to_string();
    let now = net.now;
    net.ua(B).handle_message(Bytes::from(ack.replace("TAG", &to_tag)), now);
    net.drive();
    assert!(net.confirmed(B));
    assert!(net.media.contains(&(
        B,
        MediaRequest::ApplyAnswer { call: incoming.key, answer: Bytes::from_static(b"v=0 answer C\n") }
    )));
}

#[test]
fn session_timer_refreshes_and_expires() {
    let settings = CallSettings { session_expires: Some(90), ..Default::default() };
    let mut net = pair(settings.clone(), settings);
    net.call(A, "bob");
    let b_key = net.incoming(B);
    let now = net.now;
    net.ua(B).answer(b_key, now).unwrap();
    net.drive();
    let ok = net.wire.iter().find_map(|(s, m)| match m {
        Message::Response(r) if *s == B && r.status.as_u16() == 200 => Some(r.clone()),
        _ => None,
    });
    assert_eq!(ok.unwrap().headers.get(&HeaderName::SessionExpires), Some("90;refresher=uac"));
    // A (the refresher) refreshes at half the interval with UPDATE (B allows it).
    net.run_for(Duration::from_secs(44));
    assert!(net.requests(A, Method::Update).is_empty());
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.requests(A, Method::Update).len(), 1);
    net.run_for(Duration::from_secs(45));
    assert_eq!(net.requests(A, Method::Update).len(), 2);
    assert!(net.ended(B).is_none(), "refreshed sessions stay up");
    // A stops refreshing (its UPDATEs are lost): B gives up at 90 - 30 s after the last refresh.
    net.drop_from = Some((A, |m| matches!(m, Message::Request(r) if r.method == Method::Update)));
    net.run_for(Duration::from_secs(59));
    assert!(net.ended(B).is_none());
    net.run_for(Duration::from_secs(2));
    let end = net.ended(B).expect("B ended the call").end.clone().unwrap();
    assert_eq!((end.by, end.reason.as_str()), (Originator::System, "session timer expired"));
    assert_eq!(net.ended(A).unwrap().end.as_ref().unwrap().by, Originator::Remote, "A got B's BYE");
}

#[test]
fn missing_ack_ends_the_call_after_64_t1() {
    let mut net = pair(no_timer(), no_timer());
    net.drop_from = Some((A, |m| matches!(m, Message::Request(r) if r.method == Method::Ack)));
    net.call(A, "bob");
    let b_key = net.incoming(B);
    let now = net.now;
    net.ua(B).answer(b_key, now).unwrap();
    net.drive();
    net.run_for(Duration::from_secs(31));
    assert!(net.ended(B).is_none());
    net.run_for(Duration::from_secs(2));
    let end = net.ended(B).unwrap().end.clone().unwrap();
    assert_eq!(end.by, Originator::System);
    assert_eq!(net.requests(B, Method::Bye).len(), 1);
}

#[test]
fn lines_are_limited_and_extra_calls_get_486() {
    let mut net = pair(no_timer(), CallSettings { max_calls: 1, session_expires: None, ..Default::default() });
    net.call(A, "bob");
    net.call(A, "bob");
    assert_eq!(net.statuses(B).iter().filter(|s| **s == 486).count(), 1);
    let ended = net.ended(A).unwrap().end.clone().unwrap();
    assert_eq!(ended.status, Some(486));
}

#[test]
fn auto_answer_after_delay() {
    let mut net = pair(
        no_timer(),
        CallSettings { auto_answer: Some(Duration::from_secs(2)), session_expires: None, ..Default::default() },
    );
    net.call(A, "bob");
    net.run_for(Duration::from_millis(1999));
    assert!(!net.confirmed(B));
    net.run_for(Duration::from_millis(1));
    assert!(net.confirmed(A) && net.confirmed(B));
}

#[test]
fn custom_headers_and_display_name_travel_on_the_invite() {
    let mut net = pair(no_timer(), no_timer());
    let now = net.now;
    net.ua(A)
        .call(
            CallRequest {
                target: "sip:bob@example.com".into(),
                display_name: Some("Sales Desk".into()),
                headers: vec![("X-Order-Id".into(), "A-1001".into()), ("X-Params".into(), "k=v".into())],
            },
            now,
        )
        .unwrap();
    net.drive();
    let incoming = net.events.iter().find_map(|(_, e)| match e {
        CallEvent::Incoming(c) => Some(c.clone()),
        _ => None,
    });
    let incoming = incoming.unwrap();
    assert_eq!(incoming.remote.display_name.as_deref(), Some("Sales Desk"));
    assert!(incoming.headers.contains(&("X-Order-Id".into(), "A-1001".into())));
    assert!(incoming.headers.contains(&("X-Params".into(), "k=v".into())));
    assert!(
        net.ua(A)
            .call(
                CallRequest {
                    target: "bob".into(),
                    headers: vec![("Bad Name".into(), "x".into())],
                    ..Default::default()
                },
                now
            )
            .is_err()
    );
    assert!(
        net.ua(A)
            .call(
                CallRequest {
                    target: "bob".into(),
                    headers: vec![("X-Inject".into(), "a\r\nVia: evil".into())],
                    ..Default::default()
                },
                now
            )
            .is_err()
    );
    assert!(net.ua(A).call(CallRequest { target: "http://example.com".into(), ..Default::default() }, now).is_err());
}

#[test]
fn retransmitted_2xx_is_acked_again() {
    let mut net = pair(no_timer(), no_timer());
    net.call(A, "bob");
    let b_key = net.incoming(B);
    let now = net.now;
    net.ua(B).answer(b_key, now).unwrap();
    net.drive();
    let ok = net.wire.iter().find_map(|(s, m)| match m {
        Message::Response(r) if *s == B && r.status.as_u16() == 200 => Some(r.clone()),
        _ => None,
    });
    // B sends its 200 again; it reaches A through the proxy.
    net.send_as(B, Message::Response(ok.unwrap()));
    net.drive();
    assert_eq!(net.requests(A, Method::Ack).len(), 2);
}

#[test]
fn late_offer_ack_without_answer_ends_the_call() {
    let mut net = pair(no_timer(), no_timer());
    let invite = "INVITE sip:bob@bobhost.invalid;transport=ws SIP/2.0\r\n\
        Via: SIP/2.0/WS 127.0.0.1:5080;branch=z9hG4bKlate9\r\n\
        From: <sip:carol@example.com>;tag=c9\r\nTo: <sip:bob@example.com>\r\n\
        Call-ID: late-offer-9\r\nCSeq: 1 INVITE\r\nContact: <sip:carol@10.0.0.9;transport=ws>\r\nContent-Length: 0\r\n\r\n";
    let now = net.now;
    net.ua(B).handle_message(Bytes::from_static(invite.as_bytes()), now);
    net.drive();
    let key = net.incoming(B);
    net.ua(B).answer(key, now).unwrap();
    net.drive();
    let ok = net.wire.iter().rev().find_map(|(s, m)| match m {
        Message::Response(r) if *s == B && r.status.as_u16() == 200 => Some(r.clone()),
        _ => None,
    });
    let to = ok.unwrap().headers.get(&HeaderName::To).unwrap().to_string();
    let ack = format!(
        "ACK sip:bob@bobhost.invalid;transport=ws SIP/2.0\r\nVia: SIP/2.0/WS 127.0.0.1:5080;branch=z9hG4bKlate10\r\n\
         From: <sip:carol@example.com>;tag=c9\r\nTo: {to}\r\nCall-ID: late-offer-9\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    net.ua(B).handle_message(Bytes::from(ack), now);
    net.drive();
    assert_eq!(net.requests(B, Method::Bye).len(), 1);
    // carol is no party of the net: the BYE goes unanswered, and the end
    // is reported when it times out.
    net.run_for(Duration::from_secs(33));
    let end = net.ended(B).unwrap().end.clone().unwrap();
    assert_eq!((end.by, end.reason.as_str()), (Originator::System, "the ACK carried no SDP answer"));
    assert_eq!(end.bye_status, Some(408));
}

#[test]
fn hangup_after_only_100_trying_cancels_at_once() {
    let mut net = pair(no_timer(), no_timer());
    // B's 180 is lost: A has seen only 100 Trying.
    net.drop_from = Some((B, |m| matches!(m, Message::Response(r) if r.status.as_u16() == 180)));
    let a_key = net.call(A, "bob");
    let now = net.now;
    net.ua(A).hangup(a_key, now).unwrap();
    net.drive();
    assert_eq!(net.requests(A, Method::Cancel).len(), 1);
    assert_eq!(net.ended(A).unwrap().end.as_ref().unwrap().status, Some(487));
}

#[test]
fn media_failure_while_ringing_out_cancels_and_ends_on_the_final_response() {
    let mut net = pair(no_timer(), no_timer());
    let a_key = net.call(A, "bob");
    net.incoming(B);
    let now = net.now;
    net.ua(A).handle_media_failure(a_key, "ICE failed", now);
    net.drive();
    assert_eq!(net.requests(A, Method::Cancel).len(), 1);
    let end = net.ended(A).unwrap().end.clone().unwrap();
    assert_eq!((end.by, end.status, end.reason.as_str()), (Originator::System, Some(487), "media: ICE failed"));
}

#[test]
fn cancel_without_any_final_response_gives_up_after_64_t1() {
    let mut net = pair(no_timer(), no_timer());
    let a_key = net.call(A, "bob");
    net.incoming(B);
    // B never answers the CANCEL nor sends the 487.
    net.drop_from = Some((B, |m| matches!(m, Message::Response(r) if r.status.as_u16() >= 200)));
    let now = net.now;
    net.ua(A).hangup(a_key, now).unwrap();
    net.run_for(Duration::from_secs(31));
    assert!(net.ended(A).is_none());
    net.run_for(Duration::from_secs(2));
    let end = net.ended(A).unwrap().end.clone().unwrap();
    assert_eq!((end.by, end.status), (Originator::Local, Some(408)));
}

#[test]
fn caller_without_timer_support_gets_us_as_refresher() {
    let mut net = pair(no_timer(), no_timer());
    // A proxy added Session-Expires; the caller itself does not support timers.
    let invite = "INVITE sip:bob@bobhost.invalid;transport=ws SIP/2.0\r\n\
        Via: SIP/2.0/WS 127.0.0.1:5080;branch=z9hG4bKse1\r\n\
        From: <sip:carol@example.com>;tag=s1\r\nTo: <sip:bob@example.com>\r\n\
        Call-ID: se-1\r\nCSeq: 1 INVITE\r\nContact: <sip:carol@10.0.0.9;transport=ws>\r\nSession-Expires: 120\r\n\
        Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n";
    let now = net.now;
    net.ua(B).handle_message(Bytes::from_static(invite.as_bytes()), now);
    net.drive();
    let key = net.incoming(B);
    net.ua(B).answer(key, now).unwrap();
    net.drive();
    let ok = net.wire.iter().rev().find_map(|(s, m)| match m {
        Message::Response(r) if *s == B && r.status.as_u16() == 200 => Some(r.clone()),
        _ => None,
    });
    let ok = ok.unwrap();
    assert_eq!(ok.headers.get(&HeaderName::SessionExpires), Some("120;refresher=uas"));
    assert_eq!(ok.headers.get(&HeaderName::Require), None, "no Require: timer for a caller without it");
}

#[test]
fn an_offer_while_one_is_pending_gets_491() {
    let mut net = pair(no_timer(), no_timer());
    net.call(A, "bob");
    let b_key = net.incoming(B);
    let now = net.now;
    net.ua(B).answer(b_key, now).unwrap();
    net.drive();
    // Two re-INVITEs from A's side with offers; B's media answers neither yet.
    net.auto_media = false;
    let ack = net.requests(A, Method::Ack)[0].clone();
    for (i, branch) in ["z9hG4bKre1", "z9hG4bKre2"].iter().enumerate() {
        let reinvite = format!(
            "INVITE {} SIP/2.0\r\nVia: SIP/2.0/WS alicehost.invalid;branch={branch}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\n\
             CSeq: {} INVITE\r\nContact: <sip:alice@alicehost.invalid;transport=ws>\r\nContent-Type: application/sdp\r\n\
             Content-Length: 4\r\n\r\nv=0\n",
            ack.uri,
            ack.headers.get(&HeaderName::From).unwrap(),
            ack.headers.get(&HeaderName::To).unwrap(),
            ack.headers.get(&HeaderName::CallId).unwrap(),
            10 + i
        );
        net.ua(B).handle_message(Bytes::from(reinvite), now);
        net.drive();
    }
    assert!(net.statuses(B).contains(&491));
    // Hanging up answers the pending one with 487.
    net.ua(B).hangup(b_key, now).unwrap();
    net.drive();
    assert!(net.statuses(B).contains(&487));
}
