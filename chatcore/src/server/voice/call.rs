//! The voice call: who is in it, their tokens, where their audio comes from.
//!
//! This is bookkeeping only (no I/O): `relay` decides where packets go and
//! `session::voice` answers the chat-connection messages. A call is small
//! (`max_call_members`, 32 by default), so members are a vector in joining
//! order and lookups are linear scans: cheaper than any map at this size,
//! and the order is the one `voice_state` lists.

use std::net::SocketAddr;
use std::time::Instant;

use super::guard::{Bucket, byte_budget};
use crate::protocol::voice::seal::bind_mac_ok;
use crate::protocol::voice::{COOKIE_LEN, CallMember, KEY_LEN, MAC_LEN, TOKEN_LEN};

/// Where a member's voice packets come from and go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VoicePath {
    /// A UDP source address on the voice port.
    Udp(SocketAddr),
    /// A TCP voice connection (key in the relay's connection slab).
    Tcp(usize),
}

/// Audio packets a member may send per second before the excess is dropped
/// (a 20 ms frame rate is 50/s; this leaves room for 10 ms frames and bursts).
const AUDIO_RATE: f64 = 100.0;
/// Burst allowance of the audio rate limit, in packets.
const AUDIO_BURST: f64 = 50.0;

/// The byte budget of a member before [`Member::set_max_bitrate`]: the
/// default `voice_max_bitrate`.
const DEFAULT_MAX_BITRATE: u32 = 64_000;

/// One member of the call.
#[derive(Debug)]
pub(crate) struct Member {
    /// The member's chat connection, to find it when the connection ends.
    pub key: usize,
    /// Its chat session: what its packets carry.
    pub session: u64,
    /// Its name, for `voice_state`.
    pub name: String,
    /// The secret of the current `voice_joined`: only a `bind` proving it
    /// (HMAC) may claim this session on the voice port.
    pub token: [u8; TOKEN_LEN],
    /// Set by `voice_mute`; audio of a muted member is dropped.
    pub muted: bool,
    /// The bound path, once a `bind` was accepted.
    pub path: Option<VoicePath>,
    /// Last packet from the bound path (or the join, before binding): the
    /// voice heartbeat that finds dead paths.
    pub last_heard: Instant,
    /// Audio rate limit.
    bucket: Bucket,
    /// Audio byte budget: the packet rate alone lets a member send
    /// oversized packets that every listener must download.
    bytes: Bucket,
    /// Bytes per second and burst of `bytes`, from the call's maximum
    /// bitrate when the member joined ([`byte_budget`]).
    byte_rate: (f64, f64),
}

impl Member {
    /// Takes one audio packet from the member's rate budget.
    pub fn take_audio(&mut self, now: Instant) -> bool {
        self.bucket.take(AUDIO_RATE, AUDIO_BURST, now)
    }

    /// Takes an audio packet of `len` bytes from the member's byte budget;
    /// `false`: over the byte rate, drop it.
    pub fn take_bytes(&mut self, len: usize, now: Instant) -> bool {
        let (rate, burst) = self.byte_rate;
        self.bytes.take_n(len as f64, rate, burst, now)
    }

    /// Sets the byte budget from the call's maximum bitrate (the one its
    /// `voice_joined` announces), starting full.
    pub fn set_max_bitrate(&mut self, max_bitrate: u32, now: Instant) {
        self.byte_rate = byte_budget(max_bitrate);
        self.bytes = Bucket::full(self.byte_rate.1, now);
    }
}

/// The room's one voice call.
#[derive(Debug)]
pub(crate) struct Call {
    /// Members in joining order.
    members: Vec<Member>,
    /// The current key epoch: audio of this epoch and the one before it is
    /// relayed, any other is dropped (§16.5).
    epoch: u32,
    /// Whether `epoch - 1` was ever handed out (it is relayed only then).
    has_previous: bool,
    /// The current call key, handed out in `voice_joined` / `voice_key`.
    key: [u8; KEY_LEN],
}

impl Default for Call {
    fn default() -> Self {
        Self {
            members: Vec::new(),
            // A random start: epochs of calls before a restart are not
            // mistaken for this one's.
            epoch: rand::random(),
            has_previous: false,
            key: rand::random(),
        }
    }
}

impl Call {
    /// Members now.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether nobody is in the call.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member on chat connection `key`.
    pub fn by_key_mut(&mut self, key: usize) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.key == key)
    }

    /// Whether `mac` proves the current token of `session` for `cookie`
    /// (constant-time comparison): the first check of every `bind`, before
    /// any answer.
    pub fn proves_token(
        &self,
        session: u64,
        mac: &[u8; MAC_LEN],
        cookie: Option<&[u8; COOKIE_LEN]>,
    ) -> bool {
        self.members
            .iter()
            .find(|m| m.session == session)
            .is_some_and(|m| bind_mac_ok(&m.token, session, cookie, mac))
    }

    /// Draws a fresh key for the next epoch (a member joined or left):
    /// returns the new epoch and key for `voice_joined` / `voice_key`.
    pub fn rekey(&mut self) -> (u32, [u8; KEY_LEN]) {
        self.epoch = self.epoch.wrapping_add(1);
        self.has_previous = true;
        self.key = rand::random();
        (self.epoch, self.key)
    }

    /// Whether audio sealed in `epoch` is relayed: the current epoch, or the
    /// previous one while senders switch.
    pub fn relays_epoch(&self, epoch: u32) -> bool {
        epoch == self.epoch || (self.has_previous && epoch == self.epoch.wrapping_sub(1))
    }

    /// The current epoch (tests send audio of it).
    #[cfg(test)]
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Chat connections of every member but `key`: who gets `voice_key`.
    pub fn member_keys_except(&self, key: usize) -> Vec<usize> {
        self.members
            .iter()
            .map(|m| m.key)
            .filter(|&k| k != key)
            .collect()
    }

    /// Index of the member bound to `path` whose session is `session`: the
    /// check every audio and probe packet passes.
    pub fn bound(&self, path: VoicePath, session: u64) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.session == session && m.path == Some(path))
    }

    /// The member at `index`.
    pub fn at_mut(&mut self, index: usize) -> &mut Member {
        &mut self.members[index]
    }

    /// Adds a member (or, if it is in already, gives it a new token and
    /// drops its binding). Returns the old path, which the relay closes if
    /// it was a TCP connection.
    pub fn join(
        &mut self,
        key: usize,
        session: u64,
        name: &str,
        token: [u8; TOKEN_LEN],
        now: Instant,
    ) -> Option<VoicePath> {
        if let Some(m) = self.by_key_mut(key) {
            m.token = token;
            m.last_heard = now;
            return m.path.take();
        }
        // The default bitrate's budget until the session sets the
        // configured one (`set_max_bitrate`).
        let default_budget = byte_budget(DEFAULT_MAX_BITRATE);
        self.members.push(Member {
            key,
            session,
            name: name.to_owned(),
            token,
            muted: false,
            path: None,
            last_heard: now,
            bucket: Bucket::full(AUDIO_BURST, now),
            bytes: Bucket::full(default_budget.1, now),
            byte_rate: default_budget,
        });
        None
    }

    /// Removes the member on chat connection `key`.
    pub fn leave(&mut self, key: usize) -> Option<Member> {
        let i = self.members.iter().position(|m| m.key == key)?;
        Some(self.members.remove(i))
    }

    /// Binds `session` (whose bind proof was checked) to `path`. Any other
    /// member bound to the same path loses that binding (one path, one
    /// session). Returns the member's previous path (`Some(None)` if it had
    /// none), or `None` if the session is not in the call.
    pub fn bind(
        &mut self,
        session: u64,
        path: VoicePath,
        now: Instant,
    ) -> Option<Option<VoicePath>> {
        let i = self.members.iter().position(|m| m.session == session)?;
        for (j, other) in self.members.iter_mut().enumerate() {
            if j != i && other.path == Some(path) {
                other.path = None;
            }
        }
        let m = &mut self.members[i];
        m.last_heard = now;
        Some(m.path.replace(path))
    }

    /// Unbinds whoever is bound to `path` (its TCP connection closed).
    /// Returns whether someone was.
    pub fn unbind(&mut self, path: VoicePath) -> bool {
        let mut any = false;
        for m in &mut self.members {
            if m.path == Some(path) {
                m.path = None;
                any = true;
            }
        }
        any
    }

    /// Paths of every bound member except the one at `index`: where its
    /// audio goes.
    pub fn listeners(&self, index: usize) -> impl Iterator<Item = VoicePath> + '_ {
        self.members
            .iter()
            .enumerate()
            .filter(move |&(j, _)| j != index)
            .filter_map(|(_, m)| m.path)
    }

    /// Removes members whose voice path was silent since `cutoff`; returns
    /// them.
    pub fn expire(&mut self, cutoff: Instant) -> Vec<Member> {
        let (gone, kept) = std::mem::take(&mut self.members)
            .into_iter()
            .partition(|m| m.last_heard < cutoff);
        self.members = kept;
        gone
    }

    /// The call as `voice_state` lists it.
    pub fn state(&self) -> Vec<CallMember> {
        self.members
            .iter()
            .map(|m| CallMember {
                session: m.session,
                name: m.name.clone(),
                muted: m.muted,
                connected: m.path.is_some(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addr(port: u16) -> VoicePath {
        VoicePath::Udp(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn only_the_current_token_binds_and_a_rejoin_drops_the_binding() {
        let now = Instant::now();
        let mut call = Call::default();
        call.join(1, 10, "a", [1; TOKEN_LEN], now);
        let proof = |t: u8| crate::protocol::voice::seal::bind_mac(&[t; TOKEN_LEN], 10, None);
        assert!(!call.proves_token(10, &proof(2), None));
        assert!(call.proves_token(10, &proof(1), None));
        assert_eq!(call.bind(10, addr(1), now), Some(None));
        assert_eq!(call.bound(addr(1), 10), Some(0));
        assert_eq!(call.bound(addr(1), 11), None);
        assert_eq!(call.join(1, 10, "a", [3; TOKEN_LEN], now), Some(addr(1)));
        assert_eq!(call.bound(addr(1), 10), None);
        assert!(!call.proves_token(10, &proof(1), None));
        assert_eq!(call.bind(11, addr(1), now), None);
        assert_eq!(call.len(), 1);
    }

    #[test]
    fn audio_goes_to_every_bound_member_but_the_speaker() {
        let now = Instant::now();
        let mut call = Call::default();
        for (k, port) in [(1, 1), (2, 2), (3, 3)] {
            call.join(k, k as u64, "x", [k as u8; TOKEN_LEN], now);
            if port != 3 {
                call.bind(k as u64, addr(port), now);
            }
        }
        let to: Vec<_> = call.listeners(0).collect();
        assert_eq!(to, vec![addr(2)]);
        // A bind of another session on the same path takes it over.
        call.bind(3, addr(2), now);
        assert_eq!(call.bound(addr(2), 2), None);
        assert_eq!(call.bound(addr(2), 3), Some(2));
    }

    #[test]
    fn only_the_current_and_previous_epoch_are_relayed_after_a_rekey() {
        let mut call = Call::default();
        let first = call.epoch;
        assert!(call.relays_epoch(first));
        assert!(!call.relays_epoch(first.wrapping_sub(1)));
        let (e, k) = call.rekey();
        assert_eq!(e, first.wrapping_add(1));
        assert_eq!(k, call.key);
        assert!(call.relays_epoch(e) && call.relays_epoch(first));
        let (e2, k2) = call.rekey();
        assert_ne!(k, k2);
        assert!(call.relays_epoch(e2) && call.relays_epoch(e));
        assert!(!call.relays_epoch(first));
    }

    #[test]
    fn silent_members_expire_and_the_rate_limit_refills() {
        let t0 = Instant::now();
        let mut call = Call::default();
        call.join(1, 1, "a", [1; TOKEN_LEN], t0);
        call.join(2, 2, "b", [2; TOKEN_LEN], t0 + Duration::from_secs(5));
        let gone = call.expire(t0 + Duration::from_secs(1));
        assert_eq!(gone.len(), 1);
        assert_eq!(call.state()[0].name, "b");
        let m = call.at_mut(0);
        let taken = (0..200).filter(|_| m.take_audio(t0)).count();
        assert_eq!(taken, AUDIO_BURST as usize);
        assert!(m.take_audio(t0 + Duration::from_millis(100)));
    }
}
