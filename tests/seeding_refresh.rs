//! Seeding a live limiter from the usage endpoints, through the client's own
//! stack: a seeded client starts where the server stands, the refresher keeps
//! to its interval and its credentials, and a failing endpoint changes nothing.
//!
//! Tests with real loopback HTTP run in real time, compressed (seed 000's
//! fixed minute lasts 3 s at a scale of 20); tests with a stand-in service run
//! on tokio's paused clock.
#![cfg(feature = "testkit")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::Method;
use http_body_util::{Empty, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_quota::clock::{Clock, TokioClock};
use tower_quota::ledger::MaxWait;
use tower_quota::quota::{Limits, Quota};
use tower_quota::route::{MethodResource, Rails, Router};
use tower_quota::scope::KeySource;
use tower_quota::seed::{
    RefreshError, RefreshOutcome, Refresher, SeedError, UsageEndpoint, WindowNames,
};
use tower_quota::testkit::{
    Config, Dialect, TestServer, Window, DEFAULT_API_KEY, DEFAULT_SYSTEM, DEFAULT_SYSTEM_KEY,
    MASTER_API_KEY,
};
use tower_quota::{Limiter, OtherRoutes, QuotaLayer, QuotaService};

const SCALE: f64 = 20.0;
/// Seed 000's minute at `SCALE`.
const MINUTE: Duration = Duration::from_secs(3);
const SEARCH: &str = "api/v1/contacts#search";

type Body = Empty<Bytes>;
type Layered = QuotaService<Client<HttpConnector, Body>, TokioClock>;

fn per(n: u32, window: Duration) -> Limits {
    Quota::new(n, window).unwrap_or(Quota::per_second(1)).into()
}

/// A seed 000 server whose `contacts#search` allows 20 per fixed (API) minute.
async fn crm_server(clock: &TokioClock) -> TestServer {
    let config = Config::new(Dialect::Crm)
        .master_key("master", MASTER_API_KEY)
        .api_key("default", DEFAULT_API_KEY)
        .limit(SEARCH, vec![Window::fixed(20, Duration::from_secs(60))])
        .time_scale(SCALE)
        .clock(clock.clone());
    TestServer::start(config)
        .await
        .unwrap_or_else(|e| panic!("server: {e}"))
}

/// A client that believes `contacts#search` allows 20 per 3 s, failing fast.
fn crm_client(clock: &TokioClock) -> (Arc<Limiter<TokioClock>>, Layered) {
    let limiter = Limiter::builder()
        .clock(clock.clone())
        .routes(
            Rails::seed000(),
            |l| (l == SEARCH).then(|| per(20, MINUTE)),
            OtherRoutes::Unlimited,
        )
        .max_wait(MaxWait::Never)
        .build();
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter.clone()))
        .service(client);
    (limiter, svc)
}

fn crm_endpoint(server: &TestServer, key: &str) -> UsageEndpoint {
    UsageEndpoint::crm(&server.base_url(), key)
        .unwrap_or_else(|e| panic!("{e}"))
        .window_names(WindowNames::standard().scaled(SCALE))
}

/// Statuses of a burst of `n` concurrent searches: (200s, 429s, refused by
/// the limiter without being sent).
async fn burst(svc: &Layered, server: &TestServer, n: usize) -> (u64, u64, u64) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let mut svc = svc.clone();
            let url = server.url("/api/v1/contacts/search");
            tokio::spawn(async move {
                let req = http::Request::post(url)
                    .header("x-api-key", DEFAULT_API_KEY)
                    .body(Empty::new())
                    .unwrap_or_default();
                let ready = svc.ready().await.unwrap_or_else(|e| panic!("{e}"));
                match ready.call(req).await {
                    Ok(r) => r.status().as_u16(),
                    Err(e) if e.refusal().is_some() => 0,
                    Err(e) => panic!("{e}"),
                }
            })
        })
        .collect();
    let (mut ok, mut limited, mut refused) = (0, 0, 0);
    for t in tasks {
        match t.await.unwrap_or_else(|e| panic!("{e}")) {
            200 => ok += 1,
            429 => limited += 1,
            0 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    (ok, limited, refused)
}

/// Sleeps until just after the start of the server's next fixed minute, so a
/// whole run fits in one window.
async fn start_of_a_window(clock: &TokioClock) {
    let wall = clock.to_wall(clock.now());
    let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let into = Duration::from_nanos((since.as_nanos() % MINUTE.as_nanos()) as u64);
    tokio::time::sleep(MINUTE - into + Duration::from_millis(50)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_client_bursts_without_a_429_where_an_unseeded_one_gets_some() {
    let clock = TokioClock::new();
    let (seeded_server, plain_server) = (crm_server(&clock).await, crm_server(&clock).await);
    let (seeded_limiter, seeded) = crm_client(&clock);
    let (_, plain) = crm_client(&clock);
    let refresher = Refresher::new(
        seeded_limiter.clone(),
        seeded.clone(),
        crm_endpoint(&seeded_server, MASTER_API_KEY),
    );

    start_of_a_window(&clock).await;
    // Another program sharing the team's allowance has spent 12 of 20.
    for server in [&seeded_server, &plain_server] {
        assert!(server.consume("default", SEARCH, 12));
    }
    let report = match refresher.refresh_once().await {
        Ok(RefreshOutcome::Applied(report)) => report,
        other => panic!("{other:?}"),
    };
    assert_eq!(report.units_added(), 12, "{report:?}");

    let seeded_run = burst(&seeded, &seeded_server, 20).await;
    let plain_run = burst(&plain, &plain_server, 20).await;
    eprintln!("seeded (200, 429, refused): {seeded_run:?}; unseeded: {plain_run:?}");
    assert_eq!(
        seeded_run,
        (8, 0, 12),
        "the seeded client sends only what is left"
    );
    assert!(
        plain_run.1 > 0,
        "the unseeded client meets 429s: {plain_run:?}"
    );
    for b in seeded_server.stats().buckets {
        assert!(b.windows.iter().all(|w| !w.exceeded()), "{b:?}");
    }
    seeded_server.shutdown().await;
    plain_server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_call_is_charged_to_no_route_bucket_even_when_all_are_blocked() {
    // The routers exempt the usage endpoints ...
    let rails = Rails::seed000();
    assert_eq!(rails.route(&Method::POST, UsageEndpoint::CRM_PATH), None);
    let partner = MethodResource::seed002();
    assert_eq!(
        partner.route(&Method::GET, UsageEndpoint::PARTNER_PATH),
        None
    );

    // ... so the layer charges the call to no route bucket: it goes out even
    // when every route bucket is blocked and the limiter fails fast.
    let clock = TokioClock::new();
    let server = crm_server(&clock).await;
    let (limiter, svc) = crm_client(&clock);
    assert!(limiter
        .route_bucket(&Method::POST, UsageEndpoint::CRM_PATH)
        .is_none());
    let far = clock.now() + Duration::from_secs(3600);
    for b in limiter.route_buckets() {
        b.block_until(far);
    }
    let refresher = Refresher::new(limiter.clone(), svc, crm_endpoint(&server, MASTER_API_KEY));
    let outcome = refresher.refresh_once().await;
    assert!(
        matches!(outcome, Ok(RefreshOutcome::Applied(_))),
        "{outcome:?}"
    );
    let now = clock.now();
    let charged: u64 = limiter
        .route_buckets()
        .iter()
        .map(|b| b.state(now).units_charged)
        .sum();
    assert_eq!(charged, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed000_usage_needs_the_master_key() {
    let clock = TokioClock::new();
    let server = crm_server(&clock).await;
    let (limiter, svc) = crm_client(&clock);
    let poll = |key: &str| Refresher::new(limiter.clone(), svc.clone(), crm_endpoint(&server, key));

    let no_key = poll("not-a-key");
    assert_eq!(
        no_key.refresh_once().await.err(),
        Some(RefreshError::Unauthorized)
    );
    let not_master = poll(DEFAULT_API_KEY);
    assert_eq!(
        not_master.refresh_once().await.err(),
        Some(RefreshError::Forbidden)
    );
    let status = not_master.status();
    assert_eq!((status.polls, status.failures), (1, 1));
    assert_eq!(status.last_error, Some(RefreshError::Forbidden));
    assert!(status.last_ok.is_none());
    let shown = format!("{status:?} {}", RefreshError::Forbidden);
    assert!(!shown.contains(DEFAULT_API_KEY) && !shown.contains(MASTER_API_KEY));

    let master = poll(MASTER_API_KEY);
    assert!(matches!(
        master.refresh_once().await,
        Ok(RefreshOutcome::Applied(_))
    ));
    let status = master.status();
    assert_eq!((status.polls, status.failures), (1, 0));
    assert!(status.last_ok.is_some() && status.last_error.is_none());
    assert!(!format!("{master:?}").contains(MASTER_API_KEY));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed002_limits_replace_the_configured_ones_through_the_layered_client() {
    let clock = TokioClock::new();
    let server = TestServer::start(Config::seed002().clock(clock.clone()))
        .await
        .unwrap_or_else(|e| panic!("server: {e}"));
    // Configured looser than the server: 120 for GET.people, 800 for other
    // routes, 30 per account.
    let limiter = Limiter::builder()
        .clock(clock.clone())
        .routes(
            MethodResource::seed002(),
            |l| (l == "GET.people").then(|| Limits::from(Quota::per_minute(120))),
            OtherRoutes::Each {
                limits: Quota::per_minute(800).into(),
                cap: 100,
            },
        )
        .per_account(KeySource::header("x-api-key"), Quota::per_minute(30), 100)
        .build();
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let mut svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter.clone()))
        .service(client);
    // One request first, so an account bucket exists.
    let req = http::Request::get(server.url("/accounts/1"))
        .header("x-system", DEFAULT_SYSTEM)
        .header("x-system-key", DEFAULT_SYSTEM_KEY)
        .header("x-api-key", DEFAULT_API_KEY)
        .body(Empty::new())
        .unwrap_or_default();
    let ready = svc.ready().await.unwrap_or_else(|e| panic!("{e}"));
    let status = ready.call(req).await.map(|r| r.status().as_u16());
    assert_eq!(status.ok(), Some(200));

    let endpoint = UsageEndpoint::partner(
        &server.base_url(),
        DEFAULT_SYSTEM,
        DEFAULT_SYSTEM_KEY,
        DEFAULT_API_KEY,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let refresher = Refresher::new(limiter.clone(), svc.clone(), endpoint);
    let report = match refresher.refresh_once().await {
        Ok(RefreshOutcome::Applied(r)) => r,
        other => panic!("{other:?}"),
    };
    let limit = |m: Method, p: &str| limiter.route_bucket(&m, p).and_then(|b| b.limit(0));
    assert_eq!(limit(Method::GET, "/people/7"), Some(100));
    assert_eq!(limit(Method::GET, "/accounts/1"), Some(750), "existing");
    assert_eq!(limit(Method::POST, "/deals"), Some(750), "created later");
    let account_rows: Vec<_> = report
        .applied
        .iter()
        .filter(|a| a.target == tower_quota::SeedTarget::Account)
        .collect();
    assert_eq!(account_rows.len(), 1);
    assert_eq!(account_rows[0].applied.limits_changed[0].to, 25);
    assert!(!format!("{report:?}").contains(DEFAULT_API_KEY));

    // A second poll inside the minute does not reach the server.
    assert!(matches!(
        refresher.refresh_once().await,
        Ok(RefreshOutcome::TooSoon { .. })
    ));
    assert_eq!(refresher.status().polls, 1);
    server.shutdown().await;
}

// ---- A stand-in server on tokio's paused clock ----

const PARTNER_BODY: &str = r#"{"system": "your-system", "period": "last_24h", "usage": {
  "total_requests": 0, "rate_limited_requests": 0, "rate_limit_percentage": 0,
  "peak_hour": null, "current_limits": {
    "across_all_accounts": { "default": 750, "GET.people": 100 },
    "per_account": { "default": 25 } } } }"#;

/// What the stand-in answers.
#[derive(Clone, Copy)]
enum Answer {
    Ok,
    Status(u16),
    Garbage,
    Truncated,
    Hang,
    Fail,
    /// 429 with `Retry-After` in seconds.
    RateLimited(u64),
}

/// A counting stand-in for the partner's usage endpoint.
#[derive(Clone)]
struct StandIn {
    calls: Arc<AtomicUsize>,
    answer: Arc<std::sync::Mutex<Answer>>,
}

impl StandIn {
    fn new() -> StandIn {
        StandIn {
            calls: Arc::new(AtomicUsize::new(0)),
            answer: Arc::new(std::sync::Mutex::new(Answer::Ok)),
        }
    }

    fn answer(&self, a: Answer) {
        if let Ok(mut g) = self.answer.lock() {
            *g = a;
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn service(
        &self,
    ) -> impl Service<
        http::Request<()>,
        Response = http::Response<Full<Bytes>>,
        Error = std::io::Error,
        Future = impl Send,
    > + Clone
           + Send
           + 'static {
        let this = self.clone();
        tower::service_fn(move |req: http::Request<()>| {
            let this = this.clone();
            async move {
                this.calls.fetch_add(1, Ordering::SeqCst);
                assert!(req.headers().get("x-system-key").is_some());
                let answer = this.answer.lock().map(|g| *g).unwrap_or(Answer::Ok);
                let (status, body) = match answer {
                    Answer::Ok => (200, PARTNER_BODY.to_owned()),
                    Answer::Status(s) => (s, "oops".to_owned()),
                    Answer::Garbage => (200, "<html>busy</html>".to_owned()),
                    Answer::Truncated => (200, PARTNER_BODY[..PARTNER_BODY.len() - 3].to_owned()),
                    Answer::Hang => {
                        std::future::pending::<()>().await;
                        (200, String::new())
                    }
                    Answer::Fail => return Err(std::io::Error::other("connection reset")),
                    Answer::RateLimited(_) => (429, "slow down".to_owned()),
                };
                let mut resp = http::Response::new(Full::new(Bytes::from(body)));
                if let Answer::RateLimited(secs) = answer {
                    resp.headers_mut().insert("retry-after", secs.into());
                }
                *resp.status_mut() = http::StatusCode::from_u16(status)
                    .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                Ok(resp)
            }
        })
    }
}

fn partner_limiter() -> Arc<Limiter<TokioClock>> {
    Limiter::builder()
        .routes(
            MethodResource::seed002(),
            |l| (l == "GET.people").then(|| Limits::from(Quota::per_minute(120))),
            OtherRoutes::Shared(Quota::per_minute(800).into()),
        )
        .build()
}

fn partner_endpoint() -> UsageEndpoint {
    UsageEndpoint::partner("http://partner.test", "sys", "system-secret", "acct-secret")
        .unwrap_or_else(|e| panic!("{e}"))
}

fn people_limit(limiter: &Limiter<TokioClock>) -> Option<u32> {
    limiter
        .route_bucket(&Method::GET, "/people/1")
        .and_then(|b| b.limit(0))
}

#[tokio::test(start_paused = true)]
async fn polls_keep_to_the_minimum_interval() {
    let stand_in = StandIn::new();
    let refresher = Refresher::new(partner_limiter(), stand_in.service(), partner_endpoint());
    assert!(matches!(
        refresher.refresh_once().await,
        Ok(RefreshOutcome::Applied(_))
    ));
    assert_eq!(stand_in.calls(), 1);
    tokio::time::advance(Duration::from_secs(59)).await;
    match refresher.refresh_once().await {
        Ok(RefreshOutcome::TooSoon { wait }) => assert_eq!(wait, Duration::from_secs(1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(stand_in.calls(), 1, "not called inside the interval");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(matches!(
        refresher.refresh_once().await,
        Ok(RefreshOutcome::Applied(_))
    ));
    assert_eq!(stand_in.calls(), 2);
    assert_eq!(refresher.status().polls, 2);

    // A shorter interval, configured.
    let quick = Refresher::new(partner_limiter(), stand_in.service(), partner_endpoint())
        .min_interval(Duration::from_secs(5));
    assert!(quick.refresh_once().await.is_ok());
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(matches!(
        quick.refresh_once().await,
        Ok(RefreshOutcome::Applied(_))
    ));
    assert_eq!(stand_in.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn the_spawned_task_polls_periodically_and_stops_with_its_handle() {
    let stand_in = StandIn::new();
    let handle = Refresher::new(partner_limiter(), stand_in.service(), partner_endpoint()).spawn();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(stand_in.calls(), 1, "polled at start-up");
    // An explicit refresh inside the interval does not call the server.
    assert!(matches!(
        handle.refresh_now().await,
        Ok(RefreshOutcome::TooSoon { .. })
    ));
    assert_eq!(stand_in.calls(), 1);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(stand_in.calls(), 2, "one poll a minute");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(stand_in.calls(), 3);
    assert_eq!(handle.status().polls, 3);
    drop(handle);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(stand_in.calls(), 3, "stopped with its handle");
}

#[tokio::test(start_paused = true)]
async fn failures_change_no_limit_and_are_reported() {
    let stand_in = StandIn::new();
    let limiter = partner_limiter();
    let refresher = Refresher::new(limiter.clone(), stand_in.service(), partner_endpoint())
        .min_interval(Duration::ZERO)
        .timeout(Duration::from_secs(5));
    assert_eq!(people_limit(&limiter), Some(120));

    let cases = [
        (Answer::Status(503), "503"),
        (Answer::Status(500), "500"),
        (Answer::Status(401), "401"),
        (Answer::Garbage, "not JSON"),
        (Answer::Truncated, "truncated"),
        (Answer::Hang, "timeout"),
        (Answer::Fail, "transport"),
    ];
    for (i, (answer, what)) in cases.into_iter().enumerate() {
        stand_in.answer(answer);
        let error = refresher.refresh_once().await.err();
        let expected = match answer {
            Answer::Status(401) => matches!(error, Some(RefreshError::Unauthorized)),
            Answer::Status(s) => error == Some(RefreshError::Status(s)),
            Answer::Garbage => matches!(error, Some(RefreshError::Seed(SeedError::NotJson { .. }))),
            Answer::Truncated => {
                matches!(error, Some(RefreshError::Seed(SeedError::Truncated { .. })))
            }
            Answer::Hang => error == Some(RefreshError::Timeout(Duration::from_secs(5))),
            Answer::Fail => matches!(error, Some(RefreshError::Transport(_))),
            Answer::Ok | Answer::RateLimited(_) => false,
        };
        assert!(expected, "{what}: {error:?}");
        assert_eq!(
            people_limit(&limiter),
            Some(120),
            "{what}: limits unchanged"
        );
        let status = refresher.status();
        assert_eq!(status.failures, i as u64 + 1, "{what}");
        assert_eq!(status.last_error, error, "{what}");
        let shown = format!(
            "{status:?} {}",
            error.map(|e| e.to_string()).unwrap_or_default()
        );
        assert!(!shown.contains("system-secret") && !shown.contains("acct-secret"));
    }
    assert!(refresher.status().last_ok.is_none());

    // The endpoint recovers: the next poll applies.
    stand_in.answer(Answer::Ok);
    assert!(matches!(
        refresher.refresh_once().await,
        Ok(RefreshOutcome::Applied(_))
    ));
    assert_eq!(people_limit(&limiter), Some(100));
    let status = refresher.status();
    assert!(status.last_error.is_none() && status.last_ok.is_some());
    assert_eq!((status.polls, status.failures), (8, 7));
}

/// A loopback HTTP server that answers every request with the next raw
/// response of `answers` (then closes the connection).
async fn raw_server(answers: Vec<String>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for answer in answers {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock.write_all(answer.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    format!("http://{addr}")
}

/// A complete HTTP/1.1 response with `body` (its length computed).
fn response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The same failures from a real server on loopback, through a real HTTP client
/// behind the layer: each is reported in the status, no limit changes, and a
/// good answer then applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_loopback_endpoint_changes_no_limit() {
    let good = r#"{"system":"sys","period":"last_24h","usage":{"total_requests":1,"rate_limited_requests":0,"rate_limit_percentage":0,"peak_hour":null,"current_limits":{"across_all_accounts":{"default":750,"GET.people":90},"per_account":{"default":25}}}}"#;
    let base = raw_server(vec![
        response("503 Service Unavailable", "text/plain", ""),
        response("200 OK", "text/html", "<html>maintenance</h>"),
        response("200 OK", "application/json", &good[..good.len() / 2]),
        response("200 OK", "application/json", good),
    ])
    .await;
    let limiter = partner_limiter();
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter.clone()))
        .service(client);
    let endpoint = UsageEndpoint::partner(&base, "sys", "system-secret", "acct-secret")
        .unwrap_or_else(|e| panic!("{e}"));
    let refresher = Refresher::new(limiter.clone(), svc, endpoint).min_interval(Duration::ZERO);

    let e = refresher.refresh_once().await.err();
    assert_eq!(e, Some(RefreshError::Status(503)));
    let e = refresher.refresh_once().await.err();
    assert!(
        matches!(e, Some(RefreshError::Seed(SeedError::NotJson { .. }))),
        "{e:?}"
    );
    let e = refresher.refresh_once().await.err();
    assert!(
        matches!(e, Some(RefreshError::Seed(SeedError::Truncated { .. }))),
        "{e:?}"
    );
    assert_eq!(
        people_limit(&limiter),
        Some(120),
        "no failure changes a limit"
    );
    assert_eq!(refresher.status().failures, 3);
    assert!(matches!(
        refresher.refresh_once().await,
        Ok(RefreshOutcome::Applied(_))
    ));
    assert_eq!(people_limit(&limiter), Some(90), "the good answer applies");
}

/// Requests this client sends while the usage request is on its way may not
/// be in the server's figures yet: they are counted on top (DESIGN.md,
/// contract 5), as the header path counts requests in flight.
#[tokio::test(start_paused = true)]
async fn a_seed_counts_the_clients_own_requests_sent_during_the_poll() {
    let limiter = Limiter::builder()
        .routes(
            Rails::seed000(),
            |l| (l == SEARCH).then(|| Limits::from(Quota::per_minute(10))),
            OtherRoutes::Unlimited,
        )
        .margin(Duration::ZERO)
        .max_wait(MaxWait::Never)
        .build();
    let traffic = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter.clone()))
        .service(tower::service_fn(|_req: http::Request<()>| async {
            Ok::<_, std::io::Error>(http::Response::new(()))
        }));
    let usage = tower::service_fn(move |_req: http::Request<()>| {
        let mut traffic = traffic.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            for _ in 0..3 {
                let search = http::Request::post("/api/v1/contacts/search")
                    .body(())
                    .unwrap_or_default();
                let ready = traffic.ready().await.map_err(std::io::Error::other)?;
                ready.call(search).await.map_err(std::io::Error::other)?;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            let body = r#"{"[\"api/v1/contacts\", \"search\"]": {
                "minute": {"limit": 10, "consumed": 5, "left_over": 5}}}"#;
            Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from(body))))
        }
    });
    let endpoint =
        UsageEndpoint::crm("http://crm.test", "master").unwrap_or_else(|e| panic!("{e}"));
    let refresher = Refresher::new(limiter.clone(), usage, endpoint);
    let outcome = refresher.refresh_once().await;
    assert!(
        matches!(outcome, Ok(RefreshOutcome::Applied(_))),
        "{outcome:?}"
    );
    let search = limiter
        .route_bucket(&Method::POST, "/api/v1/contacts/search")
        .unwrap_or_else(|| panic!("declared"));
    let used = search.state(limiter.clock().now()).windows[0].used;
    assert_eq!(
        used, 8,
        "the server's 5, which may not include the 3 sent during the poll, and those 3"
    );
}

/// However short the minimum interval, the spawned task polls at most once a
/// second (`refresh_once` itself keeps to the interval as given).
#[tokio::test(start_paused = true)]
async fn the_task_polls_at_most_once_a_second() {
    let stand_in = StandIn::new();
    let handle = Refresher::new(partner_limiter(), stand_in.service(), partner_endpoint())
        .min_interval(Duration::ZERO)
        .spawn();
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    assert_eq!(stand_in.calls(), 11, "at 0, 1, ..., 10 s");
    drop(handle);
}

/// After failures the task waits twice as long each time (up to 16 times the
/// interval), and a success brings it back to the interval.
#[tokio::test(start_paused = true)]
async fn the_task_backs_off_after_failures() {
    let stand_in = StandIn::new();
    stand_in.answer(Answer::Status(503));
    let start = tokio::time::Instant::now();
    let handle = Refresher::new(partner_limiter(), stand_in.service(), partner_endpoint()).spawn();
    let calls_at = |secs: u64| {
        let stand_in = stand_in.clone();
        async move {
            tokio::time::sleep_until(start + Duration::from_secs(secs)).await;
            stand_in.calls()
        }
    };
    // Polls at 0, 60, 180, 420 and 900 s: waits of 1, 2, 4 and 8 minutes,
    // then 16 minutes at the most: 1,860 and 2,820 s.
    let mut calls = Vec::new();
    for secs in [1, 61, 181, 421, 901, 1_861, 2_821] {
        calls.push(calls_at(secs).await);
    }
    assert_eq!(calls, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(handle.status().failures, 7);
    // Once it answers, the next poll is one interval after the success.
    stand_in.answer(Answer::Ok);
    assert_eq!(calls_at(3_781).await, 8, "at 2,820 + 960 s: recovered");
    assert_eq!(calls_at(3_841).await, 9, "one interval after a success");
    drop(handle);
}

/// A 429 from the usage endpoint is kept to: no poll before its
/// `Retry-After`, whether asked for or scheduled.
#[tokio::test(start_paused = true)]
async fn a_429_is_kept_to_until_its_retry_after() {
    let stand_in = StandIn::new();
    stand_in.answer(Answer::RateLimited(600));
    let refresher = Refresher::new(partner_limiter(), stand_in.service(), partner_endpoint())
        .min_interval(Duration::from_secs(5));
    let error = refresher.refresh_once().await.err();
    assert_eq!(
        error,
        Some(RefreshError::RateLimited {
            retry_after: Some(Duration::from_secs(600))
        })
    );
    assert!(error.is_some_and(|e| e.to_string().contains("429")));
    tokio::time::advance(Duration::from_secs(60)).await;
    match refresher.refresh_once().await {
        Ok(RefreshOutcome::TooSoon { wait }) => assert_eq!(wait, Duration::from_secs(540)),
        other => panic!("{other:?}"),
    }
    assert_eq!(stand_in.calls(), 1);
    stand_in.answer(Answer::Ok);
    tokio::time::advance(Duration::from_secs(540)).await;
    assert!(matches!(
        refresher.refresh_once().await,
        Ok(RefreshOutcome::Applied(_))
    ));

    // The task, too, waits for it.
    stand_in.answer(Answer::RateLimited(600));
    let handle = Refresher::new(partner_limiter(), stand_in.service(), partner_endpoint()).spawn();
    tokio::time::sleep(Duration::from_secs(599)).await;
    assert_eq!(stand_in.calls(), 3, "not before 600 s");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stand_in.calls(), 4);
    drop(handle);
}

/// A usage body larger than the refresher accepts is refused before it is
/// parsed, and changes nothing.
#[tokio::test(start_paused = true)]
async fn a_usage_body_over_the_size_limit_is_refused() {
    let stand_in = StandIn::new();
    let limiter = partner_limiter();
    let refresher =
        Refresher::new(limiter.clone(), stand_in.service(), partner_endpoint()).max_body_size(100);
    let error = refresher.refresh_once().await.err();
    assert_eq!(error, Some(RefreshError::BodyTooLarge { limit: 100 }));
    assert!(error.is_some_and(|e| e.to_string().contains("max_body_size")));
    assert_eq!(people_limit(&limiter), Some(120), "limits unchanged");
    // The default takes the body.
    let refresher = Refresher::new(limiter.clone(), stand_in.service(), partner_endpoint());
    assert!(refresher.refresh_once().await.is_ok());
    assert_eq!(people_limit(&limiter), Some(100));
}
