//! `message/sipfrag` bodies (RFC 3420) as the NOTIFYs of a REFER carry them
//! (RFC 3515 §2.4.5): the status line of the response the transferee got
//! for the call it placed. Only that line matters to a transferor.

/// The longest reason phrase kept; the rest of a longer one is cut.
const MAX_REASON: usize = 128;

/// The status line of a sipfrag body: `SIP/2.0 180 Ringing` gives
/// `(180, "Ringing")`. Leading blank lines are skipped; anything after the
/// first line is ignored. `None` when the body does not start with a SIP
/// status line whose code is 100-699.
pub fn status_line(body: &[u8]) -> Option<(u16, String)> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let body = &body[start..];
    let end = body.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(body.len());
    let line = &body[..end];
    let rest = line.strip_prefix(b"SIP/2.0 ").or_else(|| {
        // Case-insensitive protocol name, as RFC 3261 §7.1 allows.
        (line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"SIP/2.0 ")).then(|| &line[8..])
    })?;
    let digits = rest.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ' && b != b'\t') {
        return None;
    }
    let code = digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if !(100..700).contains(&code) {
        return None;
    }
    Some((code, clean_reason(&String::from_utf8_lossy(rest.get(3..).unwrap_or_default()))))
}

/// A sipfrag body holding only a status line.
pub fn body(code: u16, reason: &str) -> String {
    format!("SIP/2.0 {code} {}\r\n", clean_reason(reason))
}

/// A reason phrase without control characters, trimmed, at most
/// `MAX_REASON` characters.
fn clean_reason(reason: &str) -> String {
    let printable: String = reason.chars().filter(|c| !c.is_control()).collect();
    let cut: String = printable.trim().chars().take(MAX_REASON).collect();
    cut.trim_end().to_string()
}

/// The `Content-Type` of a sipfrag body.
pub const CONTENT_TYPE: &str = "message/sipfrag;version=2.0";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_status_lines_transferees_send() {
        assert_eq!(status_line(b"SIP/2.0 100 Trying\r\n"), Some((100, "Trying".into())));
        assert_eq!(status_line(b"SIP/2.0 180 Ringing"), Some((180, "Ringing".into())));
        assert_eq!(status_line(b"\r\nSIP/2.0 200 OK\r\nContact: <sip:c@h>\r\n"), Some((200, "OK".into())));
        assert_eq!(status_line(b"sip/2.0 486 Busy Here\r\n"), Some((486, "Busy Here".into())));
        assert_eq!(status_line(b"SIP/2.0 503\r\n"), Some((503, String::new())));
    }

    #[test]
    fn refuses_what_is_not_a_status_line() {
        for body in [
            &b""[..],
            b"INVITE sip:a@b SIP/2.0\r\n",
            b"SIP/2.0 99 Low\r\n",
            b"SIP/2.0 700 High\r\n",
            b"SIP/2.0 2000 OK\r\n",
            b"SIP/2.0 2x0 OK\r\n",
            b"SIP/2.0  200 OK\r\n",
            b"HTTP/1.1 200 OK\r\n",
        ] {
            assert_eq!(status_line(body), None, "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn builds_what_it_reads() {
        assert_eq!(body(486, "Busy Here"), "SIP/2.0 486 Busy Here\r\n");
        assert_eq!(status_line(body(183, "Session\r\nProgress").as_bytes()), Some((183, "SessionProgress".into())));
    }

    proptest! {
        #[test]
        fn never_panics_and_keeps_codes_in_range(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Some((code, reason)) = status_line(&bytes) {
                prop_assert!((100..700).contains(&code));
                prop_assert!(reason.chars().count() <= MAX_REASON);
            }
        }

        #[test]
        fn round_trips(code in 100u16..700, reason in "[ -~]{0,40}") {
            let (c, r) = status_line(body(code, &reason).as_bytes()).unwrap();
            prop_assert_eq!(c, code);
            prop_assert_eq!(r, reason.trim());
        }
    }
}
