//! A connection's pending output: shared frames written with vectored writes.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes};

/// Most buffers handed to one `writev` call (the kernel allows 1024).
const MAX_IOVECS: usize = 128;

/// What one queued frame costs beyond its bytes, for the slow-consumer cap:
/// the allocator's header and rounding of its buffer (frames are encoded
/// into a buffer of at least 64 bytes), the shared `Bytes` header, and its
/// slot in the queue. Measured as about 130 bytes for a 60-byte `error`
/// frame, so a queue of small frames costs three times its byte count;
/// counting bytes alone let a non-reading client hold 27.5 MB under an
/// 8 MiB cap.
pub const FRAME_OVERHEAD: usize = 128;

/// One piece of pending output.
#[derive(Debug, Clone)]
enum Chunk {
    /// A frame (or several, or part of one) in its own buffer.
    Bytes(Bytes),
    /// Bytes `start..end` of this loop turn's broadcast buffer, which is not
    /// frozen yet; [`OutQueue::resolve`] turns it into `Bytes` before writing.
    Turn { start: usize, end: usize },
}

/// Output waiting to be written to one socket, oldest first.
///
/// Private frames are `Bytes` of their own. Broadcasts are appended once to
/// the loop turn's shared buffer and each member's queue records only the
/// byte range; consecutive broadcasts extend the same range. So queueing a
/// broadcast for a member is an integer update, and at the end of the turn
/// a member's share of all the turn's broadcasts is one slice of one buffer:
/// one iovec, one large copy into the kernel instead of one per message.
#[derive(Debug, Default)]
pub struct OutQueue {
    /// Pending chunks; the front one possibly partly written already.
    chunks: VecDeque<Chunk>,
    /// Sum of the chunk lengths: what the slow-consumer cap checks.
    bytes: usize,
    /// Index of the first `Chunk::Turn`, if any (they are always at the tail).
    first_turn: Option<usize>,
    /// Bulk frames (file data), written only when `chunks` is empty, so a
    /// chat frame queued after a megabyte of file data overtakes it at the
    /// next frame boundary. File data keeps its own order; chat keeps its own.
    bulk: VecDeque<Bytes>,
    /// The front bulk frame is partly written: it must be finished before
    /// anything else goes out, or the byte stream would interleave frames.
    bulk_started: bool,
}

/// What a [`OutQueue::write_to`] call achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything was written.
    All,
    /// The socket is full; wait for WRITABLE.
    Blocked,
}

impl OutQueue {
    /// Queues a frame.
    pub fn push(&mut self, frame: Bytes) {
        self.bytes += frame.len();
        self.chunks.push_back(Chunk::Bytes(frame));
    }

    /// Queues a bulk frame (file data): sent after every other frame queued
    /// before or after it, at the next frame boundary.
    pub fn push_bulk(&mut self, frame: Bytes) {
        self.bytes += frame.len();
        self.bulk.push_back(frame);
    }

    /// Queues bytes `start..end` of the current turn's broadcast buffer,
    /// merging with the previous range when they are adjacent.
    pub fn push_turn(&mut self, start: usize, end: usize) {
        self.bytes += end - start;
        if let Some(Chunk::Turn { end: last, .. }) = self.chunks.back_mut()
            && *last == start
        {
            *last = end;
            return;
        }
        if self.first_turn.is_none() {
            self.first_turn = Some(self.chunks.len());
        }
        self.chunks.push_back(Chunk::Turn { start, end });
    }

    /// Replaces every turn range by a slice of `turn`, the turn's broadcast
    /// buffer now frozen. Must run before the next turn reuses offsets.
    pub fn resolve(&mut self, turn: &Bytes) {
        let Some(first) = self.first_turn.take() else {
            return;
        };
        for chunk in self.chunks.iter_mut().skip(first) {
            if let Chunk::Turn { start, end } = *chunk {
                *chunk = Chunk::Bytes(turn.slice(start..end));
            }
        }
    }

    /// Whether it holds ranges of the current turn's buffer (to resolve at
    /// the flush).
    pub fn holds_turn(&self) -> bool {
        self.first_turn.is_some()
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// What the waiting output costs in memory: its bytes plus
    /// [`FRAME_OVERHEAD`] per queued piece plus the queues' own slots. This
    /// is what the slow-consumer cap (`max_output_bytes`) checks.
    pub fn cost(&self) -> usize {
        self.bytes
            + (self.chunks.len() + self.bulk.len()) * FRAME_OVERHEAD
            + self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.bulk.capacity() * std::mem::size_of::<Bytes>()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Drops everything queued (the connection is going away).
    pub fn clear(&mut self) {
        self.chunks = VecDeque::new();
        self.bulk = VecDeque::new();
        self.bytes = 0;
        self.first_turn = None;
        self.bulk_started = false;
    }

    /// Writes as much as `w` takes, up to `MAX_IOVECS` chunks per call.
    /// Returns the bytes written and whether the queue emptied. Turn ranges
    /// must have been resolved first; the writing stops before one.
    pub fn write_to(&mut self, w: &mut impl Write) -> io::Result<(usize, Flushed)> {
        debug_assert!(self.first_turn.is_none(), "unresolved turn range");
        let mut written = 0;
        while self.bytes > 0 {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            // Order: a half-written bulk frame, then normal frames, then bulk.
            let started = self.bulk.front().filter(|_| self.bulk_started);
            let normal = self.chunks.iter().map_while(|c| match c {
                Chunk::Bytes(b) => Some(b),
                Chunk::Turn { .. } => None,
            });
            let rest = self.bulk.iter().skip(usize::from(self.bulk_started));
            for (slot, b) in slices
                .iter_mut()
                .zip(started.into_iter().chain(normal).chain(rest))
            {
                *slot = IoSlice::new(b);
                count += 1;
            }
            if count == 0 {
                return Ok((written, Flushed::Blocked));
            }
            match w.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    self.consume(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((written, Flushed::Blocked));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // An idle connection keeps no ring buffer, unless it is small: at
        // thousands of idle connections a retained one would dominate their
        // memory, while a busy one should not regrow it every turn.
        if self.chunks.capacity() > 8 {
            self.chunks = VecDeque::new();
        }
        if self.bulk.capacity() > 8 {
            self.bulk = VecDeque::new();
        }
        Ok((written, Flushed::All))
    }

    /// Drops `n` written bytes from the front, in the order `write_to`
    /// offered them: a half-written bulk frame, normal chunks, bulk frames.
    fn consume(&mut self, mut n: usize) {
        self.bytes -= n;
        if self.bulk_started
            && let Some(front) = self.bulk.front_mut()
        {
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.bulk.pop_front();
            self.bulk_started = false;
        }
        while n > 0 {
            let Some(Chunk::Bytes(front)) = self.chunks.front_mut() else {
                break;
            };
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.chunks.pop_front();
            if let Some(i) = self.first_turn.as_mut() {
                *i -= 1;
            }
        }
        while n > 0 {
            let Some(front) = self.bulk.front_mut() else {
                break;
            };
            if n < front.len() {
                front.advance(n);
                self.bulk_started = true;
                return;
            }
            n -= front.len();
            self.bulk.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `limit` bytes per call, then blocks.
    struct Trickle {
        got: Vec<u8>,
        limit: usize,
        calls_left: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.calls_left == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls_left -= 1;
            let n = buf.len().min(self.limit);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn adjacent_turn_ranges_merge_and_resolve_to_one_slice() {
        let mut q = OutQueue::default();
        q.push(Bytes::from_static(b"<"));
        q.push_turn(0, 3);
        q.push_turn(3, 5);
        q.push(Bytes::from_static(b">"));
        q.push_turn(7, 8);
        assert_eq!(q.len(), 8);
        q.resolve(&Bytes::from_static(b"abcdeXYz"));
        let mut w = Trickle {
            got: Vec::new(),
            limit: 100,
            calls_left: 100,
        };
        assert_eq!(q.write_to(&mut w).expect("io"), (8, Flushed::All));
        assert_eq!(w.got, b"<abcde>z");
    }

    #[test]
    fn chat_overtakes_queued_file_data_at_a_frame_boundary() {
        let mut q = OutQueue::default();
        q.push_bulk(Bytes::from_static(b"[file1]"));
        q.push_bulk(Bytes::from_static(b"[file2]"));
        let mut w = Trickle {
            got: Vec::new(),
            limit: 3,
            calls_left: 1,
        };
        // "[fi" of the first file frame goes out, then a chat arrives.
        assert_eq!(q.write_to(&mut w).expect("io"), (3, Flushed::Blocked));
        q.push(Bytes::from_static(b"<chat>"));
        w.limit = 100;
        w.calls_left = 100;
        assert_eq!(q.write_to(&mut w).expect("io"), (17, Flushed::All));
        // The started frame is finished first, then the chat, then the rest.
        assert_eq!(w.got, b"[file1]<chat>[file2]");
    }

    #[test]
    fn small_frames_cost_more_than_their_bytes() {
        let mut q = OutQueue::default();
        for _ in 0..1000 {
            q.push(Bytes::from_static(&[0; 60]));
        }
        assert_eq!(q.len(), 60_000);
        assert!(
            q.cost() >= 1000 * (60 + FRAME_OVERHEAD),
            "each frame is charged its overhead: {}",
            q.cost()
        );
        // Broadcast ranges merged into one piece cost their bytes and one piece.
        let mut b = OutQueue::default();
        for i in 0..1000 {
            b.push_turn(i * 60, (i + 1) * 60);
        }
        assert!(b.cost() < 60_000 + 2 * FRAME_OVERHEAD + 64);
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut q = OutQueue::default();
        q.push(Bytes::from_static(b"hello "));
        q.push(Bytes::from_static(b"world"));
        let mut w = Trickle {
            got: Vec::new(),
            limit: 4,
            calls_left: 2,
        };
        // The default write_vectored writes from the first buffer only:
        // "hell", then "o ".
        assert_eq!(q.write_to(&mut w).expect("io"), (6, Flushed::Blocked));
        assert_eq!(q.len(), 5);
        w.calls_left = 10;
        assert_eq!(q.write_to(&mut w).expect("io"), (5, Flushed::All));
        assert_eq!(w.got, b"hello world");
        assert!(q.is_empty());
    }
}
