//! Detecting a dead connection: send a ping when the connection has been
//! quiet for `interval`, and declare it dead when nothing at all arrives
//! within `timeout` of that ping.
//!
//! Sans-IO. Two ping kinds are supported, since servers differ: a WebSocket
//! ping frame (answered by a pong, RFC 6455) and the RFC 5626 double-CRLF
//! (answered by a single CRLF; Kamailio answers both). Any received frame
//! counts as a sign of life.

use std::time::{Duration, Instant};

/// Which ping to send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PingKind {
    /// A WebSocket ping frame.
    #[default]
    WebSocket,
    /// `\r\n\r\n` in a text frame (RFC 5626 §4.4.1).
    DoubleCrlf,
}

/// Keep-alive settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeepAliveConfig {
    /// Quiet time before a ping.
    pub interval: Duration,
    /// How long to wait for any sign of life after a ping.
    pub timeout: Duration,
    /// Ping kind.
    pub kind: PingKind,
}

impl Default for KeepAliveConfig {
    fn default() -> Self {
        KeepAliveConfig {
            interval: Duration::from_secs(25),
            timeout: Duration::from_secs(10),
            kind: PingKind::WebSocket,
        }
    }
}

/// What the driver must do when the keep-alive timer fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeepAliveAction {
    /// Nothing yet.
    None,
    /// Send a ping of this kind.
    SendPing(PingKind),
    /// No answer: close the connection and reconnect.
    Dead,
}

/// Keep-alive state of one connection.
#[derive(Clone, Debug)]
pub(crate) struct KeepAlive {
    cfg: KeepAliveConfig,
    last_rx: Instant,
    ping_sent: Option<Instant>,
}

impl KeepAlive {
    /// State for a connection that came up at `now`.
    pub(crate) fn new(cfg: KeepAliveConfig, now: Instant) -> KeepAlive {
        KeepAlive { cfg, last_rx: now, ping_sent: None }
    }

    /// Anything arrived.
    pub(crate) fn handle_received(&mut self, now: Instant) {
        self.last_rx = now;
        self.ping_sent = None;
    }

    /// When to call [`Self::handle_timeout`].
    pub(crate) fn poll_timeout(&self) -> Instant {
        match self.ping_sent {
            Some(sent) => sent + self.cfg.timeout,
            None => self.last_rx + self.cfg.interval,
        }
    }

    /// The timer fired.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> KeepAliveAction {
        if now < self.poll_timeout() {
            return KeepAliveAction::None;
        }
        match self.ping_sent {
            Some(_) => KeepAliveAction::Dead,
            None => {
                self.ping_sent = Some(now);
                KeepAliveAction::SendPing(self.cfg.kind)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_when_quiet_and_declares_dead_without_answer() {
        let t0 = Instant::now();
        let cfg = KeepAliveConfig {
            interval: Duration::from_secs(25),
            timeout: Duration::from_secs(10),
            kind: PingKind::DoubleCrlf,
        };
        let mut k = KeepAlive::new(cfg, t0);
        assert_eq!(k.handle_timeout(t0 + Duration::from_secs(24)), KeepAliveAction::None);
        assert_eq!(k.handle_timeout(t0 + Duration::from_secs(25)), KeepAliveAction::SendPing(PingKind::DoubleCrlf));
        assert_eq!(k.poll_timeout(), t0 + Duration::from_secs(35));
        assert_eq!(k.handle_timeout(t0 + Duration::from_secs(35)), KeepAliveAction::Dead);
    }

    #[test]
    fn any_traffic_postpones_the_ping_and_answers_it() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(KeepAliveConfig::default(), t0);
        k.handle_received(t0 + Duration::from_secs(20));
        assert_eq!(k.poll_timeout(), t0 + Duration::from_secs(45));
        assert!(matches!(k.handle_timeout(t0 + Duration::from_secs(45)), KeepAliveAction::SendPing(_)));
        k.handle_received(t0 + Duration::from_secs(46));
        assert_eq!(k.handle_timeout(t0 + Duration::from_secs(55)), KeepAliveAction::None);
        assert_eq!(k.poll_timeout(), t0 + Duration::from_secs(71));
    }
}
