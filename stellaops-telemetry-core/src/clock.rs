//! Wall-clock formatting without a date library: RFC 3339 timestamps and sortable file stamps.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC civil time broken into fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
    pub(crate) millis: u32,
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Civil {
    /// The civil time of `time` (times before 1970 clamp to the epoch).
    #[cfg_attr(not(feature = "file"), allow(dead_code))]
    pub(crate) fn from_system_time(time: SystemTime) -> Civil {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Civil::from_unix_millis(since.as_millis() as i64)
    }

    pub(crate) fn from_unix_millis(millis: i64) -> Civil {
        let secs = millis.div_euclid(1000);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400) as u32;
        Civil {
            year,
            month,
            day,
            hour: sod / 3600,
            minute: sod / 60 % 60,
            second: sod % 60,
            millis: millis.rem_euclid(1000) as u32,
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` appended to `out`.
    pub(crate) fn write_rfc3339_millis(&self, out: &mut Vec<u8>) {
        let mut buf = *b"0000-00-00T00:00:00.000Z";
        let put = |buf: &mut [u8; 24], at: usize, value: u32, width: usize| {
            let mut v = value;
            for i in (0..width).rev() {
                buf[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(&mut buf, 0, self.year.clamp(0, 9999) as u32, 4);
        put(&mut buf, 5, self.month, 2);
        put(&mut buf, 8, self.day, 2);
        put(&mut buf, 11, self.hour, 2);
        put(&mut buf, 14, self.minute, 2);
        put(&mut buf, 17, self.second, 2);
        put(&mut buf, 20, self.millis, 3);
        out.extend_from_slice(&buf);
    }

    /// `YYYYMMDDTHHMMSSZ`, for file names that sort chronologically.
    #[cfg_attr(not(feature = "file"), allow(dead_code))]
    pub(crate) fn file_stamp(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.year.clamp(0, 9999),
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc(millis: i64) -> String {
        let mut out = Vec::new();
        Civil::from_unix_millis(millis).write_rfc3339_millis(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn known_dates_format_exactly() {
        assert_eq!(rfc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc(1_767_954_600_123), "2026-01-09T10:30:00.123Z");
        assert_eq!(rfc(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(rfc(1_709_164_799_999), "2024-02-28T23:59:59.999Z");
        assert_eq!(rfc(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
        assert_eq!(Civil::from_unix_millis(0).file_stamp(), "19700101T000000Z");
    }

    #[test]
    fn every_day_of_four_centuries_round_trips_through_the_calendar() {
        let mut expected = (1970i64, 1u32, 1u32);
        for days in 0..146_097i64 {
            assert_eq!(civil_from_days(days), expected, "day {days}");
            let (y, m, d) = expected;
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ][m as usize - 1];
            expected = if d < len {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }
}

/// Wall-clock times derived from `Instant`s: one monotonic clock reading per span instead of
/// two, the offset between the two clocks being re-measured at most once a second (so a
/// stepped system clock is followed within a second, and slewing drifts by microseconds at
/// most between measurements).
#[derive(Debug)]
pub struct WallClock {
    base: std::time::Instant,
    /// Wall-clock nanoseconds since the epoch minus monotonic nanoseconds since `base`.
    offset_ns: std::sync::atomic::AtomicU64,
    /// Monotonic nanoseconds since `base` when the offset was last measured.
    measured_at_ns: std::sync::atomic::AtomicU64,
}

/// How long an offset is used before it is measured again.
const REMEASURE_NS: u64 = 1_000_000_000;

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

impl WallClock {
    /// A clock measured now.
    pub fn new() -> Self {
        let clock = WallClock {
            base: std::time::Instant::now(),
            offset_ns: std::sync::atomic::AtomicU64::new(0),
            measured_at_ns: std::sync::atomic::AtomicU64::new(0),
        };
        clock.measure();
        clock
    }

    fn since_base(&self, instant: std::time::Instant) -> u64 {
        u64::try_from(instant.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Measures the offset; `None` when the system clock is before 1970.
    fn measure(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
        let mono = self.since_base(std::time::Instant::now());
        let offset = u64::try_from(wall.as_nanos()).ok()?.checked_sub(mono)?;
        self.offset_ns.store(offset, Relaxed);
        self.measured_at_ns.store(mono, Relaxed);
        Some(offset)
    }

    /// The wall-clock time of `instant`.
    pub fn system_time(&self, instant: std::time::Instant) -> SystemTime {
        use std::sync::atomic::Ordering::Relaxed;
        let mono = self.since_base(instant);
        let offset = if mono.saturating_sub(self.measured_at_ns.load(Relaxed)) > REMEASURE_NS {
            self.measure()
        } else {
            Some(self.offset_ns.load(Relaxed))
        };
        match offset.and_then(|offset| offset.checked_add(mono)) {
            Some(nanos) => UNIX_EPOCH + std::time::Duration::from_nanos(nanos),
            None => SystemTime::now(),
        }
    }
}

#[cfg(test)]
mod wall_clock_tests {
    use super::*;

    #[test]
    fn derived_times_agree_with_the_system_clock() {
        let clock = WallClock::new();
        for _ in 0..3 {
            let derived = clock.system_time(std::time::Instant::now());
            let now = SystemTime::now();
            let gap = now.duration_since(derived).unwrap_or_else(|e| e.duration());
            // A generous bound: a preempted test thread must not fail it; a wrong offset
            // (sign, unit) is off by decades.
            assert!(gap < std::time::Duration::from_secs(1), "{gap:?}");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn an_old_offset_is_measured_again() {
        let clock = WallClock::new();
        // Pretend the offset is stale and wrong by an hour.
        clock
            .offset_ns
            .fetch_sub(3_600_000_000_000, std::sync::atomic::Ordering::Relaxed);
        clock
            .measured_at_ns
            .store(0, std::sync::atomic::Ordering::Relaxed);
        let later = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let derived = clock.system_time(later);
        let expected = SystemTime::now() + std::time::Duration::from_secs(2);
        let gap = expected
            .duration_since(derived)
            .unwrap_or_else(|e| e.duration());
        assert!(gap < std::time::Duration::from_secs(1), "{gap:?}");
    }
}
