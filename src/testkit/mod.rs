//! A rate-limited HTTP/1.1 API server for tests (feature `testkit`).
//!
//! A client-side limiter is only as good as the server that proves it: this
//! module runs, inside a test, a real server on a free loopback port that
//! enforces limits the way the servers of the seed documents do, speaks their
//! dialects byte for byte, and records every decision so that a test can ask,
//! after a run, whether any window ever held more than its limit and how much of
//! the allowance was used. Use it to test your own clients against rate limits.
//!
//! - **Enforcement** ([`Config`], [`Scope`], [`Window`]): per-route buckets with
//!   one or more sliding or fixed windows, a default for routes that declare
//!   none, several scopes charged at once (all or nothing), costs per route. A
//!   429 charges nothing. The accounting is a brute-force list of timestamps per
//!   bucket behind one mutex: slow, and obviously right, because this server is
//!   the referee of the crate's engine and shares no code with it.
//! - **Dialects** ([`Dialect`]): seed 004 (`x-api-key`, `X-RateLimit-*` with
//!   reset in Unix milliseconds, `Retry-After`), seed 002 (`X-System`,
//!   `METHOD.resource` routes, global and per-account scopes,
//!   `GET /rateLimit/usage`), seed 000 (`X-Api-Key`, Rails controller/action
//!   routes with minute/hour/day limits, the usage-stats endpoint). Each
//!   variant of [`Dialect`] says exactly what the server does where its
//!   document is silent.
//! - **Recording** ([`Recorder`], [`Stats`]): every decision as an [`Event`];
//!   per bucket the largest count seen in any window and the utilisation of the
//!   allowance (defined on [`Stats`]).
//! - **Time**: the server reads an injectable [`Clock`](crate::clock::Clock)
//!   (drive it with a [`ManualClock`](crate::clock::ManualClock) and tests never
//!   sleep); [`Config::time_scale`] compresses API time (60: a minute lasts a
//!   second) while every value the server prints stays real wall-clock time.
//! - **Disturbances**: [`TestServer::set_latency`] delays responses so they come
//!   back out of order, [`TestServer::set_fault`] lets a share of requests skip
//!   the limiter without headers, [`TestServer::consume`] takes part of an
//!   allowance as another client would.
//!
//! Header names go out lowercase (`x-ratelimit-limit`), as hyper writes them;
//! HTTP header names are case-insensitive.
//!
//! # Example
//!
//! ```
//! use tower_quota::clock::ManualClock;
//! use tower_quota::testkit::{Config, TestServer, DEFAULT_API_KEY};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let clock = ManualClock::new();
//! let server = TestServer::start(Config::seed004().clock(clock.clone())).await?;
//!
//! let response = server
//!     .client()
//!     .get("/v1/campaigns/42", &[("x-api-key", DEFAULT_API_KEY)])
//!     .await?;
//! assert_eq!(response.status, 200);
//! assert_eq!(response.header("x-ratelimit-limit"), Some("120"));
//! assert_eq!(response.header("x-ratelimit-remaining"), Some("119"));
//! // The window resets 60 s after the request, on the clock's wall timeline.
//! assert_eq!(response.header("x-ratelimit-reset"), Some("86460000"));
//!
//! let stats = server.stats();
//! let bucket = stats
//!     .bucket("api_key", Some("default"), "GET /v1/campaigns/:id")
//!     .expect("charged");
//! assert_eq!(bucket.max_in_any_window(), 1);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod client;
mod config;
mod credentials;
mod crm_table;
mod dialect;
mod dialect_campaign;
mod dialect_crm;
mod dialect_partner;
mod handler;
mod limiter;
mod limits;
mod record;
mod server;
mod time;

pub use client::{ClientError, TestClient, TestResponse};
pub use config::Config;
pub use credentials::{
    Credential, Role, DEFAULT_API_KEY, DEFAULT_SYSTEM, DEFAULT_SYSTEM_KEY, MASTER_API_KEY,
};
pub use dialect::Dialect;
pub use limits::{BucketKey, Scope, ScopeBy, Window, WindowKind};
pub use record::{BucketStats, Event, Outcome, Recorder, Stats, WindowStats};
pub use server::TestServer;
