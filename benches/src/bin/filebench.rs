//! `filebench`: a large file through a real `chatserver`, beside a raw
//! loopback TCP copy measured in the same run, with chat latency measured
//! for the downloading client and for a bystander meanwhile.
//!
//! ```text
//! cargo run --release -p chatbench --bin filebench -- --size-mib 1024 [--cold]
//! ```
//!
//! Four baselines are measured in the same run: a raw loopback TCP copy from
//! memory to memory; the same with the reader computing SHA-256 (what the
//! downloading client must do, so the like-for-like baseline of the
//! download, whose client here hashes but does not store); a raw TCP copy of
//! a file into a file (read from the page cache, written to the spool's
//! filesystem: what `nc` would give a user); and that copy with the reader
//! computing SHA-256 (what the server does with an upload, so the
//! like-for-like baseline of the upload).
//!
//! `--tls` runs the three clients over TLS (certificate not verified: it is
//! a benchmark) against a server that speaks TLS, to quote the TLS figures
//! next to the plain ones; without it they speak plain TCP.
//!
//! `--cold` drops the page cache (root only) between upload and download, so
//! the server reads the file from disk. The server's longest loop turn comes
//! from its own log at shutdown.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use chatbench::histogram::Histogram;
use chatbench::spawn::{SpawnedServer, proc_kib};
use chatcore::protocol::transfer::{FileAccept, FileChunk, FileKind, FileOffer, MAX_CHUNK};
use chatcore::protocol::{
    ChatSend, ClientMessage, Hello, PROTOCOL_VERSION, ServerMessage, decode_server, encode_client,
};
use chatcore::tls::{ClientTls, ReadHalf, Verify, WriteHalf};
use clap::Parser;
use sha2::{Digest, Sha256};

/// Measures a file transfer through a real server.
#[derive(Debug, Parser)]
struct Args {
    /// File size in MiB
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Chat messages per second sent by a third client during the transfer
    #[arg(long, default_value_t = 100)]
    chat_rate: u32,
    /// Drop the page cache before the download (needs root)
    #[arg(long)]
    cold: bool,
    /// Run the uploading and downloading clients' threads at the lowest
    /// priority (nice 19), as if they were on other machines: on a 2-core
    /// box their CPU time otherwise competes with the server and the
    /// bystander, which remote clients' would not
    #[arg(long)]
    nice_clients: bool,
    /// Print one JSON object
    #[arg(long)]
    json: bool,
    /// Connect the clients over TLS (the server's certificate is not
    /// verified: a benchmark); the server must speak TLS
    #[arg(long)]
    tls: bool,
}

/// Lowers the calling thread to nice 19 (Linux: priorities are per thread).
fn nice_this_thread() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
}

fn main() -> ExitCode {
    chatbench::exit(run())
}

/// Deterministic pseudo-random content, generated rather than stored.
struct Content(u64);

impl Content {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let bytes = self.0.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Raw loopback TCP: one thread writes `size` bytes, this one reads them
/// (and, with `verify`, SHA-256s them as a receiver must).
fn raw_copy(size: u64, verify: bool) -> Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let writer = thread::spawn(move || -> std::io::Result<()> {
        let mut s = TcpStream::connect(addr)?;
        let buf = vec![7u8; MAX_CHUNK as usize];
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            s.write_all(&buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    });
    let (s, _) = listener.accept()?;
    let took = receive_raw(s, size, verify, None)?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    Ok(took)
}

/// The reading side of the raw copies: reads `size` bytes, SHA-256s them
/// with `verify`, writes them to `out` if given; returns the time it took.
fn receive_raw(
    mut s: TcpStream,
    size: u64,
    verify: bool,
    mut out: Option<std::fs::File>,
) -> Result<Duration> {
    let start = Instant::now();
    let mut buf = vec![0u8; MAX_CHUNK as usize];
    let mut got = 0u64;
    let mut hasher = Sha256::new();
    while got < size {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if let Some(f) = out.as_mut() {
            f.write_all(&buf[..n])?;
        }
        if verify {
            hasher.update(&buf[..n]);
        }
        got += n as u64;
    }
    std::hint::black_box(hasher.finalize());
    Ok(start.elapsed())
}

/// The baseline a user would compare with: a plain TCP copy of a file into
/// a file (what `nc` does), on the same loopback and filesystem. One thread
/// reads the source file (in the page cache, as the spool's would be) and
/// sends it; this one receives and writes it to a new file.
///
/// With `verify` the receiving side also SHA-256s what it writes, as the
/// server does with an upload.
fn raw_file_copy(size: u64, verify: bool) -> Result<Duration> {
    let dir = std::env::temp_dir();
    let src = dir.join(format!("filebench-src-{}.tmp", std::process::id()));
    let dst = dir.join(format!("filebench-dst-{}.tmp", std::process::id()));
    {
        let mut f = std::fs::File::create(&src)?;
        let mut content = Content(1);
        let mut buf = vec![0u8; MAX_CHUNK as usize];
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            content.fill(&mut buf[..n]);
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let from = src.clone();
    let writer = thread::spawn(move || -> std::io::Result<()> {
        let mut s = TcpStream::connect(addr)?;
        let mut f = std::fs::File::open(from)?;
        let mut buf = vec![0u8; MAX_CHUNK as usize];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            s.write_all(&buf[..n])?;
        }
    });
    let (s, _) = listener.accept()?;
    let took = receive_raw(s, size, verify, Some(std::fs::File::create(&dst)?))?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    let _ = std::fs::remove_file(&src);
    let _ = std::fs::remove_file(&dst);
    Ok(took)
}

/// Writes `size` bytes to a file in the temporary directory (where the
/// spawned server's spool is) in 256 KiB writes, as the spool does: the
/// fastest an upload could be stored on this machine, before any network.
fn raw_disk_write(size: u64) -> Result<Duration> {
    let path = std::env::temp_dir().join(format!("filebench-{}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&path)?;
    let buf = vec![7u8; MAX_CHUNK as usize];
    let start = Instant::now();
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    let took = start.elapsed();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(took)
}

/// A logged-in raw client (plain, or TLS without verification with
/// `tls`), as its reading and writing halves.
fn login(addr: SocketAddr, name: &str, tls: bool) -> Result<(ReadHalf, WriteHalf)> {
    let how = if tls {
        ClientTls::Tls(Verify::Insecure)
    } else {
        ClientTls::Plain
    };
    let (stream, _) = chatcore::tls::connect(&addr.to_string(), &how, Duration::from_secs(10))
        .with_context(|| format!("connecting {name}"))?;
    let (r, mut w) = stream.split();
    w.write_all(&encode_client(&ClientMessage::Hello(Hello {
        password: None,
        token: None,
        version: PROTOCOL_VERSION,
        name: name.into(),
        last_seen: None,
    })))?;
    Ok((r, w))
}

/// Reads frames forever, calling `f` for each; stops when `f` says so or
/// the connection ends.
fn read_frames(mut s: impl Read, mut f: impl FnMut(ServerMessage) -> bool) {
    let mut buf = BytesMut::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        loop {
            match decode_server(&mut buf, u32::MAX) {
                Ok(Some(m)) => {
                    if !f(m) {
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn stamp_ns(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

fn latency_of(text: &str, start: Instant) -> Option<u64> {
    let sent = u64::from_str_radix(text.get(..16)?, 16).ok()?;
    Some(stamp_ns(start).saturating_sub(sent) / 1000)
}

#[derive(Default)]
struct Shared {
    /// Chat latency (µs) at the downloading client, during the download.
    at_receiver: Histogram,
    /// Chat latency (µs) at the bystander, whole run.
    at_bystander: Histogram,
}

fn run() -> Result<()> {
    let args = Args::parse();
    let size = args.size_mib << 20;
    let t0 = Instant::now();

    eprintln!("raw loopback copy of {} MiB...", args.size_mib);
    let raw = raw_copy(size, false)?;
    eprintln!(
        "raw loopback copy of {} MiB, SHA-256 at the reader...",
        args.size_mib
    );
    let raw_verified = raw_copy(size, true)?;

    eprintln!(
        "raw loopback copy of a {} MiB file into a file...",
        args.size_mib
    );
    let raw_file = raw_file_copy(size, false)?;
    eprintln!("the same, SHA-256 at the reader...");
    let raw_file_verified = raw_file_copy(size, true)?;

    eprintln!(
        "raw write of {} MiB to the spool's filesystem...",
        args.size_mib
    );
    let disk = raw_disk_write(size)?;

    eprintln!("hashing the content...");
    let mut hasher = Sha256::new();
    let mut content = Content(0x9e37_79b9_7f4a_7c15);
    let mut buf = vec![0u8; MAX_CHUNK as usize];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        content.fill(&mut buf[..n]);
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    let sha: [u8; 32] = hasher.finalize().into();

    let server = SpawnedServer::start_tls(
        16,
        10_000,
        &format!(
            "max_file_bytes = {}\nspool_quota_bytes = {}\n",
            size + 1,
            size + 1
        ),
        args.tls,
    )?;
    let addr = server.addr;
    let pid = server.pid();

    let shared = Arc::new(Mutex::new(Shared::default()));
    let downloading = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // The bystander: sends chats at a steady rate and measures its own copies.
    let (bystander_r, mut bystander_w) = login(addr, "bystander", args.tls)?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        let every = Duration::from_secs_f64(1.0 / f64::from(args.chat_rate.max(1)));
        thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let text = format!("{:016x} chat during the transfer", stamp_ns(t0));
                let frame = encode_client(&ClientMessage::Chat(ChatSend {
                    room: None,
                    text,
                    reference: None,
                }));
                if bystander_w.write_all(&frame).is_err() {
                    return;
                }
                thread::sleep(every);
            }
        });
        let shared = Arc::clone(&shared);
        let r = bystander_r;
        thread::spawn(move || {
            read_frames(r, |m| {
                if let ServerMessage::Chat(c) = m
                    && let Some(us) = latency_of(&c.text, t0)
                {
                    let mut s = shared
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    s.at_bystander.record(us);
                }
                true
            });
        });
    }

    // The receiver: waits for the offer, downloads when told, checks the hash.

    let (receiver_r, mut receiver_w) = login(addr, "receiver", args.tls)?;
    let (offer_tx, offer_rx) = std::sync::mpsc::channel::<u64>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(u64, [u8; 32])>();
    {
        let shared = Arc::clone(&shared);
        let downloading = Arc::clone(&downloading);
        let r = receiver_r;
        let nice = args.nice_clients;
        thread::spawn(move || {
            if nice {
                nice_this_thread();
            }
            let mut got = 0u64;
            let mut hasher = Sha256::new();
            read_frames(r, |m| match m {
                ServerMessage::FileOffer(o) => offer_tx.send(o.transfer).is_ok(),
                ServerMessage::FileData(d) => {
                    got += d.data.len() as u64;
                    hasher.update(&d.data);
                    true
                }
                ServerMessage::FileDone(_) => {
                    let digest: [u8; 32] = std::mem::take(&mut hasher).finalize().into();
                    let _ = done_tx.send((got, digest));
                    false
                }
                ServerMessage::Chat(c) => {
                    if downloading.load(std::sync::atomic::Ordering::Relaxed)
                        && let Some(us) = latency_of(&c.text, t0)
                    {
                        let mut s = shared
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        s.at_receiver.record(us);
                    }
                    true
                }
                _ => true,
            });
        });
    }

    // The uploader.
    let (uploader_r, mut uploader) = login(addr, "uploader", args.tls)?;
    thread::sleep(Duration::from_millis(200));
    let rss_idle = proc_kib(pid, "VmRSS").unwrap_or(0);
    uploader.write_all(&encode_client(&ClientMessage::FileOffer(FileOffer {
        room: None,
        to: None,
        name: "big.bin".into(),
        size,
        sha256: sha.to_vec(),
        kind: FileKind::File,
        reference: Some(1),
    })))?;
    let (id_tx, id_rx) = std::sync::mpsc::channel::<Result<u64, String>>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    {
        let r = uploader_r;
        thread::spawn(move || {
            read_frames(r, |m| match m {
                ServerMessage::FileUpload(u) => id_tx.send(Ok(u.transfer)).is_ok(),
                ServerMessage::Error(e) => {
                    let _ = id_tx.send(Err(e.message));
                    false
                }
                ServerMessage::FileReady(_) => {
                    let _ = ready_tx.send(());
                    true
                }
                _ => true,
            });
        });
    }
    let id = id_rx
        .recv_timeout(Duration::from_secs(10))
        .context("no answer to the offer")?
        .map_err(|e| anyhow::anyhow!("offer refused: {e}"))?;
    eprintln!("uploading...");
    if args.nice_clients {
        // This (main) thread is the uploader from here on.
        nice_this_thread();
    }
    let up_start = Instant::now();
    let mut content = Content(0x9e37_79b9_7f4a_7c15);
    let mut offset = 0u64;
    while offset < size {
        let n = (size - offset).min(u64::from(MAX_CHUNK)) as usize;
        let mut data = vec![0u8; n];
        content.fill(&mut data);
        uploader.write_all(&encode_client(&ClientMessage::FileChunk(FileChunk {
            transfer: id,
            offset,
            data,
        })))?;
        offset += n as u64;
    }
    ready_rx
        .recv_timeout(Duration::from_secs(600))
        .context("upload never confirmed")?;
    let upload = up_start.elapsed();
    offer_rx
        .recv_timeout(Duration::from_secs(10))
        .context("the receiver was never offered the file")?;

    let mut cold = false;
    if args.cold {
        let _ = std::process::Command::new("sync").status();
        cold = std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok();
        if !cold {
            eprintln!("could not drop the page cache (not root?): measuring warm");
        }
    }

    eprintln!("downloading...");
    downloading.store(true, std::sync::atomic::Ordering::Relaxed);
    let down_start = Instant::now();
    receiver_w.write_all(&encode_client(&ClientMessage::FileAccept(FileAccept {
        transfer: id,
        offset: 0,
    })))?;
    let (got, digest) = done_rx
        .recv_timeout(Duration::from_secs(600))
        .context("download never finished")?;
    let download = down_start.elapsed();

    downloading.store(false, std::sync::atomic::Ordering::Relaxed);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if got != size || digest != sha {
        bail!(
            "download corrupt: {got} of {size} bytes, hash match {}",
            digest == sha
        );
    }
    let rss_peak = proc_kib(pid, "VmHWM").unwrap_or(0);
    let log = server.stop();
    let longest_turn_us: Option<u64> = log.iter().rev().find_map(|l| {
        let v = l.split("longest_turn_us=").nth(1)?;
        v.split_whitespace().next()?.parse().ok()
    });

    let s = shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let ms = |h: &Histogram, q: f64| h.quantile(q) as f64 / 1000.0;
    let out = serde_json::json!({
        "size_mib": args.size_mib,
        "tls": args.tls,
        "raw_copy_mb_s": mb_per_s(size, raw),
        "upload_mb_s": mb_per_s(size, upload),
        "download_mb_s": mb_per_s(size, download),
        "download_vs_raw": mb_per_s(size, download) / mb_per_s(size, raw),
        "upload_vs_raw": mb_per_s(size, upload) / mb_per_s(size, raw),
        "raw_verified_copy_mb_s": mb_per_s(size, raw_verified),
        "download_vs_raw_verified_copy": mb_per_s(size, download) / mb_per_s(size, raw_verified),
        "raw_verified_file_copy_mb_s": mb_per_s(size, raw_file_verified),
        "upload_vs_raw_verified_file_copy": mb_per_s(size, upload) / mb_per_s(size, raw_file_verified),
        "raw_file_copy_mb_s": mb_per_s(size, raw_file),
        "download_vs_raw_file_copy": mb_per_s(size, download) / mb_per_s(size, raw_file),
        "upload_vs_raw_file_copy": mb_per_s(size, upload) / mb_per_s(size, raw_file),
        "nice_clients": args.nice_clients,
        "raw_disk_write_mb_s": mb_per_s(size, disk),
        "upload_vs_disk_write": mb_per_s(size, upload) / mb_per_s(size, disk),
        "cold_cache": cold,
        "server_rss_idle_kib": rss_idle,
        "server_rss_peak_kib": rss_peak,
        "server_rss_growth_kib": rss_peak.saturating_sub(rss_idle),
        "longest_turn_ms": longest_turn_us.map(|us| us as f64 / 1000.0),
        "chat_at_receiver_ms": {
            "p50": ms(&s.at_receiver, 0.5), "p99": ms(&s.at_receiver, 0.99),
            "max": s.at_receiver.max() as f64 / 1000.0,
        },
        "chat_at_bystander_ms": {
            "p50": ms(&s.at_bystander, 0.5), "p99": ms(&s.at_bystander, 0.99),
            "max": s.at_bystander.max() as f64 / 1000.0,
        },
    });
    if args.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}
