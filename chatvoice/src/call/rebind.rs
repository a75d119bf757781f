//! Binding the voice path again, on a helper thread, in three cases (the
//! server accepts a bind of the same session over another path and moves
//! the member there, protocol §16.3):
//! - the path closed (a TCP voice connection cut): the server keeps the
//!   member in the call, and its token valid, for `timeout_ms`, so bind
//!   anew every half second until then;
//! - fail-over: on UDP, nothing heard from the server for `udp_dead_after`
//!   (1.5 s, six probes unanswered): bind over TCP, without the user doing
//!   anything;
//! - back to UDP: while on TCP (not forced), every `udp_retry_every` (2 s)
//!   try a UDP bind; when it works, switch back.
//!
//! When the new link is bound the playback thread swaps the capture
//! thread's sender to it, carries the old link's counters over so the
//! figures stay cumulative, and emits [`CallEvent::Transport`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::events::CallEvent;
use super::playback::Playing;
use crate::error::TransportError;
use crate::transport::{CallKeys, LinkOptions, TransportKind, VoiceLink};

/// What it takes to bind the voice path again after it closed (a TCP
/// connection cut): the server keeps the member in the call, and its token
/// valid, for `timeout_ms` (protocol §16.3).
#[derive(Debug, Clone)]
pub(super) struct Rebind {
    /// The voice port.
    pub(super) server: SocketAddr,
    /// Our session.
    pub(super) session: u64,
    /// The token from `voice_joined`.
    pub(super) token: Vec<u8>,
    /// Keepalive interval.
    pub(super) keepalive_ms: u32,
    /// The call's keys (the new link seals on with the same counter).
    pub(super) keys: Arc<CallKeys>,
    /// Stop trying after this long (the server's `timeout_ms`).
    pub(super) give_up_after: Duration,
    /// UDP first or forced TCP, loss injection.
    pub(super) options: LinkOptions,
}

/// Counters carried over from replaced links.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LinkTotals {
    /// Audio packets received.
    pub(super) received: u64,
    /// Injected losses.
    pub(super) injected: u64,
    /// Probes sent.
    pub(super) probes: u64,
}

/// Least time between two attempts to fail over to TCP (one that failed,
/// e.g. TCP refused too, is not retried in a tight loop).
const FAILOVER_RETRY: Duration = Duration::from_millis(500);

/// Why a new link is being bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// The path closed: UDP first, then TCP, until `give_up_after`.
    Closed,
    /// UDP went quiet: TCP now.
    FailOver,
    /// On TCP: UDP again, once.
    BackToUdp,
}

/// A bind in progress on the helper thread.
pub(super) struct Pending {
    /// Why.
    pub(super) why: Why,
    /// Its result.
    pub(super) rx: mpsc::Receiver<Result<VoiceLink, TransportError>>,
}

impl Playing {
    /// Whether the path should change now (and starts that): the path
    /// closed, UDP went quiet, or it is time to try UDP again.
    pub(super) fn check_path(&mut self, closed: bool) {
        if self.rebinding.is_some() {
            return;
        }
        let o = &self.rebind.options;
        let why = if closed {
            Why::Closed
        } else if self.link.kind() == TransportKind::Udp
            && self.link.silent_for() >= o.udp_dead_after
            && self.last_failover_try.elapsed() >= FAILOVER_RETRY
        {
            self.last_failover_try = Instant::now();
            tracing::info!(
                "voice: nothing heard over UDP for {:?}, failing over to TCP",
                o.udp_dead_after
            );
            Why::FailOver
        } else if self.link.kind() == TransportKind::Tcp
            && !o.force_tcp
            && self.last_udp_try.elapsed() >= o.udp_retry_every
        {
            self.last_udp_try = Instant::now();
            Why::BackToUdp
        } else {
            return;
        };
        self.start_rebind(why);
    }

    /// Binds a new link on a thread (it may take a second or more): for a
    /// closed path trying every half second until the server would have
    /// dropped us from the call anyway; otherwise once.
    pub(super) fn start_rebind(&mut self, why: Why) {
        let (tx, rx) = mpsc::channel();
        let mut r = self.rebind.clone();
        match why {
            Why::Closed => {}
            Why::FailOver => r.options.force_tcp = true,
            Why::BackToUdp => r.options.udp_only = true,
        }
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
                        r.keys.clone(),
                        &r.options,
                    );
                    let give_up = why != Why::Closed
                        || Instant::now() >= deadline
                        || controls.stop.load(Ordering::Relaxed);
                    if result.is_ok() || give_up {
                        let _ = tx.send(result);
                        return;
                    }
                    thread::sleep(Duration::from_millis(500));
                }
            });
        match spawned {
            Ok(_) => self.rebinding = Some(Pending { why, rx }),
            Err(e) => {
                let _ = self
                    .events
                    .send(CallEvent::Error(format!("call thread: {e}")));
            }
        }
    }

    /// Whether a rebinding finished with a new link (now in use). What is
    /// still queued on the old link is taken first, so a switch loses
    /// nothing that already arrived.
    pub(super) fn rebound(&mut self, now_ms: f64) -> bool {
        let Some(Pending { why, rx }) = &self.rebinding else {
            return false;
        };
        let why = *why;
        match rx.try_recv() {
            Ok(Ok(link)) => {
                let _ = self.drain(now_ms);
                let c = self.link.counters();
                self.base.received += c.audio_received.load(Ordering::Relaxed);
                self.base.injected += c.injected_losses.load(Ordering::Relaxed);
                self.base.probes += c.probes_sent.load(Ordering::Relaxed);
                if let Ok(mut s) = self.sender.lock() {
                    *s = link.sender();
                }
                let kind = link.kind();
                tracing::info!(?why, "voice: now on {kind:?}");
                self.link = link;
                self.rebinding = None;
                self.path_switches += 1;
                let _ = self.events.send(CallEvent::Transport(kind));
                true
            }
            Ok(Err(e)) => {
                self.rebinding = None;
                // A failed switch is tried again later; only a path that
                // closed and cannot be bound again is an error.
                if why != Why::Closed {
                    return false;
                }
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
}
