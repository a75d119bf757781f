//! The decoder's section 3 rules at the server, over real loopback sockets:
//! a *bin* where a *str* is required and an integer `kind` are refused with
//! `bad_message` (and nothing reaches the room), while a deeply nested
//! unknown field is ignored and the message is delivered; a key that is not
//! a *str* is refused too.

mod common;

use chatcore::protocol::{ErrorCode, ServerMessage};
use common::{Raw, bin8, fixstr, frame_of_body, map, start, test_config};

#[test]
fn a_chat_whose_text_is_a_bin_is_refused_with_bad_message_and_reaches_nobody() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (mut alice, _) = Raw::login(addr, "alice");
    let (mut bob, _) = Raw::login(addr, "bob");
    alice.send_bytes(&frame_of_body(&map(&[
        ("type", fixstr("chat")),
        ("text", bin8(b"sneaky")),
    ])));
    assert_eq!(alice.expect_error(), ErrorCode::BadMessage);
    // The connection stays usable, and the next chat is the first bob sees.
    alice.chat("plain");
    assert_eq!(bob.next_chat().text, "plain");
    server.stop().expect("stop");
}

#[test]
fn a_file_offer_with_an_integer_kind_is_refused_with_bad_message_not_relayed_as_voice() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (mut alice, _) = Raw::login(addr, "alice");
    alice.send_bytes(&frame_of_body(&map(&[
        ("type", fixstr("file_offer")),
        ("name", fixstr("a.txt")),
        ("size", vec![0x01]),
        ("sha256", bin8(&[0u8; 32])),
        ("kind", vec![0x01]),
        ("ref", vec![0x07]),
    ])));
    assert_eq!(alice.expect_error(), ErrorCode::BadMessage);
    // No upload was opened for it: nothing but the pong answers a ping.
    alice.ping(99);
    loop {
        match alice.next() {
            Some(ServerMessage::Pong(p)) if p.seq == 99 => break,
            Some(ServerMessage::FileUpload(u)) => panic!("offer accepted: {u:?}"),
            Some(_) => {}
            None => panic!("connection closed"),
        }
    }
    server.stop().expect("stop");
}

#[test]
fn a_chat_with_an_unknown_field_nested_100_000_deep_is_delivered() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (mut alice, _) = Raw::login(addr, "alice");
    let (mut bob, _) = Raw::login(addr, "bob");
    let mut deep = vec![0x91u8; 100_000];
    deep.push(0xc0);
    alice.send_bytes(&frame_of_body(&map(&[
        ("type", fixstr("chat")),
        ("text", fixstr("deep hello")),
        ("x", deep),
    ])));
    assert_eq!(bob.next_chat().text, "deep hello");
    server.stop().expect("stop");
}

#[test]
fn a_chat_with_an_integer_key_is_refused_with_bad_message_and_reaches_nobody() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (mut alice, _) = Raw::login(addr, "alice");
    let (mut bob, _) = Raw::login(addr, "bob");
    // {0:"chat","text":"numbered"}: key 0 must not stand for `type`.
    let mut body = vec![0x82, 0x00];
    body.extend_from_slice(&fixstr("chat"));
    body.extend_from_slice(&fixstr("text"));
    body.extend_from_slice(&fixstr("numbered"));
    alice.send_bytes(&frame_of_body(&body));
    assert_eq!(alice.expect_error(), ErrorCode::BadMessage);
    alice.chat("plain");
    assert_eq!(bob.next_chat().text, "plain");
    server.stop().expect("stop");
}
