//! The sender's calls as the machine sees them: record an offer or a
//! download, decline, cancel, and what is known. They return what to send
//! (never an event: events come from the reader only).

use std::path::PathBuf;

use super::{Action, Download, Machine, Pending, cancel_msg};
use crate::client::ClientError;
use crate::client::transfer::TransferError;
use crate::protocol::transfer::{FileAccept, FileOffered};

impl Machine {
    /// The `ref` the next offer will get.
    #[cfg(test)]
    pub(crate) fn next_ref(&self) -> u64 {
        self.next_ref
    }

    /// Records an offer of `size` bytes named `name` about to be sent;
    /// returns its `ref`.
    pub(crate) fn offer(&mut self, name: String, size: u64) -> Result<u64, ClientError> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        let reference = self.next_ref;
        self.next_ref += 1;
        self.pending.insert(reference, Pending { name, size });
        Ok(reference)
    }

    /// The offer `reference` could not be sent: forget it.
    pub(crate) fn offer_not_sent(&mut self, reference: u64) {
        self.pending.remove(&reference);
    }

    /// Whether a download of `transfer` may start now.
    pub(crate) fn check_acceptable(&self, transfer: u64) -> Result<(), ClientError> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        if let Some(d) = self.downloads.get(&transfer) {
            return Err(if d.cancelling {
                TransferError::StillCancelling(transfer)
            } else {
                TransferError::AlreadyDownloading(transfer)
            }
            .into());
        }
        if !self.offers.contains_key(&transfer) {
            return Err(ClientError::UnknownTransfer(transfer));
        }
        Ok(())
    }

    /// The offer `transfer` as the server described it, if its hash is a
    /// SHA-256 (else no download could be checked).
    pub(crate) fn known_offer(&self, transfer: u64) -> Result<FileOffered, ClientError> {
        let offer = self
            .offers
            .get(&transfer)
            .cloned()
            .ok_or(ClientError::UnknownTransfer(transfer))?;
        if offer.sha256.len() != 32 {
            return Err(TransferError::NotSha256 {
                transfer,
                len: offer.sha256.len(),
            }
            .into());
        }
        Ok(offer)
    }

    /// Records a download of `transfer` of `size` bytes into `part`, which
    /// already holds `have` bytes. Returns the `file_accept` to send now,
    /// or `None` if it waits its turn (see [`Machine::awaiting`]).
    pub(crate) fn start_download(
        &mut self,
        transfer: u64,
        part: PathBuf,
        size: u64,
        have: u64,
    ) -> Result<Option<FileAccept>, ClientError> {
        self.check_acceptable(transfer)?;
        self.parts.remove(&transfer);
        self.awaiting.push_back(transfer);
        let requested = self.awaiting.len() == 1;
        self.downloads.insert(
            transfer,
            Download {
                part,
                size,
                done: have,
                reported: have,
                requested,
                cancelling: false,
                cancel_answered: false,
            },
        );
        Ok(requested.then_some(FileAccept {
            transfer,
            offset: have,
        }))
    }

    /// The `file_accept` of `transfer` could not be sent: the download
    /// does not start (its part is remembered, as for an interrupted one).
    pub(crate) fn accept_not_sent(&mut self, transfer: u64) {
        self.awaiting.retain(|&t| t != transfer);
        if let Some(d) = self.downloads.remove(&transfer) {
            self.parts.insert(transfer, d.part);
        }
    }

    /// Forgets offer `transfer` (the caller sends `file_decline`).
    pub(crate) fn decline(&mut self, transfer: u64) -> Result<(), ClientError> {
        if self.downloads.contains_key(&transfer) {
            return Err(TransferError::Downloading(transfer).into());
        }
        if self.offers.remove(&transfer).is_none() {
            return Err(ClientError::UnknownTransfer(transfer));
        }
        Ok(())
    }

    /// Cancels our upload (stopped at once), our own offer (withdrawn) or
    /// our download; returns what to do now (stop the upload thread, send
    /// `file_cancel`). A download whose `file_accept` has not gone out yet
    /// is reported `Cancelled` when its turn comes, without a message.
    pub(crate) fn cancel(&mut self, transfer: u64) -> Result<Vec<Action>, ClientError> {
        let mut out = Vec::new();
        if let Some(d) = self.downloads.get_mut(&transfer) {
            if d.cancelling {
                return Ok(out);
            }
            d.cancelling = true;
            if !d.requested {
                return Ok(out);
            }
        } else if self.uploads.remove(&transfer).is_some() {
            out.push(Action::StopUpload(transfer));
        } else if !self.own.contains(&transfer) {
            return Err(ClientError::UnknownTransfer(transfer));
        }
        self.acks.insert(transfer, true);
        out.push(cancel_msg(transfer));
        Ok(out)
    }

    /// The offers seen and not ended, oldest first (declined ones excluded).
    pub(crate) fn offers(&self) -> Vec<FileOffered> {
        self.offers.values().cloned().collect()
    }

    /// The offer `transfer`, if seen and not ended.
    pub(crate) fn offer_of(&self, transfer: u64) -> Option<FileOffered> {
        self.offers.get(&transfer).cloned()
    }

    /// The partial file kept from a cancelled or interrupted download.
    pub(crate) fn partial_file(&self, transfer: u64) -> Option<PathBuf> {
        self.parts.get(&transfer).cloned()
    }
}
