//! The named rooms (docs/protocol.md section 23): found by the skeleton of
//! their name, and which of them each connection is in.
//!
//! The default room, where every login lands, is not here: it is the
//! reactor's own [`Room`] (its frames carry no `room` field, so clients
//! from before rooms keep working in it). Named rooms share its settings
//! and its chat id counter ([`Room::named_like`]).

use std::collections::{HashMap, HashSet};

use slab::Slab;

use super::names::skeleton;
use super::{Outbox, Room};
use crate::protocol::{LeaveReason, RoomInfo, UserInfo};
use crate::server::store::StoredChat;

/// Every named room, and who is in which.
#[derive(Debug, Default)]
pub struct Rooms {
    /// The rooms, by id (a slab index, stable while the room exists).
    rooms: Slab<Room>,
    /// Skeleton of a room's name -> its id: one room per look-alike name.
    by_skeleton: HashMap<String, usize>,
    /// Connection key -> the ids of the named rooms it is in (few: at most
    /// `max_rooms_per_member`), so that a logout leaves them all without
    /// scanning every room.
    of_member: HashMap<usize, Vec<usize>>,
    /// Rooms with a welcome (`room_joined`) or presence waiting to go out:
    /// the end of a loop turn visits only these, not every room.
    touched: HashSet<usize>,
}

impl Rooms {
    /// The id of the room whose name looks like `name`, if any.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.by_skeleton.get(&skeleton(name)).copied()
    }

    /// Creates room `name` (validated, not taken) beside `default`.
    pub fn create(&mut self, default: &Room, name: String, topic: String) -> usize {
        let key = skeleton(&name);
        let id = self.rooms.insert(Room::named_like(default, name, topic));
        self.by_skeleton.insert(key, id);
        id
    }

    /// The name of room `id` as shown ("" for an id that is no room).
    pub fn name_of(&self, id: usize) -> String {
        self.rooms
            .get(id)
            .and_then(Room::name)
            .unwrap_or_default()
            .to_owned()
    }

    /// Room `id`.
    pub fn get(&self, id: usize) -> Option<&Room> {
        self.rooms.get(id)
    }

    /// Room `id`, to change.
    pub fn get_mut(&mut self, id: usize) -> Option<&mut Room> {
        self.rooms.get_mut(id)
    }

    /// How many named rooms exist.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether there is no named room.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// The ids of every named room.
    pub fn ids(&self) -> Vec<usize> {
        self.rooms.iter().map(|(id, _)| id).collect()
    }

    /// The named rooms connection `key` is in.
    pub fn of(&self, key: usize) -> &[usize] {
        self.of_member.get(&key).map_or(&[], Vec::as_slice)
    }

    /// Puts member `info` on connection `key` into room `id`; its
    /// `room_joined` goes out at the end of the turn. `false` if it was
    /// already in (nothing changes) or there is no such room.
    pub fn enter(&mut self, id: usize, key: usize, info: UserInfo) -> bool {
        let Some(room) = self.rooms.get_mut(id) else {
            return false;
        };
        if room.member(key).is_some() {
            return false;
        }
        room.join(key, info);
        self.of_member.entry(key).or_default().push(id);
        self.touched.insert(id);
        true
    }

    /// Takes connection `key` out of room `id`; `false` if it was not in.
    pub fn exit(&mut self, id: usize, key: usize, reason: LeaveReason) -> bool {
        let Some(room) = self.rooms.get_mut(id) else {
            return false;
        };
        if room.leave(key, reason).is_none() {
            return false;
        }
        if let Some(ids) = self.of_member.get_mut(&key) {
            ids.retain(|&r| r != id);
            if ids.is_empty() {
                self.of_member.remove(&key);
            }
        }
        self.touched.insert(id);
        true
    }

    /// Takes connection `key` out of every named room (it logged out).
    pub fn exit_all(&mut self, key: usize, reason: LeaveReason) {
        for id in self.of_member.remove(&key).unwrap_or_default() {
            if let Some(room) = self.rooms.get_mut(id) {
                room.leave(key, reason);
                self.touched.insert(id);
            }
        }
    }

    /// Empties every room without announcing it (the server is stopping).
    pub fn clear(&mut self) {
        for (_, room) in self.rooms.iter_mut() {
            room.clear();
        }
        self.of_member.clear();
        self.touched.clear();
    }

    /// Sends the `room_joined` of this turn's entries, and the rooms'
    /// presence when `presence` (its batching interval is up).
    pub fn flush(&mut self, ts: i64, presence: bool, out: &mut impl Outbox) {
        let touched: Vec<usize> = self.touched.iter().copied().collect();
        for id in touched {
            let Some(room) = self.rooms.get_mut(id) else {
                self.touched.remove(&id);
                continue;
            };
            room.flush_welcomes(out);
            if presence {
                room.flush_presence(ts, out);
            }
            if !room.presence_pending() {
                self.touched.remove(&id);
            }
        }
    }

    /// Whether some room's presence waits to be announced.
    pub fn presence_pending(&self) -> bool {
        !self.touched.is_empty()
    }

    /// The chats accepted in every room since the last call, for the store.
    pub(crate) fn take_unsent(&mut self, into: &mut Vec<StoredChat>) {
        for (_, room) in self.rooms.iter_mut() {
            into.extend(room.take_unsent());
        }
    }

    /// Chats accepted and not yet committed, in every room.
    pub fn pending_chats(&self) -> usize {
        self.rooms.iter().map(|(_, r)| r.pending_chats()).sum()
    }

    /// Delivers every room's pending chats up to `up_to` (committed).
    pub fn release(&mut self, up_to: u64, ts: i64, out: &mut impl Outbox) {
        for (_, room) in self.rooms.iter_mut() {
            room.release(up_to, ts, out);
        }
    }

    /// Drops the chats `ids` that could not be stored, in every room;
    /// returns their senders still there.
    pub fn drop_failed(&mut self, ids: &[u64]) -> Vec<super::FailedChat> {
        let mut told = Vec::new();
        for (_, room) in self.rooms.iter_mut() {
            told.extend(room.drop_failed(ids));
        }
        told
    }

    /// The `room_list` entries of the named rooms, by name.
    pub fn list(&self) -> Vec<RoomInfo> {
        let mut list: Vec<RoomInfo> = self
            .rooms
            .iter()
            .map(|(_, r)| RoomInfo {
                room: r.name().unwrap_or_default().to_owned(),
                topic: r.topic().to_owned(),
                members: r.len() as u64,
                default: false,
                invite_only: r.invite_only(),
            })
            .collect();
        list.sort_by(|a, b| a.room.cmp(&b.room));
        list
    }
}
