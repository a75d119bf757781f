//! [`CallHandle`]: controls a running call (mute, mode, push-to-talk),
//! hands out its events and figures, and stops it (also when dropped).

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread;

use super::controls::{Controls, mode_to_u8};
use super::events::CallEvent;
use super::stats::CallStats;
use crate::error::KeyError;
use crate::transport::CallKeys;
use crate::vad::VoiceMode;

/// Controls a running call. Dropping it stops the call.
pub struct CallHandle {
    /// Our session.
    pub(super) session: u64,
    /// The call's keys, updated by [`CallHandle::set_key`].
    pub(super) keys: Arc<CallKeys>,
    /// Switches.
    pub(super) controls: Arc<Controls>,
    /// Events from the threads.
    pub(super) events: Receiver<CallEvent>,
    /// The latest figures (updated every frame played).
    pub(super) stats: Arc<Mutex<CallStats>>,
    /// Capture and playback threads.
    pub(super) threads: Vec<thread::JoinHandle<()>>,
}

impl CallHandle {
    /// Our session id in the call.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Mutes or unmutes the microphone locally (nothing is sent while
    /// muted; keepalives continue). Also send `voice_mute` on the chat
    /// connection so the others see it.
    pub fn set_muted(&self, muted: bool) {
        self.controls.muted.store(muted, Ordering::Relaxed);
    }

    /// The server sent `voice_key` (a member joined or left): seal with the
    /// new key from now on; the previous one still opens packets for
    /// [`GRACE`](chatcore::protocol::voice::seal::GRACE). Forward every
    /// `voice_key` of the chat connection here.
    pub fn set_key(&self, epoch: u32, key: &[u8]) -> Result<(), KeyError> {
        self.keys.set_key(epoch, key)
    }

    /// Whether the microphone is muted.
    pub fn is_muted(&self) -> bool {
        self.controls.muted.load(Ordering::Relaxed)
    }

    /// VAD, push-to-talk or always on.
    pub fn set_mode(&self, mode: VoiceMode) {
        self.controls
            .mode
            .store(mode_to_u8(mode), Ordering::Relaxed);
    }

    /// Switches noise suppression of the microphone on or off (takes effect
    /// at the next frame).
    pub fn set_noise_suppression(&self, on: bool) {
        self.controls.noise_suppression.store(on, Ordering::Relaxed);
    }

    /// Whether noise suppression is on.
    pub fn noise_suppression(&self) -> bool {
        self.controls.noise_suppression.load(Ordering::Relaxed)
    }

    /// Switches echo cancellation on or off (takes effect at the next frame).
    pub fn set_echo_cancellation(&self, on: bool) {
        self.controls.echo_cancellation.store(on, Ordering::Relaxed);
    }

    /// Whether echo cancellation is on.
    pub fn echo_cancellation(&self) -> bool {
        self.controls.echo_cancellation.load(Ordering::Relaxed)
    }

    /// The push-to-talk key went down (`true`) or up.
    pub fn set_ptt(&self, pressed: bool) {
        self.controls.ptt.store(pressed, Ordering::Relaxed);
    }

    /// Events (transport, who speaks, stats, errors). Poll with `try_recv`
    /// from the UI, or block in a worker.
    pub fn events(&self) -> &Receiver<CallEvent> {
        &self.events
    }

    /// The latest figures.
    pub fn stats(&self) -> CallStats {
        match self.stats.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Stops the call (threads end, devices close, a WAV output writes its
    /// file) and returns the final figures. Send `voice_leave` on the chat
    /// connection too.
    pub fn stop(mut self) -> CallStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        self.controls.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for CallHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
