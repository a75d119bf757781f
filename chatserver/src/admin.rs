//! The admin interface: a Unix socket `DATA_DIR/admin.sock` (mode 0600:
//! only the daemon's user, and root, may connect) served by one thread of
//! the daemon, and `chatserver admin ...`, which talks to it.
//!
//! One request per line, one JSON answer per line (docs/operations.md,
//! "Admin commands"): `{"cmd":"who"}` → `{"ok":true,"result":[...]}` or
//! `{"ok":false,"error":"..."}`. Every command goes through
//! [`ServerHandle`], so the loop never waits for this thread.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chatcore::ServerHandle;
use chatcore::protocol::{ClientMessage, Moderate};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::reload::Reloader;

/// A client that sends nothing for this long is dropped.
const IDLE: Duration = Duration::from_secs(30);
/// Longest request line.
const MAX_LINE: u64 = 64 * 1024;

/// One admin request (the `cmd` field names it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Everyone logged in: `[{"name","session"}]`.
    Who,
    /// Every room: `[{"room","topic","members","default"}]`.
    Rooms,
    /// Remove a member (from `room`, or from the server).
    Kick(Target),
    /// Ban a name (and its address) from `room` or the server, for
    /// `minutes` or for good.
    Ban(Target),
    /// Lift a ban.
    Unban(Target),
    /// Send every member a server notice.
    Notice {
        /// The text.
        text: String,
    },
    /// Reload the configuration and the certificate (like SIGHUP).
    Reload,
    /// The server's counters.
    Stats,
}

impl Request {
    /// The `cmd` value, for the log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Who => "who",
            Self::Rooms => "rooms",
            Self::Kick(_) => "kick",
            Self::Ban(_) => "ban",
            Self::Unban(_) => "unban",
            Self::Notice { .. } => "notice",
            Self::Reload => "reload",
            Self::Stats => "stats",
        }
    }
}

/// Whom a moderation command is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct Target {
    /// The member's name.
    pub name: String,
    /// A named room (default: the default room, i.e. the whole server).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// For how long, in minutes (ban only; default: until lifted).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    /// A reason shown to the room.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Target {
    fn moderate(self) -> Moderate {
        Moderate {
            name: self.name,
            room: self.room,
            minutes: self.minutes,
            reason: self.reason,
        }
    }
}

/// Opens the admin socket and serves it on a new thread. A socket file
/// left by a server that is gone is replaced; one that a running server
/// answers on is left alone (this server then has no admin socket: an
/// error, so the operator knows).
pub fn serve(path: &Path, server: ServerHandle, reloader: Reloader) -> anyhow::Result<()> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another server answers on {} (give each server its own --data-dir)",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale {}", path.display()))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot bind {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    tracing::info!("admin socket at {}", path.display());
    std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        if let Err(e) = session(stream, &server, &reloader) {
                            tracing::debug!("admin connection ended: {e}");
                        }
                    }
                    Err(e) => {
                        tracing::debug!("admin accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
        .context("cannot start the admin thread")?;
    Ok(())
}

/// Answers the requests of one connection, one per line.
fn session(stream: UnixStream, server: &ServerHandle, reloader: &Reloader) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        let n = (&mut reader).take(MAX_LINE).read_line(&mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                tracing::info!(cmd = req.name(), "admin request");
                match run(req, server, reloader) {
                    Ok(result) => json!({ "ok": true, "result": result }),
                    Err(e) => json!({ "ok": false, "error": crate::one_line(&e) }),
                }
            }
            Err(e) => json!({ "ok": false, "error": format!("bad request: {e}") }),
        };
        writeln!(out, "{answer}")?;
    }
}

/// Carries out one request.
pub fn run(req: Request, server: &ServerHandle, reloader: &Reloader) -> anyhow::Result<Value> {
    Ok(match req {
        Request::Who => serde_json::to_value(server.members()?)?,
        Request::Rooms => serde_json::to_value(server.rooms()?)?,
        Request::Kick(t) => {
            server.moderate(ClientMessage::Kick(t.moderate()))?;
            Value::Null
        }
        Request::Ban(t) => {
            server.moderate(ClientMessage::Ban(t.moderate()))?;
            Value::Null
        }
        Request::Unban(t) => {
            server.moderate(ClientMessage::Unban(t.moderate()))?;
            Value::Null
        }
        Request::Notice { text } => {
            if text.trim().is_empty() {
                anyhow::bail!("a notice needs a text");
            }
            server.notice(text)?;
            Value::Null
        }
        Request::Reload => serde_json::to_value(reloader.reload()?)?,
        Request::Stats => serde_json::to_value(server.stats()?)?,
    })
}

/// `chatserver admin`: talk to a running server's admin socket.
#[derive(Debug, Parser)]
#[command(name = "chatserver admin")]
pub struct AdminCli {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
    /// The server's data directory (its admin.sock) [default: the server's
    /// default data directory]
    #[arg(long, value_name = "DIR", global = true, env = "CHATSERVER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The admin socket itself (instead of DATA_DIR/admin.sock)
    #[arg(long, value_name = "PATH", global = true)]
    pub socket: Option<PathBuf>,
    /// The server's config file: its `data_dir` is used unless --data-dir
    /// is given
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        global = true,
        env = "CHATSERVER_CONFIG"
    )]
    pub config: Option<PathBuf>,
    /// Print the raw JSON answer
    #[arg(long, global = true)]
    pub json: bool,
}

/// An admin action.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// List everyone logged in (name and session).
    Who,
    /// List the rooms with their member counts.
    Rooms,
    /// Remove a member from a room (default: from the server).
    Kick(Target),
    /// Ban a member's name and address (default: from the server).
    Ban(Target),
    /// Lift a ban.
    Unban(Target),
    /// Send every member a notice from the server.
    Notice {
        /// The text (words are joined with spaces).
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Reload the configuration and the TLS certificate (like SIGHUP).
    Reload,
    /// Print the server's counters.
    Stats,
}

impl From<Action> for Request {
    fn from(a: Action) -> Self {
        match a {
            Action::Who => Self::Who,
            Action::Rooms => Self::Rooms,
            Action::Kick(t) => Self::Kick(t),
            Action::Ban(t) => Self::Ban(t),
            Action::Unban(t) => Self::Unban(t),
            Action::Notice { text } => Self::Notice {
                text: text.join(" "),
            },
            Action::Reload => Self::Reload,
            Action::Stats => Self::Stats,
        }
    }
}

/// Runs `chatserver admin ...`; `args` start with the program name.
pub fn client(args: Vec<String>) -> anyhow::Result<()> {
    let cli = AdminCli::try_parse_from(args.into_iter().skip(1))?;
    let path = match cli.socket {
        Some(p) => p,
        None => {
            let from_file = match &cli.config {
                Some(path) => crate::config::load_file(path)?.tls.data_dir,
                None => None,
            };
            match cli.data_dir.or(from_file) {
                Some(d) => d,
                None => crate::config::default_data_dir()?,
            }
            .join(crate::config::ADMIN_SOCKET)
        }
    };
    let req: Request = cli.action.into();
    let answer = ask(&path, &req)?;
    if cli.json {
        println!("{answer}");
    } else {
        print_human(&req, &answer);
    }
    if answer.get("ok") == Some(&Value::Bool(true)) {
        Ok(())
    } else {
        let error = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("failed");
        anyhow::bail!("{error}")
    }
}

/// Sends one request to the socket at `path` and reads its answer.
pub fn ask(path: &Path, req: &Request) -> anyhow::Result<Value> {
    let mut stream = UnixStream::connect(path).with_context(|| {
        format!(
            "cannot connect to {} (is the server running with this data directory?)",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(IDLE))?;
    writeln!(stream, "{}", serde_json::to_string(req)?)?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    serde_json::from_str(&line).context("the server's answer is not JSON")
}

/// The answer for people: tables for lists, `ok` for actions.
fn print_human(req: &Request, answer: &Value) {
    let Some(result) = answer.get("result") else {
        return;
    };
    match req {
        Request::Who => {
            for m in result.as_array().into_iter().flatten() {
                println!("{}\t{}", m["session"], m["name"].as_str().unwrap_or(""));
            }
        }
        Request::Rooms => {
            for r in result.as_array().into_iter().flatten() {
                let default = if r["default"] == Value::Bool(true) {
                    " (default)"
                } else {
                    ""
                };
                println!(
                    "{}{default}\t{} members\t{}",
                    r["room"].as_str().unwrap_or(""),
                    r["members"],
                    r["topic"].as_str().unwrap_or("")
                );
            }
        }
        Request::Stats => {
            if let Some(map) = result.as_object() {
                for (k, v) in map {
                    println!("{k}\t{v}");
                }
            }
        }
        Request::Reload => {
            let restart = result["restart_needed"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            println!(
                "reloaded; TLS certificate: {}",
                result["tls"].as_str().unwrap_or("")
            );
            if !restart.is_empty() {
                println!("needs a restart to apply: {restart}");
            }
        }
        _ => println!("ok"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_object_named_by_cmd() {
        let kick = Request::Kick(Target {
            name: "bob".into(),
            room: None,
            minutes: None,
            reason: Some("spam".into()),
        });
        let text = serde_json::to_string(&kick).expect("serialises");
        assert_eq!(text, r#"{"cmd":"kick","name":"bob","reason":"spam"}"#);
        assert_eq!(
            serde_json::from_str::<Request>(&text).expect("parses"),
            kick
        );
        let who: Request = serde_json::from_str(r#"{"cmd":"who"}"#).expect("parses");
        assert_eq!(who, Request::Who);
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"format_disk"}"#).is_err());
    }

    #[test]
    fn the_admin_command_is_well_formed() {
        use clap::CommandFactory;
        AdminCli::command().debug_assert();
    }
}
