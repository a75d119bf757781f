//! Sample-rate conversion and down-mixing to the engine's 48 kHz mono.
//!
//! Devices and WAV files may run at 44.1 kHz, 16 kHz, stereo… The engine
//! needs 48 kHz mono, so backends pass their samples through a
//! [`Resampler`] at their edge. It is a streaming linear interpolator with a
//! one-pole anti-alias low-pass when it downsamples: cheap, no latency beyond
//! one input sample, and good enough for speech (whose energy sits below
//! 4 kHz, far from any Nyquist limit involved here). It is not meant for music.

/// Averages interleaved channels into mono.
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    interleaved
        .chunks_exact(channels)
        .map(|c| c.iter().sum::<f32>() / channels as f32)
        .collect()
}

/// A streaming mono resampler from `from` Hz to `to` Hz. Feed it chunks of
/// any size; the output is the same as converting the whole signal at once.
#[derive(Debug, Clone)]
pub struct Resampler {
    /// Input rate.
    from: u32,
    /// Output rate.
    to: u32,
    /// Position of the next output sample in units of 1/`to` input
    /// samples, relative to `prev` (index 0): exact integers, carried across
    /// chunks, so chunking changes nothing.
    pos: u64,
    /// The last input sample of the previous chunk, needed to interpolate
    /// across the chunk boundary.
    prev: f32,
    /// Low-pass state (only used when downsampling).
    lp: f32,
    /// Low-pass coefficient; 1.0 means no filtering.
    alpha: f32,
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Self {
        let alpha = if to < from {
            // One-pole low-pass at ~0.45 × the output rate.
            let fc = 0.45 * to as f32;
            let x = (-2.0 * std::f32::consts::PI * fc / from as f32).exp();
            1.0 - x
        } else {
            1.0
        };
        Self {
            from,
            to,
            pos: u64::from(to),
            prev: 0.0,
            lp: 0.0,
            alpha,
        }
    }

    /// Whether the rates are equal (then `process` just copies).
    pub fn is_identity(&self) -> bool {
        self.from == self.to
    }

    /// Converts one chunk, appending the output to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if self.is_identity() {
            out.extend_from_slice(input);
            return;
        }
        let (from, to) = (u64::from(self.from), u64::from(self.to));
        // Index 0 is `prev`; input[i] is index i + 1.
        let n = input.len();
        let mut filtered = Vec::with_capacity(n);
        for &x in input {
            self.lp += self.alpha * (x - self.lp);
            filtered.push(self.lp);
        }
        let at = |i: usize, prev: f32| if i == 0 { prev } else { filtered[i - 1] };
        let end = n as u64 * to;
        while self.pos <= end {
            let i = (self.pos / to) as usize;
            let frac = (self.pos % to) as f32 / to as f32;
            let a = at(i, self.prev);
            let b = if i < n { at(i + 1, self.prev) } else { a };
            out.push(a + (b - a) * frac);
            self.pos += from;
        }
        self.pos -= end;
        if let Some(&last) = filtered.last() {
            self.prev = last;
        }
    }
}

/// Converts f32 in -1..1 to i16, clamping.
pub fn to_i16(x: f32) -> i16 {
    (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Converts i16 to f32 in -1..1.
pub fn to_f32(x: i16) -> f32 {
    f32::from(x) / 32768.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, secs: f32) -> Vec<f32> {
        let n = (rate as f32 * secs) as usize;
        (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    fn zero_crossings(x: &[f32]) -> usize {
        x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count()
    }

    #[test]
    fn upsampling_44100_to_48000_keeps_length_ratio_and_pitch() {
        let input = sine(44_100, 440.0, 1.0);
        let mut out = Vec::new();
        Resampler::new(44_100, 48_000).process(&input, &mut out);
        assert!((out.len() as i64 - 48_000).abs() <= 2, "{}", out.len());
        // 440 Hz for one second: 440 upward zero crossings either way.
        assert!((zero_crossings(&out) as i64 - 440).abs() <= 1);
        let peak = out.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!((0.45..=0.51).contains(&peak), "{peak}");
    }

    #[test]
    fn downsampling_96000_to_48000_keeps_pitch() {
        let input = sine(96_000, 1000.0, 0.5);
        let mut out = Vec::new();
        Resampler::new(96_000, 48_000).process(&input, &mut out);
        assert!((out.len() as i64 - 24_000).abs() <= 2);
        assert!((zero_crossings(&out) as i64 - 500).abs() <= 1);
    }

    #[test]
    fn chunked_input_gives_the_same_output_as_one_block() {
        let input = sine(16_000, 300.0, 0.3);
        let mut whole = Vec::new();
        Resampler::new(16_000, 48_000).process(&input, &mut whole);
        let mut r = Resampler::new(16_000, 48_000);
        let mut parts = Vec::new();
        for chunk in input.chunks(97) {
            r.process(chunk, &mut parts);
        }
        assert_eq!(whole.len(), parts.len());
        for (a, b) in whole.iter().zip(&parts) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn equal_rates_copy_and_downmix_averages() {
        let mut out = Vec::new();
        Resampler::new(48_000, 48_000).process(&[0.1, 0.2], &mut out);
        assert_eq!(out, vec![0.1, 0.2]);
        assert_eq!(downmix(&[1.0, 0.0, 0.5, 0.5], 2), vec![0.5, 0.5]);
        assert_eq!(to_i16(2.0), 32767);
        assert_eq!(to_i16(-2.0), -32768);
    }
}
