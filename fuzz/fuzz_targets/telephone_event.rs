//! RFC 4733 telephone-events from the network: each packet's payload is
//! decoded (and, when it decodes, must encode back to its first 4 bytes but
//! for the R bit), and every packet, valid or not, goes into a `Receiver`
//! with arbitrary timestamps, markers and arrival gaps. The receiver must
//! never report an event twice in a row (same timestamp) and never panic.
//!
//! Run from the repository root:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run telephone_event -- -max_total_time=600`.

#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use webphone::dtmf::rfc4733::{EventPayload, Receiver};

#[derive(Arbitrary, Debug)]
struct Packet {
    /// Timestamp change from the previous packet (small, so events repeat).
    ts_delta: i16,
    marker: bool,
    /// Milliseconds after the previous packet.
    gap_ms: u16,
    payload: Vec<u8>,
}

fuzz_target!(|input: (bool, Vec<Packet>)| {
    let (wide_clock, packets) = input;
    let mut r = Receiver::new(if wide_clock { 48_000 } else { 8000 });
    let mut now = Instant::now();
    let mut ts = 0u32;
    let mut last_reported = None;
    for p in &packets {
        if let Ok(e) = EventPayload::decode(&p.payload) {
            // The R bit is not kept.
            let raw = [p.payload[0], p.payload[1] & 0xBF, p.payload[2], p.payload[3]];
            assert_eq!(e.encode(), raw);
        }
        ts = ts.wrapping_add(p.ts_delta as i32 as u32);
        now += Duration::from_millis(u64::from(p.gap_ms));
        r.handle_timeout(now);
        r.handle_packet(ts, p.marker, &p.payload, now);
        while let Some(e) = r.poll_event() {
            assert_ne!(last_reported, Some(e.timestamp), "an event reported twice");
            last_reported = Some(e.timestamp);
        }
    }
    r.handle_timeout(now + Duration::from_secs(10));
    while r.poll_event().is_some() {}
    assert!(r.poll_timeout().is_none());
});
