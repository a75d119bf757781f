//! Running it like a service, against the real binary: the Prometheus
//! endpoint and `/health`, the admin socket and `chatserver admin`,
//! settings from environment variables, `--check-config`, SIGHUP reloading
//! run-time settings, JSON log lines.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chatcore::protocol::{
    ChatSend, ClientMessage, DecodeError, Hello, PROTOCOL_VERSION, ServerMessage, decode_server,
    encode_client,
};
use support::{Daemon, START, TempFile};

const BIN: &str = env!("CARGO_BIN_EXE_chatserver");

/// A member on a plain TCP connection.
struct Member {
    stream: TcpStream,
    buf: BytesMut,
}

impl Member {
    fn join(addr: SocketAddr, name: &str) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(START)).expect("timeout");
        let mut m = Self {
            stream,
            buf: BytesMut::new(),
        };
        m.send(&ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: PROTOCOL_VERSION,
            name: name.into(),
            last_seen: None,
        }));
        match m.next() {
            Some(ServerMessage::Welcome(_)) => m,
            other => panic!("expected a welcome, got {other:?}"),
        }
    }

    fn send(&mut self, msg: &ClientMessage) {
        self.stream.write_all(&encode_client(msg)).expect("send");
    }

    fn next(&mut self) -> Option<ServerMessage> {
        let deadline = Instant::now() + START;
        loop {
            match decode_server(&mut self.buf, u32::MAX) {
                Ok(Some(ServerMessage::Ping(seq))) => {
                    self.send(&ClientMessage::Pong(seq));
                    continue;
                }
                Ok(Some(msg)) => return Some(msg),
                Ok(None) => {}
                Err(DecodeError::Message(e)) => panic!("bad message: {e}"),
                Err(DecodeError::Frame(e)) => panic!("bad frame: {e}"),
            }
            assert!(Instant::now() < deadline, "no message within {START:?}");
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Skips messages until `pick` accepts one; `None` if the server closed.
    fn until<T>(&mut self, mut pick: impl FnMut(ServerMessage) -> Option<T>) -> Option<T> {
        loop {
            if let Some(t) = pick(self.next()?) {
                return Some(t);
            }
        }
    }
}

/// `GET path` on `addr`: the status code and the body.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to metrics");
    s.set_read_timeout(Some(START)).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("answer");
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (code, body)
}

/// The value of the metric line that starts with `name` (labels included).
fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{body}"))
}

fn metrics_addr(daemon: &mut Daemon) -> SocketAddr {
    let line = daemon
        .wait_for_line("metrics on http://", START)
        .expect("a metrics line");
    let rest = line.split("metrics on http://").nth(1).expect("address");
    rest.split('/')
        .next()
        .expect("addr")
        .parse()
        .expect("socket address")
}

/// `chatserver admin ARGS --data-dir DIR`: exit success and stdout.
fn admin(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run chatserver admin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `check` for up to START (the counters are published once per
/// loop turn, after the frame that changed them).
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + START;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn metrics_count_logins_messages_and_errors_by_code_and_health_answers() {
    let mut daemon = Daemon::spawn(&[
        "--no-tls",
        "--no-voice",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let chat = daemon.chat_addr();
    let metrics = metrics_addr(&mut daemon);
    let (code, body) = http_get(metrics, "/health");
    assert_eq!((code, body.as_str()), (200, "ok\n"));

    let mut alice = Member::join(chat, "alice");
    let _bob = Member::join(chat, "bob");
    alice.send(&ClientMessage::Chat(ChatSend {
        room: None,
        text: "hello".into(),
        reference: Some(1),
    }));
    alice.send(&ClientMessage::Chat(ChatSend {
        room: None,
        text: String::new(),
        reference: Some(2),
    }));
    let refused = alice.until(|m| match m {
        ServerMessage::Error(e) => Some(e.code),
        _ => None,
    });
    assert_eq!(refused, Some(chatcore::protocol::ErrorCode::TextEmpty));
    let mut body = String::new();
    assert!(
        eventually(|| {
            body = http_get(metrics, "/metrics").1;
            body.contains("chatserver_messages_total 1")
        }),
        "{body}"
    );
    assert_eq!(metric(&body, "chatserver_logins_total"), 2.0);
    assert_eq!(metric(&body, "chatserver_members"), 2.0);
    assert_eq!(metric(&body, "chatserver_connections"), 2.0);
    assert_eq!(
        metric(&body, "chatserver_errors_sent_total{code=\"text_empty\"}"),
        1.0
    );
    assert!(metric(&body, "chatserver_bytes_in_total") > 0.0);
    assert!(metric(&body, "chatserver_deliveries_total") >= 2.0);
    assert!(metric(&body, "chatserver_loop_turn_seconds_count") > 0.0);
    assert!(
        body.contains("chatserver_loop_turn_seconds_bucket{le=\""),
        "{body}"
    );
    let (code, _) = http_get(metrics, "/nothing");
    assert_eq!(code, 404);
}

#[test]
fn without_metrics_listen_no_metrics_port_is_opened() {
    let mut daemon = Daemon::spawn(&["--no-tls", "--no-voice", "--listen", "127.0.0.1:0"]);
    let _ = daemon.chat_addr();
    daemon.signal("TERM");
    let (code, stderr) = daemon.finish(START);
    assert_eq!(code, Some(0));
    assert!(!stderr.contains("metrics on"), "{stderr}");
}

#[test]
fn the_admin_socket_is_private_and_lists_notices_kicks_and_reloads() {
    let mut daemon = Daemon::spawn(&["--no-tls", "--no-voice", "--listen", "127.0.0.1:0"]);
    let chat = daemon.chat_addr();
    daemon
        .wait_for_line("admin socket at", START)
        .expect("admin socket line");
    let dir = daemon.data_dir().expect("data dir").to_owned();
    let sock = dir.join("admin.sock");
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    let mut alice = Member::join(chat, "alice");
    let mut bob = Member::join(chat, "bob");
    let (ok, out, _) = admin(&dir, &["who"]);
    assert!(ok);
    assert!(
        out.contains("\talice\n") && out.contains("\tbob\n"),
        "{out}"
    );
    let (ok, out, _) = admin(&dir, &["rooms"]);
    assert!(ok && out.starts_with("lobby (default)\t2 members"), "{out}");

    let (ok, _, _) = admin(&dir, &["notice", "restart", "at", "22:00"]);
    assert!(ok);
    for m in [&mut alice, &mut bob] {
        let text = m.until(|msg| match msg {
            ServerMessage::Notice(n) => Some(n.text),
            _ => None,
        });
        assert_eq!(text.as_deref(), Some("restart at 22:00"));
    }

    let (ok, _, _) = admin(&dir, &["kick", "bob", "--reason", "test"]);
    assert!(ok);
    // Bob is told and dropped.
    while bob.next().is_some() {}
    let (ok, _, stderr) = admin(&dir, &["kick", "nobody"]);
    assert!(!ok, "kicking nobody must fail");
    assert!(stderr.starts_with("error: "), "{stderr}");

    let (ok, out, _) = admin(&dir, &["stats", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["result"]["logins"], 2);
    assert_eq!(v["result"]["members"], 1);

    let (ok, out, _) = admin(&dir, &["reload"]);
    assert!(ok && out.contains("TLS certificate: off"), "{out}");

    daemon.signal("TERM");
    let (code, _) = daemon.finish(START);
    assert_eq!(code, Some(0));
    assert!(!sock.exists(), "the socket is removed at exit");
}

#[test]
fn environment_variables_set_keys_below_flags() {
    let mut cmd = Command::new(BIN);
    let dir = support::temp_dir("env");
    cmd.args(["--no-tls", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("CHATSERVER_NO_VOICE", "true")
        .env("CHATSERVER_LISTEN", "127.0.0.1:1")
        .env("CHATSERVER_MAX_TEXT_BYTES", "5")
        .env("CHATSERVER_LOG_FORMAT", "json")
        .env_remove("RUST_LOG");
    let mut daemon = Daemon::spawn_cmd(cmd);
    // The flag's address wins over the variable's (port 1 would fail).
    let line = daemon
        .wait_for_line("listening on", START)
        .expect("a listening line");
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(v["level"], "INFO");
    let message = v["fields"]["message"].as_str().expect("message");
    assert!(message.contains("voice off"), "{message}");
    let addr: SocketAddr = message
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .expect("address");
    let mut alice = Member::join(addr, "alice");
    alice.send(&ClientMessage::Chat(ChatSend {
        room: None,
        text: "too long".into(),
        reference: Some(1),
    }));
    let code = alice.until(|m| match m {
        ServerMessage::Error(e) => Some(e.code),
        _ => None,
    });
    assert_eq!(code, Some(chatcore::protocol::ErrorCode::TextTooLong));
    let _ = std::fs::remove_dir_all(dir);
}

/// `chatserver --check-config FILE` with extra flags and environment.
fn check_config(file: &TempFile, flags: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(BIN)
        .args(["--check-config", file.path()])
        .args(flags)
        .envs(env.iter().copied())
        .output()
        .expect("run")
}

#[test]
fn check_config_says_ok_or_names_the_problem() {
    let good = TempFile::new("check-good.toml", "max_clients = 5\n");
    let out = check_config(&good, &[], &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("configuration OK"));
    let bad = TempFile::new("check-bad.toml", "max_clients = 0\n");
    let out = check_config(&bad, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: max_clients"), "{err}");
    let out = check_config(&good, &[], &[("CHATSERVER_HISTORY_LEN", "lots")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CHATSERVER_HISTORY_LEN"), "{err}");
}

#[test]
fn voice_max_bitrate_is_checked_from_the_file_the_flag_and_the_environment() {
    let good = TempFile::new("bitrate-good.toml", "voice_max_bitrate = 48000\n");
    let out = check_config(&good, &[], &[]);
    assert!(out.status.success(), "{out:?}");
    let bad = TempFile::new("bitrate-bad.toml", "voice_max_bitrate = 1000\n");
    let out = check_config(&bad, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: voice_max_bitrate"), "{err}");
    let by_flag = check_config(&good, &["--voice-max-bitrate", "9999999"], &[]);
    let by_env = check_config(&good, &[], &[("CHATSERVER_VOICE_MAX_BITRATE", "9999999")]);
    for (how, out) in [("flag", by_flag), ("environment", by_env)] {
        assert_eq!(out.status.code(), Some(2), "{how}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("voice_max_bitrate"), "{how}: {err}");
    }
}

#[test]
fn sighup_applies_run_time_keys_and_names_those_that_need_a_restart() {
    let config = TempFile::new("reload.toml", "max_text_bytes = 100\nmax_clients = 10\n");
    let mut daemon = Daemon::spawn(&[
        "--no-tls",
        "--no-voice",
        "--listen",
        "127.0.0.1:0",
        "--config",
        config.path(),
    ]);
    let chat = daemon.chat_addr();
    let _alice = Member::join(chat, "alice");
    std::fs::write(&config.0, "max_text_bytes = 50\nmax_clients = 1\n").expect("rewrite");
    daemon.signal("HUP");
    let line = daemon
        .wait_for_line("need a restart", START)
        .expect("a reload line");
    assert!(
        line.contains("max_text_bytes") && !line.contains("max_clients"),
        "{line}"
    );
    // max_clients = 1 is in force: a second connection is refused.
    let mut second = TcpStream::connect(chat).expect("connect");
    second.set_read_timeout(Some(START)).expect("timeout");
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    let n = second.read(&mut chunk).expect("read");
    buf.extend_from_slice(&chunk[..n]);
    match decode_server(&mut buf, u32::MAX) {
        Ok(Some(ServerMessage::Error(e))) => {
            assert_eq!(e.code, chatcore::protocol::ErrorCode::ServerFull);
        }
        other => panic!("expected server_full, got {other:?}"),
    }
}
