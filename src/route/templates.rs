//! Route templates, `GET /v1/campaigns/:id`: seed 004's way of naming routes.
//!
//! Servers built on Express, NestJS, axum or Rails limit per *template*, so
//! the client matches each request against the same templates. Matching uses
//! [`matchit`], the radix tree behind axum, one tree per method: a lookup walks
//! the path once, does not allocate, and returns the template's [`RouteId`].
//!
//! When two templates could match, a literal segment beats a parameter, from
//! left to right (`GET /v1/users/me` beats `GET /v1/users/:id`). Methods are
//! compared without regard to ASCII case; `HEAD` is its own method, as on the
//! testkit's server (declare `HEAD` templates to limit them). A request that
//! matches no template is named `METHOD /path` with its path canonical (see
//! [`normalize_path`](super::normalize_path)) and its id-like segments written
//! `:id` (see [`generalize_path`](super::generalize_path)), so every undeclared
//! route gets one stable bucket at the default limit.

use std::borrow::Cow;

use http::Method;

use super::generalize::generalize_path;
use super::normalize::{normalize_path, segments};
use super::{label_at, method_upper, next_id, DeclareError, RouteId, RouteKey, Router};

/// Seed 004's table: method, path (under `/v1`, as the document says of all
/// its paths) and the limit per sliding 60 s. Routes it does not declare get
/// [`SEED004_DEFAULT_LIMIT`] per 60 s.
pub const SEED004_TABLE: [(&str, &str, u32); 10] = [
    ("GET", "/v1/analytics", 30),
    ("GET", "/v1/analytics/daily", 30),
    ("GET", "/v1/analytics/by-user", 30),
    ("POST", "/v1/leads/add_to_campaign", 20),
    ("GET", "/v1/campaigns", 60),
    ("GET", "/v1/campaigns/:id", 120),
    ("GET", "/v1/campaigns/:id/statistics", 30),
    ("GET", "/v1/users", 60),
    ("GET", "/v1/users/:id", 60),
    ("GET", "/v1/teams/me", 60),
];

/// Seed 004's limit per 60 s for routes its table does not declare.
pub const SEED004_DEFAULT_LIMIT: u32 = 60;

/// A router over declared `(method, template)` pairs.
///
/// Parameters are whole segments written `:name` or `{name}`; a last segment
/// `*name` or `{*name}` matches the rest of the path. Labels use the `:name`
/// form: `GET /v1/campaigns/:id`.
///
/// ```
/// use http::Method;
/// use tower_quota::route::{RouteKey, Router, Templates};
///
/// let mut router = Templates::new();
/// let id = router.add("get", "/v1/leads/{lead}/")?;
/// assert_eq!(router.label(id), "GET /v1/leads/:lead");
/// assert_eq!(router.route(&Method::GET, "/v1/leads/7?x=1"), Some(RouteKey::Known(id)));
/// assert_eq!(
///     router.route(&Method::GET, "/v1/leads/7/notes/99"),
///     Some(RouteKey::Other("GET /v1/leads/:id/notes/:id".into()))
/// );
/// # Ok::<(), tower_quota::route::DeclareError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Templates {
    trees: Vec<MethodTree>,
    labels: Vec<Box<str>>,
}

#[derive(Clone, Debug)]
struct MethodTree {
    /// Upper case.
    method: Box<str>,
    tree: matchit::Router<RouteId>,
}

impl Templates {
    /// A router with no templates: every request is [`RouteKey::Other`].
    pub fn new() -> Templates {
        Templates::default()
    }

    /// Seed 004's table ([`SEED004_TABLE`]), in the document's order: ids 0 to 9.
    ///
    /// ```
    /// use tower_quota::route::{Router, Templates};
    ///
    /// let t = Templates::seed004();
    /// assert_eq!(t.len(), 10);
    /// assert!(t.find("GET /v1/campaigns/:id/statistics").is_some());
    /// ```
    pub fn seed004() -> Templates {
        let mut t = Templates::new();
        for (method, path, _) in SEED004_TABLE {
            // The table is a constant this module's tests check: it is valid.
            let _ = t.add(method, path);
        }
        t
    }

    /// A router over `routes`, each `(method, template)`, ids in order.
    ///
    /// ```
    /// use tower_quota::route::{Router, Templates};
    ///
    /// let t = Templates::from_routes([("GET", "/a/:id"), ("POST", "/a")])?;
    /// assert_eq!(t.len(), 2);
    /// # Ok::<(), tower_quota::route::DeclareError>(())
    /// ```
    pub fn from_routes<I, M, P>(routes: I) -> Result<Templates, DeclareError>
    where
        I: IntoIterator<Item = (M, P)>,
        M: AsRef<str>,
        P: AsRef<str>,
    {
        let mut t = Templates::new();
        for (method, template) in routes {
            t.add(method.as_ref(), template.as_ref())?;
        }
        Ok(t)
    }

    /// Declares `method template` and returns its id (the next one in order).
    pub fn add(&mut self, method: &str, template: &str) -> Result<RouteId, DeclareError> {
        let method = parse_method(method)?;
        let (pattern, path_label) = parse_template(template)?;
        let label = format!("{method} {path_label}");
        let id = next_id(self.labels.len()).ok_or(DeclareError::TooMany)?;
        let index = match self.trees.iter().position(|t| *t.method == *method) {
            Some(i) => i,
            None => {
                self.trees.push(MethodTree {
                    method: method.clone().into(),
                    tree: matchit::Router::new(),
                });
                self.trees.len() - 1
            }
        };
        let Some(tree) = self.trees.get_mut(index) else {
            return Err(DeclareError::TooMany);
        };
        match tree.tree.insert(pattern, id) {
            Ok(()) => {
                self.labels.push(label.into());
                Ok(id)
            }
            Err(matchit::InsertError::Conflict { with }) => {
                let existing = tree.tree.at(&with).ok().map(|m| *m.value);
                let with = match existing {
                    Some(other) => label_at(&self.labels, other).to_owned(),
                    None => format!("{method} {with}"),
                };
                Err(DeclareError::Conflict { route: label, with })
            }
            Err(e) => Err(DeclareError::InvalidTemplate {
                template: template.to_owned(),
                reason: e.to_string(),
            }),
        }
    }
}

impl Router for Templates {
    fn route<'a>(&self, method: &Method, path: &'a str) -> Option<RouteKey<'a>> {
        let path = normalize_path(path);
        let tree = self
            .trees
            .iter()
            .find(|t| t.method.eq_ignore_ascii_case(method.as_str()));
        if let Some(found) = tree.and_then(|t| t.tree.at(&path).ok()) {
            return Some(RouteKey::Known(*found.value));
        }
        let name = format!("{} {}", method_upper(method), generalize_path(&path));
        Some(RouteKey::Other(Cow::Owned(name)))
    }

    fn label(&self, id: RouteId) -> &str {
        label_at(&self.labels, id)
    }

    fn len(&self) -> usize {
        self.labels.len()
    }

    /// Finds `label` written in either parameter syntax and any method case
    /// (`get /v1/campaigns/{id}` finds `GET /v1/campaigns/:id`).
    fn find(&self, label: &str) -> Option<RouteId> {
        let (method, template) = label.trim().split_once(' ')?;
        let method = parse_method(method).ok()?;
        let (_, path_label) = parse_template(template.trim()).ok()?;
        let wanted = format!("{method} {path_label}");
        let index = self.labels.iter().position(|l| **l == *wanted)?;
        next_id(index)
    }
}

/// The upper-case method, if `method` is an HTTP token.
fn parse_method(method: &str) -> Result<String, DeclareError> {
    let upper = method.trim().to_ascii_uppercase();
    match Method::from_bytes(upper.as_bytes()) {
        Ok(_) => Ok(upper),
        Err(_) => Err(DeclareError::InvalidMethod {
            method: method.to_owned(),
        }),
    }
}

/// The matchit pattern and the label path of a template.
fn parse_template(template: &str) -> Result<(String, String), DeclareError> {
    let invalid = |reason: &str| DeclareError::InvalidTemplate {
        template: template.to_owned(),
        reason: reason.to_owned(),
    };
    let canonical = normalize_path(template);
    let (mut pattern, mut label) = (String::new(), String::new());
    for segment in segments(&canonical) {
        let (p, l) = match parameter(segment) {
            Some(("", _)) => return Err(invalid("a parameter needs a name")),
            Some((name, true)) => (format!("{{*{name}}}"), format!("*{name}")),
            Some((name, false)) => (format!("{{{name}}}"), format!(":{name}")),
            None => (segment.to_owned(), segment.to_owned()),
        };
        for (out, part) in [(&mut pattern, p), (&mut label, l)] {
            out.push('/');
            out.push_str(&part);
        }
    }
    if pattern.is_empty() {
        pattern.push('/');
        label.push('/');
    }
    Ok((pattern, label))
}

/// A whole-segment parameter's name and whether it is a catch-all.
fn parameter(segment: &str) -> Option<(&str, bool)> {
    let inner = match segment.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}').filter(|n| !n.contains(['{', '}']))?,
        None => match segment.strip_prefix(':') {
            Some(name) => return Some((name, false)),
            None => segment.strip_prefix('*').map(|_| segment)?,
        },
    };
    Some(match inner.strip_prefix('*') {
        Some(name) => (name, true),
        None => (inner, false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &Templates, method: Method, path: &str) -> String {
        match t.route(&method, path) {
            Some(RouteKey::Known(id)) => t.label(id).to_owned(),
            Some(RouteKey::Other(name)) => format!("other {name}"),
            None => "none".to_owned(),
        }
    }

    #[test]
    fn every_seed004_route_is_known_by_its_documented_template() {
        let t = Templates::seed004();
        assert_eq!(t.len(), SEED004_TABLE.len());
        for (i, (method, path, _)) in SEED004_TABLE.iter().enumerate() {
            let label = format!("{method} {path}");
            assert_eq!(t.label(RouteId(i as u32)), label);
            let concrete = path.replace(":id", "42");
            let m = Method::from_bytes(method.as_bytes()).expect("method");
            assert_eq!(key(&t, m, &concrete), label, "{concrete}");
        }
    }

    #[test]
    fn undeclared_routes_get_a_generalised_name() {
        let t = Templates::seed004();
        assert_eq!(
            key(&t, Method::GET, "/v1/leads/9"),
            "other GET /v1/leads/:id"
        );
        assert_eq!(
            key(&t, Method::POST, "/v1/campaigns"),
            "other POST /v1/campaigns"
        );
        assert_eq!(key(&t, Method::GET, "/v1/users/me"), "GET /v1/users/:id");
        assert_eq!(key(&t, Method::GET, "/"), "other GET /");
        assert_eq!(key(&t, Method::HEAD, "/v1/users"), "other HEAD /v1/users");
        let lower = Method::from_bytes(b"get").expect("token");
        assert_eq!(key(&t, lower, "/v1/users/"), "GET /v1/users");
    }

    #[test]
    fn both_parameter_syntaxes_and_catch_alls() {
        let t =
            Templates::from_routes([("GET", "/f/{*rest}"), ("PUT", "/x/{id}/y")]).expect("valid");
        assert_eq!(t.label(RouteId(0)), "GET /f/*rest");
        assert_eq!(key(&t, Method::GET, "/f/a/b/c"), "GET /f/*rest");
        assert_eq!(key(&t, Method::PUT, "/x/1/y/"), "PUT /x/:id/y");
        assert_eq!(t.find("put /x/:id/y"), Some(RouteId(1)));
        assert_eq!(t.find("PUT /x/{id}/y"), Some(RouteId(1)));
        assert_eq!(t.find("no-space"), None);
    }

    #[test]
    fn bad_templates_are_refused_with_reasons() {
        let mut t = Templates::new();
        assert!(matches!(
            t.add("G ET", "/x"),
            Err(DeclareError::InvalidMethod { .. })
        ));
        assert!(matches!(
            t.add("GET", "/x/:"),
            Err(DeclareError::InvalidTemplate { .. })
        ));
        assert!(matches!(
            t.add("GET", "/x/{*rest}/y"),
            Err(DeclareError::InvalidTemplate { .. })
        ));
        t.add("GET", "/x/:id").expect("valid");
        let err = t.add("GET", "/x/:other").expect_err("conflict");
        assert_eq!(
            err,
            DeclareError::Conflict {
                route: "GET /x/:other".into(),
                with: "GET /x/:id".into()
            }
        );
        assert_eq!(t.len(), 1, "a refused route takes no id");
        t.add("POST", "/x/:other").expect("another method");
    }
}
