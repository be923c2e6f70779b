//! The layer's counters, histogram and gauges reach a `metrics` recorder, named
//! by Prometheus conventions and labelled with bucket labels, never keys.
#![cfg(feature = "metrics")]

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use tower::{ServiceBuilder, ServiceExt};
use tower_quota::clock::TokioClock;
use tower_quota::ledger::MaxWait;
use tower_quota::quota::Quota;
use tower_quota::report::Thresholds;
use tower_quota::route::Templates;
use tower_quota::scope::KeySource;
use tower_quota::{Limiter, OtherRoutes, QuotaLayer};

const SECRET: &str = "sk_live_metrics_secret";

#[test]
fn counters_histogram_and_gauges_reach_the_recorder() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build();
        let Ok(rt) = rt else { return };
        rt.block_on(async {
            let routes = Templates::from_routes([("GET", "/v1/users/:id")])
                .unwrap_or_else(|e| panic!("{e}"));
            let limiter = Limiter::builder()
                .clock(TokioClock::new())
                .routes(
                    routes,
                    |_| Some(Quota::per_second(2).into()),
                    OtherRoutes::Unlimited,
                )
                .per_api_key(KeySource::header("x-api-key"), Quota::per_second(100), 10)
                .max_wait(MaxWait::Up(Duration::from_millis(1500)))
                .margin(Duration::ZERO)
                .build();
            let calls = Arc::new(AtomicU32::new(0));
            let inner = {
                let calls = calls.clone();
                tower::service_fn(move |_req: Request<()>| {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let status = if n == 2 { 429 } else { 200 };
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .body(())
                                .unwrap_or_default(),
                        )
                    }
                })
            };
            let svc = ServiceBuilder::new()
                .layer(QuotaLayer::new(limiter.clone()))
                .service(inner);
            // 2 now, 2 wait (one second), the 5th would wait 2 s > 1.5 s: refused.
            let mut futures = Vec::new();
            for _ in 0..5 {
                let req = Request::get("http://api.example.com/v1/users/9")
                    .header("x-api-key", SECRET)
                    .body(());
                futures.push(tokio::spawn(svc.clone().oneshot(req.unwrap_or_default())));
            }
            for f in futures {
                let _ = f.await;
            }
            tower_quota::metrics::export_snapshot(&limiter.snapshot(&Thresholds::default()));
        });
    });
    let all = snapshotter.snapshot().into_vec();
    let find = |name: &str, label: (&str, &str)| {
        all.iter()
            .filter(|(k, _, _, _)| {
                k.key().name() == name
                    && k.key()
                        .labels()
                        .any(|l| l.key() == label.0 && l.value() == label.1)
            })
            .map(|(k, _, _, v)| (k.kind(), v))
            .collect::<Vec<_>>()
    };
    let route = "GET /v1/users/:id";
    let count =
        |outcome: &str| match find("tower_quota_requests_total", ("outcome", outcome)).first() {
            Some((MetricKind::Counter, DebugValue::Counter(n))) => *n,
            _ => 0,
        };
    assert_eq!(
        (count("admitted"), count("waited"), count("refused")),
        (2, 2, 1)
    );
    match find("tower_quota_wait_seconds", ("route", route)).first() {
        Some((MetricKind::Histogram, DebugValue::Histogram(v))) => assert_eq!(v.len(), 2),
        other => panic!("no wait histogram: {other:?}"),
    }
    match find("tower_quota_rate_limited_total", ("bucket", route)).first() {
        Some((MetricKind::Counter, DebugValue::Counter(1))) => {}
        other => panic!("expected one 429: {other:?}"),
    }
    match find("tower_quota_window_limit", ("bucket", route)).first() {
        Some((MetricKind::Gauge, DebugValue::Gauge(v))) => assert_eq!(v.into_inner(), 2.0),
        other => panic!("no limit gauge: {other:?}"),
    }
    let shown = format!("{all:?}");
    assert!(!shown.contains(SECRET), "no key in any metric");
    assert!(
        shown.contains("api_key#"),
        "API-key buckets are labelled by fingerprint"
    );
}
