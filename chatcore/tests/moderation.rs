//! Moderation over real sockets and a real store (docs/protocol.md section
//! 24): roles, kick, ban (by account and by address), mute, set_role,
//! delete, what survives a restart, and the log.

mod common;

use std::path::{Path, PathBuf};

use chatcore::protocol::{
    ChatSend, ClientMessage, Delete, ErrorCode, Hello, JoinRoom, LeaveReason, Moderate, Moderated,
    PROTOCOL_VERSION, Register, ServerMessage, SetRole,
};
use chatcore::{RunningServer, ServerConfig};
use common::{Raw, start, test_config};

fn db_path(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "chatcore-test-moderation-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir.join("chat.db")
}

/// A server with a store at `db` and `root` as its operator.
fn server(db: &Path) -> RunningServer {
    start(ServerConfig {
        store_path: Some(db.to_path_buf()),
        operators: vec!["root".into()],
        rate_burst: 1000.0,
        ..test_config()
    })
}

/// Registers `name` as a guest, then logs in again with the password on a
/// fresh connection: an authenticated member.
fn member(addr: std::net::SocketAddr, name: &str) -> Raw {
    let (mut c, _) = Raw::login(addr, name);
    c.send(&ClientMessage::Register(Register {
        password: "a long password".into(),
    }));
    c.until(|m| matches!(m, ServerMessage::Registered(_)));
    c
}

/// Logs `name` in with its password.
fn log_in(addr: std::net::SocketAddr, name: &str) -> Result<Raw, ErrorCode> {
    let mut c = Raw::connect(addr);
    c.send(&ClientMessage::Hello(Hello {
        version: PROTOCOL_VERSION,
        name: name.into(),
        last_seen: None,
        password: Some("a long password".into()),
        token: None,
    }));
    match c.until(|m| matches!(m, ServerMessage::Welcome(_) | ServerMessage::Error(_))) {
        ServerMessage::Welcome(_) => Ok(c),
        ServerMessage::Error(e) => Err(e.code),
        _ => unreachable!(),
    }
}

fn act(name: &str, room: Option<&str>) -> Moderate {
    Moderate {
        name: name.into(),
        room: room.map(str::to_owned),
        minutes: None,
        reason: Some("testing".into()),
    }
}

fn moderated(c: &mut Raw) -> Moderated {
    match c.until(|m| matches!(m, ServerMessage::Moderated(_) | ServerMessage::Error(_))) {
        ServerMessage::Moderated(m) => m,
        other => panic!("expected moderated, got {other:?}"),
    }
}

/// The next `moderated` with this `action` (earlier ones are skipped).
fn moderated_as(c: &mut Raw, action: &str) -> Moderated {
    loop {
        let m = moderated(c);
        if m.action == action {
            return m;
        }
    }
}

fn join(c: &mut Raw, room: &str) -> Result<(), ErrorCode> {
    c.send(&ClientMessage::Join(JoinRoom {
        room: room.into(),
        invite_only: false,
    }));
    match c.until(|m| matches!(m, ServerMessage::RoomJoined(_) | ServerMessage::Error(_))) {
        ServerMessage::RoomJoined(_) => Ok(()),
        ServerMessage::Error(e) => Err(e.code),
        _ => unreachable!(),
    }
}

#[test]
fn an_operator_kicks_a_guest_off_the_server_and_a_guest_may_not_kick_anyone() {
    let db = db_path("kick");
    let s = server(&db);
    let addr = s.local_addr();
    drop(member(addr, "root"));
    let mut root = log_in(addr, "root").expect("root logs in");
    let (mut guest, wg) = Raw::login(addr, "guest");
    let (mut other, _) = Raw::login(addr, "other");

    other.send(&ClientMessage::Kick(act("guest", None)));
    assert_eq!(other.expect_error(), ErrorCode::Forbidden);
    other.send(&ClientMessage::Kick(act("root", None)));
    assert_eq!(other.expect_error(), ErrorCode::Forbidden);
    root.send(&ClientMessage::Kick(act("nobody", None)));
    assert_eq!(root.expect_error(), ErrorCode::NoSuchMember);

    root.send(&ClientMessage::Kick(act("guest", None)));
    let told = moderated(&mut guest);
    assert_eq!(
        (
            told.action.as_str(),
            told.by.as_str(),
            told.reason.as_deref()
        ),
        ("kick", "root", Some("testing"))
    );
    // Then the connection closes (after its `moderated` was written).
    while guest.next().is_some() {}
    assert_eq!(other.until_left(wg.session), LeaveReason::Kicked);
    // A kick is not a ban: the guest comes back.
    Raw::login(addr, "guest");
    s.stop().expect("stop");
}

#[test]
fn a_ban_by_account_holds_across_a_restart_until_it_is_lifted() {
    let db = db_path("ban");
    let s = server(&db);
    let addr = s.local_addr();
    drop(member(addr, "root"));
    drop(member(addr, "bob"));
    let mut root = log_in(addr, "root").expect("root");
    let mut bob = log_in(addr, "bob").expect("bob");
    join(&mut root, "dev").expect("root in dev");
    join(&mut bob, "dev").expect("bob in dev");
    root.send(&ClientMessage::Ban(act("bob", Some("dev"))));
    let told = moderated(&mut bob);
    assert_eq!(
        (told.action.as_str(), told.room.as_deref(), told.until),
        ("ban", Some("dev"), None)
    );
    match bob.until(|m| matches!(m, ServerMessage::RoomParted(_))) {
        ServerMessage::RoomParted(p) => assert_eq!(p.room, "dev"),
        _ => unreachable!(),
    }
    // Out of dev, still on the server and in other rooms.
    assert_eq!(join(&mut bob, "dev"), Err(ErrorCode::Banned));
    join(&mut bob, "ops").expect("another room is fine");
    drop((root, bob));
    s.stop().expect("stop");

    let s = server(&db);
    let addr = s.local_addr();
    let mut bob = log_in(addr, "bob").expect("bob");
    assert_eq!(
        join(&mut bob, "dev"),
        Err(ErrorCode::Banned),
        "after a restart"
    );
    let mut root = log_in(addr, "root").expect("root");
    join(&mut root, "dev").expect("root in dev");
    root.send(&ClientMessage::Unban(act("bob", Some("dev"))));
    assert_eq!(moderated(&mut root).action, "unban");
    join(&mut bob, "dev").expect("unbanned");
    s.stop().expect("stop");

    // Every action is in the log, with who and when.
    let conn = rusqlite::Connection::open(&db).expect("open");
    let log: Vec<(String, String, String, String)> = conn
        .prepare("SELECT room, actor, action, target FROM moderation_log ORDER BY id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        log,
        [
            ("dev".into(), "root".into(), "ban".into(), "bob".into()),
            ("dev".into(), "root".into(), "unban".into(), "bob".into()),
        ]
    );
}

#[test]
fn a_guest_banned_from_the_server_cannot_log_in_again_from_its_address() {
    let db = db_path("guest-ban");
    let s = server(&db);
    let addr = s.local_addr();
    drop(member(addr, "root"));
    let mut root = log_in(addr, "root").expect("root");
    let (mut guest, _) = Raw::login(addr, "spammer");
    root.send(&ClientMessage::Ban(Moderate {
        minutes: Some(5),
        ..act("spammer", None)
    }));
    let told = moderated(&mut guest);
    assert!(told.until.is_some(), "a guest's ban ends");
    let mut again = Raw::connect(addr);
    again.hello("someone-else");
    match again.until(|m| matches!(m, ServerMessage::Error(_) | ServerMessage::Welcome(_))) {
        ServerMessage::Error(e) => {
            assert_eq!(e.code, ErrorCode::Banned);
            assert!(e.message.contains("until"), "{}", e.message);
        }
        other => panic!("let in: {other:?}"),
    }
    // Another address is not banned.
    let mut elsewhere = Raw::connect_from(addr, "127.0.0.2".parse().expect("ip"));
    elsewhere.hello("fine");
    assert!(matches!(
        elsewhere.until(|m| matches!(m, ServerMessage::Error(_) | ServerMessage::Welcome(_))),
        ServerMessage::Welcome(_)
    ));
    s.stop().expect("stop");
}

#[test]
fn a_muted_member_cannot_chat_until_unmuted_and_roles_give_moderators_power() {
    let db = db_path("mute");
    let s = server(&db);
    let addr = s.local_addr();
    drop(member(addr, "owner"));
    drop(member(addr, "mod"));
    let mut owner = log_in(addr, "owner").expect("owner");
    let mut moder = log_in(addr, "mod").expect("mod");
    let (mut guest, _) = Raw::login(addr, "guest");
    // The creator of a room, registered, owns it.
    join(&mut owner, "dev").expect("create dev");
    join(&mut moder, "dev").expect("mod in dev");
    join(&mut guest, "dev").expect("guest in dev");
    moder.send(&ClientMessage::Mute(act("guest", Some("dev"))));
    assert_eq!(
        moder.expect_error(),
        ErrorCode::Forbidden,
        "not a moderator yet"
    );
    owner.send(&ClientMessage::SetRole(SetRole {
        name: "mod".into(),
        room: Some("dev".into()),
        role: "moderator".into(),
    }));
    let told = moderated(&mut moder);
    assert_eq!(
        (told.action.as_str(), told.role.as_deref()),
        ("role", Some("moderator"))
    );
    moder.send(&ClientMessage::Mute(act("guest", Some("dev"))));
    moderated_as(&mut guest, "mute");
    guest.send(&ClientMessage::Chat(ChatSend {
        text: "let me talk".into(),
        reference: Some(5),
        room: Some("dev".into()),
    }));
    match guest.until(|m| matches!(m, ServerMessage::Error(_))) {
        ServerMessage::Error(e) => assert_eq!((e.code, e.reference), (ErrorCode::Muted, Some(5))),
        _ => unreachable!(),
    }
    // Only in dev: the default room still hears the guest.
    guest.chat("in the lobby");
    assert_eq!(guest.next_chat().text, "in the lobby");
    // A moderator cannot act on the owner.
    moder.send(&ClientMessage::Kick(act("owner", Some("dev"))));
    assert_eq!(moder.expect_error(), ErrorCode::Forbidden);
    moder.send(&ClientMessage::Unmute(act("guest", Some("dev"))));
    moderated_as(&mut guest, "unmute");
    guest.send(&ClientMessage::Chat(ChatSend {
        text: "thanks".into(),
        reference: None,
        room: Some("dev".into()),
    }));
    assert_eq!(guest.next_chat().text, "thanks");
    s.stop().expect("stop");
}

#[test]
fn a_deleted_chat_disappears_for_everyone_and_from_the_history() {
    let db = db_path("delete");
    let s = server(&db);
    let addr = s.local_addr();
    let (mut a, _) = Raw::login(addr, "a");
    let (mut b, _) = Raw::login(addr, "b");
    a.chat("oops");
    let oops = a.next_chat().id;
    a.chat("keep");
    a.next_chat();
    b.send(&ClientMessage::Delete(Delete {
        id: oops,
        room: None,
    }));
    assert_eq!(b.expect_error(), ErrorCode::Forbidden, "not b's chat");
    a.send(&ClientMessage::Delete(Delete {
        id: oops,
        room: None,
    }));
    match b.until(|m| matches!(m, ServerMessage::Deleted(_))) {
        ServerMessage::Deleted(d) => assert_eq!((d.id, d.by.as_str(), d.room), (oops, "a", None)),
        _ => unreachable!(),
    }
    let (_c, w) = Raw::login(addr, "c");
    let texts: Vec<&str> = w.history.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["keep"]);
    a.send(&ClientMessage::Delete(Delete {
        id: oops,
        room: None,
    }));
    assert_eq!(a.expect_error(), ErrorCode::NoSuchMember, "gone already");
    drop((a, b));
    s.stop().expect("stop");
    // From the file too.
    let s = server(&db);
    let (_d, w) = Raw::login(s.local_addr(), "d");
    let texts: Vec<&str> = w.history.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["keep"]);
    s.stop().expect("stop");
}

#[test]
fn a_second_login_of_an_account_shown_with_a_suffix_can_still_change_its_password() {
    let db = db_path("second");
    let s = server(&db);
    let addr = s.local_addr();
    let _first = member(addr, "alice");
    let mut second = log_in(addr, "alice").expect("second login");
    second.send(&ClientMessage::ChangePassword(
        chatcore::protocol::ChangePassword {
            old: "a long password".into(),
            new: "another long one".into(),
        },
    ));
    match second.until(|m| {
        matches!(
            m,
            ServerMessage::PasswordChanged(_) | ServerMessage::Error(_)
        )
    }) {
        ServerMessage::PasswordChanged(_) => {}
        other => panic!("{other:?}"),
    }
    s.stop().expect("stop");
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}

#[test]
fn the_moderation_frames_of_the_spec_are_what_the_encoder_produces() {
    use chatcore::protocol::{Deleted, encode_client, encode_server};
    assert_eq!(
        encode_client(&ClientMessage::Ban(Moderate {
            name: "bob".into(),
            room: Some("dev".into()),
            minutes: Some(60),
            reason: None,
        }))
        .to_vec(),
        hex("00 00 00 25 84 a4 74 79 70 65 a3 62 61 6e a4 6e
             61 6d 65 a3 62 6f 62 a4 72 6f 6f 6d a3 64 65 76
             a7 6d 69 6e 75 74 65 73 3c")
    );
    assert_eq!(
        encode_server(&ServerMessage::Moderated(Moderated {
            action: "kick".into(),
            name: "bob".into(),
            by: "ann".into(),
            room: None,
            reason: None,
            until: None,
            role: None,
            ts: 1_767_225_600_000,
        }))
        .to_vec(),
        hex("00 00 00 38 85 a4 74 79 70 65 a9 6d 6f 64 65 72
             61 74 65 64 a6 61 63 74 69 6f 6e a4 6b 69 63 6b
             a4 6e 61 6d 65 a3 62 6f 62 a2 62 79 a3 61 6e 6e
             a2 74 73 cf 00 00 01 9b 76 da a8 00")
    );
    assert_eq!(
        encode_server(&ServerMessage::Deleted(Deleted {
            id: 42,
            room: None,
            by: "ann".into(),
        }))
        .to_vec(),
        hex("00 00 00 19 83 a4 74 79 70 65 a7 64 65 6c 65 74
             65 64 a2 69 64 2a a2 62 79 a3 61 6e 6e")
    );
}

#[test]
fn the_embedding_program_moderates_through_its_handle_with_every_power() {
    let db = db_path("handle");
    let s = server(&db);
    let addr = s.local_addr();
    let handle = s.handle();
    let (mut a, _) = Raw::login(addr, "a");
    let (mut b, _) = Raw::login(addr, "b");
    a.chat("spam");
    let spam = a.next_chat().id;
    handle
        .moderate(ClientMessage::Delete(Delete {
            id: spam,
            room: None,
        }))
        .expect("delete");
    match b.until(|m| matches!(m, ServerMessage::Deleted(_))) {
        ServerMessage::Deleted(d) => assert_eq!((d.id, d.by.as_str()), (spam, "server")),
        _ => unreachable!(),
    }
    handle
        .moderate(ClientMessage::Mute(act("a", None)))
        .expect("mute");
    assert_eq!(moderated_as(&mut b, "mute").by, "server");
    a.chat("more spam");
    assert_eq!(a.expect_error(), ErrorCode::Muted);
    let refused = handle.moderate(ClientMessage::Kick(act("nobody", None)));
    assert!(
        matches!(
            refused,
            Err(chatcore::HandleError::Refused {
                code: ErrorCode::NoSuchMember,
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(matches!(
        handle.moderate(ClientMessage::Rooms),
        Err(chatcore::HandleError::Refused {
            code: ErrorCode::BadMessage,
            ..
        })
    ));
    s.stop().expect("stop");
}
