//! Accounts on a real server with a real SQLite file: registration,
//! password and token logins, look-alikes, guests and registered names,
//! `require_account`, deletion, and the brute-force throttle.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chatcore::protocol::{
    ChangePassword, ClientMessage, ErrorCode, ErrorMsg, Hello, PROTOCOL_VERSION, Register,
    ServerMessage, Welcome,
};
use chatcore::{Client, ClientError, Credentials, RunningServer, ServerConfig};
use common::{Raw, start, test_config};

/// A fresh database path for one test.
fn db_path(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "chatcore-test-accounts-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir.join("chat.db")
}

/// A server with a store (and so accounts) at `db`.
fn server(db: &Path, tweak: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    let mut config = ServerConfig {
        store_path: Some(db.to_path_buf()),
        ..test_config()
    };
    tweak(&mut config);
    start(config)
}

/// Sends a `hello` with optional credentials.
fn hello(c: &mut Raw, name: &str, password: Option<&str>, token: Option<&str>) {
    c.send(&ClientMessage::Hello(Hello {
        password: password.map(str::to_owned),
        token: token.map(str::to_owned),
        version: PROTOCOL_VERSION,
        name: name.into(),
        last_seen: None,
    }));
}

/// The answer to a `hello`: its welcome or its error.
fn answer(c: &mut Raw) -> Result<Welcome, ErrorMsg> {
    loop {
        match c.next() {
            Some(ServerMessage::Welcome(w)) => return Ok(w),
            Some(ServerMessage::Error(e)) => return Err(e),
            Some(_) => continue,
            None => panic!("closed while waiting for the login's answer"),
        }
    }
}

/// The next message that is not presence, chat history or voice state.
fn reply(c: &mut Raw) -> ServerMessage {
    loop {
        match c.next() {
            Some(
                ServerMessage::Presence(_)
                | ServerMessage::Joined(_)
                | ServerMessage::Left(_)
                | ServerMessage::VoiceState(_)
                | ServerMessage::Chat(_),
            ) => continue,
            Some(m) => return m,
            None => panic!("closed while waiting for a reply"),
        }
    }
}

/// Logs `name` in as a guest and registers it; returns the connection and the token.
fn register(addr: std::net::SocketAddr, name: &str, password: &str) -> (Raw, String) {
    let (mut c, w) = Raw::login(addr, name);
    assert_eq!(w.name, name);
    assert!(!w.registered);
    c.send(&ClientMessage::Register(Register {
        password: password.into(),
    }));
    match reply(&mut c) {
        ServerMessage::Registered(r) => {
            assert_eq!(r.name, name);
            assert_eq!(r.token.len(), 64);
            (c, r.token)
        }
        other => panic!("expected registered, got {other:?}"),
    }
}

#[test]
fn a_registered_name_needs_its_password_and_the_password_still_works_after_a_restart() {
    let db = db_path("restart");
    let s = server(&db, |_| {});
    let (alice, _) = register(s.local_addr(), "alice", "correct horse");
    drop(alice);

    // A guest may not take it; a wrong password is refused and may retry.
    let mut c = Raw::connect(s.local_addr());
    hello(&mut c, "alice", None, None);
    assert_eq!(
        answer(&mut c).expect_err("guest").code,
        ErrorCode::NameRegistered
    );
    hello(&mut c, "alice", Some("wrong horse"), None);
    assert_eq!(
        answer(&mut c).expect_err("wrong").code,
        ErrorCode::AuthFailed
    );
    hello(&mut c, "alice", Some("correct horse"), None);
    let w = answer(&mut c).expect("welcome");
    assert_eq!(w.name, "alice");
    assert!(w.registered);
    assert_eq!(w.token.as_ref().map(String::len), Some(64));
    drop(c);
    s.stop().expect("stop");

    let s = server(&db, |_| {});
    let mut c = Raw::connect(s.local_addr());
    hello(&mut c, "alice", Some("correct horse"), None);
    let w = answer(&mut c).expect("welcome after restart");
    assert!(w.registered && w.name == "alice");
    s.stop().expect("stop");
}

#[test]
fn a_token_logs_in_until_it_is_revoked_by_logout_or_expires() {
    let db = db_path("token");
    let s = server(&db, |_| {});
    let (mut first, token) = register(s.local_addr(), "bob", "hunter2hunter2");

    // Another connection (an automatic reconnect) with the token.
    let mut c = Raw::connect(s.local_addr());
    hello(&mut c, "bob", None, Some(&token));
    let w = answer(&mut c).expect("token login");
    assert!(w.registered);
    assert_eq!(w.token, None, "a token login is not issued another token");
    assert_eq!(w.name, "bob(1)", "bob is still in the room");
    drop(c);

    // A token for another account is wrong.
    let mut c = Raw::connect(s.local_addr());
    hello(&mut c, "carl", None, Some(&token));
    assert_eq!(
        answer(&mut c).expect_err("other").code,
        ErrorCode::AuthFailed
    );

    // `logout` revokes the token the first connection was issued.
    first.send(&ClientMessage::Logout);
    assert!(matches!(reply(&mut first), ServerMessage::LoggedOut));
    hello(&mut c, "bob", None, Some(&token));
    assert_eq!(
        answer(&mut c).expect_err("revoked").code,
        ErrorCode::AuthFailed
    );

    // A password login's token stops working once expired.
    hello(&mut c, "bob", Some("hunter2hunter2"), None);
    let w = answer(&mut c).expect("password login");
    let fresh = w.token.expect("issued");
    drop(c);
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute("UPDATE tokens SET expires = 1", [])
        .expect("expire");
    let mut c = Raw::connect(s.local_addr());
    hello(&mut c, "bob", None, Some(&fresh));
    assert_eq!(
        answer(&mut c).expect_err("expired").code,
        ErrorCode::AuthFailed
    );
    s.stop().expect("stop");
}

#[test]
fn change_password_replaces_the_password_and_revokes_the_old_tokens() {
    let db = db_path("change");
    let s = server(&db, |_| {});
    let (mut c, old_token) = register(s.local_addr(), "dora", "first password");
    c.send(&ClientMessage::ChangePassword(ChangePassword {
        old: "not the password".into(),
        new: "second password".into(),
    }));
    assert!(matches!(reply(&mut c), ServerMessage::Error(e) if e.code == ErrorCode::AuthFailed));
    c.send(&ClientMessage::ChangePassword(ChangePassword {
        old: "first password".into(),
        new: "short".into(),
    }));
    assert!(
        matches!(reply(&mut c), ServerMessage::Error(e) if e.code == ErrorCode::PasswordInvalid)
    );
    c.send(&ClientMessage::ChangePassword(ChangePassword {
        old: "first password".into(),
        new: "second password".into(),
    }));
    let new_token = match reply(&mut c) {
        ServerMessage::PasswordChanged(p) => p.token,
        other => panic!("expected password_changed, got {other:?}"),
    };
    let mut d = Raw::connect(s.local_addr());
    hello(&mut d, "dora", None, Some(&old_token));
    assert_eq!(
        answer(&mut d).expect_err("old token").code,
        ErrorCode::AuthFailed
    );
    hello(&mut d, "dora", Some("first password"), None);
    assert_eq!(
        answer(&mut d).expect_err("old pw").code,
        ErrorCode::AuthFailed
    );
    hello(&mut d, "dora", None, Some(&new_token));
    assert!(answer(&mut d).expect("new token").registered);
    s.stop().expect("stop");
}

#[test]
fn a_look_alike_of_a_registered_name_is_the_same_account() {
    let db = db_path("lookalike");
    let s = server(&db, |_| {});
    let (c, _) = register(s.local_addr(), "bill", "password one");
    drop(c);
    // "biII" with two capital i's: a guest may not take it...
    let mut g = Raw::connect(s.local_addr());
    hello(&mut g, "biII", None, None);
    assert_eq!(
        answer(&mut g).expect_err("guest").code,
        ErrorCode::NameRegistered
    );
    // ...and bill's password opens bill's account, under bill's spelling.
    hello(&mut g, "biII", Some("password one"), None);
    let w = answer(&mut g).expect("welcome");
    assert_eq!(w.name, "bill");
    // A name registers once: a second `register` is refused.
    let mut h = Raw::connect(s.local_addr());
    hello(&mut h, "fred", None, None);
    answer(&mut h).expect("fred");
    h.send(&ClientMessage::Register(Register {
        password: "password two".into(),
    }));
    assert!(matches!(reply(&mut h), ServerMessage::Registered(_)));
    h.send(&ClientMessage::Register(Register {
        password: "password two".into(),
    }));
    assert!(
        matches!(reply(&mut h), ServerMessage::Error(e) if e.code == ErrorCode::NameRegistered)
    );
    s.stop().expect("stop");
}

#[test]
fn with_guest_shadow_a_guest_asking_for_a_registered_name_gets_a_suffix() {
    let db = db_path("shadow");
    let s = server(&db, |c| c.guest_shadow = true);
    let (c, _) = register(s.local_addr(), "gina", "password one");
    drop(c);
    let mut g = Raw::connect(s.local_addr());
    hello(&mut g, "gina", None, None);
    let w = answer(&mut g).expect("shadow");
    assert_eq!(w.name, "gina(1)");
    assert!(!w.registered);
    // The owner still gets the bare name.
    let mut o = Raw::connect(s.local_addr());
    hello(&mut o, "gina", Some("password one"), None);
    assert_eq!(answer(&mut o).expect("owner").name, "gina");
    s.stop().expect("stop");
}

#[test]
fn require_account_refuses_guests_and_admits_registered_names() {
    let db = db_path("require");
    // Register first on an open server, then require accounts.
    let s = server(&db, |_| {});
    drop(register(s.local_addr(), "hana", "password one"));
    s.stop().expect("stop");
    let s = server(&db, |c| c.require_account = true);
    let mut g = Raw::connect(s.local_addr());
    hello(&mut g, "ivan", None, None);
    assert_eq!(
        answer(&mut g).expect_err("guest").code,
        ErrorCode::AccountRequired
    );
    hello(&mut g, "hana", Some("password one"), None);
    assert!(answer(&mut g).expect("member").registered);
    s.stop().expect("stop");
}

#[test]
fn a_deleted_account_keeps_its_member_connected_but_its_password_no_longer_works() {
    let db = db_path("delete");
    let s = server(&db, |_| {});
    let (mut member, token) = register(s.local_addr(), "jack", "password one");
    assert_eq!(s.handle().delete_account("jack"), Ok(true));
    assert_eq!(s.handle().delete_account("jack"), Ok(false));
    member.ping(7);
    assert!(matches!(reply(&mut member), ServerMessage::Pong(p) if p.seq == 7));
    let mut c = Raw::connect(s.local_addr());
    hello(&mut c, "jack", Some("password one"), None);
    assert_eq!(answer(&mut c).expect_err("pw").code, ErrorCode::AuthFailed);
    hello(&mut c, "jack", None, Some(&token));
    assert_eq!(
        answer(&mut c).expect_err("token").code,
        ErrorCode::AuthFailed
    );
    // The name is free for guests again (jack is still in the room).
    hello(&mut c, "jack", None, None);
    assert_eq!(answer(&mut c).expect("guest").name, "jack(1)");
    s.stop().expect("stop");
}

#[test]
fn without_a_store_credentials_get_accounts_unavailable_and_guests_work_as_before() {
    let s = start(test_config());
    let mut c = Raw::connect(s.local_addr());
    hello(&mut c, "kim", Some("password one"), None);
    assert_eq!(
        answer(&mut c).expect_err("pw").code,
        ErrorCode::AccountsUnavailable
    );
    hello(&mut c, "kim", None, None);
    assert_eq!(answer(&mut c).expect("guest").name, "kim");
    c.send(&ClientMessage::Register(Register {
        password: "password one".into(),
    }));
    assert!(
        matches!(reply(&mut c), ServerMessage::Error(e) if e.code == ErrorCode::AccountsUnavailable)
    );
    assert_eq!(
        s.handle().delete_account("kim"),
        Err(chatcore::HandleError::Accounts)
    );
    s.stop().expect("stop");
}

/// The wait an `auth_throttled` message reports ("... try again in N ms").
fn reported_wait(e: &ErrorMsg) -> Duration {
    assert_eq!(e.code, ErrorCode::AuthThrottled, "{e:?}");
    let ms = e
        .message
        .rsplit("try again in ")
        .next()
        .and_then(|t| t.strip_suffix(" ms"))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no wait in {:?}", e.message));
    Duration::from_millis(ms)
}

#[test]
fn the_sixth_failed_guess_is_throttled_for_the_address_and_the_account_with_a_growing_wait() {
    let db = db_path("brute");
    let s = server(&db, |_| {});
    drop(register(s.local_addr(), "lena", "the real one"));
    let mut c = Raw::connect(s.local_addr());
    for guess in 0..5 {
        hello(&mut c, "lena", Some(&format!("guess {guess}")), None);
        assert_eq!(
            answer(&mut c).expect_err("guess").code,
            ErrorCode::AuthFailed
        );
    }
    // The sixth attempt is not even checked, the right password neither.
    hello(&mut c, "lena", Some("the real one"), None);
    let wait = reported_wait(&answer(&mut c).expect_err("throttled"));
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(250),
        "{wait:?}"
    );
    // Another address guessing the same account is held too.
    let mut other = Raw::connect_from(s.local_addr(), "127.0.0.2".parse().expect("ip"));
    hello(&mut other, "lena", Some("guess 6"), None);
    assert!(reported_wait(&answer(&mut other).expect_err("throttled")) <= wait);
    // After the reported wait the next guess is checked (and fails), and
    // the wait doubles.
    std::thread::sleep(wait);
    hello(&mut c, "lena", Some("guess 6"), None);
    assert_eq!(
        answer(&mut c).expect_err("checked").code,
        ErrorCode::AuthFailed
    );
    hello(&mut c, "lena", Some("guess 7"), None);
    let second = reported_wait(&answer(&mut c).expect_err("throttled"));
    assert!(
        second > Duration::from_millis(250) && second <= Duration::from_millis(500),
        "{second:?}"
    );
    // Guests are never throttled.
    hello(&mut c, "mona", None, None);
    assert_eq!(answer(&mut c).expect("guest").name, "mona");
    s.stop().expect("stop");
}

#[test]
fn the_client_api_registers_logs_in_with_the_password_and_reconnects_with_the_token() {
    use chatcore::{Client, Credentials, Event};
    let db = db_path("client");
    let s = server(&db, |_| {});
    let guest = Client::connect_plain(s.local_addr(), "nina").expect("guest");
    guest.register("client password").expect("send");
    let token = loop {
        match guest.recv_timeout(common::WAIT).expect("event") {
            Some(Event::Message(ServerMessage::Registered(r))) => break r.token,
            Some(_) => continue,
            None => panic!("no registered"),
        }
    };
    drop(guest);
    let pw = Credentials::Password("client password".into());
    let member = Client::connect_plain_as(s.local_addr(), "nina", &pw).expect("password login");
    assert!(member.welcome().registered);
    let issued = member.token().expect("issued").to_owned();
    assert_ne!(issued, token);
    drop(member);
    let again = Client::connect_plain_as(s.local_addr(), "nina", &Credentials::Token(issued))
        .expect("token login");
    assert!(again.welcome().registered);
    let wrong = Client::connect_plain_as(
        s.local_addr(),
        "nina",
        &Credentials::Password("nope nope".into()),
    );
    assert!(
        matches!(
            wrong,
            Err(chatcore::ClientError::Refused {
                code: ErrorCode::AuthFailed,
                ..
            })
        ),
        "{wrong:?}"
    );
    s.stop().expect("stop");
}

/// The frames of docs/protocol.md section 22.6, byte for byte.
#[test]
fn the_account_frames_of_the_spec_are_what_the_encoder_produces() {
    use chatcore::protocol::{Registered, encode_client, encode_server};
    fn hex(b: &[u8]) -> String {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
    let hello = encode_client(&ClientMessage::Hello(Hello {
        password: Some("correct horse".into()),
        token: None,
        version: PROTOCOL_VERSION,
        name: "alice".into(),
        last_seen: None,
    }));
    let register = encode_client(&ClientMessage::Register(Register {
        password: "correct horse".into(),
    }));
    let registered = encode_server(&ServerMessage::Registered(Registered {
        name: "alice".into(),
        token: "0123456789abcdef".repeat(4),
    }));
    let logout = encode_client(&ClientMessage::Logout);
    let throttled = encode_server(&ServerMessage::Error(ErrorMsg {
        room: None,
        code: ErrorCode::AuthThrottled,
        message: "too many failed logins; try again in 250 ms".into(),
        reference: None,
        transfer: None,
    }));
    let dumps = [
        ("hello", hex(&hello)),
        ("register", hex(&register)),
        ("registered", hex(&registered)),
        ("logout", hex(&logout)),
        ("throttled", hex(&throttled)),
    ];
    if std::env::var_os("PRINT_FRAMES").is_some() {
        for (n, d) in &dumps {
            println!("{n}: {d}");
        }
    }
    let spec = include_str!("../../docs/protocol.md");
    let flat: String = spec.split_whitespace().collect::<Vec<_>>().join(" ");
    for (name, dump) in dumps {
        assert!(
            flat.contains(&dump),
            "the spec lacks the {name} frame: {dump}"
        );
    }
}

#[test]
fn logins_still_being_checked_at_the_handshake_timeout_are_closed_and_their_late_answers_admit_nobody()
 {
    let db = db_path("pending-timeout");
    let s = server(&db, |_| {});
    let (alice, _) = register(s.local_addr(), "alice", "correct horse");
    drop(alice);
    s.stop().expect("stop");

    let s = server(&db, |c| {
        c.handshake_timeout_ms = 60;
        c.heartbeat_ms = 40;
    });
    let addr = s.local_addr();
    // Twelve password logins at once: the auth thread checks them one
    // after the other (tens of ms of argon2id each), so the later ones are
    // still waiting when their 60 ms are up. `Client` answers the pings
    // that a 40 ms heartbeat sends, so those admitted stay.
    let logins: Vec<_> = (0..12)
        .map(|_| {
            std::thread::spawn(move || {
                let pw = Credentials::Password("correct horse".into());
                Client::connect_plain_as(addr, "alice", &pw)
            })
        })
        .collect();
    let mut welcomed = Vec::new();
    let mut timed_out = 0;
    for login in logins {
        match login.join().expect("login thread") {
            Ok(c) => welcomed.push(c),
            Err(ClientError::Refused {
                code: ErrorCode::HandshakeTimeout,
                ..
            }) => timed_out += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(timed_out > 0, "some logins outlasted the timeout");
    // Every check is done by now (12 hashes); the late answers went
    // nowhere: the members are exactly those welcomed.
    std::thread::sleep(Duration::from_millis(1500));
    let observer = Client::connect_plain(addr, "observer").expect("observer");
    let w = observer.welcome();
    let mut sessions: Vec<u64> = w
        .users
        .iter()
        .map(|u| u.session)
        .filter(|&s| s != w.session)
        .collect();
    sessions.sort_unstable();
    let mut expected: Vec<u64> = welcomed.iter().map(|c| c.welcome().session).collect();
    expected.sort_unstable();
    assert_eq!(sessions, expected);
    drop(welcomed);
    s.stop().expect("stop");
}
