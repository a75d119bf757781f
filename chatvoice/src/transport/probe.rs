//! Probes: on UDP a `probe` goes out every `probe_interval` (250 ms)
//! whatever else is sent, because its acks are how the link notices that
//! UDP stopped working (nothing heard for `udp_dead_after`: the call fails
//! over to TCP) and the share left unanswered is the loss this client can
//! observe on its own path (its upstream and downstream together; the
//! encoder adapts to it). On TCP a probe goes out only when nothing was
//! sent for the keepalive interval (so a silent or muted member stays in
//! the call). Each probe's nonce and time are remembered (at most 8), so the
//! `probe_ack` gives a round trip (matched in `receive.rs`); one unanswered
//! for [`PROBE_LOST_AFTER`] (or pushed out of the 8 remembered) counts as
//! lost. The estimate is over the last
//! [`LOSS_WINDOW`] probes (5 s on UDP).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chatcore::protocol::voice::VoicePacket;

use super::receive::Receiving;

/// A probe unanswered this long is lost (a round trip is far shorter).
pub(super) const PROBE_LOST_AFTER: Duration = Duration::from_secs(1);
/// Probes in the loss estimate's sliding window.
pub(super) const LOSS_WINDOW: usize = 20;
/// Probes remembered while in flight.
const IN_FLIGHT: usize = 8;

impl Receiving {
    pub(super) fn keepalive_due(&mut self) {
        while self
            .probes
            .first()
            .is_some_and(|(_, at)| at.elapsed() >= PROBE_LOST_AFTER)
        {
            self.probes.remove(0);
            self.settled(false);
        }
        let due = match self.probe_every {
            Some(every) => self.last_probe.elapsed() >= every,
            None => {
                let last = self.shared.last_send_us.load(Ordering::Relaxed);
                let now = self.shared.epoch.elapsed().as_micros() as u64;
                now.saturating_sub(last) >= self.keepalive.as_micros() as u64
            }
        };
        if due {
            self.last_probe = Instant::now();
            self.nonce = self.nonce.wrapping_add(1);
            let p = VoicePacket::Probe {
                session: self.shared.session,
                nonce: self.nonce,
            };
            if self.shared.send(&p).is_ok() {
                self.shared
                    .counters
                    .probes_sent
                    .fetch_add(1, Ordering::Relaxed);
                self.probes.push((self.nonce, Instant::now()));
                if self.probes.len() > IN_FLIGHT {
                    self.probes.remove(0);
                    self.settled(false);
                }
            }
        }
    }

    /// One probe's fate is known: answered or lost. Updates the sliding
    /// window and the shared estimate.
    pub(super) fn settled(&mut self, answered: bool) {
        if self.outcomes.len() >= LOSS_WINDOW {
            self.outcomes.pop_front();
        }
        self.outcomes.push_back(answered);
        let lost = self.outcomes.iter().filter(|a| !**a).count();
        let permille = (lost * 1000 / self.outcomes.len()) as u32;
        self.shared
            .probe_loss_permille
            .store(permille, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    //! Probes against the fake voice port: sent when silent, answered; on
    //! UDP every probe interval even while audio flows; a black hole shows
    //! as silence and full loss.
    use std::sync::atomic::Ordering;
    use std::thread;
    use std::time::{Duration, Instant};

    use crate::transport::fake::{TOKEN, fake_udp, keys};
    use crate::transport::{Blackhole, Incoming, LinkOptions, VoiceLink};

    #[test]
    fn on_udp_probes_go_out_every_interval_even_while_audio_flows() {
        let addr = fake_udp(0);
        let opts = LinkOptions {
            probe_interval: Duration::from_millis(50),
            ..LinkOptions::default()
        };
        let link = VoiceLink::connect(addr, 5, &TOKEN, 2000, keys(), &opts).expect("bind");
        let tx = link.sender();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(600) {
            tx.send_audio(0, &[1; 50]).expect("send");
            thread::sleep(Duration::from_millis(10));
        }
        // A 2 s keepalive would have sent none while audio flowed.
        let probes = link.counters().probes_sent.load(Ordering::Relaxed);
        assert!(probes >= 5, "{probes} probes in 600 ms");
        assert_eq!(link.probe_loss(), Some(0.0));
        assert!(link.silent_for() < Duration::from_millis(500));
    }

    #[test]
    fn a_udp_black_hole_shows_as_silence_and_every_probe_lost() {
        let addr = fake_udp(0);
        let hole = Blackhole::default();
        let opts = LinkOptions {
            probe_interval: Duration::from_millis(50),
            udp_blackhole: Some(hole.clone()),
            ..LinkOptions::default()
        };
        let link = VoiceLink::connect(addr, 5, &TOKEN, 2000, keys(), &opts).expect("bind");
        hole.set(true);
        let holed = Instant::now();
        // Probes given up on (after 1 s, or pushed out of the 8 in
        // flight): wait for a window of losses.
        let deadline = Instant::now() + Duration::from_secs(20);
        while link.probe_loss().is_none_or(|l| l < 0.5) {
            assert!(Instant::now() < deadline, "{:?}", link.probe_loss());
            thread::sleep(Duration::from_millis(50));
        }
        thread::sleep(Duration::from_millis(1100).saturating_sub(holed.elapsed()));
        assert!(link.silent_for() >= Duration::from_secs(1));
        while link.incoming().try_recv().is_ok() {}
        hole.set(false);
        // Working again: answers come back.
        let m = link
            .incoming()
            .recv_timeout(Duration::from_secs(5))
            .expect("probe_ack");
        assert!(matches!(m, Incoming::ProbeAck { .. }), "{m:?}");
    }

    #[test]
    fn keepalive_probes_go_out_when_silent_and_are_answered() {
        let addr = fake_udp(0);
        let opts = LinkOptions {
            keepalive: Some(Duration::from_millis(20)),
            ..LinkOptions::default()
        };
        let link = VoiceLink::connect(addr, 5, &TOKEN, 2000, keys(), &opts).expect("bind");
        let m = link
            .incoming()
            .recv_timeout(Duration::from_secs(5))
            .expect("probe_ack");
        assert!(matches!(m, Incoming::ProbeAck { .. }), "{m:?}");
        assert!(link.counters().probes_sent.load(Ordering::Relaxed) >= 1);
    }
}
