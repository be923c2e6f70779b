//! A server's counts of several windows at once, against the server's own
//! history: whatever the server saw (our requests and other clients'), once
//! its counts are raised together (`Bucket::raise_used_together`), nothing the
//! engine admits afterwards puts any window of the server over its limit, and
//! every window counts at least what the server reported.
//!
//! The history is made by a brute-force server that admits a unit only if
//! every window (sliding or fixed) has room; some of its units are ours and
//! were charged through the engine at their times. The server then reports a
//! random subset of its windows at `as_of`; the engine takes the report, and
//! requests of ours follow, each leaving when the engine says. Only the
//! reported windows are checked: of the others the engine knows nothing.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tower_quota::clock::Nanos;
use tower_quota::ledger::{acquire, Bucket, Grant, MaxWait};
use tower_quota::quota::{Limits, Quota};

const MS: u64 = 1_000_000;

#[derive(Clone, Debug)]
struct Win {
    limit: u32,
    len_ms: u64,
    /// Where a fixed window's periods start; `None`: sliding.
    anchor_ms: Option<u64>,
}

impl Win {
    fn len(&self) -> u64 {
        self.len_ms * MS
    }

    /// Whether a unit that left at `t` counts in the window ending at `x` (`t <= x`).
    fn counts(&self, t: u64, x: u64) -> bool {
        match self.anchor_ms {
            None => t + self.len() > x,
            Some(a) => {
                let a = (a * MS) as i128;
                let start = |v: u64| (v as i128 - a).div_euclid(self.len() as i128);
                start(t) == start(x)
            }
        }
    }

    fn count(&self, times: &[u64], x: u64) -> u64 {
        times
            .iter()
            .filter(|&&t| t <= x && self.counts(t, x))
            .count() as u64
    }
}

fn win() -> impl Strategy<Value = Win> {
    (1u32..=8, 1u64..=40, prop::option::weighted(0.3, 0u64..40)).prop_map(
        |(limit, len_ms, anchor_ms)| Win {
            limit,
            len_ms,
            anchor_ms: anchor_ms.map(|a| a % len_ms),
        },
    )
}

#[derive(Clone, Debug)]
struct Case {
    windows: Vec<Win>,
    /// (time in ms, ours) of requests made to the server before the report.
    tries: Vec<(u64, bool)>,
    as_of_ms: u64,
    /// Which windows the server reports (a bit per window; at least one).
    reported: u8,
    /// Gaps (ms) between our requests after the report.
    after: Vec<u64>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(win(), 1..=3),
        prop::collection::vec((0u64..120, any::<bool>()), 0..80),
        0u64..40,
        1u8..8,
        prop::collection::vec(0u64..6, 1..40),
    )
        .prop_map(|(windows, mut tries, extra, reported, after)| {
            tries.sort_unstable();
            let last = tries.last().map_or(0, |t| t.0);
            Case {
                reported: reported & ((1 << windows.len()) - 1),
                windows,
                tries,
                as_of_ms: last + extra,
                after,
            }
        })
        .prop_filter("reports a window", |c| c.reported != 0)
}

fn run(c: &Case) {
    let quotas = c.windows.iter().map(|w| {
        let q =
            Quota::new(w.limit, Duration::from_millis(w.len_ms)).unwrap_or(Quota::per_second(1));
        match w.anchor_ms {
            Some(a) => q.fixed(Nanos::new(a * MS)),
            None => q,
        }
    });
    let bucket = Arc::new(Bucket::new("b", Limits::new(quotas)));
    // The server's history: every unit it admitted, ours charged to the engine too.
    let mut server: Vec<u64> = Vec::new();
    for &(ms, ours) in &c.tries {
        let t = ms * MS;
        if !c
            .windows
            .iter()
            .all(|w| w.count(&server, t) < u64::from(w.limit))
        {
            continue;
        }
        if ours {
            match acquire(&[&bucket], 1, Nanos::new(t), MaxWait::Never) {
                Ok(Grant::Now) => {}
                // The engine knows fewer units than the server: it has room.
                other => panic!("ours at {t} refused: {other:?}"),
            }
        }
        server.push(t);
    }
    let as_of = c.as_of_ms * MS;
    let counts: Vec<(usize, u64, Option<Nanos>)> = c
        .windows
        .iter()
        .enumerate()
        .filter(|(i, _)| c.reported & (1 << i) != 0)
        .map(|(i, w)| (i, w.count(&server, as_of), None))
        .collect();
    bucket.raise_used_together(&counts, Nanos::new(as_of));
    let state = bucket.state(Nanos::new(as_of));
    for &(i, used, _) in &counts {
        assert!(
            state.windows[i].used >= used,
            "window {i} counts {} of the server's {used}",
            state.windows[i].used
        );
    }
    // Our requests after the report, each leaving when the engine says.
    let mut now = as_of;
    for gap in &c.after {
        now += gap * MS;
        let d = match acquire(&[&bucket], 1, Nanos::new(now), MaxWait::Forever) {
            Ok(Grant::Now) => now,
            Ok(Grant::Later(r)) => {
                let d = r.departure().as_u64();
                r.depart();
                d
            }
            Err(e) => panic!("refused at {now}: {e}"),
        };
        server.push(d);
        // The windows reported: of the others the engine was told nothing,
        // and other clients' units in them are beyond anything it can know.
        for (i, w) in c.windows.iter().enumerate() {
            if c.reported & (1 << i) == 0 {
                continue;
            }
            let n = w.count(&server, d);
            assert!(
                n <= u64::from(w.limit),
                "window {i} ({w:?}) holds {n} at the server at {d}; server: {server:?}"
            );
        }
        now = now.max(d);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000)
    ))]

    #[test]
    fn counts_raised_together_never_put_the_server_over_a_limit(c in case()) {
        run(&c);
    }
}

/// A bucket of seed 000's windows: 200 a minute, 600 an hour, 6,000 a day.
fn seed000() -> Bucket {
    Bucket::new(
        "search",
        Limits::new([
            Quota::per_minute(200),
            Quota::per_hour(600),
            Quota::per_day(6000),
        ]),
    )
}

/// Seed 000's shape, where raising each window alone held the first request
/// back for an hour: the minute's 190 leave at once, and not one more.
#[test]
fn a_day_of_usage_does_not_fill_the_minute_or_the_hour() {
    let bucket = seed000();
    let now = Nanos::from_secs(5);
    let added = bucket.raise_used_together(&[(2, 3000, None), (1, 100, None), (0, 10, None)], now);
    assert_eq!(added, 3000);
    let used: Vec<u64> = bucket.state(now).windows.iter().map(|w| w.used).collect();
    assert_eq!(used, [10, 100, 3000]);
    assert_eq!(bucket.earliest_departure(190, now), Ok(now));
    let minute = now + Duration::from_secs(60);
    assert_eq!(bucket.earliest_departure(191, now), Ok(minute));
    // Each window alone: the day's 3,000 fill the hour for an hour.
    let alone = seed000();
    for (i, used) in [(0, 10), (1, 100), (2, 3000)] {
        alone.raise_used(i, used, now, None);
    }
    assert_eq!(
        alone.earliest_departure(1, now),
        Ok(now + Duration::from_secs(3600))
    );
    // The same report again adds nothing; a later one adds only what is new.
    let later = now + Duration::from_secs(1);
    assert_eq!(
        bucket.raise_used_together(&[(0, 10, None), (1, 100, None), (2, 3000, None)], later),
        0
    );
    assert_eq!(
        bucket.raise_used_together(&[(0, 10, None), (1, 100, None), (2, 3050, None)], later),
        50
    );
    assert_eq!(bucket.state(later).windows[2].used, 3050);
    assert_eq!(bucket.earliest_departure(190, later), Ok(later));
}

/// The held units count until they free at the server, and then no longer:
/// an hour's units older than its minute free by one hour after the minute began.
#[test]
fn held_units_free_when_the_server_frees_them_at_the_latest() {
    let bucket = Bucket::new(
        "b",
        Limits::new([Quota::per_minute(100), Quota::per_hour(300)]),
    );
    let as_of = Nanos::from_secs(7200);
    bucket.raise_used_together(&[(0, 0, None), (1, 300, None)], as_of);
    // Full for the hour: the next unit waits until the held ones free, which
    // is an hour after the minute began (they all left before it).
    let frees =
        as_of - Duration::from_secs(60) + Duration::from_nanos(1) + Duration::from_secs(3600);
    let d = bucket.earliest_departure(1, as_of).unwrap_or(Nanos::ZERO);
    assert!(d <= frees + Duration::from_millis(2), "{d:?} vs {frees:?}");
    assert!(d >= frees - Duration::from_nanos(1), "{d:?} vs {frees:?}");
    assert_eq!(bucket.state(d).windows[1].used, 0);
    assert_eq!(bucket.state(as_of).windows[1].used, 300);
    assert_eq!(
        bucket.state(as_of).windows[0].used,
        0,
        "the minute never sees them"
    );
    // Until then they count.
    assert!(bucket.state(d - Duration::from_secs(1)).windows[1].used > 0);
}
