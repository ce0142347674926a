//! The connectivity checks a peer's sockets answer before our offer's
//! answer is applied (`media::rtc::early_checks`): any datagram, and a
//! valid check for us with bytes overwritten, must never panic, and what
//! is answered must be a Binding success response of bounded size.
//!
//! Run from the repository root:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run early_check -- -max_total_time=600`.

#![no_main]

use std::net::SocketAddr;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use webphone::media::rtc::fuzzing::{answer_early_check, valid_check};

#[derive(Arbitrary, Debug)]
struct Input {
    datagram: Vec<u8>,
    remote_ufrag: String,
    /// (position, byte) overwrites of a valid check.
    edits: Vec<(u16, u8)>,
    v6: bool,
}

fn assert_response(out: Option<Vec<u8>>) {
    if let Some(r) = out {
        assert_eq!(&r[..2], &[0x01, 0x01], "a Binding success response");
        assert!(r.len() <= 20 + 4 + 20 + 24 + 8, "{} bytes", r.len());
    }
}

fuzz_target!(|input: Input| {
    let from: SocketAddr = if input.v6 { "[::1]:5000".parse().unwrap() } else { "127.0.0.1:5000".parse().unwrap() };
    assert_response(answer_early_check(&input.datagram, from));
    let mut check = valid_check(&input.remote_ufrag);
    if check.is_empty() {
        return;
    }
    for (at, byte) in input.edits {
        let i = usize::from(at) % check.len();
        check[i] = byte;
    }
    assert_response(answer_early_check(&check, from));
});
