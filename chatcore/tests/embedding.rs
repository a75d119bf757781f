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
