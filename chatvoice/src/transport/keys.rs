//! [`CallKeys`]: the call's keys on the client (docs/protocol.md §16.5), one
//! per call, shared by every link the call binds (a rebind keeps sealing
//! with the same counter, so no nonce repeats) and by the threads: the
//! capture side seals through it, the receive thread opens through it, and
//! `voice_key` from the chat connection updates both at once.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use chatcore::protocol::voice::VoiceJoined;
use chatcore::protocol::voice::seal::{CallKey, OpenStats, Opened, Opener, SealError, Sealer};
use rand::Rng;

/// The sealing and opening state of one call member.
#[derive(Debug)]
pub struct CallKeys {
    /// Seals what we send: the newest key and our packet counter.
    sealer: Mutex<Sealer>,
    /// Opens what we receive: current and previous key, replay windows,
    /// counters of what was refused.
    opener: Mutex<Opener>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking holder cannot leave the state half-written in a way that
    // matters here (each call is one small update): keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CallKeys {
    /// The keys of `session` starting with `key` of `epoch`. The counter
    /// starts at a random point below 2^31 (see [`Sealer::starting_at`]).
    pub fn new(session: u64, epoch: u32, key: &[u8]) -> Result<Self, SealError> {
        let k = CallKey::new(epoch, key)?;
        let first = rand::rng().random_range(0..1u32 << 31);
        Ok(Self {
            sealer: Mutex::new(Sealer::starting_at(session, k.clone(), first)),
            opener: Mutex::new(Opener::new(k)),
        })
    }

    /// Like [`CallKeys::new`] with a chosen first counter (tests that
    /// compare runs).
    #[cfg(test)]
    pub(crate) fn starting_at(session: u64, epoch: u32, key: &[u8], first: u32) -> Self {
        let k = CallKey::new(epoch, key).expect("32-byte key");
        Self {
            sealer: Mutex::new(Sealer::starting_at(session, k.clone(), first)),
            opener: Mutex::new(Opener::new(k)),
        }
    }

    /// The keys `voice_joined` handed out.
    pub fn from_joined(joined: &VoiceJoined) -> Result<Self, SealError> {
        Self::new(joined.session, joined.epoch, &joined.key)
    }

    /// A `voice_key` arrived: seal with it from now on, and keep opening the
    /// previous epoch for the grace period. An older epoch is ignored.
    pub fn set_key(&self, epoch: u32, key: &[u8]) -> Result<(), SealError> {
        let k = CallKey::new(epoch, key)?;
        lock(&self.opener).set_key(k.clone(), Instant::now());
        lock(&self.sealer).set_key(k);
        Ok(())
    }

    /// The epoch we seal in now.
    pub fn epoch(&self) -> u32 {
        lock(&self.sealer).epoch()
    }

    /// Seals one Opus packet into `out`; returns its counter.
    pub fn seal(&self, ts: u32, opus: &[u8], out: &mut Vec<u8>) -> Result<u32, SealError> {
        lock(&self.sealer).seal(ts, opus, out)
    }

    /// Opens one received audio packet into `out`, or refuses (and counts)
    /// it: forged, replayed, or of an epoch we hold no key for.
    pub fn open(&self, packet: &[u8], out: &mut Vec<u8>) -> Result<Opened, SealError> {
        lock(&self.opener).open(packet, Instant::now(), out)
    }

    /// What the receiving side opened and refused so far.
    pub fn open_stats(&self) -> OpenStats {
        lock(&self.opener).stats
    }
}
