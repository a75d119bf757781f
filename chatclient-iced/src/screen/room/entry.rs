//! The lines of the message list: chat messages, quiet system lines, file
//! cards and errors, and the words for a join or a leave.

use chatcore::client::Change;
use chatcore::protocol::LeaveReason;

use super::files::CardId;

/// One chat message as drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    /// The server's message id.
    pub id: u64,
    /// Sender's name.
    pub from: String,
    /// Local time of day, formatted once on arrival (not every frame).
    pub time: String,
    /// Server time in ms, to merge history after a reconnection.
    pub ts: i64,
    /// The text.
    pub text: String,
    /// Sent by us (drawn in green).
    pub own: bool,
}

/// One line of the message list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A chat message.
    Chat(ChatLine),
    /// A quiet line: joins, leaves, timeouts, connection news.
    System(String),
    /// A file offer (ours or theirs).
    File(CardId),
    /// An error shown in place (a message refused by the server...).
    Error(String),
    /// A quiet line with a certificate fingerprint under it that the user
    /// may want to copy and compare (the server was new and its
    /// certificate is now remembered).
    Fingerprint {
        /// The sentence.
        text: String,
        /// The fingerprint, `AB:CD:...`.
        fingerprint: String,
    },
}

/// The quiet line for a change of the user list; `me` is our session (our
/// own removal reads differently).
pub fn change_line(change: Change, me: u64) -> String {
    match change {
        Change::Joined(u) => format!("{} joined", u.name),
        Change::Left(u, LeaveReason::Shutdown) if u.session == me => {
            "The server is shutting down.".to_owned()
        }
        Change::Left(u, reason) if u.session == me => {
            format!("You were removed from the room ({reason}).")
        }
        Change::Left(u, LeaveReason::Timeout) => format!("{} timed out", u.name),
        Change::Left(u, LeaveReason::Quit) => format!("{} left", u.name),
        Change::Left(u, reason) => format!("{} left ({reason})", u.name),
    }
}
