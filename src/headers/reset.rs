//! Reset values in every notation servers use, and the `Auto` guess between them.
//!
//! Seed 004 sends Unix **milliseconds**, GitHub Unix seconds, many others a delay
//! in seconds, OpenAI Go-style durations (`6m0s`), some RFC 3339 or HTTP-dates.
//! [`ResetUnit::Auto`] tells the numeric ones apart by magnitude: of the readings
//! "milliseconds since the epoch", "seconds since the epoch" and "seconds from
//! now", it takes the one that lands closest to the moment the response was
//! received, and only if that is within ten years of it. That is right for real
//! clocks (the three ranges are decades apart) and for test clocks near 1970.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::observation::ResetAt;
use super::text::{decimal_nanos, duration_from_nanos, epoch_nanos, plausible, MAX_HORIZON};

/// How a reset header's value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResetUnit {
    /// Guess: a number is read as epoch milliseconds, epoch seconds or delay
    /// seconds, whichever lands closest to the receive time (within ten years);
    /// text is tried as an HTTP-date, RFC 3339, then a duration string.
    #[default]
    Auto,
    /// Seconds since the Unix epoch (`1716130800`, decimals allowed).
    EpochSeconds,
    /// Milliseconds since the Unix epoch (`1716130800000`, seed 004).
    EpochMillis,
    /// Seconds from now (`30`, `1.5`).
    DeltaSeconds,
    /// A Go-style duration: `6m0s`, `1h2m3.5s`, `250ms`, `20us`, `5ns`.
    DurationString,
    /// An RFC 3339 timestamp: `2026-05-19T14:00:00Z`, `2026-05-19T16:00:00.5+02:00`.
    Rfc3339,
    /// An HTTP-date: `Tue, 19 May 2026 14:00:00 GMT`.
    HttpDate,
}

impl ResetUnit {
    /// Reads `value` in this notation; `received_at` bounds what is plausible.
    /// `None` for anything malformed, negative or more than ten years away.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_quota::headers::{ResetAt, ResetUnit};
    ///
    /// let now = UNIX_EPOCH + Duration::from_secs(1_779_199_970);
    /// let at = ResetAt::At(UNIX_EPOCH + Duration::from_secs(1_779_200_000));
    /// assert_eq!(ResetUnit::Auto.read("1779200000000", now), Some(at));
    /// assert_eq!(ResetUnit::Auto.read("1779200000", now), Some(at));
    /// assert_eq!(ResetUnit::Auto.read("30", now), Some(ResetAt::After(Duration::from_secs(30))));
    /// assert_eq!(ResetUnit::DurationString.read("6m0s", now), Some(ResetAt::After(Duration::from_secs(360))));
    /// assert_eq!(ResetUnit::Auto.read("-5", now), None);
    /// ```
    pub fn read(self, value: &str, received_at: SystemTime) -> Option<ResetAt> {
        let value = value.trim();
        match self {
            ResetUnit::Auto => auto(value, received_at),
            ResetUnit::EpochSeconds => {
                epoch_nanos(decimal_nanos(value)?, received_at).map(ResetAt::At)
            }
            ResetUnit::EpochMillis => {
                epoch_nanos(decimal_nanos(value)? / 1000, received_at).map(ResetAt::At)
            }
            ResetUnit::DeltaSeconds => {
                duration_from_nanos(decimal_nanos(value)?).map(ResetAt::After)
            }
            ResetUnit::DurationString => duration_string(value).map(ResetAt::After),
            ResetUnit::Rfc3339 => rfc3339(value)
                .filter(|t| plausible(*t, received_at))
                .map(ResetAt::At),
            ResetUnit::HttpDate => http_date(value)
                .filter(|t| plausible(*t, received_at))
                .map(ResetAt::At),
        }
    }
}

/// An HTTP-date, `None` if malformed.
pub(crate) fn http_date(value: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(value).ok()
}

fn auto(value: &str, received_at: SystemTime) -> Option<ResetAt> {
    let Some(v) = decimal_nanos(value) else {
        return [
            ResetUnit::HttpDate,
            ResetUnit::Rfc3339,
            ResetUnit::DurationString,
        ]
        .into_iter()
        .find_map(|unit| unit.read(value, received_at));
    };
    let now = received_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let horizon = MAX_HORIZON.as_nanos();
    // Each reading, with its distance from the receive time.
    let readings = [
        (v / 1000, ResetUnit::EpochMillis),
        (v, ResetUnit::EpochSeconds),
        (now.saturating_add(v), ResetUnit::DeltaSeconds),
    ];
    let (_, unit) = readings
        .into_iter()
        .map(|(at, unit)| (at.abs_diff(now), unit))
        .filter(|(distance, _)| *distance <= horizon)
        .min_by_key(|(distance, _)| *distance)?;
    unit.read(value, received_at)
}

/// A Go-style duration (`1h2m3.5s`), `None` if malformed or above ten years.
fn duration_string(value: &str) -> Option<Duration> {
    const UNITS: [(&str, u128); 9] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
    ];
    if value == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = value;
    let mut total: u128 = 0;
    if rest.is_empty() || rest.len() > 64 {
        return None;
    }
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(split);
        let nanos = decimal_nanos(number)?;
        let (after, scale) = UNITS
            .iter()
            .find_map(|(unit, scale)| Some((tail.strip_prefix(unit)?, *scale)))?;
        // `nanos` is in billionths of a unit.
        total = total.checked_add(nanos.checked_mul(scale)? / 1_000_000_000)?;
        rest = after;
    }
    duration_from_nanos(total)
}

/// An RFC 3339 timestamp, `None` if malformed or before 1970.
fn rfc3339(value: &str) -> Option<SystemTime> {
    let b = value.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut nanos: u128 = 0;
    if sep(at, b".") {
        let len = b
            .get(at + 1..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let frac = value.get(at..at + 1 + len)?;
        nanos = decimal_nanos(frac)?;
        at += 1 + len;
    }
    let offset_secs = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let offset = h * 3600 + m * 60;
            if *sign == b'+' {
                offset
            } else {
                -offset
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))?
        .checked_add(Duration::from_nanos(u64::try_from(nanos).ok()?))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn duration_strings_like_go_prints_them() {
        assert_eq!(duration_string("6m0s"), Some(secs(360)));
        assert_eq!(
            duration_string("1h2m3.5s"),
            Some(Duration::from_millis(3_723_500))
        );
        assert_eq!(duration_string("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(duration_string("20us"), Some(Duration::from_micros(20)));
        assert_eq!(duration_string("1.5µs"), Some(Duration::from_nanos(1500)));
        assert_eq!(duration_string("0"), Some(Duration::ZERO));
        for bad in [
            "",
            "5",
            "s",
            "-5s",
            "5x",
            "1e3s",
            "1h-2m",
            "99999999999999h",
        ] {
            assert_eq!(duration_string(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_with_offsets_and_fractions() {
        let t = |s| rfc3339(s).and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        assert_eq!(t("1970-01-01T00:00:00Z"), Some(secs(0)));
        assert_eq!(t("2026-05-19T14:00:00Z"), Some(secs(1_779_199_200)));
        assert_eq!(t("2026-05-19T16:00:00+02:00"), Some(secs(1_779_199_200)));
        assert_eq!(
            t("2026-05-19t14:00:00.25z"),
            Some(Duration::from_millis(1_779_199_200_250))
        );
        assert_eq!(t("2024-02-29T00:00:00Z"), Some(secs(1_709_164_800)));
        for bad in [
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-05-19T24:00:00Z",
            "2026-05-19T14:00:00",
            "2026-05-19T14:00:00+2:00",
            "1969-12-31T23:59:59Z",
            "2026-05-19T14:00:00.Z",
            "",
            "2026-05-19",
        ] {
            assert_eq!(t(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn auto_takes_the_reading_closest_to_now() {
        let modern = UNIX_EPOCH + secs(1_779_199_970);
        let at = |s| Some(ResetAt::At(UNIX_EPOCH + secs(s)));
        assert_eq!(
            ResetUnit::Auto.read("1779200000000", modern),
            at(1_779_200_000)
        );
        assert_eq!(
            ResetUnit::Auto.read("1779200000", modern),
            at(1_779_200_000)
        );
        assert_eq!(
            ResetUnit::Auto.read("1.5", modern),
            Some(ResetAt::After(Duration::from_millis(1500)))
        );
        // A test clock one day after the epoch (the testkit's): still right.
        let early = UNIX_EPOCH + secs(86_400);
        assert_eq!(ResetUnit::Auto.read("86460000", early), at(86_460));
        assert_eq!(ResetUnit::Auto.read("86460", early), at(86_460));
        assert_eq!(
            ResetUnit::Auto.read("30", early),
            Some(ResetAt::After(secs(30)))
        );
        // Neither a plausible instant nor a plausible delay.
        assert_eq!(ResetUnit::Auto.read("99999999999999999", modern), None);
        assert_eq!(
            ResetUnit::Auto.read("Tue, 19 May 2026 14:00:00 GMT", modern),
            at(1_779_199_200)
        );
        assert_eq!(
            ResetUnit::Auto.read("2026-05-19T14:00:00Z", modern),
            at(1_779_199_200)
        );
        assert_eq!(
            ResetUnit::Auto.read("6m0s", modern),
            Some(ResetAt::After(secs(360)))
        );
    }

    #[test]
    fn explicit_units_reject_implausible_instants() {
        let now = UNIX_EPOCH + secs(1_779_199_970);
        assert_eq!(ResetUnit::EpochMillis.read("1779200000", now), None);
        assert_eq!(ResetUnit::EpochSeconds.read("1779200000000", now), None);
        assert_eq!(
            ResetUnit::HttpDate.read("Sun, 06 Nov 1994 08:49:37 GMT", now),
            None
        );
        assert_eq!(
            ResetUnit::DeltaSeconds.read("30", now),
            Some(ResetAt::After(secs(30)))
        );
    }
}
