//! The effective configuration: defaults, then the TOML file, then the
//! environment (`CHATSERVER_<KEY>`), then flags (clap resolves flag over
//! environment; both then override the file).
//!
//! The file holds `chatcore::ServerConfig`'s keys (parsed by chatcore's own
//! `Deserialize`, which rejects unknown keys) plus the daemon's own keys,
//! [`DAEMON_KEYS`], which are taken out first.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chatcore::{ServerConfig, TlsSource};
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, Deserializer};

use crate::cli::Cli;
use crate::logging::{LogFormat, LogLevel};

/// Keys of the config file that belong to the daemon, not to chatcore.
pub const DAEMON_KEYS: [&str; 11] = [
    "log_level",
    "no_voice",
    "data_dir",
    "tls",
    "tls_cert",
    "tls_key",
    "store",
    "log_format",
    "log_private",
    "metrics_listen",
    "admin",
];

/// The admin socket's name in the data directory.
pub const ADMIN_SOCKET: &str = "admin.sock";

/// The daemon's own keys of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DaemonKeys {
    log_level: Option<LogLevel>,
    no_voice: Option<bool>,
    data_dir: Option<PathBuf>,
    tls: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    store: Option<bool>,
    log_format: Option<LogFormat>,
    log_private: Option<bool>,
    metrics_listen: Option<SocketAddr>,
    admin: Option<bool>,
}

/// The daemon's TLS keys of the config file (see [`TlsSource`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileTls {
    /// `data_dir`: where the self-signed certificate is kept.
    pub data_dir: Option<PathBuf>,
    /// `tls`: `false` serves plain TCP; absent means on.
    pub tls: Option<bool>,
    /// `tls_cert` and `tls_key`: a real certificate (both or neither).
    pub files: Option<(PathBuf, PathBuf)>,
}

/// What a config file says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileConfig {
    /// chatcore's settings, with defaults for keys the file leaves out.
    pub server: ServerConfig,
    /// `log_level`, if the file sets it.
    pub log_level: Option<LogLevel>,
    /// The TLS keys the file sets.
    pub tls: FileTls,
    /// `store`: `false` keeps history in memory only; absent means the
    /// history file `DATA_DIR/chat.db`.
    pub store: Option<bool>,
    /// `log_format`, if the file sets it.
    pub log_format: Option<LogFormat>,
    /// `log_private`: file names at info level.
    pub log_private: Option<bool>,
    /// `metrics_listen`: where /metrics and /health are served.
    pub metrics_listen: Option<SocketAddr>,
    /// `admin`: `false` opens no admin socket.
    pub admin: Option<bool>,
}

/// What the daemon runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The server's configuration, flags applied.
    pub server: ServerConfig,
    /// The config file's `log_level` (the flag and RUST_LOG are applied
    /// when logging starts).
    pub log_level: Option<LogLevel>,
    /// Where the chat port's certificate comes from (loaded at start and
    /// on SIGHUP), or `None` for plain TCP (`--no-tls`, `tls = false`).
    pub tls: Option<TlsSource>,
    /// Text or JSON log lines.
    pub log_format: LogFormat,
    /// Log file names at info level.
    pub log_private: bool,
    /// Serve /metrics and /health there.
    pub metrics_listen: Option<SocketAddr>,
    /// The admin socket to open, unless turned off.
    pub admin_socket: Option<PathBuf>,
}

/// Reads the file named by `--config` (or `--check-config`; if any),
/// applies the environment and the flags, checks.
pub fn resolve(cli: &Cli) -> anyhow::Result<Settings> {
    let text = match cli.check_config.as_ref().or(cli.config.as_ref()) {
        Some(path) => Some((path, read_file(path)?)),
        None => None,
    };
    let file = match &text {
        Some((path, text)) => parse(text)
            .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))?,
        None => FileConfig::default(),
    };
    let file = with_keys(
        file,
        text.as_ref().map_or("", |(_, t)| t.as_str()),
        &cli.keys,
    )?;
    let settings = apply_flags(file, cli)?;
    validate(&settings.server)?;
    Ok(settings)
}

fn read_file(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))
}

/// Reads and parses a config file.
pub fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = read_file(path)?;
    parse(&text).map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))
}

/// The file's configuration with the keys given by generated flags or
/// environment variables (`keys`: key, TOML value text) put over it.
/// A value that is not valid TOML is taken as a string, so
/// `--spool-dir /srv/spool` needs no quotes.
pub fn with_keys(
    file: FileConfig,
    text: &str,
    keys: &[(String, String)],
) -> anyhow::Result<FileConfig> {
    if keys.is_empty() {
        return Ok(file);
    }
    let mut table: toml::Table = toml::from_str(text)?;
    for (key, raw) in keys {
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let mut alone = toml::Table::new();
        alone.insert(key.clone(), value.clone());
        let alone = toml::to_string(&alone)?;
        if let Err(e) = parse(&alone) {
            let problem = e.split_once(": ").map_or(e.as_str(), |(_, m)| m);
            anyhow::bail!(
                "invalid --{} / {} {raw:?}: {problem}",
                key.replace('_', "-"),
                crate::keys::env_name(key)
            );
        }
        table.insert(key.clone(), value);
    }
    parse(&toml::to_string(&table)?).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
}

/// Parses config file text; the error names the line and column.
pub fn parse(text: &str) -> Result<FileConfig, String> {
    let mut doc = DeTable::parse(text).map_err(|e| describe(text, &e))?;
    let span = doc.span();
    let mut own = DeTable::new();
    for key in DAEMON_KEYS {
        if let Some((k, v)) = doc.get_mut().remove_entry(key) {
            own.insert(k, v);
        }
    }
    let daemon = DaemonKeys::deserialize(Deserializer::from(Spanned::new(span.clone(), own)))
        .map_err(|e| describe(text, &e))?;
    let voice_given = doc.get_ref().contains_key("voice_listen");
    let mut server = ServerConfig::deserialize(Deserializer::from(doc)).map_err(|e| {
        let mut message = describe(text, &e);
        if e.message().starts_with("unknown field") {
            message.push_str(&format!(
                " (or the daemon's own `{}`)",
                DAEMON_KEYS.join("`, `")
            ));
        }
        message
    })?;
    let files = match (daemon.tls_cert, daemon.tls_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("tls_cert and tls_key go together; set both or neither".into()),
    };
    if daemon.tls == Some(false) && files.is_some() {
        return Err("tls = false and tls_cert/tls_key are both set; keep one".into());
    }
    if daemon.no_voice == Some(true) {
        if voice_given {
            return Err("no_voice = true and voice_listen are both set; keep one".into());
        }
        server.voice_listen = None;
    }
    Ok(FileConfig {
        server,
        log_level: daemon.log_level,
        tls: FileTls {
            data_dir: daemon.data_dir,
            tls: daemon.tls,
            files,
        },
        store: daemon.store,
        log_format: daemon.log_format,
        log_private: daemon.log_private,
        metrics_listen: daemon.metrics_listen,
        admin: daemon.admin,
    })
}

/// `line L, column C: message` on one line.
fn describe(text: &str, e: &toml::de::Error) -> String {
    let message = e
        .message()
        .trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Command-line flags override what the file (or the defaults) said.
/// Fails only when TLS needs the default data directory and the system
/// has none (no home directory): then `--data-dir` is required.
pub fn apply_flags(file: FileConfig, cli: &Cli) -> anyhow::Result<Settings> {
    let mut server = file.server;
    if let Some(addr) = cli.listen {
        server.listen = addr;
    }
    if cli.no_voice {
        server.voice_listen = None;
    } else if let Some(addr) = cli.voice_listen {
        server.voice_listen = Some(addr);
    }
    if let Some(ms) = cli.heartbeat_ms {
        server.heartbeat_ms = ms;
    }
    if let Some(n) = cli.max_clients {
        server.max_clients = n;
    }
    let tls = tls_source(&file.tls, cli)?;
    server.store_path = if cli.no_store || file.store == Some(false) {
        None
    } else {
        Some(data_dir(&file.tls, cli)?.join(STORE_FILE))
    };
    let admin_socket = if cli.no_admin || file.admin == Some(false) {
        None
    } else {
        Some(data_dir(&file.tls, cli)?.join(ADMIN_SOCKET))
    };
    Ok(Settings {
        server,
        log_level: file.log_level,
        tls,
        log_format: cli.log_format.or(file.log_format).unwrap_or_default(),
        log_private: cli.log_private || file.log_private == Some(true),
        metrics_listen: cli.metrics_listen.or(file.metrics_listen),
        admin_socket,
    })
}

/// TLS is on unless `--no-tls` or `tls = false`; a certificate given on
/// the command line wins over the file's, either over the self-signed one.
fn tls_source(file: &FileTls, cli: &Cli) -> anyhow::Result<Option<TlsSource>> {
    if cli.no_tls {
        return Ok(None);
    }
    if let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) {
        return Ok(Some(TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        }));
    }
    if file.tls == Some(false) {
        return Ok(None);
    }
    if let Some((cert, key)) = &file.files {
        return Ok(Some(TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        }));
    }
    let data_dir = data_dir(file, cli)?;
    Ok(Some(TlsSource::SelfSigned { data_dir }))
}

/// The history file's name in the data directory.
pub const STORE_FILE: &str = "chat.db";

/// `--data-dir`, else the file's `data_dir`, else the default.
fn data_dir(file: &FileTls, cli: &Cli) -> anyhow::Result<PathBuf> {
    match cli.data_dir.clone().or_else(|| file.data_dir.clone()) {
        Some(dir) => Ok(dir),
        None => default_data_dir(),
    }
}

/// `chatserver` in the user's data directory (`$XDG_DATA_HOME`, else
/// `~/.local/share` on Linux).
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    dirs::data_dir()
        .map(|d| d.join("chatserver"))
        .ok_or_else(|| anyhow::anyhow!("no user data directory on this system: give --data-dir"))
}

/// Refuses values with which the server could not serve anyone: chatcore's
/// own check ([`ServerConfig::validate`], the one list of bounds), reported
/// as a configuration error (exit 2), not a failure to start, and worded
/// `KEY PROBLEM` like the rest of the daemon's config errors.
pub fn validate(c: &ServerConfig) -> anyhow::Result<()> {
    c.validate()
        .map_err(|e| anyhow::anyhow!("{} {}", e.key, e.problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../chatserver.example.toml");
    const OPERATIONS: &str = include_str!("../../docs/operations.md");

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_all(std::iter::once("chatserver").chain(args.iter().copied()))
            .expect("valid command line")
    }

    /// chatcore's keys, as its own "unknown field" error lists them.
    fn chatcore_keys_from_error() -> Vec<String> {
        let e = parse("surely_not_a_key = 1").expect_err("unknown key");
        let list = e.split("expected one of").nth(1).expect("key list");
        let list = list
            .split("(or the daemon's own")
            .next()
            .expect("chatcore's part");
        let keys: Vec<String> = list
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        assert!(keys.len() >= 10, "{e}");
        keys
    }

    #[test]
    fn the_example_file_parses_and_spells_out_the_defaults() {
        let file = parse(EXAMPLE).expect("the example parses");
        assert_eq!(file.server, ServerConfig::default());
        assert_eq!(file.log_level, Some(LogLevel::Info));
        validate(&file.server).expect("the example is valid");
    }

    #[test]
    fn the_key_list_is_chatcores_own() {
        let mut from_error = chatcore_keys_from_error();
        from_error.sort();
        let mut grabbed: Vec<String> = crate::keys::chatcore_keys()
            .iter()
            .map(|k| (*k).to_owned())
            .collect();
        grabbed.sort();
        assert_eq!(grabbed, from_error);
    }

    #[test]
    fn generated_flags_go_over_the_file_and_are_checked() {
        let text = "history_len = 3\nmax_text_bytes = 100\n";
        let file = parse(text).expect("parses");
        let keys = vec![
            ("history_len".to_owned(), "9".to_owned()),
            ("spool_dir".to_owned(), "/srv/spool".to_owned()),
            ("operators".to_owned(), "[\"alice\"]".to_owned()),
        ];
        let f = with_keys(file.clone(), text, &keys).expect("applies");
        assert_eq!(f.server.history_len, 9);
        assert_eq!(f.server.max_text_bytes, 100);
        assert_eq!(f.server.spool_dir, Some(PathBuf::from("/srv/spool")));
        assert_eq!(f.server.operators, vec!["alice".to_owned()]);
        let bad = vec![("history_len".to_owned(), "many".to_owned())];
        let e = with_keys(file, text, &bad).expect_err("not a number");
        let e = e.to_string();
        assert!(
            e.starts_with("invalid --history-len / CHATSERVER_HISTORY_LEN \"many\""),
            "{e}"
        );
    }

    #[test]
    fn every_key_is_in_the_example_and_the_docs() {
        let daemon = DAEMON_KEYS.iter().map(|k| (*k).to_owned());
        for key in chatcore_keys_from_error().into_iter().chain(daemon) {
            assert!(EXAMPLE.contains(&format!("{key} =")), "example lacks {key}");
            assert!(OPERATIONS.contains(&format!("`{key}`")), "docs lack {key}");
        }
    }

    #[test]
    fn an_empty_file_means_defaults() {
        assert_eq!(parse("").expect("parses"), FileConfig::default());
    }

    #[test]
    fn file_values_are_read() {
        let f = parse(
            "listen = \"0.0.0.0:7000\"\nheartbeat_ms = 1234\nmax_clients = 7\n\
             idle_timeout_ms = 9000\nrate_per_sec = 5\nlog_level = \"debug\"\n",
        )
        .expect("parses");
        assert_eq!(f.server.listen.to_string(), "0.0.0.0:7000");
        assert_eq!(f.server.heartbeat_ms, 1234);
        assert_eq!(f.server.max_clients, 7);
        assert_eq!(f.server.idle_timeout_ms, Some(9000));
        assert!((f.server.rate_per_sec - 5.0).abs() < f64::EPSILON);
        assert_eq!(f.log_level, Some(LogLevel::Debug));
        assert!(f.server.voice_listen.is_some());
    }

    #[test]
    fn no_voice_in_the_file_disables_voice() {
        let f = parse("no_voice = true").expect("parses");
        assert_eq!(f.server.voice_listen, None);
        let f = parse("no_voice = false").expect("parses");
        assert_eq!(f.server.voice_listen, ServerConfig::default().voice_listen);
        let e = parse("no_voice = true\nvoice_listen = \"127.0.0.1:1\"").expect_err("conflict");
        assert!(e.contains("no_voice"), "{e}");
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let e = parse("max_clients = 3\nheartbeat = 5\n").expect_err("unknown key");
        assert!(
            e.starts_with("line 2, column 1: unknown field `heartbeat`"),
            "{e}"
        );
        let e = parse("max_clients = \"many\"").expect_err("bad type");
        assert!(e.starts_with("line 1, column 15: "), "{e}");
        let e = parse("log_level = \"loud\"").expect_err("bad level");
        assert!(
            e.starts_with("line 1, column 13: ") && e.contains("loud"),
            "{e}"
        );
        let e = parse("listen = \"localhost\"").expect_err("bad address");
        assert!(e.starts_with("line 1, column 10: "), "{e}");
        let e = parse("max_clients = ").expect_err("bad syntax");
        assert!(e.starts_with("line 1, column "), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let file = parse("heartbeat_ms = 1234\nmax_clients = 7\nlisten = \"127.0.0.1:1\"")
            .expect("parses");
        let s = apply_flags(file.clone(), &cli(&["--heartbeat-ms", "2345"])).expect("flags");
        assert_eq!(s.server.heartbeat_ms, 2345);
        assert_eq!(s.server.max_clients, 7);
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:1");
        assert_eq!(s.server.history_len, ServerConfig::default().history_len);
        let s = apply_flags(
            file,
            &cli(&[
                "--listen",
                "127.0.0.1:0",
                "--max-clients",
                "9",
                "--no-voice",
            ]),
        )
        .expect("flags");
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:0");
        assert_eq!(s.server.max_clients, 9);
        assert_eq!(s.server.voice_listen, None);
        let s = apply_flags(
            parse("no_voice = true").expect("parses"),
            &cli(&["--voice-listen", "127.0.0.1:0"]),
        )
        .expect("flags");
        assert_eq!(
            s.server.voice_listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:0")
        );
    }

    #[test]
    fn tls_is_on_with_the_self_signed_certificate_unless_turned_off() {
        let tls = |text: &str, args: &[&str]| {
            apply_flags(parse(text).expect("parses"), &cli(args))
                .expect("flags")
                .tls
        };
        let dir = |d: &str| TlsSource::SelfSigned {
            data_dir: PathBuf::from(d),
        };
        assert_eq!(tls("", &["--data-dir", "/d"]), Some(dir("/d")));
        assert_eq!(tls("data_dir = \"/f\"", &[]), Some(dir("/f")));
        assert_eq!(
            tls("data_dir = \"/f\"", &["--data-dir", "/d"]),
            Some(dir("/d"))
        );
        assert_eq!(tls("", &["--no-tls"]), None);
        assert_eq!(tls("tls = false", &[]), None);
        let files = TlsSource::Files {
            cert: PathBuf::from("c.pem"),
            key: PathBuf::from("k.pem"),
        };
        assert_eq!(
            tls("tls_cert = \"c.pem\"\ntls_key = \"k.pem\"", &[]),
            Some(files.clone())
        );
        assert_eq!(
            tls(
                "tls = false",
                &["--tls-cert", "c.pem", "--tls-key", "k.pem"]
            ),
            Some(files)
        );
        assert_eq!(
            tls("tls_cert = \"c.pem\"\ntls_key = \"k.pem\"", &["--no-tls"]),
            None
        );
        let e = parse("tls_cert = \"c.pem\"").expect_err("half a pair");
        assert!(e.contains("tls_key"), "{e}");
        let e = parse("tls = false\ntls_cert = \"c\"\ntls_key = \"k\"").expect_err("conflict");
        assert!(e.contains("tls = false"), "{e}");
    }

    #[test]
    fn unusable_values_are_refused() {
        for text in [
            "heartbeat_ms = 0",
            "max_clients = 0",
            "idle_timeout_ms = 0",
            "rate_per_sec = 0",
            "rate_per_sec = nan",
            "rate_burst = 0.5",
        ] {
            let f = parse(text).expect("parses");
            let e = validate(&f.server).expect_err(text);
            let key = text.split(' ').next().expect("key");
            assert!(e.to_string().starts_with(key), "{e}");
        }
        validate(&ServerConfig::default()).expect("defaults are valid");
    }
}
