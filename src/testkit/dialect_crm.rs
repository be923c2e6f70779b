//! Seed 000, the CRM.
//!
//! The rules are documented on [`Dialect::Crm`](crate::testkit::Dialect::Crm).

use std::time::Duration;

use http::request::Parts;
use http::{Method, StatusCode};

use super::config::Config;
use super::credentials::Role;
use super::handler::{header, json, json_error, metered_reply, set_header, Reply, Shared};
use super::limiter::Reading;
use super::limits::BucketKey;

const USAGE_PATH: &str = "/api/v1/usage_stats/api_usage_stats";

/// Serves one seed 000 request.
pub(crate) fn respond(shared: &Shared, parts: &Parts) -> Reply {
    let config = &shared.config;
    let roles = [Role::ApiKey, Role::MasterKey];
    let Some(key) = header(parts, "x-api-key").and_then(|k| config.find_credential(&roles, k))
    else {
        return json_error(StatusCode::UNAUTHORIZED, "Invalid access credentials.");
    };
    if parts.uri.path() == USAGE_PATH && parts.method == Method::POST {
        if key.role != Role::MasterKey {
            return json_error(
                StatusCode::FORBIDDEN,
                "This endpoint requires a master API key.",
            );
        }
        return json(StatusCode::OK, usage(shared));
    }
    let Some(route) = resolve(config, parts.method.as_str(), parts.uri.path()) else {
        return json_error(StatusCode::NOT_FOUND, "Not found.");
    };
    metered_reply(
        shared.meter(&key.name, None, &route),
        &route,
        || json_error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded."),
        |reply, verdict| vendor_headers(reply, verdict.readings.first().map(|(_, r)| &r[..])),
    )
}

fn vendor_headers(reply: &mut Reply, readings: Option<&[Reading]>) {
    let mut readings = readings.unwrap_or_default().to_vec();
    readings.sort_by_key(|r| r.window.api.per);
    for r in readings {
        let (limit, left) = match r.window.api.per.as_secs() {
            60 => (
                "x-rate-limit-minute".to_owned(),
                "x-minute-requests-left".to_owned(),
            ),
            3600 => (
                "x-rate-limit-hourly".to_owned(),
                "x-hourly-requests-left".to_owned(),
            ),
            86_400 => (
                "x-rate-limit-24-hour".to_owned(),
                "x-24-hour-requests-left".to_owned(),
            ),
            n => (
                format!("x-rate-limit-{n}s"),
                format!("x-{n}s-requests-left"),
            ),
        };
        set_header(reply, &limit, r.limit);
        set_header(reply, &left, r.remaining);
    }
}

/// The `controller#action` of a request, `None` for a 404.
pub(crate) fn resolve(config: &Config, method: &str, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() < 3 || segments[0] != "api" || segments[1] != "v1" {
        return None;
    }
    let known: Vec<(&str, &str)> = config
        .scopes
        .iter()
        .flat_map(|s| s.routes.iter())
        .filter_map(|(r, _)| r.split_once('#'))
        .collect();
    let joined = segments.join("/");
    let controller = known
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| joined == *c || joined.starts_with(&format!("{c}/")))
        .max_by_key(|c| c.len())
        .map_or_else(|| segments[..3].join("/"), str::to_owned);
    let depth = controller.split('/').count();
    let rest = &segments[depth..];
    let is_action = |a: &str| known.iter().any(|(c, k)| *c == controller && *k == a);
    let action = match (rest, method) {
        ([], "GET") => "index",
        ([], "POST") => "create",
        ([word], _) if is_action(word) => word,
        ([_id], "GET") => "show",
        ([_id], "PUT" | "PATCH") => "update",
        ([_id], "DELETE") => "destroy",
        ([_id, word], _) => word,
        _ => return None,
    };
    Some(format!("{controller}#{action}"))
}

/// The usage-stats body: every configured route key with live numbers.
fn usage(shared: &Shared) -> String {
    let Some(scope) = shared.config.scopes.first() else {
        return "{}".to_owned();
    };
    let mut entries = Vec::new();
    for (route, windows) in &scope.routes {
        let Some((controller, action)) = route.split_once('#') else {
            continue;
        };
        let charges = shared.charges("", route);
        let Some(charge) = charges.into_iter().find(|c| c.bucket.scope == scope.name) else {
            continue;
        };
        let bucket: &BucketKey = &charge.bucket;
        let used = shared.limiter.usage(&shared.time, bucket, &charge.windows);
        let mut rows: Vec<(Duration, String)> = windows
            .iter()
            .zip(used)
            .map(|(w, consumed)| {
                let name = match w.per.as_secs() {
                    86_400 => "day".to_owned(),
                    3600 => "hour".to_owned(),
                    60 => "minute".to_owned(),
                    n => format!("{n}s"),
                };
                let object = format!(
                    "    \"{name}\": {{\n      \"limit\": {},\n      \"consumed\": {consumed},\n      \"left_over\": {}\n    }}",
                    w.limit,
                    w.limit.saturating_sub(consumed)
                );
                (w.per, object)
            })
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.0));
        let pair = serde_json::Value::from(controller).to_string()
            + ", "
            + &serde_json::Value::from(action).to_string();
        let key = serde_json::Value::from(format!("[{pair}]")).to_string();
        let body: Vec<String> = rows.into_iter().map(|(_, o)| o).collect();
        entries.push(format!("  {key}: {{\n{}\n  }}", body.join(",\n")));
    }
    format!("{{\n{}\n}}", entries.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rails_routes_resolve_like_the_seed_readme_says() {
        let c = Config::seed000();
        let r = |m, p| resolve(&c, m, p);
        assert_eq!(
            r("POST", "/api/v1/contacts/search").as_deref(),
            Some("api/v1/contacts#search")
        );
        assert_eq!(
            r("GET", "/api/v1/contact_stages").as_deref(),
            Some("api/v1/contact_stages#index")
        );
        assert_eq!(
            r("PUT", "/api/v1/contacts/abc123").as_deref(),
            Some("api/v1/contacts#update")
        );
        assert_eq!(
            r("POST", "/api/v1/contacts").as_deref(),
            Some("api/v1/contacts#create")
        );
        assert_eq!(
            r("GET", "/api/v1/organizations/5").as_deref(),
            Some("api/v1/organizations#show")
        );
        assert_eq!(
            r("GET", "/api/v1/organizations/5/job_postings").as_deref(),
            Some("api/v1/organizations#job_postings")
        );
        assert_eq!(
            r("GET", "/api/v1/widgets/1").as_deref(),
            Some("api/v1/widgets#show")
        );
        assert_eq!(r("GET", "/v1/contacts"), None);
        assert_eq!(r("POST", "/api/v1/contacts/1/2/3"), None);
    }
}
