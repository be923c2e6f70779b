//! `METHOD.resource` keys: seed 002's way of naming routes.
//!
//! Seed 002 reports its per-route ceilings as `{ "default": 750,
//! "GET.people": 100 }`: a route is a method and a resource, and every route
//! without an override has its own bucket at the `default` ceiling. The
//! resource is the first segment of the canonical path (see
//! [`normalize_path`](super::normalize_path)) after an optional prefix, as on
//! the testkit's partner server: `GET /people/123` and `GET /people/123/emails`
//! are both `GET.people`, `/` is not rate limited. The resource keeps its case
//! (`rateLimit`); the method is upper-cased.

use std::borrow::Cow;

use http::Method;

use super::normalize::{normalize_path, segments};
use super::{label_at, method_upper, next_id, DeclareError, RouteId, RouteKey, Router};

/// A router naming routes `METHOD.resource`, with declared overrides known.
///
/// ```
/// use http::Method;
/// use tower_quota::route::{MethodResource, RouteKey, Router};
///
/// let mut router = MethodResource::new().with_prefix("/partner/v2");
/// let people = router.declare("GET.people")?;
/// assert_eq!(router.route(&Method::GET, "/partner/v2/people/42"), Some(RouteKey::Known(people)));
/// assert_eq!(
///     router.route(&Method::POST, "/partner/v2/accounts"),
///     Some(RouteKey::Other("POST.accounts".into()))
/// );
/// assert_eq!(router.route(&Method::GET, "/elsewhere/people"), None);
/// # Ok::<(), tower_quota::route::DeclareError>(())
/// ```
#[derive(Clone, Debug)]
pub struct MethodResource {
    /// Canonical; `/` for none.
    prefix: Box<str>,
    /// `(METHOD, resource)` per id.
    declared: Vec<(Box<str>, Box<str>)>,
    labels: Vec<Box<str>>,
    /// `(METHOD, canonical path)` of requests that are not rate limited.
    exempt: Vec<(Box<str>, Box<str>)>,
}

impl Default for MethodResource {
    fn default() -> MethodResource {
        MethodResource::new()
    }
}

impl MethodResource {
    /// A router with no prefix and no overrides.
    pub fn new() -> MethodResource {
        MethodResource {
            prefix: "/".into(),
            declared: Vec::new(),
            labels: Vec::new(),
            exempt: Vec::new(),
        }
    }

    /// Seed 002: the override `GET.people` (id 0), and the usage endpoint
    /// `GET /rateLimit/usage` exempt (the server neither meters nor limits it).
    ///
    /// ```
    /// use http::Method;
    /// use tower_quota::route::{MethodResource, Router};
    ///
    /// let r = MethodResource::seed002();
    /// assert_eq!(r.label(r.find("GET.people").expect("declared")), "GET.people");
    /// assert_eq!(r.route(&Method::GET, "/rateLimit/usage"), None);
    /// ```
    pub fn seed002() -> MethodResource {
        let mut r = MethodResource::new().exempt("GET", "/rateLimit/usage");
        // A constant, checked by this module's tests.
        let _ = r.declare("GET.people");
        r
    }

    /// Only paths under `prefix` are routed, and the resource is the first
    /// segment after it.
    pub fn with_prefix(mut self, prefix: &str) -> MethodResource {
        self.prefix = normalize_path(prefix).into();
        self
    }

    /// Marks `method path` as not rate limited. Matched after
    /// canonicalisation, method case ignored.
    pub fn exempt(mut self, method: &str, path: &str) -> MethodResource {
        let method = method.trim().to_ascii_uppercase().into();
        self.exempt.push((method, normalize_path(path).into()));
        self
    }

    /// Declares the route `key` (`"GET.people"`, method case ignored) and
    /// returns its id (the next in order).
    pub fn declare(&mut self, key: &str) -> Result<RouteId, DeclareError> {
        let invalid = |reason| DeclareError::InvalidKey {
            key: key.to_owned(),
            reason,
        };
        let (method, resource) = key
            .split_once('.')
            .ok_or_else(|| invalid("write it `METHOD.resource`, e.g. `GET.people`"))?;
        let method = method.to_ascii_uppercase();
        if Method::from_bytes(method.as_bytes()).is_err() {
            return Err(invalid("the part before `.` is not an HTTP method"));
        }
        if resource.is_empty() || resource.contains(['/', '?', '#']) {
            return Err(invalid("the resource is one path segment, e.g. `people`"));
        }
        let resource = normalize_path(resource);
        let resource = resource.get(1..).unwrap_or("");
        let label = format!("{method}.{resource}");
        if self.labels.iter().any(|l| **l == *label) {
            return Err(DeclareError::Conflict {
                with: label.clone(),
                route: label,
            });
        }
        let id = next_id(self.labels.len()).ok_or(DeclareError::TooMany)?;
        self.declared.push((method.into(), resource.into()));
        self.labels.push(label.into());
        Ok(id)
    }
}

impl Router for MethodResource {
    fn route<'a>(&self, method: &Method, path: &'a str) -> Option<RouteKey<'a>> {
        let path = normalize_path(path);
        let exempt = self
            .exempt
            .iter()
            .any(|(m, p)| **p == *path && m.eq_ignore_ascii_case(method.as_str()));
        if exempt {
            return None;
        }
        let rest = match &*self.prefix {
            "/" => &*path,
            prefix => path.strip_prefix(prefix)?,
        };
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        let resource = segments(rest).next()?;
        let known = self
            .declared
            .iter()
            .position(|(m, r)| **r == *resource && m.eq_ignore_ascii_case(method.as_str()));
        if let Some(id) = known.and_then(next_id) {
            return Some(RouteKey::Known(id));
        }
        let name = format!("{}.{resource}", method_upper(method));
        Some(RouteKey::Other(Cow::Owned(name)))
    }

    fn label(&self, id: RouteId) -> &str {
        label_at(&self.labels, id)
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(r: &MethodResource, method: &str, path: &str) -> Option<String> {
        let method = Method::from_bytes(method.as_bytes()).ok()?;
        Some(r.route(&method, path)?.name(r).to_owned())
    }

    #[test]
    fn the_first_segment_is_the_resource() {
        let r = MethodResource::seed002();
        assert_eq!(
            r.route(&Method::GET, "/people/123"),
            Some(RouteKey::Known(RouteId(0)))
        );
        assert_eq!(
            name(&r, "get", "/people/123/emails?x").as_deref(),
            Some("GET.people")
        );
        assert_eq!(name(&r, "GET", "//people/").as_deref(), Some("GET.people"));
        assert_eq!(name(&r, "POST", "/people").as_deref(), Some("POST.people"));
        assert_eq!(
            name(&r, "GET", "/Accounts").as_deref(),
            Some("GET.Accounts")
        );
        assert_eq!(
            name(&r, "POST", "/rateLimit/usage").as_deref(),
            Some("POST.rateLimit")
        );
        assert_eq!(name(&r, "GET", "/"), None);
        assert_eq!(name(&r, "GET", "/rateLimit/usage/"), None);
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let r = MethodResource::new().with_prefix("/v2/");
        assert_eq!(
            name(&r, "GET", "/v2/people/1").as_deref(),
            Some("GET.people")
        );
        assert_eq!(name(&r, "GET", "/v2"), None);
        assert_eq!(name(&r, "GET", "/v20/people"), None);
    }

    #[test]
    fn declarations_are_checked() {
        let mut r = MethodResource::new();
        assert_eq!(r.declare("get.people"), Ok(RouteId(0)));
        assert!(matches!(
            r.declare("GET.people"),
            Err(DeclareError::Conflict { .. })
        ));
        for bad in ["people", "G ET.people", "GET.", "GET.a/b"] {
            assert!(
                matches!(r.declare(bad), Err(DeclareError::InvalidKey { .. })),
                "{bad}"
            );
        }
        assert_eq!(r.len(), 1);
    }
}
