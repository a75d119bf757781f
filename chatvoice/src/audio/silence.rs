//! Silence: an input that delivers zero frames on a clock, and an output
//! that asks for frames on a clock and discards them. For headless machines
//! (join a call to listen without a microphone, or to talk without speakers)
//! and tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use super::{AudioInput, AudioOutput, Capture, FRAME, Pacing, Playback};
use crate::error::AudioError;

/// Sets a flag when dropped, telling a backend thread to end.
pub(crate) struct StopOnDrop(
    pub(crate) Arc<AtomicBool>,
    pub(crate) Option<thread::JoinHandle<()>>,
);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

/// Sleeps until `deadline` unless `stop` is set first (checked every 50 ms).
pub(crate) fn sleep_until(deadline: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        thread::sleep((deadline - now).min(std::time::Duration::from_millis(50)));
    }
}

/// Zero frames at the given pace, forever.
#[derive(Debug, Clone, Copy)]
pub struct SilenceInput {
    /// The clock; unpaced silence would flood the engine.
    pub pacing: Pacing,
}

impl SilenceInput {
    /// Real-time silence.
    pub fn realtime() -> Self {
        Self {
            pacing: Pacing::Realtime(1.0),
        }
    }
}

impl AudioInput for SilenceInput {
    fn start(self: Box<Self>) -> Result<Capture, AudioError> {
        let period = self
            .pacing
            .frame_period()
            .unwrap_or(std::time::Duration::from_millis(20));
        let (tx, rx) = mpsc::sync_channel(16);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let t = thread::Builder::new()
            .name("silence-in".into())
            .spawn(move || {
                let t0 = Instant::now();
                for k in 1u32.. {
                    if !sleep_until(t0 + period * k, &flag) || tx.send(vec![0i16; FRAME]).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Capture {
            frames: rx,
            guard: Box::new(StopOnDrop(stop, Some(t))),
        })
    }
}

/// Asks for a frame every 20 ms (scaled) and throws it away.
#[derive(Debug, Clone, Copy)]
pub struct SilenceOutput {
    /// The clock.
    pub pacing: Pacing,
}

impl SilenceOutput {
    /// A real-time sink.
    pub fn realtime() -> Self {
        Self {
            pacing: Pacing::Realtime(1.0),
        }
    }
}

impl AudioOutput for SilenceOutput {
    fn start(self: Box<Self>) -> Result<Playback, AudioError> {
        let period = self
            .pacing
            .frame_period()
            .unwrap_or(std::time::Duration::from_millis(20));
        let (demand_tx, demand_rx) = mpsc::channel();
        let (frames_tx, frames_rx) = mpsc::channel::<Vec<i16>>();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let t = thread::Builder::new()
            .name("silence-out".into())
            .spawn(move || {
                let t0 = Instant::now();
                for k in 0u32.. {
                    if !sleep_until(t0 + period * k, &flag) || demand_tx.send(()).is_err() {
                        return;
                    }
                    while frames_rx.try_recv().is_ok() {}
                }
            })?;
        Ok(Playback {
            demand: demand_rx,
            frames: frames_tx,
            guard: Box::new(StopOnDrop(stop, Some(t))),
        })
    }
}
