//! The voice port's TCP fallback connections: each one's socket and
//! buffers, its own poll interest, and the caps on connections that have
//! not bound yet.
//!
//! Reads and writes of these sockets happen here, called by the reactor
//! (`reactor/voice_io.rs`); what a packet means is decided by
//! [`super::relay`]. TCP connections that have not bound are capped per
//! source address and in total, with a short deadline; only bound ones are
//! bounded by the call's size.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;

use crate::protocol::voice::{MAX_PACKET, TCP_PREFIX_LEN, TcpLengthError, tcp_packet_len};
use crate::server::conn::apply_interest;
use crate::server::conn::peers::AddrKey;

/// Voice TCP connection tokens are slab keys plus this offset (above every
/// chat connection token).
pub(crate) const FIRST_VOICE_CONN: usize = usize::MAX / 2;
/// Output a TCP voice connection may have queued before packets to it are
/// dropped.
const TCP_OUTPUT_CAP: usize = 64 * 1024;
/// Bytes read from one TCP voice connection per event before others get
/// their turn.
pub(crate) const TCP_READ_BUDGET: usize = 64 * 1024;

/// One TCP fallback connection.
pub(crate) struct VoiceConn {
    /// The socket; read and written only by this type's methods.
    stream: TcpStream,
    /// Bytes of a packet not yet complete (at most one packet and a prefix).
    input: BytesMut,
    /// Packets waiting for the socket, prefixes included.
    output: BytesMut,
    /// The session bound over this connection, once a bind was accepted.
    pub session: Option<u64>,
    /// The peer's source address as limits count it (IPv4, or IPv6 /64):
    /// unbound connections are capped per source.
    pub source: AddrKey,
    /// The peer's address and port: the bind cookie is issued to it (a
    /// captured bind cannot be replayed from another connection).
    pub peer: SocketAddr,
    /// Unbound connections are closed at this time.
    bind_deadline: Instant,
    /// Accept order: the lowest unbound one is evicted first at a cap.
    seq: u64,
    /// The interest the poll has for this socket.
    registered: Interest,
}

/// What one read of a TCP voice connection found.
pub(crate) enum VoiceRead {
    /// This many bytes arrived (more may follow).
    Got(usize),
    /// Nothing more for now.
    WouldBlock,
    /// The peer closed, or the socket failed.
    Closed,
}

impl VoiceConn {
    /// The poll interest this connection needs now: READABLE, and WRITABLE
    /// while packets wait that the socket did not take.
    pub(crate) fn interest(&self) -> Interest {
        if self.output.is_empty() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        }
    }

    /// One read from the socket into the input (through `scratch`).
    pub(crate) fn read(&mut self, scratch: &mut [u8]) -> VoiceRead {
        loop {
            return match self.stream.read(scratch) {
                Ok(0) => VoiceRead::Closed,
                Ok(n) => {
                    self.input.extend_from_slice(&scratch[..n]);
                    VoiceRead::Got(n)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => VoiceRead::WouldBlock,
                Err(_) => VoiceRead::Closed,
            };
        }
    }

    /// The next complete packet of the input, without its length prefix.
    pub(crate) fn next_packet(&mut self) -> Result<Option<BytesMut>, TcpLengthError> {
        let Some(n) = tcp_packet_len(&self.input)? else {
            return Ok(None);
        };
        self.input.advance(TCP_PREFIX_LEN);
        Ok(Some(self.input.split_to(n)))
    }

    /// Queues one packet with its length prefix; `false` (dropped) when the
    /// queue is at its cap or the packet is too large.
    pub(crate) fn queue(&mut self, packet: &[u8]) -> bool {
        if self.output.len() + TCP_PREFIX_LEN + packet.len() > TCP_OUTPUT_CAP
            || packet.len() > MAX_PACKET
        {
            return false;
        }
        self.output
            .extend_from_slice(&(packet.len() as u16).to_be_bytes());
        self.output.extend_from_slice(packet);
        true
    }

    /// Writes queued output until the socket is full; `Err` when the
    /// connection failed and must be closed.
    pub(crate) fn write_out(&mut self) -> Result<(), ()> {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return Err(()),
                Ok(n) => self.output.advance(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return Err(()),
            }
        }
        Ok(())
    }
}

/// Every TCP voice connection, with its own handle on the poll's registry
/// (a connection registers itself when taken in, deregisters when closed,
/// and updates its interest after writing).
pub(crate) struct VoiceConns {
    /// The connections; token = key + [`FIRST_VOICE_CONN`].
    conns: Slab<VoiceConn>,
    /// Accept order of the next TCP voice connection: the oldest unbound
    /// one is the one with the lowest number (many share one turn's time).
    next_seq: u64,
    /// A clone of the poll's registry.
    registry: Registry,
}

impl VoiceConns {
    /// No connections yet.
    pub(crate) fn new(registry: Registry) -> Self {
        Self {
            conns: Slab::new(),
            next_seq: 0,
            registry,
        }
    }

    /// The connection `key`, if still open.
    pub(crate) fn get(&self, key: usize) -> Option<&VoiceConn> {
        self.conns.get(key)
    }

    /// The connection `key`, if still open.
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut VoiceConn> {
        self.conns.get_mut(key)
    }

    /// Before a new connection from `peer` is taken in: the key of the
    /// unbound connection to close first, if the new one would pass
    /// `per_source` (for its source) or `max_unbound` (in total).
    pub(crate) fn make_room(
        &self,
        peer: SocketAddr,
        per_source: usize,
        max_unbound: usize,
    ) -> Option<usize> {
        // Only connections that have not bound yet are limited here: bound
        // ones are at most one per call member. At `per_source` unbound ones
        // from that source, its oldest is closed; otherwise at `max_unbound`
        // unbound ones in total, the oldest of all is. A newcomer is never
        // refused: an honest client binds within a round trip, so it is
        // never the oldest for long, and silent connections cannot keep it
        // out.
        let source = AddrKey::of(peer.ip());
        let mut here = (0, None::<(usize, u64)>);
        let mut all = (0, None::<(usize, u64)>);
        let older = |o: Option<(usize, u64)>, k, seq| match o {
            Some((_, o_seq)) if o_seq < seq => o,
            _ => Some((k, seq)),
        };
        for (k, c) in self.conns.iter().filter(|(_, c)| c.session.is_none()) {
            all = (all.0 + 1, older(all.1, k, c.seq));
            if c.source == source {
                here = (here.0 + 1, older(here.1, k, c.seq));
            }
        }
        let evict = if here.0 >= per_source {
            here.1
        } else if all.0 >= max_unbound {
            all.1
        } else {
            None
        };
        evict.map(|(k, _)| k)
    }

    /// Takes in an accepted connection that must bind before
    /// `bind_deadline`; `false` if the poll would not take it.
    pub(crate) fn insert(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        seq: u64,
        bind_deadline: Instant,
    ) -> bool {
        let _ = stream.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let token = Token(FIRST_VOICE_CONN + entry.key());
        if self
            .registry
            .register(&mut stream, token, Interest::READABLE)
            .is_err()
        {
            return false;
        }
        tracing::debug!(%peer, "voice TCP connection");
        entry.insert(VoiceConn {
            stream,
            input: BytesMut::new(),
            output: BytesMut::new(),
            session: None,
            source: AddrKey::of(peer.ip()),
            peer,
            bind_deadline,
            seq,
            registered: Interest::READABLE,
        });
        true
    }

    /// The accept number of the next connection (taken whether or not the
    /// accept succeeds, as before).
    pub(crate) fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Writes connection `key`'s queued output and updates its interest;
    /// `false` if it failed (the caller closes it).
    pub(crate) fn flush(&mut self, key: usize) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return true;
        };
        if conn.write_out().is_err() {
            return false;
        }
        let want = conn.interest();
        let token = Token(FIRST_VOICE_CONN + key);
        apply_interest(
            &self.registry,
            &mut conn.stream,
            token,
            want,
            &mut conn.registered,
        );
        true
    }

    /// Closes connection `key` (its socket only: the call is told by the
    /// caller). Returns whether it was open.
    pub(crate) fn close(&mut self, key: usize) -> bool {
        if !self.conns.contains(key) {
            return false;
        }
        let mut conn = self.conns.remove(key);
        let _ = self.registry.deregister(&mut conn.stream);
        true
    }

    /// Unbound connections past their bind deadline.
    pub(crate) fn stale(&self, now: Instant) -> Vec<usize> {
        self.conns
            .iter()
            .filter(|(_, c)| c.session.is_none() && now >= c.bind_deadline)
            .map(|(k, _)| k)
            .collect()
    }

    /// Every open connection's key.
    pub(crate) fn keys(&self) -> Vec<usize> {
        self.conns.iter().map(|(k, _)| k).collect()
    }
}
