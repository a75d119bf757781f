//! The room's [`Outbox`] over the reactor's connections, and the encoded
//! `error` frames every part of the server answers with.
//!
//! Queuing output is bookkeeping, not I/O: a pushed frame goes into the
//! connection's [`OutQueue`](crate::server::conn::outqueue::OutQueue), the
//! connection is put on the turn's flush list, and the reactor writes every
//! listed connection once at the end of the turn.

use bytes::{Bytes, BytesMut};
use slab::Slab;

use crate::protocol::{ErrorCode, ErrorMsg, LeaveReason, ServerMessage, encode_server};
use crate::server::conn::Connection;
use crate::server::room::Outbox;

/// The reactor's connections seen as the room's outbox. Pushing a frame marks
/// the connection for this turn's flush and dooms it (reason `slow`) once its
/// queue passes the hard cap.
pub(crate) struct ConnOutbox<'a> {
    /// Every connection, by slab key.
    pub conns: &'a mut Slab<Connection>,
    /// Connections with output queued this turn (the flush list).
    pub dirty: &'a mut Vec<usize>,
    /// Connections whose output this turn all came from large fan-outs:
    /// written after the others, in slices (the bulk list's new entries).
    pub bulk: &'a mut Vec<usize>,
    /// Connections to close at the end of the current step, with the reason.
    pub doomed: &'a mut Vec<(usize, LeaveReason)>,
    /// Frames handed to connections (the `deliveries` statistic).
    pub deliveries: &'a mut u64,
    /// Output a connection may have queued before it is cut off as slow.
    pub max_output: usize,
    /// This turn's broadcast buffer (see [`crate::server::conn::outqueue::OutQueue`]).
    pub turn: &'a mut BytesMut,
}

impl ConnOutbox<'_> {
    /// Bookkeeping after output was queued for `key`: flush it this turn,
    /// and doom it once its queue passes the cap.
    fn queued(
        dirty: &mut Vec<usize>,
        doomed: &mut Vec<(usize, LeaveReason)>,
        max_output: usize,
        key: usize,
        conn: &mut Connection,
    ) {
        promote(dirty, key, conn);
        Self::capped(doomed, max_output, key, conn);
    }

    /// Dooms `conn` (reason `slow`) once its queue passes the cap.
    fn capped(
        doomed: &mut Vec<(usize, LeaveReason)>,
        max_output: usize,
        key: usize,
        conn: &mut Connection,
    ) {
        if conn.output.cost() > max_output && !conn.doomed {
            conn.doomed = true;
            doomed.push((key, LeaveReason::Slow));
        }
    }

    /// Marks `key` for this turn's flush.
    pub(crate) fn mark_dirty(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            promote(self.dirty, key, conn);
        }
    }

    /// Marks `key` to be closed at the end of this step.
    pub(crate) fn doom(&mut self, key: usize, reason: LeaveReason) {
        if let Some(conn) = self.conns.get_mut(key)
            && !conn.doomed
        {
            conn.doomed = true;
            self.doomed.push((key, reason));
        }
    }
}

impl Outbox for ConnOutbox<'_> {
    fn push(&mut self, key: usize, frame: Bytes) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.output.push(frame);
        *self.deliveries += 1;
        Self::queued(self.dirty, self.doomed, self.max_output, key, conn);
    }

    fn broadcast(&mut self, keys: impl Iterator<Item = usize>, frame: &Bytes) {
        let start = self.turn.len();
        self.turn.extend_from_slice(frame);
        let end = self.turn.len();
        // A large fan-out goes on the bulk list: its thousands of writes
        // must not hold up the few writes of a small room's message.
        let bulk = keys.size_hint().1.is_none_or(|n| n >= BULK_FANOUT);
        for key in keys {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let fresh = !conn.output.holds_turn();
            conn.output.push_turn(start, end);
            *self.deliveries += 1;
            if !bulk {
                promote(self.dirty, key, conn);
            } else if !conn.dirty || (conn.bulk && fresh) {
                // New on the bulk list, or waiting there from an earlier
                // turn: listed (again) so that the flush resolves this
                // turn's ranges; the older entry writes it, the newer is
                // then skipped.
                conn.dirty = true;
                conn.bulk = true;
                self.bulk.push(key);
            }
            Self::capped(self.doomed, self.max_output, key, conn);
        }
    }
}

/// A broadcast to at least this many connections is a large fan-out: its
/// recipients are written after every other connection with output, in
/// slices of at most `reactor::output::BULK_SLICE` per turn. Below it (a
/// room of a few hundred), a broadcast is written like any frame.
pub(crate) const BULK_FANOUT: usize = 512;

/// Puts `conn` on the (ordinary) flush list, also when it waits on the
/// bulk list: a frame of its own is written this turn.
pub(crate) fn promote(dirty: &mut Vec<usize>, key: usize, conn: &mut Connection) {
    if !conn.dirty || conn.bulk {
        conn.dirty = true;
        conn.bulk = false;
        dirty.push(key);
    }
}

/// An encoded `error` frame.
pub(crate) fn error_frame(code: ErrorCode, message: &str, reference: Option<u64>) -> Bytes {
    error_frame_about(code, message, reference, None)
}

/// An encoded `error` frame naming the transfer it is about.
pub(crate) fn error_frame_about(
    code: ErrorCode,
    message: &str,
    reference: Option<u64>,
    transfer: Option<u64>,
) -> Bytes {
    encode_server(&ServerMessage::Error(ErrorMsg {
        code,
        message: message.to_owned(),
        reference,
        transfer,
        room: None,
    }))
}
