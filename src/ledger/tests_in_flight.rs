//! Requests on their way against eviction (`in_flight.rs`): a marked bucket
//! is never evicted, an evicted one takes no mark, and its key gets a new
//! bucket that starts where the evicted one's units stop counting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::bucket::Snapshot;
use super::{acquire, Bucket, Grant, KeyedBuckets, MaxWait, Refusal};
use crate::clock::Nanos;
use crate::quota::Quota;

const MS: u64 = 1_000_000;

/// 5 per 10 ms per key.
fn scope() -> KeyedBuckets<u64> {
    let quota = Quota::new(5, Duration::from_millis(10)).unwrap_or(Quota::per_second(500));
    KeyedBuckets::new("per_account", quota, 1_000_000)
}

fn admitted(r: Result<Grant, Refusal>) -> bool {
    matches!(r, Ok(Grant::Now))
}

/// Key 1's bucket, new, and its state as an eviction at `now` finds it: idle.
fn found_idle(accounts: &KeyedBuckets<u64>, now: Nanos) -> (Arc<Bucket>, Snapshot) {
    let Ok(bucket) = accounts.bucket(&1, Nanos::ZERO) else {
        panic!("room")
    };
    let s = bucket.snapshot();
    assert!(bucket.is_idle(&s, now.as_u64()));
    (bucket, s)
}

#[test]
fn a_bucket_on_its_way_is_kept_and_what_its_response_taught_stays_with_the_key() {
    let accounts = scope();
    let Ok(on_its_way) = accounts.bucket_in_flight(&1, Nanos::ZERO) else {
        panic!("room")
    };
    let bucket = on_its_way.bucket().clone();
    assert!(admitted(acquire(
        &[&bucket],
        1,
        Nanos::ZERO,
        MaxWait::Never
    )));
    // Three windows later its response comes back: a 429 for 1 s.
    assert_eq!(accounts.evict_idle(Nanos::new(30 * MS)), 0);
    bucket.block_until(Nanos::from_secs(1));
    drop(on_its_way);
    assert_eq!(accounts.evict_idle(Nanos::new(40 * MS)), 0, "blocked");
    assert!(matches!(
        accounts.acquire(&1, 1, Nanos::new(40 * MS), MaxWait::Never),
        Err(Refusal::WouldWait { .. })
    ));
    // Two on their way: kept until both are done.
    let a = accounts.bucket_in_flight(&1, Nanos::from_secs(2));
    let b = accounts.bucket_in_flight(&1, Nanos::from_secs(2));
    assert!(matches!((&a, &b), (Ok(x), Ok(y)) if Arc::ptr_eq(x.bucket(), y.bucket())));
    drop(a);
    assert_eq!(accounts.evict_idle(Nanos::from_secs(2)), 0);
    drop(b);
    assert_eq!(accounts.evict_idle(Nanos::from_secs(2)), 1);
    assert_eq!(accounts.len(), 0);
}

/// The eviction found the bucket idle, then a request marked it: the
/// eviction does not go through, and the request's decision does.
#[test]
fn a_bucket_marked_after_it_was_found_idle_is_not_evicted() {
    let accounts = scope();
    let now = Nanos::from_secs(1);
    let (bucket, s) = found_idle(&accounts, now);
    let Ok(on_its_way) = accounts.bucket_in_flight(&1, now) else {
        panic!("marked")
    };
    assert!(Arc::ptr_eq(on_its_way.bucket(), &bucket));
    let mut stopped = None;
    assert!(!bucket.retire_from(s, now.as_u64(), |u| stopped = Some(u)));
    assert_eq!(
        stopped, None,
        "nothing raised for an eviction that did not start"
    );
    assert!(admitted(acquire(&[&bucket], 1, now, MaxWait::Never)));
    drop(on_its_way);
}

/// The eviction found the bucket idle; before its swap, a caller marked
/// it, blocked it (a 429's answer, which moves no head) and let it go, so
/// the count is 0 again: the eviction looks again once marks are shut out,
/// and the block stays with the key. Widenings and holds move no head
/// either; the same second look covers them.
#[test]
fn a_block_made_after_the_bucket_was_found_idle_is_not_evicted_with_it() {
    let accounts = scope();
    let now = Nanos::from_secs(1);
    let (bucket, s) = found_idle(&accounts, now);
    let Ok(on_its_way) = accounts.bucket_in_flight(&1, now) else {
        panic!("marked")
    };
    on_its_way.bucket().block_until(Nanos::from_secs(60));
    drop(on_its_way);
    assert!(!bucket.retire_from(s, now.as_u64(), |_| ()));
    assert!(!bucket.is_evicted());
    assert_eq!(bucket.blocked_until(now), Some(Nanos::from_secs(60)));
    assert_eq!(accounts.evict_idle(now), 0, "blocked: kept");
    assert!(bucket.mark_in_flight(), "open to marks again");
    bucket.unmark_in_flight();
    // The block is over; a response 5 ms late holds the window until 10 ms
    // after it came back.
    let later = Nanos::from_secs(61);
    let s = bucket.snapshot();
    assert!(bucket.is_idle(&s, later.as_u64()));
    bucket.note_latency(later, later + Duration::from_millis(5));
    let during = (later + Duration::from_millis(10)).as_u64();
    assert!(!bucket.retire_from(s, during, |_| ()), "widened");
    assert_eq!(
        accounts.evict_idle(Nanos::from_secs(200)),
        1,
        "once all is over"
    );
}

/// The eviction found the bucket idle, then a caller that does not mark
/// charged it: the head moved, the eviction does not go through, and the
/// bucket takes marks again.
#[test]
fn an_eviction_that_loses_to_a_decision_leaves_the_bucket_open_to_marks() {
    let accounts = scope();
    let Ok(bucket) = accounts.bucket(&1, Nanos::ZERO) else {
        panic!("room")
    };
    let now = Nanos::from_secs(1);
    let s = bucket.snapshot();
    assert!(admitted(acquire(&[&bucket], 1, now, MaxWait::Never)));
    assert!(!bucket.retire_from(s, now.as_u64(), |_| ()));
    assert!(!bucket.is_evicted());
    // Marked directly (a lookup would wait for a bucket that took no mark).
    assert!(bucket.mark_in_flight(), "open to marks again");
    bucket.unmark_in_flight();
    let again = accounts.bucket_in_flight(&1, now);
    assert!(again.is_ok_and(|a| Arc::ptr_eq(a.bucket(), &bucket)));
}

/// An evictor that retired the bucket and has not taken it out of the map
/// yet: a lookup that marks finds it evicted, takes it out and makes the key
/// a new bucket, which starts where the old one's units stop counting; the
/// evictor, coming back, leaves the new one in place.
#[test]
fn an_evicted_bucket_takes_no_mark_and_its_key_gets_a_new_one() {
    let accounts = scope();
    let Ok(old) = accounts.bucket(&1, Nanos::ZERO) else {
        panic!("room")
    };
    for _ in 0..5 {
        assert!(admitted(acquire(&[&old], 1, Nanos::ZERO, MaxWait::Never)));
    }
    // Retired at 20 ms (idle since 0 + 10 ms), still in the map.
    assert!(old.retire(20 * MS, |until| accounts.raise_floor(&1, until)));
    assert!(!old.mark_in_flight());
    let Ok(new) = accounts.bucket_in_flight(&1, Nanos::new(20 * MS)) else {
        panic!("a new bucket")
    };
    assert!(!Arc::ptr_eq(new.bucket(), &old));
    assert_eq!(accounts.len(), 1);
    accounts.forget_evicted(&1);
    assert_eq!(
        accounts.len(),
        1,
        "the evictor takes out only what it evicted"
    );
    // A caller whose clock read was before the eviction (delayed since):
    // the new bucket does not let it send where the old one still counted.
    assert!(matches!(
        acquire(&[new.bucket()], 5, Nanos::new(5 * MS), MaxWait::Forever),
        Ok(Grant::Later(r)) if r.departure() >= Nanos::new(10 * MS)
    ));
}

/// A plain lookup (no mark: seeding, reports, engine callers) that finds
/// its key's bucket evicted and still in the map does not hand it out: a
/// caller told to look the key up again would get the same one back.
#[test]
fn a_plain_lookup_of_an_evicted_bucket_makes_the_key_a_new_one() {
    let accounts = scope();
    let Ok(old) = accounts.bucket(&1, Nanos::ZERO) else {
        panic!("room")
    };
    assert!(old.retire(20 * MS, |until| accounts.raise_floor(&1, until)));
    let Ok(new) = accounts.bucket(&1, Nanos::new(20 * MS)) else {
        panic!("a new bucket")
    };
    assert!(!Arc::ptr_eq(&new, &old) && !new.is_evicted());
    assert_eq!(accounts.len(), 1);
}

/// Two threads take marked buckets for four keys over and over, decide on
/// them (or, every other time, only read them: a request that waits
/// elsewhere first) and let them go, while a third evicts everything idle
/// as fast as it can, at an instant long after every window: buckets are
/// evicted between uses all the time, never while marked. A decision on a
/// marked bucket never finds it retired, and a marked bucket is never seen
/// evicted. (With a plain read of the count in place of its compare-and-swap,
/// an eviction that read no mark goes through after one is taken.)
#[test]
fn under_constant_eviction_a_marked_bucket_is_never_evicted() {
    let accounts = Arc::new(scope());
    let done = Arc::new(AtomicBool::new(false));
    let evictor = {
        let (accounts, done) = (accounts.clone(), done.clone());
        std::thread::spawn(move || {
            let mut evicted = 0;
            while !done.load(Ordering::Acquire) {
                evicted += accounts.evict_idle(Nanos::from_secs(1000));
            }
            evicted
        })
    };
    let workers: Vec<_> = (0..2u64)
        .map(|t| {
            let accounts = accounts.clone();
            std::thread::spawn(move || {
                let mut retired = 0u32;
                for i in 0..20_000u64 {
                    let key = (t + i) % 4;
                    let now = Nanos::new(i * MS);
                    let Ok(on_its_way) = accounts.bucket_in_flight(&key, now) else {
                        panic!("room")
                    };
                    let b = on_its_way.bucket();
                    if i % 2 == 0 {
                        // A key's new bucket starts where its evicted ones
                        // stop counting: it may have to wait.
                        match acquire(&[b], 1, now, MaxWait::Forever) {
                            Ok(Grant::Now) => {}
                            Ok(Grant::Later(r)) => r.depart(),
                            Err(Refusal::Retired { .. }) => retired += 1,
                            Err(r) => panic!("key {key}: {r:?}"),
                        }
                    } else if b.is_evicted() {
                        retired += 1;
                    }
                    if i % 8 == 0 {
                        std::thread::yield_now();
                    }
                    drop(on_its_way);
                }
                retired
            })
        })
        .collect();
    let retired: u32 = workers
        .into_iter()
        .map(|w| w.join().unwrap_or(u32::MAX))
        .sum();
    done.store(true, Ordering::Release);
    let evicted = evictor.join().unwrap_or(0);
    assert_eq!(
        retired, 0,
        "marked buckets found evicted ({evicted} evictions)"
    );
    assert!(evicted > 0, "the evictor had nothing to race against");
}
