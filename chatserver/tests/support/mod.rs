//! Runs the real `chatserver` binary and watches its stderr. Every wait is
//! bounded; the child is killed when the `Daemon` is dropped, whatever
//! happened before.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Generous bound for the daemon to start or fail.
pub const START: Duration = Duration::from_secs(10);

pub struct Daemon {
    child: Child,
    /// The data directory `spawn` gave it, removed when dropped.
    data_dir: Option<PathBuf>,
    lines: Receiver<String>,
    /// Every stderr line seen so far.
    pub seen: Vec<String>,
}

/// A fresh directory under the test target's temporary folder.
pub fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "chatserver-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

impl Daemon {
    /// Starts `chatserver ARGS --data-dir FRESH_TEMP_DIR` with RUST_LOG
    /// unset: never the user's real data directory. The directory is
    /// removed when the `Daemon` is dropped.
    pub fn spawn(args: &[&str]) -> Self {
        let dir = temp_dir("data");
        let dir_arg = dir.to_str().expect("utf-8 path").to_owned();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--data-dir", &dir_arg]);
        let mut daemon = Self::spawn_exact(&all);
        daemon.data_dir = Some(dir);
        daemon
    }

    /// A plain-TCP daemon without voice on a free port, keeping its data
    /// (history store, accounts) in `dir`, which outlives it: what the
    /// restart tests start twice on the same directory.
    pub fn spawn_plain_in(dir: &std::path::Path) -> Self {
        let dir_arg = dir.to_str().expect("utf-8 path");
        Self::spawn_exact(&[
            "--no-tls",
            "--no-voice",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir_arg,
        ])
    }

    /// Starts `chatserver ARGS` exactly (the test gives `--data-dir`).
    pub fn spawn_exact(args: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatserver"));
        cmd.args(args);
        Self::spawn_command(cmd)
    }

    /// Like [`Daemon::spawn_plain_in`], with `extra` arguments, under a
    /// file size limit of `kib` KiB (`ulimit -f`, through bash): past it,
    /// every write to a file fails as on a full disk.
    pub fn spawn_plain_limited(dir: &std::path::Path, kib: u64, extra: &[&str]) -> Self {
        let dir_arg = dir.to_str().expect("utf-8 path");
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(format!("ulimit -f {kib} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_chatserver"))
            .args([
                "--no-tls",
                "--no-voice",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                dir_arg,
            ])
            .args(extra);
        Self::spawn_command(cmd)
    }

    /// Starts `cmd` (which runs chatserver; the test gives `--data-dir`).
    pub fn spawn_cmd(cmd: Command) -> Self {
        Self::spawn_command(cmd)
    }

    /// Starts `cmd` (which runs chatserver) and watches its stderr.
    fn spawn_command(mut cmd: Command) -> Self {
        let mut child = cmd
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chatserver");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            data_dir: None,
            lines,
            seen: Vec::new(),
        }
    }

    /// The data directory [`Daemon::spawn`] gave it.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.data_dir.as_deref()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first stderr line containing `needle`, waiting at most `timeout`.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return Some(line.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.seen.push(line.clone());
                    if hit {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// The chat address from the `listening on ADDR` line.
    pub fn chat_addr(&mut self) -> SocketAddr {
        let Some(line) = self.wait_for_line("listening on ", START) else {
            panic!("no 'listening on' line; stderr:\n{}", self.seen.join("\n"));
        };
        let rest = line.split("listening on ").nth(1).expect("text after");
        let addr = rest.split_whitespace().next().expect("an address");
        addr.parse().expect("a socket address")
    }

    /// Sends a signal by name (`TERM`, `INT`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// The exit status, if the daemon exits within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the daemon wrote to stderr, once it has closed it (or
    /// after `timeout`).
    pub fn stderr(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => break,
            }
        }
        self.seen.join("\n")
    }

    /// Waits for the exit and returns the exit code and stderr; panics if the
    /// daemon is still running after `timeout`.
    pub fn finish(&mut self, timeout: Duration) -> (Option<i32>, String) {
        let status = self.wait_exit(timeout);
        let stderr = self.stderr(Duration::from_secs(2));
        let Some(status) = status else {
            panic!("still running after {timeout:?}; stderr:\n{stderr}");
        };
        (status.code(), stderr)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A config file in the test's temporary folder, removed when dropped.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(name: &str, text: &str) -> Self {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("chatserver-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("write temp file");
        Self(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
