//! `storebench`: what the history store sustains and what it holds, through
//! a real `chatserver` (the daemon's SQLite store in a scratch data
//! directory, `store_sync` from `--sync`, normal by default).
//!
//! ```text
//! cargo run --release -p chatbench --bin storebench -- --messages 1000000
//! ```
//!
//! Three measurements, in one run:
//! 1. **Sustained commits.** `--senders` clients each keep up to `--window`
//!    chats in flight (a chat counts when its sender gets it back, which
//!    the server does only after the store committed it), as fast as the
//!    server takes them, until the database holds `--messages` chats. The
//!    same flood against a server without a store (`store = false`) for
//!    `--memory-secs` gives the loop's own ceiling in the same run.
//! 2. **Size.** `chat.db` and its WAL once the flood is over, per million
//!    messages of `--text-bytes` bytes.
//! 3. **Page latency.** A fresh client asks `--pages` `history` pages of
//!    `--page-limit` chats before random ids across the whole room (the
//!    newest and the very first included), one at a time, and times each
//!    from request to reply.
//!
//! Clients speak plain TCP: this measures the store, not TLS. Retention is
//! off (`history_keep_messages = 0`) so that the room holds every chat.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use chatbench::fastparse;
use chatbench::histogram::Histogram;
use chatbench::spawn::{SpawnedServer, proc_kib};
use chatcore::protocol::{
    ChatSend, ClientMessage, Hello, HistoryRequest, PROTOCOL_VERSION, ServerMessage, decode_server,
    encode_client, frame_len,
};
use clap::Parser;

/// Largest frame these clients accept (the server's default `max_frame`
/// is far below it).
const MAX_FRAME: u32 = 16 << 20;
/// Chats written per `write` call by a sender.
const WRITE_BATCH: u64 = 64;

/// Measures the history store through a real server.
#[derive(Debug, Parser)]
struct Args {
    /// Flooding clients (each is also a member receiving every chat)
    #[arg(long, default_value_t = 8)]
    senders: usize,
    /// Chats each sender keeps in flight
    #[arg(long, default_value_t = 256)]
    window: u64,
    /// Chats the database holds before the size and paging measurements
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Bytes of text per chat
    #[arg(long, default_value_t = 60)]
    text_bytes: usize,
    /// Seconds of the same flood against a server without a store (0: skip)
    #[arg(long, default_value_t = 10)]
    memory_secs: u64,
    /// History pages requested
    #[arg(long, default_value_t = 2000)]
    pages: usize,
    /// Chats per history page (at most the server's `history_page_max`, 200)
    #[arg(long, default_value_t = 100)]
    page_limit: u32,
    /// The store's `store_sync`: normal or full
    #[arg(long, default_value = "normal", value_parser = ["normal", "full"])]
    sync: String,
    /// Extra config lines for the server (TOML)
    #[arg(long, default_value = "")]
    extra: String,
    /// Print one JSON object instead of the table
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    chatbench::exit(run(Args::parse()))
}

/// What one flood measured.
#[derive(Debug, Default)]
struct Flood {
    /// Chats committed (returned to their senders).
    total: u64,
    /// Wall time from the first chat sent to the last one counted.
    secs: f64,
    /// Chats counted in each whole second.
    per_second: Vec<u64>,
}

impl Flood {
    fn rate(&self) -> f64 {
        self.total as f64 / self.secs.max(1e-9)
    }

    /// The median of the per-second counts (the sustained rate, robust to
    /// a slow start or a checkpoint).
    fn median_second(&self) -> u64 {
        let mut s = self.per_second.clone();
        s.sort_unstable();
        s.get(s.len() / 2).copied().unwrap_or(0)
    }

    fn slowest_second(&self) -> u64 {
        self.per_second.iter().copied().min().unwrap_or(0)
    }
}

fn run(args: Args) -> Result<()> {
    if args.senders == 0 || args.window == 0 || args.page_limit == 0 {
        bail!("--senders, --window and --page-limit must be at least 1");
    }
    let max_clients = args.senders + 4;
    let memory = if args.memory_secs > 0 {
        let server = SpawnedServer::start_with(max_clients, 30_000, "store = false")?;
        let flood = flood(
            server.addr,
            &args,
            u64::MAX,
            Duration::from_secs(args.memory_secs),
        )?;
        server.stop();
        Some(flood)
    } else {
        None
    };

    // Retention off (its default keeps 100 000): the room must hold them all.
    let config = format!(
        "history_keep_messages = 0\nstore_sync = \"{}\"\n{}",
        args.sync, args.extra
    );
    let server = SpawnedServer::start_with(max_clients, 30_000, &config)?;
    let stored = flood(server.addr, &args, args.messages, Duration::from_secs(3600))?;
    let db = server.dir().join("data").join("chat.db");
    let size = |suffix: &str| {
        std::fs::metadata(format!("{}{suffix}", db.display()))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let (db_bytes, wal_bytes) = (size(""), size("-wal"));
    if db_bytes == 0 {
        bail!("no database at {}: is the store on?", db.display());
    }
    let pages = pages(server.addr, &args, stored.total)?;
    let rss_kib = proc_kib(server.pid(), "VmHWM").unwrap_or(0);
    server.stop();

    let per_million = |b: u64| b as f64 * 1e6 / stored.total.max(1) as f64;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "senders": args.senders,
                "window": args.window,
                "text_bytes": args.text_bytes,
                "stored": {
                    "messages": stored.total,
                    "secs": stored.secs,
                    "per_s": stored.rate(),
                    "median_second": stored.median_second(),
                    "slowest_second": stored.slowest_second(),
                },
                "memory": memory.as_ref().map(|m| serde_json::json!({
                    "messages": m.total,
                    "secs": m.secs,
                    "per_s": m.rate(),
                    "median_second": m.median_second(),
                })),
                "db_bytes": db_bytes,
                "wal_bytes": wal_bytes,
                "bytes_per_million": per_million(db_bytes + wal_bytes),
                "pages": {
                    "count": pages.count(),
                    "limit": args.page_limit,
                    "p50_ms": pages.quantile(0.5) as f64 / 1000.0,
                    "p90_ms": pages.quantile(0.9) as f64 / 1000.0,
                    "p99_ms": pages.quantile(0.99) as f64 / 1000.0,
                    "max_ms": pages.max() as f64 / 1000.0,
                },
                "server_peak_rss_kib": rss_kib,
            })
        );
        return Ok(());
    }
    println!(
        "{} senders, {} in flight each, {}-byte texts",
        args.senders, args.window, args.text_bytes
    );
    if let Some(m) = &memory {
        println!(
            "without a store: {} chats in {:.1} s = {:.0}/s (median second {}/s)",
            m.total,
            m.secs,
            m.rate(),
            m.median_second()
        );
    }
    println!(
        "with the store:  {} chats in {:.1} s = {:.0}/s (median second {}/s, slowest {}/s)",
        stored.total,
        stored.secs,
        stored.rate(),
        stored.median_second(),
        stored.slowest_second()
    );
    println!(
        "database: {:.1} MiB + WAL {:.1} MiB = {:.1} MiB per million messages",
        db_bytes as f64 / 1048576.0,
        wal_bytes as f64 / 1048576.0,
        per_million(db_bytes + wal_bytes) / 1048576.0
    );
    println!(
        "history pages of {} in a {}-message room: {} pages, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.page_limit,
        stored.total,
        pages.count(),
        pages.quantile(0.5) as f64 / 1000.0,
        pages.quantile(0.9) as f64 / 1000.0,
        pages.quantile(0.99) as f64 / 1000.0,
        pages.max() as f64 / 1000.0
    );
    println!("server peak RSS {:.1} MiB", rss_kib as f64 / 1024.0);
    Ok(())
}

/// Logs in as `name` over plain TCP; returns the stream and whatever bytes
/// followed the welcome.
fn login(addr: SocketAddr, name: &str) -> Result<(TcpStream, BytesMut)> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let hello = ClientMessage::Hello(Hello {
        version: PROTOCOL_VERSION,
        name: name.to_owned(),
        last_seen: None,
        password: None,
        token: None,
    });
    stream.write_all(&encode_client(&hello))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match decode_server(&mut buf, MAX_FRAME).context("decoding the welcome")? {
            Some(ServerMessage::Welcome(_)) => return Ok((stream, buf)),
            Some(ServerMessage::Error(e)) => bail!("login refused: {}", e.message),
            Some(_) => continue,
            None => {}
        }
        let n = stream.read(&mut chunk).context("waiting for the welcome")?;
        if n == 0 {
            bail!("the server closed the connection before the welcome");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A text of exactly `len` bytes (at least the prefix) starting with
/// `prefix`: what a sender recognises as its own.
fn text_for(prefix: &str, seq: u64, len: usize) -> String {
    let mut t = format!("{prefix}{seq} ");
    let filler = b"the quick brown fox jumps over the lazy dog ";
    let mut i = 0;
    while t.len() < len {
        t.push(filler[i % filler.len()] as char);
        i += 1;
    }
    t
}

/// Floods `addr` until `target` chats are committed or `limit` passes.
fn flood(addr: SocketAddr, args: &Args, target: u64, limit: Duration) -> Result<Flood> {
    let committed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for i in 0..args.senders {
        let (stream, buf) = login(addr, &format!("s{i}"))?;
        let reader = stream.try_clone()?;
        let acked = Arc::new(AtomicU64::new(0));
        let prefix = format!("s{i} ");
        {
            let (acked, stop, prefix) = (Arc::clone(&acked), Arc::clone(&stop), prefix.clone());
            let (window, text_bytes) = (args.window, args.text_bytes);
            threads.push(thread::spawn(move || {
                send_loop(stream, &prefix, window, text_bytes, &acked, &stop)
            }));
        }
        let (committed, stop) = (Arc::clone(&committed), Arc::clone(&stop));
        threads.push(thread::spawn(move || {
            read_loop(reader, buf, prefix.as_bytes(), &acked, &committed, &stop)
        }));
    }
    let start = Instant::now();
    let mut per_second = Vec::new();
    let mut last = 0;
    let mut next = start + Duration::from_secs(1);
    let end = loop {
        thread::sleep(Duration::from_millis(5));
        let now = Instant::now();
        let total = committed.load(Ordering::Relaxed);
        if now >= next {
            per_second.push(total - last);
            last = total;
            next += Duration::from_secs(1);
        }
        if total >= target || now.duration_since(start) >= limit {
            break now;
        }
        if threads.iter().any(|t| t.is_finished()) {
            stop.store(true, Ordering::Relaxed);
            for t in threads {
                if let Ok(Err(e)) = t.join() {
                    return Err(e);
                }
            }
            bail!("a client stopped early");
        }
    };
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("a client panicked"))??;
    }
    Ok(Flood {
        total: committed.load(Ordering::Relaxed),
        secs: end.duration_since(start).as_secs_f64(),
        per_second,
    })
}

/// A sender: keeps up to `window` of its chats in flight until `stop`.
fn send_loop(
    mut stream: TcpStream,
    prefix: &str,
    window: u64,
    text_bytes: usize,
    acked: &AtomicU64,
    stop: &AtomicBool,
) -> Result<()> {
    let mut sent = 0u64;
    let mut out = Vec::with_capacity(64 * 1024);
    while !stop.load(Ordering::Relaxed) {
        let room = window.saturating_sub(sent - acked.load(Ordering::Relaxed));
        if room == 0 {
            thread::sleep(Duration::from_micros(200));
            continue;
        }
        out.clear();
        for _ in 0..room.min(WRITE_BATCH) {
            let chat = ClientMessage::Chat(ChatSend {
                room: None,
                text: text_for(prefix, sent, text_bytes),
                reference: None,
            });
            out.extend_from_slice(&encode_client(&chat));
            sent += 1;
        }
        stream.write_all(&out).context("sending chats")?;
    }
    Ok(())
}

/// A sender's reader: counts its own chats coming back (committed), reads
/// everyone else's so the server never waits on this socket, and ends once
/// `stop` is set and every chat it sent came back (or 10 s later).
fn read_loop(
    mut stream: TcpStream,
    mut buf: BytesMut,
    prefix: &[u8],
    acked: &AtomicU64,
    committed: &AtomicU64,
    stop: &AtomicBool,
) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut chunk = vec![0u8; 256 * 1024];
    let mut stopped_at: Option<Instant> = None;
    loop {
        let mut pos = 0;
        while let Some(len) = frame_len(&buf[pos..], MAX_FRAME).context("bad frame")? {
            let body = &buf[pos + 4..pos + len];
            pos += len;
            if let Some(f) = fastparse::parse(body) {
                if f.kind == b"chat" && f.text.starts_with(prefix) {
                    acked.fetch_add(1, Ordering::Relaxed);
                    committed.fetch_add(1, Ordering::Relaxed);
                } else if f.kind == b"error" {
                    bail!(
                        "the server refused a chat: {}",
                        String::from_utf8_lossy(f.code)
                    );
                }
            }
        }
        let _ = buf.split_to(pos);
        if stop.load(Ordering::Relaxed) {
            let at = *stopped_at.get_or_insert_with(Instant::now);
            if at.elapsed() > Duration::from_secs(10) {
                return Ok(());
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                bail!("the server closed a sender's connection");
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // Quiet for 200 ms after the stop: everything came back.
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
            }
            Err(e) => return Err(e).context("reading chats"),
        }
    }
}

/// Times `args.pages` history pages before random ids in `1..=newest`.
fn pages(addr: SocketAddr, args: &Args, newest: u64) -> Result<Histogram> {
    let (mut stream, mut buf) = login(addr, "pager")?;
    let mut hist = Histogram::default();
    let mut chunk = vec![0u8; 256 * 1024];
    // xorshift64*: reproducible, no dependency.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next_rand = || {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    for k in 0..args.pages {
        // The newest page and the very first among them, the rest anywhere.
        let before = match k {
            0 => None,
            1 => Some(u64::from(args.page_limit) + 1),
            _ => Some(2 + next_rand() % newest.max(1)),
        };
        let req = ClientMessage::History(HistoryRequest {
            room: None,
            before,
            limit: args.page_limit,
        });
        let t0 = Instant::now();
        stream.write_all(&encode_client(&req))?;
        let page = loop {
            match decode_server(&mut buf, MAX_FRAME).context("decoding a page")? {
                Some(ServerMessage::History(h)) => break h,
                Some(ServerMessage::Error(e)) => bail!("page refused: {:?} {}", e.code, e.message),
                Some(_) => continue,
                None => {}
            }
            let n = stream.read(&mut chunk).context("waiting for a page")?;
            if n == 0 {
                bail!("the server closed the pager's connection");
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        hist.record(t0.elapsed().as_micros() as u64);
        let want = match before {
            None => u64::from(args.page_limit).min(newest),
            Some(b) => u64::from(args.page_limit).min(b.saturating_sub(1)),
        };
        if page.messages.len() as u64 != want {
            bail!(
                "a page before {before:?} held {} chats, expected {want}",
                page.messages.len()
            );
        }
    }
    Ok(hist)
}
