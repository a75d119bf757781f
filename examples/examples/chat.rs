//! `chat`: the terminal client. Usable by hand and from scripts.
//!
//! ```text
//! cargo run -p chat-examples --example chat -- --server 127.0.0.1:6789 --name alice
//! ```
//!
//! It speaks TLS and trusts the server on first use: the first connection
//! prints the certificate fingerprint it remembered (in
//! `~/.config/chat/known_servers`, or `--known-servers FILE`); a changed
//! certificate is refused with both fingerprints and exit code 4.
//! `--ca-file FILE` / `--system-roots` verify against CAs instead,
//! `--insecure` verifies nothing, `--no-tls` speaks plain TCP.
//!
//! Each line on stdin is sent to the current room; `/who`, `/help` and
//! `/quit` are commands (`//text` sends `/text`). End of input quits like
//! `/quit`.
//! Stdout gets one line per event (see `chat_examples::render`):
//!
//! ```text
//! * you are alice
//! * 2 online: alice, bob
//! * no recent messages
//! [12:34:56Z] bob: hello
//! [12:34:57Z] *** server: maintenance at noon
//! * carol joined (3 online)
//! * "dave, eve" joined (4 online)
//! * carol left (quit) (2 online)
//! ! error rate_limited: too many messages; slow down
//! ```
//!
//! Rooms (docs/protocol.md section 23): every login lands in the default
//! room (`#lobby`, or the name `/rooms` reports for it); `/rooms` lists
//! every room with how many are in it and its topic; `/join NAME` enters
//! room NAME (created if new) and makes it the **current room**, where
//! typed lines go; `/room NAME` switches among the rooms joined (`/room
//! lobby` goes back to the default room; `/room` alone lists them, the
//! current one marked); `/part [NAME]` leaves NAME or the current room
//! (then the default room is current again); `/topic TEXT` sets the current
//! room's topic, `/topic` shows it; `/who` and `/history` are about the
//! current room. A leading `#` in a name is optional. Each switch prints
//! `* current room: #dev`. Lines of a named room carry its name, those of
//! the default room none:
//!
//! ```text
//! * you are in #dev (2 here: alice, bob)
//! * topic: ship it
//! [12:35:01Z] #dev bob: tests are green
//! * carol joined #dev
//! * bob set the topic of #dev: release friday
//! [12:35:09Z] alice: (a line of the default room)
//! ```
//!
//! After a reconnect the client joins its rooms again (the current room
//! stays current) and prints the chats of each that it had not printed.
//!
//! Files: `/send PATH` offers a file to the room; others see
//! `* alice offers report.pdf (1.2 MB) — /accept 7 or /decline 7`.
//! `/accept 7` downloads it into `--downloads DIR` (default `downloads`,
//! created when first needed) and prints
//! `* saved report.pdf to downloads/report.pdf (sha256 ok)`; `/decline 7`
//! says no; `/cancel 7` stops an upload or a download (accepting a
//! cancelled download again resumes it); `/files` lists what is on offer.
//! `/history [N]` shows N (default 20) messages older than the oldest one
//! shown, asked from the server page by page (docs/protocol.md 21.3).
//!
//! Reconnecting: when the connection is lost (the server restarts or shuts
//! down, the network fails) the client prints
//! `* connection lost: WHY; reconnecting in 1s` and tries again after 1 s,
//! then waits twice as long after each failure, at most 30 s
//! (`* reconnect failed: WHY; retrying in 4s`), for ever, until it is back
//! or the user types `/quit` or ends the input. Lines typed meanwhile are
//! refused with `* not connected; not sent`, never queued. Back in, it
//! prints `* reconnected; you are alice` and who is online, then exactly
//! the chats it missed, each once (docs/protocol.md 21.2: it sends the id
//! of the last chat it received, and prints no chat whose id it already
//! printed; live chats that beat the resume frame are held until it
//! comes, so the transcript stays in order):
//!
//! ```text
//! * 3 messages missed while away:
//! [12:40:01Z] bob: ...
//! ```
//!
//! If more were missed than the server sends at once (its `gap`), the
//! newest are printed under `* 500+ messages missed while away; the newest
//! 500:`, and `/history` then pages back from the oldest of them through
//! the rest (it does not page by itself: a long absence could mean
//! thousands of lines). A server that forgot its history (restarted without
//! a store) is said so, and its recent messages are shown instead.
//! It logs in again with the name first asked for (a guest that got
//! `alice(1)` gets `alice` back once it is free; after `/register`, the
//! registered name), and for a registered name with the session token (of
//! the password login, `/register` or a password change), not the
//! password; a refused token falls back to the password when it is known
//! (`--password-env`, `/register`). It gives up (exit 1) when the server
//! refuses the login for good (a wrong password, a name now registered, a
//! version it does not speak; exit 4 for a changed certificate) and after
//! being kicked. `--no-reconnect` exits 1 at the first loss instead.
//! Progress is a bar on stderr when stdout and stderr are terminals, and
//! otherwise a line like `* 7: 12.0 of 64.0 MiB` at most once a second
//! or per tenth of the file (see `chat_examples::files`).
//!
//! Names that could be misread (`"dave, eve"`, `"* server"`) are quoted, a
//! message from the server itself (session 0) is marked `*** server`, and
//! control, format, zero-width, tag and bidi characters in names, texts and
//! file names are shown as `<U+XXXX>` (see `chat_examples::text`).
//!
//! Accounts: `--password-env VAR` logs in to a registered name with the
//! password in the environment variable VAR (never on the command line,
//! where other users could read it). `--register` (with `--password-env`)
//! logs in as a guest and registers the name with that password; `/register`
//! registers the current name with it; `/register PASSWORD` takes it from the line
//! instead, and warns that it was shown on screen. A wrong password is
//! `! error auth_failed: ...`; repeated failures `auth_throttled` with the
//! wait.
//!
//! Without `--name` the name is asked for on stdin (prompt on stderr). A name
//! the server refuses is reported (`! error name_empty: the name is empty`)
//! and asked again if stdin is a terminal; otherwise the program exits.
//! Colour is used only when stdout is a terminal (and `NO_COLOR` is unset).
//!
//! Exit status: 0 after `/quit` or end of input; 1 when the first
//! connection fails, the server kicks us, a reconnect is refused for good,
//! or (with `--no-reconnect`) the connection is lost; 2 for a bad command
//! line; 3 when the name is refused and stdin is not a terminal (or the
//! name prompt hits end of input); 4 when the server's TLS certificate is
//! refused (changed since it was remembered, or not verified by the CA) or
//! the TLS flags are unusable.

use std::collections::BTreeMap;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use chat_examples::files::FileView;
use chat_examples::progress::Progress;
use chat_examples::render::{RoomView, Style, emit};
use chat_examples::rooms::{Rooms, Target};
use chat_examples::text::{one_line, show_name};
use chat_examples::tls::{TlsArgs, trust_notice};
use chatcore::client::{ClientSender, FileKind, OfferTo, TransferEvent};
use chatcore::protocol::{
    Chat, ClientMessage, Delete, ErrorCode, History, LeaveReason, Moderate, ServerMessage, SetRole,
};
use chatcore::tls::{ClientTls, TlsError};
use chatcore::{Client, ClientError, Credentials, Event};
use clap::Parser;

/// Connection failed or was closed by the server.
const EXIT_CLOSED: u8 = 1;
/// No acceptable name.
const EXIT_NAME: u8 = 3;
/// The server's TLS certificate is not trusted (changed since it was
/// remembered, or does not verify), or the TLS settings are unusable.
const EXIT_TLS: u8 = 4;
/// How long `/quit` waits for the server to close after our `bye`.
const QUIT_LINGER: Duration = Duration::from_secs(2);
/// Inputs buffered between the reading threads and the main loop; when full
/// the readers wait, so a flood from the server is pushed back over TCP
/// instead of piling up in memory.
const INPUT_QUEUE: usize = 1024;
/// The first wait before reconnecting; it doubles after each failed try.
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two tries: a server down for an hour is
/// tried twice a minute, not hammered.
const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// How long live chats are held back after a reconnect while the resume
/// frame (the chats missed) has not come: when the server reads it from
/// its store, live chats can arrive first (protocol.md 21.2), and printing
/// them first would put the transcript out of order. A server that never
/// answers the resume gets the held chats printed after this.
const RESUME_WAIT: Duration = Duration::from_secs(10);

/// Terminal chat client.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Server address (host:port).
    #[arg(long, default_value = "127.0.0.1:6789")]
    server: String,
    /// Name to log in with; asked for on stdin if absent.
    #[arg(long)]
    name: Option<String>,
    /// Directory accepted files are saved in (created when first needed).
    #[arg(long, default_value = "downloads")]
    downloads: PathBuf,
    /// Environment variable holding the password of a registered name
    /// (read from the environment, never from the command line).
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
    /// Log in as a guest and register the name with the --password-env
    /// password (the first login of a new account).
    #[arg(long, requires = "password_env")]
    register: bool,
    /// Exit (status 1) when the connection is lost instead of reconnecting.
    #[arg(long)]
    no_reconnect: bool,
    /// How to connect (TLS and its verification).
    #[command(flatten)]
    tls: TlsArgs,
}

/// Everything the main loop waits for, from the reading threads and the
/// reconnecting one.
enum Input {
    /// A line typed (without its line ending).
    Line(String),
    /// End of stdin (or a read error, with its text).
    Eof(Option<String>),
    /// Something from the server.
    Net(Event),
    /// A line to print from a helper thread (a `/send` that failed, a
    /// reconnect that failed and will be tried again).
    Notice(String),
    /// The reconnecting thread is logged in again, with the login it used
    /// (a refused token may have been dropped on the way).
    Reconnected(Box<Client>, Login),
    /// The reconnecting thread gave up for good: the line saying why and
    /// the exit status.
    GaveUp(String, u8),
}

/// What a reconnect needs to log in again as the same user.
#[derive(Debug, Clone)]
struct Login {
    /// Server address, as given.
    server: String,
    /// How to connect (the same trust as the first connection: a changed
    /// certificate is still refused).
    tls: ClientTls,
    /// The name asked for at the start, not the welcome's `alice(1)`: a
    /// reconnect asks for it again, so the user gets it back once it is
    /// free. After `/register`, the registered name.
    name: String,
    /// The password, while known (`--password-env`, or the one `/register`
    /// used): the fallback when the token is refused.
    password: Option<String>,
    /// The latest session token (a password login's welcome, `registered`,
    /// `password_changed`): what a reconnect presents instead of the
    /// password, so the password need not be checked (or known) again.
    token: Option<String>,
}

impl Login {
    /// The credentials for the next login: the token if there is one, else
    /// the password, else none (a guest).
    fn credentials(&self) -> Credentials {
        match (&self.token, &self.password) {
            (Some(t), _) => Credentials::Token(t.clone()),
            (None, Some(p)) => Credentials::Password(p.clone()),
            (None, None) => Credentials::Guest,
        }
    }
}

/// Why one reconnect attempt failed.
enum Attempt {
    /// Worth trying again later (the server is down, busy, throttling).
    Retry(String),
    /// Trying again cannot help: the line to print and the exit status.
    Fatal(String, u8),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let interactive = io::stdin().is_terminal();
    let style = Style::detect();
    let (client, login) = match login(&args, interactive, style) {
        Ok(logged_in) => logged_in,
        Err(code) => return ExitCode::from(code),
    };
    let room = RoomView::new(client.welcome(), style);
    for line in room.welcome_lines(client.welcome(), &login.name) {
        emit(&line);
    }
    if interactive {
        emit(&style.notice("* type a message and press Enter; /help for commands"));
    }
    let (tx, inputs) = sync_channel(INPUT_QUEUE);
    let mut app = App {
        sender: Some(client.sender()),
        printed: client.welcome().history.iter().map(|c| c.id).max(),
        resume: None,
        room,
        rooms: Rooms::new(),
        files: FileView::new(style, Progress::detect()),
        login,
        registering: None,
        style,
        tx: tx.clone(),
        reconnect: !args.no_reconnect,
    };
    if args.register {
        match env_password(&args) {
            Some(password) => app.register(password),
            None => emit(&style.error("! --register: the --password-env variable is not set")),
        }
    }
    if let Err(e) = spawn_net(client, tx.clone()).and_then(|()| spawn_stdin(tx)) {
        eprintln!("chat: cannot start threads: {e}");
        return ExitCode::from(EXIT_CLOSED);
    }

    loop {
        // One blocking receive per input: no polling, no timers while idle
        // (only while the chats missed during a reconnect are awaited).
        let input = match app.resume.as_ref().map(|r| r.since) {
            None => inputs.recv().ok(),
            Some(since) => {
                let left = (since + RESUME_WAIT).saturating_duration_since(Instant::now());
                match inputs.recv_timeout(left) {
                    Ok(input) => Some(input),
                    Err(RecvTimeoutError::Timeout) => {
                        app.end_resume(None);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => None,
                }
            }
        };
        let Some(input) = input else {
            // Every reader gone without a `Closed`: cannot happen, but is an end.
            return closed(&app.room, "connection lost", style);
        };
        match input {
            Input::Line(line) => {
                if let Some(code) = app.line(&line, &args, &inputs) {
                    return code;
                }
            }
            Input::Eof(error) => {
                if let Some(e) = error {
                    eprintln!("chat: reading stdin: {e}");
                }
                return app.quit(&inputs);
            }
            Input::Net(Event::Message(msg)) => app.message(msg),
            Input::Net(Event::Transfer(event)) => {
                if let TransferEvent::Failed {
                    transfer,
                    code: Some(ErrorCode::UnknownTransfer),
                    ..
                } = &event
                {
                    // The offer is gone (protocol.md 17.6).
                    app.room.forget_offer(*transfer);
                }
                for line in app.files.on_event(&event) {
                    app.files.print(&line);
                }
            }
            Input::Notice(line) => app.files.print(&line),
            Input::Net(Event::Closed(why)) => {
                if let Some(code) = app.lost(&why) {
                    return code;
                }
            }
            Input::Reconnected(client, login) => app.reconnected(*client, login),
            Input::GaveUp(line, code) => {
                app.files.print(&line);
                return ExitCode::from(code);
            }
        }
    }
}

/// The chats missed during a reconnect, while their `history` frame has
/// not come.
struct Resume {
    /// When the new connection was made: after [`RESUME_WAIT`] the held
    /// chats are printed without waiting longer.
    since: Instant,
    /// Live chats that came before the resume frame, by id: printed after
    /// the missed ones, which are older.
    held: BTreeMap<u64, Chat>,
    /// The new welcome's recent history: shown if the server does not know
    /// our last chat (it forgot its history), else never (the resume frame
    /// holds what we have not seen).
    welcome_history: Vec<Chat>,
}

/// The client's state between inputs.
struct App {
    /// The connection's writing half; `None` while reconnecting.
    sender: Option<ClientSender>,
    /// The highest chat id printed (welcome, live, missed): a chat at or
    /// below it is a repeat and is not printed again.
    printed: Option<u64>,
    /// Set from a reconnect until its missed chats are printed.
    resume: Option<Resume>,
    room: RoomView,
    /// The named rooms we are in and where typed lines go; joined again
    /// after a reconnect.
    rooms: Rooms,
    files: FileView,
    /// How to log in again; its token follows `registered` and
    /// `password_changed`.
    login: Login,
    /// The password of a `register` sent and not answered yet: once the
    /// name is registered it is the fallback of the new token.
    registering: Option<String>,
    style: Style,
    /// Where the threads this starts (connection, reconnect, `/send`) post.
    tx: SyncSender<Input>,
    /// Reconnect when the connection is lost (not `--no-reconnect`).
    reconnect: bool,
}

impl App {
    /// A line typed; `Some` when the program is to end with that status.
    fn line(&mut self, line: &str, args: &Args, inputs: &Receiver<Input>) -> Option<ExitCode> {
        let style = self.style;
        let cmd = command(line);
        match cmd {
            Command::Nothing => return None,
            Command::Help => {
                help(&self.files, style);
                return None;
            }
            Command::Quit => return Some(self.quit(inputs)),
            Command::Unknown(cmd) => {
                let line = style.error(&format!("! unknown command {cmd} (try /help)"));
                self.files.print(&line);
                return None;
            }
            Command::Usage(usage) => {
                self.files.print(&style.error(&format!("! usage: {usage}")));
                return None;
            }
            // Local: which room typed lines go to, what we know of it.
            Command::Room(name) => {
                self.switch_room(name);
                return None;
            }
            Command::Topic(None) => {
                self.show_topic();
                return None;
            }
            _ => {}
        }
        let Some(sender) = self.sender.clone() else {
            // Not queued: the user decides what to say once back.
            self.files.print(&style.error("* not connected; not sent"));
            return None;
        };
        match cmd {
            Command::Say(text) => {
                // A failed write means the connection is gone; the
                // reader reports that as `Closed` right after.
                let _ = match self.rooms.current() {
                    Some(room) => sender.send_chat_in(room, text),
                    None => sender.send_chat(text),
                };
            }
            Command::Who => {
                let line = match (self.rooms.current_room(), self.rooms.current()) {
                    (Some(room), Some(name)) => {
                        let names: Vec<String> = room
                            .names()
                            .iter()
                            .map(|n| show_name(n).into_owned())
                            .collect();
                        style.notice(&format!(
                            "* {} in #{}: {}",
                            names.len(),
                            show_name(name),
                            names.join(", ")
                        ))
                    }
                    _ => self.room.who_line(),
                };
                self.files.print(&line);
            }
            Command::Rooms => {
                let _ = sender.list_rooms();
            }
            Command::Join(name) => match self.rooms.target(name) {
                Target::Default => self.switch_room(None),
                Target::Joined(room) => self.switch_room(Some(&room)),
                Target::Other(room) => {
                    // The answer (`room_joined`) makes it the current room.
                    let _ = sender.join_room(room);
                }
            },
            Command::Part(name) => {
                let room = match name.map(|n| self.rooms.target(n)) {
                    None => self.rooms.current().map(str::to_owned),
                    Some(Target::Default) => None,
                    Some(Target::Joined(room) | Target::Other(room)) => Some(room),
                };
                match room {
                    Some(room) => {
                        let _ = sender.part_room(room);
                    }
                    None => self.files.print(&style.error(&format!(
                        "! {} is the default room, which cannot be left (/quit leaves the server)",
                        self.rooms.default_label()
                    ))),
                }
            }
            Command::Topic(Some(text)) => match self.rooms.current() {
                Some(room) => {
                    let _ = sender.set_topic(room, text);
                }
                None => self.files.print(&style.error(&format!(
                    "! {} is the default room, whose topic cannot be set; \
                     /join a room and set its topic there",
                    self.rooms.default_label()
                ))),
            },
            Command::Msg(to, text) => {
                let _ = sender.send_dm(to, text);
            }
            Command::Dms(with) => {
                let _ = sender.request_dm_history(with, None, HISTORY_PAGE);
            }
            Command::Moderate(m) => {
                let room = self.rooms.current().map(str::to_owned);
                let act = |name: &str, minutes, reason: Option<&str>| Moderate {
                    name: name.to_owned(),
                    room: room.clone(),
                    minutes,
                    reason: reason.map(str::to_owned),
                };
                let msg = match m {
                    Moderation::Remove {
                        ban: false,
                        name,
                        reason,
                        ..
                    } => ClientMessage::Kick(act(name, None, reason)),
                    Moderation::Remove {
                        ban: true,
                        name,
                        minutes,
                        reason,
                    } => ClientMessage::Ban(act(name, minutes, reason)),
                    Moderation::Mute {
                        name,
                        minutes,
                        reason,
                    } => ClientMessage::Mute(act(name, minutes, reason)),
                    Moderation::Lift { ban: true, name } => {
                        ClientMessage::Unban(act(name, None, None))
                    }
                    Moderation::Lift { ban: false, name } => {
                        ClientMessage::Unmute(act(name, None, None))
                    }
                    Moderation::Role { name, role } => ClientMessage::SetRole(SetRole {
                        name: name.to_owned(),
                        room: room.clone(),
                        role: role.to_owned(),
                    }),
                    Moderation::Delete(id) => ClientMessage::Delete(Delete {
                        id,
                        room: room.clone(),
                    }),
                };
                let _ = sender.send(&msg);
            }
            Command::Send(path) => {
                let to = match self.rooms.current() {
                    Some(room) => OfferTo::Room(room.to_owned()),
                    None => OfferTo::DefaultRoom,
                };
                send_file(&sender, path, to, &self.tx);
            }
            Command::SendTo(name, path) => {
                send_file(&sender, path, OfferTo::Member(name.to_owned()), &self.tx);
            }
            Command::JoinPrivate(name) => {
                let _ = sender.create_private_room(name.trim_start_matches('#'));
            }
            Command::Invite(_) | Command::Mode(_) if self.rooms.current().is_none() => {
                self.files.print(&style.error(&format!(
                    "! {} is the default room, open to everyone; /join a room first",
                    self.rooms.default_label()
                )));
            }
            Command::Invite(name) => {
                if let Some(room) = self.rooms.current() {
                    let _ = sender.invite(room, name);
                }
            }
            Command::Mode(private) => {
                if let Some(room) = self.rooms.current() {
                    let _ = sender.set_room_mode(room, private);
                }
            }
            Command::Accept(id) => {
                let line = accept(
                    &sender,
                    id,
                    &args.downloads,
                    &self.room,
                    &mut self.files,
                    style,
                );
                self.files.print(&line);
            }
            Command::Decline(id) => {
                let line = match sender.decline_file(id) {
                    Ok(()) => {
                        let name = self.room.offer_name(id).unwrap_or_else(|| id.to_string());
                        self.room.forget_offer(id);
                        style.notice(&format!("* declined {name}"))
                    }
                    Err(e) => style.error(&format!("! cannot decline {id}: {e}")),
                };
                self.files.print(&line);
            }
            Command::Cancel(id) => {
                let line = match sender.cancel_file(id) {
                    Ok(()) => style.notice(&format!("* cancelling {id}")),
                    Err(e) => style.error(&format!("! cannot cancel {id}: {e}")),
                };
                self.files.print(&line);
            }
            Command::Files => {
                for line in self.room.files_lines() {
                    self.files.print(&line);
                }
            }
            Command::History(n) => {
                // The answer comes back as a `history` event, printed
                // by `room.apply`; errors likewise.
                let _ = match self.rooms.current() {
                    Some(room) => sender.request_history_in(room, self.rooms.oldest_shown(), n),
                    None => sender.request_history(self.room.oldest_shown(), n),
                };
            }
            Command::Register(typed) => {
                let password = match typed {
                    Some(p) => {
                        self.files.print(&style.error(
                            "! note: that password was shown on screen; \
                             prefer --password-env and a bare /register",
                        ));
                        Some(p.to_owned())
                    }
                    None => env_password(args),
                };
                match password {
                    Some(p) => self.register(p),
                    None => self.files.print(&style.error(
                        "! usage: /register PASSWORD, or /register with --password-env VAR set",
                    )),
                }
            }
            Command::Nothing
            | Command::Help
            | Command::Quit
            | Command::Unknown(_)
            | Command::Usage(_)
            | Command::Room(_)
            | Command::Topic(None) => {}
        }
        None
    }

    /// `/room [NAME]`: without a name, the rooms we are in; with one, makes
    /// it the room typed lines go to (the default room by its name).
    fn switch_room(&mut self, name: Option<&str>) {
        let style = self.style;
        let Some(name) = name else {
            for line in self.rooms.lines() {
                self.files.print(&style.notice(&line));
            }
            return;
        };
        let room = match self.rooms.target(name) {
            Target::Default => None,
            Target::Joined(room) => Some(room),
            Target::Other(room) => {
                self.files.print(&style.error(&format!(
                    "! you are not in #{} (/join {} enters it)",
                    show_name(&room),
                    show_name(&room)
                )));
                return;
            }
        };
        self.rooms.switch(room.as_deref());
        self.current_room_line();
    }

    /// `* current room: #dev`: said whenever typed lines go elsewhere.
    fn current_room_line(&self) {
        let line = format!("* current room: {}", self.rooms.current_label());
        self.files.print(&self.style.notice(&line));
    }

    /// `/topic` alone: the current room's topic.
    fn show_topic(&self) {
        let line = match (self.rooms.current_room(), self.rooms.current()) {
            (Some(room), Some(name)) if room.topic.is_empty() => {
                format!("* #{} has no topic (/topic TEXT sets one)", show_name(name))
            }
            (Some(room), Some(name)) => {
                format!("* topic of #{}: {}", show_name(name), one_line(&room.topic))
            }
            _ => format!(
                "* {} is the default room; /rooms shows every room's topic",
                self.rooms.default_label()
            ),
        };
        self.files.print(&self.style.notice(&line));
    }

    /// Sends `register`, remembering the password until the answer.
    fn register(&mut self, password: String) {
        if let Some(sender) = &self.sender {
            let msg = ClientMessage::Register(chatcore::protocol::Register {
                password: password.clone(),
            });
            if sender.send(&msg).is_ok() {
                self.registering = Some(password);
            }
        }
    }

    /// A message from the server: printed, except chats already printed.
    fn message(&mut self, msg: ServerMessage) {
        match msg {
            ServerMessage::Chat(chat) if chat.room.is_some() => {
                // Named rooms are not part of the resume (it is about the
                // default room): their chats are printed as they come, once.
                if self.rooms.chat(&chat) {
                    self.show(&ServerMessage::Chat(chat));
                }
            }
            ServerMessage::History(h) if h.room.is_some() => {
                self.rooms.page(&h);
                self.show(&ServerMessage::History(h));
            }
            ServerMessage::RoomJoined(j) => {
                let (fresh, switched) = self.rooms.joined(&j);
                self.show(&ServerMessage::RoomJoined(fresh));
                if switched {
                    self.current_room_line();
                }
            }
            ServerMessage::RoomParted(p) => {
                let was_current = self.rooms.parted(&p.room);
                self.show(&ServerMessage::RoomParted(p));
                if was_current {
                    self.current_room_line();
                }
            }
            ServerMessage::Presence(p) if p.room.is_some() => {
                self.rooms.presence(&p);
                self.show(&ServerMessage::Presence(p));
            }
            ServerMessage::Topic(t) => {
                self.rooms.topic(&t);
                self.show(&ServerMessage::Topic(t));
            }
            ServerMessage::RoomList(list) => {
                self.rooms.list(&list);
                self.show(&ServerMessage::RoomList(list));
            }
            ServerMessage::Chat(chat) => {
                if let Some(resume) = &mut self.resume {
                    resume.held.insert(chat.id, chat);
                } else if self.printed.is_none_or(|p| chat.id > p) {
                    self.printed = Some(chat.id);
                    self.show(&ServerMessage::Chat(chat));
                }
            }
            ServerMessage::History(h) if h.after.is_some() => self.end_resume(Some(h)),
            ServerMessage::Error(e)
                if e.code == ErrorCode::UnknownMessage && self.resume.is_some() =>
            {
                // Our last chat id is beyond the server's newest: it forgot
                // what we saw (a restart without a store; ids began again).
                self.files.print(&self.style.notice(
                    "* the server forgot the earlier messages (it restarted without its history)",
                ));
                self.printed = None;
                if let Some(resume) = &mut self.resume {
                    let history = std::mem::take(&mut resume.welcome_history);
                    self.room.history_restarted(history.first().map(|c| c.id));
                    for chat in history {
                        resume.held.insert(chat.id, chat);
                    }
                }
                self.end_resume(None);
            }
            ServerMessage::Registered(r) => {
                self.login.name = r.name.clone();
                self.login.token = Some(r.token.clone());
                if let Some(p) = self.registering.take() {
                    self.login.password = Some(p);
                }
                self.show(&ServerMessage::Registered(r));
            }
            ServerMessage::PasswordChanged(p) => {
                self.login.token = Some(p.token.clone());
                self.show(&ServerMessage::PasswordChanged(p));
            }
            ServerMessage::LoggedOut => {
                self.login.token = None;
                self.show(&ServerMessage::LoggedOut);
            }
            ServerMessage::Error(e) => {
                if self.registering.is_some() && is_register_error(e.code) {
                    self.registering = None;
                }
                self.show(&ServerMessage::Error(e));
            }
            ServerMessage::Dm(d) => {
                // Printed here is read: the server counts it no more.
                if d.from != self.room.my_name()
                    && let Some(sender) = &self.sender
                {
                    let _ = sender.mark_dm_read(d.from.clone(), d.id);
                }
                self.show(&ServerMessage::Dm(d));
            }
            ServerMessage::DmHistory(h) => {
                if let (Some(last), Some(sender)) = (h.messages.last(), &self.sender) {
                    let _ = sender.mark_dm_read(h.with.clone(), last.id);
                }
                self.show(&ServerMessage::DmHistory(h));
            }
            other => self.show(&other),
        }
    }

    fn show(&mut self, msg: &ServerMessage) {
        for line in self.room.apply(msg) {
            self.files.print(&line);
        }
    }

    /// The chats missed during the reconnect have come (`missed`), or will
    /// not (`None`): print them without repeats, then the live chats held
    /// meanwhile.
    fn end_resume(&mut self, missed: Option<History>) {
        let held = self.resume.take().map(|r| r.held).unwrap_or_default();
        if let Some(mut h) = missed {
            h.messages.retain(|c| self.printed.is_none_or(|p| c.id > p));
            if let Some(last) = h.messages.last() {
                self.printed = Some(last.id);
            }
            self.show(&ServerMessage::History(h));
        }
        for (id, chat) in held {
            if self.printed.is_none_or(|p| id > p) {
                self.printed = Some(id);
                self.show(&ServerMessage::Chat(chat));
            }
        }
    }

    /// The connection is gone: reconnect, or `Some` status to end with.
    fn lost(&mut self, why: &str) -> Option<ExitCode> {
        // Only a live connection sends `Closed`; without one, nothing to do.
        self.sender.take()?;
        if self.resume.is_some() {
            self.end_resume(None);
        }
        let removed = self.room.removed();
        if !self.reconnect || matches!(removed, Some(LeaveReason::Kicked | LeaveReason::Banned)) {
            return Some(closed(&self.room, why, self.style));
        }
        let why = match removed {
            Some(reason) => format!("removed by the server ({reason})"),
            None => why.to_owned(),
        };
        self.files.print(&self.style.error(&format!(
            "* connection lost: {}; reconnecting in {}s",
            one_line(&why),
            RECONNECT_FIRST.as_secs()
        )));
        // A `register` in flight is lost with the connection.
        self.registering = None;
        // The default room's last chat: ids are server-wide, and a named
        // room's newer ids would hide default-room chats sent between.
        let last_seen = self.printed;
        if let Err(e) = spawn_reconnect(self.login.clone(), last_seen, self.style, self.tx.clone())
        {
            return Some(closed(
                &self.room,
                &format!("cannot start a thread: {e}"),
                self.style,
            ));
        }
        None
    }

    /// Logged in again: show who we are now and wait for what was missed.
    fn reconnected(&mut self, client: Client, login: Login) {
        let welcome = client.welcome();
        self.room.rejoin(welcome);
        for line in self.room.rejoin_lines(welcome, &login.name) {
            self.files.print(&line);
        }
        self.resume = Some(Resume {
            since: Instant::now(),
            held: BTreeMap::new(),
            welcome_history: welcome.history.clone(),
        });
        self.login = login;
        let sender = client.sender();
        for room in self.rooms.rejoin() {
            // Each `room_joined` brings the room's recent history; what
            // was printed already is skipped (see `Rooms::joined`).
            let _ = sender.join_room(room);
        }
        self.sender = Some(sender);
        if let Err(e) = spawn_net(client, self.tx.clone()) {
            self.files
                .print(&self.style.error(&format!("! cannot start a thread: {e}")));
        }
    }

    /// `/quit` or end of input: say `bye` if connected, exit 0.
    fn quit(&mut self, inputs: &Receiver<Input>) -> ExitCode {
        if self.resume.is_some() {
            self.end_resume(None);
        }
        match &self.sender {
            Some(sender) => quit(sender, inputs, &mut self.room),
            None => ExitCode::SUCCESS,
        }
    }
}

/// Errors that answer a `register` (so its password is not the account's).
fn is_register_error(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NameRegistered | ErrorCode::PasswordInvalid | ErrorCode::AccountsUnavailable
    )
}

/// Starts the thread that tries to log in again: waits 1 s, then doubles
/// the wait after each failure up to 30 s, forever, until it is logged in
/// ([`Input::Reconnected`]) or a failure no retry can mend
/// ([`Input::GaveUp`]). The program ends (and this thread with it) when the
/// user quits meanwhile.
fn spawn_reconnect(
    mut login: Login,
    last_seen: Option<u64>,
    style: Style,
    tx: SyncSender<Input>,
) -> io::Result<()> {
    thread::Builder::new()
        .name("reconnect".into())
        .spawn(move || {
            let mut wait = RECONNECT_FIRST;
            loop {
                thread::sleep(wait);
                let input = match attempt(&mut login, last_seen) {
                    Ok(client) => Input::Reconnected(Box::new(client), login),
                    Err(Attempt::Fatal(line, code)) => Input::GaveUp(style.error(&line), code),
                    Err(Attempt::Retry(why)) => {
                        wait = (wait * 2).min(RECONNECT_MAX);
                        let line = format!(
                            "* reconnect failed: {}; retrying in {}s",
                            one_line(&why),
                            wait.as_secs()
                        );
                        if tx.send(Input::Notice(style.error(&line))).is_err() {
                            return;
                        }
                        continue;
                    }
                };
                let _ = tx.send(input);
                return;
            }
        })
        .map(drop)
}

/// One reconnect: the token if there is one, and if the server refuses it,
/// the password at once if it is known. `last_seen` 0 (nothing seen yet)
/// still asks for the chats missed: all of them are.
fn attempt(login: &mut Login, last_seen: Option<u64>) -> Result<Client, Attempt> {
    let last_seen = Some(last_seen.unwrap_or(0));
    loop {
        let credentials = login.credentials();
        let result = chatcore::tls::connect(&login.server, &login.tls, Duration::from_secs(10))
            .map_err(ClientError::from)
            .and_then(|(stream, trust)| {
                Client::login_full(stream, trust, &login.name, &credentials, last_seen)
            });
        let err = match result {
            Ok(client) => {
                if let Some(token) = client.token() {
                    login.token = Some(token.to_owned());
                }
                return Ok(client);
            }
            Err(e) => e,
        };
        return Err(match err {
            ClientError::Refused {
                code: ErrorCode::AuthFailed,
                message,
            } => match credentials {
                Credentials::Token(_) if login.password.is_some() => {
                    // Expired or revoked: the password gets a new one.
                    login.token = None;
                    continue;
                }
                Credentials::Token(_) => Attempt::Fatal(
                    format!(
                        "! cannot log in again: the session token was refused ({}) \
                         and no password is known; start again with --password-env",
                        one_line(&message)
                    ),
                    EXIT_CLOSED,
                ),
                _ => Attempt::Fatal(
                    format!(
                        "! cannot log in again: error auth_failed: {}",
                        one_line(&message)
                    ),
                    EXIT_CLOSED,
                ),
            },
            ClientError::Refused { code, message } if retry_refusal(code) => {
                Attempt::Retry(format!("error {code}: {message}"))
            }
            ClientError::Refused { code, message } => Attempt::Fatal(
                format!(
                    "! cannot log in again: error {code}: {}",
                    one_line(&message)
                ),
                EXIT_CLOSED,
            ),
            ClientError::Tls(
                e
                @ (TlsError::Connect { .. } | TlsError::Resolve { .. } | TlsError::Timeout { .. }),
            ) => Attempt::Retry(e.to_string()),
            ClientError::Tls(e) => Attempt::Fatal(
                format!("! cannot reconnect to {}: {}", one_line(&login.server), e),
                EXIT_TLS,
            ),
            other => Attempt::Retry(other.to_string()),
        });
    }
}

/// Refusals that a later try may not get: the server is busy or slowing
/// down guesses, or its account database is out for now.
fn retry_refusal(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ServerFull
            | ErrorCode::TooManyConnections
            | ErrorCode::RateLimited
            | ErrorCode::HandshakeTimeout
            | ErrorCode::AuthThrottled
            | ErrorCode::AccountsUnavailable
    )
}

/// `/send PATH`: hashing a large file takes a while, so it is done on a
/// thread of its own; only a failure comes back as a line to print (the
/// rest comes as transfer events).
fn send_file(sender: &ClientSender, path: &str, to: OfferTo, notices: &SyncSender<Input>) {
    let sender = sender.clone();
    let notices = notices.clone();
    let path = PathBuf::from(path);
    let spawned = thread::Builder::new()
        .name("send-file".into())
        .spawn(move || {
            if let Err(e) = sender.send_file_to(&path, FileKind::File, to) {
                let line = Style::detect().error(&format!(
                    "! cannot send {}: {}",
                    one_line(&path.display().to_string()),
                    one_line(&e.to_string())
                ));
                let _ = notices.send(Input::Notice(line));
            }
        });
    if let Err(e) = spawned {
        emit(&Style::detect().error(&format!("! cannot start a thread: {e}")));
    }
}

/// `/accept ID`: downloads offer `id` into `dir` (resuming a cancelled
/// download of it); returns the line to print.
fn accept(
    sender: &ClientSender,
    id: u64,
    dir: &std::path::Path,
    room: &RoomView,
    files: &mut FileView,
    style: Style,
) -> String {
    let Some(offer) = room.offers().get(&id) else {
        return style.error(&format!("! no file {id} on offer (see /files)"));
    };
    match sender.accept_file(id, dir) {
        Ok(part) => files.downloading(id, &offer.name, offer.size, &part),
        Err(e) => style.error(&format!(
            "! cannot accept {id}: {}",
            one_line(&e.to_string())
        )),
    }
}

/// Logs in, asking for a name as long as that makes sense; returns the
/// client and how to log in again.
fn login(args: &Args, interactive: bool, style: Style) -> Result<(Client, Login), u8> {
    let mut given = args.name.clone();
    let tls = match args.tls.client_tls("chat") {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("chat: {e}");
            return Err(EXIT_TLS);
        }
    };
    loop {
        let name = match given.take() {
            Some(name) => name,
            None => prompt_name(interactive)?,
        };
        let password = env_password(args).filter(|_| !args.register);
        let credentials = match &password {
            Some(p) => Credentials::Password(p.clone()),
            None => Credentials::Guest,
        };
        match Client::connect_with_as(&args.server, &name, &tls, &credentials) {
            Ok(client) => {
                if let Some(notice) = trust_notice(client.trust(), &args.server, &tls) {
                    eprintln!("{notice}");
                }
                let token = client.token().map(str::to_owned);
                let login = Login {
                    server: args.server.clone(),
                    tls,
                    name,
                    password,
                    token,
                };
                return Ok((client, login));
            }
            Err(ClientError::Tls(e)) => {
                eprintln!("chat: cannot join {}: {e}", args.server);
                return Err(match e {
                    TlsError::Connect { .. }
                    | TlsError::Resolve { .. }
                    | TlsError::Timeout { .. } => EXIT_CLOSED,
                    _ => EXIT_TLS,
                });
            }
            Err(ClientError::Refused { code, message }) => {
                let msg = chatcore::protocol::ErrorMsg {
                    room: None,
                    code,
                    message,
                    reference: None,
                    transfer: None,
                };
                emit(&chat_examples::render::error_line(&msg, style));
                if !interactive {
                    return Err(EXIT_NAME);
                }
                // The server would take another `hello` on the same
                // connection, but `Client::connect` has closed it: reconnect.
            }
            Err(e) => {
                eprintln!("chat: cannot join {}: {e}", args.server);
                return Err(EXIT_CLOSED);
            }
        }
    }
}

/// The password in the `--password-env` variable, if set and non-empty.
fn env_password(args: &Args) -> Option<String> {
    let var = args.password_env.as_deref()?;
    std::env::var(var).ok().filter(|p| !p.is_empty())
}

/// `name: ` on stderr, then a line from stdin. End of input is an error.
fn prompt_name(interactive: bool) -> Result<String, u8> {
    eprint!("name: ");
    let _ = io::stderr().flush();
    let mut line = String::new();
    let read = io::stdin().lock().read_line(&mut line);
    if !interactive || matches!(read, Ok(0)) {
        // Nobody typed a line ending after the prompt: end its line.
        eprintln!();
    }
    match read {
        Ok(0) => {
            eprintln!("chat: no name given");
            Err(EXIT_NAME)
        }
        Ok(_) => Ok(trim_line_end(line)),
        Err(e) => {
            eprintln!("chat: reading the name: {e}");
            Err(EXIT_NAME)
        }
    }
}

/// Starts the thread that hands over the client's events to `tx`, ending
/// with its `Closed`. The client moves into the thread (one per connection).
fn spawn_net(client: Client, tx: SyncSender<Input>) -> io::Result<()> {
    thread::Builder::new()
        .name("server-events".into())
        .spawn(move || {
            loop {
                let event = client
                    .recv()
                    .unwrap_or_else(|_| Event::Closed("gone".into()));
                let last = matches!(event, Event::Closed(_));
                if tx.send(Input::Net(event)).is_err() || last {
                    return;
                }
            }
        })
        .map(drop)
}

/// Starts the thread that reads stdin line by line into `tx` (one for the
/// whole run: it outlives reconnects).
fn spawn_stdin(tx: SyncSender<Input>) -> io::Result<()> {
    thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let input = match stdin.read_until(b'\n', &mut buf) {
                    Ok(0) => Input::Eof(None),
                    // Not UTF-8? Send what can be read rather than nothing.
                    Ok(_) => Input::Line(trim_line_end(String::from_utf8_lossy(&buf).into())),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Input::Eof(Some(e.to_string())),
                };
                let last = matches!(input, Input::Eof(_));
                if tx.send(input).is_err() || last {
                    return;
                }
            }
        })
        .map(drop)
}

fn trim_line_end(mut line: String) -> String {
    while line.ends_with(['\n', '\r']) {
        line.pop();
    }
    line
}

/// What a typed line asks for.
#[derive(Debug, PartialEq)]
enum Command<'a> {
    Say(&'a str),
    Nothing,
    Who,
    Help,
    Quit,
    Send(&'a str),
    Accept(u64),
    Decline(u64),
    Cancel(u64),
    Files,
    /// `/history [N]`: N earlier messages (default 20) before the oldest shown.
    History(u32),
    /// `/register [PASSWORD]`.
    Register(Option<&'a str>),
    /// `/rooms`: every room with its member count and topic.
    Rooms,
    /// `/join NAME`: enter a room (it becomes the current room).
    Join(&'a str),
    /// `/join NAME private`: create NAME invite-only (or enter it).
    JoinPrivate(&'a str),
    /// `/invite NAME`: let NAME into the current (invite-only) room.
    Invite(&'a str),
    /// `/private`, `/public`: make the current room invite-only or open.
    Mode(bool),
    /// `/send @NAME PATH`: offer a file to one member.
    SendTo(&'a str, &'a str),
    /// `/part [NAME]`: leave NAME, or the current room.
    Part(Option<&'a str>),
    /// `/topic [TEXT]`: set the current room's topic, or show it.
    Topic(Option<&'a str>),
    /// `/room [NAME]`: switch the current room, or list the rooms we are in.
    Room(Option<&'a str>),
    /// `/msg NAME TEXT`: a direct message.
    Msg(&'a str, &'a str),
    /// `/dms NAME`: the direct conversation with NAME (marked read).
    Dms(&'a str),
    /// `/kick NAME [REASON]`, `/ban NAME [MINUTES] [REASON]`, `/unban NAME`,
    /// `/mute NAME [MINUTES] [REASON]`, `/unmute NAME`, `/op NAME ROLE`,
    /// `/delete ID`: moderation in the current room (docs/protocol.md 24).
    Moderate(Moderation<'a>),
    /// A command with missing or bad arguments: how to use it.
    Usage(&'static str),
    Unknown(&'a str),
}

/// A moderation command, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moderation<'a> {
    /// Kick or ban (`ban`: true): name, minutes, reason.
    Remove {
        ban: bool,
        name: &'a str,
        minutes: Option<u32>,
        reason: Option<&'a str>,
    },
    /// Mute: name, minutes, reason.
    Mute {
        name: &'a str,
        minutes: Option<u32>,
        reason: Option<&'a str>,
    },
    /// Unban or unmute (`ban`: unban).
    Lift { ban: bool, name: &'a str },
    /// Give a role.
    Role { name: &'a str, role: &'a str },
    /// Delete a chat.
    Delete(u64),
}

/// `NAME [MINUTES] [REASON]` (`minutes`: whether a number may follow).
fn name_minutes_reason(rest: &str, minutes: bool) -> (&str, Option<u32>, Option<&str>) {
    let (name, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let rest = rest.trim();
    let (mins, rest) = match rest.split_once(char::is_whitespace) {
        Some((n, r)) if minutes && n.parse::<u32>().is_ok() => (n.parse().ok(), r.trim()),
        None if minutes && rest.parse::<u32>().is_ok() => (rest.parse().ok(), ""),
        _ => (None, rest),
    };
    (name, mins, Some(rest).filter(|r| !r.is_empty()))
}

/// Messages `/history` asks for without a count.
const HISTORY_PAGE: u32 = 20;

fn command(line: &str) -> Command<'_> {
    if line.starts_with("//") {
        // `//text` says `/text`.
        return Command::Say(&line[1..]);
    }
    if line.trim().is_empty() {
        return Command::Nothing;
    }
    if !line.starts_with('/') {
        return Command::Say(line);
    }
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (line, ""),
    };
    let id = |usage| match rest.parse::<u64>() {
        Ok(id) => Command::from_id(word, id),
        Err(_) => Command::Usage(usage),
    };
    match word {
        "/who" => Command::Who,
        "/help" | "/?" => Command::Help,
        "/quit" | "/exit" => Command::Quit,
        "/files" => Command::Files,
        "/history" if rest.is_empty() => Command::History(HISTORY_PAGE),
        "/history" => match rest.parse::<u32>() {
            Ok(n) if n > 0 => Command::History(n),
            _ => Command::Usage("/history [N]"),
        },
        "/register" => Command::Register(Some(rest).filter(|r| !r.is_empty())),
        "/rooms" => Command::Rooms,
        "/join" if rest.is_empty() => Command::Usage("/join NAME"),
        "/join" => match rest.rsplit_once(char::is_whitespace) {
            Some((name, "private")) => Command::JoinPrivate(name.trim()),
            _ => Command::Join(rest),
        },
        "/invite" if rest.is_empty() => Command::Usage("/invite NAME"),
        "/invite" => Command::Invite(rest),
        "/private" => Command::Mode(true),
        "/public" => Command::Mode(false),
        "/part" | "/leave" => Command::Part(Some(rest).filter(|r| !r.is_empty())),
        "/topic" => Command::Topic(Some(rest).filter(|r| !r.is_empty())),
        "/room" => Command::Room(Some(rest).filter(|r| !r.is_empty())),
        "/msg" => match rest.split_once(char::is_whitespace) {
            Some((name, text)) if !text.trim().is_empty() => Command::Msg(name, text.trim()),
            _ => Command::Usage("/msg NAME TEXT"),
        },
        "/dms" if rest.is_empty() => Command::Usage("/dms NAME"),
        "/dms" => Command::Dms(rest),
        "/kick" | "/ban" if rest.is_empty() => {
            Command::Usage("/kick NAME [REASON], /ban NAME [MINUTES] [REASON]")
        }
        "/kick" | "/ban" => {
            let ban = word == "/ban";
            let (name, minutes, reason) = name_minutes_reason(rest, ban);
            Command::Moderate(Moderation::Remove {
                ban,
                name,
                minutes,
                reason,
            })
        }
        "/mute" if rest.is_empty() => Command::Usage("/mute NAME [MINUTES] [REASON]"),
        "/mute" => {
            let (name, minutes, reason) = name_minutes_reason(rest, true);
            Command::Moderate(Moderation::Mute {
                name,
                minutes,
                reason,
            })
        }
        "/unban" | "/unmute" if rest.is_empty() => Command::Usage("/unban NAME, /unmute NAME"),
        "/unban" | "/unmute" => Command::Moderate(Moderation::Lift {
            ban: word == "/unban",
            name: rest,
        }),
        "/op" => match rest.split_once(char::is_whitespace) {
            Some((name, role)) => Command::Moderate(Moderation::Role {
                name,
                role: role.trim(),
            }),
            None => Command::Usage("/op NAME owner|moderator|member"),
        },
        "/delete" => match rest.parse::<u64>() {
            Ok(id) => Command::Moderate(Moderation::Delete(id)),
            Err(_) => Command::Usage("/delete ID"),
        },
        "/send" if rest.is_empty() => Command::Usage("/send PATH"),
        "/send" => match rest
            .strip_prefix('@')
            .map(|r| r.split_once(char::is_whitespace))
        {
            Some(Some((name, path))) if !path.trim().is_empty() => {
                Command::SendTo(name, path.trim())
            }
            Some(_) => Command::Usage("/send @NAME PATH"),
            None => Command::Send(rest),
        },
        "/accept" => id("/accept ID"),
        "/decline" => id("/decline ID"),
        "/cancel" => id("/cancel ID"),
        other => Command::Unknown(other),
    }
}

impl Command<'_> {
    fn from_id(word: &str, id: u64) -> Self {
        match word {
            "/accept" => Self::Accept(id),
            "/decline" => Self::Decline(id),
            _ => Self::Cancel(id),
        }
    }
}

fn help(files: &FileView, style: Style) {
    for line in [
        "* /who          who is online (in a named room: who is in it)",
        "* /rooms        every room, with how many are in it and its topic",
        "* /join NAME    enter room NAME; it becomes the current room",
        "* /join NAME private   create NAME invite-only (only invited members enter)",
        "* /invite NAME  let NAME into the current invite-only room",
        "* /private, /public    make the current room invite-only, or open again",
        "* /part [NAME]  leave room NAME, or the current one (back to the default room)",
        "* /room [NAME]  make NAME (a room you are in) current; alone: your rooms",
        "* /msg NAME TEXT  a direct message (kept for a registered NAME that is away)",
        "* /dms NAME     the direct messages with NAME",
        "* /kick NAME [REASON], /ban NAME [MINUTES] [REASON], /unban NAME",
        "*               remove NAME from the current room (the default room: from the",
        "*               server); a ban keeps it out (moderators, owners, operators)",
        "* /mute NAME [MINUTES] [REASON], /unmute NAME   refuse NAME's lines here",
        "* /op NAME ROLE give NAME (registered) the role owner, moderator or member here",
        "* /delete ID    delete chat ID (yours, or any as a moderator)",
        "* /topic [TEXT] set the current room's topic; alone: show it",
        "* /send PATH    offer a file to the current room",
        "* /send @NAME PATH     offer a file to NAME alone",
        "* /files        list the files on offer",
        "* /history [N]  N earlier messages (default 20) of the current room",
        "* /accept ID    download file ID (into --downloads DIR; resumes a cancelled one)",
        "* /decline ID   say no to file ID",
        "* /cancel ID    stop sending or downloading file ID",
        "* /register     register your name with the --password-env password",
        "* /register PW  the same with PW (shown on screen: prefer the former)",
        "* /quit         leave the room (end of input does the same)",
        "* /help         this text",
        "* any other line is sent to the current room; start it with // to send a line beginning with /",
    ] {
        files.print(&style.notice(line));
    }
}

/// Says `bye`, shows what arrives until the server closes (at most
/// [`QUIT_LINGER`]), and exits 0.
fn quit(sender: &ClientSender, inputs: &Receiver<Input>, room: &mut RoomView) -> ExitCode {
    if sender.send(&ClientMessage::Bye).is_ok() {
        // Waiting for the server to close first means our `bye` is read
        // before the socket goes away, so others see us leave as `quit`.
        let deadline = Instant::now() + QUIT_LINGER;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match inputs.recv_timeout(left) {
                Ok(Input::Net(Event::Message(msg))) => {
                    for line in room.apply(&msg) {
                        emit(&line);
                    }
                }
                Ok(Input::Net(Event::Closed(_))) => break,
                Ok(Input::Notice(line)) => emit(&line),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
    }
    ExitCode::SUCCESS
}

/// The connection is gone for good (`--no-reconnect`, kicked): say why, exit 1.
fn closed(room: &RoomView, why: &str, style: Style) -> ExitCode {
    let why = match room.removed() {
        Some(reason) => format!("removed by the server ({reason})"),
        None => why.to_owned(),
    };
    emit(&style.error(&format!("! disconnected: {why}")));
    ExitCode::from(EXIT_CLOSED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(password: Option<&str>, token: Option<&str>) -> Login {
        Login {
            server: "127.0.0.1:1".into(),
            tls: ClientTls::Plain,
            name: "alice".into(),
            password: password.map(str::to_owned),
            token: token.map(str::to_owned),
        }
    }

    #[test]
    fn a_reconnect_presents_the_token_before_the_password() {
        assert_eq!(
            login(Some("pw"), Some("tok")).credentials(),
            Credentials::Token("tok".into())
        );
        assert_eq!(
            login(Some("pw"), None).credentials(),
            Credentials::Password("pw".into())
        );
        assert_eq!(login(None, None).credentials(), Credentials::Guest);
    }

    #[test]
    fn only_passing_refusals_are_retried() {
        assert!(retry_refusal(ErrorCode::ServerFull));
        assert!(retry_refusal(ErrorCode::AuthThrottled));
        assert!(!retry_refusal(ErrorCode::Version));
        assert!(!retry_refusal(ErrorCode::NameRegistered));
        assert!(!retry_refusal(ErrorCode::AuthFailed));
    }

    #[test]
    fn typed_lines_become_commands() {
        assert_eq!(command("hello"), Command::Say("hello"));
        assert_eq!(command("//who"), Command::Say("/who"));
        assert_eq!(command("  "), Command::Nothing);
        assert_eq!(command("/who"), Command::Who);
        assert_eq!(command("/files"), Command::Files);
        assert_eq!(
            command("/send  my report.pdf "),
            Command::Send("my report.pdf")
        );
        assert_eq!(command("/send"), Command::Usage("/send PATH"));
        assert_eq!(command("/accept 7"), Command::Accept(7));
        assert_eq!(command("/accept"), Command::Usage("/accept ID"));
        assert_eq!(command("/accept x"), Command::Usage("/accept ID"));
        assert_eq!(command("/decline 8"), Command::Decline(8));
        assert_eq!(command("/cancel\t9"), Command::Cancel(9));
        assert_eq!(command("/nope 1"), Command::Unknown("/nope"));
        assert_eq!(command("/history"), Command::History(HISTORY_PAGE));
        assert_eq!(command("/history 50"), Command::History(50));
        assert_eq!(command("/history 0"), Command::Usage("/history [N]"));
        assert_eq!(command("/history x"), Command::Usage("/history [N]"));
    }

    #[test]
    fn moderation_commands_take_a_name_minutes_and_a_reason() {
        assert_eq!(
            command("/ban bob 30 flooding the room"),
            Command::Moderate(Moderation::Remove {
                ban: true,
                name: "bob",
                minutes: Some(30),
                reason: Some("flooding the room"),
            })
        );
        assert_eq!(
            command("/kick bob 30 seconds of spam"),
            Command::Moderate(Moderation::Remove {
                ban: false,
                name: "bob",
                minutes: None,
                reason: Some("30 seconds of spam"),
            })
        );
        assert_eq!(
            command("/mute eve"),
            Command::Moderate(Moderation::Mute {
                name: "eve",
                minutes: None,
                reason: None,
            })
        );
        assert_eq!(
            command("/mute eve 5"),
            Command::Moderate(Moderation::Mute {
                name: "eve",
                minutes: Some(5),
                reason: None,
            })
        );
        assert_eq!(
            command("/unmute eve"),
            Command::Moderate(Moderation::Lift {
                ban: false,
                name: "eve"
            })
        );
        assert_eq!(
            command("/op ann moderator"),
            Command::Moderate(Moderation::Role {
                name: "ann",
                role: "moderator"
            })
        );
        assert_eq!(
            command("/delete 42"),
            Command::Moderate(Moderation::Delete(42))
        );
        assert_eq!(command("/delete x"), Command::Usage("/delete ID"));
        assert!(matches!(command("/ban"), Command::Usage(_)));
        assert!(matches!(command("/op ann"), Command::Usage(_)));
    }

    #[test]
    fn room_commands_take_a_name_or_fall_back_to_the_current_room() {
        assert_eq!(command("/rooms"), Command::Rooms);
        assert_eq!(command("/join dev"), Command::Join("dev"));
        assert_eq!(command("/join  #dev team "), Command::Join("#dev team"));
        assert_eq!(command("/join"), Command::Usage("/join NAME"));
        assert_eq!(command("/join   "), Command::Usage("/join NAME"));
        assert_eq!(command("/part"), Command::Part(None));
        assert_eq!(command("/part dev"), Command::Part(Some("dev")));
        assert_eq!(command("/leave #dev"), Command::Part(Some("#dev")));
        assert_eq!(command("/topic"), Command::Topic(None));
        assert_eq!(
            command("/topic  ship it friday "),
            Command::Topic(Some("ship it friday"))
        );
        assert_eq!(command("/room"), Command::Room(None));
        assert_eq!(command("/room lobby"), Command::Room(Some("lobby")));
        assert_eq!(command("/roomz"), Command::Unknown("/roomz"));
        assert_eq!(command("/join ops private"), Command::JoinPrivate("ops"));
        assert_eq!(command("/join private"), Command::Join("private"));
        assert_eq!(command("/invite carol"), Command::Invite("carol"));
        assert_eq!(command("/invite"), Command::Usage("/invite NAME"));
        assert_eq!(command("/private"), Command::Mode(true));
        assert_eq!(command("/public"), Command::Mode(false));
        assert_eq!(
            command("/send @bob a b.txt"),
            Command::SendTo("bob", "a b.txt")
        );
        assert_eq!(command("/send @bob"), Command::Usage("/send @NAME PATH"));
        assert_eq!(command("/send notes.txt"), Command::Send("notes.txt"));
        assert_eq!(command("//join dev"), Command::Say("/join dev"));
    }
}
