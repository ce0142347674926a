//! Which server to connect to next, and how long to wait first: failover
//! across several servers plus exponential backoff with jitter.
//!
//! Sans-IO. The policy, in rounds:
//! - a round tries each server once, in order of preference, starting from
//!   the preferred one; a failed attempt moves on to the next server at once;
//! - when a whole round fails, the next round starts after a backoff that
//!   doubles per failed round from `min` up to `max`, with jitter (a random
//!   share between half and all of it), as JsSIP's 2..30 s recovery does;
//! - after a connection that was up drops, the next attempt goes to the
//!   same server after a short jittered wait (at most `min`), so a server
//!   restart costs one short pause rather than a failover.

use std::time::Duration;

use rand::Rng;

/// Reconnection state for a list of servers.
#[derive(Clone, Debug)]
pub(crate) struct Reconnect {
    servers: usize,
    current: usize,
    tried_in_round: usize,
    failed_rounds: u32,
    min: Duration,
    max: Duration,
}

/// The next connection attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// Index of the server to try.
    pub server: usize,
    /// How long to wait before trying.
    pub delay: Duration,
}

impl Reconnect {
    /// Policy for `servers` servers (at least one) with backoff bounds.
    pub(crate) fn new(servers: usize, min: Duration, max: Duration) -> Reconnect {
        Reconnect { servers: servers.max(1), current: 0, tried_in_round: 0, failed_rounds: 0, min, max: max.max(min) }
    }

    /// The server currently in use or about to be tried.
    #[cfg(test)]
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// An attempt to connect failed: where and when to try next.
    pub(crate) fn handle_failure(&mut self, rng: &mut impl Rng) -> Attempt {
        self.tried_in_round += 1;
        if self.tried_in_round < self.servers {
            self.current = (self.current + 1) % self.servers;
            return Attempt { server: self.current, delay: Duration::ZERO };
        }
        self.tried_in_round = 0;
        self.failed_rounds = self.failed_rounds.saturating_add(1);
        self.current = 0;
        Attempt { server: 0, delay: jitter(self.backoff(), rng) }
    }

    /// A connection came up.
    pub(crate) fn handle_connected(&mut self) {
        self.tried_in_round = 0;
        self.failed_rounds = 0;
    }

    /// A connection that was up dropped: where and when to try next.
    pub(crate) fn handle_disconnected(&mut self, rng: &mut impl Rng) -> Attempt {
        self.tried_in_round = 0;
        Attempt { server: self.current, delay: jitter(self.min, rng) }
    }

    /// The backoff after the current number of failed rounds, before jitter.
    pub(crate) fn backoff(&self) -> Duration {
        let exp = self.failed_rounds.saturating_sub(1).min(20);
        self.min.saturating_mul(1 << exp).min(self.max)
    }
}

/// A random duration between half of `d` and `d`.
fn jitter(d: Duration, rng: &mut impl Rng) -> Duration {
    d.mul_f64(rng.random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn fails_over_at_once_then_backs_off_per_round() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut r = Reconnect::new(3, secs(2), secs(30));
        assert_eq!(r.handle_failure(&mut rng), Attempt { server: 1, delay: Duration::ZERO });
        assert_eq!(r.handle_failure(&mut rng), Attempt { server: 2, delay: Duration::ZERO });
        let a = r.handle_failure(&mut rng);
        assert_eq!(a.server, 0);
        assert!(a.delay >= secs(1) && a.delay <= secs(2), "{a:?}");
        for expected in [4u64, 8, 16, 30, 30] {
            r.handle_failure(&mut rng);
            r.handle_failure(&mut rng);
            let a = r.handle_failure(&mut rng);
            assert!(a.delay >= secs(expected) / 2 && a.delay <= secs(expected), "{a:?} vs {expected}");
        }
    }

    #[test]
    fn reconnects_to_the_same_server_after_a_drop_and_resets_after_success() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut r = Reconnect::new(2, secs(2), secs(30));
        r.handle_failure(&mut rng);
        r.handle_connected();
        assert_eq!(r.current(), 1);
        let a = r.handle_disconnected(&mut rng);
        assert_eq!(a.server, 1);
        assert!(a.delay <= secs(2));
        assert_eq!(r.handle_failure(&mut rng).server, 0, "then the other server");
        let a = r.handle_failure(&mut rng);
        assert_eq!(a.server, 0);
        assert!(a.delay >= secs(1), "a full failed round backs off");
    }

    #[test]
    fn single_server_backs_off_every_attempt() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut r = Reconnect::new(1, Duration::from_millis(100), Duration::from_millis(400));
        let delays: Vec<_> = (0..5).map(|_| r.handle_failure(&mut rng).delay).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        assert!(delays[4] >= Duration::from_millis(200));
    }
}
