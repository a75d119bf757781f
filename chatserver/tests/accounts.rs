//! Accounts with the real binary: a name registered with one process logs
//! in with its password in the next, and the `accounts` subcommand lists
//! and deletes it while the server runs.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use chatcore::protocol::{ErrorCode, ServerMessage};
use chatcore::{Client, ClientError, Credentials, Event};
use support::{Daemon, START, temp_dir};

/// Runs `chatserver accounts ARGS --data-dir DIR`; (exit code, stdout, stderr).
fn accounts(dir: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = args.to_vec();
    all.extend(["--data-dir", dir]);
    accounts_exact(&all)
}

/// Runs `chatserver accounts ARGS`; (exit code, stdout, stderr).
fn accounts_exact(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chatserver"))
        .arg("accounts")
        .args(args)
        .output()
        .expect("run chatserver accounts");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_name_registered_before_a_restart_needs_its_password_after_it_and_the_subcommand_deletes_it() {
    let dir = temp_dir("accounts");
    let dir_arg = dir.to_str().expect("utf-8 path").to_owned();
    let mut daemon = Daemon::spawn_plain_in(&dir);
    let addr = daemon.chat_addr();
    let alice = Client::connect_plain(addr, "alice").expect("alice logs in");
    alice.register("alice's password").expect("send");
    let deadline = Instant::now() + START;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match alice.recv_timeout(left) {
            Ok(Some(Event::Message(ServerMessage::Registered(r)))) => {
                assert_eq!(r.name, "alice");
                break;
            }
            Ok(Some(_)) => {}
            other => panic!("no registered: {other:?}"),
        }
    }
    drop(alice);
    daemon.signal("TERM");
    daemon.wait_exit(Duration::from_secs(5)).expect("stopped");

    let mut daemon = Daemon::spawn_plain_in(&dir);
    let addr = daemon.chat_addr();
    let guest = Client::connect_plain(addr, "alice");
    assert!(
        matches!(
            guest,
            Err(ClientError::Refused {
                code: ErrorCode::NameRegistered,
                ..
            })
        ),
        "{guest:?}"
    );
    let pw = Credentials::Password("alice's password".into());
    let alice = Client::connect_plain_as(addr, "alice", &pw).expect("password login");
    assert!(alice.welcome().registered);
    drop(alice);

    // The admin path, while the server runs; the directory may come from
    // the server's own config file (`-c`), like the server's.
    let config =
        support::TempFile::new("accounts-config.toml", &format!("data_dir = {dir_arg:?}\n"));
    let (code, out, err) = accounts_exact(&["list", "-c", config.path()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("alice\t"), "{out}");
    let (code, out, err) = accounts(&dir_arg, &["list"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("alice\t"), "{out}");
    let (code, _, err) = accounts(&dir_arg, &["delete", "alice"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = accounts(&dir_arg, &["delete", "alice"]);
    assert_eq!(code, Some(1), "deleting twice fails: {err}");
    assert!(err.contains("no account named alice"), "{err}");
    let again = Client::connect_plain_as(addr, "alice", &pw);
    assert!(
        matches!(
            again,
            Err(ClientError::Refused {
                code: ErrorCode::AuthFailed,
                ..
            })
        ),
        "{again:?}"
    );
    Client::connect_plain(addr, "alice").expect("a guest may take the name again");

    daemon.signal("TERM");
    let _ = daemon.wait_exit(Duration::from_secs(5));
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_accounts_subcommand_without_a_database_fails_clearly() {
    let dir = temp_dir("accounts-none");
    let (code, _, err) = accounts(dir.to_str().expect("utf-8"), &["list"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no database at"), "{err}");
}
