//! Errors of the server side.

use std::io;
use std::net::SocketAddr;

use thiserror::Error;

/// Why a server could not start or stopped abnormally.
#[derive(Debug, Error)]
pub enum ServerError {
    /// A listening socket could not be bound (port in use, no permission...).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// A configuration value is unusable.
    #[error(transparent)]
    Config(#[from] crate::server::config::ConfigError),
    /// The spool directory for file transfers is unusable.
    #[error("cannot use the spool directory {path}")]
    Spool {
        /// The directory.
        path: std::path::PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The history store could not be opened (unwritable directory,
    /// corrupted file, a schema newer than this binary knows).
    #[error("cannot open the history store: {0}")]
    Store(#[from] crate::server::store::StoreError),
    /// The poller could not be created or failed while running.
    #[error("event loop failure")]
    Poll(#[source] io::Error),
    /// The reactor thread could not be started or panicked.
    #[error("server thread: {0}")]
    Thread(String),
}

/// Why a [`crate::ServerHandle`] call failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandleError {
    /// The server has stopped.
    #[error("the server is not running")]
    Stopped,
    /// The server serves plain TCP: there is no certificate to replace.
    #[error("the server does not serve TLS")]
    TlsOff,
    /// The server has no account database (it runs without a store), or
    /// the database failed.
    #[error("the server's account database is off or failed")]
    Accounts,
    /// A moderation action was refused, with the `error` a member would
    /// get (`no_such_member`, `not_in_room`, `forbidden` to act on an
    /// operator, `room_invalid` for a bad reason...).
    #[error("refused ({code}): {message}")]
    Refused {
        /// The error code.
        code: crate::protocol::ErrorCode,
        /// Why.
        message: String,
    },
}
