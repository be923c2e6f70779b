//! Why a usage body cannot be used at all.
//!
//! A seed either describes the whole body or is refused: a body that was cut
//! short (seed 000's own example is) or is not the documented shape gives an
//! error, never a partial seed that would be applied as if it were complete.
//! Problems confined to one window or one route (a negative count, an unknown
//! window name) do not refuse the body: they are
//! [`SeedWarning`](super::SeedWarning)s, and the figures concerned are left out.

use std::fmt;

/// A usage body that cannot be read. Each message says what to do about it.
///
/// ```
/// use tower_quota::seed::{parse_crm_usage, SeedError, WindowNames};
///
/// let err = parse_crm_usage(br#"{"[\"api/v1/contacts\", \"search\"]": {"#, &WindowNames::standard())
///     .unwrap_err();
/// assert!(matches!(err, SeedError::Truncated { .. }));
/// assert!(err.to_string().contains("fetch it again"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeedError {
    /// The body ends before the JSON document does: the response was cut short
    /// (a dropped connection, a proxy's size limit, a copy-paste).
    Truncated {
        /// The line (1-based) at which the body ended.
        line: usize,
        /// The column (1-based) at which the body ended.
        column: usize,
    },
    /// The body is not JSON (an HTML error page, a wrong endpoint, garbage
    /// after the document).
    NotJson {
        /// The line (1-based) of the first error.
        line: usize,
        /// The column (1-based) of the first error.
        column: usize,
        /// `serde_json`'s description of it (it never quotes the body).
        reason: String,
    },
    /// The JSON is not the documented shape.
    UnexpectedShape {
        /// Where, as a path such as `usage.current_limits`.
        at: String,
        /// What the format requires there.
        expected: &'static str,
        /// What the body has there.
        found: &'static str,
    },
    /// The body is well formed but holds no figure that could be used (an
    /// empty object, or every window skipped with a warning).
    NoFigures,
    /// The configured window of a format that gives none (seed 002) is zero.
    ZeroWindow,
}

impl SeedError {
    pub(crate) fn from_json(e: &serde_json::Error) -> SeedError {
        let (line, column) = (e.line(), e.column());
        if e.is_eof() {
            return SeedError::Truncated { line, column };
        }
        SeedError::NotJson {
            line,
            column,
            reason: e.to_string(),
        }
    }

    pub(crate) fn shape(
        at: impl Into<String>,
        expected: &'static str,
        found: &'static str,
    ) -> SeedError {
        SeedError::UnexpectedShape {
            at: at.into(),
            expected,
            found,
        }
    }
}

impl fmt::Display for SeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeedError::Truncated { line, column } => write!(
                f,
                "the usage body ends early (line {line}, column {column}): it was cut short in \
                 transit; nothing was applied, fetch it again"
            ),
            SeedError::NotJson {
                line,
                column,
                reason,
            } => write!(
                f,
                "the usage body is not JSON (line {line}, column {column}: {reason}); check the \
                 endpoint's URL and method and that the response is the usage document, not an \
                 error page"
            ),
            SeedError::UnexpectedShape {
                at,
                expected,
                found,
            } => write!(
                f,
                "the usage body has {found} at `{at}` where the format has {expected}; check \
                 that the parser matches the endpoint (parse_crm_usage for usage_stats, \
                 parse_partner_usage for /rateLimit/usage)"
            ),
            SeedError::NoFigures => f.write_str(
                "the usage body holds no usable figure; see the warnings logged while parsing, \
                 and check that the key may read usage (seed 000 needs a master key)",
            ),
            SeedError::ZeroWindow => f.write_str(
                "the configured window is zero; pass the length the server's limits are per \
                 (60 s if it does not say)",
            ),
        }
    }
}

impl std::error::Error for SeedError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eof_is_truncation_and_the_rest_is_not_json() {
        let eof = serde_json::from_slice::<serde_json::Value>(b"{\"a\": 1").unwrap_err();
        assert_eq!(
            SeedError::from_json(&eof),
            SeedError::Truncated { line: 1, column: 7 }
        );
        let junk = serde_json::from_slice::<serde_json::Value>(b"<html>").unwrap_err();
        let err = SeedError::from_json(&junk);
        assert!(matches!(
            err,
            SeedError::NotJson {
                line: 1,
                column: 1,
                ..
            }
        ));
        assert!(err.to_string().contains("error page"));
        let shape = SeedError::shape("usage", "an object", "a string");
        assert!(shape.to_string().contains("a string at `usage`"));
        assert!(SeedError::NoFigures.to_string().contains("master key"));
        assert!(SeedError::ZeroWindow.to_string().contains("60 s"));
    }
}
