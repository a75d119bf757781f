//! What stands between the voice port and a hostile sender (docs/protocol.md
//! §16.2): bind cookies that prove a UDP source address can receive, and
//! per-source-address token buckets on `bind` packets.
//!
//! Cookies are stateless: a keyed SHA-256 of the address, the session and a
//! time slot under a random secret drawn at start, so a flood of forged binds
//! costs the server no memory. The buckets are a bounded map; sources beyond
//! its size share one overflow bucket. No I/O here.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::protocol::voice::COOKIE_LEN;
use crate::server::config::ServerConfig;
use crate::server::conn::peers::AddrKey;

/// Length of a cookie time slot. A cookie is accepted in its own slot and
/// the next, so it lives 10 to 20 s: long enough for any retry, short
/// enough that a leaked one is soon worthless.
pub(crate) const COOKIE_SLOT: Duration = Duration::from_secs(10);
/// Most source addresses with their own bind bucket, per transport. Beyond
/// this (a spoofed flood from many addresses) new sources share one
/// overflow bucket, so memory stays bounded.
pub(crate) const MAX_SOURCES: usize = 4096;
/// Sustained `bind` packets per second of the overflow bucket that sources
/// beyond [`MAX_SOURCES`] share.
const OVERFLOW_RATE: f64 = 200.0;
/// Sustained `bind_challenge` answers per second, all sources together: the
/// most a member with a valid token can reflect at forged addresses.
pub(crate) const CHALLENGE_RATE: f64 = 1000.0;

/// A token bucket: `tokens` left when last counted at `at`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    /// Tokens left at `at`.
    tokens: f64,
    /// When `tokens` was counted.
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            at: now,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        self.take_n(1.0, rate, burst, now)
    }

    /// Takes `n` tokens if there are that many (a packet of `n` bytes from
    /// a byte budget); takes nothing otherwise, so a refused oversized
    /// packet does not starve the normal ones after it.
    pub fn take_n(&mut self, n: f64, rate: f64, burst: f64, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * rate;
        let tokens = (self.tokens + refill).min(burst);
        self.at = now;
        if tokens >= n {
            self.tokens = tokens - n;
            true
        } else {
            self.tokens = tokens;
            false
        }
    }

    /// Whether the bucket has refilled completely: it then holds nothing a
    /// fresh bucket would not, and may be forgotten.
    fn refilled(&self, rate: f64, burst: f64, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * rate >= burst
    }
}

/// Packets per second of the byte-rate formula's header allowance: 20 ms
/// frames (what the clients send; faster senders pay their extra headers
/// from the margin and the burst).
const BYTE_RATE_PACKETS: f64 = 50.0;
/// Share above the announced bitrate a member may send on average: Opus
/// in VBR mode overshoots its target on loud or noisy passages.
const BYTE_RATE_MARGIN: f64 = 1.25;
/// Seconds of the byte rate a member may send at once (a loud burst, or
/// packets bunched by the network) before the rate applies.
const BYTE_BURST_SECS: f64 = 0.5;

/// A member's audio byte budget for a call of `max_bitrate` bits/s
/// (docs/protocol.md §16.4), as (bytes per second, burst in bytes):
///
/// - rate = 1.25 × `max_bitrate` / 8 + 50 × 37: the Opus payload with a 25 %
///   VBR margin, plus the sealed packet's 21-byte clear header and 16-byte
///   tag at 50 packets/s (UDP/IP headers are not counted: the relay sees
///   datagrams, and they are the same for every payload size);
/// - burst = max(0.5 s of the rate, two largest packets).
///
/// At the default 64 000: 11 850 bytes/s (94.8 kbit/s of sealed packets),
/// burst 5 925 bytes.
pub(crate) fn byte_budget(max_bitrate: u32) -> (f64, f64) {
    use crate::protocol::voice::{AUDIO_HEADER_LEN, MAX_PACKET, TAG_LEN};
    let rate = BYTE_RATE_MARGIN * f64::from(max_bitrate) / 8.0
        + BYTE_RATE_PACKETS * (AUDIO_HEADER_LEN + TAG_LEN) as f64;
    let burst = (rate * BYTE_BURST_SECS).max(2.0 * MAX_PACKET as f64);
    (rate, burst)
}

/// Token buckets per source address group ([`AddrKey`]: an IPv4 address or
/// an IPv6 /64, as for chat connections), bounded in number.
#[derive(Debug)]
pub(crate) struct SourceLimiter {
    /// Sustained packets per second per source.
    rate: f64,
    /// Burst per source.
    burst: f64,
    /// One bucket per recently seen source (at most [`MAX_SOURCES`]).
    sources: HashMap<AddrKey, Bucket>,
    /// Shared by sources that found the map full.
    overflow: Bucket,
}

impl SourceLimiter {
    /// Buckets of `rate` per second with `burst`.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self {
            rate,
            burst,
            sources: HashMap::new(),
            overflow: Bucket::full(burst, now),
        }
    }

    /// Charges one packet from source group `key`; `false` means drop it.
    pub fn allow(&mut self, key: AddrKey, now: Instant) -> bool {
        if let Some(b) = self.sources.get_mut(&key) {
            return b.take(self.rate, self.burst, now);
        }
        if self.sources.len() >= MAX_SOURCES {
            return self
                .overflow
                .take(OVERFLOW_RATE.max(self.rate), self.burst, now);
        }
        let mut b = Bucket::full(self.burst, now);
        let ok = b.take(self.rate, self.burst, now);
        self.sources.insert(key, b);
        ok
    }

    /// Forgets sources whose bucket is full again (run by the sweep).
    pub fn sweep(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.sources.retain(|_, b| !b.refilled(rate, burst, now));
    }

    /// Sources tracked now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.sources.len()
    }
}

/// Makes and checks bind cookies.
pub(crate) struct CookieJar {
    /// Random per server start: cookies of another run (or server) are
    /// worthless, and nobody can compute one without it.
    secret: [u8; 32],
    /// Slot 0 starts here.
    epoch: Instant,
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieJar").finish_non_exhaustive()
    }
}

impl CookieJar {
    /// A jar with a fresh random secret.
    pub fn new(now: Instant) -> Self {
        Self {
            secret: rand::random(),
            epoch: now,
        }
    }

    fn slot(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / COOKIE_SLOT.as_secs()
    }

    /// SHA-256 of secret ‖ slot ‖ IP (16 bytes, IPv4 mapped) ‖ port ‖
    /// session, first 16 bytes. Every input has a fixed length, so the
    /// secret-prefix construction is not open to length extension.
    fn compute(&self, slot: u64, addr: SocketAddr, session: u64) -> [u8; COOKIE_LEN] {
        let ip = match addr.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        let digest = Sha256::new()
            .chain_update(self.secret)
            .chain_update(slot.to_be_bytes())
            .chain_update(ip.octets())
            .chain_update(addr.port().to_be_bytes())
            .chain_update(session.to_be_bytes())
            .finalize();
        let mut cookie = [0u8; COOKIE_LEN];
        cookie.copy_from_slice(&digest[..COOKIE_LEN]);
        cookie
    }

    /// The cookie for `session` at `addr` now.
    pub fn issue(&self, addr: SocketAddr, session: u64, now: Instant) -> [u8; COOKIE_LEN] {
        self.compute(self.slot(now), addr, session)
    }

    /// Whether `cookie` was issued to `addr` for `session` in this time
    /// slot or the one before. Compared without early exit.
    pub fn check(
        &self,
        cookie: &[u8; COOKIE_LEN],
        addr: SocketAddr,
        session: u64,
        now: Instant,
    ) -> bool {
        let slot = self.slot(now);
        let same =
            |c: [u8; COOKIE_LEN]| c.iter().zip(cookie).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0;
        let current = same(self.compute(slot, addr, session));
        let previous = slot > 0 && same(self.compute(slot - 1, addr, session));
        current | previous
    }
}

/// The voice port's defences, owned by the port.
#[derive(Debug)]
pub(crate) struct VoiceGuard {
    /// Bind cookies.
    pub cookies: CookieJar,
    /// `bind` packets per source address over UDP.
    pub udp_binds: SourceLimiter,
    /// `bind` packets per source address over TCP (apart from UDP: a
    /// forged UDP flood in a victim's name must not close its TCP fallback).
    pub tcp_binds: SourceLimiter,
    /// `bind_challenge` answers, all sources together.
    pub challenges: Bucket,
}

impl VoiceGuard {
    /// Fresh defences with the configured rates.
    pub fn new(config: &ServerConfig, now: Instant) -> Self {
        let (rate, burst) = (config.voice_bind_rate_per_sec, config.voice_bind_burst);
        Self {
            cookies: CookieJar::new(now),
            udp_binds: SourceLimiter::new(rate, burst, now),
            tcp_binds: SourceLimiter::new(rate, burst, now),
            challenges: Bucket::full(CHALLENGE_RATE, now),
        }
    }

    /// Takes one challenge from the global budget.
    pub fn take_challenge(&mut self, now: Instant) -> bool {
        self.challenges.take(CHALLENGE_RATE, CHALLENGE_RATE, now)
    }

    /// Forgets idle sources.
    pub fn sweep(&mut self, now: Instant) {
        self.udp_binds.sweep(now);
        self.tcp_binds.sweep(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn a_cookie_is_valid_only_for_its_address_session_and_two_slots() {
        let t0 = Instant::now();
        let jar = CookieJar::new(t0);
        let c = jar.issue(at(1000), 7, t0);
        assert!(jar.check(&c, at(1000), 7, t0));
        assert!(jar.check(&c, at(1000), 7, t0 + COOKIE_SLOT));
        assert!(!jar.check(&c, at(1000), 7, t0 + COOKIE_SLOT * 2));
        assert!(!jar.check(&c, at(1001), 7, t0), "another port");
        assert!(!jar.check(&c, SocketAddr::from(([192, 0, 2, 2], 1000)), 7, t0));
        assert!(!jar.check(&c, at(1000), 8, t0), "another session");
        let other = CookieJar::new(t0);
        assert!(!other.check(&c, at(1000), 7, t0), "another server start");
    }

    #[test]
    fn the_byte_budget_follows_the_documented_formula_and_refuses_only_what_does_not_fit() {
        let (rate, burst) = byte_budget(64_000);
        assert_eq!((rate, burst), (11_850.0, 5_925.0));
        // A tiny bitrate still lets two largest packets through at once.
        assert_eq!(byte_budget(6_000).1, 2.0 * 1312.0);
        let t0 = Instant::now();
        let mut b = Bucket::full(burst, t0);
        // Five 1037-byte packets fit the burst, the sixth does not...
        assert_eq!(
            (0..6).filter(|_| b.take_n(1037.0, rate, burst, t0)).count(),
            5
        );
        // ...but a small one still does: a refused packet takes nothing.
        assert!(b.take_n(197.0, rate, burst, t0));
        // 100 ms later, 1185 bytes more.
        let t1 = t0 + Duration::from_millis(100);
        assert!(b.take_n(1037.0, rate, burst, t1));
        assert!(!b.take_n(1037.0, rate, burst, t1));
    }

    #[test]
    fn a_source_gets_its_burst_then_the_rate_and_others_are_unaffected() {
        let t0 = Instant::now();
        let mut l = SourceLimiter::new(10.0, 4.0, t0);
        let a = AddrKey::of([10, 0, 0, 1].into());
        let b = AddrKey::of([10, 0, 0, 2].into());
        assert_eq!((0..100).filter(|_| l.allow(a, t0)).count(), 4);
        assert!(l.allow(b, t0));
        assert!(l.allow(a, t0 + Duration::from_millis(100)));
        l.sweep(t0 + Duration::from_secs(10));
        assert_eq!(l.len(), 0, "refilled sources are forgotten");
    }

    #[test]
    fn sources_beyond_the_map_share_one_overflow_bucket() {
        let t0 = Instant::now();
        let mut l = SourceLimiter::new(1.0, 2.0, t0);
        for i in 0..MAX_SOURCES as u32 {
            l.allow(AddrKey::of((0x0a00_0000 + i).to_be_bytes().into()), t0);
        }
        assert_eq!(l.len(), MAX_SOURCES);
        let allowed = (0..100u32)
            .filter(|i| l.allow(AddrKey::of((0x0b00_0000 + i).to_be_bytes().into()), t0))
            .count();
        assert_eq!(allowed, 2, "the overflow bucket's burst, then nothing");
        assert_eq!(l.len(), MAX_SOURCES);
    }

    #[test]
    fn ipv6_sources_are_counted_per_64_prefix_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        assert_eq!(AddrKey::of(a), AddrKey::of(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(
            AddrKey::of(mapped),
            AddrKey::of(IpAddr::from([192, 0, 2, 1]))
        );
    }
}
