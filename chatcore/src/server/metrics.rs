//! Metrics through the `metrics` facade: the handles the loop bumps.
//!
//! Every counter, gauge and histogram is registered once, when the server
//! is bound ([`Metrics::new`]), by static name and labels; the loop then
//! only touches the handles (an atomic store or add). Most counters mirror
//! [`ServerStats`] and are published from it once per loop turn
//! ([`Metrics::publish`], `Counter::absolute`), so the places that count
//! (session handlers, the relay) keep bumping a plain `u64` and know
//! nothing of metrics. What needs a label or a scan (errors by code,
//! members per room, queued output, spool use) is set where it happens or
//! on the timer sweep.
//!
//! With no recorder installed (an embedder that does not care), every
//! handle is a no-op. A recorder must be installed before the server is
//! built: handles registered earlier stay no-ops. The names are listed in
//! docs/operations.md ("Metrics").

use std::collections::HashMap;

use metrics::{
    Counter, Gauge, Histogram, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};

pub use crate::server::store::STORE_COMMIT_SECONDS;

use crate::protocol::ErrorCode;
use crate::server::handle::ServerStats;

/// Name of the loop-turn duration histogram (seconds); an exporter may
/// give it buckets by this name.
pub const TURN_SECONDS: &str = "chatserver_loop_turn_seconds";

/// The loop's metric handles.
pub(crate) struct Metrics {
    /// Open chat connections.
    connections: Gauge,
    /// Members logged in (any room).
    members: Gauge,
    /// Members of the voice call.
    call_members: Gauge,
    /// Named rooms that exist.
    rooms: Gauge,
    /// Members per room, by room name (the default room included);
    /// registered when a room is first seen on a sweep.
    room_members: HashMap<String, Gauge>,
    /// Bytes queued for clients and not yet written, summed on each sweep.
    output_queue_bytes: Gauge,
    /// Bytes the spool holds (uploads done or in progress).
    spool_bytes: Gauge,
    /// The loop turn's duration.
    turn: Histogram,
    /// Error frames sent, by code (`rate_limited`, `name_taken`,
    /// `bad_password`...): login failures and rate-limit refusals by
    /// reason. Registered on first use of a code.
    errors: HashMap<ErrorCode, Counter>,
    /// Counters mirrored from [`ServerStats`], in [`Metrics::publish`].
    accepted: Counter,
    refused_full: Counter,
    logins: Counter,
    messages: Counter,
    deliveries: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    frames_in: Counter,
    slow_disconnects: Counter,
    timeouts: Counter,
    tls_handshakes: Counter,
    tls_failures: Counter,
    tls_reloads: Counter,
    store_failures: Counter,
    files_uploaded: Counter,
    file_bytes_uploaded: Counter,
    files_downloaded: Counter,
    file_bytes_downloaded: Counter,
    voice_in: Counter,
    voice_relayed: Counter,
    voice_challenges: Counter,
    /// Dropped voice packets by reason: `stale_epoch`, `bind_limited`,
    /// `byte_rate` (a member over the byte rate of `voice_max_bitrate`),
    /// `other` (the rest of `ServerStats::voice_dropped`).
    voice_dropped_stale: Counter,
    voice_dropped_bind: Counter,
    voice_dropped_bytes: Counter,
    voice_dropped_other: Counter,
}

impl Metrics {
    /// Registers every handle (no-ops without a recorder).
    pub(crate) fn new() -> Self {
        describe();
        let dropped =
            |reason: &'static str| counter!("chatserver_voice_dropped_total", "reason" => reason);
        Self {
            connections: gauge!("chatserver_connections"),
            members: gauge!("chatserver_members"),
            call_members: gauge!("chatserver_call_members"),
            rooms: gauge!("chatserver_rooms"),
            room_members: HashMap::new(),
            output_queue_bytes: gauge!("chatserver_output_queue_bytes"),
            spool_bytes: gauge!("chatserver_spool_bytes"),
            turn: histogram!(TURN_SECONDS),
            errors: HashMap::new(),
            accepted: counter!("chatserver_connections_accepted_total"),
            refused_full: counter!("chatserver_connections_refused_full_total"),
            logins: counter!("chatserver_logins_total"),
            messages: counter!("chatserver_messages_total"),
            deliveries: counter!("chatserver_deliveries_total"),
            bytes_in: counter!("chatserver_bytes_in_total"),
            bytes_out: counter!("chatserver_bytes_out_total"),
            frames_in: counter!("chatserver_frames_in_total"),
            slow_disconnects: counter!("chatserver_slow_disconnects_total"),
            timeouts: counter!("chatserver_idle_timeouts_total"),
            tls_handshakes: counter!("chatserver_tls_handshakes_total"),
            tls_failures: counter!("chatserver_tls_failures_total"),
            tls_reloads: counter!("chatserver_tls_reloads_total"),
            store_failures: counter!("chatserver_store_failures_total"),
            files_uploaded: counter!("chatserver_files_uploaded_total"),
            file_bytes_uploaded: counter!("chatserver_file_bytes_uploaded_total"),
            files_downloaded: counter!("chatserver_files_downloaded_total"),
            file_bytes_downloaded: counter!("chatserver_file_bytes_downloaded_total"),
            voice_in: counter!("chatserver_voice_packets_in_total"),
            voice_relayed: counter!("chatserver_voice_packets_relayed_total"),
            voice_challenges: counter!("chatserver_voice_challenges_total"),
            voice_dropped_stale: dropped("stale_epoch"),
            voice_dropped_bind: dropped("bind_limited"),
            voice_dropped_bytes: dropped("byte_rate"),
            voice_dropped_other: dropped("other"),
        }
    }

    /// Counts an error frame sent with `code`.
    pub(crate) fn error_sent(&mut self, code: ErrorCode) {
        self.errors
            .entry(code)
            .or_insert_with(|| counter!("chatserver_errors_sent_total", "code" => code.as_str()))
            .increment(1);
    }

    /// Records one loop turn's duration.
    pub(crate) fn turn(&self, seconds: f64) {
        self.turn.record(seconds);
    }

    /// Copies the counters of `stats` (once per turn: a store each).
    pub(crate) fn publish(&self, s: &ServerStats) {
        self.connections.set(s.connections as f64);
        self.members.set(s.members as f64);
        self.call_members.set(s.call_members as f64);
        self.accepted.absolute(s.accepted);
        self.refused_full.absolute(s.refused_full);
        self.logins.absolute(s.logins);
        self.messages.absolute(s.messages);
        self.deliveries.absolute(s.deliveries);
        self.bytes_in.absolute(s.bytes_in);
        self.bytes_out.absolute(s.bytes_out);
        self.frames_in.absolute(s.frames_in);
        self.slow_disconnects.absolute(s.slow_disconnects);
        self.timeouts.absolute(s.timeouts);
        self.tls_handshakes.absolute(s.tls_handshakes);
        self.tls_failures.absolute(s.tls_failures);
        self.tls_reloads.absolute(s.tls_reloads);
        self.store_failures.absolute(s.store_failures);
        self.files_uploaded.absolute(s.files_uploaded);
        self.file_bytes_uploaded.absolute(s.file_bytes_uploaded);
        self.files_downloaded.absolute(s.files_downloaded);
        self.file_bytes_downloaded.absolute(s.file_bytes_downloaded);
        self.voice_in.absolute(s.voice_in);
        self.voice_relayed.absolute(s.voice_relayed);
        self.voice_challenges.absolute(s.voice_challenges);
        self.voice_dropped_stale.absolute(s.voice_stale_epoch);
        self.voice_dropped_bind.absolute(s.voice_binds_limited);
        self.voice_dropped_bytes.absolute(s.voice_byte_limited);
        self.voice_dropped_other.absolute(s.voice_dropped);
    }

    /// The sweep's scans: members per room, queued output, spool use.
    pub(crate) fn sweep(
        &mut self,
        rooms: impl Iterator<Item = (String, usize)>,
        named_rooms: usize,
        output_queue_bytes: usize,
        spool_bytes: u64,
    ) {
        self.rooms.set(named_rooms as f64);
        self.output_queue_bytes.set(output_queue_bytes as f64);
        self.spool_bytes.set(spool_bytes as f64);
        for (name, members) in rooms {
            let g = match self.room_members.get(&name) {
                Some(g) => g,
                None => self
                    .room_members
                    .entry(name.clone())
                    .or_insert_with(|| gauge!("chatserver_room_members", "room" => name)),
            };
            g.set(members as f64);
        }
    }
}

/// Help texts for the exporter (once per process is enough; repeating is
/// harmless).
fn describe() {
    describe_gauge!(
        "chatserver_connections",
        "Open chat connections (logged in or not)"
    );
    describe_gauge!("chatserver_members", "Members logged in");
    describe_gauge!("chatserver_call_members", "Members in the voice call");
    describe_gauge!("chatserver_rooms", "Named rooms");
    describe_gauge!("chatserver_room_members", "Members per room");
    describe_gauge!(
        "chatserver_output_queue_bytes",
        "Bytes queued for clients, not yet written (sampled each timer sweep)"
    );
    describe_gauge!("chatserver_spool_bytes", "Bytes held by the file spool");
    describe_histogram!(
        TURN_SECONDS,
        metrics::Unit::Seconds,
        "Event-loop turn duration"
    );
    describe_histogram!(
        STORE_COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "History store group-commit duration"
    );
    describe_counter!("chatserver_errors_sent_total", "Error frames sent, by code");
    describe_counter!(
        "chatserver_connections_accepted_total",
        "Chat connections accepted"
    );
    describe_counter!(
        "chatserver_connections_refused_full_total",
        "Connections refused with server_full"
    );
    describe_counter!("chatserver_logins_total", "Successful logins");
    describe_counter!("chatserver_messages_total", "Chat messages accepted");
    describe_counter!("chatserver_deliveries_total", "Frames queued to clients");
    describe_counter!(
        "chatserver_bytes_in_total",
        "Bytes read from chat connections"
    );
    describe_counter!(
        "chatserver_bytes_out_total",
        "Bytes written to chat connections"
    );
    describe_counter!("chatserver_frames_in_total", "Frames received");
    describe_counter!(
        "chatserver_slow_disconnects_total",
        "Members removed for not reading (slow)"
    );
    describe_counter!(
        "chatserver_idle_timeouts_total",
        "Members removed by the idle timeout"
    );
    describe_counter!(
        "chatserver_tls_handshakes_total",
        "TLS handshakes completed"
    );
    describe_counter!(
        "chatserver_tls_failures_total",
        "Connections closed for breaking TLS"
    );
    describe_counter!(
        "chatserver_tls_reloads_total",
        "Certificates replaced at run time"
    );
    describe_counter!(
        "chatserver_store_failures_total",
        "Chats the store could not commit"
    );
    describe_counter!("chatserver_files_uploaded_total", "File uploads completed");
    describe_counter!(
        "chatserver_file_bytes_uploaded_total",
        "Bytes of completed uploads"
    );
    describe_counter!("chatserver_files_downloaded_total", "Downloads sent whole");
    describe_counter!(
        "chatserver_file_bytes_downloaded_total",
        "Bytes of file_data frames sent to downloaders"
    );
    describe_counter!(
        "chatserver_voice_packets_in_total",
        "Voice packets accepted"
    );
    describe_counter!(
        "chatserver_voice_packets_relayed_total",
        "Voice packets relayed"
    );
    describe_counter!(
        "chatserver_voice_challenges_total",
        "Voice bind challenges sent"
    );
    describe_counter!(
        "chatserver_voice_dropped_total",
        "Voice packets dropped, by reason"
    );
}
