//! The fidelity benchmark: the same workload against the same rate-limited
//! server through four clients, counting what the server saw.
//!
//! `cargo run --release --example fidelity [-- <scenario filter>...]`
//!
//! Contenders: (a) tower-quota's layer, (b) `governor`, one limiter per window,
//! (c) `tower::limit::RateLimit` at each bucket's shortest window, (d) no
//! limiter, retrying 429s after the wait the server asks for. Scenarios: seed
//! 004's sliding windows under bursts (on warm and on cold connections), seed
//! 000's minute, hour and day on one
//! route, seed 002's global and per-account ceilings with many accounts (even
//! and uneven demand), and seed 004 with a co-consumer. Each run gets a fresh
//! server on loopback and a fresh client; time is compressed (see each
//! scenario). The table goes to stdout as markdown; progress to stderr.
//!
//! Per row: 429s the server answered (every attempt); requests it admitted
//! during the run; utilisation, the units admitted to the measured buckets
//! (the co-consumer's included) over the most their windows allowed during
//! the run; wall time from the start to the last task's end (tasks stop at
//! the end of the run and abandon what they were waiting for); added latency,
//! from the moment a task wanted to send to the moment the attempt that got
//! the final answer left for the server (limiter waits, back-off and earlier
//! attempts included; the server's own time excluded), p50 and p99 over the
//! requests answered during the run.

#[path = "fidelity/contender.rs"]
mod contender;
#[path = "fidelity/measure.rs"]
mod measure;
#[path = "fidelity/run_clock.rs"]
mod run_clock;
#[path = "fidelity/scenario.rs"]
mod scenario;
#[path = "fidelity/seed000.rs"]
mod seed000;
#[path = "fidelity/seed002.rs"]
mod seed002;
#[path = "fidelity/seed004.rs"]
mod seed004;
#[path = "fidelity/table.rs"]
mod table;
#[path = "fidelity/want.rs"]
mod want;
#[path = "fidelity/with_governor.rs"]
mod with_governor;
#[path = "fidelity/with_rate_limit.rs"]
mod with_rate_limit;
#[path = "fidelity/with_retry.rs"]
mod with_retry;
#[path = "fidelity/with_tower_quota.rs"]
mod with_tower_quota;
#[path = "fidelity/workload.rs"]
mod workload;

use std::sync::Arc;
use std::time::Duration;

use contender::Kind;
use measure::Row;
use run_clock::RunClock;
use scenario::Scenario;
use tower_quota::testkit::TestServer;
use want::BoxError;

/// Time for the server and the client to be ready before traffic starts.
const SETUP: Duration = Duration::from_millis(200);

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let filters: Vec<String> = std::env::args().skip(1).collect();
    let scenarios: Vec<Scenario> = [
        seed004::bursts(),
        seed004::cold_connections(),
        seed000::minute_hour_day(),
        seed002::many_accounts(),
        seed002::uneven_accounts(),
        seed004::co_consumer(),
        seed004::co_consumer_resets_only(),
    ]
    .into_iter()
    .filter(|s| filters.is_empty() || filters.iter().any(|f| s.name.contains(f.as_str())))
    .collect();
    let mut rows = Vec::new();
    for scenario in &scenarios {
        for kind in Kind::ALL {
            let row = run(scenario, kind).await?;
            eprintln!(
                "{:<48} {:<16} 429s {:>5}  admitted {:>5} (+{})  utilisation {:>5.1} %  p99 {:?}",
                row.scenario,
                row.contender,
                row.rejected,
                row.admitted,
                row.co_consumed,
                100.0 * row.utilisation,
                row.p99
            );
            if let (n @ 1.., Some(e)) = &row.errors {
                eprintln!("  {n} requests failed; the first: {e}");
            }
            rows.push(row);
        }
    }
    print!("{}", table::markdown(&rows));
    Ok(())
}

/// One contender through one scenario, on a fresh server.
async fn run(scenario: &Scenario, kind: Kind) -> Result<Row, BoxError> {
    let clock = RunClock::starting_in(SETUP, scenario.align);
    let config = scenario
        .server
        .clone()
        .time_scale(scenario.scale)
        .clock(clock.clone());
    let server = Arc::new(TestServer::start(config).await?);
    let contender = kind.build(scenario, clock.clone(), server.base_url())?;
    let traffic = workload::drive(scenario, contender, server.clone(), &clock).await;
    let row = measure::row(scenario, kind.name(), &server, &clock, traffic);
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
    Ok(row)
}
