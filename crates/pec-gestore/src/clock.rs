//! Time, injected: every PEC event takes one temporal reference (spec §6), and tests must
//! be able to run 24 hours in milliseconds.

use std::sync::Mutex;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Europe::Rome;

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock (kept within a second of UTC by NTP, spec §6).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to, for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock stopped at `t`.
    pub fn new(t: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(t))
    }

    /// Moves the clock forward (or backward) by `d`.
    pub fn advance(&self, d: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Italian legal time (CET/CEST) for a UTC instant: what receipts and daticert show.
pub fn italian(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.with_timezone(&Rome).fixed_offset()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn italian_time_follows_summer_time() {
        let winter = Utc.with_ymd_and_hms(2025, 3, 10, 9, 30, 15).unwrap();
        assert_eq!(italian(winter).to_rfc3339(), "2025-03-10T10:30:15+01:00");
        let summer = Utc.with_ymd_and_hms(2025, 7, 1, 9, 0, 0).unwrap();
        assert_eq!(italian(summer).to_rfc3339(), "2025-07-01T11:00:00+02:00");
        // The switch on the last Sunday of March at 01:00 UTC.
        let before = Utc.with_ymd_and_hms(2025, 3, 30, 0, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2025, 3, 30, 1, 0, 0).unwrap();
        assert_eq!(italian(before).offset().local_minus_utc(), 3600);
        assert_eq!(italian(after).offset().local_minus_utc(), 7200);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let t = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let c = ManualClock::new(t);
        assert_eq!(c.now(), t);
        c.advance(chrono::Duration::hours(24));
        assert_eq!(c.now(), t + chrono::Duration::hours(24));
    }
}
