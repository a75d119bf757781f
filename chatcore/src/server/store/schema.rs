//! The history database's schema, as numbered migrations applied at start.
//!
//! `PRAGMA user_version` holds how many migrations a database has had. At
//! open, the ones it lacks run in order, each in its own transaction that
//! also bumps the version, so a crash mid-way leaves a consistent database
//! at the previous version. A database with a higher version than this
//! binary knows was written by a newer server: it is refused rather than
//! used with a schema the code does not understand.
//!
//! To change the schema, APPEND a migration to [`MIGRATIONS`] (never edit
//! or reorder one that shipped: databases in the field already ran it).

use rusqlite::Connection;

use super::StoreError;

/// The migrations, in order: `MIGRATIONS[i]` takes a database from version
/// `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: chat messages. `id` is the message id clients see (INTEGER PRIMARY
    // KEY: the rowid, so paging by id is a b-tree walk); `ts` is the
    // server's Unix time in ms (indexed for retention by age); `session` 0
    // is the server itself.
    "CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        session INTEGER NOT NULL,
        sender TEXT NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX messages_ts ON messages (ts);",
    // 2: accounts (server/accounts/). An account is keyed by the UTS #39
    // confusable skeleton of its name, so look-alikes are one account;
    // `name` is the owner's spelling, `hash` an argon2id PHC string.
    // Tokens are stored only as the SHA-256 of the 32 random bytes the
    // client holds; `expires` is Unix time in ms.
    "CREATE TABLE accounts (
        skeleton TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        hash BLOB PRIMARY KEY,
        skeleton TEXT NOT NULL,
        created INTEGER NOT NULL,
        expires INTEGER NOT NULL
    );
    CREATE INDEX tokens_by_account ON tokens (skeleton);",
    // 3: rooms, moderation and direct messages (docs/protocol.md sections
    // 23 to 25). A direct message is a row whose `room` is its
    // conversation's key (starting with U+0001, which no room name has),
    // with its `recipient` (name as shown) and `recipient_key` (the party
    // key of docs section 25: unread counts go by it); `dm_reads` keeps
    // how far each account has read each conversation. Each
    // chat belongs to a room, "" being the default room (every row from
    // before); pages and retention go by room, hence the (room, id) index.
    // `rooms` keeps the named rooms, keyed by the skeleton of their name
    // like accounts. `roles` and `sanctions` (bans, mutes; `until` NULL:
    // no end) name rooms by key ("" or the room's skeleton) and members by
    // account skeleton or address; `moderation_log` records every action.
    "ALTER TABLE messages ADD COLUMN room TEXT NOT NULL DEFAULT '';
    CREATE INDEX messages_room ON messages (room, id);
    ALTER TABLE messages ADD COLUMN recipient TEXT NOT NULL DEFAULT '';
    ALTER TABLE messages ADD COLUMN recipient_key TEXT NOT NULL DEFAULT '';
    CREATE INDEX messages_recipient ON messages (recipient_key, id);
    CREATE TABLE dm_reads (
        account TEXT NOT NULL,
        conversation TEXT NOT NULL,
        last_read INTEGER NOT NULL,
        PRIMARY KEY (account, conversation)
    );
    CREATE TABLE rooms (
        skeleton TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        topic TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE TABLE roles (
        room TEXT NOT NULL,
        account TEXT NOT NULL,
        role TEXT NOT NULL,
        PRIMARY KEY (room, account)
    );
    CREATE TABLE sanctions (
        kind TEXT NOT NULL,
        room TEXT NOT NULL,
        target_kind TEXT NOT NULL,
        target TEXT NOT NULL,
        name TEXT NOT NULL,
        until INTEGER,
        PRIMARY KEY (kind, room, target_kind, target)
    );
    CREATE TABLE moderation_log (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        room TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL
    );",
    // 4: invite-only rooms (docs/protocol.md 23.5): the room's flag, and the
    // registered members invited to it (by account skeleton; a guest's
    // invitation lasts only for its session and is not stored).
    "ALTER TABLE rooms ADD COLUMN invite_only INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE invites (
        room TEXT NOT NULL,
        account TEXT NOT NULL,
        by TEXT NOT NULL,
        ts INTEGER NOT NULL,
        PRIMARY KEY (room, account)
    );",
];

/// The schema version this binary writes.
pub(crate) fn current_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// Brings `conn` to [`current_version`], or refuses a newer database.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = current_version();
    if found > known {
        return Err(StoreError::NewerSchema { found, known });
    }
    for (done, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", done as u32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
