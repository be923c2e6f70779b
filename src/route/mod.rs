//! Route keys: which bucket a request is charged to.
//!
//! Servers do not limit "requests", they limit *routes*: seed 004 gives
//! `GET /v1/campaigns/:id` 120 requests a minute and everything undeclared 60,
//! seed 000 limits Rails `controller#action` pairs such as
//! `["api/v1/contacts", "search"]`, seed 002 limits `METHOD.resource` keys such
//! as `GET.people`. A client that wants to stay inside those limits must name a
//! request's route exactly as the server does, or it charges the wrong bucket.
//!
//! A [`Router`] turns a request's method and path into a [`RouteKey`]:
//!
//! - [`RouteKey::Known`] for a route the router declares. Its [`RouteId`] is a
//!   dense index (`0..router.len()`), so the layer picks a pre-built bucket from
//!   a `Vec` without hashing a string: this runs once per request, on the hot
//!   path, and a known route is found without allocating.
//! - [`RouteKey::Other`] for a route the router can name but does not declare,
//!   charged by the layer to a bucket at the server's default limit
//!   (`"GET /v1/leads/:id"`, `"POST.accounts"`, `"api/v1/widgets#show"`).
//! - `None` for a request that is not rate limited at all (not under the API's
//!   prefix, or answered 404 by the server's router).
//!
//! The routers:
//!
//! | router | seed | keys |
//! | --- | --- | --- |
//! | [`Templates`] | 004 | `GET /v1/campaigns/:id`, via one radix tree per method |
//! | [`Rails`] | 000 | `api/v1/contacts#search`, Rails resourceful routing |
//! | [`MethodResource`] | 002 | `GET.people`, the first path segment |
//! | [`FnRouter`] | - | whatever a closure returns |
//!
//! Every router except [`FnRouter`] first brings the path to one canonical form
//! ([`normalize_path`]) so that a query string, a trailing slash, doubled
//! slashes or a percent-encoded letter never split one route into two buckets,
//! and compares methods without regard to ASCII case.
//!
//! ```
//! use http::Method;
//! use tower_quota::route::{RouteKey, Router, Templates};
//!
//! let router = Templates::seed004();
//! let key = router.route(&Method::GET, "/v1/campaigns/42?page=2").expect("limited");
//! let RouteKey::Known(id) = key else { panic!("declared in seed 004") };
//! assert_eq!(router.label(id), "GET /v1/campaigns/:id");
//!
//! let other = router.route(&Method::DELETE, "/v1/campaigns/42/").expect("limited");
//! assert_eq!(other, RouteKey::Other("DELETE /v1/campaigns/:id".into()));
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use http::Method;

mod declare_error;
mod fn_router;
mod generalize;
mod method_resource;
mod normalize;
mod rails;
mod rails_key;
mod rails_table;
mod templates;

pub use declare_error::DeclareError;
pub use fn_router::FnRouter;
pub use generalize::generalize_path;
pub use method_resource::MethodResource;
pub use normalize::normalize_path;
pub use rails::Rails;
pub use rails_key::{format_stats_key, parse_stats_key, StatsKeyError};
pub use rails_table::SEED000_KEYS;
pub use templates::{Templates, SEED004_DEFAULT_LIMIT, SEED004_TABLE};

/// A declared route's position in its router: an index into the layer's list
/// of buckets, always below [`Router::len`].
///
/// ```
/// use tower_quota::route::RouteId;
///
/// assert_eq!(RouteId(3).index(), 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteId(pub u32);

impl RouteId {
    /// The id as a `usize`, for indexing a `Vec`.
    pub fn index(self) -> usize {
        // u32 always fits in usize on the 32- and 64-bit targets tokio supports.
        self.0 as usize
    }
}

/// The route a request is charged to.
///
/// ```
/// use tower_quota::route::{RouteId, RouteKey};
///
/// let known = RouteKey::Known(RouteId(0));
/// assert_eq!(known.id(), Some(RouteId(0)));
/// let other = RouteKey::Other("GET.people".into());
/// assert_eq!(other.id(), None);
/// assert_eq!(other.into_owned(), RouteKey::Other("GET.people".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RouteKey<'a> {
    /// A route the router declares.
    Known(RouteId),
    /// A route the router does not declare, by its stable name; the layer
    /// charges it to a bucket at the default limit.
    Other(Cow<'a, str>),
}

impl RouteKey<'_> {
    /// The id of a [`RouteKey::Known`] route.
    pub fn id(&self) -> Option<RouteId> {
        match self {
            RouteKey::Known(id) => Some(*id),
            RouteKey::Other(_) => None,
        }
    }

    /// The same key, owning its name.
    pub fn into_owned(self) -> RouteKey<'static> {
        match self {
            RouteKey::Known(id) => RouteKey::Known(id),
            RouteKey::Other(name) => RouteKey::Other(Cow::Owned(name.into_owned())),
        }
    }

    /// The key's name: the label of a known route, the name of another.
    ///
    /// ```
    /// use http::Method;
    /// use tower_quota::route::{MethodResource, Router};
    ///
    /// let router = MethodResource::seed002();
    /// let key = router.route(&Method::GET, "/people/7").expect("limited");
    /// assert_eq!(key.name(&router), "GET.people");
    /// ```
    pub fn name<'s, R: Router + ?Sized>(&'s self, router: &'s R) -> &'s str {
        match self {
            RouteKey::Known(id) => router.label(*id),
            RouteKey::Other(name) => name,
        }
    }
}

/// From a request's method and path to the route it is charged to.
///
/// Implementations must be cheap and must not panic on any input: `route` runs
/// once per request, on paths that came from anywhere.
///
/// ```
/// use http::Method;
/// use tower_quota::route::{RouteKey, Router, Rails};
///
/// fn describe(router: &dyn Router, method: &Method, path: &str) -> String {
///     match router.route(method, path) {
///         Some(key) => key.name(router).to_owned(),
///         None => "not limited".to_owned(),
///     }
/// }
///
/// let rails = Rails::seed000();
/// assert_eq!(describe(&rails, &Method::POST, "/api/v1/contacts/search"), "api/v1/contacts#search");
/// assert_eq!(describe(&rails, &Method::GET, "/health"), "not limited");
/// ```
pub trait Router: Send + Sync + 'static {
    /// The route of a request; `None` when the request is not rate limited.
    /// `path` is the request target's path; a query string is ignored.
    fn route<'a>(&self, method: &Method, path: &'a str) -> Option<RouteKey<'a>>;

    /// The human-readable name of a declared route; the empty string for an id
    /// this router did not hand out.
    fn label(&self, id: RouteId) -> &str;

    /// How many routes are declared: their ids are exactly `0..len()`.
    fn len(&self) -> usize;

    /// Whether no route is declared (every key is [`RouteKey::Other`]).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id of the declared route whose label is `label`, for configuring
    /// limits by name. A linear search: not for the hot path.
    fn find(&self, label: &str) -> Option<RouteId> {
        (0..self.len())
            .filter_map(|i| u32::try_from(i).ok().map(RouteId))
            .find(|id| self.label(*id) == label)
    }
}

impl<R: Router + ?Sized> Router for Box<R> {
    fn route<'a>(&self, method: &Method, path: &'a str) -> Option<RouteKey<'a>> {
        (**self).route(method, path)
    }
    fn label(&self, id: RouteId) -> &str {
        (**self).label(id)
    }
    fn len(&self) -> usize {
        (**self).len()
    }
    fn find(&self, label: &str) -> Option<RouteId> {
        (**self).find(label)
    }
}

impl<R: Router + ?Sized> Router for Arc<R> {
    fn route<'a>(&self, method: &Method, path: &'a str) -> Option<RouteKey<'a>> {
        (**self).route(method, path)
    }
    fn label(&self, id: RouteId) -> &str {
        (**self).label(id)
    }
    fn len(&self) -> usize {
        (**self).len()
    }
    fn find(&self, label: &str) -> Option<RouteId> {
        (**self).find(label)
    }
}

/// The label of `id` in `labels`, or `""` for an id out of range.
fn label_at(labels: &[Box<str>], id: RouteId) -> &str {
    labels.get(id.index()).map_or("", |l| l)
}

/// The next id after `count` declared routes, if it still fits in a `u32`.
fn next_id(count: usize) -> Option<RouteId> {
    u32::try_from(count).ok().map(RouteId)
}

/// `method` in upper case, borrowed when it already is (every standard method).
fn method_upper(method: &Method) -> Cow<'_, str> {
    let s = method.as_str();
    if s.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(s.to_ascii_uppercase())
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_ids_have_empty_labels_and_find_is_by_label() {
        let r = Templates::seed004();
        assert_eq!(r.label(RouteId(10_000)), "");
        let id = r.find("GET /v1/teams/me").expect("declared");
        assert_eq!(r.label(id), "GET /v1/teams/me");
        assert_eq!(r.find("GET /v1/nothing"), None);
        let boxed: Box<dyn Router> = Box::new(r);
        assert_eq!(boxed.find("GET /v1/teams/me"), Some(id));
        assert!(!boxed.is_empty());
    }

    #[test]
    fn methods_are_upper_cased_only_when_needed() {
        assert!(matches!(method_upper(&Method::GET), Cow::Borrowed("GET")));
        let lower = Method::from_bytes(b"get").expect("valid token");
        assert_eq!(method_upper(&lower), "GET");
    }
}
