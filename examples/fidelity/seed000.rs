//! Seed 000's CRM: one route with a minute, an hour and a day window, fixed
//! windows aligned to the wall clock, shared by the team.
//!
//! Compressed 1200x: a minute lasts 50 ms, an hour 3 s, a day 72 s. The route,
//! `conversations#ask_anything_v2_chat`, allows 20 a minute, 200 an hour and
//! 1000 a day: a client that sends as fast as it may is held by the minute for
//! the first ten minutes of each hour (0.5 s), then by the hour for the other
//! fifty (2.5 s). The run lasts two hours (6 s), from the start of a server
//! day; the day window is there but cannot bind that soon (after five hours).

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tower_quota::headers::{HeaderRules, VendorSet};
use tower_quota::ledger::MaxWait;
use tower_quota::quota::{Limits, Quota};
use tower_quota::route::Rails;
use tower_quota::testkit::{BucketKey, Config, DEFAULT_API_KEY};
use tower_quota::{Limiter, OtherRoutes};

use super::run_clock::RunClock;
use super::scenario::{real, BucketSpec, Scenario, TaskSpec, WindowSpec};

const SCALE: f64 = 1200.0;
const ROUTE: &str = "api/v1/conversations#ask_anything_v2_chat";
const PATH: &str = "/api/v1/conversations/ask_anything_v2_chat";
/// `(name, API length, limit)` of the route's windows, shortest first.
const WINDOWS: [(&str, u64, u32); 3] = [
    ("minute", 60, 20),
    ("hour", 3600, 200),
    ("day", 86_400, 1000),
];
const TASKS: usize = 32;

/// 32 tasks on one route for two (compressed) hours.
pub fn minute_hour_day() -> Scenario {
    let window = |api_secs| real(Duration::from_secs(api_secs), SCALE);
    let windows = WINDOWS
        .iter()
        .map(|&(_, secs, limit)| WindowSpec {
            limit,
            length: window(secs),
        })
        .collect();
    let task = TaskSpec {
        method: Method::POST,
        path: PATH.to_owned(),
        headers: vec![("x-api-key", DEFAULT_API_KEY.to_owned())],
        buckets: vec![0],
    };
    Scenario {
        name: "seed 000: 1 route, minute + hour + day",
        scale: SCALE,
        duration: window(2 * 3600),
        server: Config::seed000(),
        buckets: vec![BucketSpec { windows }],
        tasks: vec![task; TASKS],
        measured: vec![BucketKey::new("team", None, ROUTE)],
        co_consumer: None,
        margin: Duration::from_millis(20),
        align: Some(window(86_400)),
        tower_quota: limiter,
    }
}

/// The route's three windows (sliding: the safe default), the CRM's own
/// header pairs declared.
fn limiter(scenario: &Scenario, clock: RunClock) -> Arc<Limiter<RunClock>> {
    let window = |api_secs| real(Duration::from_secs(api_secs), SCALE);
    let quotas = WINDOWS
        .iter()
        .filter_map(|&(_, secs, limit)| Quota::new(limit, window(secs)));
    let limits = Limits::new(quotas);
    let headers = [
        (
            "minute",
            "x-rate-limit-minute",
            "x-minute-requests-left",
            60,
        ),
        (
            "hour",
            "x-rate-limit-hourly",
            "x-hourly-requests-left",
            3600,
        ),
        (
            "day",
            "x-rate-limit-24-hour",
            "x-24-hour-requests-left",
            86_400,
        ),
    ]
    .into_iter()
    .fold(
        HeaderRules::standard(),
        |rules, (name, limit, left, secs)| {
            rules.vendor(VendorSet::new(name, limit, left).window(window(secs)))
        },
    );
    Limiter::builder()
        .clock(clock)
        .routes(
            Rails::seed000(),
            move |label| (label == ROUTE).then(|| limits.clone()),
            OtherRoutes::Unlimited,
        )
        .headers(headers)
        .max_wait(MaxWait::Forever)
        .margin(scenario.margin)
        .build()
}
