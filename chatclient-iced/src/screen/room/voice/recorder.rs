//! The voice message being made.
//!
//! It goes `Idle` → (record) `Starting` → `Recording` → (stop, or the
//! maximum length) `Stopping` → `Recorded` → send (the room offers the
//! file with kind `voice`, [`Recorder::take`]) or discard → `Idle`. Steps
//! that need the engine return the [`Event`] saying so.

use std::path::PathBuf;
use std::time::Duration;

use super::event::Event;
use crate::audio::Command as AudioCommand;

/// Where the voice message being made stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recording {
    /// Nothing recorded.
    Idle,
    /// Asked the worker to start.
    Starting,
    /// Recording; this long so far.
    Recording(Duration),
    /// Asked the worker to finish the file.
    Stopping(Duration),
    /// A finished message waiting for Send or Discard.
    Recorded {
        /// The Ogg Opus file.
        path: PathBuf,
        /// Its length.
        duration: Duration,
        /// It stopped by itself at the maximum length.
        reached_limit: bool,
    },
}

/// The recording and its last problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorder {
    /// Where it stands.
    pub state: Recording,
    /// The last recording problem, shown under the record controls.
    pub note: Option<String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            state: Recording::Idle,
            note: None,
        }
    }
}

/// `m:ss`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

impl Recorder {
    /// Start recording (when nothing is under way).
    pub fn record(&mut self) -> Option<Event> {
        if self.state != Recording::Idle {
            return None;
        }
        self.note = None;
        self.state = Recording::Starting;
        Some(Event::Engine(AudioCommand::Record))
    }

    /// Stop recording; the message is kept for Send or Discard.
    pub fn stop(&mut self) -> Option<Event> {
        let Recording::Recording(d) = self.state else {
            return None;
        };
        self.state = Recording::Stopping(d);
        Some(Event::Engine(AudioCommand::StopRecording))
    }

    /// Throw the recording away (running or finished).
    pub fn discard(&mut self) -> Option<Event> {
        if self.state == Recording::Idle {
            return None;
        }
        self.state = Recording::Idle;
        Some(Event::Engine(AudioCommand::Discard))
    }

    /// The finished recording to send; the controls go back to Record.
    pub fn take(&mut self) -> Option<PathBuf> {
        match std::mem::replace(&mut self.state, Recording::Idle) {
            Recording::Recorded { path, .. } => Some(path),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// The engine records: this long so far.
    pub fn progress(&mut self, elapsed: Duration) {
        if matches!(self.state, Recording::Starting | Recording::Recording(_)) {
            self.state = Recording::Recording(elapsed);
        }
    }

    /// The engine finished the file.
    pub fn finished(&mut self, path: PathBuf, duration: Duration, reached_limit: bool) {
        self.state = Recording::Recorded {
            path,
            duration,
            reached_limit,
        };
    }

    /// Recording failed; say why.
    pub fn failed(&mut self, why: &str) {
        self.state = Recording::Idle;
        self.note = Some(format!("Recording failed: {why}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_stop_then_send_or_discard() {
        let mut r = Recorder::default();
        assert_eq!(r.record(), Some(Event::Engine(AudioCommand::Record)));
        assert_eq!(r.state, Recording::Starting);
        r.progress(Duration::from_secs(3));
        assert_eq!(r.state, Recording::Recording(Duration::from_secs(3)));
        assert_eq!(r.stop(), Some(Event::Engine(AudioCommand::StopRecording)));
        r.finished("/tmp/v.ogg".into(), Duration::from_secs(3), false);
        assert_eq!(r.take(), Some(PathBuf::from("/tmp/v.ogg")));
        assert_eq!(r.state, Recording::Idle);
        // Discard instead.
        let _ = r.record();
        r.progress(Duration::from_secs(1));
        assert_eq!(r.discard(), Some(Event::Engine(AudioCommand::Discard)));
        assert_eq!(r.state, Recording::Idle);
        assert_eq!(clock(Duration::from_secs(125)), "2:05");
    }

    #[test]
    fn a_failed_recording_says_why_and_allows_another() {
        let mut r = Recorder::default();
        let _ = r.record();
        r.failed("no microphone");
        assert_eq!(r.state, Recording::Idle);
        assert_eq!(r.note.as_deref(), Some("Recording failed: no microphone"));
        assert_eq!(r.take(), None, "nothing to send");
        assert!(r.record().is_some());
        assert_eq!(r.note, None);
    }
}
