//! Two ways responses' headers misled the limiter, found while building the
//! fidelity benchmark and the seeded quickstart.
#![cfg(feature = "testkit")]

use std::convert::Infallible;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_quota::clock::{Clock, TokioClock};
use tower_quota::headers::{HeaderRules, VendorSet};
use tower_quota::ledger::Bucket;
use tower_quota::quota::{Limits, Quota};
use tower_quota::route::Rails;
use tower_quota::{Limiter, OtherRoutes, QuotaLayer};

const SEARCH: &str = "api/v1/contacts#search";

/// A limiter for seed 000's routes, `contacts#search` limited by `limits`,
/// with the default margin, through a stand-in server answering `headers`.
async fn one_response(
    limits: Limits,
    rules: HeaderRules,
    headers: &'static [(&'static str, &'static str)],
) -> (Arc<Bucket>, TokioClock) {
    let clock = TokioClock::new();
    let limiter = Limiter::builder()
        .clock(clock.clone())
        .routes(
            Rails::seed000(),
            move |l| (l == SEARCH).then(|| limits.clone()),
            OtherRoutes::Unlimited,
        )
        .headers(rules)
        .build();
    let bucket = limiter
        .route_bucket(&Method::POST, "/api/v1/contacts/search")
        .unwrap_or_else(|| panic!("declared"));
    bucket.set_limit(0, NonZeroU32::MIN.saturating_add(24));
    let server = service_fn(move |_: Request<()>| async move {
        let mut response = Response::new(());
        for (name, value) in headers {
            if let Ok(value) = value.parse() {
                response.headers_mut().insert(*name, value);
            }
        }
        Ok::<_, Infallible>(response)
    });
    let mut svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter))
        .service(server);
    let req = Request::post("http://crm.example.com/api/v1/contacts/search")
        .body(())
        .unwrap_or_default();
    let sent = svc.ready().await.map(|s| s.call(req));
    assert!(sent.is_ok());
    if let Ok(response) = sent {
        assert!(response.await.is_ok());
    }
    (bucket, clock)
}

/// Seed 000's vendor headers name their window's length; the bucket keeps it
/// lengthened by the margin (1 % by default). Matched by equality, the
/// headers were ignored whenever the margin was on: a server that had counted
/// 23 could not tell a client that had sent 1.
#[tokio::test(start_paused = true)]
async fn a_vendor_window_is_found_in_a_padded_bucket() {
    let rules = HeaderRules::standard().vendor(
        VendorSet::new("minute", "x-rate-limit-minute", "x-minute-requests-left")
            .window(Duration::from_secs(60)),
    );
    let (bucket, clock) = one_response(
        Quota::per_minute(25).into(),
        rules,
        &[
            ("x-rate-limit-minute", "25"),
            ("x-minute-requests-left", "2"),
        ],
    )
    .await;
    assert_eq!(bucket.state(clock.now()).windows[0].used, 23);
}

/// A bucket built for 1 per minute and raised to 25 by a seed (as the
/// quickstart's buckets are before the usage endpoint answers) has room for
/// one exact unit; a response repeating the limit of 25 lowered it to that 1.
#[tokio::test(start_paused = true)]
async fn a_limit_the_server_repeats_stays_above_the_bucket_capacity() {
    let (bucket, _) = one_response(
        Quota::per_minute(1).into(),
        HeaderRules::standard(),
        &[("x-ratelimit-limit", "25"), ("x-ratelimit-remaining", "24")],
    )
    .await;
    assert_eq!(bucket.capacity(0), Some(1));
    assert_eq!(bucket.limit(0), Some(25));
}
