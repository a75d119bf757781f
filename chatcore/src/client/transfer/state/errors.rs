//! Which transfer an `error` is about, and what it does to it
//! (docs/protocol.md 7.8: an error names the offer's `ref` or the
//! `transfer`; only `rate_limited` names neither).

use super::{Action, Machine, answers_accept, ends_upload, failed};
use crate::client::transfer::TransferEvent;
use crate::protocol::{ErrorCode, ErrorMsg, ServerMessage};

impl Machine {
    /// An `error` the reader passed here: about one of our offers (its
    /// `ref`), one of our transfers (its `transfer`), or a `rate_limited`
    /// that may answer the `file_accept` in flight. Anything else is passed on.
    pub(super) fn on_error(&mut self, e: ErrorMsg, out: &mut Vec<Action>) {
        if let Some(reference) = e.reference {
            if let Some(pending) = self.pending.remove(&reference) {
                out.push(Action::DropOffer(reference));
                out.push(Action::Report(TransferEvent::OfferRefused {
                    reference,
                    name: pending.name,
                    code: e.code,
                    message: e.message,
                }));
                return;
            }
            let upload = self
                .uploads
                .iter_mut()
                .find(|(_, u)| u.reference == reference && !u.failed);
            if let Some((&transfer, up)) = upload {
                up.failed = true;
                out.push(Action::StopUpload(transfer));
                out.push(failed(transfer, Some(e.code), e.message, None));
                return;
            }
        }
        match e.transfer {
            Some(transfer) => self.on_transfer_error(transfer, e, out),
            None if e.reference.is_none() && e.code == ErrorCode::RateLimited => {
                match self.accept_in_flight() {
                    Some(transfer) => self.fail_accept(transfer, e, out),
                    None => out.push(Action::PassOn(ServerMessage::Error(e))),
                }
            }
            None => out.push(Action::PassOn(ServerMessage::Error(e))),
        }
    }

    /// An `error` naming `transfer`.
    fn on_transfer_error(&mut self, transfer: u64, e: ErrorMsg, out: &mut Vec<Action>) {
        // An upload of ours ends (`hash_mismatch`, `storage_error`,
        // `bad_offset`); its `file_cancelled` follows and is not reported.
        if ends_upload(e.code)
            && let Some(up) = self.uploads.get_mut(&transfer)
            && !up.failed
        {
            up.failed = true;
            out.push(Action::StopUpload(transfer));
            out.push(failed(transfer, Some(e.code), e.message, None));
            return;
        }
        if answers_accept(e.code) && self.accept_in_flight() == Some(transfer) {
            self.fail_accept(transfer, e, out);
            return;
        }
        if e.code == ErrorCode::UnknownTransfer {
            // The answer to a cancel of a download that had been queued to
            // its end: its `file_done` is still to come, or came already.
            if let Some(d) = self.downloads.get_mut(&transfer)
                && d.cancelling
                && d.requested
                && !d.cancel_answered
            {
                d.cancel_answered = true;
                return;
            }
            if self.late_cancels.remove(&transfer) {
                return;
            }
        }
        out.push(Action::PassOn(ServerMessage::Error(e)));
    }

    /// The download whose `file_accept` was sent and not yet answered.
    fn accept_in_flight(&self) -> Option<u64> {
        let &transfer = self.awaiting.front()?;
        self.downloads
            .get(&transfer)
            .is_some_and(|d| d.requested)
            .then_some(transfer)
    }

    /// The server refused the `file_accept` of download `transfer` with `e`.
    fn fail_accept(&mut self, transfer: u64, e: ErrorMsg, out: &mut Vec<Action>) {
        self.awaiting.retain(|&t| t != transfer);
        self.acks.remove(&transfer);
        let Some(d) = self.downloads.remove(&transfer) else {
            return;
        };
        if d.cancelling {
            // Our `file_cancel` is on its way too; with no download on the
            // server, it is answered by `unknown_transfer`.
            self.late_cancels.insert(transfer);
        }
        // A fresh, empty part is useless; a resumed one is kept.
        let part = if d.done == 0 {
            self.parts.remove(&transfer);
            out.push(Action::DiscardPart(transfer));
            None
        } else {
            self.parts.insert(transfer, d.part.clone());
            out.push(Action::KeepPart(transfer));
            Some(d.part)
        };
        if e.code == ErrorCode::UnknownTransfer {
            self.offers.remove(&transfer);
        }
        out.push(failed(transfer, Some(e.code), e.message, part));
    }
}
