//! The `welcome` frame, built in two chunks: a small head of its own per
//! joiner and a body shared by every joiner of the same batch.
//!
//! The body (user list, history, limits) is the expensive part and is the
//! same for everyone welcomed in one loop turn, so it is encoded once. The
//! result decodes exactly like a `Welcome` serialised by serde: a map whose
//! first keys are `type`, `version`, `name`, `session`, then `users`,
//! `history`, `heartbeat_ms`, `max_frame`, `max_text`.

use std::collections::VecDeque;

use bytes::Bytes;

use super::PROTOCOL_VERSION;
use super::frame::HEADER_LEN;
use super::message::{Chat, UserInfo};
use super::mpack::{put_array_len, put_map_len, put_str, put_uint};

/// Number of keys in a welcome map (one more with `offers_omitted`).
const FIELDS: u8 = 9;

/// Encodes the part of a welcome every joiner of a batch shares.
pub fn shared_body<'a>(
    users: impl Iterator<Item = &'a UserInfo>,
    count: usize,
    history: &VecDeque<Chat>,
    heartbeat_ms: u32,
    max_frame: u32,
    max_text: u32,
) -> Bytes {
    let mut b = Vec::with_capacity(64 + count * 24);
    put_str(&mut b, "users");
    put_array_len(&mut b, count);
    for user in users {
        put_map_len(&mut b, 2);
        put_str(&mut b, "name");
        put_str(&mut b, &user.name);
        put_str(&mut b, "session");
        put_uint(&mut b, user.session);
    }
    put_str(&mut b, "history");
    put_array_len(&mut b, history.len());
    for chat in history {
        // Writing into a Vec cannot fail, and `Chat` always serialises.
        if let Err(e) = rmp_serde::encode::write_named(&mut b, chat) {
            unreachable!("chat failed to serialise: {e}");
        }
    }
    put_str(&mut b, "heartbeat_ms");
    put_uint(&mut b, u64::from(heartbeat_ms));
    put_str(&mut b, "max_frame");
    put_uint(&mut b, u64::from(max_frame));
    put_str(&mut b, "max_text");
    put_uint(&mut b, u64::from(max_text));
    Bytes::from(b)
}

/// Encodes one joiner's head: the length prefix of the whole frame (head
/// plus a shared body of `body_len` bytes), then its own fields. When
/// `offers_omitted` is not 0 (offers available but not sent after this
/// welcome, docs/protocol.md 17.4) the head carries it as an extra key,
/// which older clients ignore like any unknown key.
///
/// `account` is `Some` for a login authenticated with a password or a
/// token: the head then carries `registered: true` and, when a token was
/// issued, `token` (docs/protocol.md, accounts).
pub fn head(
    name: &str,
    session: u64,
    offers_omitted: u64,
    account: Option<Option<&str>>,
    body_len: usize,
) -> Bytes {
    let mut h = Vec::with_capacity(64 + name.len());
    h.extend_from_slice(&[0; HEADER_LEN]);
    let extra = usize::from(offers_omitted > 0)
        + usize::from(account.is_some())
        + usize::from(matches!(account, Some(Some(_))));
    put_map_len(&mut h, usize::from(FIELDS) + extra);
    put_str(&mut h, "type");
    put_str(&mut h, "welcome");
    put_str(&mut h, "version");
    put_uint(&mut h, u64::from(PROTOCOL_VERSION));
    put_str(&mut h, "name");
    put_str(&mut h, name);
    put_str(&mut h, "session");
    put_uint(&mut h, session);
    if offers_omitted > 0 {
        put_str(&mut h, "offers_omitted");
        put_uint(&mut h, offers_omitted);
    }
    if let Some(token) = account {
        put_str(&mut h, "registered");
        h.push(0xc3); // MessagePack true
        if let Some(token) = token {
            put_str(&mut h, "token");
            put_str(&mut h, token);
        }
    }
    let len = (h.len() - HEADER_LEN + body_len) as u32;
    h[..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    Bytes::from(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ServerMessage, Welcome, encode_server};

    #[test]
    fn a_two_chunk_welcome_equals_the_serde_encoding() {
        let users: Vec<UserInfo> = (0..40)
            .map(|i| UserInfo {
                name: format!("user-with-a-longish-name-{i}"),
                session: 1000 * i,
            })
            .collect();
        let history: VecDeque<Chat> = (0..3)
            .map(|i| Chat {
                room: None,
                id: i,
                from: "a".into(),
                session: 1,
                text: "x".repeat(300),
                ts: 1_700_000_000_000,
                reference: None,
            })
            .collect();
        let body = shared_body(users.iter(), users.len(), &history, 10_000, 1 << 20, 4096);
        let head = head("zoë", 70_000, 0, None, body.len());
        let mut ours = head.to_vec();
        ours.extend_from_slice(&body);
        let serde = encode_server(&ServerMessage::Welcome(Welcome {
            registered: false,
            token: None,
            version: PROTOCOL_VERSION,
            name: "zoë".into(),
            session: 70_000,
            users,
            history: history.into_iter().collect(),
            heartbeat_ms: 10_000,
            max_frame: 1 << 20,
            max_text: 4096,
        }));
        assert_eq!(ours, serde.to_vec());
    }

    #[test]
    fn offers_omitted_is_an_extra_key_that_older_decoders_ignore() {
        let history = VecDeque::new();
        let users = [UserInfo {
            name: "a".into(),
            session: 1,
        }];
        let body = shared_body(users.iter(), 1, &history, 10_000, 1 << 20, 4096);
        let mut frame = head("a", 1, 7, Some(Some("ab12")), body.len()).to_vec();
        frame.extend_from_slice(&body);
        let mut buf = bytes::BytesMut::from(&frame[..]);
        let decoded = crate::protocol::decode_server(&mut buf, u32::MAX).expect("valid");
        assert!(matches!(&decoded, Some(ServerMessage::Welcome(w)) if w.name == "a"));
        assert!(matches!(&decoded, Some(ServerMessage::Welcome(w))
            if w.registered && w.token.as_deref() == Some("ab12")));
        #[derive(serde::Deserialize)]
        struct Omitted {
            offers_omitted: u64,
        }
        let o: Omitted = rmp_serde::from_slice(&frame[HEADER_LEN..]).expect("map");
        assert_eq!(o.offers_omitted, 7);
    }
}
