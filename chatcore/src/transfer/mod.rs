//! File transfers: uploads spooled to disk and checked against their
//! SHA-256, offers kept until they expire, downloads read back at each
//! receiver's pace. This module holds the state and the disk work; the
//! reactor (`session_transfer`) applies the protocol rules and moves frames.
//!
//! Disk work (spool writes, SHA-256, reads) runs on the [`disk`] thread; this
//! module keeps the bookkeeping the loop needs to apply the rules.

pub mod disk;
pub mod names;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::protocol::transfer::{FileKind, FileOffered};

/// Extension of spool files, so cleaning at start touches nothing else.
const SPOOL_EXT: &str = "chatspool";
/// The uploader hears how far it got every this many bytes.
pub const PROGRESS_EVERY: u64 = 1024 * 1024;

/// Where an upload stands.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// Chunks are arriving.
    Uploading {
        /// Bytes accepted and handed to the disk thread.
        received: u64,
        /// Bytes the disk thread has stored.
        stored: u64,
        /// `stored` when the last progress was sent.
        reported: u64,
    },
    /// The last chunk was handed over; waiting for the hash check.
    Verifying,
    /// Complete, verified and on offer until `expires`.
    Ready {
        /// When the upload completed (ms since the epoch), shown in offers.
        ts: i64,
        /// When the offer ends.
        expires: Instant,
    },
}

/// One transfer: the offer and its spooled content.
#[derive(Debug)]
pub struct Transfer {
    /// Server-wide id.
    pub id: u64,
    /// The uploader's connection (while it is connected).
    pub owner_key: usize,
    /// The uploader's session, to tell its connection from a reused key.
    pub owner_session: u64,
    /// The uploader's name, shown in offers.
    pub owner_name: String,
    /// The offered name (checked by [`names::check`]).
    pub name: String,
    /// Declared size.
    pub size: u64,
    /// Declared SHA-256.
    pub sha256: [u8; 32],
    /// `file` or `voice`.
    pub kind: FileKind,
    /// The spool file.
    pub path: PathBuf,
    /// Upload progress or offer lifetime.
    pub stage: Stage,
}

impl Transfer {
    /// The `file_offer` the room sees.
    pub fn offered(&self) -> Option<FileOffered> {
        let Stage::Ready { ts, .. } = self.stage else {
            return None;
        };
        Some(FileOffered {
            transfer: self.id,
            from: self.owner_name.clone(),
            session: self.owner_session,
            name: self.name.clone(),
            size: self.size,
            sha256: self.sha256.to_vec(),
            kind: self.kind,
            ts,
        })
    }

    /// Whether `key`/`session` is this transfer's uploader.
    pub fn owned_by(&self, key: usize, session: u64) -> bool {
        self.owner_key == key && self.owner_session == session
    }
}

/// A download in progress on one connection: the loop's bookkeeping; the
/// disk thread holds the open file under `token`.
#[derive(Debug, Clone, Copy)]
pub struct Download {
    /// The transfer.
    pub transfer: u64,
    /// Names this download in the disk thread's jobs and results.
    pub token: u64,
    /// Bytes asked of the disk thread so far (from the accept offset).
    pub requested: u64,
    /// File size.
    pub size: u64,
    /// Reads asked for and not yet delivered.
    pub outstanding: u8,
}

/// Every transfer of the server and the spool that holds them.
#[derive(Debug)]
pub struct Transfers {
    dir: PathBuf,
    by_id: HashMap<u64, Transfer>,
    next_id: u64,
    /// Bytes reserved by all transfers (declared sizes).
    used: u64,
    quota: u64,
    ttl: Duration,
    /// Last download token handed out.
    next_token: u64,
}

impl Transfers {
    /// Creates the spool directory if needed and removes spool files left by
    /// an earlier run.
    pub fn open(dir: PathBuf, quota: u64, ttl: Duration) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == SPOOL_EXT) {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(Self {
            dir,
            by_id: HashMap::new(),
            next_id: 1,
            used: 0,
            quota,
            ttl,
            next_token: 0,
        })
    }

    /// A transfer by id.
    pub fn get(&self, id: u64) -> Option<&Transfer> {
        self.by_id.get(&id)
    }

    /// Every offer currently available, oldest first.
    pub fn offers(&self) -> Vec<FileOffered> {
        let mut offers: Vec<FileOffered> =
            self.by_id.values().filter_map(Transfer::offered).collect();
        offers.sort_by_key(|o| o.transfer);
        offers
    }

    /// Uploads in progress (or verifying) from connection `key`.
    pub fn uploads_of(&self, key: usize, session: u64) -> usize {
        self.unfinished(key, session).count()
    }

    /// Whether `size` more bytes fit, after expiring the oldest offers if
    /// needed. Returns the ids expired to make room, or `None` if even with
    /// every offer gone (uploads in progress stay) it would not fit.
    pub fn make_room(&mut self, size: u64) -> Option<Vec<u64>> {
        // First see whether expiring every offer would be enough, so that
        // offers are never deleted for an upload that is refused anyway.
        let offered: u64 = self
            .by_id
            .values()
            .filter(|t| matches!(t.stage, Stage::Ready { .. }))
            .map(|t| t.size)
            .sum();
        if (self.used - offered).saturating_add(size) > self.quota {
            return None;
        }
        let mut expired = Vec::new();
        while self.used.saturating_add(size) > self.quota {
            let oldest = self
                .by_id
                .values()
                .filter(|t| matches!(t.stage, Stage::Ready { .. }))
                .min_by_key(|t| t.id)
                .map(|t| t.id);
            match oldest {
                Some(id) => {
                    self.remove(id);
                    expired.push(id);
                }
                None => return None,
            }
        }
        Some(expired)
    }

    /// Registers a new upload; returns its id and spool path (the disk
    /// thread creates the file).
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        &mut self,
        owner_key: usize,
        owner_session: u64,
        owner_name: &str,
        name: &str,
        size: u64,
        sha256: [u8; 32],
        kind: FileKind,
    ) -> (u64, PathBuf) {
        let id = self.next_id;
        let path = self.dir.join(format!("{id}.{SPOOL_EXT}"));
        self.next_id += 1;
        self.used += size;
        self.by_id.insert(
            id,
            Transfer {
                id,
                owner_key,
                owner_session,
                owner_name: owner_name.to_owned(),
                name: name.to_owned(),
                size,
                sha256,
                kind,
                path: path.clone(),
                stage: Stage::Uploading {
                    received: 0,
                    stored: 0,
                    reported: 0,
                },
            },
        );
        (id, path)
    }

    /// Where upload `id` stands: `(received, size)`, while chunks may come.
    pub fn upload_position(&self, id: u64) -> Option<(u64, u64)> {
        let t = self.by_id.get(&id)?;
        match t.stage {
            Stage::Uploading { received, .. } => Some((received, t.size)),
            _ => None,
        }
    }

    /// Accounts a chunk of `len` bytes handed to the disk thread; returns
    /// whether it completes the declared size (then the upload verifies).
    pub fn accept_chunk(&mut self, id: u64, len: u64) -> bool {
        let Some(t) = self.by_id.get_mut(&id) else {
            return false;
        };
        let size = t.size;
        if let Stage::Uploading { received, .. } = &mut t.stage {
            *received += len;
            if *received >= size {
                t.stage = Stage::Verifying;
                return true;
            }
        }
        false
    }

    /// Accounts bytes the disk thread stored; returns `Some(stored)` when a
    /// progress report is due (every [`PROGRESS_EVERY`]).
    pub fn stored(&mut self, id: u64, bytes: u64) -> Option<u64> {
        let t = self.by_id.get_mut(&id)?;
        if let Stage::Uploading {
            stored, reported, ..
        } = &mut t.stage
        {
            *stored += bytes;
            if *stored - *reported >= PROGRESS_EVERY {
                *reported = *stored;
                return Some(*stored);
            }
        }
        None
    }

    /// Bytes of upload `id` handed to the disk thread and not yet stored.
    pub fn in_flight(&self, id: u64) -> u64 {
        match self.by_id.get(&id).map(|t| t.stage) {
            Some(Stage::Uploading {
                received, stored, ..
            }) => received - stored,
            _ => 0,
        }
    }

    /// Upload `id` verified: it goes on offer.
    pub fn ready(&mut self, id: u64, now: Instant, ts: i64) {
        let ttl = self.ttl;
        if let Some(t) = self.by_id.get_mut(&id) {
            t.stage = Stage::Ready {
                ts,
                expires: now + ttl,
            };
        }
    }

    /// A fresh token for a download.
    pub fn next_token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Forgets transfer `id` and deletes its spool file (open downloads keep
    /// reading it: the file lives until they close it).
    pub fn remove(&mut self, id: u64) -> Option<Transfer> {
        let t = self.by_id.remove(&id)?;
        self.used = self.used.saturating_sub(t.size);
        let _ = fs::remove_file(&t.path);
        Some(t)
    }

    /// Uploads by the connection `key` (session `session`) not yet on offer.
    pub fn unfinished_uploads_of(&self, key: usize, session: u64) -> Vec<u64> {
        self.unfinished(key, session).map(|t| t.id).collect()
    }

    fn unfinished(&self, key: usize, session: u64) -> impl Iterator<Item = &Transfer> {
        self.by_id
            .values()
            .filter(move |t| t.owned_by(key, session) && !matches!(t.stage, Stage::Ready { .. }))
    }

    /// Deletes every spool file and the spool directory if it is then empty
    /// (the server is stopping; a restart would clean them anyway).
    pub fn close(&mut self) {
        let ids: Vec<u64> = self.by_id.keys().copied().collect();
        for id in ids {
            self.remove(id);
        }
        let _ = fs::remove_dir(&self.dir);
    }

    /// Transfers (offers and uploads) of session `session`.
    pub fn offers_by(&self, session: u64) -> usize {
        self.by_id
            .values()
            .filter(|t| t.owner_session == session)
            .count()
    }

    /// Offers whose time is up.
    pub fn expired(&self, now: Instant) -> Vec<u64> {
        self.by_id
            .values()
            .filter(|t| matches!(t.stage, Stage::Ready { expires, .. } if now >= expires))
            .map(|t| t.id)
            .collect()
    }
}
