//! The public transfer calls on [`ClientSender`]: offer a file, accept,
//! resume, decline or cancel one, and what is known about offers. They run
//! on the caller's thread, do the file work (open, hash, create the
//! `.part`), record the transfer with the machine and send one request.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::download::DownloadFile;
use super::files::{create_unique, file_error, hash_reader, sanitize_file_name};
use super::{MAX_FILE_NAME, PART_SUFFIX, TransferError};
use crate::client::{ClientError, ClientSender};
use crate::protocol::ClientMessage;
use crate::protocol::file_name::sanitize;
use crate::protocol::transfer::{FileKind, FileOffer, FileOffered, TransferId};

#[cfg(doc)]
use super::TransferEvent;

/// Who a file is offered to (docs/protocol.md 23.6 and 25.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OfferTo {
    /// The default room's members.
    #[default]
    DefaultRoom,
    /// The members of this named room (this client must be in it).
    Room(String),
    /// One member, in a direct conversation.
    Member(String),
}

impl ClientSender {
    /// Offers the file at `path` to the default room; returns the offer's
    /// `ref`. See [`ClientSender::send_file_to`].
    pub fn send_file(&self, path: &Path, kind: FileKind) -> Result<u64, ClientError> {
        self.send_file_to(path, kind, OfferTo::DefaultRoom)
    }

    /// Offers the file at `path` to `to`; returns the offer's `ref`.
    ///
    /// The file is hashed here (a streaming read: this takes as long as
    /// reading it), then `file_offer` goes out under its base name passed
    /// through [`sanitize_file_name`]. What follows comes as events:
    /// [`TransferEvent::UploadStarted`] with this `ref` and the transfer
    /// id, then `UploadProgress`, `UploadReady`; or `OfferRefused` /
    /// `Failed`. The upload runs on its own thread.
    pub fn send_file_to(
        &self,
        path: &Path,
        kind: FileKind,
        to: OfferTo,
    ) -> Result<u64, ClientError> {
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
        let reference = self.transfers.offer(name.clone(), size, file)?;
        let offer = ClientMessage::FileOffer(FileOffer {
            name,
            size,
            sha256: hasher.finalize().to_vec(),
            kind,
            reference: Some(reference),
            room: match &to {
                OfferTo::Room(r) => Some(r.clone()),
                _ => None,
            },
            to: match to {
                OfferTo::Member(m) => Some(m),
                _ => None,
            },
        });
        if let Err(e) = self.send(&offer) {
            self.transfers.offer_not_sent(reference);
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
            let machine = self.transfers.machine();
            machine.check_acceptable(transfer)?;
            machine.partial_file(transfer)
        };
        if let Some(part) = kept.filter(|p| p.is_file()) {
            self.resume_file(transfer, &part)?;
            return Ok(part);
        }
        fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
        let offer = self.transfers.machine().known_offer(transfer)?;
        let name = sanitize_file_name(&offer.name);
        let part_name = format!(
            "{}{PART_SUFFIX}",
            sanitize(&offer.name, MAX_FILE_NAME - PART_SUFFIX.len())
        );
        let (file, part) = create_unique(dir, &part_name).map_err(|e| file_error(dir, e))?;
        let download = DownloadFile::new(
            file,
            part.clone(),
            Sha256::new(),
            dir.to_owned(),
            name,
            offer.sha256,
        );
        if let Err(e) = self
            .transfers
            .start_download(transfer, download, offer.size, 0, self)
        {
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
        let offer = {
            let machine = self.transfers.machine();
            machine.check_acceptable(transfer)?;
            machine.known_offer(transfer)?
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(part)
            .map_err(|e| file_error(part, e))?;
        let mut hasher = Sha256::new();
        let have = hash_reader(&mut file, &mut hasher).map_err(|e| file_error(part, e))?;
        if have > offer.size {
            return Err(TransferError::PartTooLong {
                part: part.to_owned(),
                have,
                size: offer.size,
            }
            .into());
        }
        file.seek(SeekFrom::Start(have))
            .map_err(|e| file_error(part, e))?;
        let dir = match part.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = sanitize_file_name(&offer.name);
        let download = DownloadFile::new(file, part.to_owned(), hasher, dir, name, offer.sha256);
        self.transfers
            .start_download(transfer, download, offer.size, have, self)
    }

    /// Says we do not want offered file `transfer` (`file_decline`) and
    /// forgets the offer.
    pub fn decline_file(&self, transfer: u64) -> Result<(), ClientError> {
        self.transfers.machine().decline(transfer)?;
        self.send(&ClientMessage::FileDecline(TransferId { transfer }))
    }

    /// Cancels transfer `transfer`: our upload (stopped at once), our own
    /// offer (withdrawn), or our download. A download goes on receiving
    /// what the server already sent until its `file_cancelled` arrives,
    /// then [`TransferEvent::Cancelled`] names the `.part` file kept (or,
    /// if every byte had already been sent, it completes normally).
    pub fn cancel_file(&self, transfer: u64) -> Result<(), ClientError> {
        self.transfers.cancel(transfer, self)
    }

    /// The offers this client has seen and that have not ended, oldest
    /// transfer first (declined ones excluded).
    pub fn offers(&self) -> Vec<FileOffered> {
        self.transfers.machine().offers()
    }

    /// The offer `transfer`, if this client saw it and it has not ended.
    pub fn offer(&self, transfer: u64) -> Option<FileOffered> {
        self.transfers.machine().offer_of(transfer)
    }

    /// The partial file kept from a cancelled or interrupted download of
    /// `transfer`, if any.
    pub fn partial_file(&self, transfer: u64) -> Option<PathBuf> {
        self.transfers.machine().partial_file(transfer)
    }
}
