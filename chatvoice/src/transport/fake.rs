//! A tiny fake voice port for the link's unit tests (UDP and TCP, §16
//! packet layout), shared by the tests in the sibling files: it answers
//! `bind` (a challenge first, as the real server does over UDP and TCP;
//! `challenge: false` skips it), `probe`, and echoes `audio`. The real
//! relay is exercised in `tests/`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use chatcore::protocol::voice::seal::bind_mac_ok;
use chatcore::protocol::voice::{
    COOKIE_LEN, KEY_LEN, TCP_PREFIX_LEN, TOKEN_LEN, VoicePacket, tcp_packet_len,
};

use super::{CallKeys, Incoming, VoiceLink};

pub(super) const TOKEN: [u8; TOKEN_LEN] = [7; TOKEN_LEN];
/// The fake server's cookie (the real one is bound to the address).
pub(super) const COOKIE: [u8; COOKIE_LEN] = [0xc0; COOKIE_LEN];
/// The fake call's key (epoch 1).
pub(super) const KEY: [u8; KEY_LEN] = [0x4b; KEY_LEN];

/// Keys for session 5 with the fake call's key, counter from 0.
pub(super) fn keys() -> Arc<CallKeys> {
    Arc::new(CallKeys::starting_at(5, 1, &KEY, 0))
}

/// Answers like the server would: `bind` with the right token gets
/// `bind_challenge` unless it echoes the cookie (when `challenge`, as
/// over UDP), then `bound` (after ignoring the first `ignore_binds`);
/// `probe` gets `probe_ack`, `audio` is echoed back.
pub(super) fn answer(pkt: &[u8], ignore_binds: &mut u32, challenge: bool) -> Option<Vec<u8>> {
    match VoicePacket::parse(pkt).ok()? {
        VoicePacket::Bind {
            session,
            mac,
            cookie,
        } if bind_mac_ok(&TOKEN, session, cookie.as_ref(), &mac) => {
            if *ignore_binds > 0 {
                *ignore_binds -= 1;
                return None;
            }
            if challenge && cookie != Some(COOKIE) {
                return Some(
                    VoicePacket::BindChallenge {
                        session,
                        cookie: COOKIE,
                    }
                    .to_vec(),
                );
            }
            Some(VoicePacket::Bound { session }.to_vec())
        }
        VoicePacket::Probe { session, nonce } => {
            Some(VoicePacket::ProbeAck { session, nonce }.to_vec())
        }
        VoicePacket::Audio { .. } => Some(pkt.to_vec()),
        _ => None,
    }
}

pub(super) fn fake_udp(mut ignore_binds: u32) -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let addr = s.local_addr().expect("addr");
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            if let Some(a) = answer(&buf[..n], &mut ignore_binds, true) {
                let _ = s.send_to(&a, from);
            }
        }
    });
    addr
}

/// A TCP-only fake voice port: nothing listens for UDP on its number.
pub(super) fn fake_tcp() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("tcp");
    let addr = l.local_addr().expect("addr");
    thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 2048];
                let mut none = 0;
                while let Ok(n) = c.read(&mut chunk) {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Ok(Some(len)) = tcp_packet_len(&buf) {
                        let pkt: Vec<u8> = buf.drain(..TCP_PREFIX_LEN + len).skip(2).collect();
                        if let Some(a) = answer(&pkt, &mut none, true) {
                            let mut out = (a.len() as u16).to_be_bytes().to_vec();
                            out.extend_from_slice(&a);
                            if c.write_all(&out).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// The audio that came back, until none came for 500 ms (probe acks,
/// which keep coming on UDP, do not count).
pub(super) fn audio_back(link: &VoiceLink) -> Vec<u16> {
    let mut seqs = Vec::new();
    let mut last = std::time::Instant::now();
    while last.elapsed() < Duration::from_millis(500) {
        if let Ok(Incoming::Audio { session, seq, .. }) =
            link.incoming().recv_timeout(Duration::from_millis(50))
        {
            assert_eq!(session, 5);
            seqs.push(seq);
            last = std::time::Instant::now();
        }
    }
    seqs
}
