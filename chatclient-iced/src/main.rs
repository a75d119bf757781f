//! `chatclient-iced`: the desktop chat client.
//!
//! ```text
//! chatclient-iced [--server HOST:PORT] [--name NAME] [--downloads DIR]
//!                 [--audio-input FILE.wav] [--audio-output FILE.wav|null]
//!                 [--no-tls | --insecure | --ca-file FILE | --system-roots]
//!                 [--known-servers FILE] [--ptt-key KEY|none]
//! ```
//! The connection is TLS, the server's certificate trusted on first use
//! (remembered in the known-servers file, asked about in the window when it
//! changes) unless a flag says otherwise.
//! With `--name` the login screen is skipped. `CHATCLIENT_FRAME_LOG=1`
//! writes a summary of how far the UI lags behind arriving messages to
//! stderr every 5 s.

use std::path::PathBuf;
use std::process::ExitCode;

use chatclient_iced::audio::{AudioIn, AudioOut, Devices};
use chatclient_iced::hotkey::PttKey;
use chatclient_iced::net::Security;
use chatclient_iced::{App, Config};
use clap::Parser;

/// Desktop chat client.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Server address (host:port), prefilled on the login screen.
    #[arg(long, default_value = chatclient_iced::screen::login::DEFAULT_SERVER)]
    server: String,
    /// Log in with this name straight away (skips the login screen).
    #[arg(long)]
    name: Option<String>,
    /// Directory accepted files are saved in (created when first needed).
    #[arg(long, default_value = "downloads")]
    downloads: PathBuf,
    /// Use this WAV file as the microphone instead of the audio device:
    /// played in real time, over and over (demos and tests on machines
    /// without audio).
    #[arg(long, value_name = "FILE.wav")]
    audio_input: Option<PathBuf>,
    /// Play calls and voice messages into this WAV file (written when the
    /// call or playback stops), or `null` to discard them, instead of the
    /// audio device; paced in real time.
    #[arg(long, value_name = "FILE.wav|null")]
    audio_output: Option<String>,
    /// Plain TCP, no TLS: anyone on the network can read everything (for a
    /// server started with --no-tls on a trusted network).
    #[arg(long, conflicts_with_all = ["insecure", "ca_file", "system_roots", "known_servers"])]
    no_tls: bool,
    /// TLS without checking the server's certificate (tests): encrypted,
    /// but anyone on the path can pose as the server. The window says so.
    #[arg(long, conflicts_with_all = ["ca_file", "system_roots", "known_servers"])]
    insecure: bool,
    /// Verify the server's certificate against these PEM CA certificates
    /// (the server name is the host part of --server).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["system_roots", "known_servers"])]
    ca_file: Option<PathBuf>,
    /// Verify the server's certificate against the system's CAs.
    #[arg(long, conflicts_with = "known_servers")]
    system_roots: bool,
    /// The known-servers file for trust on first use (default: the
    /// CHAT_KNOWN_SERVERS environment variable, else chat/known_servers in
    /// the user's config directory).
    #[arg(long, value_name = "FILE")]
    known_servers: Option<PathBuf>,
    /// The push-to-talk key: held, it sends your voice while push-to-talk
    /// is on. Grabbed for the whole desktop on X11 (it then works while
    /// another window has the focus), in this window only elsewhere.
    /// Modifiers first: `ScrollLock`, `Ctrl+Alt+KeyT`; `none` for no key.
    #[arg(long, env = "CHAT_PTT_KEY", value_name = "KEY|none",
          default_value = chatclient_iced::hotkey::DEFAULT_KEY, value_parser = ptt_key)]
    ptt_key: PttChoice,
}

/// `--ptt-key`: a key, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PttChoice(Option<PttKey>);

fn ptt_key(s: &str) -> Result<PttChoice, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(PttChoice(None));
    }
    PttKey::parse(s)
        .map(|k| PttChoice(Some(k)))
        .map_err(|e| e.to_string())
}

impl Args {
    /// What the TLS flags chose (clap has refused contradictory ones).
    fn security(&self) -> Security {
        if self.no_tls {
            Security::Plain
        } else if self.insecure {
            Security::Insecure
        } else if let Some(ca) = &self.ca_file {
            Security::CaFile(ca.clone())
        } else if self.system_roots {
            Security::SystemRoots
        } else {
            Security::FirstUse {
                known_servers: self.known_servers.clone(),
            }
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatclient-iced: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    // winit panics without a display; say it in words instead.
    #[cfg(all(unix, not(target_os = "macos")))]
    check_display()?;
    chatclient_iced::format::warm_up();
    let security = args.security();
    if security == Security::Insecure {
        eprintln!(
            "chatclient-iced: warning: --insecure: the server's certificate is not verified; \
             anyone on the path can pose as the server and read everything"
        );
    } else if security == Security::Plain {
        eprintln!("chatclient-iced: warning: --no-tls: the connection is not encrypted");
    }
    let config = Config {
        security,
        ptt_key: args.ptt_key.0,
        server: args.server,
        name: args.name,
        downloads: args.downloads,
        frame_log: std::env::var_os("CHATCLIENT_FRAME_LOG").is_some_and(|v| v == "1"),
        audio: Devices {
            input: args.audio_input.map(AudioIn::Wav).unwrap_or_default(),
            output: args
                .audio_output
                .as_deref()
                .map(AudioOut::parse)
                .unwrap_or_default(),
        },
    };
    let result = iced::application(move || App::new(config.clone()), App::update, App::view)
        .title(App::title)
        .subscription(App::subscription)
        .theme(App::theme)
        .window_size((1100.0, 720.0))
        .run()
        .map_err(|e| anyhow::anyhow!("the window failed: {e}"));
    // Recordings were sent (the server keeps its copy) or discarded.
    let _ = std::fs::remove_dir_all(chatclient_iced::audio::recordings_dir());
    result
}

/// Fails with a sentence when there is no X11 display to open a window on:
/// `DISPLAY` unset or empty, or a local display (`:N`) whose server socket
/// does not answer. (winit would panic with a backtrace instead.) Remote
/// displays (`host:N`) are left to the window system to judge.
#[cfg(all(unix, not(target_os = "macos")))]
fn check_display() -> anyhow::Result<()> {
    let display = std::env::var("DISPLAY").unwrap_or_default();
    if display.is_empty() {
        anyhow::bail!(
            "no X11 display: DISPLAY is not set or empty (on Wayland the client runs through \
             XWayland; headless, start one with Xvfb)"
        );
    }
    if let Some(local) = display.strip_prefix(':') {
        let number = local.split('.').next().unwrap_or_default();
        let socket = format!("/tmp/.X11-unix/X{number}");
        if !x_socket_answers(&socket) {
            anyhow::bail!(
                "cannot open X11 display {display}: nothing answers at {socket} \
                 (is the X server running?)"
            );
        }
    }
    Ok(())
}

/// Whether an X server listens at `path`: the socket file, or (Linux) the
/// abstract socket of the same name that X servers also open and that works
/// where the file is not visible (some containers and sandboxes).
#[cfg(all(unix, not(target_os = "macos")))]
fn x_socket_answers(path: &str) -> bool {
    use std::os::unix::net::UnixStream;
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::SocketAddrExt;
        if let Ok(addr) = std::os::unix::net::SocketAddr::from_abstract_name(path.as_bytes())
            && UnixStream::connect_addr(&addr).is_ok()
        {
            return true;
        }
    }
    UnixStream::connect(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("chatclient-iced").chain(args.iter().copied()))
    }

    #[test]
    fn tls_flags_choose_the_security_and_trust_on_first_use_is_the_default() {
        let security = |a: &[&str]| parse(a).map(|a| a.security()).ok();
        assert_eq!(
            security(&[]),
            Some(Security::FirstUse {
                known_servers: None
            })
        );
        assert_eq!(
            security(&["--known-servers", "ks"]),
            Some(Security::FirstUse {
                known_servers: Some("ks".into())
            })
        );
        assert_eq!(security(&["--no-tls"]), Some(Security::Plain));
        assert_eq!(security(&["--insecure"]), Some(Security::Insecure));
        assert_eq!(
            security(&["--ca-file", "ca.pem"]),
            Some(Security::CaFile("ca.pem".into()))
        );
        assert_eq!(security(&["--system-roots"]), Some(Security::SystemRoots));
    }

    #[test]
    fn the_push_to_talk_key_is_f8_unless_chosen_and_none_turns_it_off() {
        let key = |a: &[&str]| parse(a).map(|a| a.ptt_key.0.map(|k| k.label().to_owned()));
        assert_eq!(key(&[]).ok(), Some(Some("F8".to_owned())));
        assert_eq!(
            key(&["--ptt-key", "ScrollLock"]).ok(),
            Some(Some("ScrollLock".to_owned()))
        );
        assert_eq!(key(&["--ptt-key", "none"]).ok(), Some(None));
        assert!(parse(&["--ptt-key", "Banana"]).is_err());
    }

    #[test]
    fn contradictory_tls_flags_are_refused() {
        for args in [
            &["--no-tls", "--insecure"][..],
            &["--insecure", "--ca-file", "x"],
            &["--ca-file", "x", "--system-roots"],
            &["--no-tls", "--known-servers", "ks"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }
}
