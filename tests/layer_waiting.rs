//! Waiting requests through the layer, on tokio's paused clock with an
//! in-process inner service: what a waiter holds while it sleeps, and how
//! long it may sleep in all.

use std::convert::Infallible;
use std::time::Duration;

use http::{Method, Request, Response};
use tower::{ServiceBuilder, ServiceExt};
use tower_quota::clock::{Nanos, TokioClock};
use tower_quota::ledger::{MaxWait, Refusal};
use tower_quota::quota::Quota;
use tower_quota::scope::KeySource;
use tower_quota::{Error, Limiter, QuotaLayer};

#[allow(dead_code)] // helpers shared by the layer tests: this file uses two
mod common;
use common::{one_route, request};

fn account_request(account: &str) -> Request<()> {
    Request::get("http://api.example.com/v1/things")
        .header("x-account", account)
        .body(())
        .unwrap_or_default()
}

/// Under a `ConcurrencyLimit` of one, account a's second request waits a
/// minute for its own limit; account b, with room, goes at once. Found by
/// review: the waiter took the inner service that `poll_ready` had made
/// ready, and with it the limit's only permit, for its whole wait.
#[tokio::test(start_paused = true)]
async fn a_waiter_leaves_the_inner_readiness_to_requests_with_room() {
    let limiter = Limiter::builder()
        .clock(TokioClock::new())
        .per_account(KeySource::header("x-account"), Quota::per_minute(1), 100)
        .max_wait(MaxWait::Forever)
        .build();
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter))
        .concurrency_limit(1)
        .service(tower::service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
    let first = svc.clone().oneshot(account_request("a")).await;
    assert!(first.is_ok());
    let waiter = tokio::spawn(svc.clone().oneshot(account_request("a")));
    tokio::task::yield_now().await;
    let b = tokio::time::timeout(
        Duration::from_secs(1),
        svc.clone().oneshot(account_request("b")),
    )
    .await;
    assert!(
        matches!(b, Ok(Ok(_))),
        "account b, with room, held behind account a's waiter"
    );
    assert!(!waiter.is_finished(), "a's second request still waits");
    let left = tokio::time::timeout(Duration::from_secs(61), waiter).await;
    assert!(matches!(left, Ok(Ok(Ok(_)))), "{left:?}");
}

/// One route, 1 per 4 s, a longest wait of 5 s. The second request reserves
/// a departure at 4 s; then something pushes it further than the cap allows
/// in all, counted from when it was first decided: a 429's block until 8 s
/// (it queues again at 4 s), or a response 3 s late (its window held until
/// 7 s). Either way it is refused when it finds out, at 4 s, not sent at 7
/// or 8 s. Found by review: the cap was measured from each return to the
/// queue, and not checked at all against a widened departure.
#[tokio::test(start_paused = true)]
async fn the_longest_wait_caps_the_whole_wait() {
    for push in ["blocked until 8 s", "a response 3 s late"] {
        let limiter = one_route(
            TokioClock::new(),
            Quota::new(1, Duration::from_secs(4)).unwrap_or(Quota::per_second(1)),
        )
        .max_wait(MaxWait::Up(Duration::from_secs(5)))
        .margin(Duration::ZERO)
        .build();
        let svc = ServiceBuilder::new()
            .layer(QuotaLayer::new(limiter.clone()))
            .service(tower::service_fn(|_req: Request<()>| async {
                Ok::<_, Infallible>(Response::new(()))
            }));
        let start = tokio::time::Instant::now();
        assert!(svc.clone().oneshot(request()).await.is_ok());
        let second = tokio::spawn(svc.clone().oneshot(request()));
        tokio::task::yield_now().await;
        let Some(route) = limiter.route_bucket(&Method::GET, "/v1/campaigns/7") else {
            panic!("the route's bucket")
        };
        match push {
            "blocked until 8 s" => route.block_until(Nanos::from_secs(8)),
            _ => route.note_latency(Nanos::ZERO, Nanos::from_secs(3)),
        }
        let outcome = second.await;
        let waited = start.elapsed();
        assert!(
            matches!(&outcome, Ok(Err(Error::Limited(Refusal::WouldWait { .. })))),
            "{push}: {outcome:?}"
        );
        assert_eq!(waited, Duration::from_secs(4), "{push}: found out at 4 s");
    }
}
