//! The lobby: who is logged in on this server, under which name and
//! session, whatever rooms they are in.
//!
//! A name and a session belong to the connection, not to a room: a member
//! in several rooms is one `alice` with one session id in all of them, and
//! two look-alike names cannot be online at once anywhere on the server
//! (docs/protocol.md section 10). Rooms ([`super::Room`]) only list which of
//! the lobby's members are in them, so leaving a room frees nothing here;
//! logging out ([`Lobby::depart`]) frees the name.

use std::collections::HashMap;

use crate::protocol::UserInfo;

use super::names::NameTable;

/// Everyone logged in: names and sessions.
#[derive(Debug)]
pub struct Lobby {
    /// Names in use, for unique-name allocation across the server.
    names: NameTable,
    /// Next session id; 0 is reserved for the server itself.
    next_session: u64,
    /// Connection key -> the identity it logged in with.
    members: HashMap<usize, UserInfo>,
}

impl Default for Lobby {
    fn default() -> Self {
        Self {
            names: NameTable::default(),
            next_session: 1,
            members: HashMap::new(),
        }
    }
}

impl Lobby {
    /// Logs in connection `key` under (a unique variant of) `name`, which
    /// must already be validated, with a suffix of at least `min` (a guest
    /// shadowing a registered name gets `name(1)` or higher; 0: none if
    /// free). Returns the identity the server will show.
    pub fn admit(&mut self, key: usize, name: &str, min: u32) -> UserInfo {
        let info = UserInfo {
            name: if min == 0 {
                self.names.allocate(name)
            } else {
                self.names.allocate_from(name, min)
            },
            session: self.next_session,
        };
        self.next_session += 1;
        self.members.insert(key, info.clone());
        info
    }

    /// Logs out connection `key`: its name is free again. `None` if it was
    /// not logged in.
    pub fn depart(&mut self, key: usize) -> Option<UserInfo> {
        let info = self.members.remove(&key)?;
        self.names.release(&info.name);
        Some(info)
    }

    /// Logs everyone out (the server is stopping).
    pub fn clear(&mut self) {
        for (_, info) in self.members.drain() {
            self.names.release(&info.name);
        }
    }

    /// The identity of connection `key`, if it is logged in.
    pub fn member(&self, key: usize) -> Option<&UserInfo> {
        self.members.get(&key)
    }

    /// Members logged in.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether nobody is logged in.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Everyone logged in, by session (the operator's `who`).
    pub fn users(&self) -> Vec<UserInfo> {
        let mut users: Vec<UserInfo> = self.members.values().cloned().collect();
        users.sort_by_key(|u| u.session);
        users
    }

    /// The connections of everyone logged in (a server notice's recipients).
    pub fn keys(&self) -> Vec<usize> {
        self.members.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_held_until_its_member_departs_and_sessions_never_repeat() {
        let mut l = Lobby::default();
        let a = l.admit(1, "a", 0);
        let b = l.admit(2, "a", 0);
        assert_eq!((a.name.as_str(), b.name.as_str()), ("a", "a(1)"));
        assert_ne!(a.session, b.session);
        assert_eq!(l.depart(1).map(|u| u.name), Some("a".into()));
        let c = l.admit(3, "a", 0);
        assert_eq!(c.name, "a");
        assert!(c.session > b.session);
        assert_eq!(l.admit(4, "z", 1).name, "z(1)");
        assert_eq!(l.len(), 3);
    }
}
