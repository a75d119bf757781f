//! What client messages do: the protocol rules of docs/protocol.md applied
//! to one connection, on a narrow context.
//!
//! Each handler is a function taking [`Ctx`] (what a message may touch: the
//! room, the call, the transfers, the connections as an outbox, the config,
//! the hooks, the statistics) and the connection's key; none sees the
//! reactor, its poll or its sockets. The reactor builds a `Ctx` from its
//! fields for each frame ([`handle_frame`]) and for its own events (disk
//! results, timers, leaves), so the rules live here and the loop stays a loop.
//!
//! | file | messages |
//! |---|---|
//! | `login` | `hello`, `bye`, `ping`, `pong`; leaving the room; kicks |
//! | `admit` | a login accepted (a guest's, or one the auth thread verified): the member enters |
//! | `chat` | `chat`; texts from the server side |
//! | `transfer` | `file_offer`, `file_chunk`, `file_accept`, `file_decline`, `file_cancel`; disk results; expiry |
//! | `history` | `history`; the resume after a `hello` with `last_seen` |
//! | `voice` | `voice_join` (with or without `room`), `voice_leave`, `voice_mute`; `voice_state`; closing a TCP voice connection |
//! | `account` | `register`, `change_password`, `logout`; the auth thread's answers |
//! | `rooms` | `rooms`, `join`, `part`, `topic` |
//! | `moderate` | `kick`, `ban`, `unban`, `mute`, `unmute`, `set_role`, `delete`, `room_mode`, `invite` |
//! | `dm` | `dm`, `dm_history`, `dm_read`; unread counts after a login |
//!
//! Below the handlers, shared by them (handlers call these, never each
//! other's helpers, so the calls run one way):
//!
//! | file | what |
//! |---|---|
//! | `who` | lookups: a connection's account and party, a member by name, the room a member names, bans, mutes, invitations |
//! | `text` | a chat's or direct message's text checked, and the hooks' verdict on it |
//! | `store` | each turn's batch to the store thread, and its answers sorted out |

pub(crate) mod account;
mod admit;
pub(crate) mod chat;
pub(crate) mod dm;
pub(crate) mod history;
mod login;
pub(crate) mod moderate;
pub(crate) mod rooms;
pub(crate) mod store;
mod text;
pub(crate) mod transfer;
pub(crate) mod voice;
pub(crate) mod who;

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;

use crate::protocol::transfer::FileOffer;
use crate::protocol::{
    ChatSend, ClientMessage, ErrorCode, LeaveReason, ServerMessage, encode_server,
};
use crate::server::config::ServerConfig;
use crate::server::conn::Phase;
use crate::server::conn::peers::{AddrCounts, LogGate};
use crate::server::handle::ServerStats;
use crate::server::hooks::Hooks;
use crate::server::outbox::ConnOutbox;
use crate::server::room::{Lobby, Outbox, Room, Rooms};
use crate::server::transfer::Transfers;
use crate::server::transfer::disk::DiskWorker;
use crate::server::voice::Calls;
use crate::server::voice::conn::VoiceConns;
use crate::time::now_ms;

pub(crate) use login::{farewell, kick, leave};
pub(crate) use text::fit_text;

/// The text of `rate_limited` errors.
pub(crate) const RATE_LIMITED_MSG: &str = "too many messages; slow down";
/// Protocol errors logged per connection; the rest are only counted.
const ERRORS_LOGGED: u8 = 3;

/// What a handler may touch, lent by the reactor for one step.
pub(crate) struct Ctx<'a> {
    /// Members, names, ids, history, presence.
    pub room: &'a mut Room,
    /// Who is logged in (names, sessions), whatever room they are in.
    pub lobby: &'a mut Lobby,
    /// The named rooms and who is in which (the default room is `room`).
    pub rooms: &'a mut Rooms,
    /// Roles, bans, mutes, operators.
    pub moderation: &'a mut crate::server::moderation::Moderation,
    /// Direct messages waiting for the store; the registered names.
    pub dms: &'a mut dm::Dms,
    /// The connections as the room's outbox: queue frames, doom, mark dirty.
    pub out: ConnOutbox<'a>,
    /// Every room's voice call: members and their bindings.
    pub calls: &'a mut Calls,
    /// The voice port's TCP connections, closed when their member leaves.
    pub voice_conns: &'a mut VoiceConns,
    /// The voice port's number for `voice_joined`; `None` without a voice port.
    pub voice_port: Option<u16>,
    /// File transfers and their spool bookkeeping.
    pub transfers: &'a mut Transfers,
    /// The disk thread, given jobs through a channel (never blocks).
    pub disk: &'a DiskWorker,
    /// Download token -> the connection it belongs to.
    pub download_keys: &'a mut HashMap<u64, usize>,
    /// Every limit and timeout.
    pub config: &'a ServerConfig,
    /// The embedder's callbacks.
    pub hooks: &'a mut dyn Hooks,
    /// Counters for `ServerHandle::stats`.
    pub stats: &'a mut ServerStats,
    /// Per-address connection counts (a login moves a connection out of
    /// the handshake count).
    pub addr_counts: &'a mut AddrCounts,
    /// Per-address log rate limit.
    pub log_gate: &'a mut LogGate,
    /// Connections to read again before the next poll (an uploader the disk
    /// caught up with).
    pub ready: &'a mut Vec<usize>,
    /// The frame being handled, and whether it was charged to the rate limit
    /// yet: a frame that earns an error reply is charged then (section 11.2).
    pub frame_charge: &'a mut Option<(usize, bool)>,
    /// The `rate_limited` error without a `ref`, encoded once and shared.
    pub rate_limited_frame: &'a Bytes,
    /// Metric handles: error frames are counted by code.
    pub metrics: &'a mut crate::server::metrics::Metrics,
    /// Time at the start of this loop turn.
    pub now: Instant,
    /// Shutdown began: no more `voice_state` broadcasts.
    pub shutting_down: bool,
    /// Accounts (the auth thread, logins in flight, the throttle), if the
    /// server has a store.
    pub accounts: Option<&'a mut crate::server::accounts::Accounts>,
    /// The history store, if the server has one (requests never block).
    pub store: Option<&'a crate::server::store::Store>,
    /// The store's last commit failed: failures are logged once per streak.
    pub store_failing: &'a mut bool,
    /// History pages asked of the store and not answered yet.
    pub history_waits: &'a mut history::HistoryWaits,
}

/// Decodes and acts on one frame body from connection `key`.
pub(crate) fn handle_frame(ctx: &mut Ctx<'_>, key: usize, body: &[u8]) {
    match ClientMessage::from_body(body) {
        Ok(msg) => dispatch(ctx, key, msg),
        Err(e) => ctx.protocol_error(key, e.code(), &e.to_string(), None),
    }
}

/// Acts on one message: charges the rate limit (file chunks are not
/// charged: an upload is many of them) and calls its handler.
pub(crate) fn dispatch(ctx: &mut Ctx<'_>, key: usize, msg: ClientMessage) {
    let Some(conn) = ctx.out.conns.get_mut(key) else {
        return;
    };
    let member = conn.phase == Phase::Member;
    match msg {
        ClientMessage::Pong(_) => {}
        ClientMessage::Bye => ctx.out.doom(key, LeaveReason::Quit),
        ClientMessage::Ping(seq) => {
            if ctx.allow_frame(key, None) {
                ctx.send(key, &ServerMessage::Pong(seq));
            }
        }
        ClientMessage::Hello(_) if member => {
            ctx.protocol_error(
                key,
                ErrorCode::AlreadyLoggedIn,
                "this connection is already in the room",
                None,
            );
        }
        ClientMessage::Hello(hello) => {
            if ctx.allow_frame(key, None) {
                login::hello(ctx, key, hello);
            }
        }
        ClientMessage::Chat(chat) if member => chat::chat(ctx, key, chat),
        ClientMessage::FileChunk(chunk) if member => transfer::file_chunk(ctx, key, chunk),
        ClientMessage::FileOffer(offer) if member => {
            if ctx.allow_frame(key, offer.reference) {
                transfer::file_offer(ctx, key, offer);
            }
        }
        ClientMessage::FileAccept(accept) if member => {
            if ctx.allow_frame(key, None) {
                transfer::file_accept(ctx, key, accept);
            }
        }
        ClientMessage::FileDecline(decline) if member => {
            if ctx.allow_frame(key, None) {
                transfer::file_decline(ctx, key, decline.transfer);
            }
        }
        ClientMessage::FileCancel(cancel) if member => {
            if ctx.allow_frame(key, None) {
                transfer::file_cancel(ctx, key, cancel.transfer);
            }
        }
        ClientMessage::VoiceJoin if member => {
            if ctx.allow_frame(key, None) {
                voice::voice_join(ctx, key, None);
            }
        }
        ClientMessage::VoiceJoinRoom(j) if member => {
            if ctx.allow_frame(key, None) {
                voice::voice_join(ctx, key, j.room);
            }
        }
        ClientMessage::RoomMode(m) if member => {
            if ctx.allow_frame(key, None) {
                let room = m.room.clone();
                let r = moderate::room_mode(ctx, moderate::Actor::Member(key), m);
                moderate::answer_in(ctx, key, &room, r);
            }
        }
        ClientMessage::Invite(i) if member => {
            if ctx.allow_frame(key, None) {
                let room = i.room.clone();
                let r = moderate::invite(ctx, moderate::Actor::Member(key), i);
                moderate::answer_in(ctx, key, &room, r);
            }
        }
        ClientMessage::VoiceLeave if member => {
            if ctx.allow_frame(key, None) {
                voice::voice_leave(ctx, key);
            }
        }
        ClientMessage::History(req) if member => history::history(ctx, key, req),
        ClientMessage::Rooms if member => {
            if ctx.allow_frame(key, None) {
                rooms::list(ctx, key);
            }
        }
        ClientMessage::Join(r) if member => {
            if ctx.allow_frame(key, None) {
                rooms::join(ctx, key, r.room, r.invite_only);
            }
        }
        ClientMessage::Part(r) if member => {
            if ctx.allow_frame(key, None) {
                rooms::part(ctx, key, r.room);
            }
        }
        ClientMessage::Topic(t) if member => {
            if ctx.allow_frame(key, None) {
                rooms::topic(ctx, key, t.room, t.topic);
            }
        }
        ClientMessage::Dm(m) if member => dm::dm(ctx, key, m),
        ClientMessage::DmHistory(r) if member => dm::history(ctx, key, r),
        ClientMessage::DmRead(r) if member => dm::read(ctx, key, r.with, r.id),
        ClientMessage::Kick(m) if member => {
            if ctx.allow_frame(key, None) {
                let r = moderate::kick(ctx, moderate::Actor::Member(key), m, false);
                moderate::answer(ctx, key, r);
            }
        }
        ClientMessage::Ban(m) if member => {
            if ctx.allow_frame(key, None) {
                let r = moderate::kick(ctx, moderate::Actor::Member(key), m, true);
                moderate::answer(ctx, key, r);
            }
        }
        ClientMessage::Unban(m) if member => {
            if ctx.allow_frame(key, None) {
                let kind = crate::server::moderation::Kind::Ban;
                let r = moderate::lift(ctx, moderate::Actor::Member(key), m, kind);
                moderate::answer(ctx, key, r);
            }
        }
        ClientMessage::Mute(m) if member => {
            if ctx.allow_frame(key, None) {
                let r = moderate::mute(ctx, moderate::Actor::Member(key), m);
                moderate::answer(ctx, key, r);
            }
        }
        ClientMessage::Unmute(m) if member => {
            if ctx.allow_frame(key, None) {
                let kind = crate::server::moderation::Kind::Mute;
                let r = moderate::lift(ctx, moderate::Actor::Member(key), m, kind);
                moderate::answer(ctx, key, r);
            }
        }
        ClientMessage::SetRole(r) if member => {
            if ctx.allow_frame(key, None) {
                let r = moderate::set_role(ctx, moderate::Actor::Member(key), r);
                moderate::answer(ctx, key, r);
            }
        }
        ClientMessage::Delete(d) if member => {
            if ctx.allow_frame(key, None) {
                let r = moderate::delete(ctx, moderate::Actor::Member(key), d.id, d.room);
                moderate::answer(ctx, key, r);
            }
        }
        ClientMessage::VoiceMute(m) if member => {
            if ctx.allow_frame(key, None) {
                voice::voice_mute(ctx, key, m.muted);
            }
        }
        ClientMessage::Register(r) if member => {
            if ctx.allow_frame(key, None) {
                account::register(ctx, key, r.password);
            }
        }
        ClientMessage::ChangePassword(c) if member => {
            if ctx.allow_frame(key, None) {
                account::change_password(ctx, key, c.old, c.new);
            }
        }
        ClientMessage::Logout if member => {
            if ctx.allow_frame(key, None) {
                account::logout(ctx, key);
            }
        }
        ClientMessage::Chat(ChatSend { reference, .. })
        | ClientMessage::Dm(crate::protocol::DmSend { reference, .. })
        | ClientMessage::FileOffer(FileOffer { reference, .. }) => {
            ctx.protocol_error(key, ErrorCode::NotLoggedIn, "send hello first", reference);
        }
        ClientMessage::FileChunk(_)
        | ClientMessage::FileAccept(_)
        | ClientMessage::FileDecline(_)
        | ClientMessage::FileCancel(_)
        | ClientMessage::VoiceJoin
        | ClientMessage::VoiceJoinRoom(_)
        | ClientMessage::RoomMode(_)
        | ClientMessage::Invite(_)
        | ClientMessage::VoiceLeave
        | ClientMessage::VoiceMute(_)
        | ClientMessage::History(_)
        | ClientMessage::Register(_)
        | ClientMessage::ChangePassword(_)
        | ClientMessage::Logout
        | ClientMessage::Rooms
        | ClientMessage::Join(_)
        | ClientMessage::Part(_)
        | ClientMessage::Topic(_)
        | ClientMessage::Kick(_)
        | ClientMessage::Ban(_)
        | ClientMessage::Unban(_)
        | ClientMessage::Mute(_)
        | ClientMessage::Unmute(_)
        | ClientMessage::SetRole(_)
        | ClientMessage::Delete(_)
        | ClientMessage::DmHistory(_)
        | ClientMessage::DmRead(_) => {
            ctx.protocol_error(key, ErrorCode::NotLoggedIn, "send hello first", None);
        }
    }
}

impl Ctx<'_> {
    /// Takes a token from `key`'s bucket, or answers `rate_limited`.
    pub(crate) fn allow_frame(&mut self, key: usize, reference: Option<u64>) -> bool {
        let (rate, burst, now) = (self.config.rate_per_sec, self.config.rate_burst, self.now);
        let Some(conn) = self.out.conns.get_mut(key) else {
            return false;
        };
        let took = conn.bucket.take(rate, burst, now);
        if let Some((k, charged)) = self.frame_charge.as_mut()
            && *k == key
        {
            *charged = true;
        }
        if took {
            return true;
        }
        self.protocol_error(key, ErrorCode::RateLimited, RATE_LIMITED_MSG, reference);
        false
    }

    /// Queues an error frame for `key`. Fatal codes close the connection
    /// once the frame is flushed (reason `error`).
    pub(crate) fn protocol_error(
        &mut self,
        key: usize,
        code: ErrorCode,
        message: &str,
        reference: Option<u64>,
    ) {
        self.protocol_error_about(key, code, message, reference, None);
    }

    /// Like [`Ctx::protocol_error`], naming the transfer it is about.
    pub(crate) fn protocol_error_about(
        &mut self,
        key: usize,
        code: ErrorCode,
        message: &str,
        reference: Option<u64>,
        transfer: Option<u64>,
    ) {
        self.error_with(key, code, message, reference, transfer, None);
    }

    /// Like [`Ctx::protocol_error`], naming the room it is about (as the
    /// client wrote it), for answers to messages that name one.
    pub(crate) fn room_error(&mut self, key: usize, code: ErrorCode, message: &str, room: &str) {
        self.error_with(key, code, message, None, None, Some(room));
    }

    fn error_with(
        &mut self,
        key: usize,
        code: ErrorCode,
        message: &str,
        reference: Option<u64>,
        transfer: Option<u64>,
        room: Option<&str>,
    ) {
        let (rate, burst, now) = (self.config.rate_per_sec, self.config.rate_burst, self.now);
        let Some(conn) = self.out.conns.get_mut(key) else {
            return;
        };
        let mut code = code;
        let mut message = message;
        if !code.is_fatal()
            && let Some((k, charged)) = self.frame_charge.as_mut()
            && *k == key
            && !*charged
        {
            // An answer to a frame not charged yet: the frame is charged now,
            // and without a token the answer is `rate_limited` instead.
            *charged = true;
            if !conn.bucket.take(rate, burst, now) {
                code = ErrorCode::RateLimited;
                message = RATE_LIMITED_MSG;
            }
        }
        if code != ErrorCode::RateLimited && conn.errors_logged < ERRORS_LOGGED {
            conn.errors_logged += 1;
            if self.log_gate.allow(conn.addr, now) {
                tracing::info!(peer = %conn.peer, %code, message, "protocol error");
            }
        }
        self.stats.errors_sent += 1;
        self.metrics.error_sent(code);
        let frame = if code == ErrorCode::RateLimited && reference.is_none() && transfer.is_none() {
            self.rate_limited_frame.clone()
        } else {
            encode_server(&ServerMessage::Error(crate::protocol::ErrorMsg {
                code,
                message: message.to_owned(),
                reference,
                transfer,
                room: room.map(str::to_owned),
            }))
        };
        self.push_private(key, frame);
        if code.is_fatal()
            && let Some(conn) = self.out.conns.get_mut(key)
        {
            conn.close_reason = Some(LeaveReason::Error);
            self.out.doom(key, LeaveReason::Error);
        }
    }

    /// Queues one message for `key` alone.
    pub(crate) fn send(&mut self, key: usize, msg: &ServerMessage) {
        self.push_private(key, encode_server(msg));
    }

    /// Queues a frame for `key` alone, after its `welcome` if that is still
    /// waiting for the end-of-turn batch: the welcome is always first.
    pub(crate) fn push_private(&mut self, key: usize, frame: Bytes) {
        if self.room.welcome_pending(key) {
            self.room.flush_welcomes(&mut self.out);
        }
        self.out.push(key, frame);
    }

    /// Sends pending welcomes and join/leave notices now: at the end of a
    /// turn, and before a room-wide frame that must not overtake them.
    pub(crate) fn flush_presence(&mut self) {
        self.room.flush_presence(now_ms(), &mut self.out);
    }

    /// An uploader paused for the disk may be read again: it goes on the
    /// ready list (edge-triggered readiness will not repeat itself).
    pub(crate) fn resume_reading(&mut self, key: usize) {
        if let Some(conn) = self.out.conns.get_mut(key)
            && !conn.ready
        {
            conn.ready = true;
            self.ready.push(key);
        }
    }
}
