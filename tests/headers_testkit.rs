//! The headers our own test server sends, read back over real loopback HTTP:
//! seed 004's `X-RateLimit-*` (reset in Unix milliseconds, `Retry-After` on 429)
//! and seed 000's vendor pairs.
#![cfg(feature = "testkit")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tower_quota::clock::{Clock, ManualClock, Nanos};
use tower_quota::headers::{HeaderRules, ResetAt, ResetUnit, VendorSet, WindowObservation};
use tower_quota::testkit::{Config, TestServer, DEFAULT_API_KEY};

const KEY: [(&str, &str); 1] = [("x-api-key", DEFAULT_API_KEY)];

/// 2026-05-19T14:00:00Z, a realistic wall clock for the server.
fn origin() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_779_199_200)
}

#[tokio::test]
async fn seed004_headers_with_guessed_and_declared_units() {
    for clock in [ManualClock::with_wall_origin(origin()), ManualClock::new()] {
        let wall = clock.wall_origin();
        let server = TestServer::start(Config::seed004().clock(clock.clone()))
            .await
            .expect("bind");
        let c = server.client();
        let path = "/v1/leads/add_to_campaign";
        // 20 per 60 s: the first request leaves at 60 s.
        let r = c.post(path, &KEY, "{}").await.expect("request");
        let reset = Some(ResetAt::At(wall + Duration::from_secs(60)));
        let want = WindowObservation {
            limit: Some(20),
            remaining: Some(19),
            reset,
            ..WindowObservation::default()
        };
        for rules in [
            HeaderRules::standard(),
            HeaderRules::standard().reset_unit(ResetUnit::EpochMillis),
        ] {
            let seen = rules.parse(&r.headers, wall);
            assert_eq!(seen.windows, std::slice::from_ref(&want), "origin {wall:?}");
            assert_eq!(seen.retry_after, None);
        }
        for _ in 1..20 {
            c.post(path, &KEY, "{}").await.expect("request");
        }
        clock.set(Nanos::from_millis(45_500));
        let r = c.post(path, &KEY, "{}").await.expect("request");
        assert_eq!(r.status, 429);
        let received_at = wall + Duration::from_millis(45_500);
        let seen = HeaderRules::standard().parse(&r.headers, received_at);
        assert_eq!(seen.windows[0].remaining, Some(0));
        // Retry-After is whole seconds, rounded up: 14.5 s -> 15 s.
        assert_eq!(
            seen.retry_after,
            Some(ResetAt::After(Duration::from_secs(15)))
        );
        assert_eq!(seen.wait_hint(received_at), Some(Duration::from_secs(15)));
    }
}

#[tokio::test]
async fn seed000_vendor_pairs_per_window() {
    let clock = ManualClock::with_wall_origin(origin());
    let server = TestServer::start(Config::seed000().clock(clock.clone()))
        .await
        .expect("bind");
    let rules = HeaderRules::standard()
        .only_declared()
        .vendor(
            VendorSet::new("minute", "x-rate-limit-minute", "x-minute-requests-left")
                .window(Duration::from_secs(60)),
        )
        .vendor(
            VendorSet::new("hour", "x-rate-limit-hourly", "x-hourly-requests-left")
                .window(Duration::from_secs(3600)),
        )
        .vendor(
            VendorSet::new("day", "x-rate-limit-24-hour", "x-24-hour-requests-left")
                .window(Duration::from_secs(86_400)),
        );
    let c = server.client();
    // conversations#export: 1 per minute, 20 per hour, 480 per day.
    let r = c
        .get("/api/v1/conversations/export", &KEY)
        .await
        .expect("request");
    let seen = rules.parse(&r.headers, clock.wall_origin());
    let got: Vec<(Option<&str>, Option<u64>, Option<u64>)> = seen
        .windows
        .iter()
        .map(|w| (w.name.as_deref(), w.limit, w.remaining))
        .collect();
    assert_eq!(
        got,
        [
            (Some("minute"), Some(1), Some(0)),
            (Some("hour"), Some(20), Some(19)),
            (Some("day"), Some(480), Some(479)),
        ]
    );
    let r = c
        .get("/api/v1/conversations/export", &KEY)
        .await
        .expect("request");
    assert_eq!(r.status, 429);
    let seen = rules.parse(&r.headers, clock.wall_origin());
    assert_eq!(seen.retry_after, None, "the CRM sends no Retry-After");
    assert_eq!(seen.windows[0].remaining, Some(0));
}
