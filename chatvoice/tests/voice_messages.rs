//! Voice messages: recorded to Ogg Opus (bounded length), sent through the
//! real server's file transfer with kind `voice`, received and played.

mod common;

use std::time::{Duration, Instant};

use chatcore::Event;
use chatcore::client::TransferEvent;
use chatcore::protocol::ServerMessage;
use chatcore::protocol::transfer::FileKind;
use chatvoice::audio::Pacing;
use chatvoice::audio::wav::{WavInput, WavOutput};
use chatvoice::message::{self, MAX_MESSAGE_SECS, Recorder};
use common::*;

#[test]
fn a_recorded_message_reads_back_as_the_same_speech() {
    let dir = scratch("record");
    let path = dir.join("m.opus");
    let speech = speech();
    let rec = Recorder::start(
        Box::new(WavInput::from_samples(
            speech.clone(),
            Pacing::AsFastAsPossible,
        )),
        &path,
        Duration::from_secs(60),
    )
    .expect("record");
    wait_until("the input to end", || rec.is_finished());
    let r = rec.stop().expect("finish");
    // Whole frames are recorded; the length is the input rounded up to 20 ms.
    assert_eq!(r.samples, speech.len().div_ceil(960) as u64 * 960);
    assert!(!r.reached_limit);
    let size = std::fs::metadata(&path).expect("size").len();
    let pcm = message::read(&path).expect("read");
    assert_eq!(pcm.len() as u64, r.samples);
    let (corr, lag) = envelope_match(&speech, &pcm, 50);
    eprintln!(
        "voice message: {size} bytes for {:?}, envelope correlation {corr:.3} at lag {lag} ms",
        r.duration()
    );
    assert!(corr >= 0.95, "{corr}");
    assert!(lag <= 2, "pre-skip removed: lag {lag} ms");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn recording_stops_by_itself_at_the_maximum_length() {
    let dir = scratch("limit");
    let path = dir.join("m.opus");
    let rec = Recorder::start(
        Box::new(WavInput::from_samples(speech(), Pacing::AsFastAsPossible)),
        &path,
        Duration::from_millis(1010),
    )
    .expect("record");
    wait_until("the limit", || rec.is_finished());
    let r = rec.stop().expect("finish");
    assert!(r.reached_limit);
    assert_eq!(r.samples, 48_480);
    assert_eq!(message::read(&path).expect("read").len(), 48_480);
    // Asking for more than the maximum gets the maximum.
    assert_eq!(MAX_MESSAGE_SECS, 120);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_voice_message_goes_through_the_file_transfer_and_plays_on_the_other_side() {
    let srv = server();
    let dir = scratch("transfer");
    let path = dir.join("hello.opus");
    Recorder::start(
        Box::new(WavInput::from_samples(speech(), Pacing::AsFastAsPossible)),
        &path,
        Duration::from_secs(10),
    )
    .expect("record")
    .stop()
    .expect("finish");
    // Stop at once may cut the recording short; record again to the end.
    let rec = Recorder::start(
        Box::new(WavInput::from_samples(speech(), Pacing::AsFastAsPossible)),
        &path,
        Duration::from_secs(10),
    )
    .expect("record");
    wait_until("recorded", || rec.is_finished());
    rec.stop().expect("finish");

    let alice = chatcore::Client::connect_plain(srv.local_addr(), "alice").expect("alice");
    let bob = chatcore::Client::connect_plain(srv.local_addr(), "bob").expect("bob");
    message::send(&alice, &path).expect("send");
    let deadline = Instant::now() + PATIENCE;
    let offer = loop {
        assert!(Instant::now() < deadline, "no offer");
        if let Some(Event::Message(ServerMessage::FileOffer(o))) =
            bob.recv_timeout(Duration::from_millis(200)).expect("recv")
        {
            break o;
        }
    };
    assert_eq!(offer.kind, FileKind::Voice);
    let down = dir.join("down");
    std::fs::create_dir_all(&down).expect("dir");
    bob.accept_file(offer.transfer, &down).expect("accept");
    let saved = loop {
        assert!(Instant::now() < deadline, "not saved");
        match bob.recv_timeout(Duration::from_millis(200)).expect("recv") {
            Some(Event::Transfer(TransferEvent::Saved { path, .. })) => break path,
            Some(Event::Transfer(TransferEvent::Failed { reason, .. })) => panic!("{reason}"),
            _ => {}
        }
    };
    assert_eq!(
        std::fs::read(&saved).expect("saved"),
        std::fs::read(&path).expect("sent")
    );
    // Play it to a speaker (unpaced: a file render).
    let out = WavOutput::new(None, Pacing::AsFastAsPossible);
    let played = out.played();
    message::play(&saved, Box::new(out)).expect("play").wait();
    let pcm = played.samples();
    let (corr, _) = envelope_match(&speech(), &pcm, 50);
    assert!(corr >= 0.95, "{corr}");
    let _ = std::fs::remove_dir_all(&dir);
}
