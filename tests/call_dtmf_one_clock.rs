//! Scenario: the peer offers one telephone-event clock only. Alice (a real
//! `Phone`) calls bob through Kamailio; bob is a raw SIP client with a raw
//! webrtc peer that answers Alice's offer after removing either
//! `telephone-event/48000` or `telephone-event/8000` from it. Alice then
//! sends digits by RFC 4733: bob checks the packets field by field (the
//! payload type of the remaining telephone-event, one timestamp per event,
//! marker on the first packet, durations in that event's clock, the end
//! three times, the audio's SSRC and sequence numbers), and bob's events
//! (built with the crate's sender on the same clock) reach Alice as one
//! `DtmfReceived` each.

mod support;

use std::time::Duration;

use support::raw_ws::{RawSip, SipMsg, response, token};
use support::*;
use webphone::dtmf::rfc4733::{EventPayload, Receiver, Sender};
use webphone::media::rtc::peer::{MediaDirection as SdpDirection, RtpIn};
use webphone::media::{AudioSetup, SendAudio};
use webphone::{CallOptions, DtmfMethod, DtmfOptions, Event};

/// The offer without the telephone-event at `drop_rate`.
fn without_telephone_event(offer: &str, drop_rate: u32) -> (String, u8) {
    let needle = format!(" telephone-event/{drop_rate}");
    let pt: u8 = offer
        .lines()
        .find_map(|l| l.strip_prefix("a=rtpmap:").filter(|r| r.contains(&needle))?.split(' ').next()?.parse().ok())
        .expect("the offer has both telephone-events");
    let mut out = String::new();
    for l in offer.lines() {
        if l.starts_with(&format!("a=rtpmap:{pt} ")) || l.starts_with(&format!("a=fmtp:{pt} ")) {
            continue;
        }
        if l.starts_with("m=audio ") {
            let fields: Vec<&str> = l.split(' ').collect();
            let (head, pts) = fields.split_at(3);
            let kept: Vec<&str> = pts.iter().copied().filter(|p| *p != pt.to_string()).collect();
            out.push_str(&format!("{} {}\r\n", head.join(" "), kept.join(" ")));
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    (out, pt)
}

fn dialog_headers(invite: &SipMsg, contact: &str) -> Vec<(&'static str, String)> {
    let mut h = vec![("Contact", contact.to_string()), ("Content-Type", "application/sdp".to_string())];
    for rr in invite.all("Record-Route") {
        h.push(("Record-Route", rr.to_string()));
    }
    h
}

async fn one_clock(clock: u32) {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let mut bob = RawSip::connect(&kamailio.ws_url()).await;
    assert_eq!(bob.register("bob", BOB_PASSWORD, DOMAIN).await.status(), Some(200));
    let bob_contact = format!("<sip:bob@{};transport=ws>", bob.host);

    let audio = AudioSetup { send: SendAudio::Tone { frequency_hz: 440.0, level_dbfs: -12.0 }, ..Default::default() };
    let call = alice.call("bob", CallOptions { audio, ..Default::default() }).await.unwrap().key();
    let invite = bob.recv_until("INVITE from Alice", |m| m.method() == Some("INVITE")).await;
    let (offer, dropped_pt) = without_telephone_event(&invite.body, if clock == 8000 { 48_000 } else { 8000 });

    let peer = loopback_peer().await;
    let mut from_alice = peer.take_rtp_receiver().expect("rtp receiver");
    let (answer, negotiated) = peer.answer(&offer, SdpDirection::SendRecv).await.expect("answer");
    let te = negotiated.telephone_event_pt.expect("a telephone-event is left");
    assert_ne!(te, dropped_pt);
    assert_eq!(negotiated.telephone_event_rate, Some(clock), "{negotiated:?}\n{answer}");
    let bob_tag = token();
    bob.send(response(&invite, 200, "OK", Some(&bob_tag), &dialog_headers(&invite, &bob_contact), &answer)).await;
    alice_log.wait_confirmed(call).await;
    tone_peer::wait_connected(&peer).await;
    // Audio from Alice first.
    let first = tokio::time::timeout(TIMEOUT, from_alice.recv()).await.expect("RTP").expect("open");
    let audio_ssrc = first.ssrc;

    // --- Alice → bob: three digits of 100 ms.
    let options = DtmfOptions { method: DtmfMethod::Auto, duration_ms: Some(100), gap_ms: Some(60) };
    alice.send_dtmf(call, "19#", options).await.unwrap();
    let mut packets: Vec<RtpIn> = vec![];
    let mut receiver = Receiver::new(clock);
    let mut events = vec![];
    let mut last_seq = first.sequence;
    let last_ends = |packets: &[RtpIn]| {
        packets.iter().filter(|p| EventPayload::decode(&p.payload).is_ok_and(|e| e.event == 11 && e.end)).count()
    };
    while events.len() < 3 || last_ends(&packets) < 3 {
        let p = tokio::time::timeout(TIMEOUT, from_alice.recv()).await.expect("RTP from Alice").expect("open");
        assert_eq!(p.ssrc, audio_ssrc, "telephone-events on the audio's SSRC");
        assert_eq!(p.sequence, last_seq.wrapping_add(1), "one sequence space, no gap on loopback");
        last_seq = p.sequence;
        if p.payload_type == te {
            receiver.handle_packet(p.timestamp, p.marker, &p.payload, p.arrival);
            packets.push(p);
        } else {
            assert_eq!(p.payload_type, negotiated.codec.payload_type, "no other payload type");
        }
        events.extend(std::iter::from_fn(|| receiver.poll_event()));
    }
    let digits: Vec<(u8, u32)> = events.iter().map(|e| (e.event, e.duration_ms)).collect();
    assert_eq!(digits, [(1, 100), (9, 100), (11, 100)]);
    // Field by field, per event.
    let final_units = (100 * clock / 1000) as u16;
    for code in [1u8, 9, 11] {
        let of: Vec<(&RtpIn, EventPayload)> = packets
            .iter()
            .map(|p| (p, EventPayload::decode(&p.payload).unwrap()))
            .filter(|(_, e)| e.event == code)
            .collect();
        assert!(of.iter().all(|(p, _)| p.timestamp == of[0].0.timestamp), "one timestamp per event");
        assert!(of[0].0.marker && of[1..].iter().all(|(p, _)| !p.marker), "marker on the first packet only");
        let ends: Vec<_> = of.iter().filter(|(_, e)| e.end).collect();
        assert_eq!(ends.len(), 3, "the end three times");
        assert!(ends.iter().all(|(_, e)| e.duration == final_units), "final duration in the {clock} Hz clock");
        let durations: Vec<u16> = of.iter().map(|(_, e)| e.duration).collect();
        assert!(durations.windows(2).all(|w| w[0] <= w[1]), "{durations:?}");
    }
    for _ in 0..3 {
        alice_log.wait_for("DtmfSent", |e| matches!(e, Event::DtmfSent { method: DtmfMethod::Rfc4733, .. })).await;
    }

    // --- bob → Alice: one digit of 120 ms on the negotiated telephone-event.
    let mut sender = Sender::new(clock, negotiated.codec.clock_rate);
    sender.start(7, Duration::from_millis(120), 123_456);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while let Some(p) = sender.tick(Duration::from_millis(20)) {
        tick.tick().await;
        let _ = peer.send_rtp(te, p.marker, p.timestamp, &p.payload.encode()).await;
    }
    let got = alice_log.wait_for("DtmfReceived", |e| matches!(e, Event::DtmfReceived { .. })).await;
    let Event::DtmfReceived { digit, duration_ms, method, .. } = got else { unreachable!() };
    assert_eq!((digit, duration_ms, method), ('7', 120, DtmfMethod::Rfc4733));

    alice.hangup(call).await.unwrap();
    let bye = bob.recv_until("BYE from Alice", |m| m.method() == Some("BYE")).await;
    bob.send(response(&bye, 200, "OK", None, &[], "")).await;
    let end = alice_log.wait_ended(call).await.end.unwrap();
    assert_eq!(end.bye_status, None, "{end:?}");
    peer.close().await;
    bob.close().await;
    alice.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_telephone_event_8000() {
    one_clock(8000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_telephone_event_48000() {
    one_clock(48_000).await;
}
