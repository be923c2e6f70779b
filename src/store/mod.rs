//! Where an allowance lives when several processes share it.
//!
//! By default a [`Limiter`](crate::Limiter) keeps its buckets in memory: one
//! process, one allowance, a lock-free decision. Seed 004 says limits are per API
//! key, not per IP, so workers, pods or machines that use one key must share one
//! allowance or they get 429s whatever each of them does. A [`SharedStore`] is
//! that shared allowance: the limiter still decides locally first (cheap, and the
//! process's own usage stays in its report), then asks the store, which decides
//! for everyone with the same contracts (DESIGN.md 1-5: every window of every
//! bucket, all or nothing, reservations with departure times, corrections).
//!
//! Two stores come with the crate:
//! - [`MemoryStore`]: the same decision in this process. It is what a
//!   `RedisStore` falls back to (with a share of each
//!   limit) when Redis is away, and it lets the shared path be tested without a
//!   server.
//! - `RedisStore` (feature `redis`): one Lua script per decision, on the Redis
//!   server's clock.

mod bucket;
mod health;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_key;
#[cfg(feature = "redis")]
mod share_record;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use bucket::{SharedBucket, SharedWindow};
pub use health::{StoreHealth, StoreStatus};
pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::{FaultPolicy, RedisStore, RedisStoreBuilder};

use crate::ledger::Refusal;

/// A boxed future of a store's answer (a store decision is a network round
/// trip: one allocation is nothing beside it).
pub type StoreFuture = Pin<Box<dyn Future<Output = Result<StoreGrant, Refusal>> + Send>>;

/// What a store grants a request.
pub enum StoreGrant {
    /// Charged to every bucket: leave now.
    Now,
    /// Room reserved: sleep [`Reserved::wait`], then call [`Reserved::depart`].
    /// Dropping it gives the room back.
    Later(Box<dyn Reserved>),
}

impl std::fmt::Debug for StoreGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreGrant::Now => f.write_str("Now"),
            StoreGrant::Later(r) => f.debug_tuple("Later").field(&r.wait()).finish(),
        }
    }
}

/// A reservation in a shared store. Dropping it before [`Reserved::depart`]
/// gives its room back.
pub trait Reserved: Send + Sync {
    /// How long to sleep, from when the grant arrived, until the departure.
    fn wait(&self) -> Duration;

    /// The departure has come: takes what was deferred to it, or decides again
    /// (another bucket filled up meanwhile, or a 429 blocked one) within what
    /// is left of the longest wait the request asked with. A departure that
    /// would pass that deadline (a slow response widened a window, or the
    /// new decision is later) is refused with [`Refusal::WouldWait`], which
    /// tells the whole wait, from when the request asked.
    fn depart(self: Box<Self>) -> StoreFuture;
}

/// `refusal` for a request that has `waited` already (a departure decided
/// again): a [`Refusal::WouldWait`] tells the whole wait, from when the
/// request asked.
pub(crate) fn with_waited(refusal: Refusal, waited: Duration) -> Refusal {
    match refusal {
        Refusal::WouldWait { bucket, wait } => Refusal::WouldWait {
            bucket,
            wait: wait.saturating_add(waited),
        },
        other => other,
    }
}

/// A correction from a response, for a store to share with every process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Correction {
    /// The server counted at least `used` units in window `window` (ending now).
    Used {
        /// The window's index in the bucket.
        window: usize,
        /// Units the server counted.
        used: u64,
    },
    /// The server refused: the bucket sends nothing for `duration`.
    Block {
        /// How long from now.
        duration: Duration,
    },
    /// The server announced a new limit for window `window`.
    Limit {
        /// The window's index in the bucket.
        window: usize,
        /// The new limit.
        limit: u32,
    },
    /// A response came back `late` after the margin of window
    /// `window` allows: the server may have counted its request that much
    /// later, so the window holds every unit `late` longer until one window
    /// from now (see [`Bucket::note_latency`](crate::ledger::Bucket::note_latency)),
    /// in every process.
    Late {
        /// The window's index in the bucket.
        window: usize,
        /// How much later than the margin allows.
        late: Duration,
    },
}

/// One allowance shared by many processes.
///
/// Implementations decide atomically for all of a request's buckets, keep
/// departures in FIFO order per bucket, and never panic on a failing backend:
/// they apply their fault policy and say so in [`SharedStore::status`].
pub trait SharedStore: Send + Sync + std::fmt::Debug + 'static {
    /// Admits `cost` units into every one of `buckets` now, or reserves the
    /// earliest departure at which every window of every bucket has room, if it
    /// is within `max_wait` (`None`: any wait). The request is held to
    /// `max_wait` from now for the whole of its wait, through
    /// [`Reserved::depart`] too.
    fn acquire(
        &self,
        buckets: Vec<SharedBucket>,
        cost: u32,
        max_wait: Option<Duration>,
    ) -> StoreFuture;

    /// Shares what a response taught about `bucket` (fire and forget: the
    /// response path never waits for the store).
    fn correct(&self, bucket: &SharedBucket, correction: Correction);

    /// Shares the used counts of several windows of `bucket` from one report
    /// (one response's headers, one usage body), as `(window, used)`. A store
    /// that keeps a bucket's windows in one log raises them together
    /// ([`Bucket::raise_used_together`](crate::ledger::Bucket::raise_used_together)),
    /// so that a long window's count fills no shorter one. By default, one
    /// [`Correction::Used`] per window.
    fn correct_used(&self, bucket: &SharedBucket, counts: &[(usize, u64)]) {
        for &(window, used) in counts {
            self.correct(bucket, Correction::Used { window, used });
        }
    }

    /// Where the store stands, for the user and the report.
    fn status(&self) -> StoreStatus;

    /// The id of the bucket named `raw` in `scope` (a route's label, an
    /// account's or API key's value): the same in every process that shares
    /// this store, and never `raw` in clear.
    fn bucket_id(&self, scope: &str, raw: &[u8]) -> std::sync::Arc<str>;
}
