//! Counters, gauges and histograms through the `metrics` facade (feature
//! `metrics`), named by Prometheus conventions; without the feature every call
//! here compiles to nothing.
//!
//! | name | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `tower_quota_requests_total` | counter | `route`, `outcome` (`admitted`, `waited`, `refused`) | requests through the layer |
//! | `tower_quota_wait_seconds` | histogram | `route` | how long waiting requests were held |
//! | `tower_quota_rate_limited_total` | counter | `bucket` | 429s (or the configured statuses) from the server |
//! | `tower_quota_correction_units_total` | counter | `bucket` | units the server counted that the client had not |
//! | `tower_quota_window_used` | gauge | `bucket`, `window_ms` | units in the window now ([`export_snapshot`]) |
//! | `tower_quota_window_limit` | gauge | `bucket`, `window_ms` | the window's limit |
//! | `tower_quota_waiting` | gauge | `bucket` | units reserved to leave later |
//!
//! Labels are bucket labels: routes, and `scope#fingerprint` for accounts and API
//! keys. Never a key.

use std::time::Duration;

use crate::report::Snapshot;

/// A request through the layer and what happened to it.
#[inline]
pub(crate) fn request(route: &str, outcome: &'static str, wait: Option<Duration>) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("tower_quota_requests_total", "route" => route.to_owned(), "outcome" => outcome)
            .increment(1);
        if let Some(w) = wait {
            metrics::histogram!("tower_quota_wait_seconds", "route" => route.to_owned())
                .record(w.as_secs_f64());
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (route, outcome, wait);
}

/// The server rate-limited a request charged to `bucket`.
#[inline]
pub(crate) fn rate_limited(bucket: &str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("tower_quota_rate_limited_total", "bucket" => bucket.to_owned()).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = bucket;
}

/// The server counted `units` more than the client in `bucket`.
#[inline]
pub(crate) fn corrected(bucket: &str, units: u64) {
    #[cfg(feature = "metrics")]
    metrics::counter!("tower_quota_correction_units_total", "bucket" => bucket.to_owned())
        .increment(units);
    #[cfg(not(feature = "metrics"))]
    let _ = (bucket, units);
}

/// Sets the gauges from a [`Snapshot`] (take one with
/// [`Limiter::snapshot`](crate::Limiter::snapshot), e.g. on every scrape).
pub fn export_snapshot(snapshot: &Snapshot) {
    #[cfg(feature = "metrics")]
    for b in &snapshot.buckets {
        let mut waiting = 0;
        for w in &b.windows {
            let labels = [
                ("bucket", b.label.clone()),
                ("window_ms", w.window_ms.to_string()),
            ];
            metrics::gauge!("tower_quota_window_used", &labels).set(w.used as f64);
            metrics::gauge!("tower_quota_window_limit", &labels).set(f64::from(w.limit));
            waiting = waiting.max(w.waiting);
        }
        metrics::gauge!("tower_quota_waiting", "bucket" => b.label.clone()).set(waiting as f64);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = snapshot;
}
