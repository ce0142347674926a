//! GRUU (RFC 5627), sans-IO: a REGISTER with an instance id asks for one
//! (`Supported: gruu`); the `pub-gruu` the registrar puts on our binding
//! becomes the Contact of our dialogs, so a peer's in-dialog requests (and
//! an attended transfer's INVITE) reach this device through the registrar
//! whatever connection it is on. Without one, the plain Contact stays.

use std::time::Instant;

use bytes::Bytes;
use webphone::CallRequest;
use webphone::dialog::auth::DigestClient;
use webphone::dialog::register::RegistrationConfig;
use webphone::dialog::{AgentConfig, MediaRequest, Output, UserAgent};
use webphone::sip::{HeaderName, Host, Message, NameAddr, Request, SipUri, Uri};

const INSTANCE: &str = "\"<urn:uuid:5e5d2a8c-1e8f-4b6a-9c4e-2f1d7a9b3c11>\"";
const GRUU: &str = "sip:alice@example.com;gr=urn:uuid:5e5d2a8c-1e8f-4b6a-9c4e-2f1d7a9b3c11";

fn agent() -> UserAgent {
    let mut contact_uri = SipUri::new(Some("k3j2"), Host::Domain("df7jal23ls0d.invalid".into()));
    contact_uri.params.set("transport", Some("ws".into()));
    let mut contact = NameAddr::new(Uri::Sip(contact_uri));
    contact.params.set("+sip.instance", Some(INSTANCE.into()));
    let domain = Host::Domain("example.com".into());
    let registration = RegistrationConfig {
        registrar: Uri::Sip(SipUri::new(None, domain.clone())),
        aor: Uri::Sip(SipUri::new(Some("alice"), domain)),
        display_name: None,
        contact,
        expires: 600,
        retry_min: std::time::Duration::from_secs(1),
        retry_max: std::time::Duration::from_secs(60),
    };
    let cfg = AgentConfig {
        via_transport: "WS",
        via_host: "df7jal23ls0d.invalid".into(),
        user_agent: "test".into(),
        timers: Default::default(),
        seed: Some(7),
        calls: Default::default(),
    };
    UserAgent::new(cfg, registration, DigestClient::new("alice", "pw"))
}

/// The requests the agent sent since the last call, answering media
/// requests with a fake offer.
fn sent(ua: &mut UserAgent, now: Instant) -> Vec<Request> {
    let mut out = Vec::new();
    let mut media = Vec::new();
    while let Some(o) = ua.poll_output() {
        match o {
            Output::Transmit(bytes) => {
                if let Ok(Message::Request(r)) = Message::parse(bytes) {
                    out.push(r);
                }
            }
            Output::Media(MediaRequest::Offer { call, .. }) => media.push(call),
            _ => {}
        }
    }
    for call in media {
        ua.handle_local_sdp(call, Ok(Bytes::from_static(b"v=0\r\n")), now);
        out.extend(sent(ua, now));
    }
    out
}

/// A 200 to `register` listing our binding with `params` added.
fn ok(register: &Request, params: &str) -> Bytes {
    let h = |n: HeaderName| register.headers.get(&n).unwrap().to_string();
    let contact = register.headers.get(&HeaderName::Contact).unwrap();
    let text = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=reg1\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         Contact: {contact}{params}\r\nContent-Length: 0\r\n\r\n",
        h(HeaderName::Via),
        h(HeaderName::From),
        h(HeaderName::To),
        h(HeaderName::CallId),
        h(HeaderName::CSeq),
    );
    Bytes::from(text)
}

/// Registers (with `params` on the binding in the 2xx), then places a call;
/// returns the INVITE's Contact.
fn contact_of_a_call(params: &str) -> String {
    let now = Instant::now();
    let mut ua = agent();
    ua.handle_connected(now, "WS");
    ua.register(now);
    let register = sent(&mut ua, now).into_iter().next().expect("REGISTER");
    assert!(
        register.headers.tokens(&HeaderName::Supported).unwrap().iter().any(|t| t == "gruu"),
        "a REGISTER with an instance id asks for a GRUU"
    );
    ua.handle_message(ok(&register, params), now);
    assert!(ua.is_registered());
    ua.call(CallRequest { target: "bob".into(), ..Default::default() }, now).unwrap();
    let invite = sent(&mut ua, now).into_iter().find(|r| r.method.as_str() == "INVITE").expect("INVITE");
    invite.headers.get(&HeaderName::Contact).unwrap().to_string()
}

#[test]
fn the_public_gruu_becomes_the_dialog_contact() {
    let params =
        format!(";pub-gruu=\"{GRUU}\";temp-gruu=\"sip:tgruu.7hs==jd7vnzga5w7fajsc7-ajd6fabz0f8g5@example.com;gr\"");
    assert_eq!(contact_of_a_call(&params), format!("<{GRUU}>"));
}

#[test]
fn without_a_gruu_the_plain_contact_stays() {
    let contact = contact_of_a_call("");
    assert!(contact.starts_with("<sip:k3j2@df7jal23ls0d.invalid;transport=ws>"), "{contact}");
    // A pub-gruu that is no GRUU (no `gr` parameter) is not taken.
    let contact = contact_of_a_call(";pub-gruu=\"sip:alice@example.com\"");
    assert!(contact.starts_with("<sip:k3j2@"), "{contact}");
}
