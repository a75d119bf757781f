//! The voice call over real sockets: joining over the chat connection, the
//! UDP relay, the TCP fallback, sealed audio (§16.5), and every packet the
//! server or a receiver must drop.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use chatcore::protocol::voice::seal::{CallKey, Opener, SealError, Sealer, bind_mac};
use chatcore::protocol::voice::{
    AUDIO_HEADER_LEN, BIND_LEN, COOKIE_LEN, CallMember, KEY_LEN, MAC_LEN, TOKEN_LEN, VoiceJoined,
    VoiceKey, VoiceMute, VoicePacket,
};
use chatcore::protocol::{ClientMessage, ErrorCode, ServerMessage};
use chatcore::{RunningServer, ServerConfig};
use common::{Raw, WAIT, start, test_config};

/// How long a test waits to be sure a packet did NOT arrive.
const QUIET: Duration = Duration::from_millis(300);

fn voice_config() -> ServerConfig {
    ServerConfig {
        voice_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..test_config()
    }
}

fn server() -> RunningServer {
    start(voice_config())
}

/// Logs `name` in and joins the call; returns the chat client and its
/// `voice_joined`.
fn join_call(s: &RunningServer, name: &str) -> (Raw, VoiceJoined) {
    let (mut c, _) = Raw::login(s.local_addr(), name);
    c.send(&ClientMessage::VoiceJoin);
    let joined = match c.until(|m| matches!(m, ServerMessage::VoiceJoined(_))) {
        ServerMessage::VoiceJoined(j) => j,
        _ => unreachable!(),
    };
    (c, joined)
}

/// Waits for a `voice_state` matching `pred`; returns its members.
fn until_state(c: &mut Raw, mut pred: impl FnMut(&[CallMember]) -> bool) -> Vec<CallMember> {
    match c.until(|m| matches!(m, ServerMessage::VoiceState(s) if pred(&s.members))) {
        ServerMessage::VoiceState(s) => s.members,
        _ => unreachable!(),
    }
}

/// The call key `j` was handed.
fn call_key(j: &VoiceJoined) -> CallKey {
    CallKey::new(j.epoch, &j.key).expect("32-byte key")
}

/// Waits for the next `voice_key` on `c`; returns it as a key.
fn next_key(c: &mut Raw) -> CallKey {
    match c.until(|m| matches!(m, ServerMessage::VoiceKey(_))) {
        ServerMessage::VoiceKey(VoiceKey { epoch, key }) => {
            CallKey::new(epoch, &key).expect("32-byte key")
        }
        _ => unreachable!(),
    }
}

/// A UDP socket on `ip`, connected to the voice port.
fn udp_socket(s: &RunningServer, j: &VoiceJoined, ip: [u8; 4]) -> UdpSocket {
    let sock = UdpSocket::bind(SocketAddr::from((ip, 0))).expect("udp");
    sock.set_read_timeout(Some(WAIT)).expect("timeout");
    let voice: SocketAddr = (s.local_addr().ip(), j.port).into();
    sock.connect(voice).expect("connect");
    sock
}

fn bind_packet(j: &VoiceJoined, cookie: Option<[u8; COOKIE_LEN]>) -> Vec<u8> {
    VoicePacket::Bind {
        session: j.session,
        mac: bind_mac(&j.token, j.session, cookie.as_ref()),
        cookie,
    }
    .to_vec()
}

/// Sends a cookie-less bind from `sock`; returns the challenge's cookie.
fn challenge(sock: &UdpSocket, j: &VoiceJoined) -> [u8; COOKIE_LEN] {
    sock.send(&bind_packet(j, None)).expect("send bind");
    let got = recv_udp(sock, WAIT).expect("bind_challenge");
    assert!(got.len() <= BIND_LEN, "the challenge amplifies nothing");
    match VoicePacket::parse(&got) {
        Ok(VoicePacket::BindChallenge { session, cookie }) if session == j.session => cookie,
        other => panic!("expected bind_challenge, got {other:?}"),
    }
}

/// Binds `sock`: bind, challenge, bind with the cookie, `bound`.
fn bind_with_cookie(sock: &UdpSocket, j: &VoiceJoined) {
    let cookie = challenge(sock, j);
    sock.send(&bind_packet(j, Some(cookie))).expect("send bind");
    let got = recv_udp(sock, WAIT).expect("bound");
    assert_eq!(
        VoicePacket::parse(&got),
        Ok(VoicePacket::Bound { session: j.session })
    );
}

/// A UDP socket bound to the call.
fn udp_bound(s: &RunningServer, j: &VoiceJoined) -> UdpSocket {
    let sock = udp_socket(s, j, [127, 0, 0, 1]);
    bind_with_cookie(&sock, j);
    sock
}

fn recv_udp(sock: &UdpSocket, wait: Duration) -> Option<Vec<u8>> {
    sock.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 2048];
    sock.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

/// Audio from `j`'s member, sealed with the key `j` was handed (packet
/// `counter`, so a test never repeats a nonce).
fn audio(j: &VoiceJoined, counter: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    chatcore::protocol::voice::seal::seal(
        &call_key(j),
        j.session,
        counter,
        counter.wrapping_mul(960),
        payload,
        &mut out,
    )
    .expect("seal");
    out
}

/// A TCP fallback connection bound to the call: bind, challenge, bind with
/// the cookie under the HMAC, `bound`.
fn tcp_bound(s: &RunningServer, j: &VoiceJoined) -> TcpStream {
    let voice: SocketAddr = (s.local_addr().ip(), j.port).into();
    let mut t = TcpStream::connect(voice).expect("tcp voice");
    t.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut bind = bind_packet(j, None);
    let mut framed = (bind.len() as u16).to_be_bytes().to_vec();
    framed.append(&mut bind);
    t.write_all(&framed).expect("bind");
    let cookie = match VoicePacket::parse(&read_tcp_packet(&mut t).expect("challenge")) {
        Ok(VoicePacket::BindChallenge { cookie, .. }) => cookie,
        other => panic!("expected bind_challenge, got {other:?}"),
    };
    t.write_all(&tcp_framed(&bind_packet(j, Some(cookie))))
        .expect("bind");
    assert_eq!(
        VoicePacket::parse(&read_tcp_packet(&mut t).expect("bound")),
        Ok(VoicePacket::Bound { session: j.session })
    );
    t
}

/// `p` with the TCP fallback's length prefix.
fn tcp_framed(p: &[u8]) -> Vec<u8> {
    let mut v = (p.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(p);
    v
}

fn read_tcp_packet(t: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    t.read_exact(&mut len).ok()?;
    let mut p = vec![0u8; u16::from_be_bytes(len) as usize];
    t.read_exact(&mut p).ok()?;
    Some(p)
}

#[test]
fn joining_the_call_gives_a_token_and_the_port_and_tells_the_whole_room() {
    let s = server();
    let (mut watcher, _) = Raw::login(s.local_addr(), "watcher");
    let (mut alice, j) = join_call(&s, "alice");
    assert_eq!(Some(j.port), s.voice_addr().map(|a| a.port()));
    assert_eq!(j.token.len(), TOKEN_LEN);
    assert_eq!((j.keepalive_ms, j.timeout_ms), (2000, 10_000));
    let members = until_state(&mut watcher, |m| !m.is_empty());
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].name.as_str(), members[0].session),
        ("alice", j.session)
    );
    assert!(!members[0].connected && !members[0].muted);
    until_state(&mut alice, |m| m.len() == 1);

    // A late joiner hears of the call right after its welcome.
    let (mut late, _) = Raw::login(s.local_addr(), "late");
    let members = until_state(&mut late, |_| true);
    assert_eq!(members[0].name, "alice");

    // Binding marks the member connected for everyone.
    let _sock = udp_bound(&s, &j);
    until_state(&mut watcher, |m| m.len() == 1 && m[0].connected);
}

#[test]
fn audio_over_udp_reaches_every_other_member_byte_for_byte_and_probes_are_echoed() {
    let s = server();
    let (_a, ja) = join_call(&s, "a");
    let (_b, jb) = join_call(&s, "b");
    let (_c, jc) = join_call(&s, "c");
    let (ua, ub, uc) = (udp_bound(&s, &ja), udp_bound(&s, &jb), udp_bound(&s, &jc));

    // c joined last: its key is the call's current one.
    let pkt = audio(&jc, 7, &[0xaa; 120]);
    uc.send(&pkt).expect("send");
    assert_eq!(recv_udp(&ub, WAIT).as_deref(), Some(&pkt[..]));
    assert_eq!(recv_udp(&ua, WAIT).as_deref(), Some(&pkt[..]));
    assert_eq!(recv_udp(&uc, QUIET), None, "a speaker does not hear itself");

    let probe = VoicePacket::Probe {
        session: jb.session,
        nonce: 99,
    };
    ub.send(&probe.to_vec()).expect("probe");
    let ack = recv_udp(&ub, WAIT).expect("probe_ack");
    assert_eq!(
        VoicePacket::parse(&ack),
        Ok(VoicePacket::ProbeAck {
            session: jb.session,
            nonce: 99
        })
    );
    let stats = s.handle().stats().expect("stats");
    assert_eq!((stats.voice_in, stats.voice_relayed), (1, 2));
    assert_eq!(stats.call_members, 3);
}

#[test]
fn packets_from_strangers_wrong_tokens_spoofed_sessions_and_garbage_are_dropped() {
    let s = server();
    let (_a, ja) = join_call(&s, "a");
    let (_b, jb) = join_call(&s, "b");
    let ub = udp_bound(&s, &jb);
    let voice: SocketAddr = (s.local_addr().ip(), ja.port).into();

    let stranger = UdpSocket::bind("127.0.0.1:0").expect("udp");
    stranger.connect(voice).expect("connect");
    // Audio from an address nobody bound.
    stranger.send(&audio(&ja, 1, &[1; 10])).expect("send");
    // A bind with a wrong token gets no answer.
    let mut bad = ja.token.clone();
    bad[0] ^= 0xff;
    let wrong = VoicePacket::Bind {
        session: ja.session,
        mac: bind_mac(&bad, ja.session, None),
        cookie: None,
    };
    stranger.send(&wrong.to_vec()).expect("send");
    assert_eq!(recv_udp(&stranger, QUIET), None);
    // b's bound address claiming to speak as a.
    ub.send(&audio(&ja, 2, &[2; 10])).expect("send");
    // Garbage and an unknown type.
    for junk in [
        &[][..],
        &[0x77, 1, 2][..],
        &[1, 2, 3][..],
        &[0xff; 1400][..],
    ] {
        stranger.send(junk).expect("send");
    }
    let ua = udp_bound(&s, &ja);
    assert_eq!(recv_udp(&ua, QUIET), None, "nothing was relayed to a");
    assert_eq!(recv_udp(&ub, QUIET), None, "nothing was relayed to b");
    let stats = s.handle().stats().expect("stats");
    assert_eq!(stats.voice_relayed, 0);
    assert!(stats.voice_dropped >= 7, "dropped {}", stats.voice_dropped);

    // The room is undisturbed: a still speaks to b.
    let pkt = audio(&ja, 3, &[3; 10]);
    ua.send(&pkt).expect("send");
    assert_eq!(recv_udp(&ub, WAIT).as_deref(), Some(&pkt[..]));
}

#[test]
fn tcp_fallback_members_and_udp_members_hear_each_other() {
    let s = server();
    let (_a, ja) = join_call(&s, "tcp-user");
    let (_b, jb) = join_call(&s, "udp-user");
    let mut ta = tcp_bound(&s, &ja);
    let ub = udp_bound(&s, &jb);

    let from_a = audio(&ja, 1, &[5; 200]);
    let mut prefixed = (from_a.len() as u16).to_be_bytes().to_vec();
    prefixed.extend_from_slice(&from_a);
    // Split across two writes: the server reassembles packets.
    ta.write_all(&prefixed[..7]).expect("write");
    std::thread::sleep(Duration::from_millis(20));
    ta.write_all(&prefixed[7..]).expect("write");
    assert_eq!(recv_udp(&ub, WAIT).as_deref(), Some(&from_a[..]));

    let from_b = audio(&jb, 1, &[6; 100]);
    ub.send(&from_b).expect("send");
    assert_eq!(read_tcp_packet(&mut ta).as_deref(), Some(&from_b[..]));

    // Probes work over TCP too.
    let probe = VoicePacket::Probe {
        session: ja.session,
        nonce: 5,
    };
    ta.write_all(&probe.to_tcp_vec()).expect("probe");
    let ack = read_tcp_packet(&mut ta).expect("ack");
    assert!(matches!(
        VoicePacket::parse(&ack),
        Ok(VoicePacket::ProbeAck { nonce: 5, .. })
    ));
}

#[test]
fn a_tcp_length_prefix_of_zero_or_over_the_limit_closes_only_that_connection() {
    let s = server();
    let (_a, ja) = join_call(&s, "a");
    let (_b, jb) = join_call(&s, "b");
    let ub = udp_bound(&s, &jb);
    for bad in [[0u8, 0], [0xff, 0xff]] {
        let mut t = tcp_bound(&s, &ja);
        t.write_all(&bad).expect("write");
        let mut buf = [0u8; 16];
        let closed = matches!(t.read(&mut buf), Ok(0) | Err(_));
        assert!(
            closed,
            "the server closes a voice stream with length {bad:?}"
        );
    }
    // Others are unaffected: a binds again over UDP and is heard.
    let ua = udp_bound(&s, &ja);
    let pkt = audio(&ja, 1, &[1; 20]);
    ua.send(&pkt).expect("send");
    assert_eq!(recv_udp(&ub, WAIT).as_deref(), Some(&pkt[..]));
}

#[test]
fn muted_members_are_shown_muted_and_their_audio_is_dropped() {
    let s = server();
    let (mut a, ja) = join_call(&s, "a");
    let (_b, jb) = join_call(&s, "b");
    let (ua, ub) = (udp_bound(&s, &ja), udp_bound(&s, &jb));
    a.send(&ClientMessage::VoiceMute(VoiceMute { muted: true }));
    until_state(&mut a, |m| m.iter().any(|x| x.name == "a" && x.muted));
    ua.send(&audio(&ja, 1, &[1; 20])).expect("send");
    assert_eq!(recv_udp(&ub, QUIET), None);
    a.send(&ClientMessage::VoiceMute(VoiceMute { muted: false }));
    until_state(&mut a, |m| m.iter().any(|x| x.name == "a" && !x.muted));
    let pkt = audio(&ja, 2, &[2; 20]);
    ua.send(&pkt).expect("send");
    assert_eq!(recv_udp(&ub, WAIT).as_deref(), Some(&pkt[..]));
}

#[test]
fn leaving_the_room_or_the_call_ends_membership_and_others_stop_hearing() {
    let s = server();
    let (mut a, ja) = join_call(&s, "a");
    let (mut b, jb) = join_call(&s, "b");
    let (c, jc) = join_call(&s, "c");
    let (ua, uc) = (udp_bound(&s, &ja), udp_bound(&s, &jc));
    let _ub = udp_bound(&s, &jb);

    b.send(&ClientMessage::VoiceLeave);
    until_state(&mut a, |m| m.len() == 2 && m.iter().all(|x| x.name != "b"));
    b.send(&ClientMessage::VoiceLeave);
    assert_eq!(b.expect_error(), ErrorCode::NotInCall);
    b.send(&ClientMessage::VoiceMute(VoiceMute { muted: true }));
    assert_eq!(b.expect_error(), ErrorCode::NotInCall);

    drop(c); // c's chat connection ends: it leaves the room and the call.
    until_state(&mut a, |m| m.len() == 1 && m[0].name == "a");
    uc.send(&audio(&jc, 1, &[1; 10])).expect("send");
    assert_eq!(recv_udp(&ua, QUIET), None, "c's old path is not relayed");
    assert_eq!(s.handle().stats().expect("stats").call_members, 1);
}

#[test]
fn a_member_whose_voice_path_falls_silent_is_removed_from_the_call() {
    let s = start(ServerConfig {
        heartbeat_ms: 100,
        voice_keepalive_ms: 100,
        voice_timeout_ms: 400,
        ..voice_config()
    });
    let (mut a, ja) = join_call(&s, "a");
    let ua = udp_bound(&s, &ja);
    let (_b, _jb) = join_call(&s, "b");
    // a keeps its path alive with probes; b never binds.
    for n in 0..10 {
        let probe = VoicePacket::Probe {
            session: ja.session,
            nonce: n,
        };
        ua.send(&probe.to_vec()).expect("probe");
        std::thread::sleep(Duration::from_millis(100));
    }
    let members = until_state(&mut a, |m| m.len() == 1);
    assert_eq!(members[0].name, "a", "b timed out, a stayed");
}

#[test]
fn voice_join_is_refused_without_a_voice_port_or_when_the_call_is_full() {
    let s = start(test_config());
    let (mut a, _) = Raw::login(s.local_addr(), "a");
    a.send(&ClientMessage::VoiceJoin);
    assert_eq!(a.expect_error(), ErrorCode::VoiceUnavailable);

    let s = start(ServerConfig {
        max_call_members: 1,
        ..voice_config()
    });
    let _first = join_call(&s, "first");
    let (mut second, _) = Raw::login(s.local_addr(), "second");
    second.send(&ClientMessage::VoiceJoin);
    assert_eq!(second.expect_error(), ErrorCode::CallFull);
}

#[test]
fn voice_messages_before_login_are_refused() {
    let s = server();
    let mut c = Raw::connect(s.local_addr());
    c.send(&ClientMessage::VoiceJoin);
    assert_eq!(c.expect_error(), ErrorCode::NotLoggedIn);
}

#[test]
fn a_flood_of_garbage_datagrams_does_not_stop_chat_or_the_call() {
    let s = server();
    let (mut a, ja) = join_call(&s, "a");
    let (_b, jb) = join_call(&s, "b");
    let (ua, ub) = (udp_bound(&s, &ja), udp_bound(&s, &jb));
    let voice: SocketAddr = (s.local_addr().ip(), ja.port).into();
    let flooder = std::thread::spawn(move || {
        let f = UdpSocket::bind("127.0.0.1:0").expect("udp");
        for i in 0..50_000u32 {
            let _ = f.send_to(&i.to_be_bytes(), voice);
        }
    });
    // Chat is answered while the flood runs, and after it.
    assert!(a.is_alive(1), "chat answers during the flood");
    flooder.join().expect("flooder");
    assert!(a.is_alive(2), "chat answers after the flood");
    let pkt = audio(&ja, 1, &[1; 40]);
    ua.send(&pkt).expect("send");
    assert_eq!(recv_udp(&ub, WAIT).as_deref(), Some(&pkt[..]));
    assert!(s.handle().stats().expect("stats").voice_dropped > 0);
}

#[test]
fn a_udp_bind_from_an_unproven_address_gets_only_a_challenge_and_no_audio_until_the_cookie_comes_back()
 {
    let s = server();
    let (mut a, ja) = join_call(&s, "a");
    let (_b, jb) = join_call(&s, "b");
    let ub = udp_bound(&s, &jb);
    // a's bind with a valid token: a challenge, not `bound` (a forged
    // source would get this 25-byte packet and nothing else).
    let ua = udp_socket(&s, &ja, [127, 0, 0, 1]);
    let cookie = challenge(&ua, &ja);
    let pkt = audio(&jb, 1, &[1; 100]);
    ub.send(&pkt).expect("send");
    assert_eq!(
        recv_udp(&ua, QUIET),
        None,
        "no audio to an unproven address"
    );
    let members = until_state(&mut a, |m| {
        m.len() == 2 && m.iter().any(|x| x.session == jb.session && x.connected)
    });
    assert!(
        members
            .iter()
            .any(|m| m.session == ja.session && !m.connected),
        "a is not bound after a bare bind"
    );
    // The cookie echoed from the same address binds it; audio then flows.
    ua.send(&bind_packet(&ja, Some(cookie))).expect("send");
    assert_eq!(
        VoicePacket::parse(&recv_udp(&ua, WAIT).expect("bound")),
        Ok(VoicePacket::Bound {
            session: ja.session
        })
    );
    let pkt = audio(&jb, 2, &[2; 100]);
    ub.send(&pkt).expect("send");
    assert_eq!(recv_udp(&ua, WAIT).as_deref(), Some(&pkt[..]));
    let stats = s.handle().stats().expect("stats");
    assert_eq!(stats.voice_challenges, 2, "one per member that bound");
}

#[test]
fn a_cookie_only_binds_the_address_it_was_sent_to_and_a_wrong_cookie_earns_a_new_challenge() {
    let s = server();
    let (_a, ja) = join_call(&s, "a");
    let (_b, jb) = join_call(&s, "b");
    let ub = udp_bound(&s, &jb);
    let here = udp_socket(&s, &ja, [127, 0, 0, 1]);
    let cookie = challenge(&here, &ja);
    // The same cookie from another port and from another address: neither
    // is bound; each gets its own challenge with a different cookie.
    for ip in [[127, 0, 0, 1], [127, 0, 0, 2]] {
        let elsewhere = udp_socket(&s, &ja, ip);
        elsewhere
            .send(&bind_packet(&ja, Some(cookie)))
            .expect("send");
        match VoicePacket::parse(&recv_udp(&elsewhere, WAIT).expect("answer")) {
            Ok(VoicePacket::BindChallenge { cookie: c, .. }) => assert_ne!(c, cookie),
            other => panic!("expected a new challenge, got {other:?}"),
        }
        ub.send(&audio(&jb, 1, &[1; 10])).expect("send");
        assert_eq!(recv_udp(&elsewhere, QUIET), None, "not relayed there");
    }
    // A cookie with one bit flipped is no proof either.
    let mut flipped = cookie;
    flipped[0] ^= 1;
    here.send(&bind_packet(&ja, Some(flipped))).expect("send");
    assert!(matches!(
        VoicePacket::parse(&recv_udp(&here, WAIT).expect("answer")),
        Ok(VoicePacket::BindChallenge { .. })
    ));
    // A cookie for another session is no proof for this one.
    let other_session = VoicePacket::Bind {
        session: jb.session,
        mac: bind_mac(&jb.token, jb.session, Some(&cookie)),
        cookie: Some(cookie),
    };
    here.send(&other_session.to_vec()).expect("send");
    assert!(matches!(
        VoicePacket::parse(&recv_udp(&here, WAIT).expect("answer")),
        Ok(VoicePacket::BindChallenge { .. })
    ));
    // The genuine one still binds, and b (bound all along) is undisturbed.
    here.send(&bind_packet(&ja, Some(cookie))).expect("send");
    assert_eq!(
        VoicePacket::parse(&recv_udp(&here, WAIT).expect("bound")),
        Ok(VoicePacket::Bound {
            session: ja.session
        })
    );
    let pkt = audio(&ja, 5, &[5; 10]);
    here.send(&pkt).expect("send");
    assert_eq!(recv_udp(&ub, WAIT).as_deref(), Some(&pkt[..]));
}

#[test]
fn token_guesses_beyond_the_per_address_budget_are_dropped_and_counted_and_other_addresses_still_bind()
 {
    let s = server();
    let (_a, ja) = join_call(&s, "a");
    let guesser = udp_socket(&s, &ja, [127, 0, 0, 3]);
    let guesses = 2000u32;
    let started = std::time::Instant::now();
    // In batches, each counted by the server before the next is sent: a
    // burst of 2,000 datagrams could overflow the socket's receive buffer on
    // a busy machine, and datagrams the kernel drops reach no rule at all.
    let counted = |st: &chatcore::ServerStats| st.voice_binds_limited + st.voice_dropped;
    for batch in 0..guesses / 100 {
        for i in batch * 100..(batch + 1) * 100 {
            let mut t = [0u8; MAC_LEN];
            t[..4].copy_from_slice(&i.to_be_bytes());
            let guess = VoicePacket::Bind {
                session: ja.session,
                mac: t,
                cookie: None,
            };
            guesser.send(&guess.to_vec()).expect("send");
        }
        for _ in 0..100 {
            let stats = s.handle().stats().expect("stats");
            if counted(&stats) >= u64::from((batch + 1) * 100) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    assert_eq!(recv_udp(&guesser, QUIET), None, "no guess is answered");
    let stats = s.handle().stats().expect("stats");
    // Nearly every guess reached the server (the batches are small)...
    let seen = counted(&stats);
    assert!(
        seen >= u64::from(guesses) * 9 / 10,
        "only {seen} of {guesses} guesses seen"
    );
    // ...and all but the burst and what the rate refilled meanwhile were
    // refused before the token was even looked at.
    let config = ServerConfig::default();
    let allowed = config.voice_bind_burst
        + config.voice_bind_rate_per_sec * started.elapsed().as_secs_f64()
        + 1.0;
    assert!(
        stats.voice_binds_limited as f64 >= seen as f64 - allowed,
        "limited {} of {seen} seen (burst and refill {allowed:.0})",
        stats.voice_binds_limited
    );
    // A member on another address binds at once.
    let ua = udp_socket(&s, &ja, [127, 0, 0, 4]);
    bind_with_cookie(&ua, &ja);
}

#[test]
fn a_tcp_bind_is_challenged_too_so_a_captured_bind_cannot_be_replayed_on_another_connection() {
    let s = server();
    let (_a, ja) = join_call(&s, "a");
    let _t = tcp_bound(&s, &ja);
    assert_eq!(s.handle().stats().expect("stats").voice_challenges, 1);
    // An on-path attacker replays the bind it saw (cookie and HMAC) on its
    // own connection: the cookie was issued to the other connection's
    // address, so it only earns a new challenge it cannot answer.
    let voice: SocketAddr = (s.local_addr().ip(), ja.port).into();
    let mut thief = TcpStream::connect(voice).expect("tcp voice");
    thief.set_read_timeout(Some(WAIT)).expect("timeout");
    thief
        .write_all(&tcp_framed(&bind_packet(&ja, None)))
        .expect("bind");
    let cookie = match VoicePacket::parse(&read_tcp_packet(&mut thief).expect("challenge")) {
        Ok(VoicePacket::BindChallenge { cookie, .. }) => cookie,
        other => panic!("expected bind_challenge, got {other:?}"),
    };
    let captured = bind_packet(&ja, Some(cookie));
    let mut replayer = TcpStream::connect(voice).expect("tcp voice");
    replayer.set_read_timeout(Some(WAIT)).expect("timeout");
    replayer.write_all(&tcp_framed(&captured)).expect("replay");
    assert!(matches!(
        VoicePacket::parse(&read_tcp_packet(&mut replayer).expect("answer")),
        Ok(VoicePacket::BindChallenge { .. })
    ));
}

/// Whether the server closed `t` (end of stream or reset) within its read
/// timeout; `false` if the read timed out with the connection open.
fn closed_by_server(t: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    match t.read(&mut buf) {
        Ok(n) => n == 0,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn sixty_four_silent_tcp_voice_connections_do_not_keep_a_real_tcp_bind_out() {
    let s = server();
    let (_a, ja) = join_call(&s, "a");
    let (_b, jb) = join_call(&s, "b");
    let voice: SocketAddr = (s.local_addr().ip(), ja.port).into();
    let mut silent: Vec<TcpStream> = (0..64)
        .map(|_| {
            let t = TcpStream::connect(voice).expect("connect");
            t.set_read_timeout(Some(QUIET)).expect("timeout");
            t
        })
        .collect();
    // Real members still bind over TCP and hear each other.
    let mut ta = tcp_bound(&s, &ja);
    let mut tb = tcp_bound(&s, &jb);
    let pkt = audio(&ja, 1, &[1; 50]);
    ta.write_all(&tcp_framed(&pkt)).expect("send");
    assert_eq!(read_tcp_packet(&mut tb).as_deref(), Some(&pkt[..]));
    // Only `voice_unbound_per_address` (8) unbound ones from this address
    // were kept, the oldest closed to make room: a's connection closed one
    // more and then bound (bound ones do not count), so b's found room.
    let per_address = ServerConfig::default().voice_unbound_per_address;
    let closed: Vec<bool> = silent.iter_mut().map(closed_by_server).collect();
    let open: Vec<usize> = (0..64).filter(|&i| !closed[i]).collect();
    assert_eq!(
        open,
        (64 - per_address + 1..64).collect::<Vec<_>>(),
        "the newest stay"
    );
}

#[test]
fn unbound_tcp_voice_connections_are_capped_in_total_but_bound_ones_never_count() {
    let s = start(ServerConfig {
        voice_unbound_per_address: 1000,
        voice_unbound_max: 3,
        ..voice_config()
    });
    let (_a, ja) = join_call(&s, "a");
    let (_b, jb) = join_call(&s, "b");
    let voice: SocketAddr = (s.local_addr().ip(), ja.port).into();
    let mut ta = tcp_bound(&s, &ja);
    let mut tb = tcp_bound(&s, &jb);
    let mut silent: Vec<TcpStream> = (0..10)
        .map(|_| {
            let t = TcpStream::connect(voice).expect("connect");
            t.set_read_timeout(Some(QUIET)).expect("timeout");
            t
        })
        .collect();
    // A round trip on a bound connection: every accept above was handled.
    let probe = VoicePacket::Probe {
        session: ja.session,
        nonce: 1,
    };
    ta.write_all(&probe.to_tcp_vec()).expect("probe");
    assert!(read_tcp_packet(&mut ta).is_some());
    let open: Vec<bool> = silent.iter_mut().map(|t| !closed_by_server(t)).collect();
    let mut expected = vec![false; 7];
    expected.extend([true; 3]);
    assert_eq!(open, expected, "the 3 newest unbound ones are kept");
    // The two bound connections were not touched.
    let pkt = audio(&ja, 1, &[1; 20]);
    let mut framed = (pkt.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&pkt);
    ta.write_all(&framed).expect("send");
    assert_eq!(read_tcp_packet(&mut tb).as_deref(), Some(&pkt[..]));
}

#[test]
fn a_tcp_voice_connection_that_does_not_bind_in_time_is_closed() {
    let s = start(ServerConfig {
        heartbeat_ms: 100,
        voice_unbound_timeout_ms: 200,
        ..voice_config()
    });
    let (_a, ja) = join_call(&s, "a");
    let voice: SocketAddr = (s.local_addr().ip(), ja.port).into();
    let mut t = TcpStream::connect(voice).expect("connect");
    t.set_read_timeout(Some(WAIT)).expect("timeout");
    assert!(closed_by_server(&mut t));
}

#[test]
fn tcp_bind_guesses_beyond_the_per_address_budget_close_the_connection() {
    let s = server();
    let (_a, ja) = join_call(&s, "a");
    let voice: SocketAddr = (s.local_addr().ip(), ja.port).into();
    let mut t = TcpStream::connect(voice).expect("connect");
    t.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut guesses = Vec::new();
    for i in 0..1000u32 {
        let mut g = [0u8; MAC_LEN];
        g[..4].copy_from_slice(&i.to_be_bytes());
        guesses.extend(
            VoicePacket::Bind {
                session: ja.session,
                mac: g,
                cookie: None,
            }
            .to_tcp_vec(),
        );
    }
    // The server may close while the guesses are still being written.
    let _ = t.write_all(&guesses);
    assert!(closed_by_server(&mut t));
    assert!(s.handle().stats().expect("stats").voice_binds_limited > 0);
}

#[test]
fn sealed_audio_crosses_the_relay_unchanged_over_udp_and_tcp_and_opens_only_with_the_call_key() {
    let s = server();
    let (mut a, ja) = join_call(&s, "tcp-user");
    let (_b, jb) = join_call(&s, "udp-user");
    // b's join started a new epoch: a hears of it in a `voice_key`.
    let a_key = next_key(&mut a);
    assert_eq!(a_key.epoch(), jb.epoch);
    assert_eq!(jb.key.len(), KEY_LEN);
    assert_ne!(ja.key, jb.key, "a join draws a new key");
    let mut ta = tcp_bound(&s, &ja);
    let ub = udp_bound(&s, &jb);
    let t0 = Instant::now();

    // b speaks over UDP; a receives over TCP exactly the bytes b sent.
    let opus: Vec<u8> = (0..160).map(|i| (i * 7) as u8).collect();
    let mut b_sealer = Sealer::new(jb.session, call_key(&jb));
    let mut pkt = Vec::new();
    b_sealer.seal(960, &opus, &mut pkt).expect("seal");
    ub.send(&pkt).expect("send");
    let got = read_tcp_packet(&mut ta).expect("relayed");
    assert_eq!(got, pkt, "the relay forwards the sealed bytes unchanged");
    assert!(
        !got.windows(32).any(|w| w == &opus[..32]),
        "the Opus bytes are not on the wire in clear"
    );
    let mut a_opener = Opener::new(call_key(&ja));
    a_opener.set_key(a_key.clone(), t0);
    let mut out = Vec::new();
    let opened = a_opener.open(&got, t0, &mut out).expect("a opens it");
    assert_eq!((opened.session, out.as_slice()), (jb.session, &opus[..]));

    // Someone without the key (a stranger's guess, or last epoch's key
    // relabelled) cannot open what it captured.
    let mut stranger = Opener::new(CallKey::new(jb.epoch, &[0x42; KEY_LEN]).expect("key"));
    assert_eq!(stranger.open(&got, t0, &mut out), Err(SealError::Forged));
    let mut relabelled = Opener::new(CallKey::new(jb.epoch, &ja.key).expect("key"));
    assert_eq!(relabelled.open(&got, t0, &mut out), Err(SealError::Forged));

    // a speaks over TCP with the newest key; b opens it from UDP.
    let mut a_sealer = Sealer::new(ja.session, call_key(&ja));
    a_sealer.set_key(a_key);
    let mut pkt = Vec::new();
    a_sealer.seal(0, &[9; 50], &mut pkt).expect("seal");
    ta.write_all(&tcp_framed(&pkt)).expect("send");
    let got = recv_udp(&ub, WAIT).expect("relayed");
    assert_eq!(got, pkt);
    let mut b_opener = Opener::new(call_key(&jb));
    assert!(b_opener.open(&got, t0, &mut out).is_ok());
    assert_eq!(out, [9; 50]);
}

#[test]
fn a_former_member_cannot_open_what_is_said_after_it_left_nor_a_new_member_what_was_said_before() {
    let s = server();
    let (mut a, ja) = join_call(&s, "a");
    let (mut b, jb) = join_call(&s, "b");
    let a_key = next_key(&mut a);
    let (ua, ub) = (udp_bound(&s, &ja), udp_bound(&s, &jb));
    let t0 = Instant::now();
    let mut a_sealer = Sealer::new(ja.session, call_key(&ja));
    a_sealer.set_key(a_key);

    // Said while only a and b were in the call, captured on the wire.
    let mut before = Vec::new();
    a_sealer.seal(0, &[1; 40], &mut before).expect("seal");
    ua.send(&before).expect("send");
    assert_eq!(recv_udp(&ub, WAIT).as_deref(), Some(&before[..]));

    // c joins: its key is a new epoch's, which opens nothing said before.
    let (mut c, jc) = join_call(&s, "c");
    let mut c_opener = Opener::new(call_key(&jc));
    let mut out = Vec::new();
    assert_eq!(
        c_opener.open(&before, t0, &mut out),
        Err(SealError::UnknownEpoch(jb.epoch))
    );
    let mut c_relabelled = before.clone();
    c_relabelled[9..13].copy_from_slice(&jc.epoch.to_be_bytes());
    assert_eq!(
        c_opener.open(&c_relabelled, t0, &mut out),
        Err(SealError::Forged)
    );

    // c leaves: a and b get a new epoch c never sees.
    a_sealer.set_key(next_key(&mut a));
    b.until(|m| matches!(m, ServerMessage::VoiceKey(_)));
    c.send(&ClientMessage::VoiceLeave);
    let after_key = next_key(&mut a);
    assert_ne!(after_key.epoch(), jc.epoch);
    a_sealer.set_key(after_key);
    let mut after = Vec::new();
    a_sealer.seal(960, &[2; 40], &mut after).expect("seal");
    ua.send(&after).expect("send");
    // b still hears it (its own key came in a voice_key too)...
    assert_eq!(recv_udp(&ub, WAIT).as_deref(), Some(&after[..]));
    // ...but c, holding every key it was ever given, cannot open it.
    assert!(matches!(
        c_opener.open(&after, t0, &mut out),
        Err(SealError::UnknownEpoch(_))
    ));
    let mut relabelled = after.clone();
    relabelled[9..13].copy_from_slice(&jc.epoch.to_be_bytes());
    assert_eq!(
        c_opener.open(&relabelled, t0, &mut out),
        Err(SealError::Forged)
    );
    let stats = c_opener.stats;
    assert_eq!((stats.opened, stats.forged, stats.unknown_epoch), (0, 2, 2));
}

#[test]
fn replayed_and_tampered_packets_through_the_relay_are_rejected_and_counted_by_the_receiver() {
    let s = server();
    let (_a, ja) = join_call(&s, "a");
    let (_b, jb) = join_call(&s, "b");
    let (ua, ub) = (udp_bound(&s, &ja), udp_bound(&s, &jb));
    let t0 = Instant::now();
    let mut a_sealer = Sealer::new(ja.session, call_key(&ja));
    let mut b_opener = {
        // b knows both epochs: the one a seals in is the previous one.
        let mut o = Opener::new(call_key(&ja));
        o.set_key(call_key(&jb), t0);
        o
    };
    let mut pkt = Vec::new();
    a_sealer.seal(0, &[3; 80], &mut pkt).expect("seal");
    let mut flipped_header = pkt.clone();
    flipped_header[AUDIO_HEADER_LEN - 1] ^= 1; // a bit of ts
    let mut flipped_body = pkt.clone();
    flipped_body[AUDIO_HEADER_LEN + 5] ^= 0x80;
    let mut flipped_tag = pkt.clone();
    *flipped_tag.last_mut().expect("tag") ^= 1;
    let mut out = Vec::new();
    let mut verdicts = Vec::new();
    for p in [&pkt, &pkt, &flipped_header, &flipped_body, &flipped_tag] {
        ua.send(p).expect("send");
        // The relay checks path and session, not contents: every one arrives.
        let got = recv_udp(&ub, WAIT).expect("relayed");
        verdicts.push(b_opener.open(&got, t0, &mut out).err());
    }
    assert_eq!(
        verdicts,
        vec![
            None,
            Some(SealError::Replayed),
            Some(SealError::Replayed),
            Some(SealError::Replayed),
            Some(SealError::Replayed),
        ],
        "a seen counter is refused before its tag is even checked"
    );
    // Tampered copies of a fresh packet fail authentication.
    let mut fresh = Vec::new();
    a_sealer.seal(960, &[4; 80], &mut fresh).expect("seal");
    for (at, bit) in [
        (AUDIO_HEADER_LEN - 1, 1u8),
        (AUDIO_HEADER_LEN + 5, 0x80),
        (fresh.len() - 1, 1),
    ] {
        let mut bad = fresh.clone();
        bad[at] ^= bit;
        ua.send(&bad).expect("send");
        let got = recv_udp(&ub, WAIT).expect("relayed");
        assert_eq!(b_opener.open(&got, t0, &mut out), Err(SealError::Forged));
    }
    ua.send(&fresh).expect("send");
    let got = recv_udp(&ub, WAIT).expect("relayed");
    assert!(
        b_opener.open(&got, t0, &mut out).is_ok(),
        "the genuine one still plays"
    );
    let st = b_opener.stats;
    assert_eq!((st.opened, st.replayed, st.forged), (2, 4, 3));
}

#[test]
fn a_bind_with_a_wrong_hmac_is_refused_and_the_token_never_crosses_the_voice_port() {
    let s = server();
    let (_a, ja) = join_call(&s, "a");
    let sock = udp_socket(&s, &ja, [127, 0, 0, 1]);
    // The token itself as the proof (what a v1 client sent), an HMAC with
    // another key, an HMAC for another session: no answer at all.
    let token: [u8; MAC_LEN] = ja.token.as_slice().try_into().expect("16 bytes");
    let mut other_key = ja.token.clone();
    other_key[15] ^= 1;
    for mac in [
        token,
        bind_mac(&other_key, ja.session, None),
        bind_mac(&ja.token, ja.session + 1, None),
    ] {
        let p = VoicePacket::Bind {
            session: ja.session,
            mac,
            cookie: None,
        };
        sock.send(&p.to_vec()).expect("send");
        assert_eq!(recv_udp(&sock, QUIET), None, "a wrong proof was answered");
    }
    // Every packet the real bind sends carries the proof, never the token.
    let cookie = challenge(&sock, &ja);
    for p in [bind_packet(&ja, None), bind_packet(&ja, Some(cookie))] {
        assert!(!p.windows(TOKEN_LEN).any(|w| w == ja.token.as_slice()));
    }
    sock.send(&bind_packet(&ja, Some(cookie))).expect("send");
    assert_eq!(
        VoicePacket::parse(&recv_udp(&sock, WAIT).expect("bound")),
        Ok(VoicePacket::Bound {
            session: ja.session
        })
    );
    assert_eq!(s.handle().stats().expect("stats").voice_dropped, 3);
}

#[test]
fn audio_of_an_epoch_two_changes_old_is_dropped_by_the_relay_and_counted() {
    let s = server();
    let (_a, ja) = join_call(&s, "a");
    let (_b, jb) = join_call(&s, "b");
    let (ua, ub) = (udp_bound(&s, &ja), udp_bound(&s, &jb));
    let (_c, _jc) = join_call(&s, "c");
    // a seals with the key it joined with: two epochs ago now.
    ua.send(&audio(&ja, 1, &[1; 30])).expect("send");
    assert_eq!(recv_udp(&ub, QUIET), None);
    // b's (the previous epoch) still passes while senders switch.
    let pkt = audio(&jb, 1, &[2; 30]);
    ub.send(&pkt).expect("send");
    assert_eq!(recv_udp(&ua, WAIT).as_deref(), Some(&pkt[..]));
    let stats = s.handle().stats().expect("stats");
    assert_eq!(stats.voice_stale_epoch, 1);
}
