//! Noise suppression and voice activity on the committed noisy fixtures
//! (scripts/make-voice-fixtures.sh): with suppression on, the speech
//! probability of RNNoise keeps the targets of issue 16 — under 5 % of the
//! noise-only frames sent, over 95 % of the speech frames kept — for fan
//! and keyboard noise, where the energy detector alone sends most of the
//! noise, and, with the near-speech gate, for babble once the member has
//! spoken. The figures are deterministic (no timing involved); the
//! `vadbench` example prints them with the CPU cost.

#[path = "../examples/vadbench/measure.rs"]
mod measure;

use chatvoice::vad::VadConfig;
use measure::{Truth, energy_only, frames, score, suppressed, truth};

#[test]
fn the_ground_truth_has_speech_and_noise_only_stretches() {
    let t = truth(&frames("clean24k.wav").expect("clean fixture"));
    let n = |k| t.iter().filter(|&&x| x == k).count();
    assert_eq!(t.len(), 400, "8 s of 20 ms frames");
    assert!(n(Truth::Speech) > 150, "{}", n(Truth::Speech));
    assert!(n(Truth::Noise) > 100, "{}", n(Truth::Noise));
}

#[test]
fn suppression_sends_under_5_percent_of_fan_and_keyboard_noise_and_keeps_95_percent_of_speech() {
    let t = truth(&frames("clean24k.wav").expect("clean fixture"));
    let cfg = VadConfig::default();
    // Scored on the first hearing (the start of a call) and after one
    // hearing (a call going on in that room).
    for (name, warm_up) in [
        ("fan", false),
        ("fan", true),
        ("keys", false),
        ("keys", true),
    ] {
        let noisy = frames(&format!("noisy-{name}24k.wav")).expect("noisy fixture");
        let new = score(&t, &suppressed(&noisy, cfg, warm_up).0);
        let old = score(&t, &energy_only(&noisy, cfg, warm_up));
        println!(
            "{name} (warmed up: {warm_up}): energy VAD {:.1} % noise sent, {:.1} % speech kept; suppression {:.1} % / {:.1} %",
            old.false_pct(),
            old.kept_pct(),
            new.false_pct(),
            new.kept_pct()
        );
        assert!(new.false_pct() < 5.0, "{name}: {new:?}");
        assert!(new.kept_pct() > 95.0, "{name}: {new:?}");
        // And it is a real improvement over the energy detector alone.
        assert!(
            new.false_pct() + (100.0 - new.kept_pct()) < old.false_pct() + (100.0 - old.kept_pct()),
            "{name}: {new:?} vs {old:?}"
        );
    }
}

#[test]
fn babble_further_from_the_microphone_is_not_sent_once_the_member_has_spoken_and_their_speech_is_kept()
 {
    // RNNoise hears other voices as speech; the near-speech gate
    // (`VadConfig::near_db`) refuses those well below the member's own
    // level. It knows that level once the member has spoken (warmed up);
    // on the first hearing the babble before the member's first words is
    // sent, but the member's speech is kept either way.
    let t = truth(&frames("clean24k.wav").expect("clean fixture"));
    let noisy = frames("noisy-babble24k.wav").expect("babble fixture");
    let cfg = VadConfig::default();
    for warm_up in [false, true] {
        let s = score(&t, &suppressed(&noisy, cfg, warm_up).0);
        println!("babble (warmed up: {warm_up}): {s:?}");
        assert!(s.kept_pct() > 95.0, "{s:?}");
        if warm_up {
            assert!(s.false_pct() < 5.0, "{s:?}");
        }
    }
    // Without the gate the babble goes out: the gate is what refuses it.
    let no_gate = VadConfig {
        near_db: f32::INFINITY,
        ..cfg
    };
    let s = score(&t, &suppressed(&noisy, no_gate, true).0);
    assert!(s.false_pct() > 50.0, "{s:?}");
}
