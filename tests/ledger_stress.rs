//! Many threads, one set of buckets: the departures the engine hands out never
//! break a window, whatever the interleaving.
//!
//! 8 threads make 1,000,000 decisions between them on two route buckets (one with
//! two sliding windows), an API-key bucket and a fixed-window bucket, each request
//! charged to a route and the key (and a third of them to the fixed bucket too).
//! Some wait with a reservation, which is then either used or dropped. Time is a
//! shared counter every decision advances by one microsecond, so the run covers
//! thousands of windows; no thread ever sleeps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tower_quota::clock::Nanos;
use tower_quota::ledger::{acquire, Bucket, Grant, MaxWait};
use tower_quota::quota::{Limits, Quota};

const THREADS: usize = 8;
const DECISIONS: usize = 1_000_000;
const US: u64 = 1_000;

struct Spec {
    name: &'static str,
    windows: Vec<(u32, u64, bool)>, // limit, window (ns), fixed at anchor 0
}

fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "route-a",
            windows: vec![(20, 100 * US, false), (150, 1000 * US, false)],
        },
        Spec {
            name: "route-b",
            windows: vec![(15, 80 * US, false)],
        },
        Spec {
            name: "key",
            windows: vec![(30, 100 * US, false)],
        },
        // A ring of four slots: sixteen turns take 64 units, so a claimer
        // preempted between reading and writing a slot sleeps through them.
        Spec {
            name: "tiny",
            windows: vec![(1, 3 * US, false)],
        },
        Spec {
            name: "fixed",
            windows: vec![(10, 50 * US, true)],
        },
    ]
}

fn build(spec: &Spec) -> Arc<Bucket> {
    let quotas = spec.windows.iter().map(|&(limit, ns, fixed)| {
        let q = Quota::new(limit, Duration::from_nanos(ns)).unwrap_or(Quota::per_second(1));
        if fixed {
            q.fixed(Nanos::ZERO)
        } else {
            q
        }
    });
    Arc::new(Bucket::new(spec.name, Limits::new(quotas)))
}

/// A tiny deterministic generator per thread (no shared state, no locks).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn eight_threads_a_million_decisions_never_break_a_window() {
    let specs = specs();
    let buckets: Arc<Vec<Arc<Bucket>>> = Arc::new(specs.iter().map(build).collect());
    let clock = Arc::new(AtomicU64::new(0));

    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (buckets, clock) = (buckets.clone(), clock.clone());
            thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1));
                // departures per bucket index, and counts of outcomes
                let mut departures: Vec<Vec<u64>> = vec![Vec::new(); buckets.len()];
                let (mut now_grants, mut later, mut cancelled, mut refused) =
                    (0u64, 0u64, 0u64, 0u64);
                for _ in 0..DECISIONS / THREADS {
                    let now = clock.fetch_add(US, Ordering::Relaxed);
                    let r = rng.next();
                    let route = (r % 2) as usize;
                    let mut which = vec![route, 2];
                    if r % 3 == 0 {
                        which.push(4);
                    }
                    if r % 5 == 0 {
                        which.push(3);
                    }
                    let refs: Vec<&Arc<Bucket>> = which.iter().map(|&i| &buckets[i]).collect();
                    let wait = if r % 10 < 7 {
                        MaxWait::Never
                    } else {
                        MaxWait::Up(Duration::from_micros(300))
                    };
                    match acquire(&refs, 1, Nanos::new(now), wait) {
                        Ok(Grant::Now) => {
                            now_grants += 1;
                            for &i in &which {
                                departures[i].push(now);
                            }
                        }
                        Ok(Grant::Later(res)) => {
                            assert!(res.departure().as_u64() > now);
                            if (r >> 8) % 2 == 0 {
                                later += 1;
                                for &i in &which {
                                    departures[i].push(res.departure().as_u64());
                                }
                                res.depart();
                            } else {
                                cancelled += 1;
                                drop(res);
                            }
                        }
                        Err(_) => refused += 1,
                    }
                }
                (departures, [now_grants, later, cancelled, refused])
            })
        })
        .collect();

    let mut all: Vec<Vec<u64>> = vec![Vec::new(); specs.len()];
    let mut totals = [0u64; 4];
    for h in handles {
        let (deps, counts) = h.join().expect("a worker panicked");
        for (a, d) in all.iter_mut().zip(deps) {
            a.extend(d);
        }
        for (t, c) in totals.iter_mut().zip(counts) {
            *t += c;
        }
    }
    assert_eq!(totals.iter().sum::<u64>(), DECISIONS as u64);
    assert!(
        totals[0] > 10_000 && totals[1] > 1_000 && totals[2] > 1_000 && totals[3] > 10_000,
        "the run must exercise every path: {totals:?}"
    );

    for (spec, deps) in specs.iter().zip(all.iter_mut()) {
        deps.sort_unstable();
        for &(limit, w, fixed) in &spec.windows {
            let max = if fixed {
                max_in_fixed(deps, w)
            } else {
                max_in_sliding(deps, w)
            };
            assert!(
                max <= limit as usize,
                "{}: {max} departures in one {w} ns window, limit {limit}",
                spec.name
            );
        }
    }
    // Utilisation: the key bucket is the shared bottleneck; it must be kept busy.
    let span = clock.load(Ordering::Relaxed);
    let key_max = 30.0 * (span as f64 / (100 * US) as f64);
    let used = all[2].len() as f64 / key_max;
    assert!(used > 0.5, "key bucket used {used:.2} of its allowance");
}

fn max_in_sliding(sorted: &[u64], w: u64) -> usize {
    let (mut lo, mut max) = (0, 0);
    for hi in 0..sorted.len() {
        while sorted[lo] + w <= sorted[hi] {
            lo += 1;
        }
        max = max.max(hi - lo + 1);
    }
    max
}

fn max_in_fixed(sorted: &[u64], w: u64) -> usize {
    let (mut max, mut run, mut current) = (0, 0, u64::MAX);
    for t in sorted {
        if t / w == current {
            run += 1;
        } else {
            current = t / w;
            run = 1;
        }
        max = max.max(run);
    }
    max
}

/// Two threads each hold 1500 reservations on one bucket and drop them in
/// scrambled orders at the same time: every unit comes back.
#[test]
fn concurrent_cancellation_gives_every_unit_back() {
    for round in 0..20u64 {
        let b = Arc::new(Bucket::new("route", Quota::per_second(20)));
        let mut admitted = 0;
        let mut held: Vec<Vec<tower_quota::ledger::Reservation>> = vec![Vec::new(), Vec::new()];
        for i in 0..3020u64 {
            match acquire(&[&b], 1, Nanos::ZERO, MaxWait::Forever) {
                Ok(Grant::Now) => admitted += 1,
                Ok(Grant::Later(r)) => held[(i % 2) as usize].push(r),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(admitted, 20);
        let handles: Vec<_> = held
            .into_iter()
            .enumerate()
            .map(|(t, mut rs)| {
                thread::spawn(move || {
                    let mut rng = Rng(0xDEAD_BEEF ^ (t as u64 + 1) ^ (round << 8));
                    while !rs.is_empty() {
                        let k = (rng.next() % rs.len() as u64) as usize;
                        drop(rs.swap_remove(k));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a dropper panicked");
        }
        let s = b.state(Nanos::ZERO);
        assert_eq!(s.units_charged, 20, "round {round}: {s:?}");
    }
}
