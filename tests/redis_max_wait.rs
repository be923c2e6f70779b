//! A Redis store holds a request to the longest wait it was given for the
//! whole of its wait, against a real `redis-server` of its own (see
//! `tests/redis_server/mod.rs` for the skip rule): a departure that decides
//! again gets only what is left of it.
#![cfg(feature = "redis")]

mod redis_drive;
mod redis_server;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis_drive::{per_key, request};
use redis_server::RedisServer;
use tower::{ServiceBuilder, ServiceExt};
use tower_quota::clock::TokioClock;
use tower_quota::ledger::{MaxWait, Refusal};
use tower_quota::store::{
    Correction, RedisStore, SharedBucket, SharedStore, SharedWindow, StoreGrant,
};
use tower_quota::{Error, QuotaLayer};

fn store(server: &RedisServer) -> Arc<RedisStore> {
    RedisStore::builder(server.url())
        .prefix("max-wait")
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// 1 per 200 ms, a longest wait of 300 ms. The waiter reserved 195 ms ahead
/// finds at its departure that a slow response (180 ms late) widened the
/// window, and Redis decided again with the whole 300 ms from then: a
/// further 180 ms, 375 ms in all. It is refused, with the whole wait.
#[tokio::test]
async fn a_departure_decided_again_gets_only_what_is_left_of_the_longest_wait() {
    let Some(server) = RedisServer::start("redis max wait: decided again") else {
        return;
    };
    let s = store(&server);
    let one = SharedBucket::new(
        "route",
        s.bucket_id("route", b"GET /one"),
        [SharedWindow {
            limit: 1,
            length: Duration::from_millis(200),
            anchor: None,
            margin: Duration::ZERO,
        }],
    );
    let sent = Instant::now();
    let g = s.acquire(vec![one.clone()], 1, None).await;
    assert!(matches!(g, Ok(StoreGrant::Now)), "{g:?}");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let asked = Instant::now();
    let cap = Duration::from_millis(300);
    let held = match s.acquire(vec![one.clone()], 1, Some(cap)).await {
        Ok(StoreGrant::Later(r)) => r,
        other => panic!("expected a reservation, got {other:?}"),
    };
    let departs = Instant::now() + held.wait();
    // The slow response comes back, and is told, 180 ms after it was sent: a
    // lateness holds for a window from when it is told, so told at once it
    // would lapse just after the departure, which a busy machine makes late.
    tokio::time::sleep_until((sent + Duration::from_millis(180)).into()).await;
    s.correct(
        &one,
        Correction::Late {
            window: 0,
            late: Duration::from_millis(180),
        },
    );
    // The correction goes in the background: in Redis before the departure.
    let meta = format!("max-wait:route:{}:m", one.id);
    server
        .until(redis::cmd("HEXISTS").arg(&meta).arg("late:0"), 1)
        .await;
    tokio::time::sleep_until(departs.into()).await;
    match held.depart().await {
        Err(Refusal::WouldWait { wait, .. }) => assert!(wait > cap, "{wait:?}"),
        Ok(StoreGrant::Later(again)) => panic!(
            "reserved again, to leave {:?} after it asked under a cap of {cap:?}",
            asked.elapsed() + again.wait()
        ),
        other => panic!("{other:?}"),
    }
}

/// The same through the layer: two processes on one Redis, 1 per 200 ms and
/// a longest wait of 300 ms. P1's request answers after 180 ms; P2's,
/// reserved in Redis, was sent 370 ms after it asked.
#[tokio::test]
async fn a_request_through_the_layer_is_never_sent_past_its_longest_wait() {
    let Some(server) = RedisServer::start("redis max wait: through the layer") else {
        return;
    };
    let cap = Duration::from_millis(300);
    let build = || {
        per_key(
            tower_quota::Limiter::builder()
                .clock(TokioClock::new())
                .max_wait(MaxWait::Up(cap)),
            store(&server),
            1,
            Duration::from_millis(200),
            Duration::ZERO,
        )
    };
    let (p1, p2) = (build(), build());
    let slow = ServiceBuilder::new()
        .layer(QuotaLayer::new(p1))
        .service(tower::service_fn(|_r: http::Request<()>| async {
            tokio::time::sleep(Duration::from_millis(180)).await;
            Ok::<_, Infallible>(http::Response::new(()))
        }));
    let sent_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let sent = sent_at.clone();
    let fast = ServiceBuilder::new()
        .layer(QuotaLayer::new(p2))
        .service(tower::service_fn(move |_r: http::Request<()>| {
            if let Ok(mut at) = sent.lock() {
                *at = Some(Instant::now());
            }
            async { Ok::<_, Infallible>(http::Response::new(())) }
        }));
    let first = tokio::spawn(slow.oneshot(request("sk_max_wait")));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let asked = Instant::now();
    let second = fast.oneshot(request("sk_max_wait")).await;
    assert!(matches!(first.await, Ok(Ok(_))));
    let waited = sent_at.lock().ok().and_then(|at| *at).map(|t| t - asked);
    assert!(
        matches!(second, Err(Error::Limited(Refusal::WouldWait { .. })))
            || waited.is_some_and(|w| w <= cap),
        "sent {waited:?} after it asked, under a cap of {cap:?}"
    );
}
