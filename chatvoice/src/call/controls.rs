//! The switches the [`CallHandle`](super::CallHandle) and the call's threads
//! share: mute, voice mode, push-to-talk, stop, and the capture counters.
//! All atomics, so no lock is taken on the audio path; the voice mode is
//! stored as a number, hence the two conversions here.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64};

use crate::vad::VoiceMode;

/// Switches shared between the handle and the threads.
#[derive(Debug, Default)]
pub(super) struct Controls {
    /// Muted: nothing is sent.
    pub(super) muted: AtomicBool,
    /// [`VoiceMode`] as a number.
    pub(super) mode: AtomicU8,
    /// The push-to-talk key is held.
    pub(super) ptt: AtomicBool,
    /// Noise suppression on the capture path (read by the capture thread
    /// every frame, so the switch takes effect at once).
    pub(super) noise_suppression: AtomicBool,
    /// Echo cancellation of what the speakers play (read by the capture
    /// thread every frame).
    pub(super) echo_cancellation: AtomicBool,
    /// The threads should end.
    pub(super) stop: AtomicBool,
    /// Capture counters (the capture thread writes, the playback thread
    /// puts them into the stats).
    pub(super) captured: AtomicU64,
    /// Packets sent.
    pub(super) sent: AtomicU64,
    /// Frames suppressed.
    pub(super) suppressed: AtomicU64,
}

pub(super) fn mode_to_u8(m: VoiceMode) -> u8 {
    match m {
        VoiceMode::Vad => 0,
        VoiceMode::PushToTalk => 1,
        VoiceMode::AlwaysOn => 2,
    }
}

pub(super) fn mode_from_u8(m: u8) -> VoiceMode {
    match m {
        1 => VoiceMode::PushToTalk,
        2 => VoiceMode::AlwaysOn,
        _ => VoiceMode::Vad,
    }
}
