//! Our receive path under hostile RTP: each datagram is unmarshalled as
//! RTP and as RTCP by the `rtc` crate (what webrtc runs on what arrives),
//! and what parses as RTP is fed, as webrtc hands it to us, into a
//! `ReceivePipeline` (Opus, PT 111, 20 ms) ticked on a 20 ms clock. The
//! pipeline's counters must account for every packet and every tick.
//!
//! Run from the repository root:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run rtp -- -max_total_time=600`.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/rtp_exercise.rs"]
mod rtp_exercise;

#[derive(Arbitrary, Debug)]
struct Datagram {
    /// Milliseconds after the previous datagram (at most 255).
    gap_ms: u8,
    /// Frame ticks after it (0 to 3).
    ticks: u8,
    bytes: Vec<u8>,
}

fuzz_target!(|datagrams: Vec<Datagram>| {
    let mut run = rtp_exercise::RtpExercise::new();
    for d in &datagrams {
        run.datagram(&d.bytes, u64::from(d.gap_ms), u32::from(d.ticks % 4));
    }
    run.check_accounting();
});
