//! Starting a real `chatserver` child on free loopback ports, and reading its
//! memory use from /proc.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A chatserver child process, killed when dropped.
pub struct SpawnedServer {
    child: Child,
    /// Its chat address.
    pub addr: SocketAddr,
    /// Its config file (in a temporary directory removed on drop).
    dir: PathBuf,
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

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

impl SpawnedServer {
    /// Starts a server for `max_clients` clients with flood limits lifted
    /// (the load generator sends faster than a person may).
    pub fn start(max_clients: usize, heartbeat_ms: u32) -> Result<Self> {
        let bin = server_binary()?;
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let dir = std::env::temp_dir().join(format!("chatbench-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("chatserver.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"{addr}\"\nmax_clients = {}\nheartbeat_ms = {heartbeat_ms}\n\
                 rate_per_sec = 1000000.0\nrate_burst = 1000000.0\n\
                 handshake_timeout_ms = 60000\nmax_output_bytes = 67108864\n",
                max_clients + 16
            ),
        )?;
        let mut child = Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .arg("--no-voice")
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        // Forward the server's warnings so a problem is visible.
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    eprintln!("[server] {line}");
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
        Ok(Self { child, addr, dir })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`...).
pub fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}
