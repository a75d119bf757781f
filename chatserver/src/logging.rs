//! Logging: `tracing` events as text lines on stderr.
//!
//! The filter is `--log-level` if given, else `RUST_LOG` if set (full
//! `EnvFilter` syntax, e.g. `info,chatcore=debug`), else the config file's
//! `log_level`, else `info`.

use std::io::IsTerminal;

use anyhow::{Context, anyhow};
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// How much to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Failures only.
    Error,
    /// Also things that look wrong.
    Warn,
    /// Also start, stop, joins and leaves (the default).
    #[default]
    Info,
    /// Also every connection.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The level as `EnvFilter` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

/// The filter directives to use, from the sources in order of precedence.
pub fn directives(
    cli: Option<LogLevel>,
    rust_log: Option<String>,
    file: Option<LogLevel>,
) -> String {
    match (cli, rust_log.filter(|s| !s.trim().is_empty())) {
        (Some(level), _) => level.as_str().to_owned(),
        (None, Some(env)) => env,
        (None, None) => file.unwrap_or_default().as_str().to_owned(),
    }
}

/// Installs the stderr logger. Colours only when stderr is a terminal.
pub fn init(cli: Option<LogLevel>, file: Option<LogLevel>) -> anyhow::Result<()> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let from_env = cli.is_none() && rust_log.as_deref().is_some_and(|s| !s.trim().is_empty());
    let directives = directives(cli, rust_log, file);
    let filter = EnvFilter::builder().parse(&directives).with_context(|| {
        if from_env {
            format!("invalid RUST_LOG {directives:?}")
        } else {
            format!("invalid log level {directives:?}")
        }
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| anyhow!("cannot install the logger: {e}"))
}

#[cfg(test)]
mod tests {
    use super::{LogLevel, directives};

    #[test]
    fn the_command_line_wins_then_rust_log_then_the_file() {
        let env = || Some("chatcore=trace".to_owned());
        assert_eq!(
            directives(Some(LogLevel::Warn), env(), Some(LogLevel::Debug)),
            "warn"
        );
        assert_eq!(
            directives(None, env(), Some(LogLevel::Debug)),
            "chatcore=trace"
        );
        assert_eq!(directives(None, None, Some(LogLevel::Debug)), "debug");
        assert_eq!(
            directives(None, Some("  ".into()), Some(LogLevel::Error)),
            "error"
        );
        assert_eq!(directives(None, None, None), "info");
    }
}
