//! File transfer, the client's half: offer a file, upload it in chunks,
//! accept or decline offers, download into a directory, resume, cancel.
//!
//! # Threads
//! - The calls ([`ClientSender::send_file`], [`ClientSender::accept_file`]...)
//!   run on the caller's thread. They open and hash files, record the
//!   transfer here and send one request; they never wait for the server and
//!   never put anything on the event channel (so a caller that is also the
//!   one draining the channel cannot deadlock itself).
//! - The reader thread answers the server: on `file_upload` it starts an
//!   uploader thread, and it writes each `file_data` frame straight into the
//!   download's `.part` file, so a download never holds more than one frame
//!   in memory. If writing to disk is slow, the reader reads the socket more
//!   slowly and the server sends more slowly: that is the receiver's pace.
//! - One uploader thread per upload reads the file and sends `file_chunk`
//!   frames through the shared writer, one chunk at a time, so chat messages
//!   and pongs go out between chunks.
//!
//! # What becomes an event
//! Messages about a transfer this client runs become [`TransferEvent`]s
//! (`file_upload`, `file_progress`, `file_ready` of our uploads, `file_data`
//! and `file_done` of our downloads, the `file_cancelled` answering our own
//! cancel, and `error` frames about our offers and downloads) and are not
//! passed on as [`Event::Message`]. `file_offer` and every other
//! `file_cancelled` (an offer withdrawn or expired) are passed on, as is
//! anything about a transfer this client does not know, except `file_data`,
//! which is never passed on.
//!
//! # Errors without a `ref`
//! Only `file_offer` has a `ref`; an `error` about a `file_accept`,
//! `file_chunk`, `file_cancel` or `file_decline` names neither the request
//! nor the transfer. So this client keeps one `file_accept` in flight at a
//! time (the next goes out when the first is answered by data, `file_done`
//! or an error), and reads such an error as: the `hash_mismatch`,
//! `size_mismatch`, `bad_offset` or `storage_error` just before an upload's
//! `file_cancelled` (`error`) belongs to that upload; an `unknown_transfer`
//! after a download we cancelled completed anyway answers that cancel; else
//! an error that can answer a `file_accept` answers the one in flight; else
//! it is passed on as [`Event::Message`]. `file_data` of a download this
//! client does not run (not asked for, or taken for refused) is dropped and
//! the download cancelled.
//!
//! # Files on disk
//! A download is written to `NAME.part` in the chosen directory and renamed
//! to `NAME` (or `NAME (1)`...; an existing file is never overwritten) once
//! its size and SHA-256 match the offer. The name is always passed through
//! [`sanitize_file_name`] first, whatever the server said. A cancelled or
//! interrupted download keeps its `.part` file so it can be resumed; a
//! download whose content turned out wrong deletes it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};

use super::{ClientError, ClientSender, Event};
use crate::protocol::transfer::{
    FileAccept, FileCancelled, FileChunk, FileData, FileKind, FileOffer, FileOffered, FileUpload,
    MAX_CHUNK, TransferId,
};
use crate::protocol::{ClientMessage, ErrorCode, ErrorMsg, ServerMessage};

/// A download reports its progress each time this many more bytes arrived
/// (and once at the end).
pub const PROGRESS_STEP: u64 = 1024 * 1024;
/// Longest file name written, in bytes (the limit of common file systems).
pub const MAX_FILE_NAME: usize = 255;
/// Appended to a download's name while it is incomplete.
pub const PART_SUFFIX: &str = ".part";
/// Bytes read at a time while hashing a file.
const HASH_BUF: usize = 256 * 1024;
/// The first `ref` of file offers. Chat `ref`s are chosen by the
/// application, usually counting from 0 or 1; starting offers far away
/// keeps an error about a chat from being taken for one about an offer.
const FIRST_REF: u64 = 1 << 62;

/// What happened to a file transfer of this client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEvent {
    /// The server took our offer (`file_upload`); the upload of the file
    /// sent with `reference` goes on as `transfer`.
    UploadStarted {
        /// The `ref` that [`ClientSender::send_file`] returned.
        reference: u64,
        /// The transfer id all later events use.
        transfer: u64,
        /// The name offered.
        name: String,
        /// The size offered.
        size: u64,
    },
    /// Bytes of our upload the server has stored (`file_progress`).
    UploadProgress {
        /// The upload.
        transfer: u64,
        /// Bytes stored.
        done: u64,
        /// The file's size.
        total: u64,
    },
    /// The upload is complete, verified and offered to the room (`file_ready`).
    UploadReady {
        /// The upload.
        transfer: u64,
    },
    /// The server refused our offer before any byte was sent.
    OfferRefused {
        /// The `ref` that [`ClientSender::send_file`] returned.
        reference: u64,
        /// The name offered.
        name: String,
        /// The server's error code (`file_too_large`, `quota_exceeded`...).
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// Bytes of a download written so far: every [`PROGRESS_STEP`] bytes
    /// and once at the end.
    DownloadProgress {
        /// The download.
        transfer: u64,
        /// Bytes written to the `.part` file (a resumed download counts
        /// what it already had).
        done: u64,
        /// The file's size.
        total: u64,
    },
    /// A download is complete, its SHA-256 matched, and it was renamed to `path`.
    Saved {
        /// The download.
        transfer: u64,
        /// Where the file now is.
        path: PathBuf,
    },
    /// Our own cancel took effect. For a download, the bytes received so far
    /// are kept in `part`: accepting the same transfer again resumes there.
    Cancelled {
        /// The transfer.
        transfer: u64,
        /// The partial file kept (downloads only).
        part: Option<PathBuf>,
    },
    /// A transfer ended without success.
    Failed {
        /// The transfer.
        transfer: u64,
        /// The server's error code, if the server refused something.
        code: Option<ErrorCode>,
        /// What went wrong, for people.
        reason: String,
        /// A partial download kept for resuming, if any.
        part: Option<PathBuf>,
    },
}

/// A size for people, in decimal units: `512 B`, `1.2 kB`, `64.0 MB`, `3.1 GB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 999.95 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

/// `name` made safe to use as one file name in a directory of our choosing.
///
/// - path separators (`/`, `\`), control characters, the characters Windows
///   forbids (`<>:"|?*`) and invisible bidirectional-override characters
///   become `_`;
/// - surrounding whitespace, leading dots (which hide a file, and make `.`
///   and `..`) and trailing dots and spaces (which Windows drops) are removed;
/// - a name with nothing left is `file`;
/// - a Windows device name (`con`, `nul`, `com1`, `lpt9.txt`...) gets a `_`
///   after its stem: `con_`, `lpt9_.txt`;
/// - the result is at most [`MAX_FILE_NAME`] bytes, cut at a character
///   boundary, keeping a short extension.
///
/// ```
/// use chatcore::client::sanitize_file_name;
/// assert_eq!(sanitize_file_name("../../etc/passwd"), "_.._etc_passwd");
/// assert_eq!(sanitize_file_name("con.txt"), "con_.txt");
/// assert_eq!(sanitize_file_name(""), "file");
/// ```
pub fn sanitize_file_name(name: &str) -> String {
    sanitize_to(name, MAX_FILE_NAME)
}

/// [`sanitize_file_name`] with a byte limit of `max` (at least 8).
fn sanitize_to(name: &str, max: usize) -> String {
    let max = max.max(8);
    let replaced: String = name
        .chars()
        .map(|c| if is_unsafe_char(c) { '_' } else { c })
        .collect();
    let mut name = replaced
        .trim()
        .trim_start_matches('.')
        .trim_end_matches(['.', ' '])
        .trim()
        .to_owned();
    if name.is_empty() {
        name = "file".to_owned();
    }
    let (stem, ext) = split_ext(&name);
    let (mut stem, ext) = (stem.to_owned(), ext.to_owned());
    if is_reserved_device(&stem) {
        // `con_`, `aux_.tar.gz`: the part Windows looks at changes.
        let at = stem.find('.').unwrap_or(stem.len());
        stem.insert(at, '_');
    }
    fit(&stem, &ext, max)
}

/// Whether `c` may not appear in a file name we write.
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Windows device names, which name a device in every directory, with any
/// extension: `con`, `con.txt`, `COM1.log`...
fn is_reserved_device(stem: &str) -> bool {
    // Windows ignores what follows the first dot, and trailing spaces.
    let base = stem.split('.').next().unwrap_or(stem).trim_end();
    let lower = base.to_lowercase();
    if let Some(n) = lower
        .strip_prefix("com")
        .or_else(|| lower.strip_prefix("lpt"))
    {
        return matches!(
            n,
            "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "\u{b9}" | "\u{b2}" | "\u{b3}"
        );
    }
    matches!(
        lower.as_str(),
        "con" | "prn" | "aux" | "nul" | "conin$" | "conout$"
    )
}

/// Splits `name` at its last dot into stem and extension (with the dot).
/// A name without a dot, or whose only dot is the first character, has no
/// extension. Extensions longer than 16 bytes are not treated as such.
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 16 && name.len() - i > 1 => name.split_at(i),
        _ => (name, ""),
    }
}

/// `stem + ext`, cut to at most `max` bytes at a character boundary; the
/// stem is shortened first so the extension survives.
fn fit(stem: &str, ext: &str, max: usize) -> String {
    if stem.len() + ext.len() <= max {
        return format!("{stem}{ext}");
    }
    if ext.len() < max {
        let stem = cut(stem, max - ext.len()).trim_end_matches(['.', ' ']);
        let stem = if stem.is_empty() { "file" } else { stem };
        return format!("{stem}{ext}");
    }
    cut(&format!("{stem}{ext}"), max).to_owned()
}

/// The longest prefix of `s` of at most `max` bytes ending at a char boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A path in `dir` for `name` where nothing exists yet: `dir/x.txt`, else
/// `dir/x (1).txt`, `dir/x (2).txt`... Every candidate stays within
/// [`MAX_FILE_NAME`] bytes. `name` should already be sanitised.
///
/// Something may be created at the path between this call and its use;
/// code that must never overwrite opens it with `create_new`.
pub fn unique_path(dir: &Path, name: &str) -> PathBuf {
    let (stem, ext) = split_ext(name);
    let mut n: u64 = 0;
    loop {
        let candidate = if n == 0 {
            fit(stem, ext, MAX_FILE_NAME)
        } else {
            let suffix = format!(" ({n}){ext}");
            fit(stem, &suffix, MAX_FILE_NAME)
        };
        let path = dir.join(candidate);
        // `symlink_metadata`: a dangling symlink counts as taken too.
        if fs::symlink_metadata(&path).is_err() {
            return path;
        }
        n += 1;
    }
}

/// Creates a new file in `dir` named `name` or `name (n)`; never opens an
/// existing one.
fn create_unique(dir: &Path, name: &str) -> io::Result<(File, PathBuf)> {
    loop {
        let path = unique_path(dir, name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, path)),
            // Taken since `unique_path` looked: try the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
}

/// SHA-256 of everything `reader` yields, and how many bytes that was.
fn hash_reader(reader: &mut impl Read, hasher: &mut Sha256) -> io::Result<u64> {
    let mut buf = vec![0u8; HASH_BUF];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Hex of a hash, for messages.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn file_error(path: &Path, source: io::Error) -> ClientError {
    ClientError::File {
        path: path.to_owned(),
        source,
    }
}

/// An offer sent, waiting for `file_upload` or an error.
#[derive(Debug)]
struct PendingUpload {
    file: File,
    name: String,
    size: u64,
}

/// An upload under way (or just failed, waiting for the server's
/// `file_cancelled` so it can be swallowed).
#[derive(Debug)]
struct Upload {
    reference: u64,
    stop: Arc<AtomicBool>,
    failed: bool,
}

/// A download under way.
struct Download {
    file: File,
    part: PathBuf,
    dir: PathBuf,
    /// The sanitised name to save under.
    name: String,
    size: u64,
    sha256: Vec<u8>,
    hasher: Sha256,
    /// Bytes in the `.part` file.
    done: u64,
    /// `done` at the last progress event.
    reported: u64,
    /// The `offset` of its `file_accept`.
    start: u64,
    /// Its `file_accept` has been sent (see [`State::awaiting`]).
    requested: bool,
    /// We sent `file_cancel`; data still arriving is kept.
    cancelling: bool,
    /// The server answered that cancel with `unknown_transfer` (the
    /// download was already queued to its end).
    cancel_answered: bool,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("part", &self.part)
            .field("size", &self.size)
            .field("done", &self.done)
            .field("cancelling", &self.cancelling)
            .finish_non_exhaustive()
    }
}

/// Everything the client knows about transfers.
#[derive(Debug, Default)]
struct State {
    /// Offers seen (`file_offer` from the server) and not ended.
    offers: BTreeMap<u64, FileOffered>,
    /// Our offers waiting for `file_upload`, by `ref`.
    pending: HashMap<u64, PendingUpload>,
    /// Our uploads, by transfer.
    uploads: HashMap<u64, Upload>,
    /// Our completed uploads, still offered.
    own: BTreeSet<u64>,
    /// Our downloads, by transfer.
    downloads: HashMap<u64, Download>,
    /// Downloads whose `file_accept` has had no answer yet, oldest first.
    /// Errors about a `file_accept` carry no `ref` or transfer id, and data
    /// may overtake them or be overtaken by them, so only the first one's
    /// `file_accept` is sent; the next goes out once the first is answered
    /// (its first `file_data` or `file_done`, or an error). An `error`
    /// without `ref` about a transfer is then the first one's answer.
    awaiting: VecDeque<u64>,
    /// Downloads that completed although we had cancelled them: the server
    /// answers such a cancel with `error unknown_transfer`, to swallow.
    late_cancels: VecDeque<u64>,
    /// Transfers we sent `file_cancel` for whose `file_cancelled` answer is
    /// still to come (and is ours to swallow); `true` if that answer is to
    /// be reported as [`TransferEvent::Cancelled`].
    acks: HashMap<u64, bool>,
    /// Partial downloads kept after a cancel or failure, for resuming.
    parts: HashMap<u64, PathBuf>,
    /// An `error` without `ref` that may be about one of our uploads: the
    /// server follows such an error with the upload's `file_cancelled`, so
    /// it is held until the next message shows whether that comes.
    held: Option<ErrorMsg>,
    /// The connection is gone.
    closed: bool,
}

/// The transfer state shared by the senders, the reader and the uploaders.
#[derive(Debug)]
pub(crate) struct Transfers {
    state: Mutex<State>,
    /// Whether uploader threads may still send events: the reader closes
    /// it before it sends `Closed`, so `Closed` stays the last event.
    gate: Mutex<bool>,
    next_ref: AtomicU64,
    /// Largest chunk whose frame fits the server's `max_frame`.
    chunk_cap: u32,
}

/// Bytes of a `file_chunk` body besides its data, at most (docs/protocol.md 17.3).
const CHUNK_OVERHEAD: u32 = 61;

impl Transfers {
    /// The state of a client whose server accepts frames of `max_frame` bytes.
    pub(crate) fn new(max_frame: u32) -> Self {
        Self {
            state: Mutex::default(),
            gate: Mutex::new(true),
            next_ref: AtomicU64::new(FIRST_REF),
            chunk_cap: max_frame.saturating_sub(CHUNK_OVERHEAD).clamp(1, MAX_CHUNK),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends an event from a thread other than the reader, unless the
    /// connection has ended.
    fn emit(&self, tx: &SyncSender<Event>, event: TransferEvent) {
        let open = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        if *open {
            let _ = tx.send(Event::Transfer(event));
        }
    }

    /// Called by the reader once, before `Closed`: stops the uploads, closes
    /// the downloads (keeping their parts) and closes the event gate.
    pub(crate) fn close(&self) -> Vec<Event> {
        let released = self.release_held();
        let mut events = Vec::new();
        {
            let mut st = self.lock();
            st.closed = true;
            for upload in st.uploads.values() {
                upload.stop.store(true, Ordering::SeqCst);
            }
            let uploads: Vec<(u64, bool)> =
                st.uploads.drain().map(|(t, u)| (t, u.failed)).collect();
            for (transfer, failed) in uploads {
                if !failed {
                    events.push(TransferEvent::Failed {
                        transfer,
                        code: None,
                        reason: "the connection closed".into(),
                        part: None,
                    });
                }
            }
            st.pending.clear();
            let downloads: Vec<(u64, Download)> = st.downloads.drain().collect();
            for (transfer, d) in downloads {
                let _ = d.file.sync_data();
                st.parts.insert(transfer, d.part.clone());
                events.push(TransferEvent::Failed {
                    transfer,
                    code: None,
                    reason: "the connection closed".into(),
                    part: Some(d.part),
                });
            }
        }
        *self.gate.lock().unwrap_or_else(PoisonError::into_inner) = false;
        released
            .into_iter()
            .chain(events.into_iter().map(Event::Transfer))
            .collect()
    }

    /// Handles a server message in the reader thread. Returns the events to
    /// deliver, the message itself among them if it is to be passed on.
    pub(crate) fn on_message(
        self: &Arc<Self>,
        msg: ServerMessage,
        sender: &ClientSender,
        tx: &SyncSender<Event>,
    ) -> Vec<Event> {
        let mut out = Vec::new();
        let held = self.lock().held.take();
        if let Some(held) = held {
            let upload = match &msg {
                ServerMessage::FileCancelled(c) => {
                    let mut st = self.lock();
                    match st.uploads.get_mut(&c.transfer) {
                        Some(up) if !up.failed => {
                            up.failed = true;
                            up.stop.store(true, Ordering::SeqCst);
                            Some(c.transfer)
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            match upload {
                Some(transfer) => out.push(Event::Transfer(TransferEvent::Failed {
                    transfer,
                    code: Some(held.code),
                    reason: held.message,
                    part: None,
                })),
                None => self.on_error(held, false, &mut out),
            }
        }
        match msg {
            ServerMessage::FileOffer(offer) => {
                self.lock().offers.insert(offer.transfer, offer.clone());
                out.push(Event::Message(ServerMessage::FileOffer(offer)));
            }
            ServerMessage::FileUpload(up) => self.on_upload(up, sender, tx, &mut out),
            ServerMessage::FileProgress(p) => {
                if self.lock().uploads.contains_key(&p.transfer) {
                    out.push(Event::Transfer(TransferEvent::UploadProgress {
                        transfer: p.transfer,
                        done: p.done,
                        total: p.total,
                    }));
                } else {
                    out.push(Event::Message(ServerMessage::FileProgress(p)));
                }
            }
            ServerMessage::FileReady(id) => {
                let mut st = self.lock();
                if st.uploads.remove(&id.transfer).is_some() {
                    st.own.insert(id.transfer);
                    out.push(Event::Transfer(TransferEvent::UploadReady {
                        transfer: id.transfer,
                    }));
                } else {
                    out.push(Event::Message(ServerMessage::FileReady(id)));
                }
            }
            ServerMessage::FileData(data) => self.on_data(data, sender, &mut out),
            ServerMessage::FileDone(id) => self.on_done(id, &mut out),
            ServerMessage::FileCancelled(c) => self.on_cancelled(c, &mut out),
            ServerMessage::Error(e) => self.on_error(e, true, &mut out),
            other => out.push(Event::Message(other)),
        }
        self.pump(sender, &mut out);
        out
    }

    /// Sends the `file_accept` of the first waiting download once the one
    /// before it was answered (see [`State::awaiting`]).
    fn pump(&self, sender: &ClientSender, out: &mut Vec<Event>) {
        loop {
            let mut st = self.lock();
            let Some(&transfer) = st.awaiting.front() else {
                return;
            };
            let Some(d) = st.downloads.get_mut(&transfer) else {
                st.awaiting.pop_front();
                continue;
            };
            if d.requested {
                return;
            }
            if d.cancelling {
                // Cancelled before its turn: nothing was asked for.
                st.awaiting.pop_front();
                if let Some(d) = st.downloads.remove(&transfer) {
                    st.parts.insert(transfer, d.part.clone());
                    out.push(Event::Transfer(TransferEvent::Cancelled {
                        transfer,
                        part: Some(d.part),
                    }));
                }
                continue;
            }
            d.requested = true;
            let offset = d.start;
            drop(st);
            // A failed write: the reader reports the connection's end.
            let _ = sender.send(&ClientMessage::FileAccept(FileAccept { transfer, offset }));
            return;
        }
    }

    fn on_upload(
        self: &Arc<Self>,
        up: FileUpload,
        sender: &ClientSender,
        tx: &SyncSender<Event>,
        out: &mut Vec<Event>,
    ) {
        let mut st = self.lock();
        let Some(pending) = up.reference.and_then(|r| st.pending.remove(&r)) else {
            drop(st);
            out.push(Event::Message(ServerMessage::FileUpload(up)));
            return;
        };
        let reference = up.reference.unwrap_or_default();
        let stop = Arc::new(AtomicBool::new(false));
        st.uploads.insert(
            up.transfer,
            Upload {
                reference,
                stop: Arc::clone(&stop),
                failed: false,
            },
        );
        drop(st);
        out.push(Event::Transfer(TransferEvent::UploadStarted {
            reference,
            transfer: up.transfer,
            name: pending.name.clone(),
            size: pending.size,
        }));
        if pending.size == 0 {
            // Nothing to send: `file_ready` follows by itself.
            return;
        }
        let chunk = up.max_chunk.clamp(1, self.chunk_cap) as usize;
        let job = Uploader {
            transfers: Arc::clone(self),
            sender: sender.clone(),
            tx: tx.clone(),
            transfer: up.transfer,
            file: pending.file,
            size: pending.size,
            chunk,
            stop,
        };
        let spawned = std::thread::Builder::new()
            .name(format!("chatcore-upload-{}", up.transfer))
            .spawn(move || job.run());
        if let Err(e) = spawned {
            self.lock().uploads.remove(&up.transfer);
            let _ = sender.send(&ClientMessage::FileCancel(TransferId {
                transfer: up.transfer,
            }));
            out.push(Event::Transfer(TransferEvent::Failed {
                transfer: up.transfer,
                code: None,
                reason: format!("cannot start the upload thread: {e}"),
                part: None,
            }));
        }
    }

    fn on_data(&self, data: FileData, sender: &ClientSender, out: &mut Vec<Event>) {
        let mut st = self.lock();
        let transfer = data.transfer;
        st.awaiting.retain(|&t| t != transfer);
        let Some(d) = st.downloads.get_mut(&transfer) else {
            // Not a download of ours: drop it. If nobody asked it to stop,
            // do (it may be one taken for refused, see `State::awaiting`).
            if let std::collections::hash_map::Entry::Vacant(e) = st.acks.entry(transfer) {
                e.insert(false);
                drop(st);
                let _ = sender.send(&ClientMessage::FileCancel(TransferId { transfer }));
            }
            return;
        };
        let end = data.offset.checked_add(data.data.len() as u64);
        let problem = if data.offset != d.done {
            Some(format!(
                "the server sent bytes from {} where {} was expected",
                data.offset, d.done
            ))
        } else if end.is_none_or(|end| end > d.size) {
            Some(format!(
                "the server sent more than the {} bytes offered",
                d.size
            ))
        } else {
            match d.file.write_all(&data.data) {
                Ok(()) => None,
                Err(e) => Some(format!("writing {}: {e}", d.part.display())),
            }
        };
        if let Some(reason) = problem {
            let local = reason.starts_with("writing");
            if let Some(d) = st.downloads.remove(&transfer) {
                st.acks.insert(transfer, false);
                // A disk error leaves good bytes behind; bad data does not.
                let part = if local {
                    st.parts.insert(transfer, d.part.clone());
                    Some(d.part)
                } else {
                    drop(d.file);
                    let _ = fs::remove_file(&d.part);
                    None
                };
                drop(st);
                let _ = sender.send(&ClientMessage::FileCancel(TransferId { transfer }));
                out.push(Event::Transfer(TransferEvent::Failed {
                    transfer,
                    code: None,
                    reason,
                    part,
                }));
            }
            return;
        }
        d.hasher.update(&data.data);
        d.done += data.data.len() as u64;
        if d.done - d.reported >= PROGRESS_STEP || d.done == d.size {
            d.reported = d.done;
            out.push(Event::Transfer(TransferEvent::DownloadProgress {
                transfer,
                done: d.done,
                total: d.size,
            }));
        }
    }

    fn on_done(&self, id: TransferId, out: &mut Vec<Event>) {
        let mut st = self.lock();
        let transfer = id.transfer;
        st.awaiting.retain(|&t| t != transfer);
        let Some(mut d) = st.downloads.remove(&transfer) else {
            drop(st);
            out.push(Event::Message(ServerMessage::FileDone(id)));
            return;
        };
        if d.cancelling {
            // The cancel came too late: every byte is here, so finish. The
            // server answers the cancel with `unknown_transfer`: swallow it.
            st.acks.remove(&transfer);
            if !d.cancel_answered {
                st.late_cancels.push_back(transfer);
            }
        }
        drop(st);
        if d.done == d.size && d.reported != d.done {
            out.push(Event::Transfer(TransferEvent::DownloadProgress {
                transfer,
                done: d.done,
                total: d.size,
            }));
        }
        out.push(Event::Transfer(self.finish(transfer, &mut d)));
    }

    /// Checks a download whose last byte arrived and moves it into place.
    fn finish(&self, transfer: u64, d: &mut Download) -> TransferEvent {
        let fail = |reason: String, part: Option<PathBuf>| TransferEvent::Failed {
            transfer,
            code: None,
            reason,
            part,
        };
        if d.done != d.size {
            // Keep what came: it may be resumed.
            self.lock().parts.insert(transfer, d.part.clone());
            return fail(
                format!(
                    "the server ended the download at {} of {} bytes",
                    d.done, d.size
                ),
                Some(d.part.clone()),
            );
        }
        let digest = std::mem::take(&mut d.hasher).finalize();
        if digest.as_slice() != d.sha256.as_slice() {
            let _ = fs::remove_file(&d.part);
            return fail(
                format!(
                    "SHA-256 mismatch: got {}, offered {}",
                    hex(&digest),
                    hex(&d.sha256)
                ),
                None,
            );
        }
        if let Err(e) = d.file.flush().and_then(|()| d.file.sync_all()) {
            self.lock().parts.insert(transfer, d.part.clone());
            return fail(
                format!("writing {}: {e}", d.part.display()),
                Some(d.part.clone()),
            );
        }
        // Reserve the final name (never overwriting), then move onto it.
        let moved = create_unique(&d.dir, &d.name).and_then(|(_, path)| {
            fs::rename(&d.part, &path)
                .map(|()| path.clone())
                .inspect_err(|_| {
                    let _ = fs::remove_file(&path);
                })
        });
        match moved {
            Ok(path) => {
                self.lock().parts.remove(&transfer);
                TransferEvent::Saved { transfer, path }
            }
            Err(e) => {
                self.lock().parts.insert(transfer, d.part.clone());
                fail(
                    format!("moving {} into place: {e}", d.part.display()),
                    Some(d.part.clone()),
                )
            }
        }
    }

    fn on_cancelled(&self, c: FileCancelled, out: &mut Vec<Event>) {
        let mut st = self.lock();
        let transfer = c.transfer;
        let reason = c.reason.as_str();
        if let Some(d) = st.downloads.get(&transfer) {
            if reason == "expired" {
                // The offer is gone for newcomers, but a download under way
                // goes on (the server keeps reading the file for it).
                st.offers.remove(&transfer);
                drop(st);
                out.push(Event::Message(ServerMessage::FileCancelled(c)));
                return;
            }
            let cancelled_by_us = d.cancelling && reason == "cancelled";
            st.acks.remove(&transfer);
            st.awaiting.retain(|&t| t != transfer);
            let Some(d) = st.downloads.remove(&transfer) else {
                return;
            };
            if cancelled_by_us {
                let _ = d.file.sync_data();
                st.parts.insert(transfer, d.part.clone());
                drop(st);
                out.push(Event::Transfer(TransferEvent::Cancelled {
                    transfer,
                    part: Some(d.part),
                }));
                return;
            }
            if reason == "cancelled" {
                // The sender withdrew the offer: nothing left to resume.
                st.offers.remove(&transfer);
                st.parts.remove(&transfer);
                drop(d.file);
                let _ = fs::remove_file(&d.part);
                drop(st);
                out.push(Event::Transfer(TransferEvent::Failed {
                    transfer,
                    code: None,
                    reason: "the sender withdrew the file".into(),
                    part: None,
                }));
                out.push(Event::Message(ServerMessage::FileCancelled(c)));
                return;
            }
            // The server could not go on (`error`): what came is kept.
            let _ = d.file.sync_data();
            st.parts.insert(transfer, d.part.clone());
            drop(st);
            out.push(Event::Transfer(TransferEvent::Failed {
                transfer,
                code: None,
                reason: format!("the server stopped the download ({reason})"),
                part: Some(d.part),
            }));
            return;
        }
        let ours = st.acks.remove(&transfer);
        if let Some(up) = st.uploads.remove(&transfer) {
            up.stop.store(true, Ordering::SeqCst);
            drop(st);
            if !up.failed {
                out.push(Event::Transfer(if c.reason == "cancelled" {
                    TransferEvent::Cancelled {
                        transfer,
                        part: None,
                    }
                } else {
                    TransferEvent::Failed {
                        transfer,
                        code: None,
                        reason: format!("the server ended the upload ({})", c.reason),
                        part: None,
                    }
                }));
            }
            return;
        }
        if let Some(report) = ours
            && c.reason == "cancelled"
        {
            // The answer to a cancel of ours: a withdrawn offer or upload,
            // or a download that ended meanwhile.
            st.own.remove(&transfer);
            drop(st);
            if report {
                out.push(Event::Transfer(TransferEvent::Cancelled {
                    transfer,
                    part: None,
                }));
            }
            return;
        }
        st.offers.remove(&transfer);
        st.own.remove(&transfer);
        st.parts.remove(&transfer);
        drop(st);
        out.push(Event::Message(ServerMessage::FileCancelled(c)));
    }

    /// An error still held is not about an upload after all.
    fn release_held(&self) -> Vec<Event> {
        let mut out = Vec::new();
        let held = self.lock().held.take();
        if let Some(held) = held {
            self.on_error(held, false, &mut out);
        }
        out
    }

    /// `may_hold`: whether a `ref`-less error may be held back (see
    /// [`State::held`]).
    fn on_error(&self, e: ErrorMsg, may_hold: bool, out: &mut Vec<Event>) {
        let mut st = self.lock();
        let about_upload = matches!(
            e.code,
            ErrorCode::HashMismatch
                | ErrorCode::SizeMismatch
                | ErrorCode::BadOffset
                | ErrorCode::StorageError
        );
        if may_hold
            && e.reference.is_none()
            && about_upload
            && st.uploads.values().any(|u| !u.failed)
        {
            st.held = Some(e);
            return;
        }
        if let Some(reference) = e.reference {
            if let Some(pending) = st.pending.remove(&reference) {
                drop(st);
                out.push(Event::Transfer(TransferEvent::OfferRefused {
                    reference,
                    name: pending.name,
                    code: e.code,
                    message: e.message,
                }));
                return;
            }
            let upload = st
                .uploads
                .iter_mut()
                .find(|(_, u)| u.reference == reference && !u.failed);
            if let Some((&transfer, up)) = upload {
                up.failed = true;
                up.stop.store(true, Ordering::SeqCst);
                drop(st);
                out.push(Event::Transfer(TransferEvent::Failed {
                    transfer,
                    code: Some(e.code),
                    reason: e.message,
                    part: None,
                }));
                return;
            }
        }
        // The answer to a cancel of a download that had been queued to its
        // end, whose `file_done` came already?
        if e.reference.is_none()
            && e.code == ErrorCode::UnknownTransfer
            && st.late_cancels.pop_front().is_some()
        {
            return;
        }
        let about_accept = matches!(
            e.code,
            ErrorCode::UnknownTransfer
                | ErrorCode::BadOffset
                | ErrorCode::TooManyTransfers
                | ErrorCode::StorageError
                | ErrorCode::RateLimited
        );
        let head = st.awaiting.front().copied();
        if e.reference.is_none()
            && about_accept
            && let Some(transfer) = head
            && st.downloads.get(&transfer).is_some_and(|d| d.requested)
            && let Some(d) = st.downloads.remove(&transfer)
        {
            st.awaiting.pop_front();
            st.acks.remove(&transfer);
            // A fresh, empty part is useless; a resumed one is kept.
            let part = if d.done == 0 {
                drop(d.file);
                let _ = fs::remove_file(&d.part);
                st.parts.remove(&transfer);
                None
            } else {
                st.parts.insert(transfer, d.part.clone());
                Some(d.part)
            };
            if e.code == ErrorCode::UnknownTransfer {
                st.offers.remove(&transfer);
            }
            drop(st);
            out.push(Event::Transfer(TransferEvent::Failed {
                transfer,
                code: Some(e.code),
                reason: e.message,
                part,
            }));
            return;
        }
        // Or of one whose `file_done` is still to come?
        if e.reference.is_none() && e.code == ErrorCode::UnknownTransfer {
            let late = st
                .downloads
                .values_mut()
                .find(|d| d.cancelling && d.requested && !d.cancel_answered);
            if let Some(d) = late {
                d.cancel_answered = true;
                return;
            }
        }
        drop(st);
        out.push(Event::Message(ServerMessage::Error(e)));
    }
}

/// One upload's thread: reads the file and sends it chunk by chunk.
struct Uploader {
    transfers: Arc<Transfers>,
    sender: ClientSender,
    tx: SyncSender<Event>,
    transfer: u64,
    file: File,
    size: u64,
    chunk: usize,
    stop: Arc<AtomicBool>,
}

impl Uploader {
    fn run(mut self) {
        let mut buf = vec![0u8; self.chunk];
        let mut offset = 0u64;
        while offset < self.size {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let want = (self.size - offset).min(self.chunk as u64) as usize;
            buf.resize(want, 0);
            if let Err(e) = self.file.read_exact(&mut buf) {
                let reason = if e.kind() == io::ErrorKind::UnexpectedEof {
                    "the file became shorter while it was being sent".to_owned()
                } else {
                    format!("reading the file: {e}")
                };
                return self.fail(reason);
            }
            let msg = ClientMessage::FileChunk(FileChunk {
                transfer: self.transfer,
                offset,
                data: std::mem::take(&mut buf),
            });
            if self.sender.send(&msg).is_err() {
                // The connection is gone; the reader reports it.
                return;
            }
            if let ClientMessage::FileChunk(chunk) = msg {
                buf = chunk.data;
            }
            offset += want as u64;
            // Let a chat message waiting for the writer go first.
            std::thread::yield_now();
        }
    }

    fn fail(self, reason: String) {
        let transfer = self.transfer;
        {
            let mut st = self.transfers.lock();
            if st.uploads.remove(&transfer).is_none() {
                return;
            }
            st.acks.insert(transfer, false);
        }
        let _ = self
            .sender
            .send(&ClientMessage::FileCancel(TransferId { transfer }));
        self.transfers.emit(
            &self.tx,
            TransferEvent::Failed {
                transfer,
                code: None,
                reason,
                part: None,
            },
        );
    }
}

impl ClientSender {
    /// Offers the file at `path` to the room; returns the offer's `ref`.
    ///
    /// The file is hashed here (a streaming read: this takes as long as
    /// reading it), then `file_offer` goes out under its base name passed
    /// through [`sanitize_file_name`]. What follows comes as events:
    /// [`TransferEvent::UploadStarted`] with this `ref` and the transfer
    /// id, then `UploadProgress`, `UploadReady`; or `OfferRefused` /
    /// `Failed`. The upload runs on its own thread.
    pub fn send_file(&self, path: &Path, kind: FileKind) -> Result<u64, ClientError> {
        let mut file = File::open(path).map_err(|e| file_error(path, e))?;
        let meta = file.metadata().map_err(|e| file_error(path, e))?;
        if !meta.is_file() {
            return Err(file_error(
                path,
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        let mut hasher = Sha256::new();
        let size = hash_reader(&mut file, &mut hasher).map_err(|e| file_error(path, e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| file_error(path, e))?;
        let raw_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = sanitize_file_name(&raw_name);
        let reference = self.transfers.next_ref.fetch_add(1, Ordering::Relaxed);
        {
            let mut st = self.transfers.lock();
            if st.closed {
                return Err(ClientError::Closed);
            }
            st.pending.insert(
                reference,
                PendingUpload {
                    file,
                    name: name.clone(),
                    size,
                },
            );
        }
        let offer = ClientMessage::FileOffer(FileOffer {
            name,
            size,
            sha256: hasher.finalize().to_vec(),
            kind,
            reference: Some(reference),
        });
        if let Err(e) = self.send(&offer) {
            self.transfers.lock().pending.remove(&reference);
            return Err(e);
        }
        Ok(reference)
    }

    /// Downloads offered file `transfer` into directory `dir` (created if
    /// missing). Returns the `.part` file being written; on success it is
    /// renamed to the sanitised offer name ([`TransferEvent::Saved`]).
    ///
    /// If an earlier download of the same transfer by this client was
    /// cancelled or interrupted, this resumes from its `.part` file instead.
    pub fn accept_file(&self, transfer: u64, dir: &Path) -> Result<PathBuf, ClientError> {
        let kept = {
            let st = self.transfers.lock();
            check_acceptable(&st, transfer)?;
            st.parts.get(&transfer).cloned()
        };
        if let Some(part) = kept.filter(|p| p.is_file()) {
            self.resume_file(transfer, &part)?;
            return Ok(part);
        }
        fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
        let offer = self.known_offer(transfer)?;
        let name = sanitize_file_name(&offer.name);
        let part_name = format!(
            "{}{PART_SUFFIX}",
            sanitize_to(&offer.name, MAX_FILE_NAME - PART_SUFFIX.len())
        );
        let (file, part) = create_unique(dir, &part_name).map_err(|e| file_error(dir, e))?;
        let download = Download {
            file,
            part: part.clone(),
            dir: dir.to_owned(),
            name,
            size: offer.size,
            sha256: offer.sha256,
            hasher: Sha256::new(),
            done: 0,
            reported: 0,
            start: 0,
            requested: false,
            cancelling: false,
            cancel_answered: false,
        };
        if let Err(e) = self.start_download(transfer, download, 0) {
            let _ = fs::remove_file(&part);
            return Err(e);
        }
        Ok(part)
    }

    /// Resumes downloading offered file `transfer` into the partial file
    /// `part`, which holds its first bytes (from an earlier download, maybe
    /// by an earlier connection). The bytes already there are hashed, then
    /// `file_accept` asks for the rest. The file is saved next to `part`
    /// under the sanitised offer name.
    pub fn resume_file(&self, transfer: u64, part: &Path) -> Result<(), ClientError> {
        {
            let st = self.transfers.lock();
            check_acceptable(&st, transfer)?;
        }
        let offer = self.known_offer(transfer)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(part)
            .map_err(|e| file_error(part, e))?;
        let mut hasher = Sha256::new();
        let have = hash_reader(&mut file, &mut hasher).map_err(|e| file_error(part, e))?;
        if have > offer.size {
            return Err(ClientError::Transfer(format!(
                "{} holds {have} bytes, more than the {} offered",
                part.display(),
                offer.size
            )));
        }
        file.seek(SeekFrom::Start(have))
            .map_err(|e| file_error(part, e))?;
        let dir = match part.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let download = Download {
            file,
            part: part.to_owned(),
            dir,
            name: sanitize_file_name(&offer.name),
            size: offer.size,
            sha256: offer.sha256,
            hasher,
            done: have,
            reported: have,
            start: have,
            requested: false,
            cancelling: false,
            cancel_answered: false,
        };
        self.start_download(transfer, download, have)
    }

    /// Registers `download` and sends `file_accept` from `offset`.
    fn start_download(
        &self,
        transfer: u64,
        download: Download,
        offset: u64,
    ) -> Result<(), ClientError> {
        let mut download = download;
        {
            let mut st = self.transfers.lock();
            check_acceptable(&st, transfer)?;
            st.parts.remove(&transfer);
            st.awaiting.push_back(transfer);
            // Only one `file_accept` in flight (see `State::awaiting`): the
            // reader sends this one when those before it are answered.
            download.requested = st.awaiting.len() == 1;
            let now = download.requested;
            st.downloads.insert(transfer, download);
            if !now {
                return Ok(());
            }
        }
        let accept = ClientMessage::FileAccept(FileAccept { transfer, offset });
        if let Err(e) = self.send(&accept) {
            let mut st = self.transfers.lock();
            st.awaiting.retain(|&t| t != transfer);
            if let Some(d) = st.downloads.remove(&transfer) {
                st.parts.insert(transfer, d.part);
            }
            return Err(e);
        }
        Ok(())
    }

    /// The offer `transfer` as the server described it.
    fn known_offer(&self, transfer: u64) -> Result<FileOffered, ClientError> {
        let offer = self
            .transfers
            .lock()
            .offers
            .get(&transfer)
            .cloned()
            .ok_or(ClientError::UnknownTransfer(transfer))?;
        if offer.sha256.len() != 32 {
            return Err(ClientError::Transfer(format!(
                "offer {transfer} carries a {}-byte hash, not a SHA-256",
                offer.sha256.len()
            )));
        }
        Ok(offer)
    }

    /// Says we do not want offered file `transfer` (`file_decline`) and
    /// forgets the offer.
    pub fn decline_file(&self, transfer: u64) -> Result<(), ClientError> {
        {
            let mut st = self.transfers.lock();
            if st.downloads.contains_key(&transfer) {
                return Err(ClientError::Transfer(format!(
                    "transfer {transfer} is being downloaded; cancel it instead"
                )));
            }
            if st.offers.remove(&transfer).is_none() {
                return Err(ClientError::UnknownTransfer(transfer));
            }
        }
        self.send(&ClientMessage::FileDecline(TransferId { transfer }))
    }

    /// Cancels transfer `transfer`: our upload (stopped at once), our own
    /// offer (withdrawn), or our download. A download goes on receiving
    /// what the server already sent until its `file_cancelled` arrives,
    /// then [`TransferEvent::Cancelled`] names the `.part` file kept (or,
    /// if every byte had already been sent, it completes normally).
    pub fn cancel_file(&self, transfer: u64) -> Result<(), ClientError> {
        {
            let mut st = self.transfers.lock();
            if let Some(d) = st.downloads.get_mut(&transfer) {
                if d.cancelling {
                    return Ok(());
                }
                d.cancelling = true;
                if !d.requested {
                    // Its `file_accept` has not gone out: it never will, and
                    // the reader reports `Cancelled` when its turn comes.
                    return Ok(());
                }
            } else if let Some(up) = st.uploads.remove(&transfer) {
                up.stop.store(true, Ordering::SeqCst);
            } else if !st.own.contains(&transfer) {
                return Err(ClientError::UnknownTransfer(transfer));
            }
            st.acks.insert(transfer, true);
        }
        self.send(&ClientMessage::FileCancel(TransferId { transfer }))
    }

    /// The offers this client has seen and that have not ended, oldest
    /// transfer first (declined ones excluded).
    pub fn offers(&self) -> Vec<FileOffered> {
        self.transfers.lock().offers.values().cloned().collect()
    }

    /// The offer `transfer`, if this client saw it and it has not ended.
    pub fn offer(&self, transfer: u64) -> Option<FileOffered> {
        self.transfers.lock().offers.get(&transfer).cloned()
    }

    /// The partial file kept from a cancelled or interrupted download of
    /// `transfer`, if any.
    pub fn partial_file(&self, transfer: u64) -> Option<PathBuf> {
        self.transfers.lock().parts.get(&transfer).cloned()
    }
}

/// Whether a download of `transfer` may start now.
fn check_acceptable(st: &State, transfer: u64) -> Result<(), ClientError> {
    if st.closed {
        return Err(ClientError::Closed);
    }
    if let Some(d) = st.downloads.get(&transfer) {
        return Err(ClientError::Transfer(if d.cancelling {
            format!("transfer {transfer} is still being cancelled; wait for its Cancelled event")
        } else {
            format!("transfer {transfer} is already being downloaded")
        }));
    }
    if !st.offers.contains_key(&transfer) {
        return Err(ClientError::UnknownTransfer(transfer));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_tricks_become_plain_names() {
        assert_eq!(sanitize_file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitize_file_name("..\\..\\boot.ini"), "_.._boot.ini");
        assert_eq!(sanitize_file_name("/etc/passwd"), "_etc_passwd");
        assert_eq!(sanitize_file_name("."), "file");
        assert_eq!(sanitize_file_name(".."), "file");
        assert_eq!(sanitize_file_name("..."), "file");
        assert_eq!(sanitize_file_name(".bashrc"), "bashrc");
        assert_eq!(sanitize_file_name("C:evil"), "C_evil");
        assert_eq!(sanitize_file_name("report. . "), "report");
        assert_eq!(sanitize_file_name("  spaced name.txt  "), "spaced name.txt");
        for hostile in ["../../etc/passwd", "a/../../b", "..", "/", "\\\\srv\\share"] {
            let s = sanitize_file_name(hostile);
            assert!(!s.contains(['/', '\\']), "{hostile:?} -> {s:?}");
            assert!(s != "." && s != ".." && !s.starts_with('.'), "{s:?}");
            assert_eq!(Path::new(&s).components().count(), 1, "{s:?}");
        }
    }

    #[test]
    fn empty_and_blank_names_become_file() {
        assert_eq!(sanitize_file_name(""), "file");
        assert_eq!(sanitize_file_name("   "), "file");
        assert_eq!(sanitize_file_name(". ."), "file");
    }

    #[test]
    fn control_and_invisible_characters_are_replaced() {
        assert_eq!(sanitize_file_name("a\nb\tc\u{7}.txt"), "a_b_c_.txt");
        assert_eq!(sanitize_file_name("\u{1b}[31mred"), "_[31mred");
        assert_eq!(sanitize_file_name("x\u{7f}y"), "x_y");
        // "exe.txt" that displays as "txt.exe" with a right-to-left override.
        assert_eq!(sanitize_file_name("a\u{202e}txt.exe"), "a_txt.exe");
        assert_eq!(sanitize_file_name("what?*<>|\"."), "what______");
        for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            let s = sanitize_file_name(&format!("x{c}y"));
            assert!(!s.chars().any(char::is_control), "{c:?} -> {s:?}");
        }
    }

    #[test]
    fn windows_device_names_get_a_suffix() {
        assert_eq!(sanitize_file_name("con"), "con_");
        assert_eq!(sanitize_file_name("CON"), "CON_");
        assert_eq!(sanitize_file_name("nul.txt"), "nul_.txt");
        assert_eq!(sanitize_file_name("com1"), "com1_");
        assert_eq!(sanitize_file_name("LPT9.log"), "LPT9_.log");
        assert_eq!(sanitize_file_name("aux.tar.gz"), "aux_.tar.gz");
        assert_eq!(sanitize_file_name("com\u{b9}"), "com\u{b9}_");
        assert_eq!(sanitize_file_name("com0"), "com0");
        assert_eq!(sanitize_file_name("console"), "console");
        assert_eq!(sanitize_file_name("com10"), "com10");
        assert_eq!(sanitize_file_name("prn "), "prn_");
    }

    #[test]
    fn long_names_are_cut_at_a_char_boundary_keeping_the_extension() {
        let long = "a".repeat(4096) + ".pdf";
        let s = sanitize_file_name(&long);
        assert_eq!(s.len(), MAX_FILE_NAME);
        assert!(s.ends_with(".pdf"), "{s}");
        // Multi-byte characters are never split.
        let long = "é".repeat(2048) + ".txt";
        let s = sanitize_file_name(&long);
        assert!(s.len() <= MAX_FILE_NAME && s.len() >= MAX_FILE_NAME - 1);
        assert!(s.ends_with(".txt"));
        assert!(s.trim_end_matches(".txt").chars().all(|c| c == 'é'));
        // No usable extension: the whole name is cut.
        let s = sanitize_file_name(&"€".repeat(1400));
        assert!(s.len() <= MAX_FILE_NAME && s.chars().all(|c| c == '€'));
        let s = sanitize_file_name(&format!("x.{}", "y".repeat(4000)));
        assert!(s.len() <= MAX_FILE_NAME && s.starts_with("x.yyy"));
        // 255 bytes exactly is left alone.
        let exact = "b".repeat(MAX_FILE_NAME);
        assert_eq!(sanitize_file_name(&exact), exact);
        // The `.part` name leaves room for its suffix.
        let part = sanitize_to(&long, MAX_FILE_NAME - PART_SUFFIX.len()) + PART_SUFFIX;
        assert!(part.len() <= MAX_FILE_NAME);
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "chatcore-unit-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn unique_paths_never_reuse_a_name() {
        let dir = temp_dir("unique");
        assert_eq!(unique_path(&dir, "x.txt"), dir.join("x.txt"));
        fs::write(dir.join("x.txt"), b"1").expect("write");
        assert_eq!(unique_path(&dir, "x.txt"), dir.join("x (1).txt"));
        fs::write(dir.join("x (1).txt"), b"2").expect("write");
        assert_eq!(unique_path(&dir, "x.txt"), dir.join("x (2).txt"));
        fs::write(dir.join("noext"), b"3").expect("write");
        assert_eq!(unique_path(&dir, "noext"), dir.join("noext (1)"));
        // A name at the length limit still gets its number within it.
        let long = "z".repeat(MAX_FILE_NAME - 4) + ".bin";
        fs::write(dir.join(&long), b"4").expect("write");
        let next = unique_path(&dir, &long);
        let next_name = next.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(next_name.len() <= MAX_FILE_NAME, "{}", next_name.len());
        assert!(next_name.ends_with(" (1).bin"), "{next_name}");
        // create_unique never opens an existing file.
        let (_, p) = create_unique(&dir, "x.txt").expect("create");
        assert_eq!(p, dir.join("x (2).txt"));
        assert_eq!(fs::read(dir.join("x.txt")).expect("read"), b"1");
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
