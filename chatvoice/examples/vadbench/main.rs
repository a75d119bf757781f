//! Noise suppression and voice activity on the committed noisy fixtures
//! (speech from espeak-ng mixed with fan, keyboard and babble noise by
//! scripts/make-voice-fixtures.sh): the share of noise-only frames wrongly
//! sent and of speech frames kept, for the old energy VAD alone and with
//! suppression on (RNNoise's speech probability deciding), and the CPU
//! time of the suppressor per 20 ms frame.
//!
//! ```text
//! cargo run --release -p chatvoice --example vadbench
//! ```

mod measure;

use std::error::Error;

use chatvoice::vad::VadConfig;
use measure::{NOISES, Truth, energy_only, frames, probabilities, score, suppressed, truth};

fn main() -> Result<(), Box<dyn Error>> {
    let clean = frames("clean24k.wav")?;
    let t = truth(&clean);
    let count = |k| t.iter().filter(|&&x| x == k).count();
    println!(
        "{} frames of 20 ms: {} speech, {} noise-only, {} tail (hangover, not counted)",
        t.len(),
        count(Truth::Speech),
        count(Truth::Noise),
        count(Truth::Tail)
    );
    println!(
        "{:<8} {:>22} {:>22}",
        "noise", "energy VAD alone", "suppression + RNNoise VAD"
    );
    println!(
        "{:<8} {:>10} {:>11} {:>10} {:>11}",
        "", "noise sent", "speech kept", "noise sent", "speech kept"
    );
    let cfg = VadConfig::default();
    // VADBENCH_COLD=1: score the detectors' first hearing of each fixture.
    let warm_up = std::env::var_os("VADBENCH_COLD").is_none();
    let mut times = Vec::new();
    for name in NOISES {
        let noisy = frames(&format!("noisy-{name}24k.wav"))?;
        let old = score(&t, &energy_only(&noisy, cfg, warm_up));
        let (sent, us) = suppressed(&noisy, cfg, warm_up);
        times.extend(us);
        let new = score(&t, &sent);
        println!(
            "{name:<8} {:>9.1} % {:>9.1} % {:>9.1} % {:>9.1} %",
            old.false_pct(),
            old.kept_pct(),
            new.false_pct(),
            new.kept_pct()
        );
    }
    if std::env::args().any(|a| a == "--thresholds") {
        // The probability alone (the energy gate's margin taken away, only
        // its absolute -50 dBFS floor left) against both in series.
        let alone = VadConfig {
            margin_db: -200.0,
            ..cfg
        };
        for name in NOISES {
            let noisy = frames(&format!("noisy-{name}24k.wav"))?;
            let a = score(&t, &suppressed(&noisy, alone, warm_up).0);
            let b = score(&t, &suppressed(&noisy, cfg, warm_up).0);
            println!(
                "  {name:<7} probability alone: noise sent {:>5.1} %, speech kept {:>5.1} %; with the energy gate: {:>5.1} % / {:>5.1} %",
                a.false_pct(),
                a.kept_pct(),
                b.false_pct(),
                b.kept_pct()
            );
        }
        for name in NOISES {
            let noisy = frames(&format!("noisy-{name}24k.wav"))?;
            let p = probabilities(&noisy);
            for th in [0.2f32, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] {
                let cfg = VadConfig {
                    speech_prob: th,
                    ..VadConfig::default()
                };
                let (sent, _) = suppressed(&noisy, cfg, warm_up);
                let s = score(&t, &sent);
                let raw: Vec<bool> = p.iter().map(|&x| x >= th).collect();
                let r = score(&t, &raw);
                println!(
                    "  {name:<7} p >= {th:.1}: noise sent {:>5.1} %, speech kept {:>5.1} % (no hangover: {:>5.1} % / {:>5.1} %)",
                    s.false_pct(),
                    s.kept_pct(),
                    r.false_pct(),
                    r.kept_pct()
                );
            }
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "suppressor CPU per 20 ms frame ({} frames): median {:.0} µs, p99 {:.0} µs ({:.2} % of one core at the median)",
        times.len(),
        at(0.5),
        at(0.99),
        at(0.5) / 200.0
    );
    Ok(())
}
