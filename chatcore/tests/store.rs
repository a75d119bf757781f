//! The history store on real files: restarts, a database that refuses
//! writes, schema versions, retention.

mod common;

use std::path::{Path, PathBuf};

use chatcore::protocol::{ErrorCode, ServerMessage};
use chatcore::{Server, ServerConfig, ServerError, StoreError};
use common::{Raw, start, test_config};

/// A fresh directory for one test's database.
fn db_dir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("chatcore-test-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The test config with a store at `db`.
fn store_config(db: &Path) -> ServerConfig {
    ServerConfig {
        store_path: Some(db.to_path_buf()),
        ..test_config()
    }
}

/// The texts stored in `db`, oldest first, read behind the server's back.
fn stored_texts(db: &Path) -> Vec<(u64, String)> {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let mut stmt = conn
        .prepare("SELECT id, text FROM messages ORDER BY id")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn texts(w: &[chatcore::protocol::Chat]) -> Vec<&str> {
    w.iter().map(|c| c.text.as_str()).collect()
}

#[test]
fn a_chat_is_in_the_file_when_its_sender_sees_it_and_survives_a_restart_with_ids_continuing() {
    let dir = db_dir("restart");
    let db = dir.join("chat.db");
    let server = start(store_config(&db));
    let (mut a, _) = Raw::login(server.local_addr(), "a");
    let mut ids = Vec::new();
    for (i, text) in ["one", "two", "three"].into_iter().enumerate() {
        a.chat_ref(text, i as u64);
        let c = a.next_chat();
        assert_eq!((c.text.as_str(), c.reference), (text, Some(i as u64)));
        // Seen by its sender: already committed.
        assert!(stored_texts(&db).contains(&(c.id, text.to_owned())));
        ids.push(c.id);
    }
    server.stop().expect("stop");

    let server = start(store_config(&db));
    let (mut b, welcome) = Raw::login(server.local_addr(), "b");
    assert_eq!(texts(&welcome.history), ["one", "two", "three"]);
    assert_eq!(
        welcome.history.iter().map(|c| c.id).collect::<Vec<_>>(),
        ids
    );
    assert!(welcome.history.iter().all(|c| c.from == "a"));
    b.chat("four");
    let c = b.next_chat();
    assert_eq!(
        c.id,
        ids[2] + 1,
        "ids continue after the largest stored one"
    );
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_database_that_refuses_writes_gives_store_unavailable_and_the_room_keeps_working() {
    let dir = db_dir("locked");
    let db = dir.join("chat.db");
    let server = start(store_config(&db));
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "a");
    let (mut b, _) = Raw::login(addr, "b");
    a.chat("before");
    assert_eq!(a.next_chat().text, "before");
    assert_eq!(b.next_chat().text, "before");

    // Another process holds the write lock: every commit fails (after the
    // store's busy timeout), as on a read-only or full disk.
    let locker = rusqlite::Connection::open(&db).expect("open");
    locker.execute_batch("BEGIN EXCLUSIVE").expect("lock");

    a.chat_ref("lost", 42);
    let err = a.until(|m| matches!(m, ServerMessage::Error(_)));
    let ServerMessage::Error(err) = err else {
        unreachable!()
    };
    assert_eq!(err.code, ErrorCode::StoreUnavailable);
    assert_eq!(err.reference, Some(42));
    // Pings and presence still work; the lost chat reached nobody.
    assert!(a.is_alive(7));
    let (_c, welcome) = Raw::login(addr, "c");
    assert_eq!(texts(&welcome.history), ["before"]);
    let joined = b.until(|m| {
        matches!(m, ServerMessage::Chat(_))
            || matches!(m, ServerMessage::Joined(j) if j.name == "c")
    });
    assert!(matches!(joined, ServerMessage::Joined(_)), "got {joined:?}");

    // The lock goes away: writes work again, nothing before was touched.
    locker.execute_batch("ROLLBACK").expect("unlock");
    drop(locker);
    a.chat("after");
    assert_eq!(a.next_chat().text, "after");
    assert_eq!(b.next_chat().text, "after");
    let (_d, welcome) = Raw::login(addr, "d");
    assert_eq!(texts(&welcome.history), ["before", "after"]);
    let stored: Vec<String> = stored_texts(&db).into_iter().map(|(_, t)| t).collect();
    assert_eq!(stored, ["before", "after"]);
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_database_with_a_newer_schema_version_is_refused_at_start() {
    let dir = db_dir("newer");
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("chat.db");
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute_batch("PRAGMA user_version = 999")
        .expect("version");
    drop(conn);
    let err = Server::bind(store_config(&db)).expect_err("a newer schema must be refused");
    let ServerError::Store(StoreError::NewerSchema { found, known }) = &err else {
        panic!("expected NewerSchema, got {err:?}");
    };
    assert_eq!(*found, 999);
    assert!(*known < 999);
    let text = format!("{err}");
    assert!(
        text.contains("999") && text.contains(&known.to_string()),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn retention_by_count_keeps_only_the_newest_messages() {
    let dir = db_dir("retention");
    let db = dir.join("chat.db");
    let server = start(store_config(&db));
    let (mut a, _) = Raw::login(server.local_addr(), "a");
    for i in 0..5 {
        a.chat(&format!("m{i}"));
        assert_eq!(a.next_chat().text, format!("m{i}"));
    }
    server.stop().expect("stop");
    assert_eq!(stored_texts(&db).len(), 5);

    let config = ServerConfig {
        history_keep_messages: 3,
        ..store_config(&db)
    };
    let server = start(config);
    let (_b, welcome) = Raw::login(server.local_addr(), "b");
    assert_eq!(texts(&welcome.history), ["m2", "m3", "m4"]);
    let stored: Vec<String> = stored_texts(&db).into_iter().map(|(_, t)| t).collect();
    assert_eq!(stored, ["m2", "m3", "m4"]);
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_history_page_the_store_cannot_read_gets_store_unavailable_not_an_empty_page() {
    let dir = db_dir("unreadable");
    let db = dir.join("chat.db");
    let server = start(ServerConfig {
        history_len: 2,
        ..store_config(&db)
    });
    let (mut a, _) = Raw::login(server.local_addr(), "a");
    for text in ["one", "two", "three", "four"] {
        a.chat(text);
        assert_eq!(a.next_chat().text, text);
    }
    // Behind the server's back the table goes away: every read fails.
    let vandal = rusqlite::Connection::open(&db).expect("open");
    vandal
        .execute_batch("DROP TABLE messages")
        .expect("drop the table");
    drop(vandal);
    // Older than the two the room keeps in memory: only the store has it.
    a.send(&chatcore::protocol::ClientMessage::History(
        chatcore::protocol::HistoryRequest {
            room: None,
            before: None,
            limit: 4,
        },
    ));
    assert_eq!(a.expect_error(), ErrorCode::StoreUnavailable);
    assert!(a.is_alive(3), "the member stays connected");
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(&dir);
}
