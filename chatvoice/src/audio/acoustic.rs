//! A speaker heard by its microphone, without a room: an output whose
//! frames come back, delayed and attenuated, as the frames of an input.
//! For tests and measurements of echo cancellation (a laptop without a
//! headset, made deterministic).
//!
//! One thread drives both sides on one clock, as a duplex sound card does:
//! every period it asks the engine for a frame to play, and delivers one
//! captured frame: what was played `delay` ago, times `gain`. Played and
//! captured audio stay aligned even when the pace is faster than real time.

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::silence::{StopOnDrop, sleep_until};
use super::{AudioInput, AudioOutput, Capture, FRAME, Pacing, Playback};
use crate::error::{AudioError, Direction};

/// Creates the two halves: start both (any order) for the loop to run.
///
/// `delay_ms` is rounded to whole samples; `gain` scales what is heard (0.3
/// ≈ −10 dB, a laptop speaker near its microphone).
pub fn acoustic_loop(delay_ms: u32, gain: f32, pacing: Pacing) -> (LoopInput, LoopOutput) {
    let (tx, rx) = mpsc::sync_channel(16);
    let rx = Arc::new(Mutex::new(Some(rx)));
    (
        LoopInput { rx },
        LoopOutput {
            tx,
            delay: (delay_ms as usize) * 48,
            gain,
            pacing,
            voice: Vec::new(),
        },
    )
}

/// The microphone of an [`acoustic_loop`].
#[derive(Debug)]
pub struct LoopInput {
    /// The captured frames (taken once, on start).
    rx: Arc<Mutex<Option<Receiver<Vec<i16>>>>>,
}

/// The speaker of an [`acoustic_loop`]: it drives the loop.
#[derive(Debug)]
pub struct LoopOutput {
    /// Where captured frames go.
    tx: SyncSender<Vec<i16>>,
    /// Speaker-to-microphone delay in samples.
    delay: usize,
    /// How loud the speaker is at the microphone.
    gain: f32,
    /// The shared clock.
    pacing: Pacing,
    /// What the person at this microphone says, from the loop's first frame
    /// (silence after its end): the near end, for double talk.
    voice: Vec<i16>,
}

impl LoopOutput {
    /// The microphone also hears `voice` (48 kHz mono), from the first
    /// frame on: a person talking while the speaker plays.
    pub fn with_voice(mut self, voice: Vec<i16>) -> Self {
        self.voice = voice;
        self
    }
}

impl AudioInput for LoopInput {
    fn start(self: Box<Self>) -> Result<Capture, AudioError> {
        let rx = self
            .rx
            .lock()
            .ok()
            .and_then(|mut r| r.take())
            .ok_or_else(|| AudioError::NoDevice {
                direction: Direction::Capture,
                reason: "this acoustic loop's input was started already".into(),
            })?;
        Ok(Capture {
            frames: rx,
            guard: Box::new(()),
        })
    }
}

impl AudioOutput for LoopOutput {
    fn start(self: Box<Self>) -> Result<Playback, AudioError> {
        let period = self
            .pacing
            .frame_period()
            .unwrap_or(Duration::from_millis(20));
        let (demand_tx, demand_rx) = mpsc::channel();
        let (frames_tx, frames_rx) = mpsc::channel::<Vec<i16>>();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let LoopOutput {
            tx,
            delay,
            gain,
            voice,
            ..
        } = *self;
        let t = thread::Builder::new()
            .name("acoustic-loop".into())
            .spawn(move || {
                let mut air: VecDeque<i16> = VecDeque::with_capacity(delay + 2 * FRAME);
                air.extend(std::iter::repeat_n(0, delay));
                let t0 = Instant::now();
                for k in 0u32.. {
                    if !sleep_until(t0 + period * k, &flag) || demand_tx.send(()).is_err() {
                        return;
                    }
                    // The engine answers at once; wait a little longer on a
                    // busy machine, then play silence (an underrun).
                    let played = frames_rx
                        .recv_timeout(period * 4)
                        .unwrap_or_else(|_| vec![0; FRAME]);
                    air.extend(
                        played
                            .iter()
                            .copied()
                            .chain(std::iter::repeat(0))
                            .take(FRAME),
                    );
                    let said = voice
                        .iter()
                        .skip(k as usize * FRAME)
                        .chain(std::iter::repeat(&0));
                    let heard: Vec<i16> = air
                        .drain(..FRAME)
                        .zip(said)
                        .map(|(s, &v)| {
                            (f32::from(s) * gain + f32::from(v)).clamp(-32768.0, 32767.0) as i16
                        })
                        .collect();
                    if tx.send(heard).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Playback {
            demand: demand_rx,
            frames: frames_tx,
            guard: Box::new(StopOnDrop(stop, Some(t))),
        })
    }
}
