//! The end of a turn: doomed connections closed (a member leaves the room
//! through [`session::leave`]), and every connection with queued output
//! written once, with `writev`; the connection's own interest is then
//! applied to the poll ([`apply_interest`]).
//!
//! Fairness between rooms: one message to a room of 10 000 is 10 000
//! writes, tens of milliseconds of system calls. Recipients of such large
//! fan-outs (see [`crate::server::outbox::BULK_FANOUT`]) go on a bulk list,
//! written after every other connection and for at most [`BULK_SLICE`] per
//! flush; the rest wait for the next turn (which polls without waiting).
//! So a small room's message waits at most one slice behind a big room's,
//! not a whole fan-out, and the big room is still written as fast as the
//! loop can: between slices it only reads and serves what arrived.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use mio::Token;

use super::{FIRST_CONN, LINGER, READ_BUDGET, Reactor};
use crate::protocol::LeaveReason;
use crate::server::conn::{Phase, apply_interest};
use crate::server::session;

/// Longest a flush spends writing bulk connections (recipients of large
/// fan-outs) before the loop serves input again. A few milliseconds: a
/// small room's message waits at most about this long behind a big room's.
pub(crate) const BULK_SLICE: Duration = Duration::from_millis(3);
/// Bulk writes between two reads of the clock.
const BULK_CLOCK_EVERY: usize = 64;

impl Reactor {
    /// Closes every doomed connection. A member leaves the room at once; the
    /// socket closes now, or after its last frames (`Closing`) are flushed.
    pub(super) fn close_doomed(&mut self) {
        while let Some((key, reason)) = self.doomed.pop() {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let linger = conn.close_reason.is_some() && reason != LeaveReason::Slow;
            session::leave(&mut self.ctx(), key, reason);
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if linger && !conn.output_drained() {
                conn.phase = Phase::Closing {
                    deadline: self.now + LINGER,
                };
                conn.doomed = false;
                self.mark_dirty(key);
            } else {
                self.remove(key);
            }
        }
    }

    /// Drops connection `key` (closing its socket).
    ///
    /// Input the peer sent that was never read is drained first (bounded):
    /// closing a socket with unread input makes the kernel send RST instead
    /// of FIN, and a RST can destroy the last frames (an error, a `left`)
    /// before the peer reads them.
    pub(super) fn remove(&mut self, key: usize) {
        if self.conns.contains(key) {
            let mut conn = self.conns.remove(key);
            self.addr_counts.closed(conn.addr, conn.counted_handshake);
            self.input_total -= conn.input_alloc;
            let downloads = std::mem::take(&mut conn.downloads);
            session::transfer::close_downloads(&mut self.download_keys, &self.disk, &downloads);
            let mut drained = 0;
            while drained < READ_BUDGET {
                match conn.stream.read(&mut self.scratch) {
                    Ok(n) if n > 0 => drained += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    _ => break,
                }
            }
            if let Some(tls) = conn.tls.as_mut() {
                // close_notify after a healthy session; an alert rustls
                // still holds after a failed one.
                tls.close(&mut conn.stream);
            }
            let _ = self.poll.registry().deregister(&mut conn.stream);
            tracing::debug!(peer = %conn.peer, key, "connection closed");
        }
    }

    /// Writes every connection's queued output once, then bulk
    /// connections for at most [`BULK_SLICE`].
    pub(super) fn flush_all(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        // Freeze this turn's broadcasts; every queue holding ranges of them
        // is on the dirty list or new on the bulk list and trades its
        // ranges for slices here, before anything can reuse the offsets
        // (a bulk connection written turns later holds slices only).
        let turn = self.turn.split().freeze();
        for &key in dirty.iter().chain(&self.bulk_new) {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.output.resolve(&turn);
            }
        }
        self.bulk.extend(self.bulk_new.drain(..));
        for &key in &dirty {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if !conn.dirty || conn.bulk {
                // Listed twice (promoted, then written), or demoted: no.
                continue;
            }
            conn.dirty = false;
            if conn.doomed && conn.close_reason.is_none() {
                continue;
            }
            self.flush_one(key);
        }
        self.flush_bulk();
        // Reuse the allocation if nothing was added meanwhile.
        if self.dirty.is_empty() {
            let mut dirty = dirty;
            dirty.clear();
            self.dirty = dirty;
        }
    }

    /// Writes bulk connections, oldest first, until the list is empty or
    /// [`BULK_SLICE`] has passed (the clock is read every
    /// [`BULK_CLOCK_EVERY`] writes).
    fn flush_bulk(&mut self) {
        let start = Instant::now();
        let mut written = 0usize;
        while let Some(key) = self.bulk.pop_front() {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if !conn.dirty || !conn.bulk {
                // Written already (promoted), or a stale entry.
                continue;
            }
            conn.dirty = false;
            conn.bulk = false;
            if conn.doomed && conn.close_reason.is_none() {
                continue;
            }
            self.flush_one(key);
            written += 1;
            if written.is_multiple_of(BULK_CLOCK_EVERY) && start.elapsed() >= BULK_SLICE {
                break;
            }
        }
    }

    /// Writes one connection's queue, then applies the interest the
    /// connection derives from what is left ([`Connection::interest`]).
    /// A connection with downloads asks the disk thread for more once its
    /// queue has room (the data comes back through the waker).
    fn flush_one(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let downloads = !conn.downloads.is_empty();
        match conn.write_out() {
            Ok(n) => {
                self.stats.bytes_out += n as u64;
                if matches!(conn.phase, Phase::Closing { .. }) && conn.output_drained() {
                    self.remove(key);
                    return;
                }
                let token = Token(key + FIRST_CONN);
                let want = conn.interest();
                apply_interest(
                    self.poll.registry(),
                    &mut conn.stream,
                    token,
                    want,
                    &mut conn.registered,
                );
                if downloads {
                    session::transfer::refill(conn, &self.disk);
                }
            }
            Err(e) => {
                tracing::debug!(peer = %conn.peer, error = %e, "write failed");
                if matches!(conn.phase, Phase::Closing { .. }) {
                    self.remove(key);
                } else {
                    conn.output.clear();
                    self.doom(key, LeaveReason::Error);
                }
            }
        }
    }
}
