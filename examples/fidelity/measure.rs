//! One row of the table: what the server recorded, and what the tasks saw.

use std::time::Duration;

use tower_quota::clock::{Clock, Nanos};
use tower_quota::testkit::{Outcome, TestServer};

use super::run_clock::RunClock;
use super::scenario::Scenario;
use super::workload::Traffic;

/// The figures of one contender in one scenario.
#[derive(Clone, Debug)]
pub struct Row {
    /// The scenario's name.
    pub scenario: &'static str,
    /// The contender's name.
    pub contender: &'static str,
    /// 429s the server answered, every attempt counted.
    pub rejected: u64,
    /// Requests the server admitted during the run.
    pub admitted: u64,
    /// Units the co-consumer took during the run.
    pub co_consumed: u64,
    /// Units admitted to the measured buckets (ours and the co-consumer's)
    /// over their allowance during the run.
    pub utilisation: f64,
    /// From the start of the run to the end of the last task.
    pub wall: Duration,
    /// Added latency, median.
    pub p50: Duration,
    /// Added latency, 99th percentile.
    pub p99: Duration,
    /// Requests that failed in transport (with the first error).
    pub errors: (u64, Option<String>),
}

/// The row of a finished run. The run is `[0, duration)` on `clock`.
pub fn row(
    scenario: &Scenario,
    contender: &'static str,
    server: &TestServer,
    clock: &RunClock,
    traffic: Traffic,
) -> Row {
    let end = Nanos::from_duration(scenario.duration);
    let events = server.recorder().events();
    let in_run = |at: Nanos| at < end;
    let rejected = events
        .iter()
        .filter(|e| e.outcome == Outcome::Rejected)
        .count() as u64;
    let admitted = events
        .iter()
        .filter(|e| e.outcome == Outcome::Admitted && in_run(e.at))
        .count() as u64;
    let co_consumed = events
        .iter()
        .filter(|e| e.outcome == Outcome::CoConsumed && in_run(e.at))
        .map(|e| e.cost)
        .sum();
    let start = clock
        .to_wall(Nanos::ZERO)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (mut used, mut allowance) = (0, 0);
    for key in &scenario.measured {
        allowance += scenario.allowance(key, start);
        used += events
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Admitted | Outcome::CoConsumed))
            .filter(|e| in_run(e.at) && e.buckets.contains(key))
            .map(|e| e.cost)
            .sum::<u64>();
    }
    let mut latencies = traffic.latencies;
    latencies.sort_unstable();
    Row {
        scenario: scenario.name,
        contender,
        rejected,
        admitted,
        co_consumed,
        utilisation: used as f64 / allowance.max(1) as f64,
        wall: traffic.wall,
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
        errors: (traffic.errors, traffic.first_error),
    }
}

/// The `p`-th percentile of sorted `values` (nearest rank); zero if empty.
fn percentile(values: &[Duration], p: usize) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = (values.len() * p).div_ceil(100).max(1);
    values[rank.min(values.len()) - 1]
}
