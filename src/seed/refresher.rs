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

use http::{Request, StatusCode};
use tower::ServiceExt;
use tower_service::Service;

use super::endpoint::{UsageEndpoint, UsageResponse};
use super::refresh_error::RefreshError;
use super::RoundTrip;
use crate::clock::{Clock, Nanos, TokioClock};
use crate::limiter::Limiter;
use crate::seeding::SeedReport;

type BodyFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, RefreshError>> + Send>>;
/// Sends the usage request and reads a body of at most so many bytes.
type Fetch = dyn Fn(usize) -> BodyFuture + Send + Sync;

/// The default [`Refresher::min_interval`]: one minute, as seed 002 asks.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(60);

/// The default [`Refresher::timeout`] of one poll.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default [`Refresher::max_body_size`]: 1 MiB. Seed 000's answer for a
/// hundred routes is about 25 KB; a body forty times that is not one to
/// hold in memory and parse on the runtime's thread.
pub const DEFAULT_MAX_BODY_SIZE: usize = 1 << 20;

/// The least time between two polls of the spawned task, whatever
/// [`Refresher::min_interval`] says: a zero interval would otherwise poll
/// every millisecond. ([`Refresher::refresh_once`] keeps to the interval as
/// given.)
pub const MIN_TASK_INTERVAL: Duration = Duration::from_secs(1);

/// After failures in a row, the spawned task waits this many intervals at
/// the most (twice as many after each failure: 1, 2, 4, 8, 16).
const MAX_BACKOFF_FACTOR: u32 = 16;

/// The longest `Retry-After` of a 429 kept to: a server's typo (or a hostile
/// one) must not stop the refresher for good.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

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
    /// No poll before this: a 429's `Retry-After`.
    not_before: Option<Nanos>,
    /// Failed polls since the last success: the task backs off.
    failures_in_a_row: u32,
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
/// [`Seed`](super::Seed) to [`Limiter::apply_seed`], with the poll's [`RoundTrip`]: the
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
/// A failed poll (401, 403, 429, 5xx, a timeout, a transport error, a body
/// that is cut short, is not the format or is larger than
/// [`Refresher::max_body_size`]) changes no limit: nothing is applied, the
/// error is logged with `tracing::warn!` and kept in [`RefresherStatus`].
/// The spawned task then backs off: the next poll comes one interval later,
/// then two, four, up to sixteen while the failures go on, and one interval
/// after a success. A 429 is kept to: no poll, asked for or scheduled, before
/// its `Retry-After` (an hour at most). Nothing panics, and the client keeps
/// running on what it knew. Errors and logs never carry a credential.
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
    max_body_size: usize,
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
        let fetch = move |max_body_size| -> BodyFuture {
            let svc = lock(&service).clone();
            let req = for_fetch.request::<B>();
            Box::pin(fetch_body(svc, req, max_body_size))
        };
        Refresher {
            limiter,
            endpoint,
            fetch: Box::new(fetch),
            min_interval: DEFAULT_MIN_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            state: Mutex::new(State {
                last_poll: None,
                not_before: None,
                failures_in_a_row: 0,
                status: RefresherStatus::default(),
            }),
        }
    }

    /// The least time between two polls (default [`DEFAULT_MIN_INTERVAL`]);
    /// also the period of the spawned task, which never polls more often
    /// than once per [`MIN_TASK_INTERVAL`] (1 s) and waits longer after
    /// failures.
    pub fn min_interval(mut self, interval: Duration) -> Refresher<C> {
        self.min_interval = interval;
        self
    }

    /// How long one poll may take, body included (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Refresher<C> {
        self.timeout = timeout;
        self
    }

    /// The largest usage body accepted, in bytes (default
    /// [`DEFAULT_MAX_BODY_SIZE`]); a larger one is
    /// [`RefreshError::BodyTooLarge`].
    pub fn max_body_size(mut self, bytes: usize) -> Refresher<C> {
        self.max_body_size = bytes;
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
    /// minimum interval ago (or a 429's `Retry-After` has not passed), and
    /// applies the answer. A failure updates the status, is logged, and
    /// changes no limit.
    ///
    /// # Errors
    ///
    /// The poll's failure, also kept in [`RefresherStatus::last_error`].
    pub async fn refresh_once(&self) -> Result<RefreshOutcome, RefreshError> {
        let sent = self.limiter.clock().now();
        {
            let mut state = lock(&self.state);
            let earliest = state
                .last_poll
                .map(|last| last + self.min_interval)
                .max(state.not_before);
            if let Some(earliest) = earliest.filter(|e| *e > sent) {
                return Ok(RefreshOutcome::TooSoon {
                    wait: earliest.saturating_since(sent),
                });
            }
            state.last_poll = Some(sent);
            state.status.polls += 1;
        }
        let fetch = (self.fetch)(self.max_body_size);
        let fetched = match tokio::time::timeout(self.timeout, fetch).await {
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
                state.not_before = None;
                state.failures_in_a_row = 0;
                state.status.last_ok = Some(received);
                state.status.last_error = None;
                state.status.last_report = Some(report.clone());
                Ok(RefreshOutcome::Applied(report))
            }
            Err(error) => {
                tracing::warn!(target: "tower_quota::seed", endpoint = %self.endpoint.uri(), %error, "usage refresh failed; limits unchanged");
                let mut state = lock(&self.state);
                if let RefreshError::RateLimited {
                    retry_after: Some(wait),
                } = error
                {
                    state.not_before = Some(received + wait.min(MAX_RETRY_AFTER));
                }
                state.failures_in_a_row = state.failures_in_a_row.saturating_add(1);
                state.status.failures += 1;
                state.status.last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// How long the spawned task waits after a poll that failed: the
    /// interval, twice that after two failures in a row, and so on up to
    /// [`MAX_BACKOFF_FACTOR`] times.
    fn backoff(&self) -> Duration {
        let failures = lock(&self.state).failures_in_a_row;
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(MAX_BACKOFF_FACTOR);
        self.task_interval().saturating_mul(factor)
    }

    /// The period of the spawned task: the minimum interval, at least
    /// [`MIN_TASK_INTERVAL`].
    fn task_interval(&self) -> Duration {
        self.min_interval.max(MIN_TASK_INTERVAL)
    }

    /// The periodic task and its handle: the task polls at once, then every
    /// minimum interval (at least [`MIN_TASK_INTERVAL`]; after failures in a
    /// row, up to 16 times longer; after a 429, not before its
    /// `Retry-After`), until the handle is dropped or stopped. Spawn the task
    /// on your runtime (or use [`Refresher::spawn`]).
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
                    Ok(RefreshOutcome::Applied(_)) => refresher.task_interval(),
                    Err(_) => refresher.backoff(),
                };
                let sleep = tokio::time::sleep(wait.max(MIN_TASK_INTERVAL));
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

async fn fetch_body<S, B>(
    mut svc: S,
    req: Request<B>,
    max_body_size: usize,
) -> Result<Vec<u8>, RefreshError>
where
    S: Service<Request<B>>,
    S::Response: UsageResponse,
    S::Error: fmt::Display,
{
    let transport = |e: S::Error| RefreshError::Transport(e.to_string());
    let ready = svc.ready().await.map_err(transport)?;
    let response = ready.call(req).await.map_err(transport)?;
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(RefreshError::RateLimited {
            retry_after: response.retry_after(),
        });
    }
    if !status.is_success() {
        return Err(RefreshError::from_status(status));
    }
    response.into_body_up_to(max_body_size).await
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
