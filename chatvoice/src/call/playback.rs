//! The playback thread: on each demand from the output, moves incoming
//! packets into one jitter buffer per speaker, takes one frame from each
//! (skipping a quiet one when too much delay is buffered), updates the
//! speaking indicators, mixes with the soft limiter (the mix also goes to
//! the echo canceller's reference, `echo.rs`), and keeps the figures
//! current. When the path closes, or UDP goes quiet, or (on TCP) UDP may
//! work again, it binds a new link and switches to it (`rebind.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::adapt::AdaptFigures;
use super::controls::Controls;
use super::events::CallEvent;
use super::rebind::{LinkTotals, Pending, Rebind};
use super::speaker::Speaker;
use super::stats::{CallStats, SpeakerStats};
use crate::audio::Playback;
use crate::codec::Decoder;
use crate::echo::RenderTap;
use crate::jitter::{JitterBuffer, JitterConfig};
use crate::mixer;
use crate::transport::{Incoming, LinkSender, VoiceLink};
use crate::vad::frame_dbfs;

/// The playback thread's state.
pub(super) struct Playing {
    /// Our session (our own packets never come back, but be safe).
    pub(super) session: u64,
    /// The output.
    pub(super) playback: Playback,
    /// The voice path (its receiver channel is read here).
    pub(super) link: VoiceLink,
    /// The capture thread's handle on the current link.
    pub(super) sender: Arc<Mutex<LinkSender>>,
    /// What binding the path again takes.
    pub(super) rebind: Rebind,
    /// A rebinding (or switch of path) in progress.
    pub(super) rebinding: Option<Pending>,
    /// When UDP was last tried while on TCP (`rebind.rs`).
    pub(super) last_udp_try: Instant,
    /// When a fail-over to TCP was last tried (`rebind.rs`).
    pub(super) last_failover_try: Instant,
    /// Counters of the links replaced so far (stats stay cumulative).
    pub(super) base: LinkTotals,
    /// Remote speakers by session.
    pub(super) speakers: BTreeMap<u64, Speaker>,
    /// Switches and capture counters.
    pub(super) controls: Arc<Controls>,
    /// Events.
    pub(super) events: Sender<CallEvent>,
    /// Shared figures.
    pub(super) stats: Arc<Mutex<CallStats>>,
    /// Jitter settings for new speakers.
    pub(super) jitter: JitterConfig,
    /// See [`CallOptions::time_scale`](super::CallOptions::time_scale).
    pub(super) time_scale: f64,
    /// See [`CallOptions::stats_every`](super::CallOptions::stats_every).
    pub(super) stats_every: Duration,
    /// Last probe round trip.
    pub(super) rtt_us: Option<u64>,
    /// Frames handed to the output.
    pub(super) frames_played: u64,
    /// Each played frame goes to the echo canceller (capture thread) too.
    pub(super) render_tap: RenderTap,
    /// The encoder's settings (the capture thread adapts them).
    pub(super) adapt: Arc<AdaptFigures>,
    /// Switches of path so far.
    pub(super) path_switches: u64,
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

impl Playing {
    pub(super) fn run(mut self) {
        let t0 = Instant::now();
        let mut last_stats = Instant::now();
        let mut closed = false;
        while !self.controls.stop.load(Ordering::Relaxed) {
            let now_ms = t0.elapsed().as_secs_f64() * 1000.0 * self.time_scale;
            let demand = self
                .playback
                .demand
                .recv_timeout(Duration::from_millis(100));
            // A new link first (a switch of path), then what the current
            // one has, then whether the path should change.
            if self.rebound(now_ms) {
                closed = false;
            }
            if !closed {
                closed = self.drain(now_ms);
            }
            self.check_path(closed);
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
            self.render_tap.offer(&frame);
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
    /// path closed (an error for the user only when no switch of path is
    /// under way: the server closes the old TCP connection once the new
    /// path is bound).
    pub(super) fn drain(&mut self, now_ms: f64) -> bool {
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
                    if self.rebinding.is_none() {
                        let _ = self.events.send(CallEvent::Error(why));
                    }
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
        let sealed = self.rebind.keys.open_stats();
        CallStats {
            transport: self.link.kind(),
            frames_captured: self.controls.captured.load(Ordering::Relaxed),
            packets_sent: self.controls.sent.load(Ordering::Relaxed),
            frames_suppressed: self.controls.suppressed.load(Ordering::Relaxed),
            packets_received: b.received + c.audio_received.load(Ordering::Relaxed),
            injected_losses: b.injected + c.injected_losses.load(Ordering::Relaxed),
            probes_sent: b.probes + c.probes_sent.load(Ordering::Relaxed),
            packets_forged: sealed.forged,
            packets_replayed: sealed.replayed,
            packets_unknown_epoch: sealed.unknown_epoch,
            rtt_us: self.rtt_us,
            path_loss: self.adapt.loss(),
            encoder_bitrate: self.adapt.bitrate.load(Ordering::Relaxed),
            encoder_loss_pct: self.adapt.loss_pct.load(Ordering::Relaxed),
            path_switches: self.path_switches,
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
