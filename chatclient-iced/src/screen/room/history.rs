//! Server history in the message list: the resume after a reconnection
//! (exactly the messages missed, in place, no duplicates, no holes) and
//! "Load earlier messages" once every local entry is drawn
//! (docs/protocol.md section 21).
//!
//! The network worker reconnects with `last_seen` = the newest chat id it
//! received, so the server answers the welcome with one `history` frame
//! (`after` set) holding what was missed. If the welcome's own recent
//! history already reaches back to what we had, it is merged at once and
//! the resume frame adds nothing; otherwise the resume frame's chats go
//! where the reconnection line is, before any chat that arrived live in the
//! meantime, and a `gap` is filled by paging back. A server that does not
//! know our id (`unknown_message`: it restarted without a store) falls back
//! to merging its welcome by time, as before.

use chatcore::protocol::{Chat, History, Welcome};

use super::entry::Entry;
use super::{Event, State};
use crate::net::Command;

/// Chats asked for per page ("Load earlier", gap filling).
pub const PAGE: u32 = 100;

/// What a reconnection waits for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Resume {
    /// Nothing: no reconnection in progress.
    #[default]
    Idle,
    /// The welcome reached back to our newest chat and was merged; the
    /// resume frame brings nothing new. Its history is kept in case the
    /// server answers `unknown_message` instead.
    Covered(Vec<Chat>),
    /// The welcome did not reach back: the resume frame's chats after
    /// `after` go at entry index `at`.
    Waiting {
        /// Our newest chat id before the connection was lost.
        after: u64,
        /// Where the missed chats go (right after the reconnection line).
        at: usize,
        /// The welcome's history, for the `unknown_message` fallback.
        welcome: Vec<Chat>,
    },
}

/// Filling a resume gap: chats after `after` go before chat `at_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GapFill {
    /// Our newest chat id before the connection was lost.
    after: u64,
    /// The oldest chat of the gap's upper side shown so far.
    at_id: u64,
}

/// The room's server-history bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paging {
    /// Newest chat id shown (0: none).
    newest: u64,
    /// Oldest chat id shown.
    oldest: Option<u64>,
    /// The server said it has nothing older than `oldest`.
    exhausted: bool,
    /// A "Load earlier" page is on its way.
    loading: bool,
    /// The reconnection's resume state.
    resume: Resume,
    /// A resume gap being filled page by page.
    gap: Option<GapFill>,
}

impl Paging {
    /// A room was joined with no history: the server has nothing older
    /// than what arrives from now on, so "Load earlier" is not offered.
    pub fn nothing_older(&mut self) {
        self.exhausted = true;
    }

    /// Newest chat id shown (0: none): a room's history after a rejoin
    /// adds only what is newer.
    pub fn newest(&self) -> u64 {
        self.newest
    }

    /// A chat with this id is now in the list.
    pub fn shown(&mut self, id: u64) {
        self.newest = self.newest.max(id);
        self.oldest = Some(self.oldest.map_or(id, |o| o.min(id)));
    }
}

impl State {
    /// Whether "Load earlier messages" is offered: the server may have
    /// older chats than the oldest shown, and no page is on its way.
    pub fn can_load_earlier(&self) -> bool {
        !self.pane.history.exhausted
            && !self.pane.history.loading
            && self.pane.history.oldest.is_some_and(|id| id > 1)
            && self.link == super::Link::Online
    }

    /// Whether a "Load earlier" page is on its way.
    pub fn loading_earlier(&self) -> bool {
        self.pane.history.loading
    }

    /// A request failed (an `error` without `ref`, or not sent): the
    /// "Load earlier" button is offered again.
    pub(super) fn history_failed(&mut self) {
        self.pane.history.loading = false;
    }

    /// "Load earlier messages": one page before the oldest chat shown.
    pub(super) fn load_earlier(&mut self) -> Option<Event> {
        if !self.can_load_earlier() {
            return None;
        }
        self.pane.history.loading = true;
        Some(Event::Net(Command::History {
            before: self.pane.history.oldest,
            limit: PAGE,
        }))
    }

    /// The history part of a reconnection's welcome (see the module doc).
    pub(super) fn relogged_history(&mut self, welcome: &Welcome) -> bool {
        let h = &mut self.pane.history;
        h.gap = None;
        h.loading = false;
        if h.newest == 0 {
            h.resume = Resume::Idle;
            return self.merge_history(&welcome.history);
        }
        let reaches_back = welcome
            .history
            .first()
            .is_none_or(|c| c.id <= h.newest.saturating_add(1));
        if reaches_back {
            h.resume = Resume::Covered(welcome.history.clone());
            let newest = h.newest;
            let mut snap = false;
            for c in welcome.history.iter().filter(|c| c.id > newest) {
                snap |= self.add_chat(c);
            }
            snap
        } else {
            h.resume = Resume::Waiting {
                after: h.newest,
                at: self.pane.entries.len(),
                welcome: welcome.history.clone(),
            };
            false
        }
    }

    /// A `history` frame: the resume after a reconnection, a gap page or a
    /// "Load earlier" page. Returns whether to snap to the end, and a
    /// request for the next gap page if one is needed.
    pub(super) fn on_history(&mut self, h: &History) -> (bool, Option<Event>) {
        if h.after.is_some() {
            return self.on_resume(h);
        }
        if let Some(gap) = self.pane.history.gap
            && h.before == Some(gap.at_id)
        {
            return (false, self.fill_gap(gap, h));
        }
        self.pane.history.loading = false;
        self.pane.history.exhausted = !h.more;
        let oldest = self.pane.history.oldest.unwrap_or(u64::MAX);
        let older: Vec<&Chat> = h.messages.iter().filter(|c| c.id < oldest).collect();
        if !older.is_empty() && self.pane.window.hidden_above(self.pane.entries.len()) == 0 {
            // They go above what the reader sees: keep their place.
            self.pane.keeper.prepending();
        }
        self.insert_chats(0, &older);
        (false, None)
    }

    /// `unknown_message` after a reconnection: the server lost our id
    /// (restarted without a store); merge its welcome by time as before.
    /// Returns whether it was about the resume (else it is shown as usual).
    pub(super) fn on_unknown_message(&mut self) -> bool {
        let welcome = match std::mem::take(&mut self.pane.history.resume) {
            Resume::Idle => return false,
            Resume::Covered(welcome) | Resume::Waiting { welcome, .. } => welcome,
        };
        self.push(Entry::System(
            "The server does not remember our last message (it restarted); showing its recent history."
                .into(),
        ));
        self.merge_history(&welcome);
        true
    }

    fn on_resume(&mut self, h: &History) -> (bool, Option<Event>) {
        let Resume::Waiting { after, at, .. } = std::mem::take(&mut self.pane.history.resume)
        else {
            return (false, None); // the welcome had it all
        };
        let missed: Vec<&Chat> = h.messages.iter().filter(|c| c.id > after).collect();
        let snap = self.insert_chats(at, &missed);
        let next = match (h.gap, missed.first()) {
            (true, Some(first)) => {
                let gap = GapFill {
                    after,
                    at_id: first.id,
                };
                self.pane.history.gap = Some(gap);
                Some(Event::Net(Command::History {
                    before: Some(first.id),
                    limit: PAGE,
                }))
            }
            _ => None,
        };
        (snap, next)
    }

    fn fill_gap(&mut self, gap: GapFill, h: &History) -> Option<Event> {
        let at = self
            .pane
            .entries
            .iter()
            .position(|e| matches!(e, Entry::Chat(line) if line.id == gap.at_id))
            .unwrap_or(self.pane.entries.len());
        let missed: Vec<&Chat> = h.messages.iter().filter(|c| c.id > gap.after).collect();
        self.insert_chats(at, &missed);
        match missed.first() {
            Some(first) if h.more && first.id > gap.after + 1 => {
                self.pane.history.gap = Some(GapFill {
                    at_id: first.id,
                    ..gap
                });
                Some(Event::Net(Command::History {
                    before: Some(first.id),
                    limit: PAGE,
                }))
            }
            _ => {
                self.pane.history.gap = None;
                None
            }
        }
    }

    /// Inserts `chats` (oldest first) at entry index `at`; returns whether
    /// to snap to the end (they went at the end while following it).
    fn insert_chats(&mut self, at: usize, chats: &[&Chat]) -> bool {
        let at = at.min(self.pane.entries.len());
        if at == self.pane.entries.len() {
            let mut snap = false;
            for c in chats {
                snap |= self.add_chat(c);
            }
            return snap;
        }
        let lines: Vec<Entry> = chats
            .iter()
            .map(|c| {
                self.pane.last_chat_ts = self.pane.last_chat_ts.max(c.ts);
                self.pane.history.shown(c.id);
                Entry::Chat(self.chat_line(c))
            })
            .collect();
        let count = lines.len();
        self.pane.entries.splice(at..at, lines);
        self.pane.window.inserted(at, count);
        false
    }
}
