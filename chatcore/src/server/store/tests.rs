//! The store's queries and migrations on real files.

use super::thread::{Retention, page};
use super::*;

fn fresh(tag: &str) -> (PathBuf, Connection) {
    let dir =
        std::env::temp_dir().join(format!("chatcore-store-unit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("chat.db");
    let mut conn = open_connection(&path, StoreSync::Normal).expect("open");
    schema::migrate(&mut conn).expect("migrate");
    for id in 1..=10u64 {
        conn.execute(
            "INSERT INTO messages (id, ts, session, sender, text) VALUES (?1, 0, 1, 'a', ?2)",
            rusqlite::params![id, format!("m{id}")],
        )
        .expect("insert");
    }
    (dir, conn)
}

fn ids(chats: &[StoredChat]) -> Vec<u64> {
    chats.iter().map(|c| c.id).collect()
}

#[test]
fn pages_backwards_come_oldest_first_and_say_whether_older_ones_exist() {
    let (dir, conn) = fresh("page-back");
    let (chats, more) = page(&conn, "", None, None, 3).expect("page");
    assert_eq!((ids(&chats), more), (vec![8, 9, 10], true));
    let (chats, more) = page(&conn, "", Some(4), None, 3).expect("page");
    assert_eq!((ids(&chats), more), (vec![1, 2, 3], false));
    let (chats, more) = page(&conn, "", Some(1), None, 3).expect("page");
    assert_eq!((ids(&chats), more), (vec![], false));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pages_after_an_id_come_oldest_first_and_say_whether_newer_ones_exist() {
    let (dir, conn) = fresh("page-after");
    let (chats, more) = page(&conn, "", None, Some(5), 3).expect("page");
    assert_eq!((ids(&chats), more), (vec![6, 7, 8], true));
    let (chats, more) = page(&conn, "", None, Some(7), 3).expect("page");
    assert_eq!((ids(&chats), more), (vec![8, 9, 10], false));
    let (chats, more) = page(&conn, "", Some(7), Some(2), 10).expect("page");
    assert_eq!((ids(&chats), more), (vec![3, 4, 5, 6], false));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn migrations_run_once_and_set_the_version() {
    let (dir, mut conn) = fresh("migrate");
    schema::migrate(&mut conn).expect("again");
    let v: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(v, schema::current_version());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn retention_by_count_and_by_age() {
    let (dir, conn) = fresh("retention");
    let by_count = Retention {
        keep_messages: 4,
        keep_days: 0,
    };
    assert_eq!(by_count.apply(&conn).expect("apply"), 6);
    let (chats, _) = page(&conn, "", None, None, 100).expect("page");
    assert_eq!(ids(&chats), vec![7, 8, 9, 10]);
    // Every row has ts 0 (1970): older than any number of days.
    let by_age = Retention {
        keep_messages: 0,
        keep_days: 1,
    };
    assert_eq!(by_age.apply(&conn).expect("apply"), 4);
    let _ = std::fs::remove_dir_all(dir);
}

/// Commit latency of one-message batches with each `store_sync` (a
/// measurement, not a check: run it by name with `--ignored --nocapture`).
#[test]
#[ignore]
fn commit_latency() {
    for sync in [StoreSync::Normal, StoreSync::Full] {
        let dir =
            std::env::temp_dir().join(format!("chatcore-store-latency-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut conn = open_connection(&dir.join("chat.db"), sync).expect("open");
        schema::migrate(&mut conn).expect("migrate");
        let mut took = Vec::new();
        for id in 1..=2000u64 {
            let chat = StoredChat {
                room: String::new(),
                recipient: String::new(),
                recipient_key: String::new(),
                id,
                ts: 0,
                session: 1,
                sender: "a".into(),
                text: "x".repeat(100),
            };
            let start = std::time::Instant::now();
            let reply = super::thread::append(&mut conn, vec![chat]);
            took.push(start.elapsed());
            assert!(matches!(reply, StoreReply::Committed { up_to } if up_to == id));
        }
        took.sort();
        println!(
            "{sync:?}: median {:?}, p99 {:?}, max {:?}",
            took[took.len() / 2],
            took[took.len() * 99 / 100],
            took[took.len() - 1]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
