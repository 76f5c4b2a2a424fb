//! Moments in UTC as text: the calendar fields of a moment, for the few places that write
//! dates the way upstream's Python did (rule creation times, ramdisk log file names), and
//! the reading of the ISO 8601 times Keystone sends (token expiry).
//!
//! The calendar itself is the `time` crate's; UTC only, so no time-zone data is needed.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

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
    /// The calendar fields of `moment` (moments before 1970 read as 1970-01-01, moments
    /// after the year 9999 as its last microsecond).
    pub fn from_system_time(moment: SystemTime) -> UtcDateTime {
        let since = moment.duration_since(UNIX_EPOCH).unwrap_or_default();
        let t = i128::try_from(since.as_nanos())
            .ok()
            .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
            .unwrap_or_else(|| PrimitiveDateTime::MAX.assume_utc());
        UtcDateTime {
            year: i64::from(t.year()),
            month: u32::from(u8::from(t.month())),
            day: u32::from(t.day()),
            hour: u32::from(t.hour()),
            minute: u32::from(t.minute()),
            second: u32::from(t.second()),
            micros: t.microsecond(),
        }
    }
}

/// Reads an ISO 8601 time as Keystone writes them (`expires_at`):
/// `2026-11-26T08:23:08.000000Z`, also without the fraction, with a `±HH:MM` offset instead
/// of `Z`, or with a space instead of the `T`. A time without offset is read as UTC (Keystone
/// always means UTC). Years have four digits; moments before 1970 are refused.
pub fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let moment = OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339))
        .ok()?;
    (moment >= OffsetDateTime::UNIX_EPOCH).then(|| SystemTime::from(moment))
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
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(
            UtcDateTime::from_system_time(before),
            UtcDateTime::from_system_time(UNIX_EPOCH)
        );
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        let d = UtcDateTime::from_system_time(far);
        assert_eq!((d.year, d.month, d.day, d.micros), (9999, 12, 31, 999_999));
    }

    fn unix(text: &str) -> Option<u64> {
        parse_timestamp(text).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs())
    }

    #[test]
    fn keystone_timestamps_parse() {
        assert_eq!(unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix("2026-11-26T08:23:08.000000Z"), Some(1_795_681_388));
        assert_eq!(unix("2026-11-26T08:23:08Z"), Some(1_795_681_388));
        assert_eq!(
            unix("2026-11-26T08:23:08.000000+00:00"),
            Some(1_795_681_388)
        );
        assert_eq!(unix("2026-11-26T08:23:08+00:00"), Some(1_795_681_388));
        assert_eq!(unix("2026-11-26T09:23:08+01:00"), Some(1_795_681_388));
        assert_eq!(unix("2026-11-26T07:53:08.5-00:30"), Some(1_795_681_388));
        assert_eq!(unix("2026-11-26 08:23:08.000000z"), Some(1_795_681_388));
        assert_eq!(unix(" 2026-11-26T08:23:08.000000 "), Some(1_795_681_388));
        assert_eq!(unix("2000-02-29T00:00:00Z"), Some(951_782_400));
        let subsec = parse_timestamp("1970-01-01T00:00:01.250Z").unwrap();
        assert_eq!(
            subsec.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_millis(1250)
        );
    }

    #[test]
    fn bad_timestamps_do_not_parse() {
        for text in [
            "",
            "2026-11-26",
            "2026-13-01T00:00:00Z",
            "2026-11-26T24:00:00Z",
            "2026-11-26T08:23Z",
            "2026-11-26T08:23:08.x1Z",
            "1969-12-31T23:59:59Z",
            "garbage",
            // Found by the property tests of the hand-written parser this replaced: these
            // overflowed its arithmetic or were read with signs where only digits belong.
            "9223372036854775807-01-01T00:00:00Z",
            "-9223372036854775807-01-01T00:00:00Z",
            "2026-11-26T08:23:08+9999999999999999:00",
            "2026-11-26T08:23:08+00:9999999999999999",
            "2026-11-26T-1:23:08Z",
            "2026-11-26T+8:23:08Z",
            "+2026-11-26T08:23:08Z",
            "10000-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text}");
        }
    }
}

#[cfg(test)]
mod timestamp_properties {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::testing::text;

    /// Seconds from the epoch to the end of year 9999.
    const MAX_SECS: u64 = 253_402_300_799;

    fn keystone_text(moment: SystemTime, offset_minutes: i64) -> String {
        let local = if offset_minutes >= 0 {
            moment + Duration::from_secs(offset_minutes as u64 * 60)
        } else {
            moment - Duration::from_secs(offset_minutes.unsigned_abs() * 60)
        };
        let t = UtcDateTime::from_system_time(local);
        let zone = if offset_minutes == 0 {
            "Z".to_string()
        } else {
            let sign = if offset_minutes < 0 { '-' } else { '+' };
            let m = offset_minutes.unsigned_abs();
            format!("{sign}{:02}:{:02}", m / 60, m % 60)
        };
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{zone}",
            t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros
        )
    }

    /// A number field: usually in range, sometimes signed, huge or empty.
    fn number(valid: std::ops::Range<u64>, width: usize) -> impl Strategy<Value = String> {
        prop_oneof![
            4 => valid.prop_map(move |n| format!("{n:0width$}")),
            1 => "[+-]?[0-9]{0,25}",
            1 => Just(i64::MAX.to_string()),
        ]
    }

    /// Text shaped like a Keystone time, each field possibly out of range.
    fn timestamp_like() -> impl Strategy<Value = String> {
        (
            (number(1970..2100, 4), number(1..13, 2), number(1..29, 2)),
            (number(0..24, 2), number(0..60, 2), number(0..60, 2)),
            "(\\.[0-9]{0,12})?",
            prop_oneof![
                Just("Z".to_string()),
                Just(String::new()),
                (
                    prop::sample::select(vec!["+", "-"]),
                    number(0..24, 2),
                    number(0..60, 2)
                )
                    .prop_map(|(sign, h, m)| format!("{sign}{h}:{m}")),
            ],
        )
            .prop_map(|((y, mo, d), (h, mi, s), fraction, zone)| {
                format!("{y}-{mo}-{d}T{h}:{mi}:{s}{fraction}{zone}")
            })
    }

    proptest! {
        #[test]
        fn any_text_parses_or_not_without_panicking(s in prop_oneof![text(), timestamp_like()]) {
            if let Some(moment) = parse_timestamp(&s) {
                prop_assert!(moment >= UNIX_EPOCH);
                prop_assert!(moment <= UNIX_EPOCH + Duration::from_secs(MAX_SECS + 86_400));
            }
        }

        #[test]
        fn written_times_read_back(
            secs in 0..MAX_SECS - 86_400,
            micros in 0u32..1_000_000,
            offset_minutes in prop_oneof![Just(0i64), -1439i64..1440],
        ) {
            let moment = UNIX_EPOCH + Duration::new(secs, micros * 1000);
            // A local time before the epoch cannot be written by our formatter.
            prop_assume!(secs as i64 + offset_minutes * 60 >= 0);
            let written = keystone_text(moment, offset_minutes);
            prop_assert_eq!(parse_timestamp(&written), Some(moment), "{}", written);
        }
    }
}
