//! Helpers shared by the layer's in-process tests.

use std::sync::Arc;
use std::time::Duration;

use http::Request;
use tower_quota::clock::TokioClock;
use tower_quota::ledger::MaxWait;
use tower_quota::quota::{Limits, Quota};
use tower_quota::route::Templates;
use tower_quota::scope::KeySource;
use tower_quota::{Limiter, LimiterBuilder, OtherRoutes};

/// An API key the tests check never shows up anywhere.
pub const SECRET: &str = "sk_live_very_secret_key";

/// A builder with one route, `GET /v1/campaigns/:id`, limited by `limits`,
/// other routes unlimited, on `clock`.
pub fn one_route(clock: TokioClock, limits: impl Into<Limits>) -> LimiterBuilder<TokioClock> {
    let routes =
        Templates::from_routes([("GET", "/v1/campaigns/:id")]).unwrap_or_else(|e| panic!("{e}"));
    let limits = limits.into();
    Limiter::builder().clock(clock).routes(
        routes,
        move |_| Some(limits.clone()),
        OtherRoutes::Unlimited,
    )
}

/// That route at `per_second`, plus an API-key scope.
pub fn limiter(clock: TokioClock, per_second: u32) -> Arc<Limiter<TokioClock>> {
    one_route(clock, Quota::per_second(per_second))
        .per_api_key(KeySource::header("x-api-key"), Quota::per_second(1000), 10)
        .max_wait(MaxWait::Forever)
        .margin(Duration::ZERO)
        .build()
}

/// A request to that route, with the API key.
pub fn request() -> Request<()> {
    Request::get("http://api.example.com/v1/campaigns/7")
        .header("x-api-key", SECRET)
        .body(())
        .unwrap_or_default()
}

/// An inner service's answer: `429` with `Retry-After: 2`, `after` from now
/// (tokio time), if `limited`; else `200` at once.
pub async fn answer(
    limited: bool,
    after: std::time::Duration,
) -> Result<http::Response<()>, std::convert::Infallible> {
    let resp = if limited {
        tokio::time::sleep(after).await;
        http::Response::builder()
            .status(429)
            .header("retry-after", "2")
            .body(())
    } else {
        http::Response::builder().status(200).body(())
    };
    Ok(resp.unwrap_or_default())
}
