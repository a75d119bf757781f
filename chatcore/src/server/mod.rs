//! Hosting a room: the embedding API (builder, [`Server`], [`RunningServer`],
//! [`ServerConfig`], [`Hooks`], [`ServerHandle`]) and the loop behind it.
//!
//! | module | holds |
//! |---|---|
//! | `reactor/` | ONLY the loop: tokens, poll, accept, read budgets, timers, flush, shutdown; the voice port's UDP socket |
//! | `listen` | binding the chat listener and the voice port (socket options, backlog) |
//! | `conn/` | `Connection` (socket, buffers, timers, phase, `interest()`), `outqueue`, `ratelimit`, `peers` (per-address counts); `apply_interest`, the one place that tells the poll |
//! | `outbox` | `ConnOutbox`: the room's `Outbox` over the connections; `error` frames |
//! | `room/` | members, ids, history, presence, welcomes; `names` (validation, `a`, `a(1)`...) |
//! | `session/` | what client messages do, on `Ctx` (never on the reactor): `login`, `chat`, `transfer`, `voice` |
//! | `transfer/` | spool bookkeeping, quota, expiry (`mod.rs`), the disk thread (`disk`), the offered-name check (`names`) |
//! | `voice/` | `call` (members, tokens, paths), `guard` (bind cookies, limits), `relay` (packet rules, no sockets), `conn` (TCP voice connections with their own `interest()`) |
//! | `store/` | the history store: a thread owning the SQLite connection (`thread`), its versioned schema (`schema`), the requests and replies it exchanges with the loop (`mod.rs`) |
//! | `accounts/` | registered names: the tables and queries (`db`, also used by `chatserver accounts`), the store's auth thread (`thread`: argon2id, tokens; the password hash never leaves it), the loop's side (requests in flight, authenticated sessions, the brute-force throttle) |
//! | `tls/` | TLS on the chat port: [`ServerTls`] (certificate loading, the self-signed pair in a data directory), [`TlsSource`] (what a reload reads again), the per-connection `TlsSession` the loop drives |
//! | `config`, `hooks`, `handle`, `error` | limits, embedder callbacks, `ServerHandle`, errors |
//! | `metrics` | the `metrics` facade handles the loop bumps (no-ops without a recorder) |
//!
//! Data flows one way: the reactor lends a `Ctx` to `session`, which uses
//! `room`, `transfer`, `voice` and the outbox; none of them imports the
//! reactor.

pub mod accounts;
mod config;
mod conn;
mod error;
mod handle;
mod hooks;
mod listen;
pub mod metrics;
pub(crate) mod moderation;
mod outbox;
mod reactor;
pub(crate) mod room;
mod session;
pub(crate) mod store;
pub mod tls;
pub(crate) mod transfer;
mod voice;

pub use config::{ConfigError, RoomCreation, ServerConfig, StoreSync};
pub use error::{HandleError, ServerError};
pub use handle::{ServerHandle, ServerStats};
pub use hooks::{ChatDecision, Hooks, JoinDecision, NoHooks};
pub use store::StoreError;
pub use tls::{ServerTls, ServerTlsError, TlsSource};

use std::net::SocketAddr;
use std::thread::JoinHandle;

/// The `tracing` target of log events that carry what members wrote or
/// sent (file names): an embedder that wants them out of its logs filters
/// this target (the daemon does unless `log_private = true`).
pub const PRIVATE_LOG_TARGET: &str = "chatcore::private";

use crate::server::reactor::Reactor;

/// Builds a [`Server`]: start from defaults, change what you need, `build`.
///
/// ```no_run
/// let server = chatcore::Server::builder()
///     .listen("127.0.0.1:0".parse().unwrap())
///     .voice_listen(None)
///     .build()?;
/// println!("listening on {}", server.local_addr());
/// let running = server.spawn()?;
/// running.handle().broadcast("hello from the host")?;
/// running.stop()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ServerBuilder {
    config: ServerConfig,
    hooks: Box<dyn Hooks>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Chat listening address (port 0 picks a free one).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self
    }

    /// Voice listening address, or `None` for no voice port.
    pub fn voice_listen(mut self, addr: Option<SocketAddr>) -> Self {
        self.config.voice_listen = addr;
        self
    }

    /// Heartbeat interval in milliseconds (idle timeout is three of them).
    pub fn heartbeat_ms(mut self, ms: u32) -> Self {
        self.config.heartbeat_ms = ms;
        self
    }

    /// Most simultaneous connections.
    pub fn max_clients(mut self, n: usize) -> Self {
        self.config.max_clients = n;
        self
    }

    /// Serves the chat port over TLS with this certificate (see
    /// [`ServerTls`]; the library's default is plain TCP). Replace it while
    /// running with [`ServerHandle::set_tls`].
    ///
    /// ```no_run
    /// // The self-signed pair in DATA_DIR/tls/, created on first use.
    /// let tls = chatcore::ServerTls::self_signed(std::path::Path::new("/var/lib/myapp"))?;
    /// println!("tell users: SHA-256 fingerprint {}", tls.fingerprint());
    /// let server = chatcore::Server::builder().tls(tls).build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.config.tls = Some(tls);
        self
    }

    /// Serves the chat port over plain TCP (the default).
    pub fn no_tls(mut self) -> Self {
        self.config.tls = None;
        self
    }

    /// Keeps the chat history in the SQLite file at `path` (created if
    /// missing, WAL mode): it survives restarts, message ids continue from
    /// the largest stored one, and every chat is delivered only once it is
    /// committed (docs/protocol.md section 12). The default keeps history
    /// in memory only.
    pub fn store(mut self, path: std::path::PathBuf) -> Self {
        self.config.store_path = Some(path);
        self
    }

    /// Keeps history in memory only (the default).
    pub fn no_store(mut self) -> Self {
        self.config.store_path = None;
        self
    }

    /// Callbacks to observe and steer the room.
    pub fn hooks(mut self, hooks: impl Hooks) -> Self {
        self.hooks = Box::new(hooks);
        self
    }

    /// Binds the sockets. Fails with [`ServerError::Bind`] if a port is taken.
    pub fn build(self) -> Result<Server, ServerError> {
        let bound = Reactor::bind(self.config, self.hooks)?;
        Ok(Server {
            reactor: bound.reactor,
            handle: bound.handle,
            local_addr: bound.local_addr,
            voice_addr: bound.voice_addr,
        })
    }
}

/// A bound, not yet running server.
pub struct Server {
    reactor: Reactor,
    handle: ServerHandle,
    local_addr: SocketAddr,
    voice_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("voice_addr", &self.voice_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A builder with the default configuration.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            config: ServerConfig::default(),
            hooks: Box::new(NoHooks),
        }
    }

    /// Binds a server with `config` and no hooks.
    pub fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        Self::builder().config(config).build()
    }

    /// The chat address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The voice address actually bound, if any.
    pub fn voice_addr(&self) -> Option<SocketAddr> {
        self.voice_addr
    }

    /// A remote control usable from any thread.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Runs the loop on this thread until [`ServerHandle::shutdown`].
    pub fn run(self) -> Result<(), ServerError> {
        self.reactor.run()
    }

    /// Runs the loop on a new thread.
    pub fn spawn(self) -> Result<RunningServer, ServerError> {
        let handle = self.handle.clone();
        let local_addr = self.local_addr;
        let voice_addr = self.voice_addr;
        let thread = std::thread::Builder::new()
            .name("chatcore-reactor".into())
            .spawn(move || self.run())
            .map_err(|e| ServerError::Thread(e.to_string()))?;
        Ok(RunningServer {
            handle,
            local_addr,
            voice_addr,
            thread: Some(thread),
        })
    }
}

/// A server running on its own thread. Dropping it shuts the server down
/// and waits for the thread.
#[derive(Debug)]
pub struct RunningServer {
    handle: ServerHandle,
    local_addr: SocketAddr,
    voice_addr: Option<SocketAddr>,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
}

impl RunningServer {
    /// The chat address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The voice address, if bound.
    pub fn voice_addr(&self) -> Option<SocketAddr> {
        self.voice_addr
    }

    /// The remote control.
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// Shuts down and waits for the loop to finish.
    pub fn stop(mut self) -> Result<(), ServerError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), ServerError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let _ = self.handle.shutdown();
        thread
            .join()
            .map_err(|_| ServerError::Thread("the reactor thread panicked".into()))?
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}
