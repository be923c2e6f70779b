//! Waiting requests through the layer, on tokio's paused clock with an
//! in-process inner service: what a waiter holds while it sleeps, and how
//! long it may sleep in all.

use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response};
use tower::{ServiceBuilder, ServiceExt};
use tower_quota::clock::TokioClock;
use tower_quota::ledger::MaxWait;
use tower_quota::quota::Quota;
use tower_quota::scope::KeySource;
use tower_quota::{Limiter, QuotaLayer};

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
