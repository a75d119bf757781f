//! The TCP fallback on the voice port's number, for networks that block
//! UDP: each packet behind a 2-byte big-endian length (§16.3). Binding is
//! as over UDP: bind, `bind_challenge`, bind again with the cookie under the
//! HMAC (the cookie is issued to this connection's address and port, so a
//! bind captured on the wire cannot be replayed on another connection);
//! then the receive loop reassembles length-prefixed packets from the
//! stream.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chatcore::protocol::voice::{TCP_PREFIX_LEN, TOKEN_LEN, tcp_packet_len};

use super::bind::{BindReply, bind_packet, bind_reply};
use super::receive::Receiving;
use crate::error::TransportError;

pub(super) fn bind_tcp(
    server: SocketAddr,
    session: u64,
    token: [u8; TOKEN_LEN],
) -> Result<TcpStream, TransportError> {
    let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(3))?;
    chatcore::dscp::mark_voice(&s, server);
    s.set_nodelay(true)?;
    s.write_all(&bind_packet(session, token, None).to_tcp_vec())?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let mut challenges = 0;
    while Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => return Err(TransportError::NotBound("TCP")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        while let Ok(Some(n)) = tcp_packet_len(&buf) {
            let reply = bind_reply(&buf[TCP_PREFIX_LEN..TCP_PREFIX_LEN + n], session);
            buf.drain(..TCP_PREFIX_LEN + n);
            match reply {
                // Audio may already follow `bound` in `buf`; with the
                // server's order (bound first) there is none yet.
                BindReply::Bound => return Ok(s),
                // Echo the cookie (§16.2); a few times at most, never in
                // a loop with a server that keeps asking.
                BindReply::Challenge(c) if challenges < 3 => {
                    challenges += 1;
                    s.write_all(&bind_packet(session, token, Some(c)).to_tcp_vec())?;
                }
                _ => {}
            }
        }
    }
    Err(TransportError::NotBound("TCP"))
}

impl Receiving {
    pub(super) fn run_tcp(&mut self, mut s: TcpStream, tick: Duration) -> String {
        if let Err(e) = s.set_read_timeout(Some(tick)) {
            return e.to_string();
        }
        let mut buf: Vec<u8> = Vec::with_capacity(8192);
        let mut chunk = vec![0u8; 8192];
        while !self.stop.load(Ordering::Relaxed) {
            match s.read(&mut chunk) {
                Ok(0) => return "the server closed the voice connection".into(),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return format!("voice connection: {e}"),
            }
            loop {
                match tcp_packet_len(&buf) {
                    Ok(Some(n)) => {
                        let pkt = buf[TCP_PREFIX_LEN..TCP_PREFIX_LEN + n].to_vec();
                        buf.drain(..TCP_PREFIX_LEN + n);
                        if !self.handle(&pkt) {
                            return "closed".into();
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return format!("voice connection: {e}"),
                }
            }
            self.keepalive_due();
        }
        "closed".into()
    }
}

#[cfg(test)]
mod tests {
    //! The fallback: no UDP answer, so the link binds over TCP on the same
    //! port number and audio flows.
    use std::time::Duration;

    use crate::transport::fake::{TOKEN, audio_back, fake_tcp, keys};
    use crate::transport::{LinkOptions, TransportKind, VoiceLink};

    #[test]
    fn no_udp_answer_falls_back_to_tcp_on_the_same_port_number() {
        // UDP on the TCP port's number: nothing listens there.
        let addr = fake_tcp();
        let opts = LinkOptions {
            udp_bind_timeout: Duration::from_millis(300),
            bind_retry: Duration::from_millis(100),
            ..LinkOptions::default()
        };
        let link = VoiceLink::connect(addr, 5, &TOKEN, 2000, keys(), &opts).expect("bind");
        assert_eq!(link.kind(), TransportKind::Tcp);
        let tx = link.sender();
        for _ in 0..10u16 {
            tx.send_audio(0, &[9; 100]).expect("send");
        }
        assert_eq!(audio_back(&link), (0..10).collect::<Vec<_>>());
    }
}
