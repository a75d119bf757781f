//! Optional self-measurement of the running window: the time between
//! frames, summarised every few seconds on stderr. Enabled with
//! `CHATCLIENT_FRAME_LOG=1`; used to check the "no frame longer than
//! 50 ms" requirement in a real window (see docs/benchmarks.md).

use std::time::{Duration, Instant};

/// How often a summary line is written.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Frame intervals since the last summary.
#[derive(Debug, Clone)]
pub struct FrameLog {
    /// When the previous frame was requested.
    last: Option<Instant>,
    /// Intervals since the last summary.
    intervals: Vec<Duration>,
    /// When the last summary was written.
    reported: Instant,
    /// Longest interval since the start.
    worst: Duration,
}

impl Default for FrameLog {
    fn default() -> Self {
        Self {
            last: None,
            intervals: Vec::new(),
            reported: Instant::now(),
            worst: Duration::ZERO,
        }
    }
}

/// A summary: count, p50, p99 and max of the intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Frames in the period.
    pub frames: usize,
    /// Median interval.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Longest interval.
    pub max: Duration,
}

/// The summary of `intervals` (sorted in place); `None` when empty.
pub fn summarise(intervals: &mut [Duration]) -> Option<Summary> {
    if intervals.is_empty() {
        return None;
    }
    intervals.sort_unstable();
    let at = |p: f64| intervals[((intervals.len() - 1) as f64 * p).round() as usize];
    Some(Summary {
        frames: intervals.len(),
        p50: at(0.5),
        p99: at(0.99),
        max: intervals[intervals.len() - 1],
    })
}

impl FrameLog {
    /// A frame at `at`; `entries` is the length of the message list.
    pub fn frame(&mut self, at: Instant, entries: usize) {
        if let Some(last) = self.last {
            let d = at.saturating_duration_since(last);
            self.worst = self.worst.max(d);
            self.intervals.push(d);
        }
        self.last = Some(at);
        if at.saturating_duration_since(self.reported) >= REPORT_EVERY {
            if let Some(s) = summarise(&mut self.intervals) {
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                eprintln!(
                    "frames: {} in {:.1} s, interval p50 {:.1} ms p99 {:.1} ms max {:.1} ms \
                     (worst so far {:.1} ms), {entries} entries in the list",
                    s.frames,
                    ms(at.saturating_duration_since(self.reported)),
                    ms(s.p50),
                    ms(s.p99),
                    ms(s.max),
                    ms(self.worst)
                );
            }
            self.intervals.clear();
            self.reported = at;
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
        assert_eq!(s.frames, 100);
        assert_eq!(s.p50, Duration::from_millis(51));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(summarise(&mut []), None);
    }
}
