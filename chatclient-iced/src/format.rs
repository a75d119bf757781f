//! Turning wire values into words for people: local clock times and sizes.

use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The system time zone, read once: reading it means file I/O, and every
/// message line asks for it.
fn local_zone() -> &'static TimeZone {
    static ZONE: OnceLock<TimeZone> = OnceLock::new();
    ZONE.get_or_init(|| TimeZone::try_system().unwrap_or(TimeZone::UTC))
}

/// Reads the system time zone now, so the UI thread never does that file
/// I/O (called once at start-up, before the window opens).
pub fn warm_up() {
    let _ = local_zone();
}

/// `HH:MM:SS` in the local time zone for a server timestamp (milliseconds
/// since the Unix epoch). A timestamp out of range shows as `--:--:--`
/// rather than failing: it comes from the server, not from us.
pub fn local_time(ts_ms: i64) -> String {
    clock_in(ts_ms, local_zone())
}

/// [`local_time`] in a given zone (tests use UTC to be independent of the
/// machine they run on).
pub fn clock_in(ts_ms: i64, zone: &TimeZone) -> String {
    match Timestamp::from_millisecond(ts_ms) {
        Ok(t) => t.to_zoned(zone.clone()).strftime("%H:%M:%S").to_string(),
        Err(_) => "--:--:--".to_owned(),
    }
}

pub use chatcore::client::human_size;

/// `done / total` as a fraction in 0..=1 (an empty file counts as done).
pub fn fraction(done: u64, total: u64) -> f32 {
    if total == 0 {
        1.0
    } else {
        (done.min(total) as f64 / total as f64) as f32
    }
}

/// A duration in whole seconds for status lines: `1 s`, `10 s`.
pub fn seconds(d: std::time::Duration) -> String {
    let s = d.as_secs_f32();
    if s < 1.0 {
        format!("{s:.1} s")
    } else {
        format!("{} s", s.round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_clock_times_in_the_given_zone() {
        // 2023-11-14T22:13:20.123Z
        assert_eq!(clock_in(1_700_000_000_123, &TimeZone::UTC), "22:13:20");
        let plus_two = TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(clock_in(1_700_000_000_123, &plus_two), "00:13:20");
    }

    #[test]
    fn an_absurd_timestamp_is_shown_as_dashes_not_a_panic() {
        assert_eq!(clock_in(i64::MAX, &TimeZone::UTC), "--:--:--");
    }

    #[test]
    fn fractions_stay_within_zero_and_one() {
        assert_eq!(fraction(0, 0), 1.0);
        assert_eq!(fraction(5, 10), 0.5);
        assert_eq!(fraction(20, 10), 1.0);
    }
}
