//! What a client of the control server sends: an HTTP request head (the
//! page or the WebSocket upgrade) and then action messages. Any bytes are
//! read without panicking; a head that reads has a path that starts where
//! the request target did, and an action message that reads names an action.
//!
//! Run from the repository root:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run control_request -- -max_total_time=600`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use webphone::control::fuzzing::parse_head;
use webphone::control::wire::{Request, parse_request};

fuzz_target!(|data: &[u8]| {
    if let Some((path, _token, _key)) = parse_head(data) {
        assert!(!path.contains('?'), "{path}");
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Request::Action { action, .. } = parse_request(text)
    {
        assert!(!action.name().is_empty());
    }
});
