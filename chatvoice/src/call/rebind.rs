//! Binding the voice path again after it closed (a TCP voice connection
//! cut): the server keeps the member in the call, and its token valid, for
//! `timeout_ms` (protocol §16.3), so the playback thread binds anew on a
//! helper thread every half second until then, swaps the capture thread's
//! sender to the new link, and carries the old link's counters over so the
//! figures stay cumulative.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::events::CallEvent;
use super::playback::Playing;
use crate::transport::{CallKeys, LinkOptions, VoiceLink};

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

impl Playing {
    /// The path closed: bind again on a thread (it may take a second or
    /// more), trying every half second until the server would have dropped
    /// us from the call anyway.
    pub(super) fn start_rebind(&mut self) {
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
                        r.keys.clone(),
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
    pub(super) fn rebound(&mut self) -> bool {
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
}
