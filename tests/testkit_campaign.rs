//! Seed 004 (the campaign API) as served by the testkit: limits, headers,
//! bodies and authentication, exactly as the document describes them.
#![cfg(feature = "testkit")]

use std::time::Duration;

use tower_quota::clock::{ManualClock, Nanos};
use tower_quota::testkit::{Config, TestResponse, TestServer, DEFAULT_API_KEY};

/// The clock's wall origin (1970-01-02T00:00:00Z) in Unix milliseconds.
const ORIGIN_MS: u64 = 86_400_000;
const KEY: [(&str, &str); 1] = [("x-api-key", DEFAULT_API_KEY)];

async fn seed004() -> (ManualClock, TestServer) {
    let clock = ManualClock::new();
    let server = TestServer::start(Config::seed004().clock(clock.clone()))
        .await
        .expect("bind loopback");
    (clock, server)
}

fn limit_headers(r: &TestResponse) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        r.header("x-ratelimit-limit"),
        r.header("x-ratelimit-remaining"),
        r.header("x-ratelimit-reset"),
    )
}

#[tokio::test]
async fn sliding_window_headers_on_2xx_and_429_are_the_documented_ones() {
    let (clock, server) = seed004().await;
    let client = server.client();
    let path = "/v1/leads/add_to_campaign";
    let post = || client.post(path, &KEY, "{}");
    // Ten at 0 s, ten at 30 s: the limit is 20 per sliding 60 s.
    for i in 0..20u64 {
        if i == 10 {
            clock.set(Nanos::from_secs(30));
        }
        let r = post().await.expect("request");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), r#"{"route":"POST /v1/leads/add_to_campaign"}"#);
        let remaining = (19 - i).to_string();
        let reset = (ORIGIN_MS + 60_000).to_string();
        assert_eq!(
            limit_headers(&r),
            (Some("20"), Some(remaining.as_str()), Some(reset.as_str()))
        );
        assert_eq!(r.header("retry-after"), None);
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    // At 45.5 s the window is full until the first ten leave at 60 s.
    clock.set(Nanos::from_millis(45_500));
    for _ in 0..5 {
        let r = post().await.expect("request");
        assert_eq!(r.status, 429);
        assert_eq!(
            r.text(),
            r#"{"statusCode":429,"message":"Too Many Requests"}"#
        );
        let reset = (ORIGIN_MS + 60_000).to_string();
        assert_eq!(
            limit_headers(&r),
            (Some("20"), Some("0"), Some(reset.as_str()))
        );
        assert_eq!(r.header("retry-after"), Some("15"), "14.5 s rounded up");
    }
    // At 60 s the first ten have left; the 429s counted for nothing.
    clock.set(Nanos::from_secs(60));
    let r = post().await.expect("request");
    assert_eq!(r.status, 200);
    let reset = (ORIGIN_MS + 90_000).to_string();
    assert_eq!(
        limit_headers(&r),
        (Some("20"), Some("9"), Some(reset.as_str()))
    );

    let stats = server.stats();
    let b = stats
        .bucket("api_key", Some("default"), "POST /v1/leads/add_to_campaign")
        .expect("bucket");
    assert_eq!((b.admitted, b.rejected, b.max_in_any_window()), (21, 5, 20));
    assert!(stats.violations().is_empty());
}

#[tokio::test]
async fn per_route_table_and_the_60_per_60_s_default() {
    let (_clock, server) = seed004().await;
    let client = server.client();
    let cases = [
        ("/v1/analytics", "30"),
        ("/v1/analytics/daily", "30"),
        ("/v1/analytics/by-user", "30"),
        ("/v1/campaigns", "60"),
        ("/v1/campaigns/c-1", "120"),
        ("/v1/campaigns/c-1/statistics", "30"),
        ("/v1/users", "60"),
        ("/v1/users/u-9", "60"),
        ("/v1/teams/me", "60"),
        ("/v1/leads", "60"),
        ("/v1/anything/else", "60"),
    ];
    for (path, limit) in cases {
        let r = client.get(path, &KEY).await.expect("request");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("x-ratelimit-limit"), Some(limit), "{path}");
    }
    // Routes are separate buckets, and each campaign id shares its template's.
    let r = client
        .get("/v1/campaigns/c-2", &KEY)
        .await
        .expect("request");
    assert_eq!(r.header("x-ratelimit-remaining"), Some("118"));
    assert_eq!(
        server
            .route_of("GET", "/v1/campaigns/c-2/statistics")
            .as_deref(),
        Some("GET /v1/campaigns/:id/statistics")
    );
}

#[tokio::test]
async fn default_route_exhausts_at_60_and_resets_with_the_window() {
    let (clock, server) = seed004().await;
    let client = server.client();
    for _ in 0..60 {
        assert_eq!(
            client.get("/v1/leads", &KEY).await.expect("request").status,
            200
        );
    }
    let r = client.get("/v1/leads", &KEY).await.expect("request");
    assert_eq!(
        (r.status.as_u16(), r.header("retry-after")),
        (429, Some("60"))
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        client.get("/v1/leads", &KEY).await.expect("request").status,
        200
    );
}

#[tokio::test]
async fn api_keys_are_checked_and_limits_are_per_key() {
    let clock = ManualClock::new();
    let config = Config::seed004().api_key("second", "k-2").clock(clock);
    let server = TestServer::start(config).await.expect("bind");
    let client = server.client();
    for headers in [
        vec![],
        vec![("x-api-key", "wrong")],
        vec![("x-api-key", "")],
    ] {
        let r = client.get("/v1/users", &headers).await.expect("request");
        assert_eq!(r.status, 401);
        assert_eq!(r.text(), r#"{"statusCode":401,"message":"Unauthorized"}"#);
        assert_eq!(limit_headers(&r), (None, None, None));
    }
    assert!(
        server.recorder().events().is_empty(),
        "401s are not metered"
    );
    let a = client.get("/v1/users", &KEY).await.expect("request");
    let b = client
        .get("/v1/users", &[("x-api-key", "k-2")])
        .await
        .expect("request");
    assert_eq!(a.header("x-ratelimit-remaining"), Some("59"));
    assert_eq!(
        b.header("x-ratelimit-remaining"),
        Some("59"),
        "a second key has its own bucket"
    );
    // The server records key names, never the keys themselves.
    let record = format!("{:?} {:?}", server.recorder().events(), server.stats());
    assert!(!record.contains(DEFAULT_API_KEY) && !record.contains("k-2"));
}

#[tokio::test]
async fn fault_switch_serves_a_share_without_limiter_or_headers() {
    let (_clock, server) = seed004().await;
    let client = server.client();
    server.set_fault(0.5);
    let (mut bare, mut metered) = (0, 0);
    for _ in 0..40 {
        let r = client
            .post("/v1/leads/add_to_campaign", &KEY, "{}")
            .await
            .expect("request");
        assert_eq!(
            r.status, 200,
            "half of 40 skip the limiter: 20 fit the limit"
        );
        match limit_headers(&r) {
            (None, None, None) => bare += 1,
            (Some("20"), Some(_), Some(_)) => metered += 1,
            other => panic!("partial headers {other:?}"),
        }
    }
    assert_eq!((bare, metered), (20, 20));
    server.set_fault(0.0);
    let r = client
        .post("/v1/leads/add_to_campaign", &KEY, "{}")
        .await
        .expect("request");
    assert_eq!(r.status, 429);
    let stats = server.stats();
    assert_eq!(
        (stats.admitted, stats.rejected, stats.unmetered),
        (20, 1, 20)
    );
}
