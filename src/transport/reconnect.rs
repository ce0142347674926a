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
//!   restart costs one short pause rather than a failover;
//! - a [permanent](crate::error::FailureKind::is_permanent) failure (a
//!   certificate that fails verification, a refused subprotocol) follows
//!   the [`PermanentFailurePolicy`]: with `Stop` that server is left out of
//!   later rounds and, once every server is, there is no next attempt
//!   until [`Reconnect::reset`]; with `RetryAfter(d)` a round in which
//!   every failure was permanent waits `d` instead of the backoff.

use std::time::Duration;

use rand::Rng;

use crate::error::PermanentFailurePolicy;

/// Reconnection state for a list of servers.
#[derive(Clone, Debug)]
pub(crate) struct Reconnect {
    servers: usize,
    current: usize,
    tried_in_round: usize,
    failed_rounds: u32,
    min: Duration,
    max: Duration,
    on_permanent: PermanentFailurePolicy,
    /// Servers left out after a permanent failure (policy `Stop`).
    left_out: Vec<bool>,
    /// Every failure of the current round so far was permanent.
    round_permanent: bool,
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
    pub(crate) fn new(servers: usize, min: Duration, max: Duration, on_permanent: PermanentFailurePolicy) -> Reconnect {
        let servers = servers.max(1);
        Reconnect {
            servers,
            current: 0,
            tried_in_round: 0,
            failed_rounds: 0,
            min,
            max: max.max(min),
            on_permanent,
            left_out: vec![false; servers],
            round_permanent: true,
        }
    }

    /// Starts over (the user asked to register again): every server is
    /// tried again, from the preferred one, without backoff.
    pub(crate) fn reset(&mut self) {
        self.current = 0;
        self.tried_in_round = 0;
        self.failed_rounds = 0;
        self.left_out.fill(false);
        self.round_permanent = true;
    }

    /// The server currently in use or about to be tried.
    #[cfg(test)]
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// An attempt to connect failed, permanently or not: where and when to
    /// try next. `None`: nowhere, every server failed permanently (policy
    /// `Stop`).
    pub(crate) fn handle_failure(&mut self, permanent: bool, rng: &mut impl Rng) -> Option<Attempt> {
        if permanent && self.on_permanent == PermanentFailurePolicy::Stop {
            self.left_out[self.current] = true;
        }
        let first = self.left_out.iter().position(|out| !out)?;
        self.round_permanent &= permanent;
        self.tried_in_round += 1;
        while self.tried_in_round < self.servers {
            self.current = (self.current + 1) % self.servers;
            if !self.left_out[self.current] {
                return Some(Attempt { server: self.current, delay: Duration::ZERO });
            }
            self.tried_in_round += 1;
        }
        // The round is over: the next starts from the preferred server left.
        self.failed_rounds = self.failed_rounds.saturating_add(1);
        let delay = match self.on_permanent {
            PermanentFailurePolicy::RetryAfter(d) if self.round_permanent => d,
            _ => jitter(self.backoff(), rng),
        };
        self.round_permanent = true;
        self.current = first;
        // The servers before it are left out: they count as passed.
        self.tried_in_round = first;
        Some(Attempt { server: first, delay })
    }

    /// A connection came up.
    pub(crate) fn handle_connected(&mut self) {
        self.tried_in_round = 0;
        self.failed_rounds = 0;
        self.round_permanent = true;
    }

    /// A connection that was up dropped: where and when to try next.
    pub(crate) fn handle_disconnected(&mut self, rng: &mut impl Rng) -> Attempt {
        self.tried_in_round = 0;
        self.round_permanent = true;
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

    /// A transient failure, which always has a next attempt.
    fn fail(r: &mut Reconnect, rng: &mut StdRng) -> Attempt {
        r.handle_failure(false, rng).expect("transient failures are retried")
    }

    #[test]
    fn fails_over_at_once_then_backs_off_per_round() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut r = Reconnect::new(3, secs(2), secs(30), PermanentFailurePolicy::Stop);
        assert_eq!(fail(&mut r, &mut rng), Attempt { server: 1, delay: Duration::ZERO });
        assert_eq!(fail(&mut r, &mut rng), Attempt { server: 2, delay: Duration::ZERO });
        let a = fail(&mut r, &mut rng);
        assert_eq!(a.server, 0);
        assert!(a.delay >= secs(1) && a.delay <= secs(2), "{a:?}");
        for expected in [4u64, 8, 16, 30, 30] {
            fail(&mut r, &mut rng);
            fail(&mut r, &mut rng);
            let a = fail(&mut r, &mut rng);
            assert!(a.delay >= secs(expected) / 2 && a.delay <= secs(expected), "{a:?} vs {expected}");
        }
    }

    #[test]
    fn reconnects_to_the_same_server_after_a_drop_and_resets_after_success() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut r = Reconnect::new(2, secs(2), secs(30), PermanentFailurePolicy::Stop);
        fail(&mut r, &mut rng);
        r.handle_connected();
        assert_eq!(r.current(), 1);
        let a = r.handle_disconnected(&mut rng);
        assert_eq!(a.server, 1);
        assert!(a.delay <= secs(2));
        assert_eq!(fail(&mut r, &mut rng).server, 0, "then the other server");
        let a = fail(&mut r, &mut rng);
        assert_eq!(a.server, 0);
        assert!(a.delay >= secs(1), "a full failed round backs off");
    }

    #[test]
    fn single_server_backs_off_every_attempt() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut r =
            Reconnect::new(1, Duration::from_millis(100), Duration::from_millis(400), PermanentFailurePolicy::Stop);
        let delays: Vec<_> = (0..5).map(|_| fail(&mut r, &mut rng).delay).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        assert!(delays[4] >= Duration::from_millis(200));
    }

    #[test]
    fn stop_leaves_permanently_failed_servers_out_then_gives_up() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut r = Reconnect::new(3, secs(2), secs(30), PermanentFailurePolicy::Stop);
        // Server 0: bad certificate. Server 1: refused (transient). Server 2: bad certificate.
        assert_eq!(r.handle_failure(true, &mut rng), Some(Attempt { server: 1, delay: Duration::ZERO }));
        assert_eq!(r.handle_failure(false, &mut rng), Some(Attempt { server: 2, delay: Duration::ZERO }));
        let a = r.handle_failure(true, &mut rng).expect("server 1 is still worth trying");
        assert_eq!(a.server, 1, "the next round skips the servers left out");
        assert!(a.delay >= secs(1), "after backoff: {a:?}");
        let a = r.handle_failure(false, &mut rng).expect("server 1 again");
        assert_eq!(a.server, 1);
        assert_eq!(r.handle_failure(true, &mut rng), None, "every server failed permanently");
        r.reset();
        assert_eq!(r.current(), 0);
        assert_eq!(r.handle_failure(false, &mut rng), Some(Attempt { server: 1, delay: Duration::ZERO }));
    }

    #[test]
    fn a_single_server_with_a_bad_certificate_is_tried_once() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut r = Reconnect::new(1, secs(2), secs(30), PermanentFailurePolicy::default());
        assert_eq!(r.handle_failure(true, &mut rng), None);
    }

    #[test]
    fn retry_after_waits_its_delay_when_the_whole_round_failed_permanently() {
        let mut rng = StdRng::seed_from_u64(2);
        let policy = PermanentFailurePolicy::RetryAfter(secs(300));
        let mut r = Reconnect::new(2, secs(2), secs(30), policy);
        assert_eq!(r.handle_failure(true, &mut rng), Some(Attempt { server: 1, delay: Duration::ZERO }));
        assert_eq!(r.handle_failure(true, &mut rng), Some(Attempt { server: 0, delay: secs(300) }));
        // A round with a transient failure in it backs off as usual.
        assert_eq!(r.handle_failure(true, &mut rng), Some(Attempt { server: 1, delay: Duration::ZERO }));
        let a = r.handle_failure(false, &mut rng).expect("retried");
        assert!(a.delay <= secs(4), "{a:?}");
    }
}
