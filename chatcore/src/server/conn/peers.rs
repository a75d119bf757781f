//! Per-address bookkeeping: how many connections (and how many not yet
//! logged in) each client address holds, and a per-address log budget.
//!
//! Addresses are grouped the way one party usually holds them: an IPv4
//! address on its own, an IPv6 address by its /64 prefix (one host or LAN
//! typically gets a whole /64, so counting single IPv6 addresses would let it
//! take the server with 2^64 of them). IPv4-mapped IPv6 addresses count as
//! the IPv4 address.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The group an address is counted in: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddrKey {
    /// One IPv4 address (also IPv4-mapped IPv6).
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6([u8; 8]),
}

impl AddrKey {
    /// The group `ip` belongs to.
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.octets()),
                None => {
                    let o = v6.octets();
                    Self::V6([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
                }
            },
        }
    }
}

impl fmt::Display for AddrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(o) => write!(f, "{}.{}.{}.{}", o[0], o[1], o[2], o[3]),
            Self::V6(o) => {
                for pair in o.chunks(2) {
                    write!(f, "{:x}:", u16::from_be_bytes([pair[0], pair[1]]))?;
                }
                f.write_str(":/64")
            }
        }
    }
}

/// Connections of one address group.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// Open connections (any phase).
    conns: u32,
    /// Of those, connections that have not logged in yet.
    handshakes: u32,
}

/// Why a connection from an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The address already holds `max_connections_per_address`.
    Connections,
    /// The address already holds `max_handshakes_per_address` connections
    /// that have not logged in.
    Handshakes,
}

/// Connection counts per address group. An entry exists only while the
/// group has a connection, so the table is at most as large as the
/// connection slab.
#[derive(Debug, Default)]
pub(crate) struct AddrCounts {
    /// Counts per group with at least one connection.
    map: HashMap<AddrKey, Counts>,
}

impl AddrCounts {
    /// Counts a new (not yet logged in) connection from `key`, unless that
    /// would pass one of the caps.
    pub(crate) fn admit(
        &mut self,
        key: AddrKey,
        max_conns: usize,
        max_handshakes: usize,
    ) -> Result<(), Refusal> {
        let c = self.map.entry(key).or_default();
        if c.conns as usize >= max_conns {
            return Err(Refusal::Connections);
        }
        if c.handshakes as usize >= max_handshakes {
            return Err(Refusal::Handshakes);
        }
        c.conns += 1;
        c.handshakes += 1;
        Ok(())
    }

    /// A connection of `key` logged in: it no longer counts as a handshake.
    pub(crate) fn logged_in(&mut self, key: AddrKey) {
        if let Some(c) = self.map.get_mut(&key) {
            c.handshakes = c.handshakes.saturating_sub(1);
        }
    }

    /// A connection of `key` closed; `in_handshake` if it never logged in.
    pub(crate) fn closed(&mut self, key: AddrKey, in_handshake: bool) {
        if let Some(c) = self.map.get_mut(&key) {
            c.conns = c.conns.saturating_sub(1);
            if in_handshake {
                c.handshakes = c.handshakes.saturating_sub(1);
            }
            if c.conns == 0 {
                self.map.remove(&key);
            }
        }
    }

    /// Groups with at least one connection (for tests and stats).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// The length of one log window.
pub(crate) const LOG_WINDOW: Duration = Duration::from_secs(60);
/// Most address groups tracked by the log gate; beyond that, addresses share
/// one entry (so a spread-out flood cannot grow the table without bound).
const LOG_TABLE_MAX: usize = 4096;

/// One address group's log budget in the current window.
#[derive(Debug, Clone, Copy)]
struct LogWindow {
    /// When this window began.
    start: Instant,
    /// Lines logged in it.
    lines: u32,
    /// Lines suppressed in it.
    suppressed: u64,
}

/// Per-address log rate limit: at most `per_window` lines per address group
/// per [`LOG_WINDOW`]; the rest are counted and reported in one summary line
/// when the window ends. So a flood from one address costs at most
/// `per_window + 1` log lines a minute, however many connections it makes.
#[derive(Debug)]
pub(crate) struct LogGate {
    /// Lines allowed per address group per window.
    per_window: u32,
    /// Windows of the groups that logged recently. `None` is the shared
    /// entry used once the table is full.
    map: HashMap<Option<AddrKey>, LogWindow>,
}

impl LogGate {
    /// A gate allowing `per_window` lines per address group per minute.
    pub(crate) fn new(per_window: u32) -> Self {
        Self {
            per_window,
            map: HashMap::new(),
        }
    }

    /// Whether a line about `key` may be logged now. Ends the group's window
    /// first if it is over (printing its summary).
    pub(crate) fn allow(&mut self, key: AddrKey, now: Instant) -> bool {
        let slot = if self.map.len() < LOG_TABLE_MAX || self.map.contains_key(&Some(key)) {
            Some(key)
        } else {
            None
        };
        let w = self.map.entry(slot).or_insert(LogWindow {
            start: now,
            lines: 0,
            suppressed: 0,
        });
        if now.saturating_duration_since(w.start) >= LOG_WINDOW {
            summarise(slot, w);
            *w = LogWindow {
                start: now,
                lines: 0,
                suppressed: 0,
            };
        }
        if w.lines < self.per_window {
            w.lines += 1;
            true
        } else {
            w.suppressed += 1;
            false
        }
    }

    /// Ends every window that is over: prints its summary (if lines were
    /// suppressed) and forgets it. Called once per timer tick.
    pub(crate) fn sweep(&mut self, now: Instant) {
        self.map.retain(|slot, w| {
            if now.saturating_duration_since(w.start) < LOG_WINDOW {
                return true;
            }
            summarise(*slot, w);
            false
        });
        if self.map.is_empty() && self.map.capacity() > 64 {
            self.map = HashMap::new();
        }
    }
}

/// The summary line of a window that suppressed lines.
fn summarise(slot: Option<AddrKey>, w: &LogWindow) {
    if w.suppressed == 0 {
        return;
    }
    match slot {
        Some(addr) => tracing::warn!(
            %addr,
            suppressed = w.suppressed,
            logged = w.lines,
            "log lines about this address suppressed in the last minute"
        ),
        None => tracing::warn!(
            suppressed = w.suppressed,
            "log lines about other addresses suppressed in the last minute (too many addresses to track)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_by_their_64_bit_prefix_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(AddrKey::of(a), AddrKey::of(b));
        assert_ne!(AddrKey::of(a), AddrKey::of(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        let v4: IpAddr = "10.0.0.1".parse().expect("ip");
        assert_eq!(AddrKey::of(mapped), AddrKey::of(v4));
        assert_eq!(AddrKey::of(a).to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn the_caps_refuse_past_their_limit_and_free_on_login_and_close() {
        let k = AddrKey::of("10.0.0.1".parse().expect("ip"));
        let mut t = AddrCounts::default();
        assert_eq!(t.admit(k, 3, 2), Ok(()));
        assert_eq!(t.admit(k, 3, 2), Ok(()));
        assert_eq!(t.admit(k, 3, 2), Err(Refusal::Handshakes));
        t.logged_in(k);
        assert_eq!(t.admit(k, 3, 2), Ok(()));
        assert_eq!(t.admit(k, 3, 2), Err(Refusal::Connections));
        t.closed(k, false);
        t.closed(k, true);
        t.closed(k, true);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn the_log_gate_allows_a_few_lines_per_address_per_window() {
        let t0 = Instant::now();
        let k = AddrKey::of("10.0.0.1".parse().expect("ip"));
        let other = AddrKey::of("10.0.0.2".parse().expect("ip"));
        let mut g = LogGate::new(3);
        assert_eq!((0..10).filter(|_| g.allow(k, t0)).count(), 3);
        assert!(g.allow(other, t0), "another address has its own budget");
        assert!(g.allow(k, t0 + LOG_WINDOW), "a new window starts afresh");
        g.sweep(t0 + LOG_WINDOW * 3);
        assert!(g.map.is_empty());
    }
}
