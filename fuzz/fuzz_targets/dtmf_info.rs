//! SIP INFO DTMF bodies from the network: any Content-Type and body either
//! parse to one of the 16 symbols or fail, and a parsed digit written back
//! as `application/dtmf-relay` parses to the same digit and duration.
//!
//! Run from the repository root:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run dtmf_info -- -max_total_time=600`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use webphone::dtmf::info::{DTMF, DTMF_RELAY, parse, relay_body};

fuzz_target!(|input: (u8, &[u8])| {
    let (kind, body) = input;
    let content_type = match kind % 3 {
        0 => DTMF_RELAY,
        1 => DTMF,
        _ => "Application/DTMF-Relay ; charset=utf-8",
    };
    if let Ok(d) = parse(content_type, body) {
        assert!(webphone::dtmf::SYMBOLS.contains(&d.digit));
        assert_eq!(parse(DTMF_RELAY, relay_body(d.digit, d.duration_ms).as_bytes()), Ok(d));
    }
});
