//! Rate-limit headers, in every format servers use, read into one [`Observation`].
//!
//! The server is the authority on its limits (contract 5 in `DESIGN.md`): every
//! response that carries rate-limit headers tells the client how much is left and
//! when it comes back. But there is no single format. Seed 004 sends
//! `X-RateLimit-*` with its reset in Unix milliseconds; others send seconds, a
//! delay, a Go duration or a date; the IETF draft has gone through two
//! generations of fields; seed 000's CRM has a header pair per window under its
//! own names. This module reads all of them into one [`Observation`], so the rest
//! of the crate deals with one shape.
//!
//! Headers are untrusted input. Reading them never panics and allocates only
//! within fixed bounds; malformed, negative, overflowing, absurd or contradictory
//! values are treated as absent or resolved to the conservative side (a remaining
//! count above the limit is the limit; repeated headers keep the smallest count
//! and the latest reset). An absent header is never a reason to relax anything.
//!
//! - [`HeaderRules`] says which formats to read ([`HeaderRules::standard`], plus
//!   declared [`VendorSet`]s), [`HostRules`] picks rules per host;
//! - [`ResetUnit`] says how a reset value is written, or guesses it;
//! - [`Observation`], [`WindowObservation`] and [`ResetAt`] are what comes out.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use http::HeaderMap;
//! use tower_quota::headers::{HeaderRules, VendorSet};
//!
//! // Seed 000's CRM: a limit/remaining pair per window.
//! let rules = HeaderRules::standard()
//!     .vendor(VendorSet::new("minute", "x-rate-limit-minute", "x-minute-requests-left")
//!         .window(Duration::from_secs(60)))
//!     .vendor(VendorSet::new("hour", "x-rate-limit-hourly", "x-hourly-requests-left")
//!         .window(Duration::from_secs(3600)));
//! let mut headers = HeaderMap::new();
//! headers.insert("x-rate-limit-minute", "200".parse().unwrap());
//! headers.insert("x-minute-requests-left", "199".parse().unwrap());
//! headers.insert("x-rate-limit-hourly", "600".parse().unwrap());
//! headers.insert("x-hourly-requests-left", "NaN".parse().unwrap());
//!
//! let seen = rules.parse(&headers, SystemTime::now());
//! assert_eq!(seen.windows.len(), 2);
//! assert_eq!(seen.windows[0].name.as_deref(), Some("minute"));
//! assert_eq!(seen.windows[0].remaining, Some(199));
//! assert_eq!(seen.windows[1].limit, Some(600));
//! assert_eq!(seen.windows[1].remaining, None, "malformed is absent");
//! ```

mod ietf;
mod names;
mod observation;
mod reset;
mod rules;
mod structured;
mod text;
mod vendor;
mod x_ratelimit;

pub use observation::{Observation, ResetAt, WindowObservation};
pub use reset::ResetUnit;
pub use rules::{HeaderRules, HostRules};
pub use vendor::VendorSet;

#[cfg(test)]
mod tests;
