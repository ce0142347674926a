//! DTMF three ways, as pure functions and small state machines with time
//! (or frames) as input; the call audio machine and the SIP core call them.
//!
//! - [`rfc4733`]: telephone-event payloads, a sender that turns a digit into
//!   the packet sequence RFC 4733 asks for, and a receiver that turns
//!   packets (lost, reordered, repeated) into one digit each.
//! - [`info`]: SIP INFO bodies, `application/dtmf-relay` and `application/dtmf`.
//! - [`tone`]: the ITU-T Q.23 frequency pairs as ramped tones (in-band).
//! - [`goertzel`]: an in-band detector with Q.24-style acceptance rules.
//!
//! The 16 symbols are `0`–`9`, `*`, `#` and `A`–`D`; lower-case `a`–`d` are
//! read as upper case. In a digit string to send, `,` is a 2 s pause.

use serde::{Deserialize, Serialize};

pub mod goertzel;
pub mod info;
pub mod rfc4733;
pub mod tone;

/// The 16 DTMF symbols, in RFC 4733 event-code order (0 to 15).
pub const SYMBOLS: [char; 16] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D'];

/// The pause `,` stands for in a digit string.
pub const PAUSE_MS: u32 = 2000;

/// Default tone (or event) duration.
pub const DEFAULT_DURATION_MS: u32 = 100;

/// Default gap between two digits.
pub const DEFAULT_GAP_MS: u32 = 70;

/// Shortest and longest duration a digit is sent with (a request outside is clamped).
pub const DURATION_RANGE_MS: (u32, u32) = (40, 6000);

/// The symbol as sent (upper case), if it is one of the 16.
#[must_use]
pub fn normalize(c: char) -> Option<char> {
    let c = c.to_ascii_uppercase();
    SYMBOLS.contains(&c).then_some(c)
}

/// The RFC 4733 event code of a symbol (0–15).
#[must_use]
pub fn event_code(c: char) -> Option<u8> {
    let c = normalize(c)?;
    SYMBOLS.iter().position(|s| *s == c).map(|i| i as u8)
}

/// The symbol of an RFC 4733 event code, if it is one of the 16 DTMF events.
#[must_use]
pub fn symbol(code: u8) -> Option<char> {
    SYMBOLS.get(usize::from(code)).copied()
}

/// How DTMF is sent, or how it was received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DtmfMethod {
    /// RFC 4733 when the peer negotiated telephone-event, else SIP INFO.
    #[default]
    Auto,
    /// RTP telephone-events (RFC 4733) on the audio stream.
    Rfc4733,
    /// SIP INFO with an `application/dtmf-relay` body.
    Info,
    /// Tones mixed into the audio (replacing it while a digit plays).
    Inband,
}

impl DtmfMethod {
    /// The name used in actions and events.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            DtmfMethod::Auto => "auto",
            DtmfMethod::Rfc4733 => "rfc4733",
            DtmfMethod::Info => "info",
            DtmfMethod::Inband => "inband",
        }
    }
}

impl std::str::FromStr for DtmfMethod {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DtmfMethod::Auto),
            "rfc4733" | "rfc2833" => Ok(DtmfMethod::Rfc4733),
            "info" => Ok(DtmfMethod::Info),
            "inband" => Ok(DtmfMethod::Inband),
            other => Err(format!("unknown DTMF method {other:?} (auto, rfc4733, info, inband)")),
        }
    }
}

/// How to send a digit string ([`crate::Phone::send_dtmf`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DtmfOptions {
    /// How (default: RFC 4733 when negotiated, else SIP INFO).
    pub method: DtmfMethod,
    /// Each digit's duration in ms (default 100, clamped to 40–6000).
    pub duration_ms: Option<u32>,
    /// The silence after each digit in ms (default 70).
    pub gap_ms: Option<u32>,
}

/// One step of a digit string to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtmfStep {
    /// A symbol, for this long, then the gap.
    Digit {
        /// One of the 16 symbols (upper case).
        digit: char,
        /// How long it is sent.
        duration_ms: u32,
        /// Silence after it.
        gap_ms: u32,
    },
    /// Silence (`,`).
    Pause {
        /// How long.
        ms: u32,
    },
}

/// Parses a digit string to send: the 16 symbols (case-insensitive) and
/// `,`; spaces are ignored. The duration is clamped to [`DURATION_RANGE_MS`].
///
/// # Errors
///
/// Any other character, with its position.
pub fn parse_digits(digits: &str, duration_ms: Option<u32>, gap_ms: Option<u32>) -> Result<Vec<DtmfStep>, String> {
    let duration_ms = duration_ms.unwrap_or(DEFAULT_DURATION_MS).clamp(DURATION_RANGE_MS.0, DURATION_RANGE_MS.1);
    let gap_ms = gap_ms.unwrap_or(DEFAULT_GAP_MS).min(10_000);
    let mut steps = Vec::with_capacity(digits.len());
    for (i, c) in digits.chars().enumerate() {
        match c {
            ',' => steps.push(DtmfStep::Pause { ms: PAUSE_MS }),
            c if c.is_whitespace() => {}
            c => match normalize(c) {
                Some(digit) => steps.push(DtmfStep::Digit { digit, duration_ms, gap_ms }),
                None => return Err(format!("{c:?} at {i} is not a DTMF symbol (0-9 * # A-D ,)")),
            },
        }
    }
    if steps.is_empty() {
        return Err("no digits".into());
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_symbols_round_trip() {
        for (i, s) in SYMBOLS.iter().enumerate() {
            assert_eq!(event_code(*s), Some(i as u8));
            assert_eq!(symbol(i as u8), Some(*s));
        }
        assert_eq!(event_code('a'), Some(12));
        assert_eq!(event_code('x'), None);
        assert_eq!(symbol(16), None);
    }

    #[test]
    fn digit_strings_parse_with_pauses_and_clamps() {
        let s = parse_digits("1 a,#", Some(10), None).unwrap();
        assert_eq!(
            s,
            vec![
                DtmfStep::Digit { digit: '1', duration_ms: 40, gap_ms: 70 },
                DtmfStep::Digit { digit: 'A', duration_ms: 40, gap_ms: 70 },
                DtmfStep::Pause { ms: 2000 },
                DtmfStep::Digit { digit: '#', duration_ms: 40, gap_ms: 70 },
            ]
        );
        assert!(parse_digits("12x", None, None).unwrap_err().contains("'x'"));
        assert!(parse_digits("", None, None).is_err());
        assert_eq!("RFC4733".parse::<DtmfMethod>(), Ok(DtmfMethod::Rfc4733));
    }
}
