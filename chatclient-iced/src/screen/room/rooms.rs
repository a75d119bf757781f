//! Named rooms (docs/protocol.md section 23) and moderation (section 24)
//! in the room screen.
//!
//! Every room we are in has a [`Pane`]: its message list, members, scroll
//! place, draft and history paging. The shown room's pane is the screen's
//! `pane`; the others are parked in [`Rooms`] and swapped in when shown,
//! or for a moment while a server message for them is applied, so that
//! every step of the default room (chats, presence, paging, resume) works
//! unchanged for a named room. What a step asks of the network worker is
//! then addressed to the room it ran in ([`State::routed`]).
//!
//! Direct messages will be one more kind of pane key here (the sidebar
//! has their place under the rooms).

use std::collections::{BTreeMap, BTreeSet};

use chatcore::Roster;
use chatcore::protocol::{
    ClientMessage, Delete, Invite, Moderate, Moderated, Presence, RoomInfo, RoomJoined, RoomMode,
    ServerMessage, SetRole, UserInfo,
};
use iced::Task;
use iced::widget::{operation, scrollable};

use super::entry::Entry;
use super::history::Paging;
use super::scroll::{Keeper, ListWindow};
use super::{COMPOSER, Event, LIST, Message, State};
use crate::format;
use crate::net::Command;

/// What the default room is called before the server said (`room_list`).
pub const DEFAULT_ROOM_NAME: &str = "lobby";

/// The join field of the sidebar.
pub const JOIN_INPUT: &str = "room-join";
/// The topic field while editing.
pub const TOPIC_INPUT: &str = "room-topic";
/// The "Invite…" field of a named room.
pub const INVITE_INPUT: &str = "room-invite";

/// One room as the screen keeps it.
#[derive(Debug, Clone)]
pub struct Pane {
    /// Who is in the room.
    pub(super) roster: Roster,
    /// The members sorted by name, rebuilt on change, not per frame.
    pub(super) users: Vec<UserInfo>,
    /// The message list, oldest first. Kept across reconnections.
    pub(super) entries: Vec<Entry>,
    /// Which part of `entries` is drawn and whether it follows the end.
    pub(super) window: ListWindow,
    /// Notices the reader reaching the top (load more) and keeps their
    /// place when older entries are put above; its last viewport is where
    /// the list scrolls back to when the room is shown again.
    pub(super) keeper: Keeper,
    /// The composer's text: each room keeps its own draft.
    pub(super) input: String,
    /// Newest server timestamp of a chat we show, to merge history after a
    /// reconnection without duplicates.
    pub(super) last_chat_ts: i64,
    /// Server history: the ids shown, what a reconnection waits for, and
    /// the pages asked for (see `history.rs`).
    pub(super) history: Paging,
    /// The room's topic (named rooms; "" when none).
    pub(super) topic: String,
    /// Chats that arrived while the room was not shown (the sidebar's count).
    pub(super) unread: usize,
    /// Only invited members may enter (docs/protocol.md 23.5).
    pub(super) invite_only: bool,
}

impl Pane {
    /// An empty room with these members.
    pub fn new(roster: Roster) -> Self {
        Self {
            roster,
            users: Vec::new(),
            entries: Vec::new(),
            window: ListWindow::default(),
            keeper: Keeper::default(),
            input: String::new(),
            last_chat_ts: i64::MIN,
            history: Paging::default(),
            topic: String::new(),
            unread: 0,
            invite_only: false,
        }
    }
}

/// What a member or a message was picked for (the action bar above the
/// composer offers what can be done to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// A member of the shown room: kick, ban, mute, unmute.
    Member(UserInfo),
    /// A chat of the shown room: delete.
    Chat {
        /// Its id.
        id: u64,
        /// Its sender (for the bar's words).
        from: String,
    },
}

/// A moderation action on a member (docs/protocol.md section 24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Remove from the room (the default room: from the server).
    Kick,
    /// Remove and keep out.
    Ban,
    /// Keep from chatting.
    Mute,
    /// Let chat again.
    Unmute,
    /// Make a (registered) member a moderator of the room (owners).
    Promote,
    /// Make a moderator a plain member again (owners).
    Demote,
}

/// The rooms we are in besides the shown one, and the sidebar's state.
#[derive(Debug, Clone)]
pub struct Rooms {
    /// The room shown: `None` is the default room.
    pub(super) shown: Option<String>,
    /// The panes of the rooms not shown (`None`: the default room).
    pub(super) parked: BTreeMap<Option<String>, Pane>,
    /// The named rooms we are in (joined again after a reconnection).
    pub(super) joined: BTreeSet<String>,
    /// The default room's name, from `room_list`.
    pub(super) default_name: String,
    /// The "join room" field.
    pub(super) join_input: String,
    /// The "browse rooms" list (`None`: closed; empty until the answer).
    pub(super) browse: Option<Vec<RoomInfo>>,
    /// The topic being edited (`None`: not editing).
    pub(super) topic_edit: Option<String>,
    /// The member or message picked for an action.
    pub(super) selected: Option<Selection>,
    /// "Private" is ticked beside the join field: a room it creates is
    /// invite-only.
    pub(super) join_private: bool,
    /// The "Invite…" field of the shown named room.
    pub(super) invite_input: String,
}

impl Default for Rooms {
    fn default() -> Self {
        Self {
            shown: None,
            parked: BTreeMap::new(),
            joined: BTreeSet::new(),
            default_name: DEFAULT_ROOM_NAME.to_owned(),
            join_input: String::new(),
            browse: None,
            topic_edit: None,
            selected: None,
            join_private: false,
            invite_input: String::new(),
        }
    }
}

/// One line of the sidebar's room list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomTab {
    /// `None`: the default room.
    pub key: Option<String>,
    /// The name shown.
    pub name: String,
    /// Chats not seen yet (0 for the shown room).
    pub unread: usize,
    /// Whether it is the room shown.
    pub shown: bool,
}

/// `presence` of a named room as the default room's, for its own roster
/// (a [`Roster`] only takes the default room's frames).
fn unroomed(msg: &ServerMessage) -> Option<ServerMessage> {
    match msg {
        ServerMessage::Presence(p) if p.room.is_some() => Some(ServerMessage::Presence(Presence {
            room: None,
            ..p.clone()
        })),
        _ => None,
    }
}

/// A room name as typed: trimmed, without a leading `#`.
fn typed_room(s: &str) -> &str {
    s.trim().trim_start_matches('#').trim()
}

/// The notice line for a moderation action.
pub fn moderated_line(m: &Moderated) -> String {
    let what = match m.action.as_str() {
        "kick" => "was kicked",
        "ban" => "was banned",
        "unban" => "was unbanned",
        "mute" => "was muted",
        "unmute" => "was unmuted",
        "role" => "changed role",
        "invite" => "was invited",
        _ => "was moderated",
    };
    let mut line = format!("{} {what} by {}", m.name, m.by);
    if let Some(role) = &m.role {
        line.push_str(&format!(" (now {role})"));
    }
    if let Some(until) = m.until {
        line.push_str(&format!(" until {}", format::local_time(until)));
    }
    if let Some(reason) = m.reason.as_deref().filter(|r| !r.is_empty()) {
        line.push_str(&format!(": {reason}"));
    }
    line.push('.');
    line
}

impl State {
    /// The rooms for the sidebar: the default room first, then the named
    /// ones by name.
    pub fn room_tabs(&self) -> Vec<RoomTab> {
        let mut keys: Vec<Option<String>> = vec![None];
        keys.extend(self.rooms.joined.iter().cloned().map(Some));
        keys.into_iter()
            .map(|key| {
                let shown = key == self.rooms.shown;
                let unread = if shown {
                    // Counted only while a direct conversation hides it.
                    self.pane.unread
                } else {
                    self.rooms.parked.get(&key).map_or(0, |p| p.unread)
                };
                let name = key
                    .clone()
                    .unwrap_or_else(|| self.rooms.default_name.clone());
                RoomTab {
                    key,
                    name,
                    unread,
                    shown,
                }
            })
            .collect()
    }

    /// The room shown (`None`: the default room).
    pub fn shown_room(&self) -> Option<&str> {
        self.rooms.shown.as_deref()
    }

    /// The shown room's topic ("" for none and in the default room).
    pub fn topic(&self) -> &str {
        &self.pane.topic
    }

    /// The "browse rooms" list, when open.
    pub fn browse(&self) -> Option<&[RoomInfo]> {
        self.rooms.browse.as_deref()
    }

    /// The member or message picked for an action.
    pub fn selected(&self) -> Option<&Selection> {
        self.rooms.selected.as_ref()
    }

    /// Runs `f` with room `key`'s pane as the shown one (swapped in for the
    /// call when parked); `None` when we are not in that room. The flag
    /// says whether the room is the one on screen.
    pub(super) fn with_room<R>(
        &mut self,
        key: &Option<String>,
        f: impl FnOnce(&mut Self) -> R,
    ) -> Option<(R, bool)> {
        if *key == self.rooms.shown {
            return Some((f(self), true));
        }
        let mut pane = self.rooms.parked.remove(key)?;
        std::mem::swap(&mut self.pane, &mut pane);
        let shown = std::mem::replace(&mut self.rooms.shown, key.clone());
        let result = f(self);
        self.rooms.shown = shown;
        std::mem::swap(&mut self.pane, &mut pane);
        self.rooms.parked.insert(key.clone(), pane);
        Some((result, false))
    }

    /// Addresses a step's chat or history request to the shown room: the
    /// default room's code asks for `Chat` and `History`, a named room
    /// needs `ChatIn` and `HistoryIn`.
    pub(super) fn routed(&self, event: Option<Event>) -> Option<Event> {
        let Some(room) = self.rooms.shown.clone() else {
            return event;
        };
        match event {
            Some(Event::Net(Command::Chat { text, reference })) => {
                Some(Event::Net(Command::ChatIn {
                    room,
                    text,
                    reference,
                }))
            }
            Some(Event::Net(Command::History { before, limit })) => {
                Some(Event::Net(Command::HistoryIn {
                    room,
                    before,
                    limit,
                }))
            }
            other => other,
        }
    }

    /// Shows room `key`: the current pane is parked with its scroll place
    /// and draft, the other's comes back with its own.
    pub(super) fn show(&mut self, key: Option<String>) -> Task<Message> {
        if key == self.rooms.shown {
            return operation::focus(COMPOSER);
        }
        let Some(mut pane) = self.rooms.parked.remove(&key) else {
            return Task::none();
        };
        pane.unread = 0;
        std::mem::swap(&mut self.pane, &mut pane);
        let old = std::mem::replace(&mut self.rooms.shown, key);
        self.rooms.parked.insert(old, pane);
        self.rooms.selected = None;
        self.rooms.topic_edit = None;
        self.composer_note = None;
        // The list's scrollable is one widget for every room: its first
        // viewport after the switch is the other room's place, not a
        // reader's scroll.
        let y = self.pane.keeper.offset();
        self.pane.keeper.returning();
        let place = match y {
            Some(y) if !self.pane.window.at_bottom() => operation::scroll_to(
                LIST,
                scrollable::AbsoluteOffset {
                    x: None,
                    y: Some(y),
                },
            ),
            _ => operation::snap_to_end(LIST),
        };
        Task::batch([place, operation::focus(COMPOSER)])
    }

    /// A user step about rooms or moderation; `Err` gives the message back
    /// for the room's other steps.
    pub(super) fn rooms_update(
        &mut self,
        message: Message,
    ) -> Result<(Task<Message>, Option<Event>), Message> {
        let ask = |c| Ok((Task::none(), Some(Event::Net(c))));
        match message {
            Message::ShowRoom(key) => Ok((self.show(key), None)),
            Message::JoinInputChanged(s) => {
                self.rooms.join_input = s;
                Ok((Task::none(), None))
            }
            Message::JoinTyped => {
                let name = typed_room(&self.rooms.join_input).to_owned();
                self.rooms.join_input.clear();
                if self.rooms.join_private && !name.is_empty() && !self.rooms.joined.contains(&name)
                {
                    self.rooms.join_private = false;
                    return ask(Command::CreatePrivate(name));
                }
                self.join(name)
            }
            Message::Join(name) => self.join(name),
            Message::JoinPrivateToggled(on) => {
                self.rooms.join_private = on;
                Ok((Task::none(), None))
            }
            Message::InviteInputChanged(s) => {
                self.rooms.invite_input = s;
                Ok((Task::none(), None))
            }
            Message::InviteTyped => {
                let name = self.rooms.invite_input.trim().to_owned();
                let Some(room) = self.rooms.shown.clone().filter(|_| !name.is_empty()) else {
                    return Ok((Task::none(), None));
                };
                self.rooms.invite_input.clear();
                ask(Command::Moderate(ClientMessage::Invite(Invite {
                    room,
                    name: Some(name),
                    by: None,
                })))
            }
            Message::SetPrivate(on) => match self.rooms.shown.clone() {
                Some(room) => ask(Command::Moderate(ClientMessage::RoomMode(RoomMode {
                    room,
                    invite_only: on,
                    by: None,
                }))),
                None => Ok((Task::none(), None)),
            },
            Message::Part(name) => ask(Command::Part(name)),
            Message::BrowseRooms => {
                self.rooms.browse.get_or_insert_with(Vec::new);
                ask(Command::ListRooms)
            }
            Message::CloseBrowse => {
                self.rooms.browse = None;
                Ok((Task::none(), None))
            }
            Message::EditTopic => {
                if self.rooms.shown.is_some() {
                    self.rooms.topic_edit = Some(self.pane.topic.clone());
                    return Ok((operation::focus(TOPIC_INPUT), None));
                }
                Ok((Task::none(), None))
            }
            Message::TopicChanged(s) => {
                if self.rooms.topic_edit.is_some() {
                    self.rooms.topic_edit = Some(s);
                }
                Ok((Task::none(), None))
            }
            Message::SaveTopic => {
                let (Some(room), Some(topic)) =
                    (self.rooms.shown.clone(), self.rooms.topic_edit.take())
                else {
                    return Ok((Task::none(), None));
                };
                ask(Command::Topic {
                    room,
                    topic: topic.trim().to_owned(),
                })
            }
            Message::CancelTopic => {
                self.rooms.topic_edit = None;
                Ok((Task::none(), None))
            }
            Message::SelectMember(u) => {
                self.rooms.selected = Some(Selection::Member(u));
                Ok((Task::none(), None))
            }
            Message::SelectChat(id) => {
                let from = self.pane.entries.iter().find_map(|e| match e {
                    Entry::Chat(line) if line.id == id => Some(line.from.clone()),
                    _ => None,
                });
                self.rooms.selected = from.map(|from| Selection::Chat { id, from });
                Ok((Task::none(), None))
            }
            Message::Deselect => {
                self.rooms.selected = None;
                Ok((Task::none(), None))
            }
            Message::Moderate(action) => {
                let Some(Selection::Member(u)) = self.rooms.selected.take() else {
                    return Ok((Task::none(), None));
                };
                let m = Moderate {
                    name: u.name,
                    room: self.rooms.shown.clone(),
                    minutes: None,
                    reason: None,
                };
                let role = |role: &str| {
                    ClientMessage::SetRole(SetRole {
                        name: m.name.clone(),
                        room: m.room.clone(),
                        role: role.to_owned(),
                    })
                };
                ask(Command::Moderate(match action {
                    Action::Promote => role("moderator"),
                    Action::Demote => role("member"),
                    Action::Kick => ClientMessage::Kick(m),
                    Action::Ban => ClientMessage::Ban(m),
                    Action::Mute => ClientMessage::Mute(m),
                    Action::Unmute => ClientMessage::Unmute(m),
                }))
            }
            Message::DeleteChat => {
                let Some(Selection::Chat { id, .. }) = self.rooms.selected.take() else {
                    return Ok((Task::none(), None));
                };
                ask(Command::Moderate(ClientMessage::Delete(Delete {
                    id,
                    room: self.rooms.shown.clone(),
                })))
            }
            other => Err(other),
        }
    }

    /// Join `name` (typed or from the list): a room we are in is shown,
    /// the default room's name shows it, another is asked for.
    fn join(&mut self, name: String) -> Result<(Task<Message>, Option<Event>), Message> {
        let name = typed_room(&name).to_owned();
        if name.is_empty() {
            return Ok((Task::none(), None));
        }
        if name == self.rooms.default_name {
            return Ok((self.show(None), None));
        }
        if self.rooms.joined.contains(&name) {
            return Ok((self.show(Some(name)), None));
        }
        Ok((Task::none(), Some(Event::Net(Command::Join(name)))))
    }

    /// `room_joined`: a new room gets a pane and is shown; a room we were
    /// in (joined again after a reconnection) gets its members anew and
    /// the chats of its history it does not show yet.
    pub(super) fn room_joined(&mut self, j: &RoomJoined) -> (Task<Message>, Option<Event>) {
        let key = Some(j.room.clone());
        let fresh = self.rooms.joined.insert(j.room.clone());
        if fresh {
            self.rooms
                .parked
                .insert(key.clone(), Pane::new(Roster::default()));
        }
        let filled = self.with_room(&key, |s| {
            let presence = ServerMessage::Presence(Presence {
                ts: 0,
                joined: j.users.clone(),
                left: Vec::new(),
                room: None,
            });
            s.pane.roster = Roster::default();
            s.pane.roster.apply(&presence);
            s.sort_users();
            s.pane.topic.clone_from(&j.topic);
            s.pane.invite_only = j.invite_only;
            let line = if fresh {
                format!("You joined #{}.", j.room)
            } else {
                format!("Back in #{}.", j.room)
            };
            let mut snap = s.push(Entry::System(line));
            if fresh && j.history.is_empty() {
                s.pane.history.nothing_older();
            }
            if fresh && !j.topic.is_empty() {
                snap |= s.push(Entry::System(format!("Topic: {}", j.topic)));
            }
            let newest = s.pane.history.newest();
            for c in j.history.iter().filter(|c| c.id > newest) {
                snap |= s.add_chat(c);
            }
            snap
        });
        match filled {
            Some((snap, true)) => (self.snap_if(snap), None),
            Some((_, false)) if fresh => (self.show(key), None),
            _ => (Task::none(), None),
        }
    }

    /// `room_parted`: the room's pane goes; if it was shown, the default
    /// room is shown instead.
    pub(super) fn room_parted(&mut self, room: &str) -> (Task<Message>, Option<Event>) {
        let key = Some(room.to_owned());
        if !self.rooms.joined.remove(room) {
            return (Task::none(), None);
        }
        let task = if self.rooms.shown == key {
            self.show(None)
        } else {
            Task::none()
        };
        self.rooms.parked.remove(&key);
        let snap = self.push(Entry::System(format!("You left #{room}.")));
        // Leaving a room leaves its call; the room's `voice_state` saying
        // so is not sent to one no longer in it.
        let event = if self.call_room == key {
            self.call_room = None;
            super::voiced(self.voice.call.reset())
        } else {
            None
        };
        (Task::batch([task, self.snap_if(snap)]), event)
    }

    /// A server message for the room it is about (the shown room for
    /// errors, which name none); chats of a room not shown count as unread.
    pub(super) fn on_server_routed(&mut self, msg: ServerMessage) -> (bool, Option<Event>) {
        let key = match &msg {
            ServerMessage::Chat(c) => c.room.clone(),
            ServerMessage::Presence(p) => p.room.clone(),
            ServerMessage::History(h) => h.room.clone(),
            ServerMessage::Topic(t) => Some(t.room.clone()),
            ServerMessage::Moderated(m) => m.room.clone(),
            ServerMessage::Deleted(d) => d.room.clone(),
            ServerMessage::RoomMode(m) => Some(m.room.clone()),
            // A room's offers go in its pane (direct ones in the default
            // room's, with a line saying so).
            ServerMessage::FileOffer(o) => o.room.clone(),
            ServerMessage::RoomList(l) => {
                if let Some(d) = l.rooms.iter().find(|r| r.default) {
                    self.rooms.default_name.clone_from(&d.room);
                }
                if self.rooms.browse.is_some() {
                    self.rooms.browse = Some(l.rooms.clone());
                }
                return (false, None);
            }
            // `unknown_message` may answer the default room's resume
            // (section 21): that room's pane holds what it waits for.
            ServerMessage::Error(e) if e.code == chatcore::protocol::ErrorCode::UnknownMessage => {
                None
            }
            ServerMessage::Error(_) => self.rooms.shown.clone(),
            _ => None,
        };
        let is_chat = matches!(msg, ServerMessage::Chat(_));
        let applied = self.with_room(&key, |s| {
            let (snap, event) = s.on_server(msg);
            (snap, s.routed(event))
        });
        match applied {
            Some(((snap, event), true)) => {
                // Under a shown direct conversation the room is not read.
                if is_chat && self.dms.shown.is_some() {
                    self.pane.unread += 1;
                }
                (snap, event)
            }
            Some(((_, event), false)) => {
                if is_chat && let Some(p) = self.rooms.parked.get_mut(&key) {
                    p.unread += 1;
                }
                (false, event)
            }
            None => (false, None),
        }
    }

    /// Room and moderation frames in the room they are about (the pane is
    /// the shown one here); `None` for other messages.
    pub(super) fn on_room_frame(&mut self, msg: &ServerMessage) -> Option<bool> {
        Some(match msg {
            ServerMessage::Presence(_) if unroomed(msg).is_some() => {
                let msg = unroomed(msg)?;
                let changes = self.pane.roster.apply(&msg);
                if changes.is_empty() {
                    return Some(false);
                }
                self.sort_users();
                let mut snap = false;
                for change in changes {
                    let line = super::entry::change_line(change, self.session);
                    snap |= self.push(Entry::System(line));
                }
                snap
            }
            ServerMessage::Topic(t) => {
                self.pane.topic.clone_from(&t.topic);
                let line = if t.topic.is_empty() {
                    format!("{} cleared the topic.", t.by)
                } else {
                    format!("{} set the topic: {}", t.by, t.topic)
                };
                self.push(Entry::System(line))
            }
            ServerMessage::Moderated(m) => self.push(Entry::System(moderated_line(m))),
            ServerMessage::RoomMode(m) => {
                self.pane.invite_only = m.invite_only;
                let by = m.by.as_deref().unwrap_or("someone");
                self.push(Entry::System(if m.invite_only {
                    format!("{by} made the room invite-only: only invited members may enter.")
                } else {
                    format!("{by} opened the room to everyone.")
                }))
            }
            ServerMessage::Invited(i) => self.push(Entry::System(format!(
                "{} invited you to #{}: type {} under Rooms and press Join.",
                i.by.as_deref().unwrap_or("someone"),
                i.room,
                i.room
            ))),
            ServerMessage::Deleted(d) => {
                let at = self
                    .pane
                    .entries
                    .iter()
                    .position(|e| matches!(e, Entry::Chat(line) if line.id == d.id));
                if let Some(at) = at {
                    self.pane.entries.remove(at);
                    self.pane.window.removed(at);
                }
                if matches!(&self.rooms.selected, Some(Selection::Chat { id, .. }) if *id == d.id) {
                    self.rooms.selected = None;
                }
                false
            }
            _ => return None,
        })
    }

    /// Logged in again: the default room resumes as always (whichever
    /// room is shown), and every named room is joined again.
    pub fn relogged(
        &mut self,
        welcome: &chatcore::protocol::Welcome,
    ) -> (Task<Message>, Option<Event>) {
        let (task, event) = match self.with_room(&None, |s| s.relogged_default(welcome)) {
            Some(((task, event), true)) => (task, event),
            Some(((_, event), false)) => (Task::none(), event),
            None => (Task::none(), None),
        };
        if self.rooms.joined.is_empty() {
            return (task, event);
        }
        let rejoin = Event::Net(Command::Rejoin(self.rooms.joined.iter().cloned().collect()));
        let event = match event {
            Some(e) => Event::Many(vec![e, rejoin]),
            None => rejoin,
        };
        (task, Some(event))
    }
}
