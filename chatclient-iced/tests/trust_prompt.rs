//! The window's side of trust on first use, driven headless through
//! `iced_test`'s simulator (software renderer): the prompt for a changed
//! certificate (both fingerprints, the warning, "Trust" writes the new
//! fingerprint into a real known-servers file in a scratch directory and
//! connects again, "Cancel" goes back to the form), the first-use line
//! with the remembered fingerprint, and the status line's security badge.
//!
//! Events are those the network worker sends; the worker itself runs where
//! a test needs the known-servers file written (it is the worker that
//! writes it, off the UI thread). The last test runs it all against real
//! TLS servers on loopback: first use, chat inside TLS, a server back with
//! another certificate, the reconnection that asks, Trust, back in the room.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::Duration;

use chatclient_iced::app::Screen;
use chatclient_iced::net::{self, Changed, Event, Security};
use chatclient_iced::screen::{login, room, trust};
use chatclient_iced::{App, Config, Message};
use chatcore::protocol::Welcome;
use chatcore::tls::{Fingerprint, KnownServers, Trust};
use iced::futures::StreamExt;
use iced::futures::executor::block_on;
use iced_test::{selector, simulator};

/// Generous bound on waiting for one worker event, so a broken build fails
/// instead of hanging; never a measure of speed.
const PATIENCE: Duration = Duration::from_secs(20);

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "chatclient-iced-trust-{test}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Self(dir)
    }

    fn known_servers(&self) -> PathBuf {
        self.0.join("known_servers")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server address where nothing listens (a port just freed).
fn unused_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

fn config(server: &str, scratch: &Scratch) -> Config {
    Config {
        server: server.to_owned(),
        name: None,
        downloads: scratch.0.join("downloads"),
        frame_log: false,
        audio: Default::default(),
        security: Security::FirstUse {
            known_servers: Some(scratch.known_servers()),
        },
        ptt_key: None,
    }
}

fn remembered() -> Fingerprint {
    Fingerprint([0x11; 32])
}

fn presented() -> Fingerprint {
    Fingerprint([0xA7; 32])
}

fn changed(server: &str, scratch: &Scratch) -> Event {
    Event::CertificateChanged(Box::new(Changed {
        server: server.to_owned(),
        remembered: remembered(),
        presented: presented(),
        file: scratch.known_servers(),
    }))
}

fn welcome(name: &str) -> Welcome {
    Welcome {
        registered: false,
        token: None,
        version: chatcore::protocol::PROTOCOL_VERSION,
        name: name.into(),
        session: 1,
        users: vec![],
        history: vec![],
        heartbeat_ms: 10_000,
        max_frame: 1 << 20,
        max_text: 4096,
    }
}

/// Runs the simulator over the current view and applies what it produced.
fn interact(app: &mut App, f: impl FnOnce(&mut iced_test::Simulator<'_, Message>)) {
    let messages: Vec<Message> = {
        let mut ui = simulator(app.view());
        f(&mut ui);
        ui.into_messages().collect()
    };
    for m in messages {
        let _ = app.update(m);
    }
}

/// Selects a text widget whose words contain `part`.
fn contains(part: &str) -> impl FnMut(selector::Candidate<'_>) -> Option<()> + '_ {
    move |c: selector::Candidate<'_>| match c {
        selector::Candidate::Text { content, .. } if content.contains(part) => Some(()),
        _ => None,
    }
}

/// Whether the current view shows a text widget reading exactly `s`.
fn shows(app: &App, s: &str) -> bool {
    let mut ui = simulator(app.view());
    ui.find(s).is_ok()
}

/// The first and the second half of a fingerprint as the prompt prints
/// them (16 bytes a line).
fn halves(fp: Fingerprint) -> (String, String) {
    let full = fp.to_string();
    (full[..47].to_owned(), full[48..].to_owned())
}

/// Types `name` and clicks Log in: the app asks for a worker.
fn submit(app: &mut App, name: &str) {
    interact(app, |ui| {
        ui.click(selector::id(login::NAME_INPUT))
            .expect("name field");
        let _ = ui.typewrite(name);
        ui.click("Log in").expect("Log in button");
    });
    assert!(app.connection().is_some(), "logging in");
}

/// Starts the worker the app asks for; its events arrive on the channel.
fn start_worker(app: &App) -> Receiver<Event> {
    let params = app.connection().expect("a connection asked for").clone();
    let mut stream = net::connect(&params);
    let (tx, rx) = channel();
    thread::spawn(move || {
        while let Some(event) = block_on(stream.next()) {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    rx
}

/// Feeds worker events to the app until `done` holds.
fn pump_until(app: &mut App, events: &Receiver<Event>, done: impl Fn(&App) -> bool) {
    while !done(app) {
        let event = events
            .recv_timeout(PATIENCE)
            .expect("the network worker went quiet");
        let _ = app.update(Message::Net(event));
    }
}

fn login_error(app: &App) -> Option<&str> {
    match app.screen() {
        Screen::Login(l) => l.error.as_deref(),
        Screen::Room(_) => None,
    }
}

#[test]
fn a_changed_certificate_shows_the_server_both_fingerprints_the_warning_and_two_buttons() {
    let scratch = Scratch::new("shows");
    let server = "chat.example.org:6789";
    let (mut app, _) = App::new(config(server, &scratch));
    submit(&mut app, "alice");
    let _ = app.update(Message::Net(changed(server, &scratch)));

    assert!(app.connection().is_none(), "the worker has stopped");
    assert!(app.prompt().is_some());
    let (old1, old2) = halves(remembered());
    let (new1, new2) = halves(presented());
    let mut ui = simulator(app.view());
    for s in [
        trust::TITLE,
        old1.as_str(),
        old2.as_str(),
        new1.as_str(),
        new2.as_str(),
        trust::TRUST_BUTTON,
        trust::CANCEL_BUTTON,
    ] {
        assert!(ui.find(s).is_ok(), "the prompt shows {s:?}");
    }
    assert!(
        ui.find(contains("Someone may be intercepting")).is_ok(),
        "the warning"
    );
    assert!(ui.find(contains(server)).is_ok(), "the server");
}

#[test]
fn trust_writes_the_new_fingerprint_to_the_known_servers_file_and_connects_again() {
    let scratch = Scratch::new("trust");
    let server = unused_addr();
    KnownServers::at(scratch.known_servers())
        .remember(&server, remembered())
        .expect("the old fingerprint on file");
    let (mut app, _) = App::new(config(&server, &scratch));
    submit(&mut app, "alice");
    let first = app.connection().cloned();
    let _ = app.update(Message::Net(changed(&server, &scratch)));

    interact(&mut app, |ui| {
        ui.click(trust::TRUST_BUTTON).expect("Trust button");
    });
    assert!(app.prompt().is_none(), "the prompt is answered");
    let params = app.connection().cloned().expect("connecting again");
    assert_ne!(Some(&params), first.as_ref(), "a fresh worker");
    assert_eq!(params.accept, Some(presented()));
    assert_eq!(params.name, "alice");
    assert!(!params.rejoin);

    // The worker remembers the new fingerprint, then connects (nothing
    // listens there: the form says so, the file is already updated).
    let events = start_worker(&app);
    pump_until(&mut app, &events, |a| a.connection().is_none());
    assert_eq!(
        KnownServers::at(scratch.known_servers())
            .get(&server)
            .expect("file readable"),
        Some(presented())
    );
    assert!(
        login_error(&app).is_some_and(|e| e.contains("Connection refused")),
        "{:?}",
        login_error(&app)
    );
}

#[test]
fn cancel_goes_back_to_the_form_and_leaves_the_known_servers_file_alone() {
    let scratch = Scratch::new("cancel");
    let server = "chat.example.org:6789";
    KnownServers::at(scratch.known_servers())
        .remember(server, remembered())
        .expect("the old fingerprint on file");
    let (mut app, _) = App::new(config(server, &scratch));
    submit(&mut app, "alice");
    let _ = app.update(Message::Net(changed(server, &scratch)));

    interact(&mut app, |ui| {
        ui.click(trust::CANCEL_BUTTON).expect("Cancel button");
    });
    assert!(app.prompt().is_none());
    assert!(app.connection().is_none(), "nothing connects");
    assert!(
        login_error(&app).is_some_and(|e| e.contains("did not trust")),
        "{:?}",
        login_error(&app)
    );
    assert!(shows(&app, "Log in"), "the form is back and usable");
    assert_eq!(
        KnownServers::at(scratch.known_servers())
            .get(server)
            .expect("file readable"),
        Some(remembered())
    );
}

#[test]
fn a_changed_certificate_met_while_reconnecting_stops_and_asks_instead_of_retrying() {
    let scratch = Scratch::new("reconnect");
    let server = "chat.example.org:6789";
    let (mut app, _) = App::new(config(server, &scratch));
    submit(&mut app, "alice");
    let _ = app.update(Message::Net(Event::Secured(Trust::Known(remembered()))));
    let _ = app.update(Message::Net(Event::LoggedIn(Box::new(welcome("alice(1)")))));
    let _ = app.update(Message::Net(Event::Disconnected {
        reason: "connection closed".into(),
        retry_in: Duration::from_millis(500),
    }));
    let _ = app.update(Message::Net(changed(server, &scratch)));

    assert!(app.connection().is_none(), "no automatic retry");
    assert!(app.prompt().is_some(), "the user is asked");
    let Screen::Room(r) = app.screen() else {
        panic!("the room stays under the prompt");
    };
    assert!(matches!(r.link(), room::Link::Stopped(_)));

    interact(&mut app, |ui| {
        ui.click(trust::TRUST_BUTTON).expect("Trust button");
    });
    let params = app.connection().expect("connecting again");
    assert_eq!(params.accept, Some(presented()));
    assert_eq!(params.name, "alice(1)", "the name we had in the room");
    assert!(params.rejoin, "back into the room, retrying as before");
}

#[test]
fn the_first_connection_shows_the_remembered_fingerprint_and_the_badge_says_encrypted() {
    let scratch = Scratch::new("first-use");
    let server = "chat.example.org:6789";
    let fp = presented();
    let (mut app, _) = App::new(config(server, &scratch));
    submit(&mut app, "alice");
    let _ = app.update(Message::Net(Event::Secured(Trust::FirstUse(fp))));
    let _ = app.update(Message::Net(Event::LoggedIn(Box::new(welcome("alice")))));
    let Screen::Room(r) = app.screen() else {
        panic!("in the room");
    };
    assert!(r.entries().iter().any(|e| matches!(
        e,
        room::Entry::Fingerprint { fingerprint, .. } if *fingerprint == fp.to_string()
    )));
    let (a, b) = halves(fp);
    let mut ui = simulator(app.view());
    assert!(ui.find(a.as_str()).is_ok() && ui.find(b.as_str()).is_ok());
    assert!(
        ui.find(contains("its certificate is now remembered"))
            .is_ok()
    );
    assert!(ui.find("TLS · encrypted · certificate remembered").is_ok());
}

#[test]
fn the_badge_says_not_encrypted_with_no_tls_and_not_verified_with_insecure() {
    let scratch = Scratch::new("badge");
    for (trust, words) in [
        (Trust::Plain, "NOT ENCRYPTED (--no-tls)"),
        (Trust::Insecure, "TLS · NOT VERIFIED (--insecure)"),
        (Trust::CaVerified, "TLS · encrypted · certificate verified"),
    ] {
        let (mut app, _) = App::new(config("127.0.0.1:6789", &scratch));
        submit(&mut app, "alice");
        let _ = app.update(Message::Net(Event::Secured(trust)));
        let _ = app.update(Message::Net(Event::LoggedIn(Box::new(welcome("alice")))));
        assert!(shows(&app, words), "{trust:?} shows {words:?}");
    }
}

#[test]
fn the_login_form_warns_about_no_tls_and_insecure() {
    let scratch = Scratch::new("form");
    for (security, words) in [
        (Security::Plain, "NOT encrypted"),
        (Security::Insecure, "NOT verified"),
    ] {
        let (app, _) = App::new(Config {
            security,
            ..config("127.0.0.1:6789", &scratch)
        });
        let mut ui = simulator(app.view());
        assert!(ui.find(contains(words)).is_ok(), "{words}");
    }
}

/// A real TLS server on `addr` presenting the self-signed certificate kept
/// in `data_dir` (created there on first use).
fn tls_server_at(
    addr: std::net::SocketAddr,
    data_dir: &std::path::Path,
) -> (chatcore::RunningServer, Fingerprint) {
    let tls = chatcore::ServerTls::self_signed(data_dir).expect("certificate");
    let fp = tls.fingerprint();
    let server = chatcore::Server::builder()
        .config(chatcore::ServerConfig {
            listen: addr,
            voice_listen: None,
            ..chatcore::ServerConfig::default()
        })
        .tls(tls)
        .build()
        .expect("server builds")
        .spawn()
        .expect("server starts");
    (server, fp)
}

fn in_room_online(app: &App) -> bool {
    matches!(app.screen(), Screen::Room(r) if matches!(r.link(), room::Link::Online))
}

fn has_chat(app: &App, text: &str) -> bool {
    matches!(app.screen(), Screen::Room(r) if r.entries().iter().any(
        |e| matches!(e, room::Entry::Chat(c) if c.text == text)
    ))
}

#[test]
fn over_real_tls_the_first_login_remembers_and_a_new_certificate_on_reconnection_is_asked_about() {
    let scratch = Scratch::new("e2e");
    let (first, first_fp) = tls_server_at(
        "127.0.0.1:0".parse().expect("loopback"),
        &scratch.0.join("data-a"),
    );
    let addr = first.local_addr();
    let server = addr.to_string();
    let (mut app, _) = App::new(config(&server, &scratch));
    submit(&mut app, "erin");
    let events = start_worker(&app);
    pump_until(&mut app, &events, in_room_online);

    // First use: the fingerprint the server presents is shown and kept.
    let Screen::Room(r) = app.screen() else {
        panic!("in the room");
    };
    assert_eq!(r.protection(), Some(Trust::FirstUse(first_fp)));
    assert!(r.entries().iter().any(|e| matches!(
        e,
        room::Entry::Fingerprint { fingerprint, .. } if *fingerprint == first_fp.to_string()
    )));
    assert_eq!(
        KnownServers::at(scratch.known_servers())
            .get(&server)
            .expect("file readable"),
        Some(first_fp)
    );
    // Chat runs inside TLS.
    interact(&mut app, |ui| {
        ui.click(selector::id(room::COMPOSER)).expect("composer");
        let _ = ui.typewrite("sealed hello");
        let _ = ui.tap_key(iced::keyboard::key::Named::Enter);
    });
    pump_until(&mut app, &events, |a| has_chat(a, "sealed hello"));

    // The server comes back on the same address with another certificate:
    // the automatic reconnection stops and asks.
    first.stop().expect("server stops");
    let (second, second_fp) = tls_server_at(addr, &scratch.0.join("data-b"));
    assert_ne!(first_fp, second_fp);
    pump_until(&mut app, &events, |a| a.prompt().is_some());
    assert!(
        app.connection().is_none(),
        "no retry behind the user's back"
    );
    let prompt = app.prompt().expect("asked");
    assert_eq!(prompt.changed.remembered, first_fp);
    assert_eq!(prompt.changed.presented, second_fp);
    assert_eq!(
        KnownServers::at(scratch.known_servers())
            .get(&server)
            .expect("file readable"),
        Some(first_fp),
        "nothing accepted yet"
    );

    // Trust: the new fingerprint is written, the room is rejoined.
    interact(&mut app, |ui| {
        ui.click(trust::TRUST_BUTTON).expect("Trust button");
    });
    let events = start_worker(&app);
    pump_until(&mut app, &events, in_room_online);
    let Screen::Room(r) = app.screen() else {
        panic!("in the room");
    };
    assert_eq!(r.name(), "erin");
    assert_eq!(r.protection(), Some(Trust::Known(second_fp)));
    assert!(has_chat(&app, "sealed hello"), "history kept");
    assert_eq!(
        KnownServers::at(scratch.known_servers())
            .get(&server)
            .expect("file readable"),
        Some(second_fp)
    );
    second.stop().expect("server stops");
}

#[test]
fn a_tls_login_to_a_plain_server_fails_with_a_hint_about_no_tls() {
    let scratch = Scratch::new("plain-server");
    let plain = chatcore::Server::builder()
        .config(chatcore::ServerConfig {
            listen: "127.0.0.1:0".parse().expect("loopback"),
            voice_listen: None,
            ..chatcore::ServerConfig::default()
        })
        .build()
        .expect("server builds")
        .spawn()
        .expect("server starts");
    let (mut app, _) = App::new(config(&plain.local_addr().to_string(), &scratch));
    submit(&mut app, "frank");
    let events = start_worker(&app);
    pump_until(&mut app, &events, |a| a.connection().is_none());
    let error = login_error(&app).unwrap_or_default().to_owned();
    assert!(error.contains("--no-tls"), "{error}");
    assert!(
        !scratch.known_servers().exists()
            || KnownServers::at(scratch.known_servers())
                .get(&plain.local_addr().to_string())
                .expect("file readable")
                .is_none(),
        "nothing remembered for a server that spoke no TLS"
    );
    plain.stop().expect("server stops");
}

#[test]
fn cancel_in_the_room_returns_to_the_form_filled_in_for_another_try() {
    let scratch = Scratch::new("room-cancel");
    let server = "chat.example.org:6789";
    let (mut app, _) = App::new(config(server, &scratch));
    submit(&mut app, "alice");
    let _ = app.update(Message::Net(Event::LoggedIn(Box::new(welcome("alice(1)")))));
    let _ = app.update(Message::Net(changed(server, &scratch)));
    interact(&mut app, |ui| {
        ui.click(trust::CANCEL_BUTTON).expect("Cancel button");
    });
    let Screen::Login(form) = app.screen() else {
        panic!("back on the login form");
    };
    assert_eq!(form.server, server);
    assert_eq!(form.name, "alice(1)");
    assert!(!form.connecting);
    assert!(app.connection().is_none() && app.prompt().is_none());
}

#[test]
fn insecure_over_real_tls_logs_in_remembers_nothing_and_says_not_verified() {
    let scratch = Scratch::new("insecure");
    let (server, _) = tls_server_at(
        "127.0.0.1:0".parse().expect("loopback"),
        &scratch.0.join("data"),
    );
    let (mut app, _) = App::new(Config {
        security: Security::Insecure,
        ..config(&server.local_addr().to_string(), &scratch)
    });
    submit(&mut app, "gina");
    let events = start_worker(&app);
    pump_until(&mut app, &events, in_room_online);
    assert!(shows(&app, "TLS · NOT VERIFIED (--insecure)"));
    assert!(!scratch.known_servers().exists(), "nothing remembered");
    server.stop().expect("server stops");
}
