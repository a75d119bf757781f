//! How a voice link is set up: [`LinkOptions`] (timeouts, forced TCP, the
//! tests' loss injection) and the [`TransportKind`] it ended up on. Kept
//! apart because callers (the call engine, tests, benches) build these
//! without touching sockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Which path the voice packets take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// Datagrams (preferred: no head-of-line blocking).
    Udp,
    /// The TCP fallback on the same port, for networks that block UDP.
    Tcp,
}

/// How the link is set up.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkOptions {
    /// Skip UDP and use TCP at once (a user setting for hostile networks,
    /// and tests of the fallback).
    pub force_tcp: bool,
    /// How long to wait for `bound` over UDP before falling back (§16.3: 1 s).
    pub udp_bind_timeout: Duration,
    /// How often to resend `bind` over UDP (§16.3: 250 ms).
    pub bind_retry: Duration,
    /// Send a probe after this long without sending anything; `None` uses
    /// the `keepalive_ms` the server announced.
    pub keepalive: Option<Duration>,
    /// Test hook: probability (0..1) of dropping each received audio packet.
    pub recv_loss: f64,
    /// Test hook: probability (0..1) of dropping each audio packet to send.
    pub send_loss: f64,
    /// Seed of the loss injection's random numbers.
    pub loss_seed: u64,
    /// How often a probe goes out while on UDP, audio or not (§16.3): the
    /// acks are how the link notices that UDP stopped working, and the
    /// share missing is its loss estimate (250 ms).
    pub probe_interval: Duration,
    /// On UDP, nothing received from the server for this long (no probe
    /// ack, no audio) means UDP stopped working: the call binds over TCP
    /// (1.5 s: six probes in a row unanswered, and the switch done well
    /// within 3 s).
    pub udp_dead_after: Duration,
    /// While on TCP (not forced), how often the call tries to bind over
    /// UDP again in the background, switching back when it works (2 s).
    pub udp_retry_every: Duration,
    /// Bind over UDP only, never falling back to TCP: the call's
    /// background attempts to go back to UDP.
    pub udp_only: bool,
    /// Test hook: while set, UDP is a black hole in both directions
    /// (nothing sent leaves, nothing received is read), as when a network
    /// starts dropping UDP mid-call.
    pub udp_blackhole: Option<Blackhole>,
    /// Test hook: probability (0..1) of dropping each received probe ack,
    /// as lost probes on the path would (drives the loss estimate).
    pub probe_ack_loss: f64,
}

/// A shared switch that black-holes UDP for every link made with it (the
/// tests' way to make UDP stop working mid-call, and work again).
#[derive(Debug, Clone, Default)]
pub struct Blackhole(pub Arc<AtomicBool>);

impl Blackhole {
    /// Whether UDP is black-holed now.
    pub fn on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Starts or stops black-holing UDP.
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }
}

impl PartialEq for Blackhole {
    /// The same switch (two switches never compare equal by their state).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Default for LinkOptions {
    fn default() -> Self {
        Self {
            force_tcp: false,
            udp_bind_timeout: Duration::from_secs(1),
            bind_retry: Duration::from_millis(250),
            keepalive: None,
            recv_loss: 0.0,
            send_loss: 0.0,
            loss_seed: 1,
            probe_interval: Duration::from_millis(250),
            udp_dead_after: Duration::from_millis(1500),
            udp_retry_every: Duration::from_secs(2),
            udp_only: false,
            udp_blackhole: None,
            probe_ack_loss: 0.0,
        }
    }
}
