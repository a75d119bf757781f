//! Accounts: registered names with argon2id passwords, session tokens,
//! and the brute-force throttle (docs/protocol.md section 19).
//!
//! | file | holds |
//! |---|---|
//! | `db` | the tables and every query ([`AccountDb`], also used by `chatserver accounts`) |
//! | `thread` | the store's auth thread: its own SQLite connection, every hash; the password hash never leaves it |
//! | `mod.rs` | the loop's side: requests in flight, authenticated sessions, the throttle |
//!
//! The loop never hashes and never touches the database: a `hello` with a
//! name goes to the auth thread (is the name registered? is the credential
//! right?) and the login completes when the answer arrives; the connection
//! stays in the handshake meanwhile, so the handshake timeout still applies.

pub mod db;
pub(crate) mod thread;

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub use db::{AccountDb, AccountError, AccountInfo};

use crate::server::conn::peers::AddrKey;
use thread::AuthWorker;

/// Failed logins an address or an account may have before the delay
/// starts: the first five attempts are answered at once.
pub const FREE_FAILURES: u32 = 5;
/// The delay after the [`FREE_FAILURES`]th failure; each further failure
/// doubles it, up to [`MAX_DELAY`].
pub const BASE_DELAY: Duration = Duration::from_millis(250);
/// The longest delay between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// A failure count is forgotten this long after its last failure.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Addresses (and, separately, accounts) with failures remembered; beyond
/// it new entries are not recorded until a sweep frees room (the other map
/// still throttles), so a spray from many addresses cannot grow memory.
pub const MAX_TRACKED: usize = 65_536;
/// Password checks (password logins, `register`, `change_password`: one
/// argon2id hash each) waiting for the auth thread at once; beyond it they
/// are answered `auth_throttled`, so a flood cannot queue more than a few
/// seconds of hashing. Guest and token logins are not counted (one query
/// each, bounded by the connections in the handshake) and the auth thread
/// serves them before any hash.
pub const MAX_IN_FLIGHT: usize = 64;

/// The delay before the next attempt after `failures` failures.
pub fn delay_after(failures: u32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES).min(16);
    BASE_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

/// Failures of one address or account.
#[derive(Debug, Clone, Copy)]
struct Failures {
    /// How many since the count started (or was last reset).
    count: u32,
    /// No attempt is checked before this.
    until: Instant,
    /// The last failure, for forgetting.
    last: Instant,
}

/// Failed logins per address and per account, and the delays they earn.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// Per address group (IPv4 address or IPv6 /64).
    by_addr: HashMap<AddrKey, Failures>,
    /// Per account skeleton.
    by_account: HashMap<String, Failures>,
}

impl Throttle {
    /// How long an attempt from `addr` for `account` must still wait, if at all.
    pub(crate) fn wait(&self, addr: AddrKey, account: &str, now: Instant) -> Option<Duration> {
        let a = self.by_addr.get(&addr).map(|f| f.until);
        let b = self.by_account.get(account).map(|f| f.until);
        let until = a.max(b)?;
        (until > now).then(|| until - now)
    }

    /// Records a failed attempt.
    pub(crate) fn failed(&mut self, addr: AddrKey, account: &str, now: Instant) {
        fn bump(f: &mut Failures, now: Instant) {
            f.count = f.count.saturating_add(1);
            f.until = now + delay_after(f.count);
            f.last = now;
        }
        let fresh = Failures {
            count: 0,
            until: now,
            last: now,
        };
        if let Some(f) = self.by_addr.get_mut(&addr) {
            bump(f, now);
        } else if self.by_addr.len() < MAX_TRACKED {
            bump(self.by_addr.entry(addr).or_insert(fresh), now);
        }
        if let Some(f) = self.by_account.get_mut(account) {
            bump(f, now);
        } else if self.by_account.len() < MAX_TRACKED {
            bump(
                self.by_account.entry(account.to_owned()).or_insert(fresh),
                now,
            );
        }
    }

    /// A successful login resets the account's count (not the address's: a
    /// guesser with one valid account must not reset its own throttle).
    pub(crate) fn succeeded(&mut self, account: &str) {
        self.by_account.remove(account);
    }

    /// Forgets counts idle for [`FORGET_AFTER`].
    pub(crate) fn sweep(&mut self, now: Instant) {
        self.by_addr.retain(|_, f| now < f.last + FORGET_AFTER);
        self.by_account.retain(|_, f| now < f.last + FORGET_AFTER);
    }
}

/// A request waiting for the auth thread.
#[derive(Debug)]
pub(crate) enum Pending {
    /// A `hello`; the connection (still in the handshake) holds the same id.
    Hello {
        /// The connection.
        key: usize,
        /// The validated name asked for.
        name: String,
        /// Where it came from, for the throttle.
        addr: AddrKey,
        /// It carried a password or a token.
        credentials: bool,
        /// It carried a password: its check costs a hash.
        hashing: bool,
    },
    /// A member's `register`.
    Register {
        /// The connection.
        key: usize,
        /// The member's session (a reused key is someone else).
        session: u64,
    },
    /// A member's `change_password`.
    ChangePassword {
        /// The connection.
        key: usize,
        /// The member's session.
        session: u64,
        /// Where it came from, for the throttle.
        addr: AddrKey,
    },
}

/// The loop's side of accounts.
pub(crate) struct Accounts {
    /// The auth thread.
    pub worker: AuthWorker,
    /// The next request id.
    next_id: u64,
    /// Requests in flight, by id.
    pub pending: HashMap<u64, Pending>,
    /// Of those, the ones that cost a hash (checked against [`MAX_IN_FLIGHT`]).
    pub hashing: usize,
    /// Failed logins and their delays.
    pub throttle: Throttle,
    /// Authenticated members: session -> the SHA-256 of their token, which
    /// `logout` revokes. Removed when the member leaves.
    pub logins: HashMap<u64, [u8; 32]>,
    /// Authenticated members: session -> the account's name (its registered
    /// spelling). The member's shown name may differ (`alice(1)` when the
    /// account is logged in twice): password changes and roles go by this.
    pub owners: HashMap<u64, String>,
}

impl Accounts {
    /// The loop's side of a started auth thread.
    pub(crate) fn new(worker: AuthWorker) -> Self {
        Self {
            worker,
            next_id: 1,
            pending: HashMap::new(),
            hashing: 0,
            throttle: Throttle::default(),
            logins: HashMap::new(),
            owners: HashMap::new(),
        }
    }

    /// A fresh request id.
    pub(crate) fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_are_free_then_the_delay_doubles_up_to_thirty_seconds() {
        assert_eq!(delay_after(4), Duration::ZERO);
        assert_eq!(delay_after(5), Duration::from_millis(250));
        assert_eq!(delay_after(6), Duration::from_millis(500));
        assert_eq!(delay_after(9), Duration::from_secs(4));
        assert_eq!(delay_after(12), MAX_DELAY);
        assert_eq!(delay_after(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn the_throttle_counts_per_address_and_per_account() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let a = AddrKey::V4([10, 0, 0, 1]);
        let b = AddrKey::V4([10, 0, 0, 2]);
        for _ in 0..5 {
            assert_eq!(t.wait(a, "alice", now), None);
            t.failed(a, "alice", now);
        }
        assert_eq!(t.wait(a, "alice", now), Some(Duration::from_millis(250)));
        // Another address guessing the same account waits too.
        assert_eq!(t.wait(b, "alice", now), Some(Duration::from_millis(250)));
        // The same address guessing another account waits too.
        assert_eq!(t.wait(a, "bob", now), Some(Duration::from_millis(250)));
        assert_eq!(t.wait(b, "bob", now), None);
        t.sweep(now + FORGET_AFTER);
        assert_eq!(t.wait(a, "alice", now), None);
    }
}
