//! `chatserver`: the chat-room daemon, a thin wrapper around `chatcore`.
//!
//! `main` only sequences the steps and maps failures to exit codes:
//! command line ([`cli`]) → configuration ([`config`]) → logging
//! ([`logging`]) → bind, watch signals, serve ([`daemon`], [`signals`]).

mod accounts;
mod admin;
mod cli;
mod config;
mod daemon;
mod keys;
mod logging;
mod man;
mod metrics;
mod reload;
mod signals;

use std::process::ExitCode;

/// Exit code for a bad command line or configuration (clap uses it too).
const EXIT_USAGE: u8 = 2;
/// Exit code for a failure to start or to keep running (e.g. port in use).
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let sub = args.get(1).map(String::as_str);
    if let Some(run) = match sub {
        Some("accounts") => Some(accounts::run as fn(Vec<String>) -> anyhow::Result<()>),
        Some("admin") => Some(admin::client as fn(Vec<String>) -> anyhow::Result<()>),
        Some("man") => Some(man::run as fn(Vec<String>) -> anyhow::Result<()>),
        _ => None,
    } {
        return match run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => match e.downcast_ref::<clap::Error>() {
                Some(c) => {
                    let _ = c.print();
                    ExitCode::from(u8::try_from(c.exit_code()).unwrap_or(EXIT_USAGE))
                }
                None => fail(EXIT_FAILURE, &e),
            },
        };
    }
    let cli = match cli::Cli::try_parse_all(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version end here too, with exit code 0.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE));
        }
    };
    let settings = match config::resolve(&cli) {
        Ok(settings) => settings,
        Err(e) => return fail(EXIT_USAGE, &e),
    };
    if let Some(path) = &cli.check_config {
        // Resolved and validated above; the filter is checked too.
        return match logging::check(cli.log_level, settings.log_level) {
            Ok(()) => {
                println!("configuration OK: {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(EXIT_USAGE, &e),
        };
    }
    let log = match logging::init(
        cli.log_level,
        settings.log_level,
        settings.log_format,
        settings.log_private,
    ) {
        Ok(log) => log,
        Err(e) => return fail(EXIT_USAGE, &e),
    };
    match daemon::run(cli, settings, log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(EXIT_FAILURE, &e),
    }
}

/// Prints `error: ...` on one line of stderr and gives the exit code.
fn fail(code: u8, error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {}", one_line(error));
    ExitCode::from(code)
}

/// The error and its causes joined with `: `, skipping a cause whose text
/// the message already contains (some errors print their source themselves).
pub(crate) fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let bind = chatcore::ServerError::Bind {
            addr: "127.0.0.1:6789".parse().expect("address"),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        let text = one_line(&anyhow::Error::new(bind));
        assert_eq!(text.matches("in use").count(), 1, "{text}");
        assert!(
            text.starts_with("cannot listen on 127.0.0.1:6789: "),
            "{text}"
        );
    }

    #[test]
    fn context_and_cause_are_joined() {
        let e = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound))
            .context("cannot read config file x.toml");
        assert_eq!(
            one_line(&e),
            "cannot read config file x.toml: entity not found"
        );
    }
}
