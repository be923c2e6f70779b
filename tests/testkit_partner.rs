//! Seed 002 (the partner API) as served by the testkit: the usage endpoint byte
//! for byte, its cache, authentication, and the two scopes.
#![cfg(feature = "testkit")]

use std::time::{Duration, UNIX_EPOCH};

use tower_quota::clock::{ManualClock, Nanos};
use tower_quota::testkit::{
    Config, TestClient, TestServer, DEFAULT_API_KEY, DEFAULT_SYSTEM, DEFAULT_SYSTEM_KEY,
};

/// The example response of seed 002, verbatim.
const EXAMPLE: &str = include_str!("../src/seed/fixtures/seed002.json");

/// 2026-05-19T00:00:00Z.
const MAY_19: u64 = 1_779_148_800;

fn headers(account_key: &str) -> [(&str, &str); 3] {
    [
        ("x-api-key", account_key),
        ("x-system", DEFAULT_SYSTEM),
        ("x-system-key", DEFAULT_SYSTEM_KEY),
    ]
}

async fn get_n(client: &TestClient, path: &str, key: &str, n: usize) -> (usize, usize) {
    let (mut ok, mut limited) = (0, 0);
    for _ in 0..n {
        match client
            .get(path, &headers(key))
            .await
            .expect("request")
            .status
            .as_u16()
        {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    (ok, limited)
}

async fn usage(client: &TestClient) -> String {
    let r = client
        .get("/rateLimit/usage", &headers(DEFAULT_API_KEY))
        .await
        .expect("request");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_reproduces_the_documented_example_from_real_traffic() {
    let clock = ManualClock::with_wall_origin(UNIX_EPOCH + Duration::from_secs(MAY_19));
    let server = TestServer::start(Config::seed002().clock(clock.clone()))
        .await
        .expect("bind");
    let client = server.client();
    let at = |h: u64, m: u64| clock.set(Nanos::from_secs(h * 3600 + m * 60));
    // 13:00-13:19: 499 requests, each minute within the per-account 25.
    for m in 0..20 {
        at(13, m);
        let n = if m == 19 { 24 } else { 25 };
        assert_eq!(get_n(&client, "/things", DEFAULT_API_KEY, n).await, (n, 0));
    }
    // 14:00: 48 at once to /people: 25 fit the per-account ceiling, 23 get 429.
    at(14, 0);
    assert_eq!(
        get_n(&client, "/people/7", DEFAULT_API_KEY, 48).await,
        (25, 23)
    );
    // 14:01-14:28: 700 more.
    for m in 1..29 {
        at(14, m);
        assert_eq!(
            get_n(&client, "/things", DEFAULT_API_KEY, 25).await,
            (25, 0)
        );
    }
    at(14, 30);
    assert_eq!(usage(&client).await, EXAMPLE);
    // The usage call itself is neither metered nor counted.
    assert_eq!(server.recorder().events().len(), 1247);
}

#[tokio::test]
async fn usage_without_traffic_says_zero_and_null() {
    let clock = ManualClock::new();
    let server = TestServer::start(Config::seed002().clock(clock))
        .await
        .expect("bind");
    let body = usage(&server.client()).await;
    assert!(body.contains("\"total_requests\": 0,\n    \"rate_limited_requests\": 0,\n    \"rate_limit_percentage\": 0,\n    \"peak_hour\": null,"), "{body}");
}

#[tokio::test]
async fn usage_is_cached_for_30_seconds_and_covers_24_hours() {
    let clock = ManualClock::new();
    let server = TestServer::start(Config::seed002().clock(clock.clone()))
        .await
        .expect("bind");
    let client = server.client();
    get_n(&client, "/people", DEFAULT_API_KEY, 3).await;
    let first = usage(&client).await;
    assert!(first.contains("\"total_requests\": 3,"));
    get_n(&client, "/people", DEFAULT_API_KEY, 2).await;
    clock.advance(Duration::from_millis(29_999));
    assert_eq!(
        usage(&client).await,
        first,
        "identical bytes inside the cache window"
    );
    clock.advance(Duration::from_millis(1));
    let second = usage(&client).await;
    assert!(second.contains("\"total_requests\": 5,"), "{second}");
    assert!(
        second.contains("\"peak_hour\": \"1970-01-02T00:00:00Z\","),
        "{second}"
    );
    // 23 hours later the first hour is still in; 24 hours later it is gone.
    clock.set(Nanos::from_secs(23 * 3600 + 60));
    assert!(usage(&client).await.contains("\"total_requests\": 5,"));
    clock.set(Nanos::from_secs(24 * 3600 + 60));
    assert!(usage(&client).await.contains("\"total_requests\": 0,"));
}

#[tokio::test]
async fn credentials_401_for_the_user_key_403_for_the_system() {
    let clock = ManualClock::new();
    let server = TestServer::start(Config::seed002().clock(clock))
        .await
        .expect("bind");
    let client = server.client();
    let user = ("x-api-key", DEFAULT_API_KEY);
    let system = ("x-system", DEFAULT_SYSTEM);
    let system_key = ("x-system-key", DEFAULT_SYSTEM_KEY);
    let cases: [(&[(&str, &str)], u16); 6] = [
        (&[system, system_key], 401),
        (&[("x-api-key", "nope"), system, system_key], 401),
        (&[user], 403),
        (&[user, system], 403),
        (&[user, system, ("x-system-key", "nope")], 403),
        (&[user, ("x-system", "other-system"), system_key], 403),
    ];
    for path in ["/rateLimit/usage", "/people"] {
        for (h, status) in cases {
            let r = client.get(path, h).await.expect("request");
            assert_eq!(r.status.as_u16(), status, "{path} {h:?}");
            assert_eq!(r.header("x-ratelimit-limit"), None);
        }
    }
    let r = client
        .get("/rateLimit/usage", &[("x-system", DEFAULT_SYSTEM)])
        .await
        .expect("request");
    assert_eq!(r.text(), r#"{"error":"Missing or invalid user API key."}"#);
    let r = client
        .get("/rateLimit/usage", &[user])
        .await
        .expect("request");
    assert_eq!(
        r.text(),
        r#"{"error":"Only registered systems can call this endpoint."}"#
    );
    assert!(
        server.recorder().events().is_empty(),
        "refused credentials are not metered"
    );
}

#[tokio::test]
async fn global_and_per_account_ceilings_must_both_pass() {
    let clock = ManualClock::new();
    let mut config = Config::seed002().clock(clock);
    for i in 1..=5 {
        config = config.api_key(format!("a{i}"), format!("key-{i}"));
    }
    let server = TestServer::start(config).await.expect("bind");
    let client = server.client();
    // First request: the per-account window is the binding one.
    let r = client
        .get("/people/1", &headers("key-1"))
        .await
        .expect("request");
    assert_eq!(
        (
            r.header("x-ratelimit-limit"),
            r.header("x-ratelimit-remaining")
        ),
        (Some("25"), Some("24"))
    );
    assert_eq!(r.text(), r#"{"route":"GET.people"}"#);
    // Four accounts fill the global GET.people ceiling of 100.
    assert_eq!(get_n(&client, "/people", "key-1", 24).await, (24, 0));
    for key in ["key-2", "key-3", "key-4"] {
        assert_eq!(get_n(&client, "/people", key, 25).await, (25, 0));
    }
    // The fifth has room of its own, but not globally.
    let r = client
        .get("/people", &headers("key-5"))
        .await
        .expect("request");
    assert_eq!(r.status, 429);
    assert_eq!(
        (
            r.header("x-ratelimit-limit"),
            r.header("x-ratelimit-remaining")
        ),
        (Some("100"), Some("0"))
    );
    assert_eq!(r.header("retry-after"), Some("60"));
    // Another route has its own global bucket, and the per-account one binds.
    assert_eq!(get_n(&client, "/deals", "key-5", 26).await, (25, 1));

    let stats = server.stats();
    let global = stats
        .bucket("across_all_accounts", None, "GET.people")
        .expect("bucket");
    assert_eq!(
        (global.admitted, global.rejected, global.max_in_any_window()),
        (100, 1, 100)
    );
    let a5 = stats
        .bucket("per_account", Some("a5"), "GET.people")
        .expect("bucket");
    assert_eq!(
        (a5.admitted, a5.rejected),
        (0, 0),
        "the 429 charged nothing"
    );
    let deals = stats
        .bucket("per_account", Some("a5"), "GET.deals")
        .expect("bucket");
    assert_eq!((deals.admitted, deals.rejected), (25, 1));
    assert!(stats.violations().is_empty());
    // The co-consumer is charged in both scopes: a5's own GET.people bucket is
    // empty, but the global one is full.
    assert!(!server.consume("a5", "GET.people", 1));
    assert!(server.consume("a5", "GET.other", 25));
}
