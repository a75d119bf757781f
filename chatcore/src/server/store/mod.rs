//! The history store: chat messages in a SQLite file, written by a thread of
//! its own so that the loop never waits for the disk.
//!
//! The loop talks to the store through two channels, like the disk thread
//! of file transfers: it sends [`StoreRequest`]s (never blocks), the store
//! thread answers with [`StoreReply`]s and wakes the loop through its
//! `mio::Waker`. Write before deliver: the room holds each accepted chat
//! until the store reports it [`StoreReply::Committed`], so a message any
//! member saw is in the file (docs/protocol.md section 12).
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | the handle ([`Store`]), requests, replies, stored rows, errors, opening and loading at start |
//! | `thread.rs` | the thread that owns the connection: group commit, pages, retention |
//! | `schema.rs` | the versioned migrations (`PRAGMA user_version`) |

pub(crate) mod schema;
mod thread;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::Waker;
use rusqlite::Connection;
use thiserror::Error;

use crate::protocol::Chat;
use crate::server::config::StoreSync;

/// Name of the store commit latency histogram (seconds), recorded by the
/// store thread around each group commit.
pub const STORE_COMMIT_SECONDS: &str = "chatserver_store_commit_seconds";

/// How long a write waits for a lock held by another connection (an
/// operator's `sqlite3` shell, a backup) before the commit fails. Only the
/// store thread waits; the loop keeps serving.
const BUSY_TIMEOUT: Duration = Duration::from_millis(1000);
/// Most requests the store thread takes in one go: every `Append` among
/// them goes into one transaction.
const BATCH_REQUESTS: usize = 1024;
/// Most chats one `Page` returns, whatever the request asked (defined
/// with the configuration, whose bounds it sets).
pub(crate) use crate::server::config::MAX_PAGE;

/// A chat message as the store keeps it (a row of `messages`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredChat {
    /// The message id clients see; strictly increasing across restarts.
    pub id: u64,
    /// Server time of acceptance, Unix milliseconds.
    pub ts: i64,
    /// The sender's session id (0: the server itself).
    pub session: u64,
    /// The sender's name as members saw it.
    pub sender: String,
    /// The text.
    pub text: String,
    /// The room's name; "" for the default room; a conversation's key for
    /// a direct message.
    pub room: String,
    /// A direct message's recipient, as shown; "" for a chat.
    pub recipient: String,
    /// A direct message's recipient's party key; "" for a chat.
    pub recipient_key: String,
}

impl StoredChat {
    /// The `chat` message a client gets for this row (no `ref`: that is only
    /// for the sender's live copy).
    pub fn into_chat(self) -> Chat {
        Chat {
            room: (!self.room.is_empty()).then_some(self.room),
            id: self.id,
            from: self.sender,
            session: self.session,
            text: self.text,
            ts: self.ts,
            reference: None,
        }
    }

    /// The row for a `chat` the room accepted.
    pub fn from_chat(chat: &Chat) -> Self {
        Self {
            id: chat.id,
            ts: chat.ts,
            session: chat.session,
            sender: chat.from.clone(),
            text: chat.text.clone(),
            room: chat.room.clone().unwrap_or_default(),
            recipient: String::new(),
            recipient_key: String::new(),
        }
    }

    /// The `dm` a client gets for this row (a direct message's).
    pub fn into_dm(self) -> crate::protocol::Dm {
        crate::protocol::Dm {
            id: self.id,
            from: self.sender,
            session: self.session,
            to: self.recipient,
            text: self.text,
            ts: self.ts,
            reference: None,
        }
    }
}

/// What the loop asks of the store thread. An enum so that each feature
/// (history paging, accounts) adds its own variants and replies.
#[derive(Debug)]
pub(crate) enum StoreRequest {
    /// Store these chats (one loop turn's, ids increasing) in one
    /// transaction; answered by `Committed` or `Failed`.
    Append(Vec<StoredChat>),
    /// A page of history for connection `conn_key`: with `after`, the oldest
    /// chats with a larger id (and below `before` if given); otherwise the
    /// newest chats below `before` (or the newest of all). At most `limit`
    /// (capped at [`MAX_PAGE`]); answered by `StoreReply::Page`.
    #[allow(dead_code)] // sent by the `history` request's handler
    Page {
        /// The connection that asked, where the answer goes.
        conn_key: usize,
        /// Only chats with a smaller id.
        before: Option<u64>,
        /// Only chats with a larger id; the page starts right after it.
        after: Option<u64>,
        /// Most chats in the page.
        limit: u32,
        /// The room ("" for the default room).
        room: String,
        /// The asker's own tag (a request id, the connection's session...)
        /// handed back unchanged, so that a reply reaching a reused key is
        /// recognised as stale.
        tag: u64,
    },
    /// The conversations with messages to `account` (a party key) that it
    /// has not marked read; answered by `StoreReply::Unread`.
    Unread {
        /// The account's party key.
        account: String,
        /// Who asked.
        conn_key: usize,
        /// Handed back (the asker's session).
        tag: u64,
    },
    /// `account` (a party key) has read `conversation` up to `id`. No answer.
    MarkRead {
        /// The account's party key.
        account: String,
        /// The conversation's key.
        conversation: String,
        /// The newest id read.
        id: u64,
    },
    /// Keep a role (`Member` removes the row). No answer.
    SaveRole {
        /// The room's key.
        room: String,
        /// The account's skeleton.
        account: String,
        /// The role.
        role: crate::server::moderation::Role,
    },
    /// Keep a ban or mute (replacing one of the same kind, room and
    /// target). No answer.
    SaveSanction(crate::server::moderation::Sanction),
    /// Forget a ban or mute. No answer.
    LiftSanction(crate::server::moderation::Sanction),
    /// Record a moderation action in `moderation_log`. No answer.
    Log {
        /// When, ms since the Unix epoch.
        ts: i64,
        /// The room's key.
        room: String,
        /// Who did it.
        actor: String,
        /// `kick`, `ban`, `unban`, `mute`, `unmute`, `role`, `delete`,
        /// `topic`.
        action: String,
        /// To whom or what (a name, a chat id).
        target: String,
        /// The rest (reason, end, role), as text.
        detail: String,
    },
    /// Delete chat `id` from the history. No answer.
    DeleteChat {
        /// The chat's id.
        id: u64,
    },
    /// Delete chat `id` if it is in room `room` (the `room` column: "" or
    /// the room's name): a chat older than what the room keeps in memory.
    /// Answered [`StoreReply::DeletedOld`], which carries `then` back.
    DeleteOld {
        /// The chat's id.
        id: u64,
        /// The room it must be in.
        room: String,
        /// What the loop does with the answer.
        then: DeleteThen,
    },
    /// Remember a named room (created, or its topic changed), so that it
    /// exists after a restart. No answer; a failure is logged.
    SaveRoom {
        /// The room's name as shown.
        name: String,
        /// Its confusable skeleton: the key, one room per look-alike.
        skeleton: String,
        /// Its topic.
        topic: String,
        /// Whether only invited members may join.
        invite_only: bool,
    },
    /// Keep an invitation of a registered member to a room. No answer.
    SaveInvite {
        /// The room's key (its skeleton).
        room: String,
        /// The invited account's skeleton.
        account: String,
        /// Who invited, as shown.
        by: String,
    },
}

/// What the store thread answers, in the order of the requests.
#[derive(Debug)]
pub(crate) enum StoreReply {
    /// Every chat with an id up to `up_to` is committed (durable per
    /// `store_sync`): the room may deliver them.
    Committed {
        /// The largest id committed.
        up_to: u64,
    },
    /// These chats could not be stored; none of them is in the file and
    /// none may be delivered.
    Failed {
        /// The ids of the batch that failed.
        ids: Vec<u64>,
        /// What SQLite said, for the log.
        error: String,
    },
    /// The answer to `Unread`: (the other party's name, unread count,
    /// newest id) by conversation.
    Unread {
        /// As asked.
        conn_key: usize,
        /// As asked.
        tag: u64,
        /// The conversations.
        list: Vec<(String, u64, u64)>,
    },
    /// The answer to `DeleteOld`.
    DeletedOld {
        /// As asked.
        id: u64,
        /// Whether the chat was there (and is gone now).
        found: bool,
        /// As asked.
        then: DeleteThen,
    },
    /// The answer to a `Page` request.
    #[allow(dead_code)] // read by the `history` request's handler
    Page {
        /// As in the request.
        conn_key: usize,
        /// As in the request.
        tag: u64,
        /// The chats, oldest first.
        chats: Vec<StoredChat>,
        /// Whether more chats lie beyond this page in the asked direction
        /// (older for a backwards page, newer for an `after` page).
        more: bool,
        /// The page could not be read (what SQLite said, for the log):
        /// the asker gets `store_unavailable`, never an empty page that
        /// would read as "nothing older".
        failed: Option<String>,
    },
}

/// What the loop needs to finish a `delete` of a stored chat once the
/// store answered: where to tell it, who did it, whom to answer.
#[derive(Debug, Clone)]
pub(crate) struct DeleteThen {
    /// The named room's id (`None`: the default room).
    pub room_id: Option<usize>,
    /// Who deleted it, as shown.
    pub by: String,
    /// The member who asked, (connection, session), for an error if the
    /// chat was not there; `None` for the embedding program.
    pub asker: Option<(usize, u64)>,
}

/// Why the store could not be opened or used.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database file's directory could not be created.
    #[error("cannot create the directory of {path}")]
    Directory {
        /// The database file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The database was written by a newer server: this binary does not
    /// know its schema and refuses to touch it.
    #[error(
        "the history database has schema version {found}, newer than version {known} that this server knows; run a newer server or move the file away"
    )]
    NewerSchema {
        /// The version found in the file.
        found: u32,
        /// The newest version this binary knows.
        known: u32,
    },
    /// Another server (another process, or another server in this one)
    /// has this database open: two would hand out the same message ids.
    #[error(
        "the history database {path} is in use by another server (its lock file {lock} is held); stop that server or give this one another data directory"
    )]
    InUse {
        /// The database file.
        path: PathBuf,
        /// The lock file next to it.
        lock: PathBuf,
    },
    /// The lock file next to the database could not be created or locked.
    #[error("cannot lock the history database with {lock}")]
    Lock {
        /// The lock file.
        lock: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// SQLite refused an operation.
    #[error("history database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store thread could not be started.
    #[error("cannot start the store thread")]
    Thread(#[source] std::io::Error),
}

/// What the store needs from the server configuration.
#[derive(Debug, Clone)]
pub(crate) struct StoreSettings {
    /// The database file.
    pub path: PathBuf,
    /// `synchronous` setting.
    pub sync: StoreSync,
    /// Rows kept (0: no limit).
    pub keep_messages: u64,
    /// Days kept (0: forever).
    pub keep_days: u32,
    /// Chats loaded for the welcome.
    pub history_len: usize,
}

/// What the store read at start, for the room.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The id the next chat gets: the largest stored id + 1 (1 when empty).
    pub next_id: u64,
    /// The newest `history_len` chats of the default room, oldest first.
    pub recent: Vec<StoredChat>,
    /// The named rooms, each with its newest `history_len` chats.
    pub rooms: Vec<LoadedRoom>,
    /// Roles: (room key, account, role).
    pub roles: Vec<(String, String, crate::server::moderation::Role)>,
    /// Bans and mutes still in force.
    pub sanctions: Vec<crate::server::moderation::Sanction>,
    /// Invitations: (room key, account skeleton).
    pub invites: Vec<(String, String)>,
    /// Skeletons of the registered names (who may get direct messages
    /// while away).
    pub accounts: Vec<String>,
}

/// A named room as the store kept it.
#[derive(Debug)]
pub(crate) struct LoadedRoom {
    /// Its name.
    pub name: String,
    /// Its topic.
    pub topic: String,
    /// Whether only invited members may join.
    pub invite_only: bool,
    /// Its newest chats, oldest first.
    pub recent: Vec<StoredChat>,
}

/// The loop's handle on the store thread. Dropping it lets the thread
/// commit what it was sent, then waits for it.
#[derive(Debug)]
pub(crate) struct Store {
    /// Requests to the thread; `None` once dropping.
    requests: Option<Sender<StoreRequest>>,
    /// Replies from the thread, read when the waker fires.
    replies: Receiver<StoreReply>,
    /// The thread, joined on drop.
    thread: Option<JoinHandle<()>>,
    /// `<db>.lock`, `flock`ed for as long as the store is open: a second
    /// server on the same file is refused at start instead of interleaving
    /// message ids with this one. Released (closed) after the thread ends.
    _lock: std::fs::File,
}

impl Store {
    /// Opens (creating if needed) the database, applies migrations and
    /// retention, reads what the room needs, and starts the store thread.
    /// Runs on the caller's thread, before the loop.
    pub(crate) fn open(
        settings: &StoreSettings,
        waker: Arc<Waker>,
    ) -> Result<(Self, Loaded), StoreError> {
        let mut conn = open_connection(&settings.path, settings.sync)?;
        let lock = lock(&settings.path)?;
        schema::migrate(&mut conn)?;
        let retention = thread::Retention {
            keep_messages: settings.keep_messages,
            keep_days: settings.keep_days,
        };
        retention.apply(&conn)?;
        let loaded = load(&conn, settings.history_len)?;
        let (requests, rx) = channel();
        let (tx, replies) = channel();
        let thread = std::thread::Builder::new()
            .name("chatcore-store".into())
            .spawn(move || thread::run(conn, rx, tx, waker, retention))
            .map_err(StoreError::Thread)?;
        Ok((
            Self {
                requests: Some(requests),
                replies,
                thread: Some(thread),
                _lock: lock,
            },
            loaded,
        ))
    }

    /// Sends a request (never blocks). `false` if the thread is gone.
    pub(crate) fn submit(&self, request: StoreRequest) -> bool {
        self.requests
            .as_ref()
            .is_some_and(|tx| tx.send(request).is_ok())
    }

    /// The next reply, if one is waiting.
    pub(crate) fn poll(&self) -> Option<StoreReply> {
        self.replies.try_recv().ok()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Opens the file in WAL mode with the chosen `synchronous`.
fn open_connection(path: &Path, sync: StoreSync) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        // Private: the file holds everyone's messages.
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|source| StoreError::Directory {
                path: path.to_owned(),
                source,
            })?;
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "the history database is not in WAL mode");
    }
    let sync = match sync {
        StoreSync::Normal => "NORMAL",
        StoreSync::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    Ok(conn)
}

/// Takes the lock file next to the database (`chat.db.lock` for
/// `chat.db`). An advisory `flock`, so it is released by the kernel when the
/// process dies, `kill -9` included: no stale lock to clean up.
fn lock(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|source| StoreError::Lock {
            lock: lock_path.clone(),
            source,
        })?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(StoreError::InUse {
            path: path.to_owned(),
            lock: lock_path,
        }),
        Err(e) => Err(StoreError::Lock {
            lock: lock_path,
            source: e.into(),
        }),
    }
}

/// The next id and the newest `history_len` chats.
fn load(conn: &Connection, history_len: usize) -> Result<Loaded, StoreError> {
    let max: Option<u64> = conn.query_row("SELECT MAX(id) FROM messages", [], |r| r.get(0))?;
    let recent = recent_of(conn, "", history_len)?;
    let mut stmt = conn.prepare("SELECT name, topic, invite_only FROM rooms ORDER BY name")?;
    let named = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut rooms = Vec::with_capacity(named.len());
    for (name, topic, invite_only) in named {
        let recent = recent_of(conn, &name, history_len)?;
        rooms.push(LoadedRoom {
            name,
            topic,
            invite_only,
            recent,
        });
    }
    let invites = conn
        .prepare("SELECT room, account FROM invites")?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let (roles, sanctions) = load_moderation(conn)?;
    let accounts = conn
        .prepare("SELECT skeleton FROM accounts")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Loaded {
        next_id: max.unwrap_or(0) + 1,
        recent,
        rooms,
        roles,
        sanctions,
        invites,
        accounts,
    })
}

/// Roles, and the bans and mutes that have not ended.
#[allow(clippy::type_complexity)]
fn load_moderation(
    conn: &Connection,
) -> Result<
    (
        Vec<(String, String, crate::server::moderation::Role)>,
        Vec<crate::server::moderation::Sanction>,
    ),
    StoreError,
> {
    use crate::server::moderation::{Kind, Role, Sanction, Target};
    let mut stmt = conn.prepare("SELECT room, account, role FROM roles")?;
    let roles = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter_map(|(room, account, role)| Some((room, account, Role::parse(&role)?)))
        .collect();
    let mut stmt = conn.prepare(
        "SELECT kind, room, target_kind, target, name, until FROM sanctions \
         WHERE until IS NULL OR until > ?1",
    )?;
    let sanctions = stmt
        .query_map([crate::time::now_ms()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter_map(|(kind, room, target_kind, target, name, until)| {
            Some(Sanction {
                kind: match kind.as_str() {
                    "ban" => Kind::Ban,
                    "mute" => Kind::Mute,
                    _ => return None,
                },
                room,
                target: match target_kind.as_str() {
                    "account" => Target::Account(target),
                    "address" => Target::Address(target),
                    _ => return None,
                },
                name,
                until,
            })
        })
        .collect();
    Ok((roles, sanctions))
}

/// The newest `history_len` chats of `room`, oldest first.
fn recent_of(
    conn: &Connection,
    room: &str,
    history_len: usize,
) -> Result<Vec<StoredChat>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, ts, session, sender, text, room, recipient, recipient_key FROM messages \
         WHERE room = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let limit = i64::try_from(history_len).unwrap_or(i64::MAX);
    let mut recent = stmt
        .query_map(rusqlite::params![room, limit], thread::row_to_chat)?
        .collect::<Result<Vec<_>, _>>()?;
    recent.reverse();
    Ok(recent)
}

#[cfg(test)]
mod tests;
