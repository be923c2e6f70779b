//! Bounded access to header text and tolerant number parsing.
//!
//! Everything a server sends is untrusted. These helpers are the only place that
//! turns header bytes into numbers, so the limits live here: values longer than
//! [`MAX_VALUE_LEN`] are ignored, at most [`MAX_DUPLICATES`] repetitions of one
//! header are read, counts above [`MAX_COUNT`] and durations above [`MAX_HORIZON`]
//! are treated as absent, and nothing here can panic or allocate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::AsHeaderName;
use http::HeaderMap;

/// The longest header value read (longer ones are ignored as hostile).
pub(crate) const MAX_VALUE_LEN: usize = 4096;
/// How many repetitions of one header (or comma-separated elements) are read.
pub(crate) const MAX_DUPLICATES: usize = 16;
/// The largest count taken seriously; anything above is treated as absent.
pub(crate) const MAX_COUNT: u64 = 1_000_000_000_000;
/// The longest delay, window or clock distance taken seriously (ten years, the
/// same bound as [`Quota::MAX_WINDOW`](crate::quota::Quota::MAX_WINDOW)).
pub(crate) const MAX_HORIZON: Duration = Duration::from_secs(10 * 366 * 86_400);

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// The values of header `name` as trimmed text: at most [`MAX_DUPLICATES`], skipping
/// values that are too long or not visible ASCII.
pub(crate) fn values(headers: &HeaderMap, name: impl AsHeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .iter()
        .take(MAX_DUPLICATES)
        .filter(|v| v.len() <= MAX_VALUE_LEN)
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
}

/// Like [`values`], with comma-separated elements split apart (a proxy may have
/// folded repeated headers into one line).
pub(crate) fn elements(headers: &HeaderMap, name: impl AsHeaderName) -> impl Iterator<Item = &str> {
    values(headers, name)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .take(MAX_DUPLICATES)
}

/// A non-negative integer count, `None` if malformed or above [`MAX_COUNT`].
pub(crate) fn count(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|n| *n <= MAX_COUNT)
}

/// A non-negative decimal (`"30"`, `"1.5"`, `".5"`) as billionths: `"1.5"` is
/// `1_500_000_000`. Fractions beyond nine digits are rounded up, so a wait is never
/// shortened. `None` for signs, exponents, `NaN` or more than 20 integer digits.
pub(crate) fn decimal_nanos(s: &str) -> Option<u128> {
    let s = s.trim();
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.len() > 20 || !digits(int) || !frac.is_none_or(digits) {
        return None;
    }
    if int.is_empty() && frac.is_none_or(str::is_empty) {
        return None;
    }
    let whole = if int.is_empty() {
        0
    } else {
        int.parse::<u128>().ok()?
    };
    let mut nanos = whole.checked_mul(NANOS_PER_SEC)?;
    if let Some(frac) = frac {
        let mut scale = NANOS_PER_SEC / 10;
        for (i, b) in frac.bytes().enumerate() {
            if i >= 9 {
                if b != b'0' {
                    nanos = nanos.checked_add(1)?;
                    break;
                }
                continue;
            }
            nanos = nanos.checked_add(u128::from(b - b'0') * scale)?;
            scale /= 10;
        }
    }
    Some(nanos)
}

/// Billionths as a duration, `None` above [`MAX_HORIZON`].
pub(crate) fn duration_from_nanos(nanos: u128) -> Option<Duration> {
    if nanos > MAX_HORIZON.as_nanos() {
        return None;
    }
    u64::try_from(nanos).ok().map(Duration::from_nanos)
}

/// Decimal seconds (`"30"`, `"1.5"`) as a duration, `None` if malformed or absurd.
pub(crate) fn seconds(s: &str) -> Option<Duration> {
    decimal_nanos(s).and_then(duration_from_nanos)
}

/// Nanoseconds since the Unix epoch as an instant, `None` unless it lies within
/// [`MAX_HORIZON`] of `near`.
pub(crate) fn epoch_nanos(nanos: u128, near: SystemTime) -> Option<SystemTime> {
    let at = UNIX_EPOCH.checked_add(Duration::from_nanos(u64::try_from(nanos).ok()?))?;
    plausible(at, near).then_some(at)
}

/// Whether `at` lies within [`MAX_HORIZON`] of `near`, either side.
pub(crate) fn plausible(at: SystemTime, near: SystemTime) -> bool {
    let distance = match at.duration_since(near) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    distance <= MAX_HORIZON
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_plain_bounded_integers() {
        assert_eq!(count(" 42 "), Some(42));
        assert_eq!(count("0"), Some(0));
        for bad in ["", " ", "-1", "+1", "1.0", "1e3", "NaN", "0x10", "١٢"] {
            assert_eq!(count(bad), None, "{bad:?}");
        }
        assert_eq!(count(&"9".repeat(40)), None);
        assert_eq!(count("18446744073709551615"), None);
        assert_eq!(count(&MAX_COUNT.to_string()), Some(MAX_COUNT));
        assert_eq!(count(&(MAX_COUNT + 1).to_string()), None);
    }

    #[test]
    fn decimals_round_up_and_reject_the_exotic() {
        assert_eq!(decimal_nanos("1.5"), Some(1_500_000_000));
        assert_eq!(decimal_nanos(".5"), Some(500_000_000));
        assert_eq!(decimal_nanos("2."), Some(2_000_000_000));
        assert_eq!(decimal_nanos("0.0000000001"), Some(1));
        assert_eq!(decimal_nanos("0.1000000000"), Some(100_000_000));
        for bad in [".", "", "-1", "1e309", "NaN", "inf", "1.2.3", " 1 . 5"] {
            assert_eq!(decimal_nanos(bad), None, "{bad:?}");
        }
        assert_eq!(seconds("1e309"), None);
        assert_eq!(seconds(&"9".repeat(20)), None);
        assert_eq!(seconds("30"), Some(Duration::from_secs(30)));
    }
}
