//! Several speakers at once, and the controls that keep a microphone from
//! flooding the call (mute, push-to-talk, VAD), with the real server.

mod common;

use chatvoice::audio::Pacing;
use chatvoice::audio::silence::{SilenceInput, SilenceOutput};
use chatvoice::audio::wav::WavInput;
use chatvoice::{Call, CallEvent, CallOptions, VoiceMode};
use common::*;

const SCALE: f64 = 2.0;

/// The fixture normalised to full scale (peak ±32767).
fn loud_speech() -> Vec<i16> {
    let s = speech();
    let peak = s
        .iter()
        .map(|x| i32::from(*x).abs())
        .max()
        .unwrap_or(1)
        .max(1);
    s.iter()
        .map(|&x| (i32::from(x) * 32767 / peak) as i16)
        .collect()
}

#[test]
fn three_full_scale_speakers_at_once_are_mixed_without_clipping() {
    let _one_at_a_time = serial();
    let srv = server();
    let ip = srv.local_addr().ip();
    let pace = Pacing::Realtime(SCALE);
    let opts = CallOptions {
        time_scale: SCALE,
        mode: VoiceMode::AlwaysOn,
        jitter: sturdy_jitter(),
        ..CallOptions::default()
    };
    // Everyone joins first and catches up with the newest key (each join
    // starts a new epoch), then the engines start.
    let (l, mut jl) = join(&srv, "listener");
    let mut members: Vec<_> = ["a", "b", "c"].iter().map(|n| join(&srv, n)).collect();
    catch_up(&l, &mut jl, 3);
    for (i, (c, j)) in members.iter_mut().enumerate() {
        catch_up(c, j, 2 - i);
    }
    let (listener, played) = start_listener(&jl, ip, pace, &opts);
    let mut speakers = Vec::new();
    for (_, j) in &members {
        speakers.push(
            Call::start(
                j,
                ip,
                Box::new(WavInput::from_samples(loud_speech(), pace)),
                Box::new(SilenceOutput { pacing: pace }),
                opts.clone(),
            )
            .expect("speaker"),
        );
    }
    for s in &speakers {
        wait_event(s, |e| *e == CallEvent::InputEnded);
    }
    let sent: Vec<u64> = speakers.iter().map(|s| s.stats().packets_sent).collect();
    wait_until("all three to arrive", || {
        let st = listener.stats();
        st.speakers.len() == 3 && st.packets_received >= sent.iter().sum::<u64>()
    });
    let n = listener.stats().frames_played;
    wait_until("the tail", || listener.stats().frames_played >= n + 10);
    drop(speakers);
    let stats = listener.stop();
    let pcm = played.samples();
    let peak = pcm.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
    let at_full = pcm
        .iter()
        .filter(|&&x| x == i16::MAX || x == i16::MIN || x == -i16::MAX)
        .count();
    let near_full = pcm.iter().filter(|&&x| x.unsigned_abs() >= 32_000).count();
    let mut longest = 0;
    let mut run = 0;
    for &x in &pcm {
        run = if x.unsigned_abs() >= 32_700 {
            run + 1
        } else {
            0
        };
        longest = longest.max(run);
    }
    eprintln!(
        "three speakers: peak {peak}, samples at ±32767: {at_full}, ≥32000: {near_full} of {}, \
         longest run ≥32700: {longest}, per-speaker received {:?}",
        pcm.len(),
        stats
            .speakers
            .iter()
            .map(|s| s.jitter.received)
            .collect::<Vec<_>>()
    );
    assert_eq!(stats.speakers.len(), 3);
    for sp in &stats.speakers {
        assert_eq!(sp.jitter.lost, 0, "{sp:?}");
    }
    assert!(peak > 20_000, "the mix is loud: {peak}");
    assert!(peak <= 32_766, "peak {peak} reached full scale");
    assert_eq!(at_full, 0);
    assert!(
        near_full * 100 < pcm.len(),
        "{near_full} samples near full scale"
    );
}

#[test]
fn mute_push_to_talk_and_vad_keep_an_open_microphone_from_flooding_the_call() {
    let _one_at_a_time = serial();
    let srv = server();
    let ip = srv.local_addr().ip();
    let pace = Pacing::Realtime(4.0);
    let (_a, ja) = join(&srv, "talker");
    // Speech, looped: a microphone that never stops.
    let long: Vec<i16> = speech().repeat(20);
    let call = Call::start(
        &ja,
        ip,
        Box::new(WavInput::from_samples(long, pace)),
        Box::new(SilenceOutput { pacing: pace }),
        CallOptions {
            time_scale: 4.0,
            mode: VoiceMode::PushToTalk,
            ..CallOptions::default()
        },
    )
    .expect("call");
    let advance = |frames: u64| {
        let start = call.stats().frames_captured;
        wait_until("capture to advance", || {
            call.stats().frames_captured >= start + frames
        });
    };
    // Push-to-talk, key up: nothing is sent.
    advance(20);
    assert_eq!(call.stats().packets_sent, 0);
    // Key down: frames go out.
    call.set_ptt(true);
    advance(20);
    let sent = call.stats().packets_sent;
    assert!(sent >= 10, "{sent}");
    // Muted, key still down: nothing more.
    call.set_muted(true);
    assert!(call.is_muted());
    advance(5);
    let muted_at = call.stats().packets_sent;
    advance(20);
    assert_eq!(call.stats().packets_sent, muted_at);
    // VAD on speech: sends again.
    call.set_muted(false);
    call.set_mode(VoiceMode::Vad);
    advance(30);
    assert!(call.stats().packets_sent > muted_at);
    let events: Vec<_> = call.events().try_iter().collect();
    let me = call.session();
    assert!(events.contains(&CallEvent::Speaking {
        session: me,
        active: true
    }));
    assert!(events.contains(&CallEvent::Speaking {
        session: me,
        active: false
    }));
    call.stop();

    // A silent microphone in VAD mode sends no audio at all, only keepalives.
    let (_b, jb) = join(&srv, "quiet");
    let call = Call::start(
        &jb,
        ip,
        Box::new(SilenceInput { pacing: pace }),
        Box::new(SilenceOutput { pacing: pace }),
        CallOptions {
            time_scale: 4.0,
            link: chatvoice::LinkOptions {
                keepalive: Some(std::time::Duration::from_millis(50)),
                ..Default::default()
            },
            ..CallOptions::default()
        },
    )
    .expect("call");
    wait_until("keepalive probes", || {
        let s = call.stats();
        s.frames_captured >= 50 && s.probes_sent >= 2
    });
    let s = call.stop();
    assert_eq!(s.packets_sent, 0);
    assert!(s.rtt_us.is_some(), "the server answered a probe");
}
