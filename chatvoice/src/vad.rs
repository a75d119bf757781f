//! When to transmit: voice activity detection, push-to-talk, or always.
//!
//! With noise suppression on (the default), the capture thread hands the
//! VAD RNNoise's speech probability for each frame ([`crate::denoise`]): a
//! frame is speech when that probability reaches
//! [`VadConfig::speech_prob`] and the energy detector below also hears it
//! (on the suppressed frame: in series it rejects the odd frame RNNoise
//! rates high in a quiet room) and the frame is within
//! [`VadConfig::near_db`] of the member's own recent speech level (other
//! people talking in the room are speech to RNNoise, but quieter at this
//! microphone); the hangover is the same. On the committed fixtures this
//! sends 0 % of fan, 0.7 % of keyboard and 0.7 % of babble noise-only
//! frames where the energy detector alone sent up to 91 %
//! (docs/benchmarks.md, "Noise suppression and voice activity"). With
//! suppression off, the energy detector decides alone.
//!
//! The energy VAD compares each 20 ms frame's level with a tracked noise
//! floor. A frame is speech when it is at least `margin_db` above the floor
//! and above an absolute `min_dbfs`; transmission then continues for a
//! `hangover` of frames after the last speech frame (so word endings and
//! short pauses are not cut). The noise floor follows quiet frames quickly
//! downwards and slowly upwards (7.5 dB/s), so a steady fan or hum is learnt as noise
//! and an open microphone in a quiet room sends nothing.

/// How the microphone is gated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VoiceMode {
    /// Send while the voice activity detector hears speech (the default).
    #[default]
    Vad,
    /// Send only while the push-to-talk key is held.
    PushToTalk,
    /// Send every frame (an open line; tests and music).
    AlwaysOn,
}

/// VAD settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// Speech must be this many dB above the noise floor.
    pub margin_db: f32,
    /// Frames quieter than this (dBFS) are never speech.
    pub min_dbfs: f32,
    /// Frames sent after the last speech frame (15 × 20 ms = 300 ms).
    pub hangover_frames: u32,
    /// With noise suppression on: a frame is speech when RNNoise's speech
    /// probability reaches this (and the frame is above `min_dbfs`).
    pub speech_prob: f32,
    /// With noise suppression on: speech must also be within this many dB
    /// of the member's own recent speech level (`Vad::voice_db`). RNNoise
    /// hears other people talking in the room as speech; they are further
    /// from the microphone, so quieter than the member. `f32::INFINITY`
    /// turns this gate off.
    pub near_db: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            margin_db: 9.0,
            min_dbfs: -50.0,
            hangover_frames: 15,
            speech_prob: SPEECH_PROB,
            near_db: NEAR_DB,
        }
    }
}

/// Default [`VadConfig::speech_prob`]: chosen on the committed noisy
/// fixtures (docs/benchmarks.md, "Noise suppression and voice activity").
pub const SPEECH_PROB: f32 = 0.5;

/// Default [`VadConfig::near_db`]: chosen on the committed babble fixture
/// (docs/benchmarks.md, "Noise suppression and voice activity").
pub const NEAR_DB: f32 = 10.0;

/// How fast the member's speech level (`Vad::voice_db`) falls when they
/// speak more softly or not at all: 0.02 dB per 20 ms frame, 1 dB/s, so a
/// long stretch of other people's talk does not soon lower the gate to
/// their level.
const VOICE_RELEASE_DB: f32 = 0.02;

/// Speech frames remembered for `Vad::voice_db` (320 ms of speech).
const RECENT: usize = 16;

/// Level of a frame in dBFS (−100 for digital silence).
pub fn frame_dbfs(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return -100.0;
    }
    let sum: f64 = frame.iter().map(|&x| f64::from(x).powi(2)).sum();
    let rms = (sum / frame.len() as f64).sqrt() / 32768.0;
    if rms <= 1e-5 {
        -100.0
    } else {
        (20.0 * rms.log10()) as f32
    }
}

/// Energy-based voice activity detector with hangover.
#[derive(Debug, Clone)]
pub struct Vad {
    /// Settings.
    cfg: VadConfig,
    /// Tracked noise floor in dBFS.
    floor_db: f32,
    /// Frames of hangover left.
    hang: u32,
    /// The member's own speech level in dBFS (−100 until they spoke): rises
    /// at once to the second loudest of the last `RECENT` speech frames (so
    /// a lone cough does not count), falls by `VOICE_RELEASE_DB` per frame.
    /// Speech more than `near_db` below it is someone else.
    voice_db: f32,
    /// Levels of the last speech frames (a ring), from which `voice_db`
    /// rises.
    recent: [f32; RECENT],
    /// Next slot of `recent`.
    recent_at: usize,
}

impl Vad {
    /// A detector that assumes a quiet room until it learns otherwise.
    pub fn new(cfg: VadConfig) -> Self {
        Self {
            cfg,
            floor_db: -70.0,
            hang: 0,
            voice_db: -100.0,
            recent: [-100.0; RECENT],
            recent_at: 0,
        }
    }

    /// The current noise floor estimate in dBFS.
    pub fn noise_floor_db(&self) -> f32 {
        self.floor_db
    }

    /// Whether this frame should be sent, from its energy alone.
    pub fn process(&mut self, frame: &[i16]) -> bool {
        self.process_with(frame, None)
    }

    /// Whether this frame should be sent. With `speech_prob` (noise
    /// suppression on: RNNoise's probability for this frame) speech is
    /// that probability reaching [`VadConfig::speech_prob`] on a frame above
    /// `min_dbfs`; without it, the energy detector decides. The noise
    /// floor is tracked either way, so switching suppression off falls back
    /// to a detector that has kept learning.
    pub fn process_with(&mut self, frame: &[i16], speech_prob: Option<f32>) -> bool {
        let db = frame_dbfs(frame);
        let loud = db >= self.cfg.min_dbfs;
        let energetic = loud && db >= self.floor_db + self.cfg.margin_db;
        let speech = match speech_prob {
            Some(p) => {
                let voiced = energetic && p >= self.cfg.speech_prob;
                let near = db >= self.voice_db - self.cfg.near_db;
                self.voice_db = (self.voice_db - VOICE_RELEASE_DB).max(-100.0);
                if voiced {
                    self.recent[self.recent_at] = db;
                    self.recent_at = (self.recent_at + 1) % self.recent.len();
                    // The second loudest of the recent speech frames: a
                    // lone cough or shout does not raise the level.
                    let (mut first, mut second) = (-100.0f32, -100.0f32);
                    for &x in &self.recent {
                        if x > first {
                            (first, second) = (x, first);
                        } else if x > second {
                            second = x;
                        }
                    }
                    self.voice_db = self.voice_db.max(second);
                }
                voiced && near
            }
            None => energetic,
        };
        // Floor: falls fast to quieter frames; rises slowly towards louder
        // ones (0.15 dB per frame, 7.5 dB/s), so a steady noise is learnt in
        // a few seconds while a sentence barely moves it.
        if db < self.floor_db {
            self.floor_db += (db - self.floor_db) * 0.3;
        } else {
            self.floor_db += (db - self.floor_db).min(0.15);
        }
        self.floor_db = self.floor_db.max(-90.0);
        if speech {
            self.hang = self.cfg.hangover_frames;
            true
        } else if self.hang > 0 {
            self.hang -= 1;
            true
        } else {
            false
        }
    }
}

/// The transmit gate: mode, mute, push-to-talk key, VAD.
#[derive(Debug, Clone)]
pub struct Gate {
    /// The detector (used in [`VoiceMode::Vad`]).
    vad: Vad,
}

impl Gate {
    /// A gate with this VAD configuration.
    pub fn new(cfg: VadConfig) -> Self {
        Self { vad: Vad::new(cfg) }
    }

    /// Whether to send this frame. The VAD sees every frame (also while
    /// muted) so its noise floor stays current.
    pub fn decide(&mut self, frame: &[i16], mode: VoiceMode, muted: bool, ptt: bool) -> bool {
        self.decide_with(frame, None, mode, muted, ptt)
    }

    /// [`decide`](Self::decide) with the noise suppressor's speech
    /// probability for the frame (`None` when suppression is off).
    pub fn decide_with(
        &mut self,
        frame: &[i16],
        speech_prob: Option<f32>,
        mode: VoiceMode,
        muted: bool,
        ptt: bool,
    ) -> bool {
        let voiced = self.vad.process_with(frame, speech_prob);
        !muted
            && match mode {
                VoiceMode::Vad => voiced,
                VoiceMode::PushToTalk => ptt,
                VoiceMode::AlwaysOn => true,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(amp: f32, seed: u32) -> Vec<i16> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..960)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                ((s as f32 / u32::MAX as f32 - 0.5) * 2.0 * amp) as i16
            })
            .collect()
    }

    fn tone(amp: f32) -> Vec<i16> {
        (0..960)
            .map(|i| (amp * (i as f32 * 0.05).sin()) as i16)
            .collect()
    }

    #[test]
    fn silence_and_steady_noise_are_not_sent_speech_is_with_hangover() {
        let mut vad = Vad::new(VadConfig::default());
        assert!(!vad.process(&[0; 960]));
        // A steady hum at -40 dBFS: may trigger briefly, then is learnt.
        let hum: Vec<Vec<i16>> = (0..400).map(|i| noise(600.0, i + 1)).collect();
        let sent: Vec<bool> = hum.iter().map(|f| vad.process(f)).collect();
        let total = sent.iter().filter(|&&s| s).count();
        assert!(total < 250, "hum sent {total} of 400 frames");
        assert!(sent[300..].iter().all(|&s| !s), "hum still sent after 6 s");
        assert!(!vad.process(&noise(600.0, 999)));
        // Speech-level tone: sent at once.
        assert!(vad.process(&tone(8000.0)));
        // Then hangover frames of quiet are still sent, then it stops.
        let quiet = noise(600.0, 4242);
        for _ in 0..VadConfig::default().hangover_frames {
            assert!(vad.process(&quiet));
        }
        assert!(!vad.process(&quiet));
    }

    #[test]
    fn push_to_talk_and_mute_override_the_detector() {
        let mut g = Gate::new(VadConfig::default());
        let loud = tone(8000.0);
        assert!(!g.decide(&loud, VoiceMode::PushToTalk, false, false));
        assert!(g.decide(&[0; 960], VoiceMode::PushToTalk, false, true));
        assert!(!g.decide(&loud, VoiceMode::Vad, true, true));
        assert!(g.decide(&loud, VoiceMode::Vad, false, false));
        assert!(g.decide(&[0; 960], VoiceMode::AlwaysOn, false, false));
        assert!(frame_dbfs(&[0; 960]) <= -100.0);
        let db = frame_dbfs(&tone(32767.0 / 2.0));
        assert!((-10.0..-8.0).contains(&db), "{db}");
    }

    #[test]
    fn quieter_voices_are_refused_once_the_member_spoke_and_a_lone_loud_frame_changes_nothing() {
        let mut vad = Vad::new(VadConfig::default());
        let hang = VadConfig::default().hangover_frames;
        let quiet_gap = |vad: &mut Vad| {
            for _ in 0..=hang {
                vad.process_with(&[0; 960], Some(0.0));
            }
        };
        // Before the member spoke, any speech goes out.
        assert!(vad.process_with(&tone(2000.0), Some(0.9)));
        quiet_gap(&mut vad);
        // The member talks at about -13 dBFS.
        for _ in 0..30 {
            assert!(vad.process_with(&tone(8000.0), Some(0.9)));
        }
        quiet_gap(&mut vad);
        // Someone 12 dB quieter (a colleague further away): refused.
        assert!(!vad.process_with(&tone(2000.0), Some(0.9)));
        // One frame 12 dB louder than the member (a cough) ...
        vad.process_with(&tone(32000.0), Some(0.9));
        quiet_gap(&mut vad);
        // ... does not make the member's usual voice "someone else".
        assert!(vad.process_with(&tone(8000.0), Some(0.9)));
        // With suppression off the gate does not apply (energy only).
        quiet_gap(&mut vad);
        assert!(vad.process_with(&tone(2000.0), None));
    }
}
