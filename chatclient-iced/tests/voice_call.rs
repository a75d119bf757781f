//! Voice end to end, headless: a real `chatcore` server with its voice port
//! on loopback, two whole clients (`App` with the real network worker and
//! the real audio worker, fed to `App::update` as the iced subscriptions
//! would), WAV files standing in for the microphones and a null output for
//! the speakers (`--audio-input` / `--audio-output null`).
//!
//! Alice speaks the committed speech fixture; bob's UI state shows her as
//! speaking. Then alice records a voice message and sends it; bob's card
//! gets it and its Play button downloads and plays it.
//!
//! No timed assertions: every wait is for a state, bounded by [`PATIENCE`]
//! only so that a broken build fails instead of hanging.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::Duration;

use chatclient_iced::app::Screen;
use chatclient_iced::audio::{self, AudioIn, AudioOut, Devices};
use chatclient_iced::net;
use chatclient_iced::screen::room::{self, files::FileState, voice};
use chatclient_iced::voice_engine::audio::SAMPLE_RATE;
use chatclient_iced::voice_engine::audio::wav::write_wav;
use chatclient_iced::{App, Config, Message};
use chatcore::{RunningServer, Server};
use iced::futures::StreamExt;
use iced::futures::executor::block_on;
use iced_test::simulator;

/// Bound on waiting for one event; never a measure of speed.
const PATIENCE: Duration = Duration::from_secs(30);

fn server() -> RunningServer {
    Server::builder()
        .listen("127.0.0.1:0".parse().expect("addr"))
        .voice_listen(Some("127.0.0.1:0".parse().expect("addr")))
        .build()
        .expect("server builds")
        .spawn()
        .expect("server starts")
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../chatvoice/tests/fixtures/speech48k.wav")
}

/// A client logged in as `name` with its two workers running; their events
/// arrive on the returned channel as application messages.
fn client(
    server: &RunningServer,
    name: &str,
    input: PathBuf,
    dir: &Path,
) -> (App, Receiver<Message>) {
    let devices = Devices {
        input: AudioIn::Wav(input),
        output: AudioOut::Null,
    };
    let (app, _) = App::new(Config {
        server: server.local_addr().to_string(),
        name: Some(name.to_owned()),
        downloads: dir.join(format!("downloads-{name}")),
        frame_log: false,
        audio: devices.clone(),
        security: chatclient_iced::net::Security::Plain,
        ptt_key: None,
    });
    let params = app.connection().expect("connecting").clone();
    let (tx, rx) = channel();
    let mut net_events = net::connect(&params);
    let net_tx = tx.clone();
    thread::spawn(move || {
        while let Some(e) = block_on(net_events.next()) {
            if net_tx.send(Message::Net(e)).is_err() {
                break;
            }
        }
    });
    let mut audio_events = audio::run(&devices);
    thread::spawn(move || {
        while let Some(e) = block_on(audio_events.next()) {
            if tx.send(Message::Audio(e)).is_err() {
                break;
            }
        }
    });
    (app, rx)
}

fn room_of(app: &App) -> Option<&room::State> {
    match app.screen() {
        Screen::Room(r) => Some(r),
        Screen::Login(_) => None,
    }
}

fn voice_of(app: &App) -> Option<&voice::Voice> {
    room_of(app).map(room::State::voice)
}

/// Feeds the workers' events to the app until `done` holds.
fn pump_until(app: &mut App, events: &Receiver<Message>, what: &str, done: impl Fn(&App) -> bool) {
    while !done(app) {
        let m = events
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("gave up waiting for {what}"));
        let _ = app.update(m);
    }
}

fn click(app: &mut App, m: voice::Message) {
    let _ = app.update(Message::Room(room::Message::Voice(m)));
}

/// Clicks the button labelled `label` in the rendered view (iced_test's
/// simulator) and applies what it produced; fails if it is not there.
fn press(app: &mut App, label: &str) {
    let messages: Vec<Message> = {
        let mut ui = simulator(app.view());
        ui.click(label)
            .unwrap_or_else(|e| panic!("no {label:?} button: {e:?}"));
        ui.into_messages().collect()
    };
    assert!(!messages.is_empty(), "{label:?} is disabled");
    for m in messages {
        let _ = app.update(m);
    }
}

/// Whether the rendered view shows `text`.
fn shows(app: &App, text: &str) -> bool {
    simulator(app.view()).find(text).is_ok()
}

#[test]
fn bob_sees_alice_speaking_and_plays_her_voice_message() {
    let srv = server();
    let dir = std::env::temp_dir().join(format!("chatclient-iced-voice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    let quiet = dir.join("quiet.wav");
    write_wav(&quiet, &vec![0; SAMPLE_RATE as usize]).expect("silent wav");

    let (mut alice, alice_rx) = client(&srv, "alice", fixture(), &dir);
    let (mut bob, bob_rx) = client(&srv, "bob", quiet, &dir);
    let ready = |app: &App| voice_of(app).is_some_and(voice::Voice::ready);
    pump_until(
        &mut alice,
        &alice_rx,
        "alice in the room, audio ready",
        ready,
    );
    pump_until(&mut bob, &bob_rx, "bob in the room, audio ready", ready);

    let live =
        |app: &App| voice_of(app).is_some_and(|v| matches!(v.call.stage, voice::Stage::Live(_)));
    press(&mut bob, "Join call");
    pump_until(&mut bob, &bob_rx, "bob in the call", live);
    assert!(shows(&bob, "You are in the call, voice over UDP."));
    press(&mut alice, "Join call");
    pump_until(&mut alice, &alice_rx, "alice in the call", live);

    // Alice's fixture plays in a loop; bob's engine decodes it and the
    // speaking indicator lights up for her session.
    let alice_session = room_of(&bob)
        .and_then(|r| r.users().iter().find(|u| u.name == "alice"))
        .map(|u| u.session)
        .expect("bob lists alice");
    pump_until(&mut bob, &bob_rx, "bob hearing alice", |app| {
        voice_of(app).is_some_and(|v| v.call.speaking.contains(&alice_session))
    });
    // Bob is not speaking (silent input), so the one mark is alice's.
    assert!(shows(&bob, "♪ speaking"), "bob's user list marks alice");
    // Her own VAD says she speaks too.
    pump_until(&mut alice, &alice_rx, "alice's own speaking", |app| {
        voice_of(app).is_some_and(|v| v.call.speaking.contains(&alice_session))
    });

    // Mute reaches the server: bob's list shows alice muted.
    press(&mut alice, "Mute");
    pump_until(&mut bob, &bob_rx, "alice muted in bob's list", |app| {
        voice_of(app)
            .and_then(|v| v.member(alice_session))
            .is_some_and(|m| m.muted)
    });

    // A voice message: record, stop, send.
    click(&mut alice, voice::Message::Leave);
    click(&mut alice, voice::Message::Record);
    pump_until(&mut alice, &alice_rx, "a second recorded", |app| {
        voice_of(app).is_some_and(|v| {
            matches!(v.recorder.state, voice::Recording::Recording(d) if d >= Duration::from_secs(1))
        })
    });
    click(&mut alice, voice::Message::StopRecording);
    pump_until(&mut alice, &alice_rx, "the recording finished", |app| {
        voice_of(app).is_some_and(|v| matches!(v.recorder.state, voice::Recording::Recorded { .. }))
    });
    click(&mut alice, voice::Message::Send);

    // Bob gets a voice card; Play downloads it, then it plays.
    let voice_card = |app: &App| {
        room_of(app).and_then(|r| {
            r.entries().iter().find_map(|e| match e {
                room::Entry::File(id) => r
                    .files()
                    .get(*id)
                    .filter(|c| c.kind == chatcore::client::FileKind::Voice)
                    .map(|c| c.id),
                _ => None,
            })
        })
    };
    pump_until(&mut bob, &bob_rx, "the voice offer", |app| {
        voice_card(app).is_some()
    });
    let card = voice_card(&bob).expect("voice card");
    click(&mut bob, voice::Message::Play(card));
    pump_until(&mut bob, &bob_rx, "the message playing", |app| {
        voice_of(app).is_some_and(|v| v.player.state == voice::Playback::Playing(card))
    });
    let saved = room_of(&bob)
        .and_then(|r| r.files().get(card))
        .map(|c| matches!(c.state, FileState::Saved(_)));
    assert_eq!(saved, Some(true), "played from the downloaded file");
    let _ = std::fs::remove_dir_all(&dir);
}
