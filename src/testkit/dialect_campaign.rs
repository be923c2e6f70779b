//! Seed 004, the campaign API.
//!
//! The rules are documented on [`Dialect::Campaign`](crate::testkit::Dialect::Campaign).

use http::request::Parts;
use http::StatusCode;

use super::credentials::Role;
use super::handler::{header, json, metered_reply, x_ratelimit, Reply, Shared};

/// Serves one seed 004 request.
pub(crate) fn respond(shared: &Shared, parts: &Parts) -> Reply {
    let roles = [Role::ApiKey, Role::MasterKey];
    let Some(key) =
        header(parts, "x-api-key").and_then(|k| shared.config.find_credential(&roles, k))
    else {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    let route = resolve(
        &shared.config.routes,
        parts.method.as_str(),
        parts.uri.path(),
    );
    metered_reply(
        shared.meter(&key.name, None, &route),
        &route,
        || error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
        |reply, verdict| x_ratelimit(shared, reply, verdict),
    )
}

/// Seed 004's error body: `{"statusCode":..,"message":..}`, keys in that order.
fn error(status: StatusCode, message: &str) -> Reply {
    // Built by hand: serde_json's map would sort the keys.
    let message = serde_json::Value::from(message);
    let body = format!(
        r#"{{"statusCode":{},"message":{message}}}"#,
        status.as_u16()
    );
    json(status, body)
}

/// The route name of a request: the best matching template, or the request's
/// own method and path.
pub(crate) fn resolve(templates: &[String], method: &str, path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    templates
        .iter()
        .filter_map(|t| score(t, method, &segments).map(|s| (s, t)))
        .max_by_key(|(s, _)| *s)
        .map_or_else(
            || format!("{method} /{}", segments.join("/")),
            |(_, t)| t.clone(),
        )
}

/// The number of literal segments of `template` if it matches, else `None`.
fn score(template: &str, method: &str, segments: &[&str]) -> Option<usize> {
    let (t_method, t_path) = template.split_once(' ')?;
    if !t_method.eq_ignore_ascii_case(method) {
        return None;
    }
    let t_segments: Vec<&str> = t_path.split('/').filter(|s| !s.is_empty()).collect();
    if t_segments.len() != segments.len() {
        return None;
    }
    let mut literal = 0;
    for (t, s) in t_segments.iter().zip(segments) {
        if t.starts_with(':') {
            continue;
        }
        if t != s {
            return None;
        }
        literal += 1;
    }
    Some(literal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_by_method_and_segments() {
        let t: Vec<String> = [
            "GET /v1/users/:id",
            "GET /v1/users/me",
            "GET /v1/campaigns/:id/statistics",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(resolve(&t, "GET", "/v1/users/42"), "GET /v1/users/:id");
        assert_eq!(resolve(&t, "GET", "/v1/users/me"), "GET /v1/users/me");
        assert_eq!(
            resolve(&t, "GET", "/v1/campaigns/7/statistics/"),
            "GET /v1/campaigns/:id/statistics"
        );
        assert_eq!(resolve(&t, "POST", "/v1/users/42"), "POST /v1/users/42");
        assert_eq!(resolve(&t, "GET", "/"), "GET /");
    }
}
