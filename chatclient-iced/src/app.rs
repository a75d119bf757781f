//! The application: which screen is shown, the network subscription, and
//! the routing of messages between them.
//!
//! Messages flow down: a worker's event or a widget's message is routed to
//! the screen shown. Results flow up in one shape: each screen's step
//! returns `(Task<screen::Message>, Option<screen::Event>)`; the task is
//! mapped into this application's [`Message`], the event is acted on here
//! (the login screen's asks for a connection, the room's carry commands
//! for the network and audio workers).

use std::path::PathBuf;

use iced::widget::{opaque, operation, stack};
use iced::{Element, Subscription, Task, Theme};

use chatcore::protocol::ServerMessage;
use chatcore::tls::{Fingerprint, Trust};

use crate::audio;
use crate::hotkey::{self, PttKey};
use crate::lag_log::LagLog;
use crate::net::{self, Event, Handle, Login, Params, Secret, Security};
use crate::peer_text::shown;
use crate::screen::{login, room, trust};
use crate::theme;

/// What the command line decided.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server address prefilled on the login screen.
    pub server: String,
    /// With a name, the login screen is skipped.
    pub name: Option<String>,
    /// Where accepted files are saved.
    pub downloads: PathBuf,
    /// Log how far the UI lags behind arriving messages (`CHATCLIENT_FRAME_LOG=1`).
    pub frame_log: bool,
    /// The microphone and speakers, or files standing in for them
    /// (`--audio-input`, `--audio-output`) on machines without audio.
    pub audio: audio::Devices,
    /// TLS and how the server is verified (`--no-tls`, `--insecure`,
    /// `--ca-file`, `--system-roots`, `--known-servers`).
    pub security: Security,
    /// The push-to-talk key (`--ptt-key`, F8 unless changed), grabbed for
    /// the whole desktop where X11 allows and heard in the window anyway;
    /// `None` (`--ptt-key none`): no key, the button only.
    pub ptt_key: Option<PttKey>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: login::DEFAULT_SERVER.to_owned(),
            name: None,
            downloads: PathBuf::from("downloads"),
            frame_log: false,
            audio: audio::Devices::default(),
            security: Security::default(),
            ptt_key: PttKey::parse(hotkey::DEFAULT_KEY).ok(),
        }
    }
}

/// The screen shown.
#[derive(Debug)]
pub enum Screen {
    /// Logging in.
    Login(login::State),
    /// In the room (boxed: it is much larger than the login form).
    Room(Box<room::State>),
}

/// Every message of the application.
#[derive(Debug, Clone)]
pub enum Message {
    /// From the login screen.
    Login(login::Message),
    /// From the room screen.
    Room(room::Message),
    /// From the changed-certificate prompt.
    Trust(trust::Message),
    /// From the network worker.
    Net(Event),
    /// From the audio worker.
    Audio(audio::Event),
    /// From the global push-to-talk key.
    Hotkey(hotkey::Event),
    /// The window got the keyboard focus: put the cursor in the text field
    /// the screen is about (the first focus request can come before the
    /// window exists, e.g. with `--name`).
    WindowFocused,
    /// Tab (Shift+Tab) not taken by a widget: the next (previous) field,
    /// so the login form is filled in from the keyboard.
    FocusNext {
        /// Shift was held: go backwards.
        back: bool,
    },
}

/// The whole client.
#[derive(Debug)]
pub struct App {
    /// The screen shown.
    screen: Screen,
    /// Command-line settings (download directory).
    config: Config,
    /// What the network subscription connects to; `None` runs no worker.
    connection: Option<Params>,
    /// Login attempts so far, so that each starts a fresh worker.
    attempts: u64,
    /// The worker's command channel, once it said `Ready`.
    handle: Option<Handle>,
    /// Message lags, when measuring (see [`crate::lag_log`]).
    lag: Option<LagLog>,
    /// The audio worker's command channel, once it said `Ready`.
    audio: Option<audio::Handle>,
    /// What the device probe found, kept for a room created after it.
    engine: Option<audio::Event>,
    /// The audio switches of the last room shown, for the room of a new
    /// session (the audio worker outlives rooms and keeps them).
    switches: Option<room::voice::Switches>,
    /// Whether the global push-to-talk key was grabbed (`None`: not said
    /// yet), kept for a room created after it.
    ptt_global: Option<Result<(), String>>,
    /// How the connection about to log in is protected (the worker says it
    /// just before `LoggedIn`); handed to the room.
    protection: Option<Trust>,
    /// The changed-certificate prompt, drawn over the screen until the
    /// user answers it.
    prompt: Option<trust::State>,
    /// How the current (or last) worker logs in, so that a worker started
    /// again after a trust prompt on the login screen logs in the same way.
    login: Login,
    /// The registered name and session token the worker reported (memory
    /// only): a worker started again after a trust prompt in the room logs
    /// in with it instead of asking for the password.
    session: Option<(String, Secret)>,
}

impl App {
    /// The application as the command line configures it. With a name it
    /// logs in straight away.
    pub fn new(config: Config) -> (Self, Task<Message>) {
        let mut login = login::State {
            server: config.server.clone(),
            security: config.security.clone(),
            ..login::State::default()
        };
        let mut app = Self {
            screen: Screen::Login(login.clone()),
            config: config.clone(),
            connection: None,
            attempts: 0,
            handle: None,
            lag: config.frame_log.then(LagLog::default),
            audio: None,
            engine: None,
            ptt_global: None,
            switches: None,
            protection: None,
            prompt: None,
            login: Login::Guest,
            session: None,
        };
        if let Some(name) = config.name {
            login.name = name;
            let (_, event) = login.update(login::Message::Submit);
            app.screen = Screen::Login(login);
            app.on_login(event);
        }
        (app, operation::focus(login::NAME_INPUT))
    }

    /// The screen shown.
    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// What the network subscription runs, if anything.
    pub fn connection(&self) -> Option<&Params> {
        self.connection.as_ref()
    }

    /// The changed-certificate prompt, while it waits for an answer.
    pub fn prompt(&self) -> Option<&trust::State> {
        self.prompt.as_ref()
    }

    /// Acts on what the login screen reported: start a worker.
    fn on_login(&mut self, event: Option<login::Event>) {
        if let Some(login::Event::Connect { addr, name, login }) = event {
            self.session = None;
            self.login = login;
            self.start(addr, name, None, false);
        }
    }

    /// Starts a fresh network worker (see [`Params`]) that logs in as
    /// `self.login` says.
    fn start(&mut self, addr: String, name: String, accept: Option<Fingerprint>, rejoin: bool) {
        self.attempts += 1;
        self.handle = None;
        self.protection = None;
        self.connection = Some(Params {
            addr,
            name,
            attempt: self.attempts,
            security: self.config.security.clone(),
            accept,
            rejoin,
            login: self.login.clone(),
        });
    }

    /// Acts on the answer to the changed-certificate prompt.
    fn on_trust(&mut self, event: trust::Event) -> Task<Message> {
        self.prompt = None;
        match event {
            trust::Event::Trust { server, presented } => {
                let (name, rejoin, task) = match &mut self.screen {
                    Screen::Login(login) => {
                        login.connecting = true;
                        login.error = None;
                        (login.name.trim().to_owned(), false, Task::none())
                    }
                    Screen::Room(room) => {
                        let task = room.trusted(presented).map(Message::Room);
                        match &self.session {
                            // Back with our token, never a password.
                            Some((account, token)) => {
                                self.login = Login::Token(token.clone());
                                (account.clone(), true, task)
                            }
                            None => {
                                self.login = Login::Guest;
                                (room.name().to_owned(), true, task)
                            }
                        }
                    }
                };
                self.start(server, name, Some(presented), rejoin);
                task
            }
            trust::Event::Cancel { server } => {
                let why = format!(
                    "Not connected: {server} presented a new certificate and you did not \
                     trust it."
                );
                let mut login = match &self.screen {
                    Screen::Login(login) => login.clone(),
                    Screen::Room(room) => login::State {
                        server: server.clone(),
                        name: room.name().to_owned(),
                        security: self.config.security.clone(),
                        ..login::State::default()
                    },
                };
                login.failed(why);
                self.keep_switches();
                self.screen = Screen::Login(login);
                operation::focus(login::NAME_INPUT)
            }
        }
    }

    /// Applies a message.
    pub fn update(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::Login(m) => match &mut self.screen {
                Screen::Login(login) => {
                    let (task, event) = login.update(m);
                    self.on_login(event);
                    task.map(Message::Login)
                }
                Screen::Room(_) => Task::none(),
            },
            Message::Room(m) => self.in_room(|room| room.update(m)),
            Message::Trust(m) => {
                let Some(prompt) = &self.prompt else {
                    return Task::none();
                };
                let (task, event) = prompt.update(m);
                let next = match event {
                    Some(event) => self.on_trust(event),
                    None => Task::none(),
                };
                Task::batch([task.map(Message::Trust), next])
            }
            Message::Net(event) => {
                if let (Some(log), Event::Server(ServerMessage::Chat(c))) = (&mut self.lag, &event)
                {
                    let entries = match &self.screen {
                        Screen::Room(room) => room.entries().len(),
                        Screen::Login(_) => 0,
                    };
                    log.message(c.ts, entries);
                }
                self.on_net(event)
            }
            Message::Audio(audio::Event::Ready(handle)) => {
                self.audio = Some(handle);
                Task::none()
            }
            Message::Audio(event) => {
                if matches!(event, audio::Event::Probed(_)) {
                    self.engine = Some(event.clone());
                }
                self.in_room(|room| room.on_audio(event))
            }
            Message::Hotkey(hotkey::Event::Registered(result)) => {
                self.ptt_global = Some(result);
                let status = self.ptt_status();
                self.in_room(|room| {
                    room.set_ptt_key(status);
                    (Task::none(), None)
                })
            }
            Message::Hotkey(hotkey::Event::Held(held)) => self.in_room(|room| {
                room.update(room::Message::Voice(room::voice::Message::Talk(held)))
            }),
            Message::FocusNext { back: false } => operation::focus_next(),
            Message::FocusNext { back: true } => operation::focus_previous(),
            Message::WindowFocused => match &self.screen {
                Screen::Login(_) => operation::focus(login::NAME_INPUT),
                Screen::Room(room) => room.focus_task().map(Message::Room),
            },
        }
    }

    /// Remembers the room's audio switches before the room goes away.
    fn keep_switches(&mut self) {
        if let Screen::Room(room) = &self.screen {
            self.switches = Some(room.voice().call.switches());
        }
    }

    /// The push-to-talk key as the voice panel shows it.
    fn ptt_status(&self) -> room::voice::PttKeyStatus {
        room::voice::PttKeyStatus {
            key: self.config.ptt_key.as_ref().map(|k| k.label().to_owned()),
            global: self.ptt_global.clone(),
        }
    }

    /// Runs one step of the room, if it is shown, and acts on its event.
    fn in_room(
        &mut self,
        step: impl FnOnce(&mut room::State) -> (Task<room::Message>, Option<room::Event>),
    ) -> Task<Message> {
        let Screen::Room(room) = &mut self.screen else {
            return Task::none();
        };
        let (task, event) = step(room);
        if let Some(event) = event {
            self.on_room(event);
        }
        task.map(Message::Room)
    }

    /// Hands the room's commands to the workers (dropped while a worker
    /// has not said `Ready` yet).
    fn on_room(&mut self, event: room::Event) {
        for event in event.flatten() {
            self.on_room_one(event);
        }
    }

    /// Hands one command (or a pair) to the workers.
    fn on_room_one(&mut self, event: room::Event) {
        let (net, audio) = event.into_commands();
        if let (Some(c), Some(handle)) = (net, &self.handle)
            && !handle.send(c)
        {
            tracing::warn!("network worker gone; command dropped");
        }
        if let (Some(c), Some(handle)) = (audio, &self.audio)
            && !handle.send(c)
        {
            tracing::warn!("audio worker gone; command dropped");
        }
    }

    fn on_net(&mut self, event: Event) -> Task<Message> {
        match event {
            Event::Ready(handle) => {
                self.handle = Some(handle);
                Task::none()
            }
            Event::Secured(protection) => {
                self.protection = Some(protection);
                Task::none()
            }
            Event::CertificateChanged(changed) => {
                self.connection = None;
                self.handle = None;
                let why = format!(
                    "the certificate of {} has changed; waiting for your decision",
                    changed.server
                );
                self.prompt = Some(trust::State::new(*changed));
                match &mut self.screen {
                    Screen::Login(login) => {
                        login.connecting = false;
                        Task::none()
                    }
                    Screen::Room(_) => self.in_room(|room| room.stopped(why)),
                }
            }
            Event::LoggedIn(welcome) => {
                let entered = self.logged_in(&welcome);
                let secured = match self.protection.take() {
                    Some(p) => self.in_room(|room| (room.secured(p), None)),
                    None => Task::none(),
                };
                Task::batch([entered, secured])
            }
            Event::Token { name, token } => {
                self.session = Some((name, token));
                Task::none()
            }
            Event::SessionEnded(why) => {
                self.connection = None;
                self.handle = None;
                let name = match (&self.session, &self.screen) {
                    (Some((account, _)), _) => account.clone(),
                    (None, Screen::Room(room)) => room.name().to_owned(),
                    (None, Screen::Login(login)) => login.name.clone(),
                };
                self.session = None;
                let server = self.connection_server();
                let mut login = login::State {
                    server,
                    name,
                    security: self.config.security.clone(),
                    ..login::State::default()
                };
                login.failed(why);
                self.keep_switches();
                self.screen = Screen::Login(login);
                operation::focus(login::PASSWORD_INPUT)
            }
            Event::LoginFailed(why) => {
                self.connection = None;
                self.handle = None;
                match &mut self.screen {
                    Screen::Login(login) => {
                        login.failed(why);
                        Task::none()
                    }
                    // A worker started after a trust prompt in the room.
                    Screen::Room(_) => self.in_room(|room| room.stopped(why)),
                }
            }
            other => self.in_room(|room| room.on_net(other)),
        }
    }

    /// Logged in: the room (first time) or back in it.
    fn logged_in(&mut self, welcome: &chatcore::protocol::Welcome) -> Task<Message> {
        match &mut self.screen {
            Screen::Login(login) => {
                let server = login.server.trim().to_owned();
                let room =
                    room::State::new(welcome, &login.name, &server, self.config.downloads.clone());
                self.screen = Screen::Room(Box::new(room));
                let status = self.ptt_status();
                let switches = self.switches;
                let _ = self.in_room(|room| {
                    room.set_ptt_key(status);
                    if let Some(s) = switches {
                        room.restore_voice_switches(s);
                    }
                    (Task::none(), None)
                });
                let probed = match self.engine.clone() {
                    Some(probed) => self.in_room(|room| room.on_audio(probed)),
                    None => Task::none(),
                };
                Task::batch([
                    probed,
                    operation::focus(room::COMPOSER),
                    operation::snap_to_end(room::LIST),
                ])
            }
            Screen::Room(_) => self.in_room(|room| room.relogged(welcome)),
        }
    }

    /// The server the room is on (for the form shown when a session ends).
    fn connection_server(&self) -> String {
        match &self.screen {
            Screen::Room(room) => room.server().to_owned(),
            Screen::Login(login) => login.server.trim().to_owned(),
        }
    }

    /// The current screen.
    pub fn view(&self) -> Element<'_, Message> {
        let screen = match &self.screen {
            Screen::Login(login) => login.view().map(Message::Login),
            Screen::Room(room) => room.view().map(Message::Room),
        };
        match &self.prompt {
            // The prompt takes every click: the screen under it waits.
            Some(prompt) => stack![screen, opaque(prompt.view().map(Message::Trust))].into(),
            None => screen,
        }
    }

    /// The network worker, while a login is wanted.
    pub fn subscription(&self) -> Subscription<Message> {
        let net = match &self.connection {
            Some(params) => Subscription::run_with(params.clone(), net::connect).map(Message::Net),
            None => Subscription::none(),
        };
        let focus = iced::event::listen_with(|event, status, _window| match event {
            iced::Event::Window(iced::window::Event::Focused) => Some(Message::WindowFocused),
            iced::Event::Keyboard(iced::keyboard::Event::KeyPressed {
                key: iced::keyboard::Key::Named(iced::keyboard::key::Named::Tab),
                modifiers,
                ..
            }) if status == iced::event::Status::Ignored => Some(Message::FocusNext {
                back: modifiers.shift(),
            }),
            _ => None,
        });
        let audio =
            Subscription::run_with(self.config.audio.clone(), audio::run).map(Message::Audio);
        // The global grab only while push-to-talk is on (a grab takes the
        // key from every other program); the in-window key always (it
        // does nothing with push-to-talk off).
        let push_to_talk =
            matches!(&self.screen, Screen::Room(room) if room.voice().call.push_to_talk);
        let ptt = match &self.config.ptt_key {
            Some(key) if push_to_talk => Subscription::batch([
                Subscription::run_with(key.clone(), hotkey::run).map(Message::Hotkey),
                ptt_in_window(key.clone()),
            ]),
            Some(key) => ptt_in_window(key.clone()),
            None => Subscription::none(),
        };
        Subscription::batch([net, audio, focus, ptt])
    }

    /// The window title: who we are, so windows are told apart.
    pub fn title(&self) -> String {
        match &self.screen {
            Screen::Login(_) => "Chat room — log in".to_owned(),
            Screen::Room(room) => format!("Chat room — {}", shown(room.name())),
        }
    }

    /// The theme.
    pub fn theme(&self) -> Theme {
        theme::theme()
    }
}

/// The push-to-talk key pressed or let go while the window has the focus
/// ("Hold to talk" as if held with the mouse). Works without the global
/// grab (Wayland, key taken); while the grab holds, X gives the key to the
/// grab and this hears nothing.
fn ptt_in_window(key: PttKey) -> Subscription<Message> {
    use iced::keyboard::Event as Key;
    iced::event::listen_with(|event, _status, _window| match event {
        iced::Event::Keyboard(Key::KeyPressed {
            physical_key,
            modifiers,
            repeat: false,
            ..
        }) => Some((physical_key, modifiers, true)),
        iced::Event::Keyboard(Key::KeyReleased {
            physical_key,
            modifiers,
            ..
        }) => Some((physical_key, modifiers, false)),
        _ => None,
    })
    .with(key)
    .filter_map(|(key, (physical, modifiers, pressed))| {
        key.matches(&physical, modifiers, pressed)
            .then_some(Message::Room(room::Message::Voice(
                room::voice::Message::Talk(pressed),
            )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_on_the_command_line_skips_the_form_and_connects() {
        let (app, _) = App::new(Config {
            server: "127.0.0.1:16789".into(),
            name: Some("alice".into()),
            downloads: "dl".into(),
            frame_log: false,
            audio: audio::Devices::default(),
            security: Security::Plain,
            ptt_key: None,
        });
        let params = app.connection().expect("connecting straight away");
        assert_eq!(params.addr, "127.0.0.1:16789");
        assert_eq!(params.name, "alice");
    }

    #[test]
    fn without_a_name_the_form_waits_and_submit_connects() {
        let (mut app, _) = App::new(Config::default());
        assert!(app.connection().is_none());
        let _ = app.update(Message::Login(login::Message::NameChanged("bob".into())));
        let _ = app.update(Message::Login(login::Message::Submit));
        assert_eq!(app.connection().map(|p| p.name.as_str()), Some("bob"));
        assert_eq!(
            app.connection().map(|p| p.addr.as_str()),
            Some(login::DEFAULT_SERVER)
        );
    }

    #[test]
    fn a_failed_login_stops_the_worker_and_a_retry_starts_a_new_one() {
        let (mut app, _) = App::new(Config::default());
        let _ = app.update(Message::Login(login::Message::NameChanged("bob".into())));
        let _ = app.update(Message::Login(login::Message::Submit));
        let first = app.connection().cloned();
        let _ = app.update(Message::Net(Event::LoginFailed(
            "Connection refused".into(),
        )));
        assert!(app.connection().is_none());
        let _ = app.update(Message::Login(login::Message::Submit));
        let second = app.connection().cloned();
        assert!(
            second.is_some() && second != first,
            "a fresh worker identity"
        );
    }

    #[test]
    fn the_device_probe_reaches_a_room_created_after_it() {
        let (mut app, _) = App::new(Config::default());
        let why = "No microphone: no default capture device".to_owned();
        let _ = app.update(Message::Audio(audio::Event::Probed(Err(why.clone()))));
        let (tx, _rx) = std::sync::mpsc::channel();
        let _ = app.update(Message::Net(Event::Ready(Handle::from_sender(tx))));
        let _ = app.update(Message::Net(Event::LoggedIn(Box::new(welcome()))));
        let Screen::Room(room) = app.screen() else {
            panic!("in the room");
        };
        assert_eq!(
            room.voice().engine,
            crate::screen::room::voice::Engine::Unavailable(why)
        );
    }

    #[test]
    fn voice_commands_go_to_the_audio_worker() {
        let (mut app, rx, arx) = in_room_with_net_and_audio();
        let _ = app.update(Message::Room(room::Message::Voice(
            room::voice::Message::Record,
        )));
        assert_eq!(arx.try_recv().ok(), Some(audio::Command::Record));
        let _ = app.update(Message::Room(room::Message::Voice(
            room::voice::Message::Join,
        )));
        assert_eq!(
            rx.try_recv().ok(),
            Some(net::Command::Voice(net::VoiceRequest::Join))
        );
    }

    /// A logged-in app with working audio and the F8 key; the audio
    /// worker's commands arrive on the returned channel.
    fn in_room_with_audio() -> (App, std::sync::mpsc::Receiver<audio::Command>) {
        let (app, _rx, arx) = in_room_with_net_and_audio();
        (app, arx)
    }

    /// The same, with the network worker's commands too.
    fn in_room_with_net_and_audio() -> (
        App,
        std::sync::mpsc::Receiver<net::Command>,
        std::sync::mpsc::Receiver<audio::Command>,
    ) {
        let (mut app, _) = App::new(Config::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let (atx, arx) = std::sync::mpsc::channel();
        let _ = app.update(Message::Net(Event::Ready(Handle::from_sender(tx))));
        let _ = app.update(Message::Audio(audio::Event::Ready(
            audio::Handle::from_sender(atx),
        )));
        let _ = app.update(Message::Audio(audio::Event::Probed(Ok(()))));
        let _ = app.update(Message::Net(Event::LoggedIn(Box::new(welcome()))));
        (app, rx, arx)
    }

    /// Clicks what shows `label` in the rendered view and applies it.
    fn click(app: &mut App, label: &str) {
        let messages: Vec<Message> = {
            let mut ui = iced_test::simulator(app.view());
            ui.click(label)
                .unwrap_or_else(|e| panic!("no {label:?}: {e:?}"));
            ui.into_messages().collect()
        };
        assert!(!messages.is_empty(), "{label:?} is disabled");
        for m in messages {
            let _ = app.update(m);
        }
    }

    fn shows(app: &App, text: &str) -> bool {
        iced_test::simulator(app.view()).find(text).is_ok()
    }

    #[test]
    fn the_global_key_holds_hold_to_talk_only_in_push_to_talk_mode() {
        let (mut app, arx) = in_room_with_audio();
        let _ = app.update(Message::Hotkey(hotkey::Event::Registered(Ok(()))));
        assert!(shows(
            &app,
            "Hold F8 to talk when push to talk is on, in any window."
        ));
        // Voice activation: the key does nothing.
        let _ = app.update(Message::Hotkey(hotkey::Event::Held(true)));
        let _ = app.update(Message::Hotkey(hotkey::Event::Held(false)));
        assert_eq!(arx.try_recv().ok(), None);
        click(&mut app, "Push to talk: off");
        assert_eq!(arx.try_recv().ok(), Some(audio::Command::PushToTalk(true)));
        assert!(shows(&app, "Hold F8 to talk, in any window."));
        let _ = app.update(Message::Hotkey(hotkey::Event::Held(true)));
        assert_eq!(arx.try_recv().ok(), Some(audio::Command::Talk(true)));
        // The in-window key while the global one is held: one press.
        let _ = app.update(Message::Room(room::Message::Voice(
            room::voice::Message::Talk(true),
        )));
        assert_eq!(arx.try_recv().ok(), None, "a press is sent once");
        let _ = app.update(Message::Hotkey(hotkey::Event::Held(false)));
        assert_eq!(arx.try_recv().ok(), Some(audio::Command::Talk(false)));
    }

    #[test]
    fn a_failed_global_grab_is_explained_in_the_voice_panel() {
        let (mut app, _arx) = in_room_with_audio();
        assert!(shows(&app, "Hold F8 to talk when push to talk is on."));
        let why = "F8 could not be made a global key (another program holds it); it works \
                   while this window has the focus.";
        let _ = app.update(Message::Hotkey(hotkey::Event::Registered(Err(why.into()))));
        assert!(shows(&app, why));
        // A room made after the grab failed says it too.
        let (mut later, _arx) = {
            let (mut app, _) = App::new(Config::default());
            let _ = app.update(Message::Hotkey(hotkey::Event::Registered(Err(why.into()))));
            let (tx, _rx) = std::sync::mpsc::channel();
            let _ = app.update(Message::Net(Event::Ready(Handle::from_sender(tx))));
            let _ = app.update(Message::Net(Event::LoggedIn(Box::new(welcome()))));
            (app, ())
        };
        assert!(shows(&later, why));
        let _ = later.update(Message::Hotkey(hotkey::Event::Registered(Ok(()))));
        assert!(shows(
            &later,
            "Hold F8 to talk when push to talk is on, in any window."
        ));
    }

    #[test]
    fn the_switches_start_on_and_reach_the_audio_worker() {
        let (mut app, arx) = in_room_with_audio();
        let voice = |app: &App| match app.screen() {
            Screen::Room(r) => r.voice().call.clone(),
            Screen::Login(_) => panic!("in the room"),
        };
        assert!(voice(&app).noise_suppression && voice(&app).echo_cancellation);
        click(&mut app, "Noise suppression");
        assert_eq!(
            arx.try_recv().ok(),
            Some(audio::Command::NoiseSuppression(false))
        );
        click(&mut app, "Echo cancellation");
        assert_eq!(
            arx.try_recv().ok(),
            Some(audio::Command::EchoCancellation(false))
        );
        assert!(!voice(&app).noise_suppression && !voice(&app).echo_cancellation);
        click(&mut app, "Noise suppression");
        assert_eq!(
            arx.try_recv().ok(),
            Some(audio::Command::NoiseSuppression(true))
        );
    }

    #[test]
    fn the_audio_switches_outlive_a_session_that_ended() {
        let (mut app, arx) = in_room_with_audio();
        click(&mut app, "Noise suppression");
        click(&mut app, "Push to talk: off");
        assert_eq!(
            arx.try_iter().collect::<Vec<_>>(),
            [
                audio::Command::NoiseSuppression(false),
                audio::Command::PushToTalk(true)
            ]
        );
        let _ = app.update(Message::Net(Event::SessionEnded("kicked".into())));
        let (tx, _rx) = std::sync::mpsc::channel();
        let _ = app.update(Message::Net(Event::Ready(Handle::from_sender(tx))));
        let _ = app.update(Message::Net(Event::LoggedIn(Box::new(welcome()))));
        let Screen::Room(room) = app.screen() else {
            panic!("in the room again");
        };
        let call = &room.voice().call;
        assert!(!call.noise_suppression && call.echo_cancellation && call.push_to_talk);
        // The worker was told nothing new: it kept the same choices.
        assert_eq!(arx.try_recv().ok(), None);
    }

    fn welcome() -> chatcore::protocol::Welcome {
        chatcore::protocol::Welcome {
            registered: false,
            token: None,
            version: 1,
            name: "alice".into(),
            session: 1,
            users: vec![],
            history: vec![],
            heartbeat_ms: 10_000,
            max_frame: 1 << 20,
            max_text: 4096,
        }
    }

    #[test]
    fn commands_from_the_room_go_to_the_worker() {
        let (mut app, _) = App::new(Config::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = app.update(Message::Net(Event::Ready(Handle::from_sender(tx))));
        let _ = app.update(Message::Net(Event::LoggedIn(Box::new(welcome()))));
        assert_eq!(app.title(), "Chat room — alice");
        let _ = app.update(Message::Room(room::Message::InputChanged("hi".into())));
        let _ = app.update(Message::Room(room::Message::Send));
        assert_eq!(
            rx.try_recv().ok(),
            Some(net::Command::Chat {
                text: "hi".into(),
                reference: 1
            })
        );
    }
}
