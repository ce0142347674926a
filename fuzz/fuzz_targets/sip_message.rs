//! Parses arbitrary bytes as a SIP message; whatever parses is put through
//! every typed accessor, the UA's checks and the responses they build, and
//! is serialized and parsed again.
//!
//! Seed the corpus with `fuzz/seed-corpus.sh`, then run from the repository
//! root: `RUSTC_BOOTSTRAP=1 cargo fuzz run sip_message -- -max_total_time=600`.

#![no_main]

use std::fmt::{Debug, Display};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use webphone::sip::validate::{self, Capabilities};
use webphone::sip::{
    CSeq, Contact, ContentType, Event, Expires, HeaderName, Headers, MAX_MESSAGE_SIZE, MaxForwards, Message,
    MinExpires, MinSe, NameAddr, ParseError, Reason, ReferTo, Replaces, RetryAfter, SessionExpires, StatusCode,
    SubscriptionState, TypedHeader, Uri, Via,
};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::parse(Bytes::copy_from_slice(data)) else { return };
    let h = msg.headers();

    // Typed views; those we print ourselves must read back the same.
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
    ] {
        if let Some(Ok(a)) = h.name_addr(&name) {
            touch_uri(&a.uri);
            assert_eq!(NameAddr::parse(&a.to_string()).as_ref(), Some(&a), "NameAddr {a}");
        }
        if let Ok(list) = h.name_addrs(&name) {
            list.iter().for_each(|a| touch_uri(&a.uri));
        }
    }
    if let Ok(contacts) = h.typed_all::<Contact>() {
        for c in contacts {
            let _ = c.expires();
            if let Some(a) = c.address() {
                touch_uri(&a.uri);
            }
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
    let _ = h.typed_all::<RetryAfter>();
    let _ = h.typed::<Expires>();
    let _ = h.typed::<MinExpires>();
    let _ = h.typed::<MaxForwards>();
    let _ = h.typed::<MinSe>();
    let _ = h.typed::<SessionExpires>();
    let _ = h.typed::<Replaces>();
    let _ = h.typed::<Event>();
    if let Some(Ok(r)) = h.typed::<ReferTo>() {
        let _ = r.replaces();
    }
    if let Some(Ok(s)) = h.typed::<SubscriptionState>() {
        let _ = s.expires();
    }
    let _ = webphone::sip::redacted(data);

    // The checks, and the responses a UAS would send.
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
});

/// What we serialize parses again, and serializes the same.
fn reparses(msg: &Message) {
    let bytes = msg.to_bytes();
    match Message::parse(bytes.clone()) {
        Ok(again) => assert_eq!(again.to_bytes(), bytes, "serialization is not stable"),
        // Long names and the Content-Length line can push a message that
        // was just under the limit over it.
        Err(ParseError::TooLarge) => assert!(bytes.len() > MAX_MESSAGE_SIZE),
        Err(e) => panic!("serialized message does not parse ({e}): {:?}", String::from_utf8_lossy(&bytes)),
    }
}

fn roundtrip_all<T: TypedHeader + Display + PartialEq + Debug>(h: &Headers) {
    if let Ok(all) = h.typed_all::<T>() {
        for v in all {
            let shown = v.to_string();
            match T::parse(&shown) {
                Ok(again) => assert_eq!(again, v, "{shown:?}"),
                Err(e) => panic!("displayed {shown:?} does not parse: {e}"),
            }
        }
    }
}

fn touch_uri(uri: &Uri) {
    let _ = (uri.user(), uri.scheme());
    if let Some(s) = uri.as_sip() {
        let _ = s.user_unescaped();
        let _ = s.header("Replaces");
    }
    let shown = uri.to_string();
    assert_eq!(Uri::parse(&shown).as_ref(), Ok(uri), "URI {shown:?}");
}
