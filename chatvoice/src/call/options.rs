//! [`CallOptions`]: how a call behaves (voice mode, mute at start, the
//! link's, Opus's, the jitter buffer's and the VAD's settings, the time
//! scale of paced test backends). Apart because callers build it before any
//! device or socket exists.

use std::time::Duration;

use crate::codec::EncoderConfig;
use crate::jitter::JitterConfig;
use crate::transport::LinkOptions;
use crate::vad::{VadConfig, VoiceMode};

/// How a call behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOptions {
    /// When to transmit (VAD by default).
    pub mode: VoiceMode,
    /// Start muted.
    pub muted: bool,
    /// Noise suppression on the capture path (on by default): removes fans,
    /// keys and hum before the voice activity detection and the encoder.
    pub noise_suppression: bool,
    /// Echo cancellation (on by default): removes from the microphone what
    /// the speakers played, for members without a headset.
    pub echo_cancellation: bool,
    /// Voice path settings (force TCP, loss injection for tests).
    pub link: LinkOptions,
    /// Opus settings.
    pub encoder: EncoderConfig,
    /// Jitter buffer settings.
    pub jitter: JitterConfig,
    /// VAD settings.
    pub vad: VadConfig,
    /// Media seconds per wall second of the paced backends (1.0 for real
    /// devices). Tests run WAV backends faster than real time and pass the
    /// same factor here so that the jitter buffer measures time in media ms.
    pub time_scale: f64,
    /// How often a [`CallEvent::Stats`](super::CallEvent::Stats) is sent.
    pub stats_every: Duration,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            mode: VoiceMode::Vad,
            muted: false,
            noise_suppression: true,
            echo_cancellation: true,
            link: LinkOptions::default(),
            encoder: EncoderConfig::default(),
            jitter: JitterConfig::default(),
            vad: VadConfig::default(),
            time_scale: 1.0,
            stats_every: Duration::from_secs(1),
        }
    }
}
