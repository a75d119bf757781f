//! Bad input, slow and frozen peers, limits and shutdown, over real sockets.
//! In every case the other members must be unaffected.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use chatcore::protocol::{ErrorCode, LeaveReason, ServerMessage};
use chatcore::{Client, ServerConfig};
use common::{Raw, frame_of, frame_of_body, start, test_config};

/// Asserts a bystander still gets room messages promptly.
fn bystander_unaffected(by: &mut Raw, other: &mut Raw, text: &str) {
    other.chat(text);
    by.until(|m| matches!(m, ServerMessage::Chat(c) if c.text == text));
}

#[test]
fn garbage_bytes_get_an_error_and_close_only_that_connection() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "alice");
    let (mut b, _) = Raw::login(addr, "bob");
    let mut bad = Raw::connect(addr);
    bad.send_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let got = bad.until_closed();
    assert!(
        matches!(got.last(), Some(ServerMessage::Error(e)) if e.code == ErrorCode::FrameTooLarge),
        "{got:?}"
    );
    bystander_unaffected(&mut a, &mut b, "after garbage");
}

#[test]
fn an_oversize_length_prefix_is_refused_before_the_body_is_sent() {
    let server = start(test_config());
    let (mut c, _) = Raw::login(server.local_addr(), "alice");
    // Only the header: the server must not wait for (or allocate) the body.
    c.send_bytes(&(1024 * 1024 + 1u32).to_be_bytes());
    let got = c.until_closed();
    assert!(
        matches!(got.last(), Some(ServerMessage::Error(e)) if e.code == ErrorCode::FrameTooLarge),
        "{got:?}"
    );
}

#[test]
fn a_zero_length_frame_or_a_non_map_body_is_a_fatal_bad_frame() {
    let server = start(test_config());
    for bytes in [
        vec![0, 0, 0, 0],
        frame_of(&vec![1, 2, 3]),
        frame_of(&"just a string"),
        frame_of_body(&[0x81, 0xa1]), // truncated map
        frame_of_body(&[0x80, 0x01]), // trailing bytes
    ] {
        let mut c = Raw::connect(server.local_addr());
        c.send_bytes(&bytes);
        let got = c.until_closed();
        assert!(
            matches!(got.last(), Some(ServerMessage::Error(e)) if e.code == ErrorCode::BadFrame),
            "{bytes:?} -> {got:?}"
        );
    }
}

#[test]
fn recoverable_bad_messages_get_their_code_and_the_connection_stays_usable() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "alice");
    let (mut b, _) = Raw::login(addr, "bob");
    let no_type: BTreeMap<&str, &str> = [("text", "hi")].into();
    let type_not_string: BTreeMap<&str, u32> = [("type", 5)].into();
    #[derive(serde::Serialize)]
    struct WrongField {
        r#type: &'static str,
        text: u32,
    }
    #[derive(serde::Serialize)]
    struct Unknown {
        r#type: &'static str,
    }
    let cases: Vec<(Vec<u8>, ErrorCode)> = vec![
        (frame_of(&no_type), ErrorCode::BadMessage),
        (frame_of(&type_not_string), ErrorCode::BadMessage),
        (
            frame_of(&WrongField {
                r#type: "chat",
                text: 3,
            }),
            ErrorCode::BadMessage,
        ),
        (
            frame_of(&Unknown { r#type: "teleport" }),
            ErrorCode::UnknownType,
        ),
        // {"type":"chat","text":<invalid UTF-8>}
        (
            frame_of_body(&[
                0x82, 0xa4, b't', b'y', b'p', b'e', 0xa4, b'c', b'h', b'a', b't', 0xa4, b't', b'e',
                b'x', b't', 0xa2, 0xc3, 0x28,
            ]),
            ErrorCode::InvalidUtf8,
        ),
    ];
    for (bytes, code) in cases {
        a.send_bytes(&bytes);
        assert_eq!(a.expect_error(), code);
        assert!(a.is_alive(9), "still connected after {code}");
    }
    bystander_unaffected(&mut b, &mut a, "alice is fine");
}

#[test]
fn unknown_fields_are_ignored() {
    let server = start(test_config());
    let (mut a, _) = Raw::login(server.local_addr(), "alice");
    #[derive(serde::Serialize)]
    struct Extra {
        r#type: &'static str,
        text: &'static str,
        colour: &'static str,
        nested: Vec<u8>,
    }
    a.send_bytes(&frame_of(&Extra {
        r#type: "chat",
        text: "with extras",
        colour: "blue",
        nested: vec![1, 2],
    }));
    a.until(|m| matches!(m, ServerMessage::Chat(c) if c.text == "with extras"));
}

#[test]
fn a_frozen_client_is_removed_by_the_heartbeat_and_the_room_is_told() {
    let config = ServerConfig {
        heartbeat_ms: 100,
        ..test_config()
    };
    let server = start(config);
    let addr = server.local_addr();
    // A live client built on the client API answers pings by itself.
    let live = Client::connect_plain(addr, "live").expect("live");
    let (mut watcher, _) = Raw::login(addr, "watcher");
    let (_frozen, wf) = Raw::login(addr, "frozen"); // never reads or writes again
    let start = Instant::now();
    let reason = watcher.until_left(wf.session);
    let waited = start.elapsed();
    assert_eq!(reason, LeaveReason::Timeout);
    // Idle timeout is 300 ms, checked every 25 ms: generous bounds for a
    // loaded machine, but proof it was the heartbeat and not something else.
    assert!(
        waited >= Duration::from_millis(250),
        "removed too early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "removed too late: {waited:?}"
    );
    // The live client and the watcher (which answers pings) are still there.
    let users = server.handle().users().expect("users");
    assert!(users.iter().any(|u| u.session == live.welcome().session));
    assert_eq!(users.len(), 2);
}

#[test]
fn a_client_that_never_says_hello_is_dropped_after_the_handshake_timeout() {
    let config = ServerConfig {
        handshake_timeout_ms: 100,
        ..test_config()
    };
    let server = start(config);
    let mut c = Raw::connect(server.local_addr());
    let got = c.until_closed();
    assert!(
        matches!(got.last(), Some(ServerMessage::Error(e)) if e.code == ErrorCode::HandshakeTimeout),
        "{got:?}"
    );
}

#[test]
fn a_reader_that_stops_reading_is_cut_off_as_slow_while_others_keep_up() {
    let config = ServerConfig {
        max_output_bytes: 256 * 1024,
        max_frame: 64 * 1024,
        rate_per_sec: 1e6,
        rate_burst: 1e6,
        ..test_config()
    };
    let server = start(config);
    let addr = server.local_addr();
    let (mut talker, _) = Raw::login(addr, "talker");
    let (mut reader, _) = Raw::login(addr, "reader");
    let (slow, ws) = Raw::login(addr, "slow");
    // The slow client never reads; shrink its receive window.
    let text = "x".repeat(4000);
    let mut sent = 0;
    let mut slow_left = false;
    let mut received = 0;
    // Keep talking until the server gives up on the slow reader; the
    // reader must receive everything in order meanwhile.
    while !slow_left {
        assert!(sent < 20_000, "slow reader never cut off");
        talker.chat(&text);
        sent += 1;
        while received < sent || !slow_left {
            match reader.try_next(Duration::from_millis(if received < sent {
                5000
            } else {
                0
            })) {
                Some(Some(ServerMessage::Chat(_))) => received += 1,
                Some(Some(ServerMessage::Left(l))) if l.session == ws.session => {
                    assert_eq!(l.reason, LeaveReason::Slow);
                    slow_left = true;
                }
                Some(Some(ServerMessage::Presence(p)))
                    if p.left.iter().any(|d| d.session == ws.session) =>
                {
                    assert!(p.left.iter().any(|d| d.reason == LeaveReason::Slow));
                    slow_left = true;
                }
                Some(Some(_)) => {}
                Some(None) => panic!("reader disconnected"),
                None if received < sent => panic!("reader stalled at {received}/{sent}"),
                None => break,
            }
        }
    }
    assert_eq!(received, sent, "the reader got every message");
    drop(slow);
    bystander_unaffected(&mut reader, &mut talker, "after slow");
}

#[test]
fn a_half_closed_connection_leaves_the_room() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (mut watcher, _) = Raw::login(addr, "watcher");
    let (half, wh) = Raw::login(addr, "half");
    half.stream.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(watcher.until_left(wh.session), LeaveReason::Quit);
}

#[test]
fn connections_over_the_limit_get_server_full() {
    let config = ServerConfig {
        max_clients: 2,
        ..test_config()
    };
    let server = start(config);
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "a");
    let (_b, _) = Raw::login(addr, "b");
    let mut c = Raw::connect(addr);
    let got = c.until_closed();
    assert!(
        matches!(got.last(), Some(ServerMessage::Error(e)) if e.code == ErrorCode::ServerFull),
        "{got:?}"
    );
    assert!(a.is_alive(1));
    assert_eq!(server.handle().stats().expect("stats").refused_full, 1);
}

#[test]
fn shutdown_tells_every_member_and_closes_promptly() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (mut a, wa) = Raw::login(addr, "alice");
    let (mut b, wb) = Raw::login(addr, "bob");
    let started = Instant::now();
    server.stop().expect("clean stop");
    assert!(started.elapsed() < Duration::from_secs(2));
    for (c, w) in [(&mut a, &wa), (&mut b, &wb)] {
        let got = c.until_closed();
        assert!(
            got.iter().any(|m| matches!(m, ServerMessage::Left(l)
                if l.session == w.session && l.reason == LeaveReason::Shutdown)),
            "{got:?}"
        );
    }
    // The port is released.
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn a_peer_writing_a_frame_one_byte_at_a_time_is_understood() {
    let server = start(test_config());
    let mut c = Raw::connect(server.local_addr());
    let hello = chatcore::protocol::encode_client(&chatcore::protocol::ClientMessage::Hello(
        chatcore::protocol::Hello {
            password: None,
            token: None,
            version: chatcore::protocol::PROTOCOL_VERSION,
            name: "drip".into(),
            last_seen: None,
        },
    ));
    for byte in hello.iter() {
        c.stream.write_all(&[*byte]).expect("write");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(matches!(c.next(), Some(ServerMessage::Welcome(w)) if w.name == "drip"));
}
