//! Calendar fields of a moment in UTC, for the few places that write dates the way upstream's
//! Python did (rule creation times, ramdisk log file names). UTC only, so no time-zone data.

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment in UTC, split into calendar fields (proleptic Gregorian calendar).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcDateTime {
    /// Year, e.g. 2015.
    pub year: i64,
    /// Month, 1 to 12.
    pub month: u32,
    /// Day of the month, 1 to 31.
    pub day: u32,
    /// Hour, 0 to 23.
    pub hour: u32,
    /// Minute, 0 to 59.
    pub minute: u32,
    /// Second, 0 to 59.
    pub second: u32,
    /// Microseconds, 0 to 999,999.
    pub micros: u32,
}

impl UtcDateTime {
    /// The calendar fields of `moment` (moments before 1970 read as 1970-01-01).
    pub fn from_system_time(moment: SystemTime) -> UtcDateTime {
        let since = moment.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let days = i64::try_from(secs / 86_400).unwrap_or(0);
        // Below 86,400, so it fits.
        let rest = u32::try_from(secs % 86_400).unwrap_or(0);
        let (year, month, day) = civil_from_days(days);
        UtcDateTime {
            year,
            month,
            day,
            hour: rest / 3600,
            minute: rest % 3600 / 60,
            second: rest % 60,
            micros: since.subsec_micros(),
        }
    }
}

/// The date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // In range by construction: day 1..=31, month 1..=12.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn calendar_fields() {
        let t = UNIX_EPOCH + Duration::from_micros(1_445_000_000_123_456);
        assert_eq!(
            UtcDateTime::from_system_time(t),
            UtcDateTime {
                year: 2015,
                month: 10,
                day: 16,
                hour: 12,
                minute: 53,
                second: 20,
                micros: 123_456
            }
        );
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        let d = UtcDateTime::from_system_time(leap);
        assert_eq!((d.year, d.month, d.day, d.hour), (2000, 2, 29, 0));
        assert_eq!(UtcDateTime::from_system_time(UNIX_EPOCH).year, 1970);
    }
}
