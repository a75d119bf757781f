//! [`CallEvent`]: what the call's threads tell the GUI through the handle's
//! channel (transport bound, who speaks, figures, input ended, errors).

use crate::transport::TransportKind;

use super::stats::CallStats;

/// Something the GUI may want to show.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// The voice path is bound over this transport (again, after it was
    /// lost and bound anew).
    Transport(TransportKind),
    /// A speaker (our own session included) started or stopped talking.
    Speaking {
        /// Who.
        session: u64,
        /// Talking now.
        active: bool,
    },
    /// Periodic figures.
    Stats(CallStats),
    /// The input ended (end of a WAV file, device lost); the call goes on
    /// listening.
    InputEnded,
    /// Something broke: the voice connection closed (the engine then binds
    /// again by itself, with the same token, until the server's `timeout_ms`;
    /// a later `Transport` event says it worked), the path is lost for
    /// good, the output stopped.
    Error(String),
}
