//! Property tests for the SIP message layer.
//!
//! - Structurally valid requests and responses, serialized with `to_bytes`
//!   and parsed again, come back equal: method, URI, version, status, reason,
//!   every header in order, and the body byte for byte. Content-Length is
//!   recomputed on serialization, so it is left out of the generated headers
//!   and checked against the body instead; compact names (`v`, `m`, `i`, ...)
//!   are generated too and come back as the same header (serialization
//!   writes the long name).
//! - Typed views (Via, NameAddr, CSeq, Contact, URIs) round-trip through
//!   `Display` and their parser.
//! - `Message::parse`, every typed accessor and the checks never panic, on
//!   arbitrary bytes and on valid messages with bytes flipped, cut, dropped
//!   or inserted (CR, LF, SP, HTAB, quote, angle brackets, ...). Whatever
//!   parses serializes to something that parses again, identically.
//!
//! 256 cases per property by default (a few seconds in a debug build); set
//! `PROPTEST_CASES` for a longer run.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use webphone::sip::{
    CSeq, Contact, HeaderName, Headers, Host, MAX_MESSAGE_SIZE, MaxForwards, Message, Method, NameAddr, Param, Params,
    Request, Response, SipUri, StatusCode, TelUri, TypedHeader, Uri, Version, Via,
};

#[path = "support/sip_exercise.rs"]
mod sip_exercise;
use sip_exercise::exercise;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..Config::default()
    }
}

// ------------------------------------------------------------------ lexical

/// An RFC 3261 token.
fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9.!%*_+`'~-]{1,12}"
}

/// Text for quoted strings and free-form values: any character but CR and LF.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[^\r\n]{{0,{max}}}")).expect("valid regex")
}

fn quoted_string() -> impl Strategy<Value = String> {
    text(12).prop_map(|t| {
        let mut q = String::from('"');
        for c in t.chars() {
            if c == '"' || c == '\\' {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        q
    })
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,3}".prop_map(Host::Domain),
        "[a-z0-9]{1,20}\\.invalid".prop_map(Host::Domain),
        any::<[u8; 4]>().prop_map(|o| Host::V4(Ipv4Addr::from(o))),
        any::<[u16; 8]>().prop_map(|s| Host::V6(Ipv6Addr::from(s))),
        Just(Host::V6(Ipv6Addr::LOCALHOST)),
        Just(Host::V6("2001:db8::9".parse().expect("v6"))),
    ]
}

fn params_of(value: BoxedStrategy<Option<String>>, max: usize) -> impl Strategy<Value = Params> {
    vec((token(), value), 0..max)
        .prop_map(|ps| Params(ps.into_iter().map(|(name, value)| Param { name, value }).collect()))
}

/// URI parameter values: no quotes (no `"` in a URI), no `?` or `@`.
fn uri_param_value() -> BoxedStrategy<Option<String>> {
    prop_oneof![Just(None), "[A-Za-z0-9.!%*_+`'~:/&$-]{1,12}".prop_map(Some)].boxed()
}

/// Header parameter values: tokens (plus what URIs allow), quoted strings,
/// IPv6 references.
fn header_param_value() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        2 => Just(None),
        4 => "[A-Za-z0-9.!%*_+`'~:/&$@?=-]{1,12}".prop_map(Some),
        2 => quoted_string().prop_map(Some),
        1 => any::<[u16; 8]>().prop_map(|s| Some(format!("[{}]", Ipv6Addr::from(s)))),
    ]
    .boxed()
}

// ------------------------------------------------------------------ URIs

fn user() -> impl Strategy<Value = String> {
    vec(prop_oneof![4 => "[A-Za-z0-9_.!~*'()&=+$,;?/-]", 1 => "%[0-9A-Fa-f]{2}"], 1..12).prop_map(|p| p.concat())
}

fn sip_uri() -> impl Strategy<Value = SipUri> {
    let userinfo = prop_oneof![
        1 => Just((None, None)),
        4 => (user(), proptest::option::weighted(0.15, "[A-Za-z0-9&=+$,_.!~*'()-]{0,8}"))
            .prop_map(|(u, p)| (Some(u), p)),
    ];
    let header =
        ("[A-Za-z][A-Za-z0-9-]{0,8}", vec(prop_oneof!["[A-Za-z0-9_.!~*'()\\[\\]/?:+$-]", "%[0-9A-F]{2}"], 0..8))
            .prop_map(|(k, v)| (k, v.concat()));
    (any::<bool>(), userinfo, host(), any::<Option<u16>>(), params_of(uri_param_value(), 4), vec(header, 0..3))
        .prop_map(|(secure, (user, password), host, port, params, headers)| SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
}

fn tel_uri() -> impl Strategy<Value = TelUri> {
    ("\\+?[0-9][0-9A-F.()*#-]{0,14}", params_of(uri_param_value(), 3))
        .prop_map(|(number, params)| TelUri { number, params })
}

fn uri() -> impl Strategy<Value = Uri> {
    prop_oneof![
        8 => sip_uri().prop_map(Uri::Sip),
        2 => tel_uri().prop_map(Uri::Tel),
        1 => ("(urn|http|mailto|x-[a-z]{1,4})", "[A-Za-z0-9:/._~-]{1,24}")
            .prop_map(|(scheme, rest)| Uri::Other { scheme, rest }),
    ]
}

// ------------------------------------------------------------------ headers

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        3 => prop::sample::select(vec![
            Method::Invite,
            Method::Ack,
            Method::Bye,
            Method::Cancel,
            Method::Register,
            Method::Options,
            Method::Info,
            Method::Update,
            Method::Prack,
            Method::Subscribe,
            Method::Notify,
            Method::Refer,
            Method::Message,
            Method::Publish,
        ]),
        // Extensions; a token that happens to be a known method parses as it.
        1 => token().prop_map(|t| Method::parse(&t).expect("a token is a method")),
    ]
}

fn via() -> impl Strategy<Value = Via> {
    let transport = prop_oneof![
        prop::sample::select(vec!["WSS", "WS", "UDP", "TCP", "TLS", "SCTP"]).prop_map(str::to_string),
        "[A-Z][A-Z0-9-]{0,7}",
    ];
    let received = prop_oneof![
        any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string()),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", Ipv6Addr::from(s))),
    ];
    (
        transport,
        host(),
        any::<Option<u16>>(),
        "z9hG4bK[A-Za-z0-9.!%*_+`'~-]{1,16}",
        proptest::option::of(received),
        proptest::option::of(proptest::option::of(1u16..)),
        params_of(header_param_value(), 3),
    )
        .prop_map(|(transport, host, port, branch, received, rport, extra)| {
            let mut params = vec![Param { name: "branch".into(), value: Some(branch) }];
            if let Some(r) = received {
                params.push(Param { name: "received".into(), value: Some(r) });
            }
            if let Some(p) = rport {
                params.push(Param { name: "rport".into(), value: p.map(|p| p.to_string()) });
            }
            params.extend(extra.0);
            Via { transport, host, port, params: Params(params) }
        })
}

fn display_name() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        1 => "[A-Za-z][A-Za-z .,'-]{0,16}".prop_map(Some),
        1 => text(16).prop_map(Some),
        1 => Just(Some(r#"Bob "the \ builder" <x>, jr."#.to_string())),
    ]
}

fn name_addr() -> impl Strategy<Value = NameAddr> {
    (display_name(), uri(), "[A-Za-z0-9]{1,12}", params_of(header_param_value(), 3)).prop_map(
        |(display, uri, tag, mut params)| {
            params.0.insert(0, Param { name: "tag".into(), value: Some(tag) });
            NameAddr { display, uri, params }
        },
    )
}

fn contact() -> impl Strategy<Value = Contact> {
    let instance = proptest::option::of(
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".prop_map(|u| format!("\"<urn:uuid:{u}>\"")),
    );
    prop_oneof![
        1 => Just(Contact::Star),
        12 => (display_name(), uri(), instance, proptest::option::of(0u32..100_000), params_of(header_param_value(), 2))
            .prop_map(|(display, uri, instance, expires, extra)| {
                let mut params = Vec::new();
                if let Some(i) = instance {
                    params.push(Param { name: "+sip.instance".into(), value: Some(i) });
                    params.push(Param { name: "reg-id".into(), value: Some("1".into()) });
                }
                if let Some(e) = expires {
                    params.push(Param { name: "expires".into(), value: Some(e.to_string()) });
                }
                params.extend(extra.0);
                Contact::Address(NameAddr { display, uri, params: Params(params) })
            }),
    ]
}

fn cseq() -> impl Strategy<Value = CSeq> {
    (any::<u32>(), method()).prop_map(|(seq, method)| CSeq { seq, method })
}

fn call_id() -> impl Strategy<Value = String> {
    r#"[A-Za-z0-9.!%*_+`'~()<>:\\"/\[\]?{}-]{1,24}(@[a-z0-9.-]{1,16})?"#
}

/// Another header with free text as its value: any token name (compact
/// forms of known headers included) but those generated typed above and
/// Content-Length (which serialization recomputes); a value with no CR/LF
/// and no LWS at its ends.
fn extension_header() -> impl Strategy<Value = (HeaderName, String)> {
    let name = prop_oneof![
        4 => token(),
        1 => "X-[A-Za-z-]{1,10}",
        1 => prop::sample::select(vec!["s", "k", "o", "u", "e", "c", "r", "b", "x"]).prop_map(str::to_string),
    ];
    let typed = [
        HeaderName::ContentLength,
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::Contact,
        HeaderName::MaxForwards,
    ];
    (name, text(40)).prop_filter_map("a generated typed header", move |(name, value)| {
        let name = HeaderName::new(&name);
        (!typed.contains(&name)).then(|| (name, value.trim_matches([' ', '\t']).to_string()))
    })
}

#[derive(Clone, Debug)]
struct Common {
    vias: Vec<Via>,
    vias_on_one_line: bool,
    compact: bool,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    cseq: CSeq,
    contacts: Vec<Contact>,
    contacts_on_one_line: bool,
    max_forwards: Option<u32>,
    extra: Vec<(HeaderName, String)>,
    body: Vec<u8>,
}

fn common() -> impl Strategy<Value = Common> {
    (
        (vec(via(), 1..4), any::<bool>(), any::<bool>()),
        (name_addr(), name_addr(), call_id(), cseq()),
        (vec(contact(), 0..3), any::<bool>(), proptest::option::of(0u32..=255)),
        vec(extension_header(), 0..5),
        prop_oneof![1 => Just(Vec::new()), 3 => vec(any::<u8>(), 0..400)],
    )
        .prop_map(
            |(
                (vias, vias_on_one_line, compact),
                (from, to, call_id, cseq),
                (contacts, contacts_on_one_line, max_forwards),
                extra,
                body,
            )| Common {
                vias,
                vias_on_one_line,
                compact,
                from,
                to,
                call_id,
                cseq,
                contacts,
                contacts_on_one_line,
                max_forwards,
                extra,
                body,
            },
        )
}

fn join<T: ToString>(items: &[T]) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
}

impl Common {
    fn headers(&self) -> Headers {
        let name = |long: &str, short: &str| HeaderName::new(if self.compact { short } else { long });
        let mut h = Headers::new();
        if self.vias_on_one_line {
            h.push(name("Via", "v"), join(&self.vias));
        } else {
            for v in &self.vias {
                h.push_typed(v);
            }
        }
        h.push(name("From", "f"), self.from.to_string());
        h.push(name("To", "t"), self.to.to_string());
        h.push(name("Call-ID", "i"), self.call_id.clone());
        h.push_typed(&self.cseq);
        if let Some(mf) = self.max_forwards {
            h.push_typed(&MaxForwards(mf));
        }
        if self.contacts_on_one_line && !self.contacts.is_empty() {
            h.push(name("Contact", "m"), join(&self.contacts));
        } else {
            for c in &self.contacts {
                h.push(name("Contact", "m"), c.to_string());
            }
        }
        for (n, v) in &self.extra {
            h.push(n.clone(), v.clone());
        }
        h
    }

    /// The typed views of `headers` equal what was generated.
    fn check_typed(&self, headers: &Headers) -> Result<(), TestCaseError> {
        prop_assert_eq!(&headers.typed_all::<Via>().expect("Via parses"), &self.vias);
        prop_assert_eq!(&headers.name_addr(&HeaderName::From).expect("From").expect("parses"), &self.from);
        prop_assert_eq!(&headers.name_addr(&HeaderName::To).expect("To").expect("parses"), &self.to);
        prop_assert_eq!(headers.get(&HeaderName::CallId), Some(self.call_id.as_str()));
        prop_assert_eq!(&headers.typed::<CSeq>().expect("CSeq").expect("parses"), &self.cseq);
        prop_assert_eq!(&headers.typed_all::<Contact>().expect("Contact parses"), &self.contacts);
        prop_assert_eq!(headers.typed::<MaxForwards>().map(|m| m.expect("parses").0), self.max_forwards);
        Ok(())
    }
}

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![
        9 => Just(Version::Sip2),
        1 => ("[0-9]{1,2}", "[0-9]{1,2}")
            .prop_filter("SIP/2.0 is Sip2", |(a, b)| (a.as_str(), b.as_str()) != ("2", "0"))
            .prop_map(|(a, b)| Version::Other(format!("SIP/{a}.{b}"))),
    ]
}

fn request() -> impl Strategy<Value = (Request, Common)> {
    (method(), uri(), version(), common()).prop_map(|(method, uri, version, common)| {
        let mut r = Request::new(method, uri);
        r.version = version;
        r.headers = common.headers();
        r.body = Bytes::from(common.body.clone());
        (r, common)
    })
}

fn response() -> impl Strategy<Value = (Response, Common)> {
    (100u16..=699, text(30), version(), common()).prop_map(|(code, reason, version, common)| {
        let mut r = Response::new(StatusCode::new(code).expect("100..=699"));
        r.version = version;
        r.reason = reason;
        r.headers = common.headers();
        r.body = Bytes::from(common.body.clone());
        (r, common)
    })
}

/// The parsed headers less the recomputed Content-Length, which must be the
/// last header and match the body.
fn without_content_length(parsed: &Headers, body: &[u8]) -> Result<Headers, TestCaseError> {
    let last = parsed.iter().last().expect("Content-Length at least");
    prop_assert_eq!(&last.name, &HeaderName::ContentLength);
    prop_assert_eq!(last.value_str(), body.len().to_string());
    prop_assert_eq!(parsed.count(&HeaderName::ContentLength), 1);
    let mut h = parsed.clone();
    h.remove(&HeaderName::ContentLength);
    Ok(h)
}

// ------------------------------------------------------------------ exercising

#[derive(Clone, Debug)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
    Truncate(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let special = prop::sample::select(b"\r\n \t\"<>;,:\\=?@%[]\0\x7f\xff".to_vec());
    prop_oneof![
        2 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        4 => (any::<prop::sample::Index>(), special).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        match m {
            Mutation::Flip(i, b) => {
                let i = i.index(bytes.len());
                bytes[i] ^= b | 1;
            }
            Mutation::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), *b),
            Mutation::Remove(i) => {
                bytes.remove(i.index(bytes.len()));
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        }
    }
    bytes
}

fn valid_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![request().prop_map(|(r, _)| r.to_bytes().to_vec()), response().prop_map(|(r, _)| r.to_bytes().to_vec())]
}

// ------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(config())]

    #[test]
    fn requests_round_trip((req, common) in request()) {
        let bytes = req.to_bytes();
        let Ok(Message::Request(back)) = Message::parse(bytes.clone()) else {
            return Err(TestCaseError::fail(format!("does not parse back:\n{}", String::from_utf8_lossy(&bytes))));
        };
        prop_assert_eq!(&back.method, &req.method);
        prop_assert_eq!(&back.uri, &req.uri);
        prop_assert_eq!(&back.version, &req.version);
        prop_assert_eq!(&back.body, &req.body);
        prop_assert_eq!(&without_content_length(&back.headers, &back.body)?, &req.headers);
        common.check_typed(&back.headers)?;
        // Serialization writes canonical (long) names and is stable.
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn responses_round_trip((resp, common) in response()) {
        let bytes = resp.to_bytes();
        let Ok(Message::Response(back)) = Message::parse(bytes.clone()) else {
            return Err(TestCaseError::fail(format!("does not parse back:\n{}", String::from_utf8_lossy(&bytes))));
        };
        prop_assert_eq!(back.status, resp.status);
        prop_assert_eq!(&back.reason, &resp.reason);
        prop_assert_eq!(&back.version, &resp.version);
        prop_assert_eq!(&back.body, &resp.body);
        prop_assert_eq!(&without_content_length(&back.headers, &back.body)?, &resp.headers);
        common.check_typed(&back.headers)?;
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn typed_views_round_trip(v in via(), a in name_addr(), c in contact(), s in cseq(), u in uri()) {
        prop_assert_eq!(Via::parse(&v.to_string()), Ok(v));
        prop_assert_eq!(NameAddr::parse(&a.to_string()), Some(a));
        prop_assert_eq!(Contact::parse(&c.to_string()), Ok(c));
        prop_assert_eq!(CSeq::parse(&s.to_string()), Ok(s));
        prop_assert_eq!(Uri::parse(&u.to_string()), Ok(u));
    }

    #[test]
    fn valid_messages_pass_every_accessor(bytes in valid_bytes()) {
        exercise(Bytes::from(bytes));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048)) {
        exercise(Bytes::from(bytes));
    }

    #[test]
    fn arbitrary_heads_never_panic(
        start in prop::sample::select(vec!["INVITE sip:a@b SIP/2.0", "SIP/2.0 200 OK", "FOO <sip:x> SIP/2.0 "]),
        lines in vec("[ -~\t]{0,60}", 0..12),
        body in vec(any::<u8>(), 0..64),
    ) {
        let mut raw = format!("{start}\r\n{}\r\n\r\n", lines.join("\r\n")).into_bytes();
        raw.extend_from_slice(&body);
        exercise(Bytes::from(raw));
    }

    #[test]
    fn requests_with_broken_framing_are_answerable_from_their_head(bytes in valid_bytes(), extra in 1usize..100_000) {
        let Ok(Message::Request(req)) = Message::parse(Bytes::from(bytes)) else { return Ok(()) };
        let wire = req.to_bytes();
        let split = wire.windows(4).position(|w| w == b"\r\n\r\n").expect("a head and a body");
        let head = std::str::from_utf8(&wire[..split]).expect("a UTF-8 head");
        let body = &wire[split + 4..];
        let declared = format!("Content-Length: {}", body.len());
        prop_assert!(head.contains(&declared), "{}", head);
        // Declares more than there is, or carries more than the size limit.
        let longer = head.replace(&declared, &format!("Content-Length: {}", body.len() + extra));
        let frame = |head: &str, pad: usize| {
            let mut raw = format!("{head}\r\n\r\n").into_bytes();
            raw.extend_from_slice(body);
            raw.resize(raw.len() + pad, b' ');
            Bytes::from(raw)
        };
        for raw in [frame(&longer, 0), frame(head, MAX_MESSAGE_SIZE)] {
            let e = Message::parse(raw.clone()).expect_err("refused for its framing");
            prop_assert!(e.answer_status().is_some(), "{:?}", e);
            let again = Message::request_head(&raw).expect("the head is readable");
            prop_assert_eq!(&again.headers.get(&HeaderName::CallId), &req.headers.get(&HeaderName::CallId));
            prop_assert_eq!(&again.method, &req.method);
            exercise(raw);
        }
    }

    #[test]
    fn mutated_messages_never_panic(bytes in valid_bytes(), mutations in vec(mutation(), 1..6)) {
        exercise(Bytes::from(mutate(bytes, &mutations)));
    }
}

#[test]
fn torture_messages_pass_every_accessor() {
    // The RFC 4475 messages, when the shared corpus is present (the rfc4475
    // test insists on it; here it only adds inputs).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/rfc4475");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "dat") {
            exercise(Bytes::from(std::fs::read(&path).expect("readable")));
        }
    }
}
