//! End-to-end latency through a real server on 127.0.0.1: sockets, the
//! reactor's poll loop, decoding, the room, `writev`, and the clients' reads.
//!
//! `codec` and `fanout` time the pieces in isolation; this measures what a
//! user sees, including syscalls and the loopback TCP stack. The server runs
//! on its own thread (`Server::bind(..).spawn()`) with the rate limiter opened
//! wide (1e9 frames/s) so it never refuses the benchmark's traffic, and a
//! one-hour heartbeat so idle members are never pinged or timed out.
//!
//! Clients are raw `TcpStream`s with `TCP_NODELAY`, speaking frames through
//! `chatcore`'s codec on the benchmark thread: no reader thread or channel
//! hop as `chatcore::Client` has, so the figures are the server's latency
//! plus the least client overhead.
//!
//! - `loopback/round_trip/chat_own_copy`: one member alone in the room sends
//!   a chat with a `ref` and blocks until its own copy (same `ref`) is back.
//! - `loopback/broadcast/100_clients`: 100 members; one sends a chat and the
//!   time runs until every one of the 100 (the sender included) has read it.
//!   Sockets are read one after the other; the others' copies wait in their
//!   kernel buffers meanwhile, so this is the time to the last delivery.
//!   Throughput is in elements = deliveries.
//!
//! The figures depend on where the scheduler puts the server thread and the
//! benchmark thread. On a 2-vCPU VM the round trip was ~18 µs with both on
//! one core (a context switch hands over) and ~65-80 µs with each on its own
//! core (every hand-over is a cross-CPU wake-up), and runs flip between the
//! two. For repeatable figures, pin both to one core:
//! `taskset -c 0 cargo bench -p chatbench --bench loopback`.

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use chatcore::protocol::{
    Chat, ChatSend, ClientMessage, DEFAULT_MAX_FRAME, Hello, PROTOCOL_VERSION, ServerMessage,
    decode_server, encode_client,
};
use chatcore::{RunningServer, Server, ServerConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A realistic chat text: 40 bytes of ASCII.
const TEXT: &str = "see you at the standup in ten minutes :)";

/// Members in the broadcast benchmark.
const BROADCAST_CLIENTS: usize = 100;

/// Longest any read may block before the benchmark fails instead of hanging.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A server on an ephemeral loopback port with the rate limiter out of the way.
fn start_server() -> RunningServer {
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("loopback address"),
        voice_listen: None,
        rate_per_sec: 1e9,
        rate_burst: 1e9,
        heartbeat_ms: 3_600_000,
        // Every member connects from 127.0.0.1.
        max_connections_per_address: 10_000,
        max_handshakes_per_address: 10_000,
        ..ServerConfig::default()
    };
    Server::bind(config)
        .expect("bind the server")
        .spawn()
        .expect("spawn the server thread")
}

/// A logged-in member speaking raw frames.
struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    scratch: Vec<u8>,
}

impl Raw {
    /// Connects, sends `hello` and waits for the `welcome`.
    fn login(addr: SocketAddr, name: &str) -> Self {
        let stream = TcpStream::connect(addr).expect("connect to the server");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("set the read timeout");
        let mut raw = Self {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            scratch: vec![0; 16 * 1024],
        };
        raw.send(&ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: PROTOCOL_VERSION,
            name: name.to_owned(),
            last_seen: None,
        }));
        loop {
            match raw.next() {
                ServerMessage::Welcome(_) => return raw,
                ServerMessage::Error(e) => panic!("login of {name} refused: {e:?}"),
                _ => {}
            }
        }
    }

    fn send(&mut self, msg: &ClientMessage) {
        self.stream
            .write_all(&encode_client(msg))
            .expect("write to the server");
    }

    /// Sends a chat; `reference` comes back in this member's own copy.
    fn chat(&mut self, reference: u64) {
        self.send(&ClientMessage::Chat(ChatSend {
            room: None,
            text: TEXT.to_owned(),
            reference: Some(reference),
        }));
    }

    /// The next message, reading the socket as needed. Pings are answered.
    fn next(&mut self) -> ServerMessage {
        loop {
            match decode_server(&mut self.buf, DEFAULT_MAX_FRAME).expect("a valid server frame") {
                Some(ServerMessage::Ping(seq)) => self.send(&ClientMessage::Pong(seq)),
                Some(msg) => return msg,
                None => {
                    let n = self
                        .stream
                        .read(&mut self.scratch)
                        .expect("read from the server");
                    assert!(n > 0, "the server closed the connection");
                    self.buf.extend_from_slice(&self.scratch[..n]);
                }
            }
        }
    }

    /// Reads until the next chat, skipping presence and the like.
    fn next_chat(&mut self) -> Chat {
        loop {
            match self.next() {
                ServerMessage::Chat(chat) => return chat,
                ServerMessage::Error(e) => panic!("the server refused a chat: {e:?}"),
                _ => {}
            }
        }
    }
}

fn round_trip(c: &mut Criterion) {
    let server = start_server();
    let mut me = Raw::login(server.local_addr(), "pinger");
    let mut reference = 0u64;
    let mut g = c.benchmark_group("loopback/round_trip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("chat_own_copy", |b| {
        b.iter(|| {
            reference += 1;
            me.chat(reference);
            let chat = me.next_chat();
            assert_eq!(chat.reference, Some(reference), "own copy out of order");
            black_box(chat)
        });
    });
    g.finish();
    drop(me);
    server.stop().expect("stop the server");
}

/// One chat from `clients[0]`, read by every client; returns the chat id.
fn broadcast_once(clients: &mut [Raw], reference: u64) -> u64 {
    clients[0].chat(reference);
    let mut id = None;
    for client in clients.iter_mut() {
        let chat = client.next_chat();
        assert_eq!(*id.get_or_insert(chat.id), chat.id, "copies differ");
    }
    id.expect("at least one client")
}

fn broadcast(c: &mut Criterion) {
    let server = start_server();
    let addr = server.local_addr();
    let mut clients: Vec<Raw> = (0..BROADCAST_CLIENTS)
        .map(|i| Raw::login(addr, &format!("member{i}")))
        .collect();
    // One untimed round drains every welcome and presence frame still queued.
    let mut reference = 0u64;
    broadcast_once(&mut clients, reference);
    let mut g = c.benchmark_group("loopback/broadcast");
    g.throughput(Throughput::Elements(BROADCAST_CLIENTS as u64));
    g.bench_function(format!("{BROADCAST_CLIENTS}_clients"), |b| {
        b.iter(|| {
            reference += 1;
            broadcast_once(&mut clients, reference)
        });
    });
    g.finish();
    drop(clients);
    server.stop().expect("stop the server");
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = round_trip, broadcast
}
criterion_main!(benches);
