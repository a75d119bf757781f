//! Accounts in the desktop client, against a real server with a store (and
//! so accounts) in a scratch directory: the login form's password and
//! Register, the session token the worker keeps, the automatic reconnect
//! that logs in with that token (not the password), and a refused token
//! sending the user back to the form.
//!
//! The network worker is the real one; its stream is pumped here and fed
//! to `App::update`, as the iced subscription would. A token login is told
//! from a password login by its `welcome`: the server issues a token only
//! at a password login (docs/protocol.md, accounts), so a registered
//! welcome without a token is a token login.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::Duration;

use chatclient_iced::app::Screen;
use chatclient_iced::net::{self, Event, Security};
use chatclient_iced::screen::{login, room};
use chatclient_iced::{App, Config, Message};
use chatcore::protocol::{ServerMessage, Welcome};
use chatcore::{RunningServer, Server, ServerConfig};
use iced::futures::StreamExt;
use iced::futures::executor::block_on;
use iced_test::{selector, simulator};

/// Generous bound on waiting for one event, so a broken build fails
/// instead of hanging; never a measure of speed.
const PATIENCE: Duration = Duration::from_secs(20);
/// The password the tests register.
const PASSWORD: &str = "correct horse battery";

/// A scratch directory for one test (database, spool), removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "chatclient-iced-accounts-{test}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A real server with a store in `scratch`, on a free loopback port.
fn server(scratch: &Scratch) -> RunningServer {
    Server::builder()
        .config(ServerConfig {
            listen: "127.0.0.1:0".parse().expect("loopback address"),
            voice_listen: None,
            spool_dir: Some(scratch.0.join("spool")),
            store_path: Some(scratch.0.join("chat.db")),
            ..ServerConfig::default()
        })
        .build()
        .expect("server builds")
        .spawn()
        .expect("server starts")
}

fn app(server: &RunningServer, scratch: &Scratch) -> App {
    App::new(Config {
        server: server.local_addr().to_string(),
        name: None,
        downloads: scratch.0.join("downloads"),
        frame_log: false,
        audio: Default::default(),
        security: Security::Plain,
        ptt_key: None,
    })
    .0
}

/// Starts the worker the app's subscription asks for; its events on a channel.
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

/// Feeds worker events to the app until `done` holds; returns the
/// welcomes of the logins seen meanwhile.
fn pump_until(
    app: &mut App,
    events: &Receiver<Event>,
    done: impl Fn(&App) -> bool,
) -> Vec<Welcome> {
    let mut welcomes = Vec::new();
    while !done(app) {
        let event = events
            .recv_timeout(PATIENCE)
            .expect("the network worker went quiet");
        if let Event::LoggedIn(w) = &event {
            welcomes.push((**w).clone());
        }
        let _ = app.update(Message::Net(event));
    }
    welcomes
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

/// Types the name and password into the form and clicks `button`.
fn fill_in(app: &mut App, name: &str, password: &str, button: &str) {
    interact(app, |ui| {
        ui.click(selector::id(login::NAME_INPUT))
            .expect("name field");
        let _ = ui.typewrite(name);
        ui.click(selector::id(login::PASSWORD_INPUT))
            .expect("password field");
        let _ = ui.typewrite(password);
        ui.click(button).expect("the button");
    });
}

fn room_of(app: &App) -> Option<&room::State> {
    match app.screen() {
        Screen::Room(r) => Some(r),
        Screen::Login(_) => None,
    }
}

fn has_line(app: &App, part: &str) -> bool {
    room_of(app).is_some_and(|r| {
        r.entries()
            .iter()
            .any(|e| matches!(e, room::Entry::System(s) if s.contains(part)))
    })
}

/// Waits for the server message `wanted` on `client`; panics on an
/// error, a closed connection or silence.
fn answer(client: &chatcore::Client, wanted: impl Fn(&ServerMessage) -> bool) {
    loop {
        match client.recv_timeout(PATIENCE).expect("the connection") {
            Some(chatcore::Event::Message(m)) if wanted(&m) => return,
            Some(chatcore::Event::Message(ServerMessage::Error(e))) => panic!("refused: {e:?}"),
            Some(chatcore::Event::Closed(why)) => panic!("closed: {why}"),
            Some(_) => {}
            None => panic!("no answer from the server"),
        }
    }
}

/// The operator disconnects `name`; the client reconnects by itself.
fn kick(server: &RunningServer, name: &str) {
    let user = server
        .handle()
        .users()
        .expect("users")
        .into_iter()
        .find(|u| u.name == name)
        .expect("the user is in");
    assert!(server.handle().kick(user.session).expect("kick"));
}

#[test]
fn register_on_the_form_registers_the_name_and_the_reconnect_logs_in_with_the_token() {
    let scratch = Scratch::new("register");
    let server = server(&scratch);
    let mut app = app(&server, &scratch);
    fill_in(&mut app, "carol", PASSWORD, "Register");
    let events = start_worker(&app);
    let first = pump_until(&mut app, &events, |a| {
        has_line(a, "Registered: the name carol")
    });
    assert!(!first[0].registered, "a guest login first, then register");

    // The name is registered now: a guest reconnect would be refused. The
    // worker reconnects with the token from `registered`.
    kick(&server, "carol");
    let again = pump_until(&mut app, &events, |a| has_line(a, "Reconnected"));
    let back = again.last().expect("logged in again");
    assert!(back.registered, "logged in as the registered name");
    assert_eq!(back.token, None, "a token login (no new token issued)");
    assert_eq!(back.name, "carol");
    server.stop().expect("server stops");
}

#[test]
fn a_password_login_gets_a_token_and_the_reconnect_uses_it_until_the_account_is_deleted() {
    let scratch = Scratch::new("password");
    let server = server(&scratch);
    let addr = server.local_addr();
    // alice registers with another client.
    let owner = chatcore::Client::connect_plain(addr, "alice").expect("alice");
    owner.register(PASSWORD).expect("register");
    answer(&owner, |m| matches!(m, ServerMessage::Registered(_)));
    owner.bye().expect("bye");

    let mut app = app(&server, &scratch);
    // A wrong password is refused on the form, in words.
    fill_in(&mut app, "alice", "not the password", "Log in");
    let events = start_worker(&app);
    pump_until(
        &mut app,
        &events,
        |a| matches!(a.screen(), Screen::Login(l) if l.error.is_some()),
    );
    let Screen::Login(form) = app.screen() else {
        panic!("still on the form");
    };
    let error = form.error.clone().unwrap_or_default();
    assert!(error.starts_with("Wrong password"), "{error}");

    // The right password: in the room, with a token from the welcome.
    let _ = app.update(Message::Login(login::Message::PasswordChanged(
        net::Secret::new(PASSWORD),
    )));
    interact(&mut app, |ui| {
        ui.click("Log in").expect("Log in");
    });
    let events = start_worker(&app);
    let first = pump_until(&mut app, &events, |a| room_of(a).is_some());
    let welcome = first.last().expect("logged in");
    assert!(
        welcome.registered && welcome.token.is_some(),
        "a password login"
    );
    assert!(has_line(&app, "your registered name"));

    // Dropped: the worker comes back with the token, not the password.
    kick(&server, "alice");
    let again = pump_until(&mut app, &events, |a| has_line(a, "Reconnected"));
    let back = again.last().expect("logged in again");
    assert!(back.registered);
    assert_eq!(back.token, None, "a token login (no new token issued)");

    // The operator deletes the account: its tokens are revoked. The next
    // reconnect is refused and the user is asked on the form.
    assert!(server.handle().delete_account("alice").expect("delete"));
    let session = server
        .handle()
        .users()
        .expect("users")
        .into_iter()
        .find(|u| u.name == "alice")
        .expect("the app's alice is in")
        .session;
    assert!(server.handle().kick(session).expect("kick"));
    pump_until(&mut app, &events, |a| {
        matches!(a.screen(), Screen::Login(_))
    });
    let Screen::Login(form) = app.screen() else {
        panic!("back on the form");
    };
    assert_eq!(form.name, "alice");
    let error = form.error.clone().unwrap_or_default();
    assert!(error.contains("expired or was revoked"), "{error}");
    assert!(app.connection().is_none(), "no worker retrying");
    server.stop().expect("server stops");
}
