//! Contender (b): `governor`, configured as its users do for a server with
//! several windows: one direct rate limiter per window of every bucket, each
//! `Quota::with_period(window / limit).allow_burst(limit)` (what
//! `Quota::per_minute(limit)` means for a one-minute window), awaited one
//! after the other with `until_ready`.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::contender::{Answer, Contender};
use super::run_clock::RunClock;
use super::scenario::Scenario;
use super::want::{BoxError, Upstream, Want};

/// One governor limiter per window of every bucket.
pub struct Governor {
    limiters: Vec<Vec<DefaultDirectRateLimiter>>,
    upstream: Upstream,
}

impl Governor {
    /// Limiters for the scenario's buckets, windows lengthened by its margin.
    ///
    /// # Errors
    ///
    /// A zero limit or window.
    pub fn new(scenario: &Scenario, clock: RunClock, base: String) -> Result<Governor, BoxError> {
        let mut limiters = Vec::new();
        for bucket in &scenario.buckets {
            let mut per_window = Vec::new();
            for w in &bucket.windows {
                let limit = NonZeroU32::new(w.limit).ok_or("a zero limit")?;
                let period = (w.length + scenario.margin) / w.limit;
                let quota = Quota::with_period(period).ok_or("a zero window")?;
                per_window.push(RateLimiter::direct(quota.allow_burst(limit)));
            }
            limiters.push(per_window);
        }
        Ok(Governor {
            limiters,
            upstream: Upstream::new(clock, base),
        })
    }
}

impl Contender for Governor {
    fn send<'a>(&'a self, want: &'a Want) -> Answer<'a> {
        Box::pin(async move {
            for bucket in &want.task.buckets {
                for limiter in self.limiters.get(*bucket).into_iter().flatten() {
                    limiter.until_ready().await;
                }
            }
            Ok(self.upstream.attempt(want).await?.status())
        })
    }
}
