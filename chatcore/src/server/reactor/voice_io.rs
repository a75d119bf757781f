//! The voice port's sockets inside the one loop: UDP datagrams read and
//! sent here, TCP fallback connections accepted here and read and written
//! through their own type ([`crate::server::voice::conn`]). What a packet
//! means is [`Relay::packet`]'s decision; this file carries it out.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::{TcpListener, UdpSocket};

use super::Reactor;
use crate::protocol::voice::VoicePacket;
use crate::server::config::ServerConfig;
use crate::server::conn::peers::AddrKey;
use crate::server::session::voice::{broadcast_voice_state, close_voice_conn, rekey};
use crate::server::voice::VoicePath;
use crate::server::voice::conn::{TCP_READ_BUDGET, VoiceConns, VoiceRead};
use crate::server::voice::guard::VoiceGuard;
use crate::server::voice::relay::{Relay, VoiceOut};

/// Datagrams read per turn before chat gets its turn (a flood of the voice
/// port must not stall the loop); the rest are read next turn.
const UDP_READ_BUDGET: usize = 1024;

/// The voice port's sockets: UDP and TCP on the same port number.
pub(crate) struct VoicePort {
    /// Datagrams from and to every UDP call member.
    udp: UdpSocket,
    /// Accepts TCP fallback connections.
    tcp: TcpListener,
    /// Bind cookies and per-source limits.
    guard: VoiceGuard,
}

impl VoicePort {
    /// The port's sockets with fresh defences (a new cookie secret).
    pub(crate) fn new(udp: UdpSocket, tcp: TcpListener, config: &ServerConfig) -> Self {
        Self {
            udp,
            tcp,
            guard: VoiceGuard::new(config, Instant::now()),
        }
    }
}

/// The relay's sends carried out on the voice port's sockets. A TCP
/// connection whose write fails is noted and closed once the packet is
/// handled (nothing more is sent to it meanwhile).
struct VoiceSockets<'a> {
    /// The port's UDP socket.
    udp: &'a UdpSocket,
    /// The TCP fallback connections.
    conns: &'a mut VoiceConns,
    /// TCP connections whose write failed during this packet.
    broken: Vec<usize>,
}

impl VoiceOut for VoiceSockets<'_> {
    fn send(&mut self, path: VoicePath, packet: &[u8]) -> bool {
        match path {
            // WouldBlock (the socket buffer is full) or an unreachable peer:
            // real-time audio is dropped, never queued.
            VoicePath::Udp(addr) => self.udp.send_to(packet, addr).is_ok(),
            VoicePath::Tcp(key) => {
                if self.broken.contains(&key) {
                    return false;
                }
                let Some(conn) = self.conns.get_mut(key) else {
                    return false;
                };
                if !conn.queue(packet) {
                    return false;
                }
                if !self.conns.flush(key) {
                    self.broken.push(key);
                }
                true
            }
        }
    }

    fn tcp_source(&self, key: usize) -> Option<(AddrKey, SocketAddr)> {
        self.conns.get(key).map(|c| (c.source, c.peer))
    }

    fn tcp_bound(&mut self, key: usize, session: u64) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.session = Some(session);
        }
    }

    fn close_tcp(&mut self, key: usize) {
        self.conns.close(key);
    }
}

impl Reactor {
    /// Reads waiting datagrams (within a budget) and acts on each. If the
    /// budget ran out, `voice_udp_more` makes the loop come back next turn
    /// without waiting (edge-triggered readiness will not say so again).
    pub(super) fn drain_voice_udp(&mut self) {
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

    /// Accepts every pending TCP fallback connection. A newcomer is never
    /// refused: at a cap on unbound connections the oldest one goes.
    pub(super) fn drain_voice_tcp(&mut self) {
        loop {
            let Some(voice) = self.voice.as_mut() else {
                return;
            };
            let seq = self.voice_conns.take_seq();
            let (stream, peer): (_, SocketAddr) = match voice.tcp.accept() {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            crate::dscp::mark_voice(&stream, peer);
            if let Some(k) = self.voice_conns.make_room(
                peer,
                self.config.voice_unbound_per_address,
                self.config.voice_unbound_max,
            ) {
                self.stats.voice_dropped += 1;
                close_voice_conn(&mut self.ctx(), k);
            }
            let deadline = self.now + self.config.voice_unbound_timeout();
            self.voice_conns.insert(stream, peer, seq, deadline);
        }
    }

    /// Serves an event of TCP voice connection `key`.
    pub(super) fn voice_conn_event(&mut self, key: usize, readable: bool, writable: bool) {
        if writable && !self.voice_conns.flush(key) {
            close_voice_conn(&mut self.ctx(), key);
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
            match conn.read(&mut self.scratch) {
                VoiceRead::Closed => {
                    closed = true;
                    break;
                }
                VoiceRead::WouldBlock => break,
                VoiceRead::Got(n) => read += n,
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
            close_voice_conn(&mut self.ctx(), key);
        }
    }

    /// Handles every complete packet in a TCP voice connection's input.
    /// Returns `false` if the connection was closed for a bad length.
    fn voice_conn_packets(&mut self, key: usize) -> bool {
        loop {
            let Some(conn) = self.voice_conns.get_mut(key) else {
                return false;
            };
            match conn.next_packet() {
                Ok(None) => return true,
                Ok(Some(packet)) => self.voice_packet(VoicePath::Tcp(key), &packet[..]),
                Err(e) => {
                    tracing::debug!(error = %e, "voice TCP connection closed");
                    self.stats.voice_dropped += 1;
                    close_voice_conn(&mut self.ctx(), key);
                    return false;
                }
            }
        }
    }

    /// Serves the voice sockets cut short by a read budget last turn.
    pub(super) fn serve_voice_ready(&mut self) {
        if self.voice_udp_more {
            self.drain_voice_udp();
        }
        for key in std::mem::take(&mut self.voice_ready) {
            self.voice_conn_read(key);
        }
    }

    /// One packet from `path`: the relay decides, the sockets carry it out,
    /// and the room hears of a changed call.
    fn voice_packet(&mut self, path: VoicePath, bytes: &[u8]) {
        let Some(voice) = self.voice.as_mut() else {
            return;
        };
        // Every packet names its session, and a session is in at most one
        // call: that call is the relay's for this packet.
        let session = VoicePacket::parse(bytes).ok().map(|p| p.session());
        let Some((room, call)) = session.and_then(|s| self.calls.of_session_mut(s)) else {
            self.stats.voice_dropped += 1;
            return;
        };
        let mut relay = Relay {
            call,
            guard: &mut voice.guard,
            stats: &mut self.stats,
            relay_to: &mut self.relay_to,
            now: self.now,
        };
        let mut out = VoiceSockets {
            udp: &voice.udp,
            conns: &mut self.voice_conns,
            broken: Vec::new(),
        };
        let changed = relay.packet(path, bytes, &mut out);
        let broken = out.broken;
        let mut ctx = self.ctx();
        for key in broken {
            close_voice_conn(&mut ctx, key);
        }
        if changed {
            broadcast_voice_state(&mut ctx, room);
        }
    }

    /// Timers of the voice port, once per sweep: members whose voice path
    /// fell silent leave the call; TCP connections that never bound close;
    /// idle sources are forgotten by the bind limits.
    pub(super) fn voice_sweep(&mut self) {
        let now = self.now;
        if let Some(voice) = self.voice.as_mut() {
            voice.guard.sweep(now);
        }
        let timeout = self.config.voice_timeout();
        if let Some(cutoff) = self.now.checked_sub(timeout) {
            let gone = self.calls.expire(cutoff);
            if !gone.is_empty() {
                let mut ctx = self.ctx();
                let mut rooms = Vec::new();
                for (room, m) in &gone {
                    tracing::info!(name = %m.name, session = m.session, "voice path timed out; left the call");
                    if let Some(VoicePath::Tcp(k)) = m.path {
                        close_voice_conn(&mut ctx, k);
                    }
                    if !rooms.contains(room) {
                        rooms.push(*room);
                    }
                }
                for room in rooms {
                    rekey(&mut ctx, room, None);
                    broadcast_voice_state(&mut ctx, room);
                }
            }
        }
        let stale = self.voice_conns.stale(now);
        for key in stale {
            self.stats.voice_dropped += 1;
            close_voice_conn(&mut self.ctx(), key);
        }
    }
}
