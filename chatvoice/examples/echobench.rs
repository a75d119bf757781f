//! Echo cancellation measured on a synthetic room, through the engine's own
//! [`EchoCanceller`] (WebRTC AEC3, the `sonora` port), frame by frame as the
//! call runs it: the far end (the committed speech fixture, looped) is
//! played into a simulated room (delayed, a decaying impulse response,
//! low-passed, attenuated) and added to the microphone with a little noise;
//! from 6 s on, near-end speech (the fixture reversed: speech-like, and
//! uncorrelated with the far end) is added too (double talk).
//!
//! Prints, for each echo delay: the echo reduction (ERLE) after convergence
//! on far-end-only speech, the convergence time, the correlation of the
//! output with the near-end speech in double talk (and of the raw microphone,
//! for comparison), the canceller's own estimate of the delay, and the CPU
//! per 20 ms frame (render + capture).
//!
//! `cargo run --release -p chatvoice --example echobench`

use std::time::Instant;

use chatvoice::audio::FRAME;
use chatvoice::echo::EchoCanceller;

const RATE: usize = 48_000;
/// Total length of the scenario.
const SECS: usize = 12;
/// Double talk starts here; before it the far end talks alone.
const DOUBLE_TALK_AT: usize = 6 * RATE;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/speech48k.wav");
    let speech: Vec<f32> = hound::WavReader::open(path)?
        .samples::<i16>()
        .map(|s| s.map(f32::from))
        .collect::<Result<_, _>>()?;
    let n = SECS * RATE;
    // Far end: the fixture, then 0.4 s of silence, again and again.
    let mut far = vec![0.0f32; n];
    let period = speech.len() + RATE * 2 / 5;
    for (i, f) in far.iter_mut().enumerate() {
        *f = speech.get(i % period).copied().unwrap_or(0.0) * 0.7;
    }
    // Near end: the fixture reversed, from the double-talk mark on, with
    // a 0.3 s gap between repetitions.
    let mut near = vec![0.0f32; n];
    let nperiod = speech.len() + RATE * 3 / 10;
    for (i, v) in near.iter_mut().enumerate().skip(DOUBLE_TALK_AT) {
        let k = (i - DOUBLE_TALK_AT) % nperiod;
        *v = if k < speech.len() {
            speech[speech.len() - 1 - k] * 0.5
        } else {
            0.0
        };
    }

    println!(
        "delay  ERLE far-only  converged  corr(out,near) DT (lag)  corr(mic,near) DT  \
         corr(out,echo) DT  near level DT  AEC delay  CPU/frame median  p99"
    );
    for delay_ms in [20usize, 60, 120, 200] {
        let echo = room(&far, delay_ms);
        let mut noise = Lcg(7);
        let mic: Vec<i16> = (0..n)
            .map(|i| {
                let v = echo[i] + near[i] + noise.next() * 30.0;
                v.clamp(-32768.0, 32767.0) as i16
            })
            .collect();
        let far16: Vec<i16> = far.iter().map(|&v| v as i16).collect();

        let mut aec = EchoCanceller::new();
        let mut out = vec![0i16; n];
        let mut times = Vec::with_capacity(n / FRAME);
        let mut frame = [0i16; FRAME];
        let frames = n / FRAME;
        for f in 0..frames {
            let r = f * FRAME..(f + 1) * FRAME;
            frame.copy_from_slice(&mic[r.clone()]);
            let t = Instant::now();
            aec.render(&far16[r.clone()]);
            aec.process(&mut frame);
            let dt = t.elapsed();
            times.push(dt.as_secs_f64() * 1e3);
            out[r].copy_from_slice(&frame);
        }
        // The canceller's own view: its delay estimate (the room's 20–200 ms
        // plus its internal buffering) once the run is over.
        let (_, found_ms) = aec.estimates();
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let p99 = times[times.len() * 99 / 100];

        // ERLE on far-end-only speech after convergence (3–6 s), where the
        // far end is loud (windows of 100 ms whose echo is within 30 dB of the
        // loudest): energy in / energy out.
        let win = RATE / 10;
        let echo_e: Vec<f64> = (0..n / win)
            .map(|w| energy(&echo[w * win..][..win]))
            .collect();
        let loudest = echo_e.iter().copied().fold(0.0, f64::max);
        let active = |w: usize| echo_e[w] > loudest * 1e-3;
        let erle_over = |from: usize, to: usize| {
            let (mut i, mut o) = (0.0, 0.0);
            for w in (from / win..to / win).filter(|&w| active(w)) {
                i += energy_i16(&mic[w * win..][..win]);
                o += energy_i16(&out[w * win..][..win]);
            }
            10.0 * (i / o.max(1.0)).log10()
        };
        let erle = erle_over(3 * RATE, DOUBLE_TALK_AT);
        // Converged: the first window from which every active window up to
        // the double talk has at least 10 dB of echo reduction.
        let mut converged = None;
        for w in (0..DOUBLE_TALK_AT / win).rev() {
            if !active(w) {
                continue;
            }
            let e = 10.0
                * (energy_i16(&mic[w * win..][..win])
                    / energy_i16(&out[w * win..][..win]).max(1.0))
                .log10();
            if e < 10.0 {
                break;
            }
            converged = Some(w * win);
        }
        let dt = DOUBLE_TALK_AT..n;
        let (corr_out, lag) = best_corr(&out[dt.clone()], &near[dt.clone()]);
        let (corr_mic, _) = best_corr(&mic[dt.clone()], &near[dt.clone()]);
        let (corr_echo, _) = best_corr(&out[dt.clone()], &echo[dt.clone()]);
        // How loud the near end comes out in double talk, relative to
        // what was said (0 dB: untouched; the output still holds some
        // noise and residual echo).
        let near_db = 10.0 * (energy_i16(&out[dt.clone()]) / energy(&near[dt]).max(1.0)).log10();
        println!(
            "{delay_ms:>3} ms {erle:>9.1} dB {:>9} {corr_out:>17.2} ({:.1} ms) {corr_mic:>18.2} {corr_echo:>18.2} {near_db:>10.1} dB {:>6} ms {median:>14.3} ms {p99:>6.3} ms",
            converged.map_or("never".to_string(), |s| format!(
                "{:.1} s",
                s as f64 / RATE as f64
            )),
            lag as f64 * 1000.0 / RATE as f64,
            found_ms.map_or("?".to_string(), |d| d.to_string()),
        );
    }
    Ok(())
}

/// The far end as the microphone hears it: `delay_ms` late, through a
/// small room (direct sound, then a decaying tail from two feedback combs of
/// 7 and 11 ms), a one-pole low-pass (small speakers, ~4 kHz), at −10 dB.
fn room(far: &[f32], delay_ms: usize) -> Vec<f32> {
    let d = delay_ms * RATE / 1000;
    let mut out = vec![0.0f32; far.len()];
    for (i, o) in out.iter_mut().enumerate().skip(d) {
        *o = far[i - d];
    }
    let mut wet = out.clone();
    for (k, g) in [(7 * RATE / 1000, 0.5f32), (11 * RATE / 1000, -0.4)] {
        for i in k..wet.len() {
            wet[i] += g * wet[i - k];
        }
    }
    let a = (-2.0 * std::f32::consts::PI * 4000.0 / RATE as f32).exp();
    let mut y = 0.0;
    for (o, w) in out.iter_mut().zip(&wet) {
        y = (1.0 - a) * (0.6 * *o + 0.4 * w) + a * y;
        *o = y * 0.3;
    }
    out
}

fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}

fn energy_i16(x: &[i16]) -> f64 {
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}

/// Pearson correlation of `a` with `b` delayed by `lag` samples.
fn corr_at(a: &[i16], b: &[f32], lag: usize) -> f64 {
    let n = a.len() - lag;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&x, &y) in a[lag..].iter().zip(&b[..n]) {
        let (x, y) = (f64::from(x), f64::from(y));
        sxy += x * y;
        sxx += x * x;
        syy += y * y;
    }
    sxy / (sxx * syy).sqrt().max(1e-9)
}

/// Pearson correlation of `a` with `b`, at the best lag of 0–20 ms (the
/// canceller delays its output a little: band filters and blocks). The lag
/// is found on the first second, coarsely then finely.
fn best_corr(a: &[i16], b: &[f32]) -> (f64, usize) {
    let probe = RATE.min(a.len() / 2);
    let best = |lags: &mut dyn Iterator<Item = usize>| {
        lags.map(|l| (corr_at(&a[..probe + l], &b[..probe + l], l), l))
            .fold((f64::MIN, 0), |m, c| if c.0 > m.0 { c } else { m })
            .1
    };
    let coarse = best(&mut (0..=960).step_by(8));
    let fine = best(&mut (coarse.saturating_sub(8)..=coarse + 8));
    (corr_at(a, b, fine), fine)
}

/// A small deterministic noise source (uniform in −1..1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}
