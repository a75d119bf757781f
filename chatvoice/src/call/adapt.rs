//! Encoder adaptation to the loss on the call's own path.
//!
//! What this client can observe about its upstream is its probes: on UDP a
//! probe goes out every 250 ms and the server answers each one, so the share
//! of the last 20 probes left unanswered ([`LinkSender::probe_loss`], a 5 s
//! sliding window) is the loss of its own round trip to the server (up and
//! down together; a listener's reports of our stream do not exist in the
//! protocol). Over TCP nothing is lost (delay is its cost), so the estimate
//! is 0 there.
//!
//! Once a second ([`EVERY_FRAMES`] captured frames) the capture thread asks
//! [`Policy::update`] for new settings:
//! - the packet loss the encoder plans for (in-band FEC strength) follows
//!   the measured loss, never below the configured `expected_loss_pct` and
//!   at most [`MAX_LOSS_PCT`];
//! - at [`STEP_DOWN_LOSS`] or more loss the bitrate steps down by a quarter
//!   (loss is often congestion: sending less helps, and FEC needs room in a
//!   smaller budget), never below [`MIN_BITRATE`];
//! - after [`RECOVER_AFTER`] clean seconds in a row (under [`CLEAN_LOSS`])
//!   it steps up by a tenth of the configured bitrate: slowly, so a path
//!   that only just recovered is not flooded at once;
//! - never above the configured [`EncoderConfig::bitrate`] (the ceiling,
//!   which may itself be capped by what the server announces).
//!
//! `Adapter` is the capture thread's side: it applies the policy to the
//! encoder and publishes the settings for [`CallStats`](super::CallStats).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use crate::codec::{Encoder, EncoderConfig};
use crate::transport::LinkSender;

/// Frames between two decisions (1 s of 20 ms frames).
pub const EVERY_FRAMES: u32 = 50;
/// Loss (0..1) at or above which the bitrate steps down.
pub const STEP_DOWN_LOSS: f32 = 0.10;
/// Loss (0..1) under which a second counts as clean.
pub const CLEAN_LOSS: f32 = 0.02;
/// Clean decisions in a row before the bitrate steps up.
pub const RECOVER_AFTER: u32 = 5;
/// The lowest bitrate stepped down to (wideband speech with FEC still fits).
pub const MIN_BITRATE: i32 = 12_000;
/// The most packet loss the encoder is told to plan for, in percent.
pub const MAX_LOSS_PCT: i32 = 40;

/// The encoder settings the policy chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Target bitrate, bit/s.
    pub bitrate: i32,
    /// Packet loss the encoder plans for, percent (FEC strength).
    pub loss_pct: i32,
}

/// Loss → encoder settings, with memory (the current settings and how long
/// the path has been clean). Pure: no encoder, no clock, unit-tested.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The configured settings: the bitrate is the ceiling, the loss the
    /// floor of the FEC strength.
    config: EncoderConfig,
    /// The settings in force.
    now: Settings,
    /// Clean decisions in a row.
    clean: u32,
}

impl Policy {
    /// Starts at the configured settings.
    pub fn new(config: EncoderConfig) -> Self {
        Self {
            config,
            now: Settings {
                bitrate: config.bitrate,
                loss_pct: config.expected_loss_pct.clamp(0, 100),
            },
            clean: 0,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> Settings {
        self.now
    }

    /// One decision from the measured loss (0..1; `None`: no estimate yet,
    /// nothing changes). Returns the new settings when they changed.
    pub fn update(&mut self, loss: Option<f32>) -> Option<Settings> {
        let loss = loss?.clamp(0.0, 1.0);
        let ceiling = self.config.bitrate;
        let floor_pct = self.config.expected_loss_pct.clamp(0, 100);
        let mut next = self.now;
        next.loss_pct =
            ((loss * 100.0).round() as i32).clamp(floor_pct, MAX_LOSS_PCT.max(floor_pct));
        if loss >= STEP_DOWN_LOSS {
            self.clean = 0;
            next.bitrate = (next.bitrate * 3 / 4).max(MIN_BITRATE.min(ceiling));
        } else if loss < CLEAN_LOSS {
            self.clean += 1;
            if self.clean >= RECOVER_AFTER {
                self.clean = 0;
                next.bitrate = (next.bitrate + (ceiling / 10).max(1000)).min(ceiling);
            }
        } else {
            self.clean = 0;
        }
        // The ceiling holds even if it was lowered since (never above it).
        next.bitrate = next.bitrate.min(ceiling);
        (next != self.now).then(|| {
            self.now = next;
            next
        })
    }
}

/// The settings in force, for the figures (the capture thread writes, the
/// playback thread reads).
#[derive(Debug, Default)]
pub(super) struct AdaptFigures {
    /// Target bitrate, bit/s.
    pub(super) bitrate: AtomicI32,
    /// FEC planning loss, percent.
    pub(super) loss_pct: AtomicI32,
    /// The last loss estimate in thousandths, `u32::MAX` for none.
    pub(super) loss_permille: AtomicU32,
}

impl AdaptFigures {
    /// Figures starting at the configured settings.
    pub(super) fn new(config: EncoderConfig) -> Arc<Self> {
        Arc::new(Self {
            bitrate: AtomicI32::new(config.bitrate),
            loss_pct: AtomicI32::new(config.expected_loss_pct.clamp(0, 100)),
            loss_permille: AtomicU32::new(u32::MAX),
        })
    }

    /// The last loss estimate (0..1), if any.
    pub(super) fn loss(&self) -> Option<f32> {
        match self.loss_permille.load(Ordering::Relaxed) {
            u32::MAX => None,
            p => Some(p as f32 / 1000.0),
        }
    }
}

/// The capture thread's adapter: every [`EVERY_FRAMES`] frames, reads the
/// loss estimate, asks the policy, sets the encoder. No allocation.
pub(super) struct Adapter {
    /// The policy.
    policy: Policy,
    /// Frames since the last decision.
    frames: u32,
    /// Published settings.
    pub(super) figures: Arc<AdaptFigures>,
}

impl Adapter {
    /// An adapter for an encoder made with `config`.
    pub(super) fn new(config: EncoderConfig, figures: Arc<AdaptFigures>) -> Self {
        Self {
            policy: Policy::new(config),
            frames: 0,
            figures,
        }
    }

    /// Called once per captured frame: whether a decision is due now (so
    /// the capture thread takes the sender's lock only then).
    pub(super) fn due(&mut self) -> bool {
        self.frames += 1;
        if self.frames < EVERY_FRAMES {
            return false;
        }
        self.frames = 0;
        true
    }

    /// One decision: reads the path's loss, asks the policy, sets the
    /// encoder.
    pub(super) fn decide(&mut self, encoder: &mut Encoder, sender: &LinkSender) {
        let loss = sender.probe_loss();
        self.figures.loss_permille.store(
            loss.map_or(u32::MAX, |l| (l * 1000.0) as u32),
            Ordering::Relaxed,
        );
        let Some(s) = self.policy.update(loss) else {
            return;
        };
        if let Err(e) = encoder
            .set_bitrate(s.bitrate)
            .and_then(|()| encoder.set_packet_loss_perc(s.loss_pct))
        {
            tracing::warn!(error = %e, "voice: cannot adapt the encoder");
            return;
        }
        tracing::debug!(?loss, ?s, "voice: encoder adapted");
        self.figures.bitrate.store(s.bitrate, Ordering::Relaxed);
        self.figures.loss_pct.store(s.loss_pct, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    //! The policy alone: steps down under loss, FEC follows the loss,
    //! recovers slowly, never above the configured bitrate nor below the
    //! floor.
    use super::*;

    fn cfg() -> EncoderConfig {
        EncoderConfig {
            bitrate: 32_000,
            expected_loss_pct: 10,
            dtx: false,
        }
    }

    #[test]
    fn no_estimate_changes_nothing_and_a_clean_path_stays_at_the_configured_settings() {
        let mut p = Policy::new(cfg());
        assert_eq!(p.update(None), None);
        for _ in 0..20 {
            assert_eq!(p.update(Some(0.0)), None);
        }
        assert_eq!(
            p.settings(),
            Settings {
                bitrate: 32_000,
                loss_pct: 10
            }
        );
    }

    #[test]
    fn loss_steps_the_bitrate_down_to_the_floor_and_raises_fec_to_the_loss() {
        let mut p = Policy::new(cfg());
        let s = p.update(Some(0.25)).expect("changed");
        assert_eq!(
            s,
            Settings {
                bitrate: 24_000,
                loss_pct: 25
            }
        );
        let s = p.update(Some(0.25)).expect("changed");
        assert_eq!(s.bitrate, 18_000);
        for _ in 0..10 {
            p.update(Some(0.9));
        }
        assert_eq!(
            p.settings(),
            Settings {
                bitrate: MIN_BITRATE,
                loss_pct: MAX_LOSS_PCT
            }
        );
        // Moderate loss holds the bitrate, FEC follows it down (never
        // below the configured 10 %).
        let s = p.update(Some(0.05)).expect("fec changed");
        assert_eq!(
            s,
            Settings {
                bitrate: MIN_BITRATE,
                loss_pct: 10
            }
        );
    }

    #[test]
    fn recovery_is_slow_and_never_passes_the_configured_bitrate() {
        let mut p = Policy::new(cfg());
        for _ in 0..6 {
            p.update(Some(0.5));
        }
        assert_eq!(p.settings().bitrate, MIN_BITRATE);
        let mut steps = 0;
        let mut seconds = 0;
        while p.settings().bitrate < 32_000 {
            seconds += 1;
            if p.update(Some(0.0)).is_some() {
                steps += 1;
            }
            assert!(seconds < 1000, "never recovered");
        }
        // 12 → 32 kbit/s by 3.2 kbit/s steps, one per 5 clean seconds
        // (the first clean second also brings FEC back to 10 %).
        assert_eq!(
            p.settings(),
            Settings {
                bitrate: 32_000,
                loss_pct: 10
            }
        );
        assert!(seconds >= 7 * RECOVER_AFTER, "{seconds} s");
        assert!(steps >= 7, "{steps}");
        for _ in 0..20 {
            assert_eq!(p.update(Some(0.0)), None);
        }
        assert_eq!(p.settings().bitrate, 32_000);
    }

    #[test]
    fn a_low_configured_bitrate_is_never_exceeded_even_at_the_floor() {
        let mut p = Policy::new(EncoderConfig {
            bitrate: 8_000,
            expected_loss_pct: 0,
            dtx: false,
        });
        for loss in [0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5] {
            p.update(Some(loss));
            assert!(p.settings().bitrate <= 8_000, "{:?}", p.settings());
        }
    }
}
