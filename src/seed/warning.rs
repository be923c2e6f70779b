//! What a parser noticed but could work around.
//!
//! The server is the authority (DESIGN.md, contract 5), yet its usage bodies
//! contradict themselves (seed 000's example: `consumed: 500` and
//! `left_over: 6000` under `limit: 6000`) or carry values no count can have. A
//! parser takes the conservative reading or leaves the figure out, and says so
//! twice: through `tracing::warn!` for operators, and in
//! [`Seed::warnings`](super::Seed::warnings) for code and reports. Warnings
//! name the route key and the window, never a credential: usage bodies carry
//! none, and the parsers never see the request's headers.

use std::fmt;

use super::json::BadCount;

/// One thing a parser worked around.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedWarning {
    /// The route key it concerns (its label, e.g. `api/v1/contacts#search`,
    /// `GET.people`, or the raw key when that could not be read), if any.
    pub route: Option<String>,
    /// The window name it concerns (`day`, `per_account`, ...), if any.
    pub window: Option<String>,
    /// What happened.
    pub kind: WarningKind,
}

/// What a [`SeedWarning`] is about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// `consumed + left_over != limit`: read as
    /// `remaining = min(left_over, limit - consumed)`.
    Inconsistent {
        /// The server's limit.
        limit: u64,
        /// The server's `consumed`.
        consumed: u64,
        /// The server's `left_over`.
        left_over: u64,
    },
    /// A route key that is not a `["controller", "action"]` pair, or empty;
    /// the route was skipped.
    BadRouteKey(String),
    /// A window name the [`WindowNames`](super::WindowNames) table does not
    /// know; the window was skipped (add it with `WindowNames::with`).
    UnknownWindow,
    /// A scope name the format does not define; it was skipped.
    UnknownScope,
    /// A field that is not a usable count; the window was skipped.
    BadValue {
        /// Which field (`limit`, `consumed`, ...).
        field: &'static str,
        /// What is wrong with it.
        problem: BadCount,
    },
    /// Something that should be an object is not; it was skipped.
    NotAnObject {
        /// What it is instead.
        found: &'static str,
    },
    /// A route and window given twice; the tighter figures were kept.
    Duplicate,
    /// A field given more than once in one object, with different values;
    /// the conservative one was kept: the smallest limit or remaining, the
    /// largest count used (or, in the 24-hour summary, of requests).
    Repeated {
        /// Which field.
        field: &'static str,
    },
    /// A field of the 24-hour summary is missing or malformed; the summary
    /// was left out (limits are unaffected).
    BadSummary {
        /// Which field.
        field: &'static str,
    },
    /// `period` is not the documented `last_24h`; the summary was kept.
    UnexpectedPeriod,
}

impl SeedWarning {
    pub(crate) fn new(route: Option<&str>, window: Option<&str>, kind: WarningKind) -> SeedWarning {
        SeedWarning {
            // Keys come from the network: keep a hostile one from flooding logs.
            route: route.map(|r| clip(r, 120)),
            window: window.map(|w| clip(w, 60)),
            kind,
        }
    }

    /// Logs the warning through `tracing::warn!` (target `tower_quota::seed`).
    pub(crate) fn emit(&self) {
        tracing::warn!(
            target: "tower_quota::seed",
            route = self.route.as_deref().unwrap_or("-"),
            window = self.window.as_deref().unwrap_or("-"),
            "{}",
            self.kind
        );
    }
}

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", s.get(..at).unwrap_or(s)),
        None => s.to_owned(),
    }
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WarningKind::Inconsistent {
                limit,
                consumed,
                left_over,
            } => write!(
                f,
                "consumed {consumed} + left_over {left_over} != limit {limit}: \
                 reading the tighter remaining"
            ),
            WarningKind::BadRouteKey(why) => write!(f, "route skipped: {why}"),
            WarningKind::UnknownWindow => {
                f.write_str("unknown window name skipped: add it to the WindowNames table")
            }
            WarningKind::UnknownScope => f.write_str("unknown scope skipped"),
            WarningKind::BadValue { field, problem } => {
                write!(f, "window skipped: `{field}` is {problem}")
            }
            WarningKind::NotAnObject { found } => {
                write!(f, "skipped: {found} where an object was expected")
            }
            WarningKind::Duplicate => f.write_str("given twice: keeping the tighter figures"),
            WarningKind::Repeated { field } => write!(
                f,
                "`{field}` given more than once with different values: keeping the conservative one"
            ),
            WarningKind::BadSummary { field } => {
                write!(
                    f,
                    "24-hour summary left out: `{field}` is missing or malformed"
                )
            }
            WarningKind::UnexpectedPeriod => f.write_str("period is not `last_24h`"),
        }
    }
}

impl fmt::Display for SeedWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(route) = &self.route {
            write!(f, "{route}: ")?;
        }
        if let Some(window) = &self.window {
            write!(f, "{window}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_route_and_window_and_clip_long_keys() {
        let w = SeedWarning::new(
            Some("api/v1/contacts#search"),
            Some("day"),
            WarningKind::Inconsistent {
                limit: 6000,
                consumed: 500,
                left_over: 6000,
            },
        );
        assert_eq!(
            w.to_string(),
            "api/v1/contacts#search: day: consumed 500 + left_over 6000 != limit 6000: \
             reading the tighter remaining"
        );
        w.emit();
        let long = "é".repeat(500);
        let w = SeedWarning::new(Some(&long), None, WarningKind::UnknownScope);
        assert_eq!(w.route.as_deref().map(|r| r.chars().count()), Some(123));
    }
}
