//! A call through real audio devices, closed into a loop, to measure the
//! latency including the sound server's buffers. Needs a sound server with a
//! loopback path, e.g. a PulseAudio null sink whose monitor is the default
//! source:
//!
//! ```text
//! export XDG_RUNTIME_DIR=$(mktemp -d)
//! pulseaudio --daemonize=yes --exit-idle-time=-1 -n \
//!   --load="module-null-sink sink_name=vsink rate=48000" --load=module-native-protocol-unix
//! cargo run --release -p chatvoice --example device_echo_latency
//! pulseaudio --kill
//! ```
//!
//! The talker captures the default source (the sink's monitor) and the
//! listener plays to the default sink, so what the listener plays is
//! captured again by the talker. One click is played into the sink; it then
//! goes round the loop (capture → encoder → real relay → jitter buffer →
//! decoder → playback → sink → monitor) again and again, and a third stream
//! records the monitor: the spacing of the echoes is one trip round the loop,
//! device buffers included.

use std::error::Error;
use std::time::{Duration, Instant};

use chatcore::protocol::voice::VoiceJoined;
use chatcore::protocol::{ClientMessage, ServerMessage};
use chatcore::{Client, Event, Server};
use chatvoice::audio::cpal_backend::{CpalInput, CpalOutput};
use chatvoice::audio::silence::{SilenceInput, SilenceOutput};
use chatvoice::audio::{AudioInput, AudioOutput, FRAME};
use chatvoice::{Call, CallOptions, VoiceMode};

fn join(addr: std::net::SocketAddr, name: &str) -> Result<(Client, VoiceJoined), Box<dyn Error>> {
    let c = Client::connect_plain(addr, name)?;
    c.send(&ClientMessage::VoiceJoin)?;
    loop {
        match c.recv_timeout(Duration::from_secs(10))? {
            Some(Event::Message(ServerMessage::VoiceJoined(j))) => return Ok((c, j)),
            Some(_) => continue,
            None => return Err("no voice_joined".into()),
        }
    }
}

/// The `voice_key` the first member is sent when the second joins (each
/// join starts a new key epoch, docs/protocol.md §16.5): its call must
/// start with it, or the other cannot open what it says.
fn catch_up(c: &Client, j: &mut VoiceJoined) -> Result<(), Box<dyn Error>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(Event::Message(ServerMessage::VoiceKey(k))) =
            c.recv_timeout(Duration::from_millis(100))?
        {
            j.epoch = k.epoch;
            j.key = k.key;
            return Ok(());
        }
    }
    Err("no voice_key".into())
}

fn main() -> Result<(), Box<dyn Error>> {
    let server = Server::builder()
        .listen("127.0.0.1:0".parse()?)
        .voice_listen(Some("127.0.0.1:0".parse()?))
        .build()?
        .spawn()?;
    let ip = server.local_addr().ip();
    let (a, mut ja) = join(server.local_addr(), "talker")?;
    let (_b, jb) = join(server.local_addr(), "listener")?;
    catch_up(&a, &mut ja)?;
    let opts = CallOptions {
        mode: VoiceMode::AlwaysOn,
        ..CallOptions::default()
    };
    let listener = Call::start(
        &jb,
        ip,
        Box::new(SilenceInput::realtime()),
        Box::new(CpalOutput::default()),
        opts.clone(),
    )?;
    let talker = Call::start(
        &ja,
        ip,
        Box::new(CpalInput::default()),
        Box::new(SilenceOutput::realtime()),
        opts,
    )?;
    // The recorder: the monitor, 48 kHz mono frames.
    let rec = Box::new(CpalInput::default()).start()?;
    // The click: one frame with 5 ms of 1 kHz, then silence.
    let clicker = Box::new(CpalOutput::default()).start()?;
    std::thread::sleep(Duration::from_millis(500));
    let mut recorded: Vec<i16> = Vec::new();
    let mut clicked = false;
    let total_frames = 3 * 50;
    while recorded.len() < total_frames * FRAME {
        while clicker.demand.try_recv().is_ok() {
            let mut f = vec![0i16; FRAME];
            if !clicked {
                for (i, s) in f.iter_mut().take(240).enumerate() {
                    *s = ((i as f32 * 2.0 * std::f32::consts::PI / 48.0).sin() * 16_000.0) as i16;
                }
                clicked = true;
            }
            clicker.frames.send(f)?;
        }
        if let Ok(f) = rec.frames.recv_timeout(Duration::from_millis(5)) {
            recorded.extend_from_slice(&f);
        }
    }
    drop(clicker);
    drop(rec);
    let t = talker.stop();
    let l = listener.stop();
    // Echo onsets: over a threshold after at least 30 ms below it.
    let thr = 2000u16;
    let (mut onsets, mut quiet) = (Vec::new(), usize::MAX / 2);
    for (i, &x) in recorded.iter().enumerate() {
        if x.unsigned_abs() >= thr {
            if quiet >= 30 * 48 {
                onsets.push(i);
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    let peak = recorded.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
    println!("recorded {} samples, peak {peak}", recorded.len());
    let gaps: Vec<f64> = onsets
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 48.0)
        .collect();
    println!(
        "device echo loop: {} echoes; trip times (ms): {gaps:.1?}",
        onsets.len()
    );
    if !gaps.is_empty() {
        let mut s = gaps.clone();
        s.sort_by(f64::total_cmp);
        println!("  median trip {:.1} ms", s[s.len() / 2]);
    }
    let sp = l.speakers.first().map(|s| s.jitter).unwrap_or_default();
    println!(
        "  talker sent {}, listener received {}, jitter target {} ms, underruns {}",
        t.packets_sent, l.packets_received, sp.target_ms, sp.underruns
    );
    Ok(())
}
