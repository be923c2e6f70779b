//! What the dense keyed table that BENCHMARKS.md proposes ("Keyed decisions,
//! timed") would buy, before anyone builds it: a prototype of its admit-now
//! decision, beside `KeyedBuckets` and governor's `check_key`, over the same
//! 10,000 keys in the same shuffled order, on the same clock, in one run.
//!
//! Run: `cargo bench --bench keyed_dense`.
//!
//! The prototype is not the crate's engine and is not used by it. Each key
//! has one 128-byte slot found from its hash by linear probing, with no
//! pointer to follow: a 128-bit head (units charged, latest departure), the
//! key, and a ring of 13 departure times (a limit of 10 and 3 of headroom).
//! A decision reads the head, looks back `limit` units in the ring, swaps the
//! head and writes its time. It leaves out what the crate's decision does
//! beyond that (ring laps, several windows, blocks, holds, pacing,
//! reservations, eviction), so it is a lower bound on a dense design's cost.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use governor::clock::MonotonicClock;
use governor::RateLimiter;
use portable_atomic::AtomicU128;
use tower_quota::clock::{Clock, SystemClock};
use tower_quota::ledger::{Grant, KeyedBuckets, MaxWait};
use tower_quota::quota::Quota;

const KEYS: u64 = 10_000;
const LIMIT: u64 = 10;
const WINDOW: u64 = 1_000_000; // 1 ms
const RING: usize = 13;

/// One key's state: two cache lines.
#[repr(C, align(128))]
struct Slot {
    /// Units charged (low 64 bits) and the latest departure (high 64 bits).
    head: AtomicU128,
    /// The key plus one (0: empty).
    key: AtomicU64,
    ring: [AtomicU64; RING],
}

struct Dense {
    slots: Box<[Slot]>,
    hasher: foldhash::fast::RandomState,
}

impl Dense {
    fn new(slots: usize) -> Dense {
        Dense {
            slots: (0..slots)
                .map(|_| Slot {
                    head: AtomicU128::new(0),
                    key: AtomicU64::new(0),
                    ring: std::array::from_fn(|_| AtomicU64::new(0)),
                })
                .collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn slot(&self, key: u64) -> Option<&Slot> {
        use std::hash::BuildHasher;
        let n = self.slots.len();
        let h = self.hasher.hash_one(key);
        let mut i = ((u128::from(h) * n as u128) >> 64) as usize;
        for _ in 0..n {
            let s = &self.slots[i];
            match s.key.load(Ordering::Acquire) {
                k if k == key + 1 => return Some(s),
                0 => match s
                    .key
                    .compare_exchange(0, key + 1, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return Some(s),
                    Err(k) if k == key + 1 => return Some(s),
                    Err(_) => {}
                },
                _ => {}
            }
            i = if i + 1 == n { 0 } else { i + 1 };
        }
        None
    }

    fn check(&self, key: u64, now: u64) -> bool {
        let Some(s) = self.slot(key) else {
            return false;
        };
        let mut head = s.head.load(Ordering::Acquire);
        loop {
            let (units, last) = (head as u64, (head >> 64) as u64);
            if units >= LIMIT {
                let t = s.ring[((units - LIMIT) % RING as u64) as usize].load(Ordering::Acquire);
                if t + WINDOW > now {
                    return false;
                }
            }
            let new = u128::from(units + 1) | u128::from(last.max(now)) << 64;
            match s
                .head
                .compare_exchange(head, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    s.ring[(units % RING as u64) as usize].store(now, Ordering::Release);
                    return true;
                }
                Err(found) => head = found,
            }
        }
    }
}

fn dense(c: &mut Criterion) {
    let clock = SystemClock::new();
    let quota =
        Quota::new(LIMIT as u32, Duration::from_nanos(WINDOW)).unwrap_or(Quota::per_second(10));
    let ours: KeyedBuckets<u64> = KeyedBuckets::new("per_key", quota, 20_000);
    let gov = RateLimiter::dashmap_with_clock(
        governor::Quota::per_second(NonZeroU32::MAX)
            .allow_burst(NonZeroU32::new(1_000_000).unwrap_or(NonZeroU32::MIN)),
        MonotonicClock,
    );
    // 12,800 slots (1.6 MB): 10,000 keys at a load of 0.78.
    let table = Dense::new(12_800);
    for k in 0..KEYS {
        let _ = ours.acquire(&k, 1, clock.now(), MaxWait::Never);
        let _ = gov.check_key(&k);
        let _ = table.check(k, clock.now().as_u64());
    }
    let mut order: Vec<u64> = (0..KEYS).collect();
    fastrand::Rng::with_seed(7).shuffle(&mut order);

    let mut g = c.benchmark_group("keyed-10k-shuffled");
    let mut i = 0usize;
    g.bench_function("dense table prototype (system clock)", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            black_box(table.check(order[i], clock.now().as_u64()))
        })
    });
    g.bench_function("tower-quota KeyedBuckets (system clock)", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            black_box(matches!(
                ours.acquire(&order[i], 1, clock.now(), MaxWait::Never),
                Ok(Grant::Now)
            ))
        })
    });
    g.bench_function("governor check_key (same clock)", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            black_box(gov.check_key(&order[i]).is_ok())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = dense
}
criterion_main!(benches);
