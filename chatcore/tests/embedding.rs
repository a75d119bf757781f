//! The embedding API: hooks that veto and rewrite, and the ServerHandle.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chatcore::protocol::{ErrorCode, LeaveReason, ServerMessage, UserInfo};
use chatcore::{ChatDecision, Hooks, JoinDecision, Server};
use common::{Raw, test_config};

#[derive(Default, Clone)]
struct Log(Arc<Mutex<Vec<String>>>);

struct Moderator {
    log: Log,
}

impl Hooks for Moderator {
    fn on_join(&mut self, name: &str, _peer: SocketAddr) -> JoinDecision {
        if name == "admin" {
            JoinDecision::Deny("that name is reserved".into())
        } else {
            JoinDecision::Accept
        }
    }

    fn on_joined(&mut self, user: &UserInfo) {
        self.log
            .0
            .lock()
            .expect("log")
            .push(format!("joined {}", user.name));
    }

    fn on_chat(&mut self, _from: &UserInfo, text: &str) -> ChatDecision {
        if text.contains("spam") {
            ChatDecision::Reject("no spam here".into())
        } else if text.contains("darn") {
            ChatDecision::Rewrite(text.replace("darn", "****"))
        } else {
            ChatDecision::Deliver
        }
    }

    fn on_leave(&mut self, user: &UserInfo, reason: LeaveReason) {
        self.log
            .0
            .lock()
            .expect("log")
            .push(format!("left {} {reason}", user.name));
    }
}

#[test]
fn hooks_can_deny_joins_reject_and_rewrite_messages_and_observe_leaves() {
    let log = Log::default();
    let server = Server::builder()
        .config(test_config())
        .hooks(Moderator { log: log.clone() })
        .build()
        .expect("bind")
        .spawn()
        .expect("spawn");
    let addr = server.local_addr();
    let mut c = Raw::connect(addr);
    c.hello("admin");
    assert_eq!(c.expect_error(), ErrorCode::JoinDenied);
    c.hello("alice");
    assert!(matches!(c.next(), Some(ServerMessage::Welcome(_))));
    c.chat_ref("buy spam", 5);
    assert_eq!(c.expect_error(), ErrorCode::Rejected);
    c.chat("darn it");
    c.until(|m| matches!(m, ServerMessage::Chat(ch) if ch.text == "**** it"));
    c.send(&chatcore::protocol::ClientMessage::Bye);
    c.until_closed();
    server.stop().expect("stop");
    let log = log.0.lock().expect("log").clone();
    assert_eq!(log, vec!["joined alice", "left alice quit"]);
}

#[test]
fn the_handle_broadcasts_lists_kicks_and_counts() {
    let server = Server::bind(test_config())
        .expect("bind")
        .spawn()
        .expect("spawn");
    let addr = server.local_addr();
    let handle = server.handle().clone();
    let (mut a, _) = Raw::login(addr, "alice");
    let (mut b, wb) = Raw::login(addr, "bob");

    std::thread::spawn(move || handle.broadcast("maintenance at noon"))
        .join()
        .expect("thread")
        .expect("broadcast");
    let c = a.next_chat();
    assert_eq!(c.session, 0, "server messages have session 0");
    assert_eq!(c.text, "maintenance at noon");

    let users = server.handle().users().expect("users");
    assert_eq!(users.len(), 2);

    assert!(server.handle().kick(wb.session).expect("kick"));
    assert!(!server.handle().kick(9999).expect("kick unknown"));
    let got = b.until_closed();
    assert!(got.iter().any(|m| matches!(m, ServerMessage::Left(l)
        if l.session == wb.session && l.reason == LeaveReason::Kicked)));
    assert_eq!(a.until_left(wb.session), LeaveReason::Kicked);

    let stats = server.handle().stats().expect("stats");
    assert_eq!(stats.members, 1);
    assert_eq!(stats.messages, 1);
    assert!(stats.deliveries >= 2);
    let handle = server.handle().clone();
    server.stop().expect("stop");
    assert!(handle.users().is_err(), "a stopped server says so");
}

/// Hooks that see rooms: a room only staff may enter, chats per room,
/// direct messages, moderation.
struct RoomKeeper {
    log: Log,
}

impl Hooks for RoomKeeper {
    fn on_chat_in(&mut self, from: &UserInfo, room: Option<&str>, text: &str) -> ChatDecision {
        self.log.0.lock().expect("log").push(format!(
            "chat {} in {} {text}",
            from.name,
            room.unwrap_or("-")
        ));
        if room == Some("quiet") {
            ChatDecision::Reject("this room is read-only".into())
        } else {
            ChatDecision::Deliver
        }
    }

    fn on_room_join(&mut self, user: &UserInfo, room: &str) -> JoinDecision {
        if room == "staff" && user.name != "boss" {
            JoinDecision::Deny("staff only".into())
        } else {
            JoinDecision::Accept
        }
    }

    fn on_dm(&mut self, _from: &UserInfo, _to: &str, text: &str) -> ChatDecision {
        ChatDecision::Rewrite(text.replace("password", "********"))
    }

    fn on_moderated(&mut self, action: &chatcore::protocol::Moderated) {
        self.log.0.lock().expect("log").push(format!(
            "{} {} by {}",
            action.action, action.name, action.by
        ));
    }
}

#[test]
fn hooks_see_the_room_of_each_chat_steer_room_joins_and_direct_messages_and_observe_moderation() {
    use chatcore::protocol::{ChatSend, ClientMessage, DmSend, JoinRoom, Moderate};
    let log = Log::default();
    let server = Server::builder()
        .config(test_config())
        .hooks(RoomKeeper { log: log.clone() })
        .build()
        .expect("bind")
        .spawn()
        .expect("spawn");
    let addr = server.local_addr();
    let (mut ann, _) = Raw::login(addr, "ann");
    let (mut boss, _) = Raw::login(addr, "boss");
    let join = |c: &mut Raw, room: &str| {
        c.send(&ClientMessage::Join(JoinRoom {
            room: room.into(),
            invite_only: false,
        }));
        match c.until(|m| matches!(m, ServerMessage::RoomJoined(_) | ServerMessage::Error(_))) {
            ServerMessage::RoomJoined(_) => Ok(()),
            ServerMessage::Error(e) => Err((e.code, e.room)),
            _ => unreachable!(),
        }
    };
    assert_eq!(
        join(&mut ann, "staff"),
        Err((ErrorCode::JoinDenied, Some("staff".into())))
    );
    join(&mut boss, "staff").expect("boss enters");
    join(&mut ann, "quiet").expect("anyone enters");
    ann.send(&ClientMessage::Chat(ChatSend {
        text: "hello".into(),
        reference: Some(3),
        room: Some("quiet".into()),
    }));
    assert_eq!(ann.expect_error(), ErrorCode::Rejected);
    ann.chat("hi all");
    ann.next_chat();
    ann.send(&ClientMessage::Dm(DmSend {
        to: "boss".into(),
        text: "my password is hunter2".into(),
        reference: None,
    }));
    match boss.until(|m| matches!(m, ServerMessage::Dm(_))) {
        ServerMessage::Dm(d) => assert_eq!(d.text, "my ******** is hunter2"),
        _ => unreachable!(),
    }
    server
        .handle()
        .moderate(ClientMessage::Kick(Moderate {
            name: "boss".into(),
            room: Some("staff".into()),
            minutes: None,
            reason: None,
        }))
        .expect("kick");
    boss.until(|m| matches!(m, ServerMessage::RoomParted(_)));
    let seen = log.0.lock().expect("log").clone();
    assert!(
        seen.contains(&"chat ann in quiet hello".to_owned()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"chat ann in - hi all".to_owned()),
        "{seen:?}"
    );
    assert!(seen.contains(&"kick boss by server".to_owned()), "{seen:?}");
    server.stop().expect("stop");
}
