//! Who and where: the lookups every handler shares. The account of a
//! connection, its party in direct messages, a member found by name, the
//! named room a member names (and must be in), bans and mutes in force,
//! who may enter an invite-only room.
//!
//! These sit below the handlers (`chat`, `rooms`, `transfer`, `voice`,
//! `moderate`, ...), which call them and never each other's lookups, so
//! that data flows one way through the session code.

use super::Ctx;
use crate::protocol::ErrorCode;
use crate::server::moderation::{Kind, Role};
use crate::server::room::names::{self, skeleton};
use crate::time::now_ms;

impl Ctx<'_> {
    /// The account of the member on `key`: the skeleton of its name if it
    /// logged in with a password or token, else `None` (a guest).
    pub(crate) fn account_of(&self, key: usize) -> Option<String> {
        let member = self.lobby.member(key)?;
        let accounts = self.accounts.as_ref()?;
        accounts
            .owners
            .get(&member.session)
            .map(|n| names::skeleton(n))
    }

    /// The address group of connection `key`, as text.
    pub(crate) fn address_of(&self, key: usize) -> String {
        self.out
            .conns
            .get(key)
            .map(|c| c.addr.to_string())
            .unwrap_or_default()
    }

    /// The ban in force against connection `key` in the room of key
    /// `room_key` (with `account` if it logged in with one), as the text
    /// of a `banned` error.
    pub(crate) fn banned_text(
        &self,
        key: usize,
        room_key: &str,
        account: Option<&str>,
    ) -> Option<String> {
        let address = self.address_of(key);
        let ban = self
            .moderation
            .active(Kind::Ban, room_key, account, &address, now_ms())?;
        Some(match ban.until {
            Some(until) => format!(
                "you are banned here until {} (UTC)",
                crate::time::rfc3339_utc(until)
            ),
            None => "you are banned here".to_owned(),
        })
    }

    /// Whether the member on `key` is muted in the room of key `room_key`.
    pub(crate) fn muted(&self, key: usize, room_key: &str) -> bool {
        if !self.moderation.any(Kind::Mute) {
            return false;
        }
        let account = self.account_of(key);
        let address = self.address_of(key);
        self.moderation
            .active(Kind::Mute, room_key, account.as_deref(), &address, now_ms())
            .is_some()
    }
}

/// The party key of the member on `key`.
pub(crate) fn party_of(ctx: &Ctx<'_>, key: usize) -> Option<String> {
    if let Some(account) = ctx.account_of(key) {
        return Some(format!("a:{account}"));
    }
    ctx.lobby
        .member(key)
        .map(|m| format!("g:{}", skeleton(&m.name)))
}

/// Who `name` is: online (key, session, shown name, party), or a
/// registered name that is away (party only).
pub(crate) struct Peer {
    /// Its connection and session, when online.
    pub online: Option<(usize, u64)>,
    /// Its name as shown.
    pub name: String,
    /// Its party key.
    pub party: String,
}

/// Finds `name` online, or registered and away (or, `for_history`, a
/// guest that was).
pub(crate) fn peer(ctx: &Ctx<'_>, name: &str, for_history: bool) -> Option<Peer> {
    if let Some((key, info)) = ctx.room.find_by_name(name) {
        let (session, shown) = (info.session, info.name.clone());
        let party = party_of(ctx, key)?;
        return Some(Peer {
            online: Some((key, session)),
            name: shown,
            party,
        });
    }
    let account = skeleton(name.trim());
    let party = if ctx.dms.registered.contains(&account) {
        format!("a:{account}")
    } else if for_history {
        // A guest that is gone: what guests of that name wrote.
        format!("g:{account}")
    } else {
        return None;
    };
    Some(Peer {
        online: None,
        name: name.trim().to_owned(),
        party,
    })
}

/// The id of named room `raw` if member `key` is in it; else answers
/// `not_in_room` (also for a room that does not exist: being told which
/// rooms exist is what `rooms` is for).
pub(crate) fn room_of(
    ctx: &mut Ctx<'_>,
    key: usize,
    raw: &str,
    reference: Option<u64>,
) -> Option<usize> {
    let id = ctx
        .rooms
        .find(raw)
        .filter(|&id| ctx.rooms.get(id).is_some_and(|r| r.member(key).is_some()));
    if id.is_none() {
        let why = format!("you are not in a room named {raw}");
        match reference {
            Some(_) => ctx.protocol_error(key, ErrorCode::NotInRoom, &why, reference),
            None => ctx.room_error(key, ErrorCode::NotInRoom, &why, raw),
        }
    }
    id
}

/// Whether member `key` may join invite-only room `room_key`: invited, a
/// moderator or owner of it, or an operator.
pub(crate) fn may_enter(ctx: &Ctx<'_>, key: usize, room_key: &str) -> bool {
    let account = ctx.account_of(key);
    let session = ctx.lobby.member(key).map_or(0, |m| m.session);
    ctx.moderation.is_operator(account.as_deref())
        || ctx.moderation.role(room_key, account.as_deref()) >= Role::Moderator
        || ctx
            .moderation
            .is_invited(room_key, account.as_deref(), session)
}
