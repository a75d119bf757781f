//! Which part of the message list is drawn, and whether it follows the
//! newest message.
//!
//! Drawing 10,000 lines every frame would make the client sluggish, so only
//! a window of the list is built. While the reader is at the bottom, the
//! window is the tail: it starts at a multiple of [`STEP`] and so moves only
//! once per `STEP` new entries (most frames add one line and keep every other
//! widget where it was). When the reader scrolls up, the window freezes, so
//! nothing moves under their eyes; new entries past [`FROZEN_MAX`] are only
//! counted and offered with "Jump to latest".
//!
//! Scrolling to the top loads more: [`Keeper`] tells when the reader
//! reached the top (the room then draws more local entries or asks the
//! server for the previous page) and, once older entries were put above
//! the viewport, how far to scroll so that the same message stays under
//! the reader's eyes (the content grew above it by the height added).

use std::ops::Range;

/// Most entries drawn while following the tail.
pub const WINDOW: usize = 200;
/// The tail window moves in steps of this many entries; "Show earlier"
/// reveals this many more.
pub const STEP: usize = 100;
/// Most entries drawn while the reader is scrolled up.
pub const FROZEN_MAX: usize = 1_000;
/// Within this many pixels of the end counts as "at the bottom".
pub const BOTTOM_SLACK: f32 = 8.0;

/// The drawn window and whether it follows the newest entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListWindow {
    /// The reader is at the bottom: new entries scroll into view.
    at_bottom: bool,
    /// Index of the first entry drawn.
    first: usize,
    /// Entries that arrived while scrolled up (for "Jump to latest").
    unseen: usize,
}

impl Default for ListWindow {
    fn default() -> Self {
        Self {
            at_bottom: true,
            first: 0,
            unseen: 0,
        }
    }
}

/// The first index of the tail window for a list of `len` entries: a
/// multiple of [`STEP`], leaving between `WINDOW - STEP` and `WINDOW`
/// entries to draw.
pub fn tail_start(len: usize) -> usize {
    len.saturating_sub(WINDOW).div_ceil(STEP) * STEP
}

impl ListWindow {
    /// Whether new entries should scroll into view.
    pub fn at_bottom(&self) -> bool {
        self.at_bottom
    }

    /// Entries that arrived while the reader was scrolled up.
    pub fn unseen(&self) -> usize {
        self.unseen
    }

    /// An entry was appended; the list now has `len`. Returns whether the
    /// view should snap to the end.
    pub fn pushed(&mut self, len: usize) -> bool {
        if self.at_bottom {
            self.first = tail_start(len);
            true
        } else {
            self.unseen += 1;
            false
        }
    }

    /// The reader scrolled: `distance_to_end` pixels of content are below
    /// the viewport.
    pub fn scrolled(&mut self, distance_to_end: f32, len: usize) {
        let at_bottom = distance_to_end <= BOTTOM_SLACK;
        if at_bottom && !self.at_bottom {
            self.first = tail_start(len);
            self.unseen = 0;
        }
        self.at_bottom = at_bottom;
    }

    /// "Show earlier messages": draw [`STEP`] more above.
    pub fn show_earlier(&mut self) {
        self.first = self.first.saturating_sub(STEP);
        self.at_bottom = false;
    }

    /// `count` entries were inserted at index `at` (older history from the
    /// server). Entries above the window push it down so the reader keeps
    /// what they see; inserted at the very top of a window that starts
    /// there, they are shown.
    pub fn inserted(&mut self, at: usize, count: usize) {
        if at < self.first {
            self.first += count;
        }
    }

    /// The entry at index `at` was removed (a deleted chat): the window
    /// keeps showing the same entries.
    pub fn removed(&mut self, at: usize) {
        if at < self.first {
            self.first -= 1;
        }
    }

    /// "Jump to latest": follow the tail again.
    pub fn jump_to_latest(&mut self, len: usize) {
        self.at_bottom = true;
        self.first = tail_start(len);
        self.unseen = 0;
    }

    /// The entries to draw out of `len`.
    pub fn range(&self, len: usize) -> Range<usize> {
        let first = self.first.min(len);
        if self.at_bottom {
            first..len
        } else {
            first..len.min(first + FROZEN_MAX.max(WINDOW))
        }
    }

    /// Entries above the window, not drawn.
    pub fn hidden_above(&self, len: usize) -> usize {
        self.range(len).start
    }
}

/// Within this many pixels of the top counts as "at the top": loads more.
pub const TOP_SLACK: f32 = 24.0;

/// What a new viewport of the list means for the room.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Viewed {
    /// Entries were put above: scroll to this offset from the top to keep
    /// the same message in view.
    Restore(f32),
    /// The reader just scrolled to the top: load more.
    ReachedTop,
    /// Nothing to do.
    Moved,
}

/// Keeps the reader's place when older entries are put above the
/// viewport, and notices when the reader reaches the top.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Keeper {
    /// The last viewport seen: content height and offset from the top. The
    /// content below the viewport's top is what must stay where it is.
    last: Option<(f32, f32)>,
    /// Entries were put above: the content height then and the content
    /// below the viewport's top then, until the grown content is seen.
    pending: Option<(f32, f32)>,
}

impl Keeper {
    /// The list's scrollable reports a viewport: `content` pixels high,
    /// scrolled `offset` pixels from the top.
    pub fn viewed(&mut self, content: f32, offset: f32) -> Viewed {
        if let Some((before, below)) = self.pending
            && (content - before).abs() > 0.5
        {
            self.pending = None;
            let y = (content - below).max(0.0);
            self.last = Some((content, y));
            return Viewed::Restore(y);
        }
        let was_below_top = self.last.is_some_and(|(_, y)| y > TOP_SLACK);
        self.last = Some((content, offset));
        if was_below_top && offset <= TOP_SLACK && self.pending.is_none() {
            Viewed::ReachedTop
        } else {
            Viewed::Moved
        }
    }

    /// Entries are being put above the viewport (drawn from the local list
    /// or a page from the server): keep the current place once the content
    /// has grown. Without a viewport seen yet (the list fits), nothing to keep.
    pub fn prepending(&mut self) {
        if let Some((content, offset)) = self.last {
            self.pending = Some((content, content - offset));
        }
    }

    /// The offset from the top of the last viewport seen: where to scroll
    /// back to when the room is shown again.
    pub fn offset(&self) -> Option<f32> {
        self.last.map(|(_, y)| y)
    }

    /// The room is shown again: the list's next viewport is the scroll
    /// back to its place (or the end), not the reader reaching the top.
    pub fn returning(&mut self) {
        self.last = None;
        self.pending = None;
    }

    /// Whether a place is being kept (a restore is due).
    pub fn keeping(&self) -> bool {
        self.pending.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaching_the_top_asks_for_more_once_and_a_prepend_keeps_the_same_message_in_view() {
        let mut k = Keeper::default();
        // The first viewport (before the snap to the end) is at the top:
        // not the reader's doing, nothing loads.
        assert_eq!(k.viewed(2_000.0, 0.0), Viewed::Moved);
        assert_eq!(k.viewed(2_000.0, 1_600.0), Viewed::Moved);
        assert_eq!(k.viewed(2_000.0, 300.0), Viewed::Moved);
        assert_eq!(k.viewed(2_000.0, 10.0), Viewed::ReachedTop);
        assert_eq!(k.viewed(2_000.0, 0.0), Viewed::Moved, "once per arrival");
        // A page of 1,500 px goes above: the message at the top stays there.
        k.prepending();
        assert!(k.keeping());
        assert_eq!(k.viewed(3_500.0, 0.0), Viewed::Restore(1_500.0));
        assert!(!k.keeping());
        // Scrolling up through the page reaches the top again.
        assert_eq!(k.viewed(3_500.0, 400.0), Viewed::Moved);
        assert_eq!(k.viewed(3_500.0, 0.0), Viewed::ReachedTop);
    }

    #[test]
    fn without_a_viewport_seen_nothing_is_kept() {
        let mut k = Keeper::default();
        k.prepending();
        assert!(!k.keeping());
    }

    #[test]
    fn the_tail_window_moves_in_steps_and_stays_bounded() {
        assert_eq!(tail_start(0), 0);
        assert_eq!(tail_start(WINDOW), 0);
        assert_eq!(tail_start(WINDOW + 1), STEP);
        let mut w = ListWindow::default();
        for len in 1..=10_000 {
            assert!(w.pushed(len), "following the tail snaps to the end");
            let r = w.range(len);
            assert!(r.len() <= WINDOW && r.len() > WINDOW - STEP || len <= WINDOW);
            assert_eq!(r.end, len);
        }
    }

    #[test]
    fn scrolling_up_freezes_the_window_so_nothing_jumps() {
        let mut w = ListWindow::default();
        for len in 1..=500 {
            w.pushed(len);
        }
        let before = w.range(500);
        w.scrolled(300.0, 500);
        assert!(!w.at_bottom());
        for len in 501..=520 {
            assert!(!w.pushed(len), "no snapping while reading older lines");
        }
        assert_eq!(w.unseen(), 20);
        assert_eq!(
            w.range(520).start,
            before.start,
            "the first line drawn stays put"
        );
        // A flood while scrolled up does not grow the drawn list without bound.
        assert!(w.range(100_000).len() <= FROZEN_MAX);
    }

    #[test]
    fn scrolling_back_to_the_bottom_follows_the_tail_again() {
        let mut w = ListWindow::default();
        w.scrolled(100.0, 50);
        w.pushed(51);
        w.scrolled(2.0, 51);
        assert!(w.at_bottom());
        assert_eq!(w.unseen(), 0);
        assert!(w.pushed(52));
    }

    #[test]
    fn show_earlier_reveals_a_step_and_jump_to_latest_returns() {
        let mut w = ListWindow::default();
        for len in 1..=1_000 {
            w.pushed(len);
        }
        let start = w.range(1_000).start;
        w.show_earlier();
        assert_eq!(w.range(1_000).start, start - STEP);
        assert_eq!(w.hidden_above(1_000), start - STEP);
        w.jump_to_latest(1_000);
        assert!(w.at_bottom());
        assert_eq!(w.range(1_000).start, start);
    }
}
