//! `RetryPolicy` inside `tower::retry::Retry`, around a scripted fake server, with
//! tokio's clock paused so every wait is measured exactly and costs nothing.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{Request, Response, StatusCode};
use proptest::prelude::*;
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_quota::retry::RetryPolicy;

type Script = Vec<(u16, Vec<(&'static str, String)>)>;

/// Answers with `script` in order (repeating the last entry), recording when
/// each call arrived.
#[derive(Clone)]
struct Fake {
    script: Arc<Script>,
    calls: Arc<Mutex<Vec<Instant>>>,
}

impl Fake {
    fn new(script: Script) -> Fake {
        Fake {
            script: Arc::new(script),
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().clone()
    }

    fn gaps(&self) -> Vec<Duration> {
        self.calls().windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// Sends one request through `policy` and returns the final status.
    async fn send(&self, policy: RetryPolicy) -> StatusCode {
        let fake = self.clone();
        let mut svc =
            ServiceBuilder::new()
                .retry(policy)
                .service_fn(move |_req: Request<String>| {
                    let mut calls = fake.calls.lock().unwrap();
                    let n = calls.len();
                    calls.push(Instant::now());
                    let (status, headers) = fake.script[n.min(fake.script.len() - 1)].clone();
                    async move {
                        let mut r = Response::new(String::new());
                        *r.status_mut() = StatusCode::from_u16(status).unwrap();
                        for (k, v) in headers {
                            r.headers_mut().append(k, v.parse().unwrap());
                        }
                        Ok::<_, Infallible>(r)
                    }
                });
        let req = Request::builder()
            .uri("https://api.example/v1/leads?api_key=sk-secret-in-query")
            .header("x-api-key", "sk-secret-in-header")
            .body(String::from("{}"))
            .unwrap();
        svc.ready().await.unwrap().call(req).await.unwrap().status()
    }
}

fn ra(v: &str) -> Vec<(&'static str, String)> {
    vec![("retry-after", v.to_owned())]
}

const S: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test(start_paused = true)]
async fn retries_exactly_max_retries_then_returns_the_429() {
    let fake = Fake::new(vec![(429, ra("1"))]);
    let status = fake.send(RetryPolicy::new().max_retries(3)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(fake.calls().len(), 4, "one attempt and three retries");
    assert_eq!(fake.gaps(), [S(1), S(1), S(1)]);

    let fake = Fake::new(vec![(429, ra("1"))]);
    fake.send(RetryPolicy::new().max_retries(0)).await;
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn waits_exactly_retry_after_seconds() {
    let fake = Fake::new(vec![(429, ra("7")), (200, vec![])]);
    assert_eq!(fake.send(RetryPolicy::new()).await, StatusCode::OK);
    assert_eq!(fake.gaps(), [S(7)]);
    // With a buffer on top.
    let fake = Fake::new(vec![(429, ra("7")), (200, vec![])]);
    let policy = RetryPolicy::new().buffer(Duration::from_millis(250));
    fake.send(policy).await;
    assert_eq!(fake.gaps(), [Duration::from_millis(7250)]);
}

#[tokio::test(start_paused = true)]
async fn waits_exactly_retry_after_http_date_measured_on_the_server_clock() {
    let date = SystemTime::now();
    let headers = vec![
        ("date", httpdate::fmt_http_date(date)),
        ("retry-after", httpdate::fmt_http_date(date + S(10))),
    ];
    let fake = Fake::new(vec![(429, headers), (200, vec![])]);
    assert_eq!(fake.send(RetryPolicy::new()).await, StatusCode::OK);
    assert_eq!(fake.gaps(), [S(10)]);
    // Without Date, against the local clock: at most the ten seconds.
    let headers = ra(&httpdate::fmt_http_date(SystemTime::now() + S(10)));
    let fake = Fake::new(vec![(429, headers), (200, vec![])]);
    fake.send(RetryPolicy::new()).await;
    let gap = fake.gaps()[0];
    assert!(gap > S(8) && gap <= S(10), "{gap:?}");
}

#[tokio::test(start_paused = true)]
async fn seed004_429_waits_for_retry_after_not_the_later_reset() {
    let reset_ms = SystemTime::now() + S(40);
    let reset_ms = reset_ms
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let headers = vec![
        ("x-ratelimit-limit", "20".to_owned()),
        ("x-ratelimit-remaining", "0".to_owned()),
        ("x-ratelimit-reset", reset_ms.to_string()),
        ("retry-after", "15".to_owned()),
    ];
    let fake = Fake::new(vec![(429, headers), (200, vec![])]);
    fake.send(RetryPolicy::new()).await;
    assert_eq!(fake.gaps(), [S(15)]);
}

#[tokio::test(start_paused = true)]
async fn waits_for_the_exhausted_windows_reset_without_retry_after() {
    let headers = vec![
        ("ratelimit-policy", "\"minute\";q=60;w=60".to_owned()),
        ("ratelimit", "\"minute\";r=0;t=12".to_owned()),
    ];
    let fake = Fake::new(vec![(429, headers), (200, vec![])]);
    fake.send(RetryPolicy::new()).await;
    assert_eq!(fake.gaps(), [S(12)]);
}

#[tokio::test(start_paused = true)]
async fn a_wait_longer_than_the_maximum_is_given_back_not_shortened() {
    let fake = Fake::new(vec![(429, ra("3600")), (200, vec![])]);
    let status = fake.send(RetryPolicy::new().max_wait(S(60))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_503_is_retried_only_with_retry_after() {
    let fake = Fake::new(vec![(503, vec![]), (200, vec![])]);
    assert_eq!(
        fake.send(RetryPolicy::new()).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(fake.calls().len(), 1);

    let fake = Fake::new(vec![(503, ra("2")), (200, vec![])]);
    assert_eq!(fake.send(RetryPolicy::new()).await, StatusCode::OK);
    assert_eq!(fake.gaps(), [S(2)]);

    let fake = Fake::new(vec![(503, ra("2")), (200, vec![])]);
    fake.send(RetryPolicy::new().retry_503(false)).await;
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_403_is_retried_only_when_configured() {
    let fake = Fake::new(vec![(403, ra("1")), (200, vec![])]);
    assert_eq!(fake.send(RetryPolicy::new()).await, StatusCode::FORBIDDEN);
    assert_eq!(fake.calls().len(), 1);

    let fake = Fake::new(vec![(403, ra("1")), (200, vec![])]);
    let policy = RetryPolicy::new().status(StatusCode::FORBIDDEN);
    assert_eq!(fake.send(policy).await, StatusCode::OK);
    assert_eq!(fake.gaps(), [S(1)]);
}

#[tokio::test(start_paused = true)]
async fn other_statuses_are_never_retried() {
    for status in [200, 201, 400, 401, 404, 500, 502] {
        let fake = Fake::new(vec![(status, ra("1")), (200, vec![])]);
        fake.send(RetryPolicy::new()).await;
        assert_eq!(fake.calls().len(), 1, "{status}");
    }
}

#[tokio::test(start_paused = true)]
async fn transport_errors_are_not_retried() {
    let calls = Arc::new(Mutex::new(0));
    let seen = calls.clone();
    let mut svc =
        ServiceBuilder::new()
            .retry(RetryPolicy::new())
            .service_fn(move |_req: Request<String>| {
                *seen.lock().unwrap() += 1;
                async { Err::<Response<String>, _>("connection reset") }
            });
    let r = svc
        .ready()
        .await
        .unwrap()
        .call(Request::new(String::new()))
        .await;
    assert!(r.is_err());
    assert_eq!(*calls.lock().unwrap(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Without headers, the n-th retry waits a random time in
    /// `[0, min(cap, base * 2^n)]` (plus tokio's 1 ms timer resolution).
    #[test]
    fn backoff_jitter_stays_within_full_jitter_bounds(
        seed: u64,
        base_ms in 1u64..5_000,
        cap_ms in 1u64..60_000,
        retries in 1u32..6,
    ) {
        fastrand::seed(seed);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let policy = RetryPolicy::new()
            .max_retries(retries)
            .backoff(Duration::from_millis(base_ms), Duration::from_millis(cap_ms));
        let fake = Fake::new(vec![(429, vec![])]);
        rt.block_on(fake.send(policy.clone()));
        let gaps = fake.gaps();
        prop_assert_eq!(gaps.len(), retries as usize);
        for (n, gap) in gaps.into_iter().enumerate() {
            let ceiling = Duration::from_millis(base_ms)
                .saturating_mul(1 << n)
                .min(Duration::from_millis(cap_ms));
            prop_assert_eq!(policy.backoff_ceiling(n as u32), ceiling);
            prop_assert!(gap <= ceiling + Duration::from_millis(1), "retry {}: {:?} > {:?}", n, gap, ceiling);
        }
    }
}
