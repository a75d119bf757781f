//! File transfers: uploads spooled to disk and checked against their
//! SHA-256, offers kept until they expire, downloads read back at each
//! receiver's pace. This module holds the state and the disk work;
//! `session::transfer` applies the protocol rules and queues the frames.
//!
//! Disk work (spool writes, SHA-256, reads) runs on the [`disk`] thread; this
//! module keeps the bookkeeping the loop needs to apply the rules.

pub mod disk;
pub mod names;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::protocol::transfer::{FileKind, FileOffered};
use crate::protocol::{ServerMessage, encode_server};

/// The uploader hears how far it got every this many bytes.
pub const PROGRESS_EVERY: u64 = 1024 * 1024;

/// Where an upload stands.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// Chunks are arriving.
    Uploading {
        /// Bytes accepted and handed to the disk thread (and charged to the
        /// quota: only what was really sent costs quota).
        received: u64,
        /// Bytes the disk thread has stored.
        stored: u64,
        /// `stored` when the last progress was sent.
        reported: u64,
        /// When the upload last made progress (began, or a chunk came): an
        /// upload silent for `upload_stall_secs` is aborted.
        active: Instant,
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

/// Who a file is offered to: a room's members or one member (docs/protocol.md
/// 23.6, 25.4). Fixed at `file_offer`; `file_accept` checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The default room's members (every member: all are in it).
    Lobby,
    /// A named room's members.
    Room {
        /// Its id in [`crate::server::room::Rooms`] (rooms are never
        /// removed, so the id stays its own).
        id: usize,
        /// Its name, shown in the offer's `room`.
        name: String,
    },
    /// One member, in a direct conversation.
    Direct {
        /// The recipient's name as the sender wrote it to (the offer's `to`).
        to: String,
        /// The recipient's party key (`a:`/`g:` + skeleton, as direct
        /// messages name parties): whoever logs in as it may download.
        to_party: String,
        /// The sender's party key: its other logins may download too.
        from_party: String,
    },
}

/// One transfer: the offer and its spooled content (the spool file itself
/// belongs to the disk thread, see [`disk`]).
#[derive(Debug)]
pub struct Transfer {
    /// Server-wide id.
    pub id: u64,
    /// The uploader's connection (while it is connected).
    pub owner_key: usize,
    /// The uploader's session, to tell its connection from a reused key.
    pub owner_session: u64,
    /// The uploader's name, shown in offers and counted for
    /// `max_offers_per_name`.
    pub owner_name: String,
    /// The uploader's IP address, counted for `max_offers_per_address`.
    pub owner_addr: IpAddr,
    /// The offered name (checked by [`names::check`]).
    pub name: String,
    /// Declared size.
    pub size: u64,
    /// Declared SHA-256.
    pub sha256: [u8; 32],
    /// `file` or `voice`.
    pub kind: FileKind,
    /// Upload progress or offer lifetime.
    pub stage: Stage,
    /// Who it is offered to.
    pub scope: Scope,
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
            room: match &self.scope {
                Scope::Room { name, .. } => Some(name.clone()),
                _ => None,
            },
            to: match &self.scope {
                Scope::Direct { to, .. } => Some(to.clone()),
                _ => None,
            },
        })
    }

    /// Whether `key`/`session` is this transfer's uploader.
    pub fn owned_by(&self, key: usize, session: u64) -> bool {
        self.owner_key == key && self.owner_session == session
    }

    /// Bytes of the quota this transfer uses: what was uploaded so far.
    fn charged(&self) -> u64 {
        match self.stage {
            Stage::Uploading { received, .. } => received,
            Stage::Verifying | Stage::Ready { .. } => self.size,
        }
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

/// Limits on live transfers (uploads in progress plus offers).
#[derive(Debug, Clone, Copy)]
pub struct OfferLimits {
    /// In the whole room.
    pub total: usize,
    /// Per sender name, over all its sessions.
    pub per_name: usize,
    /// Per sender IP address, over all its sessions and names.
    pub per_address: usize,
}

/// Which offer limit a new offer would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferLimit {
    /// `max_offers`.
    Room,
    /// `max_offers_per_name`.
    Name,
    /// `max_offers_per_address`.
    Address,
}

/// Every transfer of the server, and the counts that bound them. The loop
/// keeps this bookkeeping; the disk thread keeps the files.
#[derive(Debug)]
pub struct Transfers {
    /// By id, so that the newest offers are the last entries.
    by_id: BTreeMap<u64, Transfer>,
    /// The encoded `file_offer` of every transfer on offer, by id: encoded
    /// once when it goes on offer and shared by every late joiner.
    offered: BTreeMap<u64, Bytes>,
    /// Live transfers per sender name.
    per_name: HashMap<String, usize>,
    /// Live transfers per sender address.
    per_addr: HashMap<IpAddr, usize>,
    next_id: u64,
    /// Bytes charged to the quota: uploaded bytes of uploads in progress and
    /// the sizes of verifying and offered files.
    used: u64,
    quota: u64,
    ttl: Duration,
    limits: OfferLimits,
    /// Last download token handed out.
    next_token: u64,
}

impl Transfers {
    /// Empty bookkeeping.
    pub fn new(quota: u64, ttl: Duration, limits: OfferLimits) -> Self {
        Self {
            by_id: BTreeMap::new(),
            offered: BTreeMap::new(),
            per_name: HashMap::new(),
            per_addr: HashMap::new(),
            next_id: 1,
            used: 0,
            quota,
            ttl,
            limits,
            next_token: 0,
        }
    }

    /// A transfer by id.
    pub fn get(&self, id: u64) -> Option<&Transfer> {
        self.by_id.get(&id)
    }

    /// The encoded `file_offer`s of the newest `n` offers whose scope
    /// `wanted` accepts, oldest first, and how many older such offers were
    /// left out. Walks the offers newest first, so a login into a busy
    /// default room costs O(n); a room with few offers among many costs a
    /// walk of them all (bounded by `max_offers`).
    pub fn newest_offers(&self, n: usize, wanted: impl Fn(&Scope) -> bool) -> (Vec<Bytes>, u64) {
        let mut frames = Vec::new();
        let mut omitted = 0u64;
        for (id, frame) in self.offered.iter().rev() {
            if !self.by_id.get(id).is_some_and(|t| wanted(&t.scope)) {
                continue;
            }
            if frames.len() < n {
                frames.push(frame.clone());
            } else {
                omitted += 1;
            }
        }
        frames.reverse();
        (frames, omitted)
    }

    /// Uploads in progress (or verifying) from connection `key`.
    pub fn uploads_of(&self, key: usize, session: u64) -> usize {
        self.unfinished(key, session).count()
    }

    /// The limit a new transfer from `name` at `addr` would break, if any.
    pub fn limit_reached(&self, name: &str, addr: IpAddr) -> Option<OfferLimit> {
        if self.by_id.len() >= self.limits.total {
            Some(OfferLimit::Room)
        } else if self.per_name.get(name).copied().unwrap_or(0) >= self.limits.per_name {
            Some(OfferLimit::Name)
        } else if self.per_addr.get(&addr).copied().unwrap_or(0) >= self.limits.per_address {
            Some(OfferLimit::Address)
        } else {
            None
        }
    }

    /// Bytes the spool holds now, as charged to the quota.
    pub fn spool_used(&self) -> u64 {
        self.used
    }

    /// Whether `bytes` more would fit in the quota now.
    pub fn fits(&self, bytes: u64) -> bool {
        self.used.saturating_add(bytes) <= self.quota
    }

    /// Registers a new upload and returns its id (the disk thread creates
    /// the file). Nothing is charged to the quota until chunks arrive.
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        &mut self,
        owner_key: usize,
        owner_session: u64,
        owner_name: &str,
        owner_addr: IpAddr,
        name: &str,
        size: u64,
        sha256: [u8; 32],
        kind: FileKind,
        scope: Scope,
        now: Instant,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        *self.per_name.entry(owner_name.to_owned()).or_default() += 1;
        *self.per_addr.entry(owner_addr).or_default() += 1;
        self.by_id.insert(
            id,
            Transfer {
                id,
                owner_key,
                owner_session,
                owner_name: owner_name.to_owned(),
                owner_addr,
                name: name.to_owned(),
                size,
                sha256,
                kind,
                scope,
                stage: Stage::Uploading {
                    received: 0,
                    stored: 0,
                    reported: 0,
                    active: now,
                },
            },
        );
        id
    }

    /// Where upload `id` stands: `(received, size)`, while chunks may come.
    pub fn upload_position(&self, id: u64) -> Option<(u64, u64)> {
        let t = self.by_id.get(&id)?;
        match t.stage {
            Stage::Uploading { received, .. } => Some((received, t.size)),
            _ => None,
        }
    }

    /// Accounts a chunk of `len` bytes handed to the disk thread (charging
    /// it to the quota); returns whether it completes the declared size
    /// (then the upload verifies).
    pub fn accept_chunk(&mut self, id: u64, len: u64, now: Instant) -> bool {
        let Some(t) = self.by_id.get_mut(&id) else {
            return false;
        };
        let size = t.size;
        if let Stage::Uploading {
            received, active, ..
        } = &mut t.stage
        {
            *received += len;
            *active = now;
            self.used += len;
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

    /// Upload `id` verified: it goes on offer. Returns its encoded
    /// `file_offer`, kept for late joiners.
    pub fn ready(&mut self, id: u64, now: Instant, ts: i64) -> Option<Bytes> {
        let ttl = self.ttl;
        let t = self.by_id.get_mut(&id)?;
        t.stage = Stage::Ready {
            ts,
            expires: now + ttl,
        };
        let frame = encode_server(&ServerMessage::FileOffer(t.offered()?));
        self.offered.insert(id, frame.clone());
        Some(frame)
    }

    /// A fresh token for a download.
    pub fn next_token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Forgets transfer `id` and releases what it held. The caller tells the
    /// disk thread ([`disk::Job::Remove`]), which deletes the file once no
    /// download reads it.
    pub fn remove(&mut self, id: u64) -> Option<Transfer> {
        let t = self.by_id.remove(&id)?;
        self.offered.remove(&id);
        self.used = self.used.saturating_sub(t.charged());
        release(&mut self.per_name, &t.owner_name);
        release(&mut self.per_addr, &t.owner_addr);
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

    /// Offers whose time is up.
    pub fn expired(&self, now: Instant) -> Vec<u64> {
        self.by_id
            .values()
            .filter(|t| matches!(t.stage, Stage::Ready { expires, .. } if now >= expires))
            .map(|t| t.id)
            .collect()
    }

    /// Uploads that received nothing for `stall`.
    pub fn stalled(&self, now: Instant, stall: Duration) -> Vec<u64> {
        self.by_id
            .values()
            .filter(|t| {
                matches!(t.stage, Stage::Uploading { active, .. }
                    if now.saturating_duration_since(active) >= stall)
            })
            .map(|t| t.id)
            .collect()
    }
}

/// Takes one from a count, forgetting keys that reach zero (the maps stay
/// as small as the live transfers).
fn release<K: std::hash::Hash + Eq + ?Sized, Q>(map: &mut HashMap<Q, usize>, key: &K)
where
    Q: std::borrow::Borrow<K> + std::hash::Hash + Eq,
{
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}
