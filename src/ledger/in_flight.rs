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
//! Marks and evictions meet on one word of the bucket: an eviction turns a
//! count of zero into "retired" before it swaps the head, and a mark adds one
//! to any count but that. So a marked bucket is not evicted until the last
//! mark is dropped, and a bucket being evicted takes no mark: the lookup
//! ([`KeyedBuckets::bucket_in_flight`](super::KeyedBuckets::bucket_in_flight))
//! then replaces an evicted bucket with a new one, or waits out an eviction
//! still deciding (it takes a few instructions).
//!
//! The layer marks every keyed bucket a request is charged to, at the lookup
//! (before the decision), and unmarks it when the request's response future
//! is dropped: after its response is observed, or when it is cancelled (a
//! future kept after it completed keeps its marks until then).

use std::fmt;
use std::sync::Arc;

use super::bucket::Bucket;

/// Keeps a keyed bucket from eviction while a request charged to it awaits
/// its response (see the module docs); dropping it lets the bucket go idle.
/// Made by [`KeyedBuckets::bucket_in_flight`](super::KeyedBuckets::bucket_in_flight).
///
/// ```
/// use tower_quota::clock::Nanos;
/// use tower_quota::ledger::{acquire, KeyedBuckets, MaxWait};
/// use tower_quota::quota::Quota;
///
/// let accounts = KeyedBuckets::new("per_account", Quota::per_second(10), 100);
/// let on_its_way = accounts.bucket_in_flight(&"acct-1", Nanos::ZERO).expect("room");
/// assert!(acquire(&[on_its_way.bucket()], 1, Nanos::ZERO, MaxWait::Never).is_ok());
/// // Its response is slower than the window: the bucket stays.
/// assert_eq!(accounts.evict_idle(Nanos::from_secs(3)), 0);
/// on_its_way.bucket().block_until(Nanos::from_secs(60)); // the response was a 429
/// drop(on_its_way);
/// assert_eq!(accounts.evict_idle(Nanos::from_secs(4)), 0, "blocked");
/// assert_eq!(accounts.evict_idle(Nanos::from_secs(61)), 1);
/// ```
pub struct InFlight(Arc<Bucket>);

impl InFlight {
    /// Takes over the mark of `bucket`, marked by the caller.
    pub(crate) fn marked(bucket: Arc<Bucket>) -> InFlight {
        InFlight(bucket)
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

impl fmt::Debug for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("InFlight").field(&self.0.label()).finish()
    }
}
