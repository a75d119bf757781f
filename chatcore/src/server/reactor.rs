//! The reactor: one `mio::Poll` loop that owns every socket.
//!
//! One turn: wait for events (the timeout is the next timer deadline, or zero
//! when a connection still has unread input), accept until `WouldBlock`, read
//! each ready connection within a budget (fairness: a flooder is served a
//! slice and put on the `ready` list for the next turn), handle every decoded
//! frame, announce presence changes, then flush all output once (one
//! vectored write per connection per turn, however many broadcasts it got).
//! Every event may be spurious; a stale token finds nothing and is ignored.
//! This is the only module that reads and writes sockets (the file-transfer
//! code only sizes a downloading connection's send buffer).

use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::protocol::{
    ErrorCode, ErrorMsg, HEADER_LEN, LeaveReason, Left, Seq, ServerMessage, encode_server,
    frame_len,
};
use crate::server::config::ServerConfig;
use crate::server::conn::outqueue::Flushed;
use crate::server::conn::{Connection, Phase};
use crate::server::error::ServerError;
use crate::server::handle::{Command, ServerHandle, ServerStats};
use crate::server::hooks::Hooks;
use crate::server::room::{Outbox, Room, RoomSettings};
use crate::server::transfer::disk::{DiskWorker, Spool};
use crate::server::transfer::{OfferLimits, Transfers};
use crate::server::voice::Call;
use crate::server::voice::relay::{FIRST_VOICE_CONN, VoiceConn, VoicePort};
use crate::time::now_ms;

/// Token of the chat listener.
const LISTENER: Token = Token(0);
/// Token of the waker that `ServerHandle` uses.
const WAKER: Token = Token(1);
/// Token of the voice port's UDP socket.
const VOICE_UDP: Token = Token(2);
/// Token of the voice port's TCP listener.
const VOICE_TCP: Token = Token(3);
/// Connection tokens are slab keys plus this offset.
const FIRST_CONN: usize = 16;

/// Bytes read from one connection per turn before others get their turn.
const READ_BUDGET: usize = 256 * 1024;
/// Frames handled from one connection per turn before others get their turn.
const FRAME_BUDGET: usize = 256;
/// Size of the shared read buffer.
const SCRATCH: usize = 64 * 1024;
/// How long a closing connection may take to flush its last frames.
const LINGER: Duration = Duration::from_millis(1500);
/// Pause before accepting again after running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Shortest time between two announcements of joins and leaves.
const PRESENCE_BATCH: Duration = Duration::from_millis(25);
/// The text of `rate_limited` errors.
pub(crate) const RATE_LIMITED_MSG: &str = "too many messages; slow down";
/// Protocol errors logged per connection; the rest are only counted.
const ERRORS_LOGGED: u8 = 3;
/// Connections accepted per loop turn; the rest wait for the next turn, so a
/// connection flood cannot make one turn long.
const ACCEPT_BUDGET: usize = 512;
/// Connections one timer sweep may close (handshake and idle timeouts); the
/// rest are closed by another sweep in the next turn. Each close costs a few
/// syscalls, so thousands expiring at once would otherwise make one turn
/// last hundreds of milliseconds.
const EXPIRE_BUDGET: usize = 256;
/// An input buffer larger than this is replaced by a small one once the big
/// frame it held is gone.
const INPUT_KEEP: usize = 64 * 1024;

/// The event loop and all state it owns.
pub(crate) struct Reactor {
    pub(crate) poll: Poll,
    events: Events,
    /// `None` once shutdown began (no more accepts).
    listener: Option<TcpListener>,
    /// The voice port, unless disabled.
    pub(crate) voice: Option<VoicePort>,
    /// The voice call's members and their bindings.
    pub(crate) call: Call,
    /// TCP fallback voice connections.
    pub(crate) voice_conns: Slab<VoiceConn>,
    /// Voice connections with input left over from a cut-short turn.
    pub(crate) voice_ready: Vec<usize>,
    /// The voice UDP socket has datagrams left over from a cut-short turn.
    pub(crate) voice_udp_more: bool,
    /// Receives voice datagrams: one byte longer than the largest valid
    /// packet, so an oversized datagram shows as too long and is dropped.
    pub(crate) datagram: Vec<u8>,
    /// Where the audio packet being relayed goes; kept to reuse its
    /// allocation from packet to packet.
    pub(crate) relay_to: Vec<crate::server::voice::VoicePath>,
    pub(crate) conns: Slab<Connection>,
    pub(crate) room: Room,
    pub(crate) config: ServerConfig,
    pub(crate) hooks: Box<dyn Hooks>,
    commands: Receiver<Command>,
    /// Shared read buffer: bytes are copied from here into a connection's
    /// input only when a partial frame must wait for more.
    pub(crate) scratch: Box<[u8]>,
    /// Connections with input left over from a cut-short turn.
    ready: Vec<usize>,
    /// Connections with output queued this turn.
    pub(crate) dirty: Vec<usize>,
    /// File transfers and their spool.
    pub(crate) transfers: Transfers,
    /// The disk thread: spool writes, hashing, reads.
    pub(crate) disk: DiskWorker,
    /// Download token -> the connection it belongs to.
    pub(crate) download_keys: std::collections::HashMap<u64, usize>,
    /// Every broadcast frame of this turn, back to back; members' queues
    /// hold ranges of it until the flush freezes it and hands out slices.
    turn: BytesMut,
    /// Connections to close at the end of the current step, with the reason.
    pub(crate) doomed: Vec<(usize, LeaveReason)>,
    pub(crate) stats: ServerStats,
    /// Time at the start of this turn; one clock read per turn.
    pub(crate) now: Instant,
    next_sweep: Instant,
    /// Earliest time the next batch of joins/leaves may be announced.
    next_presence: Instant,
    accept_paused_until: Option<Instant>,
    /// Set when shutdown began: the loop ends when every connection is gone
    /// or at this deadline.
    shutdown_deadline: Option<Instant>,
    /// Sequence number of the server's heartbeat pings.
    ping_seq: u64,
    /// Connections per address group, for the per-address caps.
    pub(crate) addr_counts: crate::server::conn::peers::AddrCounts,
    /// Per-address log rate limit.
    pub(crate) log_gate: crate::server::conn::peers::LogGate,
    /// Bytes allocated for partial frames across all connections, checked
    /// against `max_buffered_input_bytes`.
    input_total: usize,
    /// Connections not read because the input budget was used up.
    starved: Vec<usize>,
    /// The listener may hold more connections than this turn accepted.
    accept_more: bool,
    /// The last sweep hit [`EXPIRE_BUDGET`]: sweep again next turn.
    sweep_again: bool,
    /// The frame being handled, and whether it was charged to the rate limit
    /// yet: a frame that earns an error reply is charged then (section 11.2).
    pub(crate) frame_charge: Option<(usize, bool)>,
    /// The `rate_limited` error without a `ref`, encoded once and shared.
    rate_limited_frame: Bytes,
}

/// The reactor's connections seen as the room's outbox. Pushing a frame marks
/// the connection for this turn's flush and dooms it (reason `slow`) once its
/// queue passes the hard cap.
pub(crate) struct ConnOutbox<'a> {
    pub conns: &'a mut Slab<Connection>,
    pub dirty: &'a mut Vec<usize>,
    pub doomed: &'a mut Vec<(usize, LeaveReason)>,
    pub deliveries: &'a mut u64,
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
        if !conn.dirty {
            conn.dirty = true;
            dirty.push(key);
        }
        if conn.output.cost() > max_output && !conn.doomed {
            conn.doomed = true;
            doomed.push((key, LeaveReason::Slow));
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
        for key in keys {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.output.push_turn(start, end);
            *self.deliveries += 1;
            Self::queued(self.dirty, self.doomed, self.max_output, key, conn);
        }
    }
}

/// Sockets bound by [`Reactor::bind`], before the loop runs.
pub(crate) struct Bound {
    pub reactor: Reactor,
    pub handle: ServerHandle,
    pub local_addr: SocketAddr,
    pub voice_addr: Option<SocketAddr>,
}

impl Reactor {
    /// Binds the listeners and prepares the loop.
    pub(crate) fn bind(config: ServerConfig, hooks: Box<dyn Hooks>) -> Result<Bound, ServerError> {
        config.validate()?;
        let poll = Poll::new().map_err(ServerError::Poll)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(ServerError::Poll)?);
        let (handle, commands) = ServerHandle::new(Arc::clone(&waker));
        let spool_base = config.spool_base();
        let spool = Spool::open(&spool_base).map_err(|source| ServerError::Spool {
            path: spool_base,
            source,
        })?;
        let disk = DiskWorker::start(waker, spool, config.max_open_spool_files)
            .map_err(|e| ServerError::Thread(e.to_string()))?;

        let bind_err = |addr| move |source| ServerError::Bind { addr, source };
        let mut listener = listen(config.listen).map_err(bind_err(config.listen))?;
        let local_addr = listener.local_addr().map_err(bind_err(config.listen))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(ServerError::Poll)?;

        let mut voice = None;
        let mut voice_addr = None;
        if let Some(addr) = config.voice_listen {
            let (mut tcp, mut udp, bound) = bind_voice(addr)?;
            poll.registry()
                .register(&mut tcp, VOICE_TCP, Interest::READABLE)
                .map_err(ServerError::Poll)?;
            poll.registry()
                .register(&mut udp, VOICE_UDP, Interest::READABLE)
                .map_err(ServerError::Poll)?;
            voice = Some(VoicePort::new(udp, tcp, &config));
            voice_addr = Some(bound);
        }

        let transfers = Transfers::new(
            config.spool_quota_bytes,
            Duration::from_secs(config.file_ttl_secs),
            OfferLimits {
                total: config.max_offers,
                per_name: config.max_offers_per_name,
                per_address: config.max_offers_per_address,
            },
        );
        let room = Room::new(RoomSettings {
            history_len: config.history_len,
            heartbeat_ms: config.heartbeat_ms,
            max_frame: config.max_frame,
            max_text: u32::try_from(config.max_text_bytes).unwrap_or(u32::MAX),
        });
        let now = Instant::now();
        let log_lines = config.log_lines_per_address;
        let reactor = Reactor {
            poll,
            events: Events::with_capacity(1024),
            listener: Some(listener),
            voice,
            call: Call::default(),
            voice_conns: Slab::new(),
            voice_ready: Vec::new(),
            voice_udp_more: false,
            relay_to: Vec::new(),
            datagram: vec![0; crate::protocol::voice::MAX_PACKET + 1],
            conns: Slab::new(),
            room,
            next_sweep: now + config.tick(),
            next_presence: now,
            config,
            hooks,
            commands,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            ready: Vec::new(),
            dirty: Vec::new(),
            transfers,
            disk,
            download_keys: std::collections::HashMap::new(),
            turn: BytesMut::new(),
            doomed: Vec::new(),
            stats: ServerStats::default(),
            now,
            accept_paused_until: None,
            shutdown_deadline: None,
            ping_seq: 0,
            addr_counts: crate::server::conn::peers::AddrCounts::default(),
            log_gate: crate::server::conn::peers::LogGate::new(log_lines),
            input_total: 0,
            starved: Vec::new(),
            accept_more: false,
            sweep_again: false,
            frame_charge: None,
            rate_limited_frame: error_frame(ErrorCode::RateLimited, RATE_LIMITED_MSG, None),
        };
        Ok(Bound {
            reactor,
            handle,
            local_addr,
            voice_addr,
        })
    }

    /// Runs until shutdown completes.
    pub(crate) fn run(mut self) -> Result<(), ServerError> {
        loop {
            let timeout = self.poll_timeout();
            match self.poll.poll(&mut self.events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ServerError::Poll(e)),
            }
            self.now = Instant::now();
            self.turn();
            let took = self.now.elapsed().as_micros() as u64;
            self.stats.longest_turn_us = self.stats.longest_turn_us.max(took);
            if let Some(deadline) = self.shutdown_deadline
                && (self.conns.is_empty() || self.now >= deadline)
            {
                tracing::info!(
                    left_open = self.conns.len(),
                    messages = self.stats.messages,
                    deliveries = self.stats.deliveries,
                    bytes_out = self.stats.bytes_out,
                    longest_turn_us = self.stats.longest_turn_us,
                    "server stopped"
                );
                // Dropping the reactor ends the disk thread, which deletes
                // every spool file and the run directory.
                return Ok(());
            }
        }
    }

    /// How long the next poll may wait.
    fn poll_timeout(&self) -> Duration {
        if !self.ready.is_empty()
            || !self.voice_ready.is_empty()
            || self.voice_udp_more
            || self.accept_more
            || self.sweep_again
        {
            return Duration::ZERO;
        }
        let mut next = self.next_sweep;
        if let Some(t) = self.accept_paused_until {
            next = next.min(t);
        }
        if let Some(t) = self.shutdown_deadline {
            next = next.min(t);
        }
        if self.room.presence_pending() {
            next = next.min(self.next_presence);
        }
        next.saturating_duration_since(Instant::now())
    }

    /// Handles one batch of events, then the deferred work of the turn.
    fn turn(&mut self) {
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for event in events.iter() {
            match event.token() {
                LISTENER => self.accept_all(),
                WAKER => {
                    self.drain_commands();
                    self.drain_disk();
                }
                VOICE_UDP => self.drain_voice_udp(),
                VOICE_TCP => self.drain_voice_tcp(),
                Token(t) if t >= FIRST_VOICE_CONN => self.voice_conn_event(
                    t - FIRST_VOICE_CONN,
                    event.is_readable() || event.is_read_closed() || event.is_error(),
                    event.is_writable(),
                ),
                Token(t) => {
                    let key = t.wrapping_sub(FIRST_CONN);
                    if !self.conns.contains(key) {
                        continue;
                    }
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        self.serve_input(key);
                    }
                    if event.is_writable() {
                        self.mark_dirty(key);
                    }
                }
            }
        }
        events.clear();
        self.events = events;

        // Connections cut short last turn get their next slice now.
        let carried = std::mem::take(&mut self.ready);
        for key in carried {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.ready = false;
                self.serve_input(key);
            }
        }
        self.serve_voice_ready();

        if let Some(t) = self.accept_paused_until
            && self.now >= t
        {
            self.accept_paused_until = None;
            self.accept_all();
        } else if self.accept_more {
            self.accept_all();
        }
        if self.sweep_again {
            // Only the closes a budget-limited sweep left over.
            self.sweep_again = false;
            self.sweep(false);
        } else if self.now >= self.next_sweep {
            self.expire_offers();
            self.sweep(true);
            self.voice_sweep();
            self.log_gate.sweep(self.now);
            self.next_sweep = self.now + self.config.tick();
        }
        self.wake_starved();
        self.close_doomed();
        self.end_of_turn_presence();
        self.flush_all();
        self.close_doomed();
        self.end_of_turn_presence();
        self.flush_all();
    }

    /// Welcomes go out every turn (a login should be quick); joins and
    /// leaves are announced at most every `PRESENCE_BATCH`, so that during a
    /// connection storm each member gets one presence frame per batch instead
    /// of one per loop turn. A chat message flushes them at once (nobody sees
    /// a message from someone not yet announced).
    fn end_of_turn_presence(&mut self) {
        let (room, mut out) = self.outbox();
        room.flush_welcomes(&mut out);
        if room.presence_pending() && self.now >= self.next_presence {
            self.flush_presence();
            self.next_presence = self.now + PRESENCE_BATCH;
        }
    }

    /// The room's outbox over this reactor's connections.
    pub(crate) fn outbox(&mut self) -> (&mut Room, ConnOutbox<'_>) {
        (
            &mut self.room,
            ConnOutbox {
                conns: &mut self.conns,
                dirty: &mut self.dirty,
                doomed: &mut self.doomed,
                deliveries: &mut self.stats.deliveries,
                max_output: self.config.max_output_bytes,
                turn: &mut self.turn,
            },
        )
    }

    /// Sends pending welcomes and join/leave notices now: at the end of a
    /// turn, and before a room-wide frame that must not overtake them.
    pub(crate) fn flush_presence(&mut self) {
        let ts = now_ms();
        let (room, mut out) = self.outbox();
        room.flush_presence(ts, &mut out);
    }

    /// Accepts every pending connection.
    fn accept_all(&mut self) {
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
        let addr = crate::server::conn::peers::AddrKey::of(peer.ip());
        if let Err(why) = self.addr_counts.admit(
            addr,
            self.config.max_connections_per_address,
            self.config.max_handshakes_per_address,
        ) {
            self.stats.refused_full += 1;
            let message = match why {
                crate::server::conn::peers::Refusal::Connections => {
                    "too many connections from your address"
                }
                crate::server::conn::peers::Refusal::Handshakes => {
                    "too many connections from your address that have not logged in"
                }
            };
            self.refuse(stream, peer, ErrorCode::TooManyConnections, message);
            return;
        }
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
            self.now,
            deadline,
            self.config.rate_burst,
        ));
        self.stats.accepted += 1;
        tracing::debug!(%peer, key, "connection accepted");
    }

    /// Writes a fatal error to a connection that is not taken in and closes
    /// it at once: one write, a shutdown and one read, nothing kept.
    fn refuse(&mut self, mut stream: TcpStream, peer: SocketAddr, code: ErrorCode, message: &str) {
        let frame = error_frame(code, message, None);
        // A fresh socket's send buffer is empty, so this small write
        // completes or fails at once; either way the socket closes.
        let _ = io::Write::write(&mut stream, &frame);
        // FIN after the error, and no unread input left to turn the close
        // into a RST that could destroy the error before it is read.
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = stream.read(&mut self.scratch);
        if self
            .log_gate
            .allow(crate::server::conn::peers::AddrKey::of(peer.ip()), self.now)
        {
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
    fn serve_input(&mut self, key: usize) {
        let budget = self.config.max_buffered_input_bytes;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.is_open() || conn.paused {
            return;
        }
        let mut limit = self.config.frame_limit(conn.phase == Phase::Member);
        let mut more = false;
        let mut failed = None;
        let mut read = 0;
        let mut starved = false;
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
                    let others = self.input_total - conn.input_alloc;
                    if others + total > budget {
                        starved = true;
                        break;
                    }
                    let mut room = BytesMut::with_capacity(total);
                    room.extend_from_slice(&conn.input);
                    conn.input = room;
                    conn.input_alloc = conn.input.capacity();
                    self.input_total = others + conn.input_alloc;
                }
            }
            match conn.stream.read(&mut self.scratch) {
                Ok(0) => conn.eof = true,
                Ok(n) => {
                    let before = conn.input_alloc;
                    append_input(conn, &self.scratch[..n]);
                    self.input_total = self.input_total - before + conn.input_alloc;
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
                    self.handle_frame(key, &frame[HEADER_LEN..]);
                    self.frame_charge = None;
                }
                Err(e) => {
                    let message = if conn.phase == Phase::Member {
                        e.to_string()
                    } else {
                        format!("{e} (the limit before a successful hello)")
                    };
                    self.protocol_error(key, e.code(), &message, None);
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

    /// Connections starved by the input budget are read again once the
    /// budget has room (they go on the ready list; a stale one is skipped).
    fn wake_starved(&mut self) {
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

    /// Marks `key` to be closed at the end of this step.
    pub(crate) fn doom(&mut self, key: usize, reason: LeaveReason) {
        if let Some(conn) = self.conns.get_mut(key)
            && !conn.doomed
        {
            conn.doomed = true;
            self.doomed.push((key, reason));
        }
    }

    /// Closes every doomed connection. A member leaves the room at once; the
    /// socket closes now, or after its last frames (`Closing`) are flushed.
    fn close_doomed(&mut self) {
        while let Some((key, reason)) = self.doomed.pop() {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let linger = conn.close_reason.is_some() && reason != LeaveReason::Slow;
            let conn_addr = conn.addr;
            if let Some(user) = self.room.leave(key, reason) {
                self.drop_uploads_of(key, user.session);
                self.call_left(key);
                match reason {
                    LeaveReason::Slow => self.stats.slow_disconnects += 1,
                    LeaveReason::Timeout => self.stats.timeouts += 1,
                    _ => {}
                }
                if self.log_gate.allow(conn_addr, self.now) {
                    tracing::info!(name = %user.name, session = user.session, %reason, "left");
                }
                self.hooks.on_leave(&user, reason);
            }
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if linger && !conn.output.is_empty() {
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
    fn remove(&mut self, key: usize) {
        if self.conns.contains(key) {
            let mut conn = self.conns.remove(key);
            self.addr_counts.closed(conn.addr, conn.counted_handshake);
            self.input_total -= conn.input_alloc;
            let downloads = std::mem::take(&mut conn.downloads);
            self.close_downloads(&downloads);
            let mut drained = 0;
            while drained < READ_BUDGET {
                match conn.stream.read(&mut self.scratch) {
                    Ok(n) if n > 0 => drained += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    _ => break,
                }
            }
            let _ = self.poll.registry().deregister(&mut conn.stream);
            tracing::debug!(peer = %conn.peer, key, "connection closed");
        }
    }

    /// Writes every connection's queued output once.
    fn flush_all(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        // Freeze this turn's broadcasts; every queue holding ranges of them
        // is on the dirty list and trades its ranges for slices here, before
        // anything can reuse the offsets.
        let turn = self.turn.split().freeze();
        for &key in &dirty {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.output.resolve(&turn);
            }
        }
        for &key in &dirty {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            if conn.doomed && conn.close_reason.is_none() {
                continue;
            }
            self.flush_one(key);
        }
        // Reuse the allocation if nothing was added meanwhile.
        if self.dirty.is_empty() {
            let mut dirty = dirty;
            dirty.clear();
            self.dirty = dirty;
        }
    }

    /// Writes one connection's queue. WRITABLE interest only while blocked.
    /// A connection with downloads asks the disk thread for more once its
    /// queue has room (the data comes back through the waker).
    fn flush_one(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let downloads = !conn.downloads.is_empty();
        match conn.output.write_to(&mut conn.stream) {
            Ok((n, flushed)) => {
                self.stats.bytes_out += n as u64;
                let want = flushed == Flushed::Blocked;
                if matches!(conn.phase, Phase::Closing { .. }) && !want {
                    self.remove(key);
                    return;
                }
                let token = Token(key + FIRST_CONN);
                want_writable(
                    &self.poll,
                    &mut conn.stream,
                    token,
                    want,
                    &mut conn.wants_write,
                );
                if downloads {
                    self.refill(key);
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

    /// Marks `key` for this turn's flush.
    pub(crate) fn mark_dirty(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(key);
        }
    }

    /// An uploader paused for the disk may be read again: it goes on the
    /// ready list (edge-triggered readiness will not repeat itself).
    pub(crate) fn resume_reading(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key)
            && !conn.ready
        {
            conn.ready = true;
            self.ready.push(key);
        }
    }

    /// Timers: handshake deadlines, heartbeat pings, idle timeouts, linger
    /// deadlines. One pass over all connections per tick (a quarter
    /// heartbeat): cheap, and no timer structure to keep in sync.
    ///
    /// At most [`EXPIRE_BUDGET`] connections are closed per pass; if more
    /// are due, `sweep_again` makes the next turn (after the events that
    /// arrived meanwhile) run another pass over the rest (`pings` false:
    /// only closes), so a mass expiry is spread over short turns.
    fn sweep(&mut self, pings: bool) {
        let heartbeat = self.config.heartbeat();
        let idle = self.config.idle_timeout();
        let mut expired = Vec::new();
        let mut to_ping = Vec::new();
        let mut gone = Vec::new();
        let mut due = 0usize;
        for (key, conn) in &self.conns {
            if conn.doomed {
                continue;
            }
            let close = match conn.phase {
                Phase::Handshake { deadline } => self.now >= deadline,
                Phase::Member => {
                    // An uploader paused for the disk, or a connection the
                    // input budget keeps waiting, is alive: we stopped
                    // reading it, not the other way round.
                    let last = if conn.paused || conn.starved {
                        self.now
                    } else {
                        conn.last_rx
                    };
                    let silent = self.now.saturating_duration_since(last);
                    if silent < idle
                        && pings
                        && silent >= heartbeat
                        && self.now.saturating_duration_since(conn.last_ping) >= heartbeat
                    {
                        to_ping.push(key);
                    }
                    silent >= idle
                }
                Phase::Closing { deadline } => self.now >= deadline,
            };
            if !close {
                continue;
            }
            due += 1;
            if due > EXPIRE_BUDGET {
                continue;
            }
            match conn.phase {
                Phase::Handshake { .. } => expired.push(key),
                _ => gone.push(key),
            }
        }
        self.sweep_again = due > EXPIRE_BUDGET;
        if !expired.is_empty() {
            // One frame shared by every connection that timed out.
            let frame = error_frame(
                ErrorCode::HandshakeTimeout,
                "no hello within the handshake timeout",
                None,
            );
            for key in expired {
                self.stats.errors_sent += 1;
                if let Some(conn) = self.conns.get(key)
                    && self.log_gate.allow(conn.addr, self.now)
                {
                    tracing::info!(peer = %conn.peer, code = %ErrorCode::HandshakeTimeout, "protocol error");
                }
                self.push_private(key, frame.clone());
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.close_reason = Some(LeaveReason::Error);
                }
                self.doom(key, LeaveReason::Error);
            }
        }
        for key in gone {
            match self.conns.get(key).map(|c| c.phase) {
                Some(Phase::Closing { .. }) => self.remove(key),
                Some(_) => self.doom(key, LeaveReason::Timeout),
                None => {}
            }
        }
        if to_ping.is_empty() {
            return;
        }
        self.ping_seq += 1;
        let ping = encode_server(&ServerMessage::Ping(Seq { seq: self.ping_seq }));
        let now = self.now;
        let (_, mut out) = self.outbox();
        for key in to_ping {
            if let Some(conn) = out.conns.get_mut(key) {
                conn.last_ping = now;
            }
            out.push(key, ping.clone());
        }
    }

    /// Queues an error frame for `key`. Fatal codes close the connection
    /// once the frame is flushed (reason `error`).
    pub(crate) fn protocol_error(
        &mut self,
        key: usize,
        code: ErrorCode,
        message: &str,
        reference: Option<u64>,
    ) {
        self.protocol_error_about(key, code, message, reference, None);
    }

    /// Like [`Reactor::protocol_error`], naming the transfer it is about.
    pub(crate) fn protocol_error_about(
        &mut self,
        key: usize,
        code: ErrorCode,
        message: &str,
        reference: Option<u64>,
        transfer: Option<u64>,
    ) {
        let (rate, burst, now) = (self.config.rate_per_sec, self.config.rate_burst, self.now);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut code = code;
        let mut message = message;
        if !code.is_fatal()
            && let Some((k, charged)) = self.frame_charge.as_mut()
            && *k == key
            && !*charged
        {
            // An answer to a frame not charged yet: the frame is charged now,
            // and without a token the answer is `rate_limited` instead.
            *charged = true;
            if !conn.bucket.take(rate, burst, now) {
                code = ErrorCode::RateLimited;
                message = RATE_LIMITED_MSG;
            }
        }
        if code != ErrorCode::RateLimited && conn.errors_logged < ERRORS_LOGGED {
            conn.errors_logged += 1;
            if self.log_gate.allow(conn.addr, now) {
                tracing::info!(peer = %conn.peer, %code, message, "protocol error");
            }
        }
        self.stats.errors_sent += 1;
        let frame = if code == ErrorCode::RateLimited && reference.is_none() && transfer.is_none() {
            self.rate_limited_frame.clone()
        } else {
            error_frame_about(code, message, reference, transfer)
        };
        self.push_private(key, frame);
        if code.is_fatal()
            && let Some(conn) = self.conns.get_mut(key)
        {
            conn.close_reason = Some(LeaveReason::Error);
            self.doom(key, LeaveReason::Error);
        }
    }

    /// Runs what other threads asked for.
    fn drain_commands(&mut self) {
        loop {
            match self.commands.try_recv() {
                Ok(cmd) => self.command(cmd),
                Err(TryRecvError::Empty) => return,
                // Every handle is gone: nobody can ask for shutdown any more,
                // but the server keeps serving its clients.
                Err(TryRecvError::Disconnected) => return,
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Broadcast(text) => {
                let Some(text) = fit_text(text, self.config.max_text_bytes) else {
                    return;
                };
                let ts = now_ms();
                let (room, mut out) = self.outbox();
                room.system("server", text, ts, &mut out);
                self.stats.messages += 1;
            }
            Command::Users(reply) => {
                let _ = reply.send(self.room.users());
            }
            Command::Kick { session, reply } => {
                let key = self.room.key_of_session(session);
                if let Some(key) = key {
                    self.kick(key);
                }
                let _ = reply.send(key.is_some());
            }
            Command::Stats(reply) => {
                let mut stats = self.stats.clone();
                stats.connections = self.conns.len();
                stats.members = self.room.len();
                stats.call_members = self.call.len();
                let _ = reply.send(stats);
            }
            Command::Shutdown => self.begin_shutdown(),
        }
    }

    /// Stops accepting, tells every member it was removed (`left` about
    /// itself, reason `shutdown`), and lets the loop flush and finish.
    fn begin_shutdown(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        tracing::info!(members = self.room.len(), "shutting down");
        // Whoever joined this turn gets its welcome before the goodbye.
        self.flush_presence();
        self.shutdown_deadline = Some(self.now + LINGER);
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        self.call.clear();
        self.close_voice_conns();
        let ts = now_ms();
        for (key, user) in self.room.clear() {
            let frame = encode_server(&ServerMessage::Left(Left {
                name: user.name.clone(),
                session: user.session,
                ts,
                reason: LeaveReason::Shutdown,
            }));
            self.hooks.on_leave(&user, LeaveReason::Shutdown);
            let (_, mut out) = self.outbox();
            out.push(key, frame);
        }
        let deadline = self.now + LINGER;
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.output.is_empty() {
                self.remove(key);
            } else {
                conn.phase = Phase::Closing { deadline };
                conn.close_reason = Some(LeaveReason::Shutdown);
            }
        }
    }

    /// The voice port's number, if the server has one.
    pub(crate) fn voice_port_number(&self) -> Option<u16> {
        let voice = self.voice.as_ref()?;
        voice.udp.local_addr().ok().map(|a| a.port())
    }

    /// Whether the server is shutting down.
    pub(crate) fn shutdown_began(&self) -> bool {
        self.shutdown_deadline.is_some()
    }
}

/// Registers WRITABLE interest for a stream only while it has output that
/// the socket did not take (`want`); `registered` tracks what the poll has,
/// so the syscall happens only on a change.
pub(crate) fn want_writable(
    poll: &Poll,
    stream: &mut TcpStream,
    token: Token,
    want: bool,
    registered: &mut bool,
) {
    if want == *registered {
        return;
    }
    let interest = if want {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    };
    if poll.registry().reregister(stream, token, interest).is_ok() {
        *registered = want;
    }
}

/// Pending connections the kernel may hold for us (it caps this at
/// `net.core.somaxconn`). mio's default of 1024 overflows in a connection
/// storm while a loop turn is busy writing, and every dropped SYN costs the
/// client a one-second retransmission.
const LISTEN_BACKLOG: i32 = 4096;

/// A non-blocking listener with address reuse and a deep accept queue.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Binds the voice port: TCP and UDP on the same port number. With port 0
/// the UDP socket must take the port the TCP listener was given, which may
/// be taken for UDP: then try another port, a few times.
fn bind_voice(addr: SocketAddr) -> Result<(TcpListener, UdpSocket, SocketAddr), ServerError> {
    let bind_err = |addr| move |source| ServerError::Bind { addr, source };
    let mut attempts = if addr.port() == 0 { 16 } else { 1 };
    loop {
        let tcp = listen(addr).map_err(bind_err(addr))?;
        let bound = tcp.local_addr().map_err(bind_err(addr))?;
        match UdpSocket::bind(bound) {
            Ok(udp) => return Ok((tcp, udp, bound)),
            Err(e) if attempts > 1 && e.kind() == io::ErrorKind::AddrInUse => attempts -= 1,
            Err(source) => {
                return Err(ServerError::Bind {
                    addr: bound,
                    source,
                });
            }
        }
    }
}

/// A text from the server side (a hook's rewrite, a broadcast) held to the
/// limits clients rely on: `None` if blank, else cut to `max` bytes at a
/// character boundary.
pub(crate) fn fit_text(mut text: String, max: usize) -> Option<String> {
    if text.trim().is_empty() {
        return None;
    }
    let keep = crate::protocol::text::cut(&text, max).len();
    text.truncate(keep);
    Some(text)
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
    }))
}

/// Appends `data` to a connection's input. A buffer too small is replaced
/// by one of exactly the size needed: a partial frame's buffer was already
/// sized to the whole frame when its room was taken from the input budget,
/// so growth happens only on a first read or past a frame's end, and a
/// 1 MiB frame costs 1 MiB, not the 2 MiB a doubling buffer would reach.
fn append_input(conn: &mut Connection, data: &[u8]) {
    let need = conn.input.len() + data.len();
    if conn.input.capacity() < need {
        let mut grown = BytesMut::with_capacity(need);
        grown.extend_from_slice(&conn.input);
        conn.input = grown;
        conn.input_alloc = conn.input.capacity();
    }
    conn.input.extend_from_slice(data);
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
