//! `embedded_server`: a program that hosts a room with `chatcore::Server`,
//! steers it with [`Hooks`] and drives it with a [`ServerHandle`].
//!
//! ```text
//! cargo run -p chat-examples --example embedded_server -- --listen 127.0.0.1:6789 --no-voice
//! ```
//!
//! - The name `admin` (any case) is refused ([`JoinDecision::Deny`]).
//! - A few bad words are masked with `*` ([`ChatDecision::Rewrite`]).
//! - Joins and leaves are logged to stdout. Hooks run on the server's loop
//!   and must not block, so they only queue log lines; a logger thread
//!   writes them.
//! - Another thread broadcasts a greeting every `--greet-every` seconds and
//!   prints the server's counters.
//! - Lines on stdin are operator commands: `say TEXT`, `who`, `kick NAME`,
//!   `stats`, `quit` (`help` lists them). `quit` shuts down cleanly: members
//!   are told (`left`, reason `shutdown`) before the sockets close.
//!
//! Set `RUST_LOG` (e.g. `RUST_LOG=chatcore=debug`) for the library's own logs
//! on stderr; the default shows warnings only.

use std::io::{self, BufRead, IsTerminal};
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread;
use std::time::Duration;

use anyhow::Context;
use chat_examples::clock;
use chat_examples::text::{censor, one_line};
use chatcore::protocol::{LeaveReason, UserInfo};
use chatcore::{ChatDecision, Hooks, JoinDecision, Server, ServerHandle, ServerStats};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Words the filter masks.
const BAD_WORDS: &[&str] = &["darn", "heck", "frak", "smeg"];

/// A chat server with a moderator, a greeter and an operator console.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Chat listening address.
    #[arg(long, default_value = "127.0.0.1:6789")]
    listen: SocketAddr,
    /// Voice listening address (UDP and TCP).
    #[arg(long, default_value = "127.0.0.1:5678")]
    voice_listen: SocketAddr,
    /// Do not open the voice port.
    #[arg(long)]
    no_voice: bool,
    /// Seconds between greetings (and stats lines); 0 for none.
    #[arg(long, default_value_t = 60)]
    greet_every: u64,
    /// What the greeting says.
    #[arg(
        long,
        default_value = "Welcome! Be nice; try !help if a bot is around."
    )]
    greeting: String,
}

/// The hooks: vet names, filter words, report joins and leaves.
struct Moderator {
    log: Sender<String>,
    /// Where the login being vetted comes from: `on_join` sees the peer,
    /// `on_joined` (called right after, for the same login) does not.
    peer: Option<SocketAddr>,
}

impl Moderator {
    fn log(&self, line: String) {
        // The logger only goes away when the program ends.
        let _ = self.log.send(line);
    }
}

impl Hooks for Moderator {
    fn on_join(&mut self, name: &str, peer: SocketAddr) -> JoinDecision {
        if name.eq_ignore_ascii_case("admin") {
            self.log(format!("denied the name {:?} to {peer}", name));
            return JoinDecision::Deny(format!("the name {name:?} is reserved"));
        }
        self.peer = Some(peer);
        JoinDecision::Accept
    }

    fn on_joined(&mut self, user: &UserInfo) {
        let from = self
            .peer
            .take()
            .map(|p| format!(" from {p}"))
            .unwrap_or_default();
        self.log(format!(
            "+ {} joined (session {}){from}",
            one_line(&user.name),
            user.session
        ));
    }

    fn on_chat(&mut self, from: &UserInfo, text: &str) -> ChatDecision {
        match censor(text, BAD_WORDS) {
            Some(clean) => {
                self.log(format!("~ masked a word from {}", one_line(&from.name)));
                ChatDecision::Rewrite(clean)
            }
            None => ChatDecision::Deliver,
        }
    }

    fn on_leave(&mut self, user: &UserInfo, reason: LeaveReason) {
        self.log(format!("- {} left ({reason})", one_line(&user.name)));
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();

    let (log, lines) = channel();
    let logger = thread::Builder::new()
        .name("logger".into())
        .spawn(move || logger(lines))?;

    let server = Server::builder()
        .listen(args.listen)
        .voice_listen((!args.no_voice).then_some(args.voice_listen))
        .hooks(Moderator {
            log: log.clone(),
            peer: None,
        })
        .build()
        .with_context(|| format!("cannot start a server on {}", args.listen))?;
    let voice = server
        .voice_addr()
        .map_or_else(|| "off".to_owned(), |a| a.to_string());
    let _ = log.send(format!(
        "listening on {} (voice: {voice}); type help for commands",
        server.local_addr()
    ));

    let handle = server.handle();
    let (stop, stopped) = channel::<()>();
    let greeter = (args.greet_every > 0)
        .then(|| {
            let (handle, log) = (handle.clone(), log.clone());
            let every = Duration::from_secs(args.greet_every);
            let greeting = args.greeting.clone();
            thread::Builder::new()
                .name("greeter".into())
                .spawn(move || greeter(&handle, &log, every, &greeting, &stopped))
        })
        .transpose()?;
    {
        let handle = handle.clone();
        // Not joined: it may be blocked reading stdin when the server stops.
        thread::Builder::new()
            .name("console".into())
            .spawn(move || console(&handle))?;
    }

    // Serve on this thread until `quit` (or every handle asking for it).
    let result = server.run();
    drop(stop);
    if let Some(greeter) = greeter {
        let _ = greeter.join();
    }
    let _ = log.send("stopped".to_owned());
    // The hooks went with the server: this was the last sender, so the
    // logger prints what is queued and ends.
    drop(log);
    let _ = logger.join();
    result.context("the server failed")
}

/// Prints each log line with a timestamp.
fn logger(lines: Receiver<String>) {
    for line in lines {
        println!("[{}] {line}", clock::hms(chatcore::time::now_ms()));
    }
}

/// Every `every`: a greeting to the room and the counters to the log.
fn greeter(
    handle: &ServerHandle,
    log: &Sender<String>,
    every: Duration,
    greeting: &str,
    stopped: &Receiver<()>,
) {
    // `recv_timeout` doubles as an interruptible sleep: the main thread
    // drops the sender when the server has stopped.
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
        if handle.broadcast(greeting).is_err() {
            return;
        }
        match handle.stats() {
            Ok(stats) => {
                let _ = log.send(stats_line(&stats));
            }
            Err(_) => return,
        }
    }
}

fn stats_line(s: &ServerStats) -> String {
    format!(
        "stats: {} members, {} connections, {} accepted, {} messages, {} deliveries, \
         {} bytes out, {} errors sent, {} slow, {} timeouts",
        s.members,
        s.connections,
        s.accepted,
        s.messages,
        s.deliveries,
        s.bytes_out,
        s.errors_sent,
        s.slow_disconnects,
        s.timeouts
    )
}

/// Operator commands from stdin. End of input only stops the console.
/// Not a hook, so it may print directly.
fn console(handle: &ServerHandle) {
    let say = |line: String| println!("[{}] {line}", clock::hms(chatcore::time::now_ms()));
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { return };
        let line = line.trim();
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        let result = match cmd {
            "" => Ok(()),
            "say" if !rest.is_empty() => handle.broadcast(rest),
            "who" => handle.users().map(|mut users| {
                users.sort_by(|a, b| a.name.cmp(&b.name));
                let names: Vec<String> = users
                    .iter()
                    .map(|u| format!("{} (session {})", one_line(&u.name), u.session))
                    .collect();
                say(format!("{} online: {}", users.len(), names.join(", ")));
            }),
            "kick" if !rest.is_empty() => kick(handle, rest).map(say),
            "stats" => handle.stats().map(|s| say(stats_line(&s))),
            "quit" => {
                say("shutting down".to_owned());
                let _ = handle.shutdown();
                return;
            }
            _ => {
                say("commands: say TEXT, who, kick NAME, stats, quit".to_owned());
                Ok(())
            }
        };
        if result.is_err() {
            return; // the server has stopped
        }
    }
}

/// Kicks the member called `name`; says what happened.
fn kick(handle: &ServerHandle, name: &str) -> Result<String, chatcore::HandleError> {
    let Some(user) = handle.users()?.into_iter().find(|u| u.name == name) else {
        return Ok(format!("nobody is called {name:?}"));
    };
    Ok(if handle.kick(user.session)? {
        format!("kicked {name}")
    } else {
        format!("{name} had already left")
    })
}
