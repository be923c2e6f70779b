//! Route keys from a closure, for servers with rules of their own.
//!
//! When none of the built-in routers names routes the way a server does, a
//! closure can. Names it returns that were declared become
//! [`RouteKey::Known`] (found by comparing strings, linearly: declare few);
//! every other name is [`RouteKey::Other`].

use std::borrow::Cow;
use std::fmt;

use http::Method;

use super::{label_at, next_id, RouteId, RouteKey, Router};

/// A router that asks a closure for the route's name.
///
/// The closure receives the method and the path exactly as the layer got
/// them; use [`normalize_path`](super::normalize_path) to ignore spelling.
/// Returning `None` means the request is not rate limited.
///
/// ```
/// use http::Method;
/// use tower_quota::route::{normalize_path, FnRouter, RouteKey, Router};
///
/// let router = FnRouter::new(|method: &Method, path: &str| {
///     let path = normalize_path(path);
///     let first = path.split('/').nth(1).filter(|s| !s.is_empty())?;
///     Some(format!("{method} {first}"))
/// })
/// .declare("POST search");
/// assert_eq!(router.route(&Method::POST, "/search?q=x"), Some(RouteKey::Known(router.find("POST search").expect("declared"))));
/// assert_eq!(router.route(&Method::GET, "/items/1"), Some(RouteKey::Other("GET items".into())));
/// assert_eq!(router.route(&Method::GET, "/"), None);
/// ```
pub struct FnRouter<F> {
    name: F,
    labels: Vec<Box<str>>,
}

impl<F> FnRouter<F>
where
    F: Fn(&Method, &str) -> Option<String> + Send + Sync + 'static,
{
    /// A router over `name`, with nothing declared.
    pub fn new(name: F) -> FnRouter<F> {
        FnRouter {
            name,
            labels: Vec::new(),
        }
    }

    /// Declares the name `label`: the closure returning it yields the next id.
    /// Declaring a name twice, or more than `u32::MAX` names, changes nothing.
    pub fn declare(mut self, label: impl Into<String>) -> FnRouter<F> {
        let label: Box<str> = label.into().into();
        if !self.labels.contains(&label) && next_id(self.labels.len()).is_some() {
            self.labels.push(label);
        }
        self
    }
}

impl<F> Router for FnRouter<F>
where
    F: Fn(&Method, &str) -> Option<String> + Send + Sync + 'static,
{
    fn route<'a>(&self, method: &Method, path: &'a str) -> Option<RouteKey<'a>> {
        let name = (self.name)(method, path)?;
        let known = self.labels.iter().position(|l| **l == *name);
        match known.and_then(next_id) {
            Some(id) => Some(RouteKey::Known(id)),
            None => Some(RouteKey::Other(Cow::Owned(name))),
        }
    }

    fn label(&self, id: RouteId) -> &str {
        label_at(&self.labels, id)
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

impl<F> fmt::Debug for FnRouter<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnRouter")
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_names_are_dense_and_deduplicated() {
        let r = FnRouter::new(|_: &Method, p: &str| Some(p.to_owned()))
            .declare("/a")
            .declare("/b")
            .declare("/a");
        assert_eq!(r.len(), 2);
        assert_eq!(
            r.route(&Method::GET, "/b"),
            Some(RouteKey::Known(RouteId(1)))
        );
        assert_eq!(r.label(RouteId(1)), "/b");
        assert_eq!(
            r.route(&Method::GET, "/c"),
            Some(RouteKey::Other("/c".into()))
        );
        assert!(format!("{r:?}").contains("/a"));
    }
}
