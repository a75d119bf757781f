//! The named rooms one terminal client is in (docs/protocol.md section 23),
//! and which room its typed lines go to.
//!
//! The client is always in the default room; [`Rooms`] keeps what it needs
//! about the named ones beside it: who is there and the topic (for `/who`
//! and `/topic`), which chats of each room were printed (a reconnect joins
//! the rooms again and each `room_joined` repeats the room's recent
//! history), and where `/history` pages back from in each room. Chat ids
//! are server-wide, so each of these is kept per room: one room's ids say
//! nothing about another's.

use std::collections::{BTreeMap, BTreeSet};

use chatcore::protocol::{Chat, History, Presence, RoomJoined, RoomList, Topic};

use crate::text::show_name;

/// What the default room is called before the server said (`room_list`).
pub const DEFAULT_ROOM_NAME: &str = "lobby";

/// Where a room name typed in `/room` or `/join` leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The default room (its name, with or without `#`).
    Default,
    /// A named room this client is in, by the server's name for it.
    Joined(String),
    /// A name this client is not in (as typed, without a leading `#`).
    Other(String),
}

/// One named room this client is in.
#[derive(Debug, Clone, Default)]
pub struct Named {
    /// Its topic ("" when none): `/topic` without text shows it.
    pub topic: String,
    /// Who is in it, by session: `/who` in this room lists them.
    members: BTreeMap<u64, String>,
    /// The highest chat id of this room printed: a chat at or below it is a
    /// repeat (the history of a `room_joined` after a reconnect).
    printed: Option<u64>,
    /// The oldest chat id of this room shown: `/history` pages back from it.
    oldest: Option<u64>,
}

impl Named {
    /// The names of who is in the room, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.members.values().cloned().collect();
        names.sort();
        names
    }

    /// Notes chat `id` as shown; false when it was printed already.
    fn take(&mut self, id: u64) -> bool {
        if self.printed.is_some_and(|p| id <= p) {
            return false;
        }
        self.printed = Some(id);
        self.oldest.get_or_insert(id);
        true
    }
}

/// The named rooms this client is in and the current room.
#[derive(Debug, Clone)]
pub struct Rooms {
    /// The default room's name as `room_list` reports it (`lobby` until
    /// then): how the user addresses it in `/room` and how it is shown.
    default_name: String,
    /// The named rooms this client is in, by the server's name for each
    /// (which can differ from the name typed: look-alikes are one room).
    joined: BTreeMap<String, Named>,
    /// Where typed lines go: `None` for the default room.
    current: Option<String>,
    /// Rooms joined again after a reconnect whose `room_joined` has not
    /// come: their answer must not make them the current room (only a
    /// `/join` does that).
    rejoining: BTreeSet<String>,
}

impl Default for Rooms {
    fn default() -> Self {
        Self::new()
    }
}

impl Rooms {
    /// In the default room only.
    pub fn new() -> Self {
        Self {
            default_name: DEFAULT_ROOM_NAME.to_owned(),
            joined: BTreeMap::new(),
            current: None,
            rejoining: BTreeSet::new(),
        }
    }

    /// The current named room (`None`: the default room).
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// The current named room's state (`None` in the default room).
    pub fn current_room(&self) -> Option<&Named> {
        self.current.as_ref().and_then(|r| self.joined.get(r))
    }

    /// The default room's name (as `room_list` said, else `lobby`).
    pub fn default_name(&self) -> &str {
        &self.default_name
    }

    /// The current room as shown: `#dev`, or `#lobby` for the default room.
    pub fn current_label(&self) -> String {
        format!(
            "#{}",
            show_name(self.current.as_deref().unwrap_or(&self.default_name))
        )
    }

    /// The default room as shown: `#lobby`.
    pub fn default_label(&self) -> String {
        format!("#{}", show_name(&self.default_name))
    }

    /// Whether this client is in named room `room` (the server's name).
    pub fn is_in(&self, room: &str) -> bool {
        self.joined.contains_key(room)
    }

    /// Where `typed` (a name, with or without a leading `#`) leads.
    pub fn target(&self, typed: &str) -> Target {
        let name = typed.strip_prefix('#').unwrap_or(typed).trim();
        if name == self.default_name || name == DEFAULT_ROOM_NAME {
            return Target::Default;
        }
        if self.joined.contains_key(name) {
            return Target::Joined(name.to_owned());
        }
        Target::Other(name.to_owned())
    }

    /// Makes `room` (a named room this client is in, or `None` for the
    /// default room) the current room; false if not in it.
    pub fn switch(&mut self, room: Option<&str>) -> bool {
        match room {
            None => {
                self.current = None;
                true
            }
            Some(r) if self.joined.contains_key(r) => {
                self.current = Some(r.to_owned());
                true
            }
            Some(_) => false,
        }
    }

    /// `/room` without a name: which rooms this client is in, the current
    /// one marked.
    pub fn lines(&self) -> Vec<String> {
        let mark = |current: bool| if current { " (current)" } else { "" };
        let mut lines = vec![format!(
            "* you are in {} room{}:",
            self.joined.len() + 1,
            if self.joined.is_empty() { "" } else { "s" }
        )];
        lines.push(format!(
            "*   #{} (default){}",
            show_name(&self.default_name),
            mark(self.current.is_none())
        ));
        for name in self.joined.keys() {
            lines.push(format!(
                "*   #{}{}",
                show_name(name),
                mark(self.current.as_deref() == Some(name.as_str()))
            ));
        }
        lines
    }

    /// Takes in a `room_joined`: records the room, and returns it with its
    /// history cut to the chats not printed yet, and whether the room is
    /// now the current one (a `/join`, not a join again after a reconnect).
    pub fn joined(&mut self, j: &RoomJoined) -> (RoomJoined, bool) {
        let rejoin = self.rejoining.remove(&j.room);
        let room = self.joined.entry(j.room.clone()).or_default();
        room.topic = j.topic.clone();
        room.members = j
            .users
            .iter()
            .map(|u| (u.session, u.name.clone()))
            .collect();
        let mut fresh = j.clone();
        fresh.history.retain(|c| room.take(c.id));
        if let Some(first) = j.history.first() {
            room.oldest = Some(room.oldest.map_or(first.id, |o| o.min(first.id)));
        }
        if !rejoin {
            self.current = Some(j.room.clone());
        }
        (fresh, !rejoin)
    }

    /// Takes in a `room_parted`; true if it was the current room, which is
    /// then the default room again.
    pub fn parted(&mut self, room: &str) -> bool {
        self.joined.remove(room);
        self.rejoining.remove(room);
        if self.current.as_deref() == Some(room) {
            self.current = None;
            return true;
        }
        false
    }

    /// Takes in a chat of a named room; false when it is a repeat (already
    /// printed). A chat of a room this client is not in is shown.
    pub fn chat(&mut self, chat: &Chat) -> bool {
        match chat.room.as_deref().and_then(|r| self.joined.get_mut(r)) {
            Some(room) => room.take(chat.id),
            None => true,
        }
    }

    /// Takes in a page of a named room's history: `/history` goes on from
    /// its oldest chat.
    pub fn page(&mut self, h: &History) {
        let (Some(name), Some(first)) = (h.room.as_deref(), h.messages.first()) else {
            return;
        };
        if let Some(room) = self.joined.get_mut(name) {
            room.oldest = Some(room.oldest.map_or(first.id, |o| o.min(first.id)));
            if let Some(last) = h.messages.last() {
                room.printed = room.printed.max(Some(last.id));
            }
        }
    }

    /// Where `/history` pages back from in the current named room.
    pub fn oldest_shown(&self) -> Option<u64> {
        self.current_room().and_then(|r| r.oldest)
    }

    /// Takes in a named room's `presence`: who is in it now.
    pub fn presence(&mut self, p: &Presence) {
        let Some(room) = p.room.as_deref().and_then(|r| self.joined.get_mut(r)) else {
            return;
        };
        for u in &p.joined {
            room.members.insert(u.session, u.name.clone());
        }
        for d in &p.left {
            room.members.remove(&d.session);
        }
    }

    /// Takes in a `topic`.
    pub fn topic(&mut self, t: &Topic) {
        if let Some(room) = self.joined.get_mut(&t.room) {
            room.topic = t.topic.clone();
        }
    }

    /// Takes in a `room_list`: the default room's name.
    pub fn list(&mut self, list: &RoomList) {
        if let Some(default) = list.rooms.iter().find(|r| r.default) {
            self.default_name = default.room.clone();
        }
    }

    /// After a reconnect: the named rooms to join again. Their printed
    /// chats are kept, so the history each `room_joined` brings is shown
    /// only where it is new; members are learnt again from it.
    pub fn rejoin(&mut self) -> Vec<String> {
        self.rejoining = self.joined.keys().cloned().collect();
        for room in self.joined.values_mut() {
            room.members.clear();
        }
        self.joined.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use chatcore::protocol::{Departure, LeaveReason, RoomInfo, UserInfo};

    use super::*;

    fn said(room: &str, id: u64) -> Chat {
        Chat {
            room: Some(room.into()),
            id,
            from: "bob".into(),
            session: 8,
            text: format!("{id}"),
            ts: 0,
            reference: None,
        }
    }

    fn joined(room: &str, ids: &[u64]) -> RoomJoined {
        RoomJoined {
            invite_only: false,
            room: room.into(),
            topic: "ship it".into(),
            users: vec![
                UserInfo {
                    name: "bob".into(),
                    session: 8,
                },
                UserInfo {
                    name: "alice".into(),
                    session: 7,
                },
            ],
            history: ids.iter().map(|&id| said(room, id)).collect(),
        }
    }

    #[test]
    fn a_join_makes_the_room_current_and_a_part_falls_back_to_the_default_room() {
        let mut rooms = Rooms::new();
        assert_eq!(rooms.current_label(), "#lobby");
        let (fresh, switched) = rooms.joined(&joined("dev", &[3, 5]));
        assert!(switched);
        assert_eq!(fresh.history.len(), 2);
        assert_eq!(rooms.current(), Some("dev"));
        assert_eq!(rooms.current_label(), "#dev");
        assert_eq!(
            rooms.current_room().map(Named::names).unwrap_or_default(),
            ["alice", "bob"]
        );
        assert_eq!(rooms.oldest_shown(), Some(3));
        assert_eq!(rooms.target("#dev"), Target::Joined("dev".into()));
        assert_eq!(rooms.target("lobby"), Target::Default);
        assert_eq!(rooms.target("ops"), Target::Other("ops".into()));
        assert!(!rooms.parted("ops"));
        assert!(rooms.parted("dev"));
        assert_eq!(rooms.current(), None);
        assert!(!rooms.switch(Some("dev")), "not in it any more");
    }

    #[test]
    fn the_default_room_takes_the_name_the_room_list_gives_it() {
        let mut rooms = Rooms::new();
        rooms.list(&RoomList {
            rooms: vec![RoomInfo {
                invite_only: false,
                room: "hall".into(),
                topic: String::new(),
                members: 1,
                default: true,
            }],
        });
        assert_eq!(rooms.current_label(), "#hall");
        assert_eq!(rooms.target("#hall"), Target::Default);
        assert_eq!(rooms.target("lobby"), Target::Default);
    }

    #[test]
    fn after_a_reconnect_rooms_are_joined_again_without_repeats_or_a_switch() {
        let mut rooms = Rooms::new();
        rooms.joined(&joined("dev", &[3, 5]));
        rooms.joined(&joined("ops", &[4]));
        assert!(rooms.chat(&said("dev", 6)));
        assert!(!rooms.chat(&said("dev", 6)), "a repeat");
        assert!(rooms.switch(Some("dev")));
        assert_eq!(rooms.rejoin(), ["dev", "ops"]);
        let (fresh, switched) = rooms.joined(&joined("ops", &[4, 9]));
        assert!(!switched, "a join again keeps the current room");
        assert_eq!(rooms.current(), Some("dev"));
        let ids: Vec<u64> = fresh.history.iter().map(|c| c.id).collect();
        assert_eq!(ids, [9], "only what was not printed");
        // A /join of a room already in switches to it again.
        let (fresh, switched) = rooms.joined(&joined("ops", &[4, 9]));
        assert!(switched && fresh.history.is_empty());
        assert_eq!(rooms.current(), Some("ops"));
    }

    #[test]
    fn presence_and_topics_keep_each_room_up_to_date() {
        let mut rooms = Rooms::new();
        rooms.joined(&joined("dev", &[]));
        rooms.presence(&Presence {
            room: Some("dev".into()),
            ts: 0,
            joined: vec![UserInfo {
                name: "carol".into(),
                session: 9,
            }],
            left: vec![Departure {
                name: "bob".into(),
                session: 8,
                reason: LeaveReason::Quit,
            }],
        });
        rooms.topic(&Topic {
            room: "dev".into(),
            topic: "release friday".into(),
            by: "carol".into(),
            ts: 0,
        });
        let dev = rooms.current_room().cloned().unwrap_or_default();
        assert_eq!(dev.names(), ["alice", "carol"]);
        assert_eq!(dev.topic, "release friday");
        assert_eq!(
            rooms.lines(),
            [
                "* you are in 2 rooms:",
                "*   #lobby (default)",
                "*   #dev (current)"
            ]
        );
    }
}
