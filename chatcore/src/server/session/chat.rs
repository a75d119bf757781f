//! `chat`: a member's text to the room, checked, offered to the hooks,
//! given an id and a timestamp by the room, and broadcast. With a history
//! store, the room holds it until the store commits it: [`submit_store`]
//! hands the turn's chats to the store, [`drain_store`] delivers what was
//! committed and tells the senders of what was not.

use super::Ctx;
use crate::protocol::{ChatSend, ErrorCode};
use crate::server::hooks::ChatDecision;
use crate::server::store::{StoreReply, StoreRequest};
use crate::time::now_ms;

/// Chats accepted but not yet committed, at most, per room: past it (a
/// store far behind), new chats get `store_unavailable` instead of growing
/// memory.
const MAX_PENDING_CHATS: usize = 100_000;
/// The `error` text of `store_unavailable`.
const STORE_UNAVAILABLE_MSG: &str =
    "the server could not store the message in its history; it was not delivered";

/// Charges the rate limit and checks a member's text (a chat's or a direct
/// message's): not blank, at most `max_text_bytes`; answers the error with
/// `reference` if not.
pub(crate) fn accept_text(
    ctx: &mut Ctx<'_>,
    key: usize,
    text: &str,
    reference: Option<u64>,
) -> bool {
    if !ctx.allow_frame(key, reference) {
        return false;
    }
    if text.trim().is_empty() {
        ctx.protocol_error(key, ErrorCode::TextEmpty, "the text is empty", reference);
        return false;
    }
    if text.len() > ctx.config.max_text_bytes {
        let msg = format!(
            "the text is longer than {} bytes",
            ctx.config.max_text_bytes
        );
        ctx.protocol_error(key, ErrorCode::TextTooLong, &msg, reference);
        return false;
    }
    true
}

/// What the hooks decided about `text` from `key`: the text to deliver, or
/// `None` after answering `rejected` (a refusal, or a rewrite left empty).
pub(crate) fn decided(
    ctx: &mut Ctx<'_>,
    key: usize,
    decision: ChatDecision,
    text: String,
    reference: Option<u64>,
) -> Option<String> {
    let refused = match decision {
        ChatDecision::Deliver => return Some(text),
        ChatDecision::Rewrite(new) => match fit_text(new, ctx.config.max_text_bytes) {
            Some(new) => return Some(new),
            None => "the message was removed by the server".to_owned(),
        },
        ChatDecision::Reject(why) => why,
    };
    ctx.protocol_error(key, ErrorCode::Rejected, &refused, reference);
    None
}

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
        Some(raw) => match super::rooms::room_of(ctx, key, raw, reference) {
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

/// Hands the chats accepted this turn to the store, in one `Append` (one
/// transaction). Called by the reactor at the end of each turn.
pub(crate) fn submit_store(ctx: &mut Ctx<'_>) {
    let Some(store) = ctx.store else {
        return;
    };
    let mut batch = ctx.room.take_unsent();
    ctx.rooms.take_unsent(&mut batch);
    batch.extend(ctx.dms.take_unsent());
    if batch.is_empty() {
        return;
    }
    // Rooms are visited one after the other: the store wants ids in order
    // (its `Committed` names the largest).
    batch.sort_unstable_by_key(|c| c.id);
    let ids: Vec<u64> = batch.iter().map(|c| c.id).collect();
    if !store.submit(StoreRequest::Append(batch)) {
        store_failed(ctx, &ids, "the store thread has stopped");
    }
}

/// Acts on what the store thread answered (the reactor calls it when the
/// waker fired): commits deliver, failures are told to their senders.
pub(crate) fn drain_store(ctx: &mut Ctx<'_>) {
    let Some(store) = ctx.store else {
        return;
    };
    while let Some(reply) = store.poll() {
        match reply {
            StoreReply::Committed { up_to } => {
                if *ctx.store_failing {
                    *ctx.store_failing = false;
                    tracing::info!("the history store accepts writes again");
                }
                let ts = now_ms();
                ctx.room.release(up_to, ts, &mut ctx.out);
                ctx.rooms.release(up_to, ts, &mut ctx.out);
                let lobby = &*ctx.lobby;
                let here = |k: usize, s: u64| lobby.member(k).is_some_and(|m| m.session == s);
                ctx.dms.release(up_to, here, &mut ctx.out);
            }
            StoreReply::Failed { ids, error } => store_failed(ctx, &ids, &error),
            StoreReply::Unread {
                conn_key,
                tag,
                list,
            } => super::dm::unread_answer(ctx, conn_key, tag, list),
            StoreReply::DeletedOld { id, found, then } => {
                super::moderate::deleted_old(ctx, id, found, then);
            }
            // Answered by the history request's handler (session/history.rs).
            StoreReply::Page {
                conn_key,
                tag,
                chats,
                more,
                failed,
            } => match failed {
                None => super::history::store_page(ctx, conn_key, tag, chats, more),
                Some(error) => super::history::store_page_failed(ctx, conn_key, tag, &error),
            },
        }
    }
}

/// A batch could not be stored: it is dropped, its senders get
/// `store_unavailable`, and the first failure of a streak is logged.
fn store_failed(ctx: &mut Ctx<'_>, ids: &[u64], error: &str) {
    if !*ctx.store_failing {
        *ctx.store_failing = true;
        tracing::error!(
            error,
            messages = ids.len(),
            "cannot write the history store; chat messages are refused until it works again"
        );
    }
    ctx.stats.store_failures += ids.len() as u64;
    let mut failed_chats = ctx.room.drop_failed(ids);
    failed_chats.extend(ctx.rooms.drop_failed(ids));
    for (key, session, reference) in ctx.dms.drop_failed(ids) {
        if ctx.lobby.member(key).is_some_and(|m| m.session == session) {
            failed_chats.push(crate::server::room::FailedChat { key, reference });
        }
    }
    for failed in failed_chats {
        ctx.protocol_error(
            failed.key,
            ErrorCode::StoreUnavailable,
            STORE_UNAVAILABLE_MSG,
            failed.reference,
        );
    }
}

/// A text from the server side (a hook's rewrite, a broadcast) held to the
/// limits clients rely on: `None` if blank, else cut to `max` bytes at a
/// character boundary.
pub(crate) fn fit_text(mut text: String, max: usize) -> Option<String> {
    if text.trim().is_empty() {
        return None;
    }
    let keep = crate::protocol::text::cut(&text, max).len();
    text.truncate(keep);
    Some(text)
}
