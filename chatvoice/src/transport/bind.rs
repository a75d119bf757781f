//! The bind handshake's packets, shared by the UDP and TCP paths (protocol
//! §16.2–16.3): building a `bind` (with the last challenge's cookie once
//! there was one) and reading what came back (`bound`, `bind_challenge`, or
//! anything else). The loops that send and wait live in `udp.rs` and
//! `tcp.rs`, which differ in framing and in what proves the address.

use chatcore::protocol::voice::seal::bind_mac;
use chatcore::protocol::voice::{COOKIE_LEN, TOKEN_LEN, VoicePacket};

/// What a packet received during the bind handshake means.
pub(super) enum BindReply {
    /// `bound` for our session: done.
    Bound,
    /// `bind_challenge` for our session: bind again with this cookie.
    Challenge([u8; COOKIE_LEN]),
    /// Anything else: ignored.
    Other,
}

pub(super) fn bind_reply(buf: &[u8], session: u64) -> BindReply {
    match VoicePacket::parse(buf) {
        Ok(VoicePacket::Bound { session: s }) if s == session => BindReply::Bound,
        Ok(VoicePacket::BindChallenge { session: s, cookie }) if s == session => {
            BindReply::Challenge(cookie)
        }
        _ => BindReply::Other,
    }
}

/// The bind packet: `cookie` is the last challenge's, once there was one;
/// the token is proven by the HMAC over session and cookie, never sent.
pub(super) fn bind_packet(
    session: u64,
    token: [u8; TOKEN_LEN],
    cookie: Option<[u8; COOKIE_LEN]>,
) -> VoicePacket<'static> {
    VoicePacket::Bind {
        session,
        mac: bind_mac(&token, session, cookie.as_ref()),
        cookie,
    }
}
