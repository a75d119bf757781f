//! What the file-transfer messages do (docs/protocol.md, "File transfer"):
//! the rules applied per connection, on top of `server::transfer` (state and
//! the disk thread). [`super::dispatch`] calls the message handlers; the
//! reactor calls [`drain_disk`] when the disk thread woke it, [`expire_offers`]
//! from its timer sweep, and [`refill`] after flushing a downloader.

use crate::protocol::transfer::{
    FileAccept, FileCancelled, FileChunk, FileOffer, FileProgress, FileUpload, MAX_CHUNK,
    TransferId,
};
use crate::protocol::{ErrorCode, ServerMessage, encode_server};
use std::collections::HashMap;

use super::Ctx;
use crate::server::conn::Connection;
use crate::server::room::Outbox;
use crate::server::transfer::disk::DiskWorker;
use crate::server::transfer::disk::{Done, Job};
use crate::server::transfer::{Download, OfferLimit, Scope, names};
use crate::time::now_ms;

/// A connection's queue is refilled with file data while it holds less than
/// this: enough to keep the socket busy, little enough that a chat message
/// queued behind it waits well under a millisecond on a fast link.
pub(crate) const LOW_WATER: usize = 512 * 1024;
/// Kernel send buffer of a connection once it downloads (the kernel doubles
/// it for its bookkeeping).
const SEND_BUFFER: usize = 256 * 1024;
/// Reads asked of the disk thread per download before their data arrives.
const READS_AHEAD: u8 = 2;
/// An uploader whose chunks wait for the disk this long (in bytes) is not
/// read any further until the disk catches up: TCP pushes back on it, and
/// the server's memory stays flat whatever the upload's speed.
const UPLOAD_WINDOW: u64 = 8 * 1024 * 1024;

/// `file_decline`: nothing to undo on the server, but an unknown id is
/// answered, like any other transfer message naming one.
pub(crate) fn file_decline(ctx: &mut Ctx<'_>, key: usize, id: u64) {
    if ctx.transfers.get(id).is_none() {
        let why = "no such file";
        ctx.protocol_error_about(key, ErrorCode::UnknownTransfer, why, None, Some(id));
    }
}

/// Who offer `offer` from `key` is for: the room it names (which `key`
/// must be in), the member it is `to` (online, or registered and away:
/// it is offered at their next login while it lasts), or the default
/// room. Answers the error and returns `None` when neither fits.
fn offer_scope(ctx: &mut Ctx<'_>, key: usize, offer: &FileOffer) -> Option<Scope> {
    let r = offer.reference;
    match (&offer.room, &offer.to) {
        (Some(_), Some(_)) => {
            let why = "a file is offered in a room or to a member, not both";
            ctx.protocol_error(key, ErrorCode::BadMessage, why, r);
            None
        }
        (Some(room), None) => {
            let id = super::who::room_of(ctx, key, room, r)?;
            let name = ctx.rooms.get(id)?.name().unwrap_or_default().to_owned();
            Some(Scope::Room { id, name })
        }
        (None, Some(to)) => {
            let from_party = super::who::party_of(ctx, key)?;
            let Some(peer) = super::who::peer(ctx, to, false) else {
                let why = format!("nobody named {to} is online or registered");
                ctx.protocol_error(key, ErrorCode::NoSuchMember, &why, r);
                return None;
            };
            if peer.party == from_party {
                let why = "a direct offer goes to someone else";
                ctx.protocol_error(key, ErrorCode::NoSuchMember, why, r);
                return None;
            }
            Some(Scope::Direct {
                to: peer.name,
                to_party: peer.party,
                from_party,
            })
        }
        (None, None) => Some(Scope::Lobby),
    }
}

/// Whether member `key` may see and download an offer of `scope`.
fn may_download(ctx: &Ctx<'_>, key: usize, scope: &Scope) -> bool {
    match scope {
        Scope::Lobby => ctx.lobby.member(key).is_some(),
        Scope::Room { id, .. } => ctx.rooms.get(*id).is_some_and(|r| r.member(key).is_some()),
        Scope::Direct {
            to_party,
            from_party,
            ..
        } => super::who::party_of(ctx, key).is_some_and(|p| p == *to_party || p == *from_party),
    }
}

fn active_transfers(ctx: &Ctx<'_>, key: usize, session: u64) -> usize {
    ctx.transfers.uploads_of(key, session) + ctx.out.conns.get(key).map_or(0, |c| c.downloads.len())
}

pub(crate) fn file_offer(ctx: &mut Ctx<'_>, key: usize, offer: FileOffer) {
    let r = offer.reference;
    let Some(user) = ctx.lobby.member(key).cloned() else {
        return;
    };
    if let Err((code, why)) = names::check(&offer.name) {
        ctx.protocol_error(key, code, why, r);
        return;
    }
    if offer.size > ctx.config.max_file_bytes {
        let why = format!("files are limited to {} bytes", ctx.config.max_file_bytes);
        ctx.protocol_error(key, ErrorCode::FileTooLarge, &why, r);
        return;
    }
    let Ok(sha256) = <[u8; 32]>::try_from(offer.sha256.as_slice()) else {
        ctx.protocol_error(key, ErrorCode::BadHash, "sha256 must be 32 bytes", r);
        return;
    };
    let Some(scope) = offer_scope(ctx, key, &offer) else {
        return;
    };
    if active_transfers(ctx, key, user.session) >= ctx.config.max_transfers_per_client {
        let why = "too many uploads and downloads at once";
        ctx.protocol_error(key, ErrorCode::TooManyTransfers, why, r);
        return;
    }
    // Offers outlive their sender, so they are counted over every
    // session: by room, by name and by address (empty files cost no
    // quota, so this is what bounds them).
    let Some(addr) = ctx.out.conns.get(key).map(|c| c.peer.ip()) else {
        return;
    };
    if let Some(limit) = ctx.transfers.limit_reached(&user.name, addr) {
        let why = match limit {
            OfferLimit::Room => "the room has as many files on offer as it allows",
            OfferLimit::Name => "too many files of this name are on offer; cancel some first",
            OfferLimit::Address => "too many files from your address are on offer",
        };
        ctx.protocol_error(key, ErrorCode::TooManyOffers, why, r);
        return;
    }
    // Only uploaded bytes are charged, so nothing is reserved here and
    // no offer is ever expired for an upload that may never come; a
    // file that cannot fit now is refused at once.
    if !ctx.transfers.fits(offer.size) {
        let why = "the server has no room for this file now";
        ctx.protocol_error(key, ErrorCode::QuotaExceeded, why, r);
        return;
    }
    let id = ctx.transfers.begin(
        key,
        user.session,
        &user.name,
        addr,
        &offer.name,
        offer.size,
        sha256,
        offer.kind,
        scope,
        ctx.now,
    );
    ctx.disk.submit(Job::Begin { id, sha256 });
    tracing::info!(transfer = id, size = offer.size, from = %user.name, "upload started");
    // File names are private: on their own target, which the daemon
    // silences unless the operator asks for them (`log_private`).
    tracing::info!(target: crate::server::PRIVATE_LOG_TARGET, transfer = id, name = %offer.name, "upload file name");
    ctx.push_private(
        key,
        encode_server(&ServerMessage::FileUpload(FileUpload {
            transfer: id,
            max_chunk: max_chunk(ctx),
            reference: r,
        })),
    );
    if offer.size == 0 {
        ctx.transfers.accept_chunk(id, 0, ctx.now);
        ctx.disk.submit(Job::Write {
            id,
            data: Vec::new(),
            last: true,
        });
    }
}

pub(crate) fn file_chunk(ctx: &mut Ctx<'_>, key: usize, chunk: FileChunk) {
    let mine = owner_key(ctx, chunk.transfer) == Some(key);
    let Some((received, size)) = ctx
        .transfers
        .upload_position(chunk.transfer)
        .filter(|_| mine)
    else {
        ctx.protocol_error_about(
            key,
            ErrorCode::UnknownTransfer,
            "no upload of yours with this id",
            None,
            Some(chunk.transfer),
        );
        return;
    };
    let len = chunk.data.len() as u64;
    let max_chunk = max_chunk(ctx);
    if chunk.offset != received || received + len > size || len > u64::from(max_chunk) {
        let why = format!(
            "chunk at {} of {len} bytes does not continue the upload at {received} of {size} \
             (at most {max_chunk} bytes per chunk); the upload is aborted",
            chunk.offset
        );
        let t = Some(chunk.transfer);
        ctx.protocol_error_about(key, ErrorCode::BadOffset, &why, None, t);
        abort_upload(ctx, key, chunk.transfer, "error");
        return;
    }
    if len == 0 {
        return;
    }
    let id = chunk.transfer;
    if !ctx.transfers.fits(len) {
        let why = "the server has no room for the rest of this file; the upload is aborted";
        ctx.protocol_error_about(key, ErrorCode::QuotaExceeded, why, None, Some(id));
        abort_upload(ctx, key, id, "error");
        return;
    }
    let last = ctx.transfers.accept_chunk(id, len, ctx.now);
    ctx.disk.submit(Job::Write {
        id,
        data: chunk.data,
        last,
    });
    if ctx.transfers.in_flight(id) > UPLOAD_WINDOW
        && let Some(conn) = ctx.out.conns.get_mut(key)
    {
        conn.paused = true;
    }
}

/// The largest chunk data: 256 KiB, or less when `max_frame` is smaller,
/// so that a chunk frame (data plus at most 64 bytes of fields) fits.
fn max_chunk(ctx: &Ctx<'_>) -> u32 {
    MAX_CHUNK.min(ctx.config.max_frame.saturating_sub(64).max(1))
}

/// Takes in what the disk thread finished.
pub(crate) fn drain_disk(ctx: &mut Ctx<'_>) {
    while let Some(done) = ctx.disk.poll() {
        match done {
            Done::Stored { id, bytes } => disk_stored(ctx, id, bytes as u64),
            Done::Finished { id, ok } => disk_finished(ctx, id, ok),
            Done::WriteFailed { id, error } => {
                tracing::warn!(transfer = id, %error, "cannot write to the spool");
                if let Some(key) = owner_key(ctx, id) {
                    let why = "cannot store the file";
                    let t = Some(id);
                    ctx.protocol_error_about(key, ErrorCode::StorageError, why, None, t);
                    abort_upload(ctx, key, id, "error");
                }
            }
            Done::Data { token, frame, last } => disk_data(ctx, token, frame, last),
            Done::ReadFailed { token, error } => {
                tracing::warn!(token, %error, "cannot read a spool file");
                if let Some(key) = ctx.download_keys.remove(&token)
                    && let Some(conn) = ctx.out.conns.get_mut(key)
                    && let Some(i) = conn.downloads.iter().position(|d| d.token == token)
                {
                    let d = conn.downloads.swap_remove(i);
                    conn.output.push_bulk(cancelled_frame(d.transfer, "error"));
                    ctx.out.mark_dirty(key);
                }
            }
        }
    }
}

/// The connection of upload `id`'s sender, if it is still here.
fn owner_key(ctx: &Ctx<'_>, id: u64) -> Option<usize> {
    let t = ctx.transfers.get(id)?;
    let session = ctx.lobby.member(t.owner_key)?.session;
    (session == t.owner_session).then_some(t.owner_key)
}

fn disk_stored(ctx: &mut Ctx<'_>, id: u64, bytes: u64) {
    let report = ctx.transfers.stored(id, bytes);
    let size = ctx.transfers.get(id).map_or(0, |t| t.size);
    let Some(key) = owner_key(ctx, id) else {
        return;
    };
    if let Some(done) = report {
        send_progress(ctx, key, id, done, size);
    }
    // The disk caught up: read the uploader again.
    if ctx.transfers.in_flight(id) <= UPLOAD_WINDOW / 2
        && let Some(conn) = ctx.out.conns.get_mut(key)
        && conn.paused
    {
        conn.paused = false;
        ctx.resume_reading(key);
    }
}

fn disk_finished(ctx: &mut Ctx<'_>, id: u64, ok: bool) {
    let Some(key) = owner_key(ctx, id) else {
        // The sender left meanwhile; its upload is already gone.
        return;
    };
    if !ok {
        let why = "the uploaded content does not match the offered sha256";
        ctx.protocol_error_about(key, ErrorCode::HashMismatch, why, None, Some(id));
        abort_upload(ctx, key, id, "error");
        return;
    }
    let size = ctx.transfers.get(id).map_or(0, |t| t.size);
    let Some(frame) = ctx.transfers.ready(id, ctx.now, now_ms()) else {
        return;
    };
    ctx.stats.files_uploaded += 1;
    ctx.stats.file_bytes_uploaded += size;
    send_progress(ctx, key, id, size, size);
    ctx.push_private(
        key,
        encode_server(&ServerMessage::FileReady(TransferId { transfer: id })),
    );
    announce_offer(ctx, id, &frame, Some(key));
}

fn disk_data(ctx: &mut Ctx<'_>, token: u64, frame: bytes::Bytes, last: bool) {
    let Some(&key) = ctx.download_keys.get(&token) else {
        return; // cancelled meanwhile
    };
    let Some(conn) = ctx.out.conns.get_mut(key) else {
        return;
    };
    let Some(i) = conn.downloads.iter().position(|d| d.token == token) else {
        return;
    };
    conn.downloads[i].outstanding = conn.downloads[i].outstanding.saturating_sub(1);
    ctx.stats.file_bytes_downloaded += frame.len() as u64;
    if last {
        ctx.stats.files_downloaded += 1;
    }
    // File data is bulk: any other frame for this client overtakes it at
    // the next frame boundary. `file_done` follows the data in order.
    conn.output.push_bulk(frame);
    if last {
        let d = conn.downloads.swap_remove(i);
        conn.output
            .push_bulk(encode_server(&ServerMessage::FileDone(TransferId {
                transfer: d.transfer,
            })));
        ctx.download_keys.remove(&token);
        ctx.disk.submit(Job::Close { token });
    }
    ctx.out.mark_dirty(key);
    if let Some(conn) = ctx.out.conns.get_mut(key) {
        refill(conn, ctx.disk);
    };
}

fn send_progress(ctx: &mut Ctx<'_>, key: usize, id: u64, done: u64, total: u64) {
    ctx.push_private(
        key,
        encode_server(&ServerMessage::FileProgress(FileProgress {
            transfer: id,
            done,
            total,
        })),
    );
}

/// Stops an upload: the partial file goes, the uploader is told.
fn abort_upload(ctx: &mut Ctx<'_>, key: usize, id: u64, reason: &str) {
    if discard(ctx, id) {
        tracing::info!(transfer = id, reason, "upload aborted");
        ctx.push_private(key, cancelled_frame(id, reason));
        // A connection paused for this upload's disk backlog must not
        // stay paused now that the backlog is gone.
        if let Some(conn) = ctx.out.conns.get_mut(key)
            && conn.paused
        {
            conn.paused = false;
            ctx.resume_reading(key);
        }
    }
}

/// Forgets transfer `id` and has the disk thread delete its file (once no
/// download reads it); `false` if there was no such transfer.
fn discard(ctx: &mut Ctx<'_>, id: u64) -> bool {
    let known = ctx.transfers.remove(id).is_some();
    if known {
        ctx.disk.submit(Job::Remove { id });
    }
    known
}

/// Uploads of a connection that is leaving are dropped with their files.
pub(crate) fn drop_uploads_of(ctx: &mut Ctx<'_>, key: usize, session: u64) {
    for id in ctx.transfers.unfinished_uploads_of(key, session) {
        discard(ctx, id);
        tracing::info!(transfer = id, "upload abandoned: the sender left");
    }
}

/// Offers transfer `id` (its encoded `file_offer` is `frame`) to every
/// member of its scope but `except` (its uploader).
fn announce_offer(ctx: &mut Ctx<'_>, id: u64, frame: &bytes::Bytes, except: Option<usize>) {
    tracing::info!(transfer = id, "file offered");
    let Some(scope) = ctx.transfers.get(id).map(|t| t.scope.clone()) else {
        return;
    };
    send_to_scope(ctx, &scope, frame, except);
}

/// Sends `frame` to everyone offers of `scope` go to, but `except`.
fn send_to_scope(ctx: &mut Ctx<'_>, scope: &Scope, frame: &bytes::Bytes, except: Option<usize>) {
    match scope {
        Scope::Lobby => {
            // Like a chat: pending welcomes and joins go first.
            ctx.flush_presence();
            let keys = ctx.room.users_keys().filter(|&k| Some(k) != except);
            ctx.out.broadcast(keys, frame);
        }
        Scope::Room { id, .. } => {
            let Some(room) = ctx.rooms.get_mut(*id) else {
                return;
            };
            // The room's pending joins and `room_joined`s go first, so
            // nobody hears of an offer in a room it was not shown yet.
            room.flush_presence(now_ms(), &mut ctx.out);
            room.flush_welcomes(&mut ctx.out);
            let keys: Vec<usize> = room.users_keys().filter(|&k| Some(k) != except).collect();
            ctx.out.broadcast(keys.into_iter(), frame);
        }
        Scope::Direct { to_party, .. } => {
            // Every login of the recipient's party (a registered member
            // may be on several devices).
            let keys: Vec<usize> = ctx
                .room
                .users_keys()
                .filter(|&k| Some(k) != except)
                .filter(|&k| super::who::party_of(ctx, k).is_some_and(|p| p == *to_party))
                .collect();
            for k in keys {
                ctx.out.push(k, frame.clone());
            }
        }
    }
}

/// Tells everyone offer `id` (of `scope`) was offered to that it ended.
fn announce_cancelled(ctx: &mut Ctx<'_>, id: u64, scope: &Scope, reason: &str) {
    let frame = cancelled_frame(id, reason);
    send_to_scope(ctx, scope, &frame, None);
}

/// After `room_joined`: the newest `welcome_offers` offers of named room
/// `id` (its `room_joined` is flushed first so that they follow it).
pub(crate) fn send_room_offers_to(ctx: &mut Ctx<'_>, key: usize, id: usize) {
    let (frames, _) = ctx.transfers.newest_offers(
        ctx.config.welcome_offers,
        |s| matches!(s, Scope::Room { id: r, .. } if *r == id),
    );
    if frames.is_empty() {
        return;
    }
    if let Some(room) = ctx.rooms.get_mut(id) {
        room.flush_welcomes(&mut ctx.out);
    }
    for frame in frames {
        ctx.out.push(key, frame);
    }
}

/// Sends a member who just joined the newest `welcome_offers` offers
/// still available to it (the default room's, and those offered to it
/// directly; their frames are encoded once, when they went on offer); its
/// `welcome` says how many older ones were left out. So a login costs the
/// same however many offers there are.
pub(crate) fn send_offers_to(ctx: &mut Ctx<'_>, key: usize) {
    let party = super::who::party_of(ctx, key);
    let (frames, omitted) = ctx
        .transfers
        .newest_offers(ctx.config.welcome_offers, |s| match s {
            Scope::Lobby => true,
            Scope::Room { .. } => false,
            Scope::Direct { to_party, .. } => party.as_deref() == Some(to_party.as_str()),
        });
    if frames.is_empty() && omitted == 0 {
        // Nothing to say: the welcome keeps waiting for its batch.
        return;
    }
    if ctx.room.welcome_pending(key) {
        ctx.room.set_offers_omitted(omitted);
        ctx.room.flush_welcomes(&mut ctx.out);
    }
    for frame in frames {
        ctx.out.push(key, frame);
    }
}

pub(crate) fn file_accept(ctx: &mut Ctx<'_>, key: usize, accept: FileAccept) {
    let ready = ctx
        .transfers
        .get(accept.transfer)
        .filter(|t| t.offered().is_some())
        .map(|t| (t.size, t.scope.clone()))
        .filter(|(_, scope)| may_download(ctx, key, scope))
        .map(|(size, _)| size);
    let Some(size) = ready else {
        ctx.protocol_error_about(
            key,
            ErrorCode::UnknownTransfer,
            "no such file on offer",
            None,
            Some(accept.transfer),
        );
        return;
    };
    if accept.offset > size {
        let why = format!("offset {} is past the end ({size} bytes)", accept.offset);
        let t = Some(accept.transfer);
        ctx.protocol_error_about(key, ErrorCode::BadOffset, &why, None, t);
        return;
    }
    let session = ctx.lobby.member(key).map_or(0, |u| u.session);
    let already = ctx
        .out
        .conns
        .get(key)
        .is_some_and(|c| c.downloads.iter().any(|d| d.transfer == accept.transfer));
    if already || active_transfers(ctx, key, session) >= ctx.config.max_transfers_per_client {
        let why = "too many uploads and downloads at once (or this one is running)";
        let t = Some(accept.transfer);
        ctx.protocol_error_about(key, ErrorCode::TooManyTransfers, why, None, t);
        return;
    }
    if accept.offset == size {
        ctx.push_private(
            key,
            encode_server(&ServerMessage::FileDone(TransferId {
                transfer: accept.transfer,
            })),
        );
        return;
    }
    let token = ctx.transfers.next_token();
    ctx.disk.submit(Job::Open {
        token,
        transfer: accept.transfer,
        offset: accept.offset,
        size,
    });
    if let Some(conn) = ctx.out.conns.get_mut(key) {
        // Bound what the kernel holds for this client too: with an
        // autotuned send buffer of several MiB a chat frame would wait
        // behind milliseconds of file data there, whatever our queue does.
        let _ = socket2::SockRef::from(&conn.stream).set_send_buffer_size(SEND_BUFFER);
        conn.downloads.push(Download {
            transfer: accept.transfer,
            token,
            requested: accept.offset,
            size,
            outstanding: 0,
        });
    }
    ctx.download_keys.insert(token, key);
    if let Some(conn) = ctx.out.conns.get_mut(key) {
        refill(conn, ctx.disk);
    };
}

pub(crate) fn file_cancel(ctx: &mut Ctx<'_>, key: usize, id: u64) {
    if owner_key(ctx, id) == Some(key) {
        if ctx.transfers.upload_position(id).is_some() {
            abort_upload(ctx, key, id, "cancelled");
        } else {
            let scope = ctx.transfers.get(id).map(|t| t.scope.clone());
            discard(ctx, id);
            tracing::info!(transfer = id, "offer withdrawn by its sender");
            if let Some(scope) = scope {
                announce_cancelled(ctx, id, &scope, "cancelled");
            }
            stop_downloads_of(ctx, id);
        }
        return;
    }
    let downloading = ctx.out.conns.get_mut(key).and_then(|c| {
        let i = c.downloads.iter().position(|d| d.transfer == id)?;
        Some(c.downloads.swap_remove(i))
    });
    if let Some(d) = downloading {
        close_downloads(ctx.download_keys, ctx.disk, &[d]);
        // After the data already queued, as `file_done` would be.
        if let Some(conn) = ctx.out.conns.get_mut(key) {
            conn.output.push_bulk(cancelled_frame(id, "cancelled"));
        }
        ctx.out.mark_dirty(key);
    } else {
        ctx.protocol_error_about(
            key,
            ErrorCode::UnknownTransfer,
            "no upload, offer or download of yours with this id",
            None,
            Some(id),
        );
    }
}

/// Ends every download of transfer `id` (its sender withdrew it).
fn stop_downloads_of(ctx: &mut Ctx<'_>, id: u64) {
    let keys: Vec<usize> = ctx
        .out
        .conns
        .iter()
        .filter(|(_, c)| c.downloads.iter().any(|d| d.transfer == id))
        .map(|(k, _)| k)
        .collect();
    for key in keys {
        let Some(c) = ctx.out.conns.get_mut(key) else {
            continue;
        };
        let (gone, kept): (Vec<Download>, Vec<Download>) =
            c.downloads.drain(..).partition(|d| d.transfer == id);
        c.downloads = kept;
        close_downloads(ctx.download_keys, ctx.disk, &gone);
    }
}

/// Offers past their time go (the room is told), and so do uploads
/// that made no progress for `upload_stall_secs` (their uploader is
/// told): an offer that never uploads holds nothing for long.
pub(crate) fn expire_offers(ctx: &mut Ctx<'_>) {
    for id in ctx.transfers.expired(ctx.now) {
        let scope = ctx.transfers.get(id).map(|t| t.scope.clone());
        discard(ctx, id);
        tracing::info!(transfer = id, "offer expired");
        if let Some(scope) = scope {
            announce_cancelled(ctx, id, &scope, "expired");
        }
    }
    for id in ctx.transfers.stalled(ctx.now, ctx.config.upload_stall()) {
        match owner_key(ctx, id) {
            Some(key) => {
                let why = format!(
                    "no chunk for {} s; the upload is aborted",
                    ctx.config.upload_stall_secs
                );
                let t = Some(id);
                ctx.protocol_error_about(key, ErrorCode::UploadTimeout, &why, None, t);
                abort_upload(ctx, key, id, "error");
            }
            None => {
                discard(ctx, id);
            }
        }
    }
}

/// Asks the disk thread for the next chunks of `key`'s downloads while
/// its queue (plus reads already asked for) is below the low-water mark.
/// The data arrives later through [`drain_disk`].
pub(crate) fn refill(conn: &mut Connection, disk: &DiskWorker) {
    if !conn.is_open() || conn.downloads.is_empty() {
        return;
    }
    let chunk = u64::from(MAX_CHUNK);
    let pending: u64 = conn
        .downloads
        .iter()
        .map(|d| u64::from(d.outstanding))
        .sum();
    let mut budget = (LOW_WATER as u64).saturating_sub(conn.output.len() as u64 + pending * chunk);
    // Round-robin: one read per download per pass, and the download
    // after the last one served goes first next time (the list is
    // rotated), so that a budget of one read at a time does not always
    // go to the same download.
    let mut progress = true;
    while budget > 0 && progress {
        progress = false;
        let mut served = None;
        for (i, d) in conn.downloads.iter_mut().enumerate() {
            if budget == 0 {
                break;
            }
            if d.requested < d.size && d.outstanding < READS_AHEAD {
                let n = (d.size - d.requested).min(chunk);
                d.requested += n;
                d.outstanding += 1;
                budget = budget.saturating_sub(n);
                disk.submit(Job::Read { token: d.token });
                progress = true;
                served = Some(i);
            }
        }
        if let Some(i) = served {
            conn.downloads.rotate_left(i + 1);
        }
    }
}

/// Closes the disk thread's side of `key`'s downloads (it is going away).
pub(crate) fn close_downloads(
    download_keys: &mut HashMap<u64, usize>,
    disk: &DiskWorker,
    downloads: &[Download],
) {
    for d in downloads {
        download_keys.remove(&d.token);
        disk.submit(Job::Close { token: d.token });
    }
}

/// An encoded `file_cancelled`.
fn cancelled_frame(id: u64, reason: &str) -> bytes::Bytes {
    encode_server(&ServerMessage::FileCancelled(FileCancelled {
        transfer: id,
        reason: reason.to_owned(),
    }))
}
