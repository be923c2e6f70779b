//! `Limiter::apply_seed`: each entry of a usage body reaches the buckets it
//! describes, on a manual clock.

use std::num::NonZeroU32;
use std::time::Duration;

use http::Method;
use tower_quota::clock::{Clock, ManualClock, Nanos};
use tower_quota::ledger::KeyedBuckets;
use tower_quota::quota::{Limits, Quota};
use tower_quota::route::Rails;
use tower_quota::seed::{parse_crm_usage, WindowNames};
use tower_quota::{Limiter, OtherRoutes, SeedSkip, SeedTarget};

const BODY: &[u8] = br#"{
  "[\"api/v1/contacts\", \"search\"]": {
    "day": { "limit": 6000, "consumed": 500, "left_over": 6000 },
    "minute": { "limit": 150, "consumed": 10, "left_over": 190 }
  },
  "[\"api/v1/widgets\", \"show\"]": {
    "minute": { "limit": 7, "consumed": 3, "left_over": 4 }
  }
}"#;

fn limiter(clock: &ManualClock, other: OtherRoutes) -> std::sync::Arc<Limiter<ManualClock>> {
    Limiter::builder()
        .clock(clock.clone())
        .routes(
            Rails::seed000(),
            |_| Some(Limits::new([Quota::per_minute(200), Quota::per_day(6000)])),
            other,
        )
        .margin(Duration::ZERO)
        .build()
}

#[test]
fn seed000_raises_counts_and_replaces_limits_of_declared_routes() {
    let clock = ManualClock::new();
    let limiter = limiter(&clock, OtherRoutes::Unlimited);
    let seed = parse_crm_usage(BODY, &WindowNames::standard()).expect("valid");
    let report = limiter.apply_seed(&seed, clock.now());

    let search = limiter
        .route_bucket(&Method::POST, "/api/v1/contacts/search")
        .expect("declared");
    let state = search.state(clock.now());
    // Conservative reading of the inconsistent day: used 500; the minute's
    // limit is now the server's.
    assert_eq!((state.windows[0].limit, state.windows[1].used), (150, 500));
    let rows: Vec<_> = report.rows_for("api/v1/contacts#search").collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].target, SeedTarget::DeclaredRoute);
    // Undeclared routes are unlimited by configuration, but the server reports
    // a limit for this one: the server is the authority, it gets a bucket.
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let widgets = limiter
        .route_bucket(&Method::GET, "/api/v1/widgets/1")
        .expect("the server reported it");
    let minute = &widgets.state(clock.now()).windows[0];
    assert_eq!((minute.limit, minute.used), (7, 3));
    assert_eq!(
        report
            .rows_for("api/v1/widgets#show")
            .next()
            .map(|r| r.target),
        Some(SeedTarget::ReportedRoute)
    );
    // Other declared routes are untouched.
    let other = limiter
        .route_bucket(&Method::GET, "/api/v1/contact_stages")
        .expect("declared");
    assert_eq!(other.state(clock.now()).windows[0].used, 0);
    assert_eq!(other.limit(0), Some(200));
}

#[test]
fn undeclared_routes_get_their_own_bucket_with_other_routes_each() {
    let clock = ManualClock::new();
    let limiter = limiter(
        &clock,
        OtherRoutes::Each {
            limits: Quota::per_minute(60).into(),
            cap: 10,
        },
    );
    let seed = parse_crm_usage(BODY, &WindowNames::standard()).expect("valid");
    let report = limiter.apply_seed(&seed, clock.now());
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    // The bucket the layer will charge `GET /api/v1/widgets/1` to is the one
    // the seed made: limit 7, 3 used.
    let widgets = limiter
        .route_bucket(&Method::GET, "/api/v1/widgets/1")
        .expect("one each");
    let minute = &widgets.state(clock.now()).windows[0];
    assert_eq!((minute.limit, minute.used), (7, 3));
    assert_eq!(
        report
            .rows_for("api/v1/widgets#show")
            .next()
            .map(|r| r.target),
        Some(SeedTarget::UndeclaredRoute)
    );
    // Idle for a day, the bucket is evicted when ten other routes need room;
    // made again, it keeps the server's limit, not the default 60.
    clock.advance(Duration::from_secs(86_400 * 2));
    for i in 0..10 {
        let _ = limiter.route_bucket(&Method::GET, &format!("/api/v1/thing{i}/1"));
    }
    let again = limiter
        .route_bucket(&Method::GET, "/api/v1/widgets/1")
        .expect("one each");
    assert!(
        !std::sync::Arc::ptr_eq(&widgets, &again),
        "it must have been evicted"
    );
    assert_eq!(again.limit(0), Some(7));
}

#[test]
fn a_shared_bucket_does_not_take_one_routes_figures() {
    let clock = ManualClock::new();
    let limiter = limiter(&clock, OtherRoutes::Shared(Quota::per_minute(60).into()));
    let seed = parse_crm_usage(BODY, &WindowNames::standard()).expect("valid");
    let report = limiter.apply_seed(&seed, clock.now());
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    // The reported route gets its own bucket with the server's figures; the
    // shared one keeps its limit (and still counts the route's requests).
    let own = limiter
        .route_bucket(&Method::GET, "/api/v1/widgets/1")
        .expect("reported");
    assert_eq!(own.state(clock.now()).windows[0].limit, 7);
    let snapshot = limiter.snapshot(&tower_quota::report::Thresholds::default());
    let shared = snapshot
        .buckets
        .iter()
        .find(|b| b.label == "other routes")
        .expect("the shared bucket");
    assert_eq!(shared.windows[0].limit, 60);
}

#[test]
fn applying_twice_adds_nothing_twice() {
    let clock = ManualClock::new();
    let limiter = limiter(&clock, OtherRoutes::Unlimited);
    let seed = parse_crm_usage(BODY, &WindowNames::standard()).expect("valid");
    let first = limiter.apply_seed(&seed, clock.now());
    clock.advance(Duration::from_secs(1));
    let second = limiter.apply_seed(&seed, clock.now());
    // 500 on contacts#search's day, 3 on the reported widgets#show route
    assert_eq!(first.units_added(), 503);
    assert_eq!((second.units_added(), second.limits_changed()), (0, 0));
    assert!(!second.changed());
}

#[test]
fn keyed_buckets_take_a_new_limit_now_and_for_later_buckets() {
    let keyed = KeyedBuckets::new("per_account", Quota::per_minute(30), 10);
    let before = keyed.bucket(&7u64, Nanos::ZERO).expect("room");
    let limit = NonZeroU32::new(25).expect("non-zero");
    assert!(keyed.set_limit(0, limit));
    assert!(!keyed.set_limit(1, limit), "no second window");
    let after = keyed.bucket(&8u64, Nanos::ZERO).expect("room");
    assert_eq!((before.limit(0), after.limit(0)), (Some(25), Some(25)));
    assert_eq!(keyed.limit(0), Some(25));
    assert_eq!(keyed.configured_limits().quotas()[0].limit(), 30);
}

/// Through the layer: a reported route with undeclared routes shared is
/// charged to its own bucket (the server's 7, 3 used) and to the shared one.
#[tokio::test(start_paused = true)]
async fn a_reported_route_is_charged_to_its_bucket_and_the_shared_one() {
    use tower::ServiceExt;
    let limiter = Limiter::builder()
        .routes(
            Rails::seed000(),
            |_| Some(Limits::new([Quota::per_minute(200), Quota::per_day(6000)])),
            OtherRoutes::Shared(Quota::per_minute(60).into()),
        )
        .max_wait(tower_quota::ledger::MaxWait::Never)
        .margin(Duration::ZERO)
        .build();
    let seed = parse_crm_usage(BODY, &WindowNames::standard()).expect("valid");
    let _ = limiter.apply_seed(&seed, limiter.clock().now());
    let inner = tower::service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(()))
    });
    let svc = tower::ServiceBuilder::new()
        .layer(tower_quota::QuotaLayer::new(limiter.clone()))
        .service(inner);
    let mut sent = 0;
    for _ in 0..10 {
        let req = http::Request::get("http://crm.example/api/v1/widgets/1")
            .body(())
            .unwrap_or_default();
        if svc.clone().oneshot(req).await.is_ok() {
            sent += 1;
        }
    }
    assert_eq!(sent, 4, "7 per minute, 3 already used");
    let snapshot = limiter.snapshot(&tower_quota::report::Thresholds::default());
    let shared = snapshot
        .buckets
        .iter()
        .find(|b| b.label == "other routes")
        .expect("shared");
    assert_eq!(
        shared.windows[0].used, 4,
        "the shared ceiling counts them too"
    );
}

/// A seed can give undeclared routes buckets of their own (undeclared routes
/// unlimited or shared), but not without end: past MAX_REPORTED_ROUTES, more
/// routes are skipped, and the routes already reported still take figures.
#[test]
fn routes_a_seed_reports_are_capped() {
    let clock = ManualClock::new();
    let limiter = limiter(&clock, OtherRoutes::Unlimited);
    let body = |routes: std::ops::Range<usize>| {
        let entries: Vec<String> = routes
            .map(|i| {
                format!(
                    r#""[\"api/v1/things{i}\", \"show\"]": {{"minute": {{"limit": 7, "consumed": 1, "left_over": 6}}}}"#
                )
            })
            .collect();
        format!("{{{}}}", entries.join(","))
    };
    let cap = tower_quota::MAX_REPORTED_ROUTES;
    let seed =
        parse_crm_usage(body(0..cap + 5).as_bytes(), &WindowNames::standard()).expect("valid");
    let report = limiter.apply_seed(&seed, clock.now());
    let reported = report
        .applied
        .iter()
        .filter(|a| a.target == SeedTarget::ReportedRoute)
        .count();
    let refused: Vec<&str> = report
        .skipped
        .iter()
        .filter(|s| s.reason == SeedSkip::TooManyReportedRoutes)
        .map(|s| s.route.as_str())
        .collect();
    assert_eq!((reported, refused.len()), (cap, 5));
    assert!(SeedSkip::TooManyReportedRoutes
        .to_string()
        .contains("declare"));
    let snapshot = limiter.snapshot(&tower_quota::report::Thresholds::default());
    assert_eq!(snapshot.buckets.len(), limiter.route_buckets().len() + cap);
    // A route reported before still takes the server's figures.
    let again = parse_crm_usage(body(0..1).as_bytes(), &WindowNames::standard()).expect("valid");
    let report = limiter.apply_seed(&again, clock.now());
    assert_eq!(report.applied.len(), 1);
    assert!(report.skipped.is_empty());
}
