//! The store thread: owns the SQLite connection, commits each batch of
//! chats in one transaction (group commit), answers pages, applies
//! retention, and wakes the loop after each answer.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use mio::Waker;
use rusqlite::{Connection, Row, params};

use super::{BATCH_REQUESTS, MAX_PAGE, StoreReply, StoreRequest, StoredChat};
use crate::time::now_ms;

/// Retention runs at most this often (and at open).
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// The retention keys (`history_keep_messages`, `history_keep_days`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retention {
    /// Rows kept, the newest ones (0: no limit).
    pub keep_messages: u64,
    /// Days kept (0: forever).
    pub keep_days: u32,
}

impl Retention {
    /// Deletes what is past the limits; returns the rows deleted.
    pub(crate) fn apply(&self, conn: &Connection) -> rusqlite::Result<usize> {
        let mut deleted = 0;
        if self.keep_messages > 0 {
            // Per room: a busy room must not push a quiet one's history out.
            let offset = i64::try_from(self.keep_messages - 1).unwrap_or(i64::MAX);
            let rooms = conn
                .prepare("SELECT DISTINCT room FROM messages")?
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            for room in rooms {
                deleted += conn.execute(
                    "DELETE FROM messages WHERE room = ?1 AND id < \
                     (SELECT id FROM messages WHERE room = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    params![room, offset],
                )?;
            }
        }
        if self.keep_days > 0 {
            let cutoff = now_ms().saturating_sub(i64::from(self.keep_days) * 86_400_000);
            deleted += conn.execute("DELETE FROM messages WHERE ts < ?1", [cutoff])?;
        }
        Ok(deleted)
    }
}

/// A `messages` row, columns `id, ts, session, sender, text, room,
/// recipient, recipient_key`.
pub(crate) fn row_to_chat(row: &Row<'_>) -> rusqlite::Result<StoredChat> {
    Ok(StoredChat {
        id: row.get(0)?,
        ts: row.get(1)?,
        session: row.get(2)?,
        sender: row.get(3)?,
        text: row.get(4)?,
        room: row.get(5)?,
        recipient: row.get(6)?,
        recipient_key: row.get(7)?,
    })
}

/// The thread's body: until every sender is gone, take what requests are
/// waiting, commit all their chats at once, answer the rest in order.
pub(crate) fn run(
    mut conn: Connection,
    rx: Receiver<StoreRequest>,
    tx: Sender<StoreReply>,
    waker: Arc<Waker>,
    retention: Retention,
) {
    let mut last_retention = Instant::now();
    // Registered once; a no-op without a recorder.
    let commit_seconds = metrics::histogram!(super::STORE_COMMIT_SECONDS);
    while let Ok(first) = rx.recv() {
        let mut chats = Vec::new();
        let mut others = Vec::new();
        let mut take = |req| match req {
            StoreRequest::Append(batch) => chats.extend(batch),
            other => others.push(other),
        };
        take(first);
        for _ in 1..BATCH_REQUESTS {
            match rx.try_recv() {
                Ok(req) => take(req),
                Err(_) => break,
            }
        }
        if !chats.is_empty() {
            let started = Instant::now();
            let reply = append(&mut conn, chats);
            commit_seconds.record(started.elapsed().as_secs_f64());
            let _ = tx.send(reply);
        }
        for req in others {
            if let Some(reply) = answer(&conn, req) {
                let _ = tx.send(reply);
            }
        }
        let _ = waker.wake();
        if last_retention.elapsed() >= RETENTION_EVERY {
            last_retention = Instant::now();
            match retention.apply(&conn) {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "history retention"),
                Err(e) => tracing::warn!(error = %e, "history retention failed"),
            }
        }
    }
}

/// Commits `chats` in one transaction.
pub(crate) fn append(conn: &mut Connection, chats: Vec<StoredChat>) -> StoreReply {
    let up_to = chats.last().map_or(0, |c| c.id);
    let result = (|| {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages \
                 (id, ts, session, sender, text, room, recipient, recipient_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for c in &chats {
                insert.execute(params![
                    c.id,
                    c.ts,
                    c.session,
                    c.sender,
                    c.text,
                    c.room,
                    c.recipient,
                    c.recipient_key
                ])?;
            }
        }
        tx.commit()
    })();
    match result {
        Ok(()) => StoreReply::Committed { up_to },
        Err(e) => StoreReply::Failed {
            ids: chats.iter().map(|c| c.id).collect(),
            error: e.to_string(),
        },
    }
}

/// Answers a request other than `Append`.
fn answer(conn: &Connection, req: StoreRequest) -> Option<StoreReply> {
    match req {
        StoreRequest::Append(_) => None,
        StoreRequest::Unread {
            account,
            conn_key,
            tag,
        } => {
            let list = unread(conn, &account).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot count unread direct messages");
                Vec::new()
            });
            Some(StoreReply::Unread {
                conn_key,
                tag,
                list,
            })
        }
        StoreRequest::MarkRead {
            account,
            conversation,
            id,
        } => {
            let id = i64::try_from(id).unwrap_or(i64::MAX);
            let marked = conn.execute(
                "INSERT INTO dm_reads (account, conversation, last_read) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (account, conversation) \
                 DO UPDATE SET last_read = MAX(last_read, excluded.last_read)",
                params![account, conversation, id],
            );
            if let Err(e) = marked {
                tracing::warn!(error = %e, "cannot mark direct messages read");
            }
            None
        }
        StoreRequest::SaveRole {
            room,
            account,
            role,
        } => {
            use crate::server::moderation::Role;
            let saved = if role == Role::Member {
                conn.execute(
                    "DELETE FROM roles WHERE room = ?1 AND account = ?2",
                    params![room, account],
                )
            } else {
                conn.execute(
                    "INSERT INTO roles (room, account, role) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (room, account) DO UPDATE SET role = excluded.role",
                    params![room, account, role.as_str()],
                )
            };
            if let Err(e) = saved {
                tracing::warn!(error = %e, "cannot save a role");
            }
            None
        }
        StoreRequest::SaveSanction(s) => {
            let (target_kind, target) = target_columns(&s.target);
            let saved = conn.execute(
                "INSERT INTO sanctions (kind, room, target_kind, target, name, until) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (kind, room, target_kind, target) \
                 DO UPDATE SET name = excluded.name, until = excluded.until",
                params![
                    s.kind.as_str(),
                    s.room,
                    target_kind,
                    target,
                    s.name,
                    s.until
                ],
            );
            if let Err(e) = saved {
                tracing::warn!(error = %e, "cannot save a ban or mute");
            }
            None
        }
        StoreRequest::LiftSanction(s) => {
            let (target_kind, target) = target_columns(&s.target);
            let lifted = conn.execute(
                "DELETE FROM sanctions WHERE kind = ?1 AND room = ?2 \
                 AND target_kind = ?3 AND target = ?4",
                params![s.kind.as_str(), s.room, target_kind, target],
            );
            if let Err(e) = lifted {
                tracing::warn!(error = %e, "cannot lift a ban or mute");
            }
            None
        }
        StoreRequest::Log {
            ts,
            room,
            actor,
            action,
            target,
            detail,
        } => {
            let logged = conn.execute(
                "INSERT INTO moderation_log (ts, room, actor, action, target, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![ts, room, actor, action, target, detail],
            );
            if let Err(e) = logged {
                tracing::warn!(error = %e, "cannot record a moderation action");
            }
            None
        }
        StoreRequest::DeleteOld { id, room, then } => {
            let row = i64::try_from(id).unwrap_or(i64::MAX);
            let found = match conn.execute(
                "DELETE FROM messages WHERE id = ?1 AND room = ?2",
                params![row, room],
            ) {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot delete a chat");
                    false
                }
            };
            Some(StoreReply::DeletedOld { id, found, then })
        }
        StoreRequest::DeleteChat { id } => {
            let id = i64::try_from(id).unwrap_or(i64::MAX);
            if let Err(e) = conn.execute("DELETE FROM messages WHERE id = ?1", [id]) {
                tracing::warn!(error = %e, "cannot delete a chat");
            }
            None
        }
        StoreRequest::SaveRoom {
            name,
            skeleton,
            topic,
            invite_only,
        } => {
            let saved = conn.execute(
                "INSERT INTO rooms (skeleton, name, topic, created, invite_only) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (skeleton) DO UPDATE SET topic = excluded.topic, \
                 invite_only = excluded.invite_only",
                params![skeleton, name, topic, now_ms(), invite_only],
            );
            if let Err(e) = saved {
                tracing::warn!(error = %e, room = %name, "cannot save a room");
            }
            None
        }
        StoreRequest::SaveInvite { room, account, by } => {
            let saved = conn.execute(
                "INSERT INTO invites (room, account, by, ts) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (room, account) DO NOTHING",
                params![room, account, by, now_ms()],
            );
            if let Err(e) = saved {
                tracing::warn!(error = %e, "cannot save an invitation");
            }
            None
        }
        StoreRequest::Page {
            conn_key,
            before,
            after,
            limit,
            room,
            tag,
        } => {
            let (chats, more, failed) = match page(conn, &room, before, after, limit) {
                Ok((chats, more)) => (chats, more, None),
                Err(e) => (Vec::new(), false, Some(e.to_string())),
            };
            Some(StoreReply::Page {
                conn_key,
                tag,
                chats,
                more,
                failed,
            })
        }
    }
}

/// The conversations with unread messages to `account`: (the sender's
/// name of the newest, count, newest id).
fn unread(conn: &Connection, account: &str) -> rusqlite::Result<Vec<(String, u64, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.room, COUNT(*), MAX(m.id) FROM messages m \
         LEFT JOIN dm_reads r ON r.account = ?1 AND r.conversation = m.room \
         WHERE m.recipient_key = ?1 AND m.id > COALESCE(r.last_read, 0) \
         GROUP BY m.room ORDER BY MAX(m.id)",
    )?;
    let rows = stmt
        .query_map([account], |r| {
            Ok((r.get::<_, u64>(1)?, r.get::<_, u64>(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut list = Vec::with_capacity(rows.len());
    for (count, last) in rows {
        let last_i = i64::try_from(last).unwrap_or(i64::MAX);
        let from: String =
            conn.query_row("SELECT sender FROM messages WHERE id = ?1", [last_i], |r| {
                r.get(0)
            })?;
        list.push((from, count, last));
    }
    Ok(list)
}

/// The `sanctions` columns `target_kind`, `target` of a target.
fn target_columns(target: &crate::server::moderation::Target) -> (&'static str, &str) {
    use crate::server::moderation::Target;
    match target {
        Target::Account(a) => ("account", a.as_str()),
        Target::Address(a) => ("address", a.as_str()),
    }
}

/// A page of chats, oldest first, and whether more lie beyond it.
pub(crate) fn page(
    conn: &Connection,
    room: &str,
    before: Option<u64>,
    after: Option<u64>,
    limit: u32,
) -> rusqlite::Result<(Vec<StoredChat>, bool)> {
    let limit = limit.min(MAX_PAGE);
    let below = i64::try_from(before.unwrap_or(u64::MAX)).unwrap_or(i64::MAX);
    let fetch = i64::from(limit) + 1;
    let mut chats = if let Some(after) = after {
        let above = i64::try_from(after).unwrap_or(i64::MAX);
        let mut stmt = conn.prepare_cached(
            "SELECT id, ts, session, sender, text, room, recipient, recipient_key FROM messages \
             WHERE room = ?1 AND id > ?2 AND id < ?3 ORDER BY id ASC LIMIT ?4",
        )?;
        stmt.query_map(params![room, above, below, fetch], row_to_chat)?
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let mut stmt = conn.prepare_cached(
            "SELECT id, ts, session, sender, text, room, recipient, recipient_key FROM messages \
             WHERE room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        stmt.query_map(params![room, below, fetch], row_to_chat)?
            .collect::<Result<Vec<_>, _>>()?
    };
    let more = chats.len() > limit as usize;
    chats.truncate(limit as usize);
    if after.is_none() {
        chats.reverse();
    }
    Ok((chats, more))
}
