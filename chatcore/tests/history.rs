//! History on the wire over real loopback sockets: the resume after a
//! reconnect (`hello` with `last_seen`), `history` pages back to the first
//! message, and the errors and rate limit of `history` requests.

mod common;

use chatcore::protocol::{Chat, ClientMessage, ErrorCode, History, HistoryRequest, ServerMessage};
use chatcore::{Client, Event, ServerConfig};
use common::{Raw, WAIT, fixstr, frame_of_body, map, start, test_config};

/// The next `history` frame `c` receives (chats and presence skipped).
fn next_history(c: &Client) -> History {
    loop {
        match c
            .recv_timeout(WAIT)
            .expect("open")
            .expect("an event in time")
        {
            Event::Message(ServerMessage::History(h)) => return h,
            Event::Message(ServerMessage::Error(e)) => panic!("error instead of history: {e:?}"),
            Event::Closed(why) => panic!("closed: {why}"),
            _ => {}
        }
    }
}

/// The code of the next `error` frame `c` receives.
fn next_error(c: &Client) -> ErrorCode {
    loop {
        match c
            .recv_timeout(WAIT)
            .expect("open")
            .expect("an event in time")
        {
            Event::Message(ServerMessage::Error(e)) => return e.code,
            Event::Message(ServerMessage::History(h)) => panic!("history instead of error: {h:?}"),
            Event::Closed(why) => panic!("closed: {why}"),
            _ => {}
        }
    }
}

/// `a` says `count` texts `prefix0`, `prefix1`... and waits for its own
/// copies, so all were accepted; returns them.
fn say(a: &Client, prefix: &str, count: usize) -> Vec<Chat> {
    for i in 0..count {
        a.send_chat(format!("{prefix}{i}")).expect("send");
    }
    let mut got = Vec::new();
    while got.len() < count {
        match a
            .recv_timeout(WAIT)
            .expect("open")
            .expect("an event in time")
        {
            Event::Message(ServerMessage::Chat(c)) if c.text.starts_with(prefix) => got.push(c),
            Event::Closed(why) => panic!("closed: {why}"),
            _ => {}
        }
    }
    got
}

fn texts(chats: &[Chat]) -> Vec<String> {
    chats.iter().map(|c| c.text.clone()).collect()
}

/// Pages back from `before` with `limit` until the server says there is
/// nothing older or `stop` (an id) is reached; returns the chats oldest first.
fn page_back(c: &Client, mut before: Option<u64>, limit: u32, stop: u64) -> Vec<Chat> {
    let mut all: Vec<Chat> = Vec::new();
    loop {
        c.request_history(before, limit).expect("request");
        let page = next_history(c);
        assert_eq!(page.before, before, "the page echoes its request's before");
        assert!(!page.gap, "a page never has a gap");
        assert!(page.messages.len() <= limit as usize);
        let mut older = page.messages;
        let Some(first) = older.first().map(|m| m.id) else {
            break;
        };
        older.retain(|m| m.id > stop);
        older.append(&mut all);
        all = older;
        if !page.more || first <= stop + 1 {
            break;
        }
        before = Some(first);
    }
    all
}

fn deep_config() -> ServerConfig {
    ServerConfig {
        history_len: 1000,
        rate_burst: 1000.0,
        ..test_config()
    }
}

#[test]
fn a_client_that_missed_five_messages_gets_exactly_those_five_on_resume_and_no_gap() {
    let server = start(deep_config());
    let addr = server.local_addr();
    let a = Client::connect_plain(addr, "alice").expect("alice");
    let b = Client::connect_plain(addr, "bob").expect("bob");
    say(&a, "before", 3);
    // bob has seen the three (his reader got them).
    while b.last_seen() < Some(3) {
        b.recv_timeout(WAIT).expect("open").expect("event");
    }
    let last = b.last_seen();
    drop(b);
    let missed = say(&a, "missed", 5);
    let b = Client::connect_plain_resuming(addr, "bob", last).expect("bob again");
    let resume = next_history(&b);
    assert_eq!(resume.after, last);
    assert!(!resume.gap, "nothing beyond the five was missed");
    assert_eq!(texts(&resume.messages), texts(&missed));
    let ids: Vec<u64> = missed.iter().map(|c| c.id).collect();
    assert_eq!(
        resume.messages.iter().map(|c| c.id).collect::<Vec<_>>(),
        ids
    );
    assert!(resume.messages.iter().all(|c| c.reference.is_none()));
    assert_eq!(b.last_seen(), missed.last().map(|c| c.id));
    // No duplicate follows: the next chat bob sees is a new one.
    let after = say(&a, "after", 1);
    loop {
        match b.recv_timeout(WAIT).expect("open").expect("event") {
            Event::Message(ServerMessage::Chat(c)) => {
                assert_eq!(c.id, after[0].id, "only the new chat, no replay");
                break;
            }
            Event::Message(ServerMessage::History(h)) => panic!("a second history: {h:?}"),
            _ => {}
        }
    }
}

#[test]
fn missing_more_than_resume_max_sets_gap_and_paging_back_fills_it_exactly() {
    let server = start(ServerConfig {
        resume_max: 10,
        ..deep_config()
    });
    let addr = server.local_addr();
    let a = Client::connect_plain(addr, "alice").expect("alice");
    let first = say(&a, "seen", 1);
    let last_seen = first[0].id;
    let missed = say(&a, "missed", 37);
    let b = Client::connect_plain_resuming(addr, "bob", Some(last_seen)).expect("bob");
    let resume = next_history(&b);
    assert!(resume.gap);
    assert!(resume.more);
    assert_eq!(resume.messages.len(), 10);
    assert_eq!(texts(&resume.messages), texts(&missed[27..]));
    let mut filled = page_back(&b, resume.messages.first().map(|c| c.id), 7, last_seen);
    filled.extend(resume.messages);
    assert_eq!(texts(&filled), texts(&missed), "no holes, no duplicates");
}

#[test]
fn history_pages_with_before_and_limit_walk_back_to_the_very_first_message() {
    let server = start(deep_config());
    let addr = server.local_addr();
    let a = Client::connect_plain(addr, "alice").expect("alice");
    let said = say(&a, "m", 45);
    let b = Client::connect_plain(addr, "bob").expect("bob");
    let all = page_back(&b, None, 10, 0);
    assert_eq!(all.first().map(|c| c.id), Some(1));
    assert_eq!(texts(&all), texts(&said));
    // The page before the first message is empty and says so.
    b.request_history(Some(1), 5).expect("request");
    let empty = next_history(&b);
    assert!(empty.messages.is_empty() && !empty.more);
}

#[test]
fn a_limit_of_zero_or_above_the_maximum_and_unknown_ids_get_their_documented_errors() {
    let server = start(ServerConfig {
        history_page_max: 20,
        ..deep_config()
    });
    let addr = server.local_addr();
    let a = Client::connect_plain(addr, "alice").expect("alice");
    let said = say(&a, "m", 3);
    a.request_history(None, 0).expect("send");
    assert_eq!(next_error(&a), ErrorCode::HistoryLimit);
    a.request_history(None, 21).expect("send");
    assert_eq!(next_error(&a), ErrorCode::HistoryLimit);
    a.request_history(Some(0), 5).expect("send");
    assert_eq!(next_error(&a), ErrorCode::UnknownMessage);
    a.request_history(Some(said[2].id + 2), 5).expect("send");
    assert_eq!(next_error(&a), ErrorCode::UnknownMessage);
    // The largest allowed limit and `before` = the next id are fine.
    a.request_history(Some(said[2].id + 1), 20).expect("send");
    assert_eq!(texts(&next_history(&a).messages), texts(&said));
    // A resume from an id the server never assigned: welcome, then the error.
    let b = Client::connect_plain_resuming(addr, "bob", Some(1000)).expect("bob");
    assert_eq!(next_error(&b), ErrorCode::UnknownMessage);
}

#[test]
fn history_before_login_is_refused_and_a_malformed_request_is_bad_message() {
    let server = start(test_config());
    let addr = server.local_addr();
    let mut raw = Raw::connect(addr);
    raw.send(&ClientMessage::History(HistoryRequest {
        room: None,
        before: None,
        limit: 5,
    }));
    assert_eq!(raw.expect_error(), ErrorCode::NotLoggedIn);
    raw.hello("raw");
    raw.until(|m| matches!(m, ServerMessage::Welcome(_)));
    // `limit` as a str, then a missing `limit`, then a negative `before`.
    for body in [
        map(&[("type", fixstr("history")), ("limit", fixstr("5"))]),
        map(&[("type", fixstr("history"))]),
        map(&[
            ("type", fixstr("history")),
            ("before", vec![0xff]),
            ("limit", vec![5]),
        ]),
    ] {
        raw.send_bytes(&frame_of_body(&body));
        assert_eq!(raw.expect_error(), ErrorCode::BadMessage);
    }
    assert!(raw.is_alive(1), "bad requests never close the connection");
}

#[test]
fn a_flood_of_history_requests_is_rate_limited_like_chat() {
    let server = start(ServerConfig {
        rate_per_sec: 1.0,
        rate_burst: 10.0,
        ..deep_config()
    });
    let addr = server.local_addr();
    let a = Client::connect_plain(addr, "alice").expect("alice");
    say(&a, "m", 2);
    let mut raw = Raw::connect(addr);
    raw.hello("flooder");
    raw.until(|m| matches!(m, ServerMessage::Welcome(_)));
    let request = ClientMessage::History(HistoryRequest {
        room: None,
        before: None,
        limit: 200,
    });
    for _ in 0..100 {
        raw.send(&request);
    }
    let (mut pages, mut limited) = (0, 0);
    while pages + limited < 100 {
        match raw.next() {
            Some(ServerMessage::History(h)) => {
                assert_eq!(h.messages.len(), 2);
                pages += 1;
            }
            Some(ServerMessage::Error(e)) => {
                assert_eq!(e.code, ErrorCode::RateLimited);
                limited += 1;
            }
            Some(_) => {}
            None => panic!("closed"),
        }
    }
    assert!(pages >= 1, "the burst is served");
    assert!(limited >= 50, "a flood is refused: {limited} of 100 were");
}

/// Hex dump lines of docs/protocol.md 21.4 to bytes.
fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}

#[test]
fn the_history_frames_of_the_spec_are_byte_exact() {
    use chatcore::protocol::{Hello, encode_client, encode_server};
    assert_eq!(
        encode_client(&ClientMessage::History(HistoryRequest {
            room: None,
            before: Some(42),
            limit: 20
        }))
        .to_vec(),
        hex("00 00 00 1d 83 a4 74 79 70 65 a7 68 69 73 74 6f
             72 79 a6 62 65 66 6f 72 65 2a a5 6c 69 6d 69 74 14")
    );
    assert_eq!(
        encode_client(&ClientMessage::History(HistoryRequest {
            room: None,
            before: None,
            limit: 20
        }))
        .to_vec(),
        hex("00 00 00 15 82 a4 74 79 70 65 a7 68 69 73 74 6f 72 79 a5 6c 69 6d 69 74 14")
    );
    assert_eq!(
        encode_client(&ClientMessage::Hello(Hello {
            version: 2,
            name: "bob".into(),
            last_seen: Some(41),
            password: None,
            token: None,
        }))
        .to_vec(),
        hex("00 00 00 29 84 a4 74 79 70 65 a5 68 65 6c 6c 6f
             a7 76 65 72 73 69 6f 6e 02 a4 6e 61 6d 65 a3 62
             6f 62 a9 6c 61 73 74 5f 73 65 65 6e 29")
    );
    let chat = Chat {
        room: None,
        id: 41,
        from: "alice".into(),
        session: 3,
        text: "hi".into(),
        ts: 1_767_225_600_000,
        reference: None,
    };
    let page = ServerMessage::History(History {
        room: None,
        messages: vec![chat.clone()],
        more: true,
        before: Some(42),
        after: None,
        gap: false,
    });
    let bytes = hex("00 00 00 58 85 a4 74 79 70 65 a7 68 69 73 74 6f
                     72 79 a8 6d 65 73 73 61 67 65 73 91 85 a2 69 64
                     29 a4 66 72 6f 6d a5 61 6c 69 63 65 a7 73 65 73
                     73 69 6f 6e 03 a4 74 65 78 74 a2 68 69 a2 74 73
                     cf 00 00 01 9b 76 da a8 00 a4 6d 6f 72 65 c3 a6
                     62 65 66 6f 72 65 2a a3 67 61 70 c2");
    assert_eq!(encode_server(&page).to_vec(), bytes);
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    assert_eq!(
        chatcore::protocol::decode_server(&mut buf, u32::MAX).expect("valid"),
        Some(page)
    );
    let resume = ServerMessage::History(History {
        room: None,
        messages: vec![chat],
        more: false,
        before: None,
        after: Some(40),
        gap: false,
    });
    assert_eq!(
        encode_server(&resume).to_vec(),
        hex("00 00 00 57 85 a4 74 79 70 65 a7 68 69 73 74 6f
             72 79 a8 6d 65 73 73 61 67 65 73 91 85 a2 69 64
             29 a4 66 72 6f 6d a5 61 6c 69 63 65 a7 73 65 73
             73 69 6f 6e 03 a4 74 65 78 74 a2 68 69 a2 74 73
             cf 00 00 01 9b 76 da a8 00 a4 6d 6f 72 65 c2 a5
             61 66 74 65 72 28 a3 67 61 70 c2")
    );
}

/// A fresh database path for one test.
fn db_path(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "chatcore-test-history-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("chat.db")
}

/// A server with a store at `db`, remembering only 3 chats in memory so
/// that resumes and pages must be read from the store.
fn store_config(db: &std::path::Path) -> ServerConfig {
    ServerConfig {
        store_path: Some(db.to_path_buf()),
        history_len: 3,
        resume_max: 10,
        rate_burst: 1000.0,
        ..test_config()
    }
}

#[test]
fn with_a_store_a_resume_across_a_restart_gets_exactly_the_missed_messages() {
    let db = db_path("resume");
    let server = start(store_config(&db));
    let a = Client::connect_plain(server.local_addr(), "alice").expect("alice");
    let seen = say(&a, "seen", 2);
    let missed = say(&a, "missed", 5);
    drop(a);
    server.stop().expect("stop");
    let server = start(store_config(&db));
    let b =
        Client::connect_plain_resuming(server.local_addr(), "bob", Some(seen[1].id)).expect("bob");
    let resume = next_history(&b);
    assert_eq!(resume.after, Some(seen[1].id));
    assert!(!resume.gap);
    assert_eq!(texts(&resume.messages), texts(&missed));
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(db.parent().expect("dir"));
}

#[test]
fn with_a_store_a_long_absence_has_a_gap_and_paging_reaches_the_first_message_after_a_restart() {
    let db = db_path("gap");
    let server = start(store_config(&db));
    let a = Client::connect_plain(server.local_addr(), "alice").expect("alice");
    let seen = say(&a, "seen", 1);
    let missed = say(&a, "missed", 40);
    drop(a);
    server.stop().expect("stop");
    let server = start(store_config(&db));
    let addr = server.local_addr();
    let b = Client::connect_plain_resuming(addr, "bob", Some(seen[0].id)).expect("bob");
    let resume = next_history(&b);
    assert!(resume.gap && resume.more);
    assert_eq!(texts(&resume.messages), texts(&missed[30..]));
    let mut filled = page_back(&b, resume.messages.first().map(|c| c.id), 7, seen[0].id);
    filled.extend(resume.messages);
    assert_eq!(texts(&filled), texts(&missed), "no holes, no duplicates");
    // And back to the very first message ever, through the store.
    let all = page_back(&b, None, 9, 0);
    assert_eq!(all.first().map(|c| c.id), Some(1));
    let mut expected = texts(&seen);
    expected.extend(texts(&missed));
    assert_eq!(texts(&all), expected);
    // Errors are the same with a store.
    b.request_history(Some(10_000), 5).expect("send");
    assert_eq!(next_error(&b), ErrorCode::UnknownMessage);
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(db.parent().expect("dir"));
}
