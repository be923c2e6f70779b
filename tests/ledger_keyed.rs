//! Keyed buckets (accounts, API keys): created on first use, evicted when idle,
//! capped, never losing a charge to an eviction; pacing; memory per bucket.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tower_quota::clock::Nanos;
use tower_quota::ledger::{acquire, Bucket, Grant, KeyedBuckets, MaxWait, Refusal};
use tower_quota::quota::{Limits, Pacing, Quota, Storage};

#[test]
fn the_cap_holds_and_idle_buckets_make_room() {
    let keys: KeyedBuckets<u32> = KeyedBuckets::new("per_account", Quota::per_second(5), 100);
    for k in 0..100 {
        assert!(keys.acquire(&k, 1, Nanos::ZERO, MaxWait::Never).is_ok());
    }
    assert_eq!(keys.len(), 100);
    // All 100 are active (charged within the last second): a new key is refused.
    let r = keys.acquire(&1000, 1, Nanos::from_millis(500), MaxWait::Never);
    assert!(
        matches!(r, Err(Refusal::TooManyKeys { cap: 100, .. })),
        "{r:?}"
    );
    assert_eq!(keys.len(), 100, "the cap holds");
    // Once they are idle for longer than the window, they are evicted for it.
    let later = Nanos::from_secs(2);
    assert!(keys.acquire(&1000, 1, later, MaxWait::Never).is_ok());
    assert!(keys.len() <= 100);
    let before = keys.len();
    assert_eq!(keys.evict_idle(Nanos::from_secs(10)), before);
    assert!(keys.is_empty());
}

#[test]
fn a_blocked_bucket_is_not_idle() {
    let keys: KeyedBuckets<&str> = KeyedBuckets::new("per_key", Quota::per_second(5), 10);
    let b = keys
        .bucket(&"k", Nanos::ZERO)
        .unwrap_or_else(|e| panic!("{e}"));
    b.block_until(Nanos::from_secs(60));
    assert_eq!(
        keys.evict_idle(Nanos::from_secs(30)),
        0,
        "a 429 block must survive eviction"
    );
    assert_eq!(keys.evict_idle(Nanos::from_secs(61)), 1);
}

#[test]
fn labels_never_show_the_key() {
    let keys: KeyedBuckets<String> = KeyedBuckets::new("api_key", Quota::per_second(1), 10);
    let secret = "sk_live_0123456789abcdef".to_string();
    let _ = keys.acquire(&secret, 1, Nanos::ZERO, MaxWait::Never);
    let r = keys.acquire(&secret, 1, Nanos::ZERO, MaxWait::Never);
    let Err(refusal) = r else {
        panic!("expected a refusal")
    };
    let shown = format!("{refusal} {refusal:?} {keys:?}");
    assert!(!shown.contains("sk_live"), "{shown}");
    assert!(shown.contains("api_key#"), "{shown}");
}

/// A caller that read its clock before an eviction and charges after it must
/// not find an empty bucket: the new bucket for the key leaves nothing before
/// the evicted one's units stopped counting.
#[test]
fn a_key_made_again_leaves_nothing_before_its_evicted_bucket_stopped_counting() {
    let keys: KeyedBuckets<u8> = KeyedBuckets::new(
        "per_key",
        Quota::new(3, Duration::from_nanos(1_000)).unwrap_or(Quota::per_second(1)),
        8,
    );
    for t in [100, 101, 102] {
        let g = keys.acquire(&7, 1, Nanos::new(t), MaxWait::Never);
        assert!(matches!(g, Ok(Grant::Now)), "{g:?}");
    }
    assert_eq!(keys.evict_idle(Nanos::new(2_000)), 1);
    assert!(keys.is_empty());
    // A clock read at 500, before the eviction: the evicted bucket still had
    // three units in the window ending then.
    let stale = keys.acquire(&7, 1, Nanos::new(500), MaxWait::Never);
    assert!(matches!(stale, Err(Refusal::WouldWait { .. })), "{stale:?}");
    // From 1102 (the last unit at 102 plus the window) the key has room again.
    let fresh = keys.acquire(&7, 1, Nanos::new(1_102), MaxWait::Never);
    assert!(matches!(fresh, Ok(Grant::Now)), "{fresh:?}");
}

/// Threads charge a few keys while another evicts as hard as it can: a charge
/// that lands on a bucket being evicted is retried on the new one, so no key's
/// window ever holds more than its limit.
#[test]
fn eviction_never_loses_a_charge() {
    const LIMIT: u64 = 3;
    let keys: Arc<KeyedBuckets<u8>> = Arc::new(KeyedBuckets::new(
        "per_key",
        Quota::new(LIMIT as u32, Duration::from_nanos(1_000)).unwrap_or(Quota::per_second(1)),
        8,
    ));
    let clock = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicU64::new(0));
    // Evictions so far: the workers go on until there have been enough, so
    // that an evictor starved of CPU (8 copies of this test on 2 cores) still
    // gets its chances.
    let evicted = Arc::new(AtomicU64::new(0));
    let evictor = {
        let (keys, clock, stop, evicted) =
            (keys.clone(), clock.clone(), stop.clone(), evicted.clone());
        thread::spawn(move || {
            while stop.load(Ordering::Relaxed) == 0 {
                let n = keys.evict_idle(Nanos::new(clock.load(Ordering::Relaxed)));
                evicted.fetch_add(n as u64, Ordering::Relaxed);
            }
        })
    };
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (keys, clock, evicted) = (keys.clone(), clock.clone(), evicted.clone());
            thread::spawn(move || {
                let mut admitted = Vec::new();
                for i in 0..2_000_000u64 {
                    if i >= 50_000 && evicted.load(Ordering::Relaxed) > 10 {
                        break;
                    }
                    // time jumps ahead now and then, so buckets go idle and get evicted
                    let step = if i % 97 == 0 { 5_000 } else { 1 };
                    let now = clock.fetch_add(step, Ordering::Relaxed) + step;
                    let key = ((i + t) % 4) as u8;
                    if let Ok(Grant::Now) = keys.acquire(&key, 1, Nanos::new(now), MaxWait::Never) {
                        admitted.push((key, now));
                    }
                }
                admitted
            })
        })
        .collect();
    let mut all: Vec<(u8, u64)> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap_or_default())
        .collect();
    stop.store(1, Ordering::Relaxed);
    let _ = evictor.join();
    let evicted = evicted.load(Ordering::Relaxed);
    assert!(evicted > 10, "the test must actually evict ({evicted})");
    all.sort_unstable();
    for key in 0..4u8 {
        let times: Vec<u64> = all
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, t)| *t)
            .collect();
        assert!(times.len() > 100);
        // Sorted: the units in the window ending at `t` are those from `lo` on.
        let mut lo = 0;
        for (i, t) in times.iter().enumerate() {
            while times[lo] + 1_000 <= *t {
                lo += 1;
            }
            let in_window = (i + 1 - lo) as u64;
            assert!(
                in_window <= LIMIT,
                "key {key}: {in_window} in the window ending at {t}"
            );
        }
    }
}

#[test]
fn pacing_spreads_a_window_evenly() {
    // 200 per minute, paced one every 300 ms with bursts of up to 5.
    let q = Quota::per_minute(200);
    let b = Arc::new(Bucket::new(
        "paced",
        Limits::from(q).paced(Pacing::spread(
            &q,
            NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
        )),
    ));
    let mut departures = Vec::new();
    for _ in 0..200 {
        match acquire(&[&b], 1, Nanos::ZERO, MaxWait::Forever) {
            Ok(Grant::Now) => departures.push(0),
            Ok(Grant::Later(r)) => {
                departures.push(r.departure().as_u64());
                r.depart();
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(&departures[..5], &[0; 5], "a burst of five goes at once");
    for w in departures[5..].windows(2) {
        assert_eq!(w[1] - w[0], 300_000_000, "then one every 300 ms");
    }
    // GCRA: after the burst of five, the sixth leaves at 300 ms and the 200th at
    // 195 * 300 ms = 58.5 s: the minute's allowance, evenly spent.
    assert_eq!(departures[5], 300_000_000);
    assert_eq!(departures[199], 58_500_000_000);
}

#[test]
fn a_paced_bucket_gives_its_slot_back_when_cancelled() {
    let p = Pacing::new(Duration::from_secs(1), NonZeroU32::MIN);
    let b = Arc::new(Bucket::new(
        "paced",
        Limits::from(Quota::per_minute(100)).paced(p),
    ));
    assert!(matches!(
        acquire(&[&b], 1, Nanos::ZERO, MaxWait::Never),
        Ok(Grant::Now)
    ));
    let r = acquire(&[&b], 1, Nanos::ZERO, MaxWait::Forever);
    let Ok(Grant::Later(r)) = r else {
        panic!("expected a reservation")
    };
    assert_eq!(r.departure(), Nanos::from_secs(1));
    drop(r);
    let again = acquire(&[&b], 1, Nanos::ZERO, MaxWait::Forever);
    let Ok(Grant::Later(again)) = again else {
        panic!("expected a reservation")
    };
    assert_eq!(again.departure(), Nanos::from_secs(1), "the slot came back");
}

/// The figures BENCHMARKS.md states for memory per bucket.
#[test]
fn memory_per_bucket() {
    let seed000 = Bucket::new(
        "api/v1/contacts#search",
        Limits::new([
            Quota::per_minute(200),
            Quota::per_hour(600),
            Quota::per_day(6000),
        ]),
    );
    let bytes = seed000.footprint();
    println!("exact 200/600/6000 bucket: {bytes} bytes");
    // One ring of 8192 slots shared by the three exact windows (not three).
    assert!(bytes < 70_000, "{bytes}");

    let million = Bucket::new("big", Quota::per_day(1_000_000));
    let bounded = million.footprint();
    println!("1,000,000/day bucket (auto: bounded, 4096 slots): {bounded} bytes");
    assert!(bounded < 70_000, "{bounded}");

    let slots = NonZeroU32::new(64).unwrap_or(NonZeroU32::MIN);
    let small = Bucket::new(
        "seed000-bounded",
        Limits::new([
            Quota::per_minute(200),
            Quota::per_hour(600),
            Quota::per_day(6000),
        ])
        .storage(Storage::Bounded { slots }),
    );
    println!(
        "200/600/6000 bounded to 64 slots: {} bytes",
        small.footprint()
    );
    assert!(small.footprint() < 4_000);

    let account = Bucket::new("per_account", Quota::per_minute(25));
    println!(
        "25/minute (seed 002 per-account): {} bytes",
        account.footprint()
    );
    assert!(account.footprint() < 1_000);
}

/// The map grows while other threads list the scope: every listing shows each
/// bucket once (a table being resized may show an entry twice), and every key
/// inserted before a listing began is in it.
#[test]
fn listing_a_growing_scope_shows_each_bucket_once() {
    const KEYS: u64 = 20_000;
    let scope: Arc<KeyedBuckets<u64>> = Arc::new(KeyedBuckets::new(
        "per_account",
        Quota::per_minute(10),
        KEYS as usize,
    ));
    let inserted = Arc::new(AtomicU64::new(0));
    let writer = {
        let (scope, inserted) = (scope.clone(), inserted.clone());
        thread::spawn(move || {
            for k in 0..KEYS {
                assert!(
                    scope.bucket(&k, Nanos::ZERO).is_ok(),
                    "key {k}: within the cap"
                );
                inserted.store(k + 1, Ordering::SeqCst);
            }
        })
    };
    let mut listings = 0;
    loop {
        let before = inserted.load(Ordering::SeqCst);
        let all = scope.buckets();
        let mut seen: Vec<usize> = all.iter().map(|b| Arc::as_ptr(b) as usize).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), all.len(), "a bucket listed twice");
        assert!(
            all.len() as u64 >= before,
            "{} listed, {before} inserted before",
            all.len()
        );
        listings += 1;
        if before == KEYS {
            break;
        }
    }
    writer.join().expect("the writer");
    assert_eq!(scope.len(), KEYS as usize);
    assert!(listings > 1, "the listings raced the insertions");
}

/// Four threads churn 200,000 keys through a scope capped at 1,000: the
/// scope's count of its buckets stays exact (it is kept beside the map, whose
/// own count reads the whole table) and within the cap but for the threads
/// racing at it.
#[test]
fn churning_keys_keeps_the_count_exact_and_within_the_cap() {
    const CAP: usize = 1_000;
    let scope: Arc<KeyedBuckets<u64>> = Arc::new(KeyedBuckets::new(
        "per_key",
        Quota::new(10, Duration::from_millis(1)).unwrap_or(Quota::per_second(10)),
        CAP,
    ));
    let clock = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (scope, clock) = (scope.clone(), clock.clone());
            thread::spawn(move || {
                let mut refused = 0;
                for k in 0..50_000u64 {
                    // 10 us apart: a bucket is idle a millisecond after its use.
                    let now = Nanos::new(clock.fetch_add(10_000, Ordering::SeqCst));
                    // Waits allowed: a thread preempted since it read the
                    // clock may find a new bucket starting at the floor of
                    // its slot, raised by the eviction of a key that shares
                    // it, which is after its `now` (81-118 such waits a run,
                    // 527-548 with one floor for the scope).
                    if scope
                        .acquire(&(t << 32 | k), 1, now, MaxWait::Forever)
                        .is_err()
                    {
                        refused += 1;
                    }
                    assert!(scope.len() <= CAP + 4, "{} buckets", scope.len());
                }
                refused
            })
        })
        .collect();
    let refused: u32 = threads
        .into_iter()
        .map(|t| t.join().expect("a churner"))
        .sum();
    assert_eq!(scope.len(), scope.buckets().len());
    assert!(scope.len() <= CAP);
    // Evictions made room every time: a new key is refused only when the
    // scope is full of buckets used in the last millisecond (about 100).
    assert_eq!(refused, 0);
}
