//! The UDP path: binding (send `bind` every `bind_retry`, echo a
//! `bind_challenge`'s cookie at once, until `bound` or the deadline; the
//! cookie proves the address receives, §16.2) and the receive loop over a
//! connected datagram socket. UDP is preferred: no head-of-line blocking.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use chatcore::protocol::voice::{MAX_PACKET, TOKEN_LEN};

use super::bind::{BindReply, bind_packet, bind_reply};
use super::options::LinkOptions;
use super::receive::Receiving;

fn unspecified(server: SocketAddr) -> SocketAddr {
    let ip = match server.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

pub(super) fn bind_udp(
    server: SocketAddr,
    session: u64,
    token: [u8; TOKEN_LEN],
    opts: &LinkOptions,
) -> io::Result<Option<UdpSocket>> {
    let sock = UdpSocket::bind(unspecified(server))?;
    chatcore::dscp::mark_voice(&sock, server);
    sock.connect(server)?;
    let holed = || opts.udp_blackhole.as_ref().is_some_and(|b| b.on());
    let deadline = Instant::now() + opts.udp_bind_timeout;
    let mut buf = vec![0u8; MAX_PACKET + 1];
    let mut cookie = None;
    while Instant::now() < deadline {
        // Errors such as "connection refused" (an ICMP answer to a previous
        // datagram) just mean "not yet": keep trying until the deadline.
        if !holed() {
            let _ = sock.send(&bind_packet(session, token, cookie).to_vec());
        }
        let until = (Instant::now() + opts.bind_retry).min(deadline);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))?;
            match sock.recv(&mut buf) {
                Ok(_) if holed() => {}
                Ok(n) => match bind_reply(&buf[..n], session) {
                    BindReply::Bound => return Ok(Some(sock)),
                    // Echo the cookie at once: no need to wait for the
                    // next retry. Later retries echo it too.
                    BindReply::Challenge(c) => {
                        cookie = Some(c);
                        if holed() {
                            continue;
                        }
                        let _ = sock.send(&bind_packet(session, token, cookie).to_vec());
                    }
                    BindReply::Other => {}
                },
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    break;
                }
                Err(_) => thread::sleep(left.min(Duration::from_millis(20))),
            }
        }
    }
    Ok(None)
}

impl Receiving {
    pub(super) fn run_udp(&mut self, s: &UdpSocket, tick: Duration) -> String {
        if let Err(e) = s.set_read_timeout(Some(tick)) {
            return e.to_string();
        }
        let mut buf = vec![0u8; MAX_PACKET + 1];
        while !self.stop.load(Ordering::Relaxed) {
            match s.recv(&mut buf) {
                // The tests' black hole: as if it never arrived.
                Ok(_) if self.shared.blackholed() => {}
                Ok(n) => {
                    if !self.handle(&buf[..n]) {
                        return "closed".into();
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                // ICMP errors from a previous send: the server may be restarting.
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
            self.keepalive_due();
        }
        "closed".into()
    }
}

#[cfg(test)]
mod tests {
    //! Binding over UDP against the fake voice port: the cookie echo,
    //! retries, audio both ways once bound.
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use crate::transport::fake::{TOKEN, audio_back, fake_udp, keys};
    use crate::transport::{LinkOptions, TransportKind, VoiceLink};

    #[test]
    fn udp_bind_echoes_the_challenge_cookie_and_is_bound_without_waiting_for_a_retry() {
        let addr = fake_udp(0);
        // One retry interval longer than the whole bind timeout: only an
        // immediate echo of the cookie can be bound in time.
        let opts = LinkOptions {
            udp_bind_timeout: Duration::from_secs(2),
            bind_retry: Duration::from_secs(5),
            ..LinkOptions::default()
        };
        let link = VoiceLink::connect(addr, 5, &TOKEN, 2000, keys(), &opts).expect("bind");
        assert_eq!(link.kind(), TransportKind::Udp);
    }

    #[test]
    fn udp_bind_is_retried_until_bound_then_audio_flows_both_ways() {
        let addr = fake_udp(2);
        let link = VoiceLink::connect(addr, 5, &TOKEN, 2000, keys(), &LinkOptions::default())
            .expect("bind");
        assert_eq!(link.kind(), TransportKind::Udp);
        let tx = link.sender();
        for seq in 0..20u16 {
            tx.send_audio(u32::from(seq) * 960, &[1, 2, 3])
                .expect("send");
        }
        assert_eq!(audio_back(&link), (0..20).collect::<Vec<_>>());
        assert_eq!(link.counters().audio_sent.load(Ordering::Relaxed), 20);
    }
}
