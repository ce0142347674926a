//! Puts a parsed SIP message through every typed accessor, the UA's
//! checks and the responses they build, and checks that what we print
//! parses back the same. Shared by `tests/sip_roundtrip.rs` and the
//! `fuzz/fuzz_targets/sip_message.rs` fuzz target (included by path).
#![allow(dead_code)]

use bytes::Bytes;
use webphone::sip::validate::{self, Capabilities};
use webphone::sip::{
    CSeq, Contact, ContentType, Event, Expires, HeaderName, Headers, MAX_MESSAGE_SIZE, MaxForwards, Message,
    MinExpires, MinSe, NameAddr, ParseError, Reason, ReferTo, Replaces, RetryAfter, SessionExpires, StatusCode,
    SubscriptionState, TypedHeader, Uri, Via,
};

/// Runs every accessor and check on whatever `raw` parses to; panics only
/// when an invariant breaks.
pub fn exercise(raw: Bytes) {
    let Ok(msg) = Message::parse(raw) else { return };
    let h = msg.headers();
    roundtrip_all::<Via>(h);
    roundtrip_all::<Contact>(h);
    roundtrip_all::<CSeq>(h);
    roundtrip_all::<ContentType>(h);
    roundtrip_all::<Reason>(h);
    for name in [
        HeaderName::From,
        HeaderName::To,
        HeaderName::Route,
        HeaderName::RecordRoute,
        HeaderName::ReferTo,
        HeaderName::ReferredBy,
        HeaderName::Contact,
    ] {
        if let Some(Ok(a)) = h.name_addr(&name) {
            touch_uri(&a.uri);
            let again = NameAddr::parse(&a.to_string()).expect("a displayed NameAddr parses");
            assert_eq!(again, a);
        }
        if let Ok(list) = h.name_addrs(&name) {
            list.iter().for_each(|a| touch_uri(&a.uri));
        }
    }
    for name in [
        HeaderName::Allow,
        HeaderName::Supported,
        HeaderName::Require,
        HeaderName::ProxyRequire,
        HeaderName::Unsupported,
        HeaderName::Accept,
        HeaderName::AllowEvents,
    ] {
        let _ = h.tokens(&name);
    }
    if let Ok(contacts) = h.typed_all::<Contact>() {
        for c in contacts {
            let _ = c.expires();
            if let Some(a) = c.address() {
                touch_uri(&a.uri);
            }
        }
    }
    if let Some(Ok(r)) = h.typed::<ReferTo>() {
        let _ = r.replaces();
    }
    if let Some(Ok(s)) = h.typed::<SubscriptionState>() {
        let _ = s.expires();
    }
    let _ = h.typed::<Expires>();
    let _ = h.typed::<MinExpires>();
    let _ = h.typed::<MaxForwards>();
    let _ = h.typed::<MinSe>();
    let _ = h.typed::<SessionExpires>();
    let _ = h.typed::<Replaces>();
    let _ = h.typed::<Event>();
    let _ = h.typed_all::<RetryAfter>();
    let body = match &msg {
        Message::Request(r) => &r.body,
        Message::Response(r) => &r.body,
    };
    if let Some((code, reason)) = webphone::sip::sipfrag::status_line(body) {
        assert!((100..700).contains(&code));
        assert_eq!(
            webphone::sip::sipfrag::status_line(webphone::sip::sipfrag::body(code, &reason).as_bytes()),
            Some((code, reason))
        );
    }
    let _ = webphone::sip::redacted(&msg.to_bytes());
    let _ = msg.to_string();
    match &msg {
        Message::Request(r) => {
            touch_uri(&r.uri);
            let resp = match validate::check_request(r, &Capabilities::default()) {
                Ok(()) => validate::response_to(r, StatusCode::OK),
                Err(rejection) => validate::rejection_response(r, &rejection),
            };
            reparses(&Message::Response(resp));
        }
        Message::Response(r) => {
            let _ = validate::check_response(r);
        }
    }
    reparses(&msg);
}

/// A parsed message serializes to bytes that parse again, to the same
/// serialization.
fn reparses(msg: &Message) {
    let bytes = msg.to_bytes();
    match Message::parse(bytes.clone()) {
        Ok(again) => assert_eq!(again.to_bytes(), bytes, "serialization is not stable"),
        // Compact names written long and the Content-Length line can push a
        // message that was just under the limit over it.
        Err(ParseError::TooLarge) => assert!(bytes.len() > MAX_MESSAGE_SIZE),
        Err(e) => panic!("serialized message does not parse ({e}):\n{}", String::from_utf8_lossy(&bytes)),
    }
}

fn roundtrip_all<T: TypedHeader + std::fmt::Display + PartialEq + std::fmt::Debug>(h: &Headers) {
    if let Ok(all) = h.typed_all::<T>() {
        for v in all {
            let shown = v.to_string();
            let again = T::parse(&shown).unwrap_or_else(|e| panic!("displayed {shown:?} does not parse: {e}"));
            assert_eq!(again, v, "{shown:?}");
        }
    }
}

fn touch_uri(uri: &Uri) {
    let _ = (uri.user(), uri.scheme(), uri.to_string());
    if let Some(s) = uri.as_sip() {
        let _ = s.user_unescaped();
        let _ = s.header("Replaces");
    }
    let shown = uri.to_string();
    assert_eq!(Uri::parse(&shown).as_ref(), Ok(uri), "displayed URI {shown:?} differs");
}
