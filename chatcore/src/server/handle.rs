//! `ServerHandle`: control a running server from any thread.
//!
//! Commands go through a channel; a `mio::Waker` makes the loop look at it
//! at once. Calls that return data wait for the loop's answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use mio::Waker;

use crate::protocol::{RoomInfo, UserInfo};
use crate::server::error::HandleError;
use crate::server::tls::ServerTls;

/// Counters since the server started (serialisable: the daemon's admin
/// `stats` answers with them as JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerStats {
    /// Open chat connections (logged in or not).
    pub connections: usize,
    /// Members of the room.
    pub members: usize,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused because the server was full.
    pub refused_full: u64,
    /// Chat messages accepted into the room.
    pub messages: u64,
    /// Frames queued to clients (a broadcast to N counts N).
    pub deliveries: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
    /// Frames received from clients.
    pub frames_in: u64,
    /// Error frames sent to clients.
    pub errors_sent: u64,
    /// Members removed for not reading (reason `slow`).
    pub slow_disconnects: u64,
    /// Members removed by the idle timeout.
    pub timeouts: u64,
    /// Voice packets (and voice TCP connections) dropped: unparsable, from
    /// an unbound address, a wrong token or session, a muted member, over the
    /// rate limit, or for a TCP listener that could not keep up.
    pub voice_dropped: u64,
    /// Voice audio packets accepted from call members.
    pub voice_in: u64,
    /// Voice audio packets sent to call members (one packet to N counts N).
    pub voice_relayed: u64,
    /// Members in the voice call now.
    pub call_members: usize,
    /// The longest loop turn so far, in microseconds: how long the loop was
    /// at worst unable to react to anything (the stall any client could see).
    pub longest_turn_us: u64,
    /// `bind_challenge` packets sent: UDP binds with a valid token from an
    /// address not yet proven (docs/protocol.md §16.2).
    pub voice_challenges: u64,
    /// Voice `bind` packets dropped unanswered by the per-source-address
    /// bind limit or the global challenge limit (token guessing, forged
    /// sources).
    pub voice_binds_limited: u64,
    /// TLS handshakes completed on the chat port.
    pub tls_handshakes: u64,
    /// Chat connections closed for breaking TLS: a plain-text client on the
    /// TLS port, garbage or oversized records, an unexpected message (a
    /// client certificate nobody asked for, a renegotiation attempt), or a
    /// TLS handshake not finished by the handshake timeout. Each got the
    /// alert rustls produced (if any) and was closed; nobody else noticed.
    pub tls_failures: u64,
    /// Certificates replaced at run time ([`ServerHandle::set_tls`]).
    pub tls_reloads: u64,
    /// Sealed audio packets the relay dropped because their key epoch is
    /// neither the call's current nor its previous one (docs/protocol.md
    /// §16.5): a former member's or a stale sender's packets.
    pub voice_stale_epoch: u64,
    /// Audio packets the relay dropped because their member went over its
    /// byte rate (derived from `voice_max_bitrate`, docs/protocol.md §16.4):
    /// oversized packets within the packet rate.
    pub voice_byte_limited: u64,
    /// Chat messages the history store could not commit: each was refused
    /// with `store_unavailable` and delivered to nobody.
    pub store_failures: u64,
    /// Successful logins (members admitted to the server).
    pub logins: u64,
    /// Bytes read from chat connections (TLS records included).
    pub bytes_in: u64,
    /// File uploads completed (checked against their SHA-256 and offered).
    pub files_uploaded: u64,
    /// Bytes of the uploads counted in `files_uploaded`.
    pub file_bytes_uploaded: u64,
    /// Downloads sent whole (`file_done`).
    pub files_downloaded: u64,
    /// Bytes of `file_data` frames queued for downloaders.
    pub file_bytes_downloaded: u64,
}

/// When the loop last turned, shared between the loop (which stores it
/// once per turn) and any thread that asks ([`ServerHandle::idle_for`]):
/// a health check can tell a stuck loop from a quiet one, since an idle
/// loop still turns at least once per timer tick.
#[derive(Debug)]
pub(crate) struct Beat {
    /// The clock origin of `last_ms`.
    start: Instant,
    /// Milliseconds from `start` to the start of the last turn.
    last_ms: AtomicU64,
}

impl Beat {
    pub(crate) fn new(start: Instant) -> Self {
        Self {
            start,
            last_ms: AtomicU64::new(0),
        }
    }

    /// The loop turned at `now` (a relaxed store: only freshness matters).
    pub(crate) fn turned(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.start).as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Instant::now().saturating_duration_since(last)
    }
}

/// What another thread asks the loop to do.
pub(crate) enum Command {
    Broadcast(String),
    Users(Sender<Vec<UserInfo>>),
    /// Everyone logged in, in any room (the lobby), by session.
    Members(Sender<Vec<UserInfo>>),
    /// The rooms with their member counts, the default room first.
    Rooms(Sender<Vec<RoomInfo>>),
    /// A notice from the server to every member of every room.
    Notice(String),
    /// New run-time settings; the reply lists the keys that need a restart.
    Reconfigure(
        Box<crate::server::config::ServerConfig>,
        Sender<Vec<&'static str>>,
    ),
    Kick {
        session: u64,
        reply: Sender<bool>,
    },
    Stats(Sender<ServerStats>),
    /// A new certificate for new handshakes; the reply says whether the
    /// server speaks TLS (a plain server keeps serving plain).
    SetTls(Box<ServerTls>, Sender<bool>),
    /// Delete an account and its tokens; the auth thread answers directly.
    DeleteAccount {
        name: String,
        reply: Sender<Result<bool, String>>,
    },
    /// A moderation action (`kick`, `ban`, `unban`, `mute`, `unmute`,
    /// `set_role` or `delete`, as a member would send it) by the server.
    Moderate(
        crate::protocol::ClientMessage,
        Sender<Result<(), (crate::protocol::ErrorCode, String)>>,
    ),
    Shutdown,
}

/// A cloneable, thread-safe remote control for a running server.
#[derive(Clone)]
pub struct ServerHandle {
    tx: Sender<Command>,
    waker: Arc<Waker>,
    /// When the loop last turned.
    beat: Arc<Beat>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

impl ServerHandle {
    pub(crate) fn new(waker: Arc<Waker>, beat: Arc<Beat>) -> (Self, Receiver<Command>) {
        let (tx, rx) = channel();
        (Self { tx, waker, beat }, rx)
    }

    /// How long ago the loop last started a turn. An idle loop still turns
    /// at least once per timer tick (`heartbeat_ms / 4`, at most 1 s), so a
    /// value of several seconds means the loop is stuck (or not running
    /// yet: before `run` it counts from `build`). Reads an atomic; never
    /// waits for the loop, so a health check can use it.
    pub fn idle_for(&self) -> Duration {
        self.beat.idle_for()
    }

    /// Everyone logged in, in any room, by session.
    pub fn members(&self) -> Result<Vec<UserInfo>, HandleError> {
        self.ask(Command::Members)
    }

    /// Every room with its member count and topic, the default room first
    /// (as a member's `rooms` request gets them).
    pub fn rooms(&self) -> Result<Vec<RoomInfo>, HandleError> {
        self.ask(Command::Rooms)
    }

    /// Sends `text` to every member of every room as a `notice`
    /// (docs/protocol.md, "Server notices"): an operator's announcement,
    /// shown apart from the chat and kept in no history. Longer texts are
    /// cut to `max_text_bytes`; a blank one is not sent.
    pub fn notice(&self, text: impl Into<String>) -> Result<(), HandleError> {
        self.send(Command::Notice(text.into()))
    }

    /// Applies the settings of `config` that can change while the server
    /// runs (see [`crate::ServerConfig::runtime_keys`]); the others keep
    /// their current values. Returns the keys whose new value differs but
    /// needs a restart. Check `config` first ([`crate::ServerConfig::validate`]):
    /// an invalid one is refused with [`HandleError::Refused`].
    pub fn reconfigure(
        &self,
        config: crate::server::config::ServerConfig,
    ) -> Result<Vec<&'static str>, HandleError> {
        if let Err(e) = config.validate() {
            return Err(HandleError::Refused {
                code: crate::protocol::ErrorCode::BadMessage,
                message: format!("{} {}", e.key, e.problem),
            });
        }
        self.ask(|reply| Command::Reconfigure(Box::new(config), reply))
    }

    fn send(&self, cmd: Command) -> Result<(), HandleError> {
        self.tx.send(cmd).map_err(|_| HandleError::Stopped)?;
        self.waker.wake().map_err(|_| HandleError::Stopped)
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Command) -> Result<T, HandleError> {
        let (tx, rx) = channel();
        self.send(make(tx))?;
        rx.recv().map_err(|_| HandleError::Stopped)
    }

    /// Sends `text` to everyone as a message from the server (session 0).
    pub fn broadcast(&self, text: impl Into<String>) -> Result<(), HandleError> {
        self.send(Command::Broadcast(text.into()))
    }

    /// Who is in the room now.
    pub fn users(&self) -> Result<Vec<UserInfo>, HandleError> {
        self.ask(Command::Users)
    }

    /// Removes session `session` (reason `kicked`). `false` if no such member.
    pub fn kick(&self, session: u64) -> Result<bool, HandleError> {
        self.ask(|reply| Command::Kick { session, reply })
    }

    /// Deletes the registered name `name` (any look-alike spelling finds
    /// it) and revokes all its tokens. A member logged in with it keeps its
    /// session, but the password and tokens no longer work, and the name
    /// is free for anyone. `Ok(false)` if no such account;
    /// [`HandleError::Accounts`] if the server has no store or its
    /// database failed.
    pub fn delete_account(&self, name: &str) -> Result<bool, HandleError> {
        let name = name.to_owned();
        match self.ask(|reply| Command::DeleteAccount { name, reply }) {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(_)) => Err(HandleError::Accounts),
            Err(e) => Err(e),
        }
    }

    /// Moderation with every power (docs/protocol.md section 24), as the
    /// `server`: `kick`, `ban`, `unban`, `mute`, `unmute`, `set_role`,
    /// `delete`, `room_mode` or `invite` (section 23.5), exactly as a
    /// member would send it (other messages are
    /// refused with `bad_message`). The room is told (`moderated`,
    /// `deleted`) and the action logged, like a member's;
    /// [`HandleError::Refused`] says why it could not be done (nobody of
    /// that name in that room, an operator as the target...).
    pub fn moderate(&self, action: crate::protocol::ClientMessage) -> Result<(), HandleError> {
        match self.ask(|reply| Command::Moderate(action, reply))? {
            Ok(()) => Ok(()),
            Err((code, message)) => Err(HandleError::Refused { code, message }),
        }
    }

    /// The server's counters.
    pub fn stats(&self) -> Result<ServerStats, HandleError> {
        self.ask(Command::Stats)
    }

    /// Replaces the TLS certificate: handshakes that start after this use
    /// `tls`; connected members keep their sessions. Load `tls` on your own
    /// thread ([`crate::TlsSource::load`]): the loop never touches the disk.
    /// [`HandleError::TlsOff`] if the server serves plain TCP.
    pub fn set_tls(&self, tls: ServerTls) -> Result<(), HandleError> {
        if self.ask(|reply| Command::SetTls(Box::new(tls), reply))? {
            Ok(())
        } else {
            Err(HandleError::TlsOff)
        }
    }

    /// Asks the server to stop: every member is told (`left`, reason
    /// `shutdown`), output is flushed (at most about 1.5 s), then `run` returns.
    pub fn shutdown(&self) -> Result<(), HandleError> {
        self.send(Command::Shutdown)
    }
}
