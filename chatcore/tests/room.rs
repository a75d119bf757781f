//! The room over real loopback sockets: messages, order, names, presence.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chatcore::protocol::{ErrorCode, LeaveReason, ServerMessage};
use chatcore::{Client, Event, Roster};
use common::{Raw, start, test_config};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn chats(msgs: &[ServerMessage]) -> Vec<(u64, String, String)> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMessage::Chat(c) => Some((c.id, c.from.clone(), c.text.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn three_clients_see_all_messages_in_the_same_order_with_sender_and_time() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "alice");
    let (mut b, _) = Raw::login(addr, "bob");
    let (mut c, wc) = Raw::login(addr, "carol");
    assert_eq!(wc.users.len(), 3);
    let before = chatcore::time::now_ms();
    for i in 0..20 {
        a.chat(&format!("a{i}"));
        b.chat(&format!("b{i}"));
        c.chat(&format!("c{i}"));
    }
    let mut seen = Vec::new();
    for client in [&mut a, &mut b, &mut c] {
        let mut got = Vec::new();
        while got.len() < 60 {
            match client.next() {
                Some(ServerMessage::Chat(chat)) => {
                    assert!(chat.ts >= before - 1000 && chat.ts <= chatcore::time::now_ms());
                    let expected_from = match &chat.text[..1] {
                        "a" => "alice",
                        "b" => "bob",
                        _ => "carol",
                    };
                    assert_eq!(chat.from, expected_from, "sender of {}", chat.text);
                    got.push(ServerMessage::Chat(chat));
                }
                Some(_) => {}
                None => panic!("closed"),
            }
        }
        seen.push(chats(&got));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
    let ids: Vec<u64> = seen[0].iter().map(|(id, _, _)| *id).collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "ids increase by one: {ids:?}"
    );
    // Each sender's own messages keep their sending order.
    for prefix in ["a", "b", "c"] {
        let mine: Vec<&String> = seen[0]
            .iter()
            .map(|(_, _, t)| t)
            .filter(|t| t.starts_with(prefix))
            .collect();
        let expected: Vec<String> = (0..20).map(|i| format!("{prefix}{i}")).collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>());
    }
}

#[test]
fn the_senders_copy_echoes_its_ref_and_late_joiners_get_history() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "alice");
    a.chat_ref("first", 41);
    assert_eq!(a.next_chat().reference, Some(41));
    let (_b, wb) = Raw::login(addr, "bob");
    assert_eq!(wb.history.len(), 1);
    assert_eq!(wb.history[0].text, "first");
    assert_eq!(wb.history[0].reference, None, "history never carries refs");
}

#[test]
fn duplicate_names_get_the_lowest_free_suffix() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (_a0, w0) = Raw::login(addr, "a");
    let (a1, w1) = Raw::login(addr, "a");
    let (_a2, w2) = Raw::login(addr, "a");
    assert_eq!([&w0.name, &w1.name, &w2.name], ["a", "a(1)", "a(2)"]);
    drop(a1);
    // Wait until the server has seen a(1) go.
    let (mut watcher, _) = Raw::login(addr, "watcher");
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        let users = server.handle().users().expect("users");
        if !users.iter().any(|u| u.name == "a(1)") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "a(1) never left");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (_again, w) = Raw::login(addr, "a");
    assert_eq!(w.name, "a(1)");
    assert!(watcher.is_alive(1));
}

#[test]
fn bad_hellos_are_refused_and_the_connection_may_try_again() {
    let server = start(test_config());
    let mut c = Raw::connect(server.local_addr());
    c.hello("");
    assert_eq!(c.expect_error(), ErrorCode::NameEmpty);
    c.hello("   ");
    assert_eq!(c.expect_error(), ErrorCode::NameEmpty);
    c.hello(&"x".repeat(33));
    assert_eq!(c.expect_error(), ErrorCode::NameTooLong);
    c.hello("bad\nname");
    assert_eq!(c.expect_error(), ErrorCode::NameInvalid);
    c.send(&chatcore::protocol::ClientMessage::Hello(
        chatcore::protocol::Hello {
            password: None,
            token: None,
            version: 1,
            name: "v1".into(),
            last_seen: None,
        },
    ));
    assert_eq!(c.expect_error(), ErrorCode::Version);
    c.chat("too early");
    assert_eq!(c.expect_error(), ErrorCode::NotLoggedIn);
    c.hello("  dana  ");
    match c.next() {
        Some(ServerMessage::Welcome(w)) => assert_eq!(w.name, "dana"),
        other => panic!("expected welcome, got {other:?}"),
    }
    c.hello("again");
    assert_eq!(c.expect_error(), ErrorCode::AlreadyLoggedIn);
}

#[test]
fn chat_texts_are_checked_and_pings_answered() {
    let server = start(test_config());
    let (mut a, _) = Raw::login(server.local_addr(), "alice");
    a.chat_ref("", 1);
    assert_eq!(a.expect_error(), ErrorCode::TextEmpty);
    a.chat_ref(&"y".repeat(4097), 2);
    match a.until(|m| matches!(m, ServerMessage::Error(_))) {
        ServerMessage::Error(e) => {
            assert_eq!(e.code, ErrorCode::TextTooLong);
            assert_eq!(e.reference, Some(2));
        }
        _ => unreachable!(),
    }
    a.ping(77);
    assert!(matches!(a.until(|m| matches!(m, ServerMessage::Pong(_))),
        ServerMessage::Pong(s) if s.seq == 77));
}

#[test]
fn a_flood_is_rate_limited_without_disturbing_others() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (mut flooder, _) = Raw::login(addr, "flooder");
    let (mut calm, _) = Raw::login(addr, "calm");
    for i in 0..200 {
        flooder.chat_ref(&format!("spam {i}"), i);
    }
    let mut limited = 0;
    let mut delivered = 0;
    while limited + delivered < 200 {
        match flooder.next() {
            Some(ServerMessage::Error(e)) => {
                assert_eq!(e.code, ErrorCode::RateLimited);
                limited += 1;
            }
            Some(ServerMessage::Chat(c)) if c.from == "flooder" => delivered += 1,
            Some(_) => {}
            None => panic!("flooder was disconnected"),
        }
    }
    assert!(limited > 100, "most of the flood was refused ({limited})");
    assert!(delivered >= 30, "the burst went through ({delivered})");
    calm.chat("still here");
    calm.until(|m| matches!(m, ServerMessage::Chat(c) if c.text == "still here"));
}

/// Connects and disconnects 200 clients in random order while an observer
/// tracks presence; at the end its roster equals the server's user list.
#[test]
fn presence_stays_right_through_200_random_connects_and_disconnects() {
    let server = start(test_config());
    let addr = server.local_addr();
    let observer = Client::connect_plain(addr, "observer").expect("observer");
    let mut roster = Roster::from_welcome(observer.welcome());
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut live: Vec<Client> = Vec::new();
    let mut ops = 0;
    while ops < 200 {
        if live.is_empty() || rng.random_bool(0.6) {
            let name = format!("u{}", rng.random_range(0..20));
            live.push(Client::connect_plain(addr, &name).expect("connect"));
        } else {
            live.shuffle(&mut rng);
            let gone = live.pop().expect("one");
            if rng.random_bool(0.5) {
                gone.bye().expect("bye");
            } else {
                drop(gone);
            }
        }
        ops += 1;
    }
    // Everyone the server lists must be in the observer's roster once the
    // events have arrived: poll until the two agree.
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        while let Some(ev) = observer.try_recv().expect("open") {
            if let Event::Message(m) = ev {
                roster.apply(&m);
            }
        }
        let server_users: BTreeMap<u64, String> = server
            .handle()
            .users()
            .expect("users")
            .into_iter()
            .map(|u| (u.session, u.name))
            .collect();
        let mine: BTreeMap<u64, String> = roster.users().map(|u| (u.session, u.name)).collect();
        if mine == server_users {
            assert_eq!(server_users.len(), live.len() + 1);
            let names: HashMap<&String, usize> =
                server_users.values().fold(HashMap::new(), |mut m, n| {
                    *m.entry(n).or_default() += 1;
                    m
                });
            assert!(names.values().all(|&n| n == 1), "names are unique");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "roster never converged"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn leaving_is_announced_with_its_reason() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "alice");
    let (mut b, wb) = Raw::login(addr, "bob");
    b.send(&chatcore::protocol::ClientMessage::Bye);
    assert_eq!(a.until_left(wb.session), LeaveReason::Quit);
    // The server closes the connection; nothing but presence came first.
    let rest = b.until_closed();
    assert!(
        rest.iter().all(|m| matches!(m, ServerMessage::Joined(_))),
        "{rest:?}"
    );
}
