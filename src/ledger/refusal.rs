//! Why the engine did not admit a request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why a request was not admitted. Carries bucket labels, never keys or secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The request would have to wait longer than the caller allows.
    WouldWait {
        /// The bucket that forces the longest wait.
        bucket: Arc<str>,
        /// How long the request would have had to wait.
        wait: Duration,
    },
    /// The request costs more than a window of the bucket can ever hold.
    CostExceedsLimit {
        /// The bucket.
        bucket: Arc<str>,
        /// The request's cost.
        cost: u64,
        /// The largest cost the bucket can admit.
        limit: u64,
    },
    /// A keyed scope already holds its maximum number of buckets, none of them
    /// idle.
    TooManyKeys {
        /// The scope.
        scope: Arc<str>,
        /// Its cap.
        cap: usize,
    },
    /// More distinct buckets than one decision can charge.
    TooManyBuckets {
        /// How many were given.
        given: usize,
        /// The most one decision charges.
        max: usize,
    },
    /// The shared store is away and its fault policy is to refuse.
    StoreUnavailable {
        /// Which store.
        store: Arc<str>,
        /// What went wrong (never a URL or a key).
        reason: Arc<str>,
    },
    /// The request would take the bucket past the most units one bucket
    /// counts (2^48 - 2): it is refused rather than the count wrapped (smaller
    /// requests that still fit are admitted). Reached only by very large costs
    /// at a high rate (a limit of `u32::MAX` units a second gets there in 18
    /// hours); make a new bucket.
    Exhausted {
        /// The bucket.
        bucket: Arc<str>,
    },
    /// The bucket was evicted from its keyed scope while idle; look it up again.
    Retired {
        /// The bucket.
        bucket: Arc<str>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::WouldWait { bucket, wait } => write!(
                f,
                "rate limit of `{bucket}` reached: a request could leave in {wait:?}; \
                 raise the maximum wait or retry later"
            ),
            Refusal::CostExceedsLimit {
                bucket,
                cost,
                limit,
            } => write!(
                f,
                "a request of cost {cost} can never fit `{bucket}`, which admits at most \
                 {limit} at once; split the request or raise the limit"
            ),
            Refusal::TooManyKeys { scope, cap } => write!(
                f,
                "scope `{scope}` already tracks {cap} keys, all active; raise its key cap"
            ),
            Refusal::TooManyBuckets { given, max } => write!(
                f,
                "a request was charged to {given} buckets; at most {max} are supported"
            ),
            Refusal::StoreUnavailable { store, reason } => write!(
                f,
                "the shared {store} store is unavailable ({reason}) and the request cannot \
                 be decided without it; retry later"
            ),
            Refusal::Exhausted { bucket } => write!(
                f,
                "bucket `{bucket}` is near 2^48 units, the most one bucket counts, and \
                 refuses requests that would cross that; build a new bucket (or limiter) for it"
            ),
            Refusal::Retired { bucket } => write!(
                f,
                "bucket `{bucket}` was evicted while idle; look it up again in its scope"
            ),
        }
    }
}

impl std::error::Error for Refusal {}
