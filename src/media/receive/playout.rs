//! When a call plays out its received audio: the receive side's frame clock,
//! phase-locked to the packets' arrivals.
//!
//! A free-running playout tick is a random phase away from the packets: a
//! packet that arrives just after a tick waits almost a whole frame (20 ms)
//! for the next one, which is the largest part of the receive delay on a
//! clean network. [`PlayoutClock`] instead starts its ticks `margin` after
//! the first packet's arrival, then keeps them there:
//!
//! - every packet's *wait* (from its arrival to the next tick, modulo one
//!   frame) is recorded over a window of [`WINDOW`] packets;
//! - when the window's waits are tightly grouped (spread below half a frame:
//!   a clean network, where phase matters) and their minimum has drifted
//!   away from `margin` by more than [`TOLERANCE`] (sender and receiver
//!   clocks differ, or the stream was re-timed), the ticks move by that
//!   difference, which can only be less than one frame;
//! - when the waits are spread (real jitter), the phase is left alone: the
//!   jitter buffer's target delay, in whole frames, absorbs the jitter.
//!
//! Time is passed in, so it is tested without sleeping.

use std::time::{Duration, Instant};

/// Packets per phase measurement window.
pub const WINDOW: u32 = 50;

/// How far the smallest wait may drift from the margin before the ticks move.
pub const TOLERANCE: Duration = Duration::from_micros(500);

/// The receive side's frame clock (see the module docs).
#[derive(Debug, Clone)]
pub struct PlayoutClock {
    frame: Duration,
    margin: Duration,
    next: Option<Instant>,
    window_count: u32,
    min_wait: Duration,
    max_wait: Duration,
    adjustments: u64,
}

impl PlayoutClock {
    /// A clock ticking every `frame`, aiming to play each packet `margin`
    /// after it arrives (`margin` is capped at half a frame).
    pub fn new(frame: Duration, margin: Duration) -> PlayoutClock {
        PlayoutClock {
            frame,
            margin: margin.min(frame / 2),
            next: None,
            window_count: 0,
            min_wait: Duration::MAX,
            max_wait: Duration::ZERO,
            adjustments: 0,
        }
    }

    /// When the next tick is due; `None` until the first packet.
    pub fn next_tick(&self) -> Option<Instant> {
        self.next
    }

    /// How often the phase was moved.
    pub fn adjustments(&self) -> u64 {
        self.adjustments
    }

    /// A packet arrived at `arrival`.
    pub fn on_packet(&mut self, arrival: Instant) {
        let Some(next) = self.next else {
            self.next = Some(arrival + self.margin);
            return;
        };
        let wait = self.wait(next, arrival);
        self.min_wait = self.min_wait.min(wait);
        self.max_wait = self.max_wait.max(wait);
        self.window_count += 1;
        if self.window_count >= WINDOW {
            self.adjust_phase();
        }
    }

    /// The tick due at [`next_tick`](Self::next_tick) is being run: returns
    /// its due time and schedules the following one.
    pub fn on_tick(&mut self) -> Option<Instant> {
        let due = self.next?;
        self.next = Some(due + self.frame);
        Some(due)
    }

    /// From `arrival` to the first tick at or after it, in `(0, frame]`.
    fn wait(&self, next: Instant, arrival: Instant) -> Duration {
        let frame = self.frame.as_nanos().max(1);
        let wait = if next >= arrival {
            (next - arrival).as_nanos() % frame
        } else {
            (frame - (arrival - next).as_nanos() % frame) % frame
        };
        Duration::from_nanos(if wait == 0 { frame as u64 } else { wait as u64 })
    }

    fn adjust_phase(&mut self) {
        let (min, max) = (self.min_wait, self.max_wait);
        self.window_count = 0;
        self.min_wait = Duration::MAX;
        self.max_wait = Duration::ZERO;
        let Some(next) = self.next else { return };
        if max - min >= self.frame / 2 {
            return;
        }
        if min > self.margin + TOLERANCE {
            // Packets wait longer than needed: tick earlier.
            self.next = Some(next - (min - self.margin));
            self.adjustments += 1;
        } else if min + TOLERANCE < self.margin {
            // Packets arrive too close to the tick (or just after it): tick later.
            self.next = Some(next + (self.margin - min));
            self.adjustments += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(20);
    const MARGIN: Duration = Duration::from_millis(2);

    fn ms(v: f64) -> Duration {
        Duration::from_secs_f64(v / 1000.0)
    }

    /// Runs `packets` arrivals (at `arrival(n)` after t0) interleaved with the
    /// ticks, returning the ticks' due times relative to t0 and each packet's
    /// wait until the first tick after it.
    fn run(clock: &mut PlayoutClock, t0: Instant, packets: u32, arrival: impl Fn(u32) -> Duration) -> Vec<Duration> {
        let mut waits = Vec::new();
        let mut pending: Vec<Instant> = Vec::new();
        for n in 0..packets {
            let a = t0 + arrival(n);
            // Run every tick due before this arrival.
            while let Some(due) = clock.next_tick().filter(|d| *d <= a) {
                clock.on_tick();
                for p in pending.drain(..) {
                    waits.push(due - p);
                }
            }
            clock.on_packet(a);
            pending.push(a);
        }
        waits
    }

    #[test]
    fn first_tick_is_margin_after_first_packet() {
        let t0 = Instant::now();
        let mut c = PlayoutClock::new(FRAME, MARGIN);
        assert_eq!(c.next_tick(), None);
        assert_eq!(c.on_tick(), None);
        c.on_packet(t0);
        assert_eq!(c.next_tick(), Some(t0 + MARGIN));
        assert_eq!(c.on_tick(), Some(t0 + MARGIN));
        assert_eq!(c.next_tick(), Some(t0 + MARGIN + FRAME));
    }

    #[test]
    fn clean_stream_waits_the_margin() {
        let t0 = Instant::now();
        let mut c = PlayoutClock::new(FRAME, MARGIN);
        let waits = run(&mut c, t0, 500, |n| FRAME * n);
        assert!(waits.iter().all(|w| *w == MARGIN), "{waits:?}");
        assert_eq!(c.adjustments(), 0);
    }

    #[test]
    fn follows_a_slow_sender_clock() {
        // The sender's clock runs 200 ppm slow (real crystals: under 100):
        // packets come 20.004 ms apart, so without correction the waits would
        // shrink by 0.2 ms every 50 packets until packets missed their tick.
        let t0 = Instant::now();
        let mut c = PlayoutClock::new(FRAME, MARGIN);
        let waits = run(&mut c, t0, 10_000, |n| ms(20.004 * f64::from(n)));
        assert!(c.adjustments() > 0);
        let late = &waits[200..];
        let (min, max) = (late.iter().min().unwrap(), late.iter().max().unwrap());
        assert!(*min >= ms(0.75) && *max <= MARGIN + ms(0.01), "{min:?}..{max:?}");
    }

    #[test]
    fn follows_a_fast_sender_clock() {
        // 200 ppm fast: without correction packets would wait longer and longer.
        let t0 = Instant::now();
        let mut c = PlayoutClock::new(FRAME, MARGIN);
        let waits = run(&mut c, t0, 10_000, |n| ms(19.996 * f64::from(n)));
        assert!(c.adjustments() > 0);
        let late = &waits[200..];
        let (min, max) = (late.iter().min().unwrap(), late.iter().max().unwrap());
        assert!(*min >= MARGIN - ms(0.01) && *max <= MARGIN + ms(1.45), "{min:?}..{max:?}");
    }

    #[test]
    fn moves_to_a_new_phase_after_a_step() {
        // The stream's phase jumps by 7 ms at packet 100 (a re-timed sender).
        let t0 = Instant::now();
        let mut c = PlayoutClock::new(FRAME, MARGIN);
        let waits = run(&mut c, t0, 400, |n| FRAME * n + if n >= 100 { ms(7.0) } else { Duration::ZERO });
        assert_eq!(c.adjustments(), 1);
        assert!(waits[200..].iter().all(|w| *w == MARGIN), "{:?}", &waits[200..210]);
    }

    #[test]
    fn leaves_the_phase_alone_under_jitter() {
        // Arrivals spread over 15 ms: the jitter buffer's job, not the clock's.
        let t0 = Instant::now();
        let mut c = PlayoutClock::new(FRAME, MARGIN);
        let mut x: u32 = 7;
        let jitter: Vec<f64> = (0..1000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                f64::from(x >> 16) / 65_536.0 * 15.0
            })
            .collect();
        run(&mut c, t0, 1000, |n| FRAME * n + ms(jitter[n as usize]));
        assert_eq!(c.adjustments(), 0);
    }

    #[test]
    fn wait_is_modulo_one_frame() {
        let t0 = Instant::now();
        let c = PlayoutClock::new(FRAME, MARGIN);
        let next = t0 + ms(50.0);
        assert_eq!(c.wait(next, t0 + ms(48.0)), ms(2.0));
        assert_eq!(c.wait(next, t0 + ms(50.0)), FRAME);
        assert_eq!(c.wait(next, t0 + ms(51.0)), ms(19.0));
        assert_eq!(c.wait(next, t0 + ms(5.0)), ms(5.0));
    }
}
