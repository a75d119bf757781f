//! The Debian package: built with cargo-deb from the debug build
//! (scripts/build-deb.sh), installed with `dpkg -i` into a scratch root,
//! then the installed binary is started exactly as the installed unit's
//! ExecStart says (with a scratch state directory, and the ports moved to
//! free loopback ones through environment variables, as a `systemctl
//! edit` drop-in would), and a member logs in over TLS.
//!
//! Ignored by default: it needs cargo-deb and dpkg. scripts/test.sh
//! installs cargo-deb and runs it with `--ignored`.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use chatcore::protocol::{ClientMessage, Hello, PROTOCOL_VERSION, ServerMessage, decode_server};
use chatcore::tls::insecure_client_config;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use support::{Daemon, START, temp_dir};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The member's connection, kept open while it should stay logged in.
type Session = StreamOwned<ClientConnection, TcpStream>;

/// Logs in over TLS (any certificate); the welcome's name and the session.
fn tls_login(addr: SocketAddr, name: &str) -> (String, Session) {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(START)).expect("timeout");
    let server = ServerName::try_from("localhost").expect("name");
    let conn = ClientConnection::new(insecure_client_config(), server).expect("client");
    let mut stream = StreamOwned::new(conn, tcp);
    let hello = ClientMessage::Hello(Hello {
        password: None,
        token: None,
        version: PROTOCOL_VERSION,
        name: name.into(),
        last_seen: None,
    });
    stream
        .write_all(&chatcore::protocol::encode_client(&hello))
        .expect("hello");
    stream.flush().expect("flush");
    let mut buf = bytes::BytesMut::new();
    loop {
        if let Some(msg) = decode_server(&mut buf, u32::MAX).expect("a valid frame") {
            match msg {
                ServerMessage::Welcome(w) => return (w.name, stream),
                other => panic!("expected a welcome, got {other:?}"),
            }
        }
        let mut chunk = [0u8; 16384];
        let n = stream.read(&mut chunk).expect("read");
        assert!(n > 0, "closed before the welcome");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
#[ignore = "needs cargo-deb and dpkg; scripts/test.sh runs it"]
fn the_deb_installs_and_its_unit_command_serves_a_tls_login() {
    let root_dir = workspace();
    run(Command::new("bash")
        .arg(root_dir.join("scripts/build-deb.sh"))
        .args(["dev", "--no-build"])
        .current_dir(&root_dir));
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root_dir.join("target"), PathBuf::from);
    let target = if target.is_absolute() {
        target
    } else {
        root_dir.join(target)
    };
    let deb = std::fs::read_dir(target.join("debian"))
        .expect("target/debian")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb");

    // A scratch root with an empty dpkg database.
    let root = temp_dir("debroot");
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.join(d)).expect("dpkg dirs");
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").expect("status");
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--force-depends", "--log=/dev/null", "-i"])
        .arg(&deb));
    let status = run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["-s", "chatserver"]));
    assert!(status.contains("Status: install ok installed"), "{status}");
    for f in [
        "usr/bin/chatserver",
        "lib/systemd/system/chatserver.service",
        "etc/chatserver/chatserver.toml",
        "usr/share/man/man1/chatserver.1.gz",
    ] {
        assert!(root.join(f).is_file(), "{f} not installed");
    }
    let unit =
        std::fs::read_to_string(root.join("lib/systemd/system/chatserver.service")).expect("unit");
    for sandbox in [
        "DynamicUser=yes",
        "StateDirectory=chatserver",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.contains(sandbox), "the unit lacks {sandbox}");
    }

    // ExecStart, with the installed paths under the scratch root and the
    // state directory a scratch one.
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let state = temp_dir("state");
    let mut words = exec.split_whitespace();
    let program = root.join(words.next().expect("program").trim_start_matches('/'));
    let mut cmd = Command::new(program);
    let mut previous = "";
    for w in words {
        let arg = match previous {
            "--config" => root.join(w.trim_start_matches('/')).display().to_string(),
            "--data-dir" => state.display().to_string(),
            _ => w.to_owned(),
        };
        cmd.arg(arg);
        previous = w;
    }
    cmd.env("CHATSERVER_LISTEN", "127.0.0.1:0")
        .env("CHATSERVER_VOICE_LISTEN", "127.0.0.1:0")
        .env("CHATSERVER_METRICS_LISTEN", "127.0.0.1:0");
    let mut daemon = Daemon::spawn_cmd(cmd);
    let chat = daemon.chat_addr();
    let tls = daemon.seen.iter().any(|l| l.contains("(chat, TLS)"));
    assert!(tls, "not TLS:\n{}", daemon.seen.join("\n"));
    let (name, _alice) = tls_login(chat, "alice");
    assert_eq!(name, "alice");

    // The installed binary's admin command reaches it.
    let who = run(Command::new(root.join("usr/bin/chatserver"))
        .args(["admin", "who", "--data-dir"])
        .arg(&state));
    assert!(who.contains("alice"), "{who}");
    daemon.signal("TERM");
    let (code, _) = daemon.finish(START);
    assert_eq!(code, Some(0));
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&state);
}
