//! The injected clock. Nothing in Kura's library crates reads the system time directly
//! (clippy `disallowed-methods` enforces it), so lifecycle rules — session timeouts,
//! invitation expiry, and later retention and tenant deletion — are tested by moving a
//! [`ManualClock`] instead of sleeping.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Milliseconds since the Unix epoch, UTC. Stored as BIGINT in both databases.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }
    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }
    /// RFC 3339 in UTC, e.g. `2026-11-21T12:00:00Z`.
    pub fn to_rfc3339(self) -> String {
        match jiff::Timestamp::from_millisecond(self.0) {
            Ok(t) => t.to_string(),
            Err(_) => self.0.to_string(),
        }
    }
    /// Formats the instant in an IANA time zone (e.g. `Asia/Tokyo`) as
    /// `2026-11-21 21:00:00 +09:00`; falls back to UTC for an unknown zone.
    pub fn format_in_zone(self, zone: &str) -> String {
        let Ok(ts) = jiff::Timestamp::from_millisecond(self.0) else {
            return self.0.to_string();
        };
        let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
        ts.to_zoned(tz)
            .strftime("%Y-%m-%d %H:%M:%S %:z")
            .to_string()
    }

    /// A date and time for a document in the zone: `2026年11月21日 21時00分 (Asia/Tokyo)`
    /// in Japanese, `21 November 2026, 21:00 (Asia/Tokyo)` in English.
    pub fn format_document(self, zone: &str, ja: bool) -> String {
        let Ok(ts) = jiff::Timestamp::from_millisecond(self.0) else {
            return self.0.to_string();
        };
        let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
        let z = ts.to_zoned(tz);
        if ja {
            format!(
                "{}年{}月{}日 {:02}時{:02}分 ({zone})",
                z.year(),
                z.month(),
                z.day(),
                z.hour(),
                z.minute()
            )
        } else {
            format!("{} ({zone})", z.strftime("%-d %B %Y, %H:%M"))
        }
    }

    /// RFC 3339 with the zone's offset, e.g. `2026-11-21T21:00:00.000+09:00` (exports).
    pub fn to_rfc3339_in_zone(self, zone: &str) -> String {
        let Ok(ts) = jiff::Timestamp::from_millisecond(self.0) else {
            return self.0.to_string();
        };
        let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
        ts.to_zoned(tz)
            .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string()
    }

    /// Parses a time a user typed: RFC 3339 with an offset (`2026-11-21T12:00:00Z`), a
    /// local date-time (`2026-11-21T21:00` or with seconds) or a date (`2026-11-21`, its
    /// midnight) in `zone`.
    pub fn parse_in_zone(s: &str, zone: &str) -> Option<Timestamp> {
        let s = s.trim();
        if let Ok(t) = s.parse::<jiff::Timestamp>() {
            return Some(Timestamp(t.as_millisecond()));
        }
        let tz = jiff::tz::TimeZone::get(zone).ok()?;
        let dt = if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
            dt
        } else {
            s.parse::<jiff::civil::Date>()
                .ok()?
                .to_datetime(jiff::civil::Time::midnight())
        };
        let z = dt.to_zoned(tz).ok()?;
        Some(Timestamp(z.timestamp().as_millisecond()))
    }

    /// The start of `day` (`YYYY-MM-DD`) in `zone` and the start of the next day.
    pub fn day_bounds(day: &str, zone: &str) -> Option<(Timestamp, Timestamp)> {
        let d: jiff::civil::Date = day.parse().ok()?;
        let next = d.tomorrow().ok()?;
        Some((
            Self::parse_in_zone(&d.to_string(), zone)?,
            Self::parse_in_zone(&next.to_string(), zone)?,
        ))
    }

    /// The calendar day (`YYYY-MM-DD`) of the instant in `zone`.
    pub fn day_in_zone(self, zone: &str) -> String {
        let Ok(ts) = jiff::Timestamp::from_millisecond(self.0) else {
            return String::new();
        };
        let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
        ts.to_zoned(tz).date().to_string()
    }
}

#[cfg(test)]
mod zone_tests {
    use super::Timestamp;

    #[test]
    fn parse_and_show_in_tokyo() {
        let t = Timestamp::parse_in_zone("2026-11-21", "Asia/Tokyo").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-20T15:00:00Z");
        assert_eq!(
            t.to_rfc3339_in_zone("Asia/Tokyo"),
            "2026-11-21T00:00:00.000+09:00"
        );
        assert_eq!(t.day_in_zone("Asia/Tokyo"), "2026-11-21");
        assert_eq!(t.day_in_zone("UTC"), "2026-11-20");
        let u = Timestamp::parse_in_zone("2026-11-21T12:00:00Z", "Asia/Tokyo").unwrap();
        assert_eq!(
            u.to_rfc3339_in_zone("Asia/Tokyo"),
            "2026-11-21T21:00:00.000+09:00"
        );
        let l = Timestamp::parse_in_zone("2026-11-21T21:00", "Asia/Tokyo").unwrap();
        assert_eq!(l, u);
        assert!(Timestamp::parse_in_zone("yesterday", "Asia/Tokyo").is_none());
    }
}

/// Where the current time comes from.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The real clock (the host's system time, which should be NTP-disciplined; see README).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the system time
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(ms)
    }
}

/// A clock that only moves when told to. For tests and simulations.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.0)))
    }
    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// Measures elapsed wall time for latency figures (access log, benchmarks). Not a source of
/// "now" for any rule.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Self {
        Self(std::time::Instant::now())
    }
    pub fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp(1_000));
        assert_eq!(c.now(), Timestamp(1_000));
        c.advance_secs(30);
        assert_eq!(c.now(), Timestamp(31_000));
    }

    #[test]
    fn formats_documents() {
        let t = Timestamp(1_767_225_600_000);
        assert_eq!(
            t.format_document("Asia/Tokyo", true),
            "2026年1月1日 09時00分 (Asia/Tokyo)"
        );
        assert_eq!(
            t.format_document("Asia/Tokyo", false),
            "1 January 2026, 09:00 (Asia/Tokyo)"
        );
    }

    #[test]
    fn formats_in_tokyo() {
        // 2026-01-01T00:00:00Z is 09:00 in Tokyo.
        let t = Timestamp(1_767_225_600_000);
        assert_eq!(t.format_in_zone("Asia/Tokyo"), "2026-01-01 09:00:00 +09:00");
        assert_eq!(
            t.format_in_zone("Nowhere/Invalid"),
            "2026-01-01 00:00:00 +00:00"
        );
        assert_eq!(t.to_rfc3339(), "2026-01-01T00:00:00Z");
    }
}
