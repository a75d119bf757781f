//! The capture thread: takes 20 ms frames from the input, removes the echo
//! of what the speakers played (`echo.rs`, when on), suppresses their noise
//! when that is switched on ([`Denoiser`], whose speech probability goes to
//! the VAD), asks the gate (mute, push-to-talk or VAD) whether to send,
//! encodes with Opus (its bitrate and FEC adapted to the path's loss,
//! `adapt.rs`) and sends an audio packet, sealed with the call key, through
//! the current link (the packet counter +1 per packet sent, kept by the
//! call's [`CallKeys`](crate::transport::CallKeys); `ts` +960 per frame
//! captured, sent or not, from a random start).

use std::sync::atomic::Ordering;
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use super::adapt::Adapter;
use super::controls::{Controls, mode_from_u8};
use super::events::CallEvent;
use crate::audio::{Capture, FRAME};
use crate::codec::Encoder;
use crate::denoise::Denoiser;
use crate::echo::{EchoCanceller, RenderReference};
use crate::transport::LinkSender;
use crate::vad::Gate;

/// The capture thread's state.
pub(super) struct Capturing {
    /// Our session.
    pub(super) session: u64,
    /// The input.
    pub(super) capture: Capture,
    /// Opus.
    pub(super) encoder: Encoder,
    /// Mute / PTT / VAD.
    pub(super) gate: Gate,
    /// Where packets go (replaced when the path is bound again).
    pub(super) sender: Arc<Mutex<LinkSender>>,
    /// Switches and counters.
    pub(super) controls: Arc<Controls>,
    /// Events.
    pub(super) events: Sender<CallEvent>,
    /// Removes what the speakers play from the microphone.
    pub(super) echo: EchoCanceller,
    /// What the playback thread played, for `echo`.
    pub(super) render: RenderReference,
    /// Bitrate and FEC from the path's loss (`adapt.rs`).
    pub(super) adapt: Adapter,
}

impl Capturing {
    pub(super) fn run(mut self) {
        let mut rng = rand::rng();
        // A random starting point, as RTP does, so a rejoining member is
        // not mistaken for its old stream (the counter starts randomly too).
        let mut ts: u32 = rng.random();
        let mut speaking = false;
        let c = self.controls.clone();
        // Noise suppression (allocated once, here on the capture thread).
        let mut denoiser = Denoiser::new();
        while !c.stop.load(Ordering::Relaxed) {
            let mut frame = match self.capture.frames.recv_timeout(Duration::from_millis(100)) {
                Ok(f) => f,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    if speaking {
                        let _ = self.events.send(CallEvent::Speaking {
                            session: self.session,
                            active: false,
                        });
                    }
                    let _ = self.events.send(CallEvent::InputEnded);
                    return;
                }
            };
            c.captured.fetch_add(1, Ordering::Relaxed);
            // Echo cancellation first: it needs the microphone as it was.
            let aec = c.echo_cancellation.load(Ordering::Relaxed);
            self.render.feed(aec.then_some(&mut self.echo));
            if aec {
                self.echo.process(&mut frame);
            }
            if self.adapt.due()
                && let Ok(s) = self.sender.lock()
            {
                self.adapt.decide(&mut self.encoder, &s);
            }
            // Then noise suppression, on the echo-free microphone.
            let (frame, speech_prob) =
                denoiser.clean(frame, c.noise_suppression.load(Ordering::Relaxed));
            let send = self.gate.decide_with(
                &frame,
                speech_prob,
                mode_from_u8(c.mode.load(Ordering::Relaxed)),
                c.muted.load(Ordering::Relaxed),
                c.ptt.load(Ordering::Relaxed),
            );
            if send != speaking {
                speaking = send;
                let _ = self.events.send(CallEvent::Speaking {
                    session: self.session,
                    active: send,
                });
            }
            if send {
                match self.encoder.encode(&frame) {
                    Ok(p) => match self
                        .sender
                        .lock()
                        .map_err(|_| std::io::Error::other("lock"))
                        .and_then(|s| s.send_audio(ts, &p))
                    {
                        Ok(()) => {
                            c.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            let _ = self
                                .events
                                .send(CallEvent::Error(format!("voice send: {e}")));
                        }
                    },
                    Err(e) => {
                        let _ = self.events.send(CallEvent::Error(e.to_string()));
                    }
                }
            } else {
                c.suppressed.fetch_add(1, Ordering::Relaxed);
            }
            ts = ts.wrapping_add(FRAME as u32);
        }
    }
}
