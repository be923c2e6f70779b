//! Seed 000: the CRM's `POST /api/v1/usage_stats/api_usage_stats`.
//!
//! The body is an object keyed by JSON-encoded route pairs,
//! `"[\"api/v1/contacts\", \"search\"]"`, each holding named windows
//! (`day`, `hour`, `minute`) of `limit`, `consumed` and `left_over`. The
//! numbers are the team's (the API key's): [`SeedScope::Key`].
//!
//! The document's own example shows why the reading must be defensive: it is
//! cut off before its final `}`, and its first entry says `consumed: 500` with
//! `left_over: 6000` under `limit: 6000`. So:
//! - a body that is not complete JSON is an error ([`SeedError::Truncated`]),
//!   never a partial seed;
//! - figures that contradict each other are read conservatively,
//!   `remaining = min(left_over, limit - consumed)` and
//!   `used = limit - remaining`, with a warning; so is a field given twice in
//!   one window: the smallest `limit` and `left_over`, the largest `consumed`;
//! - a window whose name the [`WindowNames`] table does not know, a route key
//!   that is not a `["controller", "action"]` pair, and a figure that is not a
//!   count (negative, fractional, a string, beyond `u64`, or a limit beyond
//!   `u32`) leave that window or route out, with a warning: leaving a figure
//!   out changes nothing, which is safe, while guessing could loosen a limit.

use std::time::Duration;

use super::error::SeedError;
use super::json::{self, Json, Tightest};
use super::model::{EntryIndex, Seed, SeedEntry, SeedRoute, SeedScope, SeedSource, SeedWindow};
use super::warning::WarningKind;
use super::window_names::WindowNames;
use crate::route::parse_stats_key;

/// Reads a seed 000 usage-stats body.
///
/// # Errors
///
/// [`SeedError::Truncated`] or [`SeedError::NotJson`] for a body that is not
/// one complete JSON document, [`SeedError::UnexpectedShape`] when it is not
/// an object, [`SeedError::NoFigures`] when no window could be read.
///
/// ```
/// use tower_quota::seed::{parse_crm_usage, SeedScope, WindowNames};
///
/// let body = br#"{
///   "[\"api/v1/contacts\", \"search\"]": {
///     "day": { "limit": 6000, "consumed": 500, "left_over": 6000 },
///     "minute": { "limit": 200, "consumed": 10, "left_over": 190 }
///   }
/// }"#;
/// let seed = parse_crm_usage(body, &WindowNames::standard())?;
/// let search = seed.entry(SeedScope::Key, "api/v1/contacts#search").expect("listed");
/// let day = search.window("day").expect("a day window");
/// // The inconsistent figures are read conservatively.
/// assert_eq!((day.used, day.remaining), (Some(500), Some(5500)));
/// assert_eq!(seed.warnings.len(), 1);
/// # Ok::<(), tower_quota::seed::SeedError>(())
/// ```
pub fn parse_crm_usage(body: &[u8], names: &WindowNames) -> Result<Seed, SeedError> {
    let routes = match json::parse(body)? {
        Json::Object(routes) => routes,
        other => {
            return Err(SeedError::shape(
                "(the whole body)",
                "an object keyed by route",
                other.kind(),
            ))
        }
    };
    let mut seed = Seed::new(SeedSource::CrmUsageStats);
    let mut index = EntryIndex::default();
    for (key, value) in routes {
        let route = match parse_stats_key(&key) {
            Ok((controller, action)) => SeedRoute::rails(controller, action),
            Err(e) => {
                seed.warn(Some(&key), None, WarningKind::BadRouteKey(e.to_string()));
                continue;
            }
        };
        let label = route.label().to_owned();
        let Json::Object(windows) = value else {
            let found = value.kind();
            seed.warn(Some(&label), None, WarningKind::NotAnObject { found });
            continue;
        };
        let mut entry = SeedEntry::new(route, SeedScope::Key);
        for (name, figures) in windows {
            let Some(length) = names.get(&name) else {
                seed.warn(Some(&label), Some(&name), WarningKind::UnknownWindow);
                continue;
            };
            match read_window(&name, length, &figures) {
                Ok((window, oddities)) => {
                    for kind in oddities {
                        seed.warn(Some(&label), Some(&name), kind);
                    }
                    if entry.add_window(window) {
                        seed.warn(Some(&label), Some(&name), WarningKind::Duplicate);
                    }
                }
                Err(kind) => seed.warn(Some(&label), Some(&name), kind),
            }
        }
        if !entry.windows.is_empty() {
            seed.add_entry(entry, &mut index);
        }
    }
    if seed.entries.is_empty() {
        return Err(SeedError::NoFigures);
    }
    Ok(seed)
}

/// One window's figures, and warnings for those that contradict each other
/// (a figure given twice, figures that do not add up).
fn read_window(
    name: &str,
    length: Duration,
    figures: &Json,
) -> Result<(SeedWindow, Vec<WarningKind>), WarningKind> {
    if !matches!(figures, Json::Object(_)) {
        return Err(WarningKind::NotAnObject {
            found: figures.kind(),
        });
    }
    let mut warnings = Vec::new();
    let mut read = |field: &'static str, tightest: Option<Tightest>| {
        let values = figures.fields(field);
        let figure = match tightest {
            None => json::tightest_limit(values),
            Some(tightest) => json::tightest_count(values, tightest),
        }
        .map_err(|problem| WarningKind::BadValue { field, problem })?;
        if figure.contradicted {
            warnings.push(WarningKind::Repeated { field });
        }
        Ok(figure.value)
    };
    let limit = read("limit", None)?;
    let consumed = read("consumed", Some(Tightest::Largest))?;
    let left_over = read("left_over", Some(Tightest::Smallest))?;
    let remaining = left_over.min(limit.saturating_sub(consumed));
    let used = limit.saturating_sub(remaining);
    if consumed.checked_add(left_over) != Some(limit) {
        warnings.push(WarningKind::Inconsistent {
            limit,
            consumed,
            left_over,
        });
    }
    let window = SeedWindow {
        name: name.to_owned(),
        window: length,
        limit,
        used: Some(used),
        remaining: Some(remaining),
        reset: None,
    };
    Ok((window, warnings))
}
