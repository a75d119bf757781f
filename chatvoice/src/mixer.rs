//! Mixing several speakers into one frame without clipping.
//!
//! Speakers are summed in floating point; the sum then goes through a soft
//! limiter: below the knee (−3 dBFS, 0.708 of full scale) samples pass
//! unchanged, above it they are compressed smoothly (tanh) towards, but never
//! reaching, full scale. So one speaker at normal level is untouched, and
//! three loud speakers at once saturate gently instead of wrapping or
//! hard-clipping at ±32767.

use crate::audio::FRAME;

/// Where the limiter starts to act, as a fraction of full scale.
pub const KNEE: f32 = 0.708;
/// The output never exceeds this magnitude (one step below full scale).
pub const CEILING: i16 = 32_766;

/// Soft-limits one sample given as a fraction of full scale.
pub fn soft_limit(x: f32) -> f32 {
    let a = x.abs();
    if a <= KNEE {
        return x;
    }
    let room = 1.0 - KNEE;
    let y = KNEE + room * ((a - KNEE) / room).tanh();
    y.copysign(x)
}

/// Mixes frames of [`FRAME`] samples (one per speaker) into one frame.
/// Missing samples of a short frame count as silence.
pub fn mix(frames: &[&[i16]]) -> Vec<i16> {
    let mut acc = vec![0f32; FRAME];
    for f in frames {
        for (a, &s) in acc.iter_mut().zip(f.iter()) {
            *a += f32::from(s);
        }
    }
    acc.into_iter()
        .map(|s| {
            let y = soft_limit(s / 32768.0) * 32768.0;
            (y.round() as i32).clamp(-i32::from(CEILING), i32::from(CEILING)) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(amp: f32, hz: f32, phase: f32) -> Vec<i16> {
        (0..FRAME)
            .map(|i| {
                (amp * (2.0 * std::f32::consts::PI * hz * i as f32 / 48_000.0 + phase).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn one_speaker_at_normal_level_passes_unchanged() {
        let a = sine(16_000.0, 440.0, 0.0);
        assert_eq!(mix(&[&a]), a);
    }

    #[test]
    fn three_full_scale_speakers_in_phase_never_reach_full_scale() {
        let a = sine(32_767.0, 300.0, 0.0);
        let out = mix(&[&a, &a, &a]);
        let peak = out.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
        assert!(peak <= CEILING as u16, "{peak}");
        assert!(peak > 30_000, "still loud: {peak}");
        assert!(!out.iter().any(|&x| x == i16::MAX || x == i16::MIN));
        // Monotonic: louder input, louder (or equal) output.
        let mut xs: Vec<f32> = (0..1000).map(|i| i as f32 / 250.0).collect();
        xs.sort_by(f32::total_cmp);
        for w in xs.windows(2) {
            assert!(soft_limit(w[1]) >= soft_limit(w[0]));
        }
    }

    #[test]
    fn silence_and_short_frames_mix_to_silence_padding() {
        let out = mix(&[&[100i16; 10]]);
        assert_eq!(out.len(), FRAME);
        assert_eq!(out[..10], [100; 10]);
        assert!(out[10..].iter().all(|&x| x == 0));
        assert_eq!(mix(&[]), vec![0; FRAME]);
    }
}
