//! The de-facto `X-RateLimit-*` family (seed 004, GitHub, Twitter and most REST
//! APIs): one anonymous window per response.
//!
//! Read: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (in the
//! configured [`ResetUnit`], [`ResetUnit::Auto`] unless told), the `X-Rate-Limit-*`
//! spelling of the same three, `X-RateLimit-Reset-After` (delay seconds, Discord)
//! and `X-RateLimit-Used` (GitHub; gives `remaining = limit - used` when no
//! remaining is sent). Repeated headers or comma-folded values keep the smallest
//! limit and remaining and the latest reset.

use std::time::SystemTime;

use http::{HeaderMap, HeaderName};

use super::names::{
    X_RATELIMIT_LIMIT, X_RATELIMIT_REMAINING, X_RATELIMIT_RESET, X_RATELIMIT_RESET_AFTER,
    X_RATELIMIT_USED, X_RATE_LIMIT_LIMIT, X_RATE_LIMIT_REMAINING, X_RATE_LIMIT_RESET,
    X_RATE_LIMIT_RESET_AFTER, X_RATE_LIMIT_USED,
};
use super::observation::{ResetAt, WindowObservation};
use super::reset::ResetUnit;
use super::text::{count, elements, seconds, values};

/// The `X-RateLimit-*` window, if any of its headers was usable.
pub(crate) fn read(
    headers: &HeaderMap,
    unit: ResetUnit,
    received_at: SystemTime,
    server_now: SystemTime,
) -> Option<WindowObservation> {
    // Counts may be comma-folded by a proxy; resets not (an HTTP-date has a comma).
    let counts = |names: [&'static HeaderName; 2]| {
        names
            .into_iter()
            .flat_map(|n| elements(headers, n))
            .filter_map(count)
    };
    let texts =
        |names: [&'static HeaderName; 2]| names.into_iter().flat_map(|n| values(headers, n));
    let limit = counts([&X_RATELIMIT_LIMIT, &X_RATE_LIMIT_LIMIT]).min();
    let used = counts([&X_RATELIMIT_USED, &X_RATE_LIMIT_USED]).max();
    let remaining = counts([&X_RATELIMIT_REMAINING, &X_RATE_LIMIT_REMAINING])
        .min()
        .or_else(|| Some(limit?.saturating_sub(used?)));
    let reset = texts([&X_RATELIMIT_RESET, &X_RATE_LIMIT_RESET])
        .filter_map(|v| unit.read(v, received_at))
        .chain(
            texts([&X_RATELIMIT_RESET_AFTER, &X_RATE_LIMIT_RESET_AFTER])
                .filter_map(|v| seconds(v).map(ResetAt::After)),
        )
        .reduce(|a, b| a.latest(b, server_now));
    let w = WindowObservation {
        limit,
        remaining,
        reset,
        ..WindowObservation::default()
    };
    (!w.is_empty()).then_some(w)
}
