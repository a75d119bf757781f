//! What the voice messages of the chat connection do: `voice_join`,
//! `voice_leave`, `voice_mute`, and the `voice_state` everyone is sent when
//! the call changes. The packets themselves are in
//! [`crate::server::voice::relay`].
//!
//! Every join and every leave starts a new key epoch (§16.5): the joiner
//! gets the new key in its `voice_joined`, everyone else in the call a
//! `voice_key`, so a new member cannot open what was said before it joined
//! and a former member cannot open what is said after it left.

use super::Ctx;
use crate::protocol::voice::{KEY_LEN, TOKEN_LEN, VoiceJoined, VoiceKey, VoiceState};
use crate::protocol::{ErrorCode, ServerMessage, encode_server};
use crate::server::voice::VoicePath;
use crate::time::now_ms;

/// `voice_join`: into the call (or a fresh token for a member already in
/// it), answered with `voice_joined`.
pub(crate) fn voice_join(ctx: &mut Ctx<'_>, key: usize) {
    let Some(port) = ctx.voice_port else {
        let why = "this server has no voice port";
        ctx.protocol_error(key, ErrorCode::VoiceUnavailable, why, None);
        return;
    };
    let Some(user) = ctx.lobby.member(key).cloned() else {
        return;
    };
    let already = ctx.call.by_key_mut(key).is_some();
    if !already && ctx.call.len() >= ctx.config.max_call_members {
        let why = format!("the call is full ({} members)", ctx.config.max_call_members);
        ctx.protocol_error(key, ErrorCode::CallFull, &why, None);
        return;
    }
    let token: [u8; TOKEN_LEN] = rand::random();
    let old = ctx.call.join(key, user.session, &user.name, token, ctx.now);
    if let Some(VoicePath::Tcp(k)) = old {
        close_voice_conn(ctx, k);
    }
    tracing::info!(name = %user.name, session = user.session, "joined the call");
    let (epoch, call_key) = rekey(ctx, Some(key));
    let joined = ServerMessage::VoiceJoined(VoiceJoined {
        session: user.session,
        token: token.to_vec(),
        epoch,
        key: call_key.to_vec(),
        port,
        keepalive_ms: ctx.config.voice_keepalive_ms,
        timeout_ms: ctx.config.voice_timeout_ms,
    });
    ctx.push_private(key, encode_server(&joined));
    if !already || old.is_some() {
        broadcast_voice_state(ctx);
    }
}

/// `voice_leave`: out of the call.
pub(crate) fn voice_leave(ctx: &mut Ctx<'_>, key: usize) {
    if !call_left(ctx, key) {
        ctx.protocol_error(key, ErrorCode::NotInCall, "you are not in the call", None);
    }
}

/// `voice_mute`: sets the member's flag for everyone to see.
pub(crate) fn voice_mute(ctx: &mut Ctx<'_>, key: usize, muted: bool) {
    let Some(member) = ctx.call.by_key_mut(key) else {
        ctx.protocol_error(key, ErrorCode::NotInCall, "you are not in the call", None);
        return;
    };
    if member.muted != muted {
        member.muted = muted;
        broadcast_voice_state(ctx);
    }
}

/// Takes the member on connection `key` out of the call, if it is in it,
/// and tells the room. Also called when it leaves the room.
pub(crate) fn call_left(ctx: &mut Ctx<'_>, key: usize) -> bool {
    let Some(member) = ctx.call.leave(key) else {
        return false;
    };
    tracing::info!(name = %member.name, session = member.session, "left the call");
    if let Some(VoicePath::Tcp(k)) = member.path {
        close_voice_conn(ctx, k);
    }
    rekey(ctx, None);
    broadcast_voice_state(ctx);
    true
}

/// Starts a new key epoch and sends `voice_key` to every call member but
/// `joiner` (who gets the key in its `voice_joined`). Returns the epoch and
/// key. Called when the membership changed: a join, a leave, a removal.
pub(crate) fn rekey(ctx: &mut Ctx<'_>, joiner: Option<usize>) -> (u32, [u8; KEY_LEN]) {
    let (epoch, key) = ctx.call.rekey();
    if ctx.shutting_down {
        return (epoch, key);
    }
    let frame = encode_server(&ServerMessage::VoiceKey(VoiceKey {
        epoch,
        key: key.to_vec(),
    }));
    for k in ctx.call.member_keys_except(joiner.unwrap_or(usize::MAX)) {
        ctx.push_private(k, frame.clone());
    }
    (epoch, key)
}

/// Closes TCP voice connection `key`; its member (if bound) is unbound but
/// stays in the call until its voice timeout.
pub(crate) fn close_voice_conn(ctx: &mut Ctx<'_>, key: usize) {
    if ctx.voice_conns.close(key) && ctx.call.unbind(VoicePath::Tcp(key)) {
        broadcast_voice_state(ctx);
    }
}

/// Sends the call's member list to every member of the room. Pending joins
/// and leaves go first, so nobody hears of a call member it has not been
/// told about.
pub(crate) fn broadcast_voice_state(ctx: &mut Ctx<'_>) {
    if ctx.shutting_down {
        return;
    }
    ctx.flush_presence();
    let frame = voice_state_frame(ctx);
    ctx.room.broadcast(&frame, &mut ctx.out);
}

/// After a login: the call as it is, if anyone is in it (queued after the
/// new member's `welcome`).
pub(crate) fn send_voice_state_to(ctx: &mut Ctx<'_>, key: usize) {
    if !ctx.call.is_empty() {
        let frame = voice_state_frame(ctx);
        ctx.push_private(key, frame);
    }
}

fn voice_state_frame(ctx: &Ctx<'_>) -> bytes::Bytes {
    encode_server(&ServerMessage::VoiceState(VoiceState {
        ts: now_ms(),
        members: ctx.call.state(),
    }))
}
