//! The call engine.
//!
//! [`Call::start`] opens the input and output, binds the voice path
//! ([`VoiceLink`]: UDP, else TCP), and runs two threads:
//!
//! - **capture**: takes 20 ms frames from the [`AudioInput`], decides with
//!   the [`Gate`] (mute, push-to-talk or VAD) whether to send, encodes with
//!   Opus and sends an audio packet (`seq` +1 per packet sent, `ts` +960 per
//!   frame captured, sent or not).
//! - **playback**: on each demand from the [`AudioOutput`], moves the
//!   packets that came in into one [`JitterBuffer`] per speaker, takes one
//!   frame from each (decoded, rebuilt from FEC, or concealed), mixes them
//!   with the soft limiter and hands the frame to the output.
//!
//! The link's own thread receives packets and sends keepalive probes. The
//! caller controls the call through the [`CallHandle`] (atomics, no locks
//! on the audio path) and hears from it through [`CallEvent`]s.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chatcore::protocol::voice::VoiceJoined;
use rand::Rng;

use crate::audio::{AudioInput, AudioOutput, Capture, FRAME, Playback};
use crate::codec::{Decoder, Encoder, EncoderConfig};
use crate::error::{CallError, TransportError};
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::mixer;
use crate::transport::{Incoming, LinkOptions, LinkSender, TransportKind, VoiceLink};
use crate::vad::{Gate, VadConfig, VoiceMode, frame_dbfs};

/// How a call behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOptions {
    /// When to transmit (VAD by default).
    pub mode: VoiceMode,
    /// Start muted.
    pub muted: bool,
    /// Voice path settings (force TCP, loss injection for tests).
    pub link: LinkOptions,
    /// Opus settings.
    pub encoder: EncoderConfig,
    /// Jitter buffer settings.
    pub jitter: JitterConfig,
    /// VAD settings.
    pub vad: VadConfig,
    /// Media seconds per wall second of the paced backends (1.0 for real
    /// devices). Tests run WAV backends faster than real time and pass the
    /// same factor here so that the jitter buffer measures time in media ms.
    pub time_scale: f64,
    /// How often a [`CallEvent::Stats`] is sent.
    pub stats_every: Duration,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            mode: VoiceMode::Vad,
            muted: false,
            link: LinkOptions::default(),
            encoder: EncoderConfig::default(),
            jitter: JitterConfig::default(),
            vad: VadConfig::default(),
            time_scale: 1.0,
            stats_every: Duration::from_secs(1),
        }
    }
}

/// One remote speaker's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeakerStats {
    /// The speaker's session.
    pub session: u64,
    /// Its jitter buffer's counters (received, lost, late, fec, plc…).
    pub jitter: JitterStats,
    /// Frames decoded from its own packet.
    pub decoded: u64,
}

/// The call's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct CallStats {
    /// UDP or TCP.
    pub transport: TransportKind,
    /// Frames taken from the input.
    pub frames_captured: u64,
    /// Audio packets sent.
    pub packets_sent: u64,
    /// Frames not sent (muted, VAD silence, push-to-talk released).
    pub frames_suppressed: u64,
    /// Audio packets received (after any injected loss).
    pub packets_received: u64,
    /// Audio packets dropped by the test loss injection.
    pub injected_losses: u64,
    /// Keepalive probes sent.
    pub probes_sent: u64,
    /// Last probe round trip, µs.
    pub rtt_us: Option<u64>,
    /// Frames handed to the output.
    pub frames_played: u64,
    /// Per remote speaker, by session.
    pub speakers: Vec<SpeakerStats>,
}

/// Something the GUI may want to show.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// The voice path is bound over this transport (again, after it was
    /// lost and bound anew).
    Transport(TransportKind),
    /// A speaker (our own session included) started or stopped talking.
    Speaking {
        /// Who.
        session: u64,
        /// Talking now.
        active: bool,
    },
    /// Periodic figures.
    Stats(CallStats),
    /// The input ended (end of a WAV file, device lost); the call goes on
    /// listening.
    InputEnded,
    /// Something broke: the voice connection closed (the engine then binds
    /// again by itself, with the same token, until the server's `timeout_ms`;
    /// a later `Transport` event says it worked), the path is lost for
    /// good, the output stopped.
    Error(String),
}

/// Switches shared between the handle and the threads.
#[derive(Debug, Default)]
struct Controls {
    /// Muted: nothing is sent.
    muted: AtomicBool,
    /// [`VoiceMode`] as a number.
    mode: AtomicU8,
    /// The push-to-talk key is held.
    ptt: AtomicBool,
    /// The threads should end.
    stop: AtomicBool,
    /// Capture counters (the capture thread writes, the playback thread
    /// puts them into the stats).
    captured: AtomicU64,
    /// Packets sent.
    sent: AtomicU64,
    /// Frames suppressed.
    suppressed: AtomicU64,
}

fn mode_to_u8(m: VoiceMode) -> u8 {
    match m {
        VoiceMode::Vad => 0,
        VoiceMode::PushToTalk => 1,
        VoiceMode::AlwaysOn => 2,
    }
}

fn mode_from_u8(m: u8) -> VoiceMode {
    match m {
        1 => VoiceMode::PushToTalk,
        2 => VoiceMode::AlwaysOn,
        _ => VoiceMode::Vad,
    }
}

/// The entry point.
pub struct Call;

impl Call {
    /// Starts a call with what `voice_joined` said. `server_ip` is the chat
    /// server's address (the voice port is on the same IP). Opens the input
    /// and output first (so a missing device is [`CallError::Audio`] at
    /// once; a machine without a microphone can still listen with a
    /// [`SilenceInput`](crate::audio::silence::SilenceInput)), then binds
    /// the voice path, which blocks up to ~1 s more when UDP is blocked and
    /// TCP is tried: call it off the UI thread.
    pub fn start(
        joined: &VoiceJoined,
        server_ip: IpAddr,
        input: Box<dyn AudioInput>,
        output: Box<dyn AudioOutput>,
        options: CallOptions,
    ) -> Result<CallHandle, CallError> {
        // Devices first: a missing microphone is reported at once, before
        // any time is spent binding the voice path.
        let capture = input.start()?;
        let playback = output.start()?;
        let encoder = Encoder::new(options.encoder)?;
        let server = SocketAddr::new(server_ip, joined.port);
        let link = VoiceLink::connect(
            server,
            joined.session,
            &joined.token,
            joined.keepalive_ms,
            &options.link,
        )?;
        let controls = Arc::new(Controls::default());
        controls.muted.store(options.muted, Ordering::Relaxed);
        controls
            .mode
            .store(mode_to_u8(options.mode), Ordering::Relaxed);
        let (events_tx, events) = mpsc::channel();
        let kind = link.kind();
        let _ = events_tx.send(CallEvent::Transport(kind));
        let stats = Arc::new(Mutex::new(CallStats {
            transport: kind,
            frames_captured: 0,
            packets_sent: 0,
            frames_suppressed: 0,
            packets_received: 0,
            injected_losses: 0,
            probes_sent: 0,
            rtt_us: None,
            frames_played: 0,
            speakers: Vec::new(),
        }));
        // The capture thread sends through whichever link is current: the
        // playback thread replaces it when the voice path has to be bound
        // again.
        let sender = Arc::new(Mutex::new(link.sender()));
        let rebind = Rebind {
            server,
            session: joined.session,
            token: joined.token.clone(),
            keepalive_ms: joined.keepalive_ms,
            give_up_after: Duration::from_millis(u64::from(joined.timeout_ms.max(1000))),
            options: options.link.clone(),
        };
        let cap = Capturing {
            session: joined.session,
            capture,
            encoder,
            gate: Gate::new(options.vad),
            sender: sender.clone(),
            controls: controls.clone(),
            events: events_tx.clone(),
        };
        let capture_thread = thread::Builder::new()
            .name("call-capture".into())
            .spawn(move || cap.run())
            .map_err(CallError::Thread)?;
        let play = Playing {
            session: joined.session,
            playback,
            link,
            sender,
            rebind,
            rebinding: None,
            base: LinkTotals::default(),
            speakers: BTreeMap::new(),
            controls: controls.clone(),
            events: events_tx,
            stats: stats.clone(),
            jitter: options.jitter,
            time_scale: options.time_scale,
            stats_every: options.stats_every,
            rtt_us: None,
            frames_played: 0,
        };
        let playback_thread = thread::Builder::new()
            .name("call-playback".into())
            .spawn(move || play.run());
        let playback_thread = match playback_thread {
            Ok(t) => t,
            Err(e) => {
                controls.stop.store(true, Ordering::Relaxed);
                let _ = capture_thread.join();
                return Err(CallError::Thread(e));
            }
        };
        Ok(CallHandle {
            session: joined.session,
            controls,
            events,
            stats,
            threads: vec![capture_thread, playback_thread],
        })
    }
}

/// Controls a running call. Dropping it stops the call.
pub struct CallHandle {
    /// Our session.
    session: u64,
    /// Switches.
    controls: Arc<Controls>,
    /// Events from the threads.
    events: Receiver<CallEvent>,
    /// The latest figures (updated every frame played).
    stats: Arc<Mutex<CallStats>>,
    /// Capture and playback threads.
    threads: Vec<thread::JoinHandle<()>>,
}

impl CallHandle {
    /// Our session id in the call.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Mutes or unmutes the microphone locally (nothing is sent while
    /// muted; keepalives continue). Also send `voice_mute` on the chat
    /// connection so the others see it.
    pub fn set_muted(&self, muted: bool) {
        self.controls.muted.store(muted, Ordering::Relaxed);
    }

    /// Whether the microphone is muted.
    pub fn is_muted(&self) -> bool {
        self.controls.muted.load(Ordering::Relaxed)
    }

    /// VAD, push-to-talk or always on.
    pub fn set_mode(&self, mode: VoiceMode) {
        self.controls
            .mode
            .store(mode_to_u8(mode), Ordering::Relaxed);
    }

    /// The push-to-talk key went down (`true`) or up.
    pub fn set_ptt(&self, pressed: bool) {
        self.controls.ptt.store(pressed, Ordering::Relaxed);
    }

    /// Events (transport, who speaks, stats, errors). Poll with `try_recv`
    /// from the UI, or block in a worker.
    pub fn events(&self) -> &Receiver<CallEvent> {
        &self.events
    }

    /// The latest figures.
    pub fn stats(&self) -> CallStats {
        match self.stats.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Stops the call (threads end, devices close, a WAV output writes its
    /// file) and returns the final figures. Send `voice_leave` on the chat
    /// connection too.
    pub fn stop(mut self) -> CallStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        self.controls.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for CallHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The capture thread's state.
struct Capturing {
    /// Our session.
    session: u64,
    /// The input.
    capture: Capture,
    /// Opus.
    encoder: Encoder,
    /// Mute / PTT / VAD.
    gate: Gate,
    /// Where packets go (replaced when the path is bound again).
    sender: Arc<Mutex<LinkSender>>,
    /// Switches and counters.
    controls: Arc<Controls>,
    /// Events.
    events: Sender<CallEvent>,
}

impl Capturing {
    fn run(mut self) {
        let mut rng = rand::rng();
        // Random starting points, as RTP does, so a rejoining member is not
        // mistaken for its old stream.
        let mut seq: u16 = rng.random();
        let mut ts: u32 = rng.random();
        let mut speaking = false;
        let c = self.controls.clone();
        while !c.stop.load(Ordering::Relaxed) {
            let frame = match self.capture.frames.recv_timeout(Duration::from_millis(100)) {
                Ok(f) => f,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    if speaking {
                        let _ = self.events.send(CallEvent::Speaking {
                            session: self.session,
                            active: false,
                        });
                    }
                    let _ = self.events.send(CallEvent::InputEnded);
                    return;
                }
            };
            c.captured.fetch_add(1, Ordering::Relaxed);
            let send = self.gate.decide(
                &frame,
                mode_from_u8(c.mode.load(Ordering::Relaxed)),
                c.muted.load(Ordering::Relaxed),
                c.ptt.load(Ordering::Relaxed),
            );
            if send != speaking {
                speaking = send;
                let _ = self.events.send(CallEvent::Speaking {
                    session: self.session,
                    active: send,
                });
            }
            if send {
                match self.encoder.encode(&frame) {
                    Ok(p) => match self
                        .sender
                        .lock()
                        .map_err(|_| std::io::Error::other("lock"))
                        .and_then(|s| s.send_audio(seq, ts, &p))
                    {
                        Ok(()) => {
                            seq = seq.wrapping_add(1);
                            c.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            let _ = self
                                .events
                                .send(CallEvent::Error(format!("voice send: {e}")));
                        }
                    },
                    Err(e) => {
                        let _ = self.events.send(CallEvent::Error(e.to_string()));
                    }
                }
            } else {
                c.suppressed.fetch_add(1, Ordering::Relaxed);
            }
            ts = ts.wrapping_add(FRAME as u32);
        }
    }
}

/// One remote speaker on the playback side.
struct Speaker {
    /// Its packets.
    jb: JitterBuffer,
    /// Its decoder (Opus state is per stream).
    dec: Decoder,
    /// Frames decoded from their own packets.
    decoded: u64,
    /// Whether we told the GUI it is speaking.
    active: bool,
    /// Quiet frames in a row (for the speaking indicator's hangover, and
    /// to forget a speaker gone for a minute: members who leave and come
    /// back get new sessions, so old entries would pile up).
    quiet: u32,
}

impl Speaker {
    /// Takes one frame from the jitter buffer and decodes it; `true` when it
    /// came from a packet (its own or the next one's FEC).
    fn play(&mut self) -> (Option<Vec<i16>>, bool) {
        match self.jb.pop() {
            Playout::Packet(p) => {
                self.decoded += 1;
                (Some(self.dec.decode(&p).0), true)
            }
            Playout::Fec(p) => (Some(self.dec.decode_fec(&p).0), true),
            Playout::Conceal => (Some(self.dec.conceal().0), false),
            Playout::Silence => (None, false),
        }
    }
}

/// The playback thread's state.
struct Playing {
    /// Our session (our own packets never come back, but be safe).
    session: u64,
    /// The output.
    playback: Playback,
    /// The voice path (its receiver channel is read here).
    link: VoiceLink,
    /// The capture thread's handle on the current link.
    sender: Arc<Mutex<LinkSender>>,
    /// What binding the path again takes.
    rebind: Rebind,
    /// A rebinding in progress: its result comes here.
    rebinding: Option<Receiver<Result<VoiceLink, TransportError>>>,
    /// Counters of the links replaced so far (stats stay cumulative).
    base: LinkTotals,
    /// Remote speakers by session.
    speakers: BTreeMap<u64, Speaker>,
    /// Switches and capture counters.
    controls: Arc<Controls>,
    /// Events.
    events: Sender<CallEvent>,
    /// Shared figures.
    stats: Arc<Mutex<CallStats>>,
    /// Jitter settings for new speakers.
    jitter: JitterConfig,
    /// See [`CallOptions::time_scale`].
    time_scale: f64,
    /// See [`CallOptions::stats_every`].
    stats_every: Duration,
    /// Last probe round trip.
    rtt_us: Option<u64>,
    /// Frames handed to the output.
    frames_played: u64,
}

/// Frames of quiet before a speaker is shown as not speaking (200 ms).
const SPEAKING_HANGOVER: u32 = 10;
/// A decoded frame louder than this counts as speech for the indicator.
const SPEAKING_DBFS: f32 = -45.0;
/// Frames without sound after which a speaker's decoder and buffer are
/// dropped (60 s); a new packet from it starts afresh.
const FORGET_AFTER_FRAMES: u32 = 3000;
/// A frame quieter than this may be skipped to reduce the delay.
const SKIP_DBFS: f32 = -40.0;

/// What it takes to bind the voice path again after it closed (a TCP
/// connection cut): the server keeps the member in the call, and its token
/// valid, for `timeout_ms` (protocol §16.3).
#[derive(Debug, Clone)]
struct Rebind {
    /// The voice port.
    server: SocketAddr,
    /// Our session.
    session: u64,
    /// The token from `voice_joined`.
    token: Vec<u8>,
    /// Keepalive interval.
    keepalive_ms: u32,
    /// Stop trying after this long (the server's `timeout_ms`).
    give_up_after: Duration,
    /// UDP first or forced TCP, loss injection.
    options: LinkOptions,
}

/// Counters carried over from replaced links.
#[derive(Debug, Clone, Copy, Default)]
struct LinkTotals {
    /// Audio packets received.
    received: u64,
    /// Injected losses.
    injected: u64,
    /// Probes sent.
    probes: u64,
}

impl Playing {
    /// The path closed: bind again on a thread (it may take a second or
    /// more), trying every half second until the server would have dropped
    /// us from the call anyway.
    fn start_rebind(&mut self) {
        let (tx, rx) = mpsc::channel();
        let r = self.rebind.clone();
        let controls = self.controls.clone();
        let spawned = thread::Builder::new()
            .name("call-rebind".into())
            .spawn(move || {
                let deadline = Instant::now() + r.give_up_after;
                loop {
                    let result = VoiceLink::connect(
                        r.server,
                        r.session,
                        &r.token,
                        r.keepalive_ms,
                        &r.options,
                    );
                    let give_up =
                        Instant::now() >= deadline || controls.stop.load(Ordering::Relaxed);
                    if result.is_ok() || give_up {
                        let _ = tx.send(result);
                        return;
                    }
                    thread::sleep(Duration::from_millis(500));
                }
            });
        match spawned {
            Ok(_) => self.rebinding = Some(rx),
            Err(e) => {
                let _ = self
                    .events
                    .send(CallEvent::Error(format!("call thread: {e}")));
            }
        }
    }

    /// Whether a rebinding finished with a new link (now in use).
    fn rebound(&mut self) -> bool {
        let Some(rx) = &self.rebinding else {
            return false;
        };
        match rx.try_recv() {
            Ok(Ok(link)) => {
                let c = self.link.counters();
                self.base.received += c.audio_received.load(Ordering::Relaxed);
                self.base.injected += c.injected_losses.load(Ordering::Relaxed);
                self.base.probes += c.probes_sent.load(Ordering::Relaxed);
                if let Ok(mut s) = self.sender.lock() {
                    *s = link.sender();
                }
                let kind = link.kind();
                self.link = link;
                self.rebinding = None;
                let _ = self.events.send(CallEvent::Transport(kind));
                true
            }
            Ok(Err(e)) => {
                self.rebinding = None;
                let _ = self
                    .events
                    .send(CallEvent::Error(format!("the voice path is lost: {e}")));
                false
            }
            Err(mpsc::TryRecvError::Empty) => false,
            Err(mpsc::TryRecvError::Disconnected) => {
                self.rebinding = None;
                false
            }
        }
    }

    fn run(mut self) {
        let t0 = Instant::now();
        let mut last_stats = Instant::now();
        let mut closed = false;
        while !self.controls.stop.load(Ordering::Relaxed) {
            let now_ms = t0.elapsed().as_secs_f64() * 1000.0 * self.time_scale;
            let demand = self
                .playback
                .demand
                .recv_timeout(Duration::from_millis(100));
            if !closed {
                closed = self.drain(now_ms);
                if closed {
                    self.start_rebind();
                }
            } else if self.rebound() {
                closed = false;
            }
            match demand {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self
                        .events
                        .send(CallEvent::Error("the audio output stopped".into()));
                    break;
                }
            }
            let frame = self.next_frame();
            self.frames_played += 1;
            if self.playback.frames.send(frame).is_err() {
                let _ = self
                    .events
                    .send(CallEvent::Error("the audio output stopped".into()));
                break;
            }
            let snapshot = self.snapshot();
            if last_stats.elapsed() >= self.stats_every {
                last_stats = Instant::now();
                let _ = self.events.send(CallEvent::Stats(snapshot.clone()));
            }
            if let Ok(mut s) = self.stats.lock() {
                *s = snapshot;
            }
        }
        let snapshot = self.snapshot();
        if let Ok(mut s) = self.stats.lock() {
            *s = snapshot;
        }
    }

    /// Moves incoming packets into the jitter buffers; `true` when the
    /// path closed.
    fn drain(&mut self, now_ms: f64) -> bool {
        while let Ok(m) = self.link.incoming().try_recv() {
            match m {
                Incoming::Audio {
                    session,
                    seq,
                    ts,
                    payload,
                } if session != self.session => {
                    let sp = match self.speakers.entry(session) {
                        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::btree_map::Entry::Vacant(v) => match Decoder::new() {
                            Ok(dec) => v.insert(Speaker {
                                jb: JitterBuffer::new(self.jitter),
                                dec,
                                decoded: 0,
                                active: false,
                                quiet: 0,
                            }),
                            Err(e) => {
                                let _ = self.events.send(CallEvent::Error(e.to_string()));
                                continue;
                            }
                        },
                    };
                    sp.jb.push(seq, ts, payload, now_ms);
                }
                Incoming::Audio { .. } => {}
                Incoming::ProbeAck { rtt_us } => self.rtt_us = Some(rtt_us),
                Incoming::Closed(why) => {
                    let _ = self.events.send(CallEvent::Error(why));
                    return true;
                }
            }
        }
        false
    }

    fn next_frame(&mut self) -> Vec<i16> {
        let mut frames: Vec<Vec<i16>> = Vec::with_capacity(self.speakers.len());
        for (&session, sp) in self.speakers.iter_mut() {
            let (mut pcm, mut real) = sp.play();
            if sp.jb.wants_shrink() && pcm.as_deref().is_some_and(|f| frame_dbfs(f) < SKIP_DBFS) {
                // Too much delay buffered, and this frame is quiet: skip it
                // (it was decoded, so the decoder state stays continuous).
                (pcm, real) = sp.play();
                sp.jb.shrunk();
            }
            let loud = real
                && pcm
                    .as_deref()
                    .is_some_and(|f| frame_dbfs(f) > SPEAKING_DBFS);
            if loud {
                sp.quiet = 0;
            } else {
                sp.quiet = sp.quiet.saturating_add(1);
            }
            let active = loud || (sp.active && sp.quiet < SPEAKING_HANGOVER);
            if active != sp.active {
                sp.active = active;
                let _ = self.events.send(CallEvent::Speaking { session, active });
            }
            if let Some(f) = pcm {
                frames.push(f);
            }
        }
        self.speakers
            .retain(|_, sp| sp.quiet < FORGET_AFTER_FRAMES || !sp.jb.is_empty());
        let refs: Vec<&[i16]> = frames.iter().map(Vec::as_slice).collect();
        mixer::mix(&refs)
    }

    fn snapshot(&self) -> CallStats {
        let c = self.link.counters();
        let b = self.base;
        CallStats {
            transport: self.link.kind(),
            frames_captured: self.controls.captured.load(Ordering::Relaxed),
            packets_sent: self.controls.sent.load(Ordering::Relaxed),
            frames_suppressed: self.controls.suppressed.load(Ordering::Relaxed),
            packets_received: b.received + c.audio_received.load(Ordering::Relaxed),
            injected_losses: b.injected + c.injected_losses.load(Ordering::Relaxed),
            probes_sent: b.probes + c.probes_sent.load(Ordering::Relaxed),
            rtt_us: self.rtt_us,
            frames_played: self.frames_played,
            speakers: self
                .speakers
                .iter()
                .map(|(&session, sp)| SpeakerStats {
                    session,
                    jitter: sp.jb.stats(),
                    decoded: sp.decoded,
                })
                .collect(),
        }
    }
}
