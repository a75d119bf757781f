//! Code shared by the `chat-examples` programs (`chat`, `bot`,
//! `embedded_server`) and their tests.
//!
//! - [`clock`]: wire timestamps (ms since the Unix epoch) as UTC civil time,
//!   without a date-time dependency.
//! - [`text`]: making untrusted text safe to print on one line, and the
//!   word filter the embedded server uses.
//! - [`render`]: the one-event-per-line transcript of a room, as the terminal
//!   client prints it.
//! - [`rooms`]: the named rooms the terminal client is in and its current
//!   room.
//! - [`files`]: this client's file transfers as transcript lines.
//! - [`progress`]: file-transfer progress as bars (terminal) or throttled
//!   lines, and sizes for people.
//! - [`tls`]: the TLS flags of the client programs (`--no-tls`,
//!   `--insecure`, `--ca-file`, `--system-roots`, `--known-servers`) and
//!   what they print about the server's certificate.

pub mod clock;
pub mod files;
pub mod progress;
pub mod render;
pub mod rooms;
pub mod text;
pub mod tls;
