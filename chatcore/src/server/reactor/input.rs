//! The chat side of the loop's input: accepting connections (within a
//! budget, with the per-address caps), refusing the ones that do not fit,
//! and reading each ready connection within its read and frame budgets and
//! the global input budget. Every complete frame goes to
//! [`session::handle_frame`].

use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use mio::net::TcpStream;
use mio::{Interest, Token};

use super::{
    ACCEPT_BACKOFF, ACCEPT_BUDGET, FIRST_CONN, FRAME_BUDGET, HANDSHAKE_BUDGET, INPUT_KEEP,
    READ_BUDGET, Reactor,
};
use crate::protocol::{ErrorCode, HEADER_LEN, LeaveReason, frame_len};
use crate::server::conn::peers::{AddrKey, Refusal};
use crate::server::conn::{Connection, Phase};
use crate::server::outbox::error_frame;
use crate::server::session;
use crate::server::tls::session::{TlsRead, TlsSession};

impl Reactor {
    /// Accepts every pending connection.
    pub(super) fn accept_all(&mut self) {
        self.accept_more = false;
        if self.accept_paused_until.is_some() {
            return;
        }
        for _ in 0..ACCEPT_BUDGET {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_resource_exhaustion(&e) => {
                    tracing::warn!(error = %e, "cannot accept: out of resources; pausing accepts");
                    self.accept_paused_until = Some(self.now + ACCEPT_BACKOFF);
                    return;
                }
                // The peer gave up before we accepted, or similar: next one.
                Err(e) => tracing::debug!(error = %e, "accept failed"),
            }
        }
        // Budget spent: the rest next turn (edge-triggered readiness will
        // not report them again).
        self.accept_more = self.listener.is_some();
    }

    /// Takes a new connection in, or refuses it when the server is full or
    /// its address holds too many connections already.
    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        if self.conns.len() >= self.config.max_clients {
            self.stats.refused_full += 1;
            self.refuse(stream, peer, ErrorCode::ServerFull, "the server is full");
            return;
        }
        let addr = AddrKey::of(peer.ip());
        if let Err(why) = self.addr_counts.admit(
            addr,
            self.config.max_connections_per_address,
            self.config.max_handshakes_per_address,
        ) {
            self.stats.refused_full += 1;
            let message = match why {
                Refusal::Connections => "too many connections from your address",
                Refusal::Handshakes => {
                    "too many connections from your address that have not logged in"
                }
            };
            self.refuse(stream, peer, ErrorCode::TooManyConnections, message);
            return;
        }
        let tls = match &self.tls {
            None => None,
            Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
                Ok(session) => Some(Box::new(TlsSession::new(session))),
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "cannot start a TLS session");
                    self.addr_counts.closed(addr, true);
                    return;
                }
            },
        };
        // Latency over throughput: writes are batched per turn already.
        let _ = stream.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut stream, Token(key + FIRST_CONN), Interest::READABLE)
        {
            tracing::warn!(%peer, error = %e, "cannot register connection");
            self.addr_counts.closed(addr, true);
            return;
        }
        let deadline = self.now + self.config.handshake_timeout();
        entry.insert(Connection::new(
            stream,
            peer,
            addr,
            self.now,
            deadline,
            self.config.rate_burst,
            tls,
        ));
        self.stats.accepted += 1;
        tracing::debug!(%peer, key, "connection accepted");
    }

    /// Writes a fatal error to a connection that is not taken in and closes
    /// it at once: one write, a shutdown and one read, nothing kept.
    /// On a TLS port there is no session to carry the frame: the socket
    /// just closes.
    fn refuse(&mut self, mut stream: TcpStream, peer: SocketAddr, code: ErrorCode, message: &str) {
        if self.tls.is_some() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            if self.log_gate.allow(AddrKey::of(peer.ip()), self.now) {
                tracing::info!(%peer, %code, "connection refused");
            }
            return;
        }
        let frame = error_frame(code, message, None);
        // A fresh socket's send buffer is empty, so this small write
        // completes or fails at once; either way the socket closes.
        let _ = io::Write::write(&mut stream, &frame);
        // FIN after the error, and no unread input left to turn the close
        // into a RST that could destroy the error before it is read.
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = stream.read(&mut self.scratch);
        if self.log_gate.allow(AddrKey::of(peer.ip()), self.now) {
            tracing::info!(%peer, %code, "connection refused");
        }
    }

    /// Reads what connection `key` has (within the budget) and handles every
    /// complete frame (within the budget).
    ///
    /// Before login the frame limit is `max_prelogin_frame`, after it
    /// `max_frame` (a `hello` followed by a big frame in one read is fine:
    /// the limit is looked up per frame). A partial frame is kept in a
    /// buffer grown towards that frame's size, never past it; the global
    /// input budget counts these buffers, and a connection holding a partial
    /// frame is not read while the budget is used up (`starved`).
    pub(super) fn serve_input(&mut self, key: usize) {
        let budget = self.config.max_buffered_input_bytes;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.is_open() || conn.paused {
            return;
        }
        if conn.tls.as_ref().is_some_and(|t| !t.established) {
            if self.handshakes_this_turn >= HANDSHAKE_BUDGET {
                // Next turn, after the members' input of this one.
                if !conn.ready {
                    conn.ready = true;
                    self.ready.push(key);
                }
                return;
            }
            self.handshakes_this_turn += 1;
        }
        let mut limit = self.config.frame_limit(conn.phase == Phase::Member);
        let mut more = false;
        let mut failed = None;
        let mut tls_failed = None;
        let mut read = 0;
        let mut starved = false;
        // What the other connections hold; nothing else changes it while
        // this one reads, so the total is set once, after the reads.
        let others = self.input_total - conn.input_alloc;
        loop {
            if conn.eof {
                break;
            }
            if conn.input.len() > limit as usize + HEADER_LEN {
                // A whole frame is buffered; the socket may hold more, and
                // edge-triggered readiness will not say so again.
                more = true;
                break;
            }
            if let Some(total) = announced(&conn.input)
                && total > conn.input.len()
            {
                if total > limit as usize + HEADER_LEN {
                    // Refused by the decoding below; read no further.
                    break;
                }
                if conn.input.capacity() < total {
                    // A partial frame: its whole size is taken from the
                    // budget before more of it is read, or it waits (TCP
                    // holds the sender back) until there is room. A frame
                    // that got its room always completes, so waiting
                    // connections cannot block each other.
                    if others + total > budget {
                        starved = true;
                        break;
                    }
                    let mut room = BytesMut::with_capacity(total);
                    room.extend_from_slice(&conn.input);
                    conn.input = room;
                    conn.input_alloc = conn.input.capacity();
                }
            }
            if let Some(tls) = conn.tls.as_mut() {
                let input = &mut conn.input;
                let alloc = &mut conn.input_alloc;
                match tls.read_from(&mut conn.stream, &mut self.scratch, |plain| {
                    append_input(input, alloc, plain)
                }) {
                    TlsRead::Data { wire, .. } => {
                        // The budget counts what came off the wire, so a
                        // handshake flood is cut short like a frame flood.
                        read += wire;
                        if read >= READ_BUDGET {
                            more = true;
                            break;
                        }
                    }
                    TlsRead::WouldBlock => break,
                    TlsRead::Eof => conn.eof = true,
                    TlsRead::Io(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    TlsRead::Io(e) => {
                        failed = Some(e);
                        break;
                    }
                    TlsRead::Tls(why) => {
                        tls_failed = Some(why);
                        break;
                    }
                }
                continue;
            }
            match conn.stream.read(&mut self.scratch) {
                Ok(0) => conn.eof = true,
                Ok(n) => {
                    append_input(&mut conn.input, &mut conn.input_alloc, &self.scratch[..n]);
                    read += n;
                    if read >= READ_BUDGET {
                        more = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        self.stats.bytes_in += read as u64;
        if let Some(tls) = conn.tls.as_mut() {
            if !tls.established && !tls.conn.is_handshaking() {
                tls.established = true;
                self.stats.tls_handshakes += 1;
            }
            if tls_failed.is_some() || tls.conn.wants_write() {
                // Handshake messages or an alert to send: this turn's flush.
                crate::server::outbox::promote(&mut self.dirty, key, conn);
            }
        }
        if let Some(why) = tls_failed {
            self.input_total = others + conn.input_alloc;
            self.tls_failure(key, &why);
            return;
        }
        self.input_total = others + conn.input_alloc;
        if read > 0 {
            conn.last_rx = self.now;
        }

        let mut handled = 0;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if !conn.is_open() || conn.doomed {
                return;
            }
            if conn.paused {
                // Waiting for the disk: the rest stays buffered (and in the
                // socket) until `resume_reading`.
                return;
            }
            limit = self.config.frame_limit(conn.phase == Phase::Member);
            match frame_len(&conn.input, limit) {
                Ok(None) => break,
                Ok(Some(_)) if handled == FRAME_BUDGET => {
                    more = true;
                    break;
                }
                Ok(Some(total)) => {
                    let frame = conn.input.split_to(total).freeze();
                    handled += 1;
                    self.stats.frames_in += 1;
                    self.frame_charge = Some((key, false));
                    session::handle_frame(&mut self.ctx(), key, &frame[HEADER_LEN..]);
                    self.frame_charge = None;
                }
                Err(e) => {
                    let message = if conn.phase == Phase::Member {
                        e.to_string()
                    } else {
                        format!("{e} (the limit before a successful hello)")
                    };
                    self.ctx().protocol_error(key, e.code(), &message, None);
                    return;
                }
            }
        }

        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let before = conn.input_alloc;
        if conn.input.is_empty() {
            if conn.input_alloc > 0 {
                // Idle connections hold no input buffer.
                conn.input = BytesMut::new();
                conn.input_alloc = 0;
            }
        } else if handled > 0 && conn.input_alloc > INPUT_KEEP && conn.input.len() <= INPUT_KEEP {
            // A big frame was split off the front: move the small rest to a
            // buffer of its own so the big allocation goes back now.
            let rest = BytesMut::from(&conn.input[..]);
            conn.input_alloc = rest.capacity();
            conn.input = rest;
        }
        self.input_total = self.input_total - before + conn.input_alloc;
        if let Some(e) = failed {
            tracing::debug!(peer = %conn.peer, error = %e, "read failed");
            self.doom(key, LeaveReason::Error);
        } else if starved {
            if !conn.starved {
                conn.starved = true;
                self.starved.push(key);
            }
        } else if more {
            if !conn.ready {
                conn.ready = true;
                self.ready.push(key);
            }
        } else if conn.eof {
            self.doom(key, LeaveReason::Quit);
        }
    }

    /// Connection `key` broke the TLS protocol: counted, logged (at most
    /// three lines per connection, within the per-address log gate), and
    /// closed; the alert rustls queued is written when the socket closes.
    fn tls_failure(&mut self, key: usize, why: &str) {
        self.stats.tls_failures += 1;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.errors_logged < 3 && self.log_gate.allow(conn.addr, self.now) {
            conn.errors_logged += 1;
            tracing::info!(peer = %conn.peer, error = why, "TLS failure; closing");
        }
        self.doom(key, LeaveReason::Error);
    }

    /// Connections starved by the input budget are read again once the
    /// budget has room (they go on the ready list; a stale one is skipped).
    pub(super) fn wake_starved(&mut self) {
        if self.starved.is_empty() || self.input_total >= self.config.max_buffered_input_bytes {
            return;
        }
        for key in std::mem::take(&mut self.starved) {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.starved = false;
                // It was not read because of us, not silent.
                conn.last_rx = self.now;
                if !conn.ready {
                    conn.ready = true;
                    self.ready.push(key);
                }
            }
        }
    }
}

/// Appends `data` to a connection's input (`input`, with `input_alloc`
/// the size of its allocation). A buffer too small is replaced
/// by one of exactly the size needed: a partial frame's buffer was already
/// sized to the whole frame when its room was taken from the input budget,
/// so growth happens only on a first read or past a frame's end, and a
/// 1 MiB frame costs 1 MiB, not the 2 MiB a doubling buffer would reach.
fn append_input(input: &mut BytesMut, input_alloc: &mut usize, data: &[u8]) {
    let need = input.len() + data.len();
    if input.capacity() < need {
        let mut grown = BytesMut::with_capacity(need);
        grown.extend_from_slice(input);
        *input = grown;
        *input_alloc = input.capacity();
    }
    input.extend_from_slice(data);
}

/// The whole size (header included) of the frame at the front of `buf`, once
/// its header has arrived.
fn announced(buf: &[u8]) -> Option<usize> {
    let header: [u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
    Some(HEADER_LEN + u32::from_be_bytes(header) as usize)
}

/// Errors after which accepting again at once would fail again.
fn is_resource_exhaustion(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux.
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}
