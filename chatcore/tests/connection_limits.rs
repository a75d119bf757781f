//! Limits that keep one address from filling the server: per-address caps on
//! connections and on connections not yet logged in, the small frame limit
//! before login, the global input budget, the rate limit on error-earning
//! frames and the slow-reader cap on what small frames really cost.

mod common;

use std::io::Write;
use std::net::IpAddr;

use chatcore::ServerConfig;
use chatcore::protocol::{ChatSend, ClientMessage, ErrorCode, LeaveReason, ServerMessage};
use common::{Raw, frame_of, frame_of_body, start, test_config};

/// The second loopback address: another client as far as the caps go.
fn other_address() -> IpAddr {
    IpAddr::from([127, 0, 0, 2])
}

/// A raw `{"type":"x"}` frame: well formed, unknown type, earns an error.
fn unknown_type_frame() -> Vec<u8> {
    let mut body = vec![0x81, 0xa4];
    body.extend_from_slice(b"type");
    body.push(0xa1);
    body.push(b'x');
    frame_of_body(&body)
}

#[test]
fn an_address_over_its_connection_cap_gets_too_many_connections_and_others_still_get_in() {
    let server = start(ServerConfig {
        max_connections_per_address: 3,
        ..test_config()
    });
    let addr = server.local_addr();
    let members: Vec<_> = (0..3)
        .map(|i| Raw::login(addr, &format!("m{i}")).0)
        .collect();
    let mut refused = Raw::connect(addr);
    match refused.next() {
        Some(ServerMessage::Error(e)) => assert_eq!(e.code, ErrorCode::TooManyConnections),
        other => panic!("expected too_many_connections, got {other:?}"),
    }
    assert!(refused.next().is_none(), "the refused connection is closed");

    // Another address is not affected.
    let mut other = Raw::connect_from(addr, other_address());
    other.hello("other");
    assert!(matches!(other.next(), Some(ServerMessage::Welcome(_))));

    // A closed connection frees its slot.
    drop(members);
    let mut again = None;
    for _ in 0..100 {
        let (mut c, _) = {
            let mut c = Raw::connect(addr);
            c.hello("back");
            match c.next() {
                Some(ServerMessage::Welcome(w)) => (c, w),
                // The server may not have seen the closes yet.
                _ => continue,
            }
        };
        assert!(c.is_alive(1));
        again = Some(c);
        break;
    }
    assert!(again.is_some(), "a slot came free after the members left");
}

#[test]
fn connections_not_logged_in_are_capped_per_address_and_a_login_frees_a_slot() {
    let server = start(ServerConfig {
        max_handshakes_per_address: 2,
        ..test_config()
    });
    let addr = server.local_addr();
    let mut first = Raw::connect(addr);
    let mut second = Raw::connect(addr);
    // Both are in: each answers a ping before login.
    assert!(first.is_alive(1));
    assert!(second.is_alive(2));
    let mut third = Raw::connect(addr);
    match third.next() {
        Some(ServerMessage::Error(e)) => assert_eq!(e.code, ErrorCode::TooManyConnections),
        other => panic!("expected too_many_connections, got {other:?}"),
    }
    assert!(third.next().is_none());

    // Logged-in members do not count against the handshake cap.
    first.hello("first");
    assert!(matches!(first.next(), Some(ServerMessage::Welcome(_))));
    let mut fourth = Raw::connect(addr);
    fourth.hello("fourth");
    assert!(matches!(fourth.next(), Some(ServerMessage::Welcome(_))));
    assert!(first.is_alive(3));
}

#[test]
fn a_frame_over_the_prelogin_limit_is_refused_at_its_header_but_allowed_after_login() {
    let server = start(ServerConfig {
        max_prelogin_frame: 4096,
        ..test_config()
    });
    let addr = server.local_addr();

    // Before login: only the header of a 5000-byte frame is sent, and the
    // server answers without waiting for its body.
    let mut anon = Raw::connect(addr);
    anon.stream
        .write_all(&5000u32.to_be_bytes())
        .expect("header");
    match anon.next() {
        Some(ServerMessage::Error(e)) => assert_eq!(e.code, ErrorCode::FrameTooLarge),
        other => panic!("expected frame_too_large, got {other:?}"),
    }
    assert!(anon.next().is_none(), "the connection is closed");

    // After login the full `max_frame` applies: a 5000-byte chat frame is
    // read and answered (its text is over max_text, so with that error).
    let (mut member, _) = Raw::login(addr, "member");
    let text = "y".repeat(5000);
    member.send(&ClientMessage::Chat(ChatSend {
        room: None,
        text,
        reference: Some(7),
    }));
    match member.until(|m| matches!(m, ServerMessage::Error(_))) {
        ServerMessage::Error(e) => {
            assert_eq!(e.code, ErrorCode::TextTooLong);
            assert_eq!(e.reference, Some(7));
        }
        _ => unreachable!(),
    }
    // A hello followed by a big frame in the same write: the limit follows
    // the login frame by frame.
    let mut quick = Raw::connect(addr);
    let mut both = frame_of(&ClientMessage::Hello(chatcore::protocol::Hello {
        password: None,
        token: None,
        version: chatcore::protocol::PROTOCOL_VERSION,
        name: "quick".into(),
        last_seen: None,
    }));
    both.extend_from_slice(&frame_of(&ClientMessage::Chat(ChatSend {
        room: None,
        text: "z".repeat(4500),
        reference: Some(9),
    })));
    quick.stream.write_all(&both).expect("send");
    assert!(matches!(quick.next(), Some(ServerMessage::Welcome(_))));
    assert_eq!(quick.expect_error(), ErrorCode::TextTooLong);
}

#[test]
fn hundreds_of_handshakes_expiring_at_once_are_all_closed_and_members_stay() {
    let server = start(ServerConfig {
        handshake_timeout_ms: 300,
        heartbeat_ms: 40,
        idle_timeout_ms: Some(60_000),
        max_handshakes_per_address: 1000,
        max_connections_per_address: 1000,
        ..test_config()
    });
    let addr = server.local_addr();
    let (mut member, _) = Raw::login(addr, "member");
    // More than one sweep may close at once (256): the rest are closed by
    // the sweeps of the following turns.
    let mut silent: Vec<Raw> = (0..600).map(|_| Raw::connect(addr)).collect();
    for c in &mut silent {
        let got = c.until_closed();
        assert!(
            got.iter().any(
                |m| matches!(m, ServerMessage::Error(e) if e.code == ErrorCode::HandshakeTimeout)
            ),
            "each silent connection got handshake_timeout: {got:?}"
        );
    }
    assert!(member.is_alive(1));
}

#[test]
fn frames_that_earn_an_error_are_charged_to_the_rate_limit() {
    let server = start(ServerConfig {
        rate_per_sec: 1.0,
        rate_burst: 10.0,
        ..test_config()
    });
    let addr = server.local_addr();
    let (mut flooder, _) = Raw::login(addr, "flooder");
    let mut all = Vec::new();
    for _ in 0..100 {
        all.extend_from_slice(&unknown_type_frame());
    }
    flooder.stream.write_all(&all).expect("flood");
    // Every frame is answered once, in order.
    let codes: Vec<ErrorCode> = (0..100).map(|_| flooder.expect_error()).collect();
    let unknown = codes
        .iter()
        .filter(|&&c| c == ErrorCode::UnknownType)
        .count();
    let limited = codes
        .iter()
        .filter(|&&c| c == ErrorCode::RateLimited)
        .count();
    assert!(
        (9..=11).contains(&unknown),
        "only the burst left after the hello was answered with unknown_type ({unknown})"
    );
    assert_eq!(unknown + limited, 100);
}

#[test]
fn a_member_that_floods_small_error_frames_and_never_reads_is_cut_as_slow() {
    let server = start(ServerConfig {
        max_output_bytes: 64 * 1024,
        max_frame: 64 * 1024,
        rate_per_sec: 1e9,
        rate_burst: 1e9,
        ..test_config()
    });
    let addr = server.local_addr();
    let (mut observer, _) = Raw::login(addr, "observer");
    let (mut flooder, w) = Raw::login(addr, "flooder");
    let batch: Vec<u8> = (0..1000).flat_map(|_| unknown_type_frame()).collect();
    // Until the server cuts it (the write then fails) or a generous bound.
    for _ in 0..2000 {
        if flooder.stream.write_all(&batch).is_err() {
            break;
        }
    }
    let reason = observer.until_left(w.session);
    assert_eq!(reason, LeaveReason::Slow);
}

#[test]
fn a_partial_frame_waits_while_the_input_budget_is_used_up_and_others_chat_on() {
    let server = start(ServerConfig {
        max_frame: 64 * 1024,
        max_buffered_input_bytes: 64 * 1024 + 4,
        ..test_config()
    });
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "a");
    let (mut b, _) = Raw::login(addr, "b");
    let (mut c, _) = Raw::login(addr, "c");
    let big = |reference| {
        frame_of(&ClientMessage::Chat(ChatSend {
            room: None,
            text: "q".repeat(60_000),
            reference: Some(reference),
        }))
    };
    let fa = big(1);
    let fb = big(2);
    // a's partial frame takes the whole budget ...
    a.stream.write_all(&fa[..40_000]).expect("a part");
    assert!(c.is_alive(4));
    // ... so b's partial frame must wait, while c chats on.
    b.stream.write_all(&fb[..40_000]).expect("b part");
    c.chat("still talking");
    c.until(|m| matches!(m, ServerMessage::Chat(x) if x.text == "still talking"));
    // a completes its frame: it is answered, the budget frees, b goes on.
    a.stream.write_all(&fa[40_000..]).expect("a rest");
    assert_eq!(a.expect_error(), ErrorCode::TextTooLong);
    b.stream.write_all(&fb[40_000..]).expect("b rest");
    assert_eq!(b.expect_error(), ErrorCode::TextTooLong);
    assert!(c.is_alive(5));
}
