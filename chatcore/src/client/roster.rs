//! Who is online, kept up to date from `welcome`, `joined`, `left` and
//! `presence`, applying the idempotence rules of docs/protocol.md.

use std::collections::BTreeMap;

use crate::protocol::{LeaveReason, ServerMessage, UserInfo, Welcome};

/// A change the roster actually underwent (repeats are filtered out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Someone new is online.
    Joined(UserInfo),
    /// Someone left.
    Left(UserInfo, LeaveReason),
}

/// The online users, by session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    users: BTreeMap<u64, String>,
}

impl Roster {
    /// The roster a `welcome` describes.
    pub fn from_welcome(welcome: &Welcome) -> Self {
        let users = welcome
            .users
            .iter()
            .map(|u| (u.session, u.name.clone()))
            .collect();
        Self { users }
    }

    /// Applies a server message; returns what changed (empty for messages
    /// that are not about presence, and for repeats).
    pub fn apply(&mut self, msg: &ServerMessage) -> Vec<Change> {
        let mut changes = Vec::new();
        match msg {
            ServerMessage::Joined(j) => self.join(j.session, &j.name, &mut changes),
            ServerMessage::Left(l) => self.leave(l.session, l.reason, &mut changes),
            // A named room's presence (section 23) is not the default
            // room's: this roster is the default room's.
            ServerMessage::Presence(p) if p.room.is_none() => {
                for u in &p.joined {
                    self.join(u.session, &u.name, &mut changes);
                }
                for d in &p.left {
                    self.leave(d.session, d.reason, &mut changes);
                }
            }
            _ => {}
        }
        changes
    }

    fn join(&mut self, session: u64, name: &str, changes: &mut Vec<Change>) {
        if self.users.insert(session, name.to_owned()).is_none() {
            changes.push(Change::Joined(UserInfo {
                name: name.to_owned(),
                session,
            }));
        }
    }

    fn leave(&mut self, session: u64, reason: LeaveReason, changes: &mut Vec<Change>) {
        if let Some(name) = self.users.remove(&session) {
            changes.push(Change::Left(UserInfo { name, session }, reason));
        }
    }

    /// How many are online.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether nobody is online.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `session` is online.
    pub fn contains(&self, session: u64) -> bool {
        self.users.contains_key(&session)
    }

    /// The online names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.users.values().cloned().collect();
        names.sort();
        names
    }

    /// The online users, by session.
    pub fn users(&self) -> impl Iterator<Item = UserInfo> + '_ {
        self.users.iter().map(|(&session, name)| UserInfo {
            name: name.clone(),
            session,
        })
    }
}
