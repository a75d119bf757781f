//! A login accepted: the embedding program is asked, bans from the default
//! room are checked, and the connection becomes a member (the lobby gives
//! it its name and session, the default room its `welcome`), followed by
//! what it missed, the offers and the call. Both ways in end here: a
//! guest's `hello` (`login`) and one the auth thread verified (`account`).

use super::Ctx;
use super::transfer::send_offers_to;
use super::voice::send_voice_state_to;
use crate::protocol::ErrorCode;
use crate::server::conn::Phase;
use crate::server::hooks::JoinDecision;
use crate::server::room::names;

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
