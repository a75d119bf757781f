//! `bot`: a program that joins a room with `chatcore::Client` and answers
//! commands said there.
//!
//! ```text
//! cargo run -p chat-examples --example bot -- --server 127.0.0.1:6789
//! ```
//!
//! It connects like the terminal client: TLS with trust on first use by
//! default, `--ca-file`, `--system-roots`, `--insecure`, `--no-tls`,
//! `--known-servers` (see `chat_examples::tls`).
//!
//! | said in the room | answer |
//! |---|---|
//! | `!ping` | `pong` |
//! | `!time` | the server's time (from the message's timestamp) |
//! | `!who` | who is online |
//! | `!echo TEXT` | `TEXT` |
//! | `!help` | the list above |
//!
//! Its own messages are ignored. The room's events are printed like the
//! terminal client prints them. It exits when the server closes the
//! connection: 0 if the server shut down, 1 otherwise.

use std::process::ExitCode;

use chat_examples::clock::UtcTime;
use chat_examples::render::{RoomView, Style, emit};
use chat_examples::text::show_name;
use chat_examples::tls::{TlsArgs, trust_notice};
use chatcore::protocol::{Chat, LeaveReason, ServerMessage};
use chatcore::{Client, Event};
use clap::Parser;

/// A bot that answers `!ping`, `!time`, `!who`, `!echo` and `!help`.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Server address (host:port).
    #[arg(long, default_value = "127.0.0.1:6789")]
    server: String,
    /// Name to log in with.
    #[arg(long, default_value = "bot")]
    name: String,
    /// How to connect (TLS and its verification).
    #[command(flatten)]
    tls: TlsArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let style = Style::detect();
    let tls = match args.tls.client_tls("bot") {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("bot: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = match Client::connect_with(&args.server, &args.name, &tls) {
        Ok(client) => {
            if let Some(notice) = trust_notice(client.trust(), &args.server, &tls) {
                eprintln!("{notice}");
            }
            client
        }
        Err(e) => {
            eprintln!("bot: cannot join {}: {e}", args.server);
            return ExitCode::FAILURE;
        }
    };
    let mut room = RoomView::new(client.welcome(), style);
    emit(&style.notice(&format!(
        "* bot logged in as {} on {}",
        room.my_name(),
        args.server
    )));

    loop {
        let msg = match client.recv() {
            Ok(Event::Message(msg)) => msg,
            // The bot neither sends nor accepts files.
            Ok(Event::Transfer(_)) => continue,
            Ok(Event::Closed(why)) => {
                let why = room
                    .removed()
                    .map_or(why, |r| format!("removed by the server ({r})"));
                emit(&style.error(&format!("! disconnected: {why}")));
                return if room.removed() == Some(LeaveReason::Shutdown) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                };
            }
            Err(_) => return ExitCode::FAILURE,
        };
        for line in room.apply(&msg) {
            emit(&line);
        }
        if let ServerMessage::Chat(chat) = &msg
            && chat.session != room.me()
            && let Some(answer) = answer(chat, &room)
        {
            // Only a broken connection fails here; `recv` reports it next.
            let _ = client.send_chat(answer);
        }
    }
}

/// The answer to `chat`, if it is a command.
fn answer(chat: &Chat, room: &RoomView) -> Option<String> {
    let text = chat.text.trim();
    let (command, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let rest = rest.trim();
    match command {
        "!ping" => Some("pong".to_owned()),
        // The timestamp the server put on the command is its clock.
        "!time" => Some(format!("server time: {}", UtcTime::from_unix_ms(chat.ts))),
        "!who" => {
            // Quoted where a name could be misread (`bob, carol` is one name).
            let names = room.roster().names();
            let shown: Vec<_> = names.iter().map(|n| show_name(n)).collect();
            Some(format!("{} online: {}", names.len(), shown.join(", ")))
        }
        "!echo" if !rest.is_empty() => Some(rest.to_owned()),
        "!echo" => Some("usage: !echo TEXT".to_owned()),
        "!help" => Some("commands: !ping, !time, !who, !echo TEXT, !help".to_owned()),
        _ => None,
    }
}
