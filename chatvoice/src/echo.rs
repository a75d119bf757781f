//! Echo cancellation: without a headset the microphone hears the speakers,
//! and the others would hear themselves. [`EchoCanceller`] removes from each
//! captured frame what the speakers played (WebRTC's AEC3, the pure-Rust
//! `sonora` port: it estimates the speaker-to-microphone delay itself, adapts
//! a filter to the room, and suppresses what the filter leaves).
//!
//! The playback thread knows what is played; the capture thread owns the
//! canceller. [`reference()`] links them: the playback thread offers each
//! frame it hands to the output to a [`RenderTap`] (a bounded channel of
//! fixed-size frames: never blocks, drops a frame when the capture side
//! lags), and the capture thread, before cancelling the echo in a captured
//! frame, feeds the canceller every played frame waiting in the
//! [`RenderReference`]. The tap and the reference allocate nothing per
//! frame; the canceller's capture call makes a few dozen small scratch
//! allocations inside the port (measured: 44 per 10 ms), on this engine
//! thread, never in a device callback.
//!
//! Measured by `cargo run --release -p chatvoice --example echobench`
//! (docs/benchmarks.md, "Echo cancellation").

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use sonora::config::{EchoCanceller as AecConfig, MaxProcessingRate, Pipeline};
use sonora::{AudioProcessing, Config, StreamConfig};

use crate::audio::{FRAME, SAMPLE_RATE};

/// AEC3 works on 10 ms sub-frames: two per engine frame.
const SUB: usize = FRAME / 2;

/// Played frames that may wait for the capture thread (500 ms): covers a
/// capture device that delivers in bursts; beyond it the playback thread
/// drops frames rather than wait.
const REFERENCE_FRAMES: usize = 25;

/// The echo canceller of one call (capture thread).
pub struct EchoCanceller {
    /// WebRTC's audio processing with only the echo canceller on (noise
    /// suppression has its own stage; gain control is not wanted here).
    apm: AudioProcessing,
    /// The canceller writes into a separate buffer; the frame is then
    /// overwritten in place, so the capture path keeps one buffer.
    out: [i16; SUB],
    /// The render output the canceller insists on writing (unused: the
    /// speakers already have the frame).
    render_out: [i16; SUB],
}

impl std::fmt::Debug for EchoCanceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoCanceller").finish_non_exhaustive()
    }
}

impl Default for EchoCanceller {
    fn default() -> Self {
        Self::new()
    }
}

impl EchoCanceller {
    /// A canceller for 48 kHz mono, converging within a few seconds of
    /// far-end speech.
    pub fn new() -> Self {
        let config = Config {
            pipeline: Pipeline {
                // Full band: our frames are 48 kHz, keep them so.
                maximum_internal_processing_rate: MaxProcessingRate::Rate48kHz,
                ..Pipeline::default()
            },
            echo_canceller: Some(AecConfig::default()),
            ..Config::default()
        };
        let stream = StreamConfig::new(SAMPLE_RATE, 1);
        let apm = AudioProcessing::builder()
            .config(config)
            .capture_config(stream)
            .render_config(stream)
            .build();
        Self {
            apm,
            out: [0; SUB],
            render_out: [0; SUB],
        }
    }

    /// Tells the canceller what the speakers play (one [`FRAME`]; any other
    /// length is ignored).
    pub fn render(&mut self, frame: &[i16]) {
        if frame.len() != FRAME {
            return;
        }
        for sub in frame.chunks_exact(SUB) {
            // Only a wrong format fails, and ours is fixed.
            let _ = self.apm.process_render_i16(sub, &mut self.render_out);
        }
    }

    /// Removes the echo from a captured [`FRAME`], in place (any other
    /// length is left as it is).
    pub fn process(&mut self, frame: &mut [i16]) {
        if frame.len() != FRAME {
            return;
        }
        for sub in frame.chunks_exact_mut(SUB) {
            if self.apm.process_capture_i16(sub, &mut self.out).is_ok() {
                sub.copy_from_slice(&self.out);
            }
        }
    }

    /// The canceller's own figures: echo return loss enhancement (dB) and
    /// the estimated speaker-to-microphone delay (ms), once known.
    pub fn estimates(&self) -> (Option<f64>, Option<i32>) {
        let s = self.apm.statistics();
        (s.echo_return_loss_enhancement, s.delay_ms)
    }
}

/// The playback side of the render reference: offers played frames.
#[derive(Debug, Clone)]
pub struct RenderTap {
    /// Bounded, fixed-size items: sending copies, never allocates.
    tx: SyncSender<[i16; FRAME]>,
}

impl RenderTap {
    /// Offers a frame just handed to the output; never blocks (a frame the
    /// capture side has no room for is dropped: the canceller treats the
    /// gap like a change of the echo path).
    pub fn offer(&self, frame: &[i16]) {
        let Ok(f) = <[i16; FRAME]>::try_from(frame) else {
            return;
        };
        // Full (the capture side lags) or gone (the call ends): dropped.
        let _ = self.tx.try_send(f);
    }
}

/// The capture side of the render reference.
#[derive(Debug)]
pub struct RenderReference {
    /// Played frames not yet given to the canceller.
    rx: Receiver<[i16; FRAME]>,
}

impl RenderReference {
    /// Gives every played frame waiting to `aec` (or drops them when `aec`
    /// is `None`: echo cancellation is off, and a stale reference must not
    /// pile up). Returns how many frames were taken.
    pub fn feed(&self, mut aec: Option<&mut EchoCanceller>) -> usize {
        let mut n = 0;
        while let Ok(f) = self.rx.try_recv() {
            n += 1;
            if let Some(a) = aec.as_deref_mut() {
                a.render(&f);
            }
        }
        n
    }
}

/// A linked [`RenderTap`] (playback thread) and [`RenderReference`]
/// (capture thread).
pub fn reference() -> (RenderTap, RenderReference) {
    let (tx, rx) = sync_channel(REFERENCE_FRAMES);
    (RenderTap { tx }, RenderReference { rx })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic noise, loud enough to be far-end "speech".
    fn noise(seed: &mut u64) -> i16 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 48) as i16) / 4
    }

    #[test]
    fn an_echo_of_what_is_played_is_removed_from_the_microphone() {
        let (tap, reference) = reference();
        let mut aec = EchoCanceller::new();
        let mut seed = 1;
        // 40 ms speaker-to-microphone delay, −10 dB.
        let delay = 2 * FRAME;
        let mut played: Vec<i16> = Vec::new();
        let (mut e_in, mut e_out) = (0.0f64, 0.0f64);
        for f in 0..300 {
            let frame: Vec<i16> = (0..FRAME).map(|_| noise(&mut seed)).collect();
            played.extend_from_slice(&frame);
            tap.offer(&frame);
            let start = f * FRAME;
            let mut mic: Vec<i16> = (start..start + FRAME)
                .map(|i| i.checked_sub(delay).map_or(0, |j| played[j] / 3))
                .collect();
            let before: f64 = mic.iter().map(|&v| f64::from(v).powi(2)).sum();
            reference.feed(Some(&mut aec));
            aec.process(&mut mic);
            if f >= 200 {
                e_in += before;
                e_out += mic.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
            }
        }
        let erle = 10.0 * (e_in / e_out.max(1.0)).log10();
        assert!(erle > 15.0, "echo reduced by only {erle:.1} dB");
    }

    #[test]
    fn the_tap_drops_frames_instead_of_blocking_when_the_capture_side_lags() {
        let (tap, reference) = reference();
        for _ in 0..REFERENCE_FRAMES * 3 {
            tap.offer(&[1; FRAME]);
        }
        let mut aec = EchoCanceller::new();
        assert_eq!(reference.feed(Some(&mut aec)), REFERENCE_FRAMES);
        tap.offer(&[1; FRAME]);
        tap.offer(&[1; 10]); // not a frame: ignored
        assert_eq!(reference.feed(None), 1);
    }
}
