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
//! Each line on stdin is sent to the room; `/who`, `/help` and `/quit` are
//! commands (`//text` sends `/text`). End of input quits like `/quit`.
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
//! Files: `/send PATH` offers a file to the room; others see
//! `* alice offers report.pdf (1.2 MB) — /accept 7 or /decline 7`.
//! `/accept 7` downloads it into `--downloads DIR` (default `downloads`,
//! created when first needed) and prints
//! `* saved report.pdf to downloads/report.pdf (sha256 ok)`; `/decline 7`
//! says no; `/cancel 7` stops an upload or a download (accepting a
//! cancelled download again resumes it); `/files` lists what is on offer.
//! `/history [N]` shows N (default 20) messages older than the oldest one
//! shown, asked from the server page by page (docs/protocol.md 21.3). The
//! client does not reconnect by itself: a lost connection ends it (exit 1).
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
//! Exit status: 0 after `/quit` or end of input; 1 when the connection fails
//! or the server closes it; 2 for a bad command line; 3 when the name is
//! refused and stdin is not a terminal (or the name prompt hits end of input);
//! 4 when the server's TLS certificate is refused (changed since it was
//! remembered, or not verified by the CA) or the TLS flags are unusable.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use chat_examples::files::FileView;
use chat_examples::progress::Progress;
use chat_examples::render::{RoomView, Style, emit};
use chat_examples::text::one_line;
use chat_examples::tls::{TlsArgs, trust_notice};
use chatcore::client::{ClientSender, FileKind, TransferEvent};
use chatcore::protocol::{ClientMessage, ErrorCode};
use chatcore::tls::TlsError;
use chatcore::{Client, ClientError, Event};
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
    /// How to connect (TLS and its verification).
    #[command(flatten)]
    tls: TlsArgs,
}

/// Everything the main loop waits for, from both reading threads.
enum Input {
    /// A line typed (without its line ending).
    Line(String),
    /// End of stdin (or a read error, with its text).
    Eof(Option<String>),
    /// Something from the server.
    Net(Event),
    /// A line to print from a helper thread (a `/send` that failed).
    Notice(String),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let interactive = io::stdin().is_terminal();
    let style = Style::detect();
    let (client, requested) = match login(&args, interactive, style) {
        Ok(logged_in) => logged_in,
        Err(code) => return ExitCode::from(code),
    };
    let mut room = RoomView::new(client.welcome(), style);
    for line in room.welcome_lines(client.welcome(), &requested) {
        emit(&line);
    }
    if interactive {
        emit(&style.notice("* type a message and press Enter; /help for commands"));
    }

    let sender = client.sender();
    if args.register {
        match env_password(&args) {
            Some(password) => {
                let _ = sender.send(&ClientMessage::Register(chatcore::protocol::Register {
                    password,
                }));
            }
            None => emit(&style.error("! --register: the --password-env variable is not set")),
        }
    }
    let (tx, inputs) = sync_channel(INPUT_QUEUE);
    let notices = tx.clone();
    if let Err(e) = spawn_readers(client, tx) {
        eprintln!("chat: cannot start threads: {e}");
        return ExitCode::from(EXIT_CLOSED);
    }
    let mut files = FileView::new(style, Progress::detect());

    // One blocking receive per input: no polling, no timers while idle.
    while let Ok(input) = inputs.recv() {
        match input {
            Input::Line(line) => match command(&line) {
                Command::Say(text) => {
                    // A failed write means the connection is gone; the
                    // reader reports that as `Closed` right after.
                    let _ = sender.send_chat(text);
                }
                Command::Nothing => {}
                Command::Who => files.print(&room.who_line()),
                Command::Help => help(&files, style),
                Command::Unknown(cmd) => {
                    files.print(&style.error(&format!("! unknown command {cmd} (try /help)")))
                }
                Command::Usage(usage) => files.print(&style.error(&format!("! usage: {usage}"))),
                Command::Send(path) => send_file(&sender, path, &notices),
                Command::Accept(id) => {
                    let line = accept(&sender, id, &args.downloads, &room, &mut files, style);
                    files.print(&line);
                }
                Command::Decline(id) => {
                    let line = match sender.decline_file(id) {
                        Ok(()) => {
                            let name = room.offer_name(id).unwrap_or_else(|| id.to_string());
                            room.forget_offer(id);
                            style.notice(&format!("* declined {name}"))
                        }
                        Err(e) => style.error(&format!("! cannot decline {id}: {e}")),
                    };
                    files.print(&line);
                }
                Command::Cancel(id) => {
                    let line = match sender.cancel_file(id) {
                        Ok(()) => style.notice(&format!("* cancelling {id}")),
                        Err(e) => style.error(&format!("! cannot cancel {id}: {e}")),
                    };
                    files.print(&line);
                }
                Command::Files => {
                    for line in room.files_lines() {
                        files.print(&line);
                    }
                }
                Command::History(n) => {
                    // The answer comes back as a `history` event, printed
                    // by `room.apply`; errors likewise.
                    let _ = sender.request_history(room.oldest_shown(), n);
                }
                Command::Register(typed) => {
                    let password = match typed {
                        Some(p) => {
                            files.print(&style.error(
                                "! note: that password was shown on screen; \
                                 prefer --password-env and a bare /register",
                            ));
                            Some(p.to_owned())
                        }
                        None => env_password(&args),
                    };
                    match password {
                        Some(p) => {
                            let _ = sender.send(&ClientMessage::Register(
                                chatcore::protocol::Register { password: p },
                            ));
                        }
                        None => files.print(&style.error(
                            "! usage: /register PASSWORD, or /register with --password-env VAR set",
                        )),
                    }
                }
                Command::Quit => return quit(&sender, &inputs, &mut room),
            },
            Input::Eof(error) => {
                if let Some(e) = error {
                    eprintln!("chat: reading stdin: {e}");
                }
                return quit(&sender, &inputs, &mut room);
            }
            Input::Net(Event::Message(msg)) => {
                for line in room.apply(&msg) {
                    files.print(&line);
                }
            }
            Input::Net(Event::Transfer(event)) => {
                if let TransferEvent::Failed {
                    transfer,
                    code: Some(ErrorCode::UnknownTransfer),
                    ..
                } = &event
                {
                    // The offer is gone (protocol.md 17.6).
                    room.forget_offer(*transfer);
                }
                for line in files.on_event(&event) {
                    files.print(&line);
                }
            }
            Input::Notice(line) => files.print(&line),
            Input::Net(Event::Closed(why)) => return closed(&room, &why, style),
        }
    }
    // Both readers gone without a `Closed`: cannot happen, but is an end.
    closed(&room, "connection lost", style)
}

/// `/send PATH`: hashing a large file takes a while, so it is done on a
/// thread of its own; only a failure comes back as a line to print (the
/// rest comes as transfer events).
fn send_file(sender: &ClientSender, path: &str, notices: &SyncSender<Input>) {
    let sender = sender.clone();
    let notices = notices.clone();
    let path = PathBuf::from(path);
    let spawned = thread::Builder::new()
        .name("send-file".into())
        .spawn(move || {
            if let Err(e) = sender.send_file(&path, FileKind::File) {
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

/// Logs in, asking for a name as long as that makes sense.
fn login(args: &Args, interactive: bool, style: Style) -> Result<(Client, String), u8> {
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
        let credentials = match env_password(args) {
            Some(p) if !args.register => chatcore::Credentials::Password(p),
            _ => chatcore::Credentials::Guest,
        };
        match Client::connect_with_as(&args.server, &name, &tls, &credentials) {
            Ok(client) => {
                if let Some(notice) = trust_notice(client.trust(), &args.server, &tls) {
                    eprintln!("{notice}");
                }
                return Ok((client, name));
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

/// Starts the stdin thread and the thread that hands over the client's
/// events; both feed `tx`. The client moves into its thread.
fn spawn_readers(client: Client, tx: SyncSender<Input>) -> io::Result<()> {
    let net_tx = tx.clone();
    thread::Builder::new()
        .name("server-events".into())
        .spawn(move || {
            loop {
                let event = client
                    .recv()
                    .unwrap_or_else(|_| Event::Closed("gone".into()));
                let last = matches!(event, Event::Closed(_));
                if net_tx.send(Input::Net(event)).is_err() || last {
                    return;
                }
            }
        })?;
    thread::Builder::new().name("stdin".into()).spawn(move || {
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
    })?;
    Ok(())
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
    /// A command with missing or bad arguments: how to use it.
    Usage(&'static str),
    Unknown(&'a str),
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
        "/send" if rest.is_empty() => Command::Usage("/send PATH"),
        "/send" => Command::Send(rest),
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
        "* /who          who is online",
        "* /send PATH    offer a file to the room",
        "* /files        list the files on offer",
        "* /history [N]  N earlier messages (default 20) before the oldest shown",
        "* /accept ID    download file ID (into --downloads DIR; resumes a cancelled one)",
        "* /decline ID   say no to file ID",
        "* /cancel ID    stop sending or downloading file ID",
        "* /register     register your name with the --password-env password",
        "* /register PW  the same with PW (shown on screen: prefer the former)",
        "* /quit         leave the room (end of input does the same)",
        "* /help         this text",
        "* any other line is sent to the room; start it with // to send a line beginning with /",
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

/// The server closed the connection: say why, exit 1.
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
}
