//! Contender (d): no limiter; a 429 is retried after the wait the server
//! asks for, until the run ends.
//!
//! The wait, most precise first: `X-RateLimit-Reset` (Unix milliseconds: when
//! the request would have fitted, seeds 004 and 002), else `Retry-After`
//! (whole seconds), else full-jitter exponential backoff, a uniform delay in
//! `[0, min(cap, base * 2^n))`. `Retry-After` alone would be unfair under
//! compression: its one-second granularity is two windows at 120x. The
//! backoff is `RetryPolicy::new()`'s (1 s doubling up to 32 s), compressed
//! like the server's time. The crate's `RetryPolicy` prefers `Retry-After`;
//! this loop differs only in that order.

use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};
use tower_quota::clock::Clock;

use super::contender::{Answer, Contender};
use super::run_clock::RunClock;
use super::scenario::Scenario;
use super::want::{Upstream, Want};

/// The client alone, and a loop around it.
pub struct RetryOn429 {
    upstream: Upstream,
    clock: RunClock,
    backoff: (Duration, Duration),
}

impl RetryOn429 {
    /// Backoff from 1 s to 32 s of API time, at the scenario's scale.
    pub fn new(scenario: &Scenario, clock: RunClock, base: String) -> RetryOn429 {
        RetryOn429 {
            upstream: Upstream::new(clock.clone(), base),
            clock,
            backoff: (
                scenario.real(Duration::from_secs(1)),
                scenario.real(Duration::from_secs(32)),
            ),
        }
    }

    /// How long to wait after the `retry`-th 429 (counted from 0).
    fn delay(&self, headers: &HeaderMap, retry: u32) -> Duration {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(ms) = text("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok()) {
            let reset = UNIX_EPOCH + Duration::from_millis(ms);
            let now = self.clock.to_wall(self.clock.now());
            return reset.duration_since(now).unwrap_or(Duration::ZERO);
        }
        if let Some(secs) = text("retry-after").and_then(|v| v.parse::<u64>().ok()) {
            return Duration::from_secs(secs);
        }
        let (base, cap) = self.backoff;
        let ceiling = base.saturating_mul(1 << retry.min(16)).min(cap);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..nanos.max(1)))
    }
}

impl Contender for RetryOn429 {
    fn send<'a>(&'a self, want: &'a Want) -> Answer<'a> {
        Box::pin(async move {
            let mut retry = 0;
            loop {
                let response = self.upstream.attempt(want).await?;
                if response.status() != StatusCode::TOO_MANY_REQUESTS {
                    return Ok(response.status());
                }
                tokio::time::sleep(self.delay(response.headers(), retry)).await;
                retry += 1;
            }
        })
    }
}
