//! The voice path to the server's voice port (docs/protocol.md §16.3).
//!
//! [`VoiceLink::connect`] sends `bind` over UDP every 250 ms; the server
//! answers a `bind_challenge` whose cookie the next binds echo, from the same
//! socket, until `bound` comes back (the cookie proves the address receives,
//! §16.2). If no `bound` comes within 1 s it connects to the same port over
//! TCP (each packet preceded by a 2-byte big-endian length) and binds there,
//! where the TCP handshake is the proof and no cookie is needed (a challenge
//! there is answered all the same). Once bound, a
//! receive thread reads packets and hands audio to the caller through a
//! channel, and sends a `probe` whenever nothing was sent for the keepalive
//! interval (so a silent or muted member stays in the call). Any thread may
//! send audio through a cloneable [`LinkSender`].
//!
//! For tests, [`LinkOptions`] can force TCP and inject random loss of audio
//! packets on receive and/or send (seeded, so runs are repeatable).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chatcore::protocol::voice::{
    COOKIE_LEN, MAX_PACKET, TCP_PREFIX_LEN, TOKEN_LEN, VoicePacket, tcp_packet_len,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::TransportError;

/// Which path the voice packets take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// Datagrams (preferred: no head-of-line blocking).
    Udp,
    /// The TCP fallback on the same port, for networks that block UDP.
    Tcp,
}

/// How the link is set up.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkOptions {
    /// Skip UDP and use TCP at once (a user setting for hostile networks,
    /// and tests of the fallback).
    pub force_tcp: bool,
    /// How long to wait for `bound` over UDP before falling back (§16.3: 1 s).
    pub udp_bind_timeout: Duration,
    /// How often to resend `bind` over UDP (§16.3: 250 ms).
    pub bind_retry: Duration,
    /// Send a probe after this long without sending anything; `None` uses
    /// the `keepalive_ms` the server announced.
    pub keepalive: Option<Duration>,
    /// Test hook: probability (0..1) of dropping each received audio packet.
    pub recv_loss: f64,
    /// Test hook: probability (0..1) of dropping each audio packet to send.
    pub send_loss: f64,
    /// Seed of the loss injection's random numbers.
    pub loss_seed: u64,
}

impl Default for LinkOptions {
    fn default() -> Self {
        Self {
            force_tcp: false,
            udp_bind_timeout: Duration::from_secs(1),
            bind_retry: Duration::from_millis(250),
            keepalive: None,
            recv_loss: 0.0,
            send_loss: 0.0,
            loss_seed: 1,
        }
    }
}

/// Something that came in on the voice path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Audio from another member.
    Audio {
        /// The speaker's session.
        session: u64,
        /// Its packet sequence number.
        seq: u16,
        /// Its timestamp (48 kHz samples).
        ts: u32,
        /// One Opus packet.
        payload: Vec<u8>,
    },
    /// The answer to a probe, with the round-trip time.
    ProbeAck {
        /// Round trip in microseconds.
        rtt_us: u64,
    },
    /// The path is gone (the TCP connection closed); nothing follows.
    Closed(String),
}

/// Counters of a link.
#[derive(Debug, Default)]
pub struct LinkCounters {
    /// Audio packets sent.
    pub audio_sent: AtomicU64,
    /// Audio packets received (after loss injection).
    pub audio_received: AtomicU64,
    /// Audio packets dropped by the loss injection (either direction).
    pub injected_losses: AtomicU64,
    /// Probes sent (keepalives).
    pub probes_sent: AtomicU64,
}

/// The sending half of a socket.
#[derive(Debug)]
enum Wire {
    /// A connected UDP socket.
    Udp(UdpSocket),
    /// A TCP stream; the lock keeps each length-prefixed packet whole.
    Tcp(Mutex<TcpStream>),
}

/// State shared by the senders and the receive thread.
#[derive(Debug)]
struct Shared {
    /// Our session id (every packet carries it).
    session: u64,
    /// The socket.
    wire: Wire,
    /// Start of the link's clock, for `last_send_us`.
    epoch: Instant,
    /// When anything was last sent (µs since `epoch`): keepalive is due
    /// only when the path has been quiet.
    last_send_us: AtomicU64,
    /// Send-side loss injection probability.
    send_loss: f64,
    /// Random numbers for the send-side loss injection.
    rng: Mutex<StdRng>,
    /// Counters.
    counters: LinkCounters,
}

impl Shared {
    fn send(&self, p: &VoicePacket<'_>) -> io::Result<()> {
        self.last_send_us
            .store(self.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
        match &self.wire {
            Wire::Udp(s) => s.send(&p.to_vec()).map(drop),
            Wire::Tcp(s) => {
                let mut s = s
                    .lock()
                    .map_err(|_| io::Error::other("voice socket lock poisoned"))?;
                s.write_all(&p.to_tcp_vec())
            }
        }
    }
}

/// Sends audio on a link; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct LinkSender {
    /// The link's state.
    shared: Arc<Shared>,
}

impl LinkSender {
    /// Sends one Opus packet as an audio packet.
    pub fn send_audio(&self, seq: u16, ts: u32, payload: &[u8]) -> io::Result<()> {
        let s = &self.shared;
        if s.send_loss > 0.0
            && s.rng
                .lock()
                .map(|mut r| r.random_bool(s.send_loss.clamp(0.0, 1.0)))
                .unwrap_or(false)
        {
            s.counters.injected_losses.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        s.send(&VoicePacket::Audio {
            session: s.session,
            seq,
            ts,
            payload,
        })?;
        s.counters.audio_sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A bound voice path.
pub struct VoiceLink {
    /// UDP or TCP.
    kind: TransportKind,
    /// Shared with the senders and the receive thread.
    shared: Arc<Shared>,
    /// Incoming packets.
    incoming: Receiver<Incoming>,
    /// Tells the receive thread to end.
    stop: Arc<AtomicBool>,
    /// The receive thread.
    thread: Option<thread::JoinHandle<()>>,
}

fn unspecified(server: SocketAddr) -> SocketAddr {
    let ip = match server.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// What a packet received during the bind handshake means.
enum BindReply {
    /// `bound` for our session: done.
    Bound,
    /// `bind_challenge` for our session: bind again with this cookie.
    Challenge([u8; COOKIE_LEN]),
    /// Anything else: ignored.
    Other,
}

fn bind_reply(buf: &[u8], session: u64) -> BindReply {
    match VoicePacket::parse(buf) {
        Ok(VoicePacket::Bound { session: s }) if s == session => BindReply::Bound,
        Ok(VoicePacket::BindChallenge { session: s, cookie }) if s == session => {
            BindReply::Challenge(cookie)
        }
        _ => BindReply::Other,
    }
}

/// The bind packet: `cookie` is the last challenge's, once there was one.
fn bind_packet(
    session: u64,
    token: [u8; TOKEN_LEN],
    cookie: Option<[u8; COOKIE_LEN]>,
) -> VoicePacket<'static> {
    VoicePacket::Bind {
        session,
        token,
        cookie,
    }
}

fn bind_udp(
    server: SocketAddr,
    session: u64,
    token: [u8; TOKEN_LEN],
    opts: &LinkOptions,
) -> io::Result<Option<UdpSocket>> {
    let sock = UdpSocket::bind(unspecified(server))?;
    sock.connect(server)?;
    let deadline = Instant::now() + opts.udp_bind_timeout;
    let mut buf = vec![0u8; MAX_PACKET + 1];
    let mut cookie = None;
    while Instant::now() < deadline {
        // Errors such as "connection refused" (an ICMP answer to a previous
        // datagram) just mean "not yet": keep trying until the deadline.
        let _ = sock.send(&bind_packet(session, token, cookie).to_vec());
        let until = (Instant::now() + opts.bind_retry).min(deadline);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))?;
            match sock.recv(&mut buf) {
                Ok(n) => match bind_reply(&buf[..n], session) {
                    BindReply::Bound => return Ok(Some(sock)),
                    // Echo the cookie at once: no need to wait for the
                    // next retry. Later retries echo it too.
                    BindReply::Challenge(c) => {
                        cookie = Some(c);
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

fn bind_tcp(
    server: SocketAddr,
    session: u64,
    token: [u8; TOKEN_LEN],
) -> Result<TcpStream, TransportError> {
    let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(3))?;
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
                // §16.2 binds TCP without a cookie; should a server ask,
                // answer (a few times, never in a loop with it).
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

impl VoiceLink {
    /// Binds `session` with `token` on the voice port at `server`: UDP
    /// first, then TCP (§16.3). `keepalive_ms` is from `voice_joined`.
    pub fn connect(
        server: SocketAddr,
        session: u64,
        token: &[u8],
        keepalive_ms: u32,
        opts: &LinkOptions,
    ) -> Result<Self, TransportError> {
        let token: [u8; TOKEN_LEN] = token
            .try_into()
            .map_err(|_| TransportError::BadToken(token.len()))?;
        let udp = if opts.force_tcp {
            None
        } else {
            bind_udp(server, session, token, opts)?
        };
        let (kind, wire) = match udp {
            Some(s) => (TransportKind::Udp, Wire::Udp(s)),
            None => {
                tracing::info!("voice: no UDP answer from {server}, using TCP");
                let s = bind_tcp(server, session, token)?;
                (TransportKind::Tcp, Wire::Tcp(Mutex::new(s)))
            }
        };
        let reader = match &wire {
            Wire::Udp(s) => Wire::Udp(s.try_clone()?),
            Wire::Tcp(s) => Wire::Tcp(Mutex::new(
                s.lock()
                    .map_err(|_| io::Error::other("lock"))?
                    .try_clone()?,
            )),
        };
        let shared = Arc::new(Shared {
            session,
            wire,
            epoch: Instant::now(),
            last_send_us: AtomicU64::new(0),
            send_loss: opts.send_loss,
            rng: Mutex::new(StdRng::seed_from_u64(opts.loss_seed ^ 0x5eed)),
            counters: LinkCounters::default(),
        });
        let keepalive = opts
            .keepalive
            .unwrap_or(Duration::from_millis(u64::from(keepalive_ms.max(100))));
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let receiver = Receiving {
            shared: shared.clone(),
            tx,
            stop: stop.clone(),
            keepalive,
            recv_loss: opts.recv_loss,
            rng: StdRng::seed_from_u64(opts.loss_seed),
            probes: Vec::new(),
            nonce: 0,
        };
        let thread = thread::Builder::new()
            .name("voice-link".into())
            .spawn(move || receiver.run(reader))?;
        Ok(Self {
            kind,
            shared,
            incoming: rx,
            stop,
            thread: Some(thread),
        })
    }

    /// UDP or TCP.
    pub fn kind(&self) -> TransportKind {
        self.kind
    }

    /// A handle for sending audio.
    pub fn sender(&self) -> LinkSender {
        LinkSender {
            shared: self.shared.clone(),
        }
    }

    /// Incoming audio and events.
    pub fn incoming(&self) -> &Receiver<Incoming> {
        &self.incoming
    }

    /// The link's counters.
    pub fn counters(&self) -> &LinkCounters {
        &self.shared.counters
    }

    /// Stops the receive thread and closes the socket.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Wire::Tcp(s) = &self.shared.wire
            && let Ok(s) = s.lock()
        {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for VoiceLink {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The receive thread's state.
struct Receiving {
    /// Shared with the senders (for keepalive probes and counters).
    shared: Arc<Shared>,
    /// Where incoming packets go.
    tx: Sender<Incoming>,
    /// Set when the link closes.
    stop: Arc<AtomicBool>,
    /// Probe after this much sending silence.
    keepalive: Duration,
    /// Receive-side loss injection probability.
    recv_loss: f64,
    /// Random numbers for it.
    rng: StdRng,
    /// Probes in flight: (nonce, sent at), for round-trip times.
    probes: Vec<(u32, Instant)>,
    /// The next probe's nonce.
    nonce: u32,
}

impl Receiving {
    fn run(mut self, reader: Wire) {
        let tick = Duration::from_millis(50).min(self.keepalive);
        let why = match reader {
            Wire::Udp(s) => self.run_udp(&s, tick),
            Wire::Tcp(s) => match s.into_inner() {
                Ok(s) => self.run_tcp(s, tick),
                Err(_) => "lock poisoned".to_owned(),
            },
        };
        if !self.stop.load(Ordering::Relaxed) {
            let _ = self.tx.send(Incoming::Closed(why));
        }
    }

    fn keepalive_due(&mut self) {
        let last = self.shared.last_send_us.load(Ordering::Relaxed);
        let now = self.shared.epoch.elapsed().as_micros() as u64;
        if now.saturating_sub(last) >= self.keepalive.as_micros() as u64 {
            self.nonce = self.nonce.wrapping_add(1);
            let p = VoicePacket::Probe {
                session: self.shared.session,
                nonce: self.nonce,
            };
            if self.shared.send(&p).is_ok() {
                self.shared
                    .counters
                    .probes_sent
                    .fetch_add(1, Ordering::Relaxed);
                self.probes.push((self.nonce, Instant::now()));
                if self.probes.len() > 8 {
                    self.probes.remove(0);
                }
            }
        }
    }

    /// Handles one packet; `false` when the consumer is gone.
    fn handle(&mut self, buf: &[u8]) -> bool {
        let msg = match VoicePacket::parse(buf) {
            Ok(VoicePacket::Audio {
                session,
                seq,
                ts,
                payload,
            }) => {
                if self.recv_loss > 0.0 && self.rng.random_bool(self.recv_loss.clamp(0.0, 1.0)) {
                    self.shared
                        .counters
                        .injected_losses
                        .fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                self.shared
                    .counters
                    .audio_received
                    .fetch_add(1, Ordering::Relaxed);
                Incoming::Audio {
                    session,
                    seq,
                    ts,
                    payload: payload.to_vec(),
                }
            }
            Ok(VoicePacket::ProbeAck { nonce, .. }) => {
                let Some(i) = self.probes.iter().position(|(n, _)| *n == nonce) else {
                    return true;
                };
                let (_, at) = self.probes.remove(i);
                Incoming::ProbeAck {
                    rtt_us: at.elapsed().as_micros() as u64,
                }
            }
            // `bound` or `bind_challenge` again, or anything else: nothing
            // to do.
            _ => return true,
        };
        self.tx.send(msg).is_ok()
    }

    fn run_udp(&mut self, s: &UdpSocket, tick: Duration) -> String {
        if let Err(e) = s.set_read_timeout(Some(tick)) {
            return e.to_string();
        }
        let mut buf = vec![0u8; MAX_PACKET + 1];
        while !self.stop.load(Ordering::Relaxed) {
            match s.recv(&mut buf) {
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

    fn run_tcp(&mut self, mut s: TcpStream, tick: Duration) -> String {
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
    //! The link against a tiny fake voice port in the test (UDP and TCP,
    //! §16 packet layout): bind retries, the fallback, keepalives, loss
    //! injection. The real relay is exercised in `tests/`.
    use std::net::TcpListener;

    use super::*;

    const TOKEN: [u8; TOKEN_LEN] = [7; TOKEN_LEN];
    /// The fake server's cookie (the real one is bound to the address).
    const COOKIE: [u8; COOKIE_LEN] = [0xc0; COOKIE_LEN];

    /// Answers like the server would: `bind` with the right token gets
    /// `bind_challenge` unless it echoes the cookie (when `challenge`, as
    /// over UDP), then `bound` (after ignoring the first `ignore_binds`);
    /// `probe` gets `probe_ack`, `audio` is echoed back.
    fn answer(pkt: &[u8], ignore_binds: &mut u32, challenge: bool) -> Option<Vec<u8>> {
        match VoicePacket::parse(pkt).ok()? {
            VoicePacket::Bind {
                session,
                token,
                cookie,
            } if token == TOKEN => {
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

    fn fake_udp(mut ignore_binds: u32) -> SocketAddr {
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
    fn fake_tcp() -> SocketAddr {
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
                            if let Some(a) = answer(&pkt, &mut none, false) {
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

    fn audio_back(link: &VoiceLink) -> Vec<u16> {
        let mut seqs = Vec::new();
        while let Ok(m) = link.incoming().recv_timeout(Duration::from_millis(500)) {
            if let Incoming::Audio { session, seq, .. } = m {
                assert_eq!(session, 5);
                seqs.push(seq);
            }
        }
        seqs
    }

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
        let link = VoiceLink::connect(addr, 5, &TOKEN, 2000, &opts).expect("bind");
        assert_eq!(link.kind(), TransportKind::Udp);
    }

    #[test]
    fn udp_bind_is_retried_until_bound_then_audio_flows_both_ways() {
        let addr = fake_udp(2);
        let link =
            VoiceLink::connect(addr, 5, &TOKEN, 2000, &LinkOptions::default()).expect("bind");
        assert_eq!(link.kind(), TransportKind::Udp);
        let tx = link.sender();
        for seq in 0..20u16 {
            tx.send_audio(seq, u32::from(seq) * 960, &[1, 2, 3])
                .expect("send");
        }
        assert_eq!(audio_back(&link), (0..20).collect::<Vec<_>>());
        assert_eq!(link.counters().audio_sent.load(Ordering::Relaxed), 20);
    }

    #[test]
    fn no_udp_answer_falls_back_to_tcp_on_the_same_port_number() {
        // UDP on the TCP port's number: nothing listens there.
        let addr = fake_tcp();
        let opts = LinkOptions {
            udp_bind_timeout: Duration::from_millis(300),
            bind_retry: Duration::from_millis(100),
            ..LinkOptions::default()
        };
        let link = VoiceLink::connect(addr, 5, &TOKEN, 2000, &opts).expect("bind");
        assert_eq!(link.kind(), TransportKind::Tcp);
        let tx = link.sender();
        for seq in 0..10u16 {
            tx.send_audio(seq, 0, &[9; 100]).expect("send");
        }
        assert_eq!(audio_back(&link), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_wrong_token_is_never_bound_and_a_short_token_is_refused() {
        let addr = fake_udp(0);
        let opts = LinkOptions {
            udp_bind_timeout: Duration::from_millis(200),
            ..LinkOptions::default()
        };
        let tcp = fake_tcp();
        // Wrong token: UDP stays silent, the TCP fallback too (it has no
        // listener at that port: connection refused, or no `bound`).
        let err = VoiceLink::connect(addr, 5, &[1; TOKEN_LEN], 2000, &opts).err();
        assert!(err.is_some());
        let err = VoiceLink::connect(
            tcp,
            5,
            &[1; TOKEN_LEN],
            2000,
            &LinkOptions {
                force_tcp: true,
                ..opts.clone()
            },
        )
        .err();
        assert!(
            matches!(err, Some(TransportError::NotBound("TCP"))),
            "{err:?}"
        );
        assert!(matches!(
            VoiceLink::connect(addr, 5, &[1; 3], 2000, &opts).err(),
            Some(TransportError::BadToken(3))
        ));
    }

    #[test]
    fn keepalive_probes_go_out_when_silent_and_are_answered() {
        let addr = fake_udp(0);
        let opts = LinkOptions {
            keepalive: Some(Duration::from_millis(20)),
            ..LinkOptions::default()
        };
        let link = VoiceLink::connect(addr, 5, &TOKEN, 2000, &opts).expect("bind");
        let m = link
            .incoming()
            .recv_timeout(Duration::from_secs(5))
            .expect("probe_ack");
        assert!(matches!(m, Incoming::ProbeAck { .. }), "{m:?}");
        assert!(link.counters().probes_sent.load(Ordering::Relaxed) >= 1);
    }

    #[test]
    fn injected_loss_drops_about_the_requested_share_repeatably() {
        let run = || {
            let addr = fake_udp(0);
            let opts = LinkOptions {
                send_loss: 0.1,
                recv_loss: 0.1,
                loss_seed: 3,
                ..LinkOptions::default()
            };
            let link = VoiceLink::connect(addr, 5, &TOKEN, 2000, &opts).expect("bind");
            let tx = link.sender();
            for seq in 0..500u16 {
                tx.send_audio(seq, 0, &[1]).expect("send");
                // Paced a little, so loopback buffers never overflow and
                // only the injected losses happen.
                if seq % 10 == 0 {
                    thread::sleep(Duration::from_millis(2));
                }
            }
            audio_back(&link)
        };
        let a = run();
        // Two independent 10 % losses: about 81 % arrive.
        assert!((350..=450).contains(&a.len()), "{}", a.len());
        assert_eq!(a, run(), "same seed, same losses");
    }
}
