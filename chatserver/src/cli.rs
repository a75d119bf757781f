//! The command line. Every option is optional: a flag that is not given
//! leaves the environment's value (`CHATSERVER_<KEY>`), else the config
//! file's, else the default in place.
//!
//! The flags with their own field below are the common ones; every other
//! key of chatcore's configuration gets a flag and an environment variable
//! too, generated from chatcore's key list ([`command`]), whose value is a
//! TOML value (`--history-len 100`, `--spool-dir /srv/spool`,
//! `--operators '["alice"]'`) read as if it were written in the file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser};

use crate::logging::{LogFormat, LogLevel};

/// The chat-room daemon (see docs/operations.md).
///
/// Each setting comes from its flag, else its environment variable
/// (CHATSERVER_ and the key in capitals: CHATSERVER_LISTEN,
/// CHATSERVER_MAX_CLIENTS...), else the config file, else the default
/// shown. RUST_LOG is used when --log-level is not given.
/// Subcommands: `chatserver accounts --help`, `chatserver admin --help`.
#[derive(Debug, Parser)]
#[command(name = "chatserver", version)]
pub struct Cli {
    /// Chat listening address, IP:PORT (port 0 picks a free port)
    /// [default: 127.0.0.1:6789]
    #[arg(long, value_name = "ADDR", env = "CHATSERVER_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Voice listening address, IP:PORT, UDP and TCP [default: 127.0.0.1:5678]
    #[arg(
        long,
        value_name = "ADDR",
        conflicts_with = "no_voice",
        env = "CHATSERVER_VOICE_LISTEN"
    )]
    pub voice_listen: Option<SocketAddr>,

    /// Do not open the voice port
    #[arg(long, env = "CHATSERVER_NO_VOICE")]
    pub no_voice: bool,

    /// Ping a client silent this long, in ms; it is dropped after three
    /// times this (unless idle_timeout_ms is set) [default: 10000]
    #[arg(long, value_name = "MS", env = "CHATSERVER_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u32>,

    /// Most connections at once; more are refused with server_full
    /// [default: 10000]
    #[arg(long, value_name = "N", env = "CHATSERVER_MAX_CLIENTS")]
    pub max_clients: Option<usize>,

    /// Data directory: the self-signed TLS certificate (tls/), the history
    /// database (chat.db) and the admin socket (admin.sock) live there
    /// [default: the user's data directory + /chatserver, e.g.
    /// ~/.local/share/chatserver]
    #[arg(long, value_name = "DIR", env = "CHATSERVER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// TLS certificate chain (PEM, leaf first) to use instead of the
    /// self-signed one; needs --tls-key
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "no_tls",
        env = "CHATSERVER_TLS_CERT"
    )]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        conflicts_with = "no_tls",
        env = "CHATSERVER_TLS_KEY"
    )]
    pub tls_key: Option<PathBuf>,

    /// Serve plain TCP without TLS (trusted networks, comparison
    /// benchmarks): everything crosses the network readable by anyone
    #[arg(long, env = "CHATSERVER_NO_TLS")]
    pub no_tls: bool,

    /// Keep chat history in memory only (lost on restart) instead of the
    /// history file DATA_DIR/chat.db
    #[arg(long, env = "CHATSERVER_NO_STORE")]
    pub no_store: bool,

    /// TOML config file; every key of docs/operations.md may be set there
    #[arg(long, short = 'c', value_name = "FILE", env = "CHATSERVER_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log verbosity (logs go to stderr) [default: info]
    #[arg(long, value_name = "LEVEL", env = "CHATSERVER_LOG_LEVEL")]
    pub log_level: Option<LogLevel>,

    /// Log line format: `text` for people, `json` (one JSON object per
    /// line) for log collectors [default: text]
    #[arg(long, value_name = "FORMAT", env = "CHATSERVER_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Log private details at info level too (the names of uploaded
    /// files); off by default
    #[arg(long, env = "CHATSERVER_LOG_PRIVATE")]
    pub log_private: bool,

    /// Serve Prometheus metrics at http://ADDR/metrics and a health check
    /// at http://ADDR/health (off by default; keep it on a private
    /// address, e.g. 127.0.0.1:9464)
    #[arg(long, value_name = "ADDR", env = "CHATSERVER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Do not open the admin socket (DATA_DIR/admin.sock)
    #[arg(long, env = "CHATSERVER_NO_ADMIN")]
    pub no_admin: bool,

    /// Check the configuration (FILE, with the flags and environment
    /// variables given) and exit: 0 and `configuration OK` if the server
    /// would start with it, 2 and the problem otherwise
    #[arg(long, value_name = "FILE")]
    pub check_config: Option<PathBuf>,

    /// The other configuration keys, as given by their generated flags or
    /// environment variables: (key, TOML value text).
    #[arg(skip)]
    pub keys: Vec<(String, String)>,
}

/// Keys of chatcore's configuration that have their own field in [`Cli`]
/// (no generated flag for them).
const OWN_FLAGS: [&str; 4] = ["listen", "voice_listen", "heartbeat_ms", "max_clients"];

/// The whole command: [`Cli`]'s flags plus one generated flag (and
/// environment variable) per other chatcore key.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for key in crate::keys::chatcore_keys() {
        if OWN_FLAGS.contains(key) {
            continue;
        }
        let id: &'static str = key;
        cmd = cmd.arg(
            Arg::new(id)
                .long(key.replace('_', "-"))
                .value_name("VALUE")
                .env(crate::keys::env_name(key))
                .action(ArgAction::Set)
                .help_heading("Other configuration keys (a TOML value; see docs/operations.md)")
                .help(format!("The config file's `{key}`")),
        );
    }
    cmd
}

impl Cli {
    /// Parses the command line (and environment).
    pub fn try_parse_all<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = command().try_get_matches_from(args)?;
        Self::from_all_matches(&matches)
    }

    fn from_all_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut cli = Self::from_arg_matches(matches)?;
        for key in crate::keys::chatcore_keys() {
            if OWN_FLAGS.contains(key) {
                continue;
            }
            if let Some(v) = matches.get_one::<String>(key) {
                cli.keys.push(((*key).to_owned(), v.clone()));
            }
        }
        Ok(cli)
    }
}

#[cfg(test)]
mod tests {
    use super::{Cli, command};
    use chatcore::ServerConfig;

    #[test]
    fn the_command_is_well_formed() {
        command().debug_assert();
    }

    #[test]
    fn the_defaults_in_the_help_are_chatcores() {
        let help = command().render_long_help().to_string();
        let d = ServerConfig::default();
        for shown in [
            format!("[default: {}]", d.listen),
            format!(
                "[default: {}]",
                d.voice_listen.expect("voice on by default")
            ),
            format!("[default: {}]", d.heartbeat_ms),
            format!("[default: {}]", d.max_clients),
        ] {
            assert!(help.contains(&shown), "help lacks {shown}:\n{help}");
        }
    }

    #[test]
    fn nothing_given_means_nothing_overridden() {
        let cli = Cli::try_parse_all(["chatserver"]).expect("parses");
        assert!(cli.listen.is_none() && cli.voice_listen.is_none() && !cli.no_voice);
        assert!(cli.heartbeat_ms.is_none() && cli.max_clients.is_none());
        assert!(cli.config.is_none() && cli.log_level.is_none());
        assert!(cli.data_dir.is_none() && cli.tls_cert.is_none() && !cli.no_tls);
    }

    #[test]
    fn a_certificate_needs_its_key_and_conflicts_with_no_tls() {
        for args in [
            &["chatserver", "--tls-cert", "c.pem"][..],
            &["chatserver", "--tls-key", "k.pem"],
            &[
                "chatserver",
                "--no-tls",
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
            ],
        ] {
            let e = Cli::try_parse_all(args).expect_err("must fail");
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
        Cli::try_parse_all(["chatserver", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
            .expect("a pair is fine");
    }

    #[test]
    fn voice_listen_and_no_voice_conflict() {
        let r = Cli::try_parse_all(["chatserver", "--no-voice", "--voice-listen", "127.0.0.1:1"]);
        assert!(r.is_err());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            ["chatserver", "--listen", "localhost"],
            ["chatserver", "--heartbeat-ms", "-5"],
            ["chatserver", "--log-level", "loud"],
        ] {
            let e = Cli::try_parse_all(args).expect_err("must fail");
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn every_chatcore_key_has_a_flag() {
        let help = command().render_long_help().to_string();
        for key in crate::keys::chatcore_keys() {
            let flag = format!("--{}", key.replace('_', "-"));
            assert!(help.contains(&flag), "no {flag} in the help");
            assert!(
                help.contains(&crate::keys::env_name(key)),
                "no environment variable for {key}"
            );
        }
        let cli = Cli::try_parse_all(["chatserver", "--history-len", "7", "--spool-dir", "/s"])
            .expect("parses");
        assert!(cli.keys.contains(&("history_len".into(), "7".into())));
        assert!(cli.keys.contains(&("spool_dir".into(), "/s".into())));
    }
}
