//! Contender (a): tower-quota's layer over the client.

use tower::{Service, ServiceBuilder, ServiceExt};
use tower_quota::{QuotaLayer, QuotaService};

use super::contender::{Answer, Contender};
use super::run_clock::RunClock;
use super::scenario::Scenario;
use super::want::{finish, StampedClient, Want};

/// `QuotaLayer` over the stamped client, configured by the scenario.
pub struct TowerQuota {
    svc: QuotaService<StampedClient, RunClock>,
    base: String,
}

impl TowerQuota {
    /// The layer with the scenario's tower-quota configuration.
    pub fn new(scenario: &Scenario, clock: RunClock, base: String) -> TowerQuota {
        let limiter = (scenario.tower_quota)(scenario, clock.clone());
        let svc = ServiceBuilder::new()
            .layer(QuotaLayer::new(limiter))
            .service(StampedClient::new(clock));
        TowerQuota { svc, base }
    }
}

impl Contender for TowerQuota {
    fn send<'a>(&'a self, want: &'a Want) -> Answer<'a> {
        Box::pin(async move {
            let mut svc = self.svc.clone();
            let request = want.request(&self.base)?;
            let response = svc.ready().await?.call(request).await?;
            Ok(finish(response).await?.status())
        })
    }
}
