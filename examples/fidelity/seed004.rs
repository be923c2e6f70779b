//! Seed 004's campaign API: per-route sliding windows per API key, 32 tasks
//! over three routes, bursting at every window edge; and the same with
//! another client of the key taking part of two routes every window.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tower_quota::headers::{HeaderRules, ResetUnit};
use tower_quota::ledger::MaxWait;
use tower_quota::quota::{Limits, Pacing, Quota};
use tower_quota::route::Templates;
use tower_quota::testkit::{BucketKey, Config, DEFAULT_API_KEY};
use tower_quota::{Limiter, OtherRoutes};

use super::run_clock::RunClock;
use super::scenario::{BucketSpec, CoConsumer, Scenario, TaskSpec, WindowSpec};

const SCALE: f64 = 120.0;
/// Seed 004's 60 s at 120x.
const WINDOW: Duration = Duration::from_millis(500);
const TASKS: usize = 32;

/// `(method, path, route, limit per window)` of the three routes driven.
const ROUTES: [(&str, &str, &str, u32); 3] = [
    (
        "POST",
        "/v1/leads/add_to_campaign",
        "POST /v1/leads/add_to_campaign",
        20,
    ),
    ("GET", "/v1/analytics", "GET /v1/analytics", 30),
    (
        "GET",
        "/v1/campaigns/{n}/statistics",
        "GET /v1/campaigns/:id/statistics",
        30,
    ),
];

/// 32 tasks, three routes, twelve windows.
pub fn bursts() -> Scenario {
    let buckets = ROUTES
        .iter()
        .map(|&(_, _, _, limit)| BucketSpec {
            windows: vec![WindowSpec {
                limit,
                length: WINDOW,
            }],
        })
        .collect();
    let tasks = (0..TASKS)
        .map(|t| {
            let (method, path, _, _) = ROUTES[t % ROUTES.len()];
            TaskSpec {
                method: Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET),
                path: path.to_owned(),
                headers: vec![("x-api-key", DEFAULT_API_KEY.to_owned())],
                buckets: vec![t % ROUTES.len()],
            }
        })
        .collect();
    Scenario {
        name: "seed 004: 3 routes, 32 tasks, bursts",
        scale: SCALE,
        duration: WINDOW * 12,
        server: Config::seed004(),
        buckets,
        tasks,
        measured: ROUTES
            .iter()
            .map(|&(_, _, route, _)| BucketKey::new("api_key", Some("default"), route))
            .collect(),
        co_consumer: None,
        margin: Duration::from_millis(20),
        align: None,
        tower_quota: |s, clock| limiter(s, clock, false),
    }
}

/// The same bursts, each connection's first request held 60 ms (three
/// margins; 7 API seconds) on its way in, as a cold connection's handshake
/// through a slow link or proxy would hold it: the first window's requests
/// reach the server late, and the next window's, on warm connections, at once.
pub fn cold_connections() -> Scenario {
    let scenario = bursts();
    Scenario {
        name: "seed 004: bursts on cold connections",
        server: scenario
            .server
            .clone()
            .cold_connections(Duration::from_millis(60)),
        ..scenario
    }
}

/// The same, while another client of the key takes 5 of the 20 leads and 10
/// of the 30 analytics in every window, each unit as soon as it can.
/// tower-quota paces the routes, as its README advises for a shared key.
pub fn co_consumer() -> Scenario {
    Scenario {
        name: "seed 004 + a co-consumer",
        co_consumer: Some(CoConsumer {
            every: WINDOW,
            takes: vec![
                ("default", "POST /v1/leads/add_to_campaign", 5),
                ("default", "GET /v1/analytics", 10),
            ],
        }),
        tower_quota: |s, clock| limiter(s, clock, true),
        ..bursts()
    }
}

/// The same, the server sending no `Retry-After`: under compression its whole
/// seconds are two windows (see `Config::retry_after`), and clients wait for
/// `X-RateLimit-Reset` (milliseconds) instead, as they would wait for a
/// `Retry-After` that is small next to a real 60-second window.
pub fn co_consumer_resets_only() -> Scenario {
    let scenario = co_consumer();
    Scenario {
        name: "seed 004 + a co-consumer, no Retry-After",
        server: scenario.server.clone().retry_after(false),
        ..scenario
    }
}

/// Seed 004's table (only the driven routes differ from the default of 60),
/// resets in Unix milliseconds, waiting as long as it takes.
fn limiter(scenario: &Scenario, clock: RunClock, paced: bool) -> Arc<Limiter<RunClock>> {
    let per_window = |n: u32| -> Limits {
        let quota = Quota::new(n, WINDOW).unwrap_or(Quota::per_second(1));
        let limits: Limits = quota.into();
        if paced {
            limits.paced(Pacing::spread(&quota, NonZeroU32::MIN))
        } else {
            limits
        }
    };
    Limiter::builder()
        .clock(clock)
        .routes(
            Templates::seed004(),
            move |label| {
                let n = ROUTES.iter().find(|r| r.2 == label).map(|r| r.3)?;
                Some(per_window(n))
            },
            OtherRoutes::Each {
                limits: per_window(60),
                cap: 100,
            },
        )
        .headers(HeaderRules::standard().reset_unit(ResetUnit::EpochMillis))
        .max_wait(MaxWait::Forever)
        .margin(scenario.margin)
        .build()
}
