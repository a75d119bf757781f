//! Starting a real `chatserver` child on free loopback ports, and reading its
//! memory use from /proc.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A chatserver child process, killed when dropped.
pub struct SpawnedServer {
    child: Child,
    /// Its chat address.
    pub addr: SocketAddr,
    /// Its config file (in a temporary directory removed on drop).
    dir: PathBuf,
    /// Its stderr lines.
    log: Arc<Mutex<Vec<String>>>,
    /// Its voice address (UDP and TCP), when the voice port is open.
    pub voice: Option<SocketAddr>,
    /// Bytes the server has written to stderr (its log) so far: the log
    /// volume an attacker can cause is one of the things `chatattack` measures.
    log_bytes: Arc<std::sync::atomic::AtomicU64>,
}

/// Where the `chatserver` binary is: next to this program (same cargo
/// profile), built first with cargo if it is not there yet.
fn server_binary() -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating this program")?;
    let dir = me.parent().context("program has no directory")?;
    let bin = dir.join("chatserver");
    if bin.exists() {
        return Ok(bin);
    }
    let release = dir.ends_with("release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    eprintln!("building chatserver first...");
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-q",
        "-p",
        "chatserver",
        "--manifest-path",
        manifest,
    ]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() || !bin.exists() {
        bail!("could not build chatserver ({status})");
    }
    Ok(bin)
}

/// Whether this `chatserver` has the TLS flags (`--no-tls`, `--data-dir`):
/// builds from before TLS serve plain TCP and refuse unknown flags.
fn daemon_knows_tls(bin: &std::path::Path) -> bool {
    Command::new(bin)
        .arg("--help")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--no-tls"))
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

impl SpawnedServer {
    /// Starts a server for `max_clients` clients with flood limits lifted
    /// (the load generator sends faster than a person may) and the
    /// per-address connection caps raised to `max_clients` (every client
    /// connects from 127.0.0.1).
    pub fn start(max_clients: usize, heartbeat_ms: u32) -> Result<Self> {
        Self::start_with(max_clients, heartbeat_ms, "")
    }

    /// Like [`SpawnedServer::start`], with extra TOML lines for the config.
    pub fn start_with(max_clients: usize, heartbeat_ms: u32, extra: &str) -> Result<Self> {
        Self::launch(max_clients, heartbeat_ms, extra, false, false)
    }

    /// Like [`SpawnedServer::start_with`], serving TLS on the chat port when
    /// `tls` (the daemon's self-signed certificate, made in the scratch data
    /// directory), plain TCP otherwise. Every other start serves plain TCP.
    pub fn start_tls(
        max_clients: usize,
        heartbeat_ms: u32,
        extra: &str,
        tls: bool,
    ) -> Result<Self> {
        Self::launch(max_clients, heartbeat_ms, extra, false, tls)
    }

    /// Like [`SpawnedServer::start_with`], with the voice port open on a
    /// free loopback port (UDP and TCP).
    pub fn start_with_voice(max_clients: usize, heartbeat_ms: u32, extra: &str) -> Result<Self> {
        Self::launch(max_clients, heartbeat_ms, extra, true, false)
    }

    fn launch(
        max_clients: usize,
        heartbeat_ms: u32,
        extra: &str,
        voice: bool,
        tls: bool,
    ) -> Result<Self> {
        let lifted = format!(
            "max_clients = {cap}\nheartbeat_ms = {heartbeat_ms}\n\
             rate_per_sec = 1000000.0\nrate_burst = 1000000.0\n\
             handshake_timeout_ms = 60000\nmax_output_bytes = 67108864\n\
             max_connections_per_address = {cap}\nmax_handshakes_per_address = {cap}\n{extra}\n",
            cap = max_clients + 16
        );
        Self::launch_config(&lifted, voice, true, tls)
    }

    /// Starts a server with chatcore's default limits (nothing lifted):
    /// only the listening address and `extra` (TOML lines, e.g. a
    /// `spool_dir`) are set. This is what `chatattack` attacks, since the
    /// defaults are what an operator runs. The server's warnings are not
    /// echoed (an attack makes many); they still count in
    /// [`SpawnedServer::log_bytes`].
    pub fn start_stock(voice: bool, extra: &str) -> Result<Self> {
        Self::launch_config(&format!("{extra}\n"), voice, false, false)
    }

    /// The one place that starts a server: `config` is the TOML body after
    /// the `listen` line; with `voice` the voice port opens on a free
    /// loopback port; with `echo` the server's warnings go to our stderr;
    /// with `tls` the chat port serves TLS (else `--no-tls`). The daemon's
    /// data directory is always a scratch one (`--data-dir`), never the
    /// user's.
    fn launch_config(config_body: &str, voice: bool, echo: bool, tls: bool) -> Result<Self> {
        let bin = server_binary()?;
        let tls_flags = daemon_knows_tls(&bin);
        if tls && !tls_flags {
            bail!(
                "{} has no TLS (no --no-tls in its --help): cannot serve --tls",
                bin.display()
            );
        }
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let dir = std::env::temp_dir().join(format!("chatbench-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("chatserver.toml");
        std::fs::write(&config, format!("listen = \"{addr}\"\n{config_body}"))?;
        let voice_addr: Option<SocketAddr> = if voice {
            Some(([127, 0, 0, 1], free_port()?).into())
        } else {
            None
        };
        let voice_args = match voice_addr {
            Some(v) => vec!["--voice-listen".to_owned(), v.to_string()],
            None => vec!["--no-voice".to_owned()],
        };
        let mut tls_args = Vec::new();
        if tls_flags {
            let data = dir.join("data");
            tls_args.push("--data-dir".to_owned());
            tls_args.push(data.display().to_string());
            if !tls {
                tls_args.push("--no-tls".to_owned());
            }
        }
        let mut child = Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .args(&voice_args)
            .args(&tls_args)
            .args(["--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        // Keep the server's log (the last lines carry its final counters)
        // and forward its warnings so a problem is visible.
        let log = Arc::new(Mutex::new(Vec::new()));
        let log_bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        if let Some(err) = child.stderr.take() {
            let log = Arc::clone(&log);
            let log_bytes = Arc::clone(&log_bytes);
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    log_bytes
                        .fetch_add(line.len() as u64 + 1, std::sync::atomic::Ordering::Relaxed);
                    if echo && (line.contains("WARN") || line.contains("ERROR")) {
                        eprintln!("[server] {line}");
                    }
                    let mut log = log
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if log.len() > 10_000 {
                        log.remove(0);
                    }
                    log.push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if let Some(status) = child.try_wait()? {
                bail!("chatserver exited at start: {status}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("chatserver did not start listening on {addr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            child,
            addr,
            dir,
            log,
            voice: voice_addr,
            log_bytes,
        })
    }

    /// Bytes of log (stderr) the server has written so far.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A scratch directory that goes away with the server.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Stops the server with SIGTERM (a clean shutdown that logs its final
    /// counters), waits up to 5 s, and returns its log.
    pub fn stop(mut self) -> Vec<String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        let log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        log.clone()
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// CPU seconds (user + system) a process has used so far, from
/// `/proc/PID/stat` (in USER_HZ ticks, 100 per second on Linux).
pub fn proc_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`...).
pub fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}
