//! Every room's voice call (docs/protocol.md 23.6): the default room's and
//! one per named room that has anyone in its call.
//!
//! A member is in at most one call at a time, so a member's connection key
//! and its session each name at most one call: the relay finds a packet's
//! call by the session it carries (one hash lookup) and then works on that
//! [`Call`] alone, exactly as it did when there was one call. Empty calls
//! are dropped; a room's next call starts at a fresh random epoch.

use std::collections::HashMap;
use std::time::Instant;

use super::call::{Call, Member, VoicePath};

/// Which room a call belongs to: `None` for the default room, else the
/// named room's id in [`crate::server::room::Rooms`] (rooms are never
/// removed, so an id stays its room's).
pub(crate) type CallRoom = Option<usize>;

/// The calls, by room, and who is in which.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    /// The calls with at least one member.
    calls: HashMap<CallRoom, Call>,
    /// Connection key -> the call it is in.
    of_key: HashMap<usize, CallRoom>,
    /// Session -> the call it is in: what the relay looks packets up by.
    of_session: HashMap<u64, CallRoom>,
}

impl Calls {
    /// Members in every call together.
    pub fn len(&self) -> usize {
        self.of_key.len()
    }

    /// The call member `key` is in, if any.
    pub fn room_of(&self, key: usize) -> Option<CallRoom> {
        self.of_key.get(&key).copied()
    }

    /// The call of `room`, if anyone is in it.
    pub fn get(&self, room: CallRoom) -> Option<&Call> {
        self.calls.get(&room)
    }

    /// The call of `room`, if anyone is in it.
    pub fn get_mut(&mut self, room: CallRoom) -> Option<&mut Call> {
        self.calls.get_mut(&room)
    }

    /// The call member `key` is in, and its room.
    pub fn of_key_mut(&mut self, key: usize) -> Option<(CallRoom, &mut Call)> {
        let room = *self.of_key.get(&key)?;
        self.calls.get_mut(&room).map(|c| (room, c))
    }

    /// The call whose member has session `session`: where its packets go.
    pub fn of_session_mut(&mut self, session: u64) -> Option<(CallRoom, &mut Call)> {
        let room = *self.of_session.get(&session)?;
        self.calls.get_mut(&room).map(|c| (room, c))
    }

    /// Puts member `key` into `room`'s call (it must not be in another
    /// one: the caller takes it out first). Returns the path it had bound
    /// when it was in this call already (a fresh token unbinds it).
    #[allow(clippy::too_many_arguments)]
    pub fn join(
        &mut self,
        room: CallRoom,
        key: usize,
        session: u64,
        name: &str,
        token: [u8; crate::protocol::voice::TOKEN_LEN],
        now: Instant,
    ) -> Option<VoicePath> {
        self.of_key.insert(key, room);
        self.of_session.insert(session, room);
        self.calls
            .entry(room)
            .or_default()
            .join(key, session, name, token, now)
    }

    /// Takes member `key` out of its call; returns the call's room and the
    /// member (whose path the caller closes).
    pub fn leave(&mut self, key: usize) -> Option<(CallRoom, Member)> {
        let room = self.of_key.remove(&key)?;
        let call = self.calls.get_mut(&room)?;
        let member = call.leave(key)?;
        self.of_session.remove(&member.session);
        if call.is_empty() {
            self.calls.remove(&room);
        }
        Some((room, member))
    }

    /// Unbinds `path` wherever it is bound; returns the calls whose visible
    /// state changed.
    pub fn unbind(&mut self, path: VoicePath) -> Vec<CallRoom> {
        self.calls
            .iter_mut()
            .filter_map(|(room, call)| call.unbind(path).then_some(*room))
            .collect()
    }

    /// Members whose voice path was silent since before `cutoff` leave
    /// their calls; returns them with their calls' rooms.
    pub fn expire(&mut self, cutoff: Instant) -> Vec<(CallRoom, Member)> {
        let mut gone = Vec::new();
        for (room, call) in &mut self.calls {
            for m in call.expire(cutoff) {
                gone.push((*room, m));
            }
        }
        for (_, m) in &gone {
            self.of_key.remove(&m.key);
            self.of_session.remove(&m.session);
        }
        self.calls.retain(|_, c| !c.is_empty());
        gone
    }

    /// Everyone leaves every call (shutdown).
    pub fn clear(&mut self) {
        self.calls.clear();
        self.of_key.clear();
        self.of_session.clear();
    }
}
