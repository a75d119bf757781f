//! Shared pieces of the integration tests: the real server in-process, call
//! members, the speech fixture and the envelope comparison.
#![allow(dead_code)]

pub mod jitter_proxy;

use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chatcore::protocol::voice::VoiceJoined;
use chatcore::protocol::{ClientMessage, ServerMessage};
use chatcore::{Client, Event, RunningServer, Server};
use std::net::IpAddr;
use std::sync::Arc;

use chatvoice::audio::Pacing;
use chatvoice::audio::silence::SilenceInput;
use chatvoice::audio::wav::{Played, WavOutput, read_wav};
use chatvoice::jitter::JitterConfig;
use chatvoice::{Call, CallEvent, CallHandle, CallOptions, VoiceMode};

/// Longest any wait in a test may take before it is a failure (never a
/// timing assertion: only a guard against hanging).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Runs the real-time tests of one test binary one at a time: on 2 cores,
/// parallel calls would compete for the CPU their clocks need.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A jitter buffer that never targets less than 60 ms: for tests of what a
/// call delivers on a possibly loaded machine, not of its latency.
pub fn sturdy_jitter() -> JitterConfig {
    JitterConfig {
        initial_ms: 60,
        min_ms: 60,
        lossy_min_ms: 60,
        ..JitterConfig::default()
    }
}

/// The real server with its voice port, on loopback ports chosen by the OS.
pub fn server() -> RunningServer {
    Server::builder()
        .listen("127.0.0.1:0".parse().expect("addr"))
        .voice_listen(Some("127.0.0.1:0".parse().expect("addr")))
        .build()
        .expect("build server")
        .spawn()
        .expect("spawn server")
}

/// The real server with its voice port, serving TLS on the chat port with
/// a self-signed certificate made in `dir` (as the daemon does by default).
pub fn tls_server(dir: &std::path::Path) -> RunningServer {
    Server::builder()
        .listen("127.0.0.1:0".parse().expect("addr"))
        .voice_listen(Some("127.0.0.1:0".parse().expect("addr")))
        .tls(chatcore::ServerTls::self_signed(dir).expect("self-signed certificate"))
        .build()
        .expect("build server")
        .spawn()
        .expect("spawn server")
}

/// Logs `name` in and joins the call; the client must live as long as the call.
pub fn join(server: &RunningServer, name: &str) -> (Client, VoiceJoined) {
    let client = Client::connect_plain(server.local_addr(), name).expect("connect");
    join_call(client, name)
}

/// Like [`join`], over TLS: the client trusts the server on first use,
/// remembering it in `known_servers` (a scratch file, never the user's),
/// so the call's keys reach it only inside TLS.
pub fn join_tls(
    server: &RunningServer,
    name: &str,
    known_servers: &std::path::Path,
) -> (Client, VoiceJoined) {
    use chatcore::tls::{ClientTls, KnownServers, Trust, Verify};
    let tls = ClientTls::Tls(Verify::TrustOnFirstUse(KnownServers::at(
        known_servers.to_path_buf(),
    )));
    let client = Client::connect_with(&server.local_addr().to_string(), name, &tls)
        .expect("connect over TLS");
    assert!(
        matches!(client.trust(), Trust::FirstUse(_) | Trust::Known(_)),
        "{:?}",
        client.trust()
    );
    join_call(client, name)
}

/// Sends `voice_join` and waits for `voice_joined`.
fn join_call(client: Client, name: &str) -> (Client, VoiceJoined) {
    client.send(&ClientMessage::VoiceJoin).expect("voice_join");
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        match client
            .recv_timeout(Duration::from_millis(200))
            .expect("recv")
        {
            Some(Event::Message(ServerMessage::VoiceJoined(j))) => return (client, j),
            Some(Event::Message(ServerMessage::Error(e))) => panic!("voice_join refused: {e:?}"),
            _ => {}
        }
    }
    panic!("no voice_joined for {name}");
}

/// Brings `j` (an earlier member's `voice_joined`) up to the call's current
/// key: waits for the `voice_key` each of the `later_joins` joins after it
/// sent, and takes the newest (docs/protocol.md §16.5). Call before starting
/// its engine, so that every member seals and opens with the same key.
pub fn catch_up(client: &Client, j: &mut VoiceJoined, later_joins: usize) {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = 0;
    while seen < later_joins {
        assert!(
            Instant::now() < deadline,
            "no voice_key for session {}",
            j.session
        );
        if let Some(Event::Message(ServerMessage::VoiceKey(k))) = client
            .recv_timeout(Duration::from_millis(200))
            .expect("recv")
        {
            j.epoch = k.epoch;
            j.key = k.key;
            seen += 1;
        }
    }
}

/// Waits for the next `voice_key` on `client` and hands it to `call`, as a
/// client does with every `voice_key` while its call runs.
pub fn forward_key(client: &Client, call: &CallHandle) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Some(Event::Message(ServerMessage::VoiceKey(k))) = client
            .recv_timeout(Duration::from_millis(200))
            .expect("recv")
        {
            call.set_key(k.epoch, &k.key).expect("32-byte key");
            return;
        }
    }
    panic!("no voice_key");
}

/// The committed speech fixture, 48 kHz mono.
pub fn speech() -> Vec<i16> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/speech48k.wav");
    read_wav(&path).expect("fixture")
}

/// A fresh scratch directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chatvoice-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Waits for `pred` on the call's events; returns the events seen.
pub fn wait_event(call: &CallHandle, mut pred: impl FnMut(&CallEvent) -> bool) -> Vec<CallEvent> {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match call.events().recv_timeout(Duration::from_millis(100)) {
            Ok(e) => {
                let done = pred(&e);
                seen.push(e);
                if done {
                    return seen;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    panic!("event not seen; saw {seen:?}");
}

/// Polls `cond` until it holds (guarded by [`PATIENCE`]).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Samples per envelope point (1 ms).
pub const HOP: usize = 48;

/// Amplitude envelope: mean |x| over 5 ms windows, one point per ms.
pub fn envelope(x: &[i16]) -> Vec<f64> {
    let win = 5 * HOP;
    (0..x.len().saturating_sub(win) / HOP)
        .map(|i| {
            let w = &x[i * HOP..i * HOP + win];
            w.iter().map(|&s| f64::from(s).abs()).sum::<f64>() / win as f64
        })
        .collect()
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa == 0.0 || sbb == 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// The best alignment of `output` against `reference` (the output lags by
/// 0..=`max_lag_ms`): (correlation of the envelopes, lag in ms).
pub fn envelope_match(reference: &[i16], output: &[i16], max_lag_ms: usize) -> (f64, usize) {
    let r = envelope(reference);
    let o = envelope(output);
    let mut best = (f64::MIN, 0);
    for lag in 0..=max_lag_ms {
        if lag + r.len() > o.len() {
            break;
        }
        let c = pearson(&r, &o[lag..lag + r.len()]);
        if c > best.0 {
            best = (c, lag);
        }
    }
    best
}

/// Envelope correlation after alignment that allows the delay to change
/// between segments, as a jitter buffer legitimately does when it skips a
/// quiet frame or stretches a pause: the global best lag first, then each
/// 250 ms segment of the reference at its own best lag within ±60 ms of
/// it; the result is the correlation of the reference with the output
/// stitched from those segments. Returns (correlation, global lag in ms).
pub fn envelope_match_piecewise(
    reference: &[i16],
    output: &[i16],
    max_lag_ms: usize,
) -> (f64, usize) {
    let (_, global) = envelope_match(reference, output, max_lag_ms);
    let r = envelope(reference);
    let o = envelope(output);
    let seg = 250;
    let mut stitched = Vec::with_capacity(r.len());
    for start in (0..r.len()).step_by(seg) {
        let end = (start + seg).min(r.len());
        let part = &r[start..end];
        let mut best = (f64::MIN, global);
        for lag in global.saturating_sub(60)..=global + 60 {
            if lag + end > o.len() {
                break;
            }
            let c = pearson(part, &o[start + lag..end + lag]);
            if c > best.0 {
                best = (c, lag);
            }
        }
        let lag = best.1;
        let from = (start + lag).min(o.len());
        let to = (end + lag).min(o.len());
        stitched.extend_from_slice(&o[from..to]);
        stitched.resize(end, 0.0);
    }
    (pearson(&r, &stitched), global)
}

/// A member that only listens: silent microphone, voice activation (so it
/// sends nothing but keepalives), and an output that records what it plays
/// (waiting for late frames rather than playing silence).
pub fn start_listener(
    joined: &VoiceJoined,
    ip: IpAddr,
    pace: Pacing,
    opts: &CallOptions,
) -> (CallHandle, Arc<Played>) {
    let out = WavOutput::new(None, pace).with_patience(PATIENCE);
    let played = out.played();
    let call = Call::start(
        joined,
        ip,
        Box::new(SilenceInput { pacing: pace }),
        Box::new(out),
        CallOptions {
            mode: VoiceMode::Vad,
            ..opts.clone()
        },
    )
    .expect("listener starts");
    (call, played)
}
