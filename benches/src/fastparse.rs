//! Just enough MessagePack to read the server's frames at millions per
//! second: the `type`, and the few fields the load generator needs, without
//! building owned messages. Anything it cannot follow is reported as `None`
//! and counted by the caller.

/// What the load generator needs from one server frame.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The `type` value.
    pub kind: &'a [u8],
    /// `id` of a chat.
    pub id: u64,
    /// `session` of a welcome.
    pub session: u64,
    /// `text` of a chat.
    pub text: &'a [u8],
    /// `seq` of a ping.
    pub seq: u64,
    /// Number of `users` in a welcome.
    pub users: u64,
    /// Number of `joined` entries of a presence (1 for `joined`).
    pub joined: u64,
    /// `code` of an error.
    pub code: &'a [u8],
    /// `room` of a chat or `room_joined` (empty: the default room). Not read
    /// in a `presence`, where it comes after the `joined` array at which
    /// reading stops.
    pub room: &'a [u8],
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        Some(
            self.take(n)?
                .iter()
                .fold(0, |a, b| (a << 8) | u64::from(*b)),
        )
    }

    fn str(&mut self) -> Option<&'a [u8]> {
        let m = self.byte()?;
        let len = match m {
            0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.be(1)? as usize,
            0xda => self.be(2)? as usize,
            0xdb => self.be(4)? as usize,
            _ => return None,
        };
        self.take(len)
    }

    fn uint(&mut self) -> Option<u64> {
        let m = self.byte()?;
        match m {
            0x00..=0x7f => Some(u64::from(m)),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            _ => None,
        }
    }

    /// Length of the array that starts here; the reader stays after its header.
    fn array_len(&mut self) -> Option<u64> {
        let m = self.byte()?;
        match m {
            0x90..=0x9f => Some(u64::from(m & 0x0f)),
            0xdc => self.be(2),
            0xdd => self.be(4),
            _ => None,
        }
    }

    fn map_len(&mut self) -> Option<u64> {
        let m = self.byte()?;
        match m {
            0x80..=0x8f => Some(u64::from(m & 0x0f)),
            0xde => self.be(2),
            0xdf => self.be(4),
            _ => None,
        }
    }

    /// Skips `n` whole values (iteratively).
    fn skip(&mut self, mut n: u64) -> Option<()> {
        while n > 0 {
            n -= 1;
            let m = self.byte()?;
            let (bytes, children) = match m {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, 2 * u64::from(m & 0x0f)),
                0x90..=0x9f => (0, u64::from(m & 0x0f)),
                0xa0..=0xbf => (u64::from(m & 0x1f), 0),
                0xc4 | 0xd9 => (self.be(1)?, 0),
                0xc5 | 0xda => (self.be(2)?, 0),
                0xc6 | 0xdb => (self.be(4)?, 0),
                0xc7 => (self.be(1)? + 1, 0),
                0xc8 => (self.be(2)? + 1, 0),
                0xc9 => (self.be(4)? + 1, 0),
                0xca => (4, 0),
                0xcb => (8, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xce | 0xd2 => (4, 0),
                0xcf | 0xd3 => (8, 0),
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xdc => (0, self.be(2)?),
                0xdd => (0, self.be(4)?),
                0xde => (0, 2 * self.be(2)?),
                0xdf => (0, 2 * self.be(4)?),
                _ => return None,
            };
            self.take(usize::try_from(bytes).ok()?)?;
            n = n.checked_add(children)?;
        }
        Some(())
    }
}

/// Reads the fields of interest from one frame body.
pub fn parse(body: &[u8]) -> Option<Frame<'_>> {
    let mut r = Reader { buf: body, pos: 0 };
    let mut f = Frame::default();
    let entries = r.map_len()?;
    for _ in 0..entries {
        let key = r.str()?;
        match key {
            b"type" => f.kind = r.str()?,
            b"id" => f.id = r.uint()?,
            b"session" => f.session = r.uint()?,
            b"seq" => f.seq = r.uint()?,
            b"text" => f.text = r.str()?,
            b"code" => f.code = r.str()?,
            b"room" => f.room = r.str()?,
            // The server writes `users` (welcome) and `joined` (presence)
            // after every field the generator needs; in a connection storm
            // these arrays are most of the bytes, so reading stops at their
            // length instead of walking thousands of entries.
            b"users" => {
                f.users = r.array_len()?;
                break;
            }
            b"joined" => {
                f.joined = r.array_len()?;
                break;
            }
            _ => r.skip(1)?,
        }
    }
    if f.kind == b"joined" {
        f.joined = 1;
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatcore::protocol::{Chat, Presence, RoomJoined, ServerMessage, UserInfo, encode_server};

    #[test]
    fn reads_what_the_server_encodes() {
        let chat = encode_server(&ServerMessage::Chat(Chat {
            room: None,
            id: 300,
            from: "a".into(),
            session: 7,
            text: "hello".into(),
            ts: 1,
            reference: Some(3),
        }));
        let f = parse(&chat[4..]).expect("parses");
        assert_eq!((f.kind, f.id, f.text), (&b"chat"[..], 300, &b"hello"[..]));
        let p = encode_server(&ServerMessage::Presence(Presence {
            room: None,
            ts: 0,
            joined: vec![
                UserInfo {
                    name: "x".into(),
                    session: 1,
                };
                3
            ],
            left: vec![],
        }));
        let f = parse(&p[4..]).expect("parses");
        assert_eq!((f.kind, f.joined), (&b"presence"[..], 3));
    }

    #[test]
    fn reads_the_room_of_a_chat_and_of_a_room_joined() {
        let chat = encode_server(&ServerMessage::Chat(Chat {
            room: Some("r7".into()),
            id: 9,
            from: "a".into(),
            session: 7,
            text: "hi".into(),
            ts: 1,
            reference: None,
        }));
        let f = parse(&chat[4..]).expect("parses");
        assert_eq!((f.kind, f.id, f.room), (&b"chat"[..], 9, &b"r7"[..]));
        let joined = encode_server(&ServerMessage::RoomJoined(RoomJoined {
            invite_only: false,
            room: "big".into(),
            topic: String::new(),
            users: vec![
                UserInfo {
                    name: "x".into(),
                    session: 1,
                };
                4
            ],
            history: vec![],
        }));
        let f = parse(&joined[4..]).expect("parses");
        assert_eq!(
            (f.kind, f.room, f.users),
            (&b"room_joined"[..], &b"big"[..], 4)
        );
        // A default-room chat has no room.
        let plain = encode_server(&ServerMessage::Chat(Chat {
            room: None,
            id: 1,
            from: "a".into(),
            session: 1,
            text: "hi".into(),
            ts: 1,
            reference: None,
        }));
        assert_eq!(parse(&plain[4..]).expect("parses").room, b"");
    }
}
