//! `chatcore`: host or join a chat room.
//!
//! A room is served by ONE single-threaded `mio` event loop that owns every
//! socket (chat, files, and the voice port); file-transfer disk work runs on a
//! helper thread. Messages are MessagePack maps in length-prefixed frames; the wire
//! format is specified in `docs/protocol.md`.
//!
//! # Layout
//! Three areas, each found by name; `server` and `client` are Cargo features
//! (both on by default), `protocol` is always built.
//!
//! | path | holds |
//! |---|---|
//! | [`protocol`] | message types, frame codec, MessagePack checks, file-name and text rules both sides share (no I/O) |
//! | `server` (feature `server`) | the embedding API ([`Server`], [`ServerBuilder`], [`RunningServer`], [`ServerConfig`], [`Hooks`], [`ServerHandle`]) and the loop behind it |
//! | `server/reactor/` | the `mio` loop: tokens, poll, accept, read budgets, timers, flush, shutdown; the voice port's UDP socket |
//! | `server/listen.rs` | binding the chat listener and the voice port |
//! | `server/conn/` | a chat connection (socket, buffers, timers, its own `interest()`), its output queue, rate limit, per-address counts |
//! | `server/outbox.rs` | the room's `Outbox` over the connections; `error` frames |
//! | `server/room/` | members, unique names and their validation, ids, history, welcomes, presence (no I/O) |
//! | `server/session/` | what client messages do, on a narrow context (`Ctx`): login, chat, transfer, voice |
//! | `server/transfer/` | spool bookkeeping, quotas, expiry; the disk thread |
//! | `server/voice/` | the call, the bind defences, the relay's packet rules (no sockets), TCP voice connections |
//! | `server/tls/` | TLS on the chat port: certificates ([`ServerTls`], the self-signed pair), reloads ([`TlsSource`]), the per-connection rustls state the loop drives |
//! | `server/{config,hooks,handle,error}.rs` | every limit; callbacks for embedders; `ServerHandle`; errors |
//! | `server/metrics.rs` | the `metrics` facade handles the loop bumps: install a recorder (e.g. Prometheus) before building the server to collect them; no-ops otherwise |
//! | `tls` | what both ends of TLS share: the crypto provider, certificate fingerprints, the `--insecure` verifier; with feature `client`: `connect`, trust on first use (`KnownServers`), `ChatStream` halves |
//! | `client` (feature `client`) | a blocking client: connect, log in, send, receive events, files |
//! | `dscp` | DSCP EF and `SO_PRIORITY` on voice sockets, for the voice port and the voice engine alike |
//! | [`time`] | wall-clock timestamps for the wire |
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
//! // TLS, trusting the server on first use (`connect_plain` for plain TCP).
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
#[cfg(any(feature = "server", feature = "client"))]
pub mod dscp;
pub mod protocol;
#[cfg(feature = "server")]
pub mod server;
pub mod time;
#[cfg(any(feature = "server", feature = "client"))]
pub mod tls;

#[cfg(feature = "client")]
pub use client::{Client, ClientError, Credentials, Event, Roster};
#[cfg(feature = "server")]
pub use server::{
    ChatDecision, ConfigError, HandleError, Hooks, JoinDecision, NoHooks, RoomCreation,
    RunningServer, Server, ServerBuilder, ServerConfig, ServerError, ServerHandle, ServerStats,
    StoreSync,
};
#[cfg(feature = "server")]
pub use server::{ServerTls, ServerTlsError, StoreError, TlsSource};

/// What the criterion benches of the workspace measure inside the server:
/// the room's fan-out (`benches/benches/fanout.rs`). Not an API: hidden from
/// the docs, and free to change with the room.
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod bench_support {
    pub use crate::server::room::{Lobby, Outbox, Room, RoomSettings, Rooms};
}
