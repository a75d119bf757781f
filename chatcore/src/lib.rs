//! `chatcore`: host or join a chat room.
//!
//! A room is served by ONE single-threaded `mio` event loop that owns every
//! socket (chat, files, and the voice port); file-transfer disk work runs on a
//! helper thread. Messages are MessagePack maps in length-prefixed frames; the wire
//! format is specified in `docs/protocol.md`.
//!
//! # Layout
//! | module | holds |
//! |---|---|
//! | [`protocol`] | message types, frame codec, MessagePack checks (no I/O) |
//! | `reactor` | the `mio` poll loop: accept, read, write, timers, presence batches (the only socket reads and writes) |
//! | `session` | what each client message does: login, chat, ping, bye |
//! | `session_transfer` | what the file messages do: offer, chunk, accept, decline, cancel; download refills |
//! | `session_voice` | what the voice messages do: join, leave, mute; `voice_state` to the room |
//! | `voice` | the call's members, tokens and bindings; `voice::relay`: the voice port's UDP and TCP I/O, packets relayed in the loop; `voice::guard`: bind cookies (return routability) and per-source bind limits |
//! | [`transfer`] | transfers: spool on disk, SHA-256 checks, offers, downloads; the disk thread |
//! | [`room`] | members, unique names, ids, history, welcomes, presence batching (no I/O) |
//! | `connection` | one connection's socket, buffers, timers and state |
//! | `peers` | per-address caps on connections and a per-address log budget |
//! | [`outqueue`] | a connection's pending frames (the turn's shared broadcasts, a low-priority bulk queue for file data), written with `writev` |
//! | [`names`] | name validation and `a`, `a(1)`, `a(2)`… allocation |
//! | [`ratelimit`] | token bucket for flood control |
//! | [`config`] | every limit and timeout with its default |
//! | [`hooks`] | callbacks for embedders: veto joins, filter chats, observe leaves |
//! | [`handle`] | `ServerHandle`: broadcast, list, kick, stats, shutdown from any thread |
//! | [`server`] | builder, `Server`, `RunningServer` |
//! | [`error`] | why a server could not start, why a handle call failed |
//! | [`time`] | wall-clock timestamps for the wire |
//! | [`client`] | a blocking client: connect, log in, send, receive events |
//!
//! # Host a room
//! ```no_run
//! let running = chatcore::Server::builder().build()?.spawn()?;
//! println!("chat on {}", running.local_addr());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Join a room
//! ```no_run
//! let client = chatcore::Client::connect("127.0.0.1:6789", "alice")?;
//! client.send_chat("hello")?;
//! while let Ok(event) = client.recv() {
//!     println!("{event:?}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

#[cfg(feature = "client")]
pub mod client;
pub mod protocol;
#[cfg(feature = "server")]
pub mod server;
pub mod time;

#[cfg(feature = "client")]
pub use client::{Client, ClientError, Event, Roster};
#[cfg(feature = "server")]
pub use server::{
    ChatDecision, ConfigError, HandleError, Hooks, JoinDecision, NoHooks, RunningServer, Server,
    ServerBuilder, ServerConfig, ServerError, ServerHandle, ServerStats,
};

/// What the criterion benches of the workspace measure inside the server:
/// the room's fan-out (`benches/benches/fanout.rs`). Not an API: hidden from
/// the docs, and free to change with the room.
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod bench_support {
    pub use crate::server::room::{Outbox, Room, RoomSettings};
}
