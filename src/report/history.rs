//! Request outcomes over the last 24 hours and the last 30 days.
//!
//! Seed 002's usage endpoint answers a 24-hour summary "bucketed hourly", and
//! seed 003's usage page charts the last 30 days. [`History`] keeps both
//! locally: every outcome bumps one hourly and one daily counter in fixed
//! rings (24 and 30 slots), without locks, so recording costs a few atomic
//! operations and memory stays the same whatever the traffic.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::date::{format_day, format_hour};
use super::ring::{Ring, MAX_PERIOD};

/// Hours in the summary window.
const HOURS: u64 = 24;
/// Days in the daily chart.
const DAYS: u64 = 30;

/// Counts of request outcomes per UTC hour (last 24) and per UTC day (last 30).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use tower_quota::report::History;
///
/// let history = History::new();
/// let now = UNIX_EPOCH + Duration::from_secs(1_779_199_200); // 2026-05-19T14:00:00Z
/// history.record(now, false);
/// history.record(now, true);
///
/// let summary = history.summary_24h(now);
/// assert_eq!(summary.total_requests, 2);
/// assert_eq!(summary.rate_limited_requests, 1);
/// assert_eq!(summary.rate_limit_percentage, 50.0);
/// assert_eq!(summary.peak_hour.as_deref(), Some("2026-05-19T14:00:00Z"));
///
/// let days = history.daily(now);
/// assert_eq!(days.len(), 30);
/// assert_eq!(days[29].date, "2026-05-19");
/// assert_eq!(days[29].requests, 2);
/// ```
#[derive(Debug)]
pub struct History {
    hours: Ring<24>,
    days: Ring<30>,
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

/// Seed 002's 24-hour summary, field for field.
///
/// Serialises as
/// `{"total_requests":1247,"rate_limited_requests":23,"rate_limit_percentage":1.84,"peak_hour":"2026-05-19T14:00:00Z"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary24h {
    /// Requests in the window.
    pub total_requests: u64,
    /// Of those, requests the server rejected with a rate limit (429).
    pub rate_limited_requests: u64,
    /// `rate_limited_requests / total_requests * 100`, rounded to two decimals;
    /// 0 when there was no traffic.
    pub rate_limit_percentage: f64,
    /// The hour (`YYYY-MM-DDTHH:00:00Z`) with the most requests, the latest
    /// such hour on a tie; `None` (JSON `null`) when there was no traffic.
    pub peak_hour: Option<String>,
}

/// One UTC day of the 30-day chart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyCount {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Requests that day.
    pub requests: u64,
    /// Of those, requests rejected with a rate limit.
    pub rate_limited: u64,
}

/// Whole seconds since the Unix epoch, if `t` is after it.
fn unix_secs(t: SystemTime) -> Option<u64> {
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// `part / total * 100` rounded to two decimals; 0 for no traffic.
fn percentage(part: u64, total: u64) -> f64 {
    super::percent::percent(part, total).unwrap_or(0.0)
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History {
            hours: Ring::new(),
            days: Ring::new(),
        }
    }

    /// Counts one request that completed (or was refused) at `at`, rate-limited
    /// if the server answered 429.
    ///
    /// Instants before 1970 are not counted; outcomes older than the report
    /// windows are harmless (they never show). Record with the same wall clock
    /// the summaries are asked with: an outcome stamped a whole hour (or day)
    /// ahead of a later summary's `now` takes the slot of its oldest hour (or
    /// day).
    pub fn record(&self, at: SystemTime, rate_limited: bool) {
        let Some(secs) = unix_secs(at) else {
            return;
        };
        let hour = secs / 3600;
        if hour <= MAX_PERIOD {
            self.hours.record(hour, rate_limited);
        }
        let day = secs / 86_400;
        if day <= MAX_PERIOD {
            self.days.record(day, rate_limited);
        }
    }

    /// The summary of the last 24 hours at `now`, as seed 002 defines it.
    ///
    /// The window is the 24 hourly buckets ending with the current one: the
    /// hour in progress and the 23 whole hours before it, so nothing older than
    /// 24 hours ever counts.
    pub fn summary_24h(&self, now: SystemTime) -> Summary24h {
        let (mut total, mut limited, mut peak) = (0, 0, None::<(u64, u64)>);
        if let Some(current) = unix_secs(now).map(|s| s / 3600) {
            for hour in current.saturating_sub(HOURS - 1)..=current {
                let (requests, rate_limited) = self.hours.get(hour);
                total += requests;
                limited += rate_limited;
                if requests > 0 && peak.is_none_or(|(_, most)| requests >= most) {
                    peak = Some((hour, requests));
                }
            }
        }
        Summary24h {
            total_requests: total,
            rate_limited_requests: limited,
            rate_limit_percentage: percentage(limited, total),
            peak_hour: peak.map(|(hour, _)| format_hour(hour)),
        }
    }

    /// The last 30 UTC days at `now`, oldest first, today (so far) last.
    pub fn daily(&self, now: SystemTime) -> Vec<DailyCount> {
        let Some(today) = unix_secs(now).map(|s| s / 86_400) else {
            return Vec::new();
        };
        (today.saturating_sub(DAYS - 1)..=today)
            .map(|day| {
                let (requests, rate_limited) = self.days.get(day);
                DailyCount {
                    date: format_day(day),
                    requests,
                    rate_limited,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn rounding_follows_seed_002() {
        assert_eq!(percentage(23, 1247), 1.84);
        assert_eq!(percentage(1, 3), 33.33);
        assert_eq!(percentage(2, 3), 66.67);
        assert_eq!(percentage(0, 0), 0.0);
        assert_eq!(percentage(5, 5), 100.0);
    }

    #[test]
    fn seed_002_example_serialises_with_its_field_names() {
        let h = History::new();
        let now = at(1_779_199_200 + 1800); // 2026-05-19T14:30:00Z
        for i in 0..1247 {
            h.record(now, i < 23);
        }
        let json = serde_json::to_string(&h.summary_24h(now)).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"total_requests":1247,"rate_limited_requests":23,"rate_limit_percentage":1.84,"peak_hour":"2026-05-19T14:00:00Z"}"#
        );
    }

    #[test]
    fn no_traffic_gives_zero_and_null() {
        let s = History::new().summary_24h(at(1_779_199_200));
        assert_eq!(s.total_requests, 0);
        assert_eq!(s.rate_limit_percentage, 0.0);
        assert_eq!(percentage(87, 160), 54.38, "half up, exactly");
        assert_eq!(s.peak_hour, None);
        let json = serde_json::to_string(&s).unwrap_or_default();
        assert!(json.contains(r#""rate_limit_percentage":0.0"#), "{json}");
        assert!(json.contains(r#""peak_hour":null"#), "{json}");
    }

    #[test]
    fn before_the_epoch_nothing_counts() {
        let h = History::new();
        h.record(UNIX_EPOCH - Duration::from_secs(5), true);
        assert_eq!(h.summary_24h(UNIX_EPOCH).total_requests, 0);
        assert!(h.daily(UNIX_EPOCH - Duration::from_secs(5)).is_empty());
        // Near the epoch the chart starts at day 0.
        assert_eq!(h.daily(at(3 * 86_400)).len(), 4);
    }
}
