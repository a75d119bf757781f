//! [`VoiceLink`]: a bound voice path. `connect` checks the token, binds
//! over UDP unless TCP is forced, falls back to TCP, sets up the shared
//! sending state and starts the receive thread; closing (or dropping) stops
//! that thread and shuts a TCP connection down.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chatcore::protocol::voice::{MAX_OPUS_PAYLOAD, TOKEN_LEN};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::keys::CallKeys;
use super::options::{LinkOptions, TransportKind};
use super::probe::LOSS_WINDOW;
use super::receive::{Incoming, Receiving};
use super::sender::{LinkCounters, LinkSender, NO_ESTIMATE, Shared, Wire};
use super::tcp::bind_tcp;
use super::udp::bind_udp;
use crate::error::TransportError;

/// A bound voice path.
pub struct VoiceLink {
    /// UDP or TCP.
    kind: TransportKind,
    /// Shared with the senders and the receive thread.
    shared: Arc<Shared>,
    /// Incoming packets.
    incoming: Receiver<Incoming>,
    /// Tells the receive thread to end.
    stop: Arc<AtomicBool>,
    /// The receive thread.
    thread: Option<thread::JoinHandle<()>>,
}

impl VoiceLink {
    /// Binds `session` with `token` on the voice port at `server`: UDP
    /// first, then TCP (§16.3). `keepalive_ms` is from `voice_joined`;
    /// `keys` seal what is sent and open what comes in (the same for every
    /// link of one call).
    pub fn connect(
        server: SocketAddr,
        session: u64,
        token: &[u8],
        keepalive_ms: u32,
        keys: Arc<CallKeys>,
        opts: &LinkOptions,
    ) -> Result<Self, TransportError> {
        let token: [u8; TOKEN_LEN] = token
            .try_into()
            .map_err(|_| TransportError::BadToken(token.len()))?;
        let udp = if opts.force_tcp {
            None
        } else {
            bind_udp(server, session, token, opts)?
        };
        let (kind, wire) = match udp {
            Some(s) => (TransportKind::Udp, Wire::Udp(s)),
            None if opts.udp_only => return Err(TransportError::NotBound("UDP")),
            None => {
                tracing::info!("voice: no UDP answer from {server}, using TCP");
                let s = bind_tcp(server, session, token)?;
                (TransportKind::Tcp, Wire::Tcp(Mutex::new(s)))
            }
        };
        let reader = match &wire {
            Wire::Udp(s) => Wire::Udp(s.try_clone()?),
            Wire::Tcp(s) => Wire::Tcp(Mutex::new(
                s.lock()
                    .map_err(|_| io::Error::other("lock"))?
                    .try_clone()?,
            )),
        };
        let shared = Arc::new(Shared {
            session,
            keys,
            wire,
            epoch: Instant::now(),
            last_send_us: AtomicU64::new(0),
            send_loss: opts.send_loss,
            rng: Mutex::new(StdRng::seed_from_u64(opts.loss_seed ^ 0x5eed)),
            counters: LinkCounters::default(),
            last_recv_us: AtomicU64::new(0),
            probe_loss_permille: AtomicU32::new(NO_ESTIMATE),
            blackhole: opts.udp_blackhole.clone(),
        });
        let keepalive = opts
            .keepalive
            .unwrap_or(Duration::from_millis(u64::from(keepalive_ms.max(100))));
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let receiver = Receiving {
            shared: shared.clone(),
            tx,
            stop: stop.clone(),
            keepalive,
            probe_every: (kind == TransportKind::Udp).then_some(opts.probe_interval),
            last_probe: Instant::now(),
            outcomes: VecDeque::with_capacity(LOSS_WINDOW),
            probe_ack_loss: opts.probe_ack_loss,
            recv_loss: opts.recv_loss,
            rng: StdRng::seed_from_u64(opts.loss_seed),
            probes: Vec::new(),
            nonce: 0,
            opened: Vec::with_capacity(MAX_OPUS_PAYLOAD),
        };
        let thread = thread::Builder::new()
            .name("voice-link".into())
            .spawn(move || receiver.run(reader))?;
        Ok(Self {
            kind,
            shared,
            incoming: rx,
            stop,
            thread: Some(thread),
        })
    }

    /// UDP or TCP.
    pub fn kind(&self) -> TransportKind {
        self.kind
    }

    /// A handle for sending audio.
    pub fn sender(&self) -> LinkSender {
        LinkSender {
            shared: self.shared.clone(),
        }
    }

    /// Incoming audio and events.
    pub fn incoming(&self) -> &Receiver<Incoming> {
        &self.incoming
    }

    /// How long nothing arrived from the server on this path (no probe
    /// ack, no audio; counted from the bind): on UDP, the sign that UDP
    /// stopped working.
    pub fn silent_for(&self) -> Duration {
        let last = self.shared.last_recv_us.load(Ordering::Relaxed);
        self.shared
            .epoch
            .elapsed()
            .saturating_sub(Duration::from_micros(last))
    }

    /// The share of recent probes left unanswered (0..1), see
    /// [`LinkSender::probe_loss`].
    pub fn probe_loss(&self) -> Option<f32> {
        self.shared.probe_loss()
    }

    /// The link's counters.
    pub fn counters(&self) -> &LinkCounters {
        &self.shared.counters
    }

    /// Stops the receive thread and closes the socket.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Wire::Tcp(s) = &self.shared.wire
            && let Ok(s) = s.lock()
        {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for VoiceLink {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    //! Connecting with a bad token against the fake voice port: never
    //! bound over either path, a short token refused before any packet.
    use std::time::Duration;

    use chatcore::protocol::voice::TOKEN_LEN;

    use crate::error::TransportError;
    use crate::transport::fake::{fake_tcp, fake_udp, keys};
    use crate::transport::{LinkOptions, VoiceLink};

    #[test]
    fn a_wrong_token_is_never_bound_and_a_short_token_is_refused() {
        let addr = fake_udp(0);
        let opts = LinkOptions {
            udp_bind_timeout: Duration::from_millis(200),
            ..LinkOptions::default()
        };
        let tcp = fake_tcp();
        // Wrong token: UDP stays silent, the TCP fallback too (it has no
        // listener at that port: connection refused, or no `bound`).
        let err = VoiceLink::connect(addr, 5, &[1; TOKEN_LEN], 2000, keys(), &opts).err();
        assert!(err.is_some());
        let err = VoiceLink::connect(
            tcp,
            5,
            &[1; TOKEN_LEN],
            2000,
            keys(),
            &LinkOptions {
                force_tcp: true,
                ..opts.clone()
            },
        )
        .err();
        assert!(
            matches!(err, Some(TransportError::NotBound("TCP"))),
            "{err:?}"
        );
        assert!(matches!(
            VoiceLink::connect(addr, 5, &[1; 3], 2000, keys(), &opts).err(),
            Some(TransportError::BadToken(3))
        ));
    }
}
