//! [`TlsError`]: why connecting over TLS, or reading and writing the
//! known-servers file, failed. Its own file because both the connection
//! (`client`) and the known-servers file (`known_servers`) return it.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use super::Fingerprint;

/// Why connecting over TLS (or to the known-servers file) failed.
#[derive(Debug, Error)]
pub enum TlsError {
    /// The server presented another certificate than the one remembered:
    /// either the server got a new certificate, or someone is in the middle.
    /// The connection was refused inside the handshake: no chat byte was
    /// exchanged.
    #[error(
        "the TLS certificate of {server} has CHANGED.\n  remembered: {remembered}\n  presented:  {presented}\n\
         Someone may be intercepting the connection, or the server got a new certificate.\n\
         Compare with the fingerprint the server logs at start. If the new one is right, replace the line of \
         {server} in {file} with:\n  {server} {presented}\n(or delete that line to trust the next certificate on first use)",
        file = file.display()
    )]
    CertificateChanged {
        /// The `host:port` as typed (the key in the known-servers file).
        server: String,
        /// The fingerprint remembered in the known-servers file.
        remembered: Fingerprint,
        /// The fingerprint the server presented now.
        presented: Fingerprint,
        /// The known-servers file, so the user knows what to edit.
        file: PathBuf,
    },
    /// The address is not `host:port`.
    #[error("{server:?} is not host:port ({reason})")]
    BadAddress {
        /// The address as given.
        server: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host name could not be resolved.
    #[error("cannot resolve {server}: {source}")]
    Resolve {
        /// The address as given.
        server: String,
        /// What the resolver said.
        source: io::Error,
    },
    /// The TCP connection failed (refused, unreachable...).
    #[error("cannot connect to {server}: {source}")]
    Connect {
        /// The address as given.
        server: String,
        /// What the system said.
        source: io::Error,
    },
    /// Connecting or the handshake took longer than allowed.
    #[error("timed out connecting to {server} (TCP connect or TLS handshake)")]
    Timeout {
        /// The address as given.
        server: String,
    },
    /// The TLS handshake failed: a certificate that does not verify, a
    /// server that does not speak TLS (`--no-tls` server?), an alert.
    #[error("TLS handshake with {server} failed: {reason}")]
    Handshake {
        /// The address as given.
        server: String,
        /// What rustls or the socket said.
        reason: String,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {}: {reason}", path.display())]
    CaFile {
        /// The file given with `--ca-file`.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No usable system CA certificate was found.
    #[error("system CA certificates: {0}")]
    SystemRoots(String),
    /// The known-servers file could not be read or written.
    #[error("known-servers file {}: {source}", path.display())]
    KnownServers {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A line of the known-servers file is malformed (it is never guessed at).
    #[error("known-servers file {} line {line}: {reason}", path.display())]
    KnownServersLine {
        /// The file.
        path: PathBuf,
        /// The line number (1-based; 0 when the name to write is at fault).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Neither `$CHAT_KNOWN_SERVERS` nor a configuration directory exists.
    #[error(
        "no configuration directory for the known-servers file: set CHAT_KNOWN_SERVERS or pass --known-servers FILE"
    )]
    NoConfigDir,
}
