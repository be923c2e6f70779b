//! Driving a run: every task sends, one request after the other, as fast as
//! its contender lets it, from the clock's origin until the run's end; the
//! co-consumer strikes at the start of each of its periods.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tokio::time::{sleep_until, timeout_at, Instant};
use tower_quota::testkit::TestServer;

use super::contender::Contender;
use super::run_clock::RunClock;
use super::scenario::{CoConsumer, Scenario};
use super::want::Want;

/// What the tasks saw.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Added latency of every answered request (see `want.rs`).
    pub latencies: Vec<Duration>,
    /// Final answers received.
    pub answered: u64,
    /// Final answers that were 429.
    pub limited: u64,
    /// Requests that failed in transport.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// From the origin to the last task's end.
    pub wall: Duration,
}

impl Traffic {
    fn merge(&mut self, other: Traffic) {
        self.latencies.extend(other.latencies);
        self.answered += other.answered;
        self.limited += other.limited;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Runs `scenario`'s tasks through `contender` against `server`. A request
/// still waiting or in flight when the run ends is abandoned (dropping it
/// gives a limiter's reservation back).
pub async fn drive(
    scenario: &Scenario,
    contender: Arc<dyn Contender>,
    server: Arc<TestServer>,
    clock: &RunClock,
) -> Traffic {
    let end = clock.origin() + scenario.duration;
    let co_consumer = scenario
        .co_consumer
        .clone()
        .map(|co| tokio::spawn(co_consume(co, server.clone(), clock.origin(), end)));
    let tasks: Vec<_> = scenario
        .tasks
        .iter()
        .map(|spec| {
            let (spec, contender, clock) =
                (Arc::new(spec.clone()), contender.clone(), clock.clone());
            tokio::spawn(async move {
                sleep_until(clock.origin()).await;
                let mut seen = Traffic::default();
                let mut n = 0;
                while Instant::now() < end {
                    n += 1;
                    let want = Want::new(spec.clone(), n, &clock);
                    let Ok(answer) = timeout_at(end, contender.send(&want)).await else {
                        break;
                    };
                    match answer {
                        Ok(status) => {
                            seen.answered += 1;
                            seen.limited += u64::from(status == StatusCode::TOO_MANY_REQUESTS);
                            seen.latencies.extend(want.added_latency());
                        }
                        Err(e) => {
                            seen.errors += 1;
                            seen.first_error.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
                seen
            })
        })
        .collect();
    let mut traffic = Traffic::default();
    for task in tasks {
        match task.await {
            Ok(seen) => traffic.merge(seen),
            Err(e) => {
                traffic.errors += 1;
                traffic.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    traffic.wall = Instant::now().saturating_duration_since(clock.origin());
    if let Some(co) = co_consumer {
        let _ = co.await;
    }
    traffic
}

/// The other client: from `origin + k * every`, takes its units one by one,
/// each as soon as it fits (trying again every millisecond), until it has them
/// all or the next period begins.
async fn co_consume(co: CoConsumer, server: Arc<TestServer>, origin: Instant, end: Instant) {
    let mut start = origin;
    while start < end {
        sleep_until(start).await;
        let next = (start + co.every).min(end);
        let mut wanted: Vec<(&str, &str, u64)> = co.takes.clone();
        while Instant::now() < next && wanted.iter().any(|w| w.2 > 0) {
            for (caller, route, units) in &mut wanted {
                while *units > 0 && server.consume(caller, route, 1) {
                    *units -= 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        start = next;
    }
}
