//! The credit layer against an in-process service that reports a record
//! count, on tokio's paused clock (sleeping costs no real time).
//!
//! Policy under test: a request that may spend credits starts while at least
//! one credit remains, even if it will cost more (the server, too, charges
//! after the fact); so with 100 credits and 7 records per response, the 15th
//! request starts with 2 left, the period ends at 105, and the 16th is refused
//! or waits for the next period.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderName;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_quota::clock::{Clock, Nanos, TokioClock};
use tower_quota::credits::{CreditBudget, CreditError, CreditLayer, CreditRule, Exhausted, Period};
use tower_quota::ledger::MaxWait;
use tower_quota::quota::Quota;
use tower_quota::route::Rails;
use tower_quota::{Limiter, OtherRoutes, QuotaLayer};

const RECORDS: HeaderName = HeaderName::from_static("x-records");
const PERIOD: Duration = Duration::from_secs(3600);
const ENRICH: &str = "/api/v1/people/bulk_match";

type Request = http::Request<()>;
type Response = http::Response<()>;

/// An inner service answering 7 records to everything, counting calls.
fn server(
    calls: Arc<AtomicUsize>,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone {
    tower::service_fn(move |_req: Request| {
        calls.fetch_add(1, Ordering::SeqCst);
        async {
            let mut response = Response::new(());
            response
                .headers_mut()
                .insert(RECORDS, http::HeaderValue::from_static("7"));
            Ok::<_, Infallible>(response)
        }
    })
}

fn request(method: http::Method, path: &str) -> Request {
    let mut r = Request::new(());
    *r.method_mut() = method;
    *r.uri_mut() = path.parse().unwrap_or_default();
    r
}

fn enrich() -> Request {
    request(http::Method::POST, ENRICH)
}

struct Setup {
    clock: TokioClock,
    budget: Arc<CreditBudget>,
    calls: Arc<AtomicUsize>,
}

fn setup() -> Setup {
    let clock = TokioClock::new();
    let period = Period::new(PERIOD, Nanos::ZERO);
    Setup {
        clock,
        budget: Arc::new(CreditBudget::new("crm credits", 100, period)),
        calls: Arc::new(AtomicUsize::new(0)),
    }
}

fn layer(s: &Setup, exhausted: Exhausted) -> CreditLayer<TokioClock> {
    CreditLayer::new(s.budget.clone(), CreditRule::seed001(RECORDS))
        .with_clock(s.clock.clone())
        .on_exhausted(exhausted)
}

/// Sends 15 enrichments of 7 records: all leave, and the budget is spent.
async fn spend_it_all<S>(svc: &mut S, s: &Setup)
where
    S: Service<Request, Response = Response>,
    S::Error: std::fmt::Debug,
{
    for i in 1..=15u64 {
        let response = svc.ready().await.map(|s| s.call(enrich()));
        let result = match response {
            Ok(f) => f.await,
            Err(e) => Err(e),
        };
        assert!(result.is_ok(), "request {i}: {result:?}");
        assert_eq!(s.budget.spent(s.clock.now()), 7 * i);
    }
    assert_eq!(s.calls.load(Ordering::SeqCst), 15);
    assert_eq!(s.budget.remaining(s.clock.now()), 0);
}

#[tokio::test(start_paused = true)]
async fn stops_at_the_budget_and_fails_fast_with_a_typed_error() {
    let s = setup();
    let mut svc = ServiceBuilder::new()
        .layer(layer(&s, Exhausted::Fail))
        .service(server(s.calls.clone()));
    tokio::time::sleep(Duration::from_secs(600)).await;
    spend_it_all(&mut svc, &s).await;
    assert_eq!(
        s.budget.spent(s.clock.now()),
        105,
        "the 15th started with 2 left"
    );

    let result = svc.ready().await.map(|s| s.call(enrich()));
    let err = match result {
        Ok(f) => f.await.err(),
        Err(e) => Some(e),
    };
    let refusal = err.as_ref().and_then(CreditError::refusal);
    assert_eq!(refusal.map(|r| &*r.budget), Some("crm credits"));
    assert_eq!(
        refusal.map(|r| r.next_period_in),
        Some(PERIOD - Duration::from_secs(600))
    );
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.starts_with("not sent: credit budget `crm credits` is spent"),
        "{text}"
    );
    assert_eq!(s.calls.load(Ordering::SeqCst), 15, "nothing sent");
    assert_eq!(s.budget.spent(s.clock.now()), 105, "nothing charged");
}

#[tokio::test(start_paused = true)]
async fn waits_for_the_next_period_and_no_longer() {
    let s = setup();
    let mut svc = ServiceBuilder::new()
        .layer(layer(&s, Exhausted::Wait { max: PERIOD }))
        .service(server(s.calls.clone()));
    spend_it_all(&mut svc, &s).await;
    tokio::time::sleep(Duration::from_secs(100)).await;

    let start = tokio::time::Instant::now();
    let future = svc.ready().await.map(|s| s.call(enrich()));
    let calls = s.calls.clone();
    let waiter = tokio::spawn(async move {
        match future {
            Ok(f) => f.await.is_ok(),
            Err(_) => false,
        }
    });
    tokio::time::sleep(PERIOD - Duration::from_secs(101)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 15, "still waiting 1 s before");
    assert!(matches!(waiter.await, Ok(true)));
    let waited = start.elapsed();
    let exact = PERIOD - Duration::from_secs(100);
    assert!(
        waited >= exact && waited <= exact + Duration::from_millis(2),
        "{waited:?}"
    );
    assert_eq!(s.calls.load(Ordering::SeqCst), 16);
    assert_eq!(
        s.budget.spent(s.clock.now()),
        7,
        "charged to the new period"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_longer_than_the_maximum_fails_at_once() {
    let s = setup();
    let mut svc = ServiceBuilder::new()
        .layer(layer(
            &s,
            Exhausted::Wait {
                max: Duration::from_secs(60),
            },
        ))
        .service(server(s.calls.clone()));
    spend_it_all(&mut svc, &s).await;
    let start = tokio::time::Instant::now();
    let result = match svc.ready().await.map(|s| s.call(enrich())) {
        Ok(f) => f.await,
        Err(e) => Err(e),
    };
    assert!(matches!(result, Err(CreditError::Refused(r)) if r.next_period_in == PERIOD));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(s.calls.load(Ordering::SeqCst), 15);
}

#[tokio::test(start_paused = true)]
async fn free_endpoints_pass_a_spent_budget_and_cost_nothing() {
    let s = setup();
    let mut svc = ServiceBuilder::new()
        .layer(layer(&s, Exhausted::Fail))
        .service(server(s.calls.clone()));
    spend_it_all(&mut svc, &s).await;
    for (method, path) in [
        (http::Method::POST, "/api/v1/contacts"),
        (http::Method::POST, "/api/v1/contacts/search"),
        (http::Method::PUT, "/api/v1/contacts/17"),
        (http::Method::GET, "/api/v1/contact_stages"),
        (http::Method::POST, "/api/v1/mixed_people/search"),
    ] {
        let result = match svc.ready().await.map(|s| s.call(request(method, path))) {
            Ok(f) => f.await,
            Err(e) => Err(e),
        };
        assert!(result.is_ok(), "{path}");
    }
    assert_eq!(s.calls.load(Ordering::SeqCst), 20);
    assert_eq!(
        s.budget.spent(s.clock.now()),
        105,
        "7 records each, 0 credits"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_a_waiting_request_sends_nothing() {
    let s = setup();
    let mut svc = ServiceBuilder::new()
        .layer(layer(&s, Exhausted::Wait { max: PERIOD }))
        .service(server(s.calls.clone()));
    spend_it_all(&mut svc, &s).await;
    if let Ok(future) = svc.ready().await.map(|s| s.call(enrich())) {
        let polled = tokio::time::timeout(Duration::from_secs(5), future).await;
        assert!(polled.is_err(), "still waiting when dropped");
    }
    tokio::time::sleep(PERIOD * 2).await;
    assert_eq!(s.calls.load(Ordering::SeqCst), 15);
    assert_eq!(s.budget.spent(s.clock.now()), 0);
}

#[tokio::test(start_paused = true)]
async fn failures_of_the_inner_service_charge_nothing() {
    let s = setup();
    let inner = tower::service_fn(|_req: Request| async {
        Err::<Response, _>(std::io::Error::other("connection reset"))
    });
    let mut svc = ServiceBuilder::new()
        .layer(layer(&s, Exhausted::Fail))
        .service(inner);
    let result = match svc.ready().await.map(|s| s.call(enrich())) {
        Ok(f) => f.await,
        Err(e) => Err(e),
    };
    assert!(matches!(result, Err(CreditError::Service(_))));
    assert_eq!(s.budget.spent(s.clock.now()), 0);
}

#[tokio::test(start_paused = true)]
async fn composes_with_the_quota_layer() {
    let s = setup();
    // 10 requests per minute for every route: credits run out after 15,
    // the rate limit spreads them over two minutes.
    let limiter = Limiter::builder()
        .clock(s.clock.clone())
        .routes(
            Rails::seed000(),
            |_| Some(Quota::per_minute(10).into()),
            OtherRoutes::Shared(Quota::per_minute(10).into()),
        )
        .max_wait(MaxWait::Forever)
        .build();
    let mut svc = ServiceBuilder::new()
        .layer(layer(&s, Exhausted::Fail))
        .layer(QuotaLayer::new(limiter))
        .service(server(s.calls.clone()));
    let start = tokio::time::Instant::now();
    spend_it_all(&mut svc, &s).await;
    assert!(start.elapsed() >= Duration::from_secs(60), "rate limited");
    let result = match svc.ready().await.map(|s| s.call(enrich())) {
        Ok(f) => f.await,
        Err(e) => Err(e),
    };
    assert!(result
        .as_ref()
        .err()
        .and_then(CreditError::refusal)
        .is_some());
    assert_eq!(s.calls.load(Ordering::SeqCst), 15);
}

/// Requests waiting for the next period do not all leave at its first
/// instant: each goes only while the credits left cover what those already
/// gone may cost (the largest charge seen, each), so that a budget of 10 and
/// 20 waiters costing 5 spend 10 in the new period, not 100.
#[tokio::test(start_paused = true)]
async fn waiters_at_the_period_edge_leave_only_while_credits_cover_them() {
    let clock = TokioClock::new();
    let budget = hourly_budget(10);
    budget.charge(10, clock.now());
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    // Long enough to be let through after a waiter is charged, too short to
    // wait for the period after.
    let max = PERIOD + Duration::from_secs(60);
    let svc = edge_service(&budget, &clock, max, &calls, false);
    let waiters = spawn_enrichments(&svc, 20);
    let edge = PERIOD - clock.now().as_duration();
    tokio::time::sleep(edge + Duration::from_secs(10)).await;
    assert_eq!(
        (
            calls.lock().map(|c| c.len()).unwrap_or(0),
            budget.spent(clock.now())
        ),
        (2, 10),
        "sent, and spent of 10 in the new period"
    );
    // The others would have to wait for the period after, longer than they may.
    let mut outcomes = Vec::new();
    for waiter in waiters {
        outcomes.push(match waiter.await {
            Ok(Ok(())) => "sent",
            Ok(Err(e)) if e.starts_with("not sent") => "refused",
            _ => "failed",
        });
    }
    let sent = outcomes.iter().filter(|o| **o == "sent").count();
    let refused = outcomes.iter().filter(|o| **o == "refused").count();
    assert_eq!((sent, refused), (2, 18), "{outcomes:?}");
}

/// A budget of `limit` credits an hour, from the clock's origin.
fn hourly_budget(limit: u64) -> Arc<CreditBudget> {
    Arc::new(CreditBudget::new(
        "crm credits",
        limit,
        Period::new(PERIOD, Nanos::ZERO),
    ))
}

/// The layer over `budget`, waiting up to `max`, over an inner service that
/// answers 5 records 100 ms after each request, except the first if
/// `hang_first`: that one never answers. Records which task called, in order
/// (requests name their task in `x-task`).
fn edge_service(
    budget: &Arc<CreditBudget>,
    clock: &TokioClock,
    max: Duration,
    calls: &Arc<std::sync::Mutex<Vec<usize>>>,
    hang_first: bool,
) -> impl Service<Request, Response = Response, Error = CreditError<Infallible>, Future: Send>
       + Clone
       + Send
       + 'static {
    let calls = calls.clone();
    let inner = tower::service_fn(move |req: Request| {
        let task = req
            .headers()
            .get("x-task")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(usize::MAX);
        let first = calls
            .lock()
            .map(|mut calls| {
                calls.push(task);
                calls.len() == 1
            })
            .unwrap_or(false);
        async move {
            if hang_first && first {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut response = Response::new(());
            response
                .headers_mut()
                .insert(RECORDS, http::HeaderValue::from_static("5"));
            Ok::<_, Infallible>(response)
        }
    });
    ServiceBuilder::new()
        .layer(
            CreditLayer::new(budget.clone(), CreditRule::seed001(RECORDS))
                .with_clock(clock.clone())
                .on_exhausted(Exhausted::Wait { max }),
        )
        .service(inner)
}

/// Spawns `n` enrichments through `svc`, each naming its task; each ends
/// with the error's message if it fails.
fn spawn_enrichments<S>(svc: &S, n: usize) -> Vec<tokio::task::JoinHandle<Result<(), String>>>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Display + Send,
{
    (0..n)
        .map(|task| {
            let mut svc = svc.clone();
            tokio::spawn(async move {
                let mut req = enrich();
                req.headers_mut().insert("x-task", task.into());
                let ready = svc.ready().await.map_err(|e| e.to_string())?;
                ready.call(req).await.map_err(|e| e.to_string())?;
                Ok(())
            })
        })
        .collect()
}

/// With credits enough for all of them, waiters leave together at the edge.
#[tokio::test(start_paused = true)]
async fn waiters_at_the_period_edge_leave_together_when_credits_cover_them() {
    let clock = TokioClock::new();
    let budget = hourly_budget(100);
    for _ in 0..20 {
        budget.charge(5, clock.now());
    }
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let svc = edge_service(&budget, &clock, PERIOD * 2, &calls, false);
    let waiters = spawn_enrichments(&svc, 10);
    let edge = PERIOD - clock.now().as_duration();
    tokio::time::sleep(edge + Duration::from_millis(50)).await;
    let sent = calls.lock().map(|c| c.len()).unwrap_or(0);
    assert_eq!(sent, 10, "all at once: 10 of 5 at most is 50 of 100");
    for waiter in waiters {
        assert!(matches!(waiter.await, Ok(Ok(()))));
    }
    assert_eq!(budget.spent(clock.now()), 50);
}

/// A waiter let through and then cancelled lets the next one through.
#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_at_the_edge_lets_the_next_one_through() {
    let clock = TokioClock::new();
    let budget = hourly_budget(10);
    budget.charge(10, clock.now()); // one request may cost the whole budget
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let svc = edge_service(&budget, &clock, PERIOD * 2, &calls, true);
    let waiters = spawn_enrichments(&svc, 3);
    let edge = PERIOD - clock.now().as_duration();
    tokio::time::sleep(edge + Duration::from_secs(5)).await;
    assert_eq!(
        calls.lock().map(|c| c.len()).unwrap_or(0),
        1,
        "one at a time"
    );
    let hung = calls
        .lock()
        .ok()
        .and_then(|c| c.first().copied())
        .unwrap_or(usize::MAX);
    let mut others = Vec::new();
    for (task, waiter) in waiters.into_iter().enumerate() {
        if task == hung {
            waiter.abort();
        } else {
            others.push(waiter);
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        calls.lock().map(|c| c.len()).unwrap_or(0),
        2,
        "the next one went"
    );
    // It cost 5 of the 10 (the largest charge seen): the last may go now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(calls.lock().map(|c| c.len()).unwrap_or(0), 3);
    for waiter in others {
        assert!(matches!(waiter.await, Ok(Ok(()))));
    }
    assert_eq!(budget.spent(clock.now()), 10);
}

/// Under a `ConcurrencyLimit` of one, an enrichment waits for the next
/// period; a free request goes at once. Found by review (in the rate
/// layer, the same here): the waiter took the inner service `poll_ready`
/// had made ready, and with it the limit's only permit, for its whole wait.
#[tokio::test(start_paused = true)]
async fn a_waiter_leaves_the_inner_readiness_to_requests_that_go() {
    let s = setup();
    let mut svc = ServiceBuilder::new()
        .layer(layer(&s, Exhausted::Wait { max: PERIOD }))
        .concurrency_limit(1)
        .service(server(s.calls.clone()));
    spend_it_all(&mut svc, &s).await;
    let waiter = tokio::spawn(svc.clone().oneshot(enrich()));
    tokio::task::yield_now().await;
    let free = tokio::time::timeout(
        Duration::from_secs(1),
        svc.clone()
            .oneshot(request(http::Method::GET, "/api/v1/contact_stages")),
    )
    .await;
    assert!(matches!(free, Ok(Ok(_))), "held behind the waiter");
    assert!(!waiter.is_finished(), "the enrichment waits for the period");
    let left = tokio::time::timeout(PERIOD + Duration::from_secs(1), waiter).await;
    assert!(matches!(left, Ok(Ok(Ok(_)))), "{left:?}");
}
