//! Noise suppression in a real call (the real server, the engine's capture
//! thread): a talker in VAD mode whose microphone hears speech and keyboard
//! clicks sends far fewer packets with suppression on (the default) than
//! with it switched off through the handle, and still sends its speech.

mod common;

use chatvoice::audio::Pacing;
use chatvoice::audio::silence::SilenceOutput;
use chatvoice::audio::wav::{WavInput, read_wav};
use chatvoice::{Call, CallEvent, CallOptions, VoiceMode};
use common::*;

const SCALE: f64 = 4.0;

/// Packets one talker sends for the keyboard fixture (8 s, 400 frames).
fn packets_sent(suppression: bool) -> (u64, u64) {
    let srv = server();
    let ip = srv.local_addr().ip();
    let (_client, j) = join(&srv, "typist");
    let pcm = read_wav(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/noisy-keys24k.wav"),
    )
    .expect("fixture");
    let pace = Pacing::Realtime(SCALE);
    let call = Call::start(
        &j,
        ip,
        Box::new(WavInput::from_samples(pcm, pace)),
        Box::new(SilenceOutput { pacing: pace }),
        CallOptions {
            time_scale: SCALE,
            mode: VoiceMode::Vad,
            ..CallOptions::default()
        },
    )
    .expect("call");
    assert!(call.noise_suppression(), "on by default");
    call.set_noise_suppression(suppression);
    wait_event(&call, |e| *e == CallEvent::InputEnded);
    let stats = call.stop();
    (stats.frames_captured, stats.packets_sent)
}

#[test]
fn with_suppression_keyboard_clicks_between_sentences_are_not_sent() {
    let _one_at_a_time = serial();
    let (captured_on, on) = packets_sent(true);
    let (captured_off, off) = packets_sent(false);
    println!(
        "keyboard fixture: {on} of {captured_on} frames sent with suppression, {off} of {captured_off} without"
    );
    assert!(captured_on >= 390 && captured_off >= 390);
    // 194 speech frames and 56 of hangover are sent either way (a few
    // first frames may have been decided before the switch took effect);
    // the ~150 noise-only frames between and around the sentences go out
    // without suppression and not with it.
    assert!(on >= 194 * 95 / 100, "speech lost: {on}");
    assert!(off >= on + 80, "suppression on {on}, off {off}");
}
