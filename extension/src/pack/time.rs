//! UTC calendar arithmetic for osquery's `calendarTime` and the `time` table.

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const WEEKDAYS_LONG: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A UTC civil date and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday.
    pub weekday: usize,
}

impl Civil {
    /// Break Unix seconds into UTC fields (proleptic Gregorian; Howard
    /// Hinnant's days-to-civil algorithm).
    pub fn from_unix(t: i64) -> Civil {
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month: month as u32,
            day: day as u32,
            hour: (secs / 3600) as u32,
            minute: (secs % 3600 / 60) as u32,
            second: (secs % 60) as u32,
            // 1970-01-01 was a Thursday.
            weekday: (days + 4).rem_euclid(7) as usize,
        }
    }

    pub fn weekday_name_long(&self) -> &'static str {
        WEEKDAYS_LONG[self.weekday % 7]
    }

    /// `2014-09-30T17:37:30Z`.
    pub fn iso_8601(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// osquery's `calendarTime`: asctime layout plus " UTC", day padded with a
/// space: `Tue Sep 30 17:37:30 2014 UTC`, `Mon May  2 22:27:32 2016 UTC`.
pub fn calendar_time(t: i64) -> String {
    let c = Civil::from_unix(t);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {} UTC",
        WEEKDAYS[c.weekday % 7],
        MONTHS[(c.month as usize).saturating_sub(1) % 12],
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.year
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_osquery_docs_examples() {
        // logging.md: "calendarTime":"Mon May  2 22:27:32 2016 UTC","unixTime":"1462228052"
        assert_eq!(calendar_time(1_462_228_052), "Mon May  2 22:27:32 2016 UTC");
        assert_eq!(calendar_time(1_412_098_650), "Tue Sep 30 17:37:30 2014 UTC");
        assert_eq!(calendar_time(0), "Thu Jan  1 00:00:00 1970 UTC");
        assert_eq!(calendar_time(951_782_400), "Tue Feb 29 00:00:00 2000 UTC");
        assert_eq!(Civil::from_unix(-1).iso_8601(), "1969-12-31T23:59:59Z");
    }
}
