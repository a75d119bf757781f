//! `rooms`, `join`, `part`, `topic`: named rooms beside the default room
//! (docs/protocol.md section 23). `room_mode` and `invite` (who may join
//! an invite-only room) are moderation, in `moderate`.
//!
//! A member is always in the default room (where its login landed) and in
//! up to `max_rooms_per_member` named rooms, all over one connection, under
//! its one name and session. `join` of a name no room has creates the room
//! when `room_creation` lets this member; with a store the room is saved
//! and exists again after a restart, with its history.

use super::Ctx;
use super::who::room_of;
use crate::protocol::{ErrorCode, RoomInfo, RoomList, RoomName, ServerMessage, Topic};
use crate::server::config::RoomCreation;
use crate::server::room::{Room, names};
use crate::server::store::StoreRequest;
use crate::time::now_ms;

/// Longest topic, in bytes of UTF-8.
pub const MAX_TOPIC_BYTES: usize = 512;

/// `rooms`: every room with its member count, the default room first.
/// An invite-only room is listed only to those who may enter it or are in
/// it: its name is not for everyone to see.
pub(crate) fn list(ctx: &mut Ctx<'_>, key: usize) {
    let mut rooms = vec![RoomInfo {
        room: ctx.config.default_room_name.clone(),
        topic: ctx.room.topic().to_owned(),
        members: ctx.room.len() as u64,
        default: true,
        invite_only: false,
    }];
    let mine = ctx.rooms.of(key).to_vec();
    let visible: Vec<RoomInfo> = ctx
        .rooms
        .list()
        .into_iter()
        .filter(|r| {
            !r.invite_only
                || ctx.rooms.find(&r.room).is_some_and(|id| mine.contains(&id))
                || super::who::may_enter(ctx, key, &names::skeleton(&r.room))
        })
        .collect();
    rooms.extend(visible);
    ctx.send(key, &ServerMessage::RoomList(RoomList { rooms }));
}

/// Checks a room name like a user name (section 10) and keeps it from
/// passing for the default room.
fn room_name(ctx: &Ctx<'_>, raw: &str) -> Result<String, String> {
    let name = names::validate(raw, ctx.config.max_name_chars)
        .map_err(|e| e.to_string().replacen("the name", "the room name", 1))?;
    if names::skeleton(&name) == names::skeleton(&ctx.config.default_room_name) {
        return Err(format!(
            "{name} is the default room, which every member is always in"
        ));
    }
    Ok(name)
}

/// `join`: enter room `raw`, creating it if it does not exist and this
/// member may. Answered by `room_joined` at the end of the turn (also when
/// already in: the client gets the room's state again).
///
/// `invite_only` makes a room it creates invite-only (section 23.5). After
/// the `room_joined`, the room's offers and its call's `voice_state` follow
/// (section 23.6).
pub(crate) fn join(ctx: &mut Ctx<'_>, key: usize, raw: String, invite_only: bool) {
    let name = match room_name(ctx, &raw) {
        Ok(name) => name,
        Err(why) => {
            ctx.room_error(key, ErrorCode::RoomInvalid, &why, &raw);
            return;
        }
    };
    let Some(info) = ctx.lobby.member(key).cloned() else {
        return;
    };
    let id = match ctx.rooms.find(&name) {
        Some(id) => id,
        None => {
            let registered = ctx
                .accounts
                .as_ref()
                .is_some_and(|a| a.logins.contains_key(&info.session));
            let allowed = match ctx.config.room_creation {
                RoomCreation::Anyone => true,
                RoomCreation::Registered => registered,
                RoomCreation::Nobody => false,
            };
            if !allowed {
                let why = format!("there is no room {name}, and you may not create one");
                ctx.room_error(key, ErrorCode::RoomUnknown, &why, &raw);
                return;
            }
            if ctx.rooms.len() >= ctx.config.max_rooms {
                let why = format!("the server has {} rooms, its limit", ctx.config.max_rooms);
                ctx.room_error(key, ErrorCode::TooManyRooms, &why, &raw);
                return;
            }
            if let Some(store) = ctx.store {
                store.submit(StoreRequest::SaveRoom {
                    name: name.clone(),
                    skeleton: names::skeleton(&name),
                    topic: String::new(),
                    invite_only,
                });
            }
            tracing::info!(room = %name, by = %info.name, "room created");
            // Its creator owns it, if the name is registered (a guest's
            // ownership would pass to whoever takes the name next).
            if let Some(account) = ctx.account_of(key) {
                let room_key = names::skeleton(&name);
                ctx.moderation.set_role(
                    &room_key,
                    &account,
                    crate::server::moderation::Role::Owner,
                );
                if let Some(store) = ctx.store {
                    store.submit(StoreRequest::SaveRole {
                        room: room_key,
                        account,
                        role: crate::server::moderation::Role::Owner,
                    });
                }
            }
            let id = ctx.rooms.create(ctx.room, name.clone(), String::new());
            if let Some(room) = ctx.rooms.get_mut(id) {
                room.set_invite_only(invite_only);
            }
            if invite_only {
                // Its creator may always come back, registered or not.
                let room_key = names::skeleton(&name);
                let invitee = match ctx.account_of(key) {
                    Some(a) => format!("a:{a}"),
                    None => format!("s:{}", info.session),
                };
                ctx.moderation.invite(&room_key, invitee);
            }
            id
        }
    };
    let already = ctx.rooms.get(id).is_some_and(|r| r.member(key).is_some());
    if already {
        // Its state again, as a fresh `room_joined`.
        if let Some(room) = ctx.rooms.get(id) {
            let frame = snapshot(room);
            ctx.send(key, &frame);
        }
        return;
    }
    let account = ctx.account_of(key);
    let room_key = names::skeleton(&ctx.rooms.name_of(id));
    if let Some(why) = ctx.banned_text(key, &room_key, account.as_deref()) {
        ctx.room_error(key, ErrorCode::Banned, &why, &raw);
        return;
    }
    let closed = ctx.rooms.get(id).is_some_and(Room::invite_only);
    if closed && !super::who::may_enter(ctx, key, &room_key) {
        let why = format!("{name} is invite-only; ask one of its members for an invitation");
        ctx.room_error(key, ErrorCode::InviteOnly, &why, &raw);
        return;
    }
    if ctx.rooms.of(key).len() >= ctx.config.max_rooms_per_member {
        let why = format!(
            "you are in {} rooms, the limit; part one first",
            ctx.config.max_rooms_per_member
        );
        ctx.room_error(key, ErrorCode::TooManyRooms, &why, &raw);
        return;
    }
    let shown = ctx.rooms.name_of(id);
    if let crate::server::hooks::JoinDecision::Deny(why) = ctx.hooks.on_room_join(&info, &shown) {
        ctx.room_error(key, ErrorCode::JoinDenied, &why, &raw);
        return;
    }
    ctx.rooms.enter(id, key, info);
    super::transfer::send_room_offers_to(ctx, key, id);
    super::voice::send_room_voice_state_to(ctx, key, id);
}

/// A `room_joined` for `room` as it is now.
fn snapshot(room: &Room) -> ServerMessage {
    ServerMessage::RoomJoined(crate::protocol::RoomJoined {
        room: room.name().unwrap_or_default().to_owned(),
        topic: room.topic().to_owned(),
        users: room.users(),
        history: room.recent(),
        invite_only: room.invite_only(),
    })
}

/// `part`: leave room `raw`; answered `room_parted`, the others see the
/// leave in the room's `presence`.
pub(crate) fn part(ctx: &mut Ctx<'_>, key: usize, raw: String) {
    if names::skeleton(&raw) == names::skeleton(&ctx.config.default_room_name) {
        let why = format!("{raw} is the default room, which every member is always in");
        ctx.room_error(key, ErrorCode::RoomInvalid, &why, &raw);
        return;
    }
    let Some(id) = room_of(ctx, key, &raw, None) else {
        return;
    };
    let name = ctx.rooms.name_of(id);
    ctx.rooms.exit(id, key, crate::protocol::LeaveReason::Quit);
    super::voice::left_room(ctx, key, id);
    ctx.send(key, &ServerMessage::RoomParted(RoomName { room: name }));
}

/// `topic`: a member of room `raw` sets its topic; everyone in it gets
/// `topic`. Any member may (a room's moderators can mute one who abuses
/// it).
pub(crate) fn topic(ctx: &mut Ctx<'_>, key: usize, raw: String, topic: String) {
    if topic.len() > MAX_TOPIC_BYTES || topic.chars().any(char::is_control) {
        let why = format!("a topic is at most {MAX_TOPIC_BYTES} bytes, without control characters");
        ctx.room_error(key, ErrorCode::RoomInvalid, &why, &raw);
        return;
    }
    let Some(id) = room_of(ctx, key, &raw, None) else {
        return;
    };
    let by = ctx
        .lobby
        .member(key)
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let Some(room) = ctx.rooms.get_mut(id) else {
        return;
    };
    let topic = topic.trim().to_owned();
    room.set_topic(topic.clone());
    let name = room.name().unwrap_or_default().to_owned();
    let frame = crate::protocol::encode_server(&ServerMessage::Topic(Topic {
        room: name.clone(),
        topic: topic.clone(),
        by,
        ts: now_ms(),
    }));
    room.broadcast(&frame, &mut ctx.out);
    let invite_only = room.invite_only();
    if let Some(store) = ctx.store {
        store.submit(StoreRequest::SaveRoom {
            skeleton: names::skeleton(&name),
            name,
            topic,
            invite_only,
        });
    }
}
