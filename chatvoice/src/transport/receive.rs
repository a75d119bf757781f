//! The receive thread: reads packets from the socket (the loops are in
//! `udp.rs` and `tcp.rs`), drops audio at the receive-side loss rate for
//! tests, matches `probe_ack`s to the probes in flight for a round trip
//! (and the loss estimate, `probe.rs`), notes when the server was last
//! heard (on UDP a long silence means fail over to TCP), and hands the rest to the caller as [`Incoming`] through a channel; when
//! the path ends it sends [`Incoming::Closed`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use chatcore::protocol::voice::VoicePacket;
use rand::Rng;
use rand::rngs::StdRng;

use super::sender::{Shared, Wire};

/// Something that came in on the voice path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Audio from another member.
    Audio {
        /// The speaker's session.
        session: u64,
        /// Its packet sequence number.
        seq: u16,
        /// Its timestamp (48 kHz samples).
        ts: u32,
        /// One Opus packet.
        payload: Vec<u8>,
    },
    /// The answer to a probe, with the round-trip time.
    ProbeAck {
        /// Round trip in microseconds.
        rtt_us: u64,
    },
    /// The path is gone (the TCP connection closed); nothing follows.
    Closed(String),
}

/// The receive thread's state.
pub(super) struct Receiving {
    /// Shared with the senders (for keepalive probes and counters).
    pub(super) shared: Arc<Shared>,
    /// Where incoming packets go.
    pub(super) tx: Sender<Incoming>,
    /// Set when the link closes.
    pub(super) stop: Arc<AtomicBool>,
    /// Probe after this much sending silence.
    pub(super) keepalive: Duration,
    /// On UDP: probe this often whatever else is sent (liveness and the
    /// loss estimate); `None` on TCP (keepalives only when quiet).
    pub(super) probe_every: Option<Duration>,
    /// When the last probe went out.
    pub(super) last_probe: Instant,
    /// The last probes' fates (answered or not), oldest first, at most
    /// `probe::LOSS_WINDOW`: the sliding window of the loss estimate.
    pub(super) outcomes: VecDeque<bool>,
    /// Test hook: probability of dropping each received probe ack.
    pub(super) probe_ack_loss: f64,
    /// Receive-side loss injection probability.
    pub(super) recv_loss: f64,
    /// Random numbers for it.
    pub(super) rng: StdRng,
    /// Probes in flight: (nonce, sent at), for round-trip times.
    pub(super) probes: Vec<(u32, Instant)>,
    /// The next probe's nonce.
    pub(super) nonce: u32,
    /// Where an audio packet is opened (reused).
    pub(super) opened: Vec<u8>,
}

impl Receiving {
    pub(super) fn run(mut self, reader: Wire) {
        let tick = Duration::from_millis(50).min(self.keepalive);
        let why = match reader {
            Wire::Udp(s) => self.run_udp(&s, tick),
            Wire::Tcp(s) => match s.into_inner() {
                Ok(s) => self.run_tcp(s, tick),
                Err(_) => "lock poisoned".to_owned(),
            },
        };
        if !self.stop.load(Ordering::Relaxed) {
            let _ = self.tx.send(Incoming::Closed(why));
        }
    }

    /// Handles one packet; `false` when the consumer is gone.
    pub(super) fn handle(&mut self, buf: &[u8]) -> bool {
        let parsed = VoicePacket::parse(buf);
        if parsed.is_ok() {
            self.shared.heard();
        }
        let msg = match parsed {
            Ok(VoicePacket::Audio { .. }) => {
                if self.recv_loss > 0.0 && self.rng.random_bool(self.recv_loss.clamp(0.0, 1.0)) {
                    self.shared
                        .counters
                        .injected_losses
                        .fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                // Forged, replayed or unknown-epoch packets are counted by
                // the keys and never played.
                let Ok(o) = self.shared.keys.open(buf, &mut self.opened) else {
                    return true;
                };
                self.shared
                    .counters
                    .audio_received
                    .fetch_add(1, Ordering::Relaxed);
                Incoming::Audio {
                    session: o.session,
                    // The jitter buffer's sequence: the counter's low bits.
                    seq: o.counter as u16,
                    ts: o.ts,
                    payload: self.opened.clone(),
                }
            }
            Ok(VoicePacket::ProbeAck { nonce, .. }) => {
                if self.probe_ack_loss > 0.0
                    && self.rng.random_bool(self.probe_ack_loss.clamp(0.0, 1.0))
                {
                    // Lost on the way: the probe will be given up on.
                    return true;
                }
                let Some(i) = self.probes.iter().position(|(n, _)| *n == nonce) else {
                    return true;
                };
                let (_, at) = self.probes.remove(i);
                self.settled(true);
                Incoming::ProbeAck {
                    rtt_us: at.elapsed().as_micros() as u64,
                }
            }
            // `bound` or `bind_challenge` again, or anything else: nothing
            // to do.
            _ => return true,
        };
        self.tx.send(msg).is_ok()
    }
}
