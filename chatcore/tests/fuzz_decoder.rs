//! A fuzzer for the frame decoder and the message decoder that runs on stable
//! Rust in every test run, with a bounded number of cases.
//!
//! Inputs: random bytes, and structured mutations of valid frames of every
//! message type (bit flips, byte edits, insertions, deletions, truncations,
//! splices, huge or wrong length prefixes, deep nesting, strs turned into
//! bins), each fed to the decoder whole and in random pieces. Properties:
//! nothing panics; every outcome is one of the documented classes of
//! docs/protocol.md sections 2 and 4; a frame is consumed whole or not at all;
//! the outcome sequence does not depend on how the bytes were split; whatever
//! decodes re-encodes to a frame that decodes to the same message.
//!
//! More cases: `CHATCORE_FUZZ_CASES=1000000 cargo test --release -p chatcore
//! --test fuzz_decoder` (and `CHATCORE_FUZZ_SEED=n` for another sequence).
//! The coverage-guided `cargo fuzz` targets are in `chatcore/fuzz/`.

use bytes::BytesMut;
use chatcore::protocol::transfer::{
    FileAccept, FileCancelled, FileChunk, FileData, FileKind, FileOffer, FileOffered, FileProgress,
    FileUpload, TransferId,
};
use chatcore::protocol::voice::{CallMember, VoiceJoined, VoiceMute, VoiceState};
use chatcore::protocol::{
    Chat, ChatSend, ClientMessage, DecodeError, Departure, ErrorCode, ErrorMsg, FrameError,
    HEADER_LEN, Hello, Joined, LeaveReason, Left, MessageError, Presence, Seq, ServerMessage,
    UserInfo, Welcome, decode_client, decode_server, encode_client, encode_server, frame_len,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The frame limit the fuzzed decoder runs with: small, so that mutated
/// lengths often cross it, but larger than every corpus frame.
const MAX: u32 = 4096;
const TS: i64 = 1_767_225_600_000;

/// Cases per test from `CHATCORE_FUZZ_CASES`, else `default`.
fn cases(default: u64) -> u64 {
    std::env::var("CHATCORE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A seeded generator; the seed comes from `CHATCORE_FUZZ_SEED` if set.
fn rng(salt: u64) -> StdRng {
    let seed = std::env::var("CHATCORE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_f022);
    StdRng::seed_from_u64(seed ^ salt)
}

fn user(name: &str, session: u64) -> UserInfo {
    UserInfo {
        name: name.into(),
        session,
    }
}

/// One valid frame of every client message type.
fn client_corpus() -> Vec<Vec<u8>> {
    let msgs = vec![
        ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: 1,
            name: "alice".into(),
            last_seen: None,
        }),
        ClientMessage::Chat(ChatSend {
            room: None,
            text: "grüße, 世界 👋".into(),
            reference: Some(7),
        }),
        ClientMessage::Chat(ChatSend {
            room: None,
            text: "x".repeat(300),
            reference: None,
        }),
        ClientMessage::Ping(Seq { seq: u64::MAX }),
        ClientMessage::Pong(Seq { seq: 3 }),
        ClientMessage::Bye,
        ClientMessage::FileOffer(FileOffer {
            room: None,
            to: None,
            name: "notes.txt".into(),
            size: 5,
            sha256: vec![0xab; 32],
            kind: FileKind::Voice,
            reference: Some(2),
        }),
        ClientMessage::FileChunk(FileChunk {
            transfer: 1,
            offset: 0,
            data: b"hello".to_vec(),
        }),
        ClientMessage::FileAccept(FileAccept {
            transfer: 1,
            offset: 3,
        }),
        ClientMessage::FileDecline(TransferId { transfer: 1 }),
        ClientMessage::FileCancel(TransferId { transfer: 9 }),
        ClientMessage::VoiceJoin,
        ClientMessage::VoiceLeave,
        ClientMessage::VoiceMute(VoiceMute { muted: true }),
    ];
    msgs.iter().map(|m| encode_client(m).to_vec()).collect()
}

/// One valid frame of every server message type.
fn server_corpus() -> Vec<Vec<u8>> {
    let chat = Chat {
        room: None,
        id: 41,
        from: "bob".into(),
        session: 5,
        text: "earlier".into(),
        ts: TS,
        reference: None,
    };
    let msgs = vec![
        ServerMessage::Welcome(Welcome {
            registered: false,
            token: None,
            version: 1,
            name: "alice(1)".into(),
            session: 7,
            users: vec![user("alice", 2), user("alice(1)", 7)],
            history: vec![chat.clone()],
            heartbeat_ms: 10_000,
            max_frame: 1 << 20,
            max_text: 4096,
        }),
        ServerMessage::Chat(chat),
        ServerMessage::Joined(Joined {
            name: "carol".into(),
            session: 8,
            ts: TS,
        }),
        ServerMessage::Left(Left {
            name: "carol".into(),
            session: 8,
            ts: TS,
            reason: LeaveReason::Slow,
        }),
        ServerMessage::Presence(Presence {
            room: None,
            ts: TS,
            joined: vec![user("dave", 9)],
            left: vec![Departure {
                name: "bob".into(),
                session: 5,
                reason: LeaveReason::Timeout,
            }],
        }),
        ServerMessage::Ping(Seq { seq: 12 }),
        ServerMessage::Pong(Seq { seq: 3 }),
        ServerMessage::Error(ErrorMsg {
            room: None,
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            reference: Some(9),
            transfer: Some(4),
        }),
        ServerMessage::FileUpload(FileUpload {
            transfer: 1,
            max_chunk: 262_144,
            reference: Some(2),
        }),
        ServerMessage::FileProgress(FileProgress {
            transfer: 1,
            done: 5,
            total: 5,
        }),
        ServerMessage::FileReady(TransferId { transfer: 1 }),
        ServerMessage::FileOffer(FileOffered {
            room: None,
            to: None,
            transfer: 1,
            from: "alice".into(),
            session: 2,
            name: "notes.txt".into(),
            size: 5,
            sha256: vec![0xab; 32],
            kind: FileKind::File,
            ts: TS,
        }),
        ServerMessage::FileData(FileData {
            transfer: 1,
            offset: 0,
            data: b"hello".to_vec(),
        }),
        ServerMessage::FileDone(TransferId { transfer: 1 }),
        ServerMessage::FileCancelled(FileCancelled {
            transfer: 1,
            reason: "cancelled".into(),
        }),
        ServerMessage::VoiceJoined(VoiceJoined {
            room: None,
            max_bitrate: Some(64_000),
            session: 2,
            token: vec![1; 16],
            epoch: 7,
            key: vec![2; 32],
            port: 5678,
            keepalive_ms: 2000,
            timeout_ms: 10_000,
        }),
        ServerMessage::VoiceState(VoiceState {
            room: None,
            ts: TS,
            members: vec![CallMember {
                session: 2,
                name: "alice".into(),
                muted: false,
                connected: true,
            }],
        }),
        ServerMessage::VoiceKey(chatcore::protocol::voice::VoiceKey {
            epoch: 8,
            key: vec![3; 32],
        }),
    ];
    msgs.iter().map(|m| encode_server(m).to_vec()).collect()
}

/// What one decode call produced, reduced to what must not depend on how
/// the input was split.
#[derive(Debug, Clone, PartialEq)]
enum Outcome<M> {
    /// A message; `usize` is the frame length consumed.
    Message(M, usize),
    /// A non-fatal refusal of one frame (`invalid_utf8`, `bad_message`,
    /// `unknown_type`) or the fatal `bad_frame` of a malformed body.
    Refused(ErrorCode, usize),
    /// A framing error: the stream cannot be followed (fatal).
    Frame(FrameError),
}

/// The direction-specific parts: decoding, re-encoding.
trait Side {
    type Msg: Clone + PartialEq + std::fmt::Debug;
    fn decode(buf: &mut BytesMut) -> Result<Option<Self::Msg>, DecodeError>;
    fn encode(msg: &Self::Msg) -> Vec<u8>;
}

struct FromClient;
impl Side for FromClient {
    type Msg = ClientMessage;
    fn decode(buf: &mut BytesMut) -> Result<Option<ClientMessage>, DecodeError> {
        decode_client(buf, MAX)
    }
    fn encode(msg: &ClientMessage) -> Vec<u8> {
        encode_client(msg).to_vec()
    }
}

struct FromServer;
impl Side for FromServer {
    type Msg = ServerMessage;
    fn decode(buf: &mut BytesMut) -> Result<Option<ServerMessage>, DecodeError> {
        decode_server(buf, MAX)
    }
    fn encode(msg: &ServerMessage) -> Vec<u8> {
        encode_server(msg).to_vec()
    }
}

/// Decodes everything complete in `buf`, checking each call against the
/// documented outcome classes; returns true once the stream is dead (a
/// framing error or `bad_frame`, after which the server reads no more).
fn drain<S: Side>(buf: &mut BytesMut, out: &mut Vec<Outcome<S::Msg>>) -> bool {
    loop {
        let before = buf.len();
        let expected = frame_len(buf, MAX);
        let result = S::decode(buf);
        match result {
            Ok(None) => {
                assert_eq!(expected, Ok(None), "need-more must agree with frame_len");
                assert_eq!(buf.len(), before, "need-more must consume nothing");
                return false;
            }
            Ok(Some(msg)) => {
                let used = before - buf.len();
                assert_eq!(expected, Ok(Some(used)), "a frame is consumed whole");
                // Whatever decodes re-encodes to a frame that decodes the same.
                let again = S::encode(&msg);
                let mut b = BytesMut::from(&again[..]);
                assert_eq!(
                    S::decode(&mut b).ok().flatten().as_ref(),
                    Some(&msg),
                    "round trip"
                );
                out.push(Outcome::Message(msg, used));
            }
            Err(DecodeError::Message(e)) => {
                let used = before - buf.len();
                assert_eq!(
                    expected,
                    Ok(Some(used)),
                    "a refused frame is consumed whole"
                );
                let code = e.code();
                let documented = match &e {
                    MessageError::BadFrame(_) => code == ErrorCode::BadFrame,
                    MessageError::InvalidUtf8 => code == ErrorCode::InvalidUtf8,
                    MessageError::MissingType
                    | MessageError::NonStrKey
                    | MessageError::BadField { .. } => code == ErrorCode::BadMessage,
                    MessageError::UnknownType(_) => code == ErrorCode::UnknownType,
                };
                assert!(documented, "{e:?} answered with {code:?}");
                assert_eq!(code.is_fatal(), code == ErrorCode::BadFrame, "{code:?}");
                out.push(Outcome::Refused(code, used));
                if code == ErrorCode::BadFrame {
                    return true;
                }
            }
            Err(DecodeError::Frame(e)) => {
                assert_eq!(
                    expected,
                    Err(e.clone()),
                    "frame errors agree with frame_len"
                );
                assert!(e.code().is_fatal(), "{e:?}");
                match e {
                    FrameError::Empty => assert_eq!(e.code(), ErrorCode::BadFrame),
                    FrameError::TooLarge { len, max } => {
                        assert!(len > max);
                        assert_eq!(e.code(), ErrorCode::FrameTooLarge);
                    }
                }
                out.push(Outcome::Frame(e));
                return true;
            }
        }
    }
}

/// Feeds `stream` whole, then in random pieces, then one byte at a time
/// (short streams only), and checks every way gives the same outcomes.
fn feed<S: Side>(stream: &[u8], rng: &mut StdRng) -> Vec<Outcome<S::Msg>> {
    let mut whole = Vec::new();
    drain::<S>(&mut BytesMut::from(stream), &mut whole);

    let mut pieces = Vec::new();
    let mut buf = BytesMut::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let take = rng.random_range(1..=rest.len().min(64));
        buf.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        if drain::<S>(&mut buf, &mut pieces) {
            break;
        }
    }
    assert_eq!(pieces, whole, "random split changed the outcome");

    if stream.len() <= 256 {
        let mut bytes = Vec::new();
        let mut buf = BytesMut::new();
        for b in stream {
            buf.extend_from_slice(&[*b]);
            if drain::<S>(&mut buf, &mut bytes) {
                break;
            }
        }
        assert_eq!(bytes, whole, "byte-at-a-time changed the outcome");
    }
    whole
}

/// A random length prefix: plausible, exact, zero, over the limit or huge.
fn random_prefix(rng: &mut StdRng, body_len: usize) -> [u8; 4] {
    let len: u32 = match rng.random_range(0..6) {
        0 => 0,
        1 => MAX + rng.random_range(1..=1000),
        2 => u32::MAX - rng.random_range(0..16),
        3 => rng.random_range(0..=MAX),
        _ => u32::try_from(body_len).unwrap_or(u32::MAX),
    };
    len.to_be_bytes()
}

/// Re-prefixes a frame's body with its real length (after the body changed).
fn reframe(body: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(body.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(body);
    out
}

/// One structured mutation of a valid frame (or a pair of them).
fn mutate(rng: &mut StdRng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let frame = &corpus[rng.random_range(0..corpus.len())];
    let body = &frame[HEADER_LEN..];
    let mut b = body.to_vec();
    match rng.random_range(0..11) {
        // Flip bits.
        0 => {
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..b.len());
                b[i] ^= 1 << rng.random_range(0..8);
            }
        }
        // Set a byte to an interesting marker.
        1 => {
            const MARKERS: [u8; 16] = [
                0xc0, 0xc1, 0xc4, 0xc6, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0x80, 0x90, 0xa0, 0xff,
                0x00, 0x7f,
            ];
            let i = rng.random_range(0..b.len());
            b[i] = MARKERS[rng.random_range(0..MARKERS.len())];
        }
        // Insert random bytes.
        2 => {
            let i = rng.random_range(0..=b.len());
            let n = rng.random_range(1..8);
            let ins: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            b.splice(i..i, ins);
        }
        // Delete a range.
        3 => {
            let i = rng.random_range(0..b.len());
            let j = rng.random_range(i..=b.len());
            b.drain(i..j);
        }
        // Truncate, keeping the original length prefix (a short body).
        4 => {
            let cut = rng.random_range(0..body.len());
            let mut out = frame[..HEADER_LEN].to_vec();
            out.extend_from_slice(&body[..cut]);
            return out;
        }
        // A wrong, zero, over-limit or huge length prefix.
        5 => {
            let mut out = random_prefix(rng, b.len()).to_vec();
            out.extend_from_slice(&b);
            return out;
        }
        // Add a deeply nested value under a new key (bump the fixmap count).
        6 => {
            if (0x80..0x8f).contains(&b[0]) {
                b[0] += 1;
                b.extend_from_slice(&[0xa1, b'z']);
                let levels = rng.random_range(1..3000);
                let marker = if rng.random_bool(0.5) { 0x91 } else { 0xdc };
                for _ in 0..levels {
                    b.push(marker);
                    if marker == 0xdc {
                        b.extend_from_slice(&[0x00, 0x01]);
                    }
                }
                b.push(0xc0);
            }
        }
        // Turn a fixstr into a bin 8 of the same bytes.
        7 => {
            let strs: Vec<usize> = b
                .iter()
                .enumerate()
                .filter(|(_, m)| (0xa1..=0xbf).contains(*m))
                .map(|(i, _)| i)
                .collect();
            if !strs.is_empty() {
                let i = strs[rng.random_range(0..strs.len())];
                let n = b[i] & 0x1f;
                b.splice(i..=i, [0xc4, n]);
            }
        }
        // Duplicate a tail (repeated keys, trailing bytes).
        8 => {
            let i = rng.random_range(0..b.len());
            let tail = b[i..].to_vec();
            b.extend_from_slice(&tail);
        }
        // Splice the head of one body onto the tail of another.
        9 => {
            let other = &corpus[rng.random_range(0..corpus.len())][HEADER_LEN..];
            let i = rng.random_range(0..=b.len());
            let j = rng.random_range(0..=other.len());
            b.truncate(i);
            b.extend_from_slice(&other[j..]);
        }
        // Replace an integer byte with a big negative or 64-bit value.
        _ => {
            let i = rng.random_range(0..b.len());
            let ins: &[u8] = match rng.random_range(0..3) {
                0 => &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
                1 => &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                _ => &[0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0],
            };
            b.splice(i..=i, ins.iter().copied());
        }
    }
    reframe(&b)
}

/// A stream of a few frames: valid ones, mutated ones and random bytes.
fn stream(rng: &mut StdRng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.random_range(1..5) {
        match rng.random_range(0..4) {
            0 => out.extend_from_slice(&corpus[rng.random_range(0..corpus.len())]),
            1 => {
                let n = rng.random_range(0..200);
                let body: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                out.extend_from_slice(&random_prefix(rng, body.len()));
                out.extend_from_slice(&body);
            }
            _ => out.extend_from_slice(&mutate(rng, corpus)),
        }
    }
    out
}

#[test]
fn fuzzed_client_streams_only_ever_give_documented_outcomes_whatever_the_split() {
    let corpus = client_corpus();
    let mut rng = rng(1);
    let n = cases(5_000);
    let mut messages = 0u64;
    for _ in 0..n {
        let s = stream(&mut rng, &corpus);
        messages += feed::<FromClient>(&s, &mut rng)
            .iter()
            .filter(|o| matches!(o, Outcome::Message(..)))
            .count() as u64;
    }
    // The mutations must not all be refused: the harness also proves that
    // valid frames amid garbage come through.
    assert!(messages > n / 4, "only {messages} messages in {n} streams");
}

#[test]
fn fuzzed_server_streams_only_ever_give_documented_outcomes_whatever_the_split() {
    let corpus = server_corpus();
    let mut rng = rng(2);
    let n = cases(5_000);
    let mut messages = 0u64;
    for _ in 0..n {
        let s = stream(&mut rng, &corpus);
        messages += feed::<FromServer>(&s, &mut rng)
            .iter()
            .filter(|o| matches!(o, Outcome::Message(..)))
            .count() as u64;
    }
    assert!(messages > n / 4, "only {messages} messages in {n} streams");
}

#[test]
fn every_valid_frame_split_at_every_offset_decodes_to_itself_on_both_sides() {
    fn check<S: Side>(corpus: &[Vec<u8>]) {
        for frame in corpus {
            for cut in 0..=frame.len() {
                let mut buf = BytesMut::from(&frame[..cut]);
                let first = S::decode(&mut buf).expect("valid prefix");
                if cut < frame.len() {
                    assert_eq!(first, None, "complete before its last byte");
                    buf.extend_from_slice(&frame[cut..]);
                    let msg = S::decode(&mut buf).expect("valid frame").expect("complete");
                    assert_eq!(S::encode(&msg), *frame);
                } else {
                    assert_eq!(S::encode(&first.expect("complete")), *frame);
                }
                assert!(buf.is_empty());
            }
        }
    }
    check::<FromClient>(&client_corpus());
    check::<FromServer>(&server_corpus());
}

#[test]
fn huge_and_zero_length_prefixes_are_fatal_from_the_header_alone() {
    let mut rng = rng(3);
    for _ in 0..cases(3_000) {
        let len = match rng.random_range(0..3) {
            0 => 0,
            1 => rng.random_range(MAX + 1..=u32::MAX),
            _ => u32::MAX,
        };
        // Only the 4 header bytes (and maybe a few more) are present: the
        // decision must not wait for, or allocate, the announced body.
        let mut stream = len.to_be_bytes().to_vec();
        let extra = rng.random_range(0..4);
        stream.extend((0..extra).map(|_| rng.random::<u8>()));
        let outcomes = feed::<FromClient>(&stream, &mut rng);
        let want = if len == 0 {
            FrameError::Empty
        } else {
            FrameError::TooLarge { len, max: MAX }
        };
        assert_eq!(outcomes, vec![Outcome::Frame(want)]);
    }
}
