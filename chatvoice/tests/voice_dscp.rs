//! Voice leaves marked for expedited forwarding (DSCP EF, TOS byte 0xB8),
//! checked on RECEIVED packets: a UDP socket with `IP_RECVTOS` reads the
//! TOS byte of each datagram from its control message (loopback keeps the
//! sender's TOS). Once for what the real server's voice port sends (the
//! `bind_challenge` answering a bind), once for what the client's
//! `VoiceLink` sends (its binds and probes, to a loopback stand-in for the
//! voice port).
#![cfg(target_os = "linux")]

mod common;

use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use chatcore::protocol::voice::seal::bind_mac;
use chatcore::protocol::voice::{TOKEN_LEN, VoicePacket};
use chatvoice::transport::{CallKeys, DSCP_EF_TOS, LinkOptions, VoiceLink};
use common::{join, server};
use nix::cmsg_space;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};

/// A loopback UDP socket that reports the TOS byte of what it receives.
fn tos_socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    setsockopt(&s, sockopt::IpRecvTos, &true).expect("IP_RECVTOS");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// One datagram: its bytes, its sender, and its TOS byte.
fn recv_with_tos(s: &UdpSocket) -> (Vec<u8>, SocketAddr, Option<u8>) {
    let mut buf = [0u8; 2048];
    let mut cmsg = cmsg_space!(u8);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg =
        recvmsg::<SockaddrStorage>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
            .expect("recvmsg");
    let mut tos = None;
    for c in msg.cmsgs().expect("control messages") {
        if let ControlMessageOwned::Ipv4Tos(t) = c {
            tos = Some(t);
        }
    }
    let from = msg
        .address
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|a| SocketAddr::from(std::net::SocketAddrV4::from(*a)))
        })
        .expect("an IPv4 sender");
    let n = msg.bytes;
    (buf[..n].to_vec(), from, tos)
}

#[test]
fn the_servers_voice_port_marks_its_answers_dscp_ef() {
    let s = server();
    let (_c, j) = join(&s, "marked");
    let voice = SocketAddr::from((s.local_addr().ip(), j.port));
    let sock = tos_socket();
    // A proper first bind (the token's HMAC, no cookie yet): the server
    // answers with a challenge.
    let bind = VoicePacket::Bind {
        session: j.session,
        mac: bind_mac(&j.token, j.session, None),
        cookie: None,
    };
    sock.send_to(&bind.to_vec(), voice).expect("send");
    let (bytes, from, tos) = recv_with_tos(&sock);
    assert_eq!(from, voice);
    assert!(matches!(
        VoicePacket::parse(&bytes),
        Ok(VoicePacket::BindChallenge { .. })
    ));
    println!("server voice port answer: TOS {tos:02x?}");
    assert_eq!(
        tos,
        Some(DSCP_EF_TOS as u8),
        "DSCP EF on the server's voice packets"
    );
}

#[test]
fn the_clients_voice_link_marks_its_binds_and_probes_dscp_ef() {
    let port = tos_socket();
    let addr = port.local_addr().expect("addr");
    let keys = Arc::new(CallKeys::new(5, 1, &[3; 32]).expect("key"));
    let client = thread::spawn(move || {
        VoiceLink::connect(
            addr,
            5,
            &[7; TOKEN_LEN],
            2000,
            keys,
            &LinkOptions::default(),
        )
    });
    // The first bind: answered `bound` at once (this stand-in does not
    // check the token), then the link probes every 250 ms.
    let (bytes, from, bind_tos) = recv_with_tos(&port);
    assert!(matches!(
        VoicePacket::parse(&bytes),
        Ok(VoicePacket::Bind { .. })
    ));
    port.send_to(&VoicePacket::Bound { session: 5 }.to_vec(), from)
        .expect("bound");
    let link = client.join().expect("thread").expect("bound");
    let probe_tos = loop {
        let (bytes, _, tos) = recv_with_tos(&port);
        if matches!(VoicePacket::parse(&bytes), Ok(VoicePacket::Probe { .. })) {
            break tos;
        }
    };
    println!("client bind: TOS {bind_tos:02x?}, probe: TOS {probe_tos:02x?}");
    assert_eq!(bind_tos, Some(DSCP_EF_TOS as u8), "the bind is marked");
    assert_eq!(probe_tos, Some(DSCP_EF_TOS as u8), "the probes are marked");
    link.close();
}
