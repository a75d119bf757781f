//! The parts of `chatattack` shared by its scenarios: the server under
//! attack ([`Target`]), what it costs as seen from /proc ([`Sampler`]), the
//! honest member that chats through every attack ([`Probe`]), and a raw
//! blocking connection that speaks the protocol frame by frame ([`Raw`]).
//!
//! The scenarios themselves are in [`scenarios`]; each one replays one item
//! of the hardening issue against a real server and returns its figures.

pub mod scenarios;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use chatcore::protocol::{ClientMessage, Hello, ServerMessage, decode_server, encode_client};
use chatcore::{Client, Event};
use serde_json::{Value, json};

use crate::histogram::Histogram;
use crate::spawn::SpawnedServer;

/// The server being attacked: one we started (so we know its PID, its
/// spool directory and its log) or one given by address.
pub struct Target {
    /// Chat address.
    pub chat: SocketAddr,
    /// Voice address (UDP and TCP), when the voice port is open.
    pub voice: Option<SocketAddr>,
    /// The server's process id, for /proc figures; `None` when unknown.
    pub pid: Option<u32>,
    /// The server's spool directory, for counting spool files.
    pub spool: Option<PathBuf>,
    /// The server we started, stopped (SIGTERM) at the end.
    pub server: Option<SpawnedServer>,
}

impl Target {
    /// Starts `chatserver` with its default limits on free loopback ports,
    /// the voice port open, and a fresh spool directory of our own (so it
    /// can be inspected after the server stopped). With `nofile`, the
    /// server's soft open-file limit is that (it inherits ours, lowered for
    /// the moment of the start): descriptor exhaustion is then reached by a
    /// bounded run.
    pub fn spawn(nofile: Option<u64>) -> Result<Self> {
        let spool = std::env::temp_dir().join(format!(
            "chatattack-spool-{}-{}",
            std::process::id(),
            rand_u64()
        ));
        std::fs::create_dir_all(&spool).context("creating the spool directory")?;
        let extra = format!("spool_dir = {:?}\n", spool.display().to_string());
        let saved = rlimit::getrlimit(rlimit::Resource::NOFILE).ok();
        if let (Some(n), Some((_, hard))) = (nofile, saved) {
            rlimit::setrlimit(rlimit::Resource::NOFILE, n.min(hard), hard)
                .context("lowering the open-file limit for the server")?;
        }
        let server = SpawnedServer::start_stock(true, &extra);
        if let (Some(_), Some((soft, hard))) = (nofile, saved) {
            let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, soft, hard);
        }
        let server = server?;
        Ok(Self {
            chat: server.addr,
            voice: server.voice,
            pid: Some(server.pid()),
            spool: Some(spool),
            server: Some(server),
        })
    }

    /// Bytes of log the server wrote so far (only for a server we started).
    pub fn log_bytes(&self) -> Option<u64> {
        self.server.as_ref().map(SpawnedServer::log_bytes)
    }

    /// Stops a server we started with SIGTERM and returns the longest loop
    /// turn it reported at shutdown, in ms.
    pub fn stop(&mut self) -> Option<f64> {
        let log = self.server.take()?.stop();
        log.iter().rev().find_map(|l| {
            let v = l.split("longest_turn_us=").nth(1)?;
            let us: f64 = v.split_whitespace().next()?.parse().ok()?;
            Some(us / 1000.0)
        })
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        drop(self.server.take());
        if let Some(spool) = self.spool.take()
            && spool.starts_with(std::env::temp_dir())
            && spool
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("chatattack-spool-"))
        {
            let _ = std::fs::remove_dir_all(spool);
        }
    }
}

/// A cheap non-cryptographic random number (xorshift seeded from the clock
/// and a counter): token guesses and unique names, nothing secret.
pub fn rand_u64() -> u64 {
    use std::sync::atomic::AtomicU64;
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut x = STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed) ^ seed;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Resident memory of a process in KiB, from /proc/PID/status.
pub fn rss_kib(pid: u32) -> Option<u64> {
    crate::spawn::proc_kib(pid, "VmRSS")
}

/// Open file descriptors of a process, from /proc/PID/fd.
pub fn fd_count(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// The soft open-file limit of a process, from /proc/PID/limits.
pub fn nofile_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time (user + system) of a process in seconds, from /proc/PID/stat.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0) // USER_HZ is 100 on Linux
}

/// Samples the server's memory and descriptors every 100 ms in a thread,
/// so a scenario reports the peak as well as the start and the end.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<Mutex<(u64, u64)>>,
    handle: Option<JoinHandle<()>>,
    pid: Option<u32>,
    start: (Option<u64>, Option<u64>),
    cpu0: Option<f64>,
    t0: Instant,
}

impl Sampler {
    /// Starts sampling `pid` (does nothing when it is `None`).
    pub fn start(pid: Option<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(Mutex::new((0u64, 0u64)));
        let handle = pid.map(|pid| {
            let stop = Arc::clone(&stop);
            let peak = Arc::clone(&peak);
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (r, f) = (rss_kib(pid).unwrap_or(0), fd_count(pid).unwrap_or(0));
                    let mut p = peak.lock().unwrap_or_else(PoisonError::into_inner);
                    p.0 = p.0.max(r);
                    p.1 = p.1.max(f);
                    drop(p);
                    thread::sleep(Duration::from_millis(100));
                }
            })
        });
        Self {
            stop,
            peak,
            handle,
            pid,
            start: (pid.and_then(rss_kib), pid.and_then(fd_count)),
            cpu0: pid.and_then(cpu_secs),
            t0: Instant::now(),
        }
    }

    /// The server's RSS and fd count now.
    pub fn now(&self) -> (Option<u64>, Option<u64>) {
        (self.pid.and_then(rss_kib), self.pid.and_then(fd_count))
    }

    /// Peak RSS (KiB) and fds seen so far.
    pub fn peak(&self) -> (u64, u64) {
        *self.peak.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops sampling; the server's figures as JSON.
    pub fn finish(mut self) -> Value {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let (rss_end, fds_end) = self.now();
        let (rss_peak, fds_peak) = self.peak();
        let cpu = match (self.cpu0, self.pid.and_then(cpu_secs)) {
            (Some(a), Some(b)) => Some(round2((b - a) / self.t0.elapsed().as_secs_f64())),
            _ => None,
        };
        json!({
            "rss_start_kib": self.start.0, "rss_peak_kib": rss_peak, "rss_end_kib": rss_end,
            "fds_start": self.start.1, "fds_peak": fds_peak, "fds_end": fds_end,
            "fd_limit": self.pid.and_then(nofile_limit),
            "cpu_share": cpu,
        })
    }
}

/// Rounds to two decimals for the report.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> f64 {
    round2(d.as_secs_f64() * 1000.0)
}

/// Quantiles of a histogram of µs values, in ms.
pub fn quantiles_ms(h: &Histogram) -> Value {
    let q = |v: u64| round2(v as f64 / 1000.0);
    json!({
        "n": h.count(), "p50": q(h.quantile(0.5)), "p99": q(h.quantile(0.99)), "max": q(h.max()),
    })
}

/// An honest member that chats all through an attack: a chat every 100 ms
/// (within the default rate limit), the round trip of each of its own
/// messages measured, and whether the server cut it.
pub struct Probe {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<ProbeResult>>,
    login: Result<Duration, String>,
}

struct ProbeResult {
    rtt: Histogram,
    sent: u64,
    cut: Option<String>,
}

impl Probe {
    /// Logs in as `probe` and starts chatting.
    pub fn start(addr: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let t = Instant::now();
        let client = match Client::connect_plain(addr, "probe") {
            Ok(c) => c,
            Err(e) => {
                return Self {
                    stop,
                    handle: None,
                    login: Err(e.to_string()),
                };
            }
        };
        let login = Ok(t.elapsed());
        let stop2 = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let base = Instant::now();
            let mut r = ProbeResult {
                rtt: Histogram::default(),
                sent: 0,
                cut: None,
            };
            let mut next = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    let stamp = base.elapsed().as_micros() as u64;
                    if let Err(e) = client.send_chat(format!("probe {stamp:016x}")) {
                        r.cut = Some(format!("send failed: {e}"));
                        break;
                    }
                    r.sent += 1;
                    next += Duration::from_millis(100);
                }
                let wait = next.saturating_duration_since(Instant::now());
                match client.recv_timeout(wait.max(Duration::from_millis(1))) {
                    Ok(Some(Event::Message(ServerMessage::Chat(c)))) => {
                        if let Some(sent) = c
                            .text
                            .strip_prefix("probe ")
                            .and_then(|h| u64::from_str_radix(h, 16).ok())
                        {
                            let now = base.elapsed().as_micros() as u64;
                            r.rtt.record(now.saturating_sub(sent));
                        }
                    }
                    Ok(Some(Event::Closed(why))) => {
                        r.cut = Some(why);
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        r.cut = Some(e.to_string());
                        break;
                    }
                }
            }
            r
        });
        Self {
            stop,
            handle: Some(handle),
            login,
        }
    }

    /// Stops chatting; what the probe saw, as JSON.
    pub fn finish(mut self) -> Value {
        self.stop.store(true, Ordering::Relaxed);
        let r = self.handle.take().and_then(|h| h.join().ok());
        match (&self.login, r) {
            (Ok(login), Some(r)) => json!({
                "login_ms": ms(*login),
                "chats_sent": r.sent,
                "chats_back": r.rtt.count(),
                "rtt_ms": quantiles_ms(&r.rtt),
                "cut": r.cut,
            }),
            (Err(e), _) => json!({ "login_error": e }),
            (Ok(_), None) => json!({ "error": "probe thread panicked" }),
        }
    }
}

/// Where every attacker connects from: a loopback address other than the
/// probe's and the honest members' (127.0.0.1). The server's per-address
/// caps (docs/operations.md) are meant to keep one hostile host from taking
/// what everyone else needs; attacking from the honest members' own address
/// would only show the caps refusing the honest members too.
pub const ATTACKER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 66));

/// A TCP connection to `addr` from [`ATTACKER_IP`].
pub fn attacker_stream(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.bind(&SocketAddr::new(ATTACKER_IP, 0).into())?;
    socket.connect_timeout(&addr.into(), timeout)?;
    Ok(socket.into())
}

/// A blocking raw connection: frames written as they are, replies decoded
/// one at a time. The attackers use it to do what a well-behaved client
/// (like [`Client`]) would not.
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    buf: BytesMut,
    chunk: Vec<u8>,
    /// Bytes received so far (what the server queued for us).
    pub bytes_read: u64,
}

impl Raw {
    /// Connects (without logging in), as an honest member does.
    pub fn connect(addr: SocketAddr) -> Result<Self> {
        Self::wrap(TcpStream::connect_timeout(&addr, Duration::from_secs(3))?)
    }

    /// Connects (without logging in) from [`ATTACKER_IP`].
    pub fn connect_attacker(addr: SocketAddr) -> Result<Self> {
        Self::wrap(attacker_stream(addr, Duration::from_secs(3))?)
    }

    fn wrap(stream: TcpStream) -> Result<Self> {
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: BytesMut::new(),
            chunk: vec![0; 64 * 1024],
            bytes_read: 0,
        })
    }

    /// Writes bytes as they are.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Writes one message.
    pub fn send(&mut self, msg: &ClientMessage) -> std::io::Result<()> {
        self.stream.write_all(&encode_client(msg))
    }

    /// The next message, waiting at most until `deadline`; `Ok(None)` on
    /// timeout; an error when the connection ended.
    pub fn next(&mut self, deadline: Instant) -> Result<Option<ServerMessage>> {
        loop {
            if let Some(m) = decode_server(&mut self.buf, u32::MAX)? {
                return Ok(Some(m));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut self.chunk) {
                Ok(0) => bail!("closed by the server"),
                Ok(n) => {
                    self.bytes_read += n as u64;
                    self.buf.extend_from_slice(&self.chunk[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads until `f` returns `Some`, the deadline passes (`Ok(None)`) or
    /// the connection ends (an error).
    pub fn until<T>(
        &mut self,
        deadline: Instant,
        mut f: impl FnMut(ServerMessage) -> Option<T>,
    ) -> Result<Option<T>> {
        while let Some(m) = self.next(deadline)? {
            if let Some(t) = f(m) {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    /// Reads and discards until the server closes the connection or the
    /// deadline passes; true when it closed.
    pub fn drain_to_close(&mut self, deadline: Instant) -> bool {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return false;
            }
            match self.stream.read(&mut self.chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }
}

/// How one login attempt ended.
pub enum Login {
    /// `welcome` arrived after this long.
    Welcome(Raw, Duration),
    /// The server refused with this error code.
    Refused(String),
    /// The connection ended or failed without a welcome.
    Failed(String),
    /// No answer in time.
    Timeout,
}

/// Sends `hello` as `name` and waits up to `timeout` for the `welcome`.
pub fn login(addr: SocketAddr, name: &str, timeout: Duration) -> Login {
    login_with(Raw::connect(addr), name, timeout)
}

/// [`login`] from [`ATTACKER_IP`].
pub fn attacker_login(addr: SocketAddr, name: &str, timeout: Duration) -> Login {
    login_with(Raw::connect_attacker(addr), name, timeout)
}

fn login_with(connected: Result<Raw>, name: &str, timeout: Duration) -> Login {
    let t = Instant::now();
    let mut raw = match connected {
        Ok(r) => r,
        Err(e) => return Login::Failed(format!("connect: {e}")),
    };
    let hello = ClientMessage::Hello(Hello {
        password: None,
        token: None,
        version: 1,
        name: name.to_owned(),
        last_seen: None,
    });
    if let Err(e) = raw.send(&hello) {
        return Login::Failed(format!("write: {e}"));
    }
    let deadline = t + timeout;
    let got = raw.until(deadline, |m| match m {
        ServerMessage::Welcome(_) => Some(Ok(())),
        ServerMessage::Error(e) => Some(Err(e.code)),
        _ => None,
    });
    match got {
        Ok(Some(Ok(()))) => Login::Welcome(raw, t.elapsed()),
        Ok(Some(Err(code))) => Login::Refused(code.to_string()),
        Ok(None) => Login::Timeout,
        Err(e) => Login::Failed(e.to_string()),
    }
}

/// Tries `n` fresh logins one after the other (each closed after its
/// welcome) and reports how many succeeded, the time to each welcome, and
/// why the others failed.
pub fn login_round(addr: SocketAddr, n: usize, prefix: &str, timeout: Duration) -> Value {
    let mut ok = Histogram::default();
    let mut failures: std::collections::BTreeMap<String, u64> = Default::default();
    for i in 0..n {
        match login(addr, &format!("{prefix}{i}"), timeout) {
            Login::Welcome(raw, d) => {
                ok.record(d.as_micros() as u64);
                let mut raw = raw;
                let _ = raw.send(&ClientMessage::Bye);
            }
            Login::Refused(code) => *failures.entry(code).or_default() += 1,
            Login::Failed(why) => {
                let key = if why.contains("closed") {
                    "closed before welcome".to_owned()
                } else {
                    why
                };
                *failures.entry(key).or_default() += 1;
            }
            Login::Timeout => *failures.entry("no welcome in time".into()).or_default() += 1,
        }
    }
    json!({
        "tried": n,
        "succeeded": ok.count(),
        "success_rate": round2(ok.count() as f64 / n.max(1) as f64),
        "welcome_ms": quantiles_ms(&ok),
        "failures": failures,
    })
}

/// Counts the `*.chatspool` files in `dir` and their total size.
pub fn spool_files(dir: &Path) -> (u64, u64) {
    let mut n = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "chatspool") {
                n += 1;
                bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    (n, bytes)
}

/// Lifts this process's open-file limit to the hard limit (thousands of
/// sockets are the point of several scenarios).
pub fn raise_fd_limit() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}
