//! DTMF in SIP INFO bodies, both ways:
//! - `application/dtmf-relay`: `Signal=5\r\nDuration=160\r\n` (what JsSIP,
//!   Asterisk and most PBXs send; keys in any case, spaces anywhere, `\n`
//!   or `\r\n`, unknown lines ignored);
//! - `application/dtmf`: the symbol alone (`5`).
//!
//! Some senders write `*` and `#` as `10` and `11` (and A–D as 12–15):
//! those are read too.

use crate::dtmf::{normalize, symbol};

/// The body type we send.
pub const DTMF_RELAY: &str = "application/dtmf-relay";

/// The other body type we read.
pub const DTMF: &str = "application/dtmf";

/// The duration assumed when a body has none.
pub const DEFAULT_DURATION_MS: u32 = 250;

/// A digit read from an INFO body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InfoDigit {
    /// One of the 16 symbols (upper case).
    pub digit: char,
    /// Its duration, as the body said (else [`DEFAULT_DURATION_MS`]).
    pub duration_ms: u32,
}

/// Why an INFO body is not a digit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InfoError {
    /// Not a DTMF body type (answer 415).
    UnsupportedType,
    /// A DTMF body type without a readable symbol (answer 400).
    NoSignal,
}

impl std::fmt::Display for InfoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InfoError::UnsupportedType => f.write_str("not a DTMF INFO body type"),
            InfoError::NoSignal => f.write_str("DTMF INFO body without a valid signal"),
        }
    }
}

impl std::error::Error for InfoError {}

/// Whether a Content-Type (parameters allowed) is one we read.
#[must_use]
pub fn is_dtmf_type(content_type: &str) -> bool {
    let t = content_type.split(';').next().unwrap_or("").trim();
    t.eq_ignore_ascii_case(DTMF_RELAY) || t.eq_ignore_ascii_case(DTMF)
}

/// Reads a digit from an INFO body of the given Content-Type.
///
/// # Errors
///
/// [`InfoError::UnsupportedType`] for other types, [`InfoError::NoSignal`]
/// when the body holds no symbol.
pub fn parse(content_type: &str, body: &[u8]) -> Result<InfoDigit, InfoError> {
    let t = content_type.split(';').next().unwrap_or("").trim();
    let text = String::from_utf8_lossy(body);
    if t.eq_ignore_ascii_case(DTMF_RELAY) {
        parse_relay(&text)
    } else if t.eq_ignore_ascii_case(DTMF) {
        let digit = signal(text.trim()).ok_or(InfoError::NoSignal)?;
        Ok(InfoDigit { digit, duration_ms: DEFAULT_DURATION_MS })
    } else {
        Err(InfoError::UnsupportedType)
    }
}

fn parse_relay(text: &str) -> Result<InfoDigit, InfoError> {
    let mut digit = None;
    let mut duration_ms = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        let (key, value) = (key.trim(), value.trim());
        if key.eq_ignore_ascii_case("signal") && digit.is_none() {
            digit = signal(value);
        } else if key.eq_ignore_ascii_case("duration") && duration_ms.is_none() {
            duration_ms = value.parse::<u32>().ok();
        }
    }
    Ok(InfoDigit { digit: digit.ok_or(InfoError::NoSignal)?, duration_ms: duration_ms.unwrap_or(DEFAULT_DURATION_MS) })
}

/// A symbol as written in a body: one character of the 16, or `10`–`15`.
fn signal(value: &str) -> Option<char> {
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => normalize(c),
        _ => value.parse::<u8>().ok().filter(|n| (10..16).contains(n)).and_then(symbol),
    }
}

/// The `application/dtmf-relay` body for a digit.
#[must_use]
pub fn relay_body(digit: char, duration_ms: u32) -> String {
    format!("Signal={digit}\r\nDuration={duration_ms}\r\n")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::dtmf::SYMBOLS;

    #[test]
    fn relay_bodies_in_the_forms_seen() {
        let d = |c, ms| Ok(InfoDigit { digit: c, duration_ms: ms });
        assert_eq!(parse(DTMF_RELAY, b"Signal=5\r\nDuration=160\r\n"), d('5', 160));
        assert_eq!(parse("Application/DTMF-Relay; x=1", b"signal = *\nduration= 100"), d('*', 100));
        assert_eq!(parse(DTMF_RELAY, b"Signal=a"), d('A', DEFAULT_DURATION_MS));
        assert_eq!(parse(DTMF_RELAY, b"Signal=11\r\nDuration=250"), d('#', 250));
        assert_eq!(parse(DTMF_RELAY, b"Duration=100\r\nSignal= # \r\n"), d('#', 100));
        assert_eq!(parse(DTMF, b" 9 \r\n"), d('9', DEFAULT_DURATION_MS));
        assert_eq!(parse(DTMF_RELAY, b"Signal=x"), Err(InfoError::NoSignal));
        assert_eq!(parse(DTMF_RELAY, b""), Err(InfoError::NoSignal));
        assert_eq!(parse("application/json", b"{}"), Err(InfoError::UnsupportedType));
        assert!(is_dtmf_type("application/dtmf ; q=1") && !is_dtmf_type("text/plain"));
    }

    proptest! {
        #[test]
        fn relay_bodies_round_trip(i in 0usize..16, ms in 0u32..100_000) {
            let body = relay_body(SYMBOLS[i], ms);
            prop_assert_eq!(parse(DTMF_RELAY, body.as_bytes()), Ok(InfoDigit { digit: SYMBOLS[i], duration_ms: ms }));
        }

        #[test]
        fn any_body_parses_or_errs(t in "application/dtmf(-relay)?|text/plain", body: Vec<u8>) {
            let _ = parse(&t, &body);
        }
    }
}
