//! Why a poll of a usage endpoint failed.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

use super::SeedError;

/// A boxed error, as body readers return them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a poll of the usage endpoint failed. Never carries a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshError {
    /// 401: the endpoint did not accept the credentials.
    Unauthorized,
    /// 403: the credentials are valid but may not read usage.
    Forbidden,
    /// Another status that is not a success (5xx, 404, ...).
    Status(u16),
    /// 429: the endpoint is polled too often. No poll goes before its
    /// `Retry-After` (at most an hour), and the periodic task backs off.
    RateLimited {
        /// The endpoint's `Retry-After`, if it gave a usable one.
        retry_after: Option<Duration>,
    },
    /// The body is larger than [`Refresher::max_body_size`](super::Refresher::max_body_size);
    /// it was not read further, nor parsed.
    BodyTooLarge {
        /// The largest body accepted, in bytes.
        limit: usize,
    },
    /// No complete answer within the refresher's timeout.
    Timeout(Duration),
    /// The client stack failed (connection refused, the layer refused, ...).
    Transport(String),
    /// The body could not be read to the end.
    Body(String),
    /// The body is not a usable usage document.
    Seed(SeedError),
    /// The endpoint's URL is not valid.
    InvalidUrl(String),
    /// The endpoint's base URL carries credentials (`user:password@`). They
    /// would show wherever the URL does (logs, `Debug`, errors), so it is
    /// refused; they are not shown here either.
    CredentialsInUrl,
    /// A credential is not a valid header value (the value is not shown).
    InvalidCredential {
        /// The header that would have carried it.
        header: &'static str,
    },
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefreshError::Unauthorized => f.write_str("the usage endpoint answered 401: the credentials are missing or not valid; check the API key (and, for seed 002, the account key)"),
            RefreshError::Forbidden => f.write_str("the usage endpoint answered 403: seed 000 needs a master API key, seed 002 a registered system (`X-System`, `X-System-Key`)"),
            RefreshError::Status(s) => write!(f, "the usage endpoint answered {s}; limits are kept and the next poll tries again"),
            RefreshError::RateLimited { retry_after: Some(d) } => write!(f, "the usage endpoint answered 429 (too many requests): no poll before {d:?} from now; raise `Refresher::min_interval`"),
            RefreshError::RateLimited { retry_after: None } => f.write_str("the usage endpoint answered 429 (too many requests): the refresher backs off; raise `Refresher::min_interval`"),
            RefreshError::BodyTooLarge { limit } => write!(f, "the usage body is larger than {limit} bytes and was refused; raise `Refresher::max_body_size` if the endpoint really lists that many routes"),
            RefreshError::Timeout(d) => write!(f, "the usage endpoint did not answer within {d:?}; raise `Refresher::timeout` if it is slow"),
            RefreshError::Transport(e) => write!(f, "the usage request failed: {e}"),
            RefreshError::Body(e) => write!(f, "the usage body could not be read: {e}"),
            RefreshError::Seed(e) => write!(f, "the usage body is not usable: {e}"),
            RefreshError::InvalidUrl(e) => write!(f, "the usage endpoint's URL is not valid: {e}"),
            RefreshError::CredentialsInUrl => f.write_str("the usage endpoint's base URL carries credentials (`user:password@`), which would show in logs: remove them, and pass the keys to `UsageEndpoint::crm` or `UsageEndpoint::partner`"),
            RefreshError::InvalidCredential { header } => write!(f, "the value for `{header}` is not a valid header value"),
        }
    }
}

impl std::error::Error for RefreshError {}

impl RefreshError {
    pub(crate) fn from_status(status: StatusCode) -> RefreshError {
        match status {
            StatusCode::UNAUTHORIZED => RefreshError::Unauthorized,
            StatusCode::FORBIDDEN => RefreshError::Forbidden,
            s => RefreshError::Status(s.as_u16()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_errors_that_say_what_to_do() {
        assert_eq!(
            RefreshError::from_status(StatusCode::UNAUTHORIZED),
            RefreshError::Unauthorized
        );
        assert_eq!(
            RefreshError::from_status(StatusCode::FORBIDDEN),
            RefreshError::Forbidden
        );
        assert_eq!(
            RefreshError::from_status(StatusCode::BAD_GATEWAY),
            RefreshError::Status(502)
        );
        assert!(RefreshError::Forbidden.to_string().contains("master"));
    }
}
