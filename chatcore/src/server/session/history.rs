//! `history`: pages of older chats, and the chats a resuming client missed
//! (`hello` with `last_seen`), answered from the room's in-memory history.
//!
//! Rules (docs/protocol.md 6.11, 7.16 and section 21): a page's `limit` is 1 to
//! `history_page_max` (else `history_limit`); `before` and `last_seen` must
//! name ids the server assigned (else `unknown_message`); a request costs
//! one token of the connection's rate-limit bucket, like a chat.

use super::Ctx;
use crate::protocol::{ErrorCode, History, HistoryRequest, ServerMessage};

/// `history` from member `key`: one page of chats before `before`.
pub(crate) fn history(ctx: &mut Ctx<'_>, key: usize, req: HistoryRequest) {
    if !ctx.allow_frame(key, None) {
        return;
    }
    let max = ctx.config.history_page_max;
    if req.limit == 0 || req.limit > max {
        let msg = format!("limit must be 1 to {max}, not {}", req.limit);
        ctx.protocol_error(key, ErrorCode::HistoryLimit, &msg, None);
        return;
    }
    let next = ctx.room.next_id();
    let before = match req.before {
        None => next,
        Some(id) if id == 0 || id > next => {
            let msg = format!("no message {id}: ids run from 1 to {}", next - 1);
            ctx.protocol_error(key, ErrorCode::UnknownMessage, &msg, None);
            return;
        }
        Some(id) => id,
    };
    let (messages, more) = ctx.room.history_page(before, req.limit as usize);
    ctx.send(
        key,
        &ServerMessage::History(History {
            messages,
            more,
            before: req.before,
            after: None,
            gap: false,
        }),
    );
}

/// A `hello` with `last_seen` was accepted: after its `welcome`, member
/// `key` gets the chats after `last_seen` (the newest `resume_max` of them,
/// `gap` set when it missed more), or `unknown_message` for an id the
/// server never assigned (a server that lost its memory in a restart).
pub(crate) fn resume(ctx: &mut Ctx<'_>, key: usize, last_seen: u64) {
    let newest = ctx.room.next_id() - 1;
    if last_seen > newest {
        let msg = format!("no message {last_seen}: the newest is {newest}");
        ctx.protocol_error(key, ErrorCode::UnknownMessage, &msg, None);
        return;
    }
    let (messages, gap) = ctx
        .room
        .history_after(last_seen, ctx.config.resume_max as usize);
    ctx.send(
        key,
        &ServerMessage::History(History {
            messages,
            more: gap,
            before: None,
            after: Some(last_seen),
            gap,
        }),
    );
}
