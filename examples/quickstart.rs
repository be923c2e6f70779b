//! tower-quota in one command: an embedded rate-limited API, a client that
//! learns the limits from the API's usage endpoint, traffic from many tasks
//! through the layer, and the usage report.
//!
//! `cargo run --example quickstart`
//!
//! The server speaks seed 002's dialect: every request counts against a
//! ceiling shared by all accounts (`GET.people`: 100 per minute) *and* its
//! account's own (25 per minute), and `GET /rateLimit/usage` tells a
//! registered system those ceilings. Time is compressed 60x: an API minute
//! lasts one second. The client is configured with the *shape* of the limits
//! only (two scopes, per minute); the numbers come from the usage endpoint,
//! polled through the client's own stack. Then 24 tasks for eight accounts
//! (two bulk syncs that want more than their own ceiling, six lighter ones)
//! read people for six API minutes. At the end: what was learned, what was
//! sent, how many 429s came back (none), how much of each ceiling was used,
//! and the client's usage report as a table and an HTML page.

#[path = "quickstart/scenario.rs"]
mod scenario;

use std::collections::BTreeSet;
use std::time::Duration;

use scenario::{BoxError, RunReport, Settings, ACCOUNTS, ROUTE, TASKS_PER_ACCOUNT};
use tower_quota::clock::Clock;
use tower_quota::report::{render_html, render_table, Thresholds};
use tower_quota::seed::SeedScope;
use tower_quota::SeedTarget;

const SETTINGS: Settings = Settings {
    scale: 60.0,
    minutes: 6,
    // 2 % of the compressed minute: room for a request that reaches the
    // server a little after it left, on a busy two-core machine.
    margin: Duration::from_millis(20),
};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    println!(
        "tower-quota quickstart: a seed-002 partner API on loopback (an API minute lasts 1 s)\n"
    );
    let run = scenario::run(&SETTINGS).await?;
    print_learned(&run);
    print_traffic(&run);
    print_report(&run)?;
    let rejected = run.rejected;
    run.server.shutdown().await;
    if rejected > 0 {
        return Err(format!("{rejected} requests were answered 429").into());
    }
    Ok(())
}

/// What the first poll of the usage endpoint changed.
fn print_learned(run: &RunReport) {
    println!("learned from GET /rateLimit/usage (no limit is configured by hand):");
    let mut lines = BTreeSet::new();
    for row in &run.seed.applied {
        let scope = match row.scope {
            SeedScope::Global => "across_all_accounts",
            SeedScope::PerAccount => "per_account",
            _ => "key",
        };
        let applies_to = match row.target {
            SeedTarget::NewRouteBuckets => "every other route, as it is first seen",
            SeedTarget::NewAccountBuckets => "every account, as it is first seen",
            SeedTarget::Account => "the polling account",
            _ => "the route's bucket",
        };
        for change in &row.applied.limits_changed {
            lines.insert(format!(
                "  {scope:<20} {:<10} {:>4} per API minute (was {}), for {applies_to}",
                row.route, change.to, change.from
            ));
        }
    }
    for line in lines {
        println!("{line}");
    }
}

/// Requests, 429s and the use of each ceiling.
fn print_traffic(run: &RunReport) {
    println!(
        "\n{} tasks ({TASKS_PER_ACCOUNT} per account) read {ROUTE} for {} API minutes ({:.1?}); the usage endpoint was polled {} times",
        ACCOUNTS.len() * TASKS_PER_ACCOUNT,
        SETTINGS.minutes,
        run.elapsed,
        run.polls,
    );
    println!(
        "{} requests sent: {} answered 429 (the server's own count: {})",
        run.sent, run.limited, run.rejected
    );
    println!(
        "\nthe shared ceiling, {} per API minute: {} admitted of {} allowed, {:.1} % used",
        run.ceiling,
        run.admitted(),
        run.allowance(),
        100.0 * run.utilisation()
    );
    let minutes: Vec<String> = run.admitted_per_minute.iter().map(u64::to_string).collect();
    println!("  admitted per API minute: {}", minutes.join(", "));
    let accounts: Vec<String> = run
        .admitted_per_account
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    println!(
        "  per account (each under its own ceiling of {} per API minute): {}",
        run.account_ceiling,
        accounts.join(", ")
    );
}

/// The client's own usage report: terminal table, 24-hour summary, HTML page.
fn print_report(run: &RunReport) -> Result<(), BoxError> {
    let snapshot = run.limiter.snapshot(&Thresholds::default());
    println!("\nusage report (the client's own view):\n");
    print!("{}", render_table(&snapshot));
    let clock = run.limiter.clock();
    let wall = clock.to_wall(clock.now());
    let summary = run.limiter.history().summary_24h(wall);
    println!("\nlast 24 hours: {}", serde_json::to_string(&summary)?);
    let page = render_html(&snapshot, &summary, &run.limiter.history().daily(wall));
    let path = std::env::temp_dir().join("tower-quota-report.html");
    std::fs::write(&path, page)?;
    println!("HTML report: {}", path.display());
    Ok(())
}
