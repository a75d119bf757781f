//! `dm`, `dm_history`, `dm_read`: direct messages between two members
//! (docs/protocol.md section 25), and `dm_unread` after a registered login.
//!
//! A conversation is named by its two **parties**: `a:SKELETON` for a
//! member logged in with a registered name (the same on every device and
//! after a restart), `g:SKELETON` for a guest. Only registered members page
//! their conversations (`dm_history`): a guest's name is anyone's next time,
//! so a guest sees direct messages live only, and a registered member's
//! conversation with guest `ann` holds what every guest of that name wrote
//! to it, each under its name. Its key, the
//! store's `room` for its rows, is U+0001, the smaller party, U+0001, the
//! larger: no room name holds a control character, so it never meets a
//! room. A message to a registered name that is away is stored and counted
//! unread; a guest can only be written to while it is online.
//!
//! Like chats, direct messages are written before they are delivered: with
//! a store they wait in [`Dms`] for the commit of their turn's batch.

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;

use super::Ctx;
use super::who::{party_of, peer};
use crate::protocol::{
    Dm, DmHistory, DmHistoryRequest, DmSend, DmUnread, DmUnreadEntry, ErrorCode, ServerMessage,
    encode_server,
};
use crate::server::room::Outbox;
use crate::server::store::{StoreRequest, StoredChat};
use crate::time::now_ms;

/// Direct messages waiting for the store, at most: past it, `dm` gets
/// `store_unavailable`.
const MAX_PENDING: usize = 10_000;

/// A direct message accepted but not delivered yet.
#[derive(Debug)]
struct PendingDm {
    /// Its id.
    id: u64,
    /// The sender (key, session) and its own copy (with its `ref`).
    sender: (usize, u64, Bytes),
    /// The recipient online, (key, session), and its copy.
    recipient: Option<(usize, u64)>,
    /// The recipient's copy.
    frame: Bytes,
    /// The sender's `ref`, for a failure.
    reference: Option<u64>,
}

/// Direct messages waiting for the store, and the registered names.
#[derive(Debug, Default)]
pub(crate) struct Dms {
    /// Waiting for their commit, oldest first.
    pending: VecDeque<PendingDm>,
    /// Accepted and not handed to the store yet.
    unsent: Vec<StoredChat>,
    /// Skeletons of the registered names: who may get messages while away.
    pub registered: HashSet<String>,
}

impl Dms {
    /// The direct messages accepted since the last call, for the store.
    pub(crate) fn take_unsent(&mut self) -> Vec<StoredChat> {
        std::mem::take(&mut self.unsent)
    }

    /// Whether any waits for the store.
    pub(crate) fn is_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Delivers every waiting message up to `up_to` (committed) to whoever
    /// of its two ends is still here with the same session.
    pub(crate) fn release(
        &mut self,
        up_to: u64,
        here: impl Fn(usize, u64) -> bool,
        out: &mut impl Outbox,
    ) {
        while self.pending.front().is_some_and(|p| p.id <= up_to) {
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            deliver(p, &here, out);
        }
    }

    /// Drops the waiting messages `ids` could not be stored; returns the
    /// senders to tell, (key, session, ref).
    pub(crate) fn drop_failed(&mut self, ids: &[u64]) -> Vec<(usize, u64, Option<u64>)> {
        let mut told = Vec::new();
        self.pending.retain(|p| {
            if ids.contains(&p.id) {
                told.push((p.sender.0, p.sender.1, p.reference));
                false
            } else {
                true
            }
        });
        told
    }
}

fn deliver(p: PendingDm, here: &impl Fn(usize, u64) -> bool, out: &mut impl Outbox) {
    let (key, session, own) = p.sender;
    if here(key, session) {
        out.push(key, own);
    }
    if let Some((key, session)) = p.recipient
        && here(key, session)
    {
        out.push(key, p.frame);
    }
}

/// The conversation key of two parties.
fn conversation(a: &str, b: &str) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("\u{1}{lo}\u{1}{hi}")
}

/// `dm`: checked like a chat, then written (with a store) and delivered to
/// the recipient and, with its `ref`, to the sender.
pub(crate) fn dm(ctx: &mut Ctx<'_>, key: usize, m: DmSend) {
    let DmSend {
        to,
        text,
        reference,
    } = m;
    if !super::text::accept_text(ctx, key, &text, reference) {
        return;
    }
    let (Some(from), Some(mine)) = (ctx.lobby.member(key).cloned(), party_of(ctx, key)) else {
        return;
    };
    let Some(peer) = peer(ctx, &to, false) else {
        let why = format!("nobody named {to} is online or registered");
        ctx.protocol_error(key, ErrorCode::NoSuchMember, &why, reference);
        return;
    };
    if peer.party == mine {
        let why = "a direct message goes to someone else";
        ctx.protocol_error(key, ErrorCode::NoSuchMember, why, reference);
        return;
    }
    let decision = ctx.hooks.on_dm(&from, &peer.name, &text);
    let Some(text) = super::text::decided(ctx, key, decision, text, reference) else {
        return;
    };
    if ctx.store.is_some() && ctx.dms.pending.len() >= MAX_PENDING {
        let why = "the server could not store the message; it was not delivered";
        ctx.protocol_error(key, ErrorCode::StoreUnavailable, why, reference);
        return;
    }
    if ctx.store.is_none() && peer.online.is_none() {
        let why = format!("{} is away, and this server keeps no messages", peer.name);
        ctx.protocol_error(key, ErrorCode::NoSuchMember, &why, reference);
        return;
    }
    let id = ctx.room.take_id();
    let mut msg = Dm {
        id,
        from: from.name.clone(),
        session: from.session,
        to: peer.name.clone(),
        text,
        ts: now_ms(),
        reference: None,
    };
    let frame = encode_server(&ServerMessage::Dm(msg.clone()));
    msg.reference = reference;
    let own = if reference.is_some() {
        encode_server(&ServerMessage::Dm(msg.clone()))
    } else {
        frame.clone()
    };
    ctx.stats.messages += 1;
    let pending = PendingDm {
        id,
        sender: (key, from.session, own),
        recipient: peer.online,
        frame,
        reference,
    };
    if ctx.store.is_none() {
        let lobby = &*ctx.lobby;
        deliver(
            pending,
            &|k, s| lobby.member(k).is_some_and(|m| m.session == s),
            &mut ctx.out,
        );
        return;
    }
    ctx.dms.unsent.push(StoredChat {
        id,
        ts: msg.ts,
        session: from.session,
        sender: from.name,
        text: msg.text,
        room: conversation(&mine, &peer.party),
        recipient: peer.name,
        recipient_key: peer.party,
    });
    ctx.dms.pending.push_back(pending);
}

/// `dm_history`: a page of the conversation with `with`, from the store.
pub(crate) fn history(ctx: &mut Ctx<'_>, key: usize, req: DmHistoryRequest) {
    if !ctx.allow_frame(key, None) {
        return;
    }
    let max = ctx.config.history_page_max;
    if req.limit == 0 || req.limit > max {
        let msg = format!("limit must be 1 to {max}, not {}", req.limit);
        ctx.protocol_error(key, ErrorCode::HistoryLimit, &msg, None);
        return;
    }
    let Some(mine) = party_of(ctx, key).filter(|p| p.starts_with("a:")) else {
        let why = "a guest's direct messages are not kept: log in with a registered name";
        ctx.protocol_error(key, ErrorCode::AccountRequired, why, None);
        return;
    };
    let Some(peer) = peer(ctx, &req.with, true) else {
        return;
    };
    if ctx.store.is_none() {
        let page = DmHistory {
            with: req.with,
            messages: Vec::new(),
            more: false,
            before: req.before,
        };
        ctx.send(key, &ServerMessage::DmHistory(page));
        return;
    }
    let before = req.before.unwrap_or(u64::MAX).min(ctx.room.next_id());
    let room = conversation(&mine, &peer.party);
    super::history::ask_dm_page(ctx, key, req.with, req.before, before, req.limit, room);
}

/// `dm_read`: a registered member has read its conversation with `with`
/// up to `id` (kept for its next `dm_unread`; a guest has none).
pub(crate) fn read(ctx: &mut Ctx<'_>, key: usize, with: String, id: u64) {
    if !ctx.allow_frame(key, None) {
        return;
    }
    let (Some(mine), Some(store)) = (party_of(ctx, key), ctx.store) else {
        return;
    };
    if !mine.starts_with("a:") {
        return;
    }
    let Some(peer) = peer(ctx, &with, true) else {
        return;
    };
    store.submit(StoreRequest::MarkRead {
        conversation: conversation(&mine, &peer.party),
        account: mine,
        id,
    });
}

/// After a registered login's `welcome`: asks the store for its unread
/// conversations (answered by [`unread_answer`]).
pub(crate) fn ask_unread(ctx: &mut Ctx<'_>, key: usize, session: u64, account: &str) {
    if let Some(store) = ctx.store {
        store.submit(StoreRequest::Unread {
            account: format!("a:{account}"),
            conn_key: key,
            tag: session,
        });
    }
}

/// The store's count of unread conversations for the login `session` on
/// `key`: sent as `dm_unread` if there are any.
pub(crate) fn unread_answer(
    ctx: &mut Ctx<'_>,
    key: usize,
    session: u64,
    list: Vec<(String, u64, u64)>,
) {
    if list.is_empty() || ctx.lobby.member(key).is_none_or(|m| m.session != session) {
        return;
    }
    let conversations = list
        .into_iter()
        .map(|(with, count, last_id)| DmUnreadEntry {
            with,
            count,
            last_id,
        })
        .collect();
    ctx.send(key, &ServerMessage::DmUnread(DmUnread { conversations }));
}
