//! Named rooms beside the default room (docs/protocol.md section 23), over
//! real sockets: joining, parting, listing, topics, per-room delivery and
//! history, limits, names, and rooms kept across a restart by the store.

mod common;

use std::path::PathBuf;

use chatcore::protocol::{
    ChatSend, ClientMessage, ErrorCode, HistoryRequest, JoinRoom, RoomJoined, RoomName,
    ServerMessage, SetTopic,
};
use chatcore::{RoomCreation, ServerConfig};
use common::{Raw, start, test_config};

fn join(c: &mut Raw, room: &str) {
    c.send(&ClientMessage::Join(JoinRoom {
        room: room.into(),
        invite_only: false,
    }));
}

fn part(c: &mut Raw, room: &str) {
    c.send(&ClientMessage::Part(RoomName { room: room.into() }));
}

fn say_in(c: &mut Raw, room: Option<&str>, text: &str) {
    c.send(&ClientMessage::Chat(ChatSend {
        text: text.into(),
        reference: None,
        room: room.map(str::to_owned),
    }));
}

/// The next `room_joined`.
fn joined(c: &mut Raw) -> RoomJoined {
    match c.until(|m| matches!(m, ServerMessage::RoomJoined(_) | ServerMessage::Error(_))) {
        ServerMessage::RoomJoined(j) => j,
        other => panic!("expected room_joined, got {other:?}"),
    }
}

/// The next `n` chats `c` gets, as (room, text), then nothing more until
/// a `ping` comes back (the others' chats are in by then: they were
/// counted).
fn chats(c: &mut Raw, n: usize) -> Vec<(Option<String>, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        match c.next() {
            Some(ServerMessage::Chat(m)) => got.push((m.room, m.text)),
            Some(_) => {}
            None => panic!("closed after {} chats", got.len()),
        }
    }
    c.ping(99);
    loop {
        match c.next() {
            Some(ServerMessage::Chat(m)) => panic!("one chat too many: {m:?}"),
            Some(ServerMessage::Pong(p)) if p.seq == 99 => return got,
            Some(_) => {}
            None => panic!("closed"),
        }
    }
}

#[test]
fn a_member_in_several_rooms_gets_each_message_once_and_in_order_per_room() {
    let server = start(ServerConfig {
        rate_burst: 1000.0,
        ..test_config()
    });
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "a");
    let (mut b, _) = Raw::login(addr, "b");
    let (mut c, _) = Raw::login(addr, "c");
    for room in ["dev", "ops"] {
        join(&mut a, room);
        assert_eq!(joined(&mut a).room, room);
    }
    join(&mut b, "dev");
    let j = joined(&mut b);
    let mut names: Vec<String> = j.users.iter().map(|u| u.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    join(&mut c, "ops");
    joined(&mut c);

    for i in 0..20 {
        say_in(&mut b, Some("dev"), &format!("dev {i}"));
        say_in(&mut c, Some("ops"), &format!("ops {i}"));
        say_in(&mut c, None, &format!("lobby {i}"));
    }
    // One frame per chat, nothing twice, each room's chats in order.
    let seen = chats(&mut a, 60);
    let of = |room: Option<&str>| -> Vec<String> {
        seen.iter()
            .filter(|(r, _)| r.as_deref() == room)
            .map(|(_, t)| t.clone())
            .collect()
    };
    let expect =
        |prefix: &str| -> Vec<String> { (0..20).map(|i| format!("{prefix} {i}")).collect() };
    assert_eq!(of(Some("dev")), expect("dev"));
    assert_eq!(of(Some("ops")), expect("ops"));
    assert_eq!(of(None), expect("lobby"));
    assert_eq!(seen.len(), 60);
    // b is not in ops: it gets dev and the default room only.
    let seen_b = chats(&mut b, 40);
    assert!(seen_b.iter().all(|(r, _)| r.as_deref() != Some("ops")));
    assert_eq!(seen_b.len(), 40);
    server.stop().expect("stop");
}

#[test]
fn joining_and_parting_are_announced_to_the_room_and_listed_with_counts() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (mut a, wa) = Raw::login(addr, "a");
    let (mut b, wb) = Raw::login(addr, "b");
    join(&mut a, "dev");
    joined(&mut a);
    join(&mut b, "dev");
    joined(&mut b);
    // A named room always announces with `presence` and its `room`.
    let p = match a.until(|m| {
        matches!(m, ServerMessage::Presence(p)
            if p.joined.iter().any(|u| u.session == wb.session))
    }) {
        ServerMessage::Presence(p) => p,
        _ => unreachable!(),
    };
    assert_eq!(p.room.as_deref(), Some("dev"));

    a.send(&ClientMessage::Rooms);
    let list = match a.until(|m| matches!(m, ServerMessage::RoomList(_))) {
        ServerMessage::RoomList(l) => l,
        _ => unreachable!(),
    };
    let rooms: Vec<(String, u64, bool)> = list
        .rooms
        .iter()
        .map(|r| (r.room.clone(), r.members, r.default))
        .collect();
    assert_eq!(
        rooms,
        [("lobby".to_owned(), 2, true), ("dev".to_owned(), 2, false)]
    );

    part(&mut b, "dev");
    match b.until(|m| matches!(m, ServerMessage::RoomParted(_))) {
        ServerMessage::RoomParted(r) => assert_eq!(r.room, "dev"),
        _ => unreachable!(),
    }
    let left = match a.until(
        |m| matches!(m, ServerMessage::Presence(p) if p.room.is_some() && !p.left.is_empty()),
    ) {
        ServerMessage::Presence(p) => p,
        _ => unreachable!(),
    };
    assert_eq!(left.left[0].session, wb.session);
    // Chats in dev no longer reach b; b's own chat there is refused.
    say_in(&mut b, Some("dev"), "still here?");
    assert_eq!(b.expect_error(), ErrorCode::NotInRoom);
    assert!(chats(&mut b, 0).is_empty());
    // Logging out leaves every room.
    drop(b);
    join(&mut a, "dev");
    let again = joined(&mut a);
    assert_eq!(again.users.len(), 1);
    assert_eq!(again.users[0].session, wa.session);
    server.stop().expect("stop");
}

#[test]
fn room_names_are_checked_like_user_names_and_look_alikes_are_one_room() {
    let server = start(test_config());
    let (mut a, _) = Raw::login(server.local_addr(), "a");
    // Empty, blank, a bidi override, Latin mixed with Cyrillic, the
    // default room's name and a look-alike of it (capital I for l).
    for bad in ["", "  ", "a\u{202e}b", "p\u{0430}ypal", "lobby", "Iobby"] {
        join(&mut a, bad);
        assert_eq!(a.expect_error(), ErrorCode::RoomInvalid, "{bad:?}");
    }
    join(&mut a, "rnallory");
    assert_eq!(joined(&mut a).room, "rnallory");
    // `mallory` looks like `rnallory`: the same room, under its first name.
    join(&mut a, "mallory");
    assert_eq!(joined(&mut a).room, "rnallory");
    server.stop().expect("stop");
}

#[test]
fn chats_pages_and_topics_of_a_room_one_is_not_in_are_refused() {
    let server = start(test_config());
    let (mut a, _) = Raw::login(server.local_addr(), "a");
    let (mut b, _) = Raw::login(server.local_addr(), "b");
    join(&mut a, "dev");
    joined(&mut a);
    say_in(&mut b, Some("dev"), "hi");
    assert_eq!(b.expect_error(), ErrorCode::NotInRoom);
    b.send(&ClientMessage::History(HistoryRequest {
        before: None,
        limit: 10,
        room: Some("dev".into()),
    }));
    assert_eq!(b.expect_error(), ErrorCode::NotInRoom);
    b.send(&ClientMessage::Topic(SetTopic {
        room: "dev".into(),
        topic: "mine".into(),
    }));
    assert_eq!(b.expect_error(), ErrorCode::NotInRoom);
    part(&mut b, "nowhere");
    assert_eq!(b.expect_error(), ErrorCode::NotInRoom);
    // A member sets the topic: everyone in the room is told.
    a.send(&ClientMessage::Topic(SetTopic {
        room: "dev".into(),
        topic: "release on friday".into(),
    }));
    match a.until(|m| matches!(m, ServerMessage::Topic(_))) {
        ServerMessage::Topic(t) => {
            assert_eq!(
                (t.room.as_str(), t.topic.as_str(), t.by.as_str()),
                ("dev", "release on friday", "a")
            );
        }
        _ => unreachable!(),
    }
    a.send(&ClientMessage::Topic(SetTopic {
        room: "dev".into(),
        topic: "x".repeat(513),
    }));
    assert_eq!(a.expect_error(), ErrorCode::RoomInvalid);
    join(&mut b, "dev");
    assert_eq!(joined(&mut b).topic, "release on friday");
    server.stop().expect("stop");
}

#[test]
fn the_room_limits_and_who_may_create_are_enforced() {
    let server = start(ServerConfig {
        max_rooms: 2,
        max_rooms_per_member: 1,
        ..test_config()
    });
    let (mut a, _) = Raw::login(server.local_addr(), "a");
    let (mut b, _) = Raw::login(server.local_addr(), "b");
    join(&mut a, "one");
    joined(&mut a);
    join(&mut a, "two");
    assert_eq!(
        a.expect_error(),
        ErrorCode::TooManyRooms,
        "one room per member"
    );
    join(&mut b, "two");
    joined(&mut b);
    part(&mut b, "two");
    join(&mut b, "three");
    assert_eq!(
        b.expect_error(),
        ErrorCode::TooManyRooms,
        "two rooms on the server"
    );
    server.stop().expect("stop");

    let server = start(ServerConfig {
        room_creation: RoomCreation::Nobody,
        ..test_config()
    });
    let (mut a, _) = Raw::login(server.local_addr(), "a");
    join(&mut a, "new");
    assert_eq!(a.expect_error(), ErrorCode::RoomUnknown);
    server.stop().expect("stop");
}

fn db_path(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("chatcore-test-rooms-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("chat.db")
}

#[test]
fn with_a_store_rooms_their_topics_and_their_history_survive_a_restart_and_page_back() {
    let db = db_path("restart");
    let config = || ServerConfig {
        store_path: Some(db.clone()),
        history_len: 5,
        ..test_config()
    };
    let server = start(config());
    let (mut a, _) = Raw::login(server.local_addr(), "a");
    join(&mut a, "dev");
    joined(&mut a);
    a.send(&ClientMessage::Topic(SetTopic {
        room: "dev".into(),
        topic: "kept".into(),
    }));
    a.until(|m| matches!(m, ServerMessage::Topic(_)));
    for i in 0..12 {
        say_in(&mut a, Some("dev"), &format!("dev {i}"));
        say_in(&mut a, None, &format!("lobby {i}"));
    }
    let seen = chats(&mut a, 24);
    assert_eq!(seen.len(), 24);
    server.stop().expect("stop");

    let server = start(config());
    let (mut b, welcome) = Raw::login(server.local_addr(), "b");
    // The default room's welcome holds only its own chats.
    assert!(welcome.history.iter().all(|c| c.room.is_none()));
    assert_eq!(
        welcome.history.last().map(|c| c.text.as_str()),
        Some("lobby 11")
    );
    join(&mut b, "dev");
    let j = joined(&mut b);
    assert_eq!(j.topic, "kept");
    let texts: Vec<&str> = j.history.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["dev 7", "dev 8", "dev 9", "dev 10", "dev 11"]);
    assert!(j.history.iter().all(|c| c.room.as_deref() == Some("dev")));
    // Paging back in the room reaches its first chat, and only its chats.
    let mut before = j.history.first().map(|c| c.id);
    let mut older = Vec::new();
    loop {
        b.send(&ClientMessage::History(HistoryRequest {
            before,
            limit: 3,
            room: Some("dev".into()),
        }));
        let page = match b.until(|m| matches!(m, ServerMessage::History(_))) {
            ServerMessage::History(h) => h,
            _ => unreachable!(),
        };
        assert_eq!(page.room.as_deref(), Some("dev"));
        let mut texts: Vec<String> = page.messages.iter().map(|c| c.text.clone()).collect();
        texts.append(&mut older);
        older = texts;
        before = page.messages.first().map(|c| c.id);
        if !page.more {
            break;
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("dev {i}")).collect();
    assert_eq!(older, expected);
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(db.parent().expect("dir"));
}

/// The frames of docs/protocol.md 23.3, as hex text.
fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}

#[test]
fn the_room_frames_of_the_spec_are_what_the_encoder_produces() {
    use chatcore::protocol::{
        Chat, Presence, RoomInfo, RoomList, UserInfo, encode_client, encode_server,
    };
    assert_eq!(
        encode_client(&ClientMessage::Join(JoinRoom {
            room: "dev".into(),
            invite_only: false
        }))
        .to_vec(),
        hex("00 00 00 14 82 a4 74 79 70 65 a4 6a 6f 69 6e a4 72 6f 6f 6d a3 64 65 76")
    );
    assert_eq!(
        encode_client(&ClientMessage::Chat(ChatSend {
            text: "hi".into(),
            reference: None,
            room: Some("dev".into()),
        }))
        .to_vec(),
        hex("00 00 00 1c 83 a4 74 79 70 65 a4 63 68 61 74 a4
             74 65 78 74 a2 68 69 a4 72 6f 6f 6d a3 64 65 76")
    );
    assert_eq!(
        encode_client(&ClientMessage::Rooms).to_vec(),
        hex("00 00 00 0c 81 a4 74 79 70 65 a5 72 6f 6f 6d 73")
    );
    assert_eq!(
        encode_server(&ServerMessage::RoomJoined(RoomJoined {
            invite_only: false,
            room: "dev".into(),
            topic: String::new(),
            users: vec![UserInfo {
                name: "bob".into(),
                session: 4,
            }],
            history: vec![],
        }))
        .to_vec(),
        hex("00 00 00 45 85 a4 74 79 70 65 ab 72 6f 6f 6d 5f
             6a 6f 69 6e 65 64 a4 72 6f 6f 6d a3 64 65 76 a5
             74 6f 70 69 63 a0 a5 75 73 65 72 73 91 82 a4 6e
             61 6d 65 a3 62 6f 62 a7 73 65 73 73 69 6f 6e 04
             a7 68 69 73 74 6f 72 79 90")
    );
    assert_eq!(
        encode_server(&ServerMessage::Chat(Chat {
            room: Some("dev".into()),
            id: 42,
            from: "bob".into(),
            session: 4,
            text: "hi".into(),
            ts: 1_767_225_600_000,
            reference: None,
        }))
        .to_vec(),
        hex("00 00 00 3e 87 a4 74 79 70 65 a4 63 68 61 74 a2
             69 64 2a a4 66 72 6f 6d a3 62 6f 62 a7 73 65 73
             73 69 6f 6e 04 a4 74 65 78 74 a2 68 69 a2 74 73
             cf 00 00 01 9b 76 da a8 00 a4 72 6f 6f 6d a3 64
             65 76")
    );
    assert_eq!(
        encode_server(&ServerMessage::Presence(Presence {
            room: Some("dev".into()),
            ts: 1_767_225_600_000,
            joined: vec![UserInfo {
                name: "carol".into(),
                session: 5,
            }],
            left: vec![],
        }))
        .to_vec(),
        hex("00 00 00 47 85 a4 74 79 70 65 a8 70 72 65 73 65
             6e 63 65 a2 74 73 cf 00 00 01 9b 76 da a8 00 a6
             6a 6f 69 6e 65 64 91 82 a4 6e 61 6d 65 a5 63 61
             72 6f 6c a7 73 65 73 73 69 6f 6e 05 a4 6c 65 66
             74 90 a4 72 6f 6f 6d a3 64 65 76")
    );
    assert_eq!(
        encode_server(&ServerMessage::RoomList(RoomList {
            rooms: vec![
                RoomInfo {
                    invite_only: false,
                    room: "lobby".into(),
                    topic: String::new(),
                    members: 3,
                    default: true,
                },
                RoomInfo {
                    invite_only: false,
                    room: "dev".into(),
                    topic: "ship it".into(),
                    members: 2,
                    default: false,
                },
            ],
        }))
        .to_vec(),
        hex("00 00 00 5d 82 a4 74 79 70 65 a9 72 6f 6f 6d 5f
             6c 69 73 74 a5 72 6f 6f 6d 73 92 84 a4 72 6f 6f
             6d a5 6c 6f 62 62 79 a5 74 6f 70 69 63 a0 a7 6d
             65 6d 62 65 72 73 03 a7 64 65 66 61 75 6c 74 c3
             83 a4 72 6f 6f 6d a3 64 65 76 a5 74 6f 70 69 63
             a7 73 68 69 70 20 69 74 a7 6d 65 6d 62 65 72 73
             02")
    );
}
