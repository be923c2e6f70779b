//! A hyper-util client behind the layer, against the embedded seed-004 server.
//!
//! `cargo run --example hyper --features testkit`

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_quota::headers::{HeaderRules, ResetUnit};
use tower_quota::quota::Quota;
use tower_quota::route::Templates;
use tower_quota::testkit::{Config, TestServer, DEFAULT_API_KEY};
use tower_quota::{Limiter, OtherRoutes, QuotaLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Seed 004, compressed 60x: a 60 s window lasts one second.
    let server = TestServer::start(Config::seed004().time_scale(60.0)).await?;
    let window = Duration::from_secs(1);
    let limiter = Limiter::builder()
        .routes(
            Templates::seed004(),
            |label| match label {
                "POST /v1/leads/add_to_campaign" => Quota::new(20, window).map(Into::into),
                _ => Quota::new(60, window).map(Into::into),
            },
            OtherRoutes::Each {
                limits: Quota::new(60, window)
                    .unwrap_or(Quota::per_second(1))
                    .into(),
                cap: 1000,
            },
        )
        .headers(HeaderRules::standard().reset_unit(ResetUnit::EpochMillis))
        .build();
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter))
        .service(client);

    let started = std::time::Instant::now();
    for i in 0..25 {
        let req = http::Request::post(server.url("/v1/leads/add_to_campaign"))
            .header("x-api-key", DEFAULT_API_KEY)
            .body(Empty::new())?;
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
