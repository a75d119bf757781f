//! Client voice engine: real-time calls and voice messages, usable without
//! a window (the desktop client re-exports it; tests and bots use it headless).
//!
//! Layout:
//! - [`audio`]: the [`AudioInput`](audio::AudioInput) / [`AudioOutput`](audio::AudioOutput)
//!   traits (48 kHz mono i16, 20 ms frames, through channels) and their
//!   backends: [`audio::cpal_backend`] (real devices), [`audio::wav`] (WAV
//!   files, paced or not), [`audio::silence`], and [`audio::devices`] (which
//!   devices work, and why not).
//! - [`resample`]: down-mix and rate conversion to 48 kHz mono at the edges
//!   (rubato's band-limited FFT resampler, streaming, no allocation per call).
//! - [`codec`]: Opus encoder/decoder (VOIP, 20 ms, in-band FEC, PLC).
//! - [`echo`]: echo cancellation (WebRTC AEC3) of what the speakers play,
//!   and the render reference from the playback thread to the capture thread.
//! - [`jitter`]: the per-speaker adaptive jitter buffer (target 40 ms at
//!   first, then 20–120 ms from measured jitter).
//! - [`mixer`]: sums speakers with a soft limiter, never clipping.
//! - [`denoise`]: noise suppression on the capture path (RNNoise, via
//!   `nnnoiseless`), on by default; its speech probability feeds the VAD.
//! - [`vad`]: when to transmit: voice activity detection (RNNoise's speech
//!   probability, with the energy detector as the fallback gate), push-to-talk, or always.
//! - [`transport`]: [`VoiceLink`], the voice-port path:
//!   UDP bind with retries, TCP fallback, probes (liveness: the call fails
//!   over to TCP and back, `call/rebind.rs`; the loss estimate the encoder
//!   adapts to, `call/adapt.rs`), DSCP EF marking, loss injection and a UDP
//!   black hole for tests,
//!   and [`CallKeys`](transport::CallKeys), which seal and open audio (docs/protocol.md §16.5).
//! - [`call`]: [`Call`], the engine that ties it together on its
//!   own threads, and [`CallHandle`] to control it.
//! - [`ogg_opus`]: Ogg Opus files (RFC 7845) writing and reading.
//! - [`message`]: voice messages: record (at most [`message::MAX_MESSAGE_SECS`]
//!   seconds), send through the file transfer, play.
//! - [`error`]: error enums per area.
//!
//! Joining a call (the chat client joins; the engine does the audio):
//!
//! ```no_run
//! use chatcore::protocol::{ClientMessage, ServerMessage};
//! use chatcore::{Client, Event};
//! use chatvoice::audio::cpal_backend::{CpalInput, CpalOutput};
//! use chatvoice::audio::devices;
//! use chatvoice::{Call, CallEvent, CallOptions, VoiceMode};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let probe = devices::probe(); // disable the call button with probe.capture's reason
//! let client = Client::connect("127.0.0.1:6789", "alice")?;
//! client.send(&ClientMessage::VoiceJoin)?;
//! let joined = loop {
//!     if let Event::Message(ServerMessage::VoiceJoined(j)) = client.recv()? {
//!         break j;
//!     }
//! };
//! let call = Call::start(
//!     &joined,
//!     "127.0.0.1".parse()?, // the chat server's IP
//!     Box::new(CpalInput::default()),
//!     Box::new(CpalOutput::default()),
//!     CallOptions::default(), // VAD; PushToTalk via set_mode
//! )?;
//! call.set_mode(VoiceMode::PushToTalk);
//! call.set_ptt(true);
//! // Whenever a member joins or leaves, the server sends a new call key:
//! // hand every `voice_key` of the chat connection to the call.
//! if let Event::Message(ServerMessage::VoiceKey(k)) = client.recv()? {
//!     call.set_key(k.epoch, &k.key)?;
//! }
//! while let Ok(ev) = call.events().recv() {
//!     if let CallEvent::Speaking { session, active } = ev {
//!         println!("{session} speaking: {active}");
//!     }
//! }
//! let stats = call.stop();
//! client.send(&ClientMessage::VoiceLeave)?;
//! # let _ = (probe, stats);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod audio;
pub mod call;
pub mod codec;
pub mod denoise;
pub mod echo;
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
