//! Scenario: early media. Alice (a real `Phone`) calls bob through a real
//! Kamailio (407 on the INVITE); bob is a raw SIP-over-WebSocket client
//! with a second real WebRTC peer in the test. Bob answers the INVITE with
//! `183 Session Progress` carrying the SDP answer, connects ICE/DTLS and
//! sends Opus of a 1 kHz tone (paced at 20 ms) while the call is still
//! early: Alice must report `CallProgress { 183, early_media: true }` and
//! her meter must find the 1 kHz tone before any 200 OK exists. Then bob
//! sends 200 OK (same To tag, SDP repeated), Alice ACKs and reports
//! `CallConfirmed` (after the progress), bob sends BYE along the route set
//! and Alice sees the call ended by the remote side.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::raw_ws::{RawSip, SipMsg, request, response, token};
use support::*;
use webphone::media::codec::CodecKind;
use webphone::media::rtc::peer::MediaDirection as SdpDirection;
use webphone::media::{AudioSetup, CallStats, SendAudio};
use webphone::{CallOptions, Event, Originator};

fn ratio(stats: &CallStats, hz: f64) -> f64 {
    stats.tracked.iter().find(|(f, _)| (*f - hz).abs() < 0.5).map_or(0.0, |(_, r)| *r)
}

/// Headers a UAS puts on its responses to `invite` that create the dialog:
/// our Contact and the Record-Route entries copied in order.
fn dialog_headers(invite: &SipMsg, contact: &str) -> Vec<(&'static str, String)> {
    let mut h = vec![("Contact", contact.to_string())];
    for rr in invite.all("Record-Route") {
        h.push(("Record-Route", rr.to_string()));
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_from_183_is_heard_before_the_200() {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;

    // --- raw bob registers (401 → digest → 200)
    let mut bob = RawSip::connect(&kamailio.ws_url()).await;
    let ok = bob.register("bob", BOB_PASSWORD, DOMAIN).await;
    assert_eq!(ok.status(), Some(200));
    let bob_contact = format!("<sip:bob@{};transport=ws>", bob.host);

    // --- Alice calls bob (her INVITE is challenged with 407 and retried)
    let call = alice
        .call(
            "bob",
            CallOptions {
                audio: AudioSetup {
                    send: SendAudio::Tone { frequency_hz: 440.0, level_dbfs: -12.0 },
                    track_frequencies: vec![1000.0],
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("call placed")
        .key();
    let invite = bob.recv_until("INVITE from Alice", |m| m.method() == Some("INVITE")).await;
    let offer = invite.body.clone();
    assert!(offer.lines().any(|l| l.starts_with("m=audio ")), "m=audio in Alice's offer:\n{offer}");
    assert!(!invite.record_routes().is_empty(), "Kamailio record-routes the INVITE:\n{}", invite.start);

    // --- bob's peer answers; the answer goes out in a 183
    let peer = loopback_peer().await;
    let mut from_alice = peer.take_rtp_receiver().expect("rtp receiver");
    let (answer, negotiated) = peer.answer(&offer, SdpDirection::SendRecv).await.expect("answer to Alice's offer");
    assert_eq!(negotiated.codec.kind, CodecKind::Opus, "{negotiated:?}");
    let bob_tag = token();
    let mut with_sdp = dialog_headers(&invite, &bob_contact);
    with_sdp.push(("Content-Type", "application/sdp".to_string()));
    bob.send(response(&invite, 183, "Session Progress", Some(&bob_tag), &with_sdp, &answer)).await;

    // --- Alice reports early media, and nothing is confirmed yet
    let progress = alice_log
        .wait_for(
            "CallProgress 183",
            |e| matches!(e, Event::CallProgress { call: c, status: 183, .. } if c.key == call),
        )
        .await;
    let Event::CallProgress { early_media, call: info, .. } = &progress else { unreachable!() };
    assert!(*early_media, "183 with SDP is early media: {progress:#?}");
    assert_eq!(info.connected_ms, None, "{info:#?}");

    // --- media connects on the 183's answer; bob's peer sends a 1 kHz tone
    tone_peer::wait_connected(&peer).await;
    let stop = Arc::new(AtomicBool::new(false));
    let sender = tone_peer::send_tone(peer.clone(), negotiated.codec.payload_type, 75, stop.clone());
    let early = wait_stats(&alice, call, "the 1 kHz early media at Alice", |s| {
        s.decoded_frames >= 25 && ratio(s, 1000.0) >= 0.9 && s.rx_dominant_hz.is_some_and(|f| (f - 1000.0).abs() < 10.0)
    })
    .await;
    assert_eq!(early.codec.as_deref(), Some("opus"), "{early:#?}");
    // Still early: no 200 was sent, so nothing may be confirmed.
    assert!(
        !alice_log.drain().iter().any(|e| matches!(e, Event::CallConfirmed { .. } | Event::CallEnded { .. })),
        "{:#?}",
        alice_log.seen
    );
    // Alice's own audio reaches bob during early media too (sendrecv).
    let first = tokio::time::timeout(TIMEOUT, from_alice.recv())
        .await
        .expect("RTP from Alice during early media")
        .expect("RTP queue open");
    assert_eq!(first.payload_type, negotiated.codec.payload_type);
    stop.store(true, Ordering::Relaxed);
    let sent = sender.await.expect("sender task");
    assert!(sent >= 75, "sent {sent}");

    // --- 200 OK: same To tag, SDP repeated; Alice ACKs
    bob.send(response(&invite, 200, "OK", Some(&bob_tag), &with_sdp, &answer)).await;
    let confirmed = alice_log.wait_confirmed(call).await;
    assert!(confirmed.connected_ms.is_some_and(|c| c >= confirmed.started_ms), "{confirmed:#?}");
    let position = |pred: &dyn Fn(&Event) -> bool| alice_log.seen.iter().position(pred);
    let progress_at = position(&|e| matches!(e, Event::CallProgress { status: 183, early_media: true, .. }));
    let confirmed_at = position(&|e| matches!(e, Event::CallConfirmed { .. }));
    assert!(
        progress_at.is_some() && progress_at < confirmed_at,
        "CallProgress 183 before CallConfirmed: {:#?}",
        alice_log.seen
    );
    let invite_cseq = invite.cseq().0;
    let ack = bob.recv_until("ACK from Alice", |m| m.method() == Some("ACK")).await;
    assert_eq!(ack.cseq(), (invite_cseq, "ACK".to_string()), "{}", bob.received.join("\n----\n"));
    assert_eq!(ack.to_tag().as_deref(), Some(bob_tag.as_str()), "ACK in bob's dialog");

    // --- bob hangs up: BYE to Alice's Contact along the Record-Route (UAS: in order)
    let alice_target = invite.contact_uri().expect("Contact in the INVITE");
    let route = invite.record_routes().join(", ");
    let (via, _) = bob.via();
    let bye = request(
        "BYE",
        &alice_target,
        &[
            ("Via", via),
            ("Max-Forwards", "70".to_string()),
            ("Route", route),
            ("From", format!("{};tag={bob_tag}", invite.header("To").expect("To"))),
            ("To", invite.header("From").expect("From").to_string()),
            ("Call-ID", invite.header("Call-ID").expect("Call-ID").to_string()),
            ("CSeq", "1 BYE".to_string()),
        ],
        "",
    );
    bob.send(bye).await;
    let bye_ok = bob.recv_until("response to BYE", |m| m.status().is_some() && m.cseq() == (1, "BYE".into())).await;
    assert_eq!(bye_ok.status(), Some(200), "{}", bye_ok.start);

    let ended = alice_log.wait_ended(call).await;
    let end = ended.end.clone().expect("end cause");
    assert_eq!(end.by, Originator::Remote, "{ended:#?}");
    assert!(!alice_log.seen.iter().any(|e| matches!(e, Event::MalformedMessage { .. })), "{:#?}", alice_log.seen);

    peer.close().await;
    bob.close().await;
    alice.stop().await.unwrap();
}
