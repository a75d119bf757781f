//! The call's figures: [`CallStats`] for the whole call (capture, sending,
//! receiving, probes, playback) and [`SpeakerStats`] per remote speaker. The
//! playback thread fills them; the handle and [`CallEvent::Stats`](crate::CallEvent::Stats)
//! hand them out.

use crate::jitter::JitterStats;
use crate::transport::TransportKind;

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
    /// Audio packets refused because they failed authentication (a wrong
    /// key, or bytes changed on the way); never played.
    pub packets_forged: u64,
    /// Audio packets refused as replays (a counter already seen, or older
    /// than the replay window); never played.
    pub packets_replayed: u64,
    /// Audio packets of a key epoch this member holds no key for (sealed
    /// before it joined, or after a key change not yet received, or past
    /// the previous key's grace period); never played.
    pub packets_unknown_epoch: u64,
    /// Last probe round trip, µs.
    pub rtt_us: Option<u64>,
    /// The loss this client measures on its path (0..1): the share of the
    /// last 20 probes left unanswered (0 over TCP); `None` before any.
    pub path_loss: Option<f32>,
    /// The encoder's target bitrate now, bit/s (adapted to `path_loss`,
    /// never above the configured one).
    pub encoder_bitrate: i32,
    /// The packet loss the encoder plans its in-band FEC for now, percent.
    pub encoder_loss_pct: i32,
    /// New paths bound during the call: fail-over to TCP, back to UDP, and
    /// binding again after the path closed.
    pub path_switches: u64,
    /// Frames handed to the output.
    pub frames_played: u64,
    /// Per remote speaker, by session.
    pub speakers: Vec<SpeakerStats>,
}
