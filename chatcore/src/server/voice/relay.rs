//! What one packet on the voice port does (docs/protocol.md §16.2): the
//! relay's rules, without sockets.
//!
//! Given a packet and the path it came from, [`Relay::packet`] decides where
//! it goes (the other call members' paths, a reply to the sender, nowhere)
//! and hands each send to a [`VoiceOut`], which the reactor implements over
//! the voice port's UDP socket and TCP connections. Audio is forwarded while
//! the event is handled, not at the end of the turn like chat: a packet's
//! only value is being on time. Nothing waits for a slow listener either: a
//! send the socket would not take at once is dropped (and counted).
//!
//! A `bind` proves the member's token with an HMAC and binds only after its
//! source address proved it receives (the cookie of a `bind_challenge`
//! echoed from it under the HMAC, see [`super::guard`]), over UDP and TCP
//! alike, so a bind captured on the wire cannot be replayed from elsewhere.
//! Audio is sealed (§16.5); the relay reads only its clear header, drops
//! epochs other than the call's current and previous one, and forwards the
//! bytes unchanged.

use std::net::SocketAddr;
use std::time::Instant;

use super::VoicePath;
use super::call::Call;
use super::guard::VoiceGuard;
use crate::protocol::voice::{COOKIE_LEN, MAC_LEN, VoicePacket};
use crate::server::conn::peers::AddrKey;
use crate::server::handle::ServerStats;

/// Where the relay's packets go: the voice port's sockets, owned by the
/// reactor and the TCP voice connections.
pub(crate) trait VoiceOut {
    /// Sends one packet to `path` now (UDP) or queues and writes it (TCP).
    /// `false` if it was dropped (socket full, queue at its cap, gone).
    fn send(&mut self, path: VoicePath, packet: &[u8]) -> bool;
    /// The source address group and the peer address of TCP voice
    /// connection `key`, if open.
    fn tcp_source(&self, key: usize) -> Option<(AddrKey, SocketAddr)>;
    /// Notes that TCP voice connection `key` is now bound to `session`.
    fn tcp_bound(&mut self, key: usize, session: u64);
    /// Closes TCP voice connection `key` (the socket; the call is the
    /// relay's business).
    fn close_tcp(&mut self, key: usize);
}

/// The relay's state for one packet: the call, the bind defences, the
/// counters.
pub(crate) struct Relay<'a> {
    /// Who is in the call, their tokens and bound paths.
    pub call: &'a mut Call,
    /// Bind cookies and per-source bind limits.
    pub guard: &'a mut VoiceGuard,
    /// `voice_*` counters.
    pub stats: &'a mut ServerStats,
    /// Where the audio packet being relayed goes; kept by the reactor to
    /// reuse its allocation from packet to packet.
    pub relay_to: &'a mut Vec<VoicePath>,
    /// Time at the start of this loop turn.
    pub now: Instant,
}

impl Relay<'_> {
    /// What one packet from `path` does. Returns whether the call's
    /// visible state changed (a path bound or unbound): the caller then
    /// sends `voice_state` to the room.
    pub(crate) fn packet(
        &mut self,
        path: VoicePath,
        bytes: &[u8],
        out: &mut impl VoiceOut,
    ) -> bool {
        let now = self.now;
        let Ok(packet) = VoicePacket::parse(bytes) else {
            self.stats.voice_dropped += 1;
            return false;
        };
        match packet {
            VoicePacket::Audio { session, epoch, .. } => {
                let Some(i) = self.call.bound(path, session) else {
                    self.stats.voice_dropped += 1;
                    return false;
                };
                if !self.call.relays_epoch(epoch) {
                    self.call.at_mut(i).last_heard = now;
                    self.stats.voice_stale_epoch += 1;
                    return false;
                }
                let member = self.call.at_mut(i);
                member.last_heard = now;
                if member.muted || !member.take_audio(now) {
                    self.stats.voice_dropped += 1;
                    return false;
                }
                if !member.take_bytes(bytes.len(), now) {
                    self.stats.voice_byte_limited += 1;
                    return false;
                }
                self.stats.voice_in += 1;
                // The listeners go into a reused buffer: a fresh vector per
                // packet is an allocation on the relay's hot path.
                self.relay_to.clear();
                self.relay_to.extend(self.call.listeners(i));
                for &dest in self.relay_to.iter() {
                    if out.send(dest, bytes) {
                        self.stats.voice_relayed += 1;
                    } else {
                        self.stats.voice_dropped += 1;
                    }
                }
                false
            }
            VoicePacket::Bind {
                session,
                mac,
                cookie,
            } => self.bind(path, session, &mac, cookie.as_ref(), out),
            VoicePacket::Probe { session, nonce } => {
                let Some(i) = self.call.bound(path, session) else {
                    self.stats.voice_dropped += 1;
                    return false;
                };
                self.call.at_mut(i).last_heard = now;
                let ack = VoicePacket::ProbeAck { session, nonce }.to_vec();
                if !out.send(path, &ack) {
                    self.stats.voice_dropped += 1;
                }
                false
            }
            VoicePacket::Bound { .. }
            | VoicePacket::ProbeAck { .. }
            | VoicePacket::BindChallenge { .. } => {
                self.stats.voice_dropped += 1;
                false
            }
        }
    }

    /// A `bind` (docs/protocol.md §16.2): charged to its source address,
    /// its HMAC checked against the session's token (over the cookie it
    /// carries, if any), then bound only from a proven address (the cookie
    /// echoed, or the path already bound); otherwise answered with a
    /// `bind_challenge` no larger than the bind. UDP and TCP alike.
    fn bind(
        &mut self,
        path: VoicePath,
        session: u64,
        mac: &[u8; MAC_LEN],
        cookie: Option<&[u8; COOKIE_LEN]>,
        out: &mut impl VoiceOut,
    ) -> bool {
        let now = self.now;
        let (source, addr) = match path {
            VoicePath::Udp(addr) => (AddrKey::of(addr.ip()), addr),
            VoicePath::Tcp(k) => match out.tcp_source(k) {
                Some(got) => got,
                None => return false,
            },
        };
        let limiter = match path {
            VoicePath::Udp(_) => &mut self.guard.udp_binds,
            VoicePath::Tcp(_) => &mut self.guard.tcp_binds,
        };
        if !limiter.allow(source, now) {
            self.stats.voice_binds_limited += 1;
            // A TCP connection guessing past its source's budget goes.
            if let VoicePath::Tcp(k) = path {
                out.close_tcp(k);
                return self.call.unbind(path);
            }
            return false;
        }
        if !self.call.proves_token(session, mac, cookie) {
            self.stats.voice_dropped += 1;
            return false;
        }
        let proven = self.call.bound(path, session).is_some()
            || cookie.is_some_and(|c| self.guard.cookies.check(c, addr, session, now));
        if !proven {
            if !self.guard.take_challenge(now) {
                self.stats.voice_binds_limited += 1;
                return false;
            }
            let cookie = self.guard.cookies.issue(addr, session, now);
            let challenge = VoicePacket::BindChallenge { session, cookie }.to_vec();
            if out.send(path, &challenge) {
                self.stats.voice_challenges += 1;
            } else {
                self.stats.voice_dropped += 1;
            }
            return false;
        }
        let Some(old) = self.call.bind(session, path, now) else {
            self.stats.voice_dropped += 1;
            return false;
        };
        if let VoicePath::Tcp(k) = path {
            out.tcp_bound(k, session);
        }
        let mut changed = false;
        if let Some(VoicePath::Tcp(old_key)) = old
            && old != Some(path)
        {
            out.close_tcp(old_key);
            changed |= self.call.unbind(VoicePath::Tcp(old_key));
        }
        if !out.send(path, &VoicePacket::Bound { session }.to_vec()) {
            self.stats.voice_dropped += 1;
        }
        if old != Some(path) {
            tracing::debug!(session, ?path, "voice path bound");
            changed = true;
        }
        changed
    }
}

#[cfg(test)]
mod tests;
