//! The timer sweep: handshake deadlines, heartbeat pings, idle timeouts,
//! linger deadlines, each closing within a budget per turn.

use super::{EXPIRE_BUDGET, Reactor};
use crate::protocol::{ErrorCode, LeaveReason, Seq, ServerMessage, encode_server};
use crate::server::conn::Phase;
use crate::server::outbox::error_frame;
use crate::server::room::Outbox;

impl Reactor {
    /// Timers: handshake deadlines, heartbeat pings, idle timeouts, linger
    /// deadlines. One pass over all connections per tick (a quarter
    /// heartbeat): cheap, and no timer structure to keep in sync.
    ///
    /// At most [`EXPIRE_BUDGET`] connections are closed per pass; if more
    /// are due, `sweep_again` makes the next turn (after the events that
    /// arrived meanwhile) run another pass over the rest (`pings` false:
    /// only closes), so a mass expiry is spread over short turns.
    pub(super) fn sweep(&mut self, pings: bool) {
        let heartbeat = self.config.heartbeat();
        let idle = self.config.idle_timeout();
        let mut expired = Vec::new();
        let mut to_ping = Vec::new();
        let mut gone = Vec::new();
        let mut due = 0usize;
        for (key, conn) in &self.conns {
            if conn.doomed {
                continue;
            }
            let close = match conn.phase {
                Phase::Handshake { deadline } => self.now >= deadline,
                Phase::Member => {
                    // An uploader paused for the disk, or a connection the
                    // input budget keeps waiting, is alive: we stopped
                    // reading it, not the other way round.
                    let last = if conn.paused || conn.starved {
                        self.now
                    } else {
                        conn.last_rx
                    };
                    let silent = self.now.saturating_duration_since(last);
                    if silent < idle
                        && pings
                        && silent >= heartbeat
                        && self.now.saturating_duration_since(conn.last_ping) >= heartbeat
                    {
                        to_ping.push(key);
                    }
                    silent >= idle
                }
                Phase::Closing { deadline } => self.now >= deadline,
            };
            if !close {
                continue;
            }
            due += 1;
            if due > EXPIRE_BUDGET {
                continue;
            }
            match conn.phase {
                Phase::Handshake { .. } => expired.push(key),
                _ => gone.push(key),
            }
        }
        self.sweep_again = due > EXPIRE_BUDGET;
        if !expired.is_empty() {
            // One frame shared by every connection that timed out.
            let frame = error_frame(
                ErrorCode::HandshakeTimeout,
                "no hello within the handshake timeout",
                None,
            );
            for key in expired {
                self.stats.errors_sent += 1;
                if let Some(conn) = self.conns.get(key)
                    && conn.tls.as_ref().is_some_and(|t| !t.established)
                {
                    // Stalled in the TLS handshake: the error frame cannot
                    // reach it; the connection closes all the same.
                    self.stats.tls_failures += 1;
                }
                if let Some(conn) = self.conns.get(key)
                    && self.log_gate.allow(conn.addr, self.now)
                {
                    tracing::info!(peer = %conn.peer, code = %ErrorCode::HandshakeTimeout, "protocol error");
                }
                self.ctx().push_private(key, frame.clone());
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.close_reason = Some(LeaveReason::Error);
                }
                self.doom(key, LeaveReason::Error);
            }
        }
        for key in gone {
            match self.conns.get(key).map(|c| c.phase) {
                Some(Phase::Closing { .. }) => self.remove(key),
                Some(_) => self.doom(key, LeaveReason::Timeout),
                None => {}
            }
        }
        if to_ping.is_empty() {
            return;
        }
        self.ping_seq += 1;
        let ping = encode_server(&ServerMessage::Ping(Seq { seq: self.ping_seq }));
        let now = self.now;
        let out = &mut self.ctx().out;
        for key in to_ping {
            if let Some(conn) = out.conns.get_mut(key) {
                conn.last_ping = now;
            }
            out.push(key, ping.clone());
        }
    }
}
