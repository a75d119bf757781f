//! The sending side: the socket ([`Wire`]: UDP, or TCP behind a lock that
//! keeps each length-prefixed packet whole), the state every sender and the
//! receive thread share (session, last send time for keepalives, send-side
//! loss injection, [`LinkCounters`]), and [`LinkSender`], the cloneable
//! handle any thread sends audio through.

use std::io::{self, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chatcore::protocol::voice::{TCP_PREFIX_LEN, VoicePacket};
use rand::Rng;
use rand::rngs::StdRng;

use super::keys::CallKeys;
use super::options::{Blackhole, TransportKind};

/// Counters of a link.
#[derive(Debug, Default)]
pub struct LinkCounters {
    /// Audio packets sent.
    pub audio_sent: AtomicU64,
    /// Audio packets received (after loss injection).
    pub audio_received: AtomicU64,
    /// Audio packets dropped by the loss injection (either direction).
    pub injected_losses: AtomicU64,
    /// Probes sent (keepalives).
    pub probes_sent: AtomicU64,
}

/// The sending half of a socket.
#[derive(Debug)]
pub(super) enum Wire {
    /// A connected UDP socket.
    Udp(UdpSocket),
    /// A TCP stream; the lock keeps each length-prefixed packet whole.
    Tcp(Mutex<TcpStream>),
}

/// State shared by the senders and the receive thread.
#[derive(Debug)]
pub(super) struct Shared {
    /// Our session id (every packet carries it).
    pub(super) session: u64,
    /// The call's keys: audio is sealed and opened with them.
    pub(super) keys: Arc<CallKeys>,
    /// The socket.
    pub(super) wire: Wire,
    /// Start of the link's clock, for `last_send_us`.
    pub(super) epoch: Instant,
    /// When anything was last sent (µs since `epoch`): keepalive is due
    /// only when the path has been quiet.
    pub(super) last_send_us: AtomicU64,
    /// Send-side loss injection probability.
    pub(super) send_loss: f64,
    /// Random numbers for the send-side loss injection.
    pub(super) rng: Mutex<StdRng>,
    /// Counters.
    pub(super) counters: LinkCounters,
    /// When anything from the server last arrived on this path (µs since
    /// `epoch`; binding counts): on UDP, a long silence means UDP stopped
    /// working and the call fails over to TCP.
    pub(super) last_recv_us: AtomicU64,
    /// Share of the recent probes left unanswered, in thousandths
    /// ([`NO_ESTIMATE`] before any probe was settled): the loss this client
    /// can see on its own path, which the encoder adapts to.
    pub(super) probe_loss_permille: AtomicU32,
    /// The tests' UDP black hole, if any.
    pub(super) blackhole: Option<Blackhole>,
}

/// `probe_loss_permille` before any probe was answered or given up on.
pub(super) const NO_ESTIMATE: u32 = u32::MAX;

impl Shared {
    /// UDP or TCP.
    pub(super) fn kind(&self) -> TransportKind {
        match self.wire {
            Wire::Udp(_) => TransportKind::Udp,
            Wire::Tcp(_) => TransportKind::Tcp,
        }
    }

    /// Whether the tests' hook black-holes this path now (UDP only).
    pub(super) fn blackholed(&self) -> bool {
        matches!(self.wire, Wire::Udp(_)) && self.blackhole.as_ref().is_some_and(Blackhole::on)
    }

    /// Notes that something from the server arrived now.
    pub(super) fn heard(&self) {
        self.last_recv_us
            .store(self.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    /// The loss estimate from probes, 0..1, if there is one yet. TCP
    /// delivers everything (its cost is delay): 0.
    pub(super) fn probe_loss(&self) -> Option<f32> {
        if self.kind() == TransportKind::Tcp {
            return Some(0.0);
        }
        match self.probe_loss_permille.load(Ordering::Relaxed) {
            NO_ESTIMATE => None,
            p => Some(p as f32 / 1000.0),
        }
    }
}

impl Shared {
    pub(super) fn send(&self, p: &VoicePacket<'_>) -> io::Result<()> {
        let mut v = vec![0; TCP_PREFIX_LEN];
        p.write(&mut v);
        self.send_framed(v)
    }

    /// Sends one packet that follows `TCP_PREFIX_LEN` spare bytes in
    /// `framed` (filled with the length over TCP, skipped over UDP).
    fn send_framed(&self, mut framed: Vec<u8>) -> io::Result<()> {
        self.last_send_us
            .store(self.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
        match &self.wire {
            // The black hole swallows it, as a network dropping UDP would.
            Wire::Udp(_) if self.blackholed() => Ok(()),
            Wire::Udp(s) => s.send(&framed[TCP_PREFIX_LEN..]).map(drop),
            Wire::Tcp(s) => {
                let len = (framed.len() - TCP_PREFIX_LEN) as u16;
                framed[..TCP_PREFIX_LEN].copy_from_slice(&len.to_be_bytes());
                let mut s = s
                    .lock()
                    .map_err(|_| io::Error::other("voice socket lock poisoned"))?;
                s.write_all(&framed)
            }
        }
    }
}

/// Sends audio on a link; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct LinkSender {
    /// The link's state.
    pub(super) shared: Arc<Shared>,
}

impl LinkSender {
    /// Seals one Opus packet with the call's newest key and sends it as an
    /// audio packet (its counter is the next of this call's).
    pub fn send_audio(&self, ts: u32, payload: &[u8]) -> io::Result<()> {
        let s = &self.shared;
        if s.send_loss > 0.0
            && s.rng
                .lock()
                .map(|mut r| r.random_bool(s.send_loss.clamp(0.0, 1.0)))
                .unwrap_or(false)
        {
            s.counters.injected_losses.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let mut framed = vec![0; TCP_PREFIX_LEN];
        s.keys
            .seal(ts, payload, &mut framed)
            .map_err(io::Error::other)?;
        s.send_framed(framed)?;
        s.counters.audio_sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The share of recent probes left unanswered on this path (0..1, over
    /// the last 20 probes: 5 s on UDP), the loss this client can observe on
    /// its own round trip; `None` until a probe was answered or given up
    /// on; 0 over TCP.
    pub fn probe_loss(&self) -> Option<f32> {
        self.shared.probe_loss()
    }

    /// UDP or TCP.
    pub fn kind(&self) -> TransportKind {
        self.shared.kind()
    }
}

#[cfg(test)]
mod tests {
    //! Loss injection on both sides (this file's send side and the receive
    //! thread's) against the fake voice port: about the requested share,
    //! the same with the same seed.
    use std::thread;
    use std::time::Duration;

    use crate::transport::fake::{TOKEN, audio_back, fake_udp, keys};
    use crate::transport::{LinkOptions, VoiceLink};

    #[test]
    fn injected_loss_drops_about_the_requested_share_repeatably() {
        let run = || {
            let addr = fake_udp(0);
            let opts = LinkOptions {
                send_loss: 0.1,
                recv_loss: 0.1,
                loss_seed: 3,
                ..LinkOptions::default()
            };
            let link = VoiceLink::connect(addr, 5, &TOKEN, 2000, keys(), &opts).expect("bind");
            let tx = link.sender();
            for seq in 0..500u16 {
                tx.send_audio(0, &[1]).expect("send");
                // Paced a little, so loopback buffers never overflow and
                // only the injected losses happen.
                if seq % 10 == 0 {
                    thread::sleep(Duration::from_millis(2));
                }
            }
            audio_back(&link)
        };
        let a = run();
        // Two independent 10 % losses: about 81 % arrive.
        assert!((350..=450).contains(&a.len()), "{}", a.len());
        assert_eq!(a, run(), "same seed, same losses");
    }
}
