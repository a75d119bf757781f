//! The known-servers file of trust on first use: one `host:port FINGERPRINT`
//! line per server, like ssh's `known_hosts`.
//!
//! The key is the `host:port` the user typed (so `localhost:7000` and
//! `127.0.0.1:7000` are two entries, as in ssh). Lines starting with `#` and
//! blank lines are comments and are kept when the file is rewritten. The
//! file is rewritten atomically (a temporary file in the same directory,
//! then a rename) with mode 0600, so a crash never leaves half a file and
//! other users cannot read which servers this user visits.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::Fingerprint;
use super::error::TlsError;

/// The environment variable naming the known-servers file (beats the
/// default location, loses to a client's `--known-servers FILE`).
pub const KNOWN_SERVERS_ENV: &str = "CHAT_KNOWN_SERVERS";

/// Largest known-servers file read (a line is ~110 bytes: a million servers).
/// A bigger file is refused rather than read into memory.
const MAX_FILE: u64 = 128 * 1024 * 1024;

/// Makes temporary file names unique between threads of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The file where trust on first use remembers each server's certificate
/// fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownServers {
    /// Where the file is (it need not exist yet: the first `remember`
    /// creates it and its directory).
    path: PathBuf,
}

impl KnownServers {
    /// The user's file: `$CHAT_KNOWN_SERVERS` when set, else
    /// `<config dir>/chat/known_servers` (`~/.config/chat/known_servers` on
    /// Linux). Fails only when neither exists (no home directory).
    pub fn default_location() -> Result<KnownServers, TlsError> {
        if let Some(path) = std::env::var_os(KNOWN_SERVERS_ENV).filter(|p| !p.is_empty()) {
            return Ok(Self::at(PathBuf::from(path)));
        }
        let dir = dirs::config_dir().ok_or(TlsError::NoConfigDir)?;
        Ok(Self::at(dir.join("chat").join("known_servers")))
    }

    /// The file at `path` (`--known-servers FILE`).
    pub fn at(path: PathBuf) -> KnownServers {
        Self { path }
    }

    /// Where the file is, for messages ("remembered in ...").
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fingerprint remembered for `server` (`host:port` as typed), if
    /// any. A missing file is an empty one; a malformed line is an error
    /// (the file guards the user's security: it is never guessed at).
    pub fn get(&self, server: &str) -> Result<Option<Fingerprint>, TlsError> {
        let text = self.read()?;
        for (number, line) in text.lines().enumerate() {
            if let Some((key, fp)) = self.parse_line(number + 1, line)?
                && key == server.trim()
            {
                return Ok(Some(fp));
            }
        }
        Ok(None)
    }

    /// Remembers `fp` for `server`, replacing the line of a previous
    /// fingerprint (this is also how a user accepts a changed certificate).
    /// Comments and other servers' lines are kept as they are.
    pub fn remember(&self, server: &str, fp: Fingerprint) -> Result<(), TlsError> {
        let server = server.trim();
        if server.is_empty() || server.contains(char::is_whitespace) || server.starts_with('#') {
            return Err(TlsError::KnownServersLine {
                path: self.path.clone(),
                line: 0,
                reason: format!("{server:?} cannot be a server name in this file"),
            });
        }
        let text = self.read()?;
        let mut out = String::with_capacity(text.len() + 128);
        let mut replaced = false;
        for (number, line) in text.lines().enumerate() {
            match self.parse_line(number + 1, line)? {
                Some((key, _)) if key == server => {
                    if !replaced {
                        out.push_str(&format!("{server} {fp}\n"));
                        replaced = true;
                    }
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        if !replaced {
            if text.is_empty() {
                out.push_str(
                    "# Chat servers' TLS certificate fingerprints (trust on first use).\n",
                );
                out.push_str("# One `host:port SHA-256-FINGERPRINT` per line.\n");
            }
            out.push_str(&format!("{server} {fp}\n"));
        }
        self.write_atomically(out.as_bytes())
    }

    /// Reads the whole file (empty when it does not exist).
    fn read(&self) -> Result<String, TlsError> {
        let file = match fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
            Err(e) => return Err(self.io_error(e)),
        };
        let len = file.metadata().map_err(|e| self.io_error(e))?.len();
        if len > MAX_FILE {
            return Err(self.io_error(io::Error::other(format!(
                "the file is {len} bytes, more than the {MAX_FILE} read"
            ))));
        }
        io::read_to_string(file).map_err(|e| self.io_error(e))
    }

    /// One line: `None` for comments and blank lines, else the server and
    /// its fingerprint.
    fn parse_line<'a>(
        &self,
        number: usize,
        line: &'a str,
    ) -> Result<Option<(&'a str, Fingerprint)>, TlsError> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(None);
        }
        let bad = |reason: &str| TlsError::KnownServersLine {
            path: self.path.clone(),
            line: number,
            reason: reason.to_owned(),
        };
        let (key, rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected `host:port FINGERPRINT`"))?;
        let fp = Fingerprint::parse(rest.trim())
            .ok_or_else(|| bad("the fingerprint is not 32 hex bytes (AB:CD:...)"))?;
        Ok(Some((key, fp)))
    }

    /// Writes `bytes` to a temporary file beside the target (mode 0600),
    /// syncs it and renames it over the target.
    fn write_atomically(&self, bytes: &[u8]) -> Result<(), TlsError> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        create_private_dir(&dir).map_err(|e| self.io_error(e))?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "known_servers".to_owned());
        let temp = dir.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temp, &self.path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&temp);
            return Err(self.io_error(e));
        }
        Ok(())
    }

    fn io_error(&self, source: io::Error) -> TlsError {
        TlsError::KnownServers {
            path: self.path.clone(),
            source,
        }
    }
}

/// Creates `dir` and its parents, new ones with mode 0700.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}
