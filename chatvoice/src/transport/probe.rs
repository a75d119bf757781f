//! Keepalive probes: when nothing was sent for the keepalive interval the
//! receive thread sends a `probe` (so a silent or muted member stays in the
//! call) and remembers its nonce and time, so the `probe_ack` gives a round
//! trip (matched in `receive.rs`). At most 8 probes are remembered.

use std::sync::atomic::Ordering;
use std::time::Instant;

use chatcore::protocol::voice::VoicePacket;

use super::receive::Receiving;

impl Receiving {
    pub(super) fn keepalive_due(&mut self) {
        let last = self.shared.last_send_us.load(Ordering::Relaxed);
        let now = self.shared.epoch.elapsed().as_micros() as u64;
        if now.saturating_sub(last) >= self.keepalive.as_micros() as u64 {
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
                if self.probes.len() > 8 {
                    self.probes.remove(0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Probes against the fake voice port: sent when silent, answered.
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use crate::transport::fake::{TOKEN, fake_udp, keys};
    use crate::transport::{Incoming, LinkOptions, VoiceLink};

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
