//! The layer's added latency per admitted request, around a trivial inner
//! service, beside the same stack without it and beside `tower::limit::RateLimit`.
//!
//! Run: `cargo bench --bench layer`. Every inner future is ready at once, so the
//! figures are the layers' own cost: futures are polled directly with a no-op
//! waker, inside a tokio runtime context (RateLimit needs one for its timer).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tower::{Service, ServiceBuilder};
use tower_quota::quota::Quota;
use tower_quota::route::Templates;
use tower_quota::scope::KeySource;
use tower_quota::{Limiter, OtherRoutes, QuotaLayer};

fn ok(_req: http::Request<()>) -> std::future::Ready<Result<http::Response<()>, Infallible>> {
    std::future::ready(Ok(http::Response::new(())))
}

fn request() -> http::Request<()> {
    http::Request::get("http://api.example.com/v1/campaigns/42")
        .header("x-account", "acct-42")
        .body(())
        .unwrap_or_default()
}

/// Polls readiness and the call once each; both are ready at once here.
fn once<S>(svc: &mut S) -> bool
where
    S: Service<http::Request<()>>,
{
    let mut cx = Context::from_waker(Waker::noop());
    if !matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))) {
        return false;
    }
    let fut = pin!(svc.call(request()));
    matches!(fut.poll(&mut cx), Poll::Ready(Ok(_)))
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    let Ok(rt) = rt else { return };
    let _guard = rt.enter();
    let big = Quota::new(1_000_000, Duration::from_millis(10)).unwrap_or(Quota::per_second(1));
    let routes = || {
        Limiter::builder().routes(
            Templates::seed004(),
            move |_| Some(big.into()),
            OtherRoutes::Shared(big.into()),
        )
    };
    let limiter = routes().build();
    // The same, and each request's account (from a header) in a keyed scope.
    let with_accounts = routes()
        .per_account(KeySource::header("x-account"), big, 10_000)
        .build();

    let mut g = c.benchmark_group("layer");
    let mut bare = tower::service_fn(ok);
    g.bench_function("no layer", |b| b.iter(|| black_box(once(&mut bare))));
    let mut quota = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter))
        .service(tower::service_fn(ok));
    g.bench_function("tower-quota (route bucket, admitted)", |b| {
        b.iter(|| black_box(once(&mut quota)))
    });
    let mut accounts = ServiceBuilder::new()
        .layer(QuotaLayer::new(with_accounts))
        .service(tower::service_fn(ok));
    g.bench_function("tower-quota (route and account buckets, admitted)", |b| {
        b.iter(|| black_box(once(&mut accounts)))
    });
    let mut rate = ServiceBuilder::new()
        .rate_limit(u64::MAX / 2, Duration::from_secs(1))
        .service(tower::service_fn(ok));
    g.bench_function("tower::limit::RateLimit", |b| {
        b.iter(|| black_box(once(&mut rate)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = overhead
}
criterion_main!(benches);
