//! Seeds read from the testkit's live usage endpoints (seed 000's usage stats,
//! seed 002's `/rateLimit/usage`), and applied to buckets.
#![cfg(feature = "testkit")]

use std::time::Duration;

use http::Method;
use tower_quota::clock::{ManualClock, Nanos};
use tower_quota::ledger::Bucket;
use tower_quota::quota::{Limits, Quota};
use tower_quota::seed::{
    apply_to_bucket, parse_crm_usage, parse_partner_usage, SeedError, SeedScope, WindowNames,
    PARTNER_DEFAULT_WINDOW,
};
use tower_quota::testkit::{
    Config, TestResponse, TestServer, DEFAULT_API_KEY, DEFAULT_SYSTEM, DEFAULT_SYSTEM_KEY,
    MASTER_API_KEY,
};

const CRM_USAGE: &str = "/api/v1/usage_stats/api_usage_stats";

async fn server(config: Config, clock: &ManualClock) -> TestServer {
    TestServer::start(config.clock(clock.clone()))
        .await
        .expect("bind a loopback port")
}

async fn crm_usage(server: &TestServer, key: &str) -> TestResponse {
    server
        .client()
        .post(CRM_USAGE, &[("x-api-key", key)], "")
        .await
        .expect("usage stats")
}

const PARTNER_HEADERS: [(&str, &str); 3] = [
    ("x-api-key", DEFAULT_API_KEY),
    ("x-system", DEFAULT_SYSTEM),
    ("x-system-key", DEFAULT_SYSTEM_KEY),
];

#[tokio::test]
async fn crm_usage_stats_parse_to_the_servers_numbers_and_apply() {
    let clock = ManualClock::new();
    let server = server(Config::seed000(), &clock).await;
    for _ in 0..3 {
        let r = server
            .client()
            .post(
                "/api/v1/contacts/search",
                &[("x-api-key", DEFAULT_API_KEY)],
                "{}",
            )
            .await
            .expect("request");
        assert_eq!(r.status, 200);
    }
    assert!(server.consume("default", "api/v1/people#match", 40));

    let response = crm_usage(&server, MASTER_API_KEY).await;
    assert_eq!(response.status, 200);
    let seed = parse_crm_usage(&response.body, &WindowNames::standard()).expect("a seed");
    assert!(seed.warnings.is_empty(), "{:?}", seed.warnings);
    assert_eq!(seed.entries.len(), 50);
    let search = seed
        .entry(SeedScope::Key, "api/v1/contacts#search")
        .expect("listed");
    for (name, limit) in [("minute", 200), ("hour", 600), ("day", 6000)] {
        let w = search.window(name).expect(name);
        assert_eq!(
            (w.limit, w.used, w.remaining),
            (limit, Some(3), Some(limit - 3)),
            "{name}"
        );
    }
    let matched = seed
        .entry(SeedScope::Key, "api/v1/people#match")
        .expect("listed");
    assert_eq!(matched.window("hour").and_then(|w| w.used), Some(40));

    // Applied to a bucket configured with looser limits than the server's.
    let bucket = Bucket::new(
        "api/v1/people#match",
        Limits::new([
            Quota::per_minute(300),
            Quota::per_hour(600),
            Quota::per_day(6000),
        ]),
    );
    let now = Nanos::from_secs(5);
    let applied = apply_to_bucket(&bucket, &matched.windows, now, |_| None);
    assert_eq!(applied.units_added, 40);
    assert_eq!(applied.limits_changed.len(), 1);
    assert_eq!(bucket.limit(0), Some(200));
    let state = bucket.state(now);
    assert!(state.windows.iter().all(|w| w.used == 40));
    // Until one window after `as_of` the minute window holds them.
    let freed = bucket.state(now + Duration::from_secs(60));
    assert_eq!(freed.windows[0].used, 0);
    assert_eq!(freed.windows[1].used, 40);
    server.shutdown().await;
}

#[tokio::test]
async fn crm_refusals_are_not_seeds() {
    let clock = ManualClock::new();
    let server = server(Config::seed000(), &clock).await;
    let forbidden = crm_usage(&server, DEFAULT_API_KEY).await;
    assert_eq!(forbidden.status, 403);
    let err = parse_crm_usage(&forbidden.body, &WindowNames::standard()).unwrap_err();
    assert_eq!(err, SeedError::NoFigures);
    assert!(err.to_string().contains("master key"));
    let unauthorized = crm_usage(&server, "not-a-key").await;
    assert_eq!(unauthorized.status, 401);
    assert!(parse_crm_usage(&unauthorized.body, &WindowNames::standard()).is_err());
    // A live body cut short anywhere is refused.
    let ok = crm_usage(&server, MASTER_API_KEY).await;
    for cut in (0..ok.body.len()).step_by(97) {
        let err = parse_crm_usage(&ok.body[..cut], &WindowNames::standard()).unwrap_err();
        assert!(matches!(err, SeedError::Truncated { .. }), "{cut}: {err:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn compressed_time_uses_scaled_window_names() {
    let clock = ManualClock::new();
    let server = server(Config::seed000().time_scale(60.0), &clock).await;
    let response = crm_usage(&server, MASTER_API_KEY).await;
    let names = WindowNames::standard().scaled(60.0);
    let seed = parse_crm_usage(&response.body, &names).expect("a seed");
    let entry = &seed.entries[0];
    assert_eq!(
        entry.window("minute").map(|w| w.window),
        Some(Duration::from_secs(1))
    );
    assert_eq!(
        entry.window("day").map(|w| w.window),
        Some(Duration::from_secs(1440))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn partner_usage_parses_limits_and_the_24_hour_summary() {
    let clock = ManualClock::new();
    let server = server(Config::seed002(), &clock).await;
    let client = server.client();
    let mut limited = 0;
    for _ in 0..30 {
        let r = client
            .get("/people/1", &PARTNER_HEADERS)
            .await
            .expect("request");
        if r.status == 429 {
            limited += 1;
        }
    }
    assert_eq!(limited, 5, "25 per account per minute");
    let usage = client
        .send(
            Method::GET,
            "/rateLimit/usage",
            &PARTNER_HEADERS,
            Default::default(),
        )
        .await
        .expect("usage");
    assert_eq!(usage.status, 200);
    let seed = parse_partner_usage(&usage.body, PARTNER_DEFAULT_WINDOW).expect("a seed");
    assert!(seed.warnings.is_empty(), "{:?}", seed.warnings);
    let limit = |scope, label| seed.entry(scope, label).map(|e| e.windows[0].limit);
    assert_eq!(limit(SeedScope::Global, "default"), Some(750));
    assert_eq!(limit(SeedScope::Global, "GET.people"), Some(100));
    assert_eq!(limit(SeedScope::PerAccount, "default"), Some(25));
    let summary = seed.summary.clone().expect("a summary");
    assert_eq!(summary.system, DEFAULT_SYSTEM);
    assert_eq!(summary.period, "last_24h");
    assert_eq!(
        (summary.total_requests, summary.rate_limited_requests),
        (30, 5)
    );
    assert_eq!(summary.rate_limit_percentage, 16.67);
    assert!(summary.peak_hour.is_some());

    // The server's limit replaces a looser and a tighter configured one alike.
    let people = seed.entry(SeedScope::Global, "GET.people").expect("listed");
    let bucket = Bucket::new(
        "across_all_accounts GET.people",
        Limits::from(Quota::per_minute(80)).capacity(200),
    );
    let applied = apply_to_bucket(&bucket, &people.windows, Nanos::ZERO, |_| None);
    assert_eq!(applied.limits_changed[0].from, 80);
    assert_eq!(bucket.limit(0), Some(100));
    assert_eq!(applied.units_added, 0, "seed 002 gives no usage");

    let forbidden = client
        .send(
            Method::GET,
            "/rateLimit/usage",
            &[("x-api-key", DEFAULT_API_KEY)],
            Default::default(),
        )
        .await
        .expect("usage");
    assert_eq!(forbidden.status, 403);
    let err = parse_partner_usage(&forbidden.body, PARTNER_DEFAULT_WINDOW).unwrap_err();
    assert!(matches!(err, SeedError::UnexpectedShape { .. }), "{err:?}");
    server.shutdown().await;
}
