//! Imaging and latency of the rate conversion at the audio edges: a 16 kHz
//! source (Bluetooth headset) upsampled to the engine's 48 kHz, by the
//! linear interpolator used before (copied below for the comparison) and by
//! [`chatvoice::resample::Resampler`] (rubato). Prints the energy above
//! 8 kHz relative to the whole signal (a 16 kHz source has none: all of it
//! is images), for a 1–7 kHz sine sweep and for speech, and the delay the
//! conversion adds.
//!
//! ```text
//! cargo run --release -p chatvoice --example resample_imaging
//! ```

use std::error::Error;
use std::path::Path;

use chatvoice::audio::wav::read_wav;
use chatvoice::resample::{Resampler, energy_above_db, to_f32};

/// The linear interpolator the engine used before rubato (upsampling path
/// only: no low-pass is applied when upsampling), whole signal at once.
fn linear(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    let (from, to) = (u64::from(from), u64::from(to));
    let n = input.len() as u64;
    let mut out = Vec::with_capacity((n * to / from) as usize + 1);
    // Index 0 is the previous sample (0.0); input[i] is index i + 1.
    let at = |i: u64| if i == 0 { 0.0 } else { input[(i - 1) as usize] };
    let mut pos = to;
    while pos <= n * to {
        let i = pos / to;
        let frac = (pos % to) as f32 / to as f32;
        let a = at(i);
        let b = if i < n { at(i + 1) } else { a };
        out.push(a + (b - a) * frac);
        pos += from;
    }
    out
}

fn rubato(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    let mut out = Vec::new();
    let mut r = Resampler::new(from, to);
    r.process(input, &mut out);
    r.flush(&mut out);
    out
}

fn main() -> Result<(), Box<dyn Error>> {
    // 2 s sweep, 1 → 7 kHz, at 16 kHz.
    let sweep: Vec<f32> = (0..32_000)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            0.5 * (2.0 * std::f32::consts::PI * (1000.0 * t + 1500.0 * t * t)).sin()
        })
        .collect();
    // The speech fixture taken down to 16 kHz (band-limited by rubato, so
    // the source itself has nothing above 8 kHz).
    let speech48: Vec<f32> =
        read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/speech48k.wav"))?
            .into_iter()
            .map(to_f32)
            .collect();
    let speech16 = rubato(&speech48, 48_000, 16_000);
    println!("16 kHz -> 48 kHz: energy above 8 kHz relative to the signal");
    println!("  {:<22} {:>10} {:>10}", "source", "linear", "rubato");
    for (name, src) in [
        ("sine sweep 1-7 kHz", &sweep),
        ("speech (espeak-ng)", &speech16),
    ] {
        let old = energy_above_db(&linear(src, 16_000, 48_000), 48_000, 8_000.0);
        let new = energy_above_db(&rubato(src, 16_000, 48_000), 48_000, 8_000.0);
        println!("  {name:<22} {old:>7.1} dB {new:>7.1} dB");
    }
    println!("added latency (output samples at the output rate; linear: < 1 input sample)");
    for (from, to) in [(16_000, 48_000), (44_100, 48_000), (48_000, 44_100)] {
        let r = Resampler::new(from, to);
        println!(
            "  {from:>6} -> {to:>6} Hz: {:>4} samples = {:.1} ms (linear: {} samples)",
            r.latency(),
            r.latency() as f64 * 1000.0 / f64::from(to),
            to.div_ceil(from)
        );
    }
    Ok(())
}
