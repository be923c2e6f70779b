//! What the layer does with responses, on tokio's paused clock with an
//! in-process inner service (no sockets, so virtual time cannot run ahead of a
//! request in flight): a 429 blocks its bucket and the waiters leave spread out
//! when it reopens; a 429 with room left tightens the limit; a request the inner
//! service fails stays counted; no event carries an API key.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_quota::clock::{Clock, Nanos, TokioClock};
use tower_quota::ledger::{MaxWait, Refusal};
use tower_quota::quota::Quota;
use tower_quota::scope::KeySource;
use tower_quota::{Error, Limiter, OtherRoutes, QuotaLayer};

mod common;
use common::{limiter, one_route, request, SECRET};

/// A server that answers its first request, 100 ms later, with 429 and
/// `Retry-After: 2`, and 200 to the rest. Thirty requests are already waiting,
/// holding reserved departures, when the 429 arrives.
#[tokio::test(start_paused = true)]
async fn a_429_blocks_and_the_waiters_leave_spread_out() {
    let clock = TokioClock::new();
    let lim = limiter(clock.clone(), 10);
    let calls = Arc::new(AtomicU32::new(0));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let inner = {
        let (calls, sent, clock) = (calls.clone(), sent.clone(), clock.clone());
        tower::service_fn(move |_req: Request<()>| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut s) = sent.lock() {
                s.push(clock.now());
            }
            common::answer(n == 0, Duration::from_millis(100))
        })
    };
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(lim.clone()))
        .service(inner);
    let first = tokio::spawn(svc.clone().oneshot(request()));
    tokio::task::yield_now().await;
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let s = svc.clone();
            tokio::spawn(async move { s.oneshot(request()).await.map(|r| r.status()) })
        })
        .collect();
    let first = first
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    let bucket = lim
        .route_bucket(&http::Method::GET, "/v1/campaigns/7")
        .unwrap_or_else(|| panic!("route bucket"));
    let block = Nanos::from_millis(2100);
    assert_eq!(bucket.blocked_until(clock.now()), Some(block));
    for t in tasks {
        let status = t.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status.ok(), Some(StatusCode::OK));
    }
    let sent = sent.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(sent.len(), 31);
    // Ten left at once (the first and nine more); the twenty that had reserved
    // slots at 1 s and 2 s did not leave inside the block...
    assert_eq!(sent.iter().filter(|t| **t == Nanos::ZERO).count(), 10);
    let later: Vec<Nanos> = sent.iter().copied().filter(|t| *t > Nanos::ZERO).collect();
    assert!(
        later.iter().all(|t| *t >= block),
        "nothing leaves during the block: {later:?}"
    );
    // ...and after it they go ten per second, as the quota says: no herd.
    for t in &later {
        let in_window = later
            .iter()
            .filter(|u| **u <= *t && **u + Duration::from_secs(1) > *t)
            .count();
        assert!(in_window <= 10, "{in_window} in the second before {t}");
    }
}

/// The server refuses with 429 while its headers still show room: it enforces a
/// limit we did not know, and the bucket learns it.
#[tokio::test(start_paused = true)]
async fn a_429_with_room_left_tightens_the_limit() {
    let clock = TokioClock::new();
    let lim = limiter(clock.clone(), 10);
    let calls = Arc::new(AtomicU32::new(0));
    let inner = {
        let calls = calls.clone();
        tower::service_fn(move |_req: Request<()>| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                let resp = Response::builder()
                    .status(if n < 3 { 200 } else { 429 })
                    .header("x-ratelimit-limit", "10")
                    .header("x-ratelimit-remaining", (9 - n.min(9)).to_string())
                    .header("retry-after", "1")
                    .body(());
                Ok::<_, Infallible>(resp.unwrap_or_default())
            }
        })
    };
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(lim.clone()))
        .service(inner);
    for _ in 0..4 {
        let _ = svc.clone().oneshot(request()).await;
    }
    let bucket = lim
        .route_bucket(&http::Method::GET, "/v1/campaigns/7")
        .unwrap_or_else(|| panic!("route bucket"));
    assert_eq!(
        bucket.limit(0),
        Some(4),
        "it accepted four in the window, not ten"
    );
    assert!(bucket.blocked_until(clock.now()).is_some());
}

/// The inner service fails (connection refused, timeout): the request may have
/// reached the server, so it stays counted.
#[tokio::test(start_paused = true)]
async fn a_request_the_inner_service_fails_stays_counted() {
    let clock = TokioClock::new();
    let lim = limiter(clock.clone(), 10);
    let inner =
        tower::service_fn(|_req: Request<()>| async { Err::<Response<()>, _>("connection reset") });
    let mut svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(lim.clone()))
        .service(inner);
    let r = svc
        .ready()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .call(request())
        .await;
    assert!(matches!(
        r,
        Err(tower_quota::Error::Service("connection reset"))
    ));
    let bucket = lim
        .route_bucket(&http::Method::GET, "/v1/campaigns/7")
        .unwrap_or_else(|| panic!("route bucket"));
    assert_eq!(bucket.state(clock.now()).windows[0].used, 1);
}

/// The limiter keeps the report's figures as traffic flows: the route bucket's
/// usage and 429s in a snapshot, every answer in the 24-hour history.
#[tokio::test(start_paused = true)]
async fn the_snapshot_and_history_follow_the_traffic() {
    let clock = TokioClock::new();
    let lim = limiter(clock.clone(), 10);
    let calls = Arc::new(AtomicU32::new(0));
    let inner = {
        let calls = calls.clone();
        tower::service_fn(move |_req: Request<()>| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                let status = if n == 2 { 429 } else { 200 };
                let resp = Response::builder()
                    .status(status)
                    .header("retry-after", "1")
                    .body(());
                Ok::<_, Infallible>(resp.unwrap_or_default())
            }
        })
    };
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(lim.clone()))
        .service(inner);
    for _ in 0..5 {
        let _ = svc.clone().oneshot(request()).await;
    }
    let snap = lim.snapshot(&tower_quota::report::Thresholds::default());
    let route = snap
        .buckets
        .iter()
        .find(|b| b.label == "GET /v1/campaigns/:id")
        .unwrap_or_else(|| panic!("route bucket in the snapshot: {snap:?}"));
    assert_eq!(route.counters.rate_limited, 1);
    assert_eq!(route.windows[0].limit, 10);
    assert!(snap.buckets.iter().any(|b| b.scope == "per_api_key"));
    let summary = lim.history().summary_24h(clock.to_wall(clock.now()));
    assert_eq!(
        (summary.total_requests, summary.rate_limited_requests),
        (5, 1)
    );
    assert_eq!(summary.rate_limit_percentage, 20.0);
    let shown = serde_json::to_string(&snap).unwrap_or_default();
    assert!(!shown.contains(SECRET), "no key in the report");
}

/// A request the router exempts (a usage endpoint) is charged to no scope at
/// all: a refresh is never held back by the quotas it refreshes.
#[tokio::test(start_paused = true)]
async fn an_exempt_request_is_charged_to_no_scope() {
    let clock = TokioClock::new();
    // seed 002's router exempts its usage endpoint, GET /rateLimit/usage
    let lim = Limiter::builder()
        .clock(clock.clone())
        .routes(
            tower_quota::route::MethodResource::seed002(),
            |_| Some(Quota::per_second(10).into()),
            OtherRoutes::Each {
                limits: Quota::per_second(10).into(),
                cap: 10,
            },
        )
        .per_api_key(KeySource::header("x-api-key"), Quota::per_second(1000), 10)
        .build();
    let inner = tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::builder().status(200).body(()).unwrap_or_default())
    });
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(lim.clone()))
        .service(inner);
    let req = Request::get("http://api.example.com/rateLimit/usage")
        .header("x-api-key", SECRET)
        .body(())
        .unwrap_or_default();
    let resp = svc.oneshot(req).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), StatusCode::OK);
    let snap = lim.snapshot(&tower_quota::report::Thresholds::default());
    assert!(
        snap.buckets.iter().all(|b| b.units_charged == 0),
        "nothing charged anywhere: {snap:?}"
    );
}

/// Some APIs answer 403 when rate limited: which statuses mean "rate limited"
/// is configurable, and only those block.
#[tokio::test(start_paused = true)]
async fn the_rate_limited_statuses_are_configurable() {
    let inner = || {
        tower::service_fn(|_req: Request<()>| async {
            let resp = Response::builder()
                .status(403)
                .header("retry-after", "5")
                .body(());
            Ok::<_, Infallible>(resp.unwrap_or_default())
        })
    };
    for (statuses, blocks) in [
        (vec![StatusCode::TOO_MANY_REQUESTS], false),
        (vec![StatusCode::FORBIDDEN], true),
    ] {
        let clock = TokioClock::new();
        let lim = one_route(clock.clone(), Quota::per_second(10))
            .rate_limited_statuses(statuses)
            .build();
        let svc = ServiceBuilder::new()
            .layer(QuotaLayer::new(lim.clone()))
            .service(inner());
        let _ = svc.oneshot(request()).await;
        let bucket = lim
            .route_bucket(&http::Method::GET, "/v1/campaigns/7")
            .unwrap_or_else(|| panic!("route bucket"));
        assert_eq!(
            bucket.blocked_until(clock.now()).is_some(),
            blocks,
            "403 blocks: {blocks}"
        );
    }
}

/// A huge announced limit (hostile, or a server bug) never raises a bucket
/// beyond what it was built for; a modest raise within its capacity is taken.
#[tokio::test(start_paused = true)]
async fn a_huge_announced_limit_never_loosens_the_bucket() {
    let clock = TokioClock::new();
    let lim = one_route(
        clock.clone(),
        tower_quota::quota::Limits::from(Quota::per_second(10)).capacity(20),
    )
    .build();
    let answer = Arc::new(Mutex::new("4000000000"));
    let inner = {
        let answer = answer.clone();
        tower::service_fn(move |_req: Request<()>| {
            let limit = answer.lock().map(|a| *a).unwrap_or("0");
            async move {
                let resp = Response::builder()
                    .status(200)
                    .header("x-ratelimit-limit", limit)
                    .header("x-ratelimit-remaining", "5")
                    .body(());
                Ok::<_, Infallible>(resp.unwrap_or_default())
            }
        })
    };
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(lim.clone()))
        .service(inner);
    let bucket = lim
        .route_bucket(&http::Method::GET, "/v1/campaigns/7")
        .unwrap_or_else(|| panic!("route bucket"));
    let _ = svc.clone().oneshot(request()).await;
    assert_eq!(
        bucket.limit(0),
        Some(20),
        "clamped to the capacity reserved"
    );
    if let Ok(mut a) = answer.lock() {
        *a = "15";
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    let _ = svc.oneshot(request()).await;
    assert_eq!(
        bucket.limit(0),
        Some(15),
        "a raise within capacity is the server's word"
    );
}

/// A server whose clock runs 10 s fast says "429, resets at <its now + 30 s>"
/// as an absolute Unix time: the layer reads the server's clock from its
/// `Date` and blocks for about 30 s, not 40 s.
#[tokio::test(start_paused = true)]
async fn absolute_resets_are_read_on_the_servers_clock() {
    let clock = TokioClock::new();
    let lim = one_route(clock.clone(), Quota::per_minute(10))
        .margin(Duration::ZERO)
        .build();
    let inner = {
        let clock = clock.clone();
        tower::service_fn(move |_req: Request<()>| {
            let server_now = clock.to_wall(clock.now()) + Duration::from_secs(10);
            let reset = (server_now + Duration::from_secs(30))
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            async move {
                let resp = Response::builder()
                    .status(429)
                    .header("date", httpdate::fmt_http_date(server_now))
                    .header("x-ratelimit-limit", "10")
                    .header("x-ratelimit-remaining", "0")
                    .header("x-ratelimit-reset", reset.to_string())
                    .body(());
                Ok::<_, Infallible>(resp.unwrap_or_default())
            }
        })
    };
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(lim.clone()))
        .service(inner);
    let _ = svc.oneshot(request()).await;
    let bucket = lim
        .route_bucket(&http::Method::GET, "/v1/campaigns/7")
        .unwrap_or_else(|| panic!("route bucket"));
    let blocked = bucket
        .blocked_until(clock.now())
        .map(|t| t.saturating_since(clock.now()))
        .unwrap_or(Duration::ZERO);
    // Date and the reset have one-second resolution.
    assert!(
        blocked >= Duration::from_secs(29) && blocked <= Duration::from_secs(32),
        "blocked for {blocked:?}; trusting the local clock would say 40 s"
    );
}

/// A response that reports a minute, an hour and a day at once (the IETF
/// fields) where the day's usage exceeds the hour's limit: the day's older
/// units never fill the minute or the hour, and the minute's room is sent at
/// once. Raising each window alone, the hour was full for an hour.
#[tokio::test(start_paused = true)]
async fn a_days_usage_in_the_headers_leaves_the_minutes_room_to_send() {
    let clock = TokioClock::new();
    let lim = one_route(
        clock.clone(),
        tower_quota::quota::Limits::new([
            Quota::per_minute(200),
            Quota::per_hour(600),
            Quota::per_day(6000),
        ]),
    )
    .max_wait(tower_quota::ledger::MaxWait::Forever)
    .margin(Duration::ZERO)
    .build();
    let calls = Arc::new(AtomicU32::new(0));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let inner = {
        let (calls, sent, clock) = (calls.clone(), sent.clone(), clock.clone());
        tower::service_fn(move |_req: Request<()>| {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            if let Ok(mut s) = sent.lock() {
                s.push(clock.now());
            }
            async move {
                let mut resp = Response::builder().status(200);
                if first {
                    resp = resp
                        .header(
                            "ratelimit-policy",
                            r#""minute";q=200;w=60, "hour";q=600;w=3600, "day";q=6000;w=86400"#,
                        )
                        .header(
                            "ratelimit",
                            r#""minute";r=190;t=50, "hour";r=500;t=3000, "day";r=3000;t=80000"#,
                        );
                }
                Ok::<_, Infallible>(resp.body(()).unwrap_or_default())
            }
        })
    };
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(lim.clone()))
        .service(inner);
    let started = clock.now();
    let first = svc.clone().oneshot(request()).await.map(|r| r.status());
    assert_eq!(first.ok(), Some(StatusCode::OK));
    let bucket = lim
        .route_bucket(&http::Method::GET, "/v1/campaigns/7")
        .unwrap_or_else(|| panic!("route bucket"));
    let used: Vec<u64> = bucket
        .state(clock.now())
        .windows
        .iter()
        .map(|w| w.used)
        .collect();
    assert_eq!(
        used,
        [10, 100, 3000],
        "the server's counts, each window its own"
    );
    // The minute's 190 leave at once, and one more waits for the minute.
    let tasks: Vec<_> = (0..191)
        .map(|_| {
            let s = svc.clone();
            tokio::spawn(async move { s.oneshot(request()).await.map(|r| r.status()) })
        })
        .collect();
    for t in tasks {
        assert!(matches!(t.await, Ok(Ok(StatusCode::OK))));
    }
    let mut times = sent.lock().map(|s| s.clone()).unwrap_or_default();
    times.sort_unstable();
    assert_eq!(times.len(), 192);
    let at_once = times
        .iter()
        .filter(|t| t.saturating_since(started) < Duration::from_secs(1))
        .count();
    assert_eq!(at_once, 191, "the first and the minute's 190 at once");
    let last = times[191].saturating_since(started);
    assert!(
        last >= Duration::from_secs(50) && last <= Duration::from_secs(61),
        "the 201st of the minute waits for it, not for the hour: {last:?}"
    );
}

/// A limiter with an API-key scope and no route bucket (as in the README's
/// Redis example): a 429 with only `Retry-After` blocks the key's bucket,
/// the one the request was charged to, rather than nothing. Found by review:
/// with the route as the target and no route bucket, nothing was blocked
/// and the next request went straight into the server's 30 s wait.
#[tokio::test(start_paused = true)]
async fn a_bare_429_blocks_the_key_when_the_request_has_no_route_bucket() {
    let limiter = Limiter::builder()
        .clock(TokioClock::new())
        .per_api_key(KeySource::header("x-api-key"), Quota::per_minute(600), 100)
        .max_wait(MaxWait::Never)
        .build();
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = {
        let calls = calls.clone();
        tower::service_fn(move |_req: Request<()>| {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                let status = if first { 429 } else { 200 };
                let resp = http::Response::builder()
                    .status(status)
                    .header("retry-after", "30")
                    .body(());
                Ok::<_, Infallible>(resp.unwrap_or_default())
            }
        })
    };
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter))
        .service(inner);
    let first = svc.clone().oneshot(request()).await;
    assert_eq!(first.map(|r| r.status().as_u16()).ok(), Some(429));
    let again = svc.clone().oneshot(request()).await;
    assert!(
        matches!(&again, Err(Error::Limited(Refusal::WouldWait { wait, .. })) if *wait > Duration::from_secs(29)),
        "sent into the server's 30 s block: {:?}",
        again.map(|r| r.status())
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the server saw one request"
    );
    tokio::time::advance(Duration::from_secs(30)).await;
    let after = svc.clone().oneshot(request()).await;
    assert_eq!(after.map(|r| r.status().as_u16()).ok(), Some(200));
}
