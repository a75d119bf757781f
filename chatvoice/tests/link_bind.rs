//! `VoiceLink` against the real server's voice port: the bind proves the
//! token with an HMAC and passes the return-routability check (bind,
//! `bind_challenge`, bind with the cookie) over UDP and over TCP; audio is
//! sealed with the call key, follows key changes, and forged or replayed
//! packets that the relay forwards are counted and never handed on.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use chatcore::protocol::voice::seal::{CallKey, bind_mac, seal};
use chatcore::protocol::voice::{KEY_LEN, VoiceJoined, VoicePacket};
use chatvoice::transport::{CallKeys, Incoming, LinkOptions, TransportKind, VoiceLink};
use common::{PATIENCE, catch_up, join, server};

fn first_audio(link: &VoiceLink) -> Option<(u64, Vec<u8>)> {
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        if let Ok(Incoming::Audio {
            session, payload, ..
        }) = link.incoming().recv_timeout(Duration::from_millis(200))
        {
            return Some((session, payload));
        }
    }
    None
}

fn keys(j: &VoiceJoined) -> Arc<CallKeys> {
    Arc::new(CallKeys::from_joined(j).expect("32-byte key"))
}

fn link(voice: SocketAddr, j: &VoiceJoined, k: &Arc<CallKeys>, force_tcp: bool) -> VoiceLink {
    let opts = LinkOptions {
        force_tcp,
        ..LinkOptions::default()
    };
    VoiceLink::connect(voice, j.session, &j.token, 2000, k.clone(), &opts).expect("bind")
}

#[test]
fn udp_and_tcp_links_prove_the_token_with_a_cookie_and_hear_each_other_sealed() {
    let s = server();
    let (ca, mut ja) = join(&s, "udp");
    let (_cb, jb) = join(&s, "tcp");
    catch_up(&ca, &mut ja, 1);
    let voice = SocketAddr::from((s.local_addr().ip(), ja.port));
    let (ka, kb) = (keys(&ja), keys(&jb));
    let udp = link(voice, &ja, &ka, false);
    assert_eq!(udp.kind(), TransportKind::Udp);
    let challenged = s.handle().stats().expect("stats").voice_challenges;
    assert!(challenged >= 1, "the UDP bind was challenged");
    let tcp = link(voice, &jb, &kb, true);
    assert_eq!(tcp.kind(), TransportKind::Tcp);
    assert_eq!(
        s.handle().stats().expect("stats").voice_challenges,
        challenged + 1,
        "the TCP bind is challenged too"
    );
    tcp.sender().send_audio(960, &[0x55; 60]).expect("send");
    assert_eq!(first_audio(&udp), Some((jb.session, vec![0x55; 60])));
    udp.sender().send_audio(960, &[0x66; 60]).expect("send");
    assert_eq!(first_audio(&tcp), Some((ja.session, vec![0x66; 60])));
    assert_eq!(ka.open_stats().opened, 1);
    assert_eq!(kb.open_stats().opened, 1);
}

#[test]
fn a_key_change_mid_call_is_followed_by_both_ends() {
    let s = server();
    let (ca, mut ja) = join(&s, "a");
    let (cb, jb) = join(&s, "b");
    catch_up(&ca, &mut ja, 1);
    let voice = SocketAddr::from((s.local_addr().ip(), ja.port));
    let (ka, kb) = (keys(&ja), keys(&jb));
    let (la, lb) = (link(voice, &ja, &ka, false), link(voice, &jb, &kb, false));
    la.sender().send_audio(0, &[1; 20]).expect("send");
    assert_eq!(first_audio(&lb), Some((ja.session, vec![1; 20])));

    // c joins: a and b are handed the new epoch's key and switch to it.
    let (_cc, jc) = join(&s, "c");
    let mut ja2 = ja.clone();
    catch_up(&ca, &mut ja2, 1);
    let mut jb2 = jb.clone();
    catch_up(&cb, &mut jb2, 1);
    assert_eq!((ja2.epoch, jb2.epoch), (jc.epoch, jc.epoch));
    ka.set_key(ja2.epoch, &ja2.key).expect("key");
    kb.set_key(jb2.epoch, &jb2.key).expect("key");
    assert_eq!(ka.epoch(), jc.epoch);
    la.sender().send_audio(960, &[2; 20]).expect("send");
    assert_eq!(first_audio(&lb), Some((ja.session, vec![2; 20])));
    // The newcomer, whose link opens with the same key, hears it too.
    let lc = link(voice, &jc, &keys(&jc), false);
    la.sender().send_audio(1920, &[3; 20]).expect("send");
    assert_eq!(first_audio(&lc), Some((ja.session, vec![3; 20])));
}

/// A member that binds by hand, to send whatever bytes it likes through
/// the relay (what a misbehaving or compromised member can do).
fn raw_member(voice: SocketAddr, j: &VoiceJoined) -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("udp");
    sock.connect(voice).expect("connect");
    sock.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut buf = [0u8; 64];
    let bind = |cookie: Option<[u8; 16]>| VoicePacket::Bind {
        session: j.session,
        mac: bind_mac(&j.token, j.session, cookie.as_ref()),
        cookie,
    };
    sock.send(&bind(None).to_vec()).expect("bind");
    let n = sock.recv(&mut buf).expect("challenge");
    let Ok(VoicePacket::BindChallenge { cookie, .. }) = VoicePacket::parse(&buf[..n]) else {
        panic!("expected a challenge");
    };
    sock.send(&bind(Some(cookie)).to_vec()).expect("bind");
    let n = sock.recv(&mut buf).expect("bound");
    assert!(matches!(
        VoicePacket::parse(&buf[..n]),
        Ok(VoicePacket::Bound { .. })
    ));
    sock
}

#[test]
fn forged_and_replayed_packets_forwarded_by_the_relay_are_counted_and_never_handed_on() {
    let s = server();
    let (ca, mut ja) = join(&s, "raw");
    let (_cb, jb) = join(&s, "listener");
    catch_up(&ca, &mut ja, 1);
    let voice = SocketAddr::from((s.local_addr().ip(), ja.port));
    let kb = keys(&jb);
    let lb = link(voice, &jb, &kb, false);
    let raw = raw_member(voice, &ja);
    let right = CallKey::new(ja.epoch, &ja.key).expect("key");
    let wrong = CallKey::new(ja.epoch, &[0x99; KEY_LEN]).expect("key");
    let packet = |key: &CallKey, counter: u32, opus: &[u8]| {
        let mut v = Vec::new();
        seal(key, ja.session, counter, counter * 960, opus, &mut v).expect("seal");
        v
    };
    let genuine = packet(&right, 1, &[7; 30]);
    let mut tampered = packet(&right, 2, &[8; 30]);
    tampered[30] ^= 1;
    for p in [
        &packet(&wrong, 0, &[6; 30]),
        &genuine,
        &genuine,
        &tampered,
        &packet(&right, 3, &[9; 30]),
    ] {
        raw.send(p).expect("send");
    }
    let mut heard = Vec::new();
    while heard.len() < 2 {
        match lb.incoming().recv_timeout(PATIENCE) {
            Ok(Incoming::Audio { payload, .. }) => heard.push(payload),
            Ok(_) => {}
            Err(e) => panic!("only {heard:?} arrived: {e}"),
        }
    }
    assert_eq!(heard, vec![vec![7; 30], vec![9; 30]], "only genuine audio");
    let st = kb.open_stats();
    assert_eq!((st.opened, st.forged, st.replayed), (2, 2, 1));
    // Probe acks keep coming on UDP: look for audio for 300 ms.
    let until = std::time::Instant::now() + Duration::from_millis(300);
    while let Ok(m) = lb
        .incoming()
        .recv_timeout(until.saturating_duration_since(std::time::Instant::now()))
    {
        assert!(!matches!(m, Incoming::Audio { .. }), "{m:?} was handed on");
    }
}
