//! Parsing a usage body takes time in proportion to its size.
//!
//! The refresher parses on the runtime's thread, after its timeout: a body
//! listing many routes must not stall it. Each route is merged with an earlier
//! one of the same label only if there is one, found by an index: a search of
//! every earlier entry per route made 8 times the routes cost 60 times the time.
//!
//! Timing asserts are kept loose: the thread's CPU time (other processes on a
//! busy machine do not count), the smallest of a few runs, both formats one
//! after the other in one test, and a bound (64 times the time for 16 times
//! the routes) that linear parsing meets with a wide margin (about 20 times:
//! larger trees use the caches less well) and quadratic parsing (150 to 230
//! times) misses by far.

use std::time::Duration;

use tower_quota::route::format_stats_key;
use tower_quota::seed::{parse_crm_usage, parse_partner_usage, SeedScope, WindowNames};

/// The routes of the small body, and of one 16 times larger.
const SMALL: usize = 1_000;
const LARGE: usize = 16_000;

/// A seed 000 body listing `routes` distinct routes, one window each.
fn crm_body(routes: usize) -> String {
    let entries: Vec<String> = (0..routes)
        .map(|i| {
            let key = format_stats_key(&format!("api/v1/things{i}"), "search");
            let key = serde_json::to_string(&key).unwrap_or_default();
            format!(r#"{key}: {{"minute": {{"limit": 200, "consumed": 10, "left_over": 190}}}}"#)
        })
        .collect();
    format!("{{{}}}", entries.join(",\n"))
}

/// A seed 002 body with `routes` distinct per-route ceilings.
fn partner_body(routes: usize) -> String {
    let limits: Vec<String> = (0..routes)
        .map(|i| format!(r#""GET.things{i}": 100"#))
        .collect();
    format!(
        r#"{{"system": "s", "period": "last_24h", "usage": {{"total_requests": 0,
        "rate_limited_requests": 0, "rate_limit_percentage": 0, "peak_hour": null,
        "current_limits": {{"across_all_accounts": {{{}}}}}}}}}"#,
        limits.join(", ")
    )
}

/// The CPU time this thread has used so far (elsewhere, the time since an
/// arbitrary instant).
fn cpu_time() -> Duration {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
}

/// The shortest of five runs of `parse`.
fn fastest(parse: impl Fn()) -> Duration {
    (0..5)
        .map(|_| {
            let start = cpu_time();
            parse();
            cpu_time().saturating_sub(start)
        })
        .min()
        .unwrap_or_default()
}

/// How many times longer 16 times the routes take to parse.
fn growth(parse: impl Fn(usize)) -> f64 {
    let small = fastest(|| parse(SMALL));
    let large = fastest(|| parse(LARGE));
    large.as_secs_f64() / small.as_secs_f64().max(1e-6)
}

#[test]
fn parsing_grows_linearly_with_the_routes() {
    let names = WindowNames::standard();
    let (small, large) = (crm_body(SMALL), crm_body(LARGE));
    let crm_growth = growth(|routes| {
        let body = if routes == SMALL { &small } else { &large };
        let seed = parse_crm_usage(body.as_bytes(), &names).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seed.entries.len(), routes);
    });
    let (small, large) = (partner_body(SMALL), partner_body(LARGE));
    let partner_growth = growth(|routes| {
        let body = if routes == SMALL { &small } else { &large };
        let seed = parse_partner_usage(body.as_bytes(), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seed.entries_in(SeedScope::Global).count(), routes);
    });
    assert!(
        crm_growth < 64.0 && partner_growth < 64.0,
        "16x the routes took {crm_growth:.1}x (seed 000) and {partner_growth:.1}x (seed 002) the time"
    );
}
