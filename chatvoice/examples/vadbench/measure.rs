//! The voice activity measurement on the committed noisy fixtures, shared
//! by the `vadbench` example (which prints it) and the
//! `noise_suppression` test (which asserts the targets).
//!
//! Ground truth comes from the clean speech track: a 20 ms frame is speech
//! when its clean level is within [`SPEECH_RANGE_DB`] of the loudest clean
//! frame. Frames that are not speech but lie within the VAD's hangover
//! (300 ms) after a speech frame are a word's or a sentence's tail, sent on
//! purpose: counted neither as speech nor as noise. All other frames are
//! noise-only.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chatvoice::audio::FRAME;
use chatvoice::audio::wav::read_wav;
use chatvoice::denoise::Denoiser;
use chatvoice::error::AudioError;
use chatvoice::vad::{Vad, VadConfig, frame_dbfs};

/// The noise types, by fixture name (`noisy-NAME24k.wav`).
pub const NOISES: [&str; 3] = ["fan", "keys", "babble"];

/// Clean frames this close to the loudest one (dB) are speech.
pub const SPEECH_RANGE_DB: f32 = 35.0;

/// What a frame is, from the clean track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// Speech is heard.
    Speech,
    /// Within the hangover after speech.
    Tail,
    /// Only noise.
    Noise,
}

/// The fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Reads a fixture as 48 kHz 20 ms frames.
pub fn frames(name: &str) -> Result<Vec<Vec<i16>>, AudioError> {
    let pcm = read_wav(&fixtures().join(name))?;
    Ok(pcm.chunks_exact(FRAME).map(<[i16]>::to_vec).collect())
}

/// Ground truth for each frame of the clean track.
pub fn truth(clean: &[Vec<i16>]) -> Vec<Truth> {
    let levels: Vec<f32> = clean.iter().map(|f| frame_dbfs(f)).collect();
    let top = levels.iter().copied().fold(-100f32, f32::max);
    let hang = VadConfig::default().hangover_frames as usize;
    let mut since = usize::MAX;
    levels
        .iter()
        .map(|&db| {
            if db >= top - SPEECH_RANGE_DB {
                since = 0;
                Truth::Speech
            } else {
                since = since.saturating_add(1);
                if since <= hang {
                    Truth::Tail
                } else {
                    Truth::Noise
                }
            }
        })
        .collect()
}

/// How one detector did on one fixture.
#[derive(Debug, Clone, Copy, Default)]
pub struct Score {
    /// Speech frames.
    pub speech: usize,
    /// Speech frames sent.
    pub speech_sent: usize,
    /// Noise-only frames.
    pub noise: usize,
    /// Noise-only frames sent.
    pub noise_sent: usize,
}

impl Score {
    /// Share of speech frames sent, in %.
    pub fn kept_pct(&self) -> f64 {
        100.0 * self.speech_sent as f64 / self.speech.max(1) as f64
    }
    /// Share of noise-only frames sent, in %.
    pub fn false_pct(&self) -> f64 {
        100.0 * self.noise_sent as f64 / self.noise.max(1) as f64
    }
}

/// Scores a per-frame send decision against the truth.
pub fn score(truth: &[Truth], sent: &[bool]) -> Score {
    let mut s = Score::default();
    for (t, &x) in truth.iter().zip(sent) {
        match t {
            Truth::Speech => {
                s.speech += 1;
                s.speech_sent += usize::from(x);
            }
            Truth::Noise => {
                s.noise += 1;
                s.noise_sent += usize::from(x);
            }
            Truth::Tail => {}
        }
    }
    s
}

/// The old path: energy VAD on the raw frames.
pub fn energy_only(noisy: &[Vec<i16>], cfg: VadConfig, warm_up: bool) -> Vec<bool> {
    let mut vad = Vad::new(cfg);
    warm(warm_up, noisy, |f| {
        vad.process(f);
    });
    noisy.iter().map(|f| vad.process(f)).collect()
}

/// The new path, as the capture thread runs it: suppression, then the VAD
/// from the speech probability. Also returns each frame's suppression
/// time in µs (of the scored pass).
pub fn suppressed(noisy: &[Vec<i16>], cfg: VadConfig, warm_up: bool) -> (Vec<bool>, Vec<f64>) {
    let mut d = Denoiser::new();
    let mut vad = Vad::new(cfg);
    let mut times = Vec::with_capacity(noisy.len());
    warm(warm_up, noisy, |f| {
        let (clean, p) = d.clean(f.to_vec(), true);
        vad.process_with(&clean, p);
    });
    let sent = noisy
        .iter()
        .map(|f| {
            let t = std::time::Instant::now();
            let (clean, p) = d.clean(f.clone(), true);
            times.push(t.elapsed().as_secs_f64() * 1e6);
            vad.process_with(&clean, p)
        })
        .collect();
    (sent, times)
}

/// Per-frame speech probabilities (for choosing the threshold).
pub fn probabilities(noisy: &[Vec<i16>]) -> Vec<f32> {
    let mut d = Denoiser::new();
    noisy.iter().map(|f| d.process(&mut f.clone())).collect()
}

/// With `warm_up`, the detector first hears the whole fixture once (a call
/// in progress in that room) before it is scored; without, its first
/// hearing is scored (the start of a call).
pub fn warm(warm_up: bool, noisy: &[Vec<i16>], mut step: impl FnMut(&[i16])) {
    if warm_up {
        noisy.iter().for_each(|f| step(f));
    }
}
