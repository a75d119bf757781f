//! File transfer, the client's half: offer a file, upload it in chunks,
//! accept or decline offers, download into a directory, resume, cancel.
//!
//! # Modules
//! | file | holds |
//! |---|---|
//! | `state.rs` | the state machine, without I/O: server messages and the sender's calls go in, [`Action`](state::Action)s come out (send this, report that, write these bytes, start that upload) |
//! | `driver.rs` | [`Transfers`]: the machine behind a lock, plus the open files and upload threads; carries out the actions |
//! | `download.rs` | one download's `.part` file: write, hash, verify, move into place |
//! | `upload.rs` | one upload's thread: read the file, send `file_chunk`s |
//! | `files.rs` | [`sanitize_file_name`], [`unique_path`], hashing a file |
//! | `sender.rs` | the public calls on [`ClientSender`]: `send_file`, `accept_file`... |
//!
//! This is the shape of rustls's `read_tls` / `process_new_packets` /
//! `write_tls`: the machine decides, the driver does. The machine can so be
//! tested by feeding it messages and reading its actions, without a socket
//! or a file.
//!
//! # Threads
//! - The calls ([`ClientSender::send_file`], [`ClientSender::accept_file`]...)
//!   run on the caller's thread. They open and hash files, record the
//!   transfer and send one request; they never wait for the server and
//!   never put anything on the event channel (so a caller that is also the
//!   one draining the channel cannot deadlock itself).
//! - The reader thread hands the server's file messages (and the `error`s
//!   about transfers, see [`concerns`]) to the machine; chat and every other
//!   message bypass this module. It starts an uploader thread on
//!   `file_upload`, and writes each `file_data` frame straight into the
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
//! cancel, and `error` frames about our offers, uploads and downloads) and
//! are not passed on as [`Event::Message`]. `file_offer` and every other
//! `file_cancelled` (an offer withdrawn or expired) are passed on, as is
//! anything about a transfer this client does not know, except `file_data`,
//! which is never passed on.
//!
//! # Which transfer an error is about
//! An `error` about a file offer carries the offer's `ref`; one about a
//! `file_accept`, `file_chunk`, `file_cancel` or `file_decline`, or ending an
//! upload, carries the `transfer` (docs/protocol.md 7.8). Only
//! `rate_limited` carries neither: so this client keeps one `file_accept` in
//! flight at a time (the next goes out when the first is answered by data,
//! `file_done` or an error), and a `rate_limited` without `ref` while one is
//! in flight is taken as its answer. An `unknown_transfer` about a download
//! we cancelled whose every byte had already been sent answers that cancel
//! and is not reported. `file_data` of a download this client does not run
//! (not asked for, or taken for refused) is dropped and the download
//! cancelled.
//!
//! # Files on disk
//! A download is written to `NAME.part` in the chosen directory and renamed
//! to `NAME` (or `NAME (1)`...; an existing file is never overwritten) once
//! its size and SHA-256 match the offer. The name is always passed through
//! [`sanitize_file_name`] first, whatever the server said. A cancelled or
//! interrupted download keeps its `.part` file so it can be resumed; a
//! download whose content turned out wrong deletes it.

mod download;
mod driver;
mod files;
mod sender;
mod state;
mod upload;

use std::io;
use std::path::PathBuf;

use thiserror::Error;

#[cfg(doc)]
use super::{ClientSender, Event};
use crate::protocol::{ErrorCode, ServerMessage};

pub(crate) use driver::Transfers;
pub use files::{sanitize_file_name, unique_path};
pub use sender::OfferTo;

/// A download reports its progress each time this many more bytes arrived
/// (and once at the end).
pub const PROGRESS_STEP: u64 = 1024 * 1024;
/// Longest file name written, in bytes (the limit of common file systems).
pub const MAX_FILE_NAME: usize = crate::protocol::file_name::MAX_FILE_NAME;
/// Appended to a download's name while it is incomplete.
pub const PART_SUFFIX: &str = ".part";

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

/// Why a transfer call ([`ClientSender::accept_file`],
/// [`ClientSender::resume_file`], [`ClientSender::decline_file`]) cannot do
/// what it was asked now. Carried by `ClientError::Transfer`.
#[derive(Debug, Error)]
pub enum TransferError {
    /// A download of this transfer is already running on this connection
    /// (the server would refuse a second one).
    #[error("transfer {0} is already being downloaded")]
    AlreadyDownloading(u64),
    /// This transfer's download was cancelled and the server has not yet
    /// confirmed it: accepting again now would race with that answer.
    #[error("transfer {0} is still being cancelled; wait for its Cancelled event")]
    StillCancelling(u64),
    /// Declining a transfer being downloaded would change nothing on the
    /// server: cancelling it stops it.
    #[error("transfer {0} is being downloaded; cancel it instead")]
    Downloading(u64),
    /// The partial file to resume from holds more than the whole offer, so
    /// it cannot be the start of this file.
    #[error("{} holds {have} bytes, more than the {size} offered", part.display())]
    PartTooLong {
        /// The partial file.
        part: PathBuf,
        /// Bytes in it.
        have: u64,
        /// The size offered.
        size: u64,
    },
    /// The offer's hash is not 32 bytes, so no download could be verified.
    #[error("offer {transfer} carries a {len}-byte hash, not a SHA-256")]
    NotSha256 {
        /// The offer.
        transfer: u64,
        /// Bytes in its `sha256`.
        len: usize,
    },
}

/// Why a transfer failed on this side; its text becomes the `reason` of
/// [`TransferEvent::Failed`]. A type rather than strings so that the code
/// deciding what to keep matches on the cause, not on wording.
#[derive(Debug, Error)]
pub(crate) enum Failure {
    /// The connection ended before the transfer did.
    #[error("the connection closed")]
    ConnectionClosed,
    /// `file_data` that does not continue the download.
    #[error("the server sent bytes from {got} where {want} was expected")]
    Offset {
        /// The frame's `offset`.
        got: u64,
        /// The bytes held.
        want: u64,
    },
    /// `file_data` past the offered size.
    #[error("the server sent more than the {size} bytes offered")]
    PastEnd {
        /// The size offered.
        size: u64,
    },
    /// The `.part` file could not be written or synced.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The `.part` file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// `file_done` before the offered size arrived.
    #[error("the server ended the download at {done} of {size} bytes")]
    Short {
        /// Bytes held.
        done: u64,
        /// The size offered.
        size: u64,
    },
    /// The content does not match the offer's SHA-256.
    #[error("SHA-256 mismatch: got {got}, offered {offered}")]
    HashMismatch {
        /// Hex of the content's hash.
        got: String,
        /// Hex of the offered hash.
        offered: String,
    },
    /// The verified file could not be given its final name.
    #[error("moving {} into place: {source}", path.display())]
    Move {
        /// The `.part` file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The owner withdrew the offer during our download.
    #[error("the sender withdrew the file")]
    Withdrawn,
    /// `file_cancelled` with this reason ended our download.
    #[error("the server stopped the download ({0})")]
    DownloadStopped(String),
    /// `file_cancelled` with this reason ended our upload.
    #[error("the server ended the upload ({0})")]
    UploadEnded(String),
    /// The file being uploaded lost bytes since it was hashed.
    #[error("the file became shorter while it was being sent")]
    Shrunk,
    /// The file being uploaded could not be read.
    #[error("reading the file: {0}")]
    Read(io::Error),
    /// The driver has no open file for a download the machine finished
    /// (a bug, reported rather than panicking).
    #[error("the download's file is not open")]
    NotOpen,
    /// No thread for the upload.
    #[error("cannot start the upload thread: {0}")]
    NoThread(io::Error),
}

/// Whether the reader hands `msg` to the transfer machine: the file
/// messages, and the `error`s that can be about a transfer (with a
/// `transfer`, with the `ref` of a file offer, or `rate_limited` without a
/// `ref`, which may answer a `file_accept`). Everything else, chat included,
/// goes straight to the application.
pub(crate) fn concerns(msg: &ServerMessage) -> bool {
    match msg {
        ServerMessage::FileOffer(_)
        | ServerMessage::FileUpload(_)
        | ServerMessage::FileProgress(_)
        | ServerMessage::FileReady(_)
        | ServerMessage::FileData(_)
        | ServerMessage::FileDone(_)
        | ServerMessage::FileCancelled(_) => true,
        ServerMessage::Error(e) => {
            e.transfer.is_some()
                || e.reference.is_some_and(state::is_offer_ref)
                || (e.reference.is_none() && e.code == ErrorCode::RateLimited)
        }
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Chat, ErrorMsg};

    #[test]
    fn sizes_use_decimal_units_with_one_decimal() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1000), "1.0 kB");
        assert_eq!(human_size(1_234_567), "1.2 MB");
        assert_eq!(human_size(64 * 1024 * 1024), "67.1 MB");
        assert_eq!(human_size(5 * 1_000_000_000), "5.0 GB");
        // Rounding up to the next unit shows the next unit.
        assert_eq!(human_size(999_960), "1.0 MB");
        assert_eq!(human_size(u64::MAX), "18.4 EB");
    }

    fn error(code: ErrorCode, reference: Option<u64>, transfer: Option<u64>) -> ServerMessage {
        ServerMessage::Error(ErrorMsg {
            room: None,
            code,
            message: "no".into(),
            reference,
            transfer,
        })
    }

    #[test]
    fn chat_and_chat_errors_bypass_the_transfer_machine() {
        let chat = ServerMessage::Chat(Chat {
            room: None,
            id: 1,
            from: "a".into(),
            session: 1,
            text: "hi".into(),
            ts: 0,
            reference: None,
        });
        assert!(!concerns(&chat));
        assert!(!concerns(&error(ErrorCode::TextEmpty, Some(3), None)));
        assert!(!concerns(&error(ErrorCode::RateLimited, Some(3), None)));
        assert!(!concerns(&error(ErrorCode::NotLoggedIn, None, None)));
    }

    #[test]
    fn file_messages_and_errors_about_transfers_go_to_the_machine() {
        let offer_ref = state::Machine::new(1 << 20).next_ref();
        assert!(concerns(&error(
            ErrorCode::FileTooLarge,
            Some(offer_ref),
            None
        )));
        assert!(concerns(&error(ErrorCode::UnknownTransfer, None, Some(4))));
        assert!(concerns(&error(ErrorCode::RateLimited, None, None)));
        assert!(concerns(&ServerMessage::FileDone(
            crate::protocol::transfer::TransferId { transfer: 1 }
        )));
    }
}
