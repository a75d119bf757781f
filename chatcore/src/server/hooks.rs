//! Hooks: how an embedding program observes or steers the room.
//!
//! Hooks run on the reactor thread, inside the loop turn that handled the
//! event: keep them quick (no blocking I/O), or hand work to another thread.

use std::net::SocketAddr;

use crate::protocol::{LeaveReason, Moderated, UserInfo};

/// Whether a login may proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinDecision {
    /// Let them in.
    Accept,
    /// Refuse with `join_denied` and this message; the connection stays open
    /// for another `hello`.
    Deny(String),
}

/// What to do with a chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatDecision {
    /// Deliver it as sent.
    Deliver,
    /// Deliver this text instead.
    Rewrite(String),
    /// Refuse it with `rejected` and this message; nobody else sees it.
    Reject(String),
}

/// Callbacks into the embedding program. Every method has a default that
/// changes nothing, so implement only what you need.
pub trait Hooks: Send + 'static {
    /// Someone asks to join under `name` (already trimmed and valid) from `peer`.
    fn on_join(&mut self, name: &str, peer: SocketAddr) -> JoinDecision {
        let _ = (name, peer);
        JoinDecision::Accept
    }

    /// Someone has joined (after any renaming to a unique name).
    fn on_joined(&mut self, user: &UserInfo) {
        let _ = user;
    }

    /// A member sent `text` (already checked against the limits).
    fn on_chat(&mut self, from: &UserInfo, text: &str) -> ChatDecision {
        let _ = (from, text);
        ChatDecision::Deliver
    }

    /// A member has left.
    fn on_leave(&mut self, user: &UserInfo, reason: LeaveReason) {
        let _ = (user, reason);
    }

    /// A member sent `text` to room `room` (`None`: the default room),
    /// already checked against the limits. The default asks
    /// [`Hooks::on_chat`], so hooks written before rooms existed see the
    /// chats of every room.
    fn on_chat_in(&mut self, from: &UserInfo, room: Option<&str>, text: &str) -> ChatDecision {
        let _ = room;
        self.on_chat(from, text)
    }

    /// A member asks to enter named room `room` (it passed the server's
    /// own checks: name, limits, bans, invitations). `Deny` answers
    /// `join_denied` with the message, naming the room.
    fn on_room_join(&mut self, user: &UserInfo, room: &str) -> JoinDecision {
        let _ = (user, room);
        JoinDecision::Accept
    }

    /// `from` sends a direct message to `to` (the recipient's name as
    /// written); like a chat, it may be delivered, rewritten or refused.
    fn on_dm(&mut self, from: &UserInfo, to: &str, text: &str) -> ChatDecision {
        let _ = (from, to, text);
        ChatDecision::Deliver
    }

    /// A moderation action was taken (the room is told the same
    /// `moderated`): kicks, bans, mutes, roles, invitations, by members,
    /// operators or the embedding program.
    fn on_moderated(&mut self, action: &Moderated) {
        let _ = action;
    }
}

/// Hooks that do nothing: the default.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl Hooks for NoHooks {}
