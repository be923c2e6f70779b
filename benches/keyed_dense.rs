//! The floor under any exact keyed design: what a dense keyed table (the
//! layout BENCHMARKS.md's "Keyed decisions, timed" weighs) would cost at the
//! very least, beside `KeyedBuckets` and governor's `check_key`, over the
//! same 10,000 keys in the same shuffled order, on the same clock, in one
//! run.
//!
//! Run: `cargo bench --bench keyed_dense`.
//!
//! The prototype is not the crate's engine and is not used by it. Each key
//! has one slot found from its hash by linear probing, with no pointer to
//! follow: a 128-bit head (units charged, latest departure), the key, and a
//! ring of departure times inline. A decision reads the head, looks back
//! `limit` units in the ring, swaps the head and writes its time. That is
//! all an exact sliding log must do; it leaves out everything else the
//! crate's decision does (ring laps, several windows, blocks, holds,
//! widening, pacing, reservations, eviction, growing the table), so each row
//! is a lower bound for a slot of its size:
//! - a 128-byte slot (a ring of 13: a limit of 10, no room for reservations),
//!   the ring written with a plain store: what the first prototype timed. A
//!   writer preempted between its head and its ring write can wake sixteen
//!   laps later and put a stale time over a newer one; the engine's stress
//!   test caught exactly that, so the engine writes by compare-and-swap;
//! - the same slot written by compare-and-swap, as the engine must;
//! - a 256-byte slot (a ring of 29: what a limit of 10 needs with the
//!   engine's room for waiters, 32 slots, is a little more);
//! - a 512-byte slot (a ring of 61: seed 002's 25 a minute per account needs
//!   64 slots with that room).

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
/// 10,000 keys at a load of 0.78.
const SLOTS: usize = 12_800;

/// One key's state: a head, the key and `RING` times, 64-byte aligned.
#[repr(C, align(64))]
struct Slot<const RING: usize> {
    /// Units charged (low 64 bits) and the latest departure (high 64 bits).
    head: AtomicU128,
    /// The key plus one (0: empty).
    key: AtomicU64,
    ring: [AtomicU64; RING],
}

/// How a decision writes its departure into the ring.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    /// A plain store: fast, and wrong under preemption (see the module docs).
    Store,
    /// Only over an older time, by compare-and-swap, as the engine does.
    Swap,
}

struct Dense<const RING: usize> {
    slots: Box<[Slot<RING>]>,
    hasher: foldhash::fast::RandomState,
}

impl<const RING: usize> Dense<RING> {
    fn new() -> Self {
        Dense {
            slots: (0..SLOTS)
                .map(|_| Slot {
                    head: AtomicU128::new(0),
                    key: AtomicU64::new(0),
                    ring: std::array::from_fn(|_| AtomicU64::new(0)),
                })
                .collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn slot(&self, key: u64) -> Option<&Slot<RING>> {
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

    #[inline]
    fn check(&self, key: u64, now: u64, write: Write) -> bool {
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
                    let slot = &s.ring[(units % RING as u64) as usize];
                    match write {
                        Write::Store => slot.store(now, Ordering::Release),
                        Write::Swap => {
                            let old = slot.load(Ordering::Acquire);
                            if old < now {
                                let _ = slot.compare_exchange(
                                    old,
                                    now,
                                    Ordering::AcqRel,
                                    Ordering::Relaxed,
                                );
                            }
                        }
                    }
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
    let (slot128, slot256, slot512) = (Dense::<13>::new(), Dense::<29>::new(), Dense::<61>::new());
    for k in 0..KEYS {
        let _ = ours.acquire(&k, 1, clock.now(), MaxWait::Never);
        let _ = gov.check_key(&k);
        let now = clock.now().as_u64();
        let _ = slot128.check(k, now, Write::Swap);
        let _ = slot256.check(k, now, Write::Swap);
        let _ = slot512.check(k, now, Write::Swap);
    }
    let mut order: Vec<u64> = (0..KEYS).collect();
    fastrand::Rng::with_seed(7).shuffle(&mut order);

    let mut g = c.benchmark_group("keyed-10k-shuffled");
    let mut i = 0usize;
    let mut next = || {
        i = (i + 1) % order.len();
        order[i]
    };
    g.bench_function("dense 128 B, ring by plain store (system clock)", |b| {
        b.iter(|| black_box(slot128.check(next(), clock.now().as_u64(), Write::Store)))
    });
    g.bench_function("dense 128 B (system clock)", |b| {
        b.iter(|| black_box(slot128.check(next(), clock.now().as_u64(), Write::Swap)))
    });
    g.bench_function("dense 256 B (system clock)", |b| {
        b.iter(|| black_box(slot256.check(next(), clock.now().as_u64(), Write::Swap)))
    });
    g.bench_function("dense 512 B (system clock)", |b| {
        b.iter(|| black_box(slot512.check(next(), clock.now().as_u64(), Write::Swap)))
    });
    g.bench_function("tower-quota KeyedBuckets (system clock)", |b| {
        b.iter(|| {
            black_box(matches!(
                ours.acquire(&next(), 1, clock.now(), MaxWait::Never),
                Ok(Grant::Now)
            ))
        })
    });
    g.bench_function("governor check_key (same clock)", |b| {
        b.iter(|| black_box(gov.check_key(&next()).is_ok()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = dense
}
criterion_main!(benches);
