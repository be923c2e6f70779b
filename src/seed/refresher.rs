//! The refresher: polls a usage endpoint through the client's own stack and
//! applies what it says to the [`Limiter`].
//!
//! The documentation, with an example, is on [`Refresher`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use tower::ServiceExt;
use tower_service::Service;

use super::PARTNER_DEFAULT_WINDOW;
use super::{
    parse_crm_usage, parse_partner_usage, RoundTrip, Seed, SeedError, SeedSource, WindowNames,
};
use crate::clock::{Clock, Nanos, TokioClock};
use crate::limiter::Limiter;
use crate::seeding::SeedReport;

/// A boxed error, as body readers return them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type BodyFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, RefreshError>> + Send>>;
type Fetch = dyn Fn() -> BodyFuture + Send + Sync;

/// The default [`Refresher::min_interval`]: one minute, as seed 002 asks.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(60);

/// The default [`Refresher::timeout`] of one poll.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A response the refresher can read: its status and its whole body.
///
/// Implemented for `http::Response<B>` with any `http_body::Body` (hyper's
/// `Incoming`, `http_body_util::Full`, ...) when the `testkit` feature brings
/// hyper in; implement it for other clients' responses.
pub trait UsageResponse: Send {
    /// The status code.
    fn status(&self) -> StatusCode;
    /// The whole body.
    fn into_body(self) -> impl Future<Output = Result<Vec<u8>, BoxError>> + Send;
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
}

/// Why a poll of the usage endpoint failed. Never carries a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshError {
    /// 401: the endpoint did not accept the credentials.
    Unauthorized,
    /// 403: the credentials are valid but may not read usage.
    Forbidden,
    /// Another status that is not a success (5xx, 404, 429, ...).
    Status(u16),
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
    fn from_status(status: StatusCode) -> RefreshError {
        match status {
            StatusCode::UNAUTHORIZED => RefreshError::Unauthorized,
            StatusCode::FORBIDDEN => RefreshError::Forbidden,
            s => RefreshError::Status(s.as_u16()),
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

/// What the refresher has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefresherStatus {
    /// When the last successful poll was applied, on the limiter's clock.
    pub last_ok: Option<Nanos>,
    /// The error of the latest poll; `None` once a poll succeeds.
    pub last_error: Option<RefreshError>,
    /// Polls sent (successful or not; skipped ones inside the minimum
    /// interval are not polls).
    pub polls: u64,
    /// Polls that failed.
    pub failures: u64,
    /// What the last successful poll applied.
    pub last_report: Option<SeedReport>,
}

/// What [`Refresher::refresh_once`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Polled, and applied what the server said.
    Applied(SeedReport),
    /// Not polled: the last poll was less than the minimum interval ago.
    TooSoon {
        /// How long until the next poll is allowed.
        wait: Duration,
    },
}

struct State {
    last_poll: Option<Nanos>,
    status: RefresherStatus,
}

/// Polls a [`UsageEndpoint`] through a client stack and applies the answers
/// to a [`Limiter`].
///
/// At start-up and then at most once per [`Refresher::min_interval`] (default
/// 60 s: seed 002 caches its answer for 30 s and asks for at most one poll a
/// minute), the refresher sends the usage request with the endpoint's
/// credentials ([`UsageEndpoint::crm`]: `POST` with the master key;
/// [`UsageEndpoint::partner`]: `GET` with `X-System`, `X-System-Key` and the
/// account's `X-Api-Key`), reads the body with the seed's parser and hands the
/// [`Seed`] to [`Limiter::apply_seed`], with the poll's [`RoundTrip`]: the
/// client's own requests sent while the usage request was on its way count on
/// top of the server's figures.
///
/// # Through the same client
///
/// The request goes through the service you give it, normally the layered
/// client itself, so it shares connections, TLS, proxies and timeouts with
/// every other request. The usage call is not throttled away by the quotas it
/// refreshes: [`Rails::seed000`](crate::route::Rails::seed000) and
/// [`MethodResource::seed002`](crate::route::MethodResource::seed002) exempt
/// the usage endpoints, so the layer charges them to no route bucket (the
/// servers do not meter them either). Keyed scopes still see the call: a
/// per-account or per-API-key scope keyed on the header that carries the
/// usage credential charges it one unit per poll.
///
/// # Failures
///
/// A failed poll (401, 403, 5xx, a timeout, a transport error, a body that is
/// cut short or is not the format) changes no limit: nothing is applied, the
/// error is logged with `tracing::warn!` and kept in [`RefresherStatus`], and
/// the next poll comes one interval later. Nothing panics, and the client
/// keeps running on what it knew. Errors and logs never carry a credential.
///
/// # Example
///
/// A canned response stands in for a server here (see `tests/seeding_refresh.rs`
/// for the real thing on loopback):
///
/// ```
/// use std::convert::Infallible;
/// use std::future::Future;
/// use http::StatusCode;
/// use tower_quota::quota::Quota;
/// use tower_quota::route::Rails;
/// use tower_quota::seed::{Refresher, RefreshOutcome, UsageEndpoint, UsageResponse};
/// use tower_quota::{Limiter, OtherRoutes};
///
/// /// A response already in memory.
/// struct Canned(&'static [u8]);
///
/// impl UsageResponse for Canned {
///     fn status(&self) -> StatusCode {
///         StatusCode::OK
///     }
///     fn into_body(self) -> impl Future<Output = Result<Vec<u8>, tower_quota::seed::BoxError>> + Send {
///         std::future::ready(Ok(self.0.to_vec()))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let limiter = Limiter::builder()
///     .routes(Rails::seed000(), |_| Some(Quota::per_minute(200).into()), OtherRoutes::Unlimited)
///     .build();
/// let server = tower::service_fn(|_req: http::Request<()>| async {
///     Ok::<_, Infallible>(Canned(br#"{"[\"api/v1/contacts\", \"search\"]": {
///         "minute": { "limit": 100, "consumed": 10, "left_over": 90 } } }"#))
/// });
/// let endpoint = UsageEndpoint::crm("https://crm.example.com", "the-master-key")?;
/// let refresher = Refresher::new(limiter, server, endpoint);
///
/// let Ok(RefreshOutcome::Applied(report)) = refresher.refresh_once().await else {
///     panic!("the canned body is valid");
/// };
/// assert_eq!(report.limits_changed(), 1);
/// // Inside the minimum interval, the server is not asked again.
/// assert!(matches!(refresher.refresh_once().await, Ok(RefreshOutcome::TooSoon { .. })));
/// assert_eq!(refresher.status().polls, 1);
/// # Ok(())
/// # }
/// ```
pub struct Refresher<C = TokioClock> {
    limiter: Arc<Limiter<C>>,
    endpoint: UsageEndpoint,
    fetch: Box<Fetch>,
    min_interval: Duration,
    timeout: Duration,
    state: Mutex<State>,
}

impl<C> fmt::Debug for Refresher<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refresher")
            .field("endpoint", &self.endpoint)
            .field("min_interval", &self.min_interval)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<C: Clock> Refresher<C> {
    /// A refresher that polls `endpoint` through `service` (typically the
    /// layered client: `QuotaLayer::new(limiter.clone())` over your client)
    /// and applies the answers to `limiter`.
    pub fn new<S, B>(limiter: Arc<Limiter<C>>, service: S, endpoint: UsageEndpoint) -> Refresher<C>
    where
        S: Service<Request<B>> + Clone + Send + 'static,
        S::Future: Send,
        S::Response: UsageResponse,
        S::Error: fmt::Display,
        B: Default + Send + 'static,
    {
        let service = Mutex::new(service);
        let for_fetch = endpoint.clone();
        let fetch = move || -> BodyFuture {
            let svc = lock(&service).clone();
            let req = for_fetch.request::<B>();
            Box::pin(fetch_body(svc, req))
        };
        Refresher {
            limiter,
            endpoint,
            fetch: Box::new(fetch),
            min_interval: DEFAULT_MIN_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            state: Mutex::new(State {
                last_poll: None,
                status: RefresherStatus::default(),
            }),
        }
    }

    /// The least time between two polls (default [`DEFAULT_MIN_INTERVAL`]);
    /// also the period of the spawned task.
    pub fn min_interval(mut self, interval: Duration) -> Refresher<C> {
        self.min_interval = interval;
        self
    }

    /// How long one poll may take, body included (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Refresher<C> {
        self.timeout = timeout;
        self
    }

    /// The endpoint polled.
    pub fn endpoint(&self) -> &UsageEndpoint {
        &self.endpoint
    }

    /// What the refresher has done so far.
    pub fn status(&self) -> RefresherStatus {
        lock(&self.state).status.clone()
    }

    /// One step: polls the endpoint unless the last poll was less than the
    /// minimum interval ago, and applies the answer. A failure updates the
    /// status, is logged, and changes no limit.
    ///
    /// # Errors
    ///
    /// The poll's failure, also kept in [`RefresherStatus::last_error`].
    pub async fn refresh_once(&self) -> Result<RefreshOutcome, RefreshError> {
        let sent = self.limiter.clock().now();
        {
            let mut state = lock(&self.state);
            if let Some(last) = state.last_poll {
                let since = sent.saturating_since(last);
                if since < self.min_interval {
                    return Ok(RefreshOutcome::TooSoon {
                        wait: self.min_interval - since,
                    });
                }
            }
            state.last_poll = Some(sent);
            state.status.polls += 1;
        }
        let fetched = match tokio::time::timeout(self.timeout, (self.fetch)()).await {
            Ok(body) => body,
            Err(_) => Err(RefreshError::Timeout(self.timeout)),
        };
        let received = self.limiter.clock().now();
        let seed = fetched.and_then(|body| self.endpoint.parse(&body).map_err(RefreshError::Seed));
        match seed {
            Ok(seed) => {
                // Requests sent during the round trip count on top of the figures.
                let report = self
                    .limiter
                    .apply_seed(&seed, RoundTrip::new(sent, received));
                let mut state = lock(&self.state);
                state.status.last_ok = Some(received);
                state.status.last_error = None;
                state.status.last_report = Some(report.clone());
                Ok(RefreshOutcome::Applied(report))
            }
            Err(error) => {
                tracing::warn!(target: "tower_quota::seed", endpoint = %self.endpoint.uri, %error, "usage refresh failed; limits unchanged");
                let mut state = lock(&self.state);
                state.status.failures += 1;
                state.status.last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// The periodic task and its handle: the task polls at once, then every
    /// minimum interval, until the handle is dropped or stopped. Spawn the
    /// task on your runtime (or use [`Refresher::spawn`]).
    pub fn into_task(self) -> (impl Future<Output = ()> + Send + 'static, RefreshHandle<C>) {
        let refresher = Arc::new(self);
        let stop = Arc::new(Stop::default());
        let handle = RefreshHandle {
            refresher: refresher.clone(),
            stop: stop.clone(),
        };
        let task = async move {
            loop {
                let Some(outcome) = Stoppable::new(refresher.refresh_once(), &stop).await else {
                    return;
                };
                let wait = match outcome {
                    Ok(RefreshOutcome::TooSoon { wait }) => wait,
                    _ => refresher.min_interval,
                };
                let sleep = tokio::time::sleep(wait.max(Duration::from_millis(1)));
                if Stoppable::new(sleep, &stop).await.is_none() {
                    return;
                }
            }
        };
        (task, handle)
    }

    /// Spawns the periodic task (see [`Refresher::into_task`]) on the current
    /// tokio runtime (or spawn [`Refresher::into_task`]'s future yourself, on
    /// any executor with tokio's timer).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub fn spawn(self) -> RefreshHandle<C> {
        let (task, handle) = self.into_task();
        tokio::spawn(task);
        handle
    }
}

async fn fetch_body<S, B>(mut svc: S, req: Request<B>) -> Result<Vec<u8>, RefreshError>
where
    S: Service<Request<B>>,
    S::Response: UsageResponse,
    S::Error: fmt::Display,
{
    let transport = |e: S::Error| RefreshError::Transport(e.to_string());
    let ready = svc.ready().await.map_err(transport)?;
    let response = ready.call(req).await.map_err(transport)?;
    let status = response.status();
    if !status.is_success() {
        return Err(RefreshError::from_status(status));
    }
    response
        .into_body()
        .await
        .map_err(|e| RefreshError::Body(e.to_string()))
}

/// The user's side of a running refresh task. Dropping it stops the task.
pub struct RefreshHandle<C = TokioClock> {
    refresher: Arc<Refresher<C>>,
    stop: Arc<Stop>,
}

impl<C> fmt::Debug for RefreshHandle<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshHandle")
            .field("refresher", &self.refresher)
            .finish_non_exhaustive()
    }
}

impl<C: Clock> RefreshHandle<C> {
    /// What the refresher has done so far.
    pub fn status(&self) -> RefresherStatus {
        self.refresher.status()
    }

    /// Polls now, unless the last poll was less than the minimum interval ago
    /// (see [`Refresher::refresh_once`]).
    ///
    /// # Errors
    ///
    /// The poll's failure.
    pub async fn refresh_now(&self) -> Result<RefreshOutcome, RefreshError> {
        self.refresher.refresh_once().await
    }

    /// Stops the task (as dropping the handle does).
    pub fn stop(self) {}
}

impl<C> Drop for RefreshHandle<C> {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

/// A stop flag the task can wait on.
#[derive(Default)]
struct Stop {
    stopped: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Stop {
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Some(w) = lock(&self.waker).take() {
            w.wake();
        }
    }
}

/// `inner`, or `None` as soon as the stop flag is raised.
struct Stoppable<'a, F> {
    inner: Pin<Box<F>>,
    stop: &'a Stop,
}

impl<'a, F: Future> Stoppable<'a, F> {
    fn new(inner: F, stop: &'a Stop) -> Self {
        Stoppable {
            inner: Box::pin(inner),
            stop,
        }
    }
}

impl<F: Future> Future for Stoppable<'_, F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        *lock(&self.stop.waker) = Some(cx.waker().clone());
        // After registering: a stop raised before sees the flag here, one
        // raised after wakes the registered waker.
        if self.stop.stopped.load(Ordering::SeqCst) {
            return Poll::Ready(None);
        }
        self.inner.as_mut().poll(cx).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
