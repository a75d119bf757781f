//! Room fan-out cost: `Room::chat` delivering one message to N members,
//! N = 10, 100, 1000, 10 000, into an in-memory `Outbox`. No sockets.
//!
//! This is the server's per-message work that grows with the room: the chat
//! is encoded once (twice when the sender gave a `ref`: its own copy differs)
//! and every member then gets a clone of the same `Bytes`, a reference-count
//! increment and a queue push, instead of a fresh encoding. The figures show
//! whether that holds: time per delivery should stay flat as N grows.
//!
//! The sink keeps one `Vec<Bytes>` per connection key, as the reactor keeps
//! one output queue per connection. Only `Room::chat` is timed; between
//! iterations the queues are emptied outside the timed region (dropping the
//! references, keeping the capacity) and the text `String` the reactor would
//! have decoded is made. Throughput is in elements = deliveries, so criterion
//! prints deliveries per second.
//!
//! - `fanout/room_chat/no_ref/N`: a chat without `ref`, one encoding.
//! - `fanout/room_chat/with_ref/N`: a chat with `ref` (what a client that
//!   matches its own messages sends), two encodings.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chatcore::bench_support::{Lobby, Outbox, Room, RoomSettings};
use chatcore::protocol::DEFAULT_MAX_FRAME;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// A realistic chat text: 40 bytes of ASCII.
const TEXT: &str = "see you at the standup in ten minutes :)";

/// Room sizes.
const SIZES: [usize; 4] = [10, 100, 1000, 10_000];

/// A fixed server timestamp (ms since the epoch).
const TS: i64 = 1_700_000_000_000;

/// One output queue per connection key, as the reactor has.
struct Sink {
    queues: Vec<Vec<Bytes>>,
}

impl Sink {
    fn new(n: usize) -> Self {
        Self {
            queues: (0..n).map(|_| Vec::with_capacity(4)).collect(),
        }
    }

    /// Drops every queued frame, keeping each queue's allocation.
    fn clear(&mut self) {
        for q in &mut self.queues {
            q.clear();
        }
    }

    fn frames(&self) -> usize {
        self.queues.iter().map(Vec::len).sum()
    }
}

impl Outbox for Sink {
    fn push(&mut self, key: usize, frame: Bytes) {
        self.queues[key].push(frame);
    }
}

/// A room of `n` members on keys `0..n`, welcomes and presence flushed.
fn room_of(n: usize, sink: &mut Sink) -> Room {
    let mut room = Room::new(RoomSettings {
        history_len: 50,
        heartbeat_ms: 10_000,
        max_frame: DEFAULT_MAX_FRAME,
        max_text: 4096,
    });
    let mut lobby = Lobby::default();
    for key in 0..n {
        let info = lobby.admit(key, &format!("user{key}"), 0);
        room.join(key, info);
    }
    room.flush_presence(TS, sink);
    sink.clear();
    room
}

fn room_chat(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout/room_chat");
    for n in SIZES {
        g.throughput(Throughput::Elements(n as u64));
        for (label, reference) in [("no_ref", None), ("with_ref", Some(42))] {
            let mut sink = Sink::new(n);
            let mut room = room_of(n, &mut sink);
            let sender = n / 2;
            g.bench_with_input(BenchmarkId::new(label, n), &n, |b, &n| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let text = TEXT.to_owned();
                        let start = Instant::now();
                        let id = room.chat(sender, text, reference, TS, &mut sink);
                        timed += start.elapsed();
                        black_box(id.expect("the sender is a member"));
                        debug_assert_eq!(sink.frames(), n);
                        sink.clear();
                    }
                    timed
                });
            });
            assert_eq!(sink.frames(), 0);
        }
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
    targets = room_chat
}
criterion_main!(benches);
