//! RFC 4733 telephone-events: the 4-byte event payload, a [`Sender`] that
//! turns one event into its packet sequence one audio frame at a time, and
//! a [`Receiver`] that turns arriving packets (lost, reordered, repeated)
//! into one [`ReceivedEvent`] per event.
//!
//! What the sender does, per RFC 4733 §2.5.1:
//! - every packet of an event carries the event's start timestamp (the
//!   audio stream's timestamp at the frame it starts in); the first has the
//!   marker bit;
//! - the duration counts in the telephone-event clock (8000 for
//!   `telephone-event/8000` even when the audio is 48 kHz Opus), from the
//!   start to the end of the frame just sent; one update per audio frame;
//! - the end packet (E bit) is sent three times, one per frame, each with
//!   the final duration;
//! - an event longer than 0xFFFF units is cut into segments (§2.5.1.3): the
//!   segment's last packet says 0xFFFF and the next segment starts at the
//!   old timestamp + 0xFFFF units, without the marker bit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Length of one event block.
pub const PAYLOAD_LEN: usize = 4;

/// The longest duration one segment can carry.
pub const MAX_SEGMENT: u16 = 0xFFFF;

/// How many times the end packet is sent.
pub const END_REPEATS: u8 = 3;

/// The volume field we send: −10 dBm0 (the field is the power below 0 dBm0, 0–63).
pub const DEFAULT_VOLUME: u8 = 10;

/// One event block (RFC 4733 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EventPayload {
    /// Event code (0–15 for DTMF).
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level, in −dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in the telephone-event clock.
    pub duration: u16,
}

/// Why a payload is not a telephone-event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// Shorter than 4 bytes.
    TooShort(usize),
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayloadError::TooShort(n) => write!(f, "telephone-event payload of {n} bytes (at least 4)"),
        }
    }
}

impl std::error::Error for PayloadError {}

impl EventPayload {
    /// The 4 bytes on the wire (the R bit is 0; the volume is cut to 6 bits).
    #[must_use]
    pub fn encode(&self) -> [u8; PAYLOAD_LEN] {
        let d = self.duration.to_be_bytes();
        [self.event, (u8::from(self.end) << 7) | (self.volume & 0x3F), d[0], d[1]]
    }

    /// Reads the first event block of a payload (further blocks, RFC 2198
    /// redundancy, are ignored; the R bit is ignored).
    ///
    /// # Errors
    ///
    /// The payload is shorter than one block.
    pub fn decode(payload: &[u8]) -> Result<EventPayload, PayloadError> {
        let [event, flags, d0, d1, ..] = *payload else { return Err(PayloadError::TooShort(payload.len())) };
        Ok(EventPayload { event, end: flags & 0x80 != 0, volume: flags & 0x3F, duration: u16::from_be_bytes([d0, d1]) })
    }
}

/// One packet the sender wants sent, on the telephone-event payload type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPacket {
    /// RTP timestamp (the event's, or its segment's, start).
    pub timestamp: u32,
    /// Marker bit (the first packet of an event).
    pub marker: bool,
    /// The event block.
    pub payload: EventPayload,
}

/// The sender's current event.
#[derive(Clone, Copy, Debug)]
struct Sending {
    event: u8,
    /// Timestamp of the current segment.
    timestamp: u32,
    /// Total length asked, in event-clock units.
    total: u64,
    /// Elapsed so far, in event-clock units.
    elapsed: u64,
    /// Where the current segment started, in event-clock units since the start.
    segment_start: u64,
    marker: bool,
    /// End packets still to send (counting down from three once the end is reached).
    ends_left: u8,
}

/// Sends one event at a time, one packet per audio frame (see the module docs).
#[derive(Clone, Debug)]
pub struct Sender {
    event_clock: u32,
    timestamp_clock: u32,
    volume: u8,
    current: Option<Sending>,
}

impl Sender {
    /// A sender whose durations count at `event_clock` (the telephone-event
    /// rate) and whose timestamps live in the audio stream's `timestamp_clock`.
    #[must_use]
    pub fn new(event_clock: u32, timestamp_clock: u32) -> Sender {
        Sender {
            event_clock: event_clock.max(1),
            timestamp_clock: timestamp_clock.max(1),
            volume: DEFAULT_VOLUME,
            current: None,
        }
    }

    /// The volume field to send (0–63, in −dBm0).
    pub fn set_volume(&mut self, volume: u8) {
        self.volume = volume.min(63);
    }

    /// The telephone-event clock.
    #[must_use]
    pub fn event_clock(&self) -> u32 {
        self.event_clock
    }

    /// Whether an event (or its end packets) is still being sent.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.current.is_some()
    }

    /// Starts an event at the audio timestamp of the frame about to be sent;
    /// any event still running is dropped.
    pub fn start(&mut self, event: u8, duration: Duration, timestamp: u32) {
        let total = (duration.as_micros() * u128::from(self.event_clock) / 1_000_000) as u64;
        self.current = Some(Sending {
            event,
            timestamp,
            total: total.max(1),
            elapsed: 0,
            segment_start: 0,
            marker: true,
            ends_left: END_REPEATS,
        });
    }

    /// Stops at once, without end packets (the call is over).
    pub fn cancel(&mut self) {
        self.current = None;
    }

    /// One audio frame of `frame` has passed: the packet to send in its
    /// place, `None` when idle.
    pub fn tick(&mut self, frame: Duration) -> Option<EventPacket> {
        let frame_units = (frame.as_micros() * u128::from(self.event_clock) / 1_000_000) as u64;
        let volume = self.volume;
        let ts_per_unit = (self.timestamp_clock, self.event_clock);
        let s = self.current.as_mut()?;
        let reached = s.elapsed >= s.total;
        if !reached {
            s.elapsed = (s.elapsed + frame_units).min(s.total);
        }
        let in_segment = s.elapsed - s.segment_start;
        if in_segment > u64::from(MAX_SEGMENT) {
            // Close this segment at 0xFFFF; the next starts 0xFFFF units later.
            let packet = EventPacket {
                timestamp: s.timestamp,
                marker: std::mem::take(&mut s.marker),
                payload: EventPayload { event: s.event, end: false, volume, duration: MAX_SEGMENT },
            };
            s.segment_start += u64::from(MAX_SEGMENT);
            let step = u64::from(MAX_SEGMENT) * u64::from(ts_per_unit.0) / u64::from(ts_per_unit.1);
            s.timestamp = s.timestamp.wrapping_add(step as u32);
            return Some(packet);
        }
        let end = s.elapsed >= s.total;
        let packet = EventPacket {
            timestamp: s.timestamp,
            marker: std::mem::take(&mut s.marker),
            payload: EventPayload { event: s.event, end, volume, duration: in_segment as u16 },
        };
        if end {
            s.ends_left -= 1;
            if s.ends_left == 0 {
                self.current = None;
            }
        }
        Some(packet)
    }
}

/// A telephone-event the [`Receiver`] saw from start to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// Event code (0–15 for DTMF).
    pub event: u8,
    /// Its timestamp (of its first segment).
    pub timestamp: u32,
    /// Its duration in milliseconds, from the largest duration received.
    pub duration_ms: u32,
    /// Whether it ended by time-out (no end packet came).
    pub timed_out: bool,
}

#[derive(Clone, Copy, Debug)]
struct Receiving {
    event: u8,
    first_timestamp: u32,
    timestamp: u32,
    /// Units of the segments before the current one.
    base: u64,
    /// Largest duration seen in the current segment.
    duration: u16,
    last_packet: Instant,
}

/// How many ended events the receiver remembers to drop their repeats.
const ENDED_MEMORY: usize = 8;

/// Turns telephone-event packets into events (see the module docs): an
/// event starts with its first packet that arrives (the marker packet may
/// be lost), ends on the E bit, on a packet of a later event, or when no
/// packet came for the time-out; repeated end packets and late packets of
/// an ended event are dropped, so no event is reported twice.
#[derive(Clone, Debug)]
pub struct Receiver {
    event_clock: u32,
    timeout: Duration,
    current: Option<Receiving>,
    /// Timestamps (of segments) of the events that ended, newest last.
    ended: VecDeque<u32>,
    events: VecDeque<ReceivedEvent>,
    malformed: u64,
}

impl Receiver {
    /// The default time-out after the last packet of an event without an end.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(600);

    /// A receiver for events whose durations count at `event_clock`.
    #[must_use]
    pub fn new(event_clock: u32) -> Receiver {
        Receiver {
            event_clock: event_clock.max(1),
            timeout: Self::DEFAULT_TIMEOUT,
            current: None,
            ended: VecDeque::with_capacity(ENDED_MEMORY),
            events: VecDeque::with_capacity(4),
            malformed: 0,
        }
    }

    /// Another clock (a renegotiation); an event in progress is ended.
    pub fn set_event_clock(&mut self, event_clock: u32) {
        self.finish(false);
        self.event_clock = event_clock.max(1);
    }

    /// Payloads that were not telephone-events.
    #[must_use]
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// A received telephone-event packet.
    pub fn handle_packet(&mut self, timestamp: u32, marker: bool, payload: &[u8], now: Instant) {
        let Ok(p) = EventPayload::decode(payload) else {
            self.malformed += 1;
            return;
        };
        if self.ended.contains(&timestamp) {
            return; // a repeated end packet, or a late packet of an ended event
        }
        if let Some(c) = self.current.as_mut() {
            if c.timestamp == timestamp {
                if c.event != p.event {
                    self.malformed += 1;
                    return;
                }
                c.duration = c.duration.max(p.duration);
                c.last_packet = now;
                if p.end {
                    self.finish(false);
                }
                return;
            }
            let later = (timestamp.wrapping_sub(c.timestamp) as i32) > 0;
            if !later {
                return; // a late packet of an older event
            }
            if c.event == p.event && !marker && c.duration == MAX_SEGMENT {
                // The next segment of a long event.
                let old = c.timestamp;
                c.base += u64::from(MAX_SEGMENT);
                c.timestamp = timestamp;
                c.duration = p.duration;
                c.last_packet = now;
                self.remember(old);
                if p.end {
                    self.finish(false);
                }
                return;
            }
            self.finish(false);
        } else if let Some(last) = self.ended.back()
            && (timestamp.wrapping_sub(*last) as i32) < 0
        {
            return; // older than what already ended
        }
        self.current = Some(Receiving {
            event: p.event,
            first_timestamp: timestamp,
            timestamp,
            base: 0,
            duration: p.duration,
            last_packet: now,
        });
        if p.end {
            self.finish(false);
        }
    }

    /// Ends an event whose packets stopped coming.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.current.is_some_and(|c| now.saturating_duration_since(c.last_packet) >= self.timeout) {
            self.finish(true);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run, while an event is open.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current.map(|c| c.last_packet + self.timeout)
    }

    /// The next finished event, oldest first.
    pub fn poll_event(&mut self) -> Option<ReceivedEvent> {
        self.events.pop_front()
    }

    /// Whether an event is in progress (its audio is not real audio).
    #[must_use]
    pub fn in_event(&self) -> bool {
        self.current.is_some()
    }

    fn remember(&mut self, timestamp: u32) {
        if self.ended.len() == ENDED_MEMORY {
            self.ended.pop_front();
        }
        self.ended.push_back(timestamp);
    }

    fn finish(&mut self, timed_out: bool) {
        let Some(c) = self.current.take() else { return };
        self.remember(c.timestamp);
        let units = c.base + u64::from(c.duration);
        let duration_ms = (units * 1000 / u64::from(self.event_clock)) as u32;
        self.events.push_back(ReceivedEvent { event: c.event, timestamp: c.first_timestamp, duration_ms, timed_out });
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MS20: Duration = Duration::from_millis(20);

    fn run(sender: &mut Sender, frame: Duration) -> Vec<EventPacket> {
        std::iter::from_fn(|| sender.tick(frame)).collect()
    }

    #[test]
    fn payload_encodes_field_by_field() {
        let p = EventPayload { event: 11, end: true, volume: 10, duration: 800 };
        assert_eq!(p.encode(), [11, 0x80 | 10, 0x03, 0x20]);
        assert_eq!(EventPayload::decode(&p.encode()), Ok(p));
        // R bit ignored, redundancy blocks ignored.
        assert_eq!(EventPayload::decode(&[5, 0x40 | 7, 0, 160, 9, 9, 9, 9]).unwrap().volume, 7);
        assert_eq!(EventPayload::decode(&[1, 2, 3]), Err(PayloadError::TooShort(3)));
    }

    #[test]
    fn a_100_ms_digit_at_8000_hz_with_20_ms_frames() {
        let mut s = Sender::new(8000, 48_000);
        s.start(5, Duration::from_millis(100), 123_456);
        let p = run(&mut s, MS20);
        assert_eq!(p.len(), 5 + 2, "four updates, then the end three times");
        assert!(p.iter().all(|p| p.timestamp == 123_456 && p.payload.event == 5 && p.payload.volume == 10));
        assert_eq!(p.iter().map(|p| p.marker).collect::<Vec<_>>(), [true, false, false, false, false, false, false]);
        assert_eq!(p.iter().map(|p| p.payload.duration).collect::<Vec<_>>(), [160, 320, 480, 640, 800, 800, 800]);
        assert_eq!(p.iter().map(|p| p.payload.end).collect::<Vec<_>>(), [false, false, false, false, true, true, true]);
        assert!(!s.is_busy());
    }

    #[test]
    fn durations_count_in_the_event_clock_with_10_ms_frames() {
        let mut s = Sender::new(48_000, 48_000);
        s.start(1, Duration::from_millis(40), 7);
        let p = run(&mut s, Duration::from_millis(10));
        assert_eq!(p.iter().map(|p| p.payload.duration).collect::<Vec<_>>(), [480, 960, 1440, 1920, 1920, 1920]);
    }

    #[test]
    fn long_events_are_cut_into_segments() {
        // 6 s at 48 kHz is 288 000 units: four full segments and a rest.
        let mut s = Sender::new(48_000, 48_000);
        s.start(0, Duration::from_secs(6), u32::MAX - 10);
        let p = run(&mut s, MS20);
        let closes: Vec<_> = p.iter().filter(|p| p.payload.duration == MAX_SEGMENT).collect();
        assert_eq!(closes.len(), 4);
        let stamps: Vec<u32> = {
            let mut v: Vec<u32> = p.iter().map(|p| p.timestamp).collect();
            v.dedup();
            v
        };
        assert_eq!(stamps.len(), 5);
        for w in stamps.windows(2) {
            assert_eq!(w[1].wrapping_sub(w[0]), 0xFFFF);
        }
        assert_eq!(p.iter().filter(|p| p.marker).count(), 1);
        let last = p.last().unwrap();
        assert!(last.payload.end);
        assert_eq!(u64::from(last.payload.duration) + 4 * 0xFFFF, 288_000);

        // The receiver puts the segments back together.
        let mut r = Receiver::new(48_000);
        let t0 = Instant::now();
        for (i, p) in p.iter().enumerate() {
            r.handle_packet(p.timestamp, p.marker, &p.payload.encode(), t0 + MS20 * i as u32);
        }
        let e = r.poll_event().unwrap();
        assert_eq!((e.event, e.duration_ms, e.timed_out), (0, 6000, false));
        assert_eq!(r.poll_event(), None);
    }

    fn feed(r: &mut Receiver, packets: &[EventPacket], t0: Instant) -> Vec<ReceivedEvent> {
        for (i, p) in packets.iter().enumerate() {
            r.handle_packet(p.timestamp, p.marker, &p.payload.encode(), t0 + MS20 * i as u32);
        }
        std::iter::from_fn(|| r.poll_event()).collect()
    }

    fn digits(codes: &[u8], gap_units: u32) -> Vec<EventPacket> {
        let mut s = Sender::new(8000, 8000);
        let mut ts = 1000u32;
        let mut out = vec![];
        for c in codes {
            s.start(*c, Duration::from_millis(100), ts);
            out.extend(run(&mut s, MS20));
            ts = ts.wrapping_add(800 + gap_units);
        }
        out
    }

    #[test]
    fn lost_first_and_repeated_end_packets() {
        let mut packets = digits(&[1, 1, 2], 560);
        packets.remove(0); // the marker packet of the first digit
        let dup = packets[5];
        packets.push(dup); // a late repeat of an end packet
        let mut r = Receiver::new(8000);
        let e = feed(&mut r, &packets, Instant::now());
        assert_eq!(e.iter().map(|e| (e.event, e.duration_ms)).collect::<Vec<_>>(), [(1, 100), (1, 100), (2, 100)]);
    }

    #[test]
    fn an_event_without_its_end_times_out() {
        let mut packets = digits(&[7], 0);
        packets.truncate(3);
        let mut r = Receiver::new(8000);
        let t0 = Instant::now();
        assert!(feed(&mut r, &packets, t0).is_empty());
        let at = r.poll_timeout().unwrap();
        r.handle_timeout(at - Duration::from_millis(1));
        assert_eq!(r.poll_event(), None);
        r.handle_timeout(at);
        assert_eq!(r.poll_event().map(|e| (e.event, e.duration_ms, e.timed_out)), Some((7, 60, true)));
        assert_eq!(r.poll_timeout(), None);
    }

    proptest! {
        #[test]
        fn payload_round_trips(event: u8, end: bool, volume in 0u8..64, duration: u16) {
            let p = EventPayload { event, end, volume, duration };
            prop_assert_eq!(EventPayload::decode(&p.encode()), Ok(p));
        }

        #[test]
        fn decode_never_panics(bytes: Vec<u8>) {
            let _ = EventPayload::decode(&bytes);
        }

        /// Any digit string, any loss (never all of a digit), duplicates and
        /// local reordering: each digit comes out once, in order.
        #[test]
        fn loss_duplicates_and_reordering_never_double_a_digit(
            codes in proptest::collection::vec(0u8..16, 1..8),
            drops in proptest::collection::vec(any::<bool>(), 64),
            dups in proptest::collection::vec(any::<bool>(), 64),
            swaps in proptest::collection::vec(any::<bool>(), 64),
        ) {
            let packets = digits(&codes, 560);
            let per = packets.len() / codes.len();
            let mut kept = vec![];
            for (i, p) in packets.iter().enumerate() {
                let first_of_digit = i % per == 0;
                if drops[i % 64] && !first_of_digit && i % per != per - 1 {
                    continue; // never the first or the last packet of a digit
                }
                kept.push(*p);
                if dups[i % 64] {
                    kept.push(*p);
                }
            }
            // Swap neighbours within a digit's packets only.
            for i in 1..kept.len() {
                if swaps[i % 64] && kept[i].timestamp == kept[i - 1].timestamp {
                    kept.swap(i, i - 1);
                }
            }
            let mut r = Receiver::new(8000);
            let t0 = Instant::now();
            let mut got = feed(&mut r, &kept, t0);
            r.handle_timeout(t0 + Duration::from_secs(60));
            got.extend(std::iter::from_fn(|| r.poll_event()));
            prop_assert_eq!(got.iter().map(|e| e.event).collect::<Vec<_>>(), codes);
        }
    }
}
