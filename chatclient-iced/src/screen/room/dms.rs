//! Direct messages (docs/protocol.md section 25) in the room screen.
//!
//! Each conversation is kept here by the other member's name: its
//! messages (oldest first, one line per id), its draft and its unread
//! count. When one is shown it replaces the room's list and composer; the
//! room's pane stays as it is underneath and comes back when a room is
//! picked in the sidebar. The newest page of a conversation's stored
//! history is fetched when it is first shown, older ones with "Load
//! earlier" (registered logins only: a guest sees live messages).

use std::collections::{BTreeMap, BTreeSet};

use chatcore::protocol::{Dm, DmHistory, DmUnread, ErrorCode, ServerMessage};
use iced::Task;
use iced::widget::operation;

use super::entry::ChatLine;
use super::{Event, Message, State};
use crate::format;
use crate::net::Command;

/// The shown conversation's scrollable.
pub const DM_LIST: &str = "dm-list";
/// The shown conversation's composer.
pub const DM_COMPOSER: &str = "dm-composer";
/// The sidebar's "Message someone…" field.
pub const DM_START_INPUT: &str = "dm-start";

/// How many stored messages a conversation shows when first opened.
const HISTORY_PAGE: u32 = 50;

/// One direct conversation.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    /// Its messages, oldest first.
    pub(super) lines: Vec<ChatLine>,
    /// The ids in `lines`: our own copy and a history page may bring a
    /// message we already show.
    pub(super) ids: BTreeSet<u64>,
    /// The composer's text: each conversation keeps its own draft.
    pub(super) input: String,
    /// Messages from the other that arrived while it was not shown, or
    /// that the server counted in `dm_unread` (the sidebar's badge).
    pub(super) unread: u64,
    /// The newest id the server told us is unread (from `dm_unread`), to
    /// mark read on opening even before the history came.
    pub(super) last_unread_id: u64,
    /// Its stored history was asked for (once per conversation).
    pub(super) history_asked: bool,
    /// The store holds older messages than the oldest shown (the last
    /// page said `more`): "Load earlier" asks for the next page.
    pub(super) more: bool,
    /// A refusal of a message sent in it (shown under its composer).
    pub(super) note: Option<String>,
}

impl Conversation {
    /// Puts `line` in its place by id unless shown already; whether added.
    fn add(&mut self, line: ChatLine) -> bool {
        if !self.ids.insert(line.id) {
            return false;
        }
        let at = self.lines.partition_point(|l| l.id < line.id);
        self.lines.insert(at, line);
        true
    }

    /// The newest id shown or known unread (what marking it read covers).
    fn newest(&self) -> u64 {
        self.lines
            .last()
            .map_or(0, |l| l.id)
            .max(self.last_unread_id)
    }
}

/// The direct conversations and the sidebar's DM state.
#[derive(Debug, Clone, Default)]
pub struct Dms {
    /// By the other member's name.
    pub(super) conversations: BTreeMap<String, Conversation>,
    /// The conversation shown instead of the room (`None`: the room).
    pub(super) shown: Option<String>,
    /// The "Message someone…" field.
    pub(super) start_input: String,
    /// We are logged in with a registered name: only then is there stored
    /// history to fetch and unread state to mark.
    pub(super) registered: bool,
    /// A history page was asked and not answered: an `account_required`
    /// now answers it and is dropped quietly.
    pub(super) history_pending: bool,
    /// The refs of direct messages we sent, to put a refusal in its
    /// conversation.
    pub(super) refs: BTreeMap<u64, String>,
}

/// One line of the sidebar's DM list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmTab {
    /// The other member's name.
    pub name: String,
    /// Messages not read yet (0 for the shown one).
    pub unread: u64,
    /// Whether it is shown.
    pub shown: bool,
}

impl State {
    /// The conversations for the sidebar, by name.
    pub fn dm_tabs(&self) -> Vec<DmTab> {
        self.dms
            .conversations
            .iter()
            .map(|(name, c)| DmTab {
                name: name.clone(),
                unread: c.unread,
                shown: self.dms.shown.as_deref() == Some(name),
            })
            .collect()
    }

    /// The conversation shown, if one is.
    pub fn shown_dm(&self) -> Option<&str> {
        self.dms.shown.as_deref()
    }

    /// The messages of the conversation with `name`, oldest first.
    pub fn dm_lines(&self, name: &str) -> &[ChatLine] {
        self.dms
            .conversations
            .get(name)
            .map_or(&[], |c| c.lines.as_slice())
    }

    /// The key of the conversation with `name`: an existing one of a
    /// look-alike spelling (the server matches names that way), else
    /// `name` itself.
    fn dm_key(&self, name: &str) -> String {
        let lower = name.to_lowercase();
        self.dms
            .conversations
            .keys()
            .find(|k| k.to_lowercase() == lower)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    }

    /// The line for `d` in a conversation.
    fn dm_line(&self, d: &Dm) -> ChatLine {
        ChatLine {
            id: d.id,
            from: d.from.clone(),
            time: format::local_time(d.ts),
            ts: d.ts,
            text: d.text.clone(),
            own: self.dm_is_own(d),
        }
    }

    /// Sent by us: our own copy carries our ref, a history page only our
    /// name.
    fn dm_is_own(&self, d: &Dm) -> bool {
        d.reference.is_some() || d.from == self.name
    }

    /// Shows the conversation with `name` (made if new): asks its history
    /// the first time (registered logins) and marks it read.
    pub(super) fn show_dm(&mut self, name: &str) -> (Task<Message>, Option<Event>) {
        let name = name.trim();
        if name.is_empty() || name == self.name {
            return (Task::none(), None);
        }
        let key = self.dm_key(name);
        let registered = self.dms.registered;
        let conv = self.dms.conversations.entry(key.clone()).or_default();
        conv.unread = 0;
        let mut events = Vec::new();
        if registered && !conv.history_asked {
            conv.history_asked = true;
            self.dms.history_pending = true;
            events.push(Event::Net(Command::DmHistory {
                with: key.clone(),
                before: None,
                limit: HISTORY_PAGE,
            }));
        }
        let newest = conv.newest();
        if registered && newest > 0 {
            events.push(Event::Net(Command::DmRead {
                with: key.clone(),
                id: newest,
            }));
        }
        self.dms.shown = Some(key);
        self.rooms.selected = None;
        let event = match events.len() {
            0 => None,
            1 => events.pop(),
            _ => Some(Event::Many(events)),
        };
        (
            Task::batch([
                operation::snap_to_end(DM_LIST),
                operation::focus(DM_COMPOSER),
            ]),
            event,
        )
    }

    /// A user step about direct messages; `Err` gives the message back.
    pub(super) fn dms_update(
        &mut self,
        message: Message,
    ) -> Result<(Task<Message>, Option<Event>), Message> {
        match message {
            Message::ShowDm(name) | Message::MessageMember(name) => Ok(self.show_dm(&name)),
            Message::DmStartChanged(s) => {
                self.dms.start_input = s;
                Ok((Task::none(), None))
            }
            Message::DmStartTyped => {
                let name = std::mem::take(&mut self.dms.start_input);
                Ok(self.show_dm(&name))
            }
            Message::DmInputChanged(s) => {
                if let Some(c) = self.shown_conversation() {
                    c.input = s;
                }
                Ok((Task::none(), None))
            }
            Message::DmSend => Ok(self.send_dm()),
            Message::DmLoadEarlier => Ok(self.dm_load_earlier()),
            Message::ShowRoom(key) => {
                self.dms.shown = None;
                if key == self.rooms.shown {
                    self.pane.unread = 0;
                }
                Err(Message::ShowRoom(key))
            }
            other => Err(other),
        }
    }

    fn shown_conversation(&mut self) -> Option<&mut Conversation> {
        let key = self.dms.shown.clone()?;
        self.dms.conversations.get_mut(&key)
    }

    /// Sends the shown conversation's draft with `dm`.
    fn send_dm(&mut self) -> (Task<Message>, Option<Event>) {
        let online = self.link == super::Link::Online;
        let reference = self.next_ref;
        let Some(to) = self.dms.shown.clone() else {
            return (Task::none(), None);
        };
        let Some(c) = self.dms.conversations.get_mut(&to) else {
            return (Task::none(), None);
        };
        if c.input.trim().is_empty() {
            return (Task::none(), None);
        }
        if !online {
            c.note = Some("Not connected: the message will be sendable once reconnected.".into());
            return (Task::none(), None);
        }
        c.note = None;
        let text = std::mem::take(&mut c.input);
        self.next_ref += 1;
        self.dms.refs.insert(reference, to.clone());
        (
            operation::snap_to_end(DM_LIST),
            Some(Event::Net(Command::Dm {
                to,
                text,
                reference,
            })),
        )
    }

    /// A direct-message frame, or an error about one; `None` for the
    /// others. The result is what the network worker must do.
    pub(super) fn on_dm_frame(
        &mut self,
        msg: &ServerMessage,
    ) -> Option<(Task<Message>, Option<Event>)> {
        Some(match msg {
            ServerMessage::Dm(d) => self.on_dm(d),
            ServerMessage::DmHistory(h) => self.on_dm_history(h),
            ServerMessage::DmUnread(u) => {
                self.on_dm_unread(u);
                (Task::none(), None)
            }
            ServerMessage::Registered(_) => {
                // Stored conversations from now on; the room says so.
                self.dms.registered = true;
                return None;
            }
            ServerMessage::Error(e)
                if e.code == ErrorCode::AccountRequired && self.dms.history_pending =>
            {
                // A guest's `dm_history`: it sees messages live only.
                self.dms.history_pending = false;
                (Task::none(), None)
            }
            ServerMessage::Error(e) => {
                let to = e.reference.and_then(|r| self.dms.refs.remove(&r))?;
                if let Some(c) = self.dms.conversations.get_mut(&to) {
                    c.note = Some(format!("Message not sent: {} ({})", e.message, e.code));
                }
                (Task::none(), None)
            }
            _ => return None,
        })
    }

    fn on_dm(&mut self, d: &Dm) -> (Task<Message>, Option<Event>) {
        let own = self.dm_is_own(d);
        if let Some(r) = d.reference {
            self.dms.refs.remove(&r);
        }
        let other = if own { &d.to } else { &d.from };
        let key = self.dm_key(other);
        let line = self.dm_line(d);
        let shown = self.dms.shown.as_deref() == Some(key.as_str());
        let registered = self.dms.registered;
        let conv = self.dms.conversations.entry(key.clone()).or_default();
        if !conv.add(line) {
            return (Task::none(), None);
        }
        if own {
            return if shown {
                (operation::snap_to_end(DM_LIST), None)
            } else {
                (Task::none(), None)
            };
        }
        if !shown {
            conv.unread += 1;
            return (Task::none(), None);
        }
        let read = registered.then_some(Event::Net(Command::DmRead {
            with: key,
            id: d.id,
        }));
        (operation::snap_to_end(DM_LIST), read)
    }

    /// "Load earlier" in the shown conversation: the page before its
    /// oldest message.
    pub(super) fn dm_load_earlier(&mut self) -> (Task<Message>, Option<Event>) {
        let Some(key) = self.dms.shown.clone() else {
            return (Task::none(), None);
        };
        let Some(conv) = self.dms.conversations.get_mut(&key) else {
            return (Task::none(), None);
        };
        let Some(oldest) = conv.lines.first().map(|l| l.id).filter(|_| conv.more) else {
            return (Task::none(), None);
        };
        conv.more = false;
        self.dms.history_pending = true;
        (
            Task::none(),
            Some(Event::Net(Command::DmHistory {
                with: key,
                before: Some(oldest),
                limit: HISTORY_PAGE,
            })),
        )
    }

    fn on_dm_history(&mut self, h: &DmHistory) -> (Task<Message>, Option<Event>) {
        self.dms.history_pending = false;
        let key = self.dm_key(&h.with);
        let lines: Vec<ChatLine> = h.messages.iter().map(|d| self.dm_line(d)).collect();
        let shown = self.dms.shown.as_deref() == Some(key.as_str());
        let conv = self.dms.conversations.entry(key.clone()).or_default();
        for line in lines {
            conv.add(line);
        }
        conv.more = h.more;
        if !shown {
            return (Task::none(), None);
        }
        if h.before.is_some() {
            // An older page: the reader is at the top, where it arrived.
            return (Task::none(), None);
        }
        let newest = conv.newest();
        let read = (self.dms.registered && newest > 0).then_some(Event::Net(Command::DmRead {
            with: key,
            id: newest,
        }));
        (operation::snap_to_end(DM_LIST), read)
    }

    fn on_dm_unread(&mut self, u: &DmUnread) {
        for entry in &u.conversations {
            let key = self.dm_key(&entry.with);
            let conv = self.dms.conversations.entry(key).or_default();
            conv.unread = entry.count;
            conv.last_unread_id = conv.last_unread_id.max(entry.last_id);
        }
    }
}
