//! A contender: something that takes a wanted request and gets it answered,
//! pacing it (or not) on the way. The four of the benchmark, and how to build
//! each for a scenario.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::StatusCode;

use super::run_clock::RunClock;
use super::scenario::Scenario;
use super::want::{BoxError, Want};
use super::{with_governor, with_rate_limit, with_retry, with_tower_quota};

/// The answer to a wanted request, when it comes.
pub type Answer<'a> = Pin<Box<dyn Future<Output = Result<StatusCode, BoxError>> + Send + 'a>>;

/// Sends wanted requests to the server through some limiter (or none).
pub trait Contender: Send + Sync {
    /// Sends `want` (waiting first if the limiter says so) and returns the
    /// final status.
    fn send<'a>(&'a self, want: &'a Want) -> Answer<'a>;
}

/// The contenders of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `QuotaLayer` over the client.
    TowerQuota,
    /// One `governor` limiter per window, awaited in turn.
    Governor,
    /// One `tower::limit::RateLimit` per bucket, at its shortest window.
    RateLimit,
    /// No limiter: retry 429s after the wait the server asks for.
    RetryOn429,
}

impl Kind {
    /// All of them, in table order.
    pub const ALL: [Kind; 4] = [
        Kind::TowerQuota,
        Kind::Governor,
        Kind::RateLimit,
        Kind::RetryOn429,
    ];

    /// The name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Kind::TowerQuota => "tower-quota",
            Kind::Governor => "governor",
            Kind::RateLimit => "tower RateLimit",
            Kind::RetryOn429 => "retry on 429",
        }
    }

    /// This contender, configured for `scenario`, sending to `base`.
    ///
    /// # Errors
    ///
    /// A limit the contender cannot express (a zero limit or window).
    pub fn build(
        self,
        scenario: &Scenario,
        clock: RunClock,
        base: String,
    ) -> Result<Arc<dyn Contender>, BoxError> {
        Ok(match self {
            Kind::TowerQuota => Arc::new(with_tower_quota::TowerQuota::new(scenario, clock, base)),
            Kind::Governor => Arc::new(with_governor::Governor::new(scenario, clock, base)?),
            Kind::RateLimit => {
                Arc::new(with_rate_limit::TowerRateLimit::new(scenario, clock, base))
            }
            Kind::RetryOn429 => Arc::new(with_retry::RetryOn429::new(scenario, clock, base)),
        })
    }
}
