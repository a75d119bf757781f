//! Direct messages over real sockets and a real store (docs/protocol.md
//! section 25): delivery to the recipient only, messages kept for a
//! registered name that is away and counted unread at its next login,
//! paging a conversation, and what a guest may do.

mod common;

use std::path::{Path, PathBuf};

use chatcore::protocol::{
    ClientMessage, DmHistoryRequest, DmRead, DmSend, ErrorCode, Hello, PROTOCOL_VERSION, Register,
    ServerMessage,
};
use chatcore::{RunningServer, ServerConfig};
use common::{Raw, start, test_config};

fn db_path(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chatcore-test-dm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir.join("chat.db")
}

fn server(db: Option<&Path>) -> RunningServer {
    start(ServerConfig {
        store_path: db.map(Path::to_path_buf),
        rate_burst: 1000.0,
        ..test_config()
    })
}

fn register(addr: std::net::SocketAddr, name: &str) -> Raw {
    let (mut c, _) = Raw::login(addr, name);
    c.send(&ClientMessage::Register(Register {
        password: "a long password".into(),
    }));
    c.until(|m| matches!(m, ServerMessage::Registered(_)));
    c
}

/// Logs `name` in with its password; returns the connection.
fn log_in(addr: std::net::SocketAddr, name: &str) -> Raw {
    let mut c = Raw::connect(addr);
    c.send(&ClientMessage::Hello(Hello {
        version: PROTOCOL_VERSION,
        name: name.into(),
        last_seen: None,
        password: Some("a long password".into()),
        token: None,
    }));
    c.until(|m| matches!(m, ServerMessage::Welcome(_)));
    c
}

fn send(c: &mut Raw, to: &str, text: &str, reference: Option<u64>) {
    c.send(&ClientMessage::Dm(DmSend {
        to: to.into(),
        text: text.into(),
        reference,
    }));
}

fn next_dm(c: &mut Raw) -> chatcore::protocol::Dm {
    match c.until(|m| matches!(m, ServerMessage::Dm(_) | ServerMessage::Error(_))) {
        ServerMessage::Dm(d) => d,
        other => panic!("expected a dm, got {other:?}"),
    }
}

#[test]
fn a_direct_message_reaches_its_recipient_and_its_sender_only() {
    let db = db_path("live");
    let s = server(Some(&db));
    let addr = s.local_addr();
    let (mut a, _) = Raw::login(addr, "ann");
    let (mut b, _) = Raw::login(addr, "bob");
    let (mut c, _) = Raw::login(addr, "cat");
    send(&mut a, "bob", "psst", Some(9));
    let own = next_dm(&mut a);
    assert_eq!(
        (
            own.from.as_str(),
            own.to.as_str(),
            own.text.as_str(),
            own.reference
        ),
        ("ann", "bob", "psst", Some(9))
    );
    let got = next_dm(&mut b);
    assert_eq!((got.id, got.reference), (own.id, None));
    // The third member sees nothing of it, and ids stay server-wide.
    c.chat("hello all");
    let chat = c.next_chat();
    assert!(chat.id > own.id);
    c.ping(1);
    assert!(matches!(
        c.until(|m| matches!(m, ServerMessage::Pong(_) | ServerMessage::Dm(_))),
        ServerMessage::Pong(_)
    ));
    // Nobody of that name; oneself.
    send(&mut a, "nobody", "hi", Some(1));
    assert_eq!(a.expect_error(), ErrorCode::NoSuchMember);
    send(&mut a, "ann", "me", Some(2));
    assert_eq!(a.expect_error(), ErrorCode::NoSuchMember);
    s.stop().expect("stop");
}

#[test]
fn a_message_to_a_registered_name_that_is_away_is_kept_counted_unread_and_paged() {
    let db = db_path("away");
    let s = server(Some(&db));
    let addr = s.local_addr();
    drop(register(addr, "bob"));
    let (mut a, _) = Raw::login(addr, "ann");
    for i in 0..3 {
        send(&mut a, "bob", &format!("while you were out {i}"), None);
        next_dm(&mut a);
    }
    drop(a);
    s.stop().expect("stop");

    // After a restart bob logs in: told of 3 unread from ann.
    let s = server(Some(&db));
    let addr = s.local_addr();
    let mut b = log_in(addr, "bob");
    let unread = match b.until(|m| matches!(m, ServerMessage::DmUnread(_))) {
        ServerMessage::DmUnread(u) => u,
        _ => unreachable!(),
    };
    assert_eq!(unread.conversations.len(), 1);
    assert_eq!(
        (
            unread.conversations[0].with.as_str(),
            unread.conversations[0].count
        ),
        ("ann", 3)
    );
    // Bob pages the conversation: the guest ann is gone, her messages stay.
    b.send(&ClientMessage::DmHistory(DmHistoryRequest {
        with: "ann".into(),
        before: None,
        limit: 2,
    }));
    let page = match b.until(|m| matches!(m, ServerMessage::DmHistory(_))) {
        ServerMessage::DmHistory(h) => h,
        _ => unreachable!(),
    };
    let texts: Vec<&str> = page.messages.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(texts, ["while you were out 1", "while you were out 2"]);
    assert!(page.more);
    assert!(
        page.messages
            .iter()
            .all(|d| d.from == "ann" && d.to == "bob")
    );
    // A guest has no kept conversations to page.
    let (mut guest, _) = Raw::login(addr, "ann");
    guest.send(&ClientMessage::DmHistory(DmHistoryRequest {
        with: "bob".into(),
        before: None,
        limit: 2,
    }));
    assert_eq!(guest.expect_error(), ErrorCode::AccountRequired);
    // Marked read, the next login is told of nothing.
    b.send(&ClientMessage::DmRead(DmRead {
        with: "ann".into(),
        id: unread.conversations[0].last_id,
    }));
    b.ping(5);
    b.until(|m| matches!(m, ServerMessage::Pong(_)));
    drop(b);
    let mut b = log_in(addr, "bob");
    b.ping(6);
    assert!(matches!(
        b.until(|m| matches!(m, ServerMessage::Pong(_) | ServerMessage::DmUnread(_))),
        ServerMessage::Pong(_)
    ));
    s.stop().expect("stop");
}

#[test]
fn two_registered_members_page_their_conversation_back_to_the_first_message() {
    let db = db_path("page");
    let s = server(Some(&db));
    let addr = s.local_addr();
    let mut a = register(addr, "ann");
    let mut b = register(addr, "bob");
    // Each waits for the other's message (its own copies come too).
    let wait_for = |c: &mut Raw, text: &str| while next_dm(c).text != text {};
    for i in 0..5 {
        send(&mut a, "bob", &format!("a{i}"), None);
        wait_for(&mut b, &format!("a{i}"));
        send(&mut b, "ann", &format!("b{i}"), None);
        wait_for(&mut a, &format!("b{i}"));
    }
    let mut texts = Vec::new();
    let mut before = None;
    loop {
        a.send(&ClientMessage::DmHistory(DmHistoryRequest {
            with: "bob".into(),
            before,
            limit: 3,
        }));
        let page = match a.until(|m| matches!(m, ServerMessage::DmHistory(_))) {
            ServerMessage::DmHistory(h) => h,
            _ => unreachable!(),
        };
        let mut older: Vec<String> = page.messages.iter().map(|d| d.text.clone()).collect();
        older.append(&mut texts);
        texts = older;
        before = page.messages.first().map(|d| d.id);
        if !page.more {
            break;
        }
    }
    assert_eq!(
        texts,
        ["a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3", "a4", "b4"]
    );
    s.stop().expect("stop");
}

#[test]
fn without_a_store_direct_messages_reach_members_online_only() {
    let s = server(None);
    let addr = s.local_addr();
    let (mut a, _) = Raw::login(addr, "ann");
    let (mut b, _) = Raw::login(addr, "bob");
    send(&mut a, "bob", "live only", None);
    assert_eq!(next_dm(&mut b).text, "live only");
    drop(b);
    a.ping(1);
    a.until(|m| matches!(m, ServerMessage::Pong(_)));
    send(&mut a, "bob", "are you there", Some(3));
    assert_eq!(a.expect_error(), ErrorCode::NoSuchMember);
    s.stop().expect("stop");
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}

#[test]
fn the_direct_message_frames_of_the_spec_are_what_the_encoder_produces() {
    use chatcore::protocol::{Dm, DmUnread, DmUnreadEntry, encode_client, encode_server};
    assert_eq!(
        encode_client(&ClientMessage::Dm(DmSend {
            to: "bob".into(),
            text: "hi".into(),
            reference: Some(7),
        }))
        .to_vec(),
        hex("00 00 00 1d 84 a4 74 79 70 65 a2 64 6d a2 74 6f
             a3 62 6f 62 a4 74 65 78 74 a2 68 69 a3 72 65 66 07")
    );
    assert_eq!(
        encode_server(&ServerMessage::Dm(Dm {
            id: 42,
            from: "ann".into(),
            session: 3,
            to: "bob".into(),
            text: "hi".into(),
            ts: 1_767_225_600_000,
            reference: None,
        }))
        .to_vec(),
        hex("00 00 00 3a 87 a4 74 79 70 65 a2 64 6d a2 69 64
             2a a4 66 72 6f 6d a3 61 6e 6e a7 73 65 73 73 69
             6f 6e 03 a2 74 6f a3 62 6f 62 a4 74 65 78 74 a2
             68 69 a2 74 73 cf 00 00 01 9b 76 da a8 00")
    );
    assert_eq!(
        encode_server(&ServerMessage::DmUnread(DmUnread {
            conversations: vec![DmUnreadEntry {
                with: "ann".into(),
                count: 3,
                last_id: 42,
            }],
        }))
        .to_vec(),
        hex("00 00 00 39 82 a4 74 79 70 65 a9 64 6d 5f 75 6e
             72 65 61 64 ad 63 6f 6e 76 65 72 73 61 74 69 6f
             6e 73 91 83 a4 77 69 74 68 a3 61 6e 6e a5 63 6f
             75 6e 74 03 a7 6c 61 73 74 5f 69 64 2a")
    );
}
