//! UTC calendar dates from Unix day and hour numbers, for the report's labels.
//!
//! The days-to-civil conversion is Howard Hinnant's `civil_from_days`: exact
//! for the proleptic Gregorian calendar, with no table and no time-zone data.

/// The year, month (1-12) and day (1-31) of `days` after 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD` for the Unix day number `days` (UTC).
pub(crate) fn format_day(days: u64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:00:00Z` for the Unix hour number `hours` (UTC), as seed 002
/// writes its `peak_hour`.
pub(crate) fn format_hour(hours: u64) -> String {
    format!("{}T{:02}:00:00Z", format_day(hours / 24), hours % 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_days() {
        // reference values from `date -u -d YYYY-MM-DD +%s` / 86400
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(format_day(10_956), "1999-12-31");
        assert_eq!(format_day(11_016), "2000-02-29");
        assert_eq!(format_day(11_017), "2000-03-01");
        assert_eq!(format_day(19_782), "2024-02-29");
        assert_eq!(format_day(20_592), "2026-05-19");
        assert_eq!(format_day(47_541), "2100-03-01");
    }

    #[test]
    fn consecutive_days_step_by_one_calendar_day() {
        let mut prev = civil_from_days(0);
        for day in 1..200_000 {
            let next = civil_from_days(day);
            let (y, m, d) = prev;
            let ok = next == (y, m, d + 1) || next == (y, m + 1, 1) || next == (y + 1, 1, 1);
            assert!(ok, "{prev:?} -> {next:?}");
            assert!(next.2 <= 31 && (1..=12).contains(&next.1));
            prev = next;
        }
    }

    #[test]
    fn hours() {
        assert_eq!(format_hour(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_hour(20_592 * 24 + 14), "2026-05-19T14:00:00Z");
        assert_eq!(format_hour(20_592 * 24 + 23), "2026-05-19T23:00:00Z");
    }
}
