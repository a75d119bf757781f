//! The harness of the desktop client's tests against a real server: a
//! server on a free loopback port, the app with its real network worker
//! pumped here as the iced subscription would, and the simulator.
#![allow(dead_code)] // each test file uses its own part

use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::Duration;

use chatclient_iced::app::Screen;
use chatclient_iced::net::{self, Event, Security};
use chatclient_iced::screen::room;
use chatclient_iced::{App, Config, Message};
use chatcore::protocol::ServerMessage;
use chatcore::{RunningServer, Server, ServerConfig};
use iced::futures::StreamExt;
use iced::futures::executor::block_on;
use iced_test::simulator;

/// Generous bound on waiting for one event, so a broken build fails
/// instead of hanging; never a measure of speed.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A real server without a store, on a free loopback port.
pub fn server() -> RunningServer {
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

pub fn app(server: &RunningServer, tag: &str) -> App {
    App::new(Config {
        server: server.local_addr().to_string(),
        name: None,
        downloads: std::env::temp_dir().join(format!("chatclient-iced-{tag}-downloads")),
        frame_log: false,
        audio: Default::default(),
        security: Security::Plain,
        ptt_key: None,
    })
    .0
}

/// Starts the worker the app's subscription asks for; its events on a channel.
pub fn start_worker(app: &App) -> Receiver<Event> {
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
pub fn pump_until(app: &mut App, events: &Receiver<Event>, done: impl Fn(&room::State) -> bool) {
    while !room_of(app).is_some_and(&done) {
        let event = events
            .recv_timeout(PATIENCE)
            .expect("the network worker went quiet");
        let _ = app.update(Message::Net(event));
    }
}

/// Runs the simulator over the current view and applies what it produced.
pub fn interact(app: &mut App, f: impl FnOnce(&mut iced_test::Simulator<'_, Message>)) {
    let messages: Vec<Message> = {
        let mut ui = simulator(app.view());
        f(&mut ui);
        ui.into_messages().collect()
    };
    for m in messages {
        let _ = app.update(m);
    }
}

pub fn room_of(app: &App) -> Option<&room::State> {
    match app.screen() {
        Screen::Room(r) => Some(r),
        Screen::Login(_) => None,
    }
}

pub fn shows_chat(r: &room::State, text: &str) -> bool {
    r.entries()
        .iter()
        .any(|e| matches!(e, room::Entry::Chat(c) if c.text == text))
}

/// Waits for the server message `wanted` on `client`.
pub fn answer(client: &chatcore::Client, wanted: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
    loop {
        match client.recv_timeout(PATIENCE).expect("the connection") {
            Some(chatcore::Event::Message(m)) if wanted(&m) => return m,
            Some(chatcore::Event::Message(ServerMessage::Error(e))) => panic!("refused: {e:?}"),
            Some(chatcore::Event::Closed(why)) => panic!("closed: {why}"),
            Some(_) => {}
            None => panic!("no answer from the server"),
        }
    }
}
