//! Wire timestamps as UTC civil time.
//!
//! The protocol stamps messages with milliseconds since the Unix epoch (UTC).
//! Turning that into a calendar date needs no time-zone data, so this is done
//! here with Howard Hinnant's `civil_from_days` instead of pulling in a
//! date-time crate. Times are shown in UTC, marked with a `Z`.

use std::fmt;

/// A point in time broken down into UTC calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    /// Proleptic Gregorian year.
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59 (no leap seconds in Unix time).
    pub second: u32,
    /// 0..=999.
    pub millis: u32,
}

impl UtcTime {
    /// Breaks down `ms` milliseconds since 1970-01-01T00:00:00Z.
    pub fn from_unix_ms(ms: i64) -> Self {
        let secs = ms.div_euclid(1000);
        let millis = ms.rem_euclid(1000) as u32;
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: of_day / 3600,
            minute: of_day / 60 % 60,
            second: of_day % 60,
            millis,
        }
    }

    /// `HH:MM:SSZ`, the form the terminal client prints before each message.
    pub fn hms(&self) -> String {
        format!("{:02}:{:02}:{:02}Z", self.hour, self.minute, self.second)
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// `HH:MM:SSZ` of a wire timestamp.
pub fn hms(ts_ms: i64) -> String {
    UtcTime::from_unix_ms(ts_ms).hms()
}

/// Year, month, day of the `days`-th day after 1970-01-01.
/// <https://howardhinnant.github.io/date_algorithms.html#civil_from_days>
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146_096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365
    let mp = (5 * doy + 2) / 153; // 0..=11, March first
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn civil(ms: i64) -> String {
        UtcTime::from_unix_ms(ms).to_string()
    }

    #[test]
    fn known_instants() {
        assert_eq!(civil(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(civil(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(civil(1_700_000_000_123), "2023-11-14 22:13:20 UTC");
        assert_eq!(civil(4_102_444_799_000), "2099-12-31 23:59:59 UTC");
        assert_eq!(civil(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(UtcTime::from_unix_ms(-1).millis, 999);
        assert_eq!(hms(1_700_000_000_123), "22:13:20Z");
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        // 1900..2100 day by day: the date always advances by exactly one day.
        let mut prev = UtcTime::from_unix_ms(-2_208_988_800_000);
        assert_eq!((prev.year, prev.month, prev.day), (1900, 1, 1));
        for day in -25_566..=47_482_i64 {
            let t = UtcTime::from_unix_ms(day * 86_400_000);
            let next_in_month = (t.year, t.month, t.day) == (prev.year, prev.month, prev.day + 1);
            let next_month = t.day == 1
                && ((t.year == prev.year && t.month == prev.month + 1)
                    || (t.year == prev.year + 1 && t.month == 1 && prev.month == 12));
            assert!(next_in_month || next_month, "{prev} -> {t}");
            prev = t;
        }
        assert_eq!((prev.year, prev.month, prev.day), (2100, 1, 1));
    }
}
