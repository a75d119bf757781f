//! `voicebench`: what the voice relay of a real `chatserver` costs.
//!
//! ```text
//! cargo run --release -p chatbench --bin voicebench -- --members 32 --speakers 1 --duration 10
//! ```
//!
//! Every member logs in over the chat port, joins the call and binds a UDP
//! socket on the voice port. Each speaker sends one audio packet per frame
//! (20 ms), the speakers spread evenly over the frame as independent people
//! are, with an Opus-sized payload whose first 8 bytes are the send time;
//! every other member's socket receives it through the server. Packets are
//! sealed (AES-256-GCM under the call's newest key, docs/protocol.md §16.5)
//! by the speaker and opened by every receiver, as real clients do. The relay
//! latency is receive time minus send time, both on this process's clock:
//! it is what the server adds plus two loopback hops and the open, so an
//! upper bound of the server's share. At the end it times sealing and
//! opening one frame alone (the client's added cost per frame). Listeners send a keepalive probe every second, as a real
//! client does. The server's CPU time comes from /proc, so the report can say
//! how many forwarded packets per second one server thread sustains.

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chatbench::histogram::Histogram;
use chatbench::spawn::SpawnedServer;
use chatcore::protocol::voice::seal::{CallKey, Opener, Sealer, bind_mac};
use chatcore::protocol::voice::{AUDIO_HEADER_LEN, TAG_LEN, VoiceJoined, VoicePacket};
use chatcore::protocol::{ClientMessage, ServerMessage};
use chatcore::{Client, Event};
use clap::Parser;
use mio::{Events, Interest, Poll, Token};

/// Measures the voice relay of a real server.
#[derive(Debug, Parser)]
struct Args {
    /// Members in the call
    #[arg(long, default_value_t = 32)]
    members: usize,
    /// How many of them speak at once
    #[arg(long, default_value_t = 1)]
    speakers: usize,
    /// Seconds of speech
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Opus payload bytes per packet (80 = 32 kbit/s at 20 ms frames)
    #[arg(long, default_value_t = 80)]
    payload: usize,
    /// Frame length in ms (packets per second = 1000 / this)
    #[arg(long, default_value_t = 20)]
    frame_ms: u64,
    /// Print one JSON object
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    chatbench::exit(run())
}

/// One call member: its chat client (kept open: leaving the room leaves the
/// call), its session and its bound UDP socket.
struct Member {
    _client: Client,
    session: u64,
    sock: UdpSocket,
}

fn join(addr: SocketAddr, name: &str) -> Result<(Client, VoiceJoined)> {
    let client = Client::connect_plain(addr, name).with_context(|| format!("logging in {name}"))?;
    client.send(&ClientMessage::VoiceJoin)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match client.recv_timeout(Duration::from_millis(200))? {
            Some(Event::Message(ServerMessage::VoiceJoined(j))) => return Ok((client, j)),
            Some(Event::Message(ServerMessage::Error(e))) => bail!("voice_join refused: {e:?}"),
            Some(Event::Closed(why)) => bail!("connection closed: {why}"),
            _ => {}
        }
    }
    bail!("no voice_joined for {name}")
}

fn bind(server: SocketAddr, j: &VoiceJoined) -> Result<UdpSocket> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.connect(SocketAddr::from((server.ip(), j.port)))?;
    sock.set_read_timeout(Some(Duration::from_millis(250)))?;
    // Bind, `bind_challenge`, bind with its cookie, `bound` (§16.2); the
    // token is proven by an HMAC, never sent.
    let mut cookie = None;
    let mut buf = [0u8; 2048];
    for _ in 0..20 {
        let bind = VoicePacket::Bind {
            session: j.session,
            mac: bind_mac(&j.token, j.session, cookie.as_ref()),
            cookie,
        };
        sock.send(&bind.to_vec())?;
        if let Ok(n) = sock.recv(&mut buf) {
            match VoicePacket::parse(&buf[..n]) {
                Ok(VoicePacket::Bound { .. }) => {
                    sock.set_nonblocking(true)?;
                    return Ok(sock);
                }
                Ok(VoicePacket::BindChallenge { cookie: c, .. }) => cookie = Some(c),
                _ => {}
            }
        }
    }
    bail!("session {} was never bound", j.session)
}

/// Nanoseconds to seal, then to open, one frame of `payload` bytes, the
/// median of 9 rounds of 20,000 frames each (the client's added cost).
fn seal_cost(key: &CallKey, payload: usize) -> Result<(u64, u64)> {
    const N: u32 = 20_000;
    let opus = vec![0x5a; payload];
    let mut sealer = Sealer::new(1, key.clone());
    let (mut seals, mut opens) = (Vec::new(), Vec::new());
    let mut packets = Vec::with_capacity(N as usize);
    let mut out = Vec::with_capacity(2048);
    for _ in 0..9 {
        packets.clear();
        let t = Instant::now();
        for n in 0..N {
            let mut p = Vec::with_capacity(AUDIO_HEADER_LEN + payload + TAG_LEN);
            sealer.seal(n.wrapping_mul(960), &opus, &mut p)?;
            packets.push(p);
        }
        seals.push(t.elapsed().as_nanos() as u64 / u64::from(N));
        let mut opener = Opener::new(key.clone());
        let now = Instant::now();
        let t = Instant::now();
        for p in &packets {
            opener.open(p, now, &mut out)?;
        }
        opens.push(t.elapsed().as_nanos() as u64 / u64::from(N));
    }
    seals.sort_unstable();
    opens.sort_unstable();
    Ok((seals[4], opens[4]))
}

/// Server CPU time (user + system) in clock ticks, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// What the receiving side saw.
struct Received {
    latency: Histogram,
    packets: u64,
    /// Packets that did not open (forged, replayed, unknown epoch): 0 in a
    /// healthy run.
    refused: u64,
}

fn receive(
    members: Vec<UdpSocket>,
    key: CallKey,
    stop: Arc<AtomicBool>,
    base: Instant,
) -> Result<Received> {
    let mut poll = Poll::new()?;
    let mut socks = Vec::new();
    for (i, s) in members.into_iter().enumerate() {
        let mut s = mio::net::UdpSocket::from_std(s);
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)?;
        socks.push(s);
    }
    // One opener per member, as each client has its own replay windows.
    let mut openers: Vec<Opener> = socks.iter().map(|_| Opener::new(key.clone())).collect();
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 2048];
    let mut opus = Vec::with_capacity(2048);
    let mut got = Received {
        latency: Histogram::default(),
        packets: 0,
        refused: 0,
    };
    while !stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let s = &socks[i];
            while let Ok(n) = s.recv(&mut buf) {
                if !matches!(VoicePacket::parse(&buf[..n]), Ok(VoicePacket::Audio { .. })) {
                    continue;
                }
                if openers[i]
                    .open(&buf[..n], Instant::now(), &mut opus)
                    .is_err()
                {
                    got.refused += 1;
                    continue;
                }
                if opus.len() >= 8 {
                    let mut t = [0u8; 8];
                    t.copy_from_slice(&opus[..8]);
                    let sent = u64::from_be_bytes(t);
                    let now = base.elapsed().as_nanos() as u64;
                    got.latency.record(now.saturating_sub(sent) / 1000);
                    got.packets += 1;
                }
            }
        }
    }
    Ok(got)
}

fn run() -> Result<()> {
    let args = Args::parse();
    if args.speakers == 0 || args.speakers > args.members || args.members < 2 {
        bail!("need 2 or more members and 1..=members speakers");
    }
    if args.payload < 8 || args.payload > 1275 {
        bail!("--payload must be 8..=1275 bytes");
    }
    // Every member binds from 127.0.0.1: room for all of them (a bind and
    // its cookie echo each, plus retries) in the per-address bind budget.
    let extra = format!(
        "max_call_members = {}\nvoice_keepalive_ms = 2000\nvoice_timeout_ms = 60000\nvoice_bind_burst = {}.0\n",
        args.members,
        (4 * args.members).max(64)
    );
    let server = SpawnedServer::start_with_voice(args.members, 10_000, &extra)?;
    let mut members = Vec::new();
    let mut newest = None;
    for i in 0..args.members {
        let (client, j) = join(server.addr, &format!("v{i}"))?;
        let sock = bind(server.addr, &j)?;
        members.push(Member {
            _client: client,
            session: j.session,
            sock,
        });
        newest = Some((j.epoch, j.key));
    }
    // Every join started a new epoch and sent the others a `voice_key`:
    // after the last join, every member holds the last joiner's key.
    let (epoch, key) = newest.context("no members")?;
    let key = CallKey::new(epoch, &key)?;
    let base = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let receivers: Vec<UdpSocket> = members
        .iter()
        .map(|m| m.sock.try_clone())
        .collect::<std::io::Result<_>>()?;
    let rx = {
        let stop = Arc::clone(&stop);
        let key = key.clone();
        thread::spawn(move || receive(receivers, key, stop, base))
    };
    let mut senders: Vec<(u64, UdpSocket, Sealer)> = members
        .iter()
        .map(|m| {
            Ok((
                m.session,
                m.sock.try_clone()?,
                Sealer::new(m.session, key.clone()),
            ))
        })
        .collect::<Result<_>>()?;

    let cpu0 = cpu_ticks(server.pid());
    let t0 = Instant::now();
    let frame = Duration::from_millis(args.frame_ms);
    let frames = args.duration * 1000 / args.frame_ms;
    let per_second = 1000 / args.frame_ms;
    let mut payload = vec![0x5a; args.payload];
    let mut packet = Vec::with_capacity(AUDIO_HEADER_LEN + args.payload + TAG_LEN);
    let mut sent = 0u64;
    let mut send_errors = 0u64;
    // Speakers are spread evenly over the frame, as independent people
    // are: sending them all at once would measure the queue of a burst.
    let slot = frame / args.speakers as u32;
    for n in 0..frames {
        for (i, (_, sock, sealer)) in senders.iter_mut().take(args.speakers).enumerate() {
            let due = t0 + frame * n as u32 + slot * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            let now = base.elapsed().as_nanos() as u64;
            payload[..8].copy_from_slice(&now.to_be_bytes());
            packet.clear();
            sealer.seal((n as u32).wrapping_mul(960), &payload, &mut packet)?;
            match sock.send(&packet) {
                Ok(_) => sent += 1,
                Err(_) => send_errors += 1,
            }
        }
        if n % per_second == 0 {
            for (session, sock, _) in senders.iter().skip(args.speakers) {
                let probe = VoicePacket::Probe {
                    session: *session,
                    nonce: n as u32,
                };
                let _ = sock.send(&probe.to_vec());
            }
        }
    }
    let elapsed = t0.elapsed();
    let cpu1 = cpu_ticks(server.pid());
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let got = rx
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
    drop(server);

    let expected = sent * (args.members as u64 - 1);
    let lost = expected.saturating_sub(got.packets);
    let secs = elapsed.as_secs_f64();
    let relayed_per_s = got.packets as f64 / secs;
    let ticks_per_s = 100.0; // USER_HZ on Linux
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => (b - a) as f64 / ticks_per_s / secs,
        _ => f64::NAN,
    };
    let per_core = if cpu > 0.0 {
        relayed_per_s / cpu
    } else {
        f64::NAN
    };
    let wire = (AUDIO_HEADER_LEN + args.payload + TAG_LEN) as f64;
    let (seal_ns, open_ns) = seal_cost(&key, args.payload)?;
    let speaker_kbit = wire * per_second as f64 * 8.0 / 1000.0;
    let (p50, p99, max) = (
        got.latency.quantile(0.50),
        got.latency.quantile(0.99),
        got.latency.max(),
    );
    let fields = serde_json::json!({
        "members": args.members,
        "speakers": args.speakers,
        "payload": args.payload,
        "sent": sent,
        "send_errors": send_errors,
        "expected": expected,
        "received": got.packets,
        "lost": lost,
        "refused": got.refused,
        "seal_ns_per_frame": seal_ns,
        "open_ns_per_frame": open_ns,
        "relayed_per_s": relayed_per_s.round(),
        "server_cpu": (cpu * 1000.0).round() / 1000.0,
        "relayed_per_cpu_s": per_core.round(),
        "p50_us": p50,
        "p99_us": p99,
        "max_us": max,
        "speaker_kbit_s": speaker_kbit,
    });
    if args.json {
        println!("{fields}");
    } else {
        println!(
            "voice relay: {} members, {} speaking, {} B Opus payload ({} B on the wire, {:.1} kbit/s per speaker up, the same to each listener)",
            args.members, args.speakers, args.payload, wire, speaker_kbit
        );
        println!(
            "  sent {sent} packets, {expected} deliveries expected, {} received, {lost} lost ({:.3} %)",
            got.packets,
            lost as f64 * 100.0 / expected.max(1) as f64
        );
        println!(
            "  relay latency (seal -> send -> server -> receive -> open): p50 {p50} us, p99 {p99} us, max {max} us; {} refused by receivers",
            got.refused
        );
        println!(
            "  client cost per frame: seal {seal_ns} ns, open {open_ns} ns (AES-256-GCM, {} B payload)",
            args.payload
        );
        println!(
            "  server: {relayed_per_s:.0} packets/s relayed using {:.1} % of one core -> {per_core:.0} packets/s per core-second",
            cpu * 100.0
        );
    }
    Ok(())
}
