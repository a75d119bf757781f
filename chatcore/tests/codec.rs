//! The public codec API (`chatcore::protocol`) against docs/protocol.md,
//! without sockets: framing, split and coalesced input, every error and its
//! code, forward compatibility, and round trips of every message.

mod common;

use bytes::{BufMut, BytesMut};
use chatcore::protocol::wellformed::Malformed;
use chatcore::protocol::{
    Chat, ChatSend, ClientMessage, DEFAULT_MAX_FRAME, DecodeError, Departure, ErrorCode, ErrorMsg,
    FrameError, HEADER_LEN, Hello, Joined, LeaveReason, Left, MessageError, PROTOCOL_VERSION,
    Presence, Seq, ServerMessage, UserInfo, Welcome, decode_client, decode_server, encode_client,
    encode_server, frame_len,
};
use common::{bin8, fixstr, frame_of, frame_of_body, map};
use serde::Serialize;

const MAX: u32 = DEFAULT_MAX_FRAME;
const TS: i64 = 1_767_225_600_000;

// ---------------------------------------------------------------- helpers

fn buf_of(bytes: &[u8]) -> BytesMut {
    BytesMut::from(bytes)
}

/// The error code the server answers a decode error with: the
/// `MessageError`'s own `.code()`, and for framing errors the mapping
/// docs/protocol.md gives (zero length -> `bad_frame`, too large ->
/// `frame_too_large`), which is what the reactor sends.
fn code_of(e: &DecodeError) -> ErrorCode {
    match e {
        DecodeError::Message(m) => m.code(),
        DecodeError::Frame(FrameError::Empty) => ErrorCode::BadFrame,
        DecodeError::Frame(FrameError::TooLarge { .. }) => ErrorCode::FrameTooLarge,
    }
}

/// Decodes one client frame that must be refused; returns the error.
fn client_error(bytes: &[u8]) -> DecodeError {
    let mut buf = buf_of(bytes);
    match decode_client(&mut buf, MAX) {
        Err(e) => e,
        Ok(m) => panic!("expected an error for {bytes:02x?}, got {m:?}"),
    }
}

/// Decodes one client frame whose content must be refused with `code`.
fn assert_client_refused(bytes: &[u8], code: ErrorCode) -> MessageError {
    match client_error(bytes) {
        DecodeError::Message(m) => {
            assert_eq!(m.code(), code, "{m}");
            m
        }
        other => panic!("expected a message error, got {other:?}"),
    }
}

fn user(name: &str, session: u64) -> UserInfo {
    UserInfo {
        name: name.into(),
        session,
    }
}

fn server_chat(id: u64, from: &str, session: u64, text: &str, reference: Option<u64>) -> Chat {
    Chat {
        room: None,
        id,
        from: from.into(),
        session,
        text: text.into(),
        ts: TS + i64::try_from(id).expect("small id"),
        reference,
    }
}

/// A realistic client session, every client message type included.
fn client_sequence() -> Vec<ClientMessage> {
    vec![
        ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: PROTOCOL_VERSION,
            name: "alice".into(),
            last_seen: None,
        }),
        ClientMessage::Chat(ChatSend {
            room: None,
            text: "hi all".into(),
            reference: Some(1),
        }),
        ClientMessage::Chat(ChatSend {
            room: None,
            text: "grüße, 世界 👋".into(),
            reference: None,
        }),
        ClientMessage::Pong(Seq { seq: 3 }),
        ClientMessage::Ping(Seq { seq: u64::MAX }),
        ClientMessage::Chat(ChatSend {
            room: None,
            text: "x".repeat(300),
            reference: Some(u64::MAX),
        }),
        ClientMessage::Bye,
    ]
}

/// A realistic server stream, every server message type included.
fn server_sequence() -> Vec<ServerMessage> {
    vec![
        ServerMessage::Error(ErrorMsg {
            room: None,
            code: ErrorCode::NameTooLong,
            message: "the name is longer than 32 characters".into(),
            reference: None,
            transfer: None,
        }),
        ServerMessage::Welcome(Welcome {
            registered: false,
            token: None,
            version: PROTOCOL_VERSION,
            name: "alice(1)".into(),
            session: 7,
            users: vec![user("alice", 2), user("bob", 5), user("alice(1)", 7)],
            history: vec![
                server_chat(40, "bob", 5, "earlier", None),
                server_chat(41, "server", 0, "maintenance at noon", None),
            ],
            heartbeat_ms: 10_000,
            max_frame: MAX,
            max_text: 4096,
        }),
        ServerMessage::Joined(Joined {
            name: "alice(1)".into(),
            session: 7,
            ts: TS,
        }),
        ServerMessage::Chat(server_chat(42, "alice(1)", 7, "hi all", Some(1))),
        ServerMessage::Chat(server_chat(43, "bob", 5, "hello 👋", None)),
        ServerMessage::Presence(Presence {
            room: None,
            ts: TS + 1,
            joined: vec![user("carol", 8), user("dave", 9)],
            left: vec![
                Departure {
                    name: "carol".into(),
                    session: 8,
                    reason: LeaveReason::Quit,
                },
                Departure {
                    name: "bob".into(),
                    session: 5,
                    reason: LeaveReason::Timeout,
                },
            ],
        }),
        ServerMessage::Ping(Seq { seq: 12 }),
        ServerMessage::Pong(Seq { seq: 3 }),
        ServerMessage::Error(ErrorMsg {
            room: None,
            code: ErrorCode::RateLimited,
            message: "too many messages; slow down".into(),
            reference: Some(9),
            transfer: None,
        }),
        ServerMessage::Left(Left {
            name: "alice(1)".into(),
            session: 7,
            ts: TS + 2,
            reason: LeaveReason::Kicked,
        }),
    ]
}

fn encode_all_client(msgs: &[ClientMessage]) -> Vec<u8> {
    msgs.iter()
        .flat_map(|m| encode_client(m).to_vec())
        .collect()
}

fn encode_all_server(msgs: &[ServerMessage]) -> Vec<u8> {
    msgs.iter()
        .flat_map(|m| encode_server(m).to_vec())
        .collect()
}

/// Decodes every complete client message in `buf`; panics on errors.
fn drain_client(buf: &mut BytesMut, out: &mut Vec<ClientMessage>) {
    while let Some(m) = decode_client(buf, MAX).expect("valid stream") {
        out.push(m);
    }
}

fn drain_server(buf: &mut BytesMut, out: &mut Vec<ServerMessage>) {
    while let Some(m) = decode_server(buf, MAX).expect("valid stream") {
        out.push(m);
    }
}

// ------------------------------------------------------ framing and splits

#[test]
fn every_frame_is_a_big_endian_length_then_exactly_that_many_body_bytes() {
    for frame in client_sequence()
        .iter()
        .map(encode_client)
        .chain(server_sequence().iter().map(encode_server))
    {
        let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        assert_eq!(len, frame.len() - HEADER_LEN);
        assert_eq!(frame_len(&frame, MAX), Ok(Some(frame.len())));
        // The body is a MessagePack map whose first key is "type".
        assert!(matches!(frame[4], 0x80..=0x8f | 0xde | 0xdf));
        assert_eq!(&frame[5..10], b"\xa4type");
    }
}

#[test]
fn each_client_frame_split_at_every_offset_is_none_until_complete_then_the_same_message() {
    for msg in client_sequence() {
        let frame = encode_client(&msg);
        for cut in 0..=frame.len() {
            let mut buf = buf_of(&frame[..cut]);
            if cut < frame.len() {
                assert_eq!(decode_client(&mut buf, MAX), Ok(None), "cut at {cut}");
                assert_eq!(buf.len(), cut, "an incomplete frame is left in the buffer");
            }
            buf.extend_from_slice(&frame[cut..]);
            assert_eq!(decode_client(&mut buf, MAX), Ok(Some(msg.clone())));
            assert!(buf.is_empty(), "the whole frame was consumed");
            assert_eq!(decode_client(&mut buf, MAX), Ok(None));
        }
    }
}

#[test]
fn each_server_frame_split_at_every_offset_is_none_until_complete_then_the_same_message() {
    for msg in server_sequence() {
        let frame = encode_server(&msg);
        for cut in 0..=frame.len() {
            let mut buf = buf_of(&frame[..cut]);
            if cut < frame.len() {
                assert_eq!(decode_server(&mut buf, MAX), Ok(None), "cut at {cut}");
                assert_eq!(buf.len(), cut);
            }
            buf.extend_from_slice(&frame[cut..]);
            assert_eq!(decode_server(&mut buf, MAX), Ok(Some(msg.clone())));
            assert!(buf.is_empty());
        }
    }
}

#[test]
fn a_whole_client_stream_split_in_two_at_every_offset_decodes_to_the_same_sequence() {
    let msgs = client_sequence();
    let stream = encode_all_client(&msgs);
    for cut in 0..=stream.len() {
        let mut buf = buf_of(&stream[..cut]);
        let mut got = Vec::new();
        drain_client(&mut buf, &mut got);
        buf.extend_from_slice(&stream[cut..]);
        drain_client(&mut buf, &mut got);
        assert_eq!(got, msgs, "cut at {cut}");
        assert!(buf.is_empty());
    }
}

#[test]
fn a_whole_server_stream_split_in_two_at_every_offset_decodes_to_the_same_sequence() {
    let msgs = server_sequence();
    let stream = encode_all_server(&msgs);
    for cut in 0..=stream.len() {
        let mut buf = buf_of(&stream[..cut]);
        let mut got = Vec::new();
        drain_server(&mut buf, &mut got);
        buf.extend_from_slice(&stream[cut..]);
        drain_server(&mut buf, &mut got);
        assert_eq!(got, msgs, "cut at {cut}");
        assert!(buf.is_empty());
    }
}

#[test]
fn many_frames_coalesced_in_one_buffer_decode_one_per_call_in_order() {
    let msgs: Vec<ServerMessage> = server_sequence().into_iter().cycle().take(500).collect();
    let mut buf = buf_of(&encode_all_server(&msgs));
    for (i, want) in msgs.iter().enumerate() {
        assert_eq!(
            decode_server(&mut buf, MAX).expect("valid").as_ref(),
            Some(want),
            "message {i}"
        );
    }
    assert_eq!(decode_server(&mut buf, MAX), Ok(None));
    assert!(buf.is_empty());

    let msgs = client_sequence();
    let mut buf = buf_of(&encode_all_client(&msgs));
    let mut got = Vec::new();
    drain_client(&mut buf, &mut got);
    assert_eq!(got, msgs);
}

#[test]
fn a_stream_fed_one_byte_at_a_time_decodes_each_message_exactly_when_its_last_byte_arrives() {
    let msgs = server_sequence();
    let ends: Vec<usize> = msgs
        .iter()
        .scan(0, |end, m| {
            *end += encode_server(m).len();
            Some(*end)
        })
        .collect();
    let stream = encode_all_server(&msgs);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for (i, byte) in stream.iter().enumerate() {
        buf.put_u8(*byte);
        match decode_server(&mut buf, MAX).expect("valid") {
            Some(m) => {
                assert!(ends.contains(&(i + 1)), "a message completed early at {i}");
                got.push(m);
            }
            None => assert!(!ends.contains(&(i + 1)), "a message was missed at {i}"),
        }
    }
    assert_eq!(got, msgs);

    let msgs = client_sequence();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for byte in encode_all_client(&msgs) {
        buf.put_u8(byte);
        drain_client(&mut buf, &mut got);
    }
    assert_eq!(got, msgs);
}

#[test]
fn fewer_than_four_header_bytes_need_more_input_and_are_not_consumed() {
    for n in 0..HEADER_LEN {
        let mut buf = buf_of(&[0u8; 3][..n]);
        assert_eq!(frame_len(&buf, MAX), Ok(None));
        assert_eq!(decode_client(&mut buf, MAX), Ok(None));
        assert_eq!(buf.len(), n);
    }
}

// ---------------------------------------------------------- framing errors

#[test]
fn a_zero_length_prefix_is_a_frame_error_answered_with_bad_frame() {
    let err = client_error(&[0, 0, 0, 0]);
    assert_eq!(err, DecodeError::Frame(FrameError::Empty));
    assert_eq!(code_of(&err), ErrorCode::BadFrame);
    assert!(code_of(&err).is_fatal());
    assert_eq!(frame_len(&[0, 0, 0, 0], MAX), Err(FrameError::Empty));
    let mut buf = buf_of(&[0, 0, 0, 0]);
    assert_eq!(
        decode_server(&mut buf, MAX),
        Err(DecodeError::Frame(FrameError::Empty))
    );
}

#[test]
fn a_length_over_max_frame_is_refused_from_the_four_header_bytes_alone() {
    let over = MAX + 1;
    // Only the header is there: no body byte is awaited or allocated for.
    let header = over.to_be_bytes();
    let err = client_error(&header);
    assert_eq!(
        err,
        DecodeError::Frame(FrameError::TooLarge {
            len: over,
            max: MAX
        })
    );
    assert_eq!(code_of(&err), ErrorCode::FrameTooLarge);
    assert!(code_of(&err).is_fatal());
    assert_eq!(
        frame_len(&header, MAX),
        Err(FrameError::TooLarge {
            len: over,
            max: MAX
        })
    );
    let mut buf = buf_of(&u32::MAX.to_be_bytes());
    assert!(matches!(
        decode_server(&mut buf, MAX),
        Err(DecodeError::Frame(FrameError::TooLarge {
            len: u32::MAX,
            ..
        }))
    ));
}

#[test]
fn a_length_of_exactly_max_frame_is_allowed_and_waits_for_its_body() {
    let header = MAX.to_be_bytes();
    assert_eq!(frame_len(&header, MAX), Ok(None));
    let mut buf = buf_of(&header);
    assert_eq!(decode_client(&mut buf, MAX), Ok(None));
}

#[test]
fn the_max_frame_argument_is_the_limit_for_real_frames_too() {
    let frame = encode_client(&ClientMessage::Chat(ChatSend {
        room: None,
        text: "a text long enough".into(),
        reference: None,
    }));
    let body = u32::try_from(frame.len() - HEADER_LEN).expect("small");
    let mut buf = buf_of(&frame);
    assert!(decode_client(&mut buf, body).expect("fits").is_some());
    let mut buf = buf_of(&frame);
    assert_eq!(
        decode_client(&mut buf, body - 1),
        Err(DecodeError::Frame(FrameError::TooLarge {
            len: body,
            max: body - 1
        }))
    );
}

#[test]
fn an_http_request_as_garbage_reads_as_a_huge_length_and_gets_frame_too_large() {
    let err = client_error(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    // "GET " = 0x47455420 as a big-endian length.
    assert_eq!(
        err,
        DecodeError::Frame(FrameError::TooLarge {
            len: 0x4745_5420,
            max: MAX
        })
    );
    assert_eq!(code_of(&err), ErrorCode::FrameTooLarge);
}

#[test]
fn garbage_with_a_small_length_is_a_fatal_bad_frame() {
    let m = assert_client_refused(&frame_of_body(&[0xff, 0xfe, 0x00]), ErrorCode::BadFrame);
    assert_eq!(m, MessageError::BadFrame(Malformed::NotAMap));
    assert!(m.code().is_fatal());
}

// -------------------------------------------------- well-formedness errors

#[test]
fn a_body_that_is_an_array_an_integer_or_a_string_is_bad_frame_not_a_map() {
    for bytes in [
        frame_of(&vec![1u8, 2, 3]),
        frame_of(&42u32),
        frame_of(&"hello"),
        frame_of(&()),
    ] {
        let m = assert_client_refused(&bytes, ErrorCode::BadFrame);
        assert_eq!(
            m,
            MessageError::BadFrame(Malformed::NotAMap),
            "{bytes:02x?}"
        );
    }
}

#[test]
fn bytes_after_the_map_are_bad_frame_trailing() {
    let mut body = rmp_serde::to_vec_named(&ClientMessage::Bye).expect("ser");
    body.extend_from_slice(&[0x01, 0x02]);
    let m = assert_client_refused(&frame_of_body(&body), ErrorCode::BadFrame);
    assert_eq!(m, MessageError::BadFrame(Malformed::Trailing(2)));
    // Two maps in one frame are also trailing bytes.
    let mut two = rmp_serde::to_vec_named(&ClientMessage::Bye).expect("ser");
    two.extend_from_slice(&two.clone());
    let m = assert_client_refused(&frame_of_body(&two), ErrorCode::BadFrame);
    assert!(matches!(m, MessageError::BadFrame(Malformed::Trailing(_))));
}

#[test]
fn a_body_ending_inside_a_value_is_bad_frame_truncated() {
    // {"type": "bye" with the string cut short.
    let m = assert_client_refused(
        &frame_of_body(&[0x81, 0xa4, b't', b'y', b'p', b'e', 0xa3, b'b', b'y']),
        ErrorCode::BadFrame,
    );
    assert_eq!(m, MessageError::BadFrame(Malformed::Truncated));
}

#[test]
fn the_reserved_marker_0xc1_anywhere_is_bad_frame() {
    let m = assert_client_refused(
        &frame_of_body(&[
            0x82, 0xa4, b't', b'y', b'p', b'e', 0xa3, b'b', b'y', b'e', 0xa1, b'x', 0xc1,
        ]),
        ErrorCode::BadFrame,
    );
    assert_eq!(m, MessageError::BadFrame(Malformed::ReservedMarker));
}

// ------------------------------------------------------- message errors

#[derive(Serialize)]
struct TypeOnly<T> {
    r#type: T,
}

#[test]
fn a_map_without_type_is_bad_message() {
    #[derive(Serialize)]
    struct NoType {
        text: &'static str,
    }
    let m = assert_client_refused(&frame_of(&NoType { text: "hi" }), ErrorCode::BadMessage);
    assert_eq!(m, MessageError::MissingType);
    assert_client_refused(&frame_of_body(&[0x80]), ErrorCode::BadMessage);
}

#[test]
fn a_type_that_is_not_a_string_is_bad_message() {
    for bytes in [
        frame_of(&TypeOnly { r#type: 5u32 }),
        frame_of(&TypeOnly { r#type: true }),
        frame_of(&TypeOnly {
            r#type: vec!["chat"],
        }),
        frame_of(&TypeOnly {
            r#type: Option::<&str>::None,
        }),
    ] {
        let m = assert_client_refused(&bytes, ErrorCode::BadMessage);
        assert_eq!(m, MessageError::MissingType, "{bytes:02x?}");
    }
}

#[test]
fn fields_of_the_wrong_type_are_bad_message() {
    #[derive(Serialize)]
    struct HelloVersionString {
        r#type: &'static str,
        version: &'static str,
        name: &'static str,
    }
    #[derive(Serialize)]
    struct ChatTextInt {
        r#type: &'static str,
        text: u32,
    }
    #[derive(Serialize)]
    struct ChatRefNegative {
        r#type: &'static str,
        text: &'static str,
        r#ref: i32,
    }
    #[derive(Serialize)]
    struct PingSeqString {
        r#type: &'static str,
        seq: &'static str,
    }
    let cases = [
        (
            frame_of(&HelloVersionString {
                r#type: "hello",
                version: "1",
                name: "alice",
            }),
            "hello",
        ),
        (
            frame_of(&ChatTextInt {
                r#type: "chat",
                text: 3,
            }),
            "chat",
        ),
        (
            frame_of(&ChatRefNegative {
                r#type: "chat",
                text: "hi",
                r#ref: -1,
            }),
            "chat",
        ),
        (
            frame_of(&PingSeqString {
                r#type: "ping",
                seq: "1",
            }),
            "ping",
        ),
    ];
    for (bytes, kind) in cases {
        let m = assert_client_refused(&bytes, ErrorCode::BadMessage);
        assert!(
            matches!(&m, MessageError::BadField { kind: k, .. } if *k == kind),
            "{m:?}"
        );
    }
}

#[test]
fn a_version_that_does_not_fit_u32_is_bad_message() {
    #[derive(Serialize)]
    struct BigVersion {
        r#type: &'static str,
        version: u64,
        name: &'static str,
    }
    assert_client_refused(
        &frame_of(&BigVersion {
            r#type: "hello",
            version: u64::from(u32::MAX) + 1,
            name: "a",
        }),
        ErrorCode::BadMessage,
    );
}

#[test]
fn missing_required_fields_are_bad_message() {
    #[derive(Serialize)]
    struct HelloNoName {
        r#type: &'static str,
        version: u32,
    }
    let m = assert_client_refused(
        &frame_of(&HelloNoName {
            r#type: "hello",
            version: 1,
        }),
        ErrorCode::BadMessage,
    );
    assert!(matches!(m, MessageError::BadField { kind: "hello", .. }));
    for ty in ["chat", "ping", "pong"] {
        let m = assert_client_refused(&frame_of(&TypeOnly { r#type: ty }), ErrorCode::BadMessage);
        assert!(matches!(m, MessageError::BadField { kind, .. } if kind == ty));
    }
    // Server side: a welcome without history.
    #[derive(Serialize)]
    struct ShortWelcome {
        r#type: &'static str,
        version: u32,
        name: &'static str,
        session: u64,
        users: Vec<UserInfo>,
        heartbeat_ms: u32,
        max_frame: u32,
    }
    let mut buf = buf_of(&frame_of(&ShortWelcome {
        r#type: "welcome",
        version: 1,
        name: "a",
        session: 1,
        users: vec![],
        heartbeat_ms: 1,
        max_frame: 1,
    }));
    assert!(matches!(
        decode_server(&mut buf, MAX),
        Err(DecodeError::Message(MessageError::BadField {
            kind: "welcome",
            ..
        }))
    ));
}

#[test]
fn an_unknown_type_is_unknown_type_on_both_sides() {
    let m = assert_client_refused(
        &frame_of(&TypeOnly { r#type: "teleport" }),
        ErrorCode::UnknownType,
    );
    assert_eq!(m, MessageError::UnknownType("teleport".into()));
    // Types are case-sensitive, and each direction has its own set.
    assert_client_refused(
        &frame_of(&TypeOnly { r#type: "Bye" }),
        ErrorCode::UnknownType,
    );
    assert_client_refused(
        &frame_of(&TypeOnly { r#type: "welcome" }),
        ErrorCode::UnknownType,
    );
    let mut buf = buf_of(&frame_of(&TypeOnly { r#type: "hello" }));
    assert_eq!(
        decode_server(&mut buf, MAX),
        Err(DecodeError::Message(MessageError::UnknownType(
            "hello".into()
        )))
    );
}

#[test]
fn invalid_utf8_in_any_string_is_invalid_utf8_and_not_fatal() {
    let bodies: [&[u8]; 4] = [
        // {"type":"chat","text":"\xc3\x28"} (invalid in a value)
        &[
            0x82, 0xa4, b't', b'y', b'p', b'e', 0xa4, b'c', b'h', b'a', b't', 0xa4, b't', b'e',
            b'x', b't', 0xa2, 0xc3, 0x28,
        ],
        // {"type":"\xff"} (invalid in the type itself)
        &[0x81, 0xa4, b't', b'y', b'p', b'e', 0xa1, 0xff],
        // {"type":"bye","\xfe":1} (invalid in a key)
        &[
            0x82, 0xa4, b't', b'y', b'p', b'e', 0xa3, b'b', b'y', b'e', 0xa1, 0xfe, 0x01,
        ],
        // {"type":"bye","x":["ok","\xed\xa0\x80"]} (a surrogate, nested in an unknown key)
        &[
            0x82, 0xa4, b't', b'y', b'p', b'e', 0xa3, b'b', b'y', b'e', 0xa1, b'x', 0x92, 0xa2,
            b'o', b'k', 0xa3, 0xed, 0xa0, 0x80,
        ],
    ];
    for body in bodies {
        let m = assert_client_refused(&frame_of_body(body), ErrorCode::InvalidUtf8);
        assert_eq!(m, MessageError::InvalidUtf8);
        assert!(!m.code().is_fatal());
    }
}

#[test]
fn structure_errors_win_over_invalid_utf8() {
    // Invalid UTF-8 and trailing bytes: the frame is not well formed at all.
    let body = [0x81, 0xa4, b't', b'y', b'p', b'e', 0xa1, 0xff, 0x00];
    let m = assert_client_refused(&frame_of_body(&body), ErrorCode::BadFrame);
    assert_eq!(m, MessageError::BadFrame(Malformed::Trailing(1)));
}

#[test]
fn after_each_non_fatal_message_error_the_next_frame_in_the_same_buffer_still_decodes() {
    #[derive(Serialize)]
    struct ChatTextInt {
        r#type: &'static str,
        text: u32,
    }
    let bad_frames: Vec<(Vec<u8>, ErrorCode)> = vec![
        (frame_of(&TypeOnly { r#type: 5u32 }), ErrorCode::BadMessage),
        (
            frame_of(&ChatTextInt {
                r#type: "chat",
                text: 1,
            }),
            ErrorCode::BadMessage,
        ),
        (
            frame_of(&TypeOnly { r#type: "teleport" }),
            ErrorCode::UnknownType,
        ),
        (
            frame_of_body(&[0x81, 0xa4, b't', b'y', b'p', b'e', 0xa1, 0xff]),
            ErrorCode::InvalidUtf8,
        ),
    ];
    let good = client_sequence();
    let mut stream = Vec::new();
    for (i, (bad, _)) in bad_frames.iter().enumerate() {
        stream.extend_from_slice(bad);
        stream.extend_from_slice(&encode_client(&good[i]));
    }
    let mut buf = buf_of(&stream);
    for (i, (_, code)) in bad_frames.iter().enumerate() {
        match decode_client(&mut buf, MAX) {
            Err(DecodeError::Message(m)) => {
                assert_eq!(m.code(), *code);
                assert!(!code.is_fatal());
            }
            other => panic!("frame {i}: expected {code}, got {other:?}"),
        }
        assert_eq!(decode_client(&mut buf, MAX), Ok(Some(good[i].clone())));
    }
    assert!(buf.is_empty());
}

#[test]
fn a_fatal_bad_frame_body_is_still_consumed_whole_by_the_decoder() {
    // The server closes the connection after bad_frame, but the codec itself
    // has consumed exactly that frame: what follows is the next frame.
    let mut stream = frame_of(&vec![1, 2, 3]);
    stream.extend_from_slice(&encode_client(&ClientMessage::Bye));
    let mut buf = buf_of(&stream);
    assert!(matches!(
        decode_client(&mut buf, MAX),
        Err(DecodeError::Message(MessageError::BadFrame(_)))
    ));
    assert_eq!(decode_client(&mut buf, MAX), Ok(Some(ClientMessage::Bye)));
}

// -------------------------------------------------- forward compatibility

#[test]
fn unknown_extra_keys_of_any_type_are_ignored() {
    #[derive(Serialize)]
    struct HelloPlus {
        colour: &'static str,
        r#type: &'static str,
        nested: Vec<Vec<u8>>,
        version: u32,
        name: &'static str,
        flag: Option<bool>,
    }
    let mut buf = buf_of(&frame_of(&HelloPlus {
        colour: "blue",
        r#type: "hello",
        nested: vec![vec![1, 2], vec![]],
        version: 1,
        name: "alice",
        flag: None,
    }));
    assert_eq!(
        decode_client(&mut buf, MAX),
        Ok(Some(ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: 1,
            name: "alice".into(),
            last_seen: None,
        })))
    );

    #[derive(Serialize)]
    struct PingPlus {
        r#type: &'static str,
        seq: u64,
        extra: std::collections::BTreeMap<&'static str, u8>,
    }
    let mut buf = buf_of(&frame_of(&PingPlus {
        r#type: "ping",
        seq: 4,
        extra: [("a", 1)].into(),
    }));
    assert_eq!(
        decode_server(&mut buf, MAX),
        Ok(Some(ServerMessage::Ping(Seq { seq: 4 })))
    );
}

#[test]
fn an_unknown_error_code_decodes_as_unknown() {
    #[derive(Serialize)]
    struct Err {
        r#type: &'static str,
        code: &'static str,
        message: &'static str,
        r#ref: u64,
    }
    let mut buf = buf_of(&frame_of(&Err {
        r#type: "error",
        code: "teleport_quota_exceeded",
        message: "from a newer server",
        r#ref: 4,
    }));
    assert_eq!(
        decode_server(&mut buf, MAX),
        Ok(Some(ServerMessage::Error(ErrorMsg {
            room: None,
            code: ErrorCode::Unknown,
            message: "from a newer server".into(),
            reference: Some(4),
            transfer: None,
        })))
    );
}

#[test]
fn an_unknown_leave_reason_decodes_as_unknown() {
    #[derive(Serialize)]
    struct L {
        r#type: &'static str,
        name: &'static str,
        session: u64,
        ts: i64,
        reason: &'static str,
    }
    let mut buf = buf_of(&frame_of(&L {
        r#type: "left",
        name: "bob",
        session: 2,
        ts: TS,
        reason: "exiled",
    }));
    assert_eq!(
        decode_server(&mut buf, MAX),
        Ok(Some(ServerMessage::Left(Left {
            name: "bob".into(),
            session: 2,
            ts: TS,
            reason: LeaveReason::Unknown,
        })))
    );
}

#[test]
fn optional_ref_is_left_out_when_absent_and_decodes_as_none() {
    let no_ref = encode_client(&ClientMessage::Chat(ChatSend {
        room: None,
        text: "a".into(),
        reference: None,
    }));
    assert!(!no_ref.windows(4).any(|w| w == b"\xa3ref"));
    let with_ref = encode_client(&ClientMessage::Chat(ChatSend {
        room: None,
        text: "a".into(),
        reference: Some(0),
    }));
    assert!(with_ref.windows(4).any(|w| w == b"\xa3ref"));
    let other = encode_server(&ServerMessage::Chat(server_chat(1, "b", 2, "c", None)));
    assert!(!other.windows(4).any(|w| w == b"\xa3ref"));
    let err = encode_server(&ServerMessage::Error(ErrorMsg {
        room: None,
        code: ErrorCode::Version,
        message: String::new(),
        reference: None,
        transfer: None,
    }));
    assert!(!err.windows(4).any(|w| w == b"\xa3ref"));
}

#[test]
fn a_welcome_without_max_text_still_decodes_with_max_text_zero() {
    #[derive(Serialize)]
    struct OldWelcome {
        r#type: &'static str,
        version: u32,
        name: &'static str,
        session: u64,
        users: Vec<UserInfo>,
        history: Vec<Chat>,
        heartbeat_ms: u32,
        max_frame: u32,
    }
    let mut buf = buf_of(&frame_of(&OldWelcome {
        r#type: "welcome",
        version: 1,
        name: "a",
        session: 1,
        users: vec![user("a", 1)],
        history: vec![],
        heartbeat_ms: 10_000,
        max_frame: MAX,
    }));
    match decode_server(&mut buf, MAX) {
        Ok(Some(ServerMessage::Welcome(w))) => assert_eq!(w.max_text, 0),
        other => panic!("expected a welcome, got {other:?}"),
    }
}

// ------------------------------------------------------------ round trips

/// Every code. `exhaustive` below fails to compile when a code is added to
/// the enum and not here.
const ALL_CODES: [ErrorCode; 54] = [
    ErrorCode::NameEmpty,
    ErrorCode::NameTooLong,
    ErrorCode::NameInvalid,
    ErrorCode::Version,
    ErrorCode::AlreadyLoggedIn,
    ErrorCode::JoinDenied,
    ErrorCode::NotLoggedIn,
    ErrorCode::TextEmpty,
    ErrorCode::TextTooLong,
    ErrorCode::RateLimited,
    ErrorCode::UnknownType,
    ErrorCode::BadMessage,
    ErrorCode::InvalidUtf8,
    ErrorCode::BadFrame,
    ErrorCode::FrameTooLarge,
    ErrorCode::ServerFull,
    ErrorCode::HandshakeTimeout,
    ErrorCode::Rejected,
    ErrorCode::FileNameInvalid,
    ErrorCode::FileNameTooLong,
    ErrorCode::FileTooLarge,
    ErrorCode::QuotaExceeded,
    ErrorCode::BadHash,
    ErrorCode::UnknownTransfer,
    ErrorCode::BadOffset,
    ErrorCode::SizeMismatch,
    ErrorCode::HashMismatch,
    ErrorCode::TooManyTransfers,
    ErrorCode::StorageError,
    ErrorCode::TooManyConnections,
    ErrorCode::StoreUnavailable,
    ErrorCode::HistoryLimit,
    ErrorCode::UnknownMessage,
    ErrorCode::VoiceUnavailable,
    ErrorCode::CallFull,
    ErrorCode::NotInCall,
    ErrorCode::TooManyOffers,
    ErrorCode::UploadTimeout,
    ErrorCode::AuthFailed,
    ErrorCode::AuthThrottled,
    ErrorCode::NameRegistered,
    ErrorCode::AccountRequired,
    ErrorCode::PasswordInvalid,
    ErrorCode::AccountsUnavailable,
    ErrorCode::RoomInvalid,
    ErrorCode::RoomUnknown,
    ErrorCode::NotInRoom,
    ErrorCode::TooManyRooms,
    ErrorCode::Forbidden,
    ErrorCode::NoSuchMember,
    ErrorCode::Banned,
    ErrorCode::Muted,
    ErrorCode::InviteOnly,
    ErrorCode::Unknown,
];

/// Names every variant, so a new one breaks the build until it is added to
/// [`ALL_CODES`] too.
#[allow(dead_code)]
fn exhaustive(code: ErrorCode) {
    match code {
        ErrorCode::NameEmpty
        | ErrorCode::NameTooLong
        | ErrorCode::NameInvalid
        | ErrorCode::Version
        | ErrorCode::AlreadyLoggedIn
        | ErrorCode::JoinDenied
        | ErrorCode::NotLoggedIn
        | ErrorCode::TextEmpty
        | ErrorCode::TextTooLong
        | ErrorCode::RateLimited
        | ErrorCode::RoomInvalid
        | ErrorCode::RoomUnknown
        | ErrorCode::NotInRoom
        | ErrorCode::TooManyRooms
        | ErrorCode::Forbidden
        | ErrorCode::NoSuchMember
        | ErrorCode::Banned
        | ErrorCode::Muted
        | ErrorCode::InviteOnly
        | ErrorCode::UnknownType
        | ErrorCode::BadMessage
        | ErrorCode::InvalidUtf8
        | ErrorCode::BadFrame
        | ErrorCode::FrameTooLarge
        | ErrorCode::ServerFull
        | ErrorCode::HandshakeTimeout
        | ErrorCode::Rejected
        | ErrorCode::FileNameInvalid
        | ErrorCode::FileNameTooLong
        | ErrorCode::FileTooLarge
        | ErrorCode::QuotaExceeded
        | ErrorCode::BadHash
        | ErrorCode::UnknownTransfer
        | ErrorCode::BadOffset
        | ErrorCode::SizeMismatch
        | ErrorCode::HashMismatch
        | ErrorCode::TooManyTransfers
        | ErrorCode::StorageError
        | ErrorCode::TooManyConnections
        | ErrorCode::StoreUnavailable
        | ErrorCode::HistoryLimit
        | ErrorCode::UnknownMessage
        | ErrorCode::VoiceUnavailable
        | ErrorCode::CallFull
        | ErrorCode::NotInCall
        | ErrorCode::TooManyOffers
        | ErrorCode::UploadTimeout
        | ErrorCode::AuthFailed
        | ErrorCode::AuthThrottled
        | ErrorCode::NameRegistered
        | ErrorCode::AccountRequired
        | ErrorCode::PasswordInvalid
        | ErrorCode::AccountsUnavailable
        | ErrorCode::Unknown => {}
    }
}

const ALL_REASONS: [LeaveReason; 7] = [
    LeaveReason::Quit,
    LeaveReason::Timeout,
    LeaveReason::Error,
    LeaveReason::Slow,
    LeaveReason::Kicked,
    LeaveReason::Shutdown,
    LeaveReason::Unknown,
];

fn round_trip_server(msg: &ServerMessage) {
    let mut buf = buf_of(&encode_server(msg));
    assert_eq!(
        decode_server(&mut buf, MAX).as_ref(),
        Ok(&Some(msg.clone()))
    );
    assert!(buf.is_empty());
}

fn round_trip_client(msg: &ClientMessage) {
    let mut buf = buf_of(&encode_client(msg));
    assert_eq!(
        decode_client(&mut buf, MAX).as_ref(),
        Ok(&Some(msg.clone()))
    );
    assert!(buf.is_empty());
}

#[test]
fn every_client_message_variant_round_trips() {
    for msg in client_sequence() {
        round_trip_client(&msg);
    }
    // Edge values.
    round_trip_client(&ClientMessage::Hello(Hello {
        password: None,
        token: None,
        version: u32::MAX,
        name: String::new(),
        last_seen: None,
    }));
    round_trip_client(&ClientMessage::Chat(ChatSend {
        room: None,
        text: "z".repeat(70_000),
        reference: Some(0),
    }));
    round_trip_client(&ClientMessage::Pong(Seq { seq: 0 }));
}

#[test]
fn every_server_message_variant_round_trips() {
    for msg in server_sequence() {
        round_trip_server(&msg);
    }
    // Empty lists, negative and extreme timestamps, a server message (session 0).
    round_trip_server(&ServerMessage::Presence(Presence {
        room: None,
        ts: -1,
        joined: vec![],
        left: vec![],
    }));
    round_trip_server(&ServerMessage::Welcome(Welcome {
        registered: false,
        token: None,
        version: 1,
        name: "solo".into(),
        session: u64::MAX,
        users: vec![user("solo", u64::MAX)],
        history: vec![],
        heartbeat_ms: 0,
        max_frame: u32::MAX,
        max_text: u32::MAX,
    }));
    round_trip_server(&ServerMessage::Chat(Chat {
        room: None,
        id: u64::MAX,
        from: "server".into(),
        session: 0,
        text: "broadcast".into(),
        ts: i64::MIN,
        reference: None,
    }));
    round_trip_server(&ServerMessage::Joined(Joined {
        name: "x".into(),
        session: 1,
        ts: i64::MAX,
    }));
}

#[test]
fn every_error_code_travels_as_its_snake_case_string_and_round_trips() {
    for code in ALL_CODES {
        let msg = ServerMessage::Error(ErrorMsg {
            room: None,
            code,
            message: format!("about {code}"),
            reference: Some(5),
            transfer: None,
        });
        let frame = encode_server(&msg);
        // On the wire: the key "code", then the code as a fixstr.
        let text = code.as_str().as_bytes();
        let mut needle = b"\xa4code".to_vec();
        needle.push(0xa0 | u8::try_from(text.len()).expect("short code"));
        needle.extend_from_slice(text);
        assert!(
            frame.windows(needle.len()).any(|w| w == needle),
            "{code} not found as a string in {frame:02x?}"
        );
        round_trip_server(&msg);
    }
}

#[test]
fn exactly_five_error_codes_are_fatal() {
    let fatal: Vec<ErrorCode> = ALL_CODES.into_iter().filter(|c| c.is_fatal()).collect();
    assert_eq!(
        fatal,
        vec![
            ErrorCode::BadFrame,
            ErrorCode::FrameTooLarge,
            ErrorCode::ServerFull,
            ErrorCode::HandshakeTimeout,
            ErrorCode::TooManyConnections
        ]
    );
}

#[test]
fn every_leave_reason_round_trips_in_left_and_presence() {
    for reason in ALL_REASONS {
        round_trip_server(&ServerMessage::Left(Left {
            name: "n".into(),
            session: 3,
            ts: TS,
            reason,
        }));
        let msg = ServerMessage::Presence(Presence {
            room: None,
            ts: TS,
            joined: vec![user("m", 4)],
            left: vec![Departure {
                name: "n".into(),
                session: 3,
                reason,
            }],
        });
        let frame = encode_server(&msg);
        assert!(
            frame
                .windows(reason.as_str().len())
                .any(|w| w == reason.as_str().as_bytes())
        );
        round_trip_server(&msg);
    }
}

// ----------------------------------------------- bytes of docs/protocol.md

#[test]
fn the_hello_frame_has_the_exact_bytes_shown_in_the_protocol_spec() {
    let frame = encode_client(&ClientMessage::Hello(Hello {
        password: None,
        token: None,
        version: 1,
        name: "alice".into(),
        last_seen: None,
    }));
    let mut want = vec![0x00, 0x00, 0x00, 0x20, 0x83];
    want.extend_from_slice(b"\xa4type\xa5hello\xa7version\x01\xa4name\xa5alice");
    assert_eq!(&frame[..], &want[..]);
}

#[test]
fn the_error_frame_has_the_exact_bytes_shown_in_the_protocol_spec() {
    let frame = encode_server(&ServerMessage::Error(ErrorMsg {
        room: None,
        code: ErrorCode::TextEmpty,
        message: "the text is empty".into(),
        reference: Some(8),
        transfer: None,
    }));
    let mut want = vec![0x00, 0x00, 0x00, 0x3b, 0x84];
    want.extend_from_slice(
        b"\xa4type\xa5error\xa4code\xaatext_empty\xa7message\xb1the text is empty\xa3ref\x08",
    );
    assert_eq!(&frame[..], &want[..]);
}

#[test]
fn the_server_chat_frame_has_the_exact_bytes_shown_in_the_protocol_spec() {
    let frame = encode_server(&ServerMessage::Chat(Chat {
        room: None,
        id: 42,
        from: "alice".into(),
        session: 3,
        text: "hi all".into(),
        ts: TS,
        reference: Some(7),
    }));
    let mut want = vec![0x00, 0x00, 0x00, 0x40, 0x87];
    want.extend_from_slice(b"\xa4type\xa4chat\xa2id\x2a\xa4from\xa5alice");
    want.extend_from_slice(b"\xa7session\x03\xa4text\xa6hi all");
    want.extend_from_slice(b"\xa2ts\xcf\x00\x00\x01\x9b\x76\xda\xa8\x00\xa3ref\x07");
    assert_eq!(&frame[..], &want[..]);
}

/// Random bytes, fed in random pieces, never panic the decoder, and whatever
/// it returns is one of its documented outcomes. (A cheap stand-in for a
/// fuzzer that runs in every test run.)
#[test]
fn random_garbage_in_random_pieces_never_panics_the_decoder() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for _ in 0..2_000 {
        let len = rng.random_range(0..300);
        let mut stream: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        // Often give it a plausible length prefix so bodies get parsed too.
        if rng.random_bool(0.7) && stream.len() > 4 {
            let body = (stream.len() - 4) as u32;
            stream[..4].copy_from_slice(&body.to_be_bytes());
        }
        let mut buf = BytesMut::new();
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let take = rng.random_range(1..=rest.len());
            buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            loop {
                match decode_client(&mut buf, 1024) {
                    Ok(Some(_)) | Err(DecodeError::Message(_)) => {}
                    Ok(None) => break,
                    Err(DecodeError::Frame(_)) => {
                        buf.clear();
                        break;
                    }
                }
            }
        }
    }
}

// ------------------------------- section 3 held exactly: depth, str, kind

/// `{"type":"chat","text":"hi", <key>: <value>}` as a body.
fn chat_body_with_extra(key: &str, value: &[u8]) -> Vec<u8> {
    map(&[
        ("type", fixstr("chat")),
        ("text", fixstr("hi")),
        (key, value.to_vec()),
    ])
}

/// `levels` nested one-element arrays around `nil`.
fn nested_arrays(levels: usize) -> Vec<u8> {
    let mut v = vec![0x91u8; levels];
    v.push(0xc0);
    v
}

/// `levels` nested one-entry maps `{"k": {"k": ... nil}}`.
fn nested_maps(levels: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(levels * 3 + 1);
    for _ in 0..levels {
        v.extend_from_slice(&[0x81, 0xa1, b'k']);
    }
    v.push(0xc0);
    v
}

/// Decodes one client body on a thread with a small stack, so that a decoder
/// recursing once per nesting level would overflow it and abort the test.
fn decode_client_body_on_a_small_stack(body: Vec<u8>) -> Result<ClientMessage, MessageError> {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || ClientMessage::from_body(&body))
        .expect("spawn decoder thread")
        .join()
        .expect("the decoder did not overflow its stack")
}

#[test]
fn nesting_of_any_depth_under_an_unknown_key_is_ignored_like_any_unknown_field() {
    let hi = ClientMessage::Chat(ChatSend {
        room: None,
        text: "hi".into(),
        reference: None,
    });
    // Around rmp-serde's own limit of 1,024 levels, and far beyond it (a
    // whole 1 MiB frame of array markers).
    for levels in [
        1, 31, 32, 33, 999, 1_000, 1_023, 1_024, 1_025, 5_000, 1_000_000,
    ] {
        let body = chat_body_with_extra("x", &nested_arrays(levels));
        assert_eq!(
            decode_client_body_on_a_small_stack(body),
            Ok(hi.clone()),
            "{levels} nested arrays under an unknown key"
        );
    }
    for levels in [1_000, 100_000] {
        let body = chat_body_with_extra("x", &nested_maps(levels));
        assert_eq!(
            decode_client_body_on_a_small_stack(body),
            Ok(hi.clone()),
            "{levels} nested maps under an unknown key"
        );
    }
    // Through the framing API too, and the next frame still decodes.
    let mut stream = frame_of_body(&chat_body_with_extra("x", &nested_arrays(2_000)));
    stream.extend_from_slice(&encode_client(&ClientMessage::Bye));
    let mut buf = buf_of(&stream);
    assert_eq!(decode_client(&mut buf, MAX), Ok(Some(hi)));
    assert_eq!(decode_client(&mut buf, MAX), Ok(Some(ClientMessage::Bye)));
}

#[test]
fn deep_nesting_under_an_unknown_key_of_a_nested_record_is_ignored_by_the_client_decoder() {
    // {"type":"presence","ts":1,
    //  "joined":[{"name":"bob","session":5,"x":<3,000 nested arrays>}],"left":[]}
    let mut joined = vec![0x91];
    joined.extend_from_slice(&map(&[
        ("name", fixstr("bob")),
        ("session", vec![0x05]),
        ("x", nested_arrays(3_000)),
    ]));
    let body = map(&[
        ("type", fixstr("presence")),
        ("ts", vec![0x01]),
        ("joined", joined),
        ("left", vec![0x90]),
    ]);
    assert_eq!(
        ServerMessage::from_body(&body),
        Ok(ServerMessage::Presence(Presence {
            room: None,
            ts: 1,
            joined: vec![user("bob", 5)],
            left: vec![],
        }))
    );
}

#[test]
fn deep_nesting_where_a_field_is_required_is_still_bad_message() {
    // {"type":"chat","text":[[[...]]]}
    for levels in [1, 40, 5_000] {
        let b = map(&[("type", fixstr("chat")), ("text", nested_arrays(levels))]);
        let err = decode_client_body_on_a_small_stack(b).expect_err("text must be a str");
        assert_eq!(err.code(), ErrorCode::BadMessage, "{levels}: {err}");
    }
    // A deep value as the `type` itself.
    let b = map(&[("type", nested_arrays(5_000))]);
    assert_eq!(
        decode_client_body_on_a_small_stack(b),
        Err(MessageError::MissingType)
    );
}

/// Where the str values (not keys) of a well-formed MessagePack value start,
/// at any depth. Test-only and recursive: the messages walked are shallow.
fn str_value_offsets(body: &[u8]) -> Vec<usize> {
    fn walk(b: &[u8], pos: &mut usize, is_key: bool, out: &mut Vec<usize>) {
        let m = b[*pos];
        let be = |at: usize, n: usize| {
            b[at..at + n]
                .iter()
                .fold(0usize, |a, x| (a << 8) | *x as usize)
        };
        let start = *pos;
        let (hdr, payload, children) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (1, 0, 0),
            0x80..=0x8f => (1, 0, 2 * (m & 0x0f) as usize),
            0x90..=0x9f => (1, 0, (m & 0x0f) as usize),
            0xa0..=0xbf => (1, (m & 0x1f) as usize, 0),
            0xc4 | 0xd9 => (2, be(start + 1, 1), 0),
            0xc5 | 0xda => (3, be(start + 1, 2), 0),
            0xc6 | 0xdb => (5, be(start + 1, 4), 0),
            0xcc | 0xd0 => (2, 0, 0),
            0xcd | 0xd1 => (3, 0, 0),
            0xce | 0xd2 | 0xca => (5, 0, 0),
            0xcf | 0xd3 | 0xcb => (9, 0, 0),
            0xdc => (3, 0, be(start + 1, 2)),
            0xde => (3, 0, 2 * be(start + 1, 2)),
            other => panic!("marker {other:#x} not produced by our encoder"),
        };
        if !is_key && matches!(m, 0xa0..=0xbf | 0xd9..=0xdb) {
            out.push(start);
        }
        *pos += hdr + payload;
        let is_map = matches!(m, 0x80..=0x8f | 0xde);
        for i in 0..children {
            walk(b, pos, is_map && i % 2 == 0, out);
        }
    }
    let mut out = Vec::new();
    walk(body, &mut 0, false, &mut out);
    out
}

/// `body` with the str starting at `at` re-encoded as a bin of the same bytes.
fn str_as_bin(body: &[u8], at: usize) -> Vec<u8> {
    let (len, hdr) = match body[at] {
        m @ 0xa0..=0xbf => ((m & 0x1f) as usize, 1),
        0xd9 => (body[at + 1] as usize, 2),
        0xda => (u16::from_be_bytes([body[at + 1], body[at + 2]]) as usize, 3),
        m => panic!("not a str marker {m:#x}"),
    };
    let mut out = body[..at].to_vec();
    if len < 256 {
        out.extend_from_slice(&[0xc4, len as u8]);
    } else {
        out.push(0xc5);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
    out.extend_from_slice(&body[at + hdr..]);
    out
}

/// Every client message type that has a str field, and every server one.
fn messages_with_strings() -> (Vec<ClientMessage>, Vec<ServerMessage>) {
    use chatcore::protocol::transfer::{FileCancelled, FileKind, FileOffer, FileOffered};
    use chatcore::protocol::voice::{CallMember, VoiceState};
    let mut client = client_sequence();
    client.push(ClientMessage::FileOffer(FileOffer {
        room: None,
        to: None,
        name: "notes.txt".into(),
        size: 5,
        sha256: vec![7; 32],
        kind: FileKind::Voice,
        reference: Some(2),
    }));
    let mut server = server_sequence();
    server.push(ServerMessage::FileOffer(FileOffered {
        room: None,
        to: None,
        transfer: 1,
        from: "alice".into(),
        session: 2,
        name: "notes.txt".into(),
        size: 5,
        sha256: vec![7; 32],
        kind: FileKind::File,
        ts: TS,
    }));
    server.push(ServerMessage::FileCancelled(FileCancelled {
        transfer: 1,
        reason: "expired".into(),
    }));
    server.push(ServerMessage::VoiceState(VoiceState {
        room: None,
        ts: TS,
        members: vec![CallMember {
            session: 2,
            name: "alice".into(),
            muted: false,
            connected: true,
        }],
    }));
    (client, server)
}

#[test]
fn a_bin_where_a_str_is_required_is_bad_message_for_every_str_field_of_both_directions() {
    let (client, server) = messages_with_strings();
    let mut checked = 0;
    for msg in &client {
        let frame = encode_client(msg);
        let body = &frame[HEADER_LEN..];
        for at in str_value_offsets(body) {
            let bad = str_as_bin(body, at);
            let err = ClientMessage::from_body(&bad).expect_err("bin for a str must be refused");
            assert_eq!(err.code(), ErrorCode::BadMessage, "{msg:?} at {at}: {err}");
            checked += 1;
        }
    }
    for msg in &server {
        let frame = encode_server(msg);
        let body = &frame[HEADER_LEN..];
        for at in str_value_offsets(body) {
            let bad = str_as_bin(body, at);
            let err = ServerMessage::from_body(&bad).expect_err("bin for a str must be refused");
            assert_eq!(err.code(), ErrorCode::BadMessage, "{msg:?} at {at}: {err}");
            checked += 1;
        }
    }
    // type, name, text, from, message, code, reason, kind... in every message.
    assert!(checked >= 50, "only {checked} str fields found");
    // Through the framing API: `{"type":"chat","text":<bin "hi">}` is
    // refused and the stream stays in sync.
    let chat = encode_client(&ClientMessage::Chat(ChatSend {
        room: None,
        text: "hi".into(),
        reference: None,
    }));
    let body = &chat[HEADER_LEN..];
    let text_at = *str_value_offsets(body).last().expect("text");
    let mut stream = frame_of_body(&str_as_bin(body, text_at));
    stream.extend_from_slice(&encode_client(&ClientMessage::Bye));
    let mut buf = buf_of(&stream);
    let err = decode_client(&mut buf, MAX).expect_err("bin text");
    assert_eq!(code_of(&err), ErrorCode::BadMessage);
    assert_eq!(decode_client(&mut buf, MAX), Ok(Some(ClientMessage::Bye)));
}

/// A `file_offer` body (client's fields) with `kind` given as raw MessagePack.
fn file_offer_with_kind(kind: &[u8]) -> Vec<u8> {
    map(&[
        ("type", fixstr("file_offer")),
        ("name", fixstr("a")),
        ("size", vec![0x01]),
        ("sha256", bin8(&[0u8; 32])),
        ("kind", kind.to_vec()),
    ])
}

#[test]
fn an_integer_file_kind_is_bad_message_and_never_relayed_as_voice() {
    use chatcore::protocol::transfer::FileKind;
    // 0 and 1 were read as the variants `file` and `voice` by index.
    for kind in [
        &[0x00][..],
        &[0x01],
        &[0x02],
        &[0xcd, 0x01, 0x00],
        &[0xff],
        &[0xc3],
    ] {
        let err = ClientMessage::from_body(&file_offer_with_kind(kind))
            .expect_err("an integer kind must be refused");
        assert_eq!(err.code(), ErrorCode::BadMessage, "kind {kind:02x?}: {err}");
    }
    // Strings decode by name; an unknown name is still `unknown`, not an error.
    for (kind, want) in [
        (&b"\xa4file"[..], FileKind::File),
        (b"\xa5voice", FileKind::Voice),
        (b"\xa5video", FileKind::Unknown),
        (b"\xa5Voice", FileKind::Unknown),
    ] {
        match ClientMessage::from_body(&file_offer_with_kind(kind)) {
            Ok(ClientMessage::FileOffer(offer)) => assert_eq!(offer.kind, want),
            other => panic!("kind {kind:02x?}: {other:?}"),
        }
    }
}

#[test]
fn integer_error_codes_and_leave_reasons_are_bad_message_not_a_variant_by_index() {
    // {"type":"error","code":1,"message":"m"}
    let body = map(&[
        ("type", fixstr("error")),
        ("code", vec![0x01]),
        ("message", fixstr("m")),
    ]);
    let err = ServerMessage::from_body(&body).expect_err("integer code");
    assert_eq!(err.code(), ErrorCode::BadMessage, "{err}");
    // {"type":"left","name":"bob","session":5,"ts":1,"reason":0}
    let body = map(&[
        ("type", fixstr("left")),
        ("name", fixstr("bob")),
        ("session", vec![0x05]),
        ("ts", vec![0x01]),
        ("reason", vec![0x00]),
    ]);
    let err = ServerMessage::from_body(&body).expect_err("integer reason");
    assert_eq!(err.code(), ErrorCode::BadMessage, "{err}");
}

#[test]
fn an_integer_key_is_bad_message_never_a_field_by_its_index() {
    // {0:"chat","text":"hi"}: serde would take key 0 for the first field,
    // `type`.
    let mut body = vec![0x82, 0x00];
    body.extend_from_slice(&fixstr("chat"));
    body.extend_from_slice(&fixstr("text"));
    body.extend_from_slice(&fixstr("hi"));
    let err = ClientMessage::from_body(&body).expect_err("integer key");
    assert_eq!(err, MessageError::NonStrKey);
    assert_eq!(err.code(), ErrorCode::BadMessage);
    // {"type":"chat",1:"hi"}: the same in a field's place.
    let mut body = vec![0x82];
    body.extend_from_slice(&fixstr("type"));
    body.extend_from_slice(&fixstr("chat"));
    body.push(0x01);
    body.extend_from_slice(&fixstr("hi"));
    let err = ClientMessage::from_body(&body).expect_err("integer key");
    assert_eq!(err.code(), ErrorCode::BadMessage);
    // The server's side decodes the same way.
    let err = ServerMessage::from_body(&body).expect_err("integer key");
    assert_eq!(err.code(), ErrorCode::BadMessage);
    // A map with integer keys under an unknown key is still ignored.
    // {"type":"chat","text":"hi","x":{1:2}}
    let body = map(&[
        ("type", fixstr("chat")),
        ("text", fixstr("hi")),
        ("x", vec![0x81, 0x01, 0x02]),
    ]);
    assert!(matches!(
        ClientMessage::from_body(&body),
        Ok(ClientMessage::Chat(_))
    ));
}
