//! The layer against a real seed-004 server on loopback: per-route sliding
//! windows, `X-RateLimit-*` with resets in Unix milliseconds, 429 with
//! `Retry-After`, headers missing when the server's limiter is down.
//!
//! Time runs for real here, compressed 120x (a 60 s window lasts 500 ms): a
//! paused tokio clock would let time jump while a response is still in flight
//! on the socket, and the server would then stamp requests later than the
//! client sent them. Each test runs a few windows, 1 to 3 s.
#![cfg(feature = "testkit")]

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_quota::clock::{Clock, Nanos, TokioClock};
use tower_quota::headers::{HeaderRules, ResetUnit};
use tower_quota::ledger::MaxWait;
use tower_quota::quota::{Limits, Pacing, Quota};
use tower_quota::route::Templates;
use tower_quota::testkit::{Config, Outcome, TestServer, DEFAULT_API_KEY};
use tower_quota::{Limiter, OtherRoutes, QuotaLayer};

const SCALE: f64 = 120.0;
const WINDOW: Duration = Duration::from_millis(500);

/// Seed 004's table, compressed like the server.
fn limits(label: &str) -> Option<Limits> {
    let n = match label {
        "GET /v1/analytics" | "GET /v1/analytics/daily" | "GET /v1/analytics/by-user" => 30,
        "POST /v1/leads/add_to_campaign" => 20,
        "GET /v1/campaigns" => 60,
        "GET /v1/campaigns/:id" => 120,
        "GET /v1/campaigns/:id/statistics" => 30,
        "GET /v1/users" | "GET /v1/users/:id" | "GET /v1/teams/me" => 60,
        _ => return None,
    };
    Some(Quota::new(n, WINDOW).unwrap_or(Quota::per_second(1)).into())
}

fn limiter(clock: TokioClock, max_wait: MaxWait) -> Arc<Limiter<TokioClock>> {
    limiter_with(clock, max_wait, limits)
}

/// Seed 004's table with pacing: each route's allowance spread evenly over
/// its window (seed 003: "spread requests evenly rather than sending bursts").
fn paced(label: &str) -> Option<Limits> {
    let l = limits(label)?;
    let q = l.quotas()[0];
    Some(l.paced(Pacing::spread(&q, NonZeroU32::MIN)))
}

fn limiter_with(
    clock: TokioClock,
    max_wait: MaxWait,
    limits: fn(&str) -> Option<Limits>,
) -> Arc<Limiter<TokioClock>> {
    Limiter::builder()
        .clock(clock)
        .routes(
            Templates::seed004(),
            limits,
            OtherRoutes::Each {
                limits: Quota::new(60, WINDOW)
                    .unwrap_or(Quota::per_second(1))
                    .into(),
                cap: 100,
            },
        )
        .headers(HeaderRules::standard().reset_unit(ResetUnit::EpochMillis))
        .max_wait(max_wait)
        // A burst of 20 queues at the server: the last of it arrives a few ms
        // after it left. 20 ms of 500 (4 %) covers that on a loaded 2-core box.
        .margin(Duration::from_millis(20))
        .build()
}

type Body = Empty<Bytes>;

/// Real-time loopback tests measure timing: one at a time, or on two cores they
/// compete for the CPU they are measuring.
static REAL_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn request(base: &str, method: &str, path: &str) -> http::Request<Body> {
    http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("x-api-key", DEFAULT_API_KEY)
        .body(Empty::new())
        .unwrap_or_default()
}

const ROUTES: [(&str, &str, &str); 3] = [
    (
        "POST",
        "/v1/leads/add_to_campaign",
        "POST /v1/leads/add_to_campaign",
    ),
    ("GET", "/v1/analytics", "GET /v1/analytics"),
    (
        "GET",
        "/v1/campaigns/7/statistics",
        "GET /v1/campaigns/:id/statistics",
    ),
];

/// 32 tasks drive three routes for `windows` windows; returns the statuses seen.
async fn drive(
    server: &TestServer,
    limiter: Arc<Limiter<TokioClock>>,
    windows: u32,
) -> HashMap<u16, u64> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter.clone()))
        .service(client);
    let end = limiter.clock().now() + WINDOW * windows;
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let mut svc = svc.clone();
            let (method, path, _) = ROUTES[t % ROUTES.len()];
            let limiter = limiter.clone();
            let base = server.base_url();
            tokio::spawn(async move {
                let mut seen: HashMap<u16, u64> = HashMap::new();
                while limiter.clock().now() < end {
                    let r = request(&base, method, path);
                    match svc.ready().await {
                        Ok(s) => match s.call(r).await {
                            Ok(resp) => *seen.entry(resp.status().as_u16()).or_default() += 1,
                            Err(e) => panic!("request failed: {e}"),
                        },
                        Err(e) => panic!("service not ready: {e}"),
                    }
                }
                seen
            })
        })
        .collect();
    let mut all: HashMap<u16, u64> = HashMap::new();
    for t in tasks {
        for (k, v) in t.await.unwrap_or_default() {
            *all.entry(k).or_default() += v;
        }
    }
    all
}

/// The first `windows` windows of traffic per route in the server's record:
/// each starts at the first admission at or after the previous one's end
/// (the first at the route's first admission), with the start and the units
/// admitted within a window of it. On a busy machine each burst leaves a
/// little after the window frees, and these windows follow it there: a grid
/// fixed at the first admission splits the later bursts across its windows
/// and pushes the last out of the run.
fn windows_of_traffic(server: &TestServer, windows: usize) -> HashMap<String, Vec<(Nanos, u64)>> {
    let mut admitted: HashMap<String, Vec<(Nanos, u64)>> = HashMap::new();
    for e in server.recorder().events() {
        if e.outcome == Outcome::Admitted {
            admitted
                .entry(e.route.clone())
                .or_default()
                .push((e.at, e.cost));
        }
    }
    let mut per_route = HashMap::new();
    for (route, mut units) in admitted {
        units.sort_unstable();
        let mut traffic: Vec<(Nanos, u64)> = Vec::new();
        for (at, cost) in units {
            let full = traffic.len() == windows;
            match traffic.last_mut() {
                Some((start, n)) if at < *start + WINDOW => *n += cost,
                _ if full => break,
                _ => traffic.push((at, cost)),
            }
        }
        per_route.insert(route, traffic);
    }
    per_route
}

/// 32 tasks on three routes, waiting as long as it takes: no 429, never more
/// than a route's limit in any server window, and each route's first eight
/// windows of traffic hold at least 95 % of their allowance, each starting
/// soon after the one before frees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_tasks_get_no_429_and_use_the_allowance() {
    let _serial = REAL_TIME.lock().await;
    let clock = TokioClock::new();
    let server = TestServer::start(Config::seed004().time_scale(SCALE).clock(clock.clone()))
        .await
        .unwrap_or_else(|e| panic!("server: {e}"));
    let seen = drive(&server, limiter(clock, MaxWait::Forever), 9).await;
    assert_eq!(seen.get(&429), None, "no 429s: {seen:?}");
    let stats = server.stats();
    assert_eq!(stats.rejected, 0);
    for b in &stats.buckets {
        assert!(b.max_in_any_window() <= b.windows[0].window.limit, "{b:?}");
    }
    // Utilisation over the first eight windows of traffic.
    let traffic = windows_of_traffic(&server, 8);
    for (_, _, label) in ROUTES {
        let limit = limits(label).map_or(0, |l| l.quotas()[0].limit()) as u64;
        let windows = traffic.get(label).cloned().unwrap_or_default();
        assert_eq!(windows.len(), 8, "{label}: {windows:?}");
        // Each window's burst leaves once the one before frees: a window and
        // the margin after it started, and a busy machine's scheduling delay
        // (measured up to about 55 ms a window under load; 150 allowed).
        for w in windows.windows(2) {
            let gap = w[1].0.saturating_since(w[0].0);
            assert!(
                gap <= WINDOW + Duration::from_millis(20 + 150),
                "{label}: a window of traffic started {gap:?} after the one before: {windows:?}"
            );
        }
        let got: u64 = windows.iter().map(|&(_, n)| n).sum();
        let share = got as f64 / (8 * limit) as f64;
        // Over eight windows (the issue asks for at least three): the first
        // window loses up to nine units, because eleven requests per route leave
        // in the same millisecond and the server answers them out of order; a
        // response that already counts some of our later requests cannot be told
        // from a co-consumer, and contract 5 counts them twice. Later windows are
        // full. Over three windows that start-up loss alone reads 90-98 %.
        assert!(
            share >= 0.95,
            "{label}: {got} of {} ({share:.3}) in {:?}",
            8 * limit,
            windows.iter().map(|&(_, n)| n).collect::<Vec<_>>()
        );
        eprintln!("{label}: {got} of {} ({share:.3})", 8 * limit);
    }
    server.shutdown().await;
}

/// Another client spends part of the same key's allowance behind our back. The
/// layer learns it from `X-RateLimit-Remaining` and converges: at most one 429
/// per window and route (measured: 2 over 4 windows and 2 routes).
///
/// The routes are paced (seed 003: "spread requests evenly rather than sending
/// bursts"), as a client sharing its key with others should be: the first
/// response after the other client strikes shows it before the next request
/// leaves. Sent as bursts, the whole burst is in flight when the other client
/// has taken its share at the window's start: 10-12 429s over the same run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_co_consumer_costs_at_most_one_429_per_window() {
    let _serial = REAL_TIME.lock().await;
    let clock = TokioClock::new();
    let server = TestServer::start(Config::seed004().time_scale(SCALE).clock(clock.clone()))
        .await
        .unwrap_or_else(|e| panic!("server: {e}"));
    let server = Arc::new(server);
    let lim = limiter_with(clock.clone(), MaxWait::Forever, paced);
    // Every window, the other client takes 5 of the 20 leads and 10 of the 30
    // analytics: our own count never sees them.
    let co = {
        let (server, clock) = (server.clone(), clock.clone());
        tokio::spawn(async move {
            let end = clock.now() + WINDOW * 4;
            while clock.now() < end {
                server.consume("default", "POST /v1/leads/add_to_campaign", 5);
                server.consume("default", "GET /v1/analytics", 10);
                tokio::time::sleep(WINDOW).await;
            }
        })
    };
    let seen = drive(&server, lim, 4).await;
    let _ = co.await;
    let rejected = seen.get(&429).copied().unwrap_or(0);
    // two routes see a co-consumer, over four windows
    assert!(
        rejected <= 2 * 4,
        "at most one 429 per window and route: {seen:?}"
    );
    let stats = server.stats();
    for b in &stats.buckets {
        assert!(b.max_in_any_window() <= b.windows[0].window.limit, "{b:?}");
    }
}

/// The server's limiter backend is down for half the requests: those carry no
/// headers and are not counted. Nothing panics, and the configured quota alone
/// keeps the client inside the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_headers_change_nothing() {
    let _serial = REAL_TIME.lock().await;
    let clock = TokioClock::new();
    let server = TestServer::start(
        Config::seed004()
            .time_scale(SCALE)
            .clock(clock.clone())
            .fault(0.5),
    )
    .await
    .unwrap_or_else(|e| panic!("server: {e}"));
    let seen = drive(&server, limiter(clock, MaxWait::Forever), 2).await;
    assert_eq!(seen.get(&429), None, "{seen:?}");
    let stats = server.stats();
    assert!(stats.unmetered > 0, "the fault switch must have fired");
    assert_eq!(stats.rejected, 0);
    server.shutdown().await;
}

/// Thousands of requests wait, then are dropped: the quota is whole again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_thousands_of_waiters_leaves_the_quota_whole() {
    let _serial = REAL_TIME.lock().await;
    let clock = TokioClock::new();
    let server = TestServer::start(Config::seed004().time_scale(SCALE).clock(clock.clone()))
        .await
        .unwrap_or_else(|e| panic!("server: {e}"));
    let lim = limiter(clock.clone(), MaxWait::Forever);
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(lim.clone()))
        .service(client);
    let base = server.base_url();
    // 20 go now; 3000 wait (up to 150 windows ahead) and are then dropped.
    let mut waiting = Vec::new();
    for _ in 0..3020 {
        let mut s = svc.clone();
        let r = request(&base, "POST", "/v1/leads/add_to_campaign");
        waiting.push(tokio::spawn(async move {
            s.ready().await.ok()?.call(r).await.ok()
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for w in &waiting {
        w.abort();
    }
    for w in waiting {
        let _ = w.await;
    }
    let bucket = lim
        .route_bucket(&http::Method::POST, "/v1/leads/add_to_campaign")
        .unwrap_or_else(|| panic!("the route has a bucket"));
    let state = bucket.state(clock.now());
    assert!(
        state.units_charged <= 20,
        "only what left stays charged: {state:?}"
    );
    assert_eq!(state.windows[0].reserved, 0);
    // One window later the whole allowance is there again, at once.
    tokio::time::sleep(WINDOW + Duration::from_millis(20)).await;
    let mut at_once = 0;
    for _ in 0..20 {
        let mut s = svc.clone();
        let started = clock.now();
        let resp = s
            .ready()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .call(request(&base, "POST", "/v1/leads/add_to_campaign"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status(), 200);
        // At once: not held for a unit to free, which takes up to a window
        // (the round trip alone may take tens of ms on a busy machine).
        if clock.now().saturating_since(started) < WINDOW / 2 {
            at_once += 1;
        }
    }
    assert_eq!(at_once, 20);
    assert_eq!(server.stats().rejected, 0);
    server.shutdown().await;
}

/// Fail fast: a typed error names the bucket and the wait, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_gives_a_typed_error_with_the_bucket_and_the_wait() {
    let _serial = REAL_TIME.lock().await;
    let clock = TokioClock::new();
    let server = TestServer::start(Config::seed004().time_scale(SCALE).clock(clock.clone()))
        .await
        .unwrap_or_else(|e| panic!("server: {e}"));
    let lim = limiter(clock.clone(), MaxWait::Never);
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let mut svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(lim))
        .service(client);
    let base = server.base_url();
    for _ in 0..20 {
        let r = request(&base, "POST", "/v1/leads/add_to_campaign");
        let resp = svc
            .ready()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .call(r)
            .await;
        assert!(resp.is_ok_and(|r| r.status() == 200));
    }
    let r = request(&base, "POST", "/v1/leads/add_to_campaign");
    let err = match svc
        .ready()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .call(r)
        .await
    {
        Err(e) => e,
        Ok(r) => panic!("expected a refusal, got {}", r.status()),
    };
    match err.refusal() {
        Some(tower_quota::ledger::Refusal::WouldWait { bucket, wait }) => {
            assert_eq!(&**bucket, "POST /v1/leads/add_to_campaign");
            assert!(*wait > Duration::ZERO && *wait <= WINDOW + Duration::from_millis(30));
        }
        other => panic!("unexpected: {other:?}"),
    }
    assert!(
        !err.to_string().contains(DEFAULT_API_KEY),
        "no secret in errors"
    );
    assert_eq!(server.stats().admitted, 20);
    server.shutdown().await;
}
