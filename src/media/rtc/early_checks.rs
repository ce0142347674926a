//! Answers the connectivity checks a remote ICE agent sends before we know
//! its credentials (RFC 8445 §7.3: a check is answered with the local
//! password alone, which we have from the moment we offer).
//!
//! A browser that receives our offer starts checking our candidates at
//! once, while our answer is still on its way through SIP. webrtc's agent
//! has no remote credentials yet and drops those checks, so the browser
//! learns that its path works only from its next check after our answer
//! arrives (Chromium paces them about 50 ms apart), and its DTLS handshake,
//! and so its first RTP, waits for that. The peer's sockets answer such
//! checks here instead, from the time of our first offer until the answer
//! is applied: the browser's path is valid before our answer even arrives,
//! and its DTLS ClientHello waits in the socket for our agent to connect
//! (see `socket`).
//!
//! Only a Binding request whose USERNAME starts with our username fragment
//! and whose MESSAGE-INTEGRITY verifies with our password is answered; the
//! answer is the success response webrtc's agent would send (the request's
//! transaction, XOR-MAPPED-ADDRESS of its source, MESSAGE-INTEGRITY,
//! FINGERPRINT). Nothing else is answered; every other datagram goes to the
//! agent as before.

use std::fmt;
use std::net::SocketAddr;

use rtc::crypto::providers::RingCrypto;
use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message, Setter};
use rtc::stun::textattrs::TextAttribute;
use rtc::stun::xoraddr::XorMappedAddress;

/// Our ICE username fragment and password, as offered.
#[derive(Clone)]
pub(crate) struct LocalIce {
    ufrag: String,
    pwd: String,
}

impl fmt::Debug for LocalIce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalIce").field("ufrag", &self.ufrag).field("pwd", &"<redacted>").finish()
    }
}

impl LocalIce {
    /// Credentials from our own SDP's `a=ice-ufrag` / `a=ice-pwd`.
    pub(crate) fn new(ufrag: String, pwd: String) -> LocalIce {
        LocalIce { ufrag, pwd }
    }

    /// The success response to `request` from `from`, if it is a Binding
    /// request for us that verifies with our password; `None` otherwise.
    pub(crate) fn answer(&self, request: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        let mut m = Message::new();
        m.unmarshal_binary(request).ok()?;
        if m.typ != BINDING_REQUEST {
            return None;
        }
        let username = TextAttribute::get_from_as(&m, ATTR_USERNAME).ok()?;
        let (ours, _theirs) = username.text.split_once(':')?;
        if ours != self.ufrag {
            return None;
        }
        FINGERPRINT.check(&m).ok()?;
        MessageIntegrity::check(&mut m, self.pwd.as_bytes(), &RingCrypto).ok()?;
        let mut out = Message::new();
        let setters: [Box<dyn Setter>; 5] = [
            Box::new(m),
            Box::new(BINDING_SUCCESS),
            Box::new(XorMappedAddress { ip: from.ip(), port: from.port() }),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(self.pwd.clone(), &RingCrypto)),
            Box::new(FINGERPRINT),
        ];
        out.build(&setters).ok()?;
        Some(out.raw)
    }
}

/// A Binding request as a remote agent sends it, with a fixed transaction
/// id (for tests and the fuzz target).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn check_for_tests(username: &str, pwd: &str) -> Vec<u8> {
    use rtc::stun::message::TransactionId;
    let mut m = Message::new();
    let setters: [Box<dyn Setter>; 5] = [
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId([7; 12])),
        Box::new(TextAttribute::new(ATTR_USERNAME, username.into())),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(pwd.into(), &RingCrypto)),
        Box::new(FINGERPRINT),
    ];
    m.build(&setters).map(|()| m.raw).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use rtc::stun::message::TransactionId;

    use super::*;

    fn check(username: &str, pwd: &str) -> (Vec<u8>, TransactionId) {
        (check_for_tests(username, pwd), TransactionId([7; 12]))
    }

    fn ours() -> LocalIce {
        LocalIce::new("ab12".into(), "0123456789abcdefghijklmn".into())
    }

    /// A check for us is answered with a response the checking agent
    /// accepts: its transaction, our password's integrity, its source.
    #[test]
    fn a_check_for_us_gets_a_verifiable_success() {
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let (request, tid) = check("ab12:zz99", "0123456789abcdefghijklmn");
        let raw = ours().answer(&request, from).expect("answered");
        let mut response = Message::new();
        response.unmarshal_binary(&raw).unwrap();
        assert_eq!(response.typ, BINDING_SUCCESS);
        assert_eq!(response.transaction_id, tid);
        MessageIntegrity::check(&mut response, b"0123456789abcdefghijklmn", &RingCrypto).unwrap();
        FINGERPRINT.check(&response).unwrap();
        let mut mapped = XorMappedAddress { ip: [0, 0, 0, 0].into(), port: 0 };
        use rtc::stun::message::Getter;
        mapped.get_from(&response).unwrap();
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), from);
    }

    /// Another agent's check, a wrong password, a response, garbage: not
    /// answered.
    #[test]
    fn anything_else_is_left_alone() {
        let from: SocketAddr = "[::1]:40000".parse().unwrap();
        let us = ours();
        assert!(us.answer(&check("cd34:zz99", "0123456789abcdefghijklmn").0, from).is_none());
        assert!(us.answer(&check("ab12:zz99", "wrong-password-wrong-pwd").0, from).is_none());
        assert!(us.answer(&check("ab12", "0123456789abcdefghijklmn").0, from).is_none());
        let answered = us.answer(&check("ab12:zz99", "0123456789abcdefghijklmn").0, from).unwrap();
        assert!(us.answer(&answered, from).is_none(), "a response is not a request");
        assert!(us.answer(&[0, 1, 0, 0], from).is_none());
        assert!(us.answer(&[], from).is_none());
        assert!(!format!("{us:?}").contains("0123456789"), "the password stays out of Debug");
    }

    mod prop {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Arbitrary bytes, and valid checks with any byte changed, never
            /// panic; a changed check is answered only if the change left it
            /// valid for us.
            #[test]
            fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), at in any::<usize>(), to in any::<u8>()) {
                let from: SocketAddr = "127.0.0.1:1".parse().unwrap();
                let us = ours();
                let _ = us.answer(&bytes, from);
                let (mut request, _) = check("ab12:zz99", "0123456789abcdefghijklmn");
                let i = at % request.len();
                request[i] = to;
                let _ = us.answer(&request, from);
            }
        }
    }
}
