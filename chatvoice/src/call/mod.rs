//! The call engine.
//!
//! [`Call::start`] opens the input and output, binds the voice path
//! ([`VoiceLink`](crate::transport::VoiceLink): UDP, else TCP), and runs two threads:
//!
//! - **capture**: takes 20 ms frames from the [`AudioInput`](crate::audio::AudioInput), decides with
//!   the [`Gate`](crate::vad::Gate) (mute, push-to-talk or VAD) whether to send, encodes with
//!   Opus and sends an audio packet (`seq` +1 per packet sent, `ts` +960 per
//!   frame captured, sent or not).
//! - **playback**: on each demand from the [`AudioOutput`](crate::audio::AudioOutput), moves the
//!   packets that came in into one [`JitterBuffer`](crate::jitter::JitterBuffer) per speaker, takes one
//!   frame from each (decoded, rebuilt from FEC, or concealed), mixes them
//!   with the soft limiter and hands the frame to the output.
//!
//! The link's own thread receives packets and sends keepalive probes. The
//! caller controls the call through the [`CallHandle`] (atomics, no locks
//! on the audio path) and hears from it through [`CallEvent`]s.
//!
//! Files, one idea each:
//! - `options.rs`: [`CallOptions`], how a call behaves;
//! - `events.rs`: [`CallEvent`], what the call tells the GUI;
//! - `stats.rs`: [`CallStats`] and [`SpeakerStats`], the call's figures;
//! - `controls.rs`: the atomics the handle and the threads share;
//! - `start.rs`: [`Call::start`], opening devices, binding, spawning threads;
//! - `handle.rs`: [`CallHandle`], controlling and stopping a running call;
//! - `capture.rs`: the capture thread (gate, encode, send);
//! - `speaker.rs`: one remote speaker's jitter buffer and decoder;
//! - `playback.rs`: the playback thread (drain, decode, mix, figures);
//! - `rebind.rs`: binding the voice path again after it closed, failing
//!   over to TCP when UDP goes quiet, and back to UDP when it works;
//! - `adapt.rs`: the encoder's bitrate and FEC from the path's loss.

pub mod adapt;
mod capture;
mod controls;
mod events;
mod handle;
mod options;
mod playback;
mod rebind;
mod speaker;
mod start;
mod stats;

pub use events::CallEvent;
pub use handle::CallHandle;
pub use options::CallOptions;
pub use start::Call;
pub use stats::{CallStats, SpeakerStats};
