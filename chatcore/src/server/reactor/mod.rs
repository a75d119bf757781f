//! The reactor: one `mio::Poll` loop that owns every socket.
//!
//! One turn: wait for events (the timeout is the next timer deadline, or zero
//! when a connection still has unread input), accept until `WouldBlock`, read
//! each ready connection within a budget (fairness: a flooder is served a
//! slice and put on the `ready` list for the next turn), hand every decoded
//! frame to [`session::handle_frame`], announce presence changes, then flush
//! all output once (one vectored write per connection per turn, however many
//! broadcasts it got). Every event may be spurious; a stale token finds
//! nothing and is ignored.
//!
//! Only the loop lives here; what a message does is in `session/`, on a
//! [`Ctx`] lent from the reactor's fields (no handler sees the reactor).
//! Socket reads and writes happen in the reactor's files and in the two
//! connection types it owns: [`Connection`] (chat) and
//! `voice::conn::VoiceConn` (voice over TCP). Each connection derives its
//! own poll interest from its state (`interest()`), and one function,
//! [`crate::server::conn::apply_interest`], tells the poll. (The transfer
//! handler also sizes a downloading connection's kernel send buffer.)
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | tokens, budgets, the `Reactor` and its `bind`, `run`, `turn`, commands, shutdown |
//! | `input.rs` | chat accepts and refusals, reads within the read, frame and input budgets |
//! | `output.rs` | closing doomed connections, the once-per-turn flush |
//! | `timers.rs` | handshake, heartbeat, idle and linger deadlines |
//! | `voice_io.rs` | the voice port's UDP socket and TCP accepts; the relay's sends carried out |

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::protocol::voice::MAX_PACKET;
use crate::protocol::{ErrorCode, LeaveReason};
use crate::server::config::ServerConfig;
use crate::server::conn::peers::{AddrCounts, LogGate};
use crate::server::conn::{Connection, Phase};
use crate::server::error::ServerError;
use crate::server::handle::{Beat, Command, ServerHandle, ServerStats};
use crate::server::hooks::Hooks;
use crate::server::listen;
use crate::server::metrics::Metrics;
use crate::server::outbox::{ConnOutbox, error_frame};
use crate::server::room::{Lobby, Room, RoomSettings, Rooms};
use crate::server::session::{self, Ctx};
use crate::server::store::{Store, StoreSettings};
use crate::server::transfer::disk::{DiskWorker, Spool};
use crate::server::transfer::{OfferLimits, Transfers};
use crate::server::voice::Calls;
use crate::server::voice::VoicePath;
use crate::server::voice::conn::{FIRST_VOICE_CONN, VoiceConns};
use std::collections::HashMap;
use voice_io::VoicePort;

mod input;
mod output;
mod timers;
mod voice_io;
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
/// Connections accepted per loop turn; the rest wait for the next turn, so a
/// connection flood cannot make one turn long.
const ACCEPT_BUDGET: usize = 512;
/// Connections one timer sweep may close (handshake and idle timeouts); the
/// rest are closed by another sweep in the next turn. Each close costs a few
/// syscalls, so thousands expiring at once would otherwise make one turn
/// last hundreds of milliseconds.
const EXPIRE_BUDGET: usize = 256;
/// Reads of connections still in the TLS handshake per loop turn: each can
/// cost a key exchange and a signature (around 0.1 ms), so one turn spends
/// at most about 50 ms on them however many thousands arrive; the rest wait
/// on the ready list for the next turn. Not smaller: what makes a storm
/// turn long is the flush of that turn's `presence` to every member, so a
/// small budget (64 was tried) multiplies the flushes and tripled the time
/// 10 000 TLS clients took to get in (docs/architecture.md, "TLS").
const HANDSHAKE_BUDGET: usize = 512;
/// An input buffer larger than this is replaced by a small one once the big
/// frame it held is gone.
const INPUT_KEEP: usize = 64 * 1024;

/// The event loop and all state it owns. Its fields are private to the
/// reactor's files (`mod.rs`, `input.rs`, `voice_io.rs`); handlers get a
/// [`Ctx`] lent from them.
pub(crate) struct Reactor {
    /// The one poll every socket is registered with.
    poll: Poll,
    /// Reused event buffer.
    events: Events,
    /// `None` once shutdown began (no more accepts).
    listener: Option<TcpListener>,
    /// The voice port, unless disabled.
    voice: Option<VoicePort>,
    /// The voice port's number, for `voice_joined`.
    voice_port: Option<u16>,
    /// Every room's voice call: members and their bindings.
    calls: Calls,
    /// TCP fallback voice connections.
    voice_conns: VoiceConns,
    /// Voice connections with input left over from a cut-short turn.
    voice_ready: Vec<usize>,
    /// The voice UDP socket has datagrams left over from a cut-short turn.
    voice_udp_more: bool,
    /// Receives voice datagrams: one byte longer than the largest valid
    /// packet, so an oversized datagram shows as too long and is dropped.
    datagram: Vec<u8>,
    /// Where the audio packet being relayed goes; kept to reuse its
    /// allocation from packet to packet.
    relay_to: Vec<VoicePath>,
    /// Chat connections; token = key + `FIRST_CONN`.
    conns: Slab<Connection>,
    /// Members, names, ids, history, presence.
    room: Room,
    /// Names and sessions of everyone logged in.
    lobby: Lobby,
    /// The named rooms (the default room is `room`).
    rooms: Rooms,
    /// Roles, bans, mutes and the operators.
    moderation: crate::server::moderation::Moderation,
    /// Direct messages waiting for the store; the registered names.
    dms: session::dm::Dms,
    /// Every limit and timeout.
    config: ServerConfig,
    /// The embedder's callbacks.
    hooks: Box<dyn Hooks>,
    /// What `ServerHandle`s ask for.
    commands: Receiver<Command>,
    /// Shared read buffer: bytes are copied from here into a connection's
    /// input only when a partial frame must wait for more.
    scratch: Box<[u8]>,
    /// Connections with input left over from a cut-short turn.
    ready: Vec<usize>,
    /// Connections with output queued this turn.
    dirty: Vec<usize>,
    /// Connections whose output this turn came only from large fan-outs
    /// (moved to `bulk` by the flush).
    bulk_new: Vec<usize>,
    /// Connections waiting for their bulk write, oldest first: each flush
    /// writes every `dirty` connection, then bulk ones for at most
    /// `BULK_SLICE`; the rest wait for the next turn, which polls without
    /// waiting. Entries of connections written meanwhile are skipped.
    bulk: std::collections::VecDeque<usize>,
    /// File transfers and their spool.
    transfers: Transfers,
    /// The disk thread: spool writes, hashing, reads.
    disk: DiskWorker,
    /// Download token -> the connection it belongs to.
    download_keys: HashMap<u64, usize>,
    /// Every broadcast frame of this turn, back to back; members' queues
    /// hold ranges of it until the flush freezes it and hands out slices.
    turn: BytesMut,
    /// Connections to close at the end of the current step, with the reason.
    doomed: Vec<(usize, LeaveReason)>,
    /// Counters for `ServerHandle::stats` (`deliveries` is kept apart).
    stats: ServerStats,
    /// Frames handed to connections: counted by the outbox, which cannot
    /// borrow `stats` while a handler holds it.
    deliveries: u64,
    /// Time at the start of this turn; one clock read per turn.
    now: Instant,
    /// When the timers are swept next.
    next_sweep: Instant,
    /// Earliest time the next batch of joins/leaves may be announced.
    next_presence: Instant,
    /// Accepting is paused (out of file descriptors) until then.
    accept_paused_until: Option<Instant>,
    /// Set when shutdown began: the loop ends when every connection is gone
    /// or at this deadline.
    shutdown_deadline: Option<Instant>,
    /// Sequence number of the server's heartbeat pings.
    ping_seq: u64,
    /// Connections per address group, for the per-address caps.
    addr_counts: AddrCounts,
    /// Per-address log rate limit.
    log_gate: LogGate,
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
    frame_charge: Option<(usize, bool)>,
    /// The `rate_limited` error without a `ref`, encoded once and shared.
    rate_limited_frame: Bytes,
    /// TLS for new chat connections, or `None` for plain TCP. Replaced by
    /// [`Command::SetTls`]; a connection keeps the configuration it was
    /// accepted with.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Reads of connections in the TLS handshake this turn, against
    /// [`HANDSHAKE_BUDGET`].
    handshakes_this_turn: usize,
    /// Accounts and the store's auth thread, if `store_path` is set.
    /// Declared before `store` so the auth thread ends first.
    accounts: Option<crate::server::accounts::Accounts>,
    /// The history store thread, if `store_path` is set. Dropping it (when
    /// the loop ends) lets the thread commit what it was sent, then joins it.
    store: Option<Store>,
    /// The store's last commit failed (failures are logged once a streak).
    store_failing: bool,
    /// History pages asked of the store and not answered yet.
    history_waits: session::history::HistoryWaits,
    /// When the loop last turned, for [`ServerHandle::idle_for`].
    beat: Arc<Beat>,
    /// The metric handles (no-ops unless the embedder installed a recorder).
    metrics: Metrics,
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
        let beat = Arc::new(Beat::new(Instant::now()));
        let (handle, commands) = ServerHandle::new(Arc::clone(&waker), Arc::clone(&beat));
        let spool_base = config.spool_base();
        let spool = Spool::open(&spool_base).map_err(|source| ServerError::Spool {
            path: spool_base,
            source,
        })?;
        let store = match &config.store_path {
            Some(path) => Some(Store::open(
                &StoreSettings {
                    path: path.clone(),
                    sync: config.store_sync,
                    keep_messages: config.history_keep_messages,
                    keep_days: config.history_keep_days,
                    history_len: config.history_len,
                },
                Arc::clone(&waker),
            )?),
            None => None,
        };
        // After the store: it has applied the schema migrations.
        let accounts = match &config.store_path {
            Some(path) => Some(crate::server::accounts::Accounts::new(
                crate::server::accounts::thread::AuthWorker::start(path, Arc::clone(&waker))
                    .map_err(|e| ServerError::Thread(format!("accounts: {e}")))?,
            )),
            None => None,
        };
        let disk = DiskWorker::start(waker, spool, config.max_open_spool_files)
            .map_err(|e| ServerError::Thread(e.to_string()))?;

        let bind_err = |addr| move |source| ServerError::Bind { addr, source };
        let mut listener = listen::listen(config.listen).map_err(bind_err(config.listen))?;
        let local_addr = listener.local_addr().map_err(bind_err(config.listen))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(ServerError::Poll)?;

        let mut voice = None;
        let mut voice_addr = None;
        let mut voice_port = None;
        if let Some(addr) = config.voice_listen {
            let (mut tcp, mut udp, bound) = listen::bind_voice(addr)?;
            poll.registry()
                .register(&mut tcp, VOICE_TCP, Interest::READABLE)
                .map_err(ServerError::Poll)?;
            poll.registry()
                .register(&mut udp, VOICE_UDP, Interest::READABLE)
                .map_err(ServerError::Poll)?;
            voice = Some(VoicePort::new(udp, tcp, &config));
            voice_addr = Some(bound);
            voice_port = Some(bound.port());
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
        let mut room = Room::new(RoomSettings {
            history_len: config.history_len,
            heartbeat_ms: config.heartbeat_ms,
            max_frame: config.max_frame,
            max_text: u32::try_from(config.max_text_bytes).unwrap_or(u32::MAX),
        });
        let mut rooms = Rooms::default();
        let mut moderation = crate::server::moderation::Moderation::new(&config.operators);
        let mut dms = session::dm::Dms::default();
        let store = store.map(|(store, loaded)| {
            dms.registered.extend(loaded.accounts);
            for (room, account, role) in loaded.roles {
                moderation.load_role(room, account, role);
            }
            for sanction in loaded.sanctions {
                moderation.load_sanction(sanction);
            }
            for (room, account) in loaded.invites {
                moderation.invite(&room, format!("a:{account}"));
            }
            let recent = loaded.recent.into_iter().map(|c| c.into_chat()).collect();
            room.use_store(loaded.next_id, recent);
            // The named rooms the store kept, with their recent history.
            for saved in loaded.rooms {
                let id = rooms.create(&room, saved.name, saved.topic);
                if let Some(named) = rooms.get_mut(id) {
                    named.set_history(saved.recent.into_iter().map(|c| c.into_chat()).collect());
                    named.set_invite_only(saved.invite_only);
                }
            }
            store
        });
        let voice_registry = poll.registry().try_clone().map_err(ServerError::Poll)?;
        let now = Instant::now();
        let log_lines = config.log_lines_per_address;
        let tls = config.tls.as_ref().map(|t| Arc::clone(t.rustls_config()));
        let reactor = Reactor {
            poll,
            events: Events::with_capacity(1024),
            listener: Some(listener),
            voice,
            calls: Calls::default(),
            voice_conns: VoiceConns::new(voice_registry),
            voice_port,
            voice_ready: Vec::new(),
            voice_udp_more: false,
            relay_to: Vec::new(),
            datagram: vec![0; MAX_PACKET + 1],
            conns: Slab::new(),
            room,
            lobby: Lobby::default(),
            rooms,
            moderation,
            dms,
            next_sweep: now + config.tick(),
            next_presence: now,
            config,
            hooks,
            commands,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            ready: Vec::new(),
            dirty: Vec::new(),
            bulk_new: Vec::new(),
            bulk: std::collections::VecDeque::new(),
            transfers,
            disk,
            download_keys: HashMap::new(),
            turn: BytesMut::new(),
            doomed: Vec::new(),
            stats: ServerStats::default(),
            deliveries: 0,
            now,
            accept_paused_until: None,
            shutdown_deadline: None,
            ping_seq: 0,
            addr_counts: AddrCounts::default(),
            log_gate: LogGate::new(log_lines),
            input_total: 0,
            starved: Vec::new(),
            accept_more: false,
            sweep_again: false,
            frame_charge: None,
            rate_limited_frame: error_frame(
                ErrorCode::RateLimited,
                session::RATE_LIMITED_MSG,
                None,
            ),
            tls,
            handshakes_this_turn: 0,
            accounts,
            store,
            store_failing: false,
            history_waits: session::history::HistoryWaits::default(),
            beat,
            metrics: Metrics::new(),
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
            self.beat.turned(self.now);
            self.turn();
            let took = self.now.elapsed();
            let took_us = took.as_micros() as u64;
            self.stats.longest_turn_us = self.stats.longest_turn_us.max(took_us);
            self.metrics.turn(took.as_secs_f64());
            self.publish_metrics();
            if let Some(deadline) = self.shutdown_deadline
                && (self.conns.is_empty() || self.now >= deadline)
            {
                tracing::info!(
                    left_open = self.conns.len(),
                    messages = self.stats.messages,
                    deliveries = self.deliveries,
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

    /// The counters with the values only the loop's own fields know.
    fn snapshot(&self) -> ServerStats {
        let mut stats = self.stats.clone();
        self.fill_live(&mut stats);
        stats
    }

    fn fill_live(&self, stats: &mut ServerStats) {
        stats.deliveries = self.deliveries;
        stats.connections = self.conns.len();
        stats.members = self.lobby.len();
        stats.call_members = self.calls.len();
    }

    /// Copies this turn's counters to the metric handles (a store each).
    fn publish_metrics(&mut self) {
        let mut stats = std::mem::take(&mut self.stats);
        self.fill_live(&mut stats);
        self.metrics.publish(&stats);
        self.stats = stats;
    }

    /// The sweep's metrics: members per room, queued output, spool use.
    fn sweep_metrics(&mut self) {
        let queued: usize = self.conns.iter().map(|(_, c)| c.output.len()).sum();
        let default = (self.config.default_room_name.clone(), self.room.len());
        let named = self.rooms.list();
        let count = named.len();
        let rooms = std::iter::once(default).chain(
            named
                .into_iter()
                .map(|r| (r.room, usize::try_from(r.members).unwrap_or(usize::MAX))),
        );
        self.metrics
            .sweep(rooms, count, queued, self.transfers.spool_used());
    }

    /// How long the next poll may wait.
    fn poll_timeout(&self) -> Duration {
        if !self.ready.is_empty()
            || !self.voice_ready.is_empty()
            || self.voice_udp_more
            || self.accept_more
            || self.sweep_again
            || !self.bulk.is_empty()
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
        if self.room.presence_pending() || self.rooms.presence_pending() {
            next = next.min(self.next_presence);
        }
        next.saturating_duration_since(Instant::now())
    }

    /// Handles one batch of events, then the deferred work of the turn.
    fn turn(&mut self) {
        self.handshakes_this_turn = 0;
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for event in events.iter() {
            match event.token() {
                LISTENER => self.accept_all(),
                WAKER => {
                    self.drain_commands();
                    session::transfer::drain_disk(&mut self.ctx());
                    session::store::drain_store(&mut self.ctx());
                    session::account::drain_auth(&mut self.ctx());
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
            session::transfer::expire_offers(&mut self.ctx());
            self.sweep(true);
            self.voice_sweep();
            self.log_gate.sweep(self.now);
            if let Some(a) = self.accounts.as_mut() {
                a.throttle.sweep(self.now);
            }
            self.moderation.sweep(now_ms());
            self.sweep_metrics();
            self.next_sweep = self.now + self.config.tick();
        }
        // This turn's chats go to the store in one batch (one transaction);
        // they are delivered when it answers (write before deliver).
        session::store::submit_store(&mut self.ctx());
        self.wake_starved();
        self.close_doomed();
        self.end_of_turn_presence();
        self.flush_all();
        // The store commits while the loop writes: a commit already
        // answered is delivered in this turn, not one poll later (the
        // waker's event then finds the channel empty).
        // (With named rooms, always: a `try_recv` costs less than summing
        // every room's pending chats.)
        if self.room.pending_chats() > 0 || !self.rooms.is_empty() || self.dms.is_pending() {
            session::store::drain_store(&mut self.ctx());
        }
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
        let due = self.now >= self.next_presence;
        let ctx = &mut self.ctx();
        ctx.room.flush_welcomes(&mut ctx.out);
        // Only rooms with a `room_joined` or presence waiting are visited
        // (none on most turns: then not even the clock is read).
        if ctx.rooms.presence_pending() {
            ctx.rooms.flush(now_ms(), due, &mut ctx.out);
        }
        if ctx.room.presence_pending() && due {
            self.ctx().flush_presence();
            self.next_presence = self.now + PRESENCE_BATCH;
        } else if due && self.rooms.presence_pending() {
            self.next_presence = self.now + PRESENCE_BATCH;
        }
    }

    /// What the session handlers may touch, lent for one step.
    fn ctx(&mut self) -> Ctx<'_> {
        Ctx {
            room: &mut self.room,
            lobby: &mut self.lobby,
            rooms: &mut self.rooms,
            moderation: &mut self.moderation,
            dms: &mut self.dms,
            out: ConnOutbox {
                conns: &mut self.conns,
                dirty: &mut self.dirty,
                bulk: &mut self.bulk_new,
                doomed: &mut self.doomed,
                deliveries: &mut self.deliveries,
                max_output: self.config.max_output_bytes,
                turn: &mut self.turn,
            },
            calls: &mut self.calls,
            voice_conns: &mut self.voice_conns,
            voice_port: self.voice_port,
            transfers: &mut self.transfers,
            disk: &self.disk,
            download_keys: &mut self.download_keys,
            config: &self.config,
            hooks: &mut *self.hooks,
            stats: &mut self.stats,
            addr_counts: &mut self.addr_counts,
            log_gate: &mut self.log_gate,
            ready: &mut self.ready,
            frame_charge: &mut self.frame_charge,
            rate_limited_frame: &self.rate_limited_frame,
            now: self.now,
            shutting_down: self.shutdown_deadline.is_some(),
            accounts: self.accounts.as_mut(),
            store: self.store.as_ref(),
            store_failing: &mut self.store_failing,
            history_waits: &mut self.history_waits,
            metrics: &mut self.metrics,
        }
    }

    /// Marks `key` to be closed at the end of this step.
    fn doom(&mut self, key: usize, reason: LeaveReason) {
        self.ctx().out.doom(key, reason);
    }

    /// Marks `key` for this turn's flush.
    fn mark_dirty(&mut self, key: usize) {
        self.ctx().out.mark_dirty(key);
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
                let Some(text) = session::fit_text(text, self.config.max_text_bytes) else {
                    return;
                };
                let ts = now_ms();
                let ctx = &mut self.ctx();
                ctx.room.system("server", text, ts, &mut ctx.out);
                self.stats.messages += 1;
            }
            Command::Users(reply) => {
                let _ = reply.send(self.room.users());
            }
            Command::Members(reply) => {
                let _ = reply.send(self.lobby.users());
            }
            Command::Rooms(reply) => {
                let mut rooms = vec![crate::protocol::RoomInfo {
                    invite_only: false,
                    room: self.config.default_room_name.clone(),
                    topic: self.room.topic().to_owned(),
                    members: self.room.len() as u64,
                    default: true,
                }];
                rooms.extend(self.rooms.list());
                let _ = reply.send(rooms);
            }
            Command::Notice(text) => {
                let Some(text) = session::fit_text(text, self.config.max_text_bytes) else {
                    return;
                };
                tracing::info!(bytes = text.len(), "notice sent to every member");
                let msg = crate::protocol::ServerMessage::Notice(crate::protocol::Notice {
                    text,
                    ts: now_ms(),
                });
                let frame = crate::protocol::encode_server(&msg);
                let ctx = &mut self.ctx();
                for key in ctx.lobby.keys() {
                    ctx.push_private(key, frame.clone());
                }
            }
            Command::Reconfigure(new, reply) => {
                let restart = self.config.apply_runtime(&new);
                tracing::info!("run-time settings reloaded");
                let _ = reply.send(restart);
            }
            Command::Kick { session, reply } => {
                let key = self.room.key_of_session(session);
                if let Some(key) = key {
                    session::kick(&mut self.ctx(), key);
                }
                let _ = reply.send(key.is_some());
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Command::SetTls(tls, reply) => {
                let on = self.tls.is_some();
                if on {
                    self.tls = Some(Arc::clone(tls.rustls_config()));
                    self.stats.tls_reloads += 1;
                    tracing::info!(
                        fingerprint = %tls.fingerprint(),
                        "TLS certificate replaced for new connections"
                    );
                }
                let _ = reply.send(on);
            }
            Command::DeleteAccount { name, reply } => match &self.accounts {
                Some(a) => {
                    // No more messages kept for it while away.
                    self.dms
                        .registered
                        .remove(&crate::server::room::names::skeleton(&name));
                    let job = crate::server::accounts::thread::AuthJob::Delete { name, reply };
                    a.worker.submit(job);
                }
                None => {
                    let _ = reply.send(Err("this server has no account database".into()));
                }
            },
            Command::Moderate(action, reply) => {
                use crate::protocol::{ClientMessage, ErrorCode};
                use crate::server::moderation::Kind;
                use session::moderate::{self, Actor};
                let ctx = &mut self.ctx();
                let done = match action {
                    ClientMessage::Kick(m) => moderate::kick(ctx, Actor::Server, m, false),
                    ClientMessage::Ban(m) => moderate::kick(ctx, Actor::Server, m, true),
                    ClientMessage::Unban(m) => moderate::lift(ctx, Actor::Server, m, Kind::Ban),
                    ClientMessage::Mute(m) => moderate::mute(ctx, Actor::Server, m),
                    ClientMessage::Unmute(m) => moderate::lift(ctx, Actor::Server, m, Kind::Mute),
                    ClientMessage::SetRole(r) => moderate::set_role(ctx, Actor::Server, r),
                    ClientMessage::Delete(d) => moderate::delete(ctx, Actor::Server, d.id, d.room),
                    ClientMessage::RoomMode(m) => moderate::room_mode(ctx, Actor::Server, m),
                    ClientMessage::Invite(i) => moderate::invite(ctx, Actor::Server, i),
                    _ => Err((ErrorCode::BadMessage, "not a moderation action".into())),
                };
                let _ = reply.send(done);
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
        self.shutdown_deadline = Some(self.now + LINGER);
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        self.calls.clear();
        for key in self.voice_conns.keys() {
            self.voice_conns.close(key);
        }
        session::farewell(&mut self.ctx());
        let deadline = self.now + LINGER;
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.output_drained() {
                self.remove(key);
            } else {
                conn.phase = Phase::Closing { deadline };
                conn.close_reason = Some(LeaveReason::Shutdown);
            }
        }
    }
}
