//! `VoiceLink` against the real server's voice port: the UDP bind passes the
//! return-routability check (bind, `bind_challenge`, bind with the cookie)
//! and audio then flows; over TCP no challenge is needed.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use chatvoice::transport::{Incoming, LinkOptions, TransportKind, VoiceLink};
use common::{PATIENCE, join, server};

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

#[test]
fn a_udp_link_proves_its_address_with_the_cookie_and_then_hears_a_tcp_link() {
    let s = server();
    let (_ca, ja) = join(&s, "udp");
    let (_cb, jb) = join(&s, "tcp");
    let voice = SocketAddr::from((s.local_addr().ip(), ja.port));
    let udp = VoiceLink::connect(voice, ja.session, &ja.token, 2000, &LinkOptions::default())
        .expect("udp bind");
    assert_eq!(udp.kind(), TransportKind::Udp);
    let challenged = s.handle().stats().expect("stats").voice_challenges;
    assert!(challenged >= 1, "the UDP bind was challenged");
    let tcp = VoiceLink::connect(
        voice,
        jb.session,
        &jb.token,
        2000,
        &LinkOptions {
            force_tcp: true,
            ..LinkOptions::default()
        },
    )
    .expect("tcp bind");
    assert_eq!(tcp.kind(), TransportKind::Tcp);
    assert_eq!(
        s.handle().stats().expect("stats").voice_challenges,
        challenged,
        "TCP binds need no cookie"
    );
    tcp.sender().send_audio(1, 960, &[0x55; 60]).expect("send");
    assert_eq!(first_audio(&udp), Some((jb.session, vec![0x55; 60])));
    udp.sender().send_audio(1, 960, &[0x66; 60]).expect("send");
    assert_eq!(first_audio(&tcp), Some((ja.session, vec![0x66; 60])));
}
