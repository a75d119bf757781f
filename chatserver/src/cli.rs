//! The command line. Every option is optional: a flag that is not given
//! leaves the config file's value (or the default) in place.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::logging::LogLevel;

/// The chat-room daemon: hosts one room (see docs/operations.md).
///
/// Values come from the command line, else the config file, else the
/// defaults shown. RUST_LOG is used when --log-level is not given.
#[derive(Debug, Parser)]
#[command(name = "chatserver", version)]
pub struct Cli {
    /// Chat listening address, IP:PORT (port 0 picks a free port)
    /// [default: 127.0.0.1:6789]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Voice listening address, IP:PORT, UDP and TCP [default: 127.0.0.1:5678]
    #[arg(long, value_name = "ADDR", conflicts_with = "no_voice")]
    pub voice_listen: Option<SocketAddr>,

    /// Do not open the voice port
    #[arg(long)]
    pub no_voice: bool,

    /// Ping a client silent this long, in ms; it is dropped after three
    /// times this (unless idle_timeout_ms is set) [default: 10000]
    #[arg(long, value_name = "MS")]
    pub heartbeat_ms: Option<u32>,

    /// Most connections at once; more are refused with server_full
    /// [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_clients: Option<usize>,

    /// Data directory: the self-signed TLS certificate lives in its tls/
    /// subdirectory [default: the user's data directory + /chatserver,
    /// e.g. ~/.local/share/chatserver]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// TLS certificate chain (PEM, leaf first) to use instead of the
    /// self-signed one; needs --tls-key
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "no_tls"
    )]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        conflicts_with = "no_tls"
    )]
    pub tls_key: Option<PathBuf>,

    /// Serve plain TCP without TLS (trusted networks, comparison
    /// benchmarks): everything crosses the network readable by anyone
    #[arg(long)]
    pub no_tls: bool,

    /// Keep chat history in memory only (lost on restart) instead of the
    /// history file DATA_DIR/chat.db
    #[arg(long)]
    pub no_store: bool,

    /// TOML config file; every key of docs/operations.md may be set there
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log verbosity (logs go to stderr) [default: info]
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use chatcore::ServerConfig;
    use clap::{CommandFactory, Parser};

    #[test]
    fn the_command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_defaults_in_the_help_are_chatcores() {
        let help = Cli::command().render_long_help().to_string();
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
        let cli = Cli::try_parse_from(["chatserver"]).expect("parses");
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
            let e = Cli::try_parse_from(args).expect_err("must fail");
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
        Cli::try_parse_from(["chatserver", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
            .expect("a pair is fine");
    }

    #[test]
    fn voice_listen_and_no_voice_conflict() {
        let r = Cli::try_parse_from(["chatserver", "--no-voice", "--voice-listen", "127.0.0.1:1"]);
        assert!(r.is_err());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            ["chatserver", "--listen", "localhost"],
            ["chatserver", "--heartbeat-ms", "-5"],
            ["chatserver", "--log-level", "loud"],
        ] {
            let e = Cli::try_parse_from(args).expect_err("must fail");
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }
}
