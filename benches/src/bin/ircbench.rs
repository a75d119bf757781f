//! `ircbench`: the chat load of `chatbench`, spoken as IRC, to measure an
//! IRC server (ngircd, InspIRCd) under the same load on the same machine
//! (docs/benchmarks.md, "Over TLS"). `scripts/irc-tls-bench.sh` starts a
//! throwaway ngircd and runs it plain and over TLS.
//!
//! Every client registers (`NICK`, `USER`), waits for `001`, joins
//! `#bench` and waits for the end of its `NAMES` list (`366`). When all are
//! in, message k is sent by client k mod N at time k / (N x rate) as
//! `PRIVMSG #bench :<16 hex digits: send time in ns>xxx...`; every receiver
//! records now minus that time. IRC does not echo a message to its sender,
//! so the expected deliveries are sent x (members - 1). `PING` is answered.
//! One single-threaded `mio` loop holds every client, as in `chatbench`;
//! with `--tls` each client drives its own `rustls` session in that loop.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chatbench::histogram::Histogram;
use chatbench::spawn;
use clap::Parser;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::ServerName;
use serde_json::json;
use socket2::{Domain, Protocol, Socket, Type};

/// Bytes of the send timestamp at the start of each text.
const STAMP: usize = 16;
/// Longest line kept while waiting for its end (IRC allows 512 bytes;
/// anything longer is dropped, as a server would).
const MAX_LINE: usize = 8192;
/// The channel every client joins.
const CHANNEL: &str = "#bench";

/// Drives IRC clients against an IRC server on loopback and measures
/// message delivery, like `chatbench` does for chatserver.
#[derive(Debug, Parser)]
#[command(name = "ircbench", version)]
struct Args {
    /// IRC server address (loopback only)
    #[arg(long, default_value = "127.0.0.1:6667")]
    server: SocketAddr,
    /// Number of clients
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Seconds of sending (messages = rate x duration per client)
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Messages per second per client
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Text bytes per message (at least 16)
    #[arg(long, default_value_t = 32)]
    payload: usize,
    /// Registrations in progress at once
    #[arg(long, default_value_t = 100)]
    in_flight: usize,
    /// Source addresses 127.0.0.1.. to spread clients over
    #[arg(long, default_value_t = 1)]
    sources: u8,
    /// Seconds to wait for stragglers after the last message
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// Seconds to wait for every client to be in the channel
    #[arg(long, default_value_t = 120.0)]
    login_timeout: f64,
    /// Speak TLS. The server's certificate is NOT verified: a benchmark
    /// against a throwaway server on loopback, never a way to talk to a
    /// server you do not control.
    #[arg(long)]
    tls: bool,
    /// The server's process id, to report its CPU use from /proc
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print one JSON object instead of the table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Registering,
    Joining,
    Joined,
    Closed,
}

struct Client {
    stream: TcpStream,
    state: State,
    /// A partial line carried over to the next read.
    line: Vec<u8>,
    /// Bytes the socket did not take yet (plain TCP).
    pending: Vec<u8>,
    wants_write: bool,
    tls: Option<Box<rustls::ClientConnection>>,
}

#[derive(Debug, Default)]
struct Outcome {
    connected: usize,
    failed: usize,
    tls_errors: u64,
    login_s: f64,
    messages_sent: u64,
    deliveries_expected: u64,
    deliveries_received: u64,
    total_s: f64,
    wall_s: f64,
    joined_at_s: f64,
    max_send_lag_ms: f64,
    latency: Histogram,
    /// The first `ERROR` line the server sent before closing a client (why
    /// clients failed, e.g. a send queue overflow).
    first_error: Option<String>,
}

fn main() -> ExitCode {
    chatbench::exit(run())
}

fn run() -> Result<()> {
    let args = Args::parse();
    if !args.server.ip().is_loopback() {
        bail!("--server must be a loopback address: this tool only loads 127.0.0.0/8");
    }
    if args.clients < 2 || args.clients > 100_000 {
        bail!("--clients must be between 2 and 100000");
    }
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let tls = args.tls.then(|| {
        let mut config = (*chatcore::tls::insecure_client_config()).clone();
        config.resumption = rustls::client::Resumption::disabled();
        Arc::new(config)
    });
    let cpu_start = args.server_pid.and_then(spawn::proc_cpu_s);
    let mut cpu_joined = None;
    let out = drive(&args, tls, &mut || {
        cpu_joined = args.server_pid.and_then(spawn::proc_cpu_s);
    })?;
    let cpu_end = args.server_pid.and_then(spawn::proc_cpu_s);
    let cpu_login = cpu_start.zip(cpu_joined).map(|(a, b)| b - a);
    let cpu_send = cpu_joined.zip(cpu_end).map(|(a, b)| b - a);
    let period = out.wall_s - out.joined_at_s;
    let share = cpu_send.filter(|_| period > 0.0).map(|c| c / period);
    let h = &out.latency;
    let ms = |us: u64| us as f64 / 1000.0;
    let rate = if out.total_s > 0.0 {
        out.deliveries_received as f64 / out.total_s
    } else {
        0.0
    };
    let lost = out
        .deliveries_expected
        .saturating_sub(out.deliveries_received);
    if args.json {
        let v = json!({
            "server": "irc",
            "tls": args.tls,
            "tls_errors": out.tls_errors,
            "clients": args.clients,
            "connected": out.connected,
            "failed": out.failed,
            "login_s": out.login_s,
            "messages_sent": out.messages_sent,
            "deliveries_expected": out.deliveries_expected,
            "deliveries_received": out.deliveries_received,
            "lost": lost,
            "total_s": out.total_s,
            "wall_s": out.wall_s,
            "deliveries_per_s": rate,
            "max_send_lag_ms": out.max_send_lag_ms,
            "first_error": out.first_error,
            "server_cpu_login_s": cpu_login,
            "server_cpu_send_s": cpu_send,
            "server_cpu_send_share": share,
            "latency_ms": {
                "min": ms(h.min()),
                "mean": h.mean() / 1000.0,
                "p50": ms(h.quantile(0.50)),
                "p90": ms(h.quantile(0.90)),
                "p99": ms(h.quantile(0.99)),
                "p999": ms(h.quantile(0.999)),
                "max": ms(h.max()),
            },
        });
        println!("{v}");
    } else {
        let line = |k: &str, v: String| println!("{k:<30}{v}");
        line(
            "transport",
            if args.tls { "TLS" } else { "plain TCP" }.to_owned(),
        );
        line(
            "clients in the channel",
            format!("{} of {}", out.connected, args.clients),
        );
        line("all in the channel", format!("{:.3} s", out.login_s));
        line("messages sent", out.messages_sent.to_string());
        line(
            "deliveries",
            format!(
                "{} of {} expected ({lost} lost)",
                out.deliveries_received, out.deliveries_expected
            ),
        );
        line("deliveries per second", format!("{rate:.0}"));
        line(
            "p50 / p90 / p99 / max",
            format!(
                "{:.3} / {:.3} / {:.3} / {:.3} ms",
                ms(h.quantile(0.5)),
                ms(h.quantile(0.9)),
                ms(h.quantile(0.99)),
                ms(h.max())
            ),
        );
        line("sender lag (max)", format!("{:.1} ms", out.max_send_lag_ms));
        if let Some(e) = &out.first_error {
            line("first server ERROR", e.clone());
        }
        if let (Some(c), Some(s)) = (cpu_send, share) {
            line(
                "server CPU, sending",
                format!("{c:.2} s ({:.0} % of a core)", s * 100.0),
            );
        }
    }
    Ok(())
}

fn drive(
    args: &Args,
    tls: Option<Arc<rustls::ClientConfig>>,
    on_all_joined: &mut dyn FnMut(),
) -> Result<Outcome> {
    let payload = args.payload.max(STAMP);
    let per_client = (args.rate * args.duration).round().max(1.0) as u64;
    let total = per_client * args.clients as u64;
    let total_rate = args.rate * args.clients as f64;
    let drain = Duration::from_secs_f64(args.drain);
    let login_timeout = Duration::from_secs_f64(args.login_timeout);
    let sources: Vec<IpAddr> = (1..=args.sources.max(1))
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
        .collect();
    let server_name = ServerName::IpAddress(args.server.ip().into());

    let mut poll = Poll::new().context("creating the poller")?;
    let mut events = Events::with_capacity(4096);
    let mut clients: Vec<Client> = Vec::with_capacity(args.clients);
    let mut scratch = vec![0u8; 256 * 1024];
    let mut plain = vec![0u8; 64 * 1024];
    let mut out = Outcome::default();

    let prefix = format!("PRIVMSG {CHANNEL} :");
    let mut msg = format!(
        "{prefix}{}{}\r\n",
        "0".repeat(STAMP),
        "x".repeat(payload - STAMP)
    )
    .into_bytes();
    let stamp_at = prefix.len();

    let start = Instant::now();
    let mut in_flight = 0usize;
    let mut joined = 0usize;
    let mut send_start: Option<Instant> = None;
    let mut sent = 0u64;
    let mut last_progress = Instant::now();
    let mut last_delivery = start;

    loop {
        let now = Instant::now();
        while clients.len() < args.clients && in_flight < args.in_flight {
            let i = clients.len();
            let mut stream = connect(args.server, sources[i % sources.len()])
                .with_context(|| format!("connecting client {i}"))?;
            poll.registry().register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            let tls = match &tls {
                Some(config) => {
                    let mut conn =
                        rustls::ClientConnection::new(Arc::clone(config), server_name.clone())
                            .context("creating a TLS client session")?;
                    conn.set_buffer_limit(None);
                    Some(Box::new(conn))
                }
                None => None,
            };
            clients.push(Client {
                stream,
                state: State::Connecting,
                line: Vec::new(),
                pending: Vec::new(),
                wants_write: true,
                tls,
            });
            in_flight += 1;
        }
        if send_start.is_none() && clients.len() == args.clients && in_flight == 0 {
            out.login_s = (now - start).as_secs_f64();
            out.joined_at_s = out.login_s;
            on_all_joined();
            send_start = Some(Instant::now());
        }
        if send_start.is_none() && now - start > login_timeout {
            bail!(
                "only {joined} of {} clients joined {CHANNEL} within {login_timeout:?}",
                args.clients
            );
        }

        if let Some(t0) = send_start
            && sent < total
        {
            let due = ((t0.elapsed().as_secs_f64() * total_rate) as u64 + 1).min(total);
            if due > sent + 1 {
                let lag = (due - sent - 1) as f64 / total_rate * 1000.0;
                out.max_send_lag_ms = out.max_send_lag_ms.max(lag);
            }
            while sent < due {
                let i = (sent % args.clients as u64) as usize;
                if clients[i].state == State::Joined {
                    let ns = start.elapsed().as_nanos() as u64;
                    write_hex(&mut msg[stamp_at..stamp_at + STAMP], ns);
                    queue(&mut clients[i], &msg, &poll, i)?;
                    out.messages_sent += 1;
                }
                sent += 1;
            }
            last_progress = now;
        }

        if send_start.is_some() && sent >= total {
            let members = joined as u64;
            let expected = out.messages_sent * members.saturating_sub(1);
            if out.deliveries_received >= expected || now - last_progress > drain {
                out.deliveries_expected = expected;
                break;
            }
        }

        let timeout = if send_start.is_some() && sent < total {
            Duration::from_micros(500)
        } else {
            Duration::from_millis(5)
        };
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("poll"),
        }
        for event in events.iter() {
            let i = event.token().0;
            let Some(c) = clients.get_mut(i) else {
                continue;
            };
            if c.state == State::Closed {
                continue;
            }
            if event.is_writable() {
                if c.state == State::Connecting {
                    if c.stream.peer_addr().is_err()
                        && !(event.is_read_closed() || event.is_error())
                    {
                        continue;
                    }
                    c.state = State::Registering;
                    let hello = format!("NICK b{i}\r\nUSER b{i} 0 * :bench {i}\r\n");
                    queue(c, hello.as_bytes(), &poll, i)?;
                }
                flush(c, &poll, i)?;
            }
            if !(event.is_readable() || event.is_read_closed() || event.is_error()) {
                continue;
            }
            let mut closed = false;
            loop {
                let n = match c.stream.read(&mut scratch) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                };
                let now_ns = start.elapsed().as_nanos() as u64;
                let before = out.deliveries_received;
                let mut replies = Vec::new();
                let was = c.state;
                if c.tls.is_some() {
                    let mut data = &scratch[..n];
                    while !data.is_empty() && !closed {
                        let Some(t) = c.tls.as_mut() else { break };
                        let state = match t.read_tls(&mut data) {
                            Ok(_) => t.process_new_packets(),
                            Err(e) => Err(rustls::Error::General(e.to_string())),
                        };
                        let state = match state {
                            Ok(s) => s,
                            Err(_) => {
                                out.tls_errors += 1;
                                closed = true;
                                break;
                            }
                        };
                        let mut readable = state.plaintext_bytes_to_read();
                        while readable > 0 {
                            let Some(t) = c.tls.as_mut() else { break };
                            let m = t.reader().read(&mut plain).unwrap_or(0);
                            if m == 0 {
                                break;
                            }
                            readable = readable.saturating_sub(m);
                            lines(c, &plain[..m], now_ns, &mut out, &mut replies);
                        }
                        if state.peer_has_closed() {
                            closed = true;
                        }
                    }
                } else {
                    lines(c, &scratch[..n], now_ns, &mut out, &mut replies);
                }
                if out.deliveries_received > before {
                    last_progress = Instant::now();
                    last_delivery = last_progress;
                }
                if was != State::Joined && c.state == State::Joined {
                    joined += 1;
                    in_flight -= 1;
                }
                for r in replies {
                    queue(c, &r, &poll, i)?;
                }
                if c.tls.as_ref().is_some_and(|t| t.wants_write()) {
                    flush(c, &poll, i)?;
                }
                if closed || n < scratch.len() {
                    break;
                }
            }
            if closed {
                if c.state == State::Joined {
                    joined -= 1;
                } else {
                    in_flight = in_flight.saturating_sub(1);
                }
                c.state = State::Closed;
                out.failed += 1;
                let _ = poll.registry().deregister(&mut c.stream);
            }
        }
    }
    out.connected = joined;
    if let Some(t0) = send_start {
        out.total_s = last_delivery.saturating_duration_since(t0).as_secs_f64();
    }
    out.wall_s = start.elapsed().as_secs_f64();
    Ok(out)
}

/// Handles the bytes of one read: every complete line.
fn lines(c: &mut Client, data: &[u8], now_ns: u64, out: &mut Outcome, replies: &mut Vec<Vec<u8>>) {
    let mut rest = data;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let (head, tail) = rest.split_at(end + 1);
        rest = tail;
        if c.line.is_empty() {
            line(c, head, now_ns, out, replies);
        } else {
            let mut l = std::mem::take(&mut c.line);
            l.extend_from_slice(head);
            line(c, &l, now_ns, out, replies);
        }
    }
    if c.line.len() + rest.len() <= MAX_LINE {
        c.line.extend_from_slice(rest);
    } else {
        c.line.clear();
    }
}

/// Handles one IRC line (with its CR LF).
fn line(c: &mut Client, l: &[u8], now_ns: u64, out: &mut Outcome, replies: &mut Vec<Vec<u8>>) {
    let l = l.strip_suffix(b"\n").unwrap_or(l);
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    if l.starts_with(b"ERROR ") && out.first_error.is_none() {
        out.first_error = Some(String::from_utf8_lossy(l).into_owned());
        return;
    }
    if let Some(token) = l.strip_prefix(b"PING ") {
        let mut pong = b"PONG ".to_vec();
        pong.extend_from_slice(token);
        pong.extend_from_slice(b"\r\n");
        replies.push(pong);
        return;
    }
    // ":prefix COMMAND params"
    let Some(rest) = l.strip_prefix(b":") else {
        return;
    };
    let Some(sp) = rest.iter().position(|&b| b == b' ') else {
        return;
    };
    let after = &rest[sp + 1..];
    if let Some(text) = after.strip_prefix(format!("PRIVMSG {CHANNEL} :").as_bytes()) {
        out.deliveries_received += 1;
        if let Some(sent) = text.get(..STAMP).and_then(read_hex) {
            out.latency.record(now_ns.saturating_sub(sent) / 1000);
        }
    } else if after.starts_with(b"001 ") && c.state == State::Registering {
        c.state = State::Joining;
        replies.push(format!("JOIN {CHANNEL}\r\n").into_bytes());
    } else if after.starts_with(b"366 ") && c.state == State::Joining {
        c.state = State::Joined;
    }
}

/// Opens a non-blocking connection from `source`.
fn connect(server: SocketAddr, source: IpAddr) -> io::Result<TcpStream> {
    let sock = Socket::new(
        Domain::for_address(server),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    sock.set_nonblocking(true)?;
    sock.set_tcp_nodelay(true)?;
    sock.bind(&SocketAddr::new(source, 0).into())?;
    match sock.connect(&server.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(115) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(sock.into()))
}

/// Writes `bytes` now if possible, else keeps them for WRITABLE.
fn queue(c: &mut Client, bytes: &[u8], poll: &Poll, i: usize) -> Result<()> {
    if let Some(t) = c.tls.as_mut() {
        let _ = t.writer().write_all(bytes);
        return flush(c, poll, i);
    }
    c.pending.extend_from_slice(bytes);
    flush(c, poll, i)
}

/// Writes what is waiting; WRITABLE interest exactly while something is.
fn flush(c: &mut Client, poll: &Poll, i: usize) -> Result<()> {
    let mut blocked = false;
    if let Some(t) = c.tls.as_mut() {
        while t.wants_write() {
            match t.write_tls(&mut c.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                Err(_) => break,
            }
        }
    } else {
        while !c.pending.is_empty() {
            match c.stream.write(&c.pending) {
                Ok(n) => {
                    c.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                Err(_) => break,
            }
        }
    }
    let want = blocked || c.state == State::Connecting;
    if want != c.wants_write {
        let interest = if want {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        poll.registry()
            .reregister(&mut c.stream, Token(i), interest)?;
        c.wants_write = want;
    }
    Ok(())
}

fn write_hex(dst: &mut [u8], mut v: u64) {
    for b in dst.iter_mut().rev() {
        *b = b"0123456789abcdef"[(v & 15) as usize];
        v >>= 4;
    }
}

fn read_hex(src: &[u8]) -> Option<u64> {
    src.iter().try_fold(0u64, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some((acc << 4) | u64::from(d))
    })
}
