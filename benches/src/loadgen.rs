//! The load generator: thousands of clients in one single-threaded `mio`
//! loop, so that one process on one core drives the server to its limits.
//!
//! Phases: connect (at `connect_rate`, at most `MAX_IN_FLIGHT` logins
//! pending so the listen backlog never overflows), wait until every client
//! has its `welcome`, send (message k goes from client k mod N at time
//! k / (N x rate): sends are spread evenly, not in bursts), then drain until
//! every expected delivery arrived or nothing moved for `drain`.
//! Each message's text starts with its send time (16 hex digits, ns since the
//! run began, on this process's monotonic clock); every receiver records
//! now minus that for every chat it gets.
//!
//! With [`Plan::rooms`] every client joins a named room right after its
//! `welcome` (client i: `r{i mod rooms}`; with [`Plan::big_room_clients`]
//! the first M clients join `big` and the rest are spread over the small
//! rooms) and counts as in only once its `room_joined` arrived; its chats go
//! to that room. Deliveries are expected per room (each accepted chat times
//! the members of its room); a chat from any other room, the default one
//! included, is counted as `wrong_room`. The big room's clients send on
//! their own schedule ([`Plan::big_room_rate`]), so a 10 000-member room
//! can be kept to a rate the machine can deliver while the small rooms run
//! at [`Plan::rate`].
//!
//! With [`Plan::tls`] every client drives a `rustls::ClientConnection`
//! inside the same loop, without blocking: socket bytes are read into the
//! shared scratch buffer with one syscall (as on the plain path), fed to
//! rustls with `read_tls` from that slice, `process_new_packets` decrypts,
//! and the plaintext goes through the same framing; writes go through
//! `writer()` and leave with `write_tls` until the socket says WouldBlock,
//! with WRITABLE interest while rustls `wants_write()`. The plain path does
//! not touch any of it (one `Option` test per read and write).

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chatcore::protocol::{
    ChatSend, ClientMessage, Hello, JoinRoom, PROTOCOL_VERSION, Seq, encode_client, frame_len,
};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::ServerName;
use socket2::{Domain, Protocol, Socket, Type};

use crate::fastparse;
use crate::histogram::Histogram;

/// Logins in progress at once.
const MAX_IN_FLIGHT: usize = 1000;
/// Bytes of the send timestamp at the start of each text.
const STAMP: usize = 16;
/// Largest frame the generator accepts from the server.
const MAX_FRAME: u32 = 16 * 1024 * 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Chat address of the server.
    pub server: SocketAddr,
    /// Clients to connect.
    pub clients: usize,
    /// Messages every client sends (total = clients x this).
    pub messages: u64,
    /// Messages per second per client.
    pub rate: f64,
    /// Bytes of chat text per message (at least 16).
    pub payload: usize,
    /// New connections per second (0: as fast as possible).
    pub connect_rate: f64,
    /// Source addresses to spread clients over (empty: let the OS choose).
    pub sources: Vec<IpAddr>,
    /// Give up logging in after this long.
    pub login_timeout: Duration,
    /// After the last send, wait this long without progress before stopping.
    pub drain: Duration,
    /// Speak TLS with this client configuration (one shared `Arc` for all
    /// clients); `None` speaks plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Named small rooms the clients are spread over (`r0`, `r1`...); 0
    /// keeps everyone in the default room, as before rooms existed.
    pub rooms: usize,
    /// The first this many clients join one room `big` instead of a small
    /// room (needs `rooms` >= 1): the big-room-beside-small-rooms scenario.
    pub big_room_clients: usize,
    /// Messages per second per big-room client: its own schedule, because
    /// every big-room chat costs as many deliveries as the room has members.
    pub big_room_rate: f64,
    /// Chats sent into the big room in all, by its members in turn (not a
    /// count per member: at 0.01/s a member sends less than one chat in a
    /// 10 s run, and the big room's sending must end with the small rooms').
    pub big_room_total: u64,
}

/// The room of the big-room scenario.
pub const BIG_ROOM: &str = "big";

/// The room client `i` joins under `plan`, as an index into
/// [`room_names`]: the big room for the first `big_room_clients`, else
/// small room `(i - big_room_clients) mod rooms`; always 0 (the default
/// room) without rooms.
pub fn room_of(plan: &Plan, i: usize) -> usize {
    if plan.rooms == 0 {
        0
    } else if i < plan.big_room_clients {
        plan.rooms
    } else {
        (i - plan.big_room_clients) % plan.rooms
    }
}

/// The rooms of `plan` by index (see [`room_of`]): `None` is the default
/// room (only without rooms), then `r0`.. `r{rooms-1}`, then `big` when
/// there is a big room.
pub fn room_names(plan: &Plan) -> Vec<Option<String>> {
    if plan.rooms == 0 {
        return vec![None];
    }
    let mut names: Vec<Option<String>> = (0..plan.rooms).map(|k| Some(format!("r{k}"))).collect();
    if plan.big_room_clients > 0 {
        names.push(Some(BIG_ROOM.to_owned()));
    }
    names
}

/// Deliveries and latency of one kind of room (the small rooms, or the big
/// one), so the big-room scenario can show whether the small rooms suffer.
#[derive(Debug, Default)]
pub struct RoomClass {
    /// Clients in rooms of this kind (as planned).
    pub clients: usize,
    /// Chats written into these rooms.
    pub messages_sent: u64,
    /// Accepted chats x members of their room.
    pub deliveries_expected: u64,
    /// Chats of these rooms received by their members.
    pub deliveries_received: u64,
    /// Delivery latency in these rooms, microseconds.
    pub latency: Histogram,
}

/// What happened.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Clients asked for.
    pub clients: usize,
    /// Clients that got a `welcome`.
    pub connected: usize,
    /// Connections that failed or were closed by the server.
    pub failed: usize,
    /// Seconds from the first connect to the last `welcome`: with TLS this
    /// includes every client's handshake (the handshake storm figure).
    pub login_s: f64,
    /// Chat messages written.
    pub messages_sent: u64,
    /// Messages the server refused (error frames, e.g. `rate_limited`).
    pub rejected: u64,
    /// Accepted messages x members.
    pub deliveries_expected: u64,
    /// Chat frames received.
    pub deliveries_received: u64,
    /// A chat id seen twice by the same client.
    pub duplicates: u64,
    /// A chat id lower than one the client already had.
    pub out_of_order: u64,
    /// Seconds from the first send to the last delivery.
    pub total_s: f64,
    /// Delivery latency in microseconds.
    pub latency: Histogram,
    /// Fewest members any client learned of (welcome users + announced joins).
    pub presence_min_known: u64,
    /// Largest lag of the sender behind its schedule, in ms (if large, the
    /// generator was the bottleneck, not the server).
    pub max_send_lag_ms: f64,
    /// Seconds from the first connect until every client knew of every
    /// other (or the settling gave up).
    pub presence_s: f64,
    /// Frames from the server the generator could not read.
    pub unparsed: u64,
    /// Seconds the whole run took.
    pub wall_s: f64,
    /// Deliveries per second the plan asks for: messages per second in total
    /// times the members each one goes to.
    pub offered_per_s: f64,
    /// Whether the clients spoke TLS (so a JSON line says what it measured).
    pub tls: bool,
    /// TLS connections closed because rustls reported an error (bad record,
    /// alert, failed handshake): counted apart from plain closes.
    pub tls_errors: u64,
    /// Named small rooms of the plan (0: the default room only).
    pub rooms: usize,
    /// Clients of the plan's big room.
    pub big_room_clients: usize,
    /// Chats received from a room other than the receiver's own (the
    /// default room included, where nobody sends with rooms): each is a
    /// server error, and none counts as a delivery.
    pub wrong_room: u64,
    /// Clients whose `join` was refused (an `error` instead of
    /// `room_joined`); they are closed and counted in `failed` too.
    pub join_refused: u64,
    /// The small rooms (with rooms).
    pub small: RoomClass,
    /// The big room (with a big room).
    pub big: RoomClass,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Joining,
    /// Welcomed, its `join` sent, waiting for `room_joined`.
    EnteringRoom,
    Joined,
    Closed,
}

struct Client {
    stream: TcpStream,
    state: State,
    /// A partial frame carried over to the next read.
    leftover: Vec<u8>,
    /// Bytes the socket did not take yet.
    pending: Vec<u8>,
    last_id: u64,
    known: u64,
    wants_write: bool,
    /// The TLS session when the plan speaks TLS (boxed: rustls's state is
    /// large and most of the `Vec<Client>` walk touches only the rest).
    tls: Option<Box<rustls::ClientConnection>>,
    /// Its room, an index into the run's rooms (see [`room_of`]).
    room: usize,
    /// Its welcome came and its `join` must be written (frames are parsed
    /// where the poller is out of reach).
    send_join: bool,
    /// The server refused its `join`: the loop closes it.
    refused: bool,
}

/// One room of the run, as the generator tracks it.
struct Room {
    /// The room's name as the server writes it (empty: the default room).
    name: Vec<u8>,
    /// This room's chat frame (the stamp is rewritten before each send).
    frame: Vec<u8>,
    /// Where the stamp starts in `frame`.
    stamp_at: usize,
    /// The `join` frame (empty for the default room).
    join: Vec<u8>,
    /// Whether this is the big room (for the per-kind figures).
    big: bool,
    /// Clients in it now (after their `room_joined`).
    members: u64,
    /// Chats written into it.
    sent: u64,
    /// Its chats the server refused.
    rejected: u64,
    /// Its chats received by its members.
    received: u64,
}

/// One sending schedule: `total` chats from `senders` in turn (message k
/// from `senders[k mod len]`) at `rate` per sender per second, spread
/// evenly.
struct Schedule {
    senders: Vec<usize>,
    total: u64,
    rate: f64,
    sent: u64,
}

impl Schedule {
    fn total(&self) -> u64 {
        self.total
    }
    fn total_rate(&self) -> f64 {
        self.rate * self.senders.len() as f64
    }
}

/// Where `needle` starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Runs the plan; returns its outcome. `on_all_joined` runs once every
/// client is in, before the first message (to sample the server's memory
/// with idle connections).
pub fn run(plan: &Plan, on_all_joined: &mut dyn FnMut()) -> Result<Outcome> {
    let payload = plan.payload.max(STAMP);
    let mut poll = Poll::new().context("creating the poller")?;
    let mut events = Events::with_capacity(4096);
    let mut clients: Vec<Client> = Vec::with_capacity(plan.clients);
    let mut scratch = vec![0u8; 256 * 1024];
    // Decrypted bytes, drained from rustls between records (TLS only).
    let mut plain = vec![0u8; if plan.tls.is_some() { 64 * 1024 } else { 0 }];
    let server_name = ServerName::IpAddress(plan.server.ip().into());
    if plan.big_room_clients > 0 && plan.rooms == 0 {
        anyhow::bail!("a big room needs at least one small room");
    }
    let mut out = Outcome {
        clients: plan.clients,
        presence_min_known: u64::MAX,
        tls: plan.tls.is_some(),
        rooms: plan.rooms,
        big_room_clients: plan.big_room_clients.min(plan.clients),
        ..Outcome::default()
    };

    let text = "0".repeat(STAMP) + &"x".repeat(payload - STAMP);
    let mut rooms = Vec::new();
    for (k, name) in room_names(plan).into_iter().enumerate() {
        let frame = encode_client(&ClientMessage::Chat(ChatSend {
            room: name.clone(),
            text: text.clone(),
            reference: None,
        }))
        .to_vec();
        let stamp_at = find(&frame, text.as_bytes()).context("the chat frame holds its text")?;
        let join = match &name {
            Some(room) => encode_client(&ClientMessage::Join(JoinRoom {
                room: room.clone(),
                invite_only: false,
            }))
            .to_vec(),
            None => Vec::new(),
        };
        rooms.push(Room {
            name: name.map(String::into_bytes).unwrap_or_default(),
            frame,
            stamp_at,
            join,
            big: plan.big_room_clients > 0 && k == plan.rooms,
            members: 0,
            sent: 0,
            rejected: 0,
            received: 0,
        });
    }
    // Who sends when: everyone at `rate`, or the small rooms at `rate`
    // and the big room at `big_room_rate`.
    let big = out.big_room_clients;
    let mut schedules: Vec<Schedule> = vec![Schedule {
        senders: (big..plan.clients).collect(),
        total: plan.messages * (plan.clients - big) as u64,
        rate: plan.rate,
        sent: 0,
    }];
    if big > 0 {
        schedules.push(Schedule {
            senders: (0..big).collect(),
            total: plan.big_room_total,
            rate: plan.big_room_rate,
            sent: 0,
        });
    }
    schedules.retain(|s| !s.senders.is_empty() && s.total > 0);
    // Planned members per room, for the offered load and the per-kind sizes.
    let mut planned = vec![0u64; rooms.len()];
    for i in 0..plan.clients {
        planned[room_of(plan, i)] += 1;
    }

    let start = Instant::now();
    let mut in_flight = 0usize;
    let mut joined = 0usize;
    let mut login_done: Option<Instant> = None;
    let mut send_start: Option<Instant> = None;
    let mut last_progress = Instant::now();
    let mut last_delivery = start;

    loop {
        let now = Instant::now();
        // Connect phase.
        if clients.len() < plan.clients {
            let allowed = if plan.connect_rate > 0.0 {
                ((now - start).as_secs_f64() * plan.connect_rate) as usize + 1
            } else {
                plan.clients
            };
            while clients.len() < allowed.min(plan.clients) && in_flight < MAX_IN_FLIGHT {
                let i = clients.len();
                let source =
                    (!plan.sources.is_empty()).then(|| plan.sources[i % plan.sources.len()]);
                match connect(plan.server, source) {
                    Ok(mut stream) => {
                        let tls = match &plan.tls {
                            Some(config) => {
                                let mut conn = rustls::ClientConnection::new(
                                    Arc::clone(config),
                                    server_name.clone(),
                                )
                                .context("creating a TLS client session")?;
                                // The generator's own queue is unbounded on
                                // the plain path too: a short write into
                                // rustls would lose a frame.
                                conn.set_buffer_limit(None);
                                Some(Box::new(conn))
                            }
                            None => None,
                        };
                        poll.registry().register(
                            &mut stream,
                            Token(i),
                            Interest::READABLE | Interest::WRITABLE,
                        )?;
                        clients.push(Client {
                            stream,
                            state: State::Connecting,
                            leftover: Vec::new(),
                            pending: Vec::new(),
                            last_id: 0,
                            known: 0,
                            wants_write: true,
                            tls,
                            room: room_of(plan, i),
                            send_join: false,
                            refused: false,
                        });
                        in_flight += 1;
                    }
                    Err(e) => {
                        return Err(e).with_context(|| format!("connecting client {i}"));
                    }
                }
            }
        }
        if login_done.is_none() && joined + out.failed >= plan.clients {
            login_done = Some(now);
            out.login_s = (now - start).as_secs_f64();
        }
        // Before sending, every client must have learned of every other
        // (its welcome's user list plus the joins announced after it), or
        // `drain` passes without progress. With rooms, also of every member
        // of its room (its `room_joined` list plus that room's presence):
        // a client is in two rooms only, so all counts add up.
        if let Some(done) = login_done
            && send_start.is_none()
        {
            let everyone = clients
                .iter()
                .filter(|c| c.state == State::Joined)
                .all(|c| {
                    let own = if rooms[c.room].name.is_empty() {
                        0
                    } else {
                        rooms[c.room].members
                    };
                    c.known >= joined as u64 + own
                });
            if everyone || now - done > plan.drain {
                out.presence_s = (now - start).as_secs_f64();
                on_all_joined();
                send_start = Some(Instant::now());
            }
        }
        if login_done.is_none() && now - start > plan.login_timeout {
            anyhow::bail!(
                "only {joined} of {} clients logged in within {:?}",
                plan.clients,
                plan.login_timeout
            );
        }

        // Send phase.
        let all_sent = schedules.iter().all(|s| s.sent >= s.total());
        if let Some(t0) = send_start
            && !all_sent
        {
            let elapsed = now - t0;
            for s in &mut schedules {
                let (total, total_rate) = (s.total(), s.total_rate());
                if s.sent >= total {
                    continue;
                }
                let due = if total_rate > 0.0 {
                    ((elapsed.as_secs_f64() * total_rate) as u64 + 1).min(total)
                } else {
                    total
                };
                if due > s.sent + 1 {
                    let lag = (due - s.sent - 1) as f64 / total_rate * 1000.0;
                    out.max_send_lag_ms = out.max_send_lag_ms.max(lag);
                }
                while s.sent < due {
                    let i = s.senders[(s.sent % s.senders.len() as u64) as usize];
                    let c = &mut clients[i];
                    if c.state == State::Joined {
                        let room = &mut rooms[c.room];
                        let ns = start.elapsed().as_nanos() as u64;
                        let at = room.stamp_at;
                        write_hex(&mut room.frame[at..at + STAMP], ns);
                        queue(c, &room.frame, &poll, i)?;
                        out.messages_sent += 1;
                        room.sent += 1;
                    }
                    s.sent += 1;
                }
            }
            last_progress = now;
        }

        // Stop when everything arrived, or nothing moved for `drain`.
        if send_start.is_some() && all_sent {
            let expected = rooms
                .iter()
                .map(|r| r.sent.saturating_sub(r.rejected) * r.members)
                .sum();
            if out.deliveries_received >= expected || now - last_progress > plan.drain {
                out.deliveries_expected = expected;
                break;
            }
        }

        let timeout = if send_start.is_some() && !all_sent {
            Duration::from_micros(500)
        } else {
            Duration::from_millis(5)
        };
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("poll"),
        }
        for event in events.iter() {
            let i = event.token().0;
            let Some(c) = clients.get_mut(i) else {
                continue;
            };
            if c.state == State::Closed {
                continue;
            }
            if event.is_writable() {
                if c.state == State::Connecting {
                    let closing = event.is_readable() || event.is_read_closed() || event.is_error();
                    if !matches!(c.stream.take_error(), Ok(None)) {
                        // Refused: the read below sees the error and counts it.
                    } else if c.stream.peer_addr().is_err() && !closing {
                        continue; // not connected yet: a later event says so
                    }
                    // A server that refuses a connection (`server_full`,
                    // `too_many_connections`) writes its error and closes at
                    // once: connected, readable and closed arrive as one edge,
                    // so the read below must run now; no later event comes.
                    c.state = State::Joining;
                    let hello = encode_client(&ClientMessage::Hello(Hello {
                        password: None,
                        token: None,
                        version: PROTOCOL_VERSION,
                        name: format!("c{i}"),
                        last_seen: None,
                    }));
                    queue(c, &hello, &poll, i)?;
                }
                flush(c, &poll, i)?;
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                let mut closed = false;
                loop {
                    match c.stream.read(&mut scratch) {
                        Ok(0) => {
                            closed = true;
                            break;
                        }
                        Ok(n) => {
                            let short = n < scratch.len();
                            let now_ns = start.elapsed().as_nanos() as u64;
                            let mut pongs = Vec::new();
                            let before = out.deliveries_received;
                            let was_joined = c.state == State::Joined;
                            if c.tls.is_some() {
                                match tls_ingest(
                                    c,
                                    &scratch[..n],
                                    &mut plain,
                                    now_ns,
                                    &mut out,
                                    &mut rooms,
                                    &mut pongs,
                                ) {
                                    TlsRead::Open => {}
                                    TlsRead::Closed => closed = true,
                                    TlsRead::Failed => {
                                        out.tls_errors += 1;
                                        closed = true;
                                    }
                                }
                            } else {
                                ingest(c, &scratch[..n], now_ns, &mut out, &mut rooms, &mut pongs);
                            }
                            if out.deliveries_received > before {
                                last_progress = Instant::now();
                                last_delivery = last_progress;
                            }
                            if !was_joined && c.state == State::Joined {
                                joined += 1;
                                in_flight -= 1;
                                rooms[c.room].members += 1;
                            }
                            if c.send_join {
                                c.send_join = false;
                                queue(c, &rooms[c.room].join, &poll, i)?;
                            }
                            if c.refused {
                                closed = true;
                            }
                            for seq in pongs {
                                let pong = encode_client(&ClientMessage::Pong(Seq { seq }));
                                queue(c, &pong, &poll, i)?;
                            }
                            // The handshake's answers (and, before it ends,
                            // the buffered `hello`) leave now.
                            if c.tls.as_ref().is_some_and(|t| t.wants_write()) {
                                flush(c, &poll, i)?;
                            }
                            // A short read emptied the socket; Linux reports
                            // the next arrival as a new edge, so the extra
                            // read that would only say WouldBlock is skipped.
                            if short || closed {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            closed = true;
                            break;
                        }
                    }
                }
                if closed {
                    if c.state != State::Joined {
                        in_flight = in_flight.saturating_sub(1);
                    } else {
                        joined -= 1;
                        rooms[c.room].members -= 1;
                    }
                    c.state = State::Closed;
                    out.failed += 1;
                    let _ = poll.registry().deregister(&mut c.stream);
                }
            }
        }
    }

    out.connected = clients.iter().filter(|c| c.state == State::Joined).count();
    for c in &clients {
        if c.state == State::Joined {
            out.presence_min_known = out.presence_min_known.min(c.known);
        }
    }
    if out.presence_min_known == u64::MAX {
        out.presence_min_known = 0;
    }
    if let Some(t0) = send_start {
        out.total_s = last_delivery.saturating_duration_since(t0).as_secs_f64();
    }
    out.wall_s = start.elapsed().as_secs_f64();
    // Each planned chat per second goes to every planned member of its room.
    out.offered_per_s = schedules
        .iter()
        .flat_map(|s| s.senders.iter().map(move |&i| (s.rate, i)))
        .map(|(rate, i)| rate * planned[room_of(plan, i)] as f64)
        .sum();
    if plan.rooms > 0 {
        for (k, r) in rooms.iter().enumerate() {
            let class = if r.big { &mut out.big } else { &mut out.small };
            class.clients += planned[k] as usize;
            class.messages_sent += r.sent;
            class.deliveries_expected += r.sent.saturating_sub(r.rejected) * r.members;
            class.deliveries_received += r.received;
        }
    }
    Ok(out)
}

/// Opens a non-blocking connection, from `source` if given.
fn connect(server: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let sock = Socket::new(
        Domain::for_address(server),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    sock.set_nonblocking(true)?;
    sock.set_tcp_nodelay(true)?;
    if let Some(ip) = source {
        sock.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match sock.connect(&server.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(115) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(sock.into()))
}

/// Writes `bytes` now if the socket takes them, else keeps them for WRITABLE.
fn queue(c: &mut Client, bytes: &[u8], poll: &Poll, i: usize) -> Result<()> {
    if let Some(tls) = c.tls.as_mut() {
        // Unbounded buffer (see `set_buffer_limit` above): rustls takes it
        // all, as plaintext until the handshake ends, then as records.
        let _ = tls.writer().write_all(bytes);
        if c.state == State::Connecting {
            return want_write(c, poll, i);
        }
        return flush(c, poll, i);
    }
    if c.pending.is_empty() && c.state != State::Connecting {
        match c.stream.write(bytes) {
            Ok(n) if n == bytes.len() => return Ok(()),
            Ok(n) => c.pending.extend_from_slice(&bytes[n..]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.pending.extend_from_slice(bytes),
            Err(_) => return Ok(()), // the read side will see the close
        }
    } else {
        c.pending.extend_from_slice(bytes);
    }
    want_write(c, poll, i)
}

/// Asks for WRITABLE events (once).
fn want_write(c: &mut Client, poll: &Poll, i: usize) -> Result<()> {
    if !c.wants_write {
        poll.registry().reregister(
            &mut c.stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        c.wants_write = true;
    }
    Ok(())
}

/// Writes pending bytes; drops WRITABLE interest once they are out.
fn flush(c: &mut Client, poll: &Poll, i: usize) -> Result<()> {
    if let Some(tls) = c.tls.as_mut() {
        while tls.wants_write() {
            match tls.write_tls(&mut c.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return want_write(c, poll, i),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Ok(()), // the read side will see the close
            }
        }
    }
    while !c.pending.is_empty() {
        match c.stream.write(&c.pending) {
            Ok(n) => {
                c.pending.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(_) => return Ok(()),
        }
    }
    if c.wants_write && c.state != State::Connecting {
        poll.registry()
            .reregister(&mut c.stream, Token(i), Interest::READABLE)?;
        c.wants_write = false;
    }
    Ok(())
}

/// Handles TLS bytes read from one client's socket: feeds them to rustls
/// record by record and runs the decrypted bytes through [`ingest`].
fn tls_ingest(
    c: &mut Client,
    mut data: &[u8],
    plain: &mut [u8],
    now_ns: u64,
    out: &mut Outcome,
    rooms: &mut [Room],
    pongs: &mut Vec<u64>,
) -> TlsRead {
    while !data.is_empty() {
        let Some(tls) = c.tls.as_mut() else {
            return TlsRead::Failed;
        };
        if tls.read_tls(&mut data).is_err() {
            return TlsRead::Failed;
        }
        let state = match tls.process_new_packets() {
            Ok(state) => state,
            Err(_) => return TlsRead::Failed,
        };
        let mut readable = state.plaintext_bytes_to_read();
        while readable > 0 {
            let Some(tls) = c.tls.as_mut() else {
                return TlsRead::Failed;
            };
            let m = match tls.reader().read(plain) {
                Ok(m) => m,
                Err(_) => return TlsRead::Failed,
            };
            if m == 0 {
                break;
            }
            readable = readable.saturating_sub(m);
            ingest(c, &plain[..m], now_ns, out, rooms, pongs);
        }
        if state.peer_has_closed() {
            return TlsRead::Closed;
        }
    }
    TlsRead::Open
}

/// What feeding socket bytes to a TLS session left it in.
enum TlsRead {
    /// Still open: read on.
    Open,
    /// The server closed the session cleanly (close_notify).
    Closed,
    /// rustls reported an error (bad record, alert, failed handshake).
    Failed,
}

/// Handles bytes read from one client's socket.
fn ingest(
    c: &mut Client,
    data: &[u8],
    now_ns: u64,
    out: &mut Outcome,
    rooms: &mut [Room],
    pongs: &mut Vec<u64>,
) {
    if c.leftover.is_empty() {
        let used = frames(c, data, now_ns, out, rooms, pongs);
        c.leftover.extend_from_slice(&data[used..]);
    } else {
        let mut buf = std::mem::take(&mut c.leftover);
        buf.extend_from_slice(data);
        let used = frames(c, &buf, now_ns, out, rooms, pongs);
        buf.drain(..used);
        c.leftover = buf;
    }
}

/// Handles every complete frame in `data`; returns the bytes consumed.
fn frames(
    c: &mut Client,
    data: &[u8],
    now_ns: u64,
    out: &mut Outcome,
    rooms: &mut [Room],
    pongs: &mut Vec<u64>,
) -> usize {
    let mut pos = 0;
    while let Ok(Some(len)) = frame_len(&data[pos..], MAX_FRAME) {
        let body = &data[pos + 4..pos + len];
        pos += len;
        let Some(f) = fastparse::parse(body) else {
            out.unparsed += 1;
            continue;
        };
        match f.kind {
            b"chat" => {
                let Some(room) = rooms.get_mut(c.room) else {
                    continue;
                };
                if f.room != room.name.as_slice() {
                    out.wrong_room += 1;
                    continue;
                }
                room.received += 1;
                out.deliveries_received += 1;
                if f.id == c.last_id {
                    out.duplicates += 1;
                } else if f.id < c.last_id {
                    out.out_of_order += 1;
                } else {
                    c.last_id = f.id;
                }
                if let Some(sent) = f.text.get(..STAMP).and_then(read_hex) {
                    let micros = now_ns.saturating_sub(sent) / 1000;
                    out.latency.record(micros);
                    if out.rooms > 0 {
                        let class = if room.big {
                            &mut out.big
                        } else {
                            &mut out.small
                        };
                        class.latency.record(micros);
                    }
                }
            }
            b"joined" | b"presence" => c.known += f.joined,
            b"welcome" => {
                c.known += f.users;
                if rooms.get(c.room).is_some_and(|r| !r.name.is_empty()) {
                    c.state = State::EnteringRoom;
                    c.send_join = true;
                } else {
                    c.state = State::Joined;
                }
            }
            b"room_joined"
                if c.state == State::EnteringRoom
                    && rooms.get(c.room).is_some_and(|r| r.name == f.room) =>
            {
                c.state = State::Joined;
                c.known += f.users;
            }
            b"ping" => pongs.push(f.seq),
            b"error" if c.state == State::EnteringRoom => {
                out.join_refused += 1;
                c.refused = true;
            }
            b"error" => {
                out.rejected += 1;
                if c.state == State::Joined
                    && let Some(room) = rooms.get_mut(c.room)
                {
                    room.rejected += 1;
                }
            }
            _ => {}
        }
    }
    pos
}

fn write_hex(dst: &mut [u8], mut v: u64) {
    for b in dst.iter_mut().rev() {
        *b = b"0123456789abcdef"[(v & 15) as usize];
        v >>= 4;
    }
}

fn read_hex(src: &[u8]) -> Option<u64> {
    src.iter().try_fold(0u64, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some((acc << 4) | u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(clients: usize, rooms: usize, big: usize) -> Plan {
        Plan {
            server: ([127, 0, 0, 1], 1).into(),
            clients,
            messages: 1,
            rate: 1.0,
            payload: 32,
            connect_rate: 0.0,
            sources: Vec::new(),
            login_timeout: Duration::from_secs(1),
            drain: Duration::from_secs(1),
            tls: None,
            rooms,
            big_room_clients: big,
            big_room_rate: 1.0,
            big_room_total: 1,
        }
    }

    #[test]
    fn without_rooms_everyone_is_in_the_default_room() {
        let p = plan(10, 0, 0);
        assert_eq!(room_names(&p), vec![None]);
        assert!((0..10).all(|i| room_of(&p, i) == 0));
    }

    #[test]
    fn client_i_joins_room_i_mod_n() {
        let p = plan(10, 4, 0);
        let names = room_names(&p);
        assert_eq!(names.len(), 4);
        let rooms: Vec<_> = (0..10).map(|i| names[room_of(&p, i)].as_deref()).collect();
        assert_eq!(rooms[0], Some("r0"));
        assert_eq!(rooms[5], Some("r1"));
        assert_eq!(rooms[7], Some("r3"));
    }

    #[test]
    fn the_first_m_clients_join_the_big_room_and_the_rest_spread_over_the_small_ones() {
        let p = plan(10, 3, 4);
        let names = room_names(&p);
        assert_eq!(names.last(), Some(&Some(BIG_ROOM.to_owned())));
        let of = |i| names[room_of(&p, i)].as_deref();
        assert!((0..4).all(|i| of(i) == Some(BIG_ROOM)));
        assert_eq!(
            (4..10).map(of).collect::<Vec<_>>(),
            vec![
                Some("r0"),
                Some("r1"),
                Some("r2"),
                Some("r0"),
                Some("r1"),
                Some("r2")
            ]
        );
    }

    #[test]
    fn a_rooms_chat_frame_carries_its_room_and_the_stamp_is_found_in_it() {
        let text = "0".repeat(STAMP) + "xxxx";
        let frame = encode_client(&ClientMessage::Chat(ChatSend {
            room: Some("r12".into()),
            text: text.clone(),
            reference: None,
        }));
        let at = find(&frame, text.as_bytes()).expect("text in frame");
        assert_eq!(&frame[at..at + text.len()], text.as_bytes());
        assert!(find(&frame, b"r12").is_some_and(|r| r > at));
    }
}
