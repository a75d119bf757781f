//! What the file-transfer messages do (docs/protocol.md, "File transfer"):
//! the rules applied per connection, on top of `transfer` (state and disk)
//! and the reactor (sockets). `session` dispatches the messages here;
//! downloads are refilled by the flush, see [`Reactor::refill`].

use crate::protocol::transfer::{
    FileAccept, FileCancelled, FileChunk, FileOffer, FileProgress, FileUpload, MAX_CHUNK,
    TransferId,
};
use crate::protocol::{ErrorCode, ServerMessage, encode_server};
use crate::server::reactor::Reactor;
use crate::server::room::Outbox;
use crate::server::transfer::disk::{Done, Job};
use crate::server::transfer::{Download, OfferLimit, names};
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

impl Reactor {
    /// `file_decline`: nothing to undo on the server, but an unknown id is
    /// answered, like any other transfer message naming one.
    pub(crate) fn file_decline(&mut self, key: usize, id: u64) {
        if self.transfers.get(id).is_none() {
            let why = "no such file";
            self.protocol_error_about(key, ErrorCode::UnknownTransfer, why, None, Some(id));
        }
    }

    fn active_transfers(&self, key: usize, session: u64) -> usize {
        self.transfers.uploads_of(key, session)
            + self.conns.get(key).map_or(0, |c| c.downloads.len())
    }

    pub(crate) fn file_offer(&mut self, key: usize, offer: FileOffer) {
        let r = offer.reference;
        let Some(user) = self.room.member(key).cloned() else {
            return;
        };
        if let Err((code, why)) = names::check(&offer.name) {
            self.protocol_error(key, code, why, r);
            return;
        }
        if offer.size > self.config.max_file_bytes {
            let why = format!("files are limited to {} bytes", self.config.max_file_bytes);
            self.protocol_error(key, ErrorCode::FileTooLarge, &why, r);
            return;
        }
        let Ok(sha256) = <[u8; 32]>::try_from(offer.sha256.as_slice()) else {
            self.protocol_error(key, ErrorCode::BadHash, "sha256 must be 32 bytes", r);
            return;
        };
        if self.active_transfers(key, user.session) >= self.config.max_transfers_per_client {
            let why = "too many uploads and downloads at once";
            self.protocol_error(key, ErrorCode::TooManyTransfers, why, r);
            return;
        }
        // Offers outlive their sender, so they are counted over every
        // session: by room, by name and by address (empty files cost no
        // quota, so this is what bounds them).
        let Some(addr) = self.conns.get(key).map(|c| c.peer.ip()) else {
            return;
        };
        if let Some(limit) = self.transfers.limit_reached(&user.name, addr) {
            let why = match limit {
                OfferLimit::Room => "the room has as many files on offer as it allows",
                OfferLimit::Name => "too many files of this name are on offer; cancel some first",
                OfferLimit::Address => "too many files from your address are on offer",
            };
            self.protocol_error(key, ErrorCode::TooManyOffers, why, r);
            return;
        }
        // Only uploaded bytes are charged, so nothing is reserved here and
        // no offer is ever expired for an upload that may never come; a
        // file that cannot fit now is refused at once.
        if !self.transfers.fits(offer.size) {
            let why = "the server has no room for this file now";
            self.protocol_error(key, ErrorCode::QuotaExceeded, why, r);
            return;
        }
        let id = self.transfers.begin(
            key,
            user.session,
            &user.name,
            addr,
            &offer.name,
            offer.size,
            sha256,
            offer.kind,
            self.now,
        );
        self.disk.submit(Job::Begin { id, sha256 });
        tracing::info!(transfer = id, name = %offer.name, size = offer.size, from = %user.name, "upload started");
        self.push_private(
            key,
            encode_server(&ServerMessage::FileUpload(FileUpload {
                transfer: id,
                max_chunk: self.max_chunk(),
                reference: r,
            })),
        );
        if offer.size == 0 {
            self.transfers.accept_chunk(id, 0, self.now);
            self.disk.submit(Job::Write {
                id,
                data: Vec::new(),
                last: true,
            });
        }
    }

    pub(crate) fn file_chunk(&mut self, key: usize, chunk: FileChunk) {
        let mine = self.owner_key(chunk.transfer) == Some(key);
        let Some((received, size)) = self
            .transfers
            .upload_position(chunk.transfer)
            .filter(|_| mine)
        else {
            self.protocol_error_about(
                key,
                ErrorCode::UnknownTransfer,
                "no upload of yours with this id",
                None,
                Some(chunk.transfer),
            );
            return;
        };
        let len = chunk.data.len() as u64;
        let max_chunk = self.max_chunk();
        if chunk.offset != received || received + len > size || len > u64::from(max_chunk) {
            let why = format!(
                "chunk at {} of {len} bytes does not continue the upload at {received} of {size} \
                 (at most {max_chunk} bytes per chunk); the upload is aborted",
                chunk.offset
            );
            let t = Some(chunk.transfer);
            self.protocol_error_about(key, ErrorCode::BadOffset, &why, None, t);
            self.abort_upload(key, chunk.transfer, "error");
            return;
        }
        if len == 0 {
            return;
        }
        let id = chunk.transfer;
        if !self.transfers.fits(len) {
            let why = "the server has no room for the rest of this file; the upload is aborted";
            self.protocol_error_about(key, ErrorCode::QuotaExceeded, why, None, Some(id));
            self.abort_upload(key, id, "error");
            return;
        }
        let last = self.transfers.accept_chunk(id, len, self.now);
        self.disk.submit(Job::Write {
            id,
            data: chunk.data,
            last,
        });
        if self.transfers.in_flight(id) > UPLOAD_WINDOW
            && let Some(conn) = self.conns.get_mut(key)
        {
            conn.paused = true;
        }
    }

    /// The largest chunk data: 256 KiB, or less when `max_frame` is smaller,
    /// so that a chunk frame (data plus at most 64 bytes of fields) fits.
    fn max_chunk(&self) -> u32 {
        MAX_CHUNK.min(self.config.max_frame.saturating_sub(64).max(1))
    }

    /// Takes in what the disk thread finished.
    pub(crate) fn drain_disk(&mut self) {
        while let Some(done) = self.disk.poll() {
            match done {
                Done::Stored { id, bytes } => self.disk_stored(id, bytes as u64),
                Done::Finished { id, ok } => self.disk_finished(id, ok),
                Done::WriteFailed { id, error } => {
                    tracing::warn!(transfer = id, %error, "cannot write to the spool");
                    if let Some(key) = self.owner_key(id) {
                        let why = "cannot store the file";
                        let t = Some(id);
                        self.protocol_error_about(key, ErrorCode::StorageError, why, None, t);
                        self.abort_upload(key, id, "error");
                    }
                }
                Done::Data { token, frame, last } => self.disk_data(token, frame, last),
                Done::ReadFailed { token, error } => {
                    tracing::warn!(token, %error, "cannot read a spool file");
                    if let Some(key) = self.download_keys.remove(&token)
                        && let Some(conn) = self.conns.get_mut(key)
                        && let Some(i) = conn.downloads.iter().position(|d| d.token == token)
                    {
                        let d = conn.downloads.swap_remove(i);
                        conn.output.push_bulk(cancelled_frame(d.transfer, "error"));
                        self.mark_dirty(key);
                    }
                }
            }
        }
    }

    /// The connection of upload `id`'s sender, if it is still here.
    fn owner_key(&self, id: u64) -> Option<usize> {
        let t = self.transfers.get(id)?;
        let session = self.room.member(t.owner_key)?.session;
        (session == t.owner_session).then_some(t.owner_key)
    }

    fn disk_stored(&mut self, id: u64, bytes: u64) {
        let report = self.transfers.stored(id, bytes);
        let size = self.transfers.get(id).map_or(0, |t| t.size);
        let Some(key) = self.owner_key(id) else {
            return;
        };
        if let Some(done) = report {
            self.send_progress(key, id, done, size);
        }
        // The disk caught up: read the uploader again.
        if self.transfers.in_flight(id) <= UPLOAD_WINDOW / 2
            && let Some(conn) = self.conns.get_mut(key)
            && conn.paused
        {
            conn.paused = false;
            self.resume_reading(key);
        }
    }

    fn disk_finished(&mut self, id: u64, ok: bool) {
        let Some(key) = self.owner_key(id) else {
            // The sender left meanwhile; its upload is already gone.
            return;
        };
        if !ok {
            let why = "the uploaded content does not match the offered sha256";
            self.protocol_error_about(key, ErrorCode::HashMismatch, why, None, Some(id));
            self.abort_upload(key, id, "error");
            return;
        }
        let size = self.transfers.get(id).map_or(0, |t| t.size);
        let Some(frame) = self.transfers.ready(id, self.now, now_ms()) else {
            return;
        };
        self.send_progress(key, id, size, size);
        self.push_private(
            key,
            encode_server(&ServerMessage::FileReady(TransferId { transfer: id })),
        );
        self.announce_offer(id, &frame, Some(key));
    }

    fn disk_data(&mut self, token: u64, frame: bytes::Bytes, last: bool) {
        let Some(&key) = self.download_keys.get(&token) else {
            return; // cancelled meanwhile
        };
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(i) = conn.downloads.iter().position(|d| d.token == token) else {
            return;
        };
        conn.downloads[i].outstanding = conn.downloads[i].outstanding.saturating_sub(1);
        // File data is bulk: any other frame for this client overtakes it at
        // the next frame boundary. `file_done` follows the data in order.
        conn.output.push_bulk(frame);
        if last {
            let d = conn.downloads.swap_remove(i);
            conn.output
                .push_bulk(encode_server(&ServerMessage::FileDone(TransferId {
                    transfer: d.transfer,
                })));
            self.download_keys.remove(&token);
            self.disk.submit(Job::Close { token });
        }
        self.mark_dirty(key);
        self.refill(key);
    }

    fn send_progress(&mut self, key: usize, id: u64, done: u64, total: u64) {
        self.push_private(
            key,
            encode_server(&ServerMessage::FileProgress(FileProgress {
                transfer: id,
                done,
                total,
            })),
        );
    }

    /// Stops an upload: the partial file goes, the uploader is told.
    fn abort_upload(&mut self, key: usize, id: u64, reason: &str) {
        if self.transfers.remove(id).is_some() {
            self.disk.submit(Job::Remove { id });
            tracing::info!(transfer = id, reason, "upload aborted");
            self.push_private(key, cancelled_frame(id, reason));
            // A connection paused for this upload's disk backlog must not
            // stay paused now that the backlog is gone.
            if let Some(conn) = self.conns.get_mut(key)
                && conn.paused
            {
                conn.paused = false;
                self.resume_reading(key);
            }
        }
    }

    /// Uploads of a connection that is leaving are dropped with their files.
    pub(crate) fn drop_uploads_of(&mut self, key: usize, session: u64) {
        for id in self.transfers.unfinished_uploads_of(key, session) {
            self.transfers.remove(id);
            self.disk.submit(Job::Remove { id });
            tracing::info!(transfer = id, "upload abandoned: the sender left");
        }
    }

    /// Offers transfer `id` (its encoded `file_offer` is `frame`) to every
    /// member but `except` (its uploader).
    fn announce_offer(&mut self, id: u64, frame: &bytes::Bytes, except: Option<usize>) {
        tracing::info!(transfer = id, "file offered");
        // Like a chat: pending welcomes and joins go first.
        self.flush_presence();
        let (room, mut out) = self.outbox();
        out.broadcast(room.users_keys().filter(|&k| Some(k) != except), frame);
    }

    /// Tells every member that offer `id` ended.
    fn announce_cancelled(&mut self, id: u64, reason: &str) {
        let frame = cancelled_frame(id, reason);
        self.flush_presence();
        let (room, mut out) = self.outbox();
        room.broadcast(&frame, &mut out);
    }

    /// Sends a member who just joined the newest `welcome_offers` offers
    /// still available (their frames are encoded once, when they went on
    /// offer); its `welcome` says how many older ones were left out. So a
    /// login costs the same however many offers there are.
    pub(crate) fn send_offers_to(&mut self, key: usize) {
        let (frames, omitted) = self.transfers.newest_offers(self.config.welcome_offers);
        if frames.is_empty() && omitted == 0 {
            // Nothing to say: the welcome keeps waiting for its batch.
            return;
        }
        let (room, mut out) = self.outbox();
        if room.welcome_pending(key) {
            room.set_offers_omitted(omitted);
            room.flush_welcomes(&mut out);
        }
        for frame in frames {
            out.push(key, frame);
        }
    }

    pub(crate) fn file_accept(&mut self, key: usize, accept: FileAccept) {
        let ready = self
            .transfers
            .get(accept.transfer)
            .and_then(|t| t.offered())
            .map(|o| o.size);
        let Some(size) = ready else {
            self.protocol_error_about(
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
            self.protocol_error_about(key, ErrorCode::BadOffset, &why, None, t);
            return;
        }
        let session = self.room.member(key).map_or(0, |u| u.session);
        let already = self
            .conns
            .get(key)
            .is_some_and(|c| c.downloads.iter().any(|d| d.transfer == accept.transfer));
        if already || self.active_transfers(key, session) >= self.config.max_transfers_per_client {
            let why = "too many uploads and downloads at once (or this one is running)";
            let t = Some(accept.transfer);
            self.protocol_error_about(key, ErrorCode::TooManyTransfers, why, None, t);
            return;
        }
        if accept.offset == size {
            self.push_private(
                key,
                encode_server(&ServerMessage::FileDone(TransferId {
                    transfer: accept.transfer,
                })),
            );
            return;
        }
        let token = self.transfers.next_token();
        self.disk.submit(Job::Open {
            token,
            transfer: accept.transfer,
            offset: accept.offset,
            size,
        });
        if let Some(conn) = self.conns.get_mut(key) {
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
        self.download_keys.insert(token, key);
        self.refill(key);
    }

    pub(crate) fn file_cancel(&mut self, key: usize, id: u64) {
        if self.owner_key(id) == Some(key) {
            if self.transfers.upload_position(id).is_some() {
                self.abort_upload(key, id, "cancelled");
            } else {
                self.transfers.remove(id);
                self.disk.submit(Job::Remove { id });
                tracing::info!(transfer = id, "offer withdrawn by its sender");
                self.announce_cancelled(id, "cancelled");
                self.stop_downloads_of(id);
            }
            return;
        }
        let downloading = self.conns.get_mut(key).and_then(|c| {
            let i = c.downloads.iter().position(|d| d.transfer == id)?;
            Some(c.downloads.swap_remove(i))
        });
        if let Some(d) = downloading {
            self.close_downloads(&[d]);
            // After the data already queued, as `file_done` would be.
            if let Some(conn) = self.conns.get_mut(key) {
                conn.output.push_bulk(cancelled_frame(id, "cancelled"));
            }
            self.mark_dirty(key);
        } else {
            self.protocol_error_about(
                key,
                ErrorCode::UnknownTransfer,
                "no upload, offer or download of yours with this id",
                None,
                Some(id),
            );
        }
    }

    /// Ends every download of transfer `id` (its sender withdrew it).
    fn stop_downloads_of(&mut self, id: u64) {
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.downloads.iter().any(|d| d.transfer == id))
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            let (gone, kept): (Vec<Download>, Vec<Download>) =
                c.downloads.drain(..).partition(|d| d.transfer == id);
            c.downloads = kept;
            self.close_downloads(&gone);
        }
    }

    /// Offers past their time go (the room is told), and so do uploads
    /// that made no progress for `upload_stall_secs` (their uploader is
    /// told): an offer that never uploads holds nothing for long.
    pub(crate) fn expire_offers(&mut self) {
        for id in self.transfers.expired(self.now) {
            self.transfers.remove(id);
            self.disk.submit(Job::Remove { id });
            tracing::info!(transfer = id, "offer expired");
            self.announce_cancelled(id, "expired");
        }
        for id in self.transfers.stalled(self.now, self.config.upload_stall()) {
            match self.owner_key(id) {
                Some(key) => {
                    let why = format!(
                        "no chunk for {} s; the upload is aborted",
                        self.config.upload_stall_secs
                    );
                    let t = Some(id);
                    self.protocol_error_about(key, ErrorCode::UploadTimeout, &why, None, t);
                    self.abort_upload(key, id, "error");
                }
                None => {
                    self.transfers.remove(id);
                    self.disk.submit(Job::Remove { id });
                }
            }
        }
    }

    /// Asks the disk thread for the next chunks of `key`'s downloads while
    /// its queue (plus reads already asked for) is below the low-water mark.
    /// The data arrives later through [`Reactor::drain_disk`].
    pub(crate) fn refill(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.is_open() || conn.downloads.is_empty() {
            return;
        }
        let chunk = u64::from(MAX_CHUNK);
        let pending: u64 = conn
            .downloads
            .iter()
            .map(|d| u64::from(d.outstanding))
            .sum();
        let mut budget =
            (LOW_WATER as u64).saturating_sub(conn.output.len() as u64 + pending * chunk);
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
                    self.disk.submit(Job::Read { token: d.token });
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
    pub(crate) fn close_downloads(&mut self, downloads: &[Download]) {
        for d in downloads {
            self.download_keys.remove(&d.token);
            self.disk.submit(Job::Close { token: d.token });
        }
    }
}

/// An encoded `file_cancelled`.
fn cancelled_frame(id: u64, reason: &str) -> bytes::Bytes {
    encode_server(&ServerMessage::FileCancelled(FileCancelled {
        transfer: id,
        reason: reason.to_owned(),
    }))
}
