//! A request on its way: keeps a keyed bucket from being evicted until the
//! response has taught it what it brings.
//!
//! A keyed scope evicts a bucket once it has been idle for longer than its
//! longest window ([`KeyedBuckets`](super::KeyedBuckets)). A request can be
//! slower than that: a 1-second window, a 3-second response. Its response may
//! then block the bucket (a 429), hold a window open (it came back late) or
//! raise its counts, and an evicted bucket would take all of that with it:
//! the key's next bucket would start clean and send straight into the block.
//! While an [`InFlight`] for a bucket is alive, the bucket is never idle.
//!
//! The layer takes one for every keyed bucket a request is charged to, before
//! the decision, and drops it after the response is observed (or the request
//! is cancelled).

use std::fmt;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use super::bucket::Bucket;

/// Keeps `bucket` from eviction while a request charged to it awaits its
/// response (see the module docs); dropping it lets the bucket go idle.
///
/// ```
/// use std::time::Duration;
/// use tower_quota::clock::Nanos;
/// use tower_quota::ledger::{InFlight, KeyedBuckets};
/// use tower_quota::quota::Quota;
///
/// let accounts = KeyedBuckets::new("per_account", Quota::per_second(10), 100);
/// let bucket = accounts.bucket(&"acct-1", Nanos::ZERO).expect("room");
/// let on_its_way = InFlight::new(&bucket);
/// // Its response is slower than the window: the bucket stays.
/// assert_eq!(accounts.evict_idle(Nanos::from_secs(3)), 0);
/// bucket.block_until(Nanos::from_secs(60)); // the response was a 429
/// drop(on_its_way);
/// assert_eq!(accounts.evict_idle(Nanos::from_secs(4)), 0, "blocked");
/// assert_eq!(accounts.evict_idle(Nanos::from_secs(61)), 1);
/// ```
pub struct InFlight(Arc<Bucket>);

impl InFlight {
    /// Marks one request charged to `bucket` as on its way.
    pub fn new(bucket: &Arc<Bucket>) -> InFlight {
        bucket.mark_in_flight();
        InFlight(bucket.clone())
    }

    /// The bucket kept.
    pub fn bucket(&self) -> &Arc<Bucket> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.unmark_in_flight();
    }
}

impl Bucket {
    /// One more request charged to the bucket is on its way (see
    /// [`InFlight`], which pairs this with [`Bucket::unmark_in_flight`]).
    pub(crate) fn mark_in_flight(&self) {
        // Before the decision that charges it. An eviction that read the
        // count before this and swapped the head reads it again after the
        // swap; with this fence and the one in `Bucket::retire`, either it
        // sees this mark (and gives the bucket back) or the decision sees the
        // swap (and fails as retired: the caller looks the key up again).
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Its response has been observed (or it was dropped): once for every
    /// [`Bucket::mark_in_flight`].
    pub(crate) fn unmark_in_flight(&self) {
        // Release: an eviction that reads the count after this sees every
        // correction made before it (a block, a widening, a hold).
        self.in_flight.fetch_sub(1, Ordering::Release);
    }
}

impl fmt::Debug for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("InFlight").field(&self.0.label()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::time::Duration;

    use super::*;
    use crate::clock::Nanos;
    use crate::ledger::{acquire, Grant, KeyedBuckets, MaxWait, Refusal};
    use crate::quota::Quota;

    const MS: u64 = 1_000_000;

    fn scope() -> KeyedBuckets<u64> {
        let quota = Quota::new(5, Duration::from_millis(10)).unwrap_or(Quota::per_second(500));
        KeyedBuckets::new("per_account", quota, 1_000_000)
    }

    #[test]
    fn a_bucket_on_its_way_is_kept_and_what_its_response_taught_stays_with_the_key() {
        let accounts = scope();
        let Ok(bucket) = accounts.bucket(&1, Nanos::ZERO) else {
            panic!("room")
        };
        let on_its_way = InFlight::new(&bucket);
        assert!(matches!(
            acquire(&[&bucket], 1, Nanos::ZERO, MaxWait::Never),
            Ok(Grant::Now)
        ));
        // Three windows later its response comes back: a 429 for 1 s.
        assert_eq!(accounts.evict_idle(Nanos::new(30 * MS)), 0);
        bucket.block_until(Nanos::from_secs(1));
        drop(on_its_way);
        assert_eq!(accounts.evict_idle(Nanos::new(40 * MS)), 0);
        assert!(matches!(
            accounts.acquire(&1, 1, Nanos::new(40 * MS), MaxWait::Never),
            Err(Refusal::WouldWait { .. })
        ));
        // Two on their way: kept until both are done.
        let (a, b) = (InFlight::new(&bucket), InFlight::new(&bucket));
        drop(a);
        assert_eq!(accounts.evict_idle(Nanos::from_secs(2)), 0);
        drop(b);
        assert_eq!(accounts.evict_idle(Nanos::from_secs(2)), 1);
    }

    /// The eviction read no request on its way, and one marked itself before
    /// the eviction's swap: the bucket is given back, and the request's
    /// decision (on the head it read before) goes through.
    #[test]
    fn an_eviction_that_missed_a_request_on_its_way_gives_the_bucket_back() {
        let accounts = scope();
        let Ok(bucket) = accounts.bucket(&1, Nanos::ZERO) else {
            panic!("room")
        };
        let now = Nanos::from_secs(1);
        let s = bucket.snapshot();
        assert!(bucket.is_idle(&s, now.as_u64()));
        let on_its_way = InFlight::new(&bucket);
        assert_eq!(bucket.retire_from(s), None);
        assert!(!bucket.snapshot().head.is_evicted());
        assert!(matches!(
            acquire(&[&bucket], 1, now, MaxWait::Never),
            Ok(Grant::Now)
        ));
        drop(on_its_way);
        // Without one, the same steps evict it.
        let later = Nanos::from_secs(2);
        let s = bucket.snapshot();
        assert!(bucket.is_idle(&s, later.as_u64()));
        assert_eq!(bucket.retire_from(s), Some(now.as_u64() + 10 * MS));
        assert!(matches!(
            acquire(&[&bucket], 1, later, MaxWait::Never),
            Err(Refusal::Retired { .. })
        ));
    }

    /// Threads charge fresh keys, each through an `InFlight`, and block the
    /// bucket "when the response comes back", while another thread evicts
    /// everything idle as fast as it can at an instant long after every
    /// window. Every block must be found by the key's next lookup: no bucket
    /// with a request on its way is evicted, whatever the interleaving.
    #[test]
    fn under_constant_eviction_no_block_is_lost() {
        let accounts = std::sync::Arc::new(scope());
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let sweeps = std::sync::Arc::new(AtomicU64::new(0));
        let evictor = {
            let (accounts, done, sweeps) = (accounts.clone(), done.clone(), sweeps.clone());
            std::thread::spawn(move || {
                let mut evicted = 0;
                while !done.load(Ordering::Acquire) {
                    evicted += accounts.evict_idle(Nanos::from_secs(500));
                    sweeps.fetch_add(1, Ordering::Release);
                }
                evicted
            })
        };
        let workers: Vec<_> = (0..2u64)
            .map(|t| {
                let (accounts, sweeps) = (accounts.clone(), sweeps.clone());
                std::thread::spawn(move || {
                    let mut retired = 0;
                    for i in 0..2_000u64 {
                        let key = t << 32 | i;
                        let start = Nanos::new(i * MS);
                        let bucket = loop {
                            let Ok(b) = accounts.bucket(&key, start) else {
                                panic!("room")
                            };
                            let on_its_way = InFlight::new(&b);
                            // A new key's bucket starts where the evicted
                            // ones stop counting (the scope's floor, which
                            // the other worker's keys may have put ahead).
                            match acquire(&[&b], 1, start, MaxWait::Forever) {
                                Ok(Grant::Now) => break on_its_way,
                                Ok(Grant::Later(r)) => {
                                    r.depart();
                                    break on_its_way;
                                }
                                Err(Refusal::Retired { .. }) => retired += 1,
                                other => panic!("{other:?}"),
                            }
                        };
                        // The response takes a sweep or two.
                        if i % 16 == 0 {
                            let seen = sweeps.load(Ordering::Acquire);
                            while sweeps.load(Ordering::Acquire) < seen + 2 {
                                std::thread::yield_now();
                            }
                        }
                        bucket.bucket().block_until(Nanos::from_secs(1000));
                        drop(bucket);
                        let again = accounts.bucket(&key, start);
                        assert!(
                            again.is_ok_and(|b| b.blocked_until(start).is_some()),
                            "key {key}: the block was lost to an eviction"
                        );
                    }
                    retired
                })
            })
            .collect();
        let retired: u32 = workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| panic!("a worker failed")))
            .sum();
        done.store(true, Ordering::Release);
        let evicted = evictor.join().unwrap_or(0);
        // Only buckets not yet marked were evicted, each under the decision
        // of the worker that had looked it up (which may have found it again,
        // still in the map, before the evictor removed it: at least once).
        assert!(
            evicted <= retired as usize,
            "{evicted} evicted, {retired} retired"
        );
        // Every bucket was blocked before it was let go: none is idle.
        assert_eq!(accounts.len(), 4_000);
    }
}
