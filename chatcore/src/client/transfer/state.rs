//! The client's transfer state machine. No I/O, no threads, no clock.
//!
//! Server messages go in through [`Machine::on_message`], the sender's calls
//! through [`Machine::offer`], [`Machine::start_download`],
//! [`Machine::cancel`]...; what is to be done comes out as [`Action`]s,
//! which the driver (`driver.rs`) carries out in order: send a message,
//! report an event, write bytes to a `.part` file, start or stop an upload
//! thread. Where an action's outcome matters (a write, the final check of a
//! download, an upload thread that gave up) the driver reports it back with
//! [`Machine::written`], [`Machine::write_failed`], [`Machine::finished`] or
//! [`Machine::upload_failed`], which return the next actions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::PathBuf;

use super::{Failure, PROGRESS_STEP, TransferEvent};
use crate::protocol::transfer::{
    FileAccept, FileCancelled, FileData, FileOffered, FileUpload, MAX_CHUNK, TransferId,
};
use crate::protocol::{ClientMessage, ErrorCode, ServerMessage};

/// The first `ref` of file offers. Chat `ref`s are chosen by the
/// application, usually counting from 0 or 1; starting offers far away
/// keeps an error about a chat from being taken for one about an offer.
const FIRST_REF: u64 = 1 << 62;
/// Bytes of a `file_chunk` body besides its data, at most (docs/protocol.md 17.3).
const CHUNK_OVERHEAD: u32 = 61;

/// Whether `reference` is one this client gives file offers (not a chat's).
pub(crate) fn is_offer_ref(reference: u64) -> bool {
    reference >= FIRST_REF
}

/// Something the driver is to do, in the order given.
#[derive(Debug, PartialEq)]
pub(crate) enum Action {
    /// Send this message to the server.
    Send(ClientMessage),
    /// Report this to the application as `Event::Transfer`.
    Report(TransferEvent),
    /// Hand this server message to the application unchanged (`Event::Message`).
    PassOn(ServerMessage),
    /// Start the thread that uploads the file offered with `reference` as
    /// `transfer`: `size` bytes in chunks of at most `chunk`.
    StartUpload {
        /// The offer's `ref`: which opened file to send.
        reference: u64,
        /// The transfer id to put in every `file_chunk`.
        transfer: u64,
        /// Bytes to send.
        size: u64,
        /// Largest chunk: the server's `max_chunk`, within our frame limit.
        chunk: usize,
    },
    /// Stop the upload thread of this transfer if it still runs, and forget it.
    StopUpload(u64),
    /// Close the file of the offer with this `ref`: it will not be uploaded.
    DropOffer(u64),
    /// Append these bytes to this download's `.part` file (and its hash),
    /// then report back with [`Machine::written`] or [`Machine::write_failed`].
    Write {
        /// The download.
        transfer: u64,
        /// The bytes, which continue the file.
        data: Vec<u8>,
    },
    /// This download has every byte: check its SHA-256 and move it to its
    /// final name, then report back with [`Machine::finished`].
    Finish(u64),
    /// Close this download's `.part` file and keep it, for resuming.
    KeepPart(u64),
    /// Close this download's `.part` file and delete it: nothing in it is
    /// worth keeping.
    DiscardPart(u64),
}

/// An offer sent, waiting for `file_upload` or an error.
#[derive(Debug)]
struct Pending {
    /// The name offered, for the events.
    name: String,
    /// The size offered.
    size: u64,
}

/// An upload under way (or just failed, waiting for the server's
/// `file_cancelled` so it can be swallowed).
#[derive(Debug)]
struct Upload {
    /// Its offer's `ref`, which an error may name.
    reference: u64,
    /// Its failure was reported: the `file_cancelled` that follows is not.
    failed: bool,
}

/// A download under way.
#[derive(Debug)]
struct Download {
    /// Its `.part` file, named in events and kept for resuming.
    part: PathBuf,
    /// The offered size.
    size: u64,
    /// Bytes in the `.part` file.
    done: u64,
    /// `done` at the last progress event.
    reported: u64,
    /// Its `file_accept` has been sent (see [`Machine::awaiting`]).
    requested: bool,
    /// We sent `file_cancel`; data still arriving is kept.
    cancelling: bool,
    /// The server answered that cancel with `unknown_transfer` (the
    /// download was already queued to its end).
    cancel_answered: bool,
}

/// Everything the client knows about transfers.
#[derive(Debug)]
pub(crate) struct Machine {
    /// Offers seen (`file_offer` from the server) and not ended.
    offers: BTreeMap<u64, FileOffered>,
    /// Our offers waiting for `file_upload`, by `ref`.
    pending: HashMap<u64, Pending>,
    /// Our uploads, by transfer.
    uploads: HashMap<u64, Upload>,
    /// Our completed uploads, still offered.
    own: BTreeSet<u64>,
    /// Our downloads, by transfer.
    downloads: HashMap<u64, Download>,
    /// Downloads whose `file_accept` has had no answer yet, oldest first.
    /// Only the first one's `file_accept` is sent; the next goes out once
    /// the first is answered (its first `file_data` or `file_done`, or an
    /// error). Every error answering a `file_accept` names its transfer
    /// except `rate_limited`, which is then the first one's answer.
    awaiting: VecDeque<u64>,
    /// Downloads whose `file_cancel` will be answered by `error
    /// unknown_transfer` (the download ended meanwhile), to swallow.
    late_cancels: HashSet<u64>,
    /// Transfers we sent `file_cancel` for whose `file_cancelled` answer is
    /// still to come (and is ours to swallow); `true` if that answer is to
    /// be reported as [`TransferEvent::Cancelled`].
    acks: HashMap<u64, bool>,
    /// Partial downloads kept after a cancel or failure, for resuming.
    parts: HashMap<u64, PathBuf>,
    /// The connection is gone.
    closed: bool,
    /// The `ref` of our next offer.
    next_ref: u64,
    /// Largest chunk whose frame fits the server's `max_frame`.
    chunk_cap: u32,
}

/// The codes that can answer a `file_accept` (docs/protocol.md 17.5).
fn answers_accept(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::UnknownTransfer
            | ErrorCode::BadOffset
            | ErrorCode::TooManyTransfers
            | ErrorCode::StorageError
            | ErrorCode::RateLimited
    )
}

/// The codes that end an upload (docs/protocol.md 9, notes).
fn ends_upload(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::HashMismatch
            | ErrorCode::SizeMismatch
            | ErrorCode::BadOffset
            | ErrorCode::StorageError
    )
}

/// `file_cancel` of `transfer`.
fn cancel_msg(transfer: u64) -> Action {
    Action::Send(ClientMessage::FileCancel(TransferId { transfer }))
}

/// [`TransferEvent::Failed`] as an action.
fn failed(
    transfer: u64,
    code: Option<ErrorCode>,
    reason: impl ToString,
    part: Option<PathBuf>,
) -> Action {
    Action::Report(TransferEvent::Failed {
        transfer,
        code,
        reason: reason.to_string(),
        part,
    })
}

impl Machine {
    /// The state of a client whose server accepts frames of `max_frame` bytes.
    pub(crate) fn new(max_frame: u32) -> Self {
        Self {
            offers: BTreeMap::new(),
            pending: HashMap::new(),
            uploads: HashMap::new(),
            own: BTreeSet::new(),
            downloads: HashMap::new(),
            awaiting: VecDeque::new(),
            late_cancels: HashSet::new(),
            acks: HashMap::new(),
            parts: HashMap::new(),
            closed: false,
            next_ref: FIRST_REF,
            chunk_cap: max_frame.saturating_sub(CHUNK_OVERHEAD).clamp(1, MAX_CHUNK),
        }
    }

    // ---- the server's messages -------------------------------------------

    /// Handles a message from the server: a file message or an `error` the
    /// reader found may concern a transfer (`super::concerns`).
    pub(crate) fn on_message(&mut self, msg: ServerMessage) -> Vec<Action> {
        let mut out = Vec::new();
        match msg {
            ServerMessage::FileOffer(offer) => {
                self.offers.insert(offer.transfer, offer.clone());
                out.push(Action::PassOn(ServerMessage::FileOffer(offer)));
            }
            ServerMessage::FileUpload(up) => self.on_upload(up, &mut out),
            ServerMessage::FileProgress(p) if self.uploads.contains_key(&p.transfer) => {
                out.push(Action::Report(TransferEvent::UploadProgress {
                    transfer: p.transfer,
                    done: p.done,
                    total: p.total,
                }));
            }
            ServerMessage::FileReady(id) if self.uploads.remove(&id.transfer).is_some() => {
                self.own.insert(id.transfer);
                out.push(Action::StopUpload(id.transfer));
                out.push(Action::Report(TransferEvent::UploadReady {
                    transfer: id.transfer,
                }));
            }
            ServerMessage::FileData(data) => self.on_data(data, &mut out),
            ServerMessage::FileDone(id) => self.on_done(id, &mut out),
            ServerMessage::FileCancelled(c) => self.on_cancelled(c, &mut out),
            ServerMessage::Error(e) => self.on_error(e, &mut out),
            other => out.push(Action::PassOn(other)),
        }
        self.pump(&mut out);
        out
    }

    /// Sends the `file_accept` of the first waiting download once the one
    /// before it was answered (see [`Machine::awaiting`]).
    fn pump(&mut self, out: &mut Vec<Action>) {
        while let Some(&transfer) = self.awaiting.front() {
            let Some(d) = self.downloads.get_mut(&transfer) else {
                self.awaiting.pop_front();
                continue;
            };
            if d.requested {
                return;
            }
            if d.cancelling {
                // Cancelled before its turn: nothing was asked for.
                self.awaiting.pop_front();
                if let Some(d) = self.downloads.remove(&transfer) {
                    self.parts.insert(transfer, d.part.clone());
                    out.push(Action::KeepPart(transfer));
                    out.push(Action::Report(TransferEvent::Cancelled {
                        transfer,
                        part: Some(d.part),
                    }));
                }
                continue;
            }
            d.requested = true;
            // No data comes before the `file_accept` (the first `file_data`
            // takes a download out of `awaiting`): `done` is still the
            // offset it resumes from.
            let offset = d.done;
            out.push(Action::Send(ClientMessage::FileAccept(FileAccept {
                transfer,
                offset,
            })));
            return;
        }
    }

    fn on_upload(&mut self, up: FileUpload, out: &mut Vec<Action>) {
        let Some((reference, pending)) = up
            .reference
            .and_then(|r| self.pending.remove(&r).map(|p| (r, p)))
        else {
            out.push(Action::PassOn(ServerMessage::FileUpload(up)));
            return;
        };
        self.uploads.insert(
            up.transfer,
            Upload {
                reference,
                failed: false,
            },
        );
        out.push(Action::Report(TransferEvent::UploadStarted {
            reference,
            transfer: up.transfer,
            name: pending.name,
            size: pending.size,
        }));
        if pending.size == 0 {
            // Nothing to send: `file_ready` follows by itself.
            out.push(Action::DropOffer(reference));
            return;
        }
        out.push(Action::StartUpload {
            reference,
            transfer: up.transfer,
            size: pending.size,
            chunk: up.max_chunk.clamp(1, self.chunk_cap) as usize,
        });
    }

    fn on_data(&mut self, data: FileData, out: &mut Vec<Action>) {
        let transfer = data.transfer;
        self.awaiting.retain(|&t| t != transfer);
        let Some(d) = self.downloads.get(&transfer) else {
            // Not a download of ours: drop it. If nobody asked it to stop,
            // do (it may be one taken for refused, see `awaiting`).
            if let std::collections::hash_map::Entry::Vacant(e) = self.acks.entry(transfer) {
                e.insert(false);
                out.push(cancel_msg(transfer));
            }
            return;
        };
        let end = data.offset.checked_add(data.data.len() as u64);
        let problem = if data.offset != d.done {
            Some(Failure::Offset {
                got: data.offset,
                want: d.done,
            })
        } else if end.is_none_or(|end| end > d.size) {
            Some(Failure::PastEnd { size: d.size })
        } else {
            None
        };
        let Some(problem) = problem else {
            out.push(Action::Write {
                transfer,
                data: data.data,
            });
            return;
        };
        // Bad data: what came is not worth keeping.
        self.downloads.remove(&transfer);
        self.acks.insert(transfer, false);
        out.push(Action::DiscardPart(transfer));
        out.push(cancel_msg(transfer));
        out.push(failed(transfer, None, problem, None));
    }

    /// The driver appended `len` bytes to download `transfer`.
    pub(crate) fn written(&mut self, transfer: u64, len: usize) -> Vec<Action> {
        let Some(d) = self.downloads.get_mut(&transfer) else {
            return Vec::new();
        };
        d.done += len as u64;
        if d.done - d.reported >= PROGRESS_STEP || d.done == d.size {
            d.reported = d.done;
            return vec![Action::Report(TransferEvent::DownloadProgress {
                transfer,
                done: d.done,
                total: d.size,
            })];
        }
        Vec::new()
    }

    /// The driver could not write to download `transfer`'s `.part` file:
    /// the download stops, and the good bytes before are kept.
    pub(crate) fn write_failed(&mut self, transfer: u64, source: std::io::Error) -> Vec<Action> {
        let Some(d) = self.downloads.remove(&transfer) else {
            return Vec::new();
        };
        self.acks.insert(transfer, false);
        self.parts.insert(transfer, d.part.clone());
        let reason = Failure::Write {
            path: d.part.clone(),
            source,
        };
        vec![
            Action::KeepPart(transfer),
            cancel_msg(transfer),
            failed(transfer, None, reason, Some(d.part)),
        ]
    }

    fn on_done(&mut self, id: TransferId, out: &mut Vec<Action>) {
        let transfer = id.transfer;
        self.awaiting.retain(|&t| t != transfer);
        let Some(d) = self.downloads.remove(&transfer) else {
            out.push(Action::PassOn(ServerMessage::FileDone(id)));
            return;
        };
        if d.cancelling {
            // The cancel came too late: every byte is here, so finish. The
            // server answers the cancel with `unknown_transfer`: swallow it.
            self.acks.remove(&transfer);
            if !d.cancel_answered {
                self.late_cancels.insert(transfer);
            }
        }
        if d.done == d.size && d.reported != d.done {
            out.push(Action::Report(TransferEvent::DownloadProgress {
                transfer,
                done: d.done,
                total: d.size,
            }));
        }
        if d.done != d.size {
            // Keep what came: it may be resumed.
            self.parts.insert(transfer, d.part.clone());
            out.push(Action::KeepPart(transfer));
            let reason = Failure::Short {
                done: d.done,
                size: d.size,
            };
            out.push(failed(transfer, None, reason, Some(d.part)));
            return;
        }
        out.push(Action::Finish(transfer));
    }

    /// The driver checked download `transfer` and moved it to `Ok(path)`,
    /// or it failed, keeping the `.part` file named in the error (if any).
    pub(crate) fn finished(
        &mut self,
        transfer: u64,
        outcome: Result<PathBuf, (Failure, Option<PathBuf>)>,
    ) -> Vec<Action> {
        match outcome {
            Ok(path) => {
                self.parts.remove(&transfer);
                vec![Action::Report(TransferEvent::Saved { transfer, path })]
            }
            Err((reason, kept)) => {
                if let Some(part) = &kept {
                    self.parts.insert(transfer, part.clone());
                }
                vec![failed(transfer, None, reason, kept)]
            }
        }
    }

    fn on_cancelled(&mut self, c: FileCancelled, out: &mut Vec<Action>) {
        let transfer = c.transfer;
        if let Some(d) = self.downloads.get(&transfer) {
            if c.reason == "expired" {
                // The offer is gone for newcomers, but a download under way
                // goes on (the server keeps reading the file for it).
                self.offers.remove(&transfer);
                out.push(Action::PassOn(ServerMessage::FileCancelled(c)));
                return;
            }
            let cancelled_by_us = d.cancelling && c.reason == "cancelled";
            self.acks.remove(&transfer);
            self.awaiting.retain(|&t| t != transfer);
            let Some(d) = self.downloads.remove(&transfer) else {
                return;
            };
            if cancelled_by_us {
                self.parts.insert(transfer, d.part.clone());
                out.push(Action::KeepPart(transfer));
                out.push(Action::Report(TransferEvent::Cancelled {
                    transfer,
                    part: Some(d.part),
                }));
            } else if c.reason == "cancelled" {
                // The sender withdrew the offer: nothing left to resume.
                self.offers.remove(&transfer);
                self.parts.remove(&transfer);
                out.push(Action::DiscardPart(transfer));
                out.push(failed(transfer, None, Failure::Withdrawn, None));
                out.push(Action::PassOn(ServerMessage::FileCancelled(c)));
            } else {
                // The server could not go on (`error`): what came is kept.
                self.parts.insert(transfer, d.part.clone());
                out.push(Action::KeepPart(transfer));
                let reason = Failure::DownloadStopped(c.reason);
                out.push(failed(transfer, None, reason, Some(d.part)));
            }
            return;
        }
        let ours = self.acks.remove(&transfer);
        if let Some(up) = self.uploads.remove(&transfer) {
            out.push(Action::StopUpload(transfer));
            if !up.failed {
                out.push(if c.reason == "cancelled" {
                    Action::Report(TransferEvent::Cancelled {
                        transfer,
                        part: None,
                    })
                } else {
                    failed(transfer, None, Failure::UploadEnded(c.reason), None)
                });
            }
            return;
        }
        if let Some(report) = ours
            && c.reason == "cancelled"
        {
            // The answer to a cancel of ours: a withdrawn offer or upload,
            // or a download that ended meanwhile.
            self.own.remove(&transfer);
            if report {
                out.push(Action::Report(TransferEvent::Cancelled {
                    transfer,
                    part: None,
                }));
            }
            return;
        }
        self.offers.remove(&transfer);
        self.own.remove(&transfer);
        self.parts.remove(&transfer);
        out.push(Action::PassOn(ServerMessage::FileCancelled(c)));
    }

    // ---- the upload threads ----------------------------------------------

    /// The upload thread of `transfer` gave up (or could not start): the
    /// server is told to cancel (its answer is not reported) and the
    /// failure is. Nothing if the upload already ended or failed.
    pub(crate) fn upload_failed(&mut self, transfer: u64, reason: Failure) -> Vec<Action> {
        if self.uploads.get(&transfer).is_none_or(|u| u.failed) {
            return Vec::new();
        }
        self.uploads.remove(&transfer);
        self.acks.insert(transfer, false);
        vec![
            Action::StopUpload(transfer),
            cancel_msg(transfer),
            failed(transfer, None, reason, None),
        ]
    }

    // ---- the end ---------------------------------------------------------

    /// The connection is gone: stops the uploads, closes the downloads
    /// (keeping their parts) and reports each as failed.
    pub(crate) fn close(&mut self) -> Vec<Action> {
        self.closed = true;
        let mut out = Vec::new();
        for (transfer, up) in std::mem::take(&mut self.uploads) {
            out.push(Action::StopUpload(transfer));
            if !up.failed {
                out.push(failed(transfer, None, Failure::ConnectionClosed, None));
            }
        }
        for (reference, _) in std::mem::take(&mut self.pending) {
            out.push(Action::DropOffer(reference));
        }
        for (transfer, d) in std::mem::take(&mut self.downloads) {
            self.parts.insert(transfer, d.part.clone());
            out.push(Action::KeepPart(transfer));
            let reason = Failure::ConnectionClosed;
            out.push(failed(transfer, None, reason, Some(d.part)));
        }
        self.awaiting.clear();
        out
    }
}

mod calls;
mod errors;

#[cfg(test)]
mod tests;
