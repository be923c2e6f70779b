//! The cost of one decision, beside governor and a mutex-protected sliding log,
//! in the same run and on the same clock.
//!
//! Run: `cargo bench --bench decision`. Figures and their reading: BENCHMARKS.md.
//!
//! - `allowed/*`: every decision admits and writes shared state (limits far above
//!   the rate the loop can reach); `denied/*`: every decision refuses.
//! - "system clock" rows read `std::time::Instant` in every decision, for all three
//!   (governor through its `MonotonicClock`); "now passed in" rows give the engine
//!   the time, as the layer does when it has already read the clock.
//! - `two-threads/*`: one bucket, two threads; an iteration is one decision, and the
//!   wall time of `iters` decisions split over both threads is reported, so the
//!   figure is time per decision at the combined throughput.
//! - `keyed-10k/*`: 10,000 keys visited round robin, then shuffled; the
//!   shuffled decision also in its two parts (the lookup, and the decision on a
//!   bucket already found).

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use governor::clock::MonotonicClock;
use governor::RateLimiter;
use tower_quota::clock::{Clock, Nanos, SystemClock};
use tower_quota::ledger::{acquire, Bucket, Grant, KeyedBuckets, MaxWait};
use tower_quota::quota::{Limits, Quota};

fn quota(limit: u32, window: Duration) -> Quota {
    Quota::new(limit, window).unwrap_or(Quota::per_second(1))
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// A sliding log of departure times behind a mutex: the obvious exact design.
struct MutexLog {
    windows: Vec<(usize, u64)>, // limit, window ns; the last is the longest
    log: Mutex<VecDeque<u64>>,
}

impl MutexLog {
    fn new(windows: Vec<(usize, u64)>) -> MutexLog {
        MutexLog {
            windows,
            log: Mutex::new(VecDeque::new()),
        }
    }

    fn check(&self, now: u64) -> bool {
        let Ok(mut log) = self.log.lock() else {
            return false;
        };
        let longest = self.windows.last().map_or(0, |w| w.1);
        while log.front().is_some_and(|t| t + longest <= now) {
            log.pop_front();
        }
        let fits = self.windows.iter().all(|&(limit, w)| {
            let from = log.partition_point(|t| t + w <= now);
            log.len() - from < limit
        });
        if fits {
            log.push_back(now);
        }
        fits
    }
}

fn allowed(c: &mut Criterion) {
    let clock = SystemClock::new();
    let ten_ms = Duration::from_millis(10);
    // Limits far above what a loop can reach in the window: every decision admits.
    let one = Arc::new(Bucket::new("one", quota(1_000_000, ten_ms)));
    let three = Arc::new(Bucket::new(
        "three",
        Limits::new([
            quota(1_000_000, ten_ms),
            quota(5_000_000, Duration::from_millis(50)),
            quota(10_000_000, Duration::from_millis(100)),
        ]),
    ));
    let gov = RateLimiter::direct_with_clock(
        governor::Quota::with_period(Duration::from_nanos(10))
            .map_or(governor::Quota::per_second(nz(u32::MAX)), |q| {
                q.allow_burst(nz(1_000_000))
            }),
        MonotonicClock,
    );
    let log1 = MutexLog::new(vec![(1_000_000, 10_000_000)]);
    let log3 = MutexLog::new(vec![
        (1_000_000, 10_000_000),
        (5_000_000, 50_000_000),
        (10_000_000, 100_000_000),
    ]);

    let mut g = c.benchmark_group("allowed");
    g.bench_function("1-window/tower-quota (system clock)", |b| {
        b.iter(|| black_box(acquire(&[&one], 1, clock.now(), MaxWait::Never).is_ok()))
    });
    g.bench_function("3-window/tower-quota (system clock)", |b| {
        b.iter(|| black_box(acquire(&[&three], 1, clock.now(), MaxWait::Never).is_ok()))
    });
    g.bench_function("1-window/governor check (same clock)", |b| {
        b.iter(|| black_box(gov.check().is_ok()))
    });
    let gov_quanta =
        RateLimiter::direct(governor::Quota::per_second(nz(u32::MAX)).allow_burst(nz(1_000_000)));
    g.bench_function("1-window/governor check (its default quanta clock)", |b| {
        b.iter(|| black_box(gov_quanta.check().is_ok()))
    });
    let origin = Instant::now();
    g.bench_function("1-window/mutex sliding log (same clock)", |b| {
        b.iter(|| black_box(log1.check(origin.elapsed().as_nanos() as u64)))
    });
    g.bench_function("3-window/mutex sliding log (same clock)", |b| {
        b.iter(|| black_box(log3.check(origin.elapsed().as_nanos() as u64)))
    });

    // Exact storage, the seed-000 bucket (200/min, 600/h, 6000/day), time passed in:
    // 14.4 s apart, every request fits all three windows.
    let seed000 = Arc::new(Bucket::new(
        "contacts#search",
        Limits::new([
            Quota::per_minute(200),
            Quota::per_hour(600),
            Quota::per_day(6000),
        ]),
    ));
    let mut now = Nanos::ZERO;
    g.bench_function(
        "3-window exact 200/600/6000/tower-quota (now passed in)",
        |b| {
            b.iter(|| {
                now = now + Duration::from_millis(14_400);
                black_box(acquire(&[&seed000], 1, now, MaxWait::Never).is_ok())
            })
        },
    );
    // Both read the same manual clock, advanced 10 ns per decision: governor
    // through its FakeRelativeClock, tower-quota through a ManualClock.
    let fake = governor::clock::FakeRelativeClock::default();
    let gov_fake = RateLimiter::direct_with_clock(
        governor::Quota::with_period(Duration::from_nanos(1))
            .map_or(governor::Quota::per_second(nz(u32::MAX)), |q| {
                q.allow_burst(nz(1_000))
            }),
        fake.clone(),
    );
    g.bench_function("1-window/governor check (manual clock)", |b| {
        b.iter(|| {
            fake.advance(Duration::from_nanos(10));
            black_box(gov_fake.check().is_ok())
        })
    });
    // tower-quota reads the very same FakeRelativeClock.
    // Read as governor reads it: its nanoseconds, as a u64 (no Duration).
    let fake_now = |fake: &governor::clock::FakeRelativeClock| {
        use governor::clock::Clock as _;
        Nanos::new(fake.now().as_u64())
    };
    let big3 = Arc::new(Bucket::new(
        "three-manual",
        Limits::new([
            quota(1_000_000, ten_ms),
            quota(5_000_000, Duration::from_millis(50)),
            quota(10_000_000, Duration::from_millis(100)),
        ]),
    ));
    g.bench_function("3-window/tower-quota (manual clock)", |b| {
        b.iter(|| {
            fake.advance(Duration::from_nanos(10));
            black_box(acquire(&[&big3], 1, fake_now(&fake), MaxWait::Never).is_ok())
        })
    });
    let one_m = Arc::new(Bucket::new("one-manual", quota(1_000_000, ten_ms)));
    g.bench_function("1-window/tower-quota (manual clock)", |b| {
        b.iter(|| {
            fake.advance(Duration::from_nanos(10));
            black_box(acquire(&[&one_m], 1, fake_now(&fake), MaxWait::Never).is_ok())
        })
    });
    let campaigns = Arc::new(Bucket::new("campaigns/:id", Quota::per_minute(120)));
    let mut now1 = Nanos::ZERO;
    g.bench_function("1-window exact 120/min/tower-quota (now passed in)", |b| {
        b.iter(|| {
            now1 = now1 + Duration::from_millis(500);
            black_box(acquire(&[&campaigns], 1, now1, MaxWait::Never).is_ok())
        })
    });
    g.finish();
}

fn denied(c: &mut Criterion) {
    let clock = SystemClock::new();
    let spent = Arc::new(Bucket::new(
        "spent",
        Limits::new([
            Quota::per_minute(1),
            Quota::per_hour(10),
            Quota::per_day(100),
        ]),
    ));
    let _ = acquire(&[&spent], 1, clock.now(), MaxWait::Never);
    let gov = RateLimiter::direct_with_clock(governor::Quota::per_hour(nz(1)), MonotonicClock);
    let _ = gov.check();
    let log = MutexLog::new(vec![
        (1, 60_000_000_000),
        (10, 3_600_000_000_000),
        (100, 86_400_000_000_000),
    ]);
    let origin = Instant::now();
    let _ = log.check(0);

    let mut g = c.benchmark_group("denied");
    g.bench_function("3-window/tower-quota (system clock)", |b| {
        b.iter(|| black_box(acquire(&[&spent], 1, clock.now(), MaxWait::Never).is_err()))
    });
    g.bench_function("1-window/governor check (same clock)", |b| {
        b.iter(|| black_box(gov.check().is_err()))
    });
    g.bench_function("3-window/mutex sliding log (same clock)", |b| {
        b.iter(|| black_box(!log.check(origin.elapsed().as_nanos() as u64)))
    });
    g.finish();
}

/// Time per decision when `iters` decisions are split over two threads.
fn two_threads(iters: u64, decide: impl Fn() -> bool + Sync) -> Duration {
    let start = Instant::now();
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..iters / 2 {
                    black_box(decide());
                }
            });
        }
    });
    start.elapsed()
}

fn contended(c: &mut Criterion) {
    let clock = SystemClock::new();
    let bucket = Arc::new(Bucket::new(
        "shared",
        quota(1_000_000, Duration::from_millis(10)),
    ));
    let gov = RateLimiter::direct_with_clock(
        governor::Quota::per_second(nz(u32::MAX)).allow_burst(nz(1_000_000)),
        MonotonicClock,
    );
    let log = MutexLog::new(vec![(1_000_000, 10_000_000)]);
    let origin = Instant::now();

    let mut g = c.benchmark_group("two-threads-one-bucket");
    g.bench_function("allowed/tower-quota (system clock)", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                acquire(&[&bucket], 1, clock.now(), MaxWait::Never).is_ok()
            })
        })
    });
    g.bench_function("allowed/governor check (same clock)", |b| {
        b.iter_custom(|iters| two_threads(iters, || gov.check().is_ok()))
    });
    g.bench_function("allowed/mutex sliding log (same clock)", |b| {
        b.iter_custom(|iters| two_threads(iters, || log.check(origin.elapsed().as_nanos() as u64)))
    });
    g.finish();
}

fn keyed(c: &mut Criterion) {
    const KEYS: u64 = 10_000;
    let clock = SystemClock::new();
    // Each key is visited about once per millisecond: 10 per millisecond always admits.
    let ours: KeyedBuckets<u64> =
        KeyedBuckets::new("per_key", quota(10, Duration::from_millis(1)), 20_000);
    let gov = RateLimiter::dashmap_with_clock(
        governor::Quota::per_second(nz(u32::MAX)).allow_burst(nz(1_000_000)),
        MonotonicClock,
    );
    let logs: Mutex<HashMap<u64, VecDeque<u64>>> = Mutex::new(HashMap::new());
    for k in 0..KEYS {
        let _ = ours.acquire(&k, 1, clock.now(), MaxWait::Never);
        let _ = gov.check_key(&k);
    }
    let origin = Instant::now();

    let mut g = c.benchmark_group("keyed-10k");
    let mut k = 0u64;
    g.bench_function("allowed/tower-quota (system clock)", |b| {
        b.iter(|| {
            k = (k + 1) % KEYS;
            black_box(matches!(
                ours.acquire(&k, 1, clock.now(), MaxWait::Never),
                Ok(Grant::Now)
            ))
        })
    });
    g.bench_function("allowed/governor check_key (same clock)", |b| {
        b.iter(|| {
            k = (k + 1) % KEYS;
            black_box(gov.check_key(&k).is_ok())
        })
    });
    g.bench_function("allowed/mutex map of sliding logs (same clock)", |b| {
        b.iter(|| {
            k = (k + 1) % KEYS;
            let now = origin.elapsed().as_nanos() as u64;
            let Ok(mut logs) = logs.lock() else { return };
            let log = logs.entry(k).or_default();
            while log.front().is_some_and(|t| t + 10_000_000 <= now) {
                log.pop_front();
            }
            if log.len() < 10 {
                log.push_back(now);
            }
        })
    });
    // The same keys in a shuffled order: buckets made in key order sit in
    // memory in key order, so the round robin above lets the hardware
    // prefetcher fetch the next keys' state ahead. Shuffled, every contender
    // waits for its own state: the honest figure for real traffic.
    let mut order: Vec<u64> = (0..KEYS).collect();
    fastrand::Rng::with_seed(7).shuffle(&mut order);
    let mut i = 0usize;
    g.bench_function("allowed shuffled/tower-quota (system clock)", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            black_box(matches!(
                ours.acquire(&order[i], 1, clock.now(), MaxWait::Never),
                Ok(Grant::Now)
            ))
        })
    });
    g.bench_function("allowed shuffled/governor check_key (same clock)", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            black_box(gov.check_key(&order[i]).is_ok())
        })
    });
    // As the layer charges a keyed scope: the bucket marked as having a
    // request on its way (kept from eviction) until the response, here at once.
    g.bench_function(
        "allowed shuffled/tower-quota marked, as the layer (system clock)",
        |b| {
            b.iter(|| {
                i = (i + 1) % order.len();
                let now = clock.now();
                let Ok(on_its_way) = ours.bucket_in_flight(&order[i], now) else {
                    return false;
                };
                black_box(matches!(
                    acquire(&[on_its_way.bucket()], 1, now, MaxWait::Never),
                    Ok(Grant::Now)
                ))
            })
        },
    );
    // The shuffled decision in two parts: finding the bucket (and reading the
    // line of it that a lookup reads), and deciding on a bucket already found.
    g.bench_function(
        "shuffled parts/tower-quota lookup only (system clock)",
        |b| {
            b.iter(|| {
                i = (i + 1) % order.len();
                black_box(ours.with_bucket(&order[i], clock.now(), |b| Arc::as_ptr(b) as usize))
            })
        },
    );
    let found: Vec<Arc<Bucket>> = (0..KEYS)
        .filter_map(|k| ours.bucket(&k, clock.now()).ok())
        .collect();
    g.bench_function(
        "shuffled parts/tower-quota decision only (system clock)",
        |b| {
            b.iter(|| {
                i = (i + 1) % order.len();
                let bucket = &found[order[i] as usize % found.len()];
                black_box(matches!(
                    acquire(&[bucket], 1, clock.now(), MaxWait::Never),
                    Ok(Grant::Now)
                ))
            })
        },
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = allowed, denied, contended, keyed
}
criterion_main!(benches);
