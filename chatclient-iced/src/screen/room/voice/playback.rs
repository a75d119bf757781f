//! The voice message playing: our own sent files, or a received offer
//! downloaded first when Play is pressed before it is saved.
//!
//! It goes `Idle` → (play a file) `Starting` → (the engine says so)
//! `Playing` → (the end, Stop, a failure) `Idle`; or `Idle` → (play an
//! offer not yet saved) `Fetching` → (saved) `Starting`. The engine hears
//! of a playback by its own [`ClipId`]: the card's id.

use std::collections::HashMap;
use std::path::PathBuf;

use super::event::Event;
use crate::audio::{ClipId, Command as AudioCommand};
use crate::screen::room::files::CardId;

/// Which voice message plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playback {
    /// None.
    Idle,
    /// Downloading this card's file first, then it plays.
    Fetching(CardId),
    /// Asked the worker to play this card.
    Starting(CardId),
    /// This card plays.
    Playing(CardId),
}

impl Playback {
    /// The card playing (or about to), if any.
    pub fn card(self) -> Option<CardId> {
        match self {
            Self::Idle => None,
            Self::Fetching(c) | Self::Starting(c) | Self::Playing(c) => Some(c),
        }
    }
}

/// The playback, the downloads it waits for and the files we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Player {
    /// Which message plays.
    pub state: Playback,
    /// The last playback problem and the card it is about.
    pub note: Option<(CardId, String)>,
    /// Offers being downloaded because Play was pressed: transfer -> card.
    fetching: HashMap<u64, CardId>,
    /// Our own sent voice messages' files, so they can be played too.
    own_files: HashMap<CardId, PathBuf>,
}

impl Default for Player {
    fn default() -> Self {
        Self {
            state: Playback::Idle,
            note: None,
            fetching: HashMap::new(),
            own_files: HashMap::new(),
        }
    }
}

impl Player {
    /// Remembers our own sent message's file, so its card can play it.
    pub fn own_file(&mut self, card: CardId, path: PathBuf) {
        self.own_files.insert(card, path);
    }

    /// Our own file for this card, if we sent it.
    pub fn own_path(&self, card: CardId) -> Option<&PathBuf> {
        self.own_files.get(&card)
    }

    /// Play `path` for `card` now.
    pub fn play(&mut self, card: CardId, path: PathBuf) -> Option<Event> {
        self.note = None;
        self.state = Playback::Starting(card);
        Some(Event::Engine(AudioCommand::Play {
            clip: ClipId(card),
            path,
        }))
    }

    /// Play `card` once its offer `transfer` is downloaded.
    pub fn play_after_download(&mut self, card: CardId, transfer: u64) {
        self.note = None;
        self.fetching.insert(transfer, card);
        self.state = Playback::Fetching(card);
    }

    /// A download finished: plays it if Play asked for it.
    pub fn downloaded(&mut self, transfer: u64, path: PathBuf) -> Option<Event> {
        let card = self.fetching.remove(&transfer)?;
        if self.state != Playback::Fetching(card) {
            return None;
        }
        self.play(card, path)
    }

    /// A download that Play asked for failed or was cancelled.
    pub fn fetch_failed(&mut self, transfer: u64) {
        if let Some(card) = self.fetching.remove(&transfer)
            && self.state == Playback::Fetching(card)
        {
            self.state = Playback::Idle;
        }
    }

    /// Stop the playback (or the wait for its download).
    pub fn stop(&mut self) -> Option<Event> {
        match self.state {
            Playback::Idle => None,
            Playback::Fetching(_) => {
                self.state = Playback::Idle;
                None
            }
            Playback::Starting(_) | Playback::Playing(_) => {
                Some(Event::Engine(AudioCommand::StopPlaying))
            }
        }
    }

    /// The engine plays `clip`.
    pub fn playing(&mut self, clip: ClipId) {
        if self.state == Playback::Starting(clip.0) {
            self.state = Playback::Playing(clip.0);
        }
    }

    /// `clip` played to the end or was stopped.
    pub fn ended(&mut self, clip: ClipId) {
        if self.state.card() == Some(clip.0) {
            self.state = Playback::Idle;
        }
    }

    /// `clip` could not be played; say why on its card.
    pub fn failed(&mut self, clip: ClipId, why: &str) {
        self.ended(clip);
        self.note = Some((clip.0, format!("Cannot play: {why}")));
    }

    /// What the Play control of `card` looks like: whether it plays, and a
    /// note to show under it.
    pub fn play_state(&self, card: CardId) -> (bool, Option<String>) {
        let playing = self.state.card() == Some(card);
        let note = match self.state {
            Playback::Fetching(c) if c == card => Some("Downloading to play…".to_owned()),
            _ => self
                .note
                .as_ref()
                .filter(|(c, _)| *c == card)
                .map(|(_, n)| n.clone()),
        };
        (playing, note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn play_downloads_first_then_plays_then_stops() {
        let mut p = Player::default();
        p.play_after_download(3, 40);
        assert_eq!(p.play_state(3).1.as_deref(), Some("Downloading to play…"));
        assert_eq!(
            p.downloaded(40, "dl/v.ogg".into()),
            Some(Event::Engine(AudioCommand::Play {
                clip: ClipId(3),
                path: "dl/v.ogg".into()
            }))
        );
        assert_eq!(p.state, Playback::Starting(3));
        p.playing(ClipId(3));
        assert!(p.play_state(3).0);
        assert_eq!(p.stop(), Some(Event::Engine(AudioCommand::StopPlaying)));
        p.ended(ClipId(3));
        assert_eq!(p.state, Playback::Idle);
        let _ = p.play(4, "x.ogg".into());
        p.failed(ClipId(4), "not a playable Ogg Opus file");
        assert!(p.play_state(4).1.is_some_and(|n| n.contains("Cannot play")));
    }

    #[test]
    fn a_failed_download_ends_the_wait_and_a_late_save_does_not_play() {
        let mut p = Player::default();
        p.play_after_download(3, 40);
        p.fetch_failed(40);
        assert_eq!(p.state, Playback::Idle);
        assert_eq!(p.downloaded(40, "dl/v.ogg".into()), None);
    }
}
