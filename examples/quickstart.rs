//! tower-quota in one command: an embedded API server with real limits, traffic
//! through the layer, and the usage report.
//!
//! `cargo run --example quickstart`
//!
//! The server speaks seed 004's dialect (per-route sliding windows, per API key,
//! `X-RateLimit-*` with resets in Unix milliseconds, 429 with `Retry-After`),
//! compressed 60x: a 60 s window lasts one second. Twenty-four tasks hammer three
//! routes for four windows through a hyper client behind the layer. At the end:
//! what was sent, how many 429s came back, how much of each allowance was used,
//! the report as a table, and the same report as an HTML page.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_quota::clock::{Clock, TokioClock};
use tower_quota::headers::{HeaderRules, ResetUnit};
use tower_quota::quota::{Limits, Quota};
use tower_quota::report::{render_html, render_table, Thresholds};
use tower_quota::route::Templates;
use tower_quota::testkit::{Config, Outcome, TestServer, DEFAULT_API_KEY};
use tower_quota::{Limiter, OtherRoutes, QuotaLayer};

const SCALE: f64 = 60.0;
const WINDOW: Duration = Duration::from_secs(1);
const WINDOWS: u32 = 4;
const ROUTES: [(&str, &str, &str); 3] = [
    (
        "POST",
        "/v1/leads/add_to_campaign",
        "POST /v1/leads/add_to_campaign",
    ),
    ("GET", "/v1/analytics", "GET /v1/analytics"),
    (
        "GET",
        "/v1/campaigns/42/statistics",
        "GET /v1/campaigns/:id/statistics",
    ),
];

/// Seed 004's table, compressed like the server.
fn limits(label: &str) -> Option<Limits> {
    let n = match label {
        "GET /v1/analytics" | "GET /v1/analytics/daily" | "GET /v1/analytics/by-user" => 30,
        "POST /v1/leads/add_to_campaign" => 20,
        "GET /v1/campaigns" | "GET /v1/users" | "GET /v1/users/:id" | "GET /v1/teams/me" => 60,
        "GET /v1/campaigns/:id" => 120,
        "GET /v1/campaigns/:id/statistics" => 30,
        _ => return None,
    };
    Quota::new(n, WINDOW).map(Into::into)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let clock = TokioClock::new();
    let server =
        TestServer::start(Config::seed004().time_scale(SCALE).clock(clock.clone())).await?;
    let limiter = Limiter::builder()
        .clock(clock.clone())
        .routes(
            Templates::seed004(),
            limits,
            OtherRoutes::Each {
                limits: Quota::new(60, WINDOW)
                    .unwrap_or(Quota::per_second(60))
                    .into(),
                cap: 1000,
            },
        )
        .headers(HeaderRules::standard().reset_unit(ResetUnit::EpochMillis))
        .build();
    println!(
        "tower-quota quickstart: seed-004 server on {} (60 s windows last 1 s)",
        server.base_url()
    );

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter.clone()))
        .service(client);
    let started = Instant::now();
    let end = clock.now() + WINDOW * WINDOWS;
    let tasks: Vec<_> = (0..24)
        .map(|t| {
            let (mut svc, clock, base) = (svc.clone(), clock.clone(), server.base_url());
            let (method, path, _) = ROUTES[t % ROUTES.len()];
            tokio::spawn(async move {
                let mut statuses: HashMap<u16, u64> = HashMap::new();
                while clock.now() < end {
                    let req = http::Request::builder()
                        .method(method)
                        .uri(format!("{base}{path}"))
                        .header("x-api-key", DEFAULT_API_KEY)
                        .body(Empty::new())?;
                    let resp = svc.ready().await?.call(req).await?;
                    *statuses.entry(resp.status().as_u16()).or_default() += 1;
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(statuses)
            })
        })
        .collect();
    let mut statuses: HashMap<u16, u64> = HashMap::new();
    for t in tasks {
        for (k, v) in t.await?? {
            *statuses.entry(k).or_default() += v;
        }
    }
    let elapsed = started.elapsed();

    let sent: u64 = statuses.values().sum();
    let rejected = statuses.get(&429).copied().unwrap_or(0);
    println!("\n{sent} requests from 24 tasks in {elapsed:.1?}: {rejected} answered 429\n");

    // How much of each allowance was used, from the server's own record.
    let events = server.recorder().events();
    let first = events
        .iter()
        .filter(|e| e.outcome == Outcome::Admitted)
        .map(|e| e.at)
        .min()
        .unwrap_or(clock.now());
    println!(
        "{:<36} {:>8} {:>9} {:>12}",
        "route", "limit/s", "admitted", "utilisation"
    );
    for (_, _, label) in ROUTES {
        let limit = limits(label).map_or(0, |l| l.quotas()[0].limit());
        let admitted = events
            .iter()
            .filter(|e| {
                e.route == label
                    && e.outcome == Outcome::Admitted
                    && e.at < first + WINDOW * WINDOWS
            })
            .count();
        let possible = u64::from(limit) * u64::from(WINDOWS);
        println!(
            "{label:<36} {limit:>8} {admitted:>9} {:>11.1}%",
            100.0 * admitted as f64 / possible as f64
        );
    }

    let snapshot = limiter.snapshot(&Thresholds::default());
    println!("\nusage report (the client's own view, no polling):\n");
    print!("{}", render_table(&snapshot));
    let wall = clock.to_wall(clock.now());
    let summary = limiter.history().summary_24h(wall);
    println!("\nlast 24 hours: {}", serde_json::to_string(&summary)?);
    let page = render_html(&snapshot, &summary, &limiter.history().daily(wall));
    let path = std::env::temp_dir().join("tower-quota-report.html");
    std::fs::write(&path, page)?;
    println!("HTML report: {}", path.display());

    server.shutdown().await;
    if rejected > 0 {
        return Err(format!("{rejected} requests were answered 429").into());
    }
    let _ = Arc::strong_count(&limiter);
    Ok(())
}
