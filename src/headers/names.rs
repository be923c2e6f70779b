//! The header names read from every response, parsed once.
//!
//! A `HeaderMap` looked up by `&str` checks and lowercases the name on every
//! lookup; by `&HeaderName`, it only hashes it. The layer reads about fifteen
//! names per response: measured with callgrind on `benches/layer.rs`, parsing
//! them was 30 % of the instructions of a request through the layer.

use http::HeaderName;

macro_rules! names {
    ($($(#[$doc:meta])* $id:ident = $name:literal;)*) => {
        $($(#[$doc])* pub(crate) static $id: HeaderName = HeaderName::from_static($name);)*
    };
}

names! {
    X_RATELIMIT_LIMIT = "x-ratelimit-limit";
    X_RATE_LIMIT_LIMIT = "x-rate-limit-limit";
    X_RATELIMIT_USED = "x-ratelimit-used";
    X_RATE_LIMIT_USED = "x-rate-limit-used";
    X_RATELIMIT_REMAINING = "x-ratelimit-remaining";
    X_RATE_LIMIT_REMAINING = "x-rate-limit-remaining";
    X_RATELIMIT_RESET = "x-ratelimit-reset";
    X_RATE_LIMIT_RESET = "x-rate-limit-reset";
    X_RATELIMIT_RESET_AFTER = "x-ratelimit-reset-after";
    X_RATE_LIMIT_RESET_AFTER = "x-rate-limit-reset-after";
    /// The IETF draft's fields (07 on, and the older generation).
    RATELIMIT = "ratelimit";
    RATELIMIT_POLICY = "ratelimit-policy";
    RATELIMIT_LIMIT = "ratelimit-limit";
    RATELIMIT_REMAINING = "ratelimit-remaining";
    RATELIMIT_RESET = "ratelimit-reset";
}
