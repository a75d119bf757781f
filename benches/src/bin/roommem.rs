//! `roommem`: what one empty named room costs the server in memory.
//!
//! ```text
//! cargo run --release -p chatbench --bin roommem -- --rooms 1000
//! ```
//!
//! One client logs in to a spawned `chatserver` (plain TCP, scratch data
//! directory, so rooms are saved in its store as an operator's would be),
//! creates `--warmup` rooms first (so the room table and the code paths
//! exist before the baseline), reads the server's VmRSS, then creates
//! `--rooms` more: `join r{k}` and `part r{k}` for each (a parted room
//! stays, empty: protocol.md section 23.1), in batches of `BATCH` written
//! at once. After `--settle-ms` it reads VmRSS again; the difference over
//! `--rooms` is the bytes per empty room. RSS grows in pages and the
//! allocator keeps slack, so a few hundred rooms at least are needed for a
//! figure within a few percent.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chatbench::fastparse;
use chatbench::spawn::{SpawnedServer, proc_kib};
use chatcore::protocol::{
    ClientMessage, Hello, JoinRoom, PROTOCOL_VERSION, RoomName, encode_client, frame_len,
};
use clap::Parser;
use serde_json::json;

/// Largest frame this client accepts.
const MAX_FRAME: u32 = 16 << 20;
/// Rooms whose join and part are written in one go before the answers are
/// read: far fewer round trips, and well under any socket buffer.
const BATCH: usize = 100;

/// Measures the server's memory per empty named room.
#[derive(Debug, Parser)]
#[command(name = "roommem", version)]
struct Args {
    /// Empty rooms to create after the baseline
    #[arg(long, default_value_t = 1000)]
    rooms: usize,
    /// Rooms created before the baseline is read
    #[arg(long, default_value_t = 16)]
    warmup: usize,
    /// Milliseconds to wait before each RSS reading
    #[arg(long, default_value_t = 300)]
    settle_ms: u64,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

/// One blocking client connection and the bytes read but not yet framed.
struct Conn {
    stream: TcpStream,
    /// Bytes of a frame not complete yet.
    buf: Vec<u8>,
}

impl Conn {
    /// Reads frames until `want` of type `kind` have come; fails on an
    /// `error` frame (a refused join would otherwise skew the figure).
    fn wait_for(&mut self, kind: &[u8], mut want: usize) -> Result<()> {
        let mut chunk = vec![0u8; 64 * 1024];
        while want > 0 {
            let mut pos = 0;
            while let Some(len) = frame_len(&self.buf[pos..], MAX_FRAME).context("bad frame")? {
                let f = fastparse::parse(&self.buf[pos + 4..pos + len])
                    .context("unreadable frame from the server")?;
                pos += len;
                if f.kind == b"error" {
                    bail!("server error {}", String::from_utf8_lossy(f.code));
                }
                if f.kind == kind {
                    want = want.saturating_sub(1);
                }
            }
            self.buf.drain(..pos);
            if want == 0 {
                break;
            }
            let n = self.stream.read(&mut chunk).context("reading")?;
            if n == 0 {
                bail!("the server closed the connection");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    chatbench::exit(run())
}

/// Creates `count` empty rooms named `{prefix}{k}`.
fn create_rooms(conn: &mut Conn, prefix: &str, count: usize) -> Result<()> {
    let mut k = 0;
    while k < count {
        let n = BATCH.min(count - k);
        let mut out = Vec::new();
        for j in k..k + n {
            let room = format!("{prefix}{j}");
            out.extend_from_slice(&encode_client(&ClientMessage::Join(JoinRoom {
                room: room.clone(),
                invite_only: false,
            })));
            out.extend_from_slice(&encode_client(&ClientMessage::Part(RoomName { room })));
        }
        conn.stream.write_all(&out).context("writing joins")?;
        conn.wait_for(b"room_parted", n)?;
        k += n;
    }
    Ok(())
}

fn run() -> Result<()> {
    let args = Args::parse();
    if args.rooms == 0 {
        bail!("--rooms must be at least 1");
    }
    let cap = args.rooms + args.warmup + 16;
    let server = SpawnedServer::start_with(16, 10_000, &format!("max_rooms = {cap}\n"))?;
    let pid = server.pid();
    let stream = TcpStream::connect(server.addr).context("connecting")?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
    };
    conn.stream
        .write_all(&encode_client(&ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: PROTOCOL_VERSION,
            name: "roommem".into(),
            last_seen: None,
        })))?;
    conn.wait_for(b"welcome", 1)?;
    create_rooms(&mut conn, "w", args.warmup)?;
    std::thread::sleep(Duration::from_millis(args.settle_ms));
    let before = proc_kib(pid, "VmRSS").context("reading the server's VmRSS")?;
    let t0 = Instant::now();
    create_rooms(&mut conn, "r", args.rooms)?;
    let create_s = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(args.settle_ms));
    let after = proc_kib(pid, "VmRSS").context("reading the server's VmRSS")?;
    drop(conn);
    drop(server);
    let per_room = after.saturating_sub(before) as f64 * 1024.0 / args.rooms as f64;
    if args.json {
        println!(
            "{}",
            json!({
                "rooms": args.rooms,
                "warmup": args.warmup,
                "rss_before_kib": before,
                "rss_after_kib": after,
                "bytes_per_room": per_room.round(),
                "create_s": create_s,
            })
        );
    } else {
        println!(
            "server RSS before          {before} KiB ({} warm-up rooms)",
            args.warmup
        );
        println!(
            "server RSS after           {after} KiB (+{} empty rooms)",
            args.rooms
        );
        println!("memory per empty room      {per_room:.0} B");
        println!("creating them took         {create_s:.3} s (join + part each)");
    }
    Ok(())
}
