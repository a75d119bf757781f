//! Voice calls: the chat-connection messages that join and leave a call, and
//! the binary packets of the voice port. See docs/protocol.md, "Voice calls".
//!
//! A call member gets a session id, a random token and the call's current
//! key and epoch over its chat connection (`voice_joined`, inside TLS). On
//! the voice port (UDP, or TCP with a 2-byte length prefix per packet) it
//! first sends a [`VoicePacket::Bind`] that proves the token with an HMAC
//! (the token itself never crosses the voice port). The server answers a
//! [`VoicePacket::BindChallenge`] with a cookie, which the client echoes,
//! under the HMAC, in a second bind from the same address (return
//! routability, and a captured bind cannot be replayed from elsewhere); then
//! `bound`. The server relays the member's [`VoicePacket::Audio`] packets,
//! sealed with AES-256-GCM under the call key ([`seal`]), unchanged to every
//! other call member. Packets are big-endian binary with a one-byte type;
//! nothing here does I/O.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[cfg(any(feature = "server", feature = "client"))]
pub mod seal;

/// Bytes in a voice token.
pub const TOKEN_LEN: usize = 16;
/// Bytes in a bind cookie (return-routability proof, §16.2).
pub const COOKIE_LEN: usize = 16;
/// Bytes of the bind proof: HMAC-SHA256 keyed with the token, truncated
/// (§16.2); a bind has the length it had when it carried the token.
pub const MAC_LEN: usize = 16;
/// Bytes of a call key (AES-256-GCM).
pub const KEY_LEN: usize = 32;
/// Bytes of the AES-GCM authentication tag at the end of every audio packet.
pub const TAG_LEN: usize = 16;
/// Bytes of a `bind` without a cookie: type, session, mac.
pub const BIND_LEN: usize = 1 + 8 + MAC_LEN;
/// Bytes of a `bind` that echoes a cookie: type, session, mac, cookie.
pub const BIND_COOKIE_LEN: usize = BIND_LEN + COOKIE_LEN;
/// Bytes of a `bind_challenge`: type, session, cookie. Never more than the
/// smallest `bind`, so answering a forged bind amplifies nothing.
pub const CHALLENGE_LEN: usize = 1 + 8 + COOKIE_LEN;
const _: () = assert!(CHALLENGE_LEN <= BIND_LEN, "a challenge must not amplify");
/// Bytes of the clear header of an audio packet: type, session, epoch,
/// counter, ts. All of it is the AEAD's associated data.
pub const AUDIO_HEADER_LEN: usize = 1 + 8 + 4 + 4 + 4;
/// Largest Opus packet (RFC 6716 §3.4: 1275 bytes for one frame).
pub const MAX_OPUS_PAYLOAD: usize = 1275;
/// Largest voice packet of any type (a sealed audio packet).
pub const MAX_PACKET: usize = AUDIO_HEADER_LEN + MAX_OPUS_PAYLOAD + TAG_LEN;
/// Bytes of the length prefix of a packet on the voice port's TCP fallback.
pub const TCP_PREFIX_LEN: usize = 2;

/// `voice_mute` from a client: tell the call whether this member is muted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceMute {
    /// `true` to mute; the server then also drops this member's audio.
    pub muted: bool,
}

/// `voice_joined`: the answer to `voice_join`, what the voice port needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceJoined {
    /// The member's chat session id; every voice packet carries it.
    pub session: u64,
    /// The HMAC key of the `bind` proof, 16 random bytes (bin). It never
    /// crosses the voice port.
    #[serde(with = "serde_bytes")]
    pub token: Vec<u8>,
    /// The call's current key epoch: audio packets sealed with `key` carry it.
    pub epoch: u32,
    /// The call key of `epoch`, 32 random bytes (bin, AES-256-GCM).
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// The voice port number (UDP and TCP) on the chat server's address.
    pub port: u16,
    /// Send something on the voice port at least this often (a `probe`
    /// when silent), or the server ends the membership after `timeout_ms`.
    pub keepalive_ms: u32,
    /// A member whose voice path is silent this long leaves the call.
    pub timeout_ms: u32,
    /// The named room whose call this is; absent: the default room's.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
    /// The call's maximum audio bitrate in bits per second (the server's
    /// `voice_max_bitrate`): the client caps its encoder at it, and the
    /// server drops a member's audio beyond the byte rate it implies
    /// (§16.4). Absent from older servers: the client keeps its own
    /// setting. Older clients ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bitrate: Option<u32>,
}

/// `voice_key`: the call has a new key (a member joined or left). Senders
/// seal with it at once; receivers keep the previous key for a grace period
/// (§16.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceKey {
    /// The new epoch, one more than the last (wrapping).
    pub epoch: u32,
    /// The key of that epoch, 32 random bytes (bin).
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
}

/// One member of the call as `voice_state` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallMember {
    /// The member's chat session (the `session` in its audio packets).
    pub session: u64,
    /// Display name.
    #[serde(deserialize_with = "super::strict::string")]
    pub name: String,
    /// Whether the member muted itself.
    pub muted: bool,
    /// Whether the member's voice path is bound (its `bind` was accepted).
    pub connected: bool,
}

/// `voice_state`: who is in the call now. Sent to every member of the room
/// whenever the call changes, and to a new member after its `welcome` when
/// the call is not empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceState {
    /// Server time, ms since the Unix epoch.
    pub ts: i64,
    /// Everyone in the call, in joining order.
    pub members: Vec<CallMember>,
    /// The named room whose call this is; absent: the default room's.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
}

/// Packet type bytes on the voice port.
pub mod packet_type {
    /// One Opus packet from a speaker (client → server → other members).
    pub const AUDIO: u8 = 0x01;
    /// Claim a session on this address, proving the token (client → server).
    pub const BIND: u8 = 0x02;
    /// The bind was accepted (server → client).
    pub const BOUND: u8 = 0x03;
    /// Echo request and keepalive (client → server).
    pub const PROBE: u8 = 0x04;
    /// Echo answer (server → client), same body as the probe.
    pub const PROBE_ACK: u8 = 0x05;
    /// Prove this address: echo the cookie in a bind (server → client, UDP).
    pub const BIND_CHALLENGE: u8 = 0x06;
}

/// One packet on the voice port, borrowed from the buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoicePacket<'a> {
    /// `01 session:u64 epoch:u32 counter:u32 ts:u32 sealed…`: one Opus
    /// packet sealed with the call key of `epoch` (see [`seal`]). `counter`
    /// counts the speaker's packets (strictly increasing, never reused);
    /// `ts` is the first sample's time on the speaker's 48 kHz clock
    /// (wrapping).
    Audio {
        /// The speaker.
        session: u64,
        /// Which call key sealed it.
        epoch: u32,
        /// The speaker's packet counter: the nonce's low 4 bytes, the replay
        /// window's position, and (low 16 bits) the jitter buffer's sequence.
        counter: u32,
        /// Timestamp in 48 kHz samples.
        ts: u32,
        /// The sealed Opus packet and its 16-byte tag, 17..=1291 bytes.
        sealed: &'a [u8],
    },
    /// `02 session:u64 mac:[16] [cookie:[16]]`: bind this session to the
    /// sender's address. The server binds only a bind that echoes the cookie
    /// of a `bind_challenge` sent to the same address (or comes from the
    /// already bound path), with a `mac` computed over that cookie.
    Bind {
        /// The session from `voice_joined`.
        session: u64,
        /// HMAC-SHA256(token, …) truncated to 16 bytes ([`seal::bind_mac`]).
        mac: [u8; MAC_LEN],
        /// The cookie of the last `bind_challenge` received on this
        /// address, if any (41-byte form); `None` is the 25-byte form.
        cookie: Option<[u8; COOKIE_LEN]>,
    },
    /// `06 session:u64 cookie:[16]`: the server's answer to a UDP bind from
    /// an address not yet proven; the client repeats its bind with `cookie`.
    BindChallenge {
        /// The session of the bind that was challenged.
        session: u64,
        /// Opaque proof bound to the address, the session and a time slot.
        cookie: [u8; COOKIE_LEN],
    },
    /// `03 session:u64`: the bind was accepted.
    Bound {
        /// The session bound.
        session: u64,
    },
    /// `04 session:u64 nonce:u32`: echo request and keepalive.
    Probe {
        /// The sender's session.
        session: u64,
        /// Any number; the answer echoes it.
        nonce: u32,
    },
    /// `05 session:u64 nonce:u32`: echo answer.
    ProbeAck {
        /// The session probed.
        session: u64,
        /// The probe's nonce.
        nonce: u32,
    },
}

/// Why a voice packet could not be parsed. The server drops such a packet
/// and counts it; it never answers one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum VoicePacketError {
    /// Zero bytes.
    #[error("empty voice packet")]
    Empty,
    /// The first byte is not a known packet type.
    #[error("unknown voice packet type {0:#04x}")]
    UnknownType(u8),
    /// The length does not fit the type.
    #[error("voice packet of type {ty:#04x} has a bad length {len}")]
    BadLength {
        /// The packet type.
        ty: u8,
        /// Its length.
        len: usize,
    },
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

impl<'a> VoicePacket<'a> {
    /// Parses one packet (a whole datagram, or one TCP packet without its prefix).
    pub fn parse(buf: &'a [u8]) -> Result<Self, VoicePacketError> {
        let &ty = buf.first().ok_or(VoicePacketError::Empty)?;
        let len = buf.len();
        let bad = VoicePacketError::BadLength { ty, len };
        match ty {
            packet_type::AUDIO => {
                if !(AUDIO_HEADER_LEN + 1 + TAG_LEN..=MAX_PACKET).contains(&len) {
                    return Err(bad);
                }
                Ok(Self::Audio {
                    session: u64_at(buf, 1),
                    epoch: u32_at(buf, 9),
                    counter: u32_at(buf, 13),
                    ts: u32_at(buf, 17),
                    sealed: &buf[AUDIO_HEADER_LEN..],
                })
            }
            packet_type::BIND => {
                if len != BIND_LEN && len != BIND_COOKIE_LEN {
                    return Err(bad);
                }
                let mut mac = [0u8; MAC_LEN];
                mac.copy_from_slice(&buf[9..BIND_LEN]);
                let cookie = (len == BIND_COOKIE_LEN).then(|| {
                    let mut c = [0u8; COOKIE_LEN];
                    c.copy_from_slice(&buf[BIND_LEN..]);
                    c
                });
                Ok(Self::Bind {
                    session: u64_at(buf, 1),
                    mac,
                    cookie,
                })
            }
            packet_type::BIND_CHALLENGE => {
                if len != CHALLENGE_LEN {
                    return Err(bad);
                }
                let mut cookie = [0u8; COOKIE_LEN];
                cookie.copy_from_slice(&buf[9..]);
                Ok(Self::BindChallenge {
                    session: u64_at(buf, 1),
                    cookie,
                })
            }
            packet_type::BOUND => {
                if len != 9 {
                    return Err(bad);
                }
                Ok(Self::Bound {
                    session: u64_at(buf, 1),
                })
            }
            packet_type::PROBE | packet_type::PROBE_ACK => {
                if len != 13 {
                    return Err(bad);
                }
                let session = u64_at(buf, 1);
                let nonce = u32_at(buf, 9);
                Ok(if ty == packet_type::PROBE {
                    Self::Probe { session, nonce }
                } else {
                    Self::ProbeAck { session, nonce }
                })
            }
            other => Err(VoicePacketError::UnknownType(other)),
        }
    }

    /// Appends the packet's bytes to `out`.
    ///
    /// A sealed part longer than [`MAX_OPUS_PAYLOAD`] + [`TAG_LEN`] is the
    /// caller's bug; it is written anyway and the receiver will drop it.
    pub fn write(&self, out: &mut Vec<u8>) {
        match *self {
            Self::Audio {
                session,
                epoch,
                counter,
                ts,
                sealed,
            } => {
                write_audio_header(out, session, epoch, counter, ts);
                out.extend_from_slice(sealed);
            }
            Self::Bind {
                session,
                mac,
                cookie,
            } => {
                out.push(packet_type::BIND);
                out.extend_from_slice(&session.to_be_bytes());
                out.extend_from_slice(&mac);
                if let Some(cookie) = cookie {
                    out.extend_from_slice(&cookie);
                }
            }
            Self::BindChallenge { session, cookie } => {
                out.push(packet_type::BIND_CHALLENGE);
                out.extend_from_slice(&session.to_be_bytes());
                out.extend_from_slice(&cookie);
            }
            Self::Bound { session } => {
                out.push(packet_type::BOUND);
                out.extend_from_slice(&session.to_be_bytes());
            }
            Self::Probe { session, nonce } | Self::ProbeAck { session, nonce } => {
                out.push(if matches!(self, Self::Probe { .. }) {
                    packet_type::PROBE
                } else {
                    packet_type::PROBE_ACK
                });
                out.extend_from_slice(&session.to_be_bytes());
                out.extend_from_slice(&nonce.to_be_bytes());
            }
        }
    }

    /// The packet as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(48);
        self.write(&mut v);
        v
    }

    /// The packet with the TCP fallback's 2-byte big-endian length prefix.
    pub fn to_tcp_vec(&self) -> Vec<u8> {
        let mut v = vec![0, 0];
        self.write(&mut v);
        let len = (v.len() - TCP_PREFIX_LEN) as u16;
        v[..2].copy_from_slice(&len.to_be_bytes());
        v
    }

    /// The session the packet names.
    pub fn session(&self) -> u64 {
        match *self {
            Self::Audio { session, .. }
            | Self::Bind { session, .. }
            | Self::BindChallenge { session, .. }
            | Self::Bound { session }
            | Self::Probe { session, .. }
            | Self::ProbeAck { session, .. } => session,
        }
    }
}

/// Appends the 21-byte clear header of an audio packet (the AEAD's
/// associated data) to `out`.
pub fn write_audio_header(out: &mut Vec<u8>, session: u64, epoch: u32, counter: u32, ts: u32) {
    out.push(packet_type::AUDIO);
    out.extend_from_slice(&session.to_be_bytes());
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&counter.to_be_bytes());
    out.extend_from_slice(&ts.to_be_bytes());
}

/// Why a TCP voice stream is broken: the prefix announced an impossible length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("voice TCP packet length {0} is outside 1..={MAX_PACKET}")]
pub struct TcpLengthError(pub usize);

/// Splits one length-prefixed packet off the front of a TCP voice stream.
///
/// `Ok(None)` means more bytes are needed; `Ok(Some(n))` means the packet is
/// `buf[2..2 + n]` and `2 + n` bytes may be consumed.
pub fn tcp_packet_len(buf: &[u8]) -> Result<Option<usize>, TcpLengthError> {
    if buf.len() < TCP_PREFIX_LEN {
        return Ok(None);
    }
    let n = u16::from_be_bytes([buf[0], buf[1]]) as usize;
    if n == 0 || n > MAX_PACKET {
        return Err(TcpLengthError(n));
    }
    Ok((buf.len() >= TCP_PREFIX_LEN + n).then_some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_packet_round_trips_with_a_twenty_one_byte_clear_header() {
        let sealed = [1u8; 1 + TAG_LEN];
        let p = VoicePacket::Audio {
            session: 7,
            epoch: 3,
            counter: 65535,
            ts: 960,
            sealed: &sealed,
        };
        let v = p.to_vec();
        assert_eq!(v.len(), AUDIO_HEADER_LEN + 1 + TAG_LEN);
        assert_eq!(
            &v[..AUDIO_HEADER_LEN],
            &[
                1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0xff, 0xff, 0, 0, 3, 0xc0
            ]
        );
        assert_eq!(VoicePacket::parse(&v), Ok(p));
    }

    #[test]
    fn every_type_round_trips_and_tcp_prefix_is_the_length() {
        let packets = [
            VoicePacket::Bind {
                session: 1 << 40,
                mac: [9; MAC_LEN],
                cookie: None,
            },
            VoicePacket::Bind {
                session: 1 << 40,
                mac: [9; MAC_LEN],
                cookie: Some([8; COOKIE_LEN]),
            },
            VoicePacket::BindChallenge {
                session: 2,
                cookie: [7; COOKIE_LEN],
            },
            VoicePacket::Bound { session: 3 },
            VoicePacket::Probe {
                session: 3,
                nonce: 0xdead_beef,
            },
            VoicePacket::ProbeAck {
                session: 3,
                nonce: 1,
            },
        ];
        for p in packets {
            let v = p.to_vec();
            assert_eq!(VoicePacket::parse(&v), Ok(p));
            let t = p.to_tcp_vec();
            assert_eq!(tcp_packet_len(&t), Ok(Some(v.len())));
            assert_eq!(&t[2..], &v[..]);
            assert_eq!(tcp_packet_len(&t[..t.len() - 1]), Ok(None));
        }
    }

    #[test]
    fn malformed_packets_are_errors_not_panics() {
        assert_eq!(VoicePacket::parse(&[]), Err(VoicePacketError::Empty));
        assert_eq!(
            VoicePacket::parse(&[0x77, 1]),
            Err(VoicePacketError::UnknownType(0x77))
        );
        // An audio header without payload, a short bind, an oversized audio packet.
        for bad in [
            vec![1u8; AUDIO_HEADER_LEN],
            vec![1u8; AUDIO_HEADER_LEN + TAG_LEN],
            vec![2u8; 10],
            vec![2u8; BIND_LEN + 1],
            vec![2u8; BIND_COOKIE_LEN + 1],
            vec![6u8; CHALLENGE_LEN - 1],
            vec![6u8; BIND_COOKIE_LEN],
            vec![1u8; MAX_PACKET + 1],
            vec![4u8; 12],
            vec![3u8; 10],
        ] {
            assert!(matches!(
                VoicePacket::parse(&bad),
                Err(VoicePacketError::BadLength { .. })
            ));
        }
        for len in 0..64 {
            let garbage: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = VoicePacket::parse(&garbage);
        }
    }

    #[test]
    fn the_challenge_is_no_larger_than_a_bind_and_matches_the_spec_bytes() {
        let challenge = VoicePacket::BindChallenge {
            session: 7,
            cookie: [0xc0; COOKIE_LEN],
        }
        .to_vec();
        let mut spec = vec![0x06, 0, 0, 0, 0, 0, 0, 0, 7];
        spec.extend_from_slice(&[0xc0; COOKIE_LEN]);
        assert_eq!(challenge, spec);
        let bind = VoicePacket::Bind {
            session: 7,
            mac: [0x11; MAC_LEN],
            cookie: Some([0xc0; COOKIE_LEN]),
        }
        .to_vec();
        let mut spec = vec![0x02, 0, 0, 0, 0, 0, 0, 0, 7];
        spec.extend_from_slice(&[0x11; MAC_LEN]);
        spec.extend_from_slice(&[0xc0; COOKIE_LEN]);
        assert_eq!(bind, spec);
        assert_eq!(bind.len(), BIND_COOKIE_LEN);
    }

    #[test]
    fn tcp_lengths_of_zero_or_over_the_maximum_are_refused() {
        assert_eq!(tcp_packet_len(&[0]), Ok(None));
        assert_eq!(tcp_packet_len(&[0, 0]), Err(TcpLengthError(0)));
        assert_eq!(tcp_packet_len(&[0xff, 0xff]), Err(TcpLengthError(65535)));
    }
}
