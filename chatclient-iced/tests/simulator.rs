//! The client driven like a user would, headless (`iced_test`'s simulator,
//! software renderer), against a real `chatcore` server on loopback: type a
//! name, click Log in, type a message, press Send, see it in the list.
//!
//! The network worker is the real one: its stream (what the iced
//! subscription would run) is pumped here and fed to `App::update`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::Duration;

use chatclient_iced::app::Screen;
use chatclient_iced::net::{self, Event, Security};
use chatclient_iced::screen::{login, room};
use chatclient_iced::{App, Config, Message};
use chatcore::{RunningServer, Server, ServerConfig};
use iced::futures::StreamExt;
use iced::futures::executor::block_on;
use iced::keyboard::key::Named;
use iced_test::{selector, simulator};

/// Generous bound on waiting for one event, so a broken build fails
/// instead of hanging; never a measure of speed.
const PATIENCE: Duration = Duration::from_secs(20);

/// A real server on `addr` (port 0: a free one), spooling into `spool`.
fn server_at(addr: SocketAddr, spool: &Path) -> RunningServer {
    Server::builder()
        .config(ServerConfig {
            listen: addr,
            voice_listen: None,
            spool_dir: Some(spool.to_path_buf()),
            ..ServerConfig::default()
        })
        .build()
        .expect("server builds")
        .spawn()
        .expect("server starts")
}

/// A scratch directory for one test (spool, downloads), removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("chatclient-iced-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A real server on a free loopback port.
fn server(scratch: &Scratch) -> RunningServer {
    server_at(
        "127.0.0.1:0".parse().expect("loopback address"),
        &scratch.0.join("spool"),
    )
}

fn config(addr: SocketAddr, scratch: &Scratch) -> Config {
    Config {
        server: addr.to_string(),
        name: None,
        downloads: scratch.0.join("downloads"),
        frame_log: false,
        audio: Default::default(),
        security: Security::Plain,
        ptt_key: None,
    }
}

/// Starts the worker the app's subscription asks for and returns its
/// events on a channel.
fn start_worker(app: &App) -> Receiver<Event> {
    let params = app
        .connection()
        .expect("the app asked for a connection")
        .clone();
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

fn room_of(app: &App) -> Option<&room::State> {
    match app.screen() {
        Screen::Room(r) => Some(r),
        Screen::Login(_) => None,
    }
}

fn has_chat(app: &App, text: &str) -> bool {
    room_of(app).is_some_and(|r| {
        r.entries()
            .iter()
            .any(|e| matches!(e, room::Entry::Chat(c) if c.text == text))
    })
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

fn log_in(app: &mut App, name: &str) -> Receiver<Event> {
    interact(app, |ui| {
        ui.click(selector::id(login::NAME_INPUT))
            .expect("name field");
        let _ = ui.typewrite(name);
        ui.click("Log in").expect("Log in button");
    });
    let events = start_worker(app);
    pump_until(app, &events, |a| room_of(a).is_some());
    events
}

#[test]
fn typing_a_name_and_a_message_shows_the_message_in_the_list() {
    let scratch = Scratch::new("send");
    let server = server(&scratch);
    let (mut app, _) = App::new(config(server.local_addr(), &scratch));
    let events = log_in(&mut app, "alice");
    assert_eq!(room_of(&app).map(room::State::name), Some("alice"));

    interact(&mut app, |ui| {
        ui.click(selector::id(room::COMPOSER)).expect("composer");
        let _ = ui.typewrite("hello from the simulator");
    });
    // The view is rebuilt after typing, as iced does between frames: the
    // Send button is enabled once there is text.
    interact(&mut app, |ui| {
        ui.click("Send").expect("Send button");
    });
    pump_until(&mut app, &events, |a| {
        has_chat(a, "hello from the simulator")
    });

    let mut ui = simulator(app.view());
    assert!(
        ui.find("hello from the simulator").is_ok(),
        "the sent message is drawn in the list"
    );
    assert!(ui.find("alice").is_ok(), "our name is in the user list");
    assert!(ui.find("1 online").is_ok());
    drop(ui);
    server.stop().expect("server stops");
}

#[test]
fn enter_in_the_composer_sends_and_a_taken_name_is_shown_as_assigned() {
    let scratch = Scratch::new("enter");
    let server = server(&scratch);
    let (mut first, _) = App::new(config(server.local_addr(), &scratch));
    let _first_events = log_in(&mut first, "bob");
    let (mut app, _) = App::new(config(server.local_addr(), &scratch));
    let events = log_in(&mut app, "bob");
    assert_eq!(room_of(&app).map(room::State::name), Some("bob(1)"));
    assert_eq!(app.title(), "Chat room — bob(1)");

    interact(&mut app, |ui| {
        ui.click(selector::id(room::COMPOSER)).expect("composer");
        let _ = ui.typewrite("sent with enter");
        let _ = ui.tap_key(Named::Enter);
    });
    pump_until(&mut app, &events, |a| has_chat(a, "sent with enter"));
    let mut ui = simulator(app.view());
    assert!(ui.find("sent with enter").is_ok());
    assert!(ui.find("2 online").is_ok());
    drop(ui);
    server.stop().expect("server stops");
}

#[test]
fn an_empty_name_prompts_inline_and_a_refused_connection_is_explained() {
    // A port nobody listens on: bind one, note it, close it.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let scratch = Scratch::new("refused");
    let (mut app, _) = App::new(config(free, &scratch));
    interact(&mut app, |ui| {
        ui.click("Log in").expect("Log in button");
    });
    assert!(app.connection().is_none(), "no connection without a name");
    let mut ui = simulator(app.view());
    assert!(ui.find(login::EMPTY_NAME_PROMPT).is_ok());
    drop(ui);

    interact(&mut app, |ui| {
        ui.click(selector::id(login::NAME_INPUT))
            .expect("name field");
        let _ = ui.typewrite("carol");
        let _ = ui.tap_key(Named::Enter);
    });
    let events = start_worker(&app);
    pump_until(&mut app, &events, |a| a.connection().is_none());
    let Screen::Login(form) = app.screen() else {
        panic!("still on the login screen after a refused connection");
    };
    assert!(
        form.error
            .as_deref()
            .is_some_and(|e| e.contains("Connection refused")),
        "got {:?}",
        form.error
    );
}

#[test]
fn the_server_going_away_is_reported_and_the_client_logs_in_again_keeping_history() {
    let scratch = Scratch::new("reconnect");
    let server = server(&scratch);
    let addr = server.local_addr();
    let (mut app, _) = App::new(config(addr, &scratch));
    let events = log_in(&mut app, "dave");
    interact(&mut app, |ui| {
        ui.click(selector::id(room::COMPOSER)).expect("composer");
        let _ = ui.typewrite("before the restart");
        let _ = ui.tap_key(Named::Enter);
    });
    pump_until(&mut app, &events, |a| has_chat(a, "before the restart"));

    server.stop().expect("server stops");
    pump_until(&mut app, &events, |a| {
        room_of(a).is_some_and(|r| !matches!(r.link(), room::Link::Online))
    });
    let again = server_at(addr, &scratch.0.join("spool"));
    pump_until(&mut app, &events, |a| {
        room_of(a).is_some_and(|r| matches!(r.link(), room::Link::Online))
    });
    let r = room_of(&app).expect("in the room");
    assert_eq!(r.name(), "dave", "logged in again with the same name");
    assert!(has_chat(&app, "before the restart"), "history kept");
    assert!(
        r.entries()
            .iter()
            .any(|e| matches!(e, room::Entry::System(t) if t.starts_with("Reconnected")))
    );
    again.stop().expect("server stops");
}

/// The card states of a room's file entries.
fn file_states(app: &App) -> Vec<room::files::FileState> {
    room_of(app)
        .map(|r| {
            r.entries()
                .iter()
                .filter_map(|e| match e {
                    room::Entry::File(id) => r.files().get(*id).map(|c| c.state.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_file_offered_through_the_path_field_is_accepted_and_saved_by_another_client() {
    use room::files::FileState;

    let scratch = Scratch::new("files");
    let source = scratch.0.join("notes.txt");
    let content: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(&source, &content).expect("write the file to send");

    let server = server(&scratch);
    let (mut alice, _) = App::new(config(server.local_addr(), &scratch));
    let alice_events = log_in(&mut alice, "alice");
    let (mut bob, _) = App::new(config(server.local_addr(), &scratch));
    let bob_events = log_in(&mut bob, "bob");

    // Bob: "Send file…" found no dialog (as under Xvfb), so he types a path.
    let _ = bob.update(Message::Room(room::Message::Picked(None)));
    interact(&mut bob, |ui| {
        ui.click(selector::id(room::PATH_INPUT))
            .expect("path field");
        let _ = ui.typewrite(&source.display().to_string());
        let _ = ui.tap_key(Named::Enter);
    });
    pump_until(&mut bob, &bob_events, |b| {
        file_states(b) == [FileState::Offered]
    });

    // Alice sees the offer with name, size and sender, and accepts it.
    pump_until(&mut alice, &alice_events, |a| {
        file_states(a) == [FileState::Available]
    });
    interact(&mut alice, |ui| {
        assert!(ui.find("notes.txt").is_ok());
        assert!(ui.find("1.2 MB").is_ok());
        assert!(ui.find("bob sends a file").is_ok());
        ui.click("Accept").expect("Accept button");
    });
    pump_until(&mut alice, &alice_events, |a| {
        matches!(file_states(a).as_slice(), [FileState::Saved(_)])
    });
    let states = file_states(&alice);
    let [FileState::Saved(path)] = states.as_slice() else {
        panic!("not saved");
    };
    assert_eq!(std::fs::read(path).expect("read the saved file"), content);
    let mut ui = simulator(alice.view());
    assert!(ui.find("Open folder").is_ok());
    drop(ui);
    server.stop().expect("server stops");
}

#[test]
fn a_name_the_server_refuses_is_explained_on_the_form() {
    let scratch = Scratch::new("badname");
    let server = server(&scratch);
    let (mut app, _) = App::new(config(server.local_addr(), &scratch));
    let long = "n".repeat(500);
    interact(&mut app, |ui| {
        ui.click(selector::id(login::NAME_INPUT))
            .expect("name field");
        let _ = ui.typewrite(&long);
        let _ = ui.tap_key(Named::Enter);
    });
    let events = start_worker(&app);
    pump_until(&mut app, &events, |a| a.connection().is_none());
    let Screen::Login(form) = app.screen() else {
        panic!("a refused name must keep the login screen");
    };
    let error = form.error.clone().unwrap_or_default();
    assert!(error.contains("refused this name"), "got {error:?}");
    let mut ui = simulator(app.view());
    assert!(ui.find(error.as_str()).is_ok(), "the reason is on screen");
    drop(ui);
    server.stop().expect("server stops");
}

fn chat_texts(app: &App) -> Vec<String> {
    room_of(app).map_or_else(Vec::new, |r| {
        r.entries()
            .iter()
            .filter_map(|e| match e {
                room::Entry::Chat(c) => Some(c.text.clone()),
                _ => None,
            })
            .collect()
    })
}

#[test]
fn a_reconnection_shows_exactly_the_messages_missed_while_away_and_load_earlier_pages_the_server() {
    let scratch = Scratch::new("resume");
    // A store and a welcome of only 2 chats: what the client missed must
    // come from the resume, and older chats from server pages.
    let server = Server::builder()
        .config(ServerConfig {
            listen: "127.0.0.1:0".parse().expect("loopback address"),
            voice_listen: None,
            spool_dir: Some(scratch.0.join("spool")),
            store_path: Some(scratch.0.join("chat.db")),
            history_len: 2,
            ..ServerConfig::default()
        })
        .build()
        .expect("server builds")
        .spawn()
        .expect("server starts");
    let addr = server.local_addr();
    let erin = chatcore::Client::connect_plain(addr, "erin").expect("erin");
    for i in 0..4 {
        erin.send_chat(format!("old{i}")).expect("send");
    }
    let (mut app, _) = App::new(config(addr, &scratch));
    // Wait until erin's four are stored and delivered (her own copies).
    let mut own = 0;
    while own < 4 {
        if let Ok(Some(chatcore::Event::Message(chatcore::protocol::ServerMessage::Chat(_)))) =
            erin.recv_timeout(PATIENCE)
        {
            own += 1;
        }
    }
    let events = log_in(&mut app, "dave");
    assert_eq!(chat_texts(&app), ["old2", "old3"], "the welcome's two");
    erin.send_chat("seen").expect("send");
    pump_until(&mut app, &events, |a| has_chat(a, "seen"));

    // The operator removes dave; the client reconnects by itself after its
    // back-off, while erin goes on talking.
    let dave = server
        .handle()
        .users()
        .expect("users")
        .into_iter()
        .find(|u| u.name == "dave")
        .expect("dave is in");
    assert!(server.handle().kick(dave.session).expect("kick"));
    for i in 0..5 {
        erin.send_chat(format!("missed{i}")).expect("send");
    }
    pump_until(&mut app, &events, |a| has_chat(a, "missed4"));
    let after_resume = [
        "old2", "old3", "seen", "missed0", "missed1", "missed2", "missed3", "missed4",
    ];
    assert_eq!(chat_texts(&app), after_resume, "each once, in order");

    // Every local entry is drawn: "Load earlier messages" asks the server.
    interact(&mut app, |ui| {
        ui.click("Load earlier messages").expect("the button");
    });
    // The page comes back through the worker.
    pump_until(&mut app, &events, |a| has_chat(a, "old0"));
    let mut all = vec!["old0", "old1"];
    all.extend(after_resume);
    assert_eq!(chat_texts(&app), all);
    server.stop().expect("server stops");
}
