//! The real binary: start, serve, stop on a signal; fail clearly when the
//! port is taken.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use chatcore::protocol::{LeaveReason, ServerMessage};
use chatcore::{Client, Event};
use support::{Daemon, START};

/// Takes events until `want` matches one, at most `timeout`.
fn expect_event(
    client: &Client,
    timeout: Duration,
    what: &str,
    mut want: impl FnMut(&Event) -> bool,
) -> Event {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.recv_timeout(left) {
            Ok(Some(event)) if want(&event) => return event,
            Ok(Some(_)) => {}
            Ok(None) => panic!("no {what} within {timeout:?}"),
            Err(e) => panic!("connection ended before {what}: {e}"),
        }
    }
}

#[test]
fn serves_a_room_and_stops_cleanly_on_sigterm() {
    let mut daemon = Daemon::spawn(&[
        "--no-tls",
        "--listen",
        "127.0.0.1:0",
        "--voice-listen",
        "127.0.0.1:0",
    ]);
    let addr = daemon.chat_addr();
    let line = daemon.wait_for_line("listening on ", START).expect("line");
    assert!(line.contains("voice on 127.0.0.1:"), "{line}");

    let alice = Client::connect(addr, "alice").expect("alice logs in");
    let bob = Client::connect(addr, "bob").expect("bob logs in");
    assert_eq!(alice.welcome().name, "alice");
    alice.send_chat("hello bob").expect("send");
    expect_event(
        &bob,
        START,
        "alice's chat",
        |e| matches!(e, Event::Message(ServerMessage::Chat(c)) if c.text == "hello bob" && c.from == "alice"),
    );

    let asked = Instant::now();
    daemon.signal("TERM");
    let me = alice.welcome().session;
    expect_event(
        &alice,
        Duration::from_secs(2),
        "left(shutdown) about alice",
        |e| matches!(e, Event::Message(ServerMessage::Left(l)) if l.session == me && l.reason == LeaveReason::Shutdown),
    );
    expect_event(
        &alice,
        Duration::from_secs(2),
        "the connection closing",
        |e| matches!(e, Event::Closed(_)),
    );
    let status = daemon.wait_exit(Duration::from_secs(2));
    let stderr = daemon.stderr(Duration::from_secs(2));
    let status = status.unwrap_or_else(|| panic!("still running 2 s after SIGTERM:\n{stderr}"));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(asked.elapsed() < Duration::from_secs(2));
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    drop(bob);
}

#[test]
fn sigint_stops_it_too() {
    let mut daemon = Daemon::spawn(&["--no-tls", "--listen", "127.0.0.1:0", "--no-voice"]);
    let addr = daemon.chat_addr();
    let line = daemon.wait_for_line("listening on ", START).expect("line");
    assert!(line.contains("voice off"), "{line}");
    let carol = Client::connect(addr, "carol").expect("carol logs in");
    daemon.signal("INT");
    let (code, stderr) = daemon.finish(Duration::from_secs(2));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("SIGINT received"), "{stderr}");
    drop(carol);
}

#[test]
fn a_port_in_use_is_a_clear_one_line_error() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("its address");
    let mut daemon = Daemon::spawn(&["--no-tls", "--listen", &addr.to_string(), "--no-voice"]);
    let (code, stderr) = daemon.finish(START);
    assert_eq!(code, Some(1), "{stderr}");
    let prefix = format!("error: cannot listen on {addr}: ");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].starts_with(&prefix), "{stderr}");
    assert!(errors[0].to_lowercase().contains("in use"), "{stderr}");
    assert_eq!(
        errors[0].matches("in use").count(),
        1,
        "cause repeated: {stderr}"
    );
}

#[test]
fn a_voice_port_in_use_is_a_clear_error_too() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("its address");
    let mut daemon = Daemon::spawn(&[
        "--no-tls",
        "--listen",
        "127.0.0.1:0",
        "--voice-listen",
        &addr.to_string(),
    ]);
    let (code, stderr) = daemon.finish(START);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("error: cannot listen on {addr}: ")),
        "{stderr}"
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let mut daemon = Daemon::spawn(&["--no-tls", "--listen", "not-an-address"]);
    let (code, stderr) = daemon.finish(START);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
}

/// Every `*.chatspool` file under `dir`, at any depth.
fn spool_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "chatspool") {
                found.push(path);
            }
        }
    }
    found
}

/// Waits until `check` holds, at most `START`.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + START;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn a_sigkilled_servers_spool_is_removed_by_the_next_start_and_sigterm_empties_it() {
    let spool = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("chatserver-spool-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    let config = support::TempFile::new(
        "spool-kill.toml",
        &format!("spool_dir = {:?}\n", spool.to_str().expect("utf-8")),
    );
    let args = [
        "--no-tls",
        "--config",
        config.path(),
        "--listen",
        "127.0.0.1:0",
        "--no-voice",
    ];
    // A server on port 0 stores a file, then is killed without warning.
    let mut first = Daemon::spawn(&args);
    let addr = first.chat_addr();
    let alice = Client::connect(addr, "alice").expect("alice logs in");
    let file = spool.with_extension("upload");
    std::fs::write(&file, vec![7u8; 100_000]).expect("file to share");
    alice
        .send_file(&file, chatcore::protocol::transfer::FileKind::File)
        .expect("offer");
    assert!(
        eventually(|| spool_files(&spool)
            .iter()
            .any(|p| p.metadata().is_ok_and(|m| m.len() == 100_000))),
        "the upload reached the spool"
    );
    first.signal("KILL");
    first.wait_exit(START).expect("killed");
    drop(alice);
    assert_eq!(spool_files(&spool).len(), 1, "SIGKILL leaves the file");
    // The next server, on another port, removes it at start.
    let mut second = Daemon::spawn(&args);
    second.chat_addr();
    assert!(spool_files(&spool).is_empty(), "{:?}", spool_files(&spool));
    // And a graceful stop leaves nothing at all.
    second.signal("TERM");
    let (code, stderr) = second.finish(START);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!spool.exists(), "the spool directory is removed at SIGTERM");
    let _ = std::fs::remove_file(&file);
}
