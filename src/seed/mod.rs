//! Seeds: what a server's usage endpoint says about limits and usage, read
//! into one model and applied to the engine's buckets.
//!
//! A client that starts cold knows only its configuration; another process, a
//! colleague's script or yesterday's batch may already have spent part of the
//! allowance, and the server's limits may differ from the configured ones. Two
//! of the servers this crate targets say so on request:
//!
//! | seed | endpoint | parser | gives |
//! | --- | --- | --- | --- |
//! | 000 | `POST /api/v1/usage_stats/api_usage_stats` (master key) | [`parse_crm_usage`] | per `controller#action`, named windows of limit, consumed, left over |
//! | 002 | `GET /rateLimit/usage` (`X-System`, `X-System-Key`) | [`parse_partner_usage`] | ceilings per scope and `METHOD.resource`, and a 24-hour summary |
//!
//! Both become a [`Seed`]: entries per route ([`SeedRoute`]) and scope
//! ([`SeedScope`]), each with [`SeedWindow`]s, plus seed 002's [`DaySummary`]
//! and the [`SeedWarning`]s the parser had to work around.
//! [`apply_to_bucket`] then applies an entry to a [`Bucket`](crate::ledger::Bucket).
//!
//! Why so defensive: seed 000's own example is cut short and contradicts
//! itself. The rules, in order of precedence:
//! 1. A body that is not one complete, well-shaped JSON document is a
//!    [`SeedError`]: nothing is applied, never a part of it.
//! 2. Contradictory figures are read conservatively,
//!    `remaining = min(left_over, limit - consumed)`, `used = limit - remaining`;
//!    so are a route, a window or a field given twice: the smallest limit and
//!    remaining, the largest count, the latest reset.
//! 3. A figure that cannot be a count, a window name the [`WindowNames`] table
//!    does not know, a route key that cannot be read: left out, with a warning
//!    (logged and kept in [`Seed::warnings`]). Leaving a figure out changes
//!    nothing, which is safe; guessing could loosen a limit.
//! 4. Applying only ever tightens, except for an explicit limit from the
//!    server, which replaces the configured one (DESIGN.md, contract 5).
//!
//! Parsers never see credentials (the caller fetches the body), so warnings
//! and errors cannot leak one (contract 7).
//!
//! ```
//! use std::time::Duration;
//! use tower_quota::clock::Nanos;
//! use tower_quota::ledger::Bucket;
//! use tower_quota::quota::{Limits, Quota};
//! use tower_quota::seed::{apply_to_bucket, parse_crm_usage, SeedError, SeedScope, WindowNames};
//!
//! let body = br#"{
//!   "[\"api/v1/people\", \"match\"]": {
//!     "hour": { "limit": 600, "consumed": 40, "left_over": 560 },
//!     "minute": { "limit": 100, "consumed": 7, "left_over": 93 }
//!   }
//! }"#;
//! let seed = parse_crm_usage(body, &WindowNames::standard())?;
//! let entry = seed.entry(SeedScope::Key, "api/v1/people#match").expect("listed");
//!
//! let bucket = Bucket::new(
//!     "api/v1/people#match",
//!     Limits::new([Quota::per_minute(200), Quota::per_hour(600)]),
//! );
//! let now = Nanos::from_secs(1);
//! let applied = apply_to_bucket(&bucket, &entry.windows, now, |_| None);
//! assert_eq!(applied.limits_changed.len(), 1); // the minute limit is now 100
//! assert_eq!(bucket.limit(0), Some(100));
//! assert_eq!(bucket.state(now).windows[1].used, 40);
//!
//! // The same body cut short is refused as a whole.
//! let cut = &body[..body.len() - 1];
//! assert!(matches!(
//!     parse_crm_usage(cut, &WindowNames::standard()),
//!     Err(SeedError::Truncated { .. })
//! ));
//! # Ok::<(), SeedError>(())
//! ```

mod apply;
mod crm;
mod endpoint;
mod error;
mod json;
mod model;
mod partner;
mod refresh_error;
mod refresher;
mod warning;
mod window_names;

#[cfg(test)]
mod tests_crm;
#[cfg(test)]
mod tests_partner;

pub use apply::{apply_to_bucket, Applied, LimitChange, RoundTrip, SkipReason, SkippedWindow};
pub use crm::parse_crm_usage;
pub use endpoint::{UsageEndpoint, UsageResponse};
pub use error::SeedError;
pub use json::BadCount;
pub use model::{DaySummary, Seed, SeedEntry, SeedRoute, SeedScope, SeedSource, SeedWindow};
pub use partner::{parse_partner_usage, PARTNER_DEFAULT_WINDOW};
pub use refresh_error::{BoxError, RefreshError};
pub use refresher::{
    RefreshHandle, RefreshOutcome, Refresher, RefresherStatus, DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MIN_INTERVAL, DEFAULT_TIMEOUT, MIN_TASK_INTERVAL,
};
pub use warning::{SeedWarning, WarningKind};
pub use window_names::WindowNames;
