//! Optional self-measurement of the running window, summarised every few
//! seconds on stderr. Enabled with `CHATCLIENT_FRAME_LOG=1`; used to check
//! the "no frame longer than 50 ms" requirement in a real window (see
//! docs/benchmarks.md).
//!
//! What is measured is the *lag* of each chat message: from the server's
//! timestamp to the moment `update` handles it on the UI thread (client and
//! server on one machine share the clock). A frame that takes too long
//! holds up the messages behind it, so any stall shows as lag; a client
//! that cannot keep up shows lag growing without bound. Nothing here asks
//! for extra frames, so the measurement does not load the machine.

use std::time::{Duration, Instant};

/// How often a summary line is written.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Message lags since the last summary.
#[derive(Debug, Clone)]
pub struct LagLog {
    /// Lags since the last summary.
    lags: Vec<Duration>,
    /// When the last summary was written.
    reported: Instant,
    /// Longest lag since the start.
    worst: Duration,
}

impl Default for LagLog {
    fn default() -> Self {
        Self {
            lags: Vec::new(),
            reported: Instant::now(),
            worst: Duration::ZERO,
        }
    }
}

/// A summary: count, p50, p99 and max.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Samples in the period.
    pub samples: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Longest.
    pub max: Duration,
}

/// The summary of `lags` (sorted in place); `None` when empty.
pub fn summarise(lags: &mut [Duration]) -> Option<Summary> {
    if lags.is_empty() {
        return None;
    }
    lags.sort_unstable();
    let at = |p: f64| lags[((lags.len() - 1) as f64 * p).round() as usize];
    Some(Summary {
        samples: lags.len(),
        p50: at(0.5),
        p99: at(0.99),
        max: lags[lags.len() - 1],
    })
}

impl LagLog {
    /// A chat message stamped `ts_ms` (server time) reached `update`;
    /// `entries` is the length of the message list.
    pub fn message(&mut self, ts_ms: i64, entries: usize) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let lag = Duration::from_millis(now_ms.saturating_sub(ts_ms).max(0) as u64);
        self.worst = self.worst.max(lag);
        self.lags.push(lag);
        let now = Instant::now();
        let period = now.saturating_duration_since(self.reported);
        if period >= REPORT_EVERY {
            if let Some(s) = summarise(&mut self.lags) {
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                eprintln!(
                    "ui lag: {} messages in {:.1} s, server to update p50 {:.0} ms p99 {:.0} ms \
                     max {:.0} ms (worst so far {:.0} ms), {entries} entries in the list",
                    s.samples,
                    period.as_secs_f64(),
                    ms(s.p50),
                    ms(s.p99),
                    ms(s.max),
                    ms(self.worst)
                );
            }
            self.lags.clear();
            self.reported = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_pick_the_median_the_99th_and_the_longest() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = summarise(&mut v).expect("not empty");
        assert_eq!(s.samples, 100);
        assert_eq!(s.p50, Duration::from_millis(51));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(summarise(&mut []), None);
    }
}
