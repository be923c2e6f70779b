//! # tower-quota
//!
//! Client-side rate limiting for HTTP clients that must stay inside the limits of
//! the APIs they call: per route, per account and per API key, over every window
//! the server enforces, while still using the whole allowance.
//!
//! The crate is built in layers (see `DESIGN.md`):
//! - [`clock`]: monotonic time, a manual clock for tests, wall-clock conversion;
//! - [`quota`]: limits per window, sliding or fixed, several per bucket;
//! - [`ledger`]: the accounting engine, exact and lock-free;
//! - [`route`], [`scope`], [`headers`]: what a request is charged to, and what a
//!   response says about the server's limits;
//! - [`store`]: one allowance shared by many processes ([`store::MemoryStore`],
//!   and `RedisStore` with the `redis` feature);
//! - [`Limiter`], [`QuotaLayer`], [`QuotaService`]: the tower layer;
//! - [`seed`], [`credits`], [`report`], [`retry`]: usage endpoints, credit
//!   budgets, usage reports and a retry policy that honours `Retry-After`;
//! - `testkit` (feature `testkit`): a rate-limited API server for tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
mod correction;
pub mod credits;
mod error;
mod future;
pub mod headers;
mod layer;
pub mod ledger;
mod limiter;
pub mod message;
pub mod metrics;
pub mod quota;
pub mod report;
pub mod retry;
pub mod route;
pub mod scope;
pub mod seed;
mod seeding;
mod service;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::Error;
pub use future::ResponseFuture;
pub use layer::QuotaLayer;
pub use limiter::{Limiter, LimiterBuilder, OtherRoutes, Target};
pub use seeding::{
    AppliedSeedEntry, SeedReport, SeedSkip, SeedTarget, SkippedSeedEntry, MAX_REPORTED_ROUTES,
};
pub use service::QuotaService;
