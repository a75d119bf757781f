//! A connection's pending output: shared frames written with vectored writes.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes};

/// Most buffers handed to one `writev` call (the kernel allows 1024).
const MAX_IOVECS: usize = 128;

/// Frames waiting to be written to one socket, oldest first.
///
/// Frames are `Bytes`, usually shared with every other member's queue, so
/// queueing a broadcast costs a reference-count increment, not a copy.
#[derive(Debug, Default)]
pub struct OutQueue {
    /// Frames, the front one possibly partly written already.
    frames: VecDeque<Bytes>,
    /// Sum of the lengths in `frames`: what the slow-consumer cap checks.
    bytes: usize,
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
        self.frames.push_back(frame);
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Drops everything queued (the connection is going away).
    pub fn clear(&mut self) {
        self.frames = VecDeque::new();
        self.bytes = 0;
    }

    /// Writes as much as `w` takes, up to `MAX_IOVECS` frames per call.
    /// Returns the bytes written and whether the queue emptied.
    pub fn write_to(&mut self, w: &mut impl Write) -> io::Result<(usize, Flushed)> {
        let mut written = 0;
        while !self.frames.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for (slot, frame) in slices.iter_mut().zip(self.frames.iter()) {
                *slot = IoSlice::new(frame);
                count += 1;
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
        // An idle connection keeps no ring buffer: at thousands of idle
        // connections even a small retained one would dominate their memory,
        // and one allocation per busy turn is noise beside the writev.
        self.frames = VecDeque::new();
        Ok((written, Flushed::All))
    }

    /// Drops `n` written bytes from the front.
    fn consume(&mut self, mut n: usize) {
        self.bytes -= n;
        while n > 0 {
            let Some(front) = self.frames.front_mut() else {
                break;
            };
            if n >= front.len() {
                n -= front.len();
                self.frames.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
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
