//! Every bucket's windows at one instant: usage, limit, health, what frees when.
//!
//! A snapshot reads [`Bucket::state`], which loads the bucket's head word and
//! rings without taking a lock or charging anything, so it can be taken from a
//! metrics endpoint while traffic flows. It holds labels and numbers only:
//! bucket labels never contain keys (keyed buckets are `scope#fingerprint`).

use serde::{Deserialize, Serialize};

use super::credit::CreditReport;

use super::health::{Health, Thresholds};
use crate::clock::Nanos;
use crate::ledger::{Bucket, WindowState};
use crate::quota::Quota;

/// Counts about a bucket that the bucket itself does not keep; the layer fills
/// them in as responses come back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// `429 Too Many Requests` responses seen for requests charged to the bucket.
    pub rate_limited: u64,
}

/// Where every reported bucket stands at one instant.
///
/// ```
/// use std::sync::Arc;
/// use tower_quota::clock::Nanos;
/// use tower_quota::ledger::{acquire, Bucket, MaxWait};
/// use tower_quota::quota::{Limits, Quota};
/// use tower_quota::report::{Counters, Health, Snapshot, Thresholds};
///
/// let bucket = Arc::new(Bucket::new("GET.people", Limits::from(Quota::per_minute(100))));
/// for _ in 0..80 {
///     assert!(acquire(&[&bucket], 1, Nanos::ZERO, MaxWait::Never).is_ok());
/// }
/// let now = Nanos::from_secs(1);
/// let counters = Counters { rate_limited: 2 };
/// let snapshot = Snapshot::of(&[("across_all_accounts", &bucket, counters)], now, &Thresholds::default());
///
/// let report = &snapshot.buckets[0];
/// assert_eq!(report.label, "GET.people");
/// assert_eq!(report.health, Health::Approaching);
/// let window = &report.windows[0];
/// assert_eq!((window.used, window.limit, window.percent_used), (80, 100, 80.0));
/// assert_eq!(window.frees_in_ms, Some(59_000));
/// assert_eq!(window.per_minute_rate, 100.0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// One report per bucket, in the order given.
    pub buckets: Vec<BucketReport>,
    /// The thresholds the health levels were computed with.
    pub thresholds: Thresholds,
    /// Credit budgets, if any were added ([`Snapshot::with_credits`]).
    #[serde(default)]
    pub credits: Vec<CreditReport>,
    /// The shared store's status, when the allowance is shared
    /// ([`LimiterBuilder::shared`](crate::LimiterBuilder::shared)). The buckets
    /// then show this process's own usage; the store decides for all.
    #[serde(default)]
    pub store: Option<crate::store::StoreStatus>,
}

/// One bucket of a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketReport {
    /// The bucket's label ([`Bucket::label`]).
    pub label: String,
    /// The scope the bucket belongs to (`across_all_accounts`, `per_account`,
    /// a route table's name...).
    pub scope: String,
    /// The worst health of its windows.
    pub health: Health,
    /// How long the bucket still refuses departures (after a 429), in
    /// milliseconds; `None` if it is not blocked.
    pub blocked_for_ms: Option<u64>,
    /// Units charged since the bucket was created, reservations included.
    pub units_charged: u64,
    /// The caller's counters for this bucket.
    pub counters: Counters,
    /// One report per window, in configuration order.
    pub windows: Vec<WindowReport>,
}

/// One window of a [`BucketReport`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    /// The window's length in milliseconds.
    pub window_ms: u64,
    /// Whether the window is aligned (fixed) rather than sliding.
    pub fixed: bool,
    /// Units that left inside the window ending now.
    pub used: u64,
    /// The window's current limit.
    pub limit: u32,
    /// `used / limit * 100`, rounded to two decimals.
    pub percent_used: f64,
    /// The level of `percent_used`.
    pub health: Health,
    /// The limit scaled to one minute ([`Quota::per_minute_rate`]), rounded to
    /// two decimals: the "rate limit" of seed 003's cards.
    pub per_minute_rate: f64,
    /// Milliseconds until the oldest counted unit stops counting and the window
    /// has room again; `None` when nothing is counted.
    pub frees_in_ms: Option<u64>,
    /// Requests waiting: units reserved to leave after now.
    pub waiting: u64,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn millis_between(now: Nanos, later: Nanos) -> u64 {
    u64::try_from(later.saturating_since(now).as_millis()).unwrap_or(u64::MAX)
}

impl WindowReport {
    fn of(w: &WindowState, now: Nanos, thresholds: &Thresholds) -> WindowReport {
        let percent_used = super::percent::percent(w.used, u64::from(w.limit)).unwrap_or(100.0);
        // The window as configured (and as the server states it), without the
        // safety margin the limiter adds.
        let window = w.window.saturating_sub(w.margin);
        WindowReport {
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            fixed: w.fixed,
            used: w.used,
            limit: w.limit,
            percent_used,
            health: Health::of(percent_used, thresholds),
            per_minute_rate: Quota::new(w.limit, window)
                .map_or(0.0, |q| round2(q.per_minute_rate())),
            frees_in_ms: w.frees_at.map(|at| millis_between(now, at)),
            waiting: w.reserved,
        }
    }
}

impl BucketReport {
    /// The report of `bucket` (in `scope`) at `now`.
    pub fn of(
        scope: &str,
        bucket: &Bucket,
        counters: Counters,
        now: Nanos,
        thresholds: &Thresholds,
    ) -> BucketReport {
        let state = bucket.state(now);
        let windows: Vec<WindowReport> = state
            .windows
            .iter()
            .map(|w| WindowReport::of(w, now, thresholds))
            .collect();
        BucketReport {
            label: bucket.label().to_string(),
            scope: scope.to_string(),
            health: windows
                .iter()
                .map(|w| w.health)
                .max()
                .unwrap_or(Health::Healthy),
            blocked_for_ms: state.blocked_until.map(|b| millis_between(now, b)),
            units_charged: state.units_charged,
            counters,
            windows,
        }
    }
}

impl Snapshot {
    /// The state at `now` of each `(scope, bucket, counters)`, with health
    /// levels under `thresholds`. Pass [`Counters::default()`] where the caller
    /// counts nothing.
    pub fn of(
        buckets: &[(&str, &Bucket, Counters)],
        now: Nanos,
        thresholds: &Thresholds,
    ) -> Snapshot {
        Snapshot {
            buckets: buckets
                .iter()
                .map(|(scope, bucket, counters)| {
                    BucketReport::of(scope, bucket, *counters, now, thresholds)
                })
                .collect(),
            thresholds: *thresholds,
            credits: Vec::new(),
            store: None,
        }
    }

    /// The worst health of all buckets ([`Health::Healthy`] when there are none).
    pub fn health(&self) -> Health {
        self.buckets
            .iter()
            .map(|b| b.health)
            .max()
            .unwrap_or(Health::Healthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{acquire, KeyedBuckets, MaxWait};
    use crate::quota::Limits;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn windows_show_as_configured_without_the_safety_margin() {
        let padded = Limits::new([Quota::per_second(10), Quota::per_hour(600)])
            .padded(|w| (w / 100).min(Duration::from_millis(50)));
        let b = Bucket::new("r", padded);
        // The bucket counts over the padded windows...
        assert_eq!(b.window_length(0), Some(Duration::from_millis(1_010)));
        // ...the report shows the server's: 1 s and 1 h, 10 and 600 per window.
        let r = BucketReport::of(
            "route",
            &b,
            Counters::default(),
            Nanos::ZERO,
            &Thresholds::default(),
        );
        let shown: Vec<(u64, f64)> = r
            .windows
            .iter()
            .map(|w| (w.window_ms, w.per_minute_rate))
            .collect();
        assert_eq!(shown, [(1_000, 600.0), (3_600_000, 10.0)]);
    }

    #[test]
    fn every_window_is_reported_with_waiting_and_block() {
        let bucket = Arc::new(Bucket::new(
            "contacts#search",
            Limits::new([Quota::per_minute(2), Quota::per_hour(600)]),
        ));
        // The third request holds a reservation: it is waiting.
        let grants: Vec<_> = (0..3)
            .map(|_| acquire(&[&bucket], 1, Nanos::ZERO, MaxWait::Forever))
            .collect();
        assert!(grants.iter().all(Result::is_ok));
        bucket.block_until(Nanos::from_secs(30));
        let now = Nanos::from_secs(10);
        let s = Snapshot::of(
            &[("routes", &bucket, Counters { rate_limited: 1 })],
            now,
            &Thresholds::default(),
        );
        let b = &s.buckets[0];
        assert_eq!(b.scope, "routes");
        assert_eq!(b.blocked_for_ms, Some(20_000));
        assert_eq!(b.counters.rate_limited, 1);
        assert_eq!(b.health, Health::Critical);
        assert_eq!(s.health(), Health::Critical);
        let (minute, hour) = (&b.windows[0], &b.windows[1]);
        assert_eq!((minute.used, minute.waiting, minute.limit), (2, 1, 2));
        assert_eq!(minute.percent_used, 100.0);
        assert_eq!(minute.frees_in_ms, Some(50_000));
        assert_eq!(minute.window_ms, 60_000);
        assert_eq!(hour.per_minute_rate, 10.0);
        assert_eq!(hour.percent_used, 0.33);
        assert_eq!(hour.health, Health::Healthy);
    }

    #[test]
    fn an_idle_bucket_frees_nothing_and_is_healthy() {
        let bucket = Bucket::new("idle", Quota::per_second(3));
        let s = Snapshot::of(
            &[("global", &bucket, Counters::default())],
            Nanos::ZERO,
            &Thresholds::default(),
        );
        let w = &s.buckets[0].windows[0];
        assert_eq!((w.used, w.frees_in_ms, w.waiting), (0, None, 0));
        assert_eq!(w.per_minute_rate, 180.0);
        assert_eq!(s.buckets[0].blocked_for_ms, None);
        assert_eq!(s.health(), Health::Healthy);
    }

    #[test]
    fn a_keyed_bucket_never_shows_its_key() {
        let key = "sk_live_4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c".to_string();
        let keys = KeyedBuckets::new("per_api_key", Quota::per_minute(60), 10);
        let bucket = keys.bucket(&key, Nanos::ZERO);
        let Ok(bucket) = bucket else {
            panic!("no bucket: {bucket:?}");
        };
        let s = Snapshot::of(
            &[("per_api_key", &bucket, Counters::default())],
            Nanos::ZERO,
            &Thresholds::default(),
        );
        let json = serde_json::to_string(&s).unwrap_or_default();
        assert!(json.contains("per_api_key#"), "{json}");
        assert!(!json.contains(&key), "{json}");
        assert!(!json.contains("4f9a8b7c"), "{json}");
    }
}
