//! A seeded network impairment stage in front of the jitter buffer: drops a
//! share of received packets and delays the rest by a random amount, which
//! reorders them as a jittery network does.
//!
//! For call tests and for trying the jitter buffer against bad networks
//! without a network emulator ([`crate::PhoneConfigBuilder::receive_impairment`]).
//! The same seed gives the same drops and delays for the same packet
//! sequence. Time is passed in: [`ImpairmentStage::push`] takes the arrival,
//! [`ImpairmentStage::pop_due`] the current time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What to do to received packets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impairment {
    /// Share of packets dropped, 0..1.
    pub loss: f64,
    /// Each packet is delayed by a uniformly random 0..=`jitter`.
    pub jitter: Duration,
    /// Seed of the random choices.
    pub seed: u64,
}

/// Packets held at most (beyond this the earliest due is released early).
const MAX_HELD: usize = 256;

/// Counters of an [`ImpairmentStage`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImpairmentStats {
    /// Packets pushed.
    pub packets: u64,
    /// Packets dropped.
    pub dropped: u64,
    /// Packets released after a later-pushed packet (reordered).
    pub reordered: u64,
}

/// The stage: a seeded RNG and a heap of delayed packets.
#[derive(Debug)]
pub struct ImpairmentStage<T> {
    config: Impairment,
    rng: StdRng,
    held: BinaryHeap<Reverse<Held<T>>>,
    pushed: u64,
    last_released: Option<u64>,
    stats: ImpairmentStats,
}

#[derive(Debug)]
struct Held<T> {
    due: Instant,
    order: u64,
    item: T,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.order) == (other.due, other.order)
    }
}
impl<T> Eq for Held<T> {}
impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Held<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.order).cmp(&(other.due, other.order))
    }
}

impl<T> ImpairmentStage<T> {
    /// A stage applying `config`.
    pub fn new(config: Impairment) -> Self {
        ImpairmentStage {
            config,
            rng: StdRng::seed_from_u64(config.seed),
            held: BinaryHeap::with_capacity(64),
            pushed: 0,
            last_released: None,
            stats: ImpairmentStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ImpairmentStats {
        self.stats
    }

    /// A packet arrived at `arrival`: dropped, or held until its delayed
    /// time. When 256 packets are already held, the earliest due is
    /// returned to be delivered at once.
    pub fn push(&mut self, item: T, arrival: Instant) -> Option<(T, Instant)> {
        self.stats.packets += 1;
        if self.config.loss > 0.0 && self.rng.random::<f64>() < self.config.loss {
            self.stats.dropped += 1;
            return None;
        }
        let delay = self.config.jitter.mul_f64(self.rng.random::<f64>());
        self.held.push(Reverse(Held { due: arrival + delay, order: self.pushed, item }));
        self.pushed += 1;
        if self.held.len() > MAX_HELD {
            // Never grows without bound: the earliest goes out now (it is the next due anyway).
            let due = self.next_due()?;
            return self.pop_due(due);
        }
        None
    }

    /// When the next held packet is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.peek().map(|Reverse(h)| h.due)
    }

    /// The next packet due at or before `now`, with the time it is
    /// delivered (its delayed arrival).
    pub fn pop_due(&mut self, now: Instant) -> Option<(T, Instant)> {
        if self.next_due()? > now {
            return None;
        }
        let Reverse(h) = self.held.pop()?;
        if self.last_released.is_some_and(|last| h.order < last) {
            self.stats.reordered += 1;
        }
        self.last_released = Some(self.last_released.map_or(h.order, |l| l.max(h.order)));
        Some((h.item, h.due))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(stage: &mut ImpairmentStage<u32>, now: Instant) -> Vec<(u32, Instant)> {
        std::iter::from_fn(|| stage.pop_due(now)).collect()
    }

    #[test]
    fn no_impairment_passes_everything_in_order_at_once() {
        let t0 = Instant::now();
        let mut s = ImpairmentStage::new(Impairment { loss: 0.0, jitter: Duration::ZERO, seed: 1 });
        for n in 0..10 {
            assert!(s.push(n, t0 + Duration::from_millis(u64::from(n) * 20)).is_none());
        }
        let out = drain(&mut s, t0 + Duration::from_secs(1));
        assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        assert!(out.iter().enumerate().all(|(n, o)| o.1 == t0 + Duration::from_millis(n as u64 * 20)));
        assert_eq!(s.stats().dropped, 0);
        assert_eq!(s.stats().reordered, 0);
    }

    #[test]
    fn drops_the_configured_share_and_delays_within_the_bound() {
        let t0 = Instant::now();
        let jitter = Duration::from_millis(30);
        let mut s = ImpairmentStage::new(Impairment { loss: 0.05, jitter, seed: 42 });
        let mut out = Vec::new();
        for n in 0..20_000u32 {
            let at = t0 + Duration::from_millis(u64::from(n) * 20);
            out.extend(s.push(n, at));
            out.extend(drain(&mut s, at));
        }
        out.extend(drain(&mut s, t0 + Duration::from_secs(1000)));
        let stats = s.stats();
        let share = stats.dropped as f64 / f64::from(20_000);
        assert!((0.04..0.06).contains(&share), "dropped {share}");
        assert_eq!(out.len() as u64, stats.packets - stats.dropped);
        for (n, due) in &out {
            let sent = t0 + Duration::from_millis(u64::from(*n) * 20);
            assert!(*due >= sent && *due <= sent + jitter);
        }
        // 30 ms of jitter on 20 ms spacing reorders about 5 % of packets ((10/30)² / 2).
        assert!(stats.reordered > 700, "{stats:?}");
        // Released in due order.
        assert!(out.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn same_seed_same_result() {
        let t0 = Instant::now();
        let run = |seed| {
            let mut s = ImpairmentStage::new(Impairment { loss: 0.1, jitter: Duration::from_millis(40), seed });
            let mut out = Vec::new();
            for n in 0..500u32 {
                out.extend(s.push(n, t0 + Duration::from_millis(u64::from(n) * 20)));
            }
            out.extend(drain(&mut s, t0 + Duration::from_secs(100)));
            out
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn holds_a_bounded_number_of_packets() {
        let t0 = Instant::now();
        let mut s = ImpairmentStage::new(Impairment { loss: 0.0, jitter: Duration::from_secs(3600), seed: 3 });
        let released = (0..10_000u32).filter_map(|n| s.push(n, t0)).count();
        assert!(s.held.len() <= MAX_HELD);
        assert_eq!(released + s.held.len(), 10_000);
    }
}
