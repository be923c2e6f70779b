//! A usage endpoint: where it is, how to call it, how to read its answer.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};

use super::refresh_error::{BoxError, RefreshError};
use super::PARTNER_DEFAULT_WINDOW;
use super::{parse_crm_usage, parse_partner_usage, Seed, SeedError, SeedSource, WindowNames};

/// A response the refresher can read: its status, its `Retry-After`, and its
/// whole body.
///
/// Implemented for `http::Response<B>` with any `http_body::Body` (hyper's
/// `Incoming`, `http_body_util::Full`, ...) when the `testkit` feature brings
/// hyper in; implement it for other clients' responses.
pub trait UsageResponse: Send {
    /// The status code.
    fn status(&self) -> StatusCode;

    /// How long the server asks not to be polled again (its `Retry-After`),
    /// if it says. The default reads nothing: implement it so that a 429
    /// from the usage endpoint is kept to.
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// The whole body.
    fn into_body(self) -> impl Future<Output = Result<Vec<u8>, BoxError>> + Send;

    /// The whole body if it is at most `limit` bytes, else
    /// [`RefreshError::BodyTooLarge`]. The default reads all of it with
    /// [`into_body`](UsageResponse::into_body) first: implement it to stop
    /// reading at the limit.
    fn into_body_up_to(
        self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<u8>, RefreshError>> + Send
    where
        Self: Sized,
    {
        async move {
            let body = self
                .into_body()
                .await
                .map_err(|e| RefreshError::Body(e.to_string()))?;
            if body.len() > limit {
                return Err(RefreshError::BodyTooLarge { limit });
            }
            Ok(body)
        }
    }
}

#[cfg(feature = "testkit")]
impl<B> UsageResponse for http::Response<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn status(&self) -> StatusCode {
        http::Response::status(self)
    }

    fn retry_after(&self) -> Option<Duration> {
        let received_at = std::time::SystemTime::now();
        let seen = crate::headers::HeaderRules::standard()
            .only_declared()
            .parse(self.headers(), received_at);
        Some(seen.retry_after?.wait(seen.server_now(received_at)))
    }

    fn into_body(self) -> impl Future<Output = Result<Vec<u8>, BoxError>> + Send {
        use http_body_util::BodyExt;
        async move {
            let collected = http::Response::into_body(self)
                .collect()
                .await
                .map_err(Into::into)?;
            Ok(collected.to_bytes().to_vec())
        }
    }

    fn into_body_up_to(
        self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<u8>, RefreshError>> + Send {
        use http_body_util::{BodyExt, LengthLimitError, Limited};
        async move {
            match Limited::new(http::Response::into_body(self), limit)
                .collect()
                .await
            {
                Ok(collected) => Ok(collected.to_bytes().to_vec()),
                Err(e) if e.is::<LengthLimitError>() => Err(RefreshError::BodyTooLarge { limit }),
                Err(e) => Err(RefreshError::Body(e.to_string())),
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Format {
    Crm(WindowNames),
    Partner(Duration),
}

/// A usage endpoint: where it is, how to call it, and how to read its body.
///
/// `Debug` shows the URL and the format, never the credentials: they travel
/// in headers marked sensitive, and a URL carrying any (`user:password@`) is
/// refused when the endpoint is built.
#[derive(Clone)]
pub struct UsageEndpoint {
    method: Method,
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    format: Format,
}

impl fmt::Debug for UsageEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageEndpoint")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("format", &self.format)
            .field("credentials", &"<redacted>")
            .finish()
    }
}

impl UsageEndpoint {
    /// Seed 000's path.
    pub const CRM_PATH: &'static str = "/api/v1/usage_stats/api_usage_stats";
    /// Seed 002's path.
    pub const PARTNER_PATH: &'static str = "/rateLimit/usage";

    /// Seed 000: `POST {base_url}/api/v1/usage_stats/api_usage_stats` with the
    /// master key in `X-Api-Key` (a non-master key gets 403), read with
    /// [`parse_crm_usage`] and [`WindowNames::standard`].
    ///
    /// # Errors
    ///
    /// An invalid URL, a URL with credentials in it
    /// ([`RefreshError::CredentialsInUrl`]: pass keys as arguments), or a key
    /// that is not a valid header value.
    pub fn crm(base_url: &str, master_key: &str) -> Result<UsageEndpoint, RefreshError> {
        Ok(UsageEndpoint {
            method: Method::POST,
            uri: url(base_url, Self::CRM_PATH)?,
            headers: vec![
                secret("x-api-key", master_key)?,
                (ACCEPT, HeaderValue::from_static("application/json")),
                (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            ],
            format: Format::Crm(WindowNames::standard()),
        })
    }

    /// Seed 002: `GET {base_url}/rateLimit/usage` with `X-System`,
    /// `X-System-Key` and the account's `X-Api-Key`, read with
    /// [`parse_partner_usage`] per [`PARTNER_DEFAULT_WINDOW`].
    ///
    /// # Errors
    ///
    /// An invalid URL, a URL with credentials in it
    /// ([`RefreshError::CredentialsInUrl`]), or a credential that is not a
    /// valid header value.
    pub fn partner(
        base_url: &str,
        system: &str,
        system_key: &str,
        api_key: &str,
    ) -> Result<UsageEndpoint, RefreshError> {
        Ok(UsageEndpoint {
            method: Method::GET,
            uri: url(base_url, Self::PARTNER_PATH)?,
            headers: vec![
                secret("x-system", system)?,
                secret("x-system-key", system_key)?,
                secret("x-api-key", api_key)?,
                (ACCEPT, HeaderValue::from_static("application/json")),
            ],
            format: Format::Partner(PARTNER_DEFAULT_WINDOW),
        })
    }

    /// Seed 000: what its window names mean (e.g.
    /// [`WindowNames::scaled`] for a time-compressed test server). No effect on
    /// seed 002.
    pub fn window_names(mut self, names: WindowNames) -> UsageEndpoint {
        if let Format::Crm(n) = &mut self.format {
            *n = names;
        }
        self
    }

    /// Seed 002: the window of its ceilings (default one minute). No effect on
    /// seed 000.
    pub fn window(mut self, window: Duration) -> UsageEndpoint {
        if let Format::Partner(w) = &mut self.format {
            *w = window;
        }
        self
    }

    /// The request's method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request's URL.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Which format the body is read as.
    pub fn source(&self) -> SeedSource {
        match self.format {
            Format::Crm(_) => SeedSource::CrmUsageStats,
            Format::Partner(_) => SeedSource::PartnerUsage,
        }
    }

    /// The usage request, with an empty body of the client's type.
    /// Credentials are marked sensitive.
    pub fn request<B: Default>(&self) -> Request<B> {
        let mut req = Request::new(B::default());
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        for (name, value) in &self.headers {
            req.headers_mut().insert(name.clone(), value.clone());
        }
        req
    }

    /// Reads a body of this endpoint.
    ///
    /// # Errors
    ///
    /// See [`parse_crm_usage`] and [`parse_partner_usage`].
    pub fn parse(&self, body: &[u8]) -> Result<Seed, SeedError> {
        match &self.format {
            Format::Crm(names) => parse_crm_usage(body, names),
            Format::Partner(window) => parse_partner_usage(body, *window),
        }
    }
}

/// `base` with `path` appended. Credentials in `base` are refused before
/// anything else is looked at: errors never quote the URL, and an endpoint
/// never holds a secret where `Debug`, `uri()` or a log would show it.
fn url(base: &str, path: &str) -> Result<Uri, RefreshError> {
    if has_userinfo(base) {
        return Err(RefreshError::CredentialsInUrl);
    }
    let uri = format!("{}{path}", base.trim_end_matches('/'))
        .parse::<Uri>()
        .map_err(|e| RefreshError::InvalidUrl(e.to_string()))?;
    // The parser agrees, or the URL is refused all the same.
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(RefreshError::CredentialsInUrl);
    }
    Ok(uri)
}

/// Whether `url`'s authority (after `scheme://` or `//`, up to the next `/`,
/// `?` or `#`) has a `user[:password]@` part.
fn has_userinfo(url: &str) -> bool {
    let after_scheme = match url.split_once("://") {
        Some((_, rest)) => rest,
        None => url.strip_prefix("//").unwrap_or(url),
    };
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or(after_scheme);
    authority.contains('@')
}

fn secret(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue), RefreshError> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| RefreshError::InvalidCredential { header: name })?;
    v.set_sensitive(true);
    Ok((HeaderName::from_static(name), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response of another client: only the required methods.
    struct Canned(&'static [u8]);

    impl UsageResponse for Canned {
        fn status(&self) -> StatusCode {
            StatusCode::OK
        }
        fn into_body(self) -> impl Future<Output = Result<Vec<u8>, BoxError>> + Send {
            std::future::ready(Ok(self.0.to_vec()))
        }
    }

    #[tokio::test]
    async fn the_default_body_reader_keeps_to_the_limit() {
        assert_eq!(Canned(b"12345").retry_after(), None);
        assert_eq!(
            Canned(b"12345").into_body_up_to(5).await,
            Ok(b"12345".to_vec())
        );
        assert_eq!(
            Canned(b"123456").into_body_up_to(5).await,
            Err(RefreshError::BodyTooLarge { limit: 5 })
        );
    }

    #[test]
    fn endpoints_hide_their_credentials() {
        let e = UsageEndpoint::partner("http://h/", "sys", "very-secret", "acct-secret")
            .expect("valid");
        let text = format!("{e:?}");
        assert!(
            !text.contains("very-secret") && !text.contains("acct-secret"),
            "{text}"
        );
        assert_eq!(e.uri().path(), "/rateLimit/usage");
        let req = e.request::<()>();
        assert!(req
            .headers()
            .get("x-system-key")
            .is_some_and(|v| v.is_sensitive()));
        let bad = UsageEndpoint::crm("http://h", "new\nline").map(|_| ());
        assert_eq!(
            bad,
            Err(RefreshError::InvalidCredential {
                header: "x-api-key"
            })
        );
        assert!(!RefreshError::InvalidCredential {
            header: "x-api-key"
        }
        .to_string()
        .contains("new"));
        assert!(matches!(
            UsageEndpoint::crm("not a url", "k"),
            Err(RefreshError::InvalidUrl(_))
        ));
    }

    #[test]
    fn only_an_authority_with_userinfo_is_refused() {
        for base in [
            "https://u:p@h",
            "http://u@h:8080/x",
            "//u:p@h",
            "https://u:p@ss@h/",
        ] {
            assert!(has_userinfo(base), "{base}");
            let refused = UsageEndpoint::crm(base, "k").map(|_| ());
            assert_eq!(refused, Err(RefreshError::CredentialsInUrl), "{base}");
        }
        for base in [
            "https://h/team/@me",
            "http://h:8080",
            "https://h/?a=b@c",
            "h",
        ] {
            assert!(!has_userinfo(base), "{base}");
        }
        let at_in_path = UsageEndpoint::crm("https://h/team/@me", "k");
        assert!(at_in_path.is_ok(), "{at_in_path:?}");
    }
}
