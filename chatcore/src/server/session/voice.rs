//! What the voice messages of the chat connection do: `voice_join`,
//! `voice_leave`, `voice_mute`, and the `voice_state` everyone is sent when
//! the call changes. Every room has its own call (docs/protocol.md 23.6); a
//! member is in at most one: joining another room's call leaves the one it
//! was in, and leaving a room leaves that room's call. The packets themselves are in
//! [`crate::server::voice::relay`].
//!
//! Every join and every leave starts a new key epoch (§16.5): the joiner
//! gets the new key in its `voice_joined`, everyone else in the call a
//! `voice_key`, so a new member cannot open what was said before it joined
//! and a former member cannot open what is said after it left.

use super::Ctx;
use crate::protocol::voice::{KEY_LEN, TOKEN_LEN, VoiceJoined, VoiceKey, VoiceState};
use crate::protocol::{ErrorCode, ServerMessage, encode_server};
use crate::server::voice::{CallRoom, VoicePath};
use crate::time::now_ms;

/// `voice_join`: into the call of the default room (`room` absent) or of
/// named room `room` (or a fresh token for a member already in it),
/// answered with `voice_joined`. A member in another room's call leaves it
/// first.
pub(crate) fn voice_join(ctx: &mut Ctx<'_>, key: usize, room: Option<String>) {
    let Some(port) = ctx.voice_port else {
        let why = "this server has no voice port";
        ctx.protocol_error(key, ErrorCode::VoiceUnavailable, why, None);
        return;
    };
    let Some(user) = ctx.lobby.member(key).cloned() else {
        return;
    };
    let target: CallRoom = match &room {
        None => None,
        Some(raw) => match super::who::room_of(ctx, key, raw, None) {
            Some(id) => Some(id),
            None => return,
        },
    };
    let room_name = target.and_then(|id| ctx.rooms.get(id)?.name().map(str::to_owned));
    let current = ctx.calls.room_of(key);
    if current.is_some_and(|c| c != target) {
        call_left(ctx, key);
    }
    let already = current == Some(target);
    let size = ctx.calls.get(target).map_or(0, |c| c.len());
    if !already && size >= ctx.config.max_call_members {
        let why = format!("the call is full ({} members)", ctx.config.max_call_members);
        ctx.protocol_error(key, ErrorCode::CallFull, &why, None);
        return;
    }
    let token: [u8; TOKEN_LEN] = rand::random();
    let old = ctx
        .calls
        .join(target, key, user.session, &user.name, token, ctx.now);
    if let Some(VoicePath::Tcp(k)) = old {
        close_voice_conn(ctx, k);
    }
    let max_bitrate = ctx.config.voice_max_bitrate;
    if let Some(m) = ctx.calls.get_mut(target).and_then(|c| c.by_key_mut(key)) {
        m.set_max_bitrate(max_bitrate, ctx.now);
    }
    tracing::info!(name = %user.name, session = user.session, room = ?room_name, "joined the call");
    let (epoch, call_key) = rekey(ctx, target, Some(key));
    let joined = ServerMessage::VoiceJoined(VoiceJoined {
        session: user.session,
        token: token.to_vec(),
        epoch,
        key: call_key.to_vec(),
        port,
        keepalive_ms: ctx.config.voice_keepalive_ms,
        timeout_ms: ctx.config.voice_timeout_ms,
        room: room_name,
        max_bitrate: Some(max_bitrate),
    });
    ctx.push_private(key, encode_server(&joined));
    if !already || old.is_some() {
        broadcast_voice_state(ctx, target);
    }
}

/// `voice_leave`: out of the call it is in.
pub(crate) fn voice_leave(ctx: &mut Ctx<'_>, key: usize) {
    if !call_left(ctx, key) {
        ctx.protocol_error(key, ErrorCode::NotInCall, "you are not in a call", None);
    }
}

/// `voice_mute`: sets the member's flag for everyone to see.
pub(crate) fn voice_mute(ctx: &mut Ctx<'_>, key: usize, muted: bool) {
    let Some((room, call)) = ctx.calls.of_key_mut(key) else {
        ctx.protocol_error(key, ErrorCode::NotInCall, "you are not in a call", None);
        return;
    };
    let Some(member) = call.by_key_mut(key) else {
        return;
    };
    if member.muted != muted {
        member.muted = muted;
        broadcast_voice_state(ctx, room);
    }
}

/// Takes the member on connection `key` out of its call, if it is in one,
/// and tells that call's room. Also called when it leaves the server.
pub(crate) fn call_left(ctx: &mut Ctx<'_>, key: usize) -> bool {
    let Some((room, member)) = ctx.calls.leave(key) else {
        return false;
    };
    tracing::info!(name = %member.name, session = member.session, "left the call");
    if let Some(VoicePath::Tcp(k)) = member.path {
        close_voice_conn(ctx, k);
    }
    rekey(ctx, room, None);
    broadcast_voice_state(ctx, room);
    true
}

/// Takes member `key` out of named room `id`'s call, if it is in that one
/// (it parted the room, or was kicked or banned from it).
pub(crate) fn left_room(ctx: &mut Ctx<'_>, key: usize, id: usize) {
    if ctx.calls.room_of(key) == Some(Some(id)) {
        call_left(ctx, key);
    }
}

/// Starts a new key epoch in `room`'s call and sends `voice_key` to every
/// member of it but `joiner` (who gets the key in its `voice_joined`).
/// Returns the epoch and key. Called when the membership changed: a join,
/// a leave, a removal. An emptied call has no key to change.
pub(crate) fn rekey(
    ctx: &mut Ctx<'_>,
    room: CallRoom,
    joiner: Option<usize>,
) -> (u32, [u8; KEY_LEN]) {
    let Some(call) = ctx.calls.get_mut(room) else {
        return (0, [0; KEY_LEN]);
    };
    let (epoch, key) = call.rekey();
    if ctx.shutting_down {
        return (epoch, key);
    }
    let keys = call.member_keys_except(joiner.unwrap_or(usize::MAX));
    let frame = encode_server(&ServerMessage::VoiceKey(VoiceKey {
        epoch,
        key: key.to_vec(),
    }));
    for k in keys {
        ctx.push_private(k, frame.clone());
    }
    (epoch, key)
}

/// Closes TCP voice connection `key`; its member (if bound) is unbound but
/// stays in the call until its voice timeout.
pub(crate) fn close_voice_conn(ctx: &mut Ctx<'_>, key: usize) {
    if ctx.voice_conns.close(key) {
        for room in ctx.calls.unbind(VoicePath::Tcp(key)) {
            broadcast_voice_state(ctx, room);
        }
    }
}

/// Sends `room`'s call member list to every member of that room. Pending
/// joins and leaves go first, so nobody hears of a call member it has not
/// been told about.
pub(crate) fn broadcast_voice_state(ctx: &mut Ctx<'_>, room: CallRoom) {
    if ctx.shutting_down {
        return;
    }
    let frame = voice_state_frame(ctx, room);
    match room {
        None => {
            ctx.flush_presence();
            ctx.room.broadcast(&frame, &mut ctx.out);
        }
        Some(id) => {
            let Some(r) = ctx.rooms.get_mut(id) else {
                return;
            };
            r.flush_presence(now_ms(), &mut ctx.out);
            r.flush_welcomes(&mut ctx.out);
            r.broadcast(&frame, &mut ctx.out);
        }
    }
}

/// After a login: the default room's call as it is, if anyone is in it
/// (queued after the new member's `welcome`).
pub(crate) fn send_voice_state_to(ctx: &mut Ctx<'_>, key: usize) {
    if ctx.calls.get(None).is_some() {
        let frame = voice_state_frame(ctx, None);
        ctx.push_private(key, frame);
    }
}

/// After `room_joined`: named room `id`'s call, if anyone is in it (the
/// room's pending `room_joined` is flushed first so that it follows).
pub(crate) fn send_room_voice_state_to(ctx: &mut Ctx<'_>, key: usize, id: usize) {
    if ctx.calls.get(Some(id)).is_none() {
        return;
    }
    let frame = voice_state_frame(ctx, Some(id));
    if let Some(r) = ctx.rooms.get_mut(id) {
        r.flush_welcomes(&mut ctx.out);
    }
    crate::server::room::Outbox::push(&mut ctx.out, key, frame);
}

fn voice_state_frame(ctx: &Ctx<'_>, room: CallRoom) -> bytes::Bytes {
    encode_server(&ServerMessage::VoiceState(VoiceState {
        ts: now_ms(),
        members: ctx.calls.get(room).map(|c| c.state()).unwrap_or_default(),
        room: room.and_then(|id| ctx.rooms.get(id)?.name().map(str::to_owned)),
    }))
}
