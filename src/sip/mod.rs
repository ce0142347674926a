//! The SIP message layer: parse, inspect and build requests and responses.
//!
//! `webphone` has its own layer because the existing crate it would otherwise
//! use fails on inputs real peers send (IPv6 hosts, compact header names,
//! folded headers, `+sip.instance` parameters, SHA-256 challenges). This
//! layer:
//! - frames one message per buffer ([`Message::parse`]), zero-copy over
//!   [`bytes::Bytes`], and rejects broken framing ([`ParseError`]);
//! - keeps every header verbatim and types the ones a UA acts on on demand
//!   ([`Headers::typed`], [`header`]);
//! - checks received messages the way RFC 3261 §8.2 asks ([`validate`]);
//! - serializes with a Content-Length that always matches the body.

mod message;
mod text;

pub mod header;
pub mod sipfrag;
pub mod uri;
pub mod validate;

pub use header::{
    CSeq, Contact, ContentType, Event, Expires, HeaderError, MaxForwards, MinExpires, MinSe, NameAddr, Reason, ReferTo,
    Replaces, RetryAfter, SessionExpires, SubscriptionState, TypedHeader, Via,
};
pub use message::{
    Header, HeaderName, Headers, MAX_MESSAGE_SIZE, Message, Method, ParseError, Request, Response, StatusCode, Version,
};
pub use text::{Param, Params};

pub use uri::{Host, SipUri, TelUri, Uri};

/// True when `name` can be a header name (an RFC 3261 token).
pub fn is_header_name(name: &str) -> bool {
    text::is_token(name)
}

/// The elements of a comma-separated header value (commas inside quotes
/// and `<...>` do not split), trimmed.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    text::split_top_level(value, b',').map(text::trim_lws).filter(|s| !s.is_empty())
}

/// A received or sent message as text for logs, with the values of
/// Authorization and Proxy-Authorization headers replaced: digest responses
/// never reach a log.
pub fn redacted(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("Authorization") || name.eq_ignore_ascii_case("Proxy-Authorization") {
            out.push_str(name);
            out.push_str(": <redacted>\r\n");
        } else {
            out.push_str(line);
        }
    }
    out
}
