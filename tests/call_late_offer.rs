//! Scenario: a late-offer call. A raw SIP-over-WebSocket client (no `Phone`:
//! ours always sends an offer) registers as bob through a real Kamailio
//! (401 challenge), then INVITEs alice — a real `Phone` — WITHOUT a body,
//! answering the proxy's 407 (ACK, then the INVITE again with
//! Proxy-Authorization and CSeq + 1). Alice answers; her 200 OK must carry
//! the SDP offer (audio, DTLS fingerprint, ICE credentials, loopback
//! candidates), and the raw client's ACK carries the answer made by a
//! second real WebRTC peer in the test. That peer then sends Opus (a 1 kHz
//! tone) and Alice must receive it; then the raw client sends BYE along the
//! route set and Alice sees the call ended by the remote side.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::raw_ws::{RawSip, request, token};
use support::*;
use webphone::media::codec::CodecKind;
use webphone::media::rtc::peer::MediaDirection as SdpDirection;
use webphone::media::{AudioSetup, SendAudio};
use webphone::{CallDirection, Event, Originator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_without_sdp_gets_the_offer_in_200_and_the_answer_in_ack() {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;

    // --- raw bob: register (401 → digest → 200)
    let mut bob = RawSip::connect(&kamailio.ws_url()).await;
    let ok = bob.register("bob", BOB_PASSWORD, DOMAIN).await;
    assert_eq!(ok.status(), Some(200));

    // --- INVITE alice without a body; 407 → ACK → INVITE with credentials
    let call_id = token();
    let from_tag = token();
    let from = format!("<sip:bob@{DOMAIN}>;tag={from_tag}");
    let target = format!("sip:alice@{DOMAIN}");
    let contact = format!("<sip:bob@{};transport=ws>", bob.host);
    let invite = |via: String, cseq: u32, auth: Option<(&str, String)>| {
        let mut h = vec![
            ("Via", via),
            ("Max-Forwards", "70".to_string()),
            ("From", from.clone()),
            ("To", format!("<{target}>")),
            ("Call-ID", call_id.clone()),
            ("CSeq", format!("{cseq} INVITE")),
            ("Contact", contact.clone()),
            ("Allow", "INVITE, ACK, CANCEL, BYE".to_string()),
        ];
        if let Some((name, value)) = auth {
            h.push((name, value));
        }
        request("INVITE", &target, &h, "")
    };
    let (via1, _) = bob.via();
    bob.send(invite(via1.clone(), 1, None)).await;
    let challenge = bob.recv_until("407 to the INVITE", |m| m.status().is_some_and(|s| s >= 200)).await;
    assert_eq!(challenge.status(), Some(407), "{}", challenge.start);
    // ACK for a non-2xx final response: same branch, To with the response's tag.
    let ack407 = request(
        "ACK",
        &target,
        &[
            ("Via", via1),
            ("Max-Forwards", "70".to_string()),
            ("From", from.clone()),
            ("To", challenge.header("To").expect("To").to_string()),
            ("Call-ID", call_id.clone()),
            ("CSeq", "1 ACK".to_string()),
        ],
        "",
    );
    bob.send(ack407).await;
    let ch = webphone::dialog::auth::Challenge::parse(
        challenge.header("Proxy-Authenticate").expect("Proxy-Authenticate"),
        true,
    )
    .expect("digest challenge");
    let authz =
        webphone::dialog::auth::DigestClient::new("bob", BOB_PASSWORD).authorize(&ch, "INVITE", &target, b"", &token());
    let (via2, _) = bob.via();
    bob.send(invite(via2, 2, Some((authz.header_name(), authz.to_string())))).await;

    // --- Alice rings: the INVITE had no SDP
    let incoming = alice_log.wait_incoming().await;
    assert_eq!(incoming.direction, CallDirection::Incoming);
    assert_eq!(incoming.remote.user.as_deref(), Some("bob"));
    assert_eq!(incoming.call_id, call_id);
    bob.recv_until("180 Ringing", |m| m.status() == Some(180)).await;
    alice
        .answer_with(
            incoming.key,
            AudioSetup {
                send: SendAudio::Tone { frequency_hz: 440.0, level_dbfs: -12.0 },
                track_frequencies: vec![1000.0],
                ..Default::default()
            },
        )
        .await
        .expect("answered");

    // --- Alice's 200 OK carries the offer
    let ok = bob.recv_until("200 to the INVITE", |m| m.status() == Some(200) && m.cseq() == (2, "INVITE".into())).await;
    let offer = ok.body.clone();
    assert_eq!(ok.header("Content-Type").map(str::to_ascii_lowercase).as_deref(), Some("application/sdp"));
    assert!(offer.lines().any(|l| l.starts_with("m=audio ")), "m=audio in the offer:\n{offer}");
    assert!(offer.lines().any(|l| l.starts_with("a=fingerprint:")), "a=fingerprint in the offer:\n{offer}");
    assert!(offer.lines().any(|l| l.starts_with("a=ice-ufrag:")), "a=ice-ufrag in the offer:\n{offer}");
    assert!(offer.lines().any(|l| l.starts_with("a=ice-pwd:")), "a=ice-pwd in the offer:\n{offer}");
    assert!(
        offer.lines().any(|l| l.starts_with("a=candidate:") && l.contains(" 127.0.0.1 ")),
        "a loopback candidate in the offer:\n{offer}"
    );
    assert!(offer.contains("opus/48000"), "Opus offered:\n{offer}");
    let to = ok.header("To").expect("To").to_string();
    assert!(ok.to_tag().is_some(), "the 200 has Alice's tag: {to}");
    let remote_target = ok.contact_uri().expect("Contact in the 200");
    let mut route_set = ok.record_routes();
    assert!(!route_set.is_empty(), "Kamailio record-routes the INVITE");
    route_set.reverse(); // UAC: Record-Route in reverse order
    let route = route_set.join(", ");

    // --- the test's own peer answers the offer; the ACK carries the answer
    let peer = loopback_peer().await;
    let mut from_alice = peer.take_rtp_receiver().expect("rtp receiver");
    let (answer, negotiated) = peer.answer(&offer, SdpDirection::SendRecv).await.expect("answer to Alice's offer");
    assert_eq!(negotiated.codec.kind, CodecKind::Opus, "{negotiated:?}");
    let (via, _) = bob.via();
    let ack = request(
        "ACK",
        &remote_target,
        &[
            ("Via", via),
            ("Max-Forwards", "70".to_string()),
            ("Route", route.clone()),
            ("From", from.clone()),
            ("To", to.clone()),
            ("Call-ID", call_id.clone()),
            ("CSeq", "2 ACK".to_string()),
            ("Content-Type", "application/sdp".to_string()),
        ],
        &answer,
    );
    bob.send(ack).await;

    let confirmed = alice_log.wait_confirmed(incoming.key).await;
    assert!(confirmed.connected_ms.is_some_and(|c| c >= confirmed.started_ms), "{confirmed:#?}");

    // --- media: the test peer connects and sends Opus of a 1 kHz tone every 20 ms
    tone_peer::wait_connected(&peer).await;
    let stop = Arc::new(AtomicBool::new(false));
    let sender = tone_peer::send_tone(peer.clone(), negotiated.codec.payload_type, 50, stop.clone());
    let stats = wait_stats(&alice, incoming.key, "Opus from the test peer at Alice", |s| {
        s.rx_packets >= 40 && s.decoded_frames > 0 && s.rx_dominant_hz.is_some_and(|f| (f - 1000.0).abs() < 10.0)
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let sent = sender.await.expect("sender task");
    assert!(sent >= 50, "sent {sent}");
    assert_eq!(stats.codec.as_deref(), Some("opus"), "{stats:#?}");
    assert!(stats.rx_packets > 0, "{stats:#?}");
    // And Alice's audio reaches the test peer.
    let first = tokio::time::timeout(TIMEOUT, from_alice.recv())
        .await
        .expect("RTP from Alice in time")
        .expect("RTP queue open");
    assert_eq!(first.payload_type, negotiated.codec.payload_type);

    // --- BYE from the raw client along the route set
    let (via, _) = bob.via();
    let bye = request(
        "BYE",
        &remote_target,
        &[
            ("Via", via),
            ("Max-Forwards", "70".to_string()),
            ("Route", route),
            ("From", from),
            ("To", to),
            ("Call-ID", call_id.clone()),
            ("CSeq", "3 BYE".to_string()),
        ],
        "",
    );
    bob.send(bye).await;
    let bye_ok = bob.recv_until("response to BYE", |m| m.status().is_some() && m.cseq() == (3, "BYE".into())).await;
    assert_eq!(bye_ok.status(), Some(200), "{}", bye_ok.start);

    let ended = alice_log.wait_ended(incoming.key).await;
    let end = ended.end.clone().expect("end cause");
    assert_eq!(end.by, Originator::Remote, "{ended:#?}");
    assert!(ended.ended_ms >= ended.connected_ms, "{ended:#?}");
    assert!(!alice_log.seen.iter().any(|e| matches!(e, Event::MalformedMessage { .. })), "{:#?}", alice_log.seen);

    peer.close().await;
    bob.close().await;
    alice.stop().await.unwrap();
}
