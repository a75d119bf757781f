//! Named rooms in the desktop client against a real server: joining a
//! room from the sidebar, a chat in that room shown there only (the lobby
//! counts it as unread when it is the lobby's), and each room keeping its
//! own draft when switching.
//!
//! The network worker is the real one; its stream is pumped here and fed
//! to `App::update`, as the iced subscription would. The other member is a
//! plain `chatcore::Client`.

use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::Duration;

use chatclient_iced::app::Screen;
use chatclient_iced::net::{self, Event, Security};
use chatclient_iced::screen::room::rooms::JOIN_INPUT;
use chatclient_iced::screen::{login, room};
use chatclient_iced::{App, Config, Message};
use chatcore::protocol::ServerMessage;
use chatcore::{RunningServer, Server, ServerConfig};
use iced::futures::StreamExt;
use iced::futures::executor::block_on;
use iced_test::{selector, simulator};

/// Generous bound on waiting for one event, so a broken build fails
/// instead of hanging; never a measure of speed.
const PATIENCE: Duration = Duration::from_secs(20);

/// A real server without a store, on a free loopback port.
fn server() -> RunningServer {
    Server::builder()
        .config(ServerConfig {
            listen: "127.0.0.1:0".parse().expect("loopback address"),
            voice_listen: None,
            ..ServerConfig::default()
        })
        .build()
        .expect("server builds")
        .spawn()
        .expect("server starts")
}

fn app(server: &RunningServer) -> App {
    App::new(Config {
        server: server.local_addr().to_string(),
        name: None,
        downloads: std::env::temp_dir().join("chatclient-iced-rooms-downloads"),
        frame_log: false,
        audio: Default::default(),
        security: Security::Plain,
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

/// Feeds worker events to the app until `done` holds.
fn pump_until(app: &mut App, events: &Receiver<Event>, done: impl Fn(&room::State) -> bool) {
    while !room_of(app).is_some_and(&done) {
        let event = events
            .recv_timeout(PATIENCE)
            .expect("the network worker went quiet");
        let _ = app.update(Message::Net(event));
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

fn room_of(app: &App) -> Option<&room::State> {
    match app.screen() {
        Screen::Room(r) => Some(r),
        Screen::Login(_) => None,
    }
}

fn shows_chat(r: &room::State, text: &str) -> bool {
    r.entries()
        .iter()
        .any(|e| matches!(e, room::Entry::Chat(c) if c.text == text))
}

/// Waits for the server message `wanted` on `client`.
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

#[test]
fn a_room_joined_from_the_sidebar_shows_its_chats_only_there_and_keeps_its_draft() {
    let server = server();
    let mut app = app(&server);
    interact(&mut app, |ui| {
        ui.click(selector::id(login::NAME_INPUT))
            .expect("name field");
        let _ = ui.typewrite("alice");
        ui.click("Log in").expect("the button");
    });
    let events = start_worker(&app);
    pump_until(&mut app, &events, |_| true);

    // Join "dev" from the sidebar's field.
    interact(&mut app, |ui| {
        ui.click(selector::id(JOIN_INPUT)).expect("join field");
        let _ = ui.typewrite("dev");
        ui.click("Join").expect("the join button");
    });
    pump_until(&mut app, &events, |r| r.shown_room() == Some("dev"));

    let bob = chatcore::Client::connect_plain(server.local_addr(), "bob").expect("bob logs in");
    bob.sender().join_room("dev").expect("join");
    answer(&bob, |m| matches!(m, ServerMessage::RoomJoined(_)));
    bob.sender()
        .send_chat_in("dev", "hello dev")
        .expect("chat in dev");
    bob.send_chat("hello lobby").expect("chat in the lobby");
    pump_until(&mut app, &events, |r| {
        r.room_tabs().first().is_some_and(|t| t.unread == 1)
    });
    pump_until(&mut app, &events, |r| shows_chat(r, "hello dev"));
    let r = room_of(&app).expect("in the room");
    assert!(
        !shows_chat(r, "hello lobby"),
        "the lobby's chat is not in dev"
    );
    assert!(r.users().iter().any(|u| u.name == "bob"), "bob is in dev");

    // A draft in dev survives a visit to the lobby.
    interact(&mut app, |ui| {
        ui.click(selector::id(room::COMPOSER)).expect("composer");
        let _ = ui.typewrite("half a thought");
        ui.click("# lobby").expect("the lobby's tab");
    });
    let r = room_of(&app).expect("in the room");
    assert_eq!(r.shown_room(), None);
    assert_eq!(r.input(), "");
    assert!(shows_chat(r, "hello lobby") && !shows_chat(r, "hello dev"));
    interact(&mut app, |ui| {
        ui.click("# dev").expect("dev's tab");
    });
    let r = room_of(&app).expect("in the room");
    assert_eq!(r.shown_room(), Some("dev"));
    assert_eq!(r.input(), "half a thought");
    server.stop().expect("server stops");
}
