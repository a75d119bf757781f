//! The session's side of the history store thread: each turn's accepted
//! chats and direct messages go to it in one batch ([`submit_store`]); what
//! it answers ([`drain_store`]) is sorted out here and handed to the part
//! that asked (commits release chats, pages go to `history`, unread counts
//! to `dm`, deletions to `moderate`).

use super::Ctx;
use crate::protocol::ErrorCode;
use crate::server::store::{StoreReply, StoreRequest};
use crate::time::now_ms;

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
            super::chat::STORE_UNAVAILABLE_MSG,
            failed.reference,
        );
    }
}
