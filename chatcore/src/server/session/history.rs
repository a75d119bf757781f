//! `history`: pages of older chats, and the chats a resuming client missed
//! (`hello` with `last_seen`).
//!
//! Rules (docs/protocol.md 6.11, 7.16 and section 21): a page's `limit` is 1
//! to `history_page_max` (else `history_limit`); `before` and `last_seen`
//! must name ids the server assigned (else `unknown_message`); a request
//! costs one token of the connection's rate-limit bucket, like a chat.
//!
//! Answers come from the room's memory (the last `history_len` delivered
//! chats) when it holds what is asked. Otherwise, with a history store, the
//! store thread is asked ([`StoreRequest::Page`]) and the answer is sent
//! when its reply comes back through the waker ([`store_page`]); the asker
//! is remembered in [`HistoryWaits`] by a tag, and a reply for a connection
//! that left (or whose key now belongs to someone else) is dropped.
//! Without a store, memory is all there is.

use std::collections::HashMap;

use super::Ctx;
use crate::protocol::{ErrorCode, History, HistoryRequest, ServerMessage};
use crate::server::session::RATE_LIMITED_MSG;
use crate::server::store::{StoreRequest, StoredChat};

/// Store pages asked and not answered yet, over all connections, at most:
/// past it (a store far behind) requests get `rate_limited`, so waiting
/// requests cannot grow memory without bound.
const MAX_WAITS: usize = 4096;

/// What an answer from the store is for.
#[derive(Debug, Clone)]
enum Asked {
    /// A `history` request with this `before` (echoed), in this room
    /// (`None`: the default room).
    Page {
        before: Option<u64>,
        room: Option<String>,
    },
    /// A `dm_history` page of the conversation with `with` (as asked),
    /// `before` echoed.
    Dm { with: String, before: Option<u64> },
    /// The resume of a `hello` with this `last_seen`, for at most `max`.
    Resume { after: u64, max: usize },
}

/// One store page waited for.
#[derive(Debug, Clone)]
struct Wait {
    /// The asking connection.
    key: usize,
    /// Its session then: a reused key is someone else.
    session: u64,
    /// What for.
    asked: Asked,
}

/// Store pages in flight, by the tag given to the store; owned by the
/// reactor, lent to handlers in [`Ctx`].
#[derive(Debug, Default)]
pub(crate) struct HistoryWaits {
    /// Tag -> who asked and why.
    waits: HashMap<u64, Wait>,
    /// The next tag.
    next_tag: u64,
}

/// `history` from member `key`: one page of chats before `before`, in
/// the default room or in a named room it is in.
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
    let named = match &req.room {
        None => None,
        Some(raw) => match super::who::room_of(ctx, key, raw, None) {
            Some(id) => Some(id),
            None => return,
        },
    };
    let room = match named {
        None => &*ctx.room,
        Some(id) => match ctx.rooms.get(id) {
            Some(room) => room,
            None => return,
        },
    };
    let next = room.next_id();
    let before = match req.before {
        None => room.delivered_next(),
        Some(id) if id == 0 || id > next => {
            let msg = format!("no message {id}: ids run from 1 to {}", next - 1);
            ctx.protocol_error(key, ErrorCode::UnknownMessage, &msg, None);
            return;
        }
        // Chats not delivered yet reach the asker live, not in a page.
        Some(id) => id.min(room.delivered_next()),
    };
    let limit = req.limit as usize;
    let page = match room.history_page(before, limit) {
        Some(page) => page,
        None if ctx.store.is_some() => {
            let store_room = room.name().unwrap_or_default().to_owned();
            let asked = Asked::Page {
                before: req.before,
                room: req.room,
            };
            ask_store(ctx, key, asked, before, req.limit, store_room);
            return;
        }
        None => room.history_page_kept(before, limit),
    };
    let room_name = room.name().map(str::to_owned);
    send_page(ctx, key, req.before, room_name, page);
}

/// A `hello` with `last_seen` was accepted: after its `welcome`, member
/// `key` gets the chats after `last_seen` (the newest `resume_max` of them,
/// `gap` set when it missed more), or `unknown_message` for an id the
/// server never assigned (a server that lost its memory in a restart).
pub(crate) fn resume(ctx: &mut Ctx<'_>, key: usize, last_seen: u64) {
    let next = ctx.room.next_id();
    if last_seen >= next {
        let msg = format!("no message {last_seen}: the newest is {}", next - 1);
        ctx.protocol_error(key, ErrorCode::UnknownMessage, &msg, None);
        return;
    }
    let max = ctx.config.resume_max as usize;
    let (messages, gap) = match ctx.room.history_after(last_seen, max) {
        Some(found) => found,
        None if ctx.store.is_some() => {
            // One more than `max`, newest first below what was delivered:
            // if all of them are after `last_seen`, more were missed.
            let before = ctx.room.delivered_next();
            let asked = Asked::Resume {
                after: last_seen,
                max,
            };
            ask_store(
                ctx,
                key,
                asked,
                before,
                ctx.config.resume_max + 1,
                String::new(),
            );
            return;
        }
        None => ctx.room.history_after_kept(last_seen, max),
    };
    send_resume(ctx, key, last_seen, messages, gap);
}

/// The store thread answered page `tag` (called from the reactor's drain of
/// store replies): the answer goes to the asker if it is still there.
pub(crate) fn store_page(
    ctx: &mut Ctx<'_>,
    conn_key: usize,
    tag: u64,
    chats: Vec<StoredChat>,
    more: bool,
) {
    let Some(wait) = take_wait(ctx, conn_key, tag) else {
        return; // gone, or its key reused: nobody to answer
    };
    if let Asked::Dm { with, before } = wait.asked {
        let page = crate::protocol::DmHistory {
            with,
            messages: chats.into_iter().map(StoredChat::into_dm).collect(),
            more,
            before,
        };
        ctx.send(wait.key, &ServerMessage::DmHistory(page));
        return;
    }
    let mut messages: Vec<_> = chats.into_iter().map(StoredChat::into_chat).collect();
    match wait.asked {
        Asked::Page { before, room } => {
            let room = room.and_then(|r| {
                let id = ctx.rooms.find(&r)?;
                ctx.rooms.get(id)?.name().map(str::to_owned)
            });
            send_page(ctx, wait.key, before, room, (messages, more));
        }
        Asked::Dm { .. } => {}
        Asked::Resume { after, max } => {
            messages.retain(|c| c.id > after);
            let gap = messages.len() > max;
            if gap {
                messages.drain(..messages.len() - max);
            }
            send_resume(ctx, wait.key, after, messages, gap);
        }
    }
}

/// The store could not read the page asked with `tag`: the asker, if still
/// here, gets `store_unavailable` (a resume too: an empty resume would say
/// "you missed nothing"). Logged at most once per streak of failures
/// (`store_failing`), like failed writes.
pub(crate) fn store_page_failed(ctx: &mut Ctx<'_>, conn_key: usize, tag: u64, error: &str) {
    if !*ctx.store_failing {
        *ctx.store_failing = true;
        tracing::error!(error, "cannot read the history store");
    }
    let Some(wait) = take_wait(ctx, conn_key, tag) else {
        return;
    };
    ctx.protocol_error(
        wait.key,
        ErrorCode::StoreUnavailable,
        "the server could not read its history; try again later",
        None,
    );
}

/// The wait of store page `tag`, if its asker is still here (not gone,
/// its key not reused by someone else).
fn take_wait(ctx: &mut Ctx<'_>, conn_key: usize, tag: u64) -> Option<Wait> {
    let wait = ctx.history_waits.waits.remove(&tag)?;
    let here = wait.key == conn_key
        && ctx
            .lobby
            .member(wait.key)
            .is_some_and(|m| m.session == wait.session);
    here.then_some(wait)
}

/// Asks the store for a `dm_history` page: the newest `limit` messages
/// below `before` of conversation `room` (its key), for `with` as asked.
pub(crate) fn ask_dm_page(
    ctx: &mut Ctx<'_>,
    key: usize,
    with: String,
    asked_before: Option<u64>,
    before: u64,
    limit: u32,
    room: String,
) {
    let asked = Asked::Dm {
        with,
        before: asked_before,
    };
    ask_store(ctx, key, asked, before, limit, room);
}

/// Asks the store for the newest `limit` chats below `before` on behalf of
/// `key`, or answers `rate_limited` when too many pages are in flight.
fn ask_store(ctx: &mut Ctx<'_>, key: usize, asked: Asked, before: u64, limit: u32, room: String) {
    let Some(session) = ctx.lobby.member(key).map(|m| m.session) else {
        return;
    };
    let Some(store) = ctx.store else {
        return;
    };
    if ctx.history_waits.waits.len() >= MAX_WAITS {
        ctx.protocol_error(key, ErrorCode::RateLimited, RATE_LIMITED_MSG, None);
        return;
    }
    let waits = &mut *ctx.history_waits;
    let tag = waits.next_tag;
    waits.next_tag = waits.next_tag.wrapping_add(1);
    let request = StoreRequest::Page {
        conn_key: key,
        before: Some(before),
        after: None,
        limit,
        room,
        tag,
    };
    if store.submit(request) {
        waits.waits.insert(
            tag,
            Wait {
                key,
                session,
                asked,
            },
        );
    } else {
        let msg = "the history store is not available";
        ctx.protocol_error(key, ErrorCode::StoreUnavailable, msg, None);
    }
}

/// Sends a page (`before` echoed).
fn send_page(
    ctx: &mut Ctx<'_>,
    key: usize,
    before: Option<u64>,
    room: Option<String>,
    (messages, more): (Vec<crate::protocol::Chat>, bool),
) {
    let page = History {
        room,
        messages,
        more,
        before,
        after: None,
        gap: false,
    };
    ctx.send(key, &ServerMessage::History(page));
}

/// Sends the resume frame for `last_seen`.
fn send_resume(
    ctx: &mut Ctx<'_>,
    key: usize,
    last_seen: u64,
    messages: Vec<crate::protocol::Chat>,
    gap: bool,
) {
    let resume = History {
        room: None,
        messages,
        more: gap,
        before: None,
        after: Some(last_seen),
        gap,
    };
    ctx.send(key, &ServerMessage::History(resume));
}
