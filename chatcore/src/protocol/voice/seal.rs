//! Sealed voice (docs/protocol.md §16.5): sealing and opening audio packets
//! with AES-256-GCM under the call key, the receivers' replay window, and
//! the HMAC that proves a voice token in a `bind`. No I/O and no clock of its
//! own (callers pass `Instant`s), so the server's tests, the client engine
//! and the benchmarks share it.
//!
//! - Nonce (12 bytes) = `session:u64 ‖ counter:u32`, big-endian. A key
//!   belongs to one call epoch, a session to one member, and a sender never
//!   reuses a counter, so no nonce repeats under a key.
//! - Associated data = the whole 21-byte clear header (type, session,
//!   epoch, counter, ts): changing any header bit makes the tag fail.
//! - Receivers ([`Opener`]) keep the current key and, for [`GRACE`] after a
//!   newer one arrived, the previous one; they refuse a counter already seen
//!   (or older than the [`WINDOW`] newest) per (session, epoch), counting
//!   forged and replayed packets apart.

use std::time::{Duration, Instant};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit, Nonce, Tag};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use super::{
    AUDIO_HEADER_LEN, COOKIE_LEN, KEY_LEN, MAC_LEN, MAX_OPUS_PAYLOAD, TAG_LEN, VoicePacket,
    write_audio_header,
};

/// How long a receiver still opens packets of the previous epoch after a
/// newer key arrived: packets in flight when a sender switched still play.
pub const GRACE: Duration = Duration::from_secs(2);
/// Width of the replay window in packets (RFC 4303 style): a counter this
/// far or more behind the newest one seen of the same (session, epoch) is
/// refused as a replay.
pub const WINDOW: u32 = 128;
/// Replay windows an [`Opener`] keeps at most (one per speaker and epoch);
/// the least recently used goes beyond this. Only authentic packets create
/// one, so only call members fill it.
pub const MAX_WINDOWS: usize = 256;
/// Domain separation of the bind proof (§16.2).
pub const BIND_LABEL: &[u8] = b"chat voice bind v2";

type HmacSha256 = Hmac<Sha256>;

/// Why sealing or opening failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SealError {
    /// A key of the wrong length came from the server.
    #[error("a call key must be {KEY_LEN} bytes, got {0}")]
    KeyLength(usize),
    /// The Opus packet is empty or longer than 1275 bytes.
    #[error("an Opus packet must be 1..={MAX_OPUS_PAYLOAD} bytes, got {0}")]
    PayloadLength(usize),
    /// The sender used up all 2^32 counters of its session (about 2.7 years
    /// at 50 packets per second): it must join again.
    #[error("the voice packet counter is exhausted; join the call again")]
    CounterExhausted,
    /// Not an audio packet of a valid length.
    #[error("not a sealed audio packet")]
    Malformed,
    /// Sealed under an epoch this receiver has no (or no longer a) key for.
    #[error("no key for voice epoch {0}")]
    UnknownEpoch(u32),
    /// The tag did not verify: wrong key, or a changed header or body.
    #[error("voice packet failed authentication")]
    Forged,
    /// The counter was already seen, or is older than the replay window.
    #[error("replayed voice packet")]
    Replayed,
}

/// One epoch's call key, ready to seal and open.
#[derive(Clone)]
pub struct CallKey {
    /// The epoch the packets sealed with it carry.
    epoch: u32,
    /// The expanded AES-256-GCM key.
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for CallKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("CallKey")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl CallKey {
    /// The key of `epoch` from its 32 bytes (`voice_joined` / `voice_key`).
    pub fn new(epoch: u32, key: &[u8]) -> Result<Self, SealError> {
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| SealError::KeyLength(key.len()))?;
        Ok(Self { epoch, cipher })
    }

    /// Its epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }
}

fn nonce(session: u64, counter: u32) -> Nonce<Aes256Gcm> {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&session.to_be_bytes());
    n[8..].copy_from_slice(&counter.to_be_bytes());
    n.into()
}

/// Appends one sealed audio packet to `out`: the clear header, then `opus`
/// encrypted, then the tag. The caller guarantees `counter` was never used
/// by `session` under this key ([`Sealer`] does).
pub fn seal(
    key: &CallKey,
    session: u64,
    counter: u32,
    ts: u32,
    opus: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), SealError> {
    if opus.is_empty() || opus.len() > MAX_OPUS_PAYLOAD {
        return Err(SealError::PayloadLength(opus.len()));
    }
    let start = out.len();
    write_audio_header(out, session, key.epoch, counter, ts);
    out.extend_from_slice(opus);
    let (header, body) = out[start..].split_at_mut(AUDIO_HEADER_LEN);
    let tag = key
        .cipher
        .encrypt_inout_detached(&nonce(session, counter), header, body.into())
        .map_err(|_| SealError::PayloadLength(opus.len()))?;
    out.extend_from_slice(tag.as_slice());
    Ok(())
}

/// What an authentic audio packet said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// The speaker.
    pub session: u64,
    /// The epoch it was sealed in.
    pub epoch: u32,
    /// The speaker's packet counter.
    pub counter: u32,
    /// Timestamp in 48 kHz samples.
    pub ts: u32,
}

/// Opens `packet` (a whole audio packet) with `key` into `out` (replaced by
/// the Opus bytes). No replay check: see [`Opener`].
pub fn open(key: &CallKey, packet: &[u8], out: &mut Vec<u8>) -> Result<Opened, SealError> {
    let Ok(VoicePacket::Audio {
        session,
        epoch,
        counter,
        ts,
        sealed,
    }) = VoicePacket::parse(packet)
    else {
        return Err(SealError::Malformed);
    };
    if epoch != key.epoch {
        return Err(SealError::UnknownEpoch(epoch));
    }
    let (body, tag) = sealed.split_at(sealed.len() - TAG_LEN);
    let tag = Tag::<Aes256Gcm>::try_from(tag).map_err(|_| SealError::Malformed)?;
    out.clear();
    out.extend_from_slice(body);
    let header = &packet[..AUDIO_HEADER_LEN];
    if key
        .cipher
        .decrypt_inout_detached(
            &nonce(session, counter),
            header,
            out.as_mut_slice().into(),
            &tag,
        )
        .is_err()
    {
        out.clear();
        return Err(SealError::Forged);
    }
    Ok(Opened {
        session,
        epoch,
        counter,
        ts,
    })
}

/// The sending side of one member: its session, the newest key, and its
/// packet counter, which only ever grows (across epochs too), so no nonce
/// repeats whatever the keys.
#[derive(Debug, Clone)]
pub struct Sealer {
    /// Our session (every packet carries it, and it is half the nonce).
    session: u64,
    /// The newest key received.
    key: CallKey,
    /// The next packet's counter; `None` once all 2^32 were used.
    next: Option<u32>,
}

impl Sealer {
    /// A sender of `session` starting with `key`, counter 0.
    pub fn new(session: u64, key: CallKey) -> Self {
        Self {
            session,
            key,
            next: Some(0),
        }
    }

    /// A sender of `session` whose first counter is `first` (a client may
    /// start at a random point below 2^31, as RTP does, so a rejoining
    /// member's stream does not look like its old one to a jitter buffer).
    pub fn starting_at(session: u64, key: CallKey, first: u32) -> Self {
        Self {
            session,
            key,
            next: Some(first),
        }
    }

    /// Switches to `key` if it is newer than the one in use (epochs compare
    /// with wrapping, like RTP sequence numbers); returns whether it did.
    pub fn set_key(&mut self, key: CallKey) -> bool {
        if newer(key.epoch, self.key.epoch) {
            self.key = key;
            true
        } else {
            false
        }
    }

    /// The epoch packets are sealed in now.
    pub fn epoch(&self) -> u32 {
        self.key.epoch
    }

    /// Seals one Opus packet into `out` (appended); returns its counter.
    pub fn seal(&mut self, ts: u32, opus: &[u8], out: &mut Vec<u8>) -> Result<u32, SealError> {
        let counter = self.next.ok_or(SealError::CounterExhausted)?;
        seal(&self.key, self.session, counter, ts, opus, out)?;
        self.next = counter.checked_add(1);
        Ok(counter)
    }
}

/// Whether epoch `a` is after `b` (serial-number arithmetic, RFC 1982).
fn newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// A replay window of one (session, epoch).
#[derive(Debug, Clone, Copy)]
struct Window {
    /// The speaker.
    session: u64,
    /// The epoch.
    epoch: u32,
    /// The highest counter accepted.
    top: u32,
    /// Bit `i` set: counter `top - i` was accepted.
    seen: u128,
    /// Last use, for the least-recently-used eviction.
    used: Instant,
}

impl Window {
    /// Whether `counter` would be accepted (not seen, not too old).
    fn fresh(&self, counter: u32) -> bool {
        if counter > self.top {
            return true;
        }
        let behind = self.top - counter;
        behind < WINDOW && self.seen & (1u128 << behind) == 0
    }

    /// Marks `counter` accepted.
    fn mark(&mut self, counter: u32) {
        if counter > self.top {
            let ahead = counter - self.top;
            self.seen = if ahead >= WINDOW {
                0
            } else {
                self.seen << ahead
            };
            self.seen |= 1;
            self.top = counter;
        } else {
            self.seen |= 1u128 << (self.top - counter);
        }
    }
}

/// What a receiver refused, by reason. Never played, only counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenStats {
    /// Authentic, fresh packets handed on.
    pub opened: u64,
    /// Packets whose tag did not verify (wrong key, or changed bytes).
    pub forged: u64,
    /// Packets whose counter was already seen or fell behind the window.
    pub replayed: u64,
    /// Packets of an epoch with no key here (too old, past the grace, or
    /// newer than the newest key received yet).
    pub unknown_epoch: u64,
    /// Bytes that are not an audio packet at all.
    pub malformed: u64,
}

/// The receiving side of one member: the current key, the previous one
/// during its grace period, the replay windows and the counters.
#[derive(Debug)]
pub struct Opener {
    /// The newest key received.
    current: CallKey,
    /// The key before it, and until when it still opens packets.
    previous: Option<(CallKey, Instant)>,
    /// Replay windows per (session, epoch), at most [`MAX_WINDOWS`].
    windows: Vec<Window>,
    /// What was refused.
    pub stats: OpenStats,
}

impl Opener {
    /// A receiver starting with `key`.
    pub fn new(key: CallKey) -> Self {
        Self {
            current: key,
            previous: None,
            windows: Vec::new(),
            stats: OpenStats::default(),
        }
    }

    /// Takes a newer key: the current one becomes the previous one, opening
    /// packets until `now` + [`GRACE`]. An older or repeated epoch is
    /// ignored. Returns whether the key was taken.
    pub fn set_key(&mut self, key: CallKey, now: Instant) -> bool {
        if !newer(key.epoch, self.current.epoch) {
            return false;
        }
        let old = std::mem::replace(&mut self.current, key);
        self.previous = Some((old, now + GRACE));
        let (cur, prev) = (self.current.epoch, self.previous_epoch(now));
        self.windows
            .retain(|w| w.epoch == cur || Some(w.epoch) == prev);
        true
    }

    /// The newest epoch received.
    pub fn epoch(&self) -> u32 {
        self.current.epoch
    }

    fn previous_epoch(&self, now: Instant) -> Option<u32> {
        self.previous
            .as_ref()
            .filter(|(_, until)| now < *until)
            .map(|(k, _)| k.epoch)
    }

    /// Opens one audio packet into `out` (the Opus bytes), or refuses it and
    /// counts why. A refused packet must not be played.
    pub fn open(
        &mut self,
        packet: &[u8],
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Result<Opened, SealError> {
        let (session, epoch, counter) = match VoicePacket::parse(packet) {
            Ok(VoicePacket::Audio {
                session,
                epoch,
                counter,
                ..
            }) => (session, epoch, counter),
            _ => {
                self.stats.malformed += 1;
                return Err(SealError::Malformed);
            }
        };
        let key = if epoch == self.current.epoch {
            &self.current
        } else {
            match &self.previous {
                Some((k, until)) if k.epoch == epoch && now < *until => k,
                _ => {
                    self.stats.unknown_epoch += 1;
                    return Err(SealError::UnknownEpoch(epoch));
                }
            }
        };
        let slot = self
            .windows
            .iter()
            .position(|w| w.session == session && w.epoch == epoch);
        // The window is only read before the tag is checked, and only
        // written after: a forged packet cannot move it.
        if let Some(i) = slot
            && !self.windows[i].fresh(counter)
        {
            self.stats.replayed += 1;
            return Err(SealError::Replayed);
        }
        match open(key, packet, out) {
            Ok(opened) => {
                match slot {
                    Some(i) => {
                        self.windows[i].mark(counter);
                        self.windows[i].used = now;
                    }
                    None => self.new_window(session, epoch, counter, now),
                }
                self.stats.opened += 1;
                Ok(opened)
            }
            Err(e) => {
                self.stats.forged += 1;
                Err(e)
            }
        }
    }

    fn new_window(&mut self, session: u64, epoch: u32, counter: u32, now: Instant) {
        if self.windows.len() >= MAX_WINDOWS
            && let Some(i) = self
                .windows
                .iter()
                .enumerate()
                .min_by_key(|(_, w)| w.used)
                .map(|(i, _)| i)
        {
            self.windows.swap_remove(i);
        }
        self.windows.push(Window {
            session,
            epoch,
            top: counter,
            seen: 1,
            used: now,
        });
    }
}

/// The bind proof (§16.2): the first 16 bytes of
/// HMAC-SHA256(key = token, "chat voice bind v2" ‖ session:u64 ‖ cookie),
/// the cookie's 16 bytes present only in the 41-byte bind.
pub fn bind_mac(token: &[u8], session: u64, cookie: Option<&[u8; COOKIE_LEN]>) -> [u8; MAC_LEN] {
    let tag = bind_hmac(token, session, cookie).finalize().into_bytes();
    let mut mac = [0u8; MAC_LEN];
    mac.copy_from_slice(&tag[..MAC_LEN]);
    mac
}

/// Whether `mac` is the bind proof of `token` for `session` and `cookie`,
/// compared in constant time.
pub fn bind_mac_ok(
    token: &[u8],
    session: u64,
    cookie: Option<&[u8; COOKIE_LEN]>,
    mac: &[u8; MAC_LEN],
) -> bool {
    bind_hmac(token, session, cookie)
        .verify_truncated_left(mac)
        .is_ok()
}

fn bind_hmac(token: &[u8], session: u64, cookie: Option<&[u8; COOKIE_LEN]>) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut h = match HmacSha256::new_from_slice(token) {
        Ok(h) => h,
        Err(_) => unreachable!("HMAC accepts every key length"),
    };
    h.update(BIND_LABEL);
    h.update(&session.to_be_bytes());
    if let Some(c) = cookie {
        h.update(c);
    }
    h
}

#[cfg(test)]
mod tests;
