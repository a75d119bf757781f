//! Direct messages in the desktop client against a real server: a `dm`
//! shows in its conversation only (not in the room) and counts as unread
//! in the sidebar until the conversation is opened; a reply typed there
//! reaches the other member as a `dm`.
//!
//! The network worker is the real one; its stream is pumped here and fed
//! to `App::update`, as the iced subscription would. The other member is a
//! plain `chatcore::Client`.

use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::Duration;

use chatclient_iced::app::Screen;
use chatclient_iced::net::{self, Event, Security};
use chatclient_iced::screen::room::dms::DM_COMPOSER;
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
        downloads: std::env::temp_dir().join("chatclient-iced-dms-downloads"),
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
fn answer(client: &chatcore::Client, wanted: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
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

#[test]
fn a_dm_shows_in_its_conversation_only_and_counts_unread_until_opened() {
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

    let bob = chatcore::Client::connect_plain(server.local_addr(), "bob").expect("bob logs in");
    bob.sender().send_dm("alice", "psst").expect("dm");
    bob.send_chat("hello lobby").expect("chat in the lobby");
    pump_until(&mut app, &events, |r| shows_chat(r, "hello lobby"));
    pump_until(&mut app, &events, |r| {
        r.dm_tabs().iter().any(|t| t.name == "bob" && t.unread == 1)
    });
    let r = room_of(&app).expect("in the room");
    assert!(!shows_chat(r, "psst"), "the dm is not in the room");
    assert_eq!(r.shown_dm(), None);
    assert_eq!(r.dm_lines("bob").len(), 1);

    // Opened from the sidebar: shown, no longer counted.
    interact(&mut app, |ui| {
        ui.click("@ bob").expect("bob's conversation");
    });
    let r = room_of(&app).expect("in the room");
    assert_eq!(r.shown_dm(), Some("bob"));
    assert!(r.dm_tabs().iter().all(|t| t.unread == 0));

    // A reply typed in its pane is a dm to bob, shown once.
    interact(&mut app, |ui| {
        ui.click(selector::id(DM_COMPOSER)).expect("dm composer");
        let _ = ui.typewrite("hi bob");
    });
    // Send is enabled in the view drawn with the draft.
    interact(&mut app, |ui| {
        ui.click("Send").expect("send");
    });
    // Bob's own copy of "psst" comes first.
    let got = answer(
        &bob,
        |m| matches!(m, ServerMessage::Dm(d) if d.from == "alice"),
    );
    let ServerMessage::Dm(d) = got else {
        unreachable!("only a dm is answered")
    };
    assert_eq!((d.from.as_str(), d.text.as_str()), ("alice", "hi bob"));
    pump_until(&mut app, &events, |r| r.dm_lines("bob").len() == 2);
    let r = room_of(&app).expect("in the room");
    assert!(
        r.dm_lines("bob")
            .iter()
            .any(|l| l.text == "hi bob" && l.own)
    );
    assert!(!shows_chat(r, "hi bob"));
    server.stop().expect("server stops");
}
