//! How a voice link is set up: [`LinkOptions`] (timeouts, forced TCP, the
//! tests' loss injection) and the [`TransportKind`] it ended up on. Kept
//! apart because callers (the call engine, tests, benches) build these
//! without touching sockets.

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
        }
    }
}
