//! The real binary with a config file: values take effect, flags win, and
//! mistakes are refused with a clear message.

mod support;

use std::net::TcpListener;
use std::time::Duration;

use chatcore::protocol::ErrorCode;
use chatcore::{Client, ClientError};
use support::{Daemon, START, TempFile};

#[test]
fn the_file_sets_heartbeat_and_max_clients() {
    let file = TempFile::new(
        "limits.toml",
        "listen = \"127.0.0.1:0\"\nno_voice = true\nheartbeat_ms = 1234\nmax_clients = 1\n",
    );
    let mut daemon = Daemon::spawn(&["--no-tls", "--config", file.path()]);
    let addr = daemon.chat_addr();
    let alice = Client::connect(addr, "alice").expect("alice logs in");
    assert_eq!(alice.welcome().heartbeat_ms, 1234);
    // The second connection is over max_clients: refused with server_full
    // (or, if the server's close raced our hello, simply cut off).
    match Client::connect(addr, "bob") {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::ServerFull),
        Err(ClientError::Io(_) | ClientError::Closed) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a second client got in with max_clients = 1"),
    }
    drop(alice);
    daemon.signal("TERM");
    let (code, stderr) = daemon.finish(Duration::from_secs(2));
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn flags_override_the_file() {
    // The file names a taken port: the daemon only starts if --listen wins.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("its address");
    let file = TempFile::new(
        "override.toml",
        &format!("listen = \"{addr}\"\nvoice_listen = \"{addr}\"\nheartbeat_ms = 1234\n"),
    );
    let mut daemon = Daemon::spawn(&[
        "--no-tls",
        "--config",
        file.path(),
        "--listen",
        "127.0.0.1:0",
        "--no-voice",
        "--heartbeat-ms",
        "2345",
    ]);
    let chat = daemon.chat_addr();
    let alice = Client::connect(chat, "alice").expect("alice logs in");
    assert_eq!(alice.welcome().heartbeat_ms, 2345);
}

#[test]
fn an_unknown_key_is_refused_with_its_name_and_line() {
    let file = TempFile::new(
        "unknown.toml",
        "listen = \"127.0.0.1:0\"\nheartbeat = 5000\n",
    );
    let mut daemon = Daemon::spawn(&["--no-tls", "--config", file.path()]);
    let (code, stderr) = daemon.finish(START);
    assert_eq!(code, Some(2), "{stderr}");
    let want = format!(
        "error: invalid config file {}: line 2, column 1: unknown field `heartbeat`",
        file.path()
    );
    assert!(stderr.starts_with(&want), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn other_config_mistakes_are_refused() {
    let cases = [
        ("type.toml", "max_clients = \"many\"\n", "line 1, column 15"),
        ("syntax.toml", "max_clients = \n", "line 1"),
        (
            "zero.toml",
            "heartbeat_ms = 0\n",
            "heartbeat_ms must be at least 1",
        ),
        ("level.toml", "log_level = \"loud\"\n", "loud"),
    ];
    for (name, text, needle) in cases {
        let file = TempFile::new(name, text);
        let mut daemon = Daemon::spawn(&["--no-tls", "--config", file.path(), "--no-voice"]);
        let (code, stderr) = daemon.finish(START);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(stderr.starts_with("error: "), "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
    }
    let mut daemon = Daemon::spawn(&["--no-tls", "--config", "/nonexistent/chatserver.toml"]);
    let (code, stderr) = daemon.finish(START);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: cannot read config file /nonexistent/chatserver.toml: "),
        "{stderr}"
    );
}

#[test]
fn the_example_file_starts_a_server() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/chatserver.example.toml");
    let mut daemon = Daemon::spawn(&[
        "--no-tls",
        "--config",
        example,
        "--listen",
        "127.0.0.1:0",
        "--no-voice",
    ]);
    let chat = daemon.chat_addr();
    let alice = Client::connect(chat, "alice").expect("alice logs in");
    assert_eq!(alice.welcome().heartbeat_ms, 10_000);
}
