//! A request the shared store refuses is not sent and leaves nothing
//! charged in this process: the local windows hold only what was sent.
#![cfg(feature = "redis")]

mod redis_drive;
mod redis_server;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis_drive::{per_key, recorder, request};
use redis_server::RedisServer;
use tower::{ServiceBuilder, ServiceExt};
use tower_quota::clock::TokioClock;
use tower_quota::ledger::{MaxWait, Refusal};
use tower_quota::store::{FaultPolicy, RedisStore};
use tower_quota::{Error, Limiter, QuotaLayer};

const SECRET: &str = "sk_live_refused_secret";

/// 5 a minute per API key, failing fast, the store failing closed. While
/// Redis is away every request is refused as the store's; once it is back
/// the key has its whole allowance here. Found by review: each refusal
/// left its unit charged locally, and after five the process refused the
/// key itself for a minute.
#[tokio::test]
async fn a_request_the_store_refuses_leaves_nothing_charged_here() {
    let Some(mut server) = RedisServer::start("redis layer: refusals") else {
        return;
    };
    let store = RedisStore::builder(server.url())
        .prefix("refused")
        .policy(FaultPolicy::FailClosed)
        // A stopped Redis fails a call at once; a busy machine must not make
        // an outage of a slow call once it is back.
        .timeout(Duration::from_millis(500))
        .retry_every(Duration::from_millis(50))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let limiter = per_key(
        Limiter::builder()
            .clock(TokioClock::new())
            .max_wait(MaxWait::Never),
        store,
        5,
        Duration::from_secs(60),
        Duration::ZERO,
    );
    let departures = Arc::new(Mutex::new(Vec::new()));
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter))
        .service(recorder(departures.clone()));
    server.stop();
    for _ in 0..5 {
        let refused = svc.clone().oneshot(request(SECRET)).await;
        assert!(
            matches!(
                refused,
                Err(Error::Limited(Refusal::StoreUnavailable { .. }))
            ),
            "{refused:?}"
        );
    }
    server.restart();
    let mut sent = 0;
    for _ in 0..200 {
        match svc.clone().oneshot(request(SECRET)).await {
            Ok(_) => sent += 1,
            Err(Error::Limited(Refusal::StoreUnavailable { .. })) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("after {sent} sent: {other}"),
        }
        if sent == 5 {
            break;
        }
    }
    assert_eq!(sent, 5, "the key's whole allowance once Redis is back");
    let over = svc.clone().oneshot(request(SECRET)).await;
    assert!(
        matches!(over, Err(Error::Limited(Refusal::WouldWait { .. }))),
        "{over:?}"
    );
    assert_eq!(departures.lock().map_or(0, |d| d.len()), 5);
}
