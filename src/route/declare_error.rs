//! Why a router refused to declare a route.

use std::fmt;

/// A route a router cannot declare.
///
/// ```
/// use tower_quota::route::{DeclareError, Templates};
///
/// let mut t = Templates::new();
/// t.add("GET", "/v1/users/:id").expect("valid");
/// let err = t.add("GET", "/v1/users/{user}").unwrap_err();
/// assert!(matches!(err, DeclareError::Conflict { .. }));
/// assert!(err.to_string().contains("GET /v1/users/:id"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeclareError {
    /// The method is not an HTTP method token.
    InvalidMethod {
        /// The method as given.
        method: String,
    },
    /// A label such as `"GET /v1/x"` has no space between method and path.
    MissingMethod {
        /// The label as given.
        label: String,
    },
    /// The template's syntax is wrong (an unnamed parameter, a catch-all that
    /// is not last, unbalanced braces).
    InvalidTemplate {
        /// The template as given.
        template: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key (`GET.people`, a Rails controller or action) is malformed.
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A Rails controller is not under the router's prefix.
    OutsidePrefix {
        /// The controller as given.
        controller: String,
        /// The router's prefix.
        prefix: String,
    },
    /// The route matches the same requests as one declared before it (for
    /// keys: it is the same key).
    Conflict {
        /// The refused route, `METHOD /path`.
        route: String,
        /// The route declared before it.
        with: String,
    },
    /// More routes than ids (`u32::MAX`).
    TooMany,
}

impl fmt::Display for DeclareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeclareError::InvalidMethod { method } => write!(
                f,
                "`{}` is not an HTTP method; use a token such as GET or POST",
                method.escape_debug()
            ),
            DeclareError::MissingMethod { label } => write!(
                f,
                "route `{}` has no method; write it as `METHOD /path`, e.g. `GET /v1/users/:id`",
                label.escape_debug()
            ),
            DeclareError::InvalidTemplate { template, reason } => write!(
                f,
                "route template `{}` is invalid: {reason}; parameters are whole segments \
                 written `:name` or `{{name}}`, a catch-all `*name` comes last",
                template.escape_debug()
            ),
            DeclareError::InvalidKey { key, reason } => {
                write!(f, "route key `{}` is invalid: {reason}", key.escape_debug())
            }
            DeclareError::OutsidePrefix { controller, prefix } => write!(
                f,
                "controller `{}` is not under the prefix `{prefix}`; write its full path, \
                 e.g. `{prefix}/contacts`",
                controller.escape_debug()
            ),
            DeclareError::Conflict { route, with } => write!(
                f,
                "route `{route}` matches the same paths as `{with}`, declared before it; \
                 declare each route once, with one parameter name per position"
            ),
            DeclareError::TooMany => write!(f, "more than u32::MAX routes declared"),
        }
    }
}

impl std::error::Error for DeclareError {}
