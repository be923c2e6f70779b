//! Seed 002: the partner API's `GET /rateLimit/usage`.
//!
//! The body gives the calling system's last 24 hours (`total_requests`,
//! `rate_limited_requests`, `rate_limit_percentage`, `peak_hour`) and its
//! current ceilings in two scopes, `across_all_accounts` ([`SeedScope::Global`])
//! and `per_account` ([`SeedScope::PerAccount`]), each a `default` catch-all
//! plus per-route overrides keyed `METHOD.resource` (`GET.people`).
//!
//! The document names no window for the ceilings and gives no usage per
//! route, so the window is configured (60 s unless the partner says
//! otherwise) and every [`SeedWindow`] has `used: None`: this seed can set
//! limits but not raise counts.
//!
//! Rules, as for seed 000: a body that is not complete JSON, or lacks
//! `usage.current_limits`, is an error; a key given twice is read twice
//! (two `current_limits` both count, a route's smallest ceiling wins, the
//! summary keeps the largest counts); an unknown scope, an empty route key or
//! a limit that is not a count (negative, fractional, a string, beyond `u32`)
//! is left out with a warning; a malformed summary field leaves the summary
//! out with a warning, and the limits still count. The server caches the body
//! for 30 s: poll it at most once a minute.

use std::time::Duration;

use super::error::SeedError;
use super::json::{self, Json, Tightest};
use super::model::{
    DaySummary, EntryIndex, Seed, SeedEntry, SeedRoute, SeedScope, SeedSource, SeedWindow,
};
use super::warning::WarningKind;

/// The window of seed 002's ceilings when the partner does not say: one minute.
pub const PARTNER_DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// The name given to the configured window in the seed.
const CONFIGURED: &str = "configured";

/// Reads a seed 002 usage body; its ceilings are per `window`
/// ([`PARTNER_DEFAULT_WINDOW`] unless the partner says otherwise).
///
/// # Errors
///
/// [`SeedError::ZeroWindow`] for a zero `window`; [`SeedError::Truncated`] or
/// [`SeedError::NotJson`] for a body that is not one complete JSON document;
/// [`SeedError::UnexpectedShape`] without an object at `usage.current_limits`;
/// [`SeedError::NoFigures`] when neither a limit nor the summary could be read.
///
/// ```
/// use tower_quota::seed::{parse_partner_usage, SeedScope, PARTNER_DEFAULT_WINDOW};
///
/// let body = br#"{"system": "your-system", "period": "last_24h", "usage": {
///   "total_requests": 1247, "rate_limited_requests": 23, "rate_limit_percentage": 1.84,
///   "peak_hour": "2026-05-19T14:00:00Z",
///   "current_limits": { "per_account": { "default": 25 } } } }"#;
/// let seed = parse_partner_usage(body, PARTNER_DEFAULT_WINDOW)?;
/// assert_eq!(seed.entry(SeedScope::PerAccount, "default").map(|e| e.windows[0].limit), Some(25));
/// assert_eq!(seed.summary.map(|s| s.rate_limited_requests), Some(23));
/// # Ok::<(), tower_quota::seed::SeedError>(())
/// ```
pub fn parse_partner_usage(body: &[u8], window: Duration) -> Result<Seed, SeedError> {
    if window.is_zero() {
        return Err(SeedError::ZeroWindow);
    }
    let root = json::parse(body)?;
    object_at(&root, "(the whole body)")?;
    // Every `usage`, and every `current_limits` in each: a key given twice is
    // read twice, and the routes' figures merge, the tighter winning.
    let usages = objects_at(&root, "usage", "usage")?;
    let mut limits = Vec::new();
    for usage in &usages {
        limits.extend(objects_at(usage, "current_limits", "usage.current_limits")?);
    }
    let mut seed = Seed::new(SeedSource::PartnerUsage);
    let mut index = EntryIndex::default();
    seed.summary = summary(&root, &usages, &mut seed);
    for (scope_name, routes) in limits.iter().flat_map(|l| l.pairs()) {
        let scope = match scope_name.as_str() {
            "across_all_accounts" => SeedScope::Global,
            "per_account" => SeedScope::PerAccount,
            _ => {
                seed.warn(None, Some(scope_name.as_str()), WarningKind::UnknownScope);
                continue;
            }
        };
        let Json::Object(routes) = routes else {
            let found = routes.kind();
            seed.warn(
                None,
                Some(scope_name.as_str()),
                WarningKind::NotAnObject { found },
            );
            continue;
        };
        for (key, value) in routes {
            let route = match key.as_str() {
                "default" => SeedRoute::Default,
                "" => {
                    let why = "the route key is empty".to_owned();
                    seed.warn(
                        None,
                        Some(scope_name.as_str()),
                        WarningKind::BadRouteKey(why),
                    );
                    continue;
                }
                _ => SeedRoute::MethodResource(key.clone()),
            };
            let limit = match json::limit(Some(value)) {
                Ok(limit) => limit,
                Err(problem) => {
                    let kind = WarningKind::BadValue {
                        field: "limit",
                        problem,
                    };
                    seed.warn(Some(key.as_str()), Some(scope_name.as_str()), kind);
                    continue;
                }
            };
            let mut entry = SeedEntry::new(route, scope);
            entry.add_window(SeedWindow {
                name: CONFIGURED.to_owned(),
                window,
                limit,
                used: None,
                remaining: None,
                reset: None,
            });
            seed.add_entry(entry, &mut index);
        }
    }
    if seed.entries.is_empty() && seed.summary.is_none() {
        return Err(SeedError::NoFigures);
    }
    Ok(seed)
}

fn object_at<'j>(value: &'j Json, at: &str) -> Result<&'j Json, SeedError> {
    match value {
        Json::Object(_) => Ok(value),
        other => Err(SeedError::shape(at, "an object", other.kind())),
    }
}

/// Every value of `key` in `parent`, each an object; at least one.
fn objects_at<'j>(parent: &'j Json, key: &'j str, at: &str) -> Result<Vec<&'j Json>, SeedError> {
    let objects = parent
        .fields(key)
        .map(|v| object_at(v, at))
        .collect::<Result<Vec<_>, _>>()?;
    if objects.is_empty() {
        return Err(SeedError::shape(at, "an object", "nothing"));
    }
    Ok(objects)
}

/// The 24-hour summary, or `None` (with a warning) if a field is malformed.
///
/// A field given more than once (in one `usage` or in several) is read
/// conservatively: the largest counts and percentage (more traffic is the
/// safe report); names and the peak hour must agree, or the summary is left
/// out.
fn summary(root: &Json, usages: &[&Json], seed: &mut Seed) -> Option<DaySummary> {
    let all = |key: &'static str| usages.iter().flat_map(move |u| u.fields(key));
    let mut repeated = Vec::new();
    let mut largest = |key: &'static str| {
        let figure = json::tightest_count(all(key), Tightest::Largest).ok()?;
        if figure.contradicted {
            repeated.push(key);
        }
        Some(figure.value)
    };
    let total_requests = largest("total_requests");
    let rate_limited_requests = largest("rate_limited_requests");
    let percentages: Option<Vec<f64>> = all("rate_limit_percentage")
        .map(|v| match v {
            Json::Unsigned(n) if *n <= 100 => Some(*n as f64),
            Json::Float(x) if (0.0..=100.0).contains(x) => Some(*x),
            _ => None,
        })
        .collect();
    let rate_limit_percentage = percentages.and_then(|p| p.into_iter().reduce(f64::max));
    let system = match root.agreed_field("system") {
        Ok(Some(Json::String(system))) => Some(system),
        _ => None,
    };
    let period = match root.agreed_field("period") {
        Ok(Some(Json::String(period))) => Some(period),
        _ => None,
    };
    let peak_hour = match json::agreed(all("peak_hour")) {
        Ok(Some(Json::String(hour))) => Some(Some(hour.clone())),
        Ok(Some(Json::Null)) => Some(None),
        _ => None,
    };
    for field in repeated {
        seed.warn(None, None, WarningKind::Repeated { field });
    }
    let mut bad = |field: &'static str| {
        seed.warn(None, None, WarningKind::BadSummary { field });
        None
    };
    let Some(system) = system else {
        return bad("system");
    };
    let Some(period) = period else {
        return bad("period");
    };
    let Some(total_requests) = total_requests else {
        return bad("total_requests");
    };
    let Some(rate_limited_requests) = rate_limited_requests else {
        return bad("rate_limited_requests");
    };
    let Some(rate_limit_percentage) = rate_limit_percentage else {
        return bad("rate_limit_percentage");
    };
    let Some(peak_hour) = peak_hour else {
        return bad("peak_hour");
    };
    if period != "last_24h" {
        seed.warn(None, None, WarningKind::UnexpectedPeriod);
    }
    Some(DaySummary {
        system: system.clone(),
        period: period.clone(),
        total_requests,
        rate_limited_requests,
        rate_limit_percentage,
        peak_hour,
    })
}
