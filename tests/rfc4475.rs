//! RFC 4475 torture messages against our SIP message layer, with us in the
//! role of a user agent endpoint (not a proxy, not a registrar).
//!
//! The 49 messages live outside the repository, in
//! `../shared/conformance/rfc4475/` beside the clone (CI has it there too);
//! `INDEX.tsv` there names each file and the reaction the RFC asks for. Every
//! message is parsed with [`Message::parse`] and then checked with
//! [`validate::check_request`] (default capabilities) or
//! [`validate::check_response`]; the result is compared with the table
//! below, one row per file. Messages the RFC calls valid are also inspected:
//! the test checks the values an endpoint would act on.
//!
//! Run with `cargo test --test rfc4475 -- --nocapture` to see the summary line.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use webphone::sip::uri::unescape;
use webphone::sip::validate::{self, Capabilities};
use webphone::sip::{
    CSeq, Contact, ContentType, HeaderName, Host, MaxForwards, Message, Method, NameAddr, Request, Response, Uri, Via,
};

/// What happens to a received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// `Message::parse` failed and the head is unreadable or the error is
    /// in it: the message is dropped without a response.
    ParseError,
    /// `Message::parse` refused the request's framing (Content-Length, size)
    /// but its head reads: the UA answers it with this status.
    FramingRejected(u16),
    /// A request that `check_request` refuses with this status.
    Rejected(u16),
    /// A request that passes `check_request`.
    Accepted,
    /// A response that `check_response` discards.
    ResponseDropped,
    /// A response that passes `check_response`.
    ResponseAccepted,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::ParseError => f.write_str("parse error (dropped)"),
            Outcome::FramingRejected(code) => write!(f, "framing error, rejected {code}"),
            Outcome::Rejected(code) => write!(f, "rejected {code}"),
            Outcome::Accepted => f.write_str("accepted"),
            Outcome::ResponseDropped => f.write_str("response dropped"),
            Outcome::ResponseAccepted => f.write_str("response accepted"),
        }
    }
}

use Outcome::{Accepted, FramingRejected, ParseError, Rejected, ResponseAccepted, ResponseDropped};

/// One row per file: the outcome a UA endpoint must produce, derived from the
/// index's reaction column. Where the RFC allows more than one reaction the
/// comment says which one we take.
const EXPECTED: &[(&str, Outcome)] = &[
    // 3.1.1 Valid messages.
    ("wsinv.dat", Accepted),
    // Well-formed; an endpoint answers an unknown method 501 with Allow.
    ("intmeth.dat", Rejected(501)),
    ("esc01.dat", Accepted),
    // Well-formed REGISTER; we are no registrar, so 405 (with Allow).
    ("escnull.dat", Rejected(405)),
    // RE%47IST%45R is an unknown method, not REGISTER: 501.
    ("esc02.dat", Rejected(501)),
    ("lwsdisp.dat", Accepted),
    ("longreq.dat", Accepted),
    // The REGISTER is processed normally (trailing octets ignored): 405 from a UA.
    ("dblreq.dat", Rejected(405)),
    ("semiuri.dat", Accepted),
    ("transports.dat", Accepted),
    // multipart/* bodies are accepted whatever the parts are.
    ("mpart01.dat", Accepted),
    ("unreason.dat", ResponseAccepted),
    ("noreason.dat", ResponseAccepted),
    // 3.1.2 Invalid messages.
    ("badinv01.dat", Rejected(400)),
    // Content-Length 9999 in a 154-byte body. Over a message transport RFC
    // 3261 §18.3 asks for a 400; over a stream transport RFC 4475 lets the
    // element give up on the connection. A WebSocket frame is a message: we
    // answer 400 from the head (the connection is kept).
    ("clerr.dat", FramingRejected(400)),
    // Negative Content-Length: "respond with an error" over UDP, framing
    // error (close) over TCP. As for clerr: 400.
    ("ncl.dat", FramingRejected(400)),
    // CSeq > 2^32-1: 400 (checked before the method, so no 405 here).
    ("scalar02.dat", Rejected(400)),
    ("scalarlg.dat", ResponseDropped),
    // The RFC allows inferring the closing quote; we take the 400.
    ("quotbal.dat", Rejected(400)),
    // 400 or liberal (ignore the brackets): we are liberal, the brackets are
    // not kept, and the INVITE is acceptable.
    ("ltgtruri.dat", Accepted),
    // 400 or liberal (ignore the LWS): we are liberal, the URI is
    // `sip:user@example.com;lr`.
    ("lwsruri.dat", Accepted),
    // Reject as malformed or ignore the extra SP: we ignore it.
    ("lwsstart.dat", Accepted),
    // Reject as malformed or ignore the trailing SP: we ignore it.
    ("trws.dat", Accepted),
    // Acceptable to reject with 400 (we do: headers in a Request-URI).
    ("escruri.dat", Rejected(400)),
    // Date is not checked: the RFC says not to reject unless Date matters.
    ("baddate.dat", Accepted),
    // The RFC allows inferring the <>; we take the 400 (malformed Contact,
    // found before the method check would answer 405).
    ("regbadct.dat", Rejected(400)),
    // The RFC allows ignoring the spaces; we take the 400.
    ("badaspec.dat", Rejected(400)),
    // The archive's file has no empty line ending the header section (a
    // known defect of the RFC's archive, see INDEX.tsv), so it never frames
    // as a message: dropped. The message the RFC means (with the CRLF) gets
    // the 400 it asks for: see `baddn_with_its_missing_crlf_gets_400`.
    ("baddn.dat", ParseError),
    ("badvers.dat", Rejected(505)),
    ("mismatch01.dat", Rejected(400)),
    // 501 (400 also allowed): the unknown method is found first.
    ("mismatch02.dat", Rejected(501)),
    // Status code 4294967301: parse fails, the response is dropped.
    ("bigcode.dat", ParseError),
    // 3.2 Transaction layer.
    // May answer 400 or fall back to RFC 2543 matching: the parse and the
    // checks accept it; the transaction layer deals with the bare cookie.
    ("badbranch.dat", Accepted),
    // 3.3 Application layer.
    ("insuf.dat", Rejected(400)),
    ("unkscm.dat", Rejected(416)),
    // 416 when the scheme never makes sense here (our case), else 404.
    ("novelsc.dat", Rejected(416)),
    // Parses; the 400 is a registrar's; a UA answers REGISTER 405.
    ("unksm2.dat", Rejected(405)),
    // 420 with Unsupported listing the Require tags (Proxy-Require is not an
    // endpoint's business).
    ("bext01.dat", Rejected(420)),
    ("invut.dat", Rejected(415)),
    // Non-registrar endpoint: 405.
    ("regaut01.dat", Rejected(405)),
    ("multi01.dat", Rejected(400)),
    // Two Content-Length values: a framing error, answered 400 as for ncl.
    ("mcl01.dat", FramingRejected(400)),
    // An endpoint discards it (RFC 3261 §8.1.3.3: more than one Via).
    ("bcast.dat", ResponseDropped),
    // An endpoint processes it as if Max-Forwards were still positive.
    ("zeromf.dat", Accepted),
    // The three REGISTERs parse with the values the RFC describes (checked
    // below) and get a UA's 405.
    ("cparam01.dat", Rejected(405)),
    ("cparam02.dat", Rejected(405)),
    ("regescrt.dat", Rejected(405)),
    // 406 (or 400): Accept lacks application/sdp.
    ("sdp01.dat", Rejected(406)),
    // 3.4 Backward compatibility: accepted, body = all octets after the
    // empty line.
    ("inv2543.dat", Accepted),
];

fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/rfc4475");
    assert!(
        dir.join("INDEX.tsv").is_file(),
        "RFC 4475 torture messages not found: expected {}/INDEX.tsv (the shared/ checkout must sit beside the \
         repository clone)",
        dir.display()
    );
    dir
}

/// The index rows: (file, section, title, reaction).
fn index(dir: &Path) -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("INDEX.tsv is readable UTF-8");
    let mut lines = text.lines();
    let header = lines.next().expect("INDEX.tsv has a header line");
    assert_eq!(header.split('\t').collect::<Vec<_>>(), ["file", "section", "title", "class", "reaction", "notes"]);
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 6, "INDEX.tsv row with {} columns: {l}", cols.len());
            (cols[0].to_string(), cols[1].to_string(), cols[2].to_string(), cols[4].to_string())
        })
        .collect()
}

fn read(dir: &Path, file: &str) -> Bytes {
    let path = dir.join(file);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())))
}

fn outcome(raw: Bytes) -> (Outcome, Option<Message>) {
    match Message::parse(raw.clone()) {
        Err(e) => match e.answer_status().zip(Message::request_head(&raw)) {
            Some((status, _)) => (FramingRejected(status.as_u16()), None),
            None => (ParseError, None),
        },
        Ok(Message::Request(req)) => {
            let o = match validate::check_request(&req, &Capabilities::default()) {
                Ok(()) => Accepted,
                Err(rejection) => Rejected(rejection.status.as_u16()),
            };
            (o, Some(Message::Request(req)))
        }
        Ok(Message::Response(resp)) => {
            let o = match validate::check_response(&resp) {
                Ok(()) => ResponseAccepted,
                Err(_) => ResponseDropped,
            };
            (o, Some(Message::Response(resp)))
        }
    }
}

#[test]
fn all_torture_messages_get_the_expected_reaction() {
    let dir = corpus_dir();
    let rows = index(&dir);

    // The index, the table and the directory must name the same 49 files.
    let in_index: BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let in_table: BTreeSet<&str> = EXPECTED.iter().map(|r| r.0).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("corpus directory is readable")
        .map(|e| e.expect("directory entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dat"))
        .collect();
    let on_disk: BTreeSet<&str> = on_disk.iter().map(String::as_str).collect();
    assert_eq!(rows.len(), in_index.len(), "INDEX.tsv names a file twice");
    assert_eq!(EXPECTED.len(), in_table.len(), "the expectation table names a file twice");
    let not_in_table: Vec<_> = in_index.difference(&in_table).collect();
    assert!(not_in_table.is_empty(), "files in INDEX.tsv without an expected outcome: {not_in_table:?}");
    let not_in_index: Vec<_> = in_table.difference(&in_index).collect();
    assert!(not_in_index.is_empty(), "expected outcomes for files missing from INDEX.tsv: {not_in_index:?}");
    assert_eq!(in_index, on_disk, "INDEX.tsv and the .dat files in {} differ", dir.display());
    assert_eq!(rows.len(), 49, "RFC 4475 has 49 torture messages");

    let mut failures = Vec::new();
    for (file, section, title, reaction) in &rows {
        let expected = EXPECTED.iter().find(|(f, _)| f == file).map(|(_, o)| *o).expect("checked above");
        let (got, msg) = outcome(read(&dir, file));
        if got != expected {
            failures.push(format!(
                "{file} (§{section} {title}): expected {expected}, got {got}\n    RFC reaction: {reaction}"
            ));
            continue;
        }
        // A parsed message must survive our own serialisation.
        if let Some(msg) = &msg
            && let Err(e) = Message::parse(msg.to_bytes())
        {
            failures.push(format!("{file}: re-serialised form does not parse: {e}"));
            continue;
        }
        if let Err(why) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_values(file, msg.as_ref()))) {
            let why = why
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| why.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{file} (§{section} {title}): value check failed: {why}"));
        }
    }

    let ok = rows.len() - failures.len();
    println!("rfc4475: {} messages, {ok} as expected", rows.len());
    assert!(
        failures.is_empty(),
        "{} of {} messages not as expected:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------------------------ values

fn req(msg: Option<&Message>) -> &Request {
    match msg {
        Some(Message::Request(r)) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

fn resp(msg: Option<&Message>) -> &Response {
    match msg {
        Some(Message::Response(r)) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn sip(uri: &Uri) -> &webphone::sip::SipUri {
    uri.as_sip().unwrap_or_else(|| panic!("not a SIP URI: {uri}"))
}

fn name_addr(r: &Request, name: HeaderName) -> NameAddr {
    r.headers.name_addr(&name).unwrap_or_else(|| panic!("no {name:?}")).expect("name-addr parses")
}

fn contacts(h: &webphone::sip::Headers) -> Vec<NameAddr> {
    h.typed_all::<Contact>().expect("Contact parses").into_iter().map(|c| c.address().expect("not *").clone()).collect()
}

fn vias(h: &webphone::sip::Headers) -> Vec<Via> {
    h.typed_all::<Via>().expect("Via parses")
}

fn cseq(h: &webphone::sip::Headers) -> CSeq {
    h.typed::<CSeq>().expect("CSeq present").expect("CSeq parses")
}

fn other(name: &str) -> HeaderName {
    HeaderName::new(name)
}

/// Inspects the values of the messages the RFC describes in detail.
fn check_values(file: &str, msg: Option<&Message>) {
    match file {
        "wsinv.dat" => {
            let r = req(msg);
            assert_eq!(r.method, Method::Invite);
            let ruri = sip(&r.uri);
            assert_eq!(
                (ruri.user.as_deref(), ruri.host.to_string().as_str()),
                (Some("vivekg"), "chair-dnrc.example.com")
            );
            assert_eq!(ruri.params.get("unknownparam"), Some(None));
            // Leading zeros.
            assert_eq!(r.headers.typed::<MaxForwards>(), Some(Ok(MaxForwards(68))));
            assert_eq!(cseq(&r.headers), CSeq { seq: 9, method: Method::Invite });
            // Folded headers, unfolded.
            assert_eq!(r.headers.get(&HeaderName::CSeq), Some("0009 INVITE"));
            assert_eq!(r.headers.get(&other("NewFangledHeader")), Some("newfangled value continued newfangled value"));
            let to = name_addr(r, HeaderName::To);
            assert_eq!((to.display.as_deref(), to.tag()), (None, Some("1918181833n")));
            assert_eq!(sip(&to.uri).user.as_deref(), Some("vivekg"));
            let from = name_addr(r, HeaderName::From);
            assert_eq!(from.display.as_deref(), Some(r#"J Rosenberg \""#));
            assert_eq!(from.tag(), Some("98asjd8"));
            // The unknown header with a value that is no generic-param list: verbatim.
            assert_eq!(r.headers.get(&other("unknownheaderwithunusualvalue")), Some(";;,,;;,;"));
            // `s :` is an empty Subject.
            assert_eq!(r.headers.get(&HeaderName::Subject), Some(""));
            let v = vias(&r.headers);
            let got: Vec<_> = v.iter().map(|v| (v.transport.as_str(), v.host.to_string(), v.branch())).collect();
            assert_eq!(
                got,
                [
                    ("UDP", "192.0.2.2".to_string(), Some("390skdjuw")),
                    ("TCP", "spindle.example.com".to_string(), Some("z9hG4bK9ikj8")),
                    ("UDP", "192.168.255.111".to_string(), Some("z9hG4bK30239")),
                ]
            );
            let route = r.headers.name_addrs(&HeaderName::Route).expect("Route parses");
            assert_eq!(route.len(), 1);
            let rp = &sip(&route[0].uri).params;
            assert!(
                rp.contains("lr") && rp.get("unknownwith") == Some(Some("value")) && rp.contains("unknown-no-value")
            );
            let c = contacts(&r.headers);
            assert_eq!(c.len(), 1);
            assert_eq!(c[0].display.as_deref(), Some(r#"Quoted string """#));
            assert_eq!(c[0].params.get("newparam"), Some(Some("newvalue")));
            assert_eq!(c[0].params.get("secondparam"), Some(None));
            assert_eq!(c[0].params.get("q"), Some(Some("0.33")));
            assert_eq!(r.headers.get(&HeaderName::ContentLength), Some("150"));
            assert_eq!(r.body.len(), 150);
            assert!(r.body.starts_with(b"v=0\r\n") && r.body.ends_with(b"a=rtpmap:31 LPC\r\n"));
            let ct = r.headers.typed::<ContentType>().expect("present").expect("parses");
            assert_eq!(ct.media_type, "application/sdp");
        }
        "intmeth.dat" => {
            let r = req(msg);
            let method = "!interesting-Method0123456789_*+`.%indeed'~";
            assert_eq!(r.method, Method::Extension(method.to_string()));
            assert_eq!(cseq(&r.headers), CSeq { seq: 139122385, method: Method::Extension(method.to_string()) });
            let ruri = sip(&r.uri);
            assert_eq!(ruri.user.as_deref(), Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"));
            assert_eq!(ruri.password.as_deref(), Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"));
            assert_eq!(ruri.host, Host::Domain("example.com".into()));
            assert!(ruri.headers.is_empty() && ruri.params.is_empty());
            // Quoted-pairs: BEL, NUL and DEL, each escaped with a backslash.
            let to = name_addr(r, HeaderName::To);
            assert_eq!(to.display.as_deref(), Some("BEL:\u{7} NUL:\u{0} DEL:\u{7f}"));
            assert_eq!(sip(&to.uri).user.as_deref(), Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"));
            let from = name_addr(r, HeaderName::From);
            assert_eq!(from.display.as_deref(), Some("token1~` token2'+_ token3*%!.-"));
            assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
            assert_eq!(from.params.value("fromParam''~+*_!.-%").as_deref(), Some("работающий"));
            assert_eq!(r.headers.get(&HeaderName::CallId), Some(r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#));
            assert_eq!(r.headers.get(&other("extensionHeader-!.%*+_`'~")), Some("\u{feff}大停電"));
            assert_eq!(r.headers.typed::<MaxForwards>(), Some(Ok(MaxForwards(255))));
            // The 501 lists what we do support.
            let rej = validate::check_request(r, &Capabilities::default()).expect_err("501");
            let resp = validate::rejection_response(r, &rej);
            assert!(resp.headers.get(&HeaderName::Allow).is_some_and(|a| a.contains("INVITE")));
            assert_eq!(resp.headers.get(&HeaderName::CallId), r.headers.get(&HeaderName::CallId));
        }
        "esc01.dat" => {
            let r = req(msg);
            let ruri = sip(&r.uri);
            assert_eq!(ruri.user.as_deref(), Some("sips%3Auser%40example.com"));
            assert_eq!(ruri.user_unescaped().as_deref(), Some("sips:user@example.com"));
            assert_eq!(ruri.host, Host::Domain("example.net".into()));
            let to = name_addr(r, HeaderName::To);
            assert_eq!(sip(&to.uri).user_unescaped().as_deref(), Some("user"));
            let from = name_addr(r, HeaderName::From);
            assert_eq!(sip(&from.uri).user_unescaped().as_deref(), Some("I have spaces"));
            // The folded Contact.
            let c = contacts(&r.headers);
            assert_eq!(c.len(), 1);
            let cu = sip(&c[0].uri);
            assert_eq!(cu.user_unescaped().as_deref(), Some("caller"));
            assert_eq!(cu.params.get("%6C%72"), Some(None));
            let v = cu.params.get("n%61me").flatten().expect("n%61me=...");
            // Unescaped once: "value%41", never "valueA".
            assert_eq!(unescape(v), "value%41");
            assert_eq!(r.body.len(), 150);
        }
        "escnull.dat" => {
            let r = req(msg);
            assert_eq!(r.method, Method::Register);
            let to = name_addr(r, HeaderName::To);
            let user = sip(&to.uri).user_unescaped().expect("user");
            assert_eq!(user, "null-\0-null");
            assert_eq!(user.len(), 11, "%00 must not shorten the AOR");
            let c = contacts(&r.headers);
            let users: Vec<_> = c.iter().map(|a| sip(&a.uri).user_unescaped().expect("user")).collect();
            assert_eq!(users, ["\0", "\0\0"]);
            assert_ne!(c[0].uri, c[1].uri, "two distinct contacts");
        }
        "esc02.dat" => {
            let r = req(msg);
            assert_eq!(r.method, Method::Extension("RE%47IST%45R".into()));
            assert_ne!(r.method, Method::Register);
            assert_eq!(cseq(&r.headers).method, Method::Extension("RE%47IST%45R".into()));
            assert_eq!(name_addr(r, HeaderName::To).display.as_deref(), Some("%Z%45"));
            assert_eq!(name_addr(r, HeaderName::From).display.as_deref(), Some("%Z%45"));
            let hosts: Vec<_> = contacts(&r.headers).iter().map(|c| sip(&c.uri).host.to_string()).collect();
            assert_eq!(hosts, ["host1.example.com", "host3.example.com"]);
            assert_eq!(r.headers.get(&other("C%6Fntact")), Some("<sip:alias2@host2.example.com>"));
            assert_eq!(vias(&r.headers)[0].branch(), Some("z9hG4bK209%fzsnel234"));
        }
        "lwsdisp.dat" => {
            let r = req(msg);
            let from = name_addr(r, HeaderName::From);
            assert_eq!(from.display.as_deref(), Some("caller"));
            assert_eq!(sip(&from.uri).user.as_deref(), Some("caller"));
            assert_eq!(from.tag(), Some("323"));
        }
        "longreq.dat" => {
            let r = req(msg);
            let to = name_addr(r, HeaderName::To);
            let extreme = "extreme".repeat(10);
            assert_eq!(to.display.as_deref(), Some(format!("I have a user name of {extreme} proportion").as_str()));
            let tu = sip(&to.uri);
            assert_eq!(tu.port, Some(6000));
            let long = "long".repeat(20);
            assert_eq!(tu.params.get("unknownparam1"), Some(Some(format!("very{long}value").as_str())));
            assert_eq!(tu.params.get(&format!("longparam{}", "name".repeat(25))), Some(Some("shortvalue")));
            assert_eq!(tu.params.get(&format!("very{}ParameterNameWithNoValue", "long".repeat(25))), Some(None));
            let from = name_addr(r, HeaderName::From);
            let caller = "amazinglylongcallername".repeat(5);
            assert_eq!(sip(&from.uri).user.as_deref(), Some(caller.as_str()));
            assert_eq!(from.tag().map(str::len), Some(155));
            assert_eq!(from.params.0.len(), 3);
            assert_eq!(
                r.headers.get(&HeaderName::CallId),
                Some(format!("longreq.one{}longcallid", "really".repeat(20)).as_str())
            );
            let v = vias(&r.headers);
            assert_eq!(v.len(), 34);
            assert!(v.iter().all(|v| v.transport == "TCP"));
            assert_eq!(v[0].host, Host::Domain("sip33.example.com".into()));
            let last = v.last().expect("34 Vias");
            assert_eq!(last.params.get("received"), Some(Some("192.0.2.5")));
            assert_eq!(last.branch(), Some(format!("very{}branchvalue", "long".repeat(50)).as_str()));
            let unknown = format!("Unknown-{}-Name", "Long".repeat(20));
            let value = r.headers.get(&other(&unknown)).expect("long unknown header");
            assert!(value.starts_with(&format!("unknown-{long}-value; unknown-{long}-parameter-name = ")));
            assert_eq!(sip(&contacts(&r.headers)[0].uri).user.as_deref(), Some(caller.as_str()));
            assert_eq!(r.body.len(), 150);
        }
        "dblreq.dat" => {
            let r = req(msg);
            assert_eq!(r.method, Method::Register);
            assert_eq!(r.headers.get(&HeaderName::CallId), Some("dblreq.0ha0isndaksdj99sdfafnl3lk233412"));
            assert!(r.body.is_empty(), "Content-Length 0: the trailing INVITE is not the body");
            assert!(!r.to_bytes().windows(6).any(|w| w == b"INVITE"), "the trailing octets are not re-sent");
        }
        "semiuri.dat" => {
            let r = req(msg);
            let ruri = sip(&r.uri);
            assert_eq!(ruri.user.as_deref(), Some("user;par=u%40example.net"));
            assert_eq!(ruri.user_unescaped().as_deref(), Some("user;par=u@example.net"));
            assert_eq!(ruri.host, Host::Domain("example.com".into()));
            assert!(ruri.params.is_empty());
            assert_eq!(
                r.headers.get(&HeaderName::Accept),
                Some(
                    "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag"
                )
            );
        }
        "transports.dat" => {
            let r = req(msg);
            let got: Vec<_> = vias(&r.headers).iter().map(|v| (v.transport.clone(), v.host.to_string())).collect();
            let want: Vec<_> = [("UDP", 1), ("SCTP", 2), ("TLS", 3), ("UNKNOWN", 4), ("TCP", 5)]
                .iter()
                .map(|(t, n)| (t.to_string(), format!("t{n}.example.com")))
                .collect();
            assert_eq!(got, want);
            assert_eq!(r.headers.get(&HeaderName::CallId), Some("transports.kijh4akdnaqjkwendsasfdj"));
        }
        "mpart01.dat" => {
            let r = req(msg);
            assert_eq!(r.method, Method::Message);
            assert_eq!(r.body.len(), 553);
            assert_eq!(r.body.iter().filter(|&&b| b == 0).count(), 2, "the binary part keeps its NULs");
            let ct = r.headers.typed::<ContentType>().expect("present").expect("parses");
            assert_eq!(ct.media_type, "multipart/mixed");
            assert_eq!(ct.params.get("boundary"), Some(Some("7a9cbec02ceef655")));
            // The body survives serialisation byte for byte.
            assert_eq!(Message::parse(r.to_bytes()).expect("parses").body(), &r.body);
        }
        "unreason.dat" => {
            let r = resp(msg);
            assert_eq!(r.status.as_u16(), 200);
            assert_eq!(r.reason, "= 2**3 * 5**2 но сто девяносто девять - простое");
            assert_eq!(r.body.len(), 154);
        }
        "noreason.dat" => {
            let r = resp(msg);
            assert_eq!(r.status.as_u16(), 100);
            assert_eq!(r.reason, "");
        }
        "inv2543.dat" => {
            let r = req(msg);
            assert_eq!(r.headers.get(&HeaderName::ContentLength), None);
            assert_eq!(r.headers.get(&HeaderName::MaxForwards), None);
            assert_eq!(vias(&r.headers)[0].branch(), None);
            assert_eq!(name_addr(r, HeaderName::From).tag(), None);
            assert_eq!(r.body.len(), 105);
            assert!(r.body.starts_with(b"v=0\r\n") && r.body.ends_with(b"m=audio 49217 RTP/AVP 0\r\n"));
        }
        "cparam01.dat" => {
            // An addr-spec: the parameter belongs to the header, not the URI.
            let r = req(msg);
            let c = contacts(&r.headers);
            assert_eq!(c.len(), 1);
            assert_eq!(c[0].params.get("unknownparam"), Some(None));
            let u = sip(&c[0].uri);
            assert!(u.params.is_empty());
            assert_eq!(u.user.as_deref(), Some("+19725552222"));
        }
        "cparam02.dat" => {
            // In <>: the parameter belongs to the URI.
            let r = req(msg);
            let c = contacts(&r.headers);
            assert_eq!(c.len(), 1);
            assert!(c[0].params.is_empty());
            assert_eq!(sip(&c[0].uri).params.get("unknownparam"), Some(None));
            assert_eq!(c[0].to_string(), "<sip:+19725552222@gw1.example.net;unknownparam>");
        }
        "regescrt.dat" => {
            let r = req(msg);
            let c = contacts(&r.headers);
            assert_eq!(c.len(), 1, "compact `M:` is Contact");
            let u = sip(&c[0].uri);
            assert_eq!(u.headers, [("Route".to_string(), "%3Csip:sip.example.com%3E".to_string())]);
            assert_eq!(u.header("route").as_deref(), Some("<sip:sip.example.com>"));
            assert_eq!(c[0].to_string(), "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>");
        }
        "bcast.dat" => {
            let r = resp(msg);
            let v = vias(&r.headers);
            assert_eq!(v.len(), 2);
            assert_eq!(v[1].host, Host::V4("255.255.255.255".parse().expect("v4")));
            assert_eq!(validate::check_response(r).map_err(|e| e.0), Err("more than one Via"));
        }
        "zeromf.dat" => {
            let r = req(msg);
            assert_eq!(r.headers.typed::<MaxForwards>(), Some(Ok(MaxForwards(0))));
        }
        "bext01.dat" => {
            let r = req(msg);
            let rej = validate::check_request(r, &Capabilities::default()).expect_err("420");
            let resp = validate::rejection_response(r, &rej);
            assert_eq!(
                resp.headers.get(&HeaderName::Unsupported),
                Some("nothingSupportsThis, nothingSupportsThisEither")
            );
        }
        "ltgtruri.dat" => {
            let r = req(msg);
            assert_eq!(r.uri.to_string(), "sip:user@example.com");
            assert!(r.to_bytes().starts_with(b"INVITE sip:user@example.com SIP/2.0\r\n"));
        }
        "lwsruri.dat" => {
            let r = req(msg);
            assert_eq!(sip(&r.uri).params.get("lr"), Some(None));
            assert!(r.to_bytes().starts_with(b"INVITE sip:user@example.com;lr SIP/2.0\r\n"));
        }
        "lwsstart.dat" => {
            let r = req(msg);
            assert!(r.to_bytes().starts_with(b"INVITE sip:user@example.com SIP/2.0\r\n"));
        }
        "trws.dat" => {
            let r = req(msg);
            assert!(r.to_bytes().starts_with(b"OPTIONS sip:remote-target@example.com SIP/2.0\r\n"));
        }
        "badvers.dat" => {
            let r = req(msg);
            assert_ne!(r.version, webphone::sip::Version::Sip2);
        }
        _ => {}
    }
}

#[test]
fn baddn_with_its_missing_crlf_gets_400() {
    let dir = corpus_dir();
    let raw = read(&dir, "baddn.dat");
    assert!(!raw.windows(4).any(|w| w == b"\r\n\r\n"), "the archive's baddn.dat has no empty line");
    let mut fixed = raw.to_vec();
    fixed.extend_from_slice(b"\r\n");
    let (got, _) = outcome(Bytes::from(fixed));
    assert_eq!(got, Rejected(400), "non-token display names (`Bell, Alexander`) are malformed");
}
