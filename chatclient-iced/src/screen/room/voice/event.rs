//! What the voice part of the room reports upward: work for the server
//! (over the chat connection) and for the audio engine. The voice state
//! machines return it; the room passes it on; the application hands its
//! commands to the workers ([`Event::into_commands`]).

use crate::audio;
use crate::net::{self, VoiceRequest};

/// Work the voice part needs done outside the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A request for the server (join, leave, mute).
    Server(VoiceRequest),
    /// A command for the audio engine.
    Engine(audio::Command),
    /// Both: leaving or muting a running call concerns the engine and the
    /// server alike.
    Both(audio::Command, VoiceRequest),
}

impl Event {
    /// The command for the network worker and the one for the audio worker.
    pub fn into_commands(self) -> (Option<net::Command>, Option<audio::Command>) {
        match self {
            Self::Server(r) => (Some(net::Command::Voice(r)), None),
            Self::Engine(c) => (None, Some(c)),
            Self::Both(c, r) => (Some(net::Command::Voice(r)), Some(c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_splits_into_one_command_per_worker() {
        let (net, audio) =
            Event::Both(audio::Command::Mute(true), VoiceRequest::Mute(true)).into_commands();
        assert_eq!(net, Some(net::Command::Voice(VoiceRequest::Mute(true))));
        assert_eq!(audio, Some(audio::Command::Mute(true)));
        assert_eq!(
            Event::Server(VoiceRequest::Join).into_commands(),
            (Some(net::Command::Voice(VoiceRequest::Join)), None)
        );
    }
}
