//! The server's own accounting: a brute-force list of timestamps per bucket.
//!
//! This server is the referee that checks the crate's engine, so it must be
//! obviously correct rather than fast: every bucket keeps every charge it ever
//! received, one mutex guards all of them (so a request charged to several
//! buckets is all-or-nothing without any ordering subtleties), and a decision
//! scans the charges inside each window. It shares no code with the engine.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::limits::{BucketKey, Window, WindowKind};
use super::time::ServerTime;
use crate::clock::Nanos;

/// A window with its length in real time (after compression).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RealWindow {
    /// The window as configured, in API time.
    pub(crate) api: Window,
    /// Its length on the clock's timeline.
    pub(crate) real: Duration,
}

/// One bucket a request is charged to, with the windows that apply.
#[derive(Clone, Debug)]
pub(crate) struct Charge {
    pub(crate) bucket: BucketKey,
    pub(crate) windows: Vec<RealWindow>,
}

/// The state of one window of one bucket, as a response reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reading {
    pub(crate) window: RealWindow,
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
    /// When the window next gives units back (admitted) or when the rejected
    /// request would have fitted (rejected).
    pub(crate) reset: Nanos,
    /// Whether this window refused the request.
    pub(crate) blocked: bool,
}

/// The outcome of [`Limiter::admit`].
#[derive(Clone, Debug)]
pub(crate) struct Verdict {
    /// The instant of the decision (read under the lock, so verdicts are ordered).
    pub(crate) at: Nanos,
    pub(crate) admitted: bool,
    /// Per charge, one reading per window, after the charge if admitted.
    pub(crate) readings: Vec<(BucketKey, Vec<Reading>)>,
}

impl Verdict {
    /// The buckets that refused the request.
    pub(crate) fn blocked_by(&self) -> Vec<BucketKey> {
        self.readings
            .iter()
            .filter(|(_, rs)| rs.iter().any(|r| r.blocked))
            .map(|(b, _)| b.clone())
            .collect()
    }

    /// The reading a single-window header set reports: on a rejection the
    /// blocking window that frees up last, otherwise the window with the fewest
    /// units left (ties: the smaller limit, then the earlier reset).
    pub(crate) fn binding(&self) -> Option<Reading> {
        let all = self.readings.iter().flat_map(|(_, rs)| rs.iter().copied());
        if self.admitted {
            all.min_by_key(|r| (r.remaining, r.limit, r.reset))
        } else {
            all.filter(|r| r.blocked).max_by_key(|r| r.reset)
        }
    }
}

/// Every bucket's charges, `(instant, units)` in the order they were admitted.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    buckets: Mutex<HashMap<BucketKey, Vec<(Nanos, u64)>>>,
}

impl Limiter {
    fn lock(&self) -> MutexGuard<'_, HashMap<BucketKey, Vec<(Nanos, u64)>>> {
        // A panic elsewhere cannot leave the lists half-written: pushes are the
        // only mutation, so a poisoned lock is still consistent.
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Charges `cost` units to every bucket of `charges` if every window of
    /// every bucket has room, or to none of them.
    pub(crate) fn admit(&self, time: &ServerTime, charges: &[Charge], cost: u64) -> Verdict {
        let mut buckets = self.lock();
        let at = time.now();
        let empty = Vec::new();
        let fits = charges.iter().all(|c| {
            let log = buckets.get(&c.bucket).unwrap_or(&empty);
            c.windows
                .iter()
                .all(|w| used(time, log, w, at).saturating_add(cost) <= w.api.limit)
        });
        if fits {
            for c in charges {
                buckets
                    .entry(c.bucket.clone())
                    .or_default()
                    .push((at, cost));
            }
        }
        let readings = charges
            .iter()
            .map(|c| {
                let log = buckets.get(&c.bucket).unwrap_or(&empty);
                let rs = c
                    .windows
                    .iter()
                    .map(|w| reading(time, log, w, at, cost, fits))
                    .collect();
                (c.bucket.clone(), rs)
            })
            .collect();
        Verdict {
            at,
            admitted: fits,
            readings,
        }
    }

    /// Units inside the current window of each of `windows` of `bucket`.
    pub(crate) fn usage(
        &self,
        time: &ServerTime,
        bucket: &BucketKey,
        windows: &[RealWindow],
    ) -> Vec<u64> {
        let buckets = self.lock();
        let at = time.now();
        let log = buckets.get(bucket).map_or(&[][..], |l| &l[..]);
        windows.iter().map(|w| used(time, log, w, at)).collect()
    }
}

/// Whether a charge at `t` is inside the window of `w` that holds `now`.
fn in_window(time: &ServerTime, w: &RealWindow, t: Nanos, now: Nanos) -> bool {
    match w.api.kind {
        // The window ending at `now`: (now - W, now].
        WindowKind::Sliding => {
            u128::from(t.as_u64()) + w.real.as_nanos() > u128::from(now.as_u64())
        }
        WindowKind::Fixed => time.window_index(t, w.real) == time.window_index(now, w.real),
    }
}

fn used(time: &ServerTime, log: &[(Nanos, u64)], w: &RealWindow, now: Nanos) -> u64 {
    // Charges are in time order, so the window's charges are a suffix.
    log.iter()
        .rev()
        .take_while(|(t, _)| in_window(time, w, *t, now))
        .map(|(_, n)| *n)
        .sum()
}

fn reading(
    time: &ServerTime,
    log: &[(Nanos, u64)],
    w: &RealWindow,
    now: Nanos,
    cost: u64,
    admitted: bool,
) -> Reading {
    let start = log.len()
        - log
            .iter()
            .rev()
            .take_while(|(t, _)| in_window(time, w, *t, now))
            .count();
    let inside = &log[start..];
    let used: u64 = inside.iter().map(|(_, n)| *n).sum();
    let remaining = w.api.limit.saturating_sub(used);
    let blocked = !admitted && used.saturating_add(cost) > w.api.limit;
    // How many units must leave before the reading's event: one for a reset
    // (the next time `remaining` grows), enough for the cost for a rejection.
    let need = if blocked {
        used.saturating_add(cost) - w.api.limit
    } else {
        1
    };
    let reset = match w.api.kind {
        WindowKind::Fixed => {
            let index = time.window_index(now, w.real);
            time.window_start(index + 1, w.real)
        }
        WindowKind::Sliding if cost > w.api.limit && blocked => now + w.real,
        WindowKind::Sliding => {
            let mut freed = 0u64;
            inside
                .iter()
                .find(|(_, n)| {
                    freed = freed.saturating_add(*n);
                    freed >= need
                })
                .map_or(now + w.real, |(t, _)| *t + w.real)
        }
    };
    Reading {
        window: *w,
        limit: w.api.limit,
        remaining,
        reset,
        blocked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;

    fn setup(kind: WindowKind) -> (ManualClock, ServerTime, Charge) {
        let clock = ManualClock::new();
        let time = ServerTime::new(Arc::new(clock.clone()), 1.0);
        let api = Window {
            limit: 3,
            per: Duration::from_secs(10),
            kind,
        };
        let charge = Charge {
            bucket: BucketKey::new("s", None, "r"),
            windows: vec![RealWindow { api, real: api.per }],
        };
        (clock, time, charge)
    }

    #[test]
    fn sliding_window_admits_exactly_the_limit_and_frees_one_by_one() {
        let (clock, time, charge) = setup(WindowKind::Sliding);
        let l = Limiter::default();
        let charges = [charge];
        for i in 0..3 {
            assert!(l.admit(&time, &charges, 1).admitted);
            clock.advance(Duration::from_secs(1 + i));
        }
        // Charges at 0, 1 and 3 s; now 6 s.
        let v = l.admit(&time, &charges, 1);
        assert!(!v.admitted);
        let r = v.binding().unwrap_or_else(|| panic!("no binding"));
        assert_eq!((r.remaining, r.reset), (0, Nanos::from_secs(10)));
        // A cost of 2 must wait for two charges to leave.
        assert_eq!(
            l.admit(&time, &charges, 2).binding().map(|r| r.reset),
            Some(Nanos::from_secs(11))
        );
        clock.set(Nanos::from_secs(10));
        let v = l.admit(&time, &charges, 1);
        assert!(v.admitted);
        let r = v.binding().unwrap_or_else(|| panic!("no binding"));
        assert_eq!((r.remaining, r.reset), (0, Nanos::from_secs(11)));
    }

    #[test]
    fn fixed_window_resets_at_the_boundary() {
        let (clock, time, charge) = setup(WindowKind::Fixed);
        let l = Limiter::default();
        let charges = [charge];
        clock.set(Nanos::from_secs(9));
        assert!(l.admit(&time, &charges, 3).admitted);
        let v = l.admit(&time, &charges, 1);
        assert!(!v.admitted);
        assert_eq!(v.binding().map(|r| r.reset), Some(Nanos::from_secs(10)));
        clock.set(Nanos::from_secs(10));
        assert!(l.admit(&time, &charges, 3).admitted);
    }

    #[test]
    fn all_or_nothing_across_buckets() {
        let (_clock, time, a) = setup(WindowKind::Sliding);
        let mut b = a.clone();
        b.bucket = BucketKey::new("s", Some("x"), "r");
        b.windows[0].api.limit = 1;
        let l = Limiter::default();
        let both = [a.clone(), b.clone()];
        assert!(l.admit(&time, &both, 1).admitted);
        let v = l.admit(&time, &both, 1);
        assert!(!v.admitted);
        assert_eq!(v.blocked_by(), vec![b.bucket.clone()]);
        // The rejection charged nothing to `a`.
        assert_eq!(l.usage(&time, &a.bucket, &a.windows), vec![1]);
    }
}
