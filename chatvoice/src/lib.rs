//! Client voice engine: real-time calls and voice messages, usable without
//! a window (the desktop client re-exports it; tests and bots use it headless).
//!
//! Layout:
//! - [`audio`]: the [`AudioInput`](audio::AudioInput) / [`AudioOutput`](audio::AudioOutput)
//!   traits (48 kHz mono i16, 20 ms frames, through channels) and their
//!   backends: [`audio::cpal_backend`] (real devices), [`audio::wav`] (WAV
//!   files, paced or not), [`audio::silence`], and [`audio::devices`] (which
//!   devices work, and why not).
//! - [`resample`]: down-mix and rate conversion to 48 kHz mono at the edges.
//! - [`codec`]: Opus encoder/decoder (VOIP, 20 ms, in-band FEC, PLC).
//! - [`jitter`]: the per-speaker adaptive jitter buffer (target 40 ms at
//!   first, then 20–120 ms from measured jitter).
//! - [`mixer`]: sums speakers with a soft limiter, never clipping.
//! - [`vad`]: when to transmit: voice activity detection, push-to-talk, or always.
//! - [`transport`]: [`VoiceLink`](transport::VoiceLink), the voice-port path:
//!   UDP bind with retries, TCP fallback, keepalive probes, loss injection for tests.
//! - [`call`]: [`Call`](call::Call), the engine that ties it together on its
//!   own threads, and [`CallHandle`](call::CallHandle) to control it.
//! - [`ogg_opus`]: Ogg Opus files (RFC 7845) writing and reading.
//! - [`message`]: voice messages: record (at most [`message::MAX_MESSAGE_SECS`]
//!   seconds), send through the file transfer, play.
//! - [`error`]: error enums per area.
#![deny(missing_docs)]

pub mod audio;
pub mod call;
pub mod codec;
pub mod error;
pub mod jitter;
pub mod message;
pub mod mixer;
pub mod ogg_opus;
pub mod resample;
pub mod transport;
pub mod vad;

pub use call::{Call, CallEvent, CallHandle, CallOptions, CallStats, SpeakerStats};
pub use error::{AudioError, CallError, CodecError, MessageError, TransportError};
pub use transport::{LinkOptions, TransportKind, VoiceLink};
pub use vad::VoiceMode;
