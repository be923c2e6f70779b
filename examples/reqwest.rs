//! A `reqwest::Client` behind the layer (it is a `tower::Service<reqwest::Request>`),
//! against the embedded seed-004 server.
//!
//! `cargo run --example reqwest --features testkit,reqwest`

use std::time::Duration;

use tower::{Service, ServiceBuilder, ServiceExt};
use tower_quota::headers::{HeaderRules, ResetUnit};
use tower_quota::quota::Quota;
use tower_quota::route::Templates;
use tower_quota::testkit::{Config, TestServer, DEFAULT_API_KEY};
use tower_quota::{Limiter, OtherRoutes, QuotaLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let server = TestServer::start(Config::seed004().time_scale(60.0)).await?;
    let window = Duration::from_secs(1);
    let limiter = Limiter::builder()
        .routes(
            Templates::seed004(),
            |label| match label {
                "GET /v1/analytics" => Quota::new(30, window).map(Into::into),
                _ => Quota::new(60, window).map(Into::into),
            },
            OtherRoutes::Shared(
                Quota::new(60, window)
                    .unwrap_or(Quota::per_second(1))
                    .into(),
            ),
        )
        .headers(HeaderRules::standard().reset_unit(ResetUnit::EpochMillis))
        .build();
    let client = reqwest::Client::new();
    let mut svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter))
        .service(client.clone());

    let started = std::time::Instant::now();
    for i in 0..35 {
        let req = client
            .get(server.url("/v1/analytics"))
            .header("x-api-key", DEFAULT_API_KEY)
            .build()?;
        let resp = svc.ready().await?.call(req).await?;
        println!(
            "{i:>2} {:>7.3}s {}",
            started.elapsed().as_secs_f64(),
            resp.status()
        );
    }
    println!("429s received: {}", server.stats().rejected);
    server.shutdown().await;
    Ok(())
}
