//! Echo cancellation end to end with the real server: alice talks; bob has
//! no headset (an acoustic loop: what bob's speaker plays comes back into
//! his microphone 60 ms later at −10 dB) and transmits all the time. Without
//! echo cancellation alice hears herself through bob; with it (the default)
//! her returned speech is far quieter. Bob also talks while alice says her
//! last sentence (double talk): his voice must still reach her.
//!
//! The loop drives bob's speaker and microphone on one clock, so played and
//! captured audio stay aligned at twice real time as on a real duplex device.

mod common;

use chatvoice::audio::Pacing;
use chatvoice::audio::acoustic::acoustic_loop;
use chatvoice::audio::wav::{WavInput, WavOutput, read_wav};
use chatvoice::{Call, CallEvent, CallOptions, VoiceMode};
use common::*;

/// Backends run this many times faster than real time.
const SCALE: f64 = 2.0;
/// Times the fixture is said (with short pauses): the canceller converges
/// on the first, the return is measured on the others.
const REPEATS: usize = 3;

/// What alice said, and what came back to her from bob's microphone.
struct Returned {
    said: Vec<i16>,
    heard: Vec<i16>,
}

/// Alice's sentences: the fixture and a 0.2 s pause, [`REPEATS`] times.
fn sentence() -> usize {
    speech().len() + 48_000 / 5
}

/// Where bob starts talking, in samples of his loop: 0.3 s into alice's
/// last sentence.
fn bob_starts() -> usize {
    (REPEATS - 1) * sentence() + 48_000 * 3 / 10
}

fn alice_talks_to_bob_without_headset(test: &str, echo_cancellation: bool) -> Returned {
    let _one_at_a_time = serial();
    let dir = scratch(test);
    let srv = server();
    let ip = srv.local_addr().ip();
    let (alice, mut ja) = join(&srv, "alice");
    let (_bob, jb) = join(&srv, "bob");
    catch_up(&alice, &mut ja, 1);
    let pace = Pacing::Realtime(SCALE);
    let mut said = Vec::new();
    for _ in 0..REPEATS {
        said.extend(speech());
        said.extend(std::iter::repeat_n(0i16, 48_000 / 5));
    }
    let mut bob_says = vec![0i16; bob_starts()];
    bob_says.extend(speech().iter().rev().map(|&v| v / 2));
    let (mic, speaker) = acoustic_loop(60, 0.3, pace);
    let speaker = speaker.with_voice(bob_says);
    let bob = Call::start(
        &jb,
        ip,
        Box::new(mic),
        Box::new(speaker),
        CallOptions {
            mode: VoiceMode::AlwaysOn,
            echo_cancellation,
            time_scale: SCALE,
            jitter: sturdy_jitter(),
            ..CallOptions::default()
        },
    )
    .expect("bob's call");
    let wav = dir.join("alice-hears.wav");
    let alice_call = Call::start(
        &ja,
        ip,
        Box::new(WavInput::from_samples(said.clone(), pace)),
        Box::new(WavOutput::new(Some(wav.clone()), pace).with_patience(PATIENCE)),
        CallOptions {
            time_scale: SCALE,
            jitter: sturdy_jitter(),
            ..CallOptions::default()
        },
    )
    .expect("alice's call");
    wait_event(&alice_call, |e| *e == CallEvent::InputEnded);
    // The last echo comes back after the loop's delay and two jitter
    // buffers: play on for another 600 ms of media.
    let played = alice_call.stats().frames_played;
    wait_until("the tail to play", || {
        alice_call.stats().frames_played >= played + 30
    });
    alice_call.stop();
    let bob_stats = bob.stop();
    assert!(bob_stats.packets_sent > 100, "bob sent {bob_stats:?}");
    let heard = read_wav(&wav).expect("alice's output");
    let _ = std::fs::remove_dir_all(&dir);
    Returned { said, heard }
}

fn energy(x: &[i16]) -> f64 {
    x.iter().map(|&v| f64::from(v).powi(2)).sum()
}

/// Energy of what came back during alice's second sentence (after the
/// canceller's convergence on the first; before bob talks) relative to what
/// she said, in dB.
fn return_db(r: &Returned) -> f64 {
    let second = sentence()..2 * sentence();
    let said = energy(r.said.get(second.clone()).unwrap_or_default());
    let heard = energy(r.heard.get(second).unwrap_or_default());
    10.0 * (heard.max(1.0) / said).log10()
}

/// How well bob's voice (said over alice's last sentence) reaches alice:
/// envelope correlation of what she heard from then on with what he said.
fn bob_heard(r: &Returned) -> f64 {
    let bob: Vec<i16> = speech().iter().rev().map(|&v| v / 2).collect();
    let from = bob_starts().saturating_sub(48_000 / 10);
    let heard = r.heard.get(from..).unwrap_or_default();
    envelope_match(&bob, heard, 600).0
}

#[test]
fn the_far_end_no_longer_hears_itself_with_echo_cancellation_on() {
    let off = alice_talks_to_bob_without_headset("aec-off", false);
    let on = alice_talks_to_bob_without_headset("aec-on", true);
    let (off_db, on_db) = (return_db(&off), return_db(&on));
    // Without cancellation the return is the loop's −10 dB, less what the
    // codec and a busy machine's underruns take (measured −13 to −17 dB):
    // alice clearly hears her own speech.
    // (Her first two sentences: bob talks over the third.)
    let two = 2 * sentence();
    let heard = off.heard.get(..two + 48_000 / 2).unwrap_or_default();
    let (corr, lag) = envelope_match(&off.said[..two], heard, 400);
    eprintln!(
        "echo returned to the talker: {off_db:.1} dB without echo cancellation \
         (envelope correlation {corr:.2} at {lag} ms), {on_db:.1} dB with it: \
         {:.1} dB less",
        off_db - on_db
    );
    assert!(off_db > -25.0, "the loop returned only {off_db:.1} dB");
    assert!(
        corr > 0.5,
        "without cancellation the echo is alice's speech ({corr:.2})"
    );
    assert!(
        off_db - on_db >= 15.0,
        "echo cancellation removed only {:.1} dB",
        off_db - on_db
    );
    let (bob_off, bob_on) = (bob_heard(&off), bob_heard(&on));
    eprintln!(
        "bob talking over alice, as alice hears him (envelope correlation): \
         {bob_off:.2} without echo cancellation, {bob_on:.2} with it"
    );
    assert!(
        bob_on > 0.6,
        "bob's voice is lost in double talk: {bob_on:.2}"
    );
}
