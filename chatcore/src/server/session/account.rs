//! Accounts on the wire (docs/protocol.md section 19): `hello` with a
//! registered name, `register`, `change_password`, `logout`, and the auth
//! thread's answers. Every check that costs a hash or a query goes to the
//! auth thread; the loop keeps the throttle and completes what it answers.

use super::Ctx;
use super::admit::join;
use crate::protocol::{ErrorCode, PasswordChanged, Registered, ServerMessage};
use crate::server::accounts::db::{PASSWORD_MAX, password_ok};
use crate::server::accounts::thread::{AuthDone, AuthJob, Credential, HelloOutcome, Refusal};
use crate::server::accounts::{MAX_IN_FLIGHT, Pending};
use crate::server::conn::Phase;
use crate::server::room::names::skeleton;

/// The text of `auth_throttled`: a machine-readable wait at the end.
/// `wait` in whole milliseconds, rounded up: a client that waits exactly
/// what it was told must not arrive a fraction of a millisecond early.
fn ceil_ms(wait: std::time::Duration) -> u128 {
    wait.as_nanos().div_ceil(1_000_000).max(1)
}

fn throttled(why: &str, wait_ms: u128) -> String {
    format!("{why}; try again in {wait_ms} ms")
}

/// A `hello` on a server with accounts (the name is validated): checked
/// against the throttle here, then sent to the auth thread; the login
/// completes in [`drain_auth`].
pub(crate) fn hello(
    ctx: &mut Ctx<'_>,
    key: usize,
    name: String,
    password: Option<String>,
    token: Option<String>,
) {
    let Some(conn) = ctx.out.conns.get(key) else {
        return;
    };
    let addr = conn.addr;
    if conn.auth_pending.is_some() {
        let why = throttled("this connection's login is still being checked", 100);
        ctx.protocol_error(key, ErrorCode::AuthThrottled, &why, None);
        return;
    }
    let credential = match (password, token) {
        (Some(p), _) => Credential::Password(p),
        (None, Some(t)) => Credential::Token(t),
        (None, None) => Credential::None,
    };
    let credentials = !matches!(credential, Credential::None);
    if !credentials && ctx.config.require_account {
        let why = "this server admits registered names only: log in with a password";
        ctx.protocol_error(key, ErrorCode::AccountRequired, why, None);
        return;
    }
    if let Credential::Password(p) = &credential
        && p.len() > PASSWORD_MAX
    {
        ctx.protocol_error(key, ErrorCode::AuthFailed, "wrong name or password", None);
        return;
    }
    let now = ctx.now;
    let Some(accounts) = ctx.accounts.as_mut() else {
        return;
    };
    if credentials && let Some(wait) = accounts.throttle.wait(addr, &skeleton(&name), now) {
        let why = throttled("too many failed logins", ceil_ms(wait));
        ctx.protocol_error(key, ErrorCode::AuthThrottled, &why, None);
        return;
    }
    let hashing = matches!(credential, Credential::Password(_));
    if hashing && accounts.hashing >= MAX_IN_FLIGHT {
        let why = throttled("the server is busy checking passwords", 1000);
        ctx.protocol_error(key, ErrorCode::AuthThrottled, &why, None);
        return;
    }
    accounts.hashing += usize::from(hashing);
    let id = accounts.next_id();
    accounts.worker.submit(AuthJob::Hello {
        id,
        name: name.clone(),
        credential,
        token_days: ctx.config.token_days,
    });
    accounts.pending.insert(
        id,
        Pending::Hello {
            key,
            name,
            addr,
            credentials,
            hashing,
        },
    );
    if let Some(conn) = ctx.out.conns.get_mut(key) {
        conn.auth_pending = Some(id);
    }
}

/// `register`: a guest member registers its current name.
pub(crate) fn register(ctx: &mut Ctx<'_>, key: usize, password: String) {
    let Some(session) = ctx.lobby.member(key).map(|u| u.session) else {
        return;
    };
    let Some(name) = ctx.lobby.member(key).map(|u| u.name.clone()) else {
        return;
    };
    let Some(accounts) = ctx.accounts.as_mut() else {
        let why = "this server has no accounts (it runs without a store)";
        ctx.protocol_error(key, ErrorCode::AccountsUnavailable, why, None);
        return;
    };
    if accounts.logins.contains_key(&session) {
        let why = "you are logged in to a registered name already";
        ctx.protocol_error(key, ErrorCode::NameRegistered, why, None);
        return;
    }
    if !password_ok(&password) {
        let why = "a password is 8 to 1024 bytes";
        ctx.protocol_error(key, ErrorCode::PasswordInvalid, why, None);
        return;
    }
    if accounts.hashing >= MAX_IN_FLIGHT {
        let why = throttled("the server is busy checking passwords", 1000);
        ctx.protocol_error(key, ErrorCode::AuthThrottled, &why, None);
        return;
    }
    accounts.hashing += 1;
    let id = accounts.next_id();
    accounts.worker.submit(AuthJob::Register {
        id,
        name,
        password,
        token_days: ctx.config.token_days,
    });
    accounts
        .pending
        .insert(id, Pending::Register { key, session });
}

/// `change_password`: an authenticated member replaces its password.
pub(crate) fn change_password(ctx: &mut Ctx<'_>, key: usize, old: String, new: String) {
    let Some(user) = ctx.lobby.member(key).cloned() else {
        return;
    };
    let Some(addr) = ctx.out.conns.get(key).map(|c| c.addr) else {
        return;
    };
    let now = ctx.now;
    let Some(accounts) = ctx.accounts.as_mut() else {
        let why = "this server has no accounts (it runs without a store)";
        ctx.protocol_error(key, ErrorCode::AccountsUnavailable, why, None);
        return;
    };
    let Some(account) = accounts.owners.get(&user.session).cloned() else {
        let why = "log in to a registered name with its password first";
        ctx.protocol_error(key, ErrorCode::AuthFailed, why, None);
        return;
    };
    if let Some(wait) = accounts.throttle.wait(addr, &skeleton(&account), now) {
        let why = throttled("too many failed logins", ceil_ms(wait));
        ctx.protocol_error(key, ErrorCode::AuthThrottled, &why, None);
        return;
    }
    if !password_ok(&new) {
        let why = "a password is 8 to 1024 bytes";
        ctx.protocol_error(key, ErrorCode::PasswordInvalid, why, None);
        return;
    }
    if old.len() > PASSWORD_MAX {
        ctx.protocol_error(key, ErrorCode::AuthFailed, "wrong password", None);
        return;
    }
    if accounts.hashing >= MAX_IN_FLIGHT {
        let why = throttled("the server is busy checking passwords", 1000);
        ctx.protocol_error(key, ErrorCode::AuthThrottled, &why, None);
        return;
    }
    accounts.hashing += 1;
    let id = accounts.next_id();
    accounts.worker.submit(AuthJob::ChangePassword {
        id,
        name: account,
        old,
        new,
        token_days: ctx.config.token_days,
    });
    accounts.pending.insert(
        id,
        Pending::ChangePassword {
            key,
            session: user.session,
            addr,
        },
    );
}

/// `logout`: revokes the connection's token (if it logged in with one or
/// was issued one); always answered `logged_out`.
pub(crate) fn logout(ctx: &mut Ctx<'_>, key: usize) {
    let Some(session) = ctx.lobby.member(key).map(|u| u.session) else {
        return;
    };
    if let Some(accounts) = ctx.accounts.as_mut()
        && let Some(hash) = accounts.logins.remove(&session)
    {
        accounts.worker.submit(AuthJob::Revoke { hash });
    }
    ctx.send(key, &ServerMessage::LoggedOut);
}

/// The auth thread's answers, when it woke the loop.
pub(crate) fn drain_auth(ctx: &mut Ctx<'_>) {
    loop {
        let Some(done) = ctx.accounts.as_mut().and_then(|a| a.worker.poll()) else {
            return;
        };
        let (id, pending) = match &done {
            AuthDone::Hello { id, .. }
            | AuthDone::Register { id, .. }
            | AuthDone::ChangePassword { id, .. } => (
                *id,
                ctx.accounts.as_mut().and_then(|a| a.pending.remove(id)),
            ),
        };
        let hashed = match &pending {
            Some(Pending::Hello { hashing, .. }) => *hashing,
            Some(Pending::Register { .. } | Pending::ChangePassword { .. }) => true,
            None => false,
        };
        if hashed && let Some(a) = ctx.accounts.as_mut() {
            a.hashing = a.hashing.saturating_sub(1);
        }
        match (done, pending) {
            (
                AuthDone::Hello { outcome, .. },
                Some(Pending::Hello {
                    key,
                    name,
                    addr,
                    credentials,
                    ..
                }),
            ) => hello_done(ctx, id, key, &name, addr, credentials, outcome),
            (AuthDone::Register { outcome, .. }, Some(Pending::Register { key, session })) => {
                if !is_member(ctx, key, session) {
                    continue;
                }
                match outcome {
                    Ok(token) => {
                        let name = ctx.lobby.member(key).map(|u| u.name.clone());
                        let name = name.unwrap_or_default();
                        if let Some(a) = ctx.accounts.as_mut() {
                            a.logins.insert(session, token.hash);
                            a.owners.insert(session, name.clone());
                        }
                        ctx.dms.registered.insert(skeleton(&name));
                        tracing::info!(%name, session, "name registered");
                        let msg = Registered {
                            name,
                            token: token.text,
                        };
                        ctx.send(key, &ServerMessage::Registered(msg));
                    }
                    Err(r) => refusal(ctx, key, r, "this name is registered already"),
                }
            }
            (
                AuthDone::ChangePassword { outcome, .. },
                Some(Pending::ChangePassword { key, session, addr }),
            ) => {
                let name = ctx
                    .accounts
                    .as_ref()
                    .and_then(|a| a.owners.get(&session))
                    .map(|n| skeleton(n));
                if !is_member(ctx, key, session) {
                    continue;
                }
                match outcome {
                    Ok(token) => {
                        if let Some(a) = ctx.accounts.as_mut() {
                            a.logins.insert(session, token.hash);
                        }
                        let msg = PasswordChanged { token: token.text };
                        ctx.send(key, &ServerMessage::PasswordChanged(msg));
                    }
                    Err(Refusal::Wrong) => {
                        let now = ctx.now;
                        if let (Some(a), Some(name)) = (ctx.accounts.as_mut(), name) {
                            a.throttle.failed(addr, &name, now);
                        }
                        refusal(ctx, key, Refusal::Wrong, "");
                    }
                    Err(r) => refusal(ctx, key, r, "this name is registered already"),
                }
            }
            _ => {}
        }
    }
}

/// Whether `key` is still the member `session`.
fn is_member(ctx: &Ctx<'_>, key: usize, session: u64) -> bool {
    ctx.lobby.member(key).is_some_and(|u| u.session == session)
}

/// Answers a refused request.
fn refusal(ctx: &mut Ctx<'_>, key: usize, r: Refusal, taken: &str) {
    match r {
        Refusal::Taken => ctx.protocol_error(key, ErrorCode::NameRegistered, taken, None),
        Refusal::Wrong => ctx.protocol_error(key, ErrorCode::AuthFailed, "wrong password", None),
        Refusal::Unavailable => ctx.protocol_error(
            key,
            ErrorCode::AccountsUnavailable,
            "the account database failed; try again later",
            None,
        ),
    }
}

/// Completes (or refuses) a login the auth thread answered.
fn hello_done(
    ctx: &mut Ctx<'_>,
    id: u64,
    key: usize,
    name: &str,
    addr: crate::server::conn::peers::AddrKey,
    credentials: bool,
    outcome: HelloOutcome,
) {
    match ctx.out.conns.get_mut(key) {
        Some(conn)
            if conn.auth_pending == Some(id) && matches!(conn.phase, Phase::Handshake { .. }) =>
        {
            conn.auth_pending = None;
        }
        _ => return, // closed (maybe its key reused) or timed out meanwhile
    }
    let now = ctx.now;
    match outcome {
        HelloOutcome::Guest => {
            if credentials {
                // Not sent by the thread; kept total.
                ctx.protocol_error(key, ErrorCode::AuthFailed, "wrong name or password", None);
            } else {
                join(ctx, key, name, 0, None);
            }
        }
        HelloOutcome::Registered if ctx.config.guest_shadow => join(ctx, key, name, 1, None),
        HelloOutcome::Registered => {
            let why = "this name is registered: log in with its password, or choose another";
            ctx.protocol_error(key, ErrorCode::NameRegistered, why, None);
        }
        HelloOutcome::Authenticated { name, issued, hash } => {
            if let Some(a) = ctx.accounts.as_mut() {
                a.throttle.succeeded(&skeleton(&name));
            }
            join(ctx, key, &name, 0, Some((hash, issued)));
        }
        HelloOutcome::Failed => {
            if let Some(a) = ctx.accounts.as_mut() {
                a.throttle.failed(addr, &skeleton(name), now);
            }
            if ctx.log_gate.allow(addr, now) {
                tracing::info!(%name, %addr, "failed login");
            }
            ctx.protocol_error(key, ErrorCode::AuthFailed, "wrong name or password", None);
        }
        HelloOutcome::Unavailable => {
            let why = "the account database failed; try again later";
            ctx.protocol_error(key, ErrorCode::AccountsUnavailable, why, None);
        }
    }
}
