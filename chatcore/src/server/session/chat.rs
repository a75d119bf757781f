//! `chat`: a member's text to the room, checked, offered to the hooks,
//! given an id and a timestamp by the room, and broadcast. With a history
//! store, the room holds it until the store commits it: [`submit_store`]
//! hands the turn's chats to the store, [`drain_store`] delivers what was
//! committed and tells the senders of what was not.

use super::Ctx;
use super::text::{accept_text, decided};
use crate::protocol::{ChatSend, ErrorCode};
use crate::time::now_ms;

/// Chats accepted but not yet committed, at most, per room: past it (a
/// store far behind), new chats get `store_unavailable` instead of growing
/// memory.
const MAX_PENDING_CHATS: usize = 100_000;
/// The `error` text of `store_unavailable`.
pub(crate) const STORE_UNAVAILABLE_MSG: &str =
    "the server could not store the message in its history; it was not delivered";

/// `chat` from member `key`.
pub(crate) fn chat(ctx: &mut Ctx<'_>, key: usize, chat: ChatSend) {
    let ChatSend {
        text,
        reference,
        room,
    } = chat;
    if !accept_text(ctx, key, &text, reference) {
        return;
    }
    let Some(from) = ctx.lobby.member(key).cloned() else {
        return;
    };
    let named = match &room {
        None => None,
        Some(raw) => match super::who::room_of(ctx, key, raw, reference) {
            Some(id) => Some(id),
            None => return,
        },
    };
    let room_name = named.and_then(|id| ctx.rooms.get(id)?.name().map(str::to_owned));
    let decision = ctx.hooks.on_chat_in(&from, room_name.as_deref(), &text);
    let Some(text) = decided(ctx, key, decision, text, reference) else {
        return;
    };
    // (Only computed for a named room: the default room's key is "".)
    let room_key = match named {
        None => String::new(),
        Some(id) => ctx
            .rooms
            .get(id)
            .and_then(|r| r.name())
            .map(crate::server::room::names::skeleton)
            .unwrap_or_default(),
    };
    if ctx.muted(key, &room_key) {
        let why = "you are muted in this room";
        ctx.protocol_error(key, ErrorCode::Muted, why, reference);
        return;
    }
    let waiting = match named {
        None => ctx.room.pending_chats(),
        Some(id) => ctx.rooms.get(id).map_or(0, |r| r.pending_chats()),
    };
    if ctx.store.is_some() && waiting >= MAX_PENDING_CHATS {
        ctx.protocol_error(
            key,
            ErrorCode::StoreUnavailable,
            STORE_UNAVAILABLE_MSG,
            reference,
        );
        return;
    }
    let ts = now_ms();
    let room = match named {
        None => &mut *ctx.room,
        Some(id) => match ctx.rooms.get_mut(id) {
            Some(room) => room,
            None => return,
        },
    };
    if room.chat(key, text, reference, ts, &mut ctx.out).is_some() {
        ctx.stats.messages += 1;
    }
}
