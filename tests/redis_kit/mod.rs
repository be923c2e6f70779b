//! What the Redis store tests build their cases from: a store of a test's
//! own `redis-server`, sliding buckets, a granted reservation, and a store
//! warmed up before the calls a test times.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use tower_quota::ledger::Refusal;
use tower_quota::store::{
    FaultPolicy, RedisStore, Reserved, SharedBucket, SharedStore, SharedWindow, StoreGrant,
};

/// A store of the Redis at `url`, its keys under `prefix`, with fault policy
/// `policy` and at most `in_flight` calls at once. Its timeout is long
/// enough that a busy machine does not make an outage of a slow call (or a
/// Degraded health of one over half of it); a stopped Redis fails a call at
/// once. Redis is tried again every 100 ms.
pub fn store_at(url: &str, prefix: &str, policy: FaultPolicy, in_flight: usize) -> Arc<RedisStore> {
    RedisStore::builder(url)
        .prefix(prefix)
        .policy(policy)
        .timeout(Duration::from_millis(500))
        .retry_every(Duration::from_millis(100))
        .max_in_flight(in_flight)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A sliding bucket `name` of `limit` units per `length`.
pub fn sliding(s: &RedisStore, name: &str, limit: u32, length: Duration) -> Vec<SharedBucket> {
    vec![SharedBucket::new(
        "route",
        s.bucket_id("route", name.as_bytes()),
        [SharedWindow {
            limit,
            length,
            anchor: None,
            margin: Duration::ZERO,
        }],
    )]
}

/// The reservation a store granted, or a panic saying what came instead.
pub fn reserved(grant: Result<StoreGrant, Refusal>) -> Box<dyn Reserved> {
    match grant {
        Ok(StoreGrant::Later(r)) => r,
        other => panic!("expected a reservation, got {other:?}"),
    }
}

/// `s` after one call on a bucket of its own: connected and with the script
/// loaded, so that a test's first call that must reach Redis is not the slow
/// one that connects (a delay also makes a fixed window's start look later;
/// see `decide.lua`).
pub async fn warm(s: &RedisStore) {
    let b = sliding(s, "GET /warm-up", 1_000, Duration::from_secs(1));
    let g = s.acquire(b, 1, Some(Duration::ZERO)).await;
    assert!(matches!(g, Ok(StoreGrant::Now)), "warming up: {g:?}");
}
