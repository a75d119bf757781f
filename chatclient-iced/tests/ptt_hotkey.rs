//! The global push-to-talk key, live: an X server of the test's own
//! (Xvfb), the key pressed and let go through XTest (xdotool), as a user
//! would while another window has the focus, and a whole client in a call
//! on a real `chatcore` server (the real network and audio workers, a
//! silent WAV file for the microphone, a null output).
//!
//! In push-to-talk mode the engine sends (and reports our own session as
//! speaking) exactly while its push-to-talk flag is set: with a silent
//! microphone the voice detector plays no part, so our own `Speaking`
//! event going on and off is the engine's flag going true and false.
//!
//! Without an X server, and with the key already grabbed, the grab fails
//! with the sentence the window shows.
//!
//! The test runs itself again as child processes, with no `DISPLAY` and
//! with `DISPLAY` pointing at its Xvfb (the environment of the running
//! test process is not ours to change). It skips, saying so, only when Xvfb or xdotool is not
//! installed. No timed assertions: every wait is for a state, bounded by
//! [`PATIENCE`] only so that a broken build fails instead of hanging.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread;
use std::time::Duration;

use chatclient_iced::app::Screen;
use chatclient_iced::audio::{self, AudioIn, AudioOut, Devices};
use chatclient_iced::hotkey::{self, PttKey};
use chatclient_iced::net;
use chatclient_iced::screen::room::voice;
use chatclient_iced::voice_engine::audio::SAMPLE_RATE;
use chatclient_iced::voice_engine::audio::wav::write_wav;
use chatclient_iced::{App, Config, Message};
use chatcore::{RunningServer, Server};
use iced::futures::executor::block_on;
use iced::futures::{Stream, StreamExt};

/// Bound on waiting for one event; never a measure of speed.
const PATIENCE: Duration = Duration::from_secs(30);
/// Set in the child process: the X display is ready, run the body.
const CHILD: &str = "CHAT_PTT_LIVE_CHILD";
/// The test's name, to run just it in the child.
const NAME: &str = "the_global_key_held_and_let_go_turns_the_engines_push_to_talk_on_and_off";

#[test]
fn the_global_key_held_and_let_go_turns_the_engines_push_to_talk_on_and_off() {
    match std::env::var(CHILD).as_deref() {
        Ok("live") => return live(),
        Ok("no-x") => return no_x(),
        _ => {}
    }
    for tool in ["Xvfb", "xdotool"] {
        if !on_path(tool) {
            eprintln!(
                "SKIPPED: {tool} is not installed (apt-get install xvfb xdotool); the global \
                 push-to-talk key is not tested"
            );
            return;
        }
    }
    // Without any X server: the window must say the key is not global.
    run_child("no-x", None);
    let (mut xvfb, display) = start_xvfb();
    let result = std::panic::catch_unwind(|| run_child("live", Some(&display)));
    // Stop the X server we started, whatever happened.
    let _ = xvfb.kill();
    let _ = xvfb.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Runs this test again as a child in `mode`, with `display` as DISPLAY
/// (none at all without), and fails if the child fails.
fn run_child(mode: &str, display: Option<&str>) {
    let mut child = Command::new(std::env::current_exe().expect("the test binary"));
    child
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        .env_remove("WAYLAND_DISPLAY");
    match display {
        Some(d) => child.env("DISPLAY", d),
        None => child.env_remove("DISPLAY"),
    };
    let out = child.output().expect("the test ran again as a child");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the {mode} child failed: {}",
        out.status
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the {mode} child ran the test"
    );
}

/// The first thing the global key says.
fn first_event(key: &PttKey) -> hotkey::Event {
    let (tx, rx) = channel();
    forward(hotkey::run(key), tx, Message::Hotkey);
    match rx.recv_timeout(PATIENCE) {
        Ok(Message::Hotkey(e)) => e,
        other => panic!("no word from the global key: {other:?}"),
    }
}

/// No X server (Wayland without XWayland, a console): the grab is refused
/// with a sentence that says the key still works in the window.
fn no_x() {
    let key = PttKey::parse("F8").expect("F8");
    let hotkey::Event::Registered(Err(why)) = first_event(&key) else {
        panic!("a grab without an X server did not fail");
    };
    println!("without X11: {why}");
    assert!(why.contains("needs X11"), "{why}");
    assert!(
        why.contains("F8 works while this window has the focus"),
        "{why}"
    );
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Starts Xvfb on a display number it picks itself (`-displayfd`) and
/// returns it with `:N`.
fn start_xvfb() -> (Child, String) {
    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-nolisten",
            "tcp",
            "-screen",
            "0",
            "640x480x24",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb starts");
    let mut line = String::new();
    let stdout = xvfb.stdout.take().expect("Xvfb's stdout");
    let read = BufReader::new(stdout).read_line(&mut line);
    match read {
        Ok(n) if n > 0 && line.trim().parse::<u32>().is_ok() => {}
        _ => {
            let _ = xvfb.kill();
            let _ = xvfb.wait();
            panic!("Xvfb did not say its display: {line:?}");
        }
    }
    (xvfb, format!(":{}", line.trim()))
}

/// Presses (`keydown`) or releases (`keyup`) a key on our display.
fn xdotool(action: &str, key: &str) {
    let status = Command::new("xdotool")
        .args([action, key])
        .status()
        .expect("xdotool runs");
    assert!(status.success(), "xdotool {action} {key}: {status}");
}

fn server() -> RunningServer {
    Server::builder()
        .listen("127.0.0.1:0".parse().expect("addr"))
        .voice_listen(Some("127.0.0.1:0".parse().expect("addr")))
        .build()
        .expect("server builds")
        .spawn()
        .expect("server starts")
}

/// Forwards a worker's events to the app's channel on a thread.
fn forward<S, T>(mut events: S, tx: Sender<Message>, wrap: fn(T) -> Message)
where
    S: Stream<Item = T> + Unpin + Send + 'static,
    T: Send + 'static,
{
    thread::spawn(move || {
        while let Some(e) = block_on(events.next()) {
            if tx.send(wrap(e)).is_err() {
                break;
            }
        }
    });
}

/// A client logged in as `name` with its workers and the global key
/// running, as the window's subscriptions would run them.
fn client(
    server: &RunningServer,
    key: &PttKey,
    input: PathBuf,
    dir: &Path,
) -> (App, Receiver<Message>) {
    let devices = Devices {
        input: AudioIn::Wav(input),
        output: AudioOut::Null,
    };
    let (app, _) = App::new(Config {
        server: server.local_addr().to_string(),
        name: Some("alice".to_owned()),
        downloads: dir.join("downloads"),
        frame_log: false,
        audio: devices.clone(),
        security: net::Security::Plain,
        ptt_key: Some(key.clone()),
    });
    let params = app.connection().expect("connecting").clone();
    let (tx, rx) = channel();
    forward(net::connect(&params), tx.clone(), Message::Net);
    forward(audio::run(&devices), tx.clone(), Message::Audio);
    forward(hotkey::run(key), tx, Message::Hotkey);
    (app, rx)
}

fn voice_of(app: &App) -> Option<&voice::Voice> {
    match app.screen() {
        Screen::Room(r) => Some(r.voice()),
        Screen::Login(_) => None,
    }
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
    let _ = app.update(Message::Room(
        chatclient_iced::screen::room::Message::Voice(m),
    ));
}

/// Whether the engine reports our own session as sending.
fn sending(app: &App) -> bool {
    voice_of(app).is_some_and(|v| {
        v.call
            .path
            .as_ref()
            .is_some_and(|p| v.call.speaking.contains(&p.session))
    })
}

fn live() {
    let srv = server();
    let dir = std::env::temp_dir().join(format!("chatclient-iced-ptt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    let quiet = dir.join("quiet.wav");
    write_wav(&quiet, &vec![0; SAMPLE_RATE as usize]).expect("silent wav");
    let key = PttKey::parse("F8").expect("F8");

    let (mut alice, rx) = client(&srv, &key, quiet, &dir);
    pump_until(&mut alice, &rx, "audio ready and the key grabbed", |app| {
        voice_of(app).is_some_and(|v| v.ready() && v.ptt_key.global.is_some())
    });
    let global = voice_of(&alice).and_then(|v| v.ptt_key.global.clone());
    assert_eq!(global, Some(Ok(())), "F8 grabbed on our own X server");

    // Another program holding F8 (here: a second grab of ours) makes the
    // grab fail with a sentence saying so.
    let hotkey::Event::Registered(Err(why)) = first_event(&key) else {
        panic!("a second grab of F8 did not fail");
    };
    println!("key taken: {why}");
    assert!(why.contains("another program holds it"), "{why}");

    click(&mut alice, voice::Message::TogglePushToTalk);
    click(&mut alice, voice::Message::Join);
    pump_until(&mut alice, &rx, "in the call", |app| {
        voice_of(app).is_some_and(|v| matches!(v.call.stage, voice::Stage::Live(_)))
    });
    assert!(!sending(&alice), "push-to-talk, key up: nothing sent");

    for round in 0..2 {
        xdotool("keydown", "F8");
        pump_until(
            &mut alice,
            &rx,
            "the engine sending while F8 is held",
            sending,
        );
        assert!(voice_of(&alice).is_some_and(|v| v.call.talking));
        xdotool("keyup", "F8");
        pump_until(
            &mut alice,
            &rx,
            "the engine silent once F8 is let go",
            |app| !sending(app),
        );
        println!("round {round}: F8 down → sending, F8 up → silent");
    }
    click(&mut alice, voice::Message::Leave);
    drop(alice);
    srv.stop().expect("server stops");
    let _ = std::fs::remove_dir_all(&dir);
}
