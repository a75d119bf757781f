//! Noise suppression on the capture path: RNNoise (the `nnnoiseless`
//! crate, pure Rust) removes steady and non-steady noise — fans, keyboards,
//! a room talking — from each 20 ms frame before it is encoded, and tells
//! how likely the frame holds speech; [`crate::vad`] decides from that
//! probability.
//!
//! RNNoise works on 10 ms (480-sample) frames of f32 in i16 scale at
//! 48 kHz, so each 960-sample engine frame is two RNNoise frames. Its
//! output lags its input by 10 ms (one RNNoise frame), which is the
//! latency suppression adds. The state and both buffers are allocated once:
//! [`Denoiser::process`] allocates nothing.

use nnnoiseless::DenoiseState;

/// Samples per RNNoise frame (10 ms at 48 kHz).
pub const DENOISE_FRAME: usize = DenoiseState::FRAME_SIZE;

/// A noise suppressor for one microphone.
pub struct Denoiser {
    /// RNNoise's state (its network and the previous frames' features);
    /// boxed by the crate, about 30 KB.
    state: Box<DenoiseState<'static>>,
    /// One RNNoise frame of input, converted to f32 (reused every call).
    input: [f32; DENOISE_FRAME],
    /// One RNNoise frame of output (reused every call).
    output: [f32; DENOISE_FRAME],
    /// RNNoise frames processed, up to [`WARM_UP_FRAMES`]: the first
    /// outputs carry start-up artifacts (nnnoiseless says to discard the
    /// first), and their speech probability is not trusted.
    seen: u32,
}

/// RNNoise frames (10 ms) at the start whose speech probability is taken
/// as 0: on the fan fixture the very first frame read as speech and, with
/// the hangover, sent the first 320 ms of noise of a call.
const WARM_UP_FRAMES: u32 = 2;

impl std::fmt::Debug for Denoiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Denoiser").finish_non_exhaustive()
    }
}

impl Default for Denoiser {
    fn default() -> Self {
        Self::new()
    }
}

impl Denoiser {
    /// A suppressor with RNNoise's built-in model.
    pub fn new() -> Self {
        Self {
            state: DenoiseState::new(),
            input: [0.0; DENOISE_FRAME],
            output: [0.0; DENOISE_FRAME],
            seen: 0,
        }
    }

    /// Suppresses the noise of `frame` (48 kHz mono, any multiple of 480
    /// samples; a shorter remainder is left as it is) in place and returns
    /// the probability (0–1) that it holds speech: the larger of its
    /// 10 ms halves, so speech starting in the second half counts.
    pub fn process(&mut self, frame: &mut [i16]) -> f32 {
        let mut prob = 0f32;
        for part in frame.chunks_exact_mut(DENOISE_FRAME) {
            for (x, &s) in self.input.iter_mut().zip(part.iter()) {
                *x = f32::from(s);
            }
            let p = self.state.process_frame(&mut self.output, &self.input);
            if self.seen >= WARM_UP_FRAMES {
                prob = prob.max(p);
            } else {
                self.seen += 1;
            }
            for (s, &y) in part.iter_mut().zip(&self.output) {
                *s = y.round().clamp(-32768.0, 32767.0) as i16;
            }
        }
        prob
    }

    /// The capture thread's step: when `on`, suppresses the frame's noise
    /// and returns it with its speech probability; when off, returns it
    /// untouched and no probability (the VAD then uses energy alone).
    pub fn clean(&mut self, mut frame: Vec<i16>, on: bool) -> (Vec<i16>, Option<f32>) {
        if on {
            let p = self.process(&mut frame);
            (frame, Some(p))
        } else {
            (frame, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(amp: f32, seed: u32, n: usize) -> Vec<i16> {
        let mut s = seed.max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                ((s as f32 / u32::MAX as f32 - 0.5) * 2.0 * amp) as i16
            })
            .collect()
    }

    #[test]
    fn white_noise_is_attenuated_and_not_taken_for_speech() {
        let mut d = Denoiser::new();
        let mut probs = Vec::new();
        let (mut before, mut after) = (0f64, 0f64);
        for i in 0..300 {
            let mut f = noise(3000.0, i + 1, 960);
            let e_in: f64 = f.iter().map(|&x| f64::from(x).powi(2)).sum();
            probs.push(d.process(&mut f));
            if i >= 150 {
                before += e_in;
                after += f.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
            }
        }
        let db = 10.0 * (after / before).log10();
        assert!(db < -6.0, "white noise only {db:.1} dB quieter");
        assert!(probs[150..].iter().all(|&p| p < 0.5), "{probs:?}");
    }

    #[test]
    fn switched_off_the_frame_passes_untouched() {
        let mut d = Denoiser::new();
        let f = noise(3000.0, 7, 960);
        let (out, p) = d.clean(f.clone(), false);
        assert_eq!(out, f);
        assert_eq!(p, None);
        let (out, p) = d.clean(f.clone(), true);
        assert_ne!(out, f);
        assert!(p.is_some());
    }
}
