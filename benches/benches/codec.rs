//! Frame codec throughput: `chatcore::protocol` encode and decode of chat
//! frames, with no I/O.
//!
//! Every chat is encoded once by the server (and once by its sender) and
//! decoded once by the server and once by every recipient, so the codec sets
//! the ceiling on messages per second per core. The groups cover the shapes
//! the byte stream really takes:
//!
//! - `codec/encode`: one `chat` frame, server→client (`encode_server`) and
//!   client→server (`encode_client`), ~40-byte text.
//! - `codec/decode_one`: one whole frame in the buffer (`decode_server`,
//!   `decode_client`), the common case of one frame per `read`.
//! - `codec/decode_coalesced_1000`: 1000 frames in one buffer ("sticky
//!   packets"), decoded until `Ok(None)`, as after a large `read`.
//! - `codec/decode_split_7`: the same stream arriving 7 bytes per `read`
//!   ("half packets"): each piece is appended to a `BytesMut` and decoded
//!   until `Ok(None)`, so most calls find an incomplete frame.
//!
//! Throughput is in elements = frames, so criterion prints frames per second.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chatcore::protocol::{
    Chat, ChatSend, ClientMessage, DEFAULT_MAX_FRAME, DecodeError, ServerMessage, decode_client,
    decode_server, encode_client, encode_server,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// A realistic chat text: 40 bytes of ASCII.
const TEXT: &str = "see you at the standup in ten minutes :)";

/// Frames in the coalesced and split streams.
const STREAM_FRAMES: usize = 1000;

/// Bytes per `read` in the split-stream case.
const SPLIT: usize = 7;

/// A chat as the server fans it out (no `ref`: a recipient's copy).
fn server_chat(id: u64) -> ServerMessage {
    ServerMessage::Chat(Chat {
        room: None,
        id,
        from: "alice(3)".to_owned(),
        session: 1234,
        text: TEXT.to_owned(),
        ts: 1_700_000_000_000,
        reference: None,
    })
}

/// A chat as a client sends it, with a `ref` to match its own copy.
fn client_chat(reference: u64) -> ClientMessage {
    ClientMessage::Chat(ChatSend {
        room: None,
        text: TEXT.to_owned(),
        reference: Some(reference),
    })
}

/// Which side's decoder a benchmark runs.
#[derive(Clone, Copy)]
enum Dir {
    /// A client decoding what the server sent.
    Server,
    /// The server decoding what a client sent.
    Client,
}

impl Dir {
    const ALL: [Dir; 2] = [Dir::Server, Dir::Client];

    fn name(self) -> &'static str {
        match self {
            Dir::Server => "server_chat",
            Dir::Client => "client_chat",
        }
    }

    /// Frame number `i` of this direction, encoded.
    fn frame(self, i: u64) -> Bytes {
        match self {
            Dir::Server => encode_server(&server_chat(100_000 + i)),
            Dir::Client => encode_client(&client_chat(i)),
        }
    }

    /// `n` frames back to back.
    fn stream(self, n: usize) -> Vec<u8> {
        (0..n as u64).flat_map(|i| self.frame(i)).collect()
    }

    /// Decodes the next frame; `true` if there was one. The message is
    /// passed through `black_box` and dropped, as a real reader would.
    #[inline]
    fn decode_next(self, buf: &mut BytesMut) -> Result<bool, DecodeError> {
        Ok(match self {
            Dir::Server => black_box(decode_server(buf, DEFAULT_MAX_FRAME)?).is_some(),
            Dir::Client => black_box(decode_client(buf, DEFAULT_MAX_FRAME)?).is_some(),
        })
    }
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec/encode");
    g.throughput(Throughput::Elements(1));
    let server = server_chat(98_765);
    g.bench_function("server_chat", |b| {
        b.iter(|| encode_server(black_box(&server)));
    });
    let client = client_chat(42);
    g.bench_function("client_chat", |b| {
        b.iter(|| encode_client(black_box(&client)));
    });
    g.finish();
}

fn decode_one(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec/decode_one");
    g.throughput(Throughput::Elements(1));
    for dir in Dir::ALL {
        let frame = dir.frame(7);
        g.bench_function(dir.name(), |b| {
            // A fresh buffer per iteration, made outside the timed region;
            // the buffer is handed back so its drop is not timed either.
            b.iter_batched(
                || BytesMut::from(&frame[..]),
                |mut buf| {
                    let got = dir.decode_next(&mut buf).expect("valid frame");
                    debug_assert!(got);
                    buf
                },
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();
}

fn decode_coalesced(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec/decode_coalesced_1000");
    // ~0.5 ms per iteration: fewer samples keep the run within its time.
    g.sample_size(50);
    g.throughput(Throughput::Elements(STREAM_FRAMES as u64));
    for dir in Dir::ALL {
        let stream = dir.stream(STREAM_FRAMES);
        g.bench_function(dir.name(), |b| {
            b.iter_batched(
                || BytesMut::from(&stream[..]),
                |mut buf| {
                    let mut n = 0;
                    while dir.decode_next(&mut buf).expect("valid frame") {
                        n += 1;
                    }
                    assert_eq!(n, STREAM_FRAMES);
                    buf
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

fn decode_split(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec/decode_split_7");
    // ~0.5 ms per iteration: fewer samples keep the run within its time.
    g.sample_size(50);
    g.throughput(Throughput::Elements(STREAM_FRAMES as u64));
    for dir in Dir::ALL {
        let stream = dir.stream(STREAM_FRAMES);
        // One read buffer for the connection's lifetime, as the reactor keeps.
        let mut buf = BytesMut::with_capacity(4096);
        g.bench_function(dir.name(), |b| {
            b.iter(|| {
                let mut n = 0;
                for piece in black_box(&stream[..]).chunks(SPLIT) {
                    buf.extend_from_slice(piece);
                    while dir.decode_next(&mut buf).expect("valid frame") {
                        n += 1;
                    }
                }
                assert_eq!(n, STREAM_FRAMES);
                debug_assert!(buf.is_empty());
            });
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = encode, decode_one, decode_coalesced, decode_split
}
criterion_main!(benches);
