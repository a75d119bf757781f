//! Noise suppression in voice messages: a message recorded next to a fan
//! keeps the speech and loses most of the fan, and stays aligned with what
//! was recorded (the suppressor's lag goes into the pre-skip). Keyboard
//! clicks, short transients, are barely attenuated by RNNoise (printed, not
//! asserted): in a call the VAD keeps them from being sent, in a message
//! they stay.

mod common;

#[path = "../examples/vadbench/measure.rs"]
mod measure;

use std::time::Duration;

use chatvoice::audio::wav::WavInput;
use chatvoice::audio::{FRAME, Pacing};
use chatvoice::message::{self, Recorder};
use common::*;
use measure::{Truth, frames, truth};

/// Records a noisy fixture into a message and decodes it.
fn record(noise: &str, noise_suppression: bool) -> Vec<i16> {
    let dir = scratch(&format!("ns-{noise}-{noise_suppression}"));
    let path = dir.join("m.opus");
    let pcm: Vec<i16> = frames(&format!("noisy-{noise}24k.wav"))
        .expect("fixture")
        .concat();
    let rec = Recorder::start_with(
        Box::new(WavInput::from_samples(
            pcm.clone(),
            Pacing::AsFastAsPossible,
        )),
        &path,
        Duration::from_secs(60),
        noise_suppression,
    )
    .expect("record");
    wait_until("the input to end", || rec.is_finished());
    let r = rec.stop().expect("finish");
    assert_eq!(r.samples, pcm.len() as u64);
    let out = message::read(&path).expect("read");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Energy (dB) of the frames of one kind.
fn energy_db(pcm: &[i16], t: &[Truth], kind: Truth) -> f64 {
    let e: f64 = pcm
        .chunks_exact(FRAME)
        .zip(t)
        .filter(|(_, k)| **k == kind)
        .flat_map(|(f, _)| f.iter().map(|&x| f64::from(x).powi(2)))
        .sum();
    10.0 * e.max(1.0).log10()
}

/// What suppression did to one fixture's message: (noise-only stretches
/// quieter by, speech quieter by, in dB; envelope correlation with the
/// clean speech with and without suppression; lag in ms with suppression).
fn compare(noise: &str) -> (f64, f64, f64, f64, usize) {
    let clean_frames = frames("clean24k.wav").expect("clean fixture");
    let t = truth(&clean_frames);
    let clean: Vec<i16> = clean_frames.concat();
    let on = record(noise, true);
    let off = record(noise, false);
    let noise_drop = energy_db(&off, &t, Truth::Noise) - energy_db(&on, &t, Truth::Noise);
    let speech_drop = energy_db(&off, &t, Truth::Speech) - energy_db(&on, &t, Truth::Speech);
    let (corr_on, lag_on) = envelope_match(&clean, &on, 50);
    let (corr_off, _) = envelope_match(&clean, &off, 50);
    println!(
        "{noise} message: noise-only stretches {noise_drop:.1} dB quieter with suppression, \
         speech {speech_drop:.1} dB; envelope correlation with the clean speech {corr_on:.3} \
         (lag {lag_on} ms), without suppression {corr_off:.3}"
    );
    (noise_drop, speech_drop, corr_on, corr_off, lag_on)
}

#[test]
fn a_message_recorded_next_to_a_fan_keeps_the_speech_and_loses_the_fan() {
    let (noise_drop, speech_drop, corr_on, corr_off, lag_on) = compare("fan");
    assert!(noise_drop > 10.0, "fan only {noise_drop:.1} dB quieter");
    assert!(speech_drop < 3.0, "speech {speech_drop:.1} dB quieter");
    assert!(corr_on > corr_off, "{corr_on} vs {corr_off}");
    assert!(
        lag_on <= 2,
        "suppressor lag not in the pre-skip: {lag_on} ms"
    );
    // Printed for the record: the keyboard's clicks.
    let _ = compare("keys");
}
