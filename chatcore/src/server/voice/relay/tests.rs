//! The relay's rules in memory: the real `Call` and `VoiceGuard`, and a
//! `VoiceOut` that records what would have gone to the sockets (the seam the
//! relay is built around; the sockets themselves are tested end to end).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::protocol::voice::seal::bind_mac;
use crate::protocol::voice::{TAG_LEN, TOKEN_LEN};
use crate::server::config::ServerConfig;

/// A `VoiceOut` that keeps every send, in order.
#[derive(Default)]
struct Recorder {
    /// Every packet handed to `send`, with where it was to go.
    sent: Vec<(VoicePath, Vec<u8>)>,
    /// TCP connections `tcp_bound` was told of.
    tcp_bound: Vec<(usize, u64)>,
    /// TCP connections the relay closed.
    closed: Vec<usize>,
}

impl VoiceOut for Recorder {
    fn send(&mut self, path: VoicePath, packet: &[u8]) -> bool {
        self.sent.push((path, packet.to_vec()));
        true
    }
    fn tcp_source(&self, key: usize) -> Option<(AddrKey, SocketAddr)> {
        let ip = IpAddr::from([127, 0, 0, 1]);
        // Each connection its own peer port, as in life.
        Some((AddrKey::of(ip), SocketAddr::new(ip, 40_000 + key as u16)))
    }
    fn tcp_bound(&mut self, key: usize, session: u64) {
        self.tcp_bound.push((key, session));
    }
    fn close_tcp(&mut self, key: usize) {
        self.closed.push(key);
    }
}

/// The state a `Relay` borrows, owned for one test.
struct Port {
    call: Call,
    guard: VoiceGuard,
    stats: ServerStats,
    relay_to: Vec<VoicePath>,
    now: Instant,
}

impl Port {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            call: Call::default(),
            guard: VoiceGuard::new(&ServerConfig::default(), now),
            stats: ServerStats::default(),
            relay_to: Vec::new(),
            now,
        }
    }

    /// Runs one packet through the relay's rules.
    fn packet(&mut self, path: VoicePath, bytes: &[u8], out: &mut Recorder) -> bool {
        Relay {
            call: &mut self.call,
            guard: &mut self.guard,
            stats: &mut self.stats,
            relay_to: &mut self.relay_to,
            now: self.now,
        }
        .packet(path, bytes, out)
    }

    /// Adds a call member whose chat key, session and token byte are `n`.
    fn join(&mut self, n: u8) {
        self.call
            .join(n.into(), n.into(), "m", [n; TOKEN_LEN], self.now);
    }

    /// Joins member `n` and binds it at `path` the way a client does: bind,
    /// challenge, bind echoing the cookie.
    fn join_bound(&mut self, n: u8, path: VoicePath) {
        self.join(n);
        let mut out = Recorder::default();
        self.packet(path, &bind(n, None), &mut out);
        let cookie = challenge_cookie(&out, path, n);
        self.packet(path, &bind(n, Some(cookie)), &mut out);
        assert!(
            self.call.bound(path, n.into()).is_some(),
            "member {n} bound"
        );
    }
}

fn udp(ip: [u8; 4], port: u16) -> VoicePath {
    VoicePath::Udp(SocketAddr::from((ip, port)))
}

/// Member `n`'s bind (its token is `n` repeated), the HMAC over `cookie`.
fn bind(n: u8, cookie: Option<[u8; COOKIE_LEN]>) -> Vec<u8> {
    VoicePacket::Bind {
        session: n.into(),
        mac: bind_mac(&[n; TOKEN_LEN], n.into(), cookie.as_ref()),
        cookie,
    }
    .to_vec()
}

/// An audio packet of the call's current epoch (the relay reads only the
/// clear header; the bytes after it stand for ciphertext and tag).
fn audio_in(epoch: u32, session: u64, counter: u32) -> Vec<u8> {
    VoicePacket::Audio {
        session,
        epoch,
        counter,
        ts: counter.wrapping_mul(960),
        sealed: &[0xaa; 3 + TAG_LEN],
    }
    .to_vec()
}

fn bound(session: u64) -> Vec<u8> {
    VoicePacket::Bound { session }.to_vec()
}

/// The cookie of the `bind_challenge` for session `n` sent to `path` (the
/// last packet recorded); fails the test if it is anything else.
fn challenge_cookie(out: &Recorder, path: VoicePath, n: u8) -> [u8; COOKIE_LEN] {
    let (to, bytes) = out.sent.last().expect("a packet was sent");
    assert_eq!(*to, path);
    match VoicePacket::parse(bytes) {
        Ok(VoicePacket::BindChallenge { session, cookie }) => {
            assert_eq!(session, u64::from(n));
            cookie
        }
        other => panic!("expected a bind_challenge, got {other:?}"),
    }
}

#[test]
fn audio_from_a_bound_member_goes_to_every_other_bound_member_and_not_back_to_the_speaker() {
    let mut port = Port::new();
    let a = udp([10, 0, 0, 1], 1);
    let b = udp([10, 0, 0, 2], 2);
    let c = udp([10, 0, 0, 3], 3);
    port.join_bound(1, a);
    port.join_bound(2, b);
    port.join_bound(3, c);
    port.join(4); // in the call, never bound: nowhere to send to
    let mut out = Recorder::default();
    let packet = audio_in(port.call.epoch(), 1, 7);

    let changed = port.packet(a, &packet, &mut out);

    assert!(!changed, "audio changes nothing in the call");
    let to: Vec<VoicePath> = out.sent.iter().map(|(p, _)| *p).collect();
    assert_eq!(to, vec![b, c], "every other bound member, in joining order");
    assert!(
        out.sent.iter().all(|(_, bytes)| *bytes == packet),
        "forwarded byte for byte"
    );
    assert_eq!(port.stats.voice_in, 1);
    assert_eq!(port.stats.voice_relayed, 2);
    assert_eq!(port.stats.voice_dropped, 0);
}

#[test]
fn audio_from_an_unbound_address_is_dropped_and_counted() {
    let mut port = Port::new();
    port.join_bound(1, udp([10, 0, 0, 1], 1));
    port.join_bound(2, udp([10, 0, 0, 2], 2));
    let mut out = Recorder::default();

    // Member 1's session, from addresses nobody bound: the same IP with
    // another port, then another IP with the same port.
    port.packet(
        udp([10, 0, 0, 1], 9),
        &audio_in(port.call.epoch(), 1, 0),
        &mut out,
    );
    port.packet(
        udp([192, 0, 2, 1], 1),
        &audio_in(port.call.epoch(), 1, 1),
        &mut out,
    );

    assert!(out.sent.is_empty(), "relayed: {:?}", out.sent);
    assert_eq!(port.stats.voice_dropped, 2);
    assert_eq!((port.stats.voice_in, port.stats.voice_relayed), (0, 0));
}

#[test]
fn audio_whose_session_is_not_the_one_bound_to_its_source_is_dropped_and_counted() {
    let mut port = Port::new();
    let a = udp([10, 0, 0, 1], 1);
    port.join_bound(1, a);
    port.join_bound(2, udp([10, 0, 0, 2], 2));
    let mut out = Recorder::default();

    // From member 1's bound address in member 2's name, then in the name of
    // a session that is not in the call.
    port.packet(a, &audio_in(port.call.epoch(), 2, 0), &mut out);
    port.packet(a, &audio_in(port.call.epoch(), 99, 0), &mut out);

    assert!(out.sent.is_empty(), "relayed: {:?}", out.sent);
    assert_eq!(port.stats.voice_dropped, 2);
    assert_eq!(port.stats.voice_in, 0);
}

#[test]
fn a_muted_members_audio_is_dropped_and_counted_and_relayed_again_once_unmuted() {
    let mut port = Port::new();
    let a = udp([10, 0, 0, 1], 1);
    let b = udp([10, 0, 0, 2], 2);
    port.join_bound(1, a);
    port.join_bound(2, b);
    port.call.by_key_mut(1).expect("member 1").muted = true;
    let mut out = Recorder::default();

    port.packet(a, &audio_in(port.call.epoch(), 1, 0), &mut out);

    assert!(out.sent.is_empty(), "muted audio relayed: {:?}", out.sent);
    assert_eq!(port.stats.voice_dropped, 1);
    assert_eq!(port.stats.voice_in, 0);

    port.call.by_key_mut(1).expect("member 1").muted = false;
    port.packet(a, &audio_in(port.call.epoch(), 1, 1), &mut out);
    let to: Vec<VoicePath> = out.sent.iter().map(|(p, _)| *p).collect();
    assert_eq!(to, vec![b], "unmuted audio goes out again");
}

#[test]
fn a_valid_bind_from_an_unproven_udp_address_gets_one_challenge_no_larger_than_the_bind_and_no_bound()
 {
    let mut port = Port::new();
    port.join(1);
    let a = udp([10, 0, 0, 1], 1);
    // Without a cookie (25 bytes), then with a cookie never issued (41).
    let binds = [bind(1, None), bind(1, Some([0x5a; COOKIE_LEN]))];
    for (i, bind) in binds.iter().enumerate() {
        let mut out = Recorder::default();

        let changed = port.packet(a, bind, &mut out);

        assert!(!changed, "no voice_state for a challenged bind");
        assert_eq!(out.sent.len(), 1, "exactly one answer: {:?}", out.sent);
        let answer = &out.sent[0].1;
        assert!(
            answer.len() <= bind.len(),
            "a challenge of {} bytes for a bind of {}",
            answer.len(),
            bind.len()
        );
        challenge_cookie(&out, a, 1);
        assert_eq!(port.call.bound(a, 1), None, "bound without proof");
        assert!(!port.call.state()[0].connected);
        assert_eq!(port.stats.voice_challenges, i as u64 + 1);
    }
}

#[test]
fn a_bind_with_a_wrong_token_gets_no_answer() {
    let mut port = Port::new();
    port.join(1);
    let a = udp([10, 0, 0, 1], 1);
    let mut out = Recorder::default();
    let guess = VoicePacket::Bind {
        session: 1,
        mac: bind_mac(&[2; TOKEN_LEN], 1, None),
        cookie: None,
    }
    .to_vec();

    port.packet(a, &guess, &mut out);

    assert!(out.sent.is_empty(), "a wrong token was answered");
    assert_eq!(port.stats.voice_dropped, 1);
    assert_eq!(port.stats.voice_challenges, 0);
}

#[test]
fn the_bind_echoing_the_cookie_from_the_same_address_is_bound() {
    let mut port = Port::new();
    port.join(1);
    let a = udp([10, 0, 0, 1], 1);
    let mut out = Recorder::default();
    port.packet(a, &bind(1, None), &mut out);
    let cookie = challenge_cookie(&out, a, 1);
    let mut out = Recorder::default();

    let changed = port.packet(a, &bind(1, Some(cookie)), &mut out);

    assert!(changed, "a new binding changes the call's visible state");
    assert_eq!(out.sent, vec![(a, bound(1))], "one `bound`, to the source");
    assert_eq!(port.call.bound(a, 1), Some(0));
    assert!(port.call.state()[0].connected);
}

#[test]
fn the_cookie_echoed_from_another_address_is_challenged_not_bound() {
    let mut port = Port::new();
    port.join(1);
    let a = udp([10, 0, 0, 1], 1);
    let mut out = Recorder::default();
    port.packet(a, &bind(1, None), &mut out);
    let cookie = challenge_cookie(&out, a, 1);

    // Another port on the same IP, then the same port on another IP.
    for other in [udp([10, 0, 0, 1], 2), udp([10, 0, 0, 2], 1)] {
        let mut out = Recorder::default();

        let changed = port.packet(other, &bind(1, Some(cookie)), &mut out);

        assert!(!changed);
        assert_eq!(out.sent.len(), 1, "one answer: {:?}", out.sent);
        let fresh = challenge_cookie(&out, other, 1);
        assert_ne!(fresh, cookie, "the other address gets its own cookie");
        assert_eq!(port.call.bound(other, 1), None);
    }
    assert!(!port.call.state()[0].connected);
}

#[test]
fn a_repeated_bind_from_the_bound_address_is_bound_again_without_a_cookie() {
    let mut port = Port::new();
    let a = udp([10, 0, 0, 1], 1);
    port.join_bound(1, a);
    let mut out = Recorder::default();

    let changed = port.packet(a, &bind(1, None), &mut out);

    assert!(!changed, "same path: nothing visible changed");
    assert_eq!(out.sent, vec![(a, bound(1))]);
    assert_eq!(port.call.bound(a, 1), Some(0));
}

#[test]
fn a_tcp_bind_is_challenged_too_and_a_new_tcp_binding_closes_the_old_tcp_path() {
    let mut port = Port::new();
    port.join(1);
    let mut out = Recorder::default();
    let t5 = VoicePath::Tcp(5);

    assert!(!port.packet(t5, &bind(1, None), &mut out));
    let cookie = challenge_cookie(&out, t5, 1);
    assert_eq!(port.call.bound(t5, 1), None, "bound without a cookie");
    // The cookie of connection 5, echoed on connection 6: challenged again.
    port.packet(VoicePath::Tcp(6), &bind(1, Some(cookie)), &mut out);
    assert_ne!(challenge_cookie(&out, VoicePath::Tcp(6), 1), cookie);
    let mut out = Recorder::default();
    let changed = port.packet(t5, &bind(1, Some(cookie)), &mut out);

    assert!(changed);
    assert_eq!(out.sent, vec![(t5, bound(1))]);
    assert_eq!(out.tcp_bound, vec![(5, 1)]);
    assert_eq!(port.call.bound(t5, 1), Some(0));
    assert_eq!(port.stats.voice_challenges, 2);

    // The member moves to a new TCP connection: the old one is closed.
    port.join_bound(1, VoicePath::Tcp(6));
    let mut out = Recorder::default();
    port.packet(VoicePath::Tcp(6), &bind(1, None), &mut out);
    assert_eq!(port.call.bound(VoicePath::Tcp(6), 1), Some(0));
    assert_eq!(port.call.bound(VoicePath::Tcp(5), 1), None);
}

#[test]
fn a_probe_from_a_bound_address_gets_a_probe_ack_with_the_same_nonce() {
    let mut port = Port::new();
    let a = udp([10, 0, 0, 1], 1);
    port.join_bound(1, a);
    let mut out = Recorder::default();
    let probe = VoicePacket::Probe {
        session: 1,
        nonce: 0xdead_beef,
    }
    .to_vec();

    port.packet(a, &probe, &mut out);

    assert_eq!(out.sent.len(), 1, "one answer: {:?}", out.sent);
    let (to, bytes) = &out.sent[0];
    assert_eq!(*to, a);
    assert_eq!(
        VoicePacket::parse(bytes),
        Ok(VoicePacket::ProbeAck {
            session: 1,
            nonce: 0xdead_beef
        })
    );
}

#[test]
fn a_probe_from_an_unbound_address_is_dropped_unanswered() {
    let mut port = Port::new();
    port.join_bound(1, udp([10, 0, 0, 1], 1));
    let mut out = Recorder::default();
    let probe = VoicePacket::Probe {
        session: 1,
        nonce: 3,
    }
    .to_vec();

    port.packet(udp([10, 0, 0, 1], 2), &probe, &mut out);

    assert!(out.sent.is_empty(), "answered: {:?}", out.sent);
    assert_eq!(port.stats.voice_dropped, 1);
}

#[test]
fn audio_beyond_the_rate_limit_is_dropped_and_counted() {
    // docs/protocol.md §16.2: 100 audio packets per second, burst 50.
    const BURST: u32 = 50;
    let mut port = Port::new();
    port.join_bound(1, udp([10, 0, 0, 1], 1));
    port.join_bound(2, udp([10, 0, 0, 2], 2));
    let a = udp([10, 0, 0, 1], 1);
    let mut out = Recorder::default();

    // All at one instant: the burst passes, the rest is dropped.
    for seq in 0..BURST + 20 {
        port.packet(a, &audio_in(port.call.epoch(), 1, seq), &mut out);
    }

    assert_eq!(out.sent.len(), BURST as usize);
    assert_eq!(port.stats.voice_in, u64::from(BURST));
    assert_eq!(port.stats.voice_relayed, u64::from(BURST));
    assert_eq!(port.stats.voice_dropped, 20);

    // 10 ms later one packet's worth has refilled, not two.
    port.now += Duration::from_millis(10);
    port.packet(a, &audio_in(port.call.epoch(), 1, 100), &mut out);
    port.packet(a, &audio_in(port.call.epoch(), 1, 101), &mut out);
    assert_eq!(out.sent.len(), BURST as usize + 1);
    assert_eq!(port.stats.voice_dropped, 21);
}

#[test]
fn packets_only_the_server_sends_and_unparsable_bytes_are_dropped_unanswered() {
    let mut port = Port::new();
    let a = udp([10, 0, 0, 1], 1);
    port.join_bound(1, a);
    let mut out = Recorder::default();
    let junk = [
        bound(1),
        VoicePacket::ProbeAck {
            session: 1,
            nonce: 1,
        }
        .to_vec(),
        VoicePacket::BindChallenge {
            session: 1,
            cookie: [0; COOKIE_LEN],
        }
        .to_vec(),
        Vec::new(),
        vec![0xff; 30],
        vec![0x02; 10],
    ];

    for bytes in &junk {
        assert!(!port.packet(a, bytes, &mut out));
    }

    assert!(out.sent.is_empty(), "answered: {:?}", out.sent);
    assert_eq!(port.stats.voice_dropped, junk.len() as u64);
    assert_eq!(port.call.bound(a, 1), Some(0), "the binding is untouched");
}

#[test]
fn audio_of_an_epoch_older_than_the_previous_one_is_dropped_and_counted_and_bytes_are_forwarded_unchanged()
 {
    let mut port = Port::new();
    let (a, b) = (udp([10, 0, 0, 1], 1), udp([10, 0, 0, 2], 1));
    port.join_bound(1, a);
    port.join_bound(2, b);
    let old = port.call.epoch();
    port.call.rekey();
    let prev = port.call.epoch();
    port.call.rekey();
    let mut out = Recorder::default();

    port.packet(a, &audio_in(old, 1, 0), &mut out);
    assert!(out.sent.is_empty(), "an epoch two back was relayed");
    assert_eq!(port.stats.voice_stale_epoch, 1);
    for epoch in [prev, port.call.epoch()] {
        let pkt = audio_in(epoch, 1, 1);
        let mut out = Recorder::default();
        port.packet(a, &pkt, &mut out);
        assert_eq!(out.sent, vec![(b, pkt)], "forwarded byte for byte");
    }
    assert_eq!(port.stats.voice_stale_epoch, 1);
}

#[test]
fn a_bind_whose_mac_does_not_cover_the_cookie_it_carries_is_dropped() {
    let mut port = Port::new();
    port.join(1);
    let a = udp([10, 0, 0, 1], 1);
    let mut out = Recorder::default();
    port.packet(a, &bind(1, None), &mut out);
    let cookie = challenge_cookie(&out, a, 1);
    // A captured cookieless bind with the cookie appended: the MAC is over
    // the session only, so the server refuses it.
    let replay = VoicePacket::Bind {
        session: 1,
        mac: bind_mac(&[1; TOKEN_LEN], 1, None),
        cookie: Some(cookie),
    }
    .to_vec();
    let mut out = Recorder::default();

    assert!(!port.packet(a, &replay, &mut out));
    assert!(out.sent.is_empty());
    assert_eq!(port.call.bound(a, 1), None);
    assert_eq!(port.stats.voice_dropped, 1);
}
