//! Parsing speed of our SIP layer against `rsip` 0.4 on the same bytes: a
//! Chrome/JsSIP INVITE as a UA receives it through a WebSocket proxy
//! (double Record-Route, Via with received/rport, ~1 KB audio SDP offer),
//! and the 200 OK answering it.
//!
//! Groups, each with both libraries on both messages:
//! - `parse`: bytes to a message;
//! - `parse_serialize`: bytes to a message and back to bytes;
//! - `parse_typed`: bytes to a message, then typed top Via, From, To, CSeq,
//!   Call-ID and Contact (what a UA reads first).
//!
//! The Contacts carry no `+sip.instance="<urn:uuid:...>"`: rsip 0.4 fails
//! to type a Contact with that quoted parameter, and the comparison needs
//! both libraries to succeed on the same bytes.
//!
//! Run: `cargo bench --bench sip_parse` (medians are in
//! `target/criterion/<group>/<library>/<message>/new/estimates.json`).

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rsip::prelude::*;
use webphone::sip::{CSeq, Contact, HeaderName, Message, Via};

const SDP_OFFER: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS 6d1c1a3e-2b7e-4d33-9d0f-3c5c1b0e9f51\r\n\
m=audio 50170 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n\
c=IN IP4 198.51.100.7\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:3348148302 1 udp 2122260223 192.168.1.23 50170 typ host generation 0 network-id 1\r\n\
a=candidate:1457230174 1 udp 1686052607 198.51.100.7 50170 typ srflx raddr 192.168.1.23 rport 50170 generation 0 network-id 1\r\n\
a=candidate:2199032595 1 tcp 1518280447 192.168.1.23 9 typ host tcptype active generation 0 network-id 1\r\n\
a=ice-ufrag:Q3xT\r\n\
a=ice-pwd:5xq3LbHgJXnZr9ZHhE2b1mXq\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=sendrecv\r\n\
a=msid:6d1c1a3e-2b7e-4d33-9d0f-3c5c1b0e9f51 0c8f6a5d-1d2e-4f0b-8a8e-2f6b3c1d4e5f\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=fmtp:63 111/111\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:1732846380 cname:k2QwJx1b8h3Y6d2Q\r\n\
a=ssrc:1732846380 msid:6d1c1a3e-2b7e-4d33-9d0f-3c5c1b0e9f51 0c8f6a5d-1d2e-4f0b-8a8e-2f6b3c1d4e5f\r\n";

const SDP_ANSWER: &str = "v=0\r\n\
o=- 1684219312 1684219313 IN IP4 203.0.113.20\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=msid-semantic: WMS bot\r\n\
m=audio 40118 UDP/TLS/RTP/SAVPF 111 0 126\r\n\
c=IN IP4 203.0.113.20\r\n\
a=rtcp:40118 IN IP4 203.0.113.20\r\n\
a=candidate:1 1 udp 2130706431 203.0.113.20 40118 typ host generation 0\r\n\
a=ice-ufrag:b0tU\r\n\
a=ice-pwd:Zk4r8LmN2qX7pV1sT9wY3cD5\r\n\
a=fingerprint:sha-256 1F:0E:9B:44:AA:21:7C:3D:52:E8:90:0B:C6:71:5A:DF:38:84:12:6E:F5:09:B7:CC:2A:63:E1:4D:90:7F:08:35\r\n\
a=setup:active\r\n\
a=mid:0\r\n\
a=sendrecv\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:2897312044 cname:bot\r\n";

fn invite() -> Bytes {
    let head = "INVITE sip:agent1001@k7d2f0s9q1ab.invalid;transport=ws SIP/2.0\r\n\
Via: SIP/2.0/WSS 203.0.113.5:443;branch=z9hG4bKc6f0.4a3b9d1e8f7c6b5a4d3e2f1a0b9c8d7e.0;rport\r\n\
Via: SIP/2.0/WSS df7jal23ls0d.invalid;rport=55123;received=198.51.100.7;branch=z9hG4bK5573861\r\n\
Record-Route: <sip:203.0.113.5:443;transport=ws;r2=on;lr=on;ftag=l2eg3ir6mt;did=b21.5f41>\r\n\
Record-Route: <sip:203.0.113.5;r2=on;lr=on;ftag=l2eg3ir6mt;did=b21.5f41>\r\n\
Max-Forwards: 69\r\n\
To: \"Agent 1001\" <sip:1001@pbx.example.com>\r\n\
From: \"Maria Gonzalez (Sales)\" <sip:2002@pbx.example.com>;tag=l2eg3ir6mt\r\n\
Call-ID: 8bvq0ffkp6rsgfvb0p2c\r\n\
CSeq: 9152 INVITE\r\n\
Contact: <sip:p2t4k8m1@df7jal23ls0d.invalid;transport=ws;alias=198.51.100.7~55123~6;ob>;+sip.ice\r\n\
Content-Type: application/sdp\r\n\
Session-Expires: 90\r\n\
Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY\r\n\
Supported: timer,ice,replaces,outbound\r\n\
User-Agent: JsSIP 3.10.1\r\n";
    Bytes::from(format!("{head}Content-Length: {}\r\n\r\n{SDP_OFFER}", SDP_OFFER.len()))
}

fn ok_200() -> Bytes {
    let head = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/WSS 203.0.113.5:443;branch=z9hG4bKc6f0.4a3b9d1e8f7c6b5a4d3e2f1a0b9c8d7e.0;rport=443;received=203.0.113.5\r\n\
Via: SIP/2.0/WSS df7jal23ls0d.invalid;rport=55123;received=198.51.100.7;branch=z9hG4bK5573861\r\n\
Record-Route: <sip:203.0.113.5:443;transport=ws;r2=on;lr=on;ftag=l2eg3ir6mt;did=b21.5f41>\r\n\
Record-Route: <sip:203.0.113.5;r2=on;lr=on;ftag=l2eg3ir6mt;did=b21.5f41>\r\n\
To: \"Agent 1001\" <sip:1001@pbx.example.com>;tag=a94c1d2e7f\r\n\
From: \"Maria Gonzalez (Sales)\" <sip:2002@pbx.example.com>;tag=l2eg3ir6mt\r\n\
Call-ID: 8bvq0ffkp6rsgfvb0p2c\r\n\
CSeq: 9152 INVITE\r\n\
Contact: <sip:p9x3k1v7@k7d2f0s9q1ab.invalid;transport=ws;ob>;expires=3600\r\n\
Allow: INVITE,ACK,CANCEL,BYE,UPDATE,OPTIONS,REFER,INFO,NOTIFY,MESSAGE\r\n\
Supported: timer,replaces,outbound\r\n\
Require: timer\r\n\
Session-Expires: 90;refresher=uac\r\n\
Content-Type: application/sdp\r\n\
Server: webphone 0.1.0\r\n";
    Bytes::from(format!("{head}Content-Length: {}\r\n\r\n{SDP_ANSWER}", SDP_ANSWER.len()))
}

/// Typed access with our layer: top Via, From, To, CSeq, Call-ID, Contact.
fn webphone_typed(msg: &Message) -> usize {
    let h = msg.headers();
    let via = h.typed::<Via>().expect("Via").expect("valid Via");
    let from = h.name_addr(&HeaderName::From).expect("From").expect("valid From");
    let to = h.name_addr(&HeaderName::To).expect("To").expect("valid To");
    let cseq = h.typed::<CSeq>().expect("CSeq").expect("valid CSeq");
    let call_id = h.get(&HeaderName::CallId).expect("Call-ID");
    let contact = h.typed::<Contact>().expect("Contact").expect("valid Contact");
    black_box((&via, &from, &to, &cseq, call_id, &contact));
    via.params.0.len() + from.params.0.len() + to.params.0.len() + cseq.seq as usize + call_id.len()
}

/// The same with rsip's typed conversions.
fn rsip_typed(msg: &rsip::SipMessage) -> usize {
    let via = msg.via_header().expect("Via").typed().expect("valid Via");
    let from = msg.from_header().expect("From").typed().expect("valid From");
    let to = msg.to_header().expect("To").typed().expect("valid To");
    let cseq = msg.cseq_header().expect("CSeq").typed().expect("valid CSeq");
    let call_id = msg.call_id_header().expect("Call-ID").value();
    let contact = msg.contact_header().expect("Contact").typed().expect("valid Contact");
    black_box((&via, &from, &to, &cseq, call_id, &contact));
    via.params.len() + from.params.len() + to.params.len() + cseq.seq as usize + call_id.len()
}

fn inputs() -> [(&'static str, Bytes); 2] {
    [("invite", invite()), ("200ok", ok_200())]
}

fn bench(c: &mut Criterion) {
    // Both libraries must read both messages, the same way, before timing.
    for (name, bytes) in inputs() {
        let ours = Message::parse(bytes.clone()).unwrap_or_else(|e| panic!("webphone: {name}: {e}"));
        let theirs = rsip::SipMessage::try_from(bytes.clone()).unwrap_or_else(|e| panic!("rsip: {name}: {e:?}"));
        assert_eq!(webphone_typed(&ours), rsip_typed(&theirs), "{name}: typed views differ");
        assert_eq!(ours.body().len(), theirs.body().len(), "{name}: bodies differ");
        assert!(Message::parse(ours.to_bytes()).is_ok() && rsip::SipMessage::try_from(theirs.to_string()).is_ok());
    }

    let mut group = c.benchmark_group("parse");
    for (name, bytes) in inputs() {
        group.bench_with_input(BenchmarkId::new("webphone", name), &bytes, |b, bytes| {
            b.iter(|| Message::parse(black_box(bytes.clone())).expect("parses"))
        });
        group.bench_with_input(BenchmarkId::new("rsip", name), &bytes, |b, bytes| {
            b.iter(|| rsip::SipMessage::try_from(black_box(bytes.clone())).expect("parses"))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("parse_serialize");
    for (name, bytes) in inputs() {
        group.bench_with_input(BenchmarkId::new("webphone", name), &bytes, |b, bytes| {
            b.iter(|| Message::parse(black_box(bytes.clone())).expect("parses").to_bytes())
        });
        group.bench_with_input(BenchmarkId::new("rsip", name), &bytes, |b, bytes| {
            b.iter(|| Bytes::from(rsip::SipMessage::try_from(black_box(bytes.clone())).expect("parses")))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("parse_typed");
    for (name, bytes) in inputs() {
        group.bench_with_input(BenchmarkId::new("webphone", name), &bytes, |b, bytes| {
            b.iter(|| webphone_typed(&Message::parse(black_box(bytes.clone())).expect("parses")))
        });
        group.bench_with_input(BenchmarkId::new("rsip", name), &bytes, |b, bytes| {
            b.iter(|| rsip_typed(&rsip::SipMessage::try_from(black_box(bytes.clone())).expect("parses")))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
