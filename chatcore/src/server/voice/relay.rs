//! The voice port's I/O, inside the one event loop: UDP datagrams and TCP
//! fallback connections in, packets relayed out at once.
//!
//! Audio is forwarded while the event is handled, not at the end of the
//! turn like chat: a packet's only value is being on time. Nothing waits
//! for a slow listener either: a UDP send that would block and a TCP
//! listener with more than [`TCP_OUTPUT_CAP`] queued both drop the packet.
//!
//! A UDP `bind` binds only after its source address proved it receives
//! (the cookie of a `bind_challenge` echoed from it, see [`super::guard`]);
//! a TCP connection is proven by its handshake. TCP connections that have not
//! bound are capped per source address and in total, with a short deadline;
//! only bound ones are bounded by the call's size.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::{Buf, BytesMut};
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Interest, Token};

use super::VoicePath;
use super::guard::{VoiceGuard, source_key};
use crate::protocol::voice::{
    COOKIE_LEN, MAX_PACKET, TCP_PREFIX_LEN, TOKEN_LEN, VoicePacket, tcp_packet_len,
};
use crate::server::config::ServerConfig;
use crate::server::reactor::{Reactor, want_writable};

/// Voice TCP connection tokens are slab keys plus this offset (above every
/// chat connection token).
pub(crate) const FIRST_VOICE_CONN: usize = usize::MAX / 2;
/// Output a TCP voice connection may have queued before packets to it are
/// dropped.
const TCP_OUTPUT_CAP: usize = 64 * 1024;
/// Bytes read from one TCP voice connection per event before others get
/// their turn.
const TCP_READ_BUDGET: usize = 64 * 1024;
/// Datagrams read per turn before chat gets its turn (a flood of the voice
/// port must not stall the loop); the rest are read next turn.
const UDP_READ_BUDGET: usize = 1024;

/// The voice port's sockets: UDP and TCP on the same port number.
pub(crate) struct VoicePort {
    /// Datagrams from and to every UDP call member.
    pub udp: UdpSocket,
    /// Accepts TCP fallback connections.
    pub tcp: TcpListener,
    /// Bind cookies and per-source limits.
    pub guard: VoiceGuard,
    /// Accept order of the next TCP voice connection: the oldest unbound
    /// one is the one with the lowest number (many share one turn's time).
    next_seq: u64,
}

impl VoicePort {
    /// The port's sockets with fresh defences (a new cookie secret).
    pub(crate) fn new(udp: UdpSocket, tcp: TcpListener, config: &ServerConfig) -> Self {
        Self {
            udp,
            tcp,
            guard: VoiceGuard::new(config, Instant::now()),
            next_seq: 0,
        }
    }
}

/// One TCP fallback connection.
pub(crate) struct VoiceConn {
    stream: TcpStream,
    /// Bytes of a packet not yet complete (at most one packet and a prefix).
    input: BytesMut,
    /// Packets waiting for the socket, prefixes included.
    output: BytesMut,
    /// The session bound over this connection, once a bind was accepted.
    session: Option<u64>,
    /// The peer's source address as limits count it (IPv4, or IPv6 /64):
    /// unbound connections are capped per source.
    source: IpAddr,
    /// Unbound connections are closed at this time.
    bind_deadline: Instant,
    /// Accept order: the lowest unbound one is evicted first at a cap.
    seq: u64,
    /// WRITABLE interest is registered (only while output waits).
    wants_write: bool,
}

impl Reactor {
    /// Reads waiting datagrams (within a budget) and acts on each. If the
    /// budget ran out, `voice_udp_more` makes the loop come back next turn
    /// without waiting (edge-triggered readiness will not say so again).
    pub(crate) fn drain_voice_udp(&mut self) {
        // The datagram buffer is lent out while a packet is handled
        // (relaying needs `&mut self`); only this function uses it, so
        // nothing can find it missing, and no datagram is copied.
        let mut buf = std::mem::take(&mut self.datagram);
        let mut more = true;
        for _ in 0..UDP_READ_BUDGET {
            let Some(voice) = self.voice.as_ref() else {
                more = false;
                break;
            };
            let (n, from) = match voice.udp.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock, or an ICMP error surfaced by a previous send:
                // nothing for us either way.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    more = false;
                    break;
                }
                Err(_) => continue,
            };
            self.voice_packet(VoicePath::Udp(from), &buf[..n]);
        }
        self.datagram = buf;
        self.voice_udp_more = more;
    }

    /// Accepts every pending TCP fallback connection.
    pub(crate) fn drain_voice_tcp(&mut self) {
        loop {
            let Some(voice) = self.voice.as_mut() else {
                return;
            };
            let seq = voice.next_seq;
            voice.next_seq += 1;
            let (mut stream, peer) = match voice.tcp.accept() {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            // Only connections that have not bound yet are limited here:
            // bound ones are at most one per call member.
            let source = source_key(peer.ip());
            self.make_room_for_unbound_voice_conn(source);
            let _ = stream.set_nodelay(true);
            let entry = self.voice_conns.vacant_entry();
            let token = Token(FIRST_VOICE_CONN + entry.key());
            if self
                .poll
                .registry()
                .register(&mut stream, token, Interest::READABLE)
                .is_err()
            {
                continue;
            }
            tracing::debug!(%peer, "voice TCP connection");
            entry.insert(VoiceConn {
                stream,
                input: BytesMut::new(),
                output: BytesMut::new(),
                session: None,
                source,
                bind_deadline: self.now + self.config.voice_unbound_timeout(),
                seq,
                wants_write: false,
            });
        }
    }

    /// Makes room for a new unbound TCP voice connection from `source`: at
    /// `voice_unbound_per_address` unbound ones from that source, its oldest
    /// is closed; otherwise at `voice_unbound_max` unbound ones in total,
    /// the oldest of all is. A newcomer is never refused: an honest client
    /// binds within a round trip, so it is never the oldest for long, and
    /// silent connections cannot keep it out. Bound connections never count.
    fn make_room_for_unbound_voice_conn(&mut self, source: IpAddr) {
        let mut here = (0, None::<(usize, u64)>);
        let mut all = (0, None::<(usize, u64)>);
        let older = |o: Option<(usize, u64)>, k, seq| match o {
            Some((_, o_seq)) if o_seq < seq => o,
            _ => Some((k, seq)),
        };
        for (k, c) in self.voice_conns.iter().filter(|(_, c)| c.session.is_none()) {
            all = (all.0 + 1, older(all.1, k, c.seq));
            if c.source == source {
                here = (here.0 + 1, older(here.1, k, c.seq));
            }
        }
        let evict = if here.0 >= self.config.voice_unbound_per_address {
            here.1
        } else if all.0 >= self.config.voice_unbound_max {
            all.1
        } else {
            None
        };
        if let Some((k, _)) = evict {
            self.stats.voice_dropped += 1;
            self.close_voice_conn(k);
        }
    }

    /// Serves an event of TCP voice connection `key`.
    pub(crate) fn voice_conn_event(&mut self, key: usize, readable: bool, writable: bool) {
        if writable {
            self.voice_conn_flush(key);
        }
        if readable {
            self.voice_conn_read(key);
        }
    }

    /// Reads what a TCP voice connection has (within a budget) and acts on
    /// each complete packet. If the budget ran out, the connection is served
    /// again next turn.
    fn voice_conn_read(&mut self, key: usize) {
        let mut read = 0;
        let mut closed = false;
        loop {
            let Some(conn) = self.voice_conns.get_mut(key) else {
                return;
            };
            match conn.stream.read(&mut self.scratch) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    conn.input.extend_from_slice(&self.scratch[..n]);
                    read += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
            // Packets are handled as they complete, so the input never
            // holds more than one read's worth.
            if !self.voice_conn_packets(key) {
                return;
            }
            if read >= TCP_READ_BUDGET {
                if !self.voice_ready.contains(&key) {
                    self.voice_ready.push(key);
                }
                break;
            }
        }
        // Every byte read was handled inside the loop.
        if closed {
            self.close_voice_conn(key);
        }
    }

    /// Handles every complete packet in a TCP voice connection's input.
    /// Returns `false` if the connection was closed for a bad length.
    fn voice_conn_packets(&mut self, key: usize) -> bool {
        loop {
            let Some(conn) = self.voice_conns.get_mut(key) else {
                return false;
            };
            match tcp_packet_len(&conn.input) {
                Ok(None) => return true,
                Ok(Some(n)) => {
                    conn.input.advance(TCP_PREFIX_LEN);
                    let packet = conn.input.split_to(n);
                    self.voice_packet(VoicePath::Tcp(key), &packet);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "voice TCP connection closed");
                    self.stats.voice_dropped += 1;
                    self.close_voice_conn(key);
                    return false;
                }
            }
        }
    }

    /// Serves the voice sockets cut short by a read budget last turn.
    pub(crate) fn serve_voice_ready(&mut self) {
        if self.voice_udp_more {
            self.drain_voice_udp();
        }
        for key in std::mem::take(&mut self.voice_ready) {
            self.voice_conn_read(key);
        }
    }

    /// Closes TCP voice connection `key`; its member (if bound) is unbound
    /// but stays in the call until its voice timeout.
    pub(crate) fn close_voice_conn(&mut self, key: usize) {
        if !self.voice_conns.contains(key) {
            return;
        }
        let mut conn = self.voice_conns.remove(key);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if self.call.unbind(VoicePath::Tcp(key)) {
            self.broadcast_voice_state();
        }
    }

    /// What one packet from `path` does (docs/protocol.md §16.2).
    pub(crate) fn voice_packet(&mut self, path: VoicePath, bytes: &[u8]) {
        let now = self.now;
        let Ok(packet) = VoicePacket::parse(bytes) else {
            self.stats.voice_dropped += 1;
            return;
        };
        match packet {
            VoicePacket::Audio { session, .. } => {
                let Some(i) = self.call.bound(path, session) else {
                    self.stats.voice_dropped += 1;
                    return;
                };
                let member = self.call.at_mut(i);
                member.last_heard = now;
                if member.muted || !member.take_audio(now) {
                    self.stats.voice_dropped += 1;
                    return;
                }
                self.stats.voice_in += 1;
                // The listeners go into a reused buffer: sending needs
                // `&mut self`, and a fresh vector per packet is an allocation
                // on the relay's hot path.
                let mut to = std::mem::take(&mut self.relay_to);
                to.clear();
                to.extend(self.call.listeners(i));
                for &dest in &to {
                    if self.voice_send(dest, bytes) {
                        self.stats.voice_relayed += 1;
                    }
                }
                self.relay_to = to;
            }
            VoicePacket::Bind {
                session,
                token,
                cookie,
            } => self.voice_bind(path, session, &token, cookie.as_ref()),
            VoicePacket::Probe { session, nonce } => {
                let Some(i) = self.call.bound(path, session) else {
                    self.stats.voice_dropped += 1;
                    return;
                };
                self.call.at_mut(i).last_heard = now;
                self.voice_send(path, &VoicePacket::ProbeAck { session, nonce }.to_vec());
            }
            VoicePacket::Bound { .. }
            | VoicePacket::ProbeAck { .. }
            | VoicePacket::BindChallenge { .. } => {
                self.stats.voice_dropped += 1;
            }
        }
    }

    /// A `bind` (docs/protocol.md §16.2): charged to its source address,
    /// checked against the session's token, then over UDP bound only from a
    /// proven address (the cookie echoed, or the path already bound);
    /// otherwise answered with a `bind_challenge` no larger than the bind.
    fn voice_bind(
        &mut self,
        path: VoicePath,
        session: u64,
        token: &[u8; TOKEN_LEN],
        cookie: Option<&[u8; COOKIE_LEN]>,
    ) {
        let now = self.now;
        let source = match path {
            VoicePath::Udp(addr) => addr.ip(),
            VoicePath::Tcp(k) => match self.voice_conns.get(k) {
                Some(c) => c.source,
                None => return,
            },
        };
        let Some(voice) = self.voice.as_mut() else {
            return;
        };
        let limiter = match path {
            VoicePath::Udp(_) => &mut voice.guard.udp_binds,
            VoicePath::Tcp(_) => &mut voice.guard.tcp_binds,
        };
        if !limiter.allow(source, now) {
            self.stats.voice_binds_limited += 1;
            // A TCP connection guessing past its source's budget goes.
            if let VoicePath::Tcp(k) = path {
                self.close_voice_conn(k);
            }
            return;
        }
        if !self.call.has_token(session, token) {
            self.stats.voice_dropped += 1;
            return;
        }
        if let VoicePath::Udp(addr) = path {
            let proven = self.call.bound(path, session).is_some()
                || cookie.is_some_and(|c| voice.guard.cookies.check(c, addr, session, now));
            if !proven {
                if !voice.guard.take_challenge(now) {
                    self.stats.voice_binds_limited += 1;
                    return;
                }
                let cookie = voice.guard.cookies.issue(addr, session, now);
                let challenge = VoicePacket::BindChallenge { session, cookie }.to_vec();
                if self.voice_send_udp(addr, &challenge) {
                    self.stats.voice_challenges += 1;
                }
                return;
            }
        }
        let Some(old) = self.call.bind(session, token, path, now) else {
            self.stats.voice_dropped += 1;
            return;
        };
        if let VoicePath::Tcp(k) = path
            && let Some(conn) = self.voice_conns.get_mut(k)
        {
            conn.session = Some(session);
        }
        if let Some(VoicePath::Tcp(old_key)) = old
            && old != Some(path)
        {
            self.close_voice_conn(old_key);
        }
        self.voice_send(path, &VoicePacket::Bound { session }.to_vec());
        if old != Some(path) {
            tracing::debug!(session, ?path, "voice path bound");
            self.broadcast_voice_state();
        }
    }

    /// Sends one packet to a member's path now, or drops it (and counts the
    /// drop). Returns whether it was sent (or queued, over TCP).
    fn voice_send(&mut self, path: VoicePath, packet: &[u8]) -> bool {
        match path {
            VoicePath::Udp(addr) => self.voice_send_udp(addr, packet),
            VoicePath::Tcp(key) => {
                let Some(conn) = self.voice_conns.get_mut(key) else {
                    self.stats.voice_dropped += 1;
                    return false;
                };
                if conn.output.len() + TCP_PREFIX_LEN + packet.len() > TCP_OUTPUT_CAP
                    || packet.len() > MAX_PACKET
                {
                    self.stats.voice_dropped += 1;
                    return false;
                }
                conn.output
                    .extend_from_slice(&(packet.len() as u16).to_be_bytes());
                conn.output.extend_from_slice(packet);
                self.voice_conn_flush(key);
                true
            }
        }
    }

    fn voice_send_udp(&mut self, addr: SocketAddr, packet: &[u8]) -> bool {
        let Some(voice) = self.voice.as_ref() else {
            return false;
        };
        match voice.udp.send_to(packet, addr) {
            Ok(_) => true,
            // WouldBlock (the socket buffer is full) or an unreachable
            // peer: real-time audio is dropped, never queued.
            Err(_) => {
                self.stats.voice_dropped += 1;
                false
            }
        }
    }

    /// Writes a TCP voice connection's queued output; WRITABLE interest only
    /// while some is left.
    fn voice_conn_flush(&mut self, key: usize) {
        let Some(conn) = self.voice_conns.get_mut(key) else {
            return;
        };
        let mut failed = false;
        while !conn.output.is_empty() {
            match conn.stream.write(&conn.output) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => conn.output.advance(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            self.close_voice_conn(key);
            return;
        }
        let want = !conn.output.is_empty();
        let token = Token(FIRST_VOICE_CONN + key);
        want_writable(
            &self.poll,
            &mut conn.stream,
            token,
            want,
            &mut conn.wants_write,
        );
    }

    /// Timers of the voice port, once per sweep: members whose voice path
    /// fell silent leave the call; TCP connections that never bound close;
    /// idle sources are forgotten by the bind limits.
    pub(crate) fn voice_sweep(&mut self) {
        let now = self.now;
        if let Some(voice) = self.voice.as_mut() {
            voice.guard.sweep(now);
        }
        let timeout = self.config.voice_timeout();
        if let Some(cutoff) = self.now.checked_sub(timeout) {
            let gone = self.call.expire(cutoff);
            if !gone.is_empty() {
                for m in &gone {
                    tracing::info!(name = %m.name, session = m.session, "voice path timed out; left the call");
                    if let Some(VoicePath::Tcp(k)) = m.path {
                        self.close_voice_conn(k);
                    }
                }
                self.broadcast_voice_state();
            }
        }
        let stale: Vec<usize> = self
            .voice_conns
            .iter()
            .filter(|(_, c)| c.session.is_none() && now >= c.bind_deadline)
            .map(|(k, _)| k)
            .collect();
        for key in stale {
            self.stats.voice_dropped += 1;
            self.close_voice_conn(key);
        }
    }

    /// Closes every TCP voice connection (shutdown).
    pub(crate) fn close_voice_conns(&mut self) {
        let keys: Vec<usize> = self.voice_conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close_voice_conn(key);
        }
    }
}
