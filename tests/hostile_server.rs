//! Scenario: a hostile SIP-over-WebSocket server. An in-process server
//! (`support/ws_server.rs`, loopback only) accepts the phone's REGISTER and
//! then plays bad input at it: garbage, missing headers, bad Content-Length,
//! oversized messages and frames, broken WebSocket framing, odd close codes,
//! floods of INVITE / OPTIONS / BYE, stray responses, replayed REGISTER
//! answers, ping floods, a silent server, offers no phone can use. After
//! each case the phone must still be registered (or reconnect and register
//! again) and answer OPTIONS, INVITE (180, then CANCEL) and BYE correctly;
//! what it answers the bad input with is asserted, every frame it sends is
//! checked against its own 64 KB limit, and a flood of junk costs a bounded
//! number of events.

mod support;

use std::time::Duration;

use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use webphone::{Event, Phone, PingKind};

use support::raw_ws::{SipMsg, request};
use support::ws_server::{ServerConn, WsServer, binary, in_unknown_dialog, invite, offer, offer_with, out_of_dialog};
use support::*;

/// A phone on `server`, registered through its first connection.
struct Setup {
    server: WsServer,
    phone: Phone,
    log: EventLog,
    conn: ServerConn,
    /// The phone's Contact URI (Request-URI of the server's requests).
    target: String,
}

async fn setup(queue: usize) -> Setup {
    require_loopback_only_netns();
    let mut server = WsServer::start(None).await;
    let config = phone_config(&[server.url.clone()], "alice", ALICE_PASSWORD)
        // A silent server is noticed within 4 s.
        .keepalive(Duration::from_secs(2), Duration::from_secs(2), PingKind::WebSocket)
        .event_queue_capacity(queue)
        .build()
        .expect("config");
    let phone = Phone::new(config);
    let mut log = EventLog::new(phone.events());
    phone.start().expect("started");
    let mut conn = server.accept().await;
    let reg = conn.answer_register().await;
    log.wait_for("Registered", |e| matches!(e, Event::Registered { .. })).await;
    Setup { server, phone, log, conn, target: ServerConn::target(&reg) }
}

impl Setup {
    /// The phone dropped its connection: it comes back, registers again and
    /// answers the probe.
    async fn expect_reconnect(&mut self, case: &str) {
        self.conn = self.server.accept().await;
        let reg = self.conn.answer_register().await;
        self.target = ServerConn::target(&reg);
        self.log.wait_for(&format!("Registered after {case}"), |e| matches!(e, Event::Registered { .. })).await;
        self.conn.probe(&self.target).await;
    }
}

fn statuses(answers: &[SipMsg]) -> Vec<u16> {
    answers.iter().map(|m| m.status().unwrap_or(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_answered_when_they_can_be_and_dropped_otherwise() {
    let mut s = setup(1024).await;
    let t = s.target.clone();
    let options = out_of_dialog("OPTIONS", &t, "");

    // Garbage, text and binary: nothing to answer.
    for junk in ["hello", "INVITE\r\n\r\n", "SIP/2.0 2000 OK\r\n\r\n", "\u{0}\u{1}\u{2}", "OPTIONS sip:x SIP/2.0\r\n"] {
        s.conn.send(junk).await;
    }
    s.conn.send_frame(binary(&[0xff, 0xfe, 0x00, 0x16, 0x03, 0x01])).await;
    s.conn.probe(&t).await;

    // Missing headers: 400, carrying what could be copied.
    let without = |name: &str| options.split("\r\n").filter(|l| !l.starts_with(name)).collect::<Vec<_>>().join("\r\n");
    let no_via = without("Via:");
    let answers = s.conn.exchange(vec![no_via.clone()], 1).await;
    let r = &answers[0];
    assert_eq!(r.status(), Some(400), "{}", r.start);
    assert_eq!(r.header("Via"), None);
    let sent = SipMsg::parse(&no_via).expect("our request");
    for h in ["From", "Call-ID", "CSeq"] {
        assert_eq!(r.header(h), sent.header(h), "{h} copied");
    }
    assert!(r.header("To").is_some_and(|to| to.starts_with(sent.header("To").unwrap_or("?"))));
    let answers = s.conn.exchange(vec![without("Call-ID:"), without("CSeq:"), without("From:")], 3).await;
    assert_eq!(statuses(&answers), [400, 400, 400]);
    assert!(answers.iter().all(|a| a.header("Via").is_some()), "the Via is copied when there is one");
    s.conn.probe(&t).await;

    // Bad Content-Length: 400 (RFC 3261 §18.3); a response with one is dropped.
    let bad_length = [
        options.replace("Content-Length: 0", "Content-Length: abc"),
        options.replace("Content-Length: 0", "Content-Length: 9999"),
        options.replace("Content-Length: 0", "Content-Length: 0\r\nContent-Length: 3"),
    ];
    let answers = s.conn.exchange(bad_length.to_vec(), 3).await;
    assert_eq!(statuses(&answers), [400, 400, 400]);
    s.conn.send("SIP/2.0 200 OK\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bKx\r\nContent-Length: 50\r\n\r\n").await;
    s.conn.probe(&t).await;

    // Over the SIP size limit but within the WebSocket one: 513.
    let big =
        options.replace("Content-Length: 0\r\n\r\n", &format!("Content-Length: 100000\r\n\r\n{}", "x".repeat(100_000)));
    let answers = s.conn.exchange(vec![big], 1).await;
    assert_eq!(statuses(&answers), [513]);
    // 60 KB of an unknown header: within the limit, answered as usual.
    let padded = options.replace("Max-Forwards: 70", &format!("Max-Forwards: 70\r\nX-Pad: {}", "p".repeat(60_000)));
    assert_eq!(statuses(&s.conn.exchange(vec![padded], 1).await), [200]);
    s.conn.probe(&t).await;

    // Stray responses and replayed REGISTER answers: absorbed.
    let last_register = s.conn.received.iter().rev().find(|m| m.starts_with("REGISTER ")).cloned().expect("a REGISTER");
    let reg = SipMsg::parse(&last_register).expect("REGISTER");
    let replay = support::raw_ws::response(&reg, 200, "OK", Some("replayed"), &[("Expires", "600".into())], "");
    for _ in 0..3 {
        s.conn.send(replay.clone()).await;
    }
    let stray_invite = SipMsg::parse(&invite(&t, &offer())).expect("INVITE");
    s.conn.send(support::raw_ws::response(&stray_invite, 180, "Ringing", Some("x"), &[], "")).await;
    s.conn.send(support::raw_ws::response(&stray_invite, 200, "OK", Some("x"), &[], "")).await;
    s.conn.send(support::raw_ws::response(&reg, 401, "Unauthorized", Some("y"), &[], "")).await;
    s.conn.probe(&t).await;
    assert!(s.phone.is_registered());
    assert!(!s.log.drain().iter().any(|e| matches!(e, Event::Disconnected { .. } | Event::Lagged { .. })));
    s.phone.stop().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_framing_and_huge_frames_make_the_phone_reconnect() {
    let mut s = setup(1024).await;
    // Raw frames from the server (unmasked, as a server's are), each one a
    // violation of RFC 6455 that fails the connection; then frames over the
    // phone's 128 KB limit.
    let cases = [
        ("RSV1 set", Bad::Raw(vec![0xc1, 0x02, b'h', b'i'])),
        ("reserved opcode", Bad::Raw(vec![0x83, 0x00])),
        ("continuation without a start", Bad::Raw(vec![0x80, 0x02, b'h', b'i'])),
        ("text that is not UTF-8", Bad::Raw(vec![0x81, 0x02, 0xff, 0xfe])),
        ("masked frame from a server", Bad::Raw(vec![0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2])),
        ("1 MB of headers", Bad::Frame(WsMessage::Text(huge_headers().into()))),
        ("a 5 MB frame", Bad::Frame(binary(&vec![b'x'; 5 << 20]))),
    ];
    for (case, bad) in cases {
        match bad {
            Bad::Raw(bytes) => s.conn.send_raw(&bytes).await,
            Bad::Frame(frame) => s.conn.send_frame(frame).await,
        }
        s.conn.wait_closed(case).await;
        s.log.wait_for(&format!("Disconnected after {case}"), |e| matches!(e, Event::Disconnected { .. })).await;
        s.expect_reconnect(case).await;
    }
    s.phone.stop().await.expect("stopped");
}

/// What breaks a connection: bytes under the framing, or a whole frame.
enum Bad {
    Raw(Vec<u8>),
    Frame(WsMessage),
}

/// An OPTIONS with 1 MB of headers.
fn huge_headers() -> String {
    out_of_dialog("OPTIONS", "sip:alice@x.invalid", "")
        .replace("Max-Forwards: 70", &format!("Max-Forwards: 70\r\nX-Huge: {}", "h".repeat(1 << 20)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_close_is_echoed_whatever_its_code() {
    let mut s = setup(1024).await;
    // (sent, echoed): a code not allowed on the wire is answered 1002.
    for (code, echoed) in [(1000u16, 1000u16), (1001, 1001), (1011, 1011), (4000, 4000), (3999, 3999), (1005, 1002)] {
        let frame = CloseFrame { code: CloseCode::from(code), reason: "hostile".into() };
        s.conn.send_frame(WsMessage::Close(Some(frame))).await;
        let case = format!("close {code}");
        assert_eq!(s.conn.wait_closed(&case).await, Some(echoed), "{case} echoed (RFC 6455 §5.5.1)");
        s.expect_reconnect(&case).await;
    }
    s.phone.stop().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_get_the_right_answers_and_a_lagging_subscriber_is_told() {
    let mut s = setup(32).await;
    // One subscriber reads everything; another never reads until the end.
    let mut lagging = s.phone.events();
    let mut reader = s.phone.events();
    let read_all = tokio::spawn(async move {
        let mut n = 0usize;
        while let Some(e) = reader.recv().await {
            assert!(!matches!(e, Event::Lagged { .. }), "a reader that keeps up never lags");
            n += 1;
        }
        n
    });
    let t = s.target.clone();

    // 2,000 INVITEs: two lines ring (100, 180), every other INVITE gets 486.
    let invites: Vec<String> = (0..2000).map(|_| invite(&t, &offer())).collect();
    let answers = s.conn.exchange(invites.clone(), 2 * 2 + 1998).await;
    let count = |code| answers.iter().filter(|a| a.status() == Some(code)).count();
    assert_eq!((count(100), count(180), count(486)), (2, 2, 1998));
    let mut cancels = Vec::new();
    for ringing in answers.iter().filter(|a| a.status() == Some(180)) {
        let inv = invites.iter().find(|i| i.contains(ringing.header("Call-ID").unwrap_or("?"))).expect("its INVITE");
        let sent = SipMsg::parse(inv).expect("INVITE");
        let mut headers: Vec<(&str, String)> =
            ["Via", "From", "To", "Call-ID"].iter().map(|h| (*h, sent.header(h).unwrap_or("").to_string())).collect();
        headers.push(("CSeq", "1 CANCEL".into()));
        cancels.push(request("CANCEL", &t, &headers, ""));
    }
    let answers = s.conn.exchange(cancels, 4).await;
    let mut got = statuses(&answers);
    got.sort();
    assert_eq!(got, [200, 200, 487, 487]);

    // 5,000 OPTIONS: 200 each. 1,000 BYEs for no dialog: 481 each.
    let answers = s.conn.exchange((0..5000).map(|_| out_of_dialog("OPTIONS", &t, "")).collect(), 5000).await;
    assert!(answers.iter().all(|a| a.status() == Some(200)));
    let answers = s.conn.exchange((0..1000).map(|_| in_unknown_dialog("BYE", &t)).collect(), 1000).await;
    assert!(answers.iter().all(|a| a.status() == Some(481)));

    // 100 calls that ring and are cancelled: more events than the lagging
    // subscriber's queue of 32 holds.
    for _ in 0..100 {
        s.conn.probe(&t).await;
    }
    assert!(s.phone.is_registered());
    s.phone.stop().await.expect("stopped");
    let delivered = read_all.await.expect("the reader ends with the phone");
    let mut kept = Vec::new();
    while let Some(e) = lagging.recv().await {
        kept.push(e);
    }
    assert!(kept.len() <= 32 + 2, "bounded: {} events queued", kept.len());
    let missed: u64 = kept.iter().map(|e| if let Event::Lagged { missed } = e { *missed } else { 0 }).sum();
    let lagged = kept.iter().filter(|e| matches!(e, Event::Lagged { .. })).count();
    assert!(missed > 0, "the lagging subscriber was told");
    assert_eq!(kept.len() - lagged + missed as usize, delivered, "every event is either there or counted");
    assert_eq!(kept.last(), Some(&Event::Stopped), "the end always arrives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_junk_flood_costs_a_bounded_number_of_events() {
    let mut s = setup(1024).await;
    let frames = 50_000usize;
    for i in 0..frames {
        s.conn.send(format!("junk{i:05}")).await;
    }
    // Processed in order: once the probe is answered, the junk was read.
    s.conn.probe(&s.target.clone()).await;
    let mut reported = 0u64;
    let mut reports = 0usize;
    while reported < frames as u64 {
        if let Event::MalformedMessage { count, .. } =
            s.log.wait_for("the flood's reports", |e| matches!(e, Event::MalformedMessage { .. })).await
        {
            reported += count;
            reports += 1;
        }
    }
    assert_eq!(reported, frames as u64, "every junk frame counted once");
    // One report at once, then one per second of flood at most.
    let seen = s.log.seen.len();
    assert!(reports <= 1 + 60, "{reports} reports for {frames} frames");
    assert!(seen < 200, "{seen} events in all");
    assert!(s.phone.is_registered());
    s.phone.stop().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_floods_are_answered_and_a_silent_server_is_left() {
    let mut s = setup(1024).await;
    for _ in 0..10_000 {
        s.conn.send_frame(WsMessage::Ping(Default::default())).await;
    }
    s.conn.probe(&s.target.clone()).await;
    assert!(s.phone.is_registered());

    // The server stops reading and writing; its connection stays open. The
    // phone's keep-alive gives up on it and connects again.
    let silent = std::mem::replace(&mut s.conn, s.server.accept().await);
    let reg = s.conn.answer_register().await;
    s.target = ServerConn::target(&reg);
    let ev = s.log.wait_for("Disconnected", |e| matches!(e, Event::Disconnected { .. })).await;
    assert!(matches!(&ev, Event::Disconnected { reason, .. } if reason.contains("keep-alive")), "{ev:?}");
    s.log.wait_for("Registered again", |e| matches!(e, Event::Registered { .. })).await;
    s.conn.probe(&s.target.clone()).await;
    drop(silent);
    s.phone.stop().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_no_phone_can_use_get_488_without_ringing() {
    let mut s = setup(1024).await;
    let t = s.target.clone();
    let standard = "a=fingerprint:sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";
    let zz = format!("a=fingerprint:sha-256 {}", vec!["ZZ"; 5000].join(":"));
    let cases = [
        ("882 media sections", invite(&t, &offer_with(standard, 881))),
        ("a fingerprint of 5,000 ZZ pairs", invite(&t, &offer_with(&zz, 0))),
        ("no audio", invite(&t, &offer().replace("m=audio 9", "m=video 9"))),
        ("only G.729", invite(&t, &offer().replace(" 111 0\r\n", " 18\r\n").replace("opus/48000/2", "G729/8000"))),
    ];
    for (case, inv) in cases {
        assert!(inv.len() < 64 * 1024, "{case} fits the SIP limit");
        // The one answer is 488: no 100, no 180 before it.
        let answers = s.conn.exchange(vec![inv], 1).await;
        assert_eq!(statuses(&answers), [488], "{case}: {}", answers[0].start);
        s.conn.probe(&t).await;
    }
    // Only the probes rang.
    let rang = s.log.drain().iter().filter(|e| matches!(e, Event::CallIncoming { .. })).count();
    assert_eq!(rang, 4, "refused offers never ring");
    // 10,000 m-lines do not fit a WebSocket frame the phone accepts.
    let many = invite(&t, &offer_with(standard, 10_000));
    s.conn.send(many).await;
    s.conn.wait_closed("10,000 m-lines").await;
    s.expect_reconnect("10,000 m-lines").await;
    s.phone.stop().await.expect("stopped");
}
