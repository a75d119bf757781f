//! One client connection as the reactor keeps it.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use mio::Interest;
use mio::net::TcpStream;

use super::outqueue::OutQueue;
use super::peers::AddrKey;
use super::ratelimit::TokenBucket;
use crate::protocol::LeaveReason;
use crate::server::tls::session::TlsSession;
use crate::server::transfer::Download;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connected, no successful `hello` yet; must log in before `deadline`.
    Handshake { deadline: Instant },
    /// In the room.
    Member,
    /// Leaving: nothing more is read; the queued output (an error or a final
    /// notice) is flushed, then the socket closes, at the latest at `deadline`.
    Closing { deadline: Instant },
}

/// A client connection: its socket, buffers and timers.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The socket; the reactor alone reads and writes it.
    pub stream: TcpStream,
    /// TLS on this connection (the server has TLS on), or `None`: plain
    /// TCP, read and written directly with no extra copy. Boxed: the
    /// rustls state is large and plain connections should stay small.
    pub tls: Option<Box<TlsSession>>,
    /// Peer address, for logs and hooks.
    pub peer: SocketAddr,
    /// The address group the per-address caps and the log gate count this
    /// connection in.
    pub addr: AddrKey,
    /// Still counted as a connection not yet logged in by the per-address
    /// cap (cleared at a successful `hello`).
    pub counted_handshake: bool,
    /// Bytes read but not yet decoded: at most a partial frame, or whole
    /// frames left over when the per-turn budget ran out. Empty (and
    /// unallocated) for an idle connection.
    pub input: BytesMut,
    /// Size of the allocation behind `input` (what the global input budget
    /// is charged): `input.capacity()` shrinks as frames are split off the
    /// front, while the allocation stays until `input` is replaced.
    pub input_alloc: usize,
    /// Not read because the global input budget is used up and this
    /// connection holds a partial frame; read again once there is room.
    pub starved: bool,
    /// Frames waiting to be written.
    pub output: OutQueue,
    /// Life-cycle state.
    pub phase: Phase,
    /// Last time anything arrived: the idle timeout counts from here.
    pub last_rx: Instant,
    /// Last time the server pinged it, so a silent client is pinged once per
    /// heartbeat, not once per sweep.
    pub last_ping: Instant,
    /// Flood control.
    pub bucket: TokenBucket,
    /// The interest the poll has for this socket, so that a change of
    /// [`Connection::interest`] costs a syscall and no change costs none.
    pub registered: Interest,
    /// Already on one of the reactor's lists of connections to flush.
    pub dirty: bool,
    /// On the bulk flush list only (all it has queued came from large
    /// fan-outs): written after every other connection, a slice per turn
    /// (see `reactor::output`). A frame of its own promotes it.
    pub bulk: bool,
    /// Already on the reactor's list of connections with unread input.
    pub ready: bool,
    /// Already on the reactor's list of connections to close.
    pub doomed: bool,
    /// The peer closed its side; close once buffered frames are handled.
    pub eof: bool,
    /// Protocol errors logged so far; only the first few are logged, so a
    /// misbehaving client cannot flood the log.
    pub errors_logged: u8,
    /// The id of this connection's `hello` waiting for the auth thread:
    /// the answer completes the login only if it still matches (a closed
    /// connection's key may be reused before the answer comes).
    pub auth_pending: Option<u64>,
    /// A resuming `hello`'s `last_seen`, kept until the login completes
    /// (at once for a guest, or when the auth thread answers), when the
    /// missed chats are sent after the `welcome`.
    pub resume_from: Option<u64>,
    /// The reason to give when the socket finally closes.
    pub close_reason: Option<LeaveReason>,
    /// Files being sent to this client, refilled at its own pace.
    pub downloads: Vec<Download>,
    /// Not read while its uploaded chunks wait for the disk thread.
    pub paused: bool,
}

impl Connection {
    /// A connection just accepted, not logged in yet; `addr` is the group of
    /// `peer` that admitting it already computed.
    pub fn new(
        stream: TcpStream,
        peer: SocketAddr,
        addr: AddrKey,
        now: Instant,
        handshake_deadline: Instant,
        burst: f64,
        tls: Option<Box<TlsSession>>,
    ) -> Self {
        Self {
            stream,
            tls,
            peer,
            addr,
            counted_handshake: true,
            input: BytesMut::new(),
            input_alloc: 0,
            starved: false,
            output: OutQueue::default(),
            phase: Phase::Handshake {
                deadline: handshake_deadline,
            },
            last_rx: now,
            last_ping: now,
            bucket: TokenBucket::new(burst, now),
            registered: Interest::READABLE,
            dirty: false,
            bulk: false,
            ready: false,
            doomed: false,
            eof: false,
            errors_logged: 0,
            auth_pending: None,
            resume_from: None,
            close_reason: None,
            downloads: Vec::new(),
            paused: false,
        }
    }

    /// Whether input should still be read and handled.
    pub fn is_open(&self) -> bool {
        !matches!(self.phase, Phase::Closing { .. })
    }

    /// The poll interest this connection needs now: always READABLE (a
    /// paused or starved connection is simply not read), and WRITABLE
    /// while output waits that the socket did not take (queued frames, or
    /// TLS records rustls holds: handshake messages, alerts, encrypted
    /// output). Asked right after a flush, so waiting output means the
    /// socket was full.
    pub fn interest(&self) -> Interest {
        if self.output_drained() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        }
    }

    /// Nothing waits to be written: no queued frame and no TLS record.
    pub fn output_drained(&self) -> bool {
        self.output.is_empty() && self.tls.as_ref().is_none_or(|t| !t.conn.wants_write())
    }

    /// Writes as much queued output as the socket takes: directly over
    /// plain TCP; through rustls (one vectored write into it per batch,
    /// then its records) with TLS, which also sends the handshake messages
    /// and alerts rustls has waiting. Returns the plaintext bytes taken.
    pub fn write_out(&mut self) -> std::io::Result<usize> {
        match &mut self.tls {
            None => self.output.write_to(&mut self.stream).map(|(n, _)| n),
            Some(tls) => {
                let (n, _) = self.output.write_to(&mut tls.writer(&mut self.stream))?;
                tls.flush(&mut self.stream)?;
                Ok(n)
            }
        }
    }
}
