//! What one scenario is: a server, the limits every contender is told, the
//! workload, and which of the server's buckets the utilisation is measured on.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tower_quota::testkit::{BucketKey, Config, WindowKind};

use super::run_clock::RunClock;

/// `limit` requests per `length` of real time (after compression).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    /// Requests per window.
    pub limit: u32,
    /// The window's real length.
    pub length: Duration,
}

/// One bucket the server enforces, as every contender is told it.
#[derive(Clone, Debug)]
pub struct BucketSpec {
    /// Its windows, shortest first.
    pub windows: Vec<WindowSpec>,
}

/// One kind of task: the request it sends again and again, and the buckets
/// (indices into [`Scenario::buckets`]) the server charges it to.
#[derive(Clone, Debug)]
pub struct TaskSpec {
    /// The method.
    pub method: Method,
    /// The path; `{n}` is replaced by the request's number.
    pub path: String,
    /// Headers (credentials).
    pub headers: Vec<(&'static str, String)>,
    /// The buckets it is charged to.
    pub buckets: Vec<usize>,
}

/// Another client of the same allowance: in every period of `every`, it takes
/// `units` of `route` as `caller` would, one by one, each as soon as it fits.
#[derive(Clone, Debug)]
pub struct CoConsumer {
    /// How often it strikes.
    pub every: Duration,
    /// `(caller, route, units)` each time.
    pub takes: Vec<(&'static str, &'static str, u64)>,
}

/// How tower-quota is configured for a scenario.
pub type TowerQuotaSetup = fn(&Scenario, RunClock) -> Arc<tower_quota::Limiter<RunClock>>;

/// One scenario.
#[derive(Clone)]
pub struct Scenario {
    /// Its name in the table.
    pub name: &'static str,
    /// API seconds per real second.
    pub scale: f64,
    /// How long the traffic runs (real time).
    pub duration: Duration,
    /// The server, without clock and scale.
    pub server: Config,
    /// The limits every contender is configured with (real time).
    pub buckets: Vec<BucketSpec>,
    /// The tasks: one per entry.
    pub tasks: Vec<TaskSpec>,
    /// The server buckets whose allowance the utilisation is measured on.
    pub measured: Vec<BucketKey>,
    /// Another client of the same allowance, if any.
    pub co_consumer: Option<CoConsumer>,
    /// Added to every window of every contender (arrival jitter).
    pub margin: Duration,
    /// The run starts at a multiple of this since the epoch (fixed windows).
    pub align: Option<Duration>,
    /// tower-quota's configuration.
    pub tower_quota: TowerQuotaSetup,
}

impl Scenario {
    /// `api` in real time at this scenario's scale.
    pub fn real(&self, api: Duration) -> Duration {
        real(api, self.scale)
    }

    /// The most units the server's bucket `key` could admit in `[start, start +
    /// duration)`: for each window, its limit times the pieces of its length
    /// that cover the run (sliding) or the aligned windows the run touches
    /// (fixed, aligned to `epoch_offset`); the smallest over the windows.
    pub fn allowance(&self, key: &BucketKey, start_since_epoch: Duration) -> u64 {
        let Some(scope) = self.server.scopes().iter().find(|s| s.name == key.scope) else {
            return 0;
        };
        let run = self.duration.as_nanos();
        scope
            .windows_for(&key.route)
            .iter()
            .map(|w| {
                let length = self.real(w.per).as_nanos().max(1);
                let pieces = match w.kind {
                    WindowKind::Sliding => run.div_ceil(length),
                    WindowKind::Fixed => {
                        let start = start_since_epoch.as_nanos();
                        (start + run - 1) / length - start / length + 1
                    }
                };
                u64::try_from(pieces)
                    .unwrap_or(u64::MAX)
                    .saturating_mul(w.limit)
            })
            .min()
            .unwrap_or(0)
    }
}

/// An API duration in real time at `scale`, rounded like the testkit's server.
pub fn real(api: Duration, scale: f64) -> Duration {
    let nanos = (api.as_nanos() as f64 / scale).round();
    Duration::from_nanos(nanos.clamp(1.0, u64::MAX as f64) as u64)
}
