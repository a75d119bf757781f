//! Sample-rate conversion and down-mixing to the engine's 48 kHz mono.
//!
//! Devices and WAV files may run at 44.1 kHz, 16 kHz (Bluetooth headsets),
//! stereo… The engine needs 48 kHz mono, so backends pass their samples
//! through a [`Resampler`] at their edge. It wraps rubato's synchronous FFT
//! resampler ([`rubato::FftFixedInOut`]): fixed 10 ms input chunks, a
//! windowed-sinc anti-alias / anti-imaging filter, so a 16 kHz source
//! upsampled to 48 kHz has no mirror images above 8 kHz: about −100 dB,
//! where the linear interpolator it replaced left them only 13 dB (a 1–7 kHz
//! sweep) to 31 dB (speech) below the signal (docs/benchmarks.md,
//! "Resampling"). The price is 15 ms of delay at a converted edge (none at
//! 48 kHz, the usual device rate).
//!
//! Streaming: input of any chunk size is gathered into the fixed chunk; the
//! filter's delay is dropped from the start of the output and [`Resampler::flush`]
//! pushes the tail out, so chunked conversion gives exactly the output of
//! a whole-signal conversion, aligned with the input. All buffers are
//! allocated in [`Resampler::new`]: [`Resampler::process`] allocates
//! nothing (beyond growing the caller's `out` if it is too small).

use rubato::{FftFixedInOut, Resampler as _};

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
/// any size, then [`flush`](Self::flush) at the end of a signal; the output
/// is the same as converting the whole signal at once.
pub struct Resampler {
    /// Input rate.
    from: u32,
    /// Output rate.
    to: u32,
    /// rubato's fixed-chunk converter; `None` when the rates are equal (or
    /// one is 0, which no device reports: then samples are copied).
    inner: Option<FftFixedInOut<f32>>,
    /// Input gathered until a whole fixed chunk is there (capacity: one
    /// chunk, allocated once).
    pending: Vec<f32>,
    /// One chunk of output, allocated once and reused by every call.
    chunk_out: Vec<f32>,
    /// Output samples still to drop at the start: the filter's delay, so the
    /// output lines up with the input sample for sample.
    skip: usize,
    /// Input samples fed so far (not counting the zeros `flush` adds):
    /// tells `flush` how long the whole output must be.
    fed: u64,
    /// Output samples emitted so far.
    emitted: u64,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("chunk_in", &self.pending.capacity())
            .field("delay", &self.latency())
            .finish_non_exhaustive()
    }
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz, converting 10 ms chunks of
    /// input.
    pub fn new(from: u32, to: u32) -> Self {
        let chunk = (from as usize / 100).max(1);
        let inner = if from == to || from == 0 || to == 0 {
            None
        } else {
            FftFixedInOut::<f32>::new(from as usize, to as usize, chunk, 1).ok()
        };
        let (chunk_in, chunk_out, skip) = match &inner {
            Some(r) => (
                r.input_frames_max(),
                r.output_frames_max(),
                r.output_delay(),
            ),
            None => (0, 0, 0),
        };
        Self {
            from,
            to,
            inner,
            pending: Vec::with_capacity(chunk_in),
            chunk_out: vec![0.0; chunk_out],
            skip,
            fed: 0,
            emitted: 0,
        }
    }

    /// Whether the rates are equal (then `process` just copies).
    pub fn is_identity(&self) -> bool {
        self.inner.is_none()
    }

    /// Samples of delay this conversion adds, counted at the output rate:
    /// the filter's delay plus the wait for a whole input chunk. (The
    /// filter's part is dropped from the output's start, so signals stay
    /// aligned, but in real time it is still waited for.)
    pub fn latency(&self) -> usize {
        match &self.inner {
            Some(r) => r.output_delay() + r.output_frames_max(),
            None => 0,
        }
    }

    /// Converts one chunk of any length, appending the output to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if self.inner.is_none() {
            out.extend_from_slice(input);
            return;
        }
        self.fed += input.len() as u64;
        let mut rest = input;
        while !rest.is_empty() {
            let room = self.pending.capacity() - self.pending.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.pending.extend_from_slice(now);
            rest = later;
            if self.pending.len() == self.pending.capacity() {
                self.convert_chunk(out, usize::MAX);
            }
        }
    }

    /// Ends the signal: converts what is still buffered (padded with
    /// silence) so that the whole output has `input × to / from` samples.
    /// Call once, after the last `process`.
    pub fn flush(&mut self, out: &mut Vec<f32>) {
        if self.inner.is_none() {
            return;
        }
        let total = (self.fed * u64::from(self.to)).div_ceil(u64::from(self.from));
        while self.emitted < total {
            self.pending.resize(self.pending.capacity(), 0.0);
            let want = usize::try_from(total - self.emitted).unwrap_or(usize::MAX);
            self.convert_chunk(out, want);
        }
    }

    /// Converts the full `pending` chunk and appends at most `limit`
    /// samples of its output to `out` (after the start-up delay is dropped).
    fn convert_chunk(&mut self, out: &mut Vec<f32>, limit: usize) {
        let Some(r) = self.inner.as_mut() else {
            return;
        };
        // The buffers are sized from the converter itself, so this cannot
        // fail; a failure would only lose this chunk.
        let res = r.process_into_buffer(&[&self.pending[..]], &mut [&mut self.chunk_out[..]], None);
        self.pending.clear();
        let Ok((_, n)) = res else {
            return;
        };
        let skip = self.skip.min(n);
        self.skip -= skip;
        let take = (n - skip).min(limit);
        out.extend_from_slice(&self.chunk_out[skip..skip + take]);
        self.emitted += take as u64;
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

/// Share of a signal's energy above `hz` (in dB relative to its whole
/// energy), from a plain DFT over Hann-windowed blocks: how much imaging a
/// rate conversion left. Used by the tests and the resampling measurement.
pub fn energy_above_db(signal: &[f32], rate: u32, hz: f32) -> f32 {
    const N: usize = 1024;
    let window: Vec<f32> = (0..N)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / N as f32).cos())
        .collect();
    // cos/sin of 2πm/N, looked up as (k·i mod N): no trigonometry in the loop.
    let (cos, sin): (Vec<f64>, Vec<f64>) = (0..N)
        .map(|m| {
            let a = 2.0 * std::f64::consts::PI * m as f64 / N as f64;
            (a.cos(), a.sin())
        })
        .unzip();
    let cut = (hz / rate as f32 * N as f32).ceil() as usize;
    let (mut above, mut all) = (0f64, 0f64);
    let mut block = [0f64; N];
    for chunk in signal.chunks_exact(N) {
        for ((b, &x), &h) in block.iter_mut().zip(chunk).zip(&window) {
            *b = f64::from(x * h);
        }
        for k in 1..N / 2 {
            let (mut re, mut im) = (0f64, 0f64);
            for (i, &v) in block.iter().enumerate() {
                let m = (k * i) % N;
                re += v * cos[m];
                im -= v * sin[m];
            }
            let p = re * re + im * im;
            all += p;
            if k >= cut {
                above += p;
            }
        }
    }
    if all <= 0.0 {
        return -200.0;
    }
    (10.0 * (above.max(1e-30) / all).log10()) as f32
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

    fn convert(from: u32, to: u32, input: &[f32]) -> Vec<f32> {
        let mut out = Vec::new();
        let mut r = Resampler::new(from, to);
        r.process(input, &mut out);
        r.flush(&mut out);
        out
    }

    #[test]
    fn upsampling_44100_to_48000_keeps_length_ratio_and_pitch() {
        let out = convert(44_100, 48_000, &sine(44_100, 440.0, 1.0));
        assert_eq!(out.len(), 48_000);
        // 440 Hz for one second: 440 upward zero crossings either way.
        assert!((zero_crossings(&out) as i64 - 440).abs() <= 1);
        let peak = out[1000..47_000].iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!((0.45..=0.51).contains(&peak), "{peak}");
    }

    #[test]
    fn downsampling_96000_to_48000_keeps_pitch() {
        let out = convert(96_000, 48_000, &sine(96_000, 1000.0, 0.5));
        assert_eq!(out.len(), 24_000);
        assert!((zero_crossings(&out) as i64 - 500).abs() <= 1);
    }

    #[test]
    fn chunked_input_gives_the_same_output_as_one_block() {
        let input = sine(16_000, 300.0, 0.3);
        let whole = convert(16_000, 48_000, &input);
        let mut r = Resampler::new(16_000, 48_000);
        let mut parts = Vec::new();
        for chunk in input.chunks(97) {
            r.process(chunk, &mut parts);
        }
        r.flush(&mut parts);
        assert_eq!(whole.len(), 14_400);
        assert_eq!(whole, parts);
    }

    #[test]
    fn output_is_aligned_with_the_input_no_delay_left() {
        // A 300 Hz sine at 16 kHz and at 48 kHz: after conversion the
        // two must match sample for sample (the delay was dropped).
        let out = convert(16_000, 48_000, &sine(16_000, 300.0, 0.5));
        let reference = sine(48_000, 300.0, 0.5);
        let worst = out[2000..22_000]
            .iter()
            .zip(&reference[2000..22_000])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 0.01, "{worst}");
    }

    #[test]
    fn upsampling_16000_leaves_no_images_above_8_khz() {
        // A 1–7 kHz sweep at 16 kHz: its images would sit at 9–15 kHz.
        let n = 8_000;
        let sweep: Vec<f32> = (0..n)
            .map(|i| {
                // Instantaneous frequency 1000 + 12000·t Hz.
                let t = i as f32 / 16_000.0;
                0.5 * (2.0 * std::f32::consts::PI * (1000.0 * t + 6000.0 * t * t)).sin()
            })
            .collect();
        let out = convert(16_000, 48_000, &sweep);
        let db = energy_above_db(&out, 48_000, 8_000.0);
        assert!(db < -60.0, "imaging {db} dB");
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
