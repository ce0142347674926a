//! Reporting malformed input without letting it flood the reports: the
//! first malformed message of a burst is reported at once, later ones are
//! counted and reported together (with the last reason) when the window of
//! [`REPORT_INTERVAL`] closes, so a flood of junk costs one event per
//! second, whatever its rate.
//!
//! Sans-IO: time is an argument; [`MalformedReports::poll_timeout`] says
//! when a counted report is due.

use std::time::{Duration, Instant};

/// At most one report per this long.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// One report: the last reason and how many messages it stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) why: String,
    pub(crate) count: u64,
}

/// The coalescing state.
#[derive(Debug, Default)]
pub(crate) struct MalformedReports {
    /// The end of the current window, if one is open.
    window_end: Option<Instant>,
    /// Messages counted in the current window, not reported yet.
    pending: u64,
    last_why: String,
}

impl MalformedReports {
    /// A malformed message arrived: the report to make now, if any.
    pub(crate) fn handle_malformed(&mut self, why: &str, now: Instant) -> Option<Report> {
        match self.window_end {
            Some(end) if now < end => {
                self.pending += 1;
                if self.last_why != why {
                    self.last_why.clear();
                    self.last_why.push_str(why);
                }
                None
            }
            _ => {
                // A new burst (or a window that ended with nothing counted
                // before its timer was served): report it at once.
                let earlier = self.flush();
                self.window_end = Some(now + REPORT_INTERVAL);
                let count = 1 + earlier.as_ref().map_or(0, |r| r.count);
                Some(Report { why: why.to_string(), count })
            }
        }
    }

    /// When [`Self::handle_timeout`] must be called.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.window_end.filter(|_| self.pending > 0)
    }

    /// Time passed: the counted report, when its window closed.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Option<Report> {
        let end = self.window_end?;
        if now < end {
            return None;
        }
        let report = self.flush();
        // A flood that goes on is reported once per window.
        self.window_end = report.is_some().then_some(now + REPORT_INTERVAL);
        report
    }

    /// The connection is gone: what was counted is reported now (the
    /// next connection starts afresh).
    pub(crate) fn take_pending(&mut self) -> Option<Report> {
        self.window_end = None;
        self.flush()
    }

    fn flush(&mut self) -> Option<Report> {
        let count = std::mem::take(&mut self.pending);
        (count > 0).then(|| Report { why: std::mem::take(&mut self.last_why), count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_one_report_per_interval_with_every_message_counted() {
        let t0 = Instant::now();
        let mut m = MalformedReports::default();
        let mut reports = Vec::new();
        // 50,000 messages over 5 s, with a timer served whenever one is due.
        for i in 0..50_000u64 {
            let now = t0 + Duration::from_micros(i * 100);
            if let Some(due) = m.poll_timeout()
                && due <= now
            {
                reports.extend(m.handle_timeout(now));
            }
            let why = if i % 2 == 0 { "no Via" } else { "malformed start line" };
            reports.extend(m.handle_malformed(why, now));
        }
        let end = m.poll_timeout().expect("the last window holds a count");
        reports.extend(m.handle_timeout(end));
        assert!(reports.len() <= 7, "{reports:?}");
        assert_eq!(reports.iter().map(|r| r.count).sum::<u64>(), 50_000);
        assert_eq!(reports[0], Report { why: "no Via".into(), count: 1 });
        assert_eq!(reports.last().map(|r| r.why.as_str()), Some("malformed start line"));
        // Quiet again: the window closes with nothing to report.
        assert_eq!(m.poll_timeout(), None);
        assert_eq!(m.handle_timeout(end + REPORT_INTERVAL), None);
    }

    #[test]
    fn lone_messages_are_reported_at_once() {
        let t0 = Instant::now();
        let mut m = MalformedReports::default();
        assert_eq!(m.handle_malformed("a", t0), Some(Report { why: "a".into(), count: 1 }));
        assert_eq!(m.poll_timeout(), None, "nothing counted, nothing due");
        let later = t0 + REPORT_INTERVAL;
        assert_eq!(m.handle_malformed("b", later), Some(Report { why: "b".into(), count: 1 }));
    }

    #[test]
    fn a_count_left_when_the_timer_was_not_served_goes_with_the_next_report() {
        let t0 = Instant::now();
        let mut m = MalformedReports::default();
        m.handle_malformed("a", t0);
        assert_eq!(m.handle_malformed("b", t0 + Duration::from_millis(10)), None);
        let r = m.handle_malformed("c", t0 + Duration::from_secs(5));
        assert_eq!(r, Some(Report { why: "c".into(), count: 2 }));
        assert_eq!(m.handle_malformed("d", t0 + Duration::from_secs(5)), None);
        assert_eq!(m.take_pending(), Some(Report { why: "d".into(), count: 1 }), "reported when the connection goes");
        assert_eq!(m.take_pending(), None);
        assert_eq!(m.poll_timeout(), None);
    }
}
