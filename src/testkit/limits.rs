//! What the server enforces: windows, scopes and the buckets they create.
//!
//! A request is charged to one bucket per [`Scope`]: seed 004 has one scope (the
//! API key), seed 002 has two (a global per-route ceiling *and* a per-account
//! ceiling, both must pass), seed 000 has one (the team). Each bucket has one or
//! more [`Window`]s; a request is admitted only if every window of every bucket
//! has room for its cost.

use std::fmt;
use std::time::Duration;

/// How a window moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WindowKind {
    /// At most `limit` units inside any half-open interval of length `per`.
    Sliding,
    /// At most `limit` units inside each interval `[k*per, (k+1)*per)` counted
    /// from the Unix epoch (so a minute window resets at every wall-clock minute).
    Fixed,
}

/// `limit` units per `per` of API time (before compression).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    /// Units admitted per window.
    pub limit: u64,
    /// The window's length in API time.
    pub per: Duration,
    /// Sliding or fixed.
    pub kind: WindowKind,
}

impl Window {
    /// `limit` units in any interval of length `per`.
    pub const fn sliding(limit: u64, per: Duration) -> Window {
        Window {
            limit,
            per,
            kind: WindowKind::Sliding,
        }
    }

    /// `limit` units in each wall-clock-aligned interval of length `per`.
    pub const fn fixed(limit: u64, per: Duration) -> Window {
        Window {
            limit,
            per,
            kind: WindowKind::Fixed,
        }
    }

    /// `limit` units per sliding minute (seed 004 and seed 002 style).
    pub const fn per_minute(limit: u64) -> Window {
        Window::sliding(limit, Duration::from_secs(60))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            WindowKind::Sliding => "sliding",
            WindowKind::Fixed => "fixed",
        };
        write!(f, "{} / {:?} ({kind})", self.limit, self.per)
    }
}

/// Who shares a scope's buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeBy {
    /// One bucket per route, shared by every caller (seed 002's
    /// `across_all_accounts`, seed 000's team-wide limits).
    Everyone,
    /// One bucket per caller and route (seed 004's API key, seed 002's
    /// `per_account`).
    Caller,
}

/// A set of buckets with per-route limits and a default for the routes that
/// declare none.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    /// The scope's name; in seed 002 it is the key under `current_limits`.
    pub name: String,
    /// Who shares the buckets.
    pub by: ScopeBy,
    /// The windows of a route without an override; empty means unlimited.
    pub default: Vec<Window>,
    /// Per-route windows, in declaration order; a later entry for the same route
    /// replaces an earlier one.
    pub routes: Vec<(String, Vec<Window>)>,
}

impl Scope {
    /// A scope with a default and no overrides.
    pub fn new(name: impl Into<String>, by: ScopeBy, default: Vec<Window>) -> Scope {
        Scope {
            name: name.into(),
            by,
            default,
            routes: Vec::new(),
        }
    }

    /// Sets the windows of `route`.
    pub fn set_route(&mut self, route: impl Into<String>, windows: Vec<Window>) {
        let route = route.into();
        match self.routes.iter_mut().find(|(r, _)| *r == route) {
            Some(entry) => entry.1 = windows,
            None => self.routes.push((route, windows)),
        }
    }

    /// The windows that apply to `route`.
    pub fn windows_for(&self, route: &str) -> &[Window] {
        self.routes
            .iter()
            .find(|(r, _)| r == route)
            .map_or(&self.default[..], |(_, w)| &w[..])
    }
}

/// Which bucket a unit was charged to.
///
/// The caller is the *name* given to a credential in the
/// [`Config`](crate::testkit::Config), never the secret sent on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketKey {
    /// The scope's name (`api_key`, `across_all_accounts`, `per_account`, `team`).
    pub scope: String,
    /// The caller's name for per-caller scopes, `None` for shared ones.
    pub caller: Option<String>,
    /// The route's name: a template (`GET /v1/campaigns/:id`), a
    /// `METHOD.resource` key (`GET.people`) or a Rails pair
    /// (`api/v1/contacts#search`).
    pub route: String,
}

impl BucketKey {
    /// The bucket of `route` in a scope, as seen by `caller`.
    pub fn new(scope: &str, caller: Option<&str>, route: &str) -> BucketKey {
        BucketKey {
            scope: scope.to_owned(),
            caller: caller.map(str::to_owned),
            route: route.to_owned(),
        }
    }
}

impl fmt::Display for BucketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.caller {
            Some(c) => write!(f, "{}[{c}] {}", self.scope, self.route),
            None => write!(f, "{} {}", self.scope, self.route),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fall_back_to_the_default() {
        let mut s = Scope::new("api_key", ScopeBy::Caller, vec![Window::per_minute(60)]);
        s.set_route("GET /v1/analytics", vec![Window::per_minute(30)]);
        s.set_route("GET /v1/analytics", vec![Window::per_minute(31)]);
        assert_eq!(
            s.windows_for("GET /v1/analytics"),
            &[Window::per_minute(31)]
        );
        assert_eq!(s.windows_for("GET /v1/other"), &[Window::per_minute(60)]);
        assert_eq!(s.routes.len(), 1);
    }

    #[test]
    fn bucket_keys_display_scope_caller_and_route() {
        let k = BucketKey::new("per_account", Some("acme"), "GET.people");
        assert_eq!(k.to_string(), "per_account[acme] GET.people");
        let k = BucketKey::new("team", None, "api/v1/contacts#search");
        assert_eq!(k.to_string(), "team api/v1/contacts#search");
    }
}
