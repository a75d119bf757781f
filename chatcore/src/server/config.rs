//! Server configuration: every limit and timeout, with documented defaults.
//!
//! The same struct is read from the daemon's TOML file (every key optional;
//! unknown keys are an error so a typo does not silently keep a default).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::protocol::DEFAULT_MAX_FRAME;

/// Smallest `voice_max_bitrate`: Opus's lowest useful rate.
pub const MIN_VOICE_BITRATE: u32 = 6_000;
/// Largest `voice_max_bitrate`: Opus's highest rate.
pub const MAX_VOICE_BITRATE: u32 = 510_000;

/// Everything a server needs to know before it starts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Chat (text and files) listening address. Default `127.0.0.1:6789`.
    pub listen: SocketAddr,
    /// Voice listening address (UDP and TCP on the same port), or none to
    /// not bind one. Default `127.0.0.1:5678`.
    pub voice_listen: Option<SocketAddr>,
    /// A client silent this long is pinged. Default 10 000 ms.
    pub heartbeat_ms: u32,
    /// A client silent this long is removed (reason `timeout`).
    /// Default: three times `heartbeat_ms`.
    pub idle_timeout_ms: Option<u32>,
    /// Time a new connection has to complete `hello`. Default 10 000 ms.
    pub handshake_timeout_ms: u32,
    /// Most connections at once (logged in or not); more get `server_full`.
    /// Default 10 000.
    pub max_clients: usize,
    /// Largest frame body accepted, in bytes. Default 1 MiB.
    pub max_frame: u32,
    /// Longest name in characters (Unicode scalar values). Default 32.
    pub max_name_chars: usize,
    /// Longest chat text in bytes. Default 4096.
    pub max_text_bytes: usize,
    /// Output queued for one client beyond this cuts it off (reason `slow`).
    /// Default 8 MiB.
    pub max_output_bytes: usize,
    /// Chat messages kept for late joiners. Default 50.
    pub history_len: usize,
    /// Most chats in one `history` page: a request's `limit` above this is
    /// refused with `history_limit`, so one request costs bounded work and
    /// output. Default 200.
    pub history_page_max: u32,
    /// Most chats sent to a resuming client (`hello` with `last_seen`); it
    /// missed more is flagged `gap: true` and it pages for the rest, so a
    /// client away for a week does not get one huge frame. Default 500.
    pub resume_max: u32,
    /// Sustained frames per second per connection (`hello`, `chat`, `history`, `ping`,
    /// `file_offer`, `file_accept`, `file_decline`, `file_cancel` and the
    /// voice messages are charged; `file_chunk`, `pong` and `bye` are not). Default 20.
    pub rate_per_sec: f64,
    /// Burst allowance above the sustained rate, in frames. Default 40.
    pub rate_burst: f64,
    /// Where uploads are kept. Created if absent. Each server process keeps
    /// its files in a subdirectory `run-PID` of it, locked while it runs;
    /// those of processes that are gone (killed) are removed at start, so a
    /// crash never leaves files behind for good. Default: a directory
    /// `chatserver-spool` in the system's temporary directory.
    pub spool_dir: Option<PathBuf>,
    /// Largest file that may be offered, in bytes. Default 4 GiB.
    pub max_file_bytes: u64,
    /// Most bytes the spool may hold, counting bytes actually uploaded (not
    /// declared sizes, which cost an attacker nothing). An offer or a chunk
    /// that does not fit is refused; completed offers are never evicted for
    /// it. Default 16 GiB.
    pub spool_quota_bytes: u64,
    /// How long a completed upload stays on offer, in seconds. Default 3600.
    pub file_ttl_secs: u64,
    /// Uploads plus downloads one connection may run at once. Default 8.
    pub max_transfers_per_client: usize,
    /// Most members of the voice call; more get `call_full`. Default 32.
    pub max_call_members: usize,
    /// How often a call member must send on the voice port when silent
    /// (announced in `voice_joined`). Default 2000 ms.
    pub voice_keepalive_ms: u32,
    /// A call member whose voice path is silent this long leaves the call.
    /// Default 10 000 ms.
    pub voice_timeout_ms: u32,
    /// The call's maximum audio bitrate, bits per second, announced in
    /// `voice_joined` (clients cap their encoder at it) and enforced per
    /// member as a byte rate with room for packet headers and bursts
    /// (docs/protocol.md §16.4): without it a member could send oversized
    /// packets within the packet rate and make every listener download
    /// them. Default 64 000 (Opus speech needs 16–40 kbit/s).
    pub voice_max_bitrate: u32,
    /// Most live transfers (uploads in progress plus offers) in the room,
    /// whoever created them: offers outlive their sender, so a cap per
    /// session could be escaped by reconnecting. More get `too_many_offers`.
    /// Default 1000.
    pub max_offers: usize,
    /// Most live transfers whose sender had a given name, counted over every
    /// session that used it. More get `too_many_offers`. Default 32.
    pub max_offers_per_name: usize,
    /// Most live transfers sent from one IP address, over every session and
    /// name: a reconnecting client cannot escape it. More get
    /// `too_many_offers`. Default 64.
    pub max_offers_per_address: usize,
    /// Offers sent to a member who logs in: the newest this many; the
    /// `welcome` says how many older ones were left out. Bounds the work and
    /// the output of every login. Default 50.
    pub welcome_offers: usize,
    /// An upload that receives no chunk for this long is aborted (error
    /// `upload_timeout`), so an offer that never uploads holds nothing for
    /// long. Default 60 s.
    pub upload_stall_secs: u64,
    /// Most spool files the disk thread keeps open at once (uploads and
    /// downloads together); others are reopened when their turn comes. Bounds
    /// the descriptors file transfers use, whatever the number of idle
    /// uploads and downloads. Default 64.
    pub max_open_spool_files: usize,
    /// Most connections one address may hold at once (an IPv6 address counts
    /// by its /64 prefix); more get `too_many_connections`. Stops one host
    /// from taking every slot of `max_clients`. Default 64.
    pub max_connections_per_address: usize,
    /// Most connections not yet logged in that one address may hold at once
    /// (IPv6 by /64); more get `too_many_connections`. Silent sockets cost
    /// the attacker nothing, so they get a much smaller share. Default 16.
    pub max_handshakes_per_address: usize,
    /// Largest frame body accepted before a successful `hello`, in bytes;
    /// a larger length prefix is a fatal `frame_too_large`. A `hello` needs
    /// well under 200 bytes, so an anonymous peer cannot make the server
    /// buffer a large frame. Default 4096.
    pub max_prelogin_frame: u32,
    /// Most bytes of partial frames all connections together may keep
    /// buffered. Once reached, connections holding a partial frame are not
    /// read (TCP flow control holds their senders back) until it drops
    /// again; connections whose frames arrive whole are unaffected.
    /// Default 256 MiB.
    pub max_buffered_input_bytes: usize,
    /// Log lines about one address (IPv6: its /64) per minute before the
    /// rest are only counted and summarised in one line. Default 20.
    pub log_lines_per_address: u32,
    /// Sustained `bind` packets per second the voice port accepts from one
    /// source address (an IPv4 address or an IPv6 /64; UDP and TCP counted
    /// apart); more are dropped unanswered. Limits token guessing and the
    /// `bind_challenge` answers a forged source can draw. Default 20.
    pub voice_bind_rate_per_sec: f64,
    /// Burst of `bind` packets above that rate, per source address: room
    /// for a whole call behind one NAT to bind at once. Default 64.
    pub voice_bind_burst: f64,
    /// TCP voice connections that have not bound yet, per source address;
    /// a new one beyond this closes that source's oldest unbound one.
    /// Default 8.
    pub voice_unbound_per_address: usize,
    /// TCP voice connections that have not bound yet, in total; a new one
    /// beyond this closes the oldest unbound one. Bound connections never
    /// count. Default 64.
    pub voice_unbound_max: usize,
    /// Time a TCP voice connection has to send an accepted `bind` before it
    /// is closed. Default 5000 ms.
    pub voice_unbound_timeout_ms: u32,
    /// TLS on the chat port: the certificate to present, or `None` for
    /// plain TCP (the library's default, so embedders and tests keep
    /// working; the daemon turns TLS on). Not a config-file key: the daemon
    /// builds it from `tls_cert`/`tls_key` or its data directory. Set with
    /// [`crate::ServerBuilder::tls`], replaced at run time with
    /// [`crate::ServerHandle::set_tls`].
    #[serde(skip)]
    pub tls: Option<crate::server::tls::ServerTls>,
    /// The SQLite file that keeps the chat history across restarts, or
    /// `None` to keep history in memory only (the library's default, so
    /// embedders and tests keep working; the daemon sets
    /// `DATA_DIR/chat.db`). Not a config-file key (the daemon's `store`
    /// key turns it off). Set with [`crate::ServerBuilder::store`].
    #[serde(skip)]
    pub store_path: Option<PathBuf>,
    /// How hard each commit of the history store waits for the disk:
    /// `normal` (survives a crash of the process) or `full` (survives a
    /// power loss too, one fsync per loop turn). Default `normal`.
    pub store_sync: StoreSync,
    /// Chat messages the store keeps (the oldest are deleted beyond it);
    /// 0 = no count limit. Default 100 000.
    pub history_keep_messages: u64,
    /// Days a stored chat message is kept; 0 = forever (the default).
    pub history_keep_days: u32,
    /// Only registered names may log in: a `hello` without a password or
    /// token is refused with `account_required`. Needs the store (the
    /// account database lives in it). Default false.
    pub require_account: bool,
    /// A guest asking for a registered name gets `name(1)` (like a taken
    /// name) instead of `name_registered`. Default false: a registered
    /// name is never shown by anyone else, even with a suffix' difference.
    pub guest_shadow: bool,
    /// Days a session token stays valid after it is issued (at a password
    /// login, `register` or `change_password`); at least 1. Default 30.
    pub token_days: u32,
    /// Named rooms the server holds at most (docs/protocol.md section 23);
    /// past it `join` of a new room gets `too_many_rooms`. Default 1000.
    pub max_rooms: usize,
    /// Named rooms one member may be in at once. Default 50.
    pub max_rooms_per_member: usize,
    /// Who may create a room by joining a name that does not exist yet.
    /// Default `anyone`.
    pub room_creation: RoomCreation,
    /// The name the default room is listed under in `room_list` (and that
    /// no named room may take). Default `lobby`.
    pub default_room_name: String,
    /// Registered names with every power in every room (kick, ban, mute,
    /// roles, delete), the default room included: the server's operators.
    /// A name here counts only when its member logged in with its password
    /// or token. Default: none.
    pub operators: Vec<String>,
}

/// Most chats one store page holds: the bound of `history_page_max` and
/// `resume_max`, and what the store thread caps every page at.
pub(crate) const MAX_PAGE: u32 = 1000;

/// Who may create rooms (config key `room_creation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomCreation {
    /// Every member.
    #[default]
    Anyone,
    /// Members logged in with a registered name (password or token).
    Registered,
    /// Nobody: only the rooms the store already holds exist.
    Nobody,
}

/// SQLite's `synchronous` setting for the history store (config key
/// `store_sync`): the trade between commit latency and what survives a
/// power loss (docs/operations.md, "Durability").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreSync {
    /// `synchronous=NORMAL` in WAL mode: every commit survives a crash or
    /// `kill -9` of the server; a power loss may lose the last commits.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is fsynced before its messages are
    /// delivered, so it survives a power loss too.
    Full,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 6789)),
            voice_listen: Some(SocketAddr::from(([127, 0, 0, 1], 5678))),
            heartbeat_ms: 10_000,
            idle_timeout_ms: None,
            handshake_timeout_ms: 10_000,
            max_clients: 10_000,
            max_frame: DEFAULT_MAX_FRAME,
            max_name_chars: 32,
            max_text_bytes: 4096,
            max_output_bytes: 8 * 1024 * 1024,
            history_len: 50,
            history_page_max: 200,
            resume_max: 500,
            rate_per_sec: 20.0,
            rate_burst: 40.0,
            spool_dir: None,
            max_file_bytes: 4 << 30,
            spool_quota_bytes: 16 << 30,
            file_ttl_secs: 3600,
            max_transfers_per_client: 8,
            max_call_members: 32,
            voice_keepalive_ms: 2000,
            voice_timeout_ms: 10_000,
            voice_max_bitrate: 64_000,
            max_offers: 1000,
            max_offers_per_name: 32,
            max_offers_per_address: 64,
            welcome_offers: 50,
            upload_stall_secs: 60,
            max_open_spool_files: 64,
            max_connections_per_address: 64,
            max_handshakes_per_address: 16,
            max_prelogin_frame: 4096,
            max_buffered_input_bytes: 256 << 20,
            log_lines_per_address: 20,
            voice_bind_rate_per_sec: 20.0,
            voice_bind_burst: 64.0,
            voice_unbound_per_address: 8,
            voice_unbound_max: 64,
            voice_unbound_timeout_ms: 5000,
            tls: None,
            store_path: None,
            store_sync: StoreSync::Normal,
            history_keep_messages: 100_000,
            history_keep_days: 0,
            require_account: false,
            guest_shadow: false,
            token_days: 30,
            max_rooms: 1000,
            max_rooms_per_member: 50,
            room_creation: RoomCreation::Anyone,
            default_room_name: "lobby".to_owned(),
            operators: Vec::new(),
        }
    }
}

/// A configuration value that would make the server unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid configuration: {key} {problem}")]
pub struct ConfigError {
    /// The offending key.
    pub key: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl ServerConfig {
    /// Checks every value is usable; [`crate::Server`] refuses to start otherwise.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, key, problem| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError { key, problem })
            }
        };
        // The common case: an integer key that must be at least 1, its
        // name in the error being the field's own.
        macro_rules! at_least_one {
            ($($field:ident),+) => {
                $(check(self.$field > 0, stringify!($field), "must be at least 1")?;)+
            };
        }
        at_least_one!(heartbeat_ms);
        at_least_one!(token_days);
        check(
            crate::server::room::names::validate(&self.default_room_name, self.max_name_chars)
                .is_ok_and(|n| n == self.default_room_name),
            "default_room_name",
            "must be a valid room name (like a user name, already trimmed and in NFC)",
        )?;
        check(
            !self.require_account || self.store_path.is_some(),
            "require_account",
            "needs the store (accounts live in its database)",
        )?;
        check(
            self.idle_timeout_ms != Some(0),
            "idle_timeout_ms",
            "must be at least 1",
        )?;
        at_least_one!(handshake_timeout_ms, max_clients);
        check(self.max_frame >= 64, "max_frame", "must be at least 64")?;
        at_least_one!(max_name_chars, max_text_bytes, history_page_max, resume_max);
        // The store reads one page of at most MAX_PAGE rows; a resume asks
        // for one more than `resume_max` to see whether more were missed.
        check(
            self.history_page_max <= MAX_PAGE,
            "history_page_max",
            "must be at most 1000",
        )?;
        check(
            self.resume_max < MAX_PAGE,
            "resume_max",
            "must be at most 999",
        )?;
        check(
            self.max_output_bytes >= self.max_frame as usize,
            "max_output_bytes",
            "must be at least max_frame",
        )?;
        check(
            self.rate_per_sec.is_finite() && self.rate_per_sec > 0.0,
            "rate_per_sec",
            "must be a positive number",
        )?;
        check(
            self.rate_burst.is_finite() && self.rate_burst >= 1.0,
            "rate_burst",
            "must be a number of at least 1",
        )?;
        at_least_one!(
            file_ttl_secs,
            max_transfers_per_client,
            max_call_members,
            voice_keepalive_ms
        );
        check(
            self.voice_timeout_ms > self.voice_keepalive_ms,
            "voice_timeout_ms",
            "must be longer than voice_keepalive_ms",
        )?;
        check(
            (MIN_VOICE_BITRATE..=MAX_VOICE_BITRATE).contains(&self.voice_max_bitrate),
            "voice_max_bitrate",
            "must be between 6000 and 510000 (bits per second, the range of Opus)",
        )?;
        at_least_one!(
            max_offers,
            max_offers_per_name,
            max_offers_per_address,
            upload_stall_secs,
            max_open_spool_files,
            max_connections_per_address,
            max_handshakes_per_address
        );
        check(
            self.max_prelogin_frame >= 64,
            "max_prelogin_frame",
            "must be at least 64",
        )?;
        check(
            self.max_buffered_input_bytes >= self.max_frame as usize + 4,
            "max_buffered_input_bytes",
            "must be at least max_frame + 4",
        )?;
        check(
            self.voice_bind_rate_per_sec.is_finite() && self.voice_bind_rate_per_sec > 0.0,
            "voice_bind_rate_per_sec",
            "must be a positive number",
        )?;
        check(
            self.voice_bind_burst.is_finite() && self.voice_bind_burst >= 2.0,
            "voice_bind_burst",
            "must be a number of at least 2 (a bind and its cookie echo)",
        )?;
        at_least_one!(
            voice_unbound_per_address,
            voice_unbound_max,
            voice_unbound_timeout_ms
        );
        Ok(())
    }

    /// The spool directory: `spool_dir`, or `chatserver-spool` in the
    /// system's temporary directory. The server keeps its files in a
    /// subdirectory of it of its own (see `spool_dir`).
    pub fn spool_base(&self) -> PathBuf {
        self.spool_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("chatserver-spool"))
    }

    /// File descriptors the server may need at most: one per chat
    /// connection, one per TCP voice connection (at most twice
    /// `max_call_members`), `max_open_spool_files`, and 16 for the rest
    /// (standard streams, poll and waker, listeners, spool lock, spare).
    /// docs/operations.md gives the same formula.
    pub fn file_descriptors_needed(&self) -> u64 {
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        n(self.max_clients)
            .saturating_add(n(self.max_call_members).saturating_mul(2))
            .saturating_add(n(self.max_open_spool_files))
            .saturating_add(16)
    }

    /// How long an upload may go without a chunk.
    pub fn upload_stall(&self) -> Duration {
        Duration::from_secs(self.upload_stall_secs.max(1))
    }

    /// The heartbeat interval as a duration (at least 1 ms).
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(u64::from(self.heartbeat_ms.max(1)))
    }

    /// The idle timeout: `idle_timeout_ms`, or three heartbeats.
    pub fn idle_timeout(&self) -> Duration {
        match self.idle_timeout_ms {
            Some(ms) => Duration::from_millis(u64::from(ms.max(1))),
            None => self.heartbeat() * 3,
        }
    }

    /// The voice path timeout as a duration.
    pub fn voice_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.voice_timeout_ms))
    }

    /// The frame limit for a connection: `max_prelogin_frame` (at most
    /// `max_frame`) before login, `max_frame` after.
    pub fn frame_limit(&self, logged_in: bool) -> u32 {
        if logged_in {
            self.max_frame
        } else {
            self.max_prelogin_frame.min(self.max_frame)
        }
    }

    /// Time a TCP voice connection has to bind, as a duration.
    pub fn voice_unbound_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.voice_unbound_timeout_ms.max(1)))
    }

    /// The handshake timeout as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.handshake_timeout_ms.max(1)))
    }

    /// How often the timer sweep runs: a quarter heartbeat, within 5..=1000 ms,
    /// so timeouts are found at most that late.
    pub fn tick(&self) -> Duration {
        (self.heartbeat() / 4).clamp(Duration::from_millis(5), Duration::from_millis(1000))
    }

    /// The keys a running server takes over from a new configuration
    /// ([`crate::ServerHandle::reconfigure`], the daemon's SIGHUP): each
    /// is read where it is used, so a new value applies from the next
    /// connection, frame or request on. Every other key needs a restart
    /// (it sized something at start: the room, the voice port, the spool,
    /// the store, the operators' roles).
    pub const RUNTIME_KEYS: &[&str] = &[
        "max_clients",
        "rate_per_sec",
        "rate_burst",
        "max_output_bytes",
        "max_connections_per_address",
        "max_handshakes_per_address",
        "history_page_max",
        "resume_max",
        "max_transfers_per_client",
        "max_file_bytes",
        "welcome_offers",
        "upload_stall_secs",
        "require_account",
        "guest_shadow",
        "max_rooms",
        "max_rooms_per_member",
        "room_creation",
        "max_name_chars",
        "token_days",
        "max_call_members",
        "voice_max_bitrate",
    ];

    /// Takes over the [`Self::RUNTIME_KEYS`] of `new`; returns the other
    /// keys whose value differs (they keep their current value until a
    /// restart). `tls` and `store_path` are not compared: the certificate
    /// has its own reload and the store is the daemon's.
    pub fn apply_runtime(&mut self, new: &ServerConfig) -> Vec<&'static str> {
        macro_rules! take {
            ($($f:ident),+ $(,)?) => {
                $(self.$f = new.$f.clone();)+
            };
        }
        take!(
            max_clients,
            rate_per_sec,
            rate_burst,
            max_output_bytes,
            max_connections_per_address,
            max_handshakes_per_address,
            history_page_max,
            resume_max,
            max_transfers_per_client,
            max_file_bytes,
            welcome_offers,
            upload_stall_secs,
            require_account,
            guest_shadow,
            max_rooms,
            max_rooms_per_member,
            room_creation,
            max_name_chars,
            token_days,
            max_call_members,
            voice_max_bitrate,
        );
        let mut restart = Vec::new();
        macro_rules! compare {
            ($($f:ident),+ $(,)?) => {
                $(if self.$f != new.$f {
                    restart.push(stringify!($f));
                })+
            };
        }
        compare!(
            listen,
            voice_listen,
            heartbeat_ms,
            idle_timeout_ms,
            handshake_timeout_ms,
            max_frame,
            max_text_bytes,
            history_len,
            spool_dir,
            spool_quota_bytes,
            file_ttl_secs,
            voice_keepalive_ms,
            voice_timeout_ms,
            max_offers,
            max_offers_per_name,
            max_offers_per_address,
            max_open_spool_files,
            max_prelogin_frame,
            max_buffered_input_bytes,
            log_lines_per_address,
            voice_bind_rate_per_sec,
            voice_bind_burst,
            voice_unbound_per_address,
            voice_unbound_max,
            voice_unbound_timeout_ms,
            store_sync,
            history_keep_messages,
            history_keep_days,
            default_room_name,
            operators,
        );
        restart
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_unusable_values_are_refused() {
        assert_eq!(ServerConfig::default().validate(), Ok(()));
        let zero_heartbeat = ServerConfig {
            heartbeat_ms: 0,
            ..ServerConfig::default()
        };
        assert_eq!(
            zero_heartbeat.validate().map_err(|e| e.key),
            Err("heartbeat_ms")
        );
        let nan_rate = ServerConfig {
            rate_per_sec: f64::NAN,
            ..ServerConfig::default()
        };
        assert_eq!(nan_rate.validate().map_err(|e| e.key), Err("rate_per_sec"));
        for bitrate in [MIN_VOICE_BITRATE - 1, MAX_VOICE_BITRATE + 1] {
            let c = ServerConfig {
                voice_max_bitrate: bitrate,
                ..ServerConfig::default()
            };
            assert_eq!(c.validate().map_err(|e| e.key), Err("voice_max_bitrate"));
        }
    }
}
