//! Rails `controller#action` keys: seed 000's way of naming routes.
//!
//! Seed 000 limits each Rails action and reports usage per
//! `["api/v1/contacts", "search"]`. Rails derives the action from the path
//! and the method by its resourceful-routing conventions, so the client
//! derives it the same way, with the same rules as the testkit's CRM server:
//!
//! 1. The path (canonical, see [`normalize_path`](super::normalize_path)) must
//!    be under the prefix (`/api/v1`) with at least one segment more; others
//!    are not rate limited (`None`).
//! 2. The controller is the longest declared controller path that prefixes the
//!    path segment by segment, else the prefix and the first segment after it
//!    (`api/v1/widgets`).
//! 3. What follows decides the action: nothing → `index` (GET) or `create`
//!    (POST); one segment that is a declared action of the controller → that
//!    action (`POST /api/v1/contacts/search`), whatever the method; one other
//!    segment is an id → `show` (GET), `update` (PUT, PATCH), `destroy`
//!    (DELETE); an id and a segment → that member action
//!    (`GET /api/v1/organizations/5/job_postings`). Anything else → `None`
//!    (the server answers 404 and counts nothing). Methods ignore ASCII case;
//!    `HEAD` is not `GET` (the testkit's server answers 404 to it).
//!
//! A declared pair is [`RouteKey::Known`]; any other is
//! [`RouteKey::Other`]`("api/v1/widgets#show")`.

use std::borrow::Cow;

use http::Method;

use super::normalize::{normalize_path, segments};
use super::rails_key::format_stats_key;
use super::rails_table::SEED000_KEYS;
use super::{label_at, next_id, DeclareError, RouteId, RouteKey, Router};

/// A router over Rails resourceful routes under a prefix.
///
/// ```
/// use http::Method;
/// use tower_quota::route::{RouteKey, Router, Rails};
///
/// let mut rails = Rails::new("/api/v1");
/// let search = rails.declare("api/v1/contacts", "search")?;
/// assert_eq!(rails.route(&Method::POST, "/api/v1/contacts/search"), Some(RouteKey::Known(search)));
/// assert_eq!(rails.label(search), "api/v1/contacts#search");
/// assert_eq!(
///     rails.route(&Method::DELETE, "/api/v1/contacts/17"),
///     Some(RouteKey::Other("api/v1/contacts#destroy".into()))
/// );
/// assert_eq!(rails.route(&Method::GET, "/health"), None);
/// # Ok::<(), tower_quota::route::DeclareError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Rails {
    /// Canonical, `/api/v1`; `/` for none.
    prefix: Box<str>,
    controllers: Vec<Controller>,
    /// `(controller, action)` per id.
    keys: Vec<(Box<str>, Box<str>)>,
    /// `controller#action` per id.
    labels: Vec<Box<str>>,
    /// `(METHOD, canonical path)` of requests that are not rate limited.
    exempt: Vec<(Box<str>, Box<str>)>,
}

#[derive(Clone, Debug)]
struct Controller {
    /// Relative to the prefix: `contacts`.
    relative: Box<str>,
    /// Full: `api/v1/contacts`.
    full: Box<str>,
    actions: Vec<(Box<str>, RouteId)>,
}

impl Rails {
    /// A router for controllers under `prefix` (`"/api/v1"`; `"/"` for none),
    /// with nothing declared.
    pub fn new(prefix: &str) -> Rails {
        Rails {
            prefix: normalize_path(prefix).into(),
            controllers: Vec::new(),
            keys: Vec::new(),
            labels: Vec::new(),
            exempt: Vec::new(),
        }
    }

    /// Seed 000: prefix `/api/v1`, every key of [`SEED000_KEYS`] declared in
    /// order (row `i` has id `i`), and the usage-stats endpoint
    /// (`POST /api/v1/usage_stats/api_usage_stats`) exempt: the testkit's server
    /// does not meter it.
    ///
    /// ```
    /// use tower_quota::route::{Router, Rails, SEED000_KEYS};
    ///
    /// let rails = Rails::seed000();
    /// assert_eq!(rails.len(), SEED000_KEYS.len());
    /// let id = rails.find_key("api/v1/conversations", "export").expect("declared");
    /// assert_eq!(rails.stats_key(id).as_deref(), Some(r#"["api/v1/conversations", "export"]"#));
    /// ```
    pub fn seed000() -> Rails {
        let mut rails = Rails::new("/api/v1");
        for (controller, action) in SEED000_KEYS {
            // A constant table, checked by this module's tests.
            let _ = rails.declare(controller, action);
        }
        rails.exempt("POST", "/api/v1/usage_stats/api_usage_stats")
    }

    /// Declares `controller#action` and returns its id (the next in order).
    /// `controller` is the full path under the prefix (`api/v1/contacts`).
    pub fn declare(&mut self, controller: &str, action: &str) -> Result<RouteId, DeclareError> {
        let full = normalize_path(controller);
        let relative = match &*self.prefix {
            "/" => Some(full.get(1..).unwrap_or("")),
            prefix => full.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')),
        };
        let Some(relative) = relative.filter(|r| !r.is_empty()) else {
            return Err(DeclareError::OutsidePrefix {
                controller: controller.to_owned(),
                prefix: self.prefix.to_string(),
            });
        };
        let invalid = |reason| DeclareError::InvalidKey {
            key: format!("{controller}#{action}"),
            reason,
        };
        if action.is_empty() || action.contains(['/', '?', '#', '%']) {
            return Err(invalid("an action is one path segment, e.g. `search`"));
        }
        let full_name = full.get(1..).unwrap_or("");
        let label = format!("{full_name}#{action}");
        let id = next_id(self.labels.len()).ok_or(DeclareError::TooMany)?;
        let index = match self.controllers.iter().position(|c| *c.full == *full_name) {
            Some(i) => i,
            None => {
                self.controllers.push(Controller {
                    relative: relative.into(),
                    full: full_name.into(),
                    actions: Vec::new(),
                });
                self.controllers.len() - 1
            }
        };
        let Some(entry) = self.controllers.get_mut(index) else {
            return Err(DeclareError::TooMany);
        };
        if entry.actions.iter().any(|(a, _)| **a == *action) {
            return Err(DeclareError::Conflict {
                with: label.clone(),
                route: label,
            });
        }
        entry.actions.push((action.into(), id));
        self.keys.push((full_name.into(), action.into()));
        self.labels.push(label.into());
        Ok(id)
    }

    /// Marks `method path` as not rate limited (e.g. an endpoint the server
    /// does not meter). Matched after canonicalisation, method case ignored.
    pub fn exempt(mut self, method: &str, path: &str) -> Rails {
        let method = method.trim().to_ascii_uppercase().into();
        self.exempt.push((method, normalize_path(path).into()));
        self
    }

    /// The `(controller, action)` of a declared route.
    pub fn key(&self, id: RouteId) -> Option<(&str, &str)> {
        self.keys.get(id.index()).map(|(c, a)| (&**c, &**a))
    }

    /// The id of a declared `controller#action`.
    pub fn find_key(&self, controller: &str, action: &str) -> Option<RouteId> {
        let controller = controller.trim_matches('/');
        let found = self.controllers.iter().find(|c| *c.full == *controller)?;
        found
            .actions
            .iter()
            .find(|(a, _)| **a == *action)
            .map(|(_, id)| *id)
    }

    /// The usage-stats key of a declared route, `["api/v1/contacts", "search"]`.
    pub fn stats_key(&self, id: RouteId) -> Option<String> {
        self.key(id).map(|(c, a)| format_stats_key(c, a))
    }

    fn is_exempt(&self, method: &Method, path: &str) -> bool {
        self.exempt
            .iter()
            .any(|(m, p)| **p == *path && m.eq_ignore_ascii_case(method.as_str()))
    }

    /// The path after the prefix, if the path is under it.
    fn under_prefix<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = match &*self.prefix {
            "/" => path.get(1..)?,
            prefix => path.strip_prefix(prefix)?.strip_prefix('/')?,
        };
        Some(rest).filter(|r| !r.is_empty())
    }
}

impl Router for Rails {
    fn route<'a>(&self, method: &Method, path: &'a str) -> Option<RouteKey<'a>> {
        let path = normalize_path(path);
        if self.is_exempt(method, &path) {
            return None;
        }
        let rest = self.under_prefix(&path)?;
        let declared = self
            .controllers
            .iter()
            .filter(|c| match rest.strip_prefix(&*c.relative) {
                Some(after) => after.is_empty() || after.starts_with('/'),
                None => false,
            })
            .max_by_key(|c| c.relative.len());
        let (controller, after) = match declared {
            Some(c) => (Some(c), rest.get(c.relative.len()..).unwrap_or("")),
            None => (
                None,
                rest.find('/').map_or("", |i| rest.get(i..).unwrap_or("")),
            ),
        };
        let mut tail = segments(after);
        let is = |name: &str| method.as_str().eq_ignore_ascii_case(name);
        let action = match (tail.next(), tail.next(), tail.next()) {
            (None, _, _) if is("GET") => "index",
            (None, _, _) if is("POST") => "create",
            (Some(word), None, _) if controller.is_some_and(|c| c.has(word)) => word,
            (Some(_), None, _) if is("GET") => "show",
            (Some(_), None, _) if is("PUT") || is("PATCH") => "update",
            (Some(_), None, _) if is("DELETE") => "destroy",
            (Some(_), Some(word), None) => word,
            _ => return None,
        };
        if let Some(id) = controller.and_then(|c| c.id_of(action)) {
            return Some(RouteKey::Known(id));
        }
        let name = match controller {
            Some(c) => format!("{}#{action}", c.full),
            None => {
                let first = rest.split('/').next().unwrap_or(rest);
                match self.prefix.get(1..).unwrap_or("") {
                    "" => format!("{first}#{action}"),
                    prefix => format!("{prefix}/{first}#{action}"),
                }
            }
        };
        Some(RouteKey::Other(Cow::Owned(name)))
    }

    fn label(&self, id: RouteId) -> &str {
        label_at(&self.labels, id)
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

impl Controller {
    fn has(&self, action: &str) -> bool {
        self.actions.iter().any(|(a, _)| **a == *action)
    }

    fn id_of(&self, action: &str) -> Option<RouteId> {
        self.actions
            .iter()
            .find(|(a, _)| **a == *action)
            .map(|(_, id)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(rails: &Rails, method: &str, path: &str) -> Option<String> {
        let method = Method::from_bytes(method.as_bytes()).ok()?;
        let key = rails.route(&method, path)?;
        Some(key.name(rails).to_owned())
    }

    #[test]
    fn the_seed_readme_examples() {
        let r = Rails::seed000();
        let cases = [
            ("POST", "/api/v1/contacts/search", "api/v1/contacts#search"),
            (
                "GET",
                "/api/v1/contact_stages",
                "api/v1/contact_stages#index",
            ),
            ("PUT", "/api/v1/contacts/abc123", "api/v1/contacts#update"),
            ("PATCH", "/api/v1/contacts/abc123", "api/v1/contacts#update"),
            ("POST", "/api/v1/contacts", "api/v1/contacts#create"),
            ("GET", "/api/v1/people/5", "api/v1/people#show"),
            ("DELETE", "/api/v1/people/5", "api/v1/people#destroy"),
            (
                "POST",
                "/api/v1/contacts/bulk_match",
                "api/v1/contacts#bulk_match",
            ),
            (
                "GET",
                "/api/v1/organizations/5/job_postings",
                "api/v1/organizations#job_postings",
            ),
            ("GET", "/api/v1/widgets/1/", "api/v1/widgets#show"),
            ("get", "/api/v1/labels?page=2", "api/v1/labels#index"),
        ];
        for (method, path, want) in cases {
            assert_eq!(
                name(&r, method, path).as_deref(),
                Some(want),
                "{method} {path}"
            );
        }
        for (method, path) in [
            ("GET", "/v1/contacts"),
            ("GET", "/api/v1"),
            ("POST", "/api/v1/contacts/1/2/3"),
            ("POST", "/api/v1/contacts/17"),
            ("DELETE", "/api/v1/contacts"),
            ("HEAD", "/api/v1/labels"),
            ("POST", "/api/v1/usage_stats/api_usage_stats"),
        ] {
            assert_eq!(name(&r, method, path), None, "{method} {path}");
        }
    }

    #[test]
    fn every_seed000_key_is_known_with_its_row_as_id() {
        let r = Rails::seed000();
        for (i, (controller, action)) in SEED000_KEYS.iter().enumerate() {
            let id = RouteId(i as u32);
            assert_eq!(r.key(id), Some((*controller, *action)));
            assert_eq!(r.find_key(controller, action), Some(id));
            assert_eq!(r.label(id), format!("{controller}#{action}"));
        }
        assert_eq!(r.key(RouteId(50)), None);
    }

    #[test]
    fn nested_controllers_win_by_length_and_prefixes_are_checked() {
        let mut r = Rails::new("api/v1/");
        let a = r.declare("/api/v1/crm", "sync").expect("valid");
        let b = r.declare("api/v1/crm/fields", "mapping").expect("valid");
        assert_eq!(
            name(&r, "POST", "/api/v1/crm/sync").as_deref(),
            Some(r.label(a))
        );
        assert_eq!(
            name(&r, "GET", "/api/v1/crm/fields/mapping").as_deref(),
            Some(r.label(b))
        );
        assert_eq!(
            name(&r, "GET", "/api/v1/crmx").as_deref(),
            Some("api/v1/crmx#index")
        );
        assert!(matches!(
            r.declare("api/v2/x", "a"),
            Err(DeclareError::OutsidePrefix { .. })
        ));
        assert!(matches!(
            r.declare("api/v1", "a"),
            Err(DeclareError::OutsidePrefix { .. })
        ));
        assert!(matches!(
            r.declare("api/v1/x", "a/b"),
            Err(DeclareError::InvalidKey { .. })
        ));
        assert!(matches!(
            r.declare("api/v1/crm", "sync"),
            Err(DeclareError::Conflict { .. })
        ));
        let mut root = Rails::new("/");
        root.declare("things", "index").expect("valid");
        assert_eq!(
            name(&root, "GET", "/things").as_deref(),
            Some("things#index")
        );
        assert_eq!(
            name(&root, "GET", "/other/1").as_deref(),
            Some("other#show")
        );
    }
}
