//! Moderation state (docs/protocol.md section 24): roles per room, bans and
//! mutes with their ends, the server's operators. No I/O: the handlers
//! (`session/moderate.rs`) check and change it, and send what changed to
//! the store thread, which keeps it across restarts (with the log of every
//! action).
//!
//! A room is named here by its key: `""` for the default room, else the
//! confusable skeleton of the room's name (as the store's `rooms` table).
//! A member is named by its account, the skeleton of its registered name:
//! roles and account bans need a registered name (a guest could be anyone
//! next time); a guest is banned by its address (IPv4, or IPv6 /64) and
//! only for a while.

use std::collections::{HashMap, HashSet};

use crate::server::room::names::skeleton;

/// Default length of an address ban (a guest's), in minutes.
pub const DEFAULT_ADDRESS_BAN_MINUTES: u32 = 60;
/// Longest ban or mute that has an end, in minutes (30 days); longer asks
/// are cut to it. A registered name's ban without `minutes` has no end.
pub const MAX_MINUTES: u32 = 30 * 24 * 60;
/// Longest `reason`, in bytes.
pub const MAX_REASON_BYTES: usize = 200;

/// A member's role in a room, lowest first: an action needs a higher role
/// than its target's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Anyone in the room.
    Member,
    /// May kick, ban, unban, mute, unmute, delete any chat, set the topic.
    Moderator,
    /// A moderator that may also give and take roles.
    Owner,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Moderator => "moderator",
            Self::Owner => "owner",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(Self::Member),
            "moderator" => Some(Self::Moderator),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }
}

/// Ban or mute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Kept out of the room (the default room: off the server).
    Ban,
    /// In the room, but its chats are refused.
    Mute,
}

impl Kind {
    /// The store's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ban => "ban",
            Self::Mute => "mute",
        }
    }
}

/// Who a sanction is against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A registered name, by its skeleton.
    Account(String),
    /// A guest's address group, as text (`192.0.2.7`, or an IPv6 /64).
    Address(String),
}

/// A ban or a mute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanction {
    /// Ban or mute.
    pub kind: Kind,
    /// The room's key.
    pub room: String,
    /// Against whom.
    pub target: Target,
    /// The name it was given to, as shown (what `unban NAME` finds).
    pub name: String,
    /// When it ends, ms since the Unix epoch; `None`: never.
    pub until: Option<i64>,
}

/// Roles, sanctions and operators.
#[derive(Debug, Default)]
pub struct Moderation {
    /// (room key, account) -> role, for roles other than `Member`.
    roles: HashMap<(String, String), Role>,
    /// Every ban and mute in force (or ended and not yet swept).
    sanctions: Vec<Sanction>,
    /// Skeletons of the operators' names.
    operators: HashSet<String>,
    /// Room key -> who was invited to it: `a:ACCOUNT` for a registered
    /// member (kept in the store), `s:SESSION` for a guest (its invitation
    /// ends with its session: a guest name is anyone's next time).
    invites: HashMap<String, HashSet<String>>,
}

impl Moderation {
    /// The state for `operators` (names from the configuration).
    pub fn new(operators: &[String]) -> Self {
        Self {
            operators: operators.iter().map(|n| skeleton(n)).collect(),
            ..Self::default()
        }
    }

    /// Restores a role read from the store.
    pub fn load_role(&mut self, room: String, account: String, role: Role) {
        self.set_role(&room, &account, role);
    }

    /// Records that `invitee` (see [`Moderation::invites`]'s keys) may
    /// join invite-only room `room`. Returns whether it is new.
    pub fn invite(&mut self, room: &str, invitee: String) -> bool {
        self.invites
            .entry(room.to_owned())
            .or_default()
            .insert(invitee)
    }

    /// Whether `account` (registered) or `session` (a guest) was invited
    /// to room `room`.
    pub fn is_invited(&self, room: &str, account: Option<&str>, session: u64) -> bool {
        let Some(set) = self.invites.get(room) else {
            return false;
        };
        match account {
            Some(a) => set.contains(&format!("a:{a}")),
            None => set.contains(&format!("s:{session}")),
        }
    }

    /// Restores a sanction read from the store.
    pub fn load_sanction(&mut self, sanction: Sanction) {
        self.sanctions.push(sanction);
    }

    /// The role of `account` (None: a guest) in room `room`.
    pub fn role(&self, room: &str, account: Option<&str>) -> Role {
        let Some(account) = account else {
            return Role::Member;
        };
        if self.operators.contains(account) {
            return Role::Owner;
        }
        self.roles
            .get(&(room.to_owned(), account.to_owned()))
            .copied()
            .unwrap_or(Role::Member)
    }

    /// Whether `account` is an operator.
    pub fn is_operator(&self, account: Option<&str>) -> bool {
        account.is_some_and(|a| self.operators.contains(a))
    }

    /// Gives `account` `role` in `room` (`Member` removes its role).
    pub fn set_role(&mut self, room: &str, account: &str, role: Role) {
        let key = (room.to_owned(), account.to_owned());
        if role == Role::Member {
            self.roles.remove(&key);
        } else {
            self.roles.insert(key, role);
        }
    }

    /// The `kind` sanction in force in `room` against `account` (if
    /// registered) or `address`, at `now` (ms).
    pub fn active(
        &self,
        kind: Kind,
        room: &str,
        account: Option<&str>,
        address: &str,
        now: i64,
    ) -> Option<&Sanction> {
        self.sanctions.iter().find(|s| {
            s.kind == kind
                && s.room == room
                && s.until.is_none_or(|u| u > now)
                && match &s.target {
                    Target::Account(a) => account == Some(a.as_str()),
                    Target::Address(a) => a == address,
                }
        })
    }

    /// Adds (or replaces) a sanction.
    pub fn add(&mut self, sanction: Sanction) {
        self.sanctions.retain(|s| {
            !(s.kind == sanction.kind && s.room == sanction.room && s.target == sanction.target)
        });
        self.sanctions.push(sanction);
    }

    /// Lifts the `kind` sanctions of `room` given to `name` (or a
    /// look-alike of it); returns what was lifted.
    pub fn lift(&mut self, kind: Kind, room: &str, name: &str) -> Vec<Sanction> {
        let key = skeleton(name);
        let (lifted, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sanctions)
            .into_iter()
            .partition(|s| s.kind == kind && s.room == room && skeleton(&s.name) == key);
        self.sanctions = kept;
        lifted
    }

    /// Whether any `kind` sanction exists (the fast path of every chat:
    /// with no mute anywhere, nothing is looked up).
    pub fn any(&self, kind: Kind) -> bool {
        self.sanctions.iter().any(|s| s.kind == kind)
    }

    /// Forgets the sanctions that ended before `now`.
    pub fn sweep(&mut self, now: i64) {
        self.sanctions.retain(|s| s.until.is_none_or(|u| u > now));
    }
}

/// When a sanction of `minutes` (None: the default) given at `now` ends:
/// `None` for never (only a registered name's ban without `minutes`).
pub fn end_of(kind: Kind, registered: bool, minutes: Option<u32>, now: i64) -> Option<i64> {
    let minutes = match (minutes, kind, registered) {
        (Some(m), _, _) => m.clamp(1, MAX_MINUTES),
        (None, Kind::Ban, true) => return None,
        (None, Kind::Ban, false) => DEFAULT_ADDRESS_BAN_MINUTES,
        (None, Kind::Mute, _) => DEFAULT_ADDRESS_BAN_MINUTES,
    };
    Some(now + i64::from(minutes) * 60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(room: &str, target: Target, name: &str, until: Option<i64>) -> Sanction {
        Sanction {
            kind: Kind::Ban,
            room: room.into(),
            target,
            name: name.into(),
            until,
        }
    }

    #[test]
    fn operators_own_every_room_and_roles_are_per_room() {
        let mut m = Moderation::new(&["root".to_owned()]);
        assert_eq!(m.role("", Some(&skeleton("root"))), Role::Owner);
        assert_eq!(m.role("dev", None), Role::Member);
        m.set_role("dev", "ann", Role::Moderator);
        assert_eq!(m.role("dev", Some("ann")), Role::Moderator);
        assert_eq!(m.role("ops", Some("ann")), Role::Member);
        m.set_role("dev", "ann", Role::Member);
        assert_eq!(m.role("dev", Some("ann")), Role::Member);
    }

    #[test]
    fn a_ban_holds_until_its_end_for_its_account_or_address_in_its_room_only() {
        let mut m = Moderation::default();
        m.add(ban("", Target::Account("bob".into()), "bob", None));
        m.add(ban(
            "dev",
            Target::Address("192.0.2.7".into()),
            "guest",
            Some(1000),
        ));
        assert!(m.active(Kind::Ban, "", Some("bob"), "x", 5).is_some());
        assert!(m.active(Kind::Ban, "dev", Some("bob"), "x", 5).is_none());
        assert!(m.active(Kind::Mute, "", Some("bob"), "x", 5).is_none());
        assert!(m.active(Kind::Ban, "dev", None, "192.0.2.7", 999).is_some());
        assert!(
            m.active(Kind::Ban, "dev", None, "192.0.2.7", 1000)
                .is_none()
        );
        m.sweep(1000);
        assert_eq!(m.lift(Kind::Ban, "", "bob").len(), 1);
        assert!(m.active(Kind::Ban, "", Some("bob"), "x", 5).is_none());
    }

    #[test]
    fn the_default_ends_are_forever_for_accounts_and_an_hour_for_addresses() {
        assert_eq!(end_of(Kind::Ban, true, None, 0), None);
        assert_eq!(end_of(Kind::Ban, false, None, 0), Some(3_600_000));
        assert_eq!(end_of(Kind::Mute, true, Some(2), 0), Some(120_000));
        assert_eq!(
            end_of(Kind::Ban, true, Some(u32::MAX), 0),
            Some(i64::from(MAX_MINUTES) * 60_000)
        );
    }
}
