//! Contender (c): `tower::limit::RateLimit`. It counts one rate per service,
//! so each bucket gets one, at the rate of its shortest window (the one a
//! burst meets first); longer windows are out of its reach. A `RateLimit` is
//! not shared by clones, so each bucket's sits behind a mutex that every task
//! goes through; a request passes the `RateLimit` of each bucket it is charged
//! to, in turn (as stacked layers would), then goes out.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Mutex;
use tower::limit::rate::Rate;
use tower::limit::RateLimit;
use tower::{Service, ServiceExt};

use super::contender::{Answer, Contender};
use super::run_clock::RunClock;
use super::scenario::Scenario;
use super::want::{Upstream, Want};

/// The service a bucket's `RateLimit` wraps: the request goes out afterwards.
#[derive(Clone, Copy, Debug)]
pub struct Pass;

impl Service<()> for Pass {
    type Response = ();
    type Error = Infallible;
    type Future = Ready<Result<(), Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, (): ()) -> Self::Future {
        ready(Ok(()))
    }
}

/// One shared `RateLimit` per bucket.
pub struct TowerRateLimit {
    /// Per bucket of the scenario (none for a bucket without windows).
    gates: Vec<Option<Arc<Mutex<RateLimit<Pass>>>>>,
    upstream: Upstream,
}

impl TowerRateLimit {
    /// A `RateLimit` per bucket: its shortest window, lengthened by the margin.
    pub fn new(scenario: &Scenario, clock: RunClock, base: String) -> TowerRateLimit {
        let gates = scenario
            .buckets
            .iter()
            .map(|b| {
                let w = b.windows.iter().min_by_key(|w| w.length)?;
                let rate = Rate::new(u64::from(w.limit), w.length + scenario.margin);
                Some(Arc::new(Mutex::new(RateLimit::new(Pass, rate))))
            })
            .collect();
        TowerRateLimit {
            gates,
            upstream: Upstream::new(clock, base),
        }
    }
}

impl Contender for TowerRateLimit {
    fn send<'a>(&'a self, want: &'a Want) -> Answer<'a> {
        Box::pin(async move {
            for bucket in &want.task.buckets {
                if let Some(Some(gate)) = self.gates.get(*bucket) {
                    let mut gate = gate.lock().await;
                    gate.ready().await?.call(()).await?;
                }
            }
            Ok(self.upstream.attempt(want).await?.status())
        })
    }
}
