//! Drives a `JitterBuffer` with an arbitrary sequence of inserts, pops and
//! resets, and checks after every step what its documentation promises:
//! a played payload is one that was stored, in this numbering, with its
//! length; within a numbering nothing older than an already played frame
//! is played; the payload announced for FEC by `Lost { next }` is the next
//! frame; the counters add up (every insert is received, played + lost
//! never exceed the sequence numbers the stream spanned).
//!
//! Each payload starts with the index of its insert, so a played payload
//! tells which packet it was.
//!
//! Run from the repository root:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run jitter_buffer -- -max_total_time=600`.

#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use webphone::media::FrameDuration;
use webphone::media::receive::jitter::{InsertOutcome, JitterBuffer, JitterConfig, Playout, SLOT_BYTES, SLOTS};

#[derive(Arbitrary, Debug)]
struct Input {
    setup: Setup,
    ops: Vec<Op>,
}

/// The streams the phone receives: Opus (48 kHz) or G.711 (8 kHz), 20 or 10 ms.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Setup {
    Opus20,
    Opus10,
    G711At20,
    G711At10,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Insert {
        seq: Seq,
        ts: Ts,
        /// Modulo 1600: up to a little more than a slot holds.
        payload_len: u16,
        /// Arrival relative to the current time, in ms.
        arrival_ms_delta: i16,
    },
    Pop {
        advance_ms: u8,
    },
    Reset,
}

#[derive(Arbitrary, Debug)]
enum Seq {
    /// The previous insert's sequence number plus this.
    Next(i8),
    Is(u16),
}

#[derive(Arbitrary, Debug)]
enum Ts {
    /// `seq` frames of the stream's clock plus this many timestamp units.
    FromSeq(i16),
    Is(u32),
}

/// One numbering (from the first packet, a reset, or a resynchronization to the next).
#[derive(Default)]
struct Numbering {
    /// Highest extended sequence number stored, as the buffer unwraps it.
    highest: Option<i64>,
    lowest: i64,
    last_played: Option<i64>,
}

impl Numbering {
    fn span(&self) -> u64 {
        self.highest.map_or(0, |h| (h - self.lowest + 1) as u64)
    }
}

/// A [`Playout`], owned.
enum Played {
    Frame(Vec<u8>),
    Lost(Option<Vec<u8>>),
    Waiting,
}

const TAG: usize = 4;

fuzz_target!(|input: Input| {
    let (frame, clock_rate) = match input.setup {
        Setup::Opus20 => (FrameDuration::Ms20, 48_000),
        Setup::Opus10 => (FrameDuration::Ms10, 48_000),
        Setup::G711At20 => (FrameDuration::Ms20, 8000),
        Setup::G711At10 => (FrameDuration::Ms10, 8000),
    };
    let frame_ts = frame.samples_at(clock_rate) as u32;
    let mut jb = JitterBuffer::new(JitterConfig::new(frame, clock_rate));
    let start = Instant::now();
    let mut now = start;
    let mut payload = vec![0u8; 1600];

    // Per insert: (numbering, extended sequence number, length) when stored.
    let mut stored: Vec<Option<(usize, i64, usize)>> = vec![];
    let mut numbering = 0usize;
    let mut current = Numbering::default();
    let mut spanned_before = 0u64;
    let mut last_seq = 0u16;
    // The insert announced as `next` by the previous pop, in this numbering.
    let mut announced: Option<usize> = None;
    let mut inserts = 0u64;

    for op in input.ops {
        match op {
            Op::Insert { seq, ts, payload_len, arrival_ms_delta } => {
                let seq = match seq {
                    Seq::Next(d) => last_seq.wrapping_add_signed(i16::from(d)),
                    Seq::Is(s) => s,
                };
                last_seq = seq;
                let ts = match ts {
                    Ts::FromSeq(d) => u32::from(seq).wrapping_mul(frame_ts).wrapping_add_signed(i32::from(d)),
                    Ts::Is(t) => t,
                };
                let len = usize::from(payload_len % 1600);
                let index = stored.len();
                payload[..TAG].copy_from_slice(&(index as u32).to_be_bytes());
                let delta = Duration::from_millis(u64::from(arrival_ms_delta.unsigned_abs()));
                let arrival = if arrival_ms_delta < 0 { now.checked_sub(delta).unwrap_or(now) } else { now + delta };
                let outcome = jb.insert(seq, ts, &payload[..len], arrival);
                inserts += 1;

                let kept = matches!(outcome, InsertOutcome::Stored | InsertOutcome::Resynchronized);
                if len > SLOT_BYTES {
                    assert_eq!(outcome, InsertOutcome::Discarded);
                } else if outcome == InsertOutcome::Resynchronized || current.highest.is_none() {
                    // The first packet of a numbering, always stored.
                    assert!(kept, "{outcome:?}");
                    spanned_before += current.span();
                    numbering += 1;
                    current = Numbering { highest: None, lowest: i64::from(seq), last_played: None };
                    announced = None;
                }
                let ext = match current.highest {
                    Some(h) => h + i64::from(seq.wrapping_sub(h as u16) as i16),
                    None => i64::from(seq),
                };
                if kept {
                    current.highest = current.highest.max(Some(ext));
                    current.lowest = current.lowest.min(ext);
                }
                stored.push(kept.then_some((numbering, ext, len)));
            }
            Op::Pop { advance_ms } => {
                now += Duration::from_millis(u64::from(advance_ms));
                let before = jb.stats();
                let awaiting = jb.awaiting_next();
                // Owned, so that the counters can be read next to it.
                let playout = match jb.pop(now) {
                    Playout::Frame(p) => Played::Frame(p.to_vec()),
                    Playout::Lost { next } => Played::Lost(next.map(<[u8]>::to_vec)),
                    Playout::Waiting => Played::Waiting,
                };
                let after = jb.stats();
                let expect_next = announced.take();
                match playout {
                    Played::Frame(p) => {
                        assert_eq!(after.played, before.played + 1);
                        assert!(!awaiting, "a frame was played although awaiting_next said none was buffered");
                        let seq = check_stored(&p, &stored, numbering);
                        if let Some(seq) = seq {
                            if let Some(prev) = current.last_played {
                                assert!(seq > prev, "played {seq} after {prev}");
                            }
                            current.last_played = Some(seq);
                        }
                        if let Some(i) = expect_next {
                            assert_eq!(tag(&p), Some(i), "the frame announced for FEC was not played next");
                        }
                    }
                    Played::Lost(next) => {
                        assert_eq!(after.played, before.played);
                        assert!(expect_next.is_none(), "the frame announced for FEC was not played next");
                        if let Some(n) = next {
                            if let Some(seq) = check_stored(&n, &stored, numbering) {
                                assert!(current.last_played.is_none_or(|prev| seq > prev));
                            }
                            announced = tag(&n);
                        }
                    }
                    Played::Waiting => {
                        assert_eq!(after.played, before.played);
                        assert!(expect_next.is_none());
                    }
                }
            }
            Op::Reset => {
                jb.reset();
                spanned_before += current.span();
                current = Numbering::default();
                announced = None;
            }
        }
        let s = jb.stats();
        assert_eq!(s.received, inserts);
        assert!(s.buffered <= SLOTS);
        let expected = spanned_before + current.span();
        assert!(s.played + s.lost <= expected, "played {} + lost {} > {expected} sequence numbers", s.played, s.lost);
        assert!(s.target_delay_ms.is_finite() && s.target_delay_ms > 0.0);
        assert!(s.jitter_ms.is_finite() && s.current_delay_ms.is_finite());
    }
});

fn tag(p: &[u8]) -> Option<usize> {
    Some(u32::from_be_bytes(p.get(..TAG)?.try_into().ok()?) as usize)
}

/// A played payload is one that was stored in this numbering, with its
/// length; returns its extended sequence number when the payload tells.
fn check_stored(p: &[u8], stored: &[Option<(usize, i64, usize)>], numbering: usize) -> Option<i64> {
    let i = tag(p)?;
    let Some(Some((n, seq, len))) = stored.get(i) else {
        panic!("played insert {i}, which was not stored");
    };
    assert_eq!(*n, numbering, "played insert {i} from an earlier numbering");
    assert_eq!(*len, p.len(), "insert {i} played with another length");
    Some(*seq)
}
