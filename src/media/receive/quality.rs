//! Call-quality alerts: packet loss, jitter and "no audio received" checked
//! against thresholds, raised once when a threshold is passed and cleared
//! once when the call is back to normal (the Bizfly SDK's `alerts`).
//!
//! [`QualityMonitor`] is fed the receive side's cumulative counters about
//! once a second ([`QualityMonitor::observe`]); it keeps a short history so
//! loss is measured over a sliding window rather than since the call began
//! (a call that lost 20 % for ten seconds an hour ago is fine now). Time is
//! passed in, so it is tested without sleeping. A threshold is cleared only
//! when the value falls to half of it, so a value hovering around the
//! threshold does not flap.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// When alerts are raised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QualityThresholds {
    /// Share of packets lost over [`window`](Self::window), 0..1; default 0.05.
    pub loss: f64,
    /// RFC 3550 interarrival jitter in ms; default 50.
    pub jitter_ms: f64,
    /// No RTP received for this long while the call's media is up; default 5 s.
    pub no_audio: Duration,
    /// The sliding window over which loss is measured; default 5 s.
    pub window: Duration,
}

impl Default for QualityThresholds {
    fn default() -> Self {
        QualityThresholds {
            loss: 0.05,
            jitter_ms: 50.0,
            no_audio: Duration::from_secs(5),
            window: Duration::from_secs(5),
        }
    }
}

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityMetric {
    /// Received packet loss over the window.
    PacketLoss,
    /// Interarrival jitter.
    Jitter,
    /// No audio packets received for a while.
    NoAudio,
}

/// A threshold passed (`active`) or back to normal (`!active`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct QualityAlert {
    /// The metric.
    pub metric: QualityMetric,
    /// Raised (true) or cleared (false).
    pub active: bool,
    /// The value when raised or cleared: loss share 0..1, jitter in ms,
    /// seconds without audio.
    pub value: f64,
    /// The threshold in the same unit.
    pub threshold: f64,
}

/// The receive side's cumulative counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QualitySample {
    /// Packets that were due so far (played or lost).
    pub expected: u64,
    /// Packets lost so far.
    pub lost: u64,
    /// Current jitter estimate, ms.
    pub jitter_ms: f64,
    /// Audio packets received so far.
    pub packets: u64,
}

/// Fewest packets due in the window before loss is judged.
const MIN_EXPECTED: u64 = 20;

const METRICS: [QualityMetric; 3] = [QualityMetric::PacketLoss, QualityMetric::Jitter, QualityMetric::NoAudio];

/// Tracks one call's quality (see the module docs).
#[derive(Debug, Clone)]
pub struct QualityMonitor {
    thresholds: QualityThresholds,
    history: VecDeque<(Instant, u64, u64)>,
    packets: u64,
    last_packet_change: Instant,
    active: [bool; 3],
}

impl QualityMonitor {
    /// A monitor for media that came up at `now`.
    pub fn new(thresholds: QualityThresholds, now: Instant) -> QualityMonitor {
        QualityMonitor {
            thresholds,
            history: VecDeque::with_capacity(16),
            packets: 0,
            last_packet_change: now,
            active: [false; 3],
        }
    }

    /// The thresholds in force.
    pub fn thresholds(&self) -> &QualityThresholds {
        &self.thresholds
    }

    /// Whether an alert on `metric` is currently raised.
    pub fn is_active(&self, metric: QualityMetric) -> bool {
        self.active[metric as usize]
    }

    /// Takes a sample at `now`; calls `alert` for each alert raised or cleared.
    pub fn observe(&mut self, now: Instant, sample: QualitySample, mut alert: impl FnMut(QualityAlert)) {
        let t = self.thresholds;
        // Loss over the window: against the oldest sample still inside it.
        self.history.push_back((now, sample.expected, sample.lost));
        while self.history.len() > 1 && self.history.get(1).is_some_and(|h| now.duration_since(h.0) >= t.window) {
            self.history.pop_front();
        }
        let (_, expected0, lost0) = self.history[0];
        let expected = sample.expected.saturating_sub(expected0);
        let lost = sample.lost.saturating_sub(lost0);
        let loss = (expected >= MIN_EXPECTED).then(|| lost as f64 / expected as f64);

        if sample.packets != self.packets {
            self.packets = sample.packets;
            self.last_packet_change = now;
        }
        let silent_for = now.duration_since(self.last_packet_change).as_secs_f64();

        for metric in METRICS {
            let (value, threshold, raise, clear) = match metric {
                QualityMetric::PacketLoss => {
                    let Some(loss) = loss else { continue };
                    (loss, t.loss, loss >= t.loss, loss < t.loss / 2.0)
                }
                QualityMetric::Jitter => {
                    let j = sample.jitter_ms;
                    (j, t.jitter_ms, j >= t.jitter_ms, j < t.jitter_ms / 2.0)
                }
                QualityMetric::NoAudio => {
                    let limit = t.no_audio.as_secs_f64();
                    (silent_for, limit, silent_for >= limit, silent_for == 0.0)
                }
            };
            let active = &mut self.active[metric as usize];
            if !*active && raise {
                *active = true;
                alert(QualityAlert { metric, active: true, value, threshold });
            } else if *active && clear {
                *active = false;
                alert(QualityAlert { metric, active: false, value, threshold });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    /// A call at 50 packets/s; `lost_per_sec(s)` of them lost in second `s`,
    /// `jitter(s)` ms, no packets at all in the seconds `mute` says.
    fn run(
        secs: u32,
        lost_per_sec: impl Fn(u32) -> u64,
        jitter: impl Fn(u32) -> f64,
        mute: impl Fn(u32) -> bool,
    ) -> Vec<(u32, QualityAlert)> {
        let t0 = Instant::now();
        let mut m = QualityMonitor::new(QualityThresholds::default(), t0);
        let mut sample = QualitySample::default();
        let mut alerts = Vec::new();
        for s in 1..=secs {
            if !mute(s) {
                let lost = lost_per_sec(s);
                sample.expected += 50;
                sample.lost += lost;
                sample.packets += 50 - lost;
            }
            sample.jitter_ms = jitter(s);
            m.observe(t0 + SEC * s, sample, |a| alerts.push((s, a)));
        }
        alerts
    }

    #[test]
    fn a_clean_call_raises_nothing() {
        assert!(run(60, |_| 0, |_| 2.0, |_| false).is_empty());
    }

    #[test]
    fn loss_is_raised_once_and_cleared_once() {
        // 10 % loss from second 10 to 19, then clean.
        let alerts = run(40, |s| if (10..20).contains(&s) { 5 } else { 0 }, |_| 1.0, |_| false);
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        let (raised_at, raised) = alerts[0];
        assert_eq!(raised.metric, QualityMetric::PacketLoss);
        assert!(raised.active && raised.value >= 0.05 && raised.threshold == 0.05);
        assert!((10..13).contains(&raised_at), "raised at {raised_at}");
        let (cleared_at, cleared) = alerts[1];
        assert!(!cleared.active && cleared.value < 0.025);
        // Cleared once the 5 s window no longer holds much of the lossy period.
        assert!((21..26).contains(&cleared_at), "cleared at {cleared_at}");
    }

    #[test]
    fn loss_hovering_at_the_threshold_does_not_flap() {
        // Alternating 6 % and 4 % seconds: raised once, never cleared (4 % > 2.5 %).
        let alerts = run(60, |s| if s % 2 == 0 { 3 } else { 2 }, |_| 1.0, |_| false);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
    }

    #[test]
    fn loss_since_an_old_burst_is_forgotten() {
        // 50 % loss for 2 s at the start, then clean for a minute: cleared within the window.
        let alerts = run(70, |s| if s <= 2 { 25 } else { 0 }, |_| 1.0, |_| false);
        assert_eq!(alerts.len(), 2);
        assert!(alerts[1].0 <= 8, "{alerts:?}");
    }

    #[test]
    fn jitter_alert() {
        let alerts = run(30, |_| 0, |s| if (5..10).contains(&s) { 80.0 } else { 3.0 }, |_| false);
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert_eq!(
            alerts[0],
            (5, QualityAlert { metric: QualityMetric::Jitter, active: true, value: 80.0, threshold: 50.0 })
        );
        assert_eq!(alerts[1].0, 10);
        assert!(!alerts[1].1.active);
    }

    #[test]
    fn no_audio_after_the_threshold_and_back() {
        // Nothing arrives from second 10 to 19 (the far side's audio stopped).
        let alerts = run(30, |_| 0, |_| 1.0, |s| (10..20).contains(&s));
        let no_audio: Vec<_> = alerts.iter().filter(|a| a.1.metric == QualityMetric::NoAudio).collect();
        assert_eq!(no_audio.len(), 2, "{alerts:?}");
        // Last packets counted at second 9: 5 s without any at second 14.
        assert_eq!(no_audio[0].0, 14);
        assert!(no_audio[0].1.active && no_audio[0].1.value >= 5.0);
        assert_eq!(no_audio[1].0, 20);
        assert!(!no_audio[1].1.active);
    }

    #[test]
    fn no_audio_from_the_start() {
        let alerts = run(10, |_| 0, |_| 0.0, |_| true);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].0, 5);
        assert_eq!(alerts[0].1.metric, QualityMetric::NoAudio);
    }
}
