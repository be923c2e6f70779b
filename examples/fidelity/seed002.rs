//! Seed 002's partner API: every request counts against the ceiling of its
//! route across all accounts (`GET.people`: 100 per minute) and its account's
//! own (25), all or nothing. Many accounts share the global ceiling; in the
//! uneven variant two bulk accounts also exceed their own.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tower_quota::headers::{HeaderRules, ResetUnit};
use tower_quota::ledger::MaxWait;
use tower_quota::quota::{Limits, Quota};
use tower_quota::route::MethodResource;
use tower_quota::scope::KeySource;
use tower_quota::testkit::{BucketKey, Config, DEFAULT_SYSTEM, DEFAULT_SYSTEM_KEY};
use tower_quota::{Limiter, OtherRoutes};

use super::run_clock::RunClock;
use super::scenario::{BucketSpec, Scenario, TaskSpec, WindowSpec};

const SCALE: f64 = 120.0;
/// Seed 002's minute at 120x.
const WINDOW: Duration = Duration::from_millis(500);
const GLOBAL: u32 = 100;
const PER_ACCOUNT: u32 = 25;

/// Sixteen accounts, two tasks each: the global ceiling binds.
pub fn many_accounts() -> Scenario {
    accounts("seed 002: 16 accounts share 100/min", &[2; 16])
}

/// Twelve accounts: two with ten tasks each, whose share of the global
/// ceiling would exceed their own, and ten with one: both scopes bind.
pub fn uneven_accounts() -> Scenario {
    let mut tasks = [1; 12];
    tasks[0] = 10;
    tasks[1] = 10;
    accounts("seed 002: 12 accounts, 2 over their own 25/min", &tasks)
}

/// Account `i` runs `tasks[i]` tasks reading `GET /people/{n}`.
fn accounts(name: &'static str, tasks: &[usize]) -> Scenario {
    let mut server = Config::seed002();
    let window = |limit| WindowSpec {
        limit,
        length: WINDOW,
    };
    let mut buckets = vec![BucketSpec {
        windows: vec![window(GLOBAL)],
    }];
    let mut specs = Vec::new();
    for (i, &count) in tasks.iter().enumerate() {
        let key = format!("key-{i}");
        server = server.api_key(format!("acct-{i}"), key.clone());
        buckets.push(BucketSpec {
            windows: vec![window(PER_ACCOUNT)],
        });
        let spec = TaskSpec {
            method: Method::GET,
            path: "/people/{n}".to_owned(),
            headers: vec![
                ("x-system", DEFAULT_SYSTEM.to_owned()),
                ("x-system-key", DEFAULT_SYSTEM_KEY.to_owned()),
                ("x-api-key", key),
            ],
            buckets: vec![0, buckets.len() - 1],
        };
        specs.extend(std::iter::repeat_n(spec, count));
    }
    Scenario {
        name,
        scale: SCALE,
        duration: WINDOW * 12,
        server,
        buckets,
        tasks: specs,
        measured: vec![BucketKey::new("across_all_accounts", None, "GET.people")],
        co_consumer: None,
        margin: Duration::from_millis(20),
        align: None,
        tower_quota: limiter,
    }
}

/// The partner's two scopes, per minute; resets in Unix milliseconds.
fn limiter(scenario: &Scenario, clock: RunClock) -> Arc<Limiter<RunClock>> {
    let per_window =
        |n: u32| -> Limits { Quota::new(n, WINDOW).unwrap_or(Quota::per_second(1)).into() };
    Limiter::builder()
        .clock(clock)
        .routes(
            MethodResource::seed002(),
            move |label| (label == "GET.people").then(|| per_window(GLOBAL)),
            OtherRoutes::Each {
                limits: per_window(750),
                cap: 100,
            },
        )
        .per_account(
            KeySource::header("x-api-key"),
            per_window(PER_ACCOUNT),
            1000,
        )
        .headers(HeaderRules::standard().reset_unit(ResetUnit::EpochMillis))
        .max_wait(MaxWait::Forever)
        .margin(scenario.margin)
        .build()
}
