//! Seed 002, the partner API.
//!
//! The rules are documented on [`Dialect::Partner`](crate::testkit::Dialect::Partner).

use http::request::Parts;
use http::{Method, StatusCode};

use super::credentials::Role;
use super::handler::{header, json, json_error, metered_reply, x_ratelimit, Reply, Shared};
use super::limits::Scope;
use super::record::Outcome;
use super::time::iso8601;
use std::time::Duration;

const USAGE_PATH: &str = "/rateLimit/usage";

/// Serves one seed 002 request.
pub(crate) fn respond(shared: &Shared, parts: &Parts) -> Reply {
    let config = &shared.config;
    let Some(account) =
        header(parts, "x-api-key").and_then(|k| config.find_credential(&[Role::ApiKey], k))
    else {
        return json_error(StatusCode::UNAUTHORIZED, "Missing or invalid user API key.");
    };
    let system = header(parts, "x-system").and_then(|name| {
        let key = header(parts, "x-system-key")?;
        config
            .find_credential(&[Role::System], key)
            .filter(|c| c.name == name)
    });
    let Some(system) = system else {
        return json_error(
            StatusCode::FORBIDDEN,
            "Only registered systems can call this endpoint.",
        );
    };
    if parts.uri.path() == USAGE_PATH {
        if parts.method != Method::GET {
            return json_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
        }
        return json(StatusCode::OK, usage(shared, &system.name));
    }
    let Some(route) = resolve(parts.method.as_str(), parts.uri.path()) else {
        return json_error(StatusCode::NOT_FOUND, "Not found.");
    };
    metered_reply(
        shared.meter(&account.name, Some(&system.name), &route),
        &route,
        || json_error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded."),
        |reply, verdict| x_ratelimit(shared, reply, verdict),
    )
}

/// `METHOD.resource` of a request, `None` for `/`.
pub(crate) fn resolve(method: &str, path: &str) -> Option<String> {
    let resource = path.split('/').find(|s| !s.is_empty())?;
    Some(format!("{method}.{resource}"))
}

/// The usage body of `system`, from the cache when it is fresh.
fn usage(shared: &Shared, system: &str) -> bytes::Bytes {
    let now = shared.time.now();
    let ttl = shared.time.real(shared.config.usage_cache);
    let mut cache = shared
        .usage_cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((at, body)) = cache.get(system) {
        if now.saturating_since(*at) < ttl {
            return body.clone();
        }
    }
    let body = bytes::Bytes::from(compute(shared, system));
    cache.insert(system.to_owned(), (now, body.clone()));
    body
}

fn compute(shared: &Shared, system: &str) -> String {
    let time = &shared.time;
    let hour = time.real(Duration::from_secs(3600));
    let now = time.now();
    let current = time.window_index(now, hour);
    let first = current.saturating_sub(23);
    let mut per_hour = [0u64; 24];
    let mut limited = 0;
    for e in shared.recorder.events() {
        let counted = matches!(
            e.outcome,
            Outcome::Admitted | Outcome::Rejected | Outcome::Unmetered
        );
        if !counted || e.system.as_deref() != Some(system) || e.at > now {
            continue;
        }
        let index = time.window_index(e.at, hour);
        if index < first {
            continue;
        }
        per_hour[(index - first) as usize] += 1;
        if e.outcome == Outcome::Rejected {
            limited += 1;
        }
    }
    let total: u64 = per_hour.iter().sum();
    let peak = per_hour
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .fold(None, |best: Option<(usize, u64)>, (i, n)| match best {
            Some((_, b)) if b >= *n => best,
            _ => Some((i, *n)),
        })
        .map(|(i, _)| {
            let start = (first + i as u128) * hour.as_nanos();
            iso8601(std::time::UNIX_EPOCH + Duration::from_nanos(u64::try_from(start).unwrap_or(0)))
        });
    render(
        system,
        total,
        limited,
        peak.as_deref(),
        &shared.config.scopes,
    )
}

/// The document's layout, exactly: two-space indentation, one field per line,
/// each scope's limits inline as `{ "default": 750, "GET.people": 100 }`.
pub(crate) fn render(
    system: &str,
    total: u64,
    limited: u64,
    peak: Option<&str>,
    scopes: &[Scope],
) -> String {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    let percentage = if total == 0 {
        "0".to_owned()
    } else {
        let rounded = (limited as f64 / total as f64 * 100.0 * 100.0).round() / 100.0;
        serde_json::Value::from(rounded).to_string()
    };
    let peak = peak.map_or_else(|| "null".to_owned(), quote);
    let limits: Vec<String> = scopes
        .iter()
        .map(|scope| {
            let first = |ws: &[super::limits::Window]| ws.first().map(|w| w.limit);
            let entries: Vec<String> = std::iter::once(("default", first(&scope.default)))
                .chain(scope.routes.iter().map(|(r, ws)| (r.as_str(), first(ws))))
                .filter_map(|(name, limit)| Some(format!("{}: {}", quote(name), limit?)))
                .collect();
            format!("      {}: {{ {} }}", quote(&scope.name), entries.join(", "))
        })
        .collect();
    format!(
        "{{\n  \"system\": {},\n  \"period\": \"last_24h\",\n  \"usage\": {{\n    \"total_requests\": {total},\n    \"rate_limited_requests\": {limited},\n    \"rate_limit_percentage\": {percentage},\n    \"peak_hour\": {peak},\n    \"current_limits\": {{\n{}\n    }}\n  }}\n}}",
        quote(system),
        limits.join(",\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Config;

    /// The example response of seed 002, verbatim.
    const EXAMPLE: &str = include_str!("../seed/fixtures/seed002.json");

    #[test]
    fn renders_the_documented_example_byte_for_byte() {
        let scopes = Config::seed002().scopes().to_vec();
        let body = render(
            "your-system",
            1247,
            23,
            Some("2026-05-19T14:00:00Z"),
            &scopes,
        );
        assert_eq!(body, EXAMPLE);
        assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
    }

    #[test]
    fn rounds_to_two_decimals_and_says_zero_and_null_without_traffic() {
        let scopes = Config::seed002().scopes().to_vec();
        let body = render("s", 3, 1, Some("x"), &scopes);
        assert!(body.contains("\"rate_limit_percentage\": 33.33,"));
        let body = render("s", 3, 2, Some("x"), &scopes);
        assert!(body.contains("\"rate_limit_percentage\": 66.67,"));
        let body = render("s", 0, 0, None, &scopes);
        assert!(body.contains("\"rate_limit_percentage\": 0,\n    \"peak_hour\": null,"));
    }

    #[test]
    fn routes_are_method_dot_resource() {
        assert_eq!(resolve("GET", "/people/42").as_deref(), Some("GET.people"));
        assert_eq!(
            resolve("POST", "/accounts").as_deref(),
            Some("POST.accounts")
        );
        assert_eq!(resolve("GET", "/"), None);
    }
}
