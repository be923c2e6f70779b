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
//! - `testkit` (feature `testkit`): a rate-limited API server for tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod ledger;
pub mod quota;
#[cfg(feature = "testkit")]
pub mod testkit;
