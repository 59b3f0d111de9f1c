//! The one timestamp parser of the crate: unified-log record times
//! (`2026-10-04 17:50:33.803491+0200`, local time with the UTC offset of the
//! Mac that logged them) and Endpoint Security event times
//! (`2025-08-07T15:13:09.811587464Z`, RFC 3339).
//!
//! The shape is checked exactly (jiff's strptime with fixed formats), the
//! calendar by jiff (no February 31, no hour 25), and the offset written in
//! the record is applied as it stands: no time-zone database and no DST
//! rules are needed.

use jiff::fmt::strtime::BrokenDownTime;
use jiff::tz::Offset;

/// Date and time as both sources write them; the `T` of RFC 3339 is read as
/// this space.
const DATE_TIME: &str = "%Y-%m-%d %H:%M:%S%.f";

/// Offsets accepted after the time: `+HHMM`, `+HH:MM`, `+HH` (`Z` is read as
/// `+0000`).
const OFFSETS: &[&str] = &["%z", "%:z", "%:::z"];

/// What a timestamp without an offset means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingOffset {
    /// Refused: the local time of an unknown zone cannot be placed
    /// (unified-log records always carry their offset).
    Reject,
    /// Read as UTC (RFC 3339 producers that leave the `Z` out).
    Utc,
}

/// Parse a timestamp into unix seconds (fractions dropped, i.e. floored).
///
/// Accepted: `YYYY-MM-DD` then `T`, `t` or a space, `HH:MM:SS`, an optional
/// fraction of one or more digits (up to nanoseconds), then an offset
/// `+HHMM`, `+HH:MM`, `+HH` (less than 24 hours) or `Z`, or per `missing`
/// nothing. Leading and trailing whitespace is ignored; anything else, or a
/// date or time that does not exist (2025-02-31, 25:00), gives `None`.
pub fn parse_timestamp(s: &str, missing: MissingOffset) -> Option<i64> {
    let s = s.trim();
    // Only ASCII is valid, so byte positions are character positions.
    if !s.is_ascii() || s.len() < 19 {
        return None;
    }
    let mut text = String::with_capacity(s.len() + 4);
    text.push_str(&s[..10]);
    match s.as_bytes()[10] {
        b' ' | b'T' | b't' => text.push(' '),
        _ => return None,
    }
    text.push_str(&s[11..]);
    if text.ends_with(['Z', 'z']) {
        text.pop();
        text.push_str("+0000");
    }
    let has_offset = text[19..].contains(['+', '-']);
    if !has_offset {
        return match missing {
            MissingOffset::Reject => None,
            MissingOffset::Utc => {
                let tm = BrokenDownTime::parse(DATE_TIME, &text).ok()?;
                let dt = tm.to_datetime().ok()?;
                Offset::UTC.to_timestamp(dt).ok().map(|t| t.as_second())
            }
        };
    }
    for offset in OFFSETS {
        let format = format!("{DATE_TIME}{offset}");
        let Ok(tm) = BrokenDownTime::parse(&format, &text) else {
            continue;
        };
        // jiff allows offsets up to 25:59:59; real zones stay within ±14h,
        // and anything at or past a day is a corrupt record.
        if tm.offset()?.seconds().unsigned_abs() >= 24 * 3600 {
            return None;
        }
        return tm.to_timestamp().ok().map(|t| t.as_second());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a UTC civil time (None if it does not exist).
    fn civil_to_unix(y: i16, mo: i8, d: i8, h: i8, mi: i8, s: i8) -> Option<i64> {
        let dt = jiff::civil::DateTime::new(y, mo, d, h, mi, s, 0).ok()?;
        Offset::UTC.to_timestamp(dt).ok().map(|t| t.as_second())
    }

    fn parse_log_timestamp(s: &str) -> Option<i64> {
        parse_timestamp(s, MissingOffset::Reject)
    }

    #[test]
    fn timestamps_across_offsets() {
        // The shape of a real line: 17:50:33 at +0200 is 15:50:33 UTC.
        let utc = civil_to_unix(2026, 10, 4, 15, 50, 33).unwrap();
        assert_eq!(
            parse_log_timestamp("2026-10-04 17:50:33.803491+0200"),
            Some(utc)
        );
        assert_eq!(
            parse_log_timestamp("2026-10-04 08:50:33.000001-0700"),
            Some(utc)
        );
        assert_eq!(parse_log_timestamp("2026-10-04 15:50:33.5+0000"), Some(utc));
        assert_eq!(parse_log_timestamp("2026-10-04 17:50:33+02:00"), Some(utc));
        assert_eq!(parse_log_timestamp("2026-10-04T15:50:33Z"), Some(utc));
        assert_eq!(parse_log_timestamp("2026-10-04 17:50:33.9+02"), Some(utc));
        // Odd offsets (India, Nepal, Newfoundland).
        assert_eq!(parse_log_timestamp("2026-10-04 21:20:33+0530"), Some(utc));
        assert_eq!(parse_log_timestamp("2026-10-04 21:35:33+0545"), Some(utc));
        assert_eq!(parse_log_timestamp("2026-10-04 13:20:33-0230"), Some(utc));
        // Across midnight, a month end and a year end.
        assert_eq!(
            parse_log_timestamp("2027-01-01 01:30:00+0200"),
            civil_to_unix(2026, 12, 31, 23, 30, 0)
        );
        assert_eq!(
            parse_log_timestamp("2026-02-28 20:00:00-0500"),
            civil_to_unix(2026, 3, 1, 1, 0, 0)
        );
        // A leap day, and the epoch.
        assert_eq!(
            parse_log_timestamp("2028-02-29 12:00:00+0000"),
            civil_to_unix(2028, 2, 29, 12, 0, 0)
        );
        assert_eq!(parse_log_timestamp("1970-01-01 02:00:00+0200"), Some(0));
        // DST is in the offset, not in a zone database: the same wall time
        // an hour apart in summer and winter offsets of one zone.
        let summer = parse_log_timestamp("2026-10-24 12:00:00+0200").unwrap();
        let winter = parse_log_timestamp("2026-10-25 12:00:00+0100").unwrap();
        assert_eq!(winter - summer, 86_400 + 3600);
        for bad in [
            "",
            "2026-10-04 17:50:33",
            "2026-10-04 17:50:33.803491",
            "2026-10-04 17:50:33.+0200",
            "2026-10-04 17:50:33+2",
            "2026-10-04 17:50:33+02000",
            "2026-10-04 17:50:33+2400",
            "2026-10-04 17:50:33+0260",
            "2026-13-04 17:50:33+0200",
            "2026-10-04 25:50:33+0200",
            "20261004 175033+0200",
            "2026-10-04 17:50:33+0200 trailing",
            "garbage",
        ] {
            assert_eq!(parse_log_timestamp(bad), None, "{bad}");
        }
    }

    /// Dates and times that do not exist are refused, not rolled over into
    /// the next month or day (2025-02-31 is not March 3).
    #[test]
    fn impossible_timestamps_are_refused() {
        for bad in [
            "2025-02-31 12:00:00+0000",
            "2025-02-29 12:00:00+0000",
            "2026-04-31T00:00:00Z",
            "2026-10-00 12:00:00+0200",
            "2026-10-04 24:00:00+0200",
            "2026-10-04 17:60:00+0200",
            "2026-10-04 17:50:61+0200",
        ] {
            assert_eq!(parse_log_timestamp(bad), None, "{bad}");
            assert_eq!(parse_timestamp(bad, MissingOffset::Utc), None, "{bad}");
        }
        assert!(parse_log_timestamp("2024-02-29 12:00:00+0000").is_some());
    }

    /// Endpoint Security's RFC 3339 times, and what no offset means.
    #[test]
    fn rfc3339_and_missing_offset() {
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:00Z", MissingOffset::Utc),
            Some(0)
        );
        assert_eq!(
            parse_timestamp("2025-08-07T15:13:09.811587464Z", MissingOffset::Utc),
            civil_to_unix(2025, 8, 7, 15, 13, 9)
        );
        assert_eq!(
            parse_timestamp("2025-08-07T17:13:09+02:00", MissingOffset::Utc),
            civil_to_unix(2025, 8, 7, 15, 13, 9)
        );
        assert_eq!(
            parse_timestamp("2025-08-07T15:13:09", MissingOffset::Utc),
            civil_to_unix(2025, 8, 7, 15, 13, 9)
        );
        assert_eq!(
            parse_timestamp("2025-08-07T15:13:09", MissingOffset::Reject),
            None
        );
        assert_eq!(parse_timestamp("garbage", MissingOffset::Utc), None);
        assert_eq!(
            parse_timestamp("2025-13-07T15:13:09Z", MissingOffset::Utc),
            None
        );
        // Non-ASCII never panics on a byte index.
        assert_eq!(
            parse_timestamp("2025-08-07é15:13:09Z", MissingOffset::Utc),
            None
        );
    }
}
