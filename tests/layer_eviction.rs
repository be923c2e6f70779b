//! Keyed buckets and requests on their way, through the layer on tokio's
//! paused clock with an in-process inner service: a bucket whose request is
//! slower than its window is not evicted under it, so what the response
//! teaches (a 429's block) lands in the bucket the key goes on using; the
//! scope's cap counts such buckets; once the block is over the bucket goes.

use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_quota::clock::TokioClock;
use tower_quota::ledger::{MaxWait, Refusal};
use tower_quota::quota::Quota;
use tower_quota::scope::KeySource;
use tower_quota::{QuotaLayer, Target};

#[allow(dead_code)] // `limiter`, `request` and `SECRET` serve the other layer tests
mod common;
use common::one_route;

fn for_account(account: &str) -> Request<()> {
    Request::get("http://api.example.com/v1/campaigns/7")
        .header("x-account", account)
        .body(())
        .unwrap_or_default()
}

/// Account `slow`'s first request takes 300 ms (its window is 100 ms) and is
/// answered 429 with `Retry-After: 2`; every other request is answered 200
/// at once.
fn server(
) -> impl Service<Request<()>, Response = Response<()>, Error = Infallible, Future = impl Send> + Clone
{
    let slow_calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    tower::service_fn(move |req: Request<()>| {
        let slow = req.headers().get("x-account").is_some_and(|v| v == "slow")
            && slow_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        common::answer(slow, Duration::from_millis(300))
    })
}

#[tokio::test(start_paused = true)]
async fn a_slow_429_blocks_the_bucket_its_account_goes_on_using() {
    let clock = TokioClock::new();
    // One account at a time (cap 1), 10 requests per 100 ms each.
    let limiter = one_route(clock.clone(), Quota::per_second(1000))
        .per_account(
            KeySource::header("x-account"),
            Quota::new(10, Duration::from_millis(100)).unwrap_or(Quota::per_second(100)),
            1,
        )
        .correct(Target::Account)
        .max_wait(MaxWait::Never)
        .margin(Duration::ZERO)
        .build();
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter.clone()))
        .service(server());

    let slow = tokio::spawn(svc.clone().oneshot(for_account("slow")));
    tokio::task::yield_now().await;
    // 150 ms later the slow account's window is over, its request is not.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let other = svc.clone().oneshot(for_account("other")).await;
    assert!(
        matches!(
            other.as_ref().map_err(|e| e.refusal()),
            Err(Some(Refusal::TooManyKeys { cap: 1, .. }))
        ),
        "the cap counts a bucket whose request is on its way: {other:?}"
    );
    let answered = slow.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        answered.map(|r| r.status()).ok(),
        Some(StatusCode::TOO_MANY_REQUESTS)
    );

    // The block landed in the bucket the account goes on using: answered at
    // 300 ms, blocked for the 2 s of `Retry-After`.
    let again = svc.clone().oneshot(for_account("slow")).await;
    match again.as_ref().map_err(|e| e.refusal()) {
        Err(Some(Refusal::WouldWait { wait, bucket })) => {
            assert_eq!(*wait, Duration::from_secs(2), "Retry-After from the answer");
            assert!(
                bucket.starts_with("account#"),
                "the account's bucket: {bucket}"
            );
        }
        other => panic!("the slow account's next request must wait out the 429: {other:?}"),
    }

    // Blocked, the bucket still is not idle: the cap still holds.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let other = svc.clone().oneshot(for_account("other")).await;
    assert!(
        matches!(
            other.as_ref().map_err(|e| e.refusal()),
            Err(Some(Refusal::TooManyKeys { .. }))
        ),
        "blocked is not idle: {other:?}"
    );
    // After the block it is, and makes room.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let other = svc.clone().oneshot(for_account("other")).await;
    assert_eq!(other.map(|r| r.status()).ok(), Some(StatusCode::OK));
}

/// Many accounts, a cap of 4, and a clock long past every window, so that
/// every new account's bucket evicts whichever buckets have no request on
/// its way, on two threads at once: a bucket is marked at its lookup, never
/// evicted between the lookup and the decision, and no request is refused
/// as retired (before marks: 9-20 of 16,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_evicted_on_two_threads_never_refuse_a_request_as_retired() {
    use tower_quota::clock::ManualClock;
    let clock = ManualClock::new();
    let limiter = tower_quota::Limiter::builder()
        .clock(clock.clone())
        .per_account(
            KeySource::header("x-account"),
            Quota::new(1000, Duration::from_millis(1)).unwrap_or(Quota::per_second(1000)),
            4,
        )
        .max_wait(MaxWait::Never)
        .margin(Duration::ZERO)
        .build();
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter))
        .service(tower::service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
    let tasks: Vec<_> = (0..8u32)
        .map(|t| {
            let (svc, clock) = (svc.clone(), clock.clone());
            tokio::spawn(async move {
                let (mut sent, mut full, mut retired) = (0u32, 0u32, 0u32);
                for i in 0..2_000u32 {
                    if i % 64 == 0 {
                        clock.advance(Duration::from_millis(10));
                    }
                    let account = format!("acct-{}", (t * 7 + i) % 12);
                    match svc.clone().oneshot(for_account(&account)).await {
                        Ok(_) => sent += 1,
                        Err(e) => match e.refusal() {
                            // The cap, or an account's own window (the
                            // clock stands still between advances).
                            Some(Refusal::TooManyKeys { .. } | Refusal::WouldWait { .. }) => {
                                full += 1
                            }
                            Some(Refusal::Retired { .. }) => retired += 1,
                            other => panic!("{other:?}"),
                        },
                    }
                }
                (sent, full, retired)
            })
        })
        .collect();
    let (mut sent, mut full, mut retired) = (0, 0, 0);
    for t in tasks {
        let (s, f, r) = t.await.unwrap_or_else(|e| panic!("{e}"));
        (sent, full, retired) = (sent + s, full + f, retired + r);
    }
    assert_eq!(
        retired, 0,
        "{sent} sent, {full} refused for the cap or the window"
    );
    assert!(
        sent > 1_000,
        "{sent} sent, {full} refused for the cap or the window"
    );
}

fn keyed_request(route: &str, account: &str, key: &str) -> Request<()> {
    Request::get(format!("http://api.example.com/{route}/1"))
        .header("x-account", account)
        .header("x-api-key", key)
        .body(())
        .unwrap_or_default()
}

/// Every keyed scope at a cap of 1 (an own bucket per undeclared route, per
/// account, per API key): a request answered, one refused, one dropped while
/// it waits, and a look at the route's bucket each leave their buckets free
/// to go once idle. A mark left behind would keep a bucket for good, and the
/// next key would be refused for the cap.
#[tokio::test(start_paused = true)]
async fn every_request_lets_its_keyed_buckets_go() {
    use tower_quota::{Limiter, OtherRoutes};
    let clock = TokioClock::new();
    let one = || Quota::new(1, Duration::from_millis(100)).unwrap_or(Quota::per_second(10));
    let limiter = |max_wait| {
        Limiter::builder()
            .clock(clock.clone())
            .routes(
                tower_quota::route::Templates::from_routes([("GET", "/declared/:id")])
                    .unwrap_or_else(|e| panic!("{e}")),
                |_| None,
                OtherRoutes::Each {
                    limits: one().into(),
                    cap: 1,
                },
            )
            .per_account(KeySource::header("x-account"), one(), 1)
            .per_api_key(KeySource::header("x-api-key"), one(), 1)
            .max_wait(max_wait)
            .margin(Duration::ZERO)
            .build()
    };
    for max_wait in [MaxWait::Never, MaxWait::Forever] {
        let limiter = limiter(max_wait);
        let svc = ServiceBuilder::new()
            .layer(QuotaLayer::new(limiter.clone()))
            .service(tower::service_fn(|_req: Request<()>| {
                common::answer(false, Duration::ZERO)
            }));
        let first = svc.clone().oneshot(keyed_request("a", "a", "k1")).await;
        assert_eq!(first.map(|r| r.status()).ok(), Some(StatusCode::OK));
        // Over the limit: refused (`Never`), or dropped while it waits.
        let second = tokio::time::timeout(
            Duration::from_millis(10),
            svc.clone().oneshot(keyed_request("a", "a", "k1")),
        )
        .await;
        match max_wait {
            MaxWait::Never => assert!(matches!(second, Ok(Err(_))), "{second:?}"),
            _ => assert!(second.is_err(), "it waits: {second:?}"),
        }
        assert!(limiter.route_bucket(&http::Method::GET, "/a/1").is_some());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let next = svc.oneshot(keyed_request("b", "b", "k2")).await;
        assert_eq!(
            next.map(|r| r.status()).ok(),
            Some(StatusCode::OK),
            "{max_wait:?}: the first key's buckets were let go"
        );
    }
}
