//! `kick`, `ban`, `unban`, `mute`, `unmute`, `set_role`, `delete`: keeping
//! order in a room (docs/protocol.md section 24).
//!
//! Rules: an action needs the role `moderator` or `owner` in its room
//! (`set_role`: `owner`), the server's operators have every power
//! everywhere, and an action aimed at a member needs a higher role than
//! that member's. Roles belong to registered names (a guest has none). In
//! the default room a kick or ban removes the member from the server; in a
//! named room, from that room. Each action is told to the room
//! (`moderated`), recorded in the store's `moderation_log`, and bans,
//! mutes and roles are kept there across restarts.

use super::Ctx;
use crate::protocol::{
    Deleted, ErrorCode, LeaveReason, Moderate, Moderated, RoomName, ServerMessage, SetRole,
    encode_server,
};
use crate::server::moderation::{self, Kind, Role, Sanction, Target};
use crate::server::room::{Room, names};
use crate::server::store::StoreRequest;
use crate::time::now_ms;

/// Where an action happens.
#[derive(Debug, Clone, Copy)]
enum Where {
    /// The default room.
    Default,
    /// A named room, by id.
    Named(usize),
}

impl Ctx<'_> {
    /// The room an action names (absent: the default room), if the actor
    /// is in it; else answers `not_in_room`.
    fn place(&mut self, key: usize, room: Option<&str>) -> Option<Where> {
        match room {
            None => Some(Where::Default),
            Some(raw) => super::rooms::room_of(self, key, raw, None).map(Where::Named),
        }
    }

    fn room_at(&self, at: Where) -> Option<&Room> {
        match at {
            Where::Default => Some(self.room),
            Where::Named(id) => self.rooms.get(id),
        }
    }

    fn room_at_mut(&mut self, at: Where) -> Option<&mut Room> {
        match at {
            Where::Default => Some(self.room),
            Where::Named(id) => self.rooms.get_mut(id),
        }
    }

    /// Queues `frame` for everyone in room `at`.
    fn broadcast_at(&mut self, at: Where, frame: &bytes::Bytes) {
        match at {
            Where::Default => self.room.broadcast(frame, &mut self.out),
            Where::Named(id) => {
                if let Some(room) = self.rooms.get(id) {
                    room.broadcast(frame, &mut self.out);
                }
            }
        }
    }

    /// The moderation key of a room: "" or its name's skeleton.
    fn room_key(&self, at: Where) -> String {
        self.room_at(at)
            .and_then(Room::name)
            .map(names::skeleton)
            .unwrap_or_default()
    }

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
    fn address_of(&self, key: usize) -> String {
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
        let account = self.account_of(key);
        let address = self.address_of(key);
        self.moderation
            .active(Kind::Mute, room_key, account.as_deref(), &address, now_ms())
            .is_some()
    }

    /// Tells room `at` of an action and records it.
    fn announce(&mut self, at: Where, mut told: Moderated, detail: String) {
        let room_key = self.room_key(at);
        told.room = self.room_at(at).and_then(Room::name).map(str::to_owned);
        let frame = encode_server(&ServerMessage::Moderated(told.clone()));
        self.broadcast_at(at, &frame);
        tracing::info!(
            action = %told.action,
            target = %told.name,
            by = %told.by,
            room = %room_key,
            "moderation"
        );
        if let Some(store) = self.store {
            store.submit(StoreRequest::Log {
                ts: told.ts,
                room: room_key,
                actor: told.by,
                action: told.action,
                target: told.name,
                detail,
            });
        }
    }
}

/// Checks that the member on `key` may act in `at` on a member of role
/// `target` (needs at least `needs` and, for a target, more than its
/// role); answers `forbidden` if not.
fn allowed(ctx: &mut Ctx<'_>, key: usize, at: Where, needs: Role, target: Option<Role>) -> bool {
    let account = ctx.account_of(key);
    let room_key = ctx.room_key(at);
    let mine = ctx.moderation.role(&room_key, account.as_deref());
    let operator = ctx.moderation.is_operator(account.as_deref());
    let ok = mine >= needs && target.is_none_or(|t| operator || t < mine);
    if !ok {
        let why = format!(
            "your role here ({}) does not allow this",
            if operator { "operator" } else { mine.as_str() }
        );
        ctx.protocol_error(key, ErrorCode::Forbidden, &why, None);
    }
    ok
}

/// The `reason` of an action, checked: at most 200 bytes, one line.
fn reason_of(ctx: &mut Ctx<'_>, key: usize, reason: Option<String>) -> Result<Option<String>, ()> {
    match reason {
        Some(r) if r.len() > moderation::MAX_REASON_BYTES || r.chars().any(char::is_control) => {
            let why = format!(
                "a reason is at most {} bytes, without control characters",
                moderation::MAX_REASON_BYTES
            );
            ctx.protocol_error(key, ErrorCode::RoomInvalid, &why, None);
            Err(())
        }
        Some(r) if r.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// A member of room `at` found by name: (key, name, session, role, account).
struct Found {
    key: usize,
    name: String,
    role: Role,
    account: Option<String>,
}

fn find(ctx: &mut Ctx<'_>, key: usize, at: Where, name: &str) -> Option<Found> {
    let found = ctx
        .room_at(at)
        .and_then(|r| r.find_by_name(name))
        .map(|(k, u)| (k, u.name.clone()));
    let Some((target, shown)) = found else {
        let why = format!("nobody named {name} is in this room");
        ctx.protocol_error(key, ErrorCode::NoSuchMember, &why, None);
        return None;
    };
    let account = ctx.account_of(target);
    let room_key = ctx.room_key(at);
    let role = ctx.moderation.role(&room_key, account.as_deref());
    Some(Found {
        key: target,
        name: shown,
        role,
        account,
    })
}

fn told(action: &str, name: &str, by: &str, reason: Option<String>) -> Moderated {
    Moderated {
        action: action.to_owned(),
        name: name.to_owned(),
        by: by.to_owned(),
        room: None,
        reason,
        until: None,
        role: None,
        ts: now_ms(),
    }
}

fn actor_name(ctx: &Ctx<'_>, key: usize) -> String {
    ctx.lobby
        .member(key)
        .map(|m| m.name.clone())
        .unwrap_or_default()
}

/// Takes `target` out of room `at`: off the server for the default room.
fn remove(ctx: &mut Ctx<'_>, at: Where, target: usize, reason: LeaveReason) {
    match at {
        Where::Default => {
            // Lingers until its `moderated` (queued above) is written.
            if let Some(conn) = ctx.out.conns.get_mut(target) {
                conn.close_reason = Some(reason);
            }
            ctx.out.doom(target, reason);
        }
        Where::Named(id) => {
            let name = ctx
                .rooms
                .get(id)
                .and_then(Room::name)
                .unwrap_or_default()
                .to_owned();
            ctx.rooms.exit(id, target, reason);
            ctx.send(target, &ServerMessage::RoomParted(RoomName { room: name }));
        }
    }
}

/// `kick` and `ban`.
pub(crate) fn kick(ctx: &mut Ctx<'_>, key: usize, m: Moderate, ban: bool) {
    let Ok(reason) = reason_of(ctx, key, m.reason) else {
        return;
    };
    let Some(at) = ctx.place(key, m.room.as_deref()) else {
        return;
    };
    let Some(found) = find(ctx, key, at, &m.name) else {
        return;
    };
    if !allowed(ctx, key, at, Role::Moderator, Some(found.role)) {
        return;
    }
    let by = actor_name(ctx, key);
    let action = if ban { "ban" } else { "kick" };
    let mut note = told(action, &found.name, &by, reason.clone());
    let mut detail = reason.unwrap_or_default();
    if ban {
        let now = now_ms();
        let until = moderation::end_of(Kind::Ban, found.account.is_some(), m.minutes, now);
        let target = match &found.account {
            Some(a) => Target::Account(a.clone()),
            None => Target::Address(ctx.address_of(found.key)),
        };
        let sanction = Sanction {
            kind: Kind::Ban,
            room: ctx.room_key(at),
            target,
            name: found.name.clone(),
            until,
        };
        ctx.moderation.add(sanction.clone());
        if let Some(store) = ctx.store {
            store.submit(StoreRequest::SaveSanction(sanction));
        }
        note.until = until;
        detail = format!(
            "{detail} until={}",
            until.map_or("never".into(), |u| u.to_string())
        );
    }
    ctx.announce(at, note, detail);
    let leave = if ban {
        LeaveReason::Banned
    } else {
        LeaveReason::Kicked
    };
    remove(ctx, at, found.key, leave);
}

/// `mute`.
pub(crate) fn mute(ctx: &mut Ctx<'_>, key: usize, m: Moderate) {
    let Ok(reason) = reason_of(ctx, key, m.reason) else {
        return;
    };
    let Some(at) = ctx.place(key, m.room.as_deref()) else {
        return;
    };
    let Some(found) = find(ctx, key, at, &m.name) else {
        return;
    };
    if !allowed(ctx, key, at, Role::Moderator, Some(found.role)) {
        return;
    }
    let until = moderation::end_of(Kind::Mute, found.account.is_some(), m.minutes, now_ms());
    let target = match &found.account {
        Some(a) => Target::Account(a.clone()),
        None => Target::Address(ctx.address_of(found.key)),
    };
    let sanction = Sanction {
        kind: Kind::Mute,
        room: ctx.room_key(at),
        target,
        name: found.name.clone(),
        until,
    };
    ctx.moderation.add(sanction.clone());
    if let Some(store) = ctx.store {
        store.submit(StoreRequest::SaveSanction(sanction));
    }
    let by = actor_name(ctx, key);
    let mut note = told("mute", &found.name, &by, reason.clone());
    note.until = until;
    let detail = format!(
        "{} until={}",
        reason.unwrap_or_default(),
        until.map_or("never".into(), |u| u.to_string())
    );
    ctx.announce(at, note, detail);
}

/// `unban` and `unmute`: by the name the sanction was given to.
pub(crate) fn lift(ctx: &mut Ctx<'_>, key: usize, m: Moderate, kind: Kind) {
    let Some(at) = ctx.place(key, m.room.as_deref()) else {
        return;
    };
    if !allowed(ctx, key, at, Role::Moderator, None) {
        return;
    }
    let room_key = ctx.room_key(at);
    let lifted = ctx.moderation.lift(kind, &room_key, &m.name);
    if lifted.is_empty() {
        let why = format!("{} is not {}ned here", m.name, kind.as_str());
        ctx.protocol_error(key, ErrorCode::NoSuchMember, &why, None);
        return;
    }
    let name = lifted[0].name.clone();
    if let Some(store) = ctx.store {
        for s in lifted {
            store.submit(StoreRequest::LiftSanction(s));
        }
    }
    let by = actor_name(ctx, key);
    let action = match kind {
        Kind::Ban => "unban",
        Kind::Mute => "unmute",
    };
    ctx.announce(at, told(action, &name, &by, None), String::new());
}

/// `set_role`: an owner gives a registered member of the room a role.
pub(crate) fn set_role(ctx: &mut Ctx<'_>, key: usize, r: SetRole) {
    let Some(role) = Role::parse(&r.role) else {
        let why = format!("no role {:?}: owner, moderator or member", r.role);
        ctx.protocol_error(key, ErrorCode::BadMessage, &why, None);
        return;
    };
    let Some(at) = ctx.place(key, r.room.as_deref()) else {
        return;
    };
    let Some(found) = find(ctx, key, at, &r.name) else {
        return;
    };
    if !allowed(ctx, key, at, Role::Owner, Some(found.role)) {
        return;
    }
    let Some(account) = found.account else {
        let why = format!(
            "{} is a guest: roles belong to registered names",
            found.name
        );
        ctx.protocol_error(key, ErrorCode::NoSuchMember, &why, None);
        return;
    };
    let room_key = ctx.room_key(at);
    ctx.moderation.set_role(&room_key, &account, role);
    if let Some(store) = ctx.store {
        store.submit(StoreRequest::SaveRole {
            room: room_key,
            account,
            role,
        });
    }
    let by = actor_name(ctx, key);
    let mut note = told("role", &found.name, &by, None);
    note.role = Some(role.as_str().to_owned());
    ctx.announce(at, note, role.as_str().to_owned());
}

/// `delete`: chat `id` disappears for everyone, from the history too. Its
/// author may delete it; so may the room's moderators. The chat must be
/// among those the room keeps in memory (its newest `history_len`).
pub(crate) fn delete(ctx: &mut Ctx<'_>, key: usize, id: u64) {
    let mut at = ctx.room.kept_chat(id).map(|c| (Where::Default, c.session));
    if at.is_none() {
        for &room in ctx.rooms.of(key) {
            if let Some(c) = ctx.rooms.get(room).and_then(|r| r.kept_chat(id)) {
                at = Some((Where::Named(room), c.session));
                break;
            }
        }
    }
    let Some((at, author)) = at else {
        let why = format!(
            "no chat {id} among the newest {} of your rooms",
            ctx.config.history_len
        );
        ctx.protocol_error(key, ErrorCode::NoSuchMember, &why, None);
        return;
    };
    let mine = ctx.lobby.member(key).is_some_and(|m| m.session == author);
    if !mine && !allowed(ctx, key, at, Role::Moderator, None) {
        return;
    }
    let Some(room) = ctx.room_at_mut(at) else {
        return;
    };
    room.forget_chat(id);
    let name = room.name().map(str::to_owned);
    let by = actor_name(ctx, key);
    let frame = encode_server(&ServerMessage::Deleted(Deleted {
        id,
        room: name,
        by: by.clone(),
    }));
    ctx.broadcast_at(at, &frame);
    if let Some(store) = ctx.store {
        store.submit(StoreRequest::DeleteChat { id });
        store.submit(StoreRequest::Log {
            ts: now_ms(),
            room: ctx.room_key(at),
            actor: by,
            action: "delete".into(),
            target: id.to_string(),
            detail: String::new(),
        });
    }
}
