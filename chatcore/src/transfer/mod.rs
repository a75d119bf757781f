//! File transfers: uploads spooled to disk and checked against their
//! SHA-256, offers kept until they expire, downloads read back at each
//! receiver's pace. This module holds the state and the disk work; the
//! reactor (`session_transfer`) applies the protocol rules and moves frames.
//!
//! Disk I/O happens on the loop thread in chunks of at most 256 KiB (one
//! `write` per uploaded chunk, one `read` per downloaded chunk), so one call
//! costs microseconds from the page cache; docs/benchmarks.md has the longest
//! loop turn measured during a 1 GiB transfer.

pub mod names;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use sha2::{Digest, Sha256};

use crate::protocol::HEADER_LEN;
use crate::protocol::transfer::{FileKind, FileOffered, MAX_CHUNK};

/// Extension of spool files, so cleaning at start touches nothing else.
const SPOOL_EXT: &str = "chatspool";
/// The uploader hears how far it got every this many bytes.
pub const PROGRESS_EVERY: u64 = 1024 * 1024;

/// Where an upload stands.
#[derive(Debug)]
pub enum Stage {
    /// Chunks are arriving.
    Uploading {
        /// The spool file being written.
        file: File,
        /// Bytes stored so far.
        received: u64,
        /// Hash of those bytes.
        hasher: Box<Sha256>,
        /// `received` when the last progress was sent.
        reported: u64,
    },
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
}

/// What an uploaded chunk led to.
#[derive(Debug, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Stored; send progress if `Some(done)`.
    Stored(Option<u64>),
    /// The last byte arrived and the hash matched: the offer is ready.
    Complete,
    /// The last byte arrived but the content does not match the offer.
    HashMismatch,
}

/// A download in progress on one connection.
#[derive(Debug)]
pub struct Download {
    /// The transfer.
    pub transfer: u64,
    /// Its spool file, opened at accept (so it stays readable even if the
    /// offer expires meanwhile).
    pub file: File,
    /// Next byte to send.
    pub offset: u64,
    /// File size.
    pub size: u64,
}

impl Download {
    /// Reads the next chunk and encodes it as one `file_data` frame, reading
    /// straight into the frame buffer (one copy from the page cache).
    pub fn next_frame(&mut self) -> io::Result<Bytes> {
        let want = (self.size - self.offset).min(u64::from(MAX_CHUNK)) as usize;
        let mut head = Vec::with_capacity(64);
        // map of 4: type, transfer, offset, data
        head.push(0x84);
        put_str(&mut head, "type");
        put_str(&mut head, "file_data");
        put_str(&mut head, "transfer");
        put_u64(&mut head, self.transfer);
        put_str(&mut head, "offset");
        put_u64(&mut head, self.offset);
        put_str(&mut head, "data");
        head.push(0xc6); // bin32
        head.extend_from_slice(&(want as u32).to_be_bytes());
        let mut frame = BytesMut::with_capacity(HEADER_LEN + head.len() + want);
        frame.put_u32((head.len() + want) as u32);
        frame.extend_from_slice(&head);
        let start = frame.len();
        frame.resize(start + want, 0);
        self.file.read_exact(&mut frame[start..])?;
        self.offset += want as u64;
        Ok(frame.freeze())
    }

    /// Whether every byte was sent.
    pub fn finished(&self) -> bool {
        self.offset >= self.size
    }
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    // Only short ASCII keys and type names are written here.
    b.push(0xa0 | s.len() as u8);
    b.extend_from_slice(s.as_bytes());
}

fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.push(0xcf);
    b.extend_from_slice(&v.to_be_bytes());
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
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A transfer by id.
    pub fn get(&self, id: u64) -> Option<&Transfer> {
        self.by_id.get(&id)
    }

    /// Every offer currently available, oldest first.
    pub fn ready(&self) -> Vec<FileOffered> {
        let mut offers: Vec<FileOffered> =
            self.by_id.values().filter_map(Transfer::offered).collect();
        offers.sort_by_key(|o| o.transfer);
        offers
    }

    /// Uploads in progress from connection `key`.
    pub fn uploads_of(&self, key: usize, session: u64) -> usize {
        self.by_id
            .values()
            .filter(|t| {
                t.owner_key == key
                    && t.owner_session == session
                    && matches!(t.stage, Stage::Uploading { .. })
            })
            .count()
    }

    /// Whether `size` more bytes fit, after expiring the oldest offers if
    /// needed. Returns the ids expired to make room, or `None` if even with
    /// every offer gone (uploads in progress stay) it would not fit.
    pub fn make_room(&mut self, size: u64) -> Option<Vec<u64>> {
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

    /// Registers a new upload and creates its spool file.
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
    ) -> io::Result<u64> {
        let id = self.next_id;
        let path = self.dir.join(format!("{id}.{SPOOL_EXT}"));
        let file = File::create(&path)?;
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
                path,
                stage: Stage::Uploading {
                    file,
                    received: 0,
                    hasher: Box::default(),
                    reported: 0,
                },
            },
        );
        Ok(id)
    }

    /// Stores a chunk of upload `id`, which the caller has checked belongs to
    /// the sender, continues at `offset` and stays within the size.
    pub fn store(
        &mut self,
        id: u64,
        data: &[u8],
        now: Instant,
        ts: i64,
    ) -> io::Result<ChunkOutcome> {
        let ttl = self.ttl;
        let Some(t) = self.by_id.get_mut(&id) else {
            return Err(io::ErrorKind::NotFound.into());
        };
        let size = t.size;
        let Stage::Uploading {
            file,
            received,
            hasher,
            reported,
        } = &mut t.stage
        else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        file.write_all(data)?;
        hasher.update(data);
        *received += data.len() as u64;
        if *received < size {
            if *received - *reported >= PROGRESS_EVERY {
                *reported = *received;
                return Ok(ChunkOutcome::Stored(Some(*received)));
            }
            return Ok(ChunkOutcome::Stored(None));
        }
        let digest: [u8; 32] = std::mem::take(hasher).finalize().into();
        if digest != t.sha256 {
            return Ok(ChunkOutcome::HashMismatch);
        }
        t.stage = Stage::Ready {
            ts,
            expires: now + ttl,
        };
        Ok(ChunkOutcome::Complete)
    }

    /// Where upload `id` stands: `(received, size)`, if it is uploading.
    pub fn upload_position(&self, id: u64) -> Option<(u64, u64)> {
        match self.by_id.get(&id)?.stage {
            Stage::Uploading { received, .. } => Some((received, self.by_id.get(&id)?.size)),
            Stage::Ready { .. } => None,
        }
    }

    /// Opens a download of ready transfer `id` from `offset`.
    pub fn open_download(&self, id: u64, offset: u64) -> io::Result<Download> {
        let t = self.by_id.get(&id).ok_or(io::ErrorKind::NotFound)?;
        let mut file = File::open(&t.path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Download {
            transfer: id,
            file,
            offset,
            size: t.size,
        })
    }

    /// Forgets transfer `id` and deletes its spool file (open downloads keep
    /// reading it: the file lives until they close it).
    pub fn remove(&mut self, id: u64) -> Option<Transfer> {
        let t = self.by_id.remove(&id)?;
        self.used = self.used.saturating_sub(t.size);
        let _ = fs::remove_file(&t.path);
        Some(t)
    }

    /// Uploads by the connection `key` (session `session`) still in progress.
    pub fn unfinished_uploads_of(&self, key: usize, session: u64) -> Vec<u64> {
        self.by_id
            .values()
            .filter(|t| {
                t.owner_key == key
                    && t.owner_session == session
                    && matches!(t.stage, Stage::Uploading { .. })
            })
            .map(|t| t.id)
            .collect()
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

    /// Offers whose time is up.
    pub fn expired(&self, now: Instant) -> Vec<u64> {
        self.by_id
            .values()
            .filter(|t| matches!(t.stage, Stage::Ready { expires, .. } if now >= expires))
            .map(|t| t.id)
            .collect()
    }
}
