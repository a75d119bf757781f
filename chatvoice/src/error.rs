//! Error types, one enum per area, so a caller (the GUI) can tell a missing
//! device from a network problem and show the right message.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Which way audio flows; used in device errors so the message says whether
/// the microphone or the speakers are missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Microphone / capture.
    Capture,
    /// Speakers / playback.
    Playback,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Capture => "capture (microphone)",
            Self::Playback => "playback (speakers)",
        })
    }
}

/// Opening or running an audio backend failed.
#[derive(Debug, Error)]
pub enum AudioError {
    /// No usable device: the reason is meant for the user ("no default
    /// capture device", "the ALSA default device could not be opened: …").
    #[error("no {direction} device available: {reason}")]
    NoDevice {
        /// Capture or playback.
        direction: Direction,
        /// What the audio system said.
        reason: String,
    },
    /// The device exists but refused every configuration we can use.
    #[error("the {direction} device cannot be used: {reason}")]
    Unsupported {
        /// Capture or playback.
        direction: Direction,
        /// What the audio system said.
        reason: String,
    },
    /// A WAV file could not be read or written.
    #[error("WAV file {}: {source}", path.display())]
    Wav {
        /// The file.
        path: PathBuf,
        /// What hound said.
        source: hound::Error,
    },
    /// A backend thread could not be started.
    #[error("audio thread: {0}")]
    Thread(#[from] io::Error),
}

/// The Opus codec refused something (a bad setting, a corrupt packet).
#[derive(Debug, Error)]
#[error("opus: {0}")]
pub struct CodecError(#[from] pub opus::Error);

/// The voice port could not be reached or bound.
#[derive(Debug, Error)]
pub enum TransportError {
    /// A socket call failed.
    #[error("voice socket: {0}")]
    Io(#[from] io::Error),
    /// The server never answered `bind` with `bound`, over UDP or TCP:
    /// a wrong token, a call we are no longer in, or no voice relay.
    #[error("the voice server did not accept the bind over {0}")]
    NotBound(&'static str),
    /// The token from `voice_joined` is not 16 bytes.
    #[error("voice token has {0} bytes, expected 16")]
    BadToken(usize),
}

/// The call key from `voice_joined` / `voice_key` is unusable (not 32 bytes).
pub use chatcore::protocol::voice::seal::SealError as KeyError;

/// An Ogg Opus voice message could not be written or read.
#[derive(Debug, Error)]
pub enum MessageError {
    /// File I/O.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The file is not an Ogg Opus file we can play (RFC 7845 mono/stereo,
    /// mapping family 0).
    #[error("{}: not a playable Ogg Opus file: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Encoding or decoding failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The audio input or output failed.
    #[error(transparent)]
    Audio(#[from] AudioError),
}

/// A call could not be started.
#[derive(Debug, Error)]
pub enum CallError {
    /// Audio devices.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The voice port.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The codec.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The call key from the server is unusable.
    #[error("call key: {0}")]
    Key(#[from] KeyError),
    /// A thread could not be started.
    #[error("call thread: {0}")]
    Thread(io::Error),
}
