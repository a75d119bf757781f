//! Output: a table like the original experiment's, or one JSON object.

use serde_json::json;

use crate::histogram::Histogram;
use crate::loadgen::{Outcome, Plan, RoomClass};

/// The server's memory, when the generator spawned it.
#[derive(Debug, Default)]
pub struct Memory {
    /// RSS right after start, KiB.
    pub start_kib: Option<u64>,
    /// RSS with every client logged in and idle, KiB.
    pub joined_kib: Option<u64>,
    /// Peak RSS over the run, KiB.
    pub peak_kib: Option<u64>,
    /// Server CPU seconds (user + system) from start until every client
    /// was in: what the logins (and, with TLS, the handshakes) cost.
    pub cpu_login_s: Option<f64>,
    /// Server CPU seconds from then to the end of the run (sending and
    /// draining): divided by that period's length, the server's CPU share.
    pub cpu_send_s: Option<f64>,
}

impl Memory {
    /// Bytes per idle connection: (RSS joined - RSS at start) / clients.
    fn per_connection(&self, clients: usize) -> Option<f64> {
        let (a, b) = (self.start_kib?, self.joined_kib?);
        (clients > 0).then(|| (b.saturating_sub(a) as f64 * 1024.0) / clients as f64)
    }
}

/// The server's CPU share (1.0 = one core) while messages flowed; none
/// for a run that sent nothing (its sending period is a few microseconds,
/// and CPU time is counted in 10 ms ticks).
fn cpu_share(o: &Outcome, m: &Memory) -> Option<f64> {
    let period = o.wall_s - o.presence_s;
    m.cpu_send_s
        .filter(|_| o.messages_sent > 0 && period > 0.5)
        .map(|c| c / period)
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// Deliveries per second over the sending period.
fn rate(o: &Outcome) -> f64 {
    if o.total_s > 0.0 {
        o.deliveries_received as f64 / o.total_s
    } else {
        0.0
    }
}

/// Latency quantiles in ms, as JSON.
fn latency_json(h: &Histogram) -> serde_json::Value {
    json!({
        "min": ms(h.min()),
        "mean": h.mean() / 1000.0,
        "p50": ms(h.quantile(0.50)),
        "p90": ms(h.quantile(0.90)),
        "p99": ms(h.quantile(0.99)),
        "p999": ms(h.quantile(0.999)),
        "max": ms(h.max()),
    })
}

/// One kind of room (small or big), as JSON.
fn class_json(c: &RoomClass) -> serde_json::Value {
    json!({
        "clients": c.clients,
        "messages_sent": c.messages_sent,
        "deliveries_expected": c.deliveries_expected,
        "deliveries_received": c.deliveries_received,
        "lost": c.deliveries_expected.saturating_sub(c.deliveries_received),
        "latency_ms": latency_json(&c.latency),
    })
}

/// The JSON object of `--json`.
pub fn json(o: &Outcome, m: &Memory) -> String {
    let h = &o.latency;
    let mut v = json!({
        "tls": o.tls,
        "tls_errors": o.tls_errors,
        "clients": o.clients,
        "connected": o.connected,
        "failed": o.failed,
        "login_s": o.login_s,
        "presence_s": o.presence_s,
        "messages_sent": o.messages_sent,
        "rejected": o.rejected,
        "deliveries_expected": o.deliveries_expected,
        "deliveries_received": o.deliveries_received,
        "lost": o.deliveries_expected.saturating_sub(o.deliveries_received),
        "duplicates": o.duplicates,
        "out_of_order": o.out_of_order,
        "total_s": o.total_s,
        "wall_s": o.wall_s,
        "deliveries_per_s": rate(o),
        "offered_per_s": o.offered_per_s,
        "presence_min_known": o.presence_min_known,
        "max_send_lag_ms": o.max_send_lag_ms,
        "unparsed": o.unparsed,
        "latency_ms": latency_json(h),
    });
    if o.rooms > 0 {
        let mut rooms = json!({
            "rooms": o.rooms,
            "big_room_clients": o.big_room_clients,
            "wrong_room": o.wrong_room,
            "join_refused": o.join_refused,
            "small": class_json(&o.small),
        });
        if o.big_room_clients > 0 {
            rooms["big"] = class_json(&o.big);
        }
        v["rooms"] = rooms;
    }
    if let Some(peak) = m.peak_kib {
        v["server_rss_kib"] = json!(peak);
    }
    if let Some(joined) = m.joined_kib {
        v["server_rss_joined_kib"] = json!(joined);
    }
    if let Some(b) = m.per_connection(o.clients) {
        v["server_bytes_per_connection"] = json!(b.round());
    }
    if let Some(c) = m.cpu_login_s {
        v["server_cpu_login_s"] = json!(c);
    }
    if let Some(c) = m.cpu_send_s {
        v["server_cpu_send_s"] = json!(c);
    }
    if let Some(share) = cpu_share(o, m) {
        v["server_cpu_send_share"] = json!(share);
    }
    v.to_string()
}

/// The human-readable table.
pub fn table(o: &Outcome, m: &Memory, plan: &Plan) -> String {
    let h = &o.latency;
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<28}{v}\n"));
    line(
        "clients connected",
        format!("{} of {}", o.connected, o.clients),
    );
    line(
        "transport",
        if o.tls {
            format!("TLS ({} sessions failed)", o.tls_errors)
        } else {
            "plain TCP".to_owned()
        },
    );
    line(
        "all clients logged in",
        format!(
            "{:.3} s after the first connect{}",
            o.login_s,
            if o.tls {
                " (TLS handshakes included)"
            } else {
                ""
            }
        ),
    );
    line(
        "everyone knows everyone",
        format!(
            "{:.3} s (fewest members known: {})",
            o.presence_s, o.presence_min_known
        ),
    );
    line(
        "plan",
        format!("{} msg/s per client, {} B payload", plan.rate, plan.payload),
    );
    line("total time", format!("{:.3} s", o.total_s));
    line("requests (messages sent)", o.messages_sent.to_string());
    line("rejected by server", o.rejected.to_string());
    line(
        "deliveries",
        format!(
            "{} of {} expected",
            o.deliveries_received, o.deliveries_expected
        ),
    );
    line(
        "lost / duplicate / reordered",
        format!(
            "{} / {} / {}",
            o.deliveries_expected.saturating_sub(o.deliveries_received),
            o.duplicates,
            o.out_of_order
        ),
    );
    line("deliveries per second", format!("{:.0}", rate(o)));
    line("average delay", format!("{:.3} ms", h.mean() / 1000.0));
    line("minimum delay", format!("{:.3} ms", ms(h.min())));
    line("maximum delay", format!("{:.3} ms", ms(h.max())));
    line(
        "p50 / p90 / p99 / p99.9",
        format!(
            "{:.3} / {:.3} / {:.3} / {:.3} ms",
            ms(h.quantile(0.5)),
            ms(h.quantile(0.9)),
            ms(h.quantile(0.99)),
            ms(h.quantile(0.999))
        ),
    );
    if o.rooms > 0 {
        line(
            "rooms",
            format!(
                "{} small{}; {} chats from a wrong room, {} joins refused",
                o.rooms,
                if o.big_room_clients > 0 {
                    format!(" + big ({} members)", o.big_room_clients)
                } else {
                    String::new()
                },
                o.wrong_room,
                o.join_refused
            ),
        );
        let mut class = |name: &str, c: &RoomClass| {
            let h = &c.latency;
            line(
                name,
                format!(
                    "{} of {} delivered; p50 / p99 {:.3} / {:.3} ms",
                    c.deliveries_received,
                    c.deliveries_expected,
                    ms(h.quantile(0.5)),
                    ms(h.quantile(0.99))
                ),
            );
        };
        class("small rooms", &o.small);
        if o.big_room_clients > 0 {
            class("big room", &o.big);
        }
    }
    line("sender lag (max)", format!("{:.1} ms", o.max_send_lag_ms));
    if let Some(peak) = m.peak_kib {
        line("server peak RSS", format!("{peak} KiB"));
    }
    if let Some(b) = m.per_connection(o.clients) {
        line("server memory / connection", format!("{b:.0} B"));
    }
    if let Some(c) = m.cpu_login_s {
        line("server CPU, logins", format!("{c:.2} s"));
    }
    if let (Some(c), Some(share)) = (m.cpu_send_s, cpu_share(o, m)) {
        line(
            "server CPU, sending",
            format!("{c:.2} s ({:.0} % of a core)", share * 100.0),
        );
    }
    s
}
