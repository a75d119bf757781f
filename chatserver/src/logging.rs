//! Logging: `tracing` events on stderr, as text lines or JSON lines.
//!
//! The filter is `--log-level` if given, else `RUST_LOG` if set (full
//! `EnvFilter` syntax, e.g. `info,chatcore=debug`), else the config file's
//! `log_level`, else `info`. Private details (file names, on chatcore's
//! [`chatcore::server::PRIVATE_LOG_TARGET`]) are filtered out unless
//! `log_private` is set. The filter can be replaced at run time (SIGHUP,
//! `chatserver admin reload`) through the [`LogReload`] handle.

use std::io::IsTerminal;

use anyhow::{Context, anyhow};
use serde::Deserialize;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`,
    /// `fields`), for log collectors.
    Json,
}

/// Replaces the running logger's filter.
#[derive(Clone)]
pub struct LogReload(reload::Handle<EnvFilter, Registry>);

impl LogReload {
    /// Applies a new level (the same precedence as at start: `RUST_LOG`
    /// still wins over the file's level). A failure keeps the old filter.
    pub fn set(&self, cli: Option<LogLevel>, file: Option<LogLevel>, private: bool) {
        match filter(cli, file, private) {
            Ok((filter, _)) => {
                if let Err(e) = self.0.reload(filter) {
                    tracing::warn!("cannot change the log filter: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot change the log filter: {e}"),
        }
    }
}

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

/// `directives`, plus the private target turned off unless `private`.
fn filter(
    cli: Option<LogLevel>,
    file: Option<LogLevel>,
    private: bool,
) -> anyhow::Result<(EnvFilter, String)> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let from_env = cli.is_none() && rust_log.as_deref().is_some_and(|s| !s.trim().is_empty());
    let mut directives = directives(cli, rust_log, file);
    if !private {
        directives.push_str(&format!(",{}=off", chatcore::server::PRIVATE_LOG_TARGET));
    }
    let filter = EnvFilter::builder().parse(&directives).with_context(|| {
        if from_env {
            format!("invalid RUST_LOG {directives:?}")
        } else {
            format!("invalid log level {directives:?}")
        }
    })?;
    Ok((filter, directives))
}

/// Checks the filter the logger would use (`--check-config`).
pub fn check(cli: Option<LogLevel>, file: Option<LogLevel>) -> anyhow::Result<()> {
    filter(cli, file, false).map(|_| ())
}

/// Installs the stderr logger. Colours only when stderr is a terminal
/// (text format only).
pub fn init(
    cli: Option<LogLevel>,
    file: Option<LogLevel>,
    format: LogFormat,
    private: bool,
) -> anyhow::Result<LogReload> {
    let (filter, _) = filter(cli, file, private)?;
    let (filter, handle) = reload::Layer::new(filter);
    let output = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .map_err(|e| anyhow!("cannot install the logger: {e}"))?;
    Ok(LogReload(handle))
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
