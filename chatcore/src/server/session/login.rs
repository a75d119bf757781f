//! Joining and leaving: `hello` (the login), the operator's kick, and what
//! a member's leaving undoes. `bye`, `ping` and `pong` are answered in
//! [`super::dispatch`] itself.

use super::Ctx;
use super::transfer::{drop_uploads_of, send_offers_to};
use super::voice::{call_left, send_voice_state_to};
use crate::protocol::ErrorCode;
use crate::protocol::{Hello, LeaveReason, Left, PROTOCOL_VERSION, ServerMessage, encode_server};
use crate::server::conn::Phase;
use crate::server::hooks::JoinDecision;
use crate::server::room::Outbox;
use crate::server::room::names;
use crate::time::now_ms;

/// `hello`: the version and the name are checked, the hooks asked, and the
/// connection joins the room (its `welcome` goes out with the turn's batch),
/// then it is sent the files on offer and the call.
pub(crate) fn hello(ctx: &mut Ctx<'_>, key: usize, hello: Hello) {
    if hello.version != PROTOCOL_VERSION {
        let msg = format!(
            "protocol version {} is not supported; this server speaks {PROTOCOL_VERSION}",
            hello.version
        );
        ctx.protocol_error(key, ErrorCode::Version, &msg, None);
        return;
    }
    let name = match names::validate(&hello.name, ctx.config.max_name_chars) {
        Ok(name) => name,
        Err(e) => {
            ctx.protocol_error(key, e.code(), &e.to_string(), None);
            return;
        }
    };
    if let Some(conn) = ctx.out.conns.get_mut(key) {
        conn.resume_from = hello.last_seen;
    }
    if ctx.accounts.is_some() {
        super::account::hello(ctx, key, name, hello.password, hello.token);
        return;
    }
    if hello.password.is_some() || hello.token.is_some() {
        let why = "this server has no accounts (it runs without a store)";
        ctx.protocol_error(key, ErrorCode::AccountsUnavailable, why, None);
        return;
    }
    join(ctx, key, &name, 0, None);
}

/// Completes a login: the hooks are asked and the connection joins the
/// room under `name` (with a suffix of at least `min_suffix`);
/// `account` is the authenticated login's token hash and the token to
/// hand out, if any.
pub(crate) fn join(
    ctx: &mut Ctx<'_>,
    key: usize,
    name: &str,
    min_suffix: u32,
    account: Option<([u8; 32], Option<String>)>,
) {
    let Some(peer) = ctx.out.conns.get(key).map(|c| c.peer) else {
        return;
    };
    if let JoinDecision::Deny(why) = ctx.hooks.on_join(name, peer) {
        ctx.protocol_error(key, ErrorCode::JoinDenied, &why, None);
        return;
    }
    // A ban from the default room keeps one off the server: by account for
    // a login with credentials, by address for anyone.
    let account_key = account.is_some().then(|| names::skeleton(name));
    if let Some(why) = ctx.banned_text(key, "", account_key.as_deref()) {
        ctx.protocol_error(key, ErrorCode::Banned, &why, None);
        return;
    }
    let user = ctx.lobby.admit(key, name, min_suffix);
    ctx.stats.logins += 1;
    ctx.room.join(key, user.clone());
    if let Some((hash, token)) = account {
        ctx.room.set_welcome_account(user.session, token);
        if let Some(accounts) = ctx.accounts.as_mut() {
            accounts.logins.insert(user.session, hash);
            accounts.owners.insert(user.session, name.to_owned());
            ctx.dms.registered.insert(names::skeleton(name));
            let session = user.session;
            super::dm::ask_unread(ctx, key, session, &names::skeleton(name));
        }
    }
    if let Some(conn) = ctx.out.conns.get_mut(key) {
        conn.phase = Phase::Member;
        if conn.counted_handshake {
            conn.counted_handshake = false;
            ctx.addr_counts.logged_in(conn.addr);
        }
        if ctx.log_gate.allow(conn.addr, ctx.now) {
            tracing::info!(name = %user.name, session = user.session, %peer, "joined");
        }
    }
    ctx.hooks.on_joined(&user);
    if let Some(last_seen) = ctx
        .out
        .conns
        .get_mut(key)
        .and_then(|c| c.resume_from.take())
    {
        super::history::resume(ctx, key, last_seen);
    }
    send_offers_to(ctx, key);
    send_voice_state_to(ctx, key);
}

/// Removes a member on the operator's word: it gets a `left` about itself
/// (reason `kicked`), flushed before the socket closes.
pub(crate) fn kick(ctx: &mut Ctx<'_>, key: usize) {
    let Some(user) = ctx.lobby.member(key).cloned() else {
        return;
    };
    ctx.send(
        key,
        &ServerMessage::Left(Left {
            name: user.name,
            session: user.session,
            ts: now_ms(),
            reason: LeaveReason::Kicked,
        }),
    );
    if let Some(conn) = ctx.out.conns.get_mut(key) {
        conn.close_reason = Some(LeaveReason::Kicked);
    }
    ctx.out.doom(key, LeaveReason::Kicked);
}

/// A connection that is closing leaves the room, if it was in it: its
/// unfinished uploads go, it leaves the call, the hooks hear of it. The
/// `left` notice goes out with the turn's presence batch.
pub(crate) fn leave(ctx: &mut Ctx<'_>, key: usize, reason: LeaveReason) {
    let Some(addr) = ctx.out.conns.get(key).map(|c| c.addr) else {
        return;
    };
    let Some(user) = ctx.lobby.depart(key) else {
        return;
    };
    ctx.room.leave(key, reason);
    ctx.rooms.exit_all(key, reason);
    if let Some(accounts) = ctx.accounts.as_mut() {
        accounts.logins.remove(&user.session);
        accounts.owners.remove(&user.session);
    }
    drop_uploads_of(ctx, key, user.session);
    call_left(ctx, key);
    match reason {
        LeaveReason::Slow => ctx.stats.slow_disconnects += 1,
        LeaveReason::Timeout => ctx.stats.timeouts += 1,
        _ => {}
    }
    if ctx.log_gate.allow(addr, ctx.now) {
        tracing::info!(name = %user.name, session = user.session, %reason, "left");
    }
    ctx.hooks.on_leave(&user, reason);
}

/// Shutdown: whoever joined this turn gets its welcome first, then every
/// member is told it was removed (`left` about itself, reason `shutdown`)
/// and leaves the room; the hooks hear of each.
pub(crate) fn farewell(ctx: &mut Ctx<'_>) {
    ctx.flush_presence();
    let ts = now_ms();
    ctx.lobby.clear();
    ctx.rooms.clear();
    for (key, user) in ctx.room.clear() {
        let frame = encode_server(&ServerMessage::Left(Left {
            name: user.name.clone(),
            session: user.session,
            ts,
            reason: LeaveReason::Shutdown,
        }));
        ctx.hooks.on_leave(&user, LeaveReason::Shutdown);
        ctx.out.push(key, frame);
    }
}
