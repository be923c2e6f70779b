//! What the server saw, and the statistics a test checks after a run.
//!
//! Every metered decision is recorded as an [`Event`]: admitted requests, 429s,
//! requests that skipped the limiter under the fault switch, and units taken by
//! the co-consumer. [`Recorder::stats`] then answers, per bucket, the largest
//! number of units seen in any window (the number a client's exactness is
//! judged by) and how much of the allowance the run used.
//!
//! [`Stats`] defines utilisation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::limiter::RealWindow;
use super::limits::{BucketKey, Window, WindowKind};
use super::time::ServerTime;
use crate::clock::Nanos;

/// What happened to one metered request (or co-consumption).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Admitted and charged to every bucket.
    Admitted,
    /// Refused with 429; charged to nothing.
    Rejected,
    /// Served without the limiter (fault switch): charged to nothing.
    Unmetered,
    /// Units taken by [`TestServer::consume`](crate::testkit::TestServer::consume).
    CoConsumed,
}

/// One recorded decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When it was decided, on the server clock's timeline (real time).
    pub at: Nanos,
    /// The caller's credential name (never its secret).
    pub caller: String,
    /// The partner system the request came through (seed 002 only).
    pub system: Option<String>,
    /// The route's name.
    pub route: String,
    /// Units per bucket.
    pub cost: u64,
    /// Every bucket the request was (or would have been) charged to.
    pub buckets: Vec<BucketKey>,
    /// The buckets that refused it (empty unless rejected).
    pub blocked_by: Vec<BucketKey>,
    /// What happened.
    pub outcome: Outcome,
}

/// One window of one bucket over the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowStats {
    /// The window, in API time.
    pub window: Window,
    /// Its length in real time.
    pub real: Duration,
    /// The most units inside any one window (any half-open interval of length
    /// `real` for a sliding window, any aligned window for a fixed one).
    pub max_in_any_window: u64,
    /// The most units this window could have allowed over the run (see
    /// [`Stats`]).
    pub allowance: u64,
}

impl WindowStats {
    /// Whether the window ever held more than its limit.
    pub fn exceeded(&self) -> bool {
        self.max_in_any_window > self.window.limit
    }
}

/// One bucket over the run.
#[derive(Clone, Debug, PartialEq)]
pub struct BucketStats {
    /// The bucket.
    pub bucket: BucketKey,
    /// Its windows.
    pub windows: Vec<WindowStats>,
    /// Requests admitted over HTTP.
    pub admitted: u64,
    /// Units admitted over HTTP (requests times cost).
    pub admitted_units: u64,
    /// Units taken by the co-consumer.
    pub co_consumed: u64,
    /// 429s this bucket caused.
    pub rejected: u64,
    /// Admitted units (HTTP and co-consumer) over the allowance, in `[0, 1]`.
    pub utilisation: f64,
}

impl BucketStats {
    /// The largest `max_in_any_window` over the bucket's windows (the figure
    /// to compare with the limit of a single-window bucket).
    pub fn max_in_any_window(&self) -> u64 {
        self.windows
            .iter()
            .map(|w| w.max_in_any_window)
            .max()
            .unwrap_or(0)
    }
}

/// Statistics of a run.
///
/// # Utilisation
///
/// The run is the closed interval `[start, end]` from the server's start to the
/// moment the statistics are taken, of length `T`. The *allowance* of one window
/// of `N` units is the most any schedule could have admitted in the run:
/// - sliding, `N` per `W`: `N * (floor(T / W) + 1)`. Cutting the run into
///   consecutive half-open pieces of length `W` gives `floor(T / W) + 1` pieces
///   of at most `N` each, and bursts of `N` at `start`, `start + W`, ... reach it;
/// - fixed: `N` times the number of aligned windows the run touches.
///
/// A bucket's allowance is the smallest of its windows' allowances (each is an
/// upper bound), and its *utilisation* is the units it admitted (including the
/// co-consumer's) divided by that allowance: at most 1, and 1 only for a client
/// that used everything it could.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// The run's length in real time.
    pub run: Duration,
    /// One entry per bucket that was ever charged or refused, sorted by key.
    pub buckets: Vec<BucketStats>,
    /// Requests admitted over HTTP (each counted once, whatever its buckets).
    pub admitted: u64,
    /// Requests refused with 429.
    pub rejected: u64,
    /// Requests served without the limiter (fault switch).
    pub unmetered: u64,
}

impl Stats {
    /// The statistics of one bucket.
    pub fn bucket(&self, scope: &str, caller: Option<&str>, route: &str) -> Option<&BucketStats> {
        self.buckets.iter().find(|b| {
            b.bucket.scope == scope
                && b.bucket.caller.as_deref() == caller
                && b.bucket.route == route
        })
    }

    /// Every window that ever held more than its limit, with its bucket.
    pub fn violations(&self) -> Vec<(&BucketKey, &WindowStats)> {
        self.buckets
            .iter()
            .flat_map(|b| b.windows.iter().map(move |w| (&b.bucket, w)))
            .filter(|(_, w)| w.exceeded())
            .collect()
    }
}

fn count(events: &[Event], outcome: Outcome) -> u64 {
    events.iter().filter(|e| e.outcome == outcome).count() as u64
}

#[derive(Debug, Default)]
struct Log {
    events: Vec<Event>,
    windows: BTreeMap<BucketKey, Vec<RealWindow>>,
}

/// The server's record of a run. Clones share the record.
#[derive(Clone, Debug)]
pub struct Recorder {
    time: ServerTime,
    start: Nanos,
    log: Arc<Mutex<Log>>,
}

impl Recorder {
    pub(crate) fn new(time: ServerTime) -> Recorder {
        let start = time.now();
        Recorder {
            time,
            start,
            log: Arc::default(),
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn record(
        &self,
        event: Event,
        windows: impl IntoIterator<Item = (BucketKey, Vec<RealWindow>)>,
    ) {
        let mut log = self.log();
        for (bucket, w) in windows {
            log.windows.entry(bucket).or_insert(w);
        }
        log.events.push(event);
    }

    /// Every event so far, in decision order.
    pub fn events(&self) -> Vec<Event> {
        let mut events = self.log().events.clone();
        events.sort_by_key(|e| e.at);
        events
    }

    /// Requests refused with 429 so far.
    pub fn rejected(&self) -> u64 {
        count(&self.log().events, Outcome::Rejected)
    }

    /// Requests admitted over HTTP so far.
    pub fn admitted(&self) -> u64 {
        count(&self.log().events, Outcome::Admitted)
    }

    /// The statistics of the run from the server's start to now.
    pub fn stats(&self) -> Stats {
        let end = self.time.now();
        let (events, windows) = {
            let log = self.log();
            (log.events.clone(), log.windows.clone())
        };
        let mut events = events;
        events.sort_by_key(|e| e.at);
        let run = end.saturating_since(self.start);
        let buckets = windows
            .into_iter()
            .map(|(bucket, ws)| self.bucket_stats(&events, bucket, &ws, end))
            .collect();
        Stats {
            run,
            buckets,
            admitted: count(&events, Outcome::Admitted),
            rejected: count(&events, Outcome::Rejected),
            unmetered: count(&events, Outcome::Unmetered),
        }
    }

    fn bucket_stats(
        &self,
        events: &[Event],
        bucket: BucketKey,
        ws: &[RealWindow],
        end: Nanos,
    ) -> BucketStats {
        let mut charged = Vec::new();
        let (mut admitted, mut admitted_units, mut co_consumed, mut rejected) = (0, 0, 0, 0);
        for e in events {
            if e.outcome == Outcome::Rejected && e.blocked_by.contains(&bucket) {
                rejected += 1;
            }
            if !e.buckets.contains(&bucket) {
                continue;
            }
            match e.outcome {
                Outcome::Admitted => {
                    admitted += 1;
                    admitted_units += e.cost;
                    charged.push((e.at, e.cost));
                }
                Outcome::CoConsumed => {
                    co_consumed += e.cost;
                    charged.push((e.at, e.cost));
                }
                Outcome::Rejected | Outcome::Unmetered => {}
            }
        }
        let windows: Vec<WindowStats> = ws
            .iter()
            .map(|w| WindowStats {
                window: w.api,
                real: w.real,
                max_in_any_window: self.max_in_any_window(&charged, w),
                allowance: self.allowance(w, end),
            })
            .collect();
        let allowance = windows.iter().map(|w| w.allowance).min().unwrap_or(0);
        let units = admitted_units + co_consumed;
        let utilisation = if allowance == 0 {
            0.0
        } else {
            units as f64 / allowance as f64
        };
        BucketStats {
            bucket,
            windows,
            admitted,
            admitted_units,
            co_consumed,
            rejected,
            utilisation,
        }
    }

    /// The most units in one window; `charged` is sorted by time.
    fn max_in_any_window(&self, charged: &[(Nanos, u64)], w: &RealWindow) -> u64 {
        match w.api.kind {
            WindowKind::Sliding => {
                // The busiest half-open interval starts at a charge: slide its
                // start over the charges and its end along behind them.
                let (mut best, mut sum, mut hi) = (0, 0, 0);
                for (lo, (start, _)) in charged.iter().enumerate() {
                    let limit = u128::from(start.as_u64()) + w.real.as_nanos();
                    while hi < charged.len() && u128::from(charged[hi].0.as_u64()) < limit {
                        sum += charged[hi].1;
                        hi += 1;
                    }
                    best = best.max(sum);
                    sum -= charged[lo].1;
                }
                best
            }
            WindowKind::Fixed => {
                let mut per_window: BTreeMap<u128, u64> = BTreeMap::new();
                for (t, n) in charged {
                    *per_window
                        .entry(self.time.window_index(*t, w.real))
                        .or_default() += n;
                }
                per_window.into_values().max().unwrap_or(0)
            }
        }
    }

    fn allowance(&self, w: &RealWindow, end: Nanos) -> u64 {
        let pieces = match w.api.kind {
            WindowKind::Sliding => {
                let t = end.saturating_since(self.start).as_nanos();
                t / w.real.as_nanos().max(1) + 1
            }
            WindowKind::Fixed => {
                self.time.window_index(end, w.real) - self.time.window_index(self.start, w.real) + 1
            }
        };
        u64::try_from(pieces)
            .unwrap_or(u64::MAX)
            .saturating_mul(w.api.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn event(at: Nanos, bucket: &BucketKey, outcome: Outcome) -> Event {
        Event {
            at,
            caller: "c".into(),
            system: None,
            route: "r".into(),
            cost: 1,
            buckets: vec![bucket.clone()],
            blocked_by: if outcome == Outcome::Rejected {
                vec![bucket.clone()]
            } else {
                vec![]
            },
            outcome,
        }
    }

    #[test]
    fn max_and_utilisation_of_a_sliding_window() {
        let clock = ManualClock::new();
        let time = ServerTime::new(Arc::new(clock.clone()), 1.0);
        let rec = Recorder::new(time);
        let bucket = BucketKey::new("s", None, "r");
        let w = RealWindow {
            api: Window::sliding(2, Duration::from_secs(10)),
            real: Duration::from_secs(10),
        };
        // Charges at 0, 9.999 and 10 s: [0, 10) holds 2, [9.999, 19.999) holds 2.
        for (ms, outcome) in [
            (0, Outcome::Admitted),
            (9_999, Outcome::CoConsumed),
            (10_000, Outcome::Admitted),
            (10_000, Outcome::Rejected),
        ] {
            rec.record(
                event(Nanos::from_millis(ms), &bucket, outcome),
                [(bucket.clone(), vec![w])],
            );
        }
        clock.set(Nanos::from_secs(15));
        let stats = rec.stats();
        let b = stats
            .bucket("s", None, "r")
            .unwrap_or_else(|| panic!("missing bucket"));
        assert_eq!(b.max_in_any_window(), 2);
        assert_eq!((b.admitted, b.co_consumed, b.rejected), (2, 1, 1));
        // A 15 s run allows 2 * (floor(15 / 10) + 1) = 4 units; 3 were used.
        assert_eq!(b.windows[0].allowance, 4);
        assert!((b.utilisation - 0.75).abs() < 1e-9);
        assert!(stats.violations().is_empty());
    }
}
