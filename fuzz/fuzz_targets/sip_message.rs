//! Parses arbitrary bytes as a SIP message (and as a `message/sipfrag` body); whatever parses is put through
//! every typed accessor, the UA's checks and the responses they build, and
//! is serialized and parsed again.
//!
//! Seed the corpus with `fuzz/seed-corpus.sh`, then run from the repository
//! root: `RUSTC_BOOTSTRAP=1 cargo fuzz run sip_message -- -max_total_time=600`.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/sip_exercise.rs"]
mod sip_exercise;

fuzz_target!(|data: &[u8]| {
    let _ = webphone::sip::redacted(data);
    let _ = webphone::sip::sipfrag::status_line(data);
    sip_exercise::exercise(Bytes::copy_from_slice(data));
});
