//! File cards: every offer we make or receive, as the message list shows it.
//!
//! A card is created when the user picks a file to send (before the server
//! knows it) or when an offer arrives, and follows the transfer through its
//! events. Lookups by transfer id and by offer `ref` find the card an event
//! is about.
//!
//! One race is handled here: `send_file` returns the offer's `ref` on the
//! command thread while the server's `file_upload` answer arrives on the
//! reader thread, so `UploadStarted` may come before [`Files::offer_sent`]
//! links the `ref` to our card. Such an early card is kept out of sight and
//! merged into ours when the link arrives.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chatcore::client::{FileKind, FileOffered, TransferEvent};

/// The UI's id for a card.
pub type CardId = u64;

/// Which way the file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direction {
    /// Someone offers it to us.
    Incoming {
        /// Who offers it.
        from: String,
    },
    /// We offer it.
    Outgoing,
}

/// Where a transfer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Ours: being read and hashed before the offer goes out.
    Preparing,
    /// Ours: bytes stored by the server so far.
    Uploading {
        /// Bytes stored.
        done: u64,
        /// File size.
        total: u64,
    },
    /// Ours: uploaded and offered to the room.
    Offered,
    /// Theirs: on offer, waiting for Accept or Decline.
    Available,
    /// Theirs: accepted, waiting for the first bytes.
    Requested,
    /// Theirs: bytes written so far.
    Downloading {
        /// Bytes written.
        done: u64,
        /// File size.
        total: u64,
    },
    /// Theirs: saved, checked, at this path.
    Saved(PathBuf),
    /// Theirs: we said no.
    Declined,
    /// Either: we cancelled it (a download can be accepted again to resume).
    Cancelled,
    /// The offer ended on the sender's side (withdrawn, expired...).
    Withdrawn(String),
    /// It failed; the text says why.
    Failed(String),
}

/// One file offer in the message list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// The card's own id (entries point at it).
    pub id: CardId,
    /// Ours or theirs.
    pub direction: Direction,
    /// File name as offered.
    pub name: String,
    /// Size in bytes, once known (ours: after the server took the offer).
    pub size: Option<u64>,
    /// A plain file or a voice message (which gets a Play button).
    pub kind: FileKind,
    /// The server's transfer id, once known.
    pub transfer: Option<u64>,
    /// Where it stands.
    pub state: FileState,
    /// A problem with a local action (opening the folder), shown in place.
    pub note: Option<String>,
}

impl Card {
    /// Whether Accept / Decline apply (also after a cancel or a failure:
    /// accepting again resumes).
    pub fn can_accept(&self) -> bool {
        matches!(self.direction, Direction::Incoming { .. })
            && matches!(
                self.state,
                FileState::Available | FileState::Cancelled | FileState::Failed(_)
            )
            && self.transfer.is_some()
    }

    /// Whether Cancel applies (a running upload or download).
    pub fn can_cancel(&self) -> bool {
        matches!(
            self.state,
            FileState::Uploading { .. } | FileState::Requested | FileState::Downloading { .. }
        ) && self.transfer.is_some()
    }
}

/// Every card, with the indexes events need.
#[derive(Debug, Clone, Default)]
pub struct Files {
    /// The cards by id.
    cards: BTreeMap<CardId, Card>,
    /// Transfer id -> card.
    by_transfer: HashMap<u64, CardId>,
    /// Offer `ref` -> card (ours).
    by_ref: HashMap<u64, CardId>,
    /// The next card id.
    next: CardId,
}

impl Files {
    /// A card by id.
    pub fn get(&self, id: CardId) -> Option<&Card> {
        self.cards.get(&id)
    }

    /// The card of a transfer.
    pub fn by_transfer(&self, transfer: u64) -> Option<&Card> {
        self.by_transfer
            .get(&transfer)
            .and_then(|id| self.cards.get(id))
    }

    fn insert(&mut self, mut card: Card) -> CardId {
        let id = self.next;
        self.next += 1;
        card.id = id;
        if let Some(t) = card.transfer {
            self.by_transfer.insert(t, id);
        }
        self.cards.insert(id, card);
        id
    }

    /// The card of our offer sent with `reference`. An event may arrive
    /// before `offer_sent` linked the reference to its card: then an early
    /// card is made here, and merged when `offer_sent` comes.
    fn outgoing_card(&mut self, reference: u64, name: &str) -> CardId {
        if let Some(&id) = self.by_ref.get(&reference) {
            return id;
        }
        let id = self.insert(Card {
            id: 0,
            direction: Direction::Outgoing,
            name: name.to_owned(),
            size: None,
            kind: FileKind::File,
            transfer: None,
            state: FileState::Preparing,
            note: None,
        });
        self.by_ref.insert(reference, id);
        id
    }

    fn card_mut(&mut self, transfer: u64) -> Option<&mut Card> {
        let id = *self.by_transfer.get(&transfer)?;
        self.cards.get_mut(&id)
    }

    /// The user picked `path` to send: a new card, "preparing".
    pub fn new_upload(&mut self, path: &Path) -> CardId {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        self.insert(Card {
            id: 0,
            direction: Direction::Outgoing,
            name,
            size: None,
            kind: FileKind::File,
            transfer: None,
            state: FileState::Preparing,
            note: None,
        })
    }

    /// The user sends a recorded voice message at `path`: a new card.
    pub fn new_voice_upload(&mut self, path: &Path) -> CardId {
        let id = self.new_upload(path);
        if let Some(c) = self.cards.get_mut(&id) {
            c.kind = FileKind::Voice;
        }
        id
    }

    /// An offer arrived from someone: a new card.
    pub fn offered(&mut self, offer: &FileOffered) -> CardId {
        self.insert(Card {
            id: 0,
            direction: Direction::Incoming {
                from: offer.from.clone(),
            },
            name: offer.name.clone(),
            size: Some(offer.size),
            kind: offer.kind,
            transfer: Some(offer.transfer),
            state: FileState::Available,
            note: None,
        })
    }

    /// Our offer for card `local` went out as `reference`.
    pub fn offer_sent(&mut self, local: CardId, reference: u64) {
        if let Some(early) = self.by_ref.insert(reference, local)
            && early != local
            && let Some(e) = self.cards.remove(&early)
        {
            // `UploadStarted` came first: its card holds the progress.
            if let Some(t) = e.transfer {
                self.by_transfer.insert(t, local);
            }
            if let Some(card) = self.cards.get_mut(&local) {
                card.transfer = e.transfer;
                card.size = e.size;
                card.state = e.state;
            }
        }
    }

    /// Accepting a download: waiting for bytes.
    pub fn requested(&mut self, transfer: u64) {
        if let Some(c) = self.card_mut(transfer) {
            c.state = FileState::Requested;
            c.note = None;
        }
    }

    /// We declined an offer.
    pub fn declined(&mut self, transfer: u64) {
        if let Some(c) = self.card_mut(transfer) {
            c.state = FileState::Declined;
        }
    }

    /// The sender's side ended an offer (`file_cancelled`).
    pub fn withdrawn(&mut self, transfer: u64, reason: &str) {
        if let Some(c) = self.card_mut(transfer)
            && matches!(
                c.state,
                FileState::Available | FileState::Requested | FileState::Downloading { .. }
            )
        {
            c.state = FileState::Withdrawn(reason.to_owned());
        }
    }

    /// A local command about card `id` failed.
    pub fn failed_card(&mut self, id: CardId, error: String) {
        if let Some(c) = self.cards.get_mut(&id) {
            c.state = FileState::Failed(error);
        }
    }

    /// A command about `transfer` failed (accept, decline, cancel).
    pub fn failed_transfer(&mut self, transfer: u64, error: String) {
        if let Some(c) = self.card_mut(transfer) {
            c.state = FileState::Failed(error);
        }
    }

    /// A note (e.g. "cannot open the folder") on card `id`.
    pub fn note(&mut self, id: CardId, note: Option<String>) {
        if let Some(c) = self.cards.get_mut(&id) {
            c.note = note;
        }
    }

    /// Applies a transfer event to its card.
    pub fn on_transfer(&mut self, event: &TransferEvent) {
        match event {
            TransferEvent::UploadStarted {
                reference,
                transfer,
                name,
                size,
            } => {
                let id = self.outgoing_card(*reference, name);
                self.by_transfer.insert(*transfer, id);
                if let Some(c) = self.cards.get_mut(&id) {
                    c.transfer = Some(*transfer);
                    c.size = Some(*size);
                    c.state = FileState::Uploading {
                        done: 0,
                        total: *size,
                    };
                }
            }
            TransferEvent::UploadProgress {
                transfer,
                done,
                total,
            } => {
                if let Some(c) = self.card_mut(*transfer)
                    && !matches!(c.state, FileState::Offered)
                {
                    c.state = FileState::Uploading {
                        done: *done,
                        total: *total,
                    };
                }
            }
            TransferEvent::UploadReady { transfer } => {
                if let Some(c) = self.card_mut(*transfer) {
                    c.state = FileState::Offered;
                }
            }
            TransferEvent::OfferRefused {
                reference,
                name,
                message,
                ..
            } => {
                let id = self.outgoing_card(*reference, name);
                if let Some(c) = self.cards.get_mut(&id) {
                    c.state = FileState::Failed(message.clone());
                }
            }
            TransferEvent::DownloadProgress {
                transfer,
                done,
                total,
            } => {
                if let Some(c) = self.card_mut(*transfer) {
                    c.state = FileState::Downloading {
                        done: *done,
                        total: *total,
                    };
                }
            }
            TransferEvent::Saved { transfer, path } => {
                if let Some(c) = self.card_mut(*transfer) {
                    c.state = FileState::Saved(path.clone());
                }
            }
            TransferEvent::Cancelled { transfer, .. } => {
                if let Some(c) = self.card_mut(*transfer) {
                    c.state = FileState::Cancelled;
                }
            }
            TransferEvent::Failed {
                transfer, reason, ..
            } => {
                if let Some(c) = self.card_mut(*transfer) {
                    c.state = FileState::Failed(reason.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatcore::client::FileKind;

    fn offer(transfer: u64) -> FileOffered {
        FileOffered {
            room: None,
            to: None,
            transfer,
            from: "bob".into(),
            session: 2,
            name: "report.pdf".into(),
            size: 2_000_000,
            sha256: vec![0; 32],
            kind: FileKind::File,
            ts: 0,
        }
    }

    #[test]
    fn an_incoming_offer_goes_from_available_through_progress_to_saved() {
        let mut f = Files::default();
        let id = f.offered(&offer(7));
        assert!(f.get(id).is_some_and(Card::can_accept));
        f.requested(7);
        f.on_transfer(&TransferEvent::DownloadProgress {
            transfer: 7,
            done: 1_000_000,
            total: 2_000_000,
        });
        assert_eq!(
            f.get(id).map(|c| c.state.clone()),
            Some(FileState::Downloading {
                done: 1_000_000,
                total: 2_000_000
            })
        );
        assert!(f.get(id).is_some_and(Card::can_cancel));
        f.on_transfer(&TransferEvent::Saved {
            transfer: 7,
            path: "downloads/report.pdf".into(),
        });
        assert_eq!(
            f.get(id).map(|c| c.state.clone()),
            Some(FileState::Saved("downloads/report.pdf".into()))
        );
    }

    #[test]
    fn our_upload_is_tracked_from_preparing_to_offered() {
        let mut f = Files::default();
        let id = f.new_upload(Path::new("/tmp/notes.txt"));
        assert_eq!(f.get(id).map(|c| c.name.as_str()), Some("notes.txt"));
        f.offer_sent(id, 42);
        f.on_transfer(&TransferEvent::UploadStarted {
            reference: 42,
            transfer: 9,
            name: "notes.txt".into(),
            size: 10,
        });
        f.on_transfer(&TransferEvent::UploadProgress {
            transfer: 9,
            done: 5,
            total: 10,
        });
        assert_eq!(
            f.get(id).map(|c| c.state.clone()),
            Some(FileState::Uploading { done: 5, total: 10 })
        );
        f.on_transfer(&TransferEvent::UploadReady { transfer: 9 });
        assert_eq!(f.get(id).map(|c| c.state.clone()), Some(FileState::Offered));
    }

    #[test]
    fn upload_events_arriving_before_the_ref_is_known_land_on_our_card() {
        let mut f = Files::default();
        let id = f.new_upload(Path::new("a.bin"));
        f.on_transfer(&TransferEvent::UploadStarted {
            reference: 5,
            transfer: 3,
            name: "a.bin".into(),
            size: 100,
        });
        f.on_transfer(&TransferEvent::UploadProgress {
            transfer: 3,
            done: 50,
            total: 100,
        });
        f.offer_sent(id, 5);
        assert_eq!(
            f.get(id).map(|c| c.state.clone()),
            Some(FileState::Uploading {
                done: 50,
                total: 100
            })
        );
        assert_eq!(f.by_transfer(3).map(|c| c.id), Some(id));
        assert_eq!(f.cards.len(), 1, "the early card was merged");
    }

    #[test]
    fn a_withdrawn_offer_can_no_longer_be_accepted() {
        let mut f = Files::default();
        let id = f.offered(&offer(1));
        f.withdrawn(1, "expired");
        assert!(!f.get(id).is_some_and(Card::can_accept));
    }
}
