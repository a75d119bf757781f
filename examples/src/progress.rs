//! Transfer progress for people: `indicatif` bars on a terminal, plain
//! throttled lines (`* 7: 12.0 of 64.0 MiB`) everywhere else.
//!
//! Bars are drawn on stderr, and only when both stdout and stderr are
//! terminals; transcript lines printed while bars are shown go through
//! [`Progress::print`], which moves the bars out of the way first.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::render::emit;

/// Plain progress lines come at most this often...
pub const LINE_INTERVAL: Duration = Duration::from_secs(1);

/// `12.0` for 12 MiB: bytes in MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// `* 7: 12.0 of 64.0 MiB`.
pub fn progress_line(transfer: u64, done: u64, total: u64) -> String {
    format!("* {transfer}: {} of {} MiB", mib(done), mib(total))
}

pub use chatcore::client::human_size;

/// Decides when a plain progress line is worth printing: when another
/// tenth of the transfer is done, or [`LINE_INTERVAL`] has passed since the
/// last line, and always at the end; never twice for the same count.
#[derive(Debug, Clone, Default)]
pub struct Throttle {
    last_at: Option<Instant>,
    last_tenth: u64,
    last_done: Option<u64>,
}

impl Throttle {
    /// Whether to print a line for `done` of `total` bytes at `now`.
    pub fn due(&mut self, now: Instant, done: u64, total: u64) -> bool {
        if self.last_done == Some(done) {
            return false;
        }
        let tenth = tenths(done, total);
        let due = done >= total
            || tenth > self.last_tenth
            || self
                .last_at
                .is_none_or(|at| now.duration_since(at) >= LINE_INTERVAL);
        if due {
            self.last_at = Some(now);
            self.last_tenth = tenth;
            self.last_done = Some(done);
        }
        due
    }
}

/// How many whole tenths of `total` `done` is.
fn tenths(done: u64, total: u64) -> u64 {
    if total == 0 {
        10
    } else {
        (u128::from(done) * 10 / u128::from(total)) as u64
    }
}

/// Shows the progress of several transfers at once.
#[derive(Debug)]
pub struct Progress {
    bars: Option<MultiProgress>,
    entries: HashMap<u64, Entry>,
}

#[derive(Debug)]
enum Entry {
    Bar(ProgressBar),
    Lines(Throttle),
}

impl Progress {
    /// Bars if stdout and stderr are terminals (and `TERM` is not `dumb`),
    /// plain lines otherwise.
    pub fn detect() -> Self {
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() && !dumb {
            Self::bars()
        } else {
            Self::lines()
        }
    }

    /// Always plain lines.
    pub fn lines() -> Self {
        Self {
            bars: None,
            entries: HashMap::new(),
        }
    }

    /// Always bars, on stderr.
    pub fn bars() -> Self {
        Self {
            bars: Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            entries: HashMap::new(),
        }
    }

    /// Starts showing `transfer` (`label` names it on its bar).
    pub fn start(&mut self, transfer: u64, label: &str, total: u64) {
        let entry = match &self.bars {
            Some(multi) => {
                let bar = multi.add(ProgressBar::new(total));
                if let Ok(style) = ProgressStyle::with_template(
                    "{msg:20!} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_message(format!("{transfer}: {label}"));
                Entry::Bar(bar)
            }
            None => Entry::Lines(Throttle::default()),
        };
        if let Some(Entry::Bar(old)) = self.entries.insert(transfer, entry) {
            old.finish_and_clear();
        }
    }

    /// `done` of `total` bytes of `transfer` are through. Returns the line
    /// to print, if it is plain lines and one is due.
    pub fn update(&mut self, transfer: u64, done: u64, total: u64) -> Option<String> {
        let entry = self
            .entries
            .entry(transfer)
            .or_insert_with(|| Entry::Lines(Throttle::default()));
        match entry {
            Entry::Bar(bar) => {
                bar.set_length(total);
                bar.set_position(done);
                None
            }
            Entry::Lines(throttle) => throttle
                .due(Instant::now(), done, total)
                .then(|| progress_line(transfer, done, total)),
        }
    }

    /// Stops showing `transfer`.
    pub fn finish(&mut self, transfer: u64) {
        if let Some(Entry::Bar(bar)) = self.entries.remove(&transfer) {
            bar.finish_and_clear();
            if let Some(multi) = &self.bars {
                multi.remove(&bar);
            }
        }
    }

    /// Prints a transcript line on stdout without tearing the bars.
    pub fn print(&self, line: &str) {
        match &self.bars {
            Some(multi) if !self.entries.is_empty() => multi.suspend(|| emit(line)),
            _ => emit(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mebibytes_and_progress_lines_for_people() {
        // `human_size` itself is tested where it lives, in chatcore.
        assert_eq!(mib(12 * 1024 * 1024), "12.0");
        assert_eq!(
            progress_line(7, 12 * 1024 * 1024, 64 * 1024 * 1024),
            "* 7: 12.0 of 64.0 MiB"
        );
    }

    #[test]
    fn lines_come_per_tenth_or_per_second_and_at_the_end() {
        let total = 100 * 1024 * 1024;
        let mut t = Throttle::default();
        let start = Instant::now();
        // The first report is shown, then nothing within the same tenth
        // and second.
        assert!(t.due(start, 1024 * 1024, total));
        let mut shown = 0;
        for mb in 2..=100u64 {
            if t.due(start, mb * 1024 * 1024, total) {
                shown += 1;
            }
        }
        // One per tenth crossed (10..=100 MiB), the end included.
        assert_eq!(shown, 10);
        // The same count twice is never shown twice.
        assert!(!t.due(start + Duration::from_secs(5), total, total));
        // Within a tenth, one line per second.
        let mut t = Throttle::default();
        assert!(t.due(start, 1, total));
        assert!(!t.due(start + Duration::from_millis(500), 2, total));
        assert!(t.due(start + Duration::from_millis(1000), 3, total));
        assert!(!t.due(start + Duration::from_millis(1500), 4, total));
        // An empty file is done at once.
        assert!(Throttle::default().due(start, 0, 0));
    }

    #[test]
    fn plain_progress_lines() {
        let mut p = Progress::lines();
        p.start(7, "x", 10 * 1024 * 1024);
        assert_eq!(
            p.update(7, 1024 * 1024, 10 * 1024 * 1024).as_deref(),
            Some("* 7: 1.0 of 10.0 MiB")
        );
        assert_eq!(p.update(7, 1024 * 1024 + 1, 10 * 1024 * 1024), None);
        assert_eq!(
            p.update(7, 10 * 1024 * 1024, 10 * 1024 * 1024).as_deref(),
            Some("* 7: 10.0 of 10.0 MiB")
        );
        p.finish(7);
    }
}
