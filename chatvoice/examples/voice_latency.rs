//! Measures the system-added latency of a call on loopback: from a sample
//! entering capture to it leaving playback, through the Opus encoder, the
//! real server's UDP relay, the jitter buffer and the decoder.
//!
//! The input is a click train (5 ms bursts of 1 kHz every 397 ms, so the
//! clicks fall at every phase of the 20 ms frame) played by a WAV input paced
//! in real time; the output is a WAV output paced in real time, which plays
//! each frame at its tick. A click's latency is when its onset left the
//! output minus when it entered the input. Device buffers (a few ms on each
//! side with a real sound card) are not included. Each run is a new call
//! whose talker starts at another phase of the listener's 20 ms clock
//! (which shifts the latency by 0..20 ms).
//!
//! ```text
//! cargo run --release -p chatvoice --example voice_latency -- [--vad] [--tcp] [--secs 6] [--runs 5]
//! ```

use std::error::Error;
use std::time::{Duration, Instant};

use chatcore::protocol::voice::VoiceJoined;
use chatcore::protocol::{ClientMessage, ServerMessage};
use chatcore::{Client, Event, Server};
use chatvoice::audio::Pacing;
use chatvoice::audio::silence::{SilenceInput, SilenceOutput};
use chatvoice::audio::wav::{WavInput, WavOutput};
use chatvoice::{Call, CallEvent, CallOptions, LinkOptions, VoiceMode};

const RATE: f64 = 48_000.0;
const SPACING: usize = 397 * 48;
const BURST: usize = 5 * 48;

fn join(addr: std::net::SocketAddr, name: &str) -> Result<(Client, VoiceJoined), Box<dyn Error>> {
    let c = Client::connect_plain(addr, name)?;
    c.send(&ClientMessage::VoiceJoin)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(Event::Message(ServerMessage::VoiceJoined(j))) =
            c.recv_timeout(Duration::from_millis(100))?
        {
            return Ok((c, j));
        }
    }
    Err("no voice_joined".into())
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// What one run measured.
struct Run {
    /// Latency of each click, ms.
    lat: Vec<f64>,
    /// Clicks played in.
    clicks: usize,
    /// A line about the listener's jitter buffer.
    detail: String,
}

fn run_once(
    server: &chatcore::RunningServer,
    vad: bool,
    tcp: bool,
    secs: usize,
    k: usize,
) -> Result<Run, Box<dyn Error>> {
    // The click train.
    let len = secs * 48_000;
    let mut input = vec![0i16; len];
    let mut clicks = Vec::new();
    let mut at = 200 * 48;
    while at + BURST < len - 48_000 / 2 {
        clicks.push(at);
        for i in 0..BURST {
            let t = i as f64 / RATE;
            input[at + i] = ((2.0 * std::f64::consts::PI * 1000.0 * t).sin() * 16_000.0) as i16;
        }
        at += SPACING;
    }
    let ip = server.local_addr().ip();
    let (a, mut ja) = join(server.local_addr(), &format!("talker{k}"))?;
    let (_b, jb) = join(server.local_addr(), &format!("listener{k}"))?;
    catch_up(&a, &mut ja)?;
    let rt = Pacing::Realtime(1.0);
    let options = CallOptions {
        mode: if vad {
            VoiceMode::Vad
        } else {
            VoiceMode::AlwaysOn
        },
        link: LinkOptions {
            force_tcp: tcp,
            ..LinkOptions::default()
        },
        ..CallOptions::default()
    };
    let out = WavOutput::new(None, rt);
    let played = out.played();
    let listener = Call::start(
        &jb,
        ip,
        Box::new(SilenceInput { pacing: rt }),
        Box::new(out),
        options.clone(),
    )?;
    // Each run starts the talker at another phase of the listener's 20 ms
    // clock (0, 4, 8, 12, 16 ms later), since that phase decides how long
    // a packet waits for the next playback tick.
    std::thread::sleep(Duration::from_millis(4 * (k as u64 % 5)));
    let wav_in = WavInput::from_samples(input, rt);
    let in_start = wav_in.start_time();
    let talker = Call::start(
        &ja,
        ip,
        Box::new(wav_in),
        Box::new(SilenceOutput { pacing: rt }),
        options,
    )?;
    loop {
        match talker.events().recv_timeout(Duration::from_secs(60))? {
            CallEvent::InputEnded => break,
            _ => continue,
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let tstats = talker.stop();
    let lstats = listener.stop();
    let out = played.samples();
    let (Some(&t_in), Some(&t_out)) = (in_start.get(), played.start.get()) else {
        return Err("clocks did not start".into());
    };
    // Output sample m left at t_out + m / 48 kHz; input sample n entered at
    // t_in + n / 48 kHz. Offset of the output clock from the input clock:
    let offset_ms = if t_out >= t_in {
        (t_out - t_in).as_secs_f64() * 1000.0
    } else {
        -((t_in - t_out).as_secs_f64() * 1000.0)
    };
    // Onsets in the output: first sample over a threshold after >= 100 ms below it.
    let thr = 3000u16;
    let mut onsets = Vec::new();
    let mut quiet = usize::MAX / 2;
    for (m, &x) in out.iter().enumerate() {
        if x.unsigned_abs() >= thr {
            if quiet >= 100 * 48 {
                onsets.push(m);
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    let mut lat = Vec::new();
    for &m in &onsets {
        let t_m = offset_ms + m as f64 / 48.0;
        // The click this onset belongs to: the latest one before it.
        if let Some(&n) = clicks.iter().rev().find(|&&n| (n as f64 / 48.0) < t_m) {
            let l = t_m - n as f64 / 48.0;
            if l < 300.0 {
                lat.push(l);
            }
        }
    }
    let sp = lstats
        .speakers
        .first()
        .map(|s| s.jitter)
        .unwrap_or_default();
    let detail = format!(
        "target {} ms, jitter {:.2} ms, underruns {}, dropped {}, lost {}, late {}; sent {} received {}",
        sp.target_ms,
        sp.jitter_ms,
        sp.underruns,
        sp.dropped,
        sp.lost,
        sp.late,
        tstats.packets_sent,
        lstats.packets_received,
    );
    Ok(Run {
        lat,
        clicks: clicks.len(),
        detail,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let vad = args.iter().any(|a| a == "--vad");
    let tcp = args.iter().any(|a| a == "--tcp");
    let num = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let secs = num("--secs", 6);
    let runs = num("--runs", 5);
    let server = Server::builder()
        .listen("127.0.0.1:0".parse()?)
        .voice_listen(Some("127.0.0.1:0".parse()?))
        .build()?
        .spawn()?;
    println!(
        "voice latency, capture -> playback ({}, {}, {runs} runs of {secs} s)",
        if tcp { "TCP" } else { "UDP" },
        if vad { "VAD" } else { "always on" },
    );
    let mut all = Vec::new();
    for k in 0..runs {
        let r = run_once(&server, vad, tcp, secs, k)?;
        let mut s = r.lat.clone();
        s.sort_by(f64::total_cmp);
        if s.is_empty() {
            return Err("no click came through".into());
        }
        println!(
            "  run {k}: {} of {} clicks, median {:.1} ms (min {:.1}, max {:.1}); {}",
            s.len(),
            r.clicks,
            percentile(&s, 0.5),
            s[0],
            s[s.len() - 1],
            r.detail
        );
        all.extend(r.lat);
    }
    all.sort_by(f64::total_cmp);
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    println!(
        "  all: {} clicks: min {:.1}  median {:.1}  mean {:.1}  p95 {:.1}  max {:.1} ms",
        all.len(),
        all[0],
        percentile(&all, 0.5),
        mean,
        percentile(&all, 0.95),
        all[all.len() - 1]
    );
    Ok(())
}
