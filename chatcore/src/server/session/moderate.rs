//! `kick`, `ban`, `unban`, `mute`, `unmute`, `set_role`, `delete`,
//! `room_mode`, `invite`: keeping order in a room (docs/protocol.md
//! sections 24 and 23.5).
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
    Deleted, ErrorCode, Invite, LeaveReason, Moderate, Moderated, RoomMode, RoomName,
    ServerMessage, SetRole, encode_server,
};
use crate::server::moderation::{self, Kind, Role, Sanction, Target};
use crate::server::room::{Room, names};
use crate::server::store::StoreRequest;
use crate::time::now_ms;

/// Who acts: a member, or the embedding program through
/// `ServerHandle`, which has every power (like an operator) and is named
/// `server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Actor {
    /// The member on this connection.
    Member(usize),
    /// The embedding program.
    Server,
}

/// Why an action was refused: the `error` a member gets, or what
/// `ServerHandle` returns.
pub(crate) type Refused = (ErrorCode, String);

/// Where an action happens.
#[derive(Debug, Clone, Copy)]
enum Where {
    /// The default room.
    Default,
    /// A named room, by id.
    Named(usize),
}

impl Ctx<'_> {
    /// The room an action names (absent: the default room); a member must
    /// be in it.
    fn place(&self, actor: Actor, room: Option<&str>) -> Result<Where, Refused> {
        let Some(raw) = room else {
            return Ok(Where::Default);
        };
        let id = self.rooms.find(raw).filter(|&id| match actor {
            Actor::Server => true,
            Actor::Member(key) => self.rooms.get(id).is_some_and(|r| r.member(key).is_some()),
        });
        id.map(Where::Named).ok_or_else(|| {
            (
                ErrorCode::NotInRoom,
                format!("you are not in a room named {raw}"),
            )
        })
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
    fn moderation_key(&self, at: Where) -> String {
        self.room_at(at)
            .and_then(Room::name)
            .map(names::skeleton)
            .unwrap_or_default()
    }

    /// Tells room `at` of an action and records it.
    fn announce(&mut self, at: Where, mut told: Moderated, detail: String) {
        let room_key = self.moderation_key(at);
        told.room = self.room_at(at).and_then(Room::name).map(str::to_owned);
        let frame = encode_server(&ServerMessage::Moderated(told.clone()));
        self.broadcast_at(at, &frame);
        self.hooks.on_moderated(&told);
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

/// Checks that `actor` may act in `at` on a member of role `target` (with
/// whether it is an operator): needs at least `needs` and, for a target,
/// a higher role than its; nobody acts on an operator; the server and the
/// operators may act on anyone else.
fn allowed(
    ctx: &Ctx<'_>,
    actor: Actor,
    at: Where,
    needs: Role,
    target: Option<(Role, bool)>,
) -> Result<(), Refused> {
    if target.is_some_and(|(_, operator)| operator) {
        let why = "nobody can do this to one of the server's operators".to_owned();
        return Err((ErrorCode::Forbidden, why));
    }
    let Actor::Member(key) = actor else {
        return Ok(());
    };
    let account = ctx.account_of(key);
    let room_key = ctx.moderation_key(at);
    let mine = ctx.moderation.role(&room_key, account.as_deref());
    let operator = ctx.moderation.is_operator(account.as_deref());
    let ok = mine >= needs && target.is_none_or(|(role, _)| operator || role < mine);
    if ok {
        return Ok(());
    }
    let why = format!(
        "your role here ({}) does not allow this",
        if operator { "operator" } else { mine.as_str() }
    );
    Err((ErrorCode::Forbidden, why))
}

/// The `reason` of an action, checked: at most 200 bytes, one line.
fn reason_of(reason: Option<String>) -> Result<Option<String>, Refused> {
    match reason {
        Some(r) if r.len() > moderation::MAX_REASON_BYTES || r.chars().any(char::is_control) => {
            let why = format!(
                "a reason is at most {} bytes, without control characters",
                moderation::MAX_REASON_BYTES
            );
            Err((ErrorCode::RoomInvalid, why))
        }
        Some(r) if r.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// A member of a room, found by name.
struct Found {
    /// Its connection.
    key: usize,
    /// Its name as shown.
    name: String,
    /// Its role in the room.
    role: Role,
    /// Whether it is an operator (nobody may act on one).
    operator: bool,
    /// Its account, if it logged in with one.
    account: Option<String>,
}

fn find(ctx: &Ctx<'_>, at: Where, name: &str) -> Result<Found, Refused> {
    let found = ctx
        .room_at(at)
        .and_then(|r| r.find_by_name(name))
        .map(|(k, u)| (k, u.name.clone()));
    let Some((target, shown)) = found else {
        let why = format!("nobody named {name} is in this room");
        return Err((ErrorCode::NoSuchMember, why));
    };
    let account = ctx.account_of(target);
    let room_key = ctx.moderation_key(at);
    let role = ctx.moderation.role(&room_key, account.as_deref());
    Ok(Found {
        key: target,
        name: shown,
        role,
        operator: ctx.moderation.is_operator(account.as_deref()),
        account,
    })
}

/// The room an action names and the member it is aimed at, if `actor`
/// may act on it there with at least role `needs`.
fn target(
    ctx: &Ctx<'_>,
    actor: Actor,
    room: Option<&str>,
    name: &str,
    needs: Role,
) -> Result<(Where, Found), Refused> {
    let at = ctx.place(actor, room)?;
    let found = find(ctx, at, name)?;
    allowed(ctx, actor, at, needs, Some((found.role, found.operator)))?;
    Ok((at, found))
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

fn actor_name(ctx: &Ctx<'_>, actor: Actor) -> String {
    match actor {
        Actor::Server => "server".to_owned(),
        Actor::Member(key) => ctx
            .lobby
            .member(key)
            .map(|m| m.name.clone())
            .unwrap_or_default(),
    }
}

/// Answers a member's refused action with its `error`.
pub(crate) fn answer(ctx: &mut Ctx<'_>, key: usize, result: Result<(), Refused>) {
    if let Err((code, why)) = result {
        ctx.protocol_error(key, code, &why, None);
    }
}

/// Answers a member's refused action on room `room` with its `error`,
/// naming the room.
pub(crate) fn answer_in(ctx: &mut Ctx<'_>, key: usize, room: &str, result: Result<(), Refused>) {
    if let Err((code, why)) = result {
        ctx.room_error(key, code, &why, room);
    }
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
            let name = ctx.rooms.name_of(id);
            ctx.rooms.exit(id, target, reason);
            super::voice::left_room(ctx, target, id);
            ctx.send(target, &ServerMessage::RoomParted(RoomName { room: name }));
        }
    }
}

/// `kick` and `ban`.
pub(crate) fn kick(ctx: &mut Ctx<'_>, actor: Actor, m: Moderate, ban: bool) -> Result<(), Refused> {
    let reason = reason_of(m.reason)?;
    let (at, found) = target(ctx, actor, m.room.as_deref(), &m.name, Role::Moderator)?;
    let by = actor_name(ctx, actor);
    let action = if ban { "ban" } else { "kick" };
    let mut note = told(action, &found.name, &by, reason.clone());
    let mut detail = reason.unwrap_or_default();
    if ban {
        let until = moderation::end_of(Kind::Ban, found.account.is_some(), m.minutes, now_ms());
        let sanction = sanction_for(ctx, Kind::Ban, at, &found, until);
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
    Ok(())
}

/// A ban or mute of `found` in room `at`: by account when it has one, else
/// by its address.
fn sanction_for(
    ctx: &Ctx<'_>,
    kind: Kind,
    at: Where,
    found: &Found,
    until: Option<i64>,
) -> Sanction {
    let target = match &found.account {
        Some(a) => Target::Account(a.clone()),
        None => Target::Address(ctx.address_of(found.key)),
    };
    Sanction {
        kind,
        room: ctx.moderation_key(at),
        target,
        name: found.name.clone(),
        until,
    }
}

/// `mute`.
pub(crate) fn mute(ctx: &mut Ctx<'_>, actor: Actor, m: Moderate) -> Result<(), Refused> {
    let reason = reason_of(m.reason)?;
    let (at, found) = target(ctx, actor, m.room.as_deref(), &m.name, Role::Moderator)?;
    let until = moderation::end_of(Kind::Mute, found.account.is_some(), m.minutes, now_ms());
    let sanction = sanction_for(ctx, Kind::Mute, at, &found, until);
    ctx.moderation.add(sanction.clone());
    if let Some(store) = ctx.store {
        store.submit(StoreRequest::SaveSanction(sanction));
    }
    let by = actor_name(ctx, actor);
    let mut note = told("mute", &found.name, &by, reason.clone());
    note.until = until;
    let detail = format!(
        "{} until={}",
        reason.unwrap_or_default(),
        until.map_or("never".into(), |u| u.to_string())
    );
    ctx.announce(at, note, detail);
    Ok(())
}

/// `unban` and `unmute`: by the name the sanction was given to.
pub(crate) fn lift(
    ctx: &mut Ctx<'_>,
    actor: Actor,
    m: Moderate,
    kind: Kind,
) -> Result<(), Refused> {
    let at = ctx.place(actor, m.room.as_deref())?;
    allowed(ctx, actor, at, Role::Moderator, None)?;
    let room_key = ctx.moderation_key(at);
    let lifted = ctx.moderation.lift(kind, &room_key, &m.name);
    let Some(name) = lifted.first().map(|s| s.name.clone()) else {
        let why = format!("{} is not {}ned here", m.name, kind.as_str());
        return Err((ErrorCode::NoSuchMember, why));
    };
    if let Some(store) = ctx.store {
        for s in lifted {
            store.submit(StoreRequest::LiftSanction(s));
        }
    }
    let by = actor_name(ctx, actor);
    let action = match kind {
        Kind::Ban => "unban",
        Kind::Mute => "unmute",
    };
    ctx.announce(at, told(action, &name, &by, None), String::new());
    Ok(())
}

/// `set_role`: an owner gives a registered member of the room a role.
pub(crate) fn set_role(ctx: &mut Ctx<'_>, actor: Actor, r: SetRole) -> Result<(), Refused> {
    let Some(role) = Role::parse(&r.role) else {
        let why = format!("no role {:?}: owner, moderator or member", r.role);
        return Err((ErrorCode::BadMessage, why));
    };
    let (at, found) = target(ctx, actor, r.room.as_deref(), &r.name, Role::Owner)?;
    let Some(account) = found.account.clone() else {
        let why = format!(
            "{} is a guest: roles belong to registered names",
            found.name
        );
        return Err((ErrorCode::NoSuchMember, why));
    };
    let room_key = ctx.moderation_key(at);
    ctx.moderation.set_role(&room_key, &account, role);
    if let Some(store) = ctx.store {
        store.submit(StoreRequest::SaveRole {
            room: room_key,
            account,
            role,
        });
    }
    let by = actor_name(ctx, actor);
    let mut note = told("role", &found.name, &by, None);
    note.role = Some(role.as_str().to_owned());
    ctx.announce(at, note, role.as_str().to_owned());
    Ok(())
}

/// The named room `room` (the default room is always open), for an action
/// on the room itself.
fn named(ctx: &Ctx<'_>, actor: Actor, room: &str) -> Result<usize, Refused> {
    match ctx.place(actor, Some(room))? {
        Where::Named(id) => Ok(id),
        Where::Default => Err((ErrorCode::RoomInvalid, "no such room".to_owned())),
    }
}

/// `room_mode`: a moderator (or owner, or operator) makes named room
/// `room` invite-only or open again; its members are told (`room_mode`
/// with `by`), the store keeps it.
pub(crate) fn room_mode(ctx: &mut Ctx<'_>, actor: Actor, m: RoomMode) -> Result<(), Refused> {
    let id = named(ctx, actor, &m.room)?;
    allowed(ctx, actor, Where::Named(id), Role::Moderator, None)?;
    let by = actor_name(ctx, actor);
    let Some(room) = ctx.rooms.get_mut(id) else {
        return Ok(());
    };
    if room.invite_only() == m.invite_only {
        return Ok(());
    }
    room.set_invite_only(m.invite_only);
    let name = room.name().unwrap_or_default().to_owned();
    let topic = room.topic().to_owned();
    let frame = encode_server(&ServerMessage::RoomMode(RoomMode {
        room: name.clone(),
        invite_only: m.invite_only,
        by: Some(by.clone()),
    }));
    room.broadcast(&frame, &mut ctx.out);
    let room_key = names::skeleton(&name);
    if let Some(store) = ctx.store {
        store.submit(StoreRequest::SaveRoom {
            name,
            skeleton: room_key.clone(),
            topic,
            invite_only: m.invite_only,
        });
        store.submit(StoreRequest::Log {
            ts: now_ms(),
            room: room_key.clone(),
            actor: by.clone(),
            action: "room_mode".into(),
            target: String::new(),
            detail: if m.invite_only { "invite_only" } else { "open" }.into(),
        });
    }
    tracing::info!(room = %room_key, by = %by, invite_only = m.invite_only, "room mode");
    Ok(())
}

/// `invite`: a member of room `room` (or the server) lets `name` join it.
/// Anyone inside may invite, as in most chat systems' private rooms: the
/// room keeps outsiders out and its members decide who comes in (a
/// moderator who disagrees can kick and ban; a guest who created a room
/// could not invite anyone otherwise). A registered name is invited for
/// good (kept in the store; it may be away); an online guest for its
/// session. The invitee, if online, gets `invited`.
pub(crate) fn invite(ctx: &mut Ctx<'_>, actor: Actor, i: Invite) -> Result<(), Refused> {
    let id = named(ctx, actor, &i.room)?;

    let name = i.name.unwrap_or_default();
    let online = ctx
        .room
        .find_by_name(&name)
        .map(|(k, u)| (k, u.session, u.name.clone()));
    let account = match online {
        Some((k, _, _)) => ctx.account_of(k),
        None => {
            let skel = names::skeleton(name.trim());
            ctx.dms.registered.contains(&skel).then_some(skel)
        }
    };
    let invitee = match (&account, &online) {
        (Some(a), _) => format!("a:{a}"),
        (None, Some((_, session, _))) => format!("s:{session}"),
        (None, None) => {
            let why = format!("nobody named {name} is online or registered");
            return Err((ErrorCode::NoSuchMember, why));
        }
    };
    let room_name = ctx.rooms.name_of(id);
    let room_key = names::skeleton(&room_name);
    let by = actor_name(ctx, actor);
    ctx.moderation.invite(&room_key, invitee);
    if let (Some(store), Some(account)) = (ctx.store, account) {
        store.submit(StoreRequest::SaveInvite {
            room: room_key.clone(),
            account,
            by: by.clone(),
        });
    }
    let shown = online
        .as_ref()
        .map_or(name.trim().to_owned(), |o| o.2.clone());
    if let Some((k, _, _)) = online {
        ctx.send(
            k,
            &ServerMessage::Invited(Invite {
                room: room_name,
                name: None,
                by: Some(by.clone()),
            }),
        );
    }
    ctx.announce(
        Where::Named(id),
        told("invite", &shown, &by, None),
        String::new(),
    );
    Ok(())
}

/// `delete` of chat `id` that no room keeps in memory: a moderator of the
/// room it names asks the store to delete it there.
fn delete_stored(
    ctx: &mut Ctx<'_>,
    actor: Actor,
    id: u64,
    room: Option<&str>,
) -> Result<(), Refused> {
    let Some(store) = ctx.store else {
        let why = format!(
            "no chat {id} among the newest {} of your rooms",
            ctx.config.history_len
        );
        return Err((ErrorCode::NoSuchMember, why));
    };
    let at = ctx.place(actor, room)?;
    if allowed(ctx, actor, at, Role::Moderator, None).is_err() {
        let why = format!(
            "no chat {id} of yours among the newest {} of your rooms (older chats are \
             deleted by a moderator)",
            ctx.config.history_len
        );
        return Err((ErrorCode::NoSuchMember, why));
    }
    let (room_id, column) = match at {
        Where::Default => (None, String::new()),
        Where::Named(r) => (Some(r), ctx.rooms.name_of(r)),
    };
    let asker = match actor {
        Actor::Member(key) => ctx.lobby.member(key).map(|m| (key, m.session)),
        Actor::Server => None,
    };
    store.submit(StoreRequest::DeleteOld {
        id,
        room: column,
        then: crate::server::store::DeleteThen {
            room_id,
            by: actor_name(ctx, actor),
            asker,
        },
    });
    Ok(())
}

/// The store answered a `delete` of a stored chat: the room is told and
/// the action logged, or the asker hears there was no such chat there.
pub(crate) fn deleted_old(
    ctx: &mut Ctx<'_>,
    id: u64,
    found: bool,
    then: crate::server::store::DeleteThen,
) {
    let at = then.room_id.map_or(Where::Default, Where::Named);
    if !found {
        if let Some((key, session)) = then.asker
            && ctx.lobby.member(key).is_some_and(|m| m.session == session)
        {
            let why = format!("no chat {id} in this room");
            ctx.protocol_error(key, ErrorCode::NoSuchMember, &why, None);
        }
        return;
    }
    let name = ctx.room_at(at).and_then(Room::name).map(str::to_owned);
    let frame = encode_server(&ServerMessage::Deleted(Deleted {
        id,
        room: name,
        by: then.by.clone(),
    }));
    ctx.broadcast_at(at, &frame);
    if let Some(store) = ctx.store {
        store.submit(StoreRequest::Log {
            ts: now_ms(),
            room: ctx.moderation_key(at),
            actor: then.by,
            action: "delete".into(),
            target: id.to_string(),
            detail: String::new(),
        });
    }
}

/// `delete`: chat `id` disappears for everyone, from the history too. Its
/// author may delete it (while the chat is among its room's newest
/// `history_len`, during the login that sent it); so may the room's
/// moderators, also an older chat of room `room`, which the store finds
/// (answered when it has: [`deleted_old`]).
pub(crate) fn delete(
    ctx: &mut Ctx<'_>,
    actor: Actor,
    id: u64,
    room: Option<String>,
) -> Result<(), Refused> {
    let mut at = ctx.room.kept_chat(id).map(|c| (Where::Default, c.session));
    if at.is_none() {
        let rooms: Vec<usize> = match actor {
            Actor::Member(key) => ctx.rooms.of(key).to_vec(),
            Actor::Server => ctx.rooms.ids(),
        };
        at = rooms.into_iter().find_map(|room| {
            let chat = ctx.rooms.get(room)?.kept_chat(id)?;
            Some((Where::Named(room), chat.session))
        });
    }
    let Some((at, author)) = at else {
        return delete_stored(ctx, actor, id, room.as_deref());
    };
    let mine = match actor {
        Actor::Member(key) => ctx.lobby.member(key).is_some_and(|m| m.session == author),
        Actor::Server => true,
    };
    if !mine {
        allowed(ctx, actor, at, Role::Moderator, None)?;
    }
    let Some(room) = ctx.room_at_mut(at) else {
        return Ok(());
    };
    room.forget_chat(id);
    let name = room.name().map(str::to_owned);
    let by = actor_name(ctx, actor);
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
            room: ctx.moderation_key(at),
            actor: by,
            action: "delete".into(),
            target: id.to_string(),
            detail: String::new(),
        });
    }
    Ok(())
}
