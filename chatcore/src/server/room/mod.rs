//! A room: its members, message ids, history and presence batching. Who
//! is logged in, under which name and session, is the [`Lobby`]'s: a room
//! lists which of those members are in it.
//!
//! No I/O here. Frames leave through an [`Outbox`], which the reactor
//! implements over its connections and tests and benches implement in memory.
//! A broadcast is encoded once and every recipient gets a clone of the same
//! `Bytes` (a reference-count increment, no copy).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

pub mod lobby;
pub mod names;
pub mod rooms;

pub use lobby::Lobby;
pub use rooms::Rooms;

use crate::protocol::{
    Chat, Departure, Joined, LeaveReason, Left, Presence, ServerMessage, UserInfo, encode_server,
    welcome,
};

/// Where the room's frames go: one queue per connection key.
pub trait Outbox {
    /// Queues `frame` (a complete encoded frame, or a piece of one whose
    /// other pieces follow) for connection `key`.
    fn push(&mut self, key: usize, frame: Bytes);

    /// Queues the same `frame` for every connection in `keys`. The default
    /// pushes a clone to each; the reactor appends the frame once to the
    /// turn's shared buffer instead.
    fn broadcast(&mut self, keys: impl Iterator<Item = usize>, frame: &Bytes) {
        for key in keys {
            self.push(key, frame.clone());
        }
    }
}

/// Settings the room needs from the server configuration.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// Chat messages kept for late joiners.
    pub history_len: usize,
    /// Sent in `welcome`.
    pub heartbeat_ms: u32,
    /// Sent in `welcome`.
    pub max_frame: u32,
    /// Sent in `welcome`.
    pub max_text: u32,
}

/// A member as the room keeps it.
#[derive(Debug, Clone)]
struct Member {
    /// The connection's key, where its frames go.
    key: usize,
    /// Name and session as others see them.
    info: UserInfo,
}

/// The chat room: who is in it and what was said.
#[derive(Debug)]
pub struct Room {
    settings: RoomSettings,
    /// Dense list for fan-out: a broadcast walks this vector and nothing else.
    members: Vec<Member>,
    /// Connection key -> index in `members`, for O(1) leave (swap-remove).
    index_of: HashMap<usize, usize>,
    /// The room's name; `None` for the default room (whose frames carry no
    /// `room` field, as before rooms existed).
    name: Option<String>,
    /// The topic ("" when none).
    topic: String,
    /// Only invited members (and the room's moderators and the operators)
    /// may join (docs/protocol.md 23.5); never set on the default room.
    invite_only: bool,
    /// Next chat id; ids start at 1 and never repeat. One counter shared
    /// by every room of the server ([`Room::named_like`]): ids are
    /// server-wide, so that one `last_seen` and one store table serve all
    /// rooms and a chat's id alone names it.
    next_id: Arc<AtomicU64>,
    /// The last `history_len` chats, oldest first, for `welcome`.
    history: VecDeque<Chat>,
    /// Joins not yet announced (see [`Room::flush_presence`]).
    pending_joined: Vec<UserInfo>,
    /// Members (key, session) whose `welcome` is not sent yet: welcomes are
    /// sent in batches that share one encoding of the user list.
    pending_welcomes: Vec<(usize, u64)>,
    /// Leaves not yet announced.
    pending_left: Vec<Departure>,
    /// Offers left out of the next welcome batch's offer list (the
    /// `offers_omitted` field); set just before that batch is flushed and
    /// reset after it, see [`Room::set_offers_omitted`].
    offers_omitted: u64,
    /// Session -> the account fields of its pending welcome (`registered`,
    /// and the token issued if any): only authenticated logins have one,
    /// and each entry goes with its welcome.
    welcome_accounts: std::collections::HashMap<u64, Option<String>>,
    /// Write before deliver: with a history store, accepted chats wait in
    /// `pending` until the store commits them ([`Room::release`]); without
    /// one they are delivered at once.
    durable: bool,
    /// Accepted chats not yet committed, oldest first, already encoded.
    pending: VecDeque<PendingChat>,
    /// Accepted chats not yet handed to the store ([`Room::take_unsent`]).
    unsent: Vec<crate::server::store::StoredChat>,
}

/// A chat accepted but not delivered: it waits for the store's commit.
#[derive(Debug)]
struct PendingChat {
    /// The chat as history keeps it (no `ref`).
    chat: Chat,
    /// The frame everyone but the sender gets.
    frame: Bytes,
    /// The sender's connection and session, and its own frame (with its
    /// `ref`) if it gave one, so that it gets its copy and its error.
    sender: Option<PendingSender>,
}

/// Who sent a pending chat.
#[derive(Debug)]
struct PendingSender {
    /// Its connection key.
    key: usize,
    /// Its session: a key reused by someone else after it left is not it.
    session: u64,
    /// The `ref` it gave.
    reference: Option<u64>,
    /// Its copy of the chat, with that `ref` (when it gave one).
    own: Option<Bytes>,
}

/// A sender to tell that its chat could not be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedChat {
    /// The sender's connection.
    pub key: usize,
    /// The `ref` of the chat, for the `error` frame.
    pub reference: Option<u64>,
}

impl Room {
    /// An empty room.
    pub fn new(settings: RoomSettings) -> Self {
        Self {
            settings,
            members: Vec::new(),
            index_of: HashMap::new(),
            name: None,
            topic: String::new(),
            invite_only: false,
            next_id: Arc::new(AtomicU64::new(1)),
            history: VecDeque::new(),
            pending_joined: Vec::new(),
            pending_welcomes: Vec::new(),
            pending_left: Vec::new(),
            offers_omitted: 0,
            welcome_accounts: std::collections::HashMap::new(),
            durable: false,
            pending: VecDeque::new(),
            unsent: Vec::new(),
        }
    }

    /// A named room of the same server as `default`: same settings, same
    /// chat id counter, write before deliver if `default` does it.
    pub fn named_like(default: &Room, name: String, topic: String) -> Self {
        let mut room = Self::new(default.settings.clone());
        room.name = Some(name);
        room.topic = topic;
        room.next_id = Arc::clone(&default.next_id);
        room.durable = default.durable;
        room
    }

    /// The room's name; `None` for the default room.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The topic ("" when none).
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sets the topic.
    pub fn set_topic(&mut self, topic: String) {
        self.topic = topic;
    }

    /// Whether only invited members may join.
    pub fn invite_only(&self) -> bool {
        self.invite_only
    }

    /// Makes the room invite-only or open.
    pub fn set_invite_only(&mut self, invite_only: bool) {
        self.invite_only = invite_only;
    }

    /// Gives the history of a named room read from the store at start
    /// (oldest first).
    pub fn set_history(&mut self, recent: Vec<Chat>) {
        let keep = self.settings.history_len;
        let skip = recent.len().saturating_sub(keep);
        self.history = recent.into_iter().skip(skip).collect();
    }

    /// Turns on write before deliver (a history store is in use): ids
    /// continue at `next_id`, and `recent` (oldest first) becomes the history
    /// of the welcome.
    pub fn use_store(&mut self, next_id: u64, recent: Vec<Chat>) {
        self.durable = true;
        self.next_id.store(next_id.max(1), Ordering::Relaxed);
        let keep = self.settings.history_len;
        let skip = recent.len().saturating_sub(keep);
        self.history = recent.into_iter().skip(skip).collect();
    }

    /// The chats accepted since the last call, for the store (empty
    /// without a store).
    pub(crate) fn take_unsent(&mut self) -> Vec<crate::server::store::StoredChat> {
        std::mem::take(&mut self.unsent)
    }

    /// Chats accepted but not yet committed.
    pub fn pending_chats(&self) -> usize {
        self.pending.len()
    }

    /// Delivers, in order, every pending chat with an id up to `up_to`:
    /// the store has committed them.
    pub fn release(&mut self, up_to: u64, ts: i64, out: &mut impl Outbox) {
        if self.pending.front().is_none_or(|p| p.chat.id > up_to) {
            return;
        }
        self.flush_presence(ts, out);
        while let Some(p) = self.pending.front() {
            if p.chat.id > up_to {
                break;
            }
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            let present = p.sender.as_ref().filter(|s| {
                self.member(s.key).is_some_and(|m| m.session == s.session) && s.own.is_some()
            });
            match present {
                Some(PendingSender {
                    key,
                    own: Some(own),
                    ..
                }) => {
                    let sender = *key;
                    out.push(sender, own.clone());
                    let others = self.members.iter().map(|m| m.key).filter(|&k| k != sender);
                    out.broadcast(others, &p.frame);
                }
                _ => self.broadcast(&p.frame, out),
            }
            self.remember(p.chat);
        }
    }

    /// Drops the pending chats whose ids are in `ids` (the store could not
    /// commit them: they are never delivered) and returns the senders still
    /// here, to be told.
    pub fn drop_failed(&mut self, ids: &[u64]) -> Vec<FailedChat> {
        let mut told = Vec::new();
        self.pending.retain(|p| {
            if !ids.contains(&p.chat.id) {
                return true;
            }
            if let Some(s) = &p.sender
                && self
                    .index_of
                    .get(&s.key)
                    .is_some_and(|&i| self.members[i].info.session == s.session)
            {
                told.push(FailedChat {
                    key: s.key,
                    reference: s.reference,
                });
            }
            false
        });
        told
    }

    /// Adds a delivered chat to the welcome's history ring.
    fn remember(&mut self, chat: Chat) {
        if self.settings.history_len == 0 {
            return;
        }
        if self.history.len() == self.settings.history_len {
            self.history.pop_front();
        }
        self.history.push_back(chat);
    }

    /// Sets the `offers_omitted` of the welcomes flushed next (only that
    /// batch: it is reset to 0 afterwards). The server calls it right before
    /// flushing the welcome of a member to whom it sends the newest offers.
    pub fn set_offers_omitted(&mut self, omitted: u64) {
        self.offers_omitted = omitted;
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the room has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member on connection `key`, if that connection is in the room.
    pub fn member(&self, key: usize) -> Option<&UserInfo> {
        self.index_of.get(&key).map(|&i| &self.members[i].info)
    }

    /// The connection key of session `session`, if it is in the room.
    pub fn key_of_session(&self, session: u64) -> Option<usize> {
        self.members
            .iter()
            .find(|m| m.info.session == session)
            .map(|m| m.key)
    }

    /// The connection keys of everyone in the room.
    pub fn users_keys(&self) -> impl Iterator<Item = usize> + '_ {
        self.members.iter().map(|m| m.key)
    }

    /// The chats kept for late joiners, oldest first.
    pub fn recent(&self) -> Vec<Chat> {
        self.history.iter().cloned().collect()
    }

    /// The member whose name is `name` or looks like it (names are unique
    /// by skeleton on the server), with its connection key.
    pub fn find_by_name(&self, name: &str) -> Option<(usize, &UserInfo)> {
        let key = names::skeleton(name);
        self.members
            .iter()
            .find(|m| names::skeleton(&m.info.name) == key)
            .map(|m| (m.key, &m.info))
    }

    /// The kept chat `id`, if this room holds it in memory.
    pub fn kept_chat(&self, id: u64) -> Option<&Chat> {
        let at = self.history.partition_point(|c| c.id < id);
        self.history.get(at).filter(|c| c.id == id)
    }

    /// Removes kept chat `id` (deleted by a member or moderator); `true`
    /// if it was kept here.
    pub fn forget_chat(&mut self, id: u64) -> bool {
        let at = self.history.partition_point(|c| c.id < id);
        if self.history.get(at).is_some_and(|c| c.id == id) {
            self.history.remove(at);
            return true;
        }
        false
    }

    /// Everyone in the room.
    pub fn users(&self) -> Vec<UserInfo> {
        self.members.iter().map(|m| m.info.clone()).collect()
    }

    /// Adds connection `key`, logged in as `info` (from
    /// [`Lobby::admit`]). Its `welcome` and the others' notice of it go out
    /// at the next [`Room::flush_presence`] (or [`Room::flush_welcomes`]).
    pub fn join(&mut self, key: usize, info: UserInfo) -> UserInfo {
        self.index_of.insert(key, self.members.len());
        self.members.push(Member {
            key,
            info: info.clone(),
        });
        self.pending_welcomes.push((key, info.session));
        self.pending_joined.push(info.clone());
        info
    }

    /// Removes connection `key` from the room. The others learn of it at the
    /// next [`Room::flush_presence`]. `None` if it was not a member.
    pub fn leave(&mut self, key: usize, reason: LeaveReason) -> Option<UserInfo> {
        let index = self.index_of.remove(&key)?;
        let member = self.members.swap_remove(index);
        if let Some(moved) = self.members.get(index) {
            self.index_of.insert(moved.key, index);
        }
        self.pending_left.push(Departure {
            name: member.info.name.clone(),
            session: member.info.session,
            reason,
        });
        Some(member.info)
    }

    /// Removes every member without announcing it (the server is stopping and
    /// tells each one itself). Returns who was removed, with their keys.
    pub fn clear(&mut self) -> Vec<(usize, UserInfo)> {
        self.index_of.clear();
        self.pending_joined.clear();
        self.pending_left.clear();
        self.pending_welcomes.clear();
        let members = std::mem::take(&mut self.members);
        members.into_iter().map(|m| (m.key, m.info)).collect()
    }

    /// Announces the joins and leaves since the last call: a single change as
    /// `joined`/`left`, several as one `presence` frame. Called before every
    /// chat broadcast (so nobody sees a message from someone not yet
    /// announced) and once at the end of each loop turn. Coalescing is what
    /// keeps a connection storm from costing one frame per member per join.
    pub fn flush_presence(&mut self, ts: i64, out: &mut impl Outbox) {
        self.flush_welcomes(out);
        if self.name.is_some() {
            // A named room always says `presence`, with its `room`.
            if !self.presence_pending() {
                return;
            }
            let msg = ServerMessage::Presence(Presence {
                ts,
                joined: std::mem::take(&mut self.pending_joined),
                left: std::mem::take(&mut self.pending_left),
                room: self.name.clone(),
            });
            self.broadcast(&encode_server(&msg), out);
            return;
        }
        let msg = match (self.pending_joined.len(), self.pending_left.len()) {
            (0, 0) => return,
            (1, 0) => {
                let UserInfo { name, session } = self.pending_joined.remove(0);
                ServerMessage::Joined(Joined { name, session, ts })
            }
            (0, 1) => {
                let Departure {
                    name,
                    session,
                    reason,
                } = self.pending_left.remove(0);
                ServerMessage::Left(Left {
                    name,
                    session,
                    ts,
                    reason,
                })
            }
            _ => ServerMessage::Presence(Presence {
                room: None,
                ts,
                joined: std::mem::take(&mut self.pending_joined),
                left: std::mem::take(&mut self.pending_left),
            }),
        };
        self.broadcast(&encode_server(&msg), out);
    }

    /// Whether joins or leaves wait to be announced.
    pub fn presence_pending(&self) -> bool {
        !self.pending_joined.is_empty() || !self.pending_left.is_empty()
    }

    /// Whether connection `key` joined but has not been sent its `welcome`.
    /// Anything else for it must wait: call [`Room::flush_welcomes`] first.
    pub fn welcome_pending(&self, key: usize) -> bool {
        // Asked before every private frame: with no welcome waiting (the
        // usual case) this is an empty scan, and the member is looked up
        // only for a key that is waiting.
        self.pending_welcomes
            .iter()
            .any(|&(k, session)| k == key && self.member(key).is_some_and(|m| m.session == session))
    }

    /// Queues the `welcome` of everyone who joined since the last call.
    ///
    /// A welcome holds the whole user list, so during a connection storm
    /// encoding one per joiner is quadratic work. Instead the user list,
    /// history and limits are encoded once per batch into a shared `Bytes`;
    /// each joiner gets a small head of its own (length prefix, name, session)
    /// followed by that shared body, as two chunks of one frame.
    pub fn flush_welcomes(&mut self, out: &mut impl Outbox) {
        if self.pending_welcomes.is_empty() {
            return;
        }
        if let Some(room) = &self.name {
            // Entering a named room: `room_joined`, one encoding shared by
            // this batch's joiners.
            let frame = encode_server(&ServerMessage::RoomJoined(crate::protocol::RoomJoined {
                room: room.clone(),
                topic: self.topic.clone(),
                users: self.users(),
                history: self.history.iter().cloned().collect(),
                invite_only: self.invite_only,
            }));
            for (key, session) in std::mem::take(&mut self.pending_welcomes) {
                if self.member(key).is_some_and(|m| m.session == session) {
                    out.push(key, frame.clone());
                }
            }
            return;
        }
        let body = welcome::shared_body(
            self.members.iter().map(|m| &m.info),
            self.members.len(),
            &self.history,
            self.settings.heartbeat_ms,
            self.settings.max_frame,
            self.settings.max_text,
        );
        for (key, session) in std::mem::take(&mut self.pending_welcomes) {
            let Some(member) = self.member(key).filter(|m| m.session == session) else {
                continue; // left (and maybe its key was reused) before the batch
            };
            let account = self.welcome_accounts.get(&session);
            let account = account.map(|t| t.as_deref());
            let head = welcome::head(
                &member.name,
                session,
                self.offers_omitted,
                account,
                body.len(),
            );
            out.push(key, head);
            out.push(key, body.clone());
        }
        self.offers_omitted = 0;
        self.welcome_accounts.clear();
    }

    /// Marks `session`'s pending welcome as an authenticated login
    /// (`registered: true`), carrying `token` if one was issued.
    pub fn set_welcome_account(&mut self, session: u64, token: Option<String>) {
        self.welcome_accounts.insert(session, token);
    }

    /// Accepts a chat message from connection `key` and delivers it to
    /// everyone (with a store: once [`Room::release`] says it is committed). The sender's copy carries its `reference`. Returns the chat's
    /// id, or `None` if `key` is not a member. `text` must be validated.
    pub fn chat(
        &mut self,
        key: usize,
        text: String,
        reference: Option<u64>,
        ts: i64,
        out: &mut impl Outbox,
    ) -> Option<u64> {
        let from = self.member(key)?.clone();
        Some(self.deliver(from, Some(key), text, reference, ts, out))
    }

    /// Delivers a message from the server itself (session 0) to everyone.
    pub fn system(&mut self, from: &str, text: String, ts: i64, out: &mut impl Outbox) -> u64 {
        let from = UserInfo {
            name: from.to_owned(),
            session: 0,
        };
        self.deliver(from, None, text, None, ts, out)
    }

    fn deliver(
        &mut self,
        from: UserInfo,
        sender_key: Option<usize>,
        text: String,
        reference: Option<u64>,
        ts: i64,
        out: &mut impl Outbox,
    ) -> u64 {
        self.flush_presence(ts, out);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let from_session = from.session;
        // Encoded in place, without copying the text; the sender's copy
        // differs only by its `ref`.
        let mut msg = ServerMessage::Chat(Chat {
            room: self.name.clone(),
            id,
            from: from.name,
            session: from.session,
            text,
            ts,
            reference: None,
        });
        let frame = encode_server(&msg);
        if self.durable {
            let own = match (sender_key, reference) {
                (Some(_), Some(_)) => {
                    if let ServerMessage::Chat(chat) = &mut msg {
                        chat.reference = reference;
                    }
                    Some(encode_server(&msg))
                }
                _ => None,
            };
            let ServerMessage::Chat(mut chat) = msg else {
                return id;
            };
            chat.reference = None;
            let sender = sender_key.map(|key| PendingSender {
                key,
                session: from_session,
                reference,
                own,
            });
            self.unsent
                .push(crate::server::store::StoredChat::from_chat(&chat));
            self.pending.push_back(PendingChat {
                chat,
                frame,
                sender,
            });
            return id;
        }
        match (sender_key, reference) {
            (Some(sender), Some(_)) => {
                if let ServerMessage::Chat(chat) = &mut msg {
                    chat.reference = reference;
                }
                out.push(sender, encode_server(&msg));
                let others = self.members.iter().map(|m| m.key).filter(|&k| k != sender);
                out.broadcast(others, &frame);
            }
            _ => self.broadcast(&frame, out),
        }
        if let ServerMessage::Chat(mut chat) = msg {
            chat.reference = None;
            self.remember(chat);
        }
        id
    }

    /// Queues one shared frame for every member.
    pub fn broadcast(&self, frame: &Bytes, out: &mut impl Outbox) {
        out.broadcast(self.members.iter().map(|m| m.key), frame);
    }

    /// Takes the next id of the server-wide counter, for a message that is
    /// not a room's chat (a direct message).
    pub fn take_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The id the next chat will get; ids at or above it were never
    /// assigned (0 is never assigned either).
    pub fn next_id(&self) -> u64 {
        self.next_id.load(Ordering::Relaxed)
    }

    /// The id after the newest chat delivered to members: chats from it on
    /// are still waiting for the store (and reach every member when it
    /// commits them), or not said yet. History answers stop below it.
    pub fn delivered_next(&self) -> u64 {
        self.pending
            .front()
            .map_or_else(|| self.next_id(), |p| p.chat.id)
    }

    /// A `history` page from memory: up to `limit` kept chats with an id
    /// below `before`, oldest first, and whether older ones exist. `None`
    /// when memory cannot tell (it holds no chat older than the page), so
    /// the store must answer; without a store the caller takes
    /// [`Room::history_page_kept`].
    pub fn history_page(&self, before: u64, limit: usize) -> Option<(Vec<Chat>, bool)> {
        let end = self.history.partition_point(|c| c.id < before);
        let start = end.checked_sub(limit).filter(|&s| s > 0)?;
        Some((self.history.range(start..end).cloned().collect(), true))
    }

    /// Like [`Room::history_page`] when memory is all there is: `more` is
    /// whether older chats are kept.
    pub fn history_page_kept(&self, before: u64, limit: usize) -> (Vec<Chat>, bool) {
        let end = self.history.partition_point(|c| c.id < before);
        let start = end.saturating_sub(limit);
        (self.history.range(start..end).cloned().collect(), start > 0)
    }

    /// The resume from memory: the delivered chats after id `after`,
    /// oldest first, at most the newest `max` of them, and whether more
    /// were missed than that (`gap`). `None` when memory does not reach
    /// back to `after` (it may not hold everything after it).
    pub fn history_after(&self, after: u64, max: usize) -> Option<(Vec<Chat>, bool)> {
        let start = self.history.partition_point(|c| c.id <= after);
        let first_kept = self
            .history
            .front()
            .map_or_else(|| self.delivered_next(), |c| c.id);
        if start == 0 && first_kept != after.saturating_add(1) {
            return None;
        }
        Some(self.newest_after(start, max))
    }

    /// [`Room::history_after`] when memory is all there is: what is kept
    /// after `after`, `gap` set when chats after `after` are not included.
    pub fn history_after_kept(&self, after: u64, max: usize) -> (Vec<Chat>, bool) {
        self.history_after(after, max).unwrap_or_else(|| {
            let start = self.history.partition_point(|c| c.id <= after);
            (self.newest_after(start, max).0, true)
        })
    }

    /// The kept chats from index `start` on, at most the newest `max`, and
    /// whether some were left out.
    fn newest_after(&self, start: usize, max: usize) -> (Vec<Chat>, bool) {
        let from = start.max(self.history.len().saturating_sub(max));
        (self.history.range(from..).cloned().collect(), from > start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_server;
    use bytes::BytesMut;

    #[derive(Default)]
    struct Sink(HashMap<usize, Vec<ServerMessage>>, HashMap<usize, BytesMut>);

    impl Outbox for Sink {
        /// Frames may come in several chunks (welcomes do): reassemble.
        fn push(&mut self, key: usize, frame: Bytes) {
            let buf = self.1.entry(key).or_default();
            buf.extend_from_slice(&frame);
            while let Some(msg) = decode_server(buf, u32::MAX).expect("valid") {
                self.0.entry(key).or_default().push(msg);
            }
        }
    }

    /// Logs `name` in on `key` and puts it in the room.
    fn enter(r: &mut Room, lobby: &mut Lobby, key: usize, name: &str) {
        let info = lobby.admit(key, name, 0);
        r.join(key, info);
    }

    fn room() -> Room {
        Room::new(RoomSettings {
            history_len: 2,
            heartbeat_ms: 1000,
            max_frame: 1024,
            max_text: 100,
        })
    }

    #[test]
    fn joins_of_one_turn_are_announced_in_one_presence_frame() {
        let mut r = room();
        let mut l = Lobby::default();
        let mut out = Sink::default();
        enter(&mut r, &mut l, 1, "a");
        r.flush_presence(0, &mut out);
        enter(&mut r, &mut l, 2, "b");
        enter(&mut r, &mut l, 3, "b");
        r.leave(2, LeaveReason::Quit);
        r.flush_presence(0, &mut out);
        let to_a = &out.0[&1];
        assert!(matches!(&to_a[0], ServerMessage::Welcome(w) if w.name == "a"));
        assert!(matches!(&to_a[1], ServerMessage::Joined(j) if j.name == "a"));
        let ServerMessage::Presence(p) = &to_a[2] else {
            panic!("expected presence, got {:?}", to_a[2]);
        };
        assert_eq!(p.joined.len(), 2);
        assert_eq!(p.joined[1].name, "b(1)");
        assert_eq!(p.left[0].name, "b");
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn the_sender_alone_gets_its_ref_and_history_is_bounded() {
        let mut r = room();
        let mut l = Lobby::default();
        let mut out = Sink::default();
        enter(&mut r, &mut l, 1, "a");
        enter(&mut r, &mut l, 2, "b");
        for i in 0..3 {
            r.chat(1, format!("m{i}"), Some(7), 5, &mut out);
        }
        let own: Vec<_> = out.0[&1]
            .iter()
            .filter_map(|m| match m {
                ServerMessage::Chat(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(own.len(), 3);
        assert!(own.iter().all(|c| c.reference == Some(7)));
        assert!(out.0[&2].iter().all(|m| match m {
            ServerMessage::Chat(c) => c.reference.is_none() && c.from == "a",
            _ => true,
        }));
        enter(&mut r, &mut l, 3, "c");
        r.flush_welcomes(&mut out);
        let ServerMessage::Welcome(w) = &out.0[&3][0] else {
            panic!("welcome first");
        };
        let ids: Vec<u64> = w.history.iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![2, 3]);
    }
}
