//! The seed documents a server can imitate, and exactly how it does where a
//! document is silent.

/// Which seed document the server imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Seed 004, the campaign API.
    ///
    /// - Authentication: `x-api-key`; a missing or unknown key gets 401 and counts
    ///   against nothing.
    /// - Routes: templates `METHOD /path/:param` from the configuration, matched
    ///   segment by segment (the template with the most literal segments wins, so
    ///   `GET /v1/users/me` beats `GET /v1/users/:id`). A request matching no
    ///   template is its own route, `METHOD /literal/path`, under the default limit
    ///   (60 per 60 s per API key in [`Config::seed004`](crate::testkit::Config::seed004)).
    /// - Headers, on 2xx and 429 whenever the limiter ran: `X-RateLimit-Limit`,
    ///   `X-RateLimit-Remaining` (after this request), `X-RateLimit-Reset` (Unix
    ///   milliseconds, rounded up: when the oldest counted request leaves the
    ///   window, or on a 429 when this request would have fitted). On 429 also
    ///   `Retry-After` in whole seconds, rounded up. Under the fault switch a
    ///   request is served with none of them.
    /// - Bodies: `{"route":"<template>"}` on 200, NestJS-style
    ///   `{"statusCode":429,"message":"Too Many Requests"}` errors.
    Campaign,
    /// Seed 002, the partner API.
    ///
    /// - Authentication on every request: a per-account user key in `X-Api-Key`
    ///   (the document's "user API key"; it does not name the header), missing or
    ///   unknown → 401; then `X-System` (a registered system's name) with its
    ///   `X-System-Key`, missing or wrong → 403 ("only registered systems").
    ///   Rejected credentials count against nothing.
    /// - Routes: `METHOD.resource`, the resource being the first path segment
    ///   (`GET /people/42` → `GET.people`); `/` → 404.
    /// - Limits: two scopes, both must pass: `across_all_accounts` (one bucket per
    ///   route for everyone) and `per_account` (one per account and route), each a
    ///   `default` plus per-route overrides, per sliding 60 s in
    ///   [`Config::seed002`](crate::testkit::Config::seed002). Each route without an
    ///   override has its own bucket at the default ceiling.
    /// - Headers: the document mentions per-response `X-RateLimit-...` headers
    ///   without defining them; this server sends seed 004's set for the binding
    ///   window of either scope, and `Retry-After` on 429.
    /// - `GET /rateLimit/usage` (same authentication, not itself metered or
    ///   counted): the document's JSON, byte for byte in its layout, for the
    ///   calling system, cached per system for 30 s of API time (identical bytes).
    ///   The 24 hours are the current wall-clock hour and the 23 before it (hours of
    ///   API time under compression, labelled with their real wall-clock start);
    ///   `total_requests` counts the system's admitted, 429 and unmetered requests,
    ///   `rate_limited_requests` its 429s; `rate_limit_percentage` is rounded to two
    ///   decimals and `0` without traffic; `peak_hour` is the busiest hour (the
    ///   earliest on a tie) or `null`. `current_limits` shows each scope's first
    ///   window limit, `default` first.
    Partner,
    /// Seed 000, the CRM.
    ///
    /// - Authentication: `X-Api-Key`; missing or unknown → 401.
    /// - Routes: Rails `controller#action` pairs, found the way Rails routes
    ///   resources. The controller is the longest configured controller path that
    ///   prefixes the request path (else `api/v1/<first segment>`; paths outside
    ///   `/api/v1/` get 404). What follows decides the action: nothing → `index`
    ///   (GET) or `create` (POST); one segment that is a configured action of the
    ///   controller → that action (`POST /api/v1/contacts/search` → `search`); one
    ///   other segment → an id: `show` (GET), `update` (PUT, PATCH), `destroy`
    ///   (DELETE); an id and a segment → that member action
    ///   (`GET /api/v1/organizations/5/job_postings` → `job_postings`). Anything
    ///   else is 404. Pairs outside the configuration are unlimited.
    /// - Limits: the team shares every bucket (all keys count together).
    /// - Headers, on 2xx and 429: one limit/remaining pair per window of the route,
    ///   shortest window first: `x-rate-limit-minute` / `x-minute-requests-left`,
    ///   `x-rate-limit-hourly` / `x-hourly-requests-left`, `x-rate-limit-24-hour` /
    ///   `x-24-hour-requests-left` (other lengths: `x-rate-limit-<n>s` /
    ///   `x-<n>s-requests-left`). The document shows no headers; these follow the
    ///   vendor's style. Its 429 carries no `Retry-After`, and neither does this one.
    /// - `POST /api/v1/usage_stats/api_usage_stats` (not itself metered): master key
    ///   only (another valid key → 403), every configured route key in configuration
    ///   order as `"[\"api/v1/contacts\", \"search\"]"`, each with `day`, `hour`,
    ///   `minute` objects (longest window first) of `limit`, `consumed` (units in the
    ///   current window, live) and `left_over` (`limit - consumed`), laid out like
    ///   the document (two-space indentation).
    Crm,
}
