//! A tower retry policy for rate-limited responses.
//!
//! The limiter exists so that 429s do not happen; when one does anyway (another
//! client shares the key, the server's window is not the one configured, a limit
//! was lowered), the right reaction is to wait exactly as long as the server asks
//! and try again, not to hammer it. [`RetryPolicy`] plugs into
//! [`tower::retry::Retry`] and:
//!
//! - retries responses whose status means "rate limited" (429 by default; some
//!   APIs use 403, add it with [`RetryPolicy::status`]), and 503 only when it
//!   carries `Retry-After` (a 503 without one is an outage, not a limit);
//! - waits what the server says: `Retry-After` (seconds or HTTP-date), else the
//!   reset of the window that has nothing left (read with
//!   [`HeaderRules`], [`HeaderRules::standard`] unless told), plus an optional
//!   buffer;
//! - gives up, returning the response, when the server asks for longer than
//!   [`RetryPolicy::max_wait`]: waiting less would only earn another 429;
//! - without any such header, backs off exponentially with full jitter:
//!   a uniformly random delay in `[0, min(cap, base * 2^n))` for the `n`-th retry,
//!   so that clients that were refused together do not return together;
//! - retries at most [`RetryPolicy::max_retries`] times, never retries transport
//!   errors (not its business), and never retries a request it cannot clone.
//!
//! Every retry emits one `tracing` event (target `tower_quota::retry`, level
//! `INFO`) with the retry number, the status, the delay and where it came from;
//! no URI, header or body, which may carry keys.
//!
//! Put the retry layer *outside* [`QuotaLayer`](crate::QuotaLayer)
//! (`ServiceBuilder::new().retry(policy).layer(QuotaLayer::new(..))`): then
//! every attempt goes through the limiter, is charged, waits for room and
//! learns from its response. Inside it, retries would reach the server
//! without being counted.
//!
//! ```
//! use std::time::Duration;
//! use http::{Request, Response, StatusCode};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_quota::retry::RetryPolicy;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let policy = RetryPolicy::new()
//!     .max_retries(2)
//!     .backoff(Duration::from_millis(500), Duration::from_secs(8));
//! let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
//! let seen = calls.clone();
//! let mut client = ServiceBuilder::new().retry(policy).service_fn(move |_req: Request<String>| {
//!     let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
//!     async move {
//!         let status = if n == 0 { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::OK };
//!         let mut r = Response::new(String::new());
//!         *r.status_mut() = status;
//!         if n == 0 {
//!             r.headers_mut().insert("retry-after", "2".parse().unwrap());
//!         }
//!         Ok::<_, std::convert::Infallible>(r)
//!     }
//! });
//! let start = tokio::time::Instant::now();
//! let response = client.ready().await.unwrap().call(Request::new(String::new())).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(start.elapsed(), Duration::from_secs(2));
//! # }
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use tokio::time::Sleep;
use tower::retry::Policy;

use crate::headers::HeaderRules;

/// Retries rate-limited responses after the delay the server asks for, or with
/// exponential backoff and full jitter when it does not say. See the
/// [module documentation](self).
///
/// Clone it into [`tower::retry::RetryLayer`] (or `ServiceBuilder::retry`); each
/// request gets its own copy, so the retry count is per request.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    statuses: StatusSet,
    retry_503: bool,
    max_retries: u32,
    base: Duration,
    cap: Duration,
    buffer: Duration,
    max_wait: Duration,
    rules: Arc<HeaderRules>,
    retries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new()
    }
}

/// Where a retry's delay came from (for the tracing event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    RetryAfter,
    Reset,
    Backoff,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::RetryAfter => "retry-after",
            Source::Reset => "reset",
            Source::Backoff => "backoff",
        }
    }
}

impl RetryPolicy {
    /// 429 is "rate limited", 503 is retried when it has `Retry-After`, at most 3
    /// retries, backoff from 1 s capped at 32 s, no buffer, at most 60 s of waiting
    /// per retry, [`HeaderRules::standard`].
    pub fn new() -> RetryPolicy {
        RetryPolicy {
            statuses: StatusSet::default().with(StatusCode::TOO_MANY_REQUESTS),
            retry_503: true,
            max_retries: 3,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(32),
            buffer: Duration::ZERO,
            max_wait: Duration::from_secs(60),
            rules: Arc::new(HeaderRules::standard()),
            retries: 0,
        }
    }

    /// Also treats `status` as "rate limited" (e.g. 403 for APIs that use it so).
    pub fn status(mut self, status: StatusCode) -> RetryPolicy {
        self.statuses = self.statuses.with(status);
        self
    }

    /// Whether a 503 carrying `Retry-After` is retried (default: yes). A 503
    /// without `Retry-After` never is.
    pub fn retry_503(mut self, retry: bool) -> RetryPolicy {
        self.retry_503 = retry;
        self
    }

    /// At most this many retries after the first attempt (default 3).
    pub fn max_retries(mut self, retries: u32) -> RetryPolicy {
        self.max_retries = retries;
        self
    }

    /// Exponential backoff for responses that say nothing about when to come back:
    /// the `n`-th retry (from 0) waits a random time up to `min(cap, base * 2^n)`.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> RetryPolicy {
        self.base = base;
        self.cap = cap;
        self
    }

    /// Added to every delay the server asks for, to absorb clock granularity and
    /// transit time (default zero; seed 004 suggests "a small buffer").
    pub fn buffer(mut self, buffer: Duration) -> RetryPolicy {
        self.buffer = buffer;
        self
    }

    /// The longest single wait; a response asking for more is returned to the
    /// caller instead of retried (default 60 s). Also caps the backoff.
    pub fn max_wait(mut self, max_wait: Duration) -> RetryPolicy {
        self.max_wait = max_wait;
        self
    }

    /// How rate-limit headers are read (default [`HeaderRules::standard`]).
    pub fn header_rules(mut self, rules: HeaderRules) -> RetryPolicy {
        self.rules = Arc::new(rules);
        self
    }

    /// The upper bound of the jittered backoff before retry `n` (from 0):
    /// `min(cap, base * 2^n, max_wait)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_quota::retry::RetryPolicy;
    ///
    /// let p = RetryPolicy::new().backoff(Duration::from_secs(1), Duration::from_secs(10));
    /// assert_eq!(p.backoff_ceiling(0), Duration::from_secs(1));
    /// assert_eq!(p.backoff_ceiling(3), Duration::from_secs(8));
    /// assert_eq!(p.backoff_ceiling(4), Duration::from_secs(10));
    /// assert_eq!(p.backoff_ceiling(u32::MAX), Duration::from_secs(10));
    /// ```
    pub fn backoff_ceiling(&self, n: u32) -> Duration {
        self.base
            .saturating_mul(2u32.saturating_pow(n))
            .min(self.cap)
            .min(self.max_wait)
    }

    /// A full-jitter delay for retry `n`: uniform in `[0, backoff_ceiling(n)]`.
    fn jittered(&self, n: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = u64::try_from(self.backoff_ceiling(n).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.u64(0..=ceiling))
    }

    /// How long to wait before retrying a response with `status` and `headers`
    /// received at `received_at`, or `None` to return it as it is.
    fn delay(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        received_at: SystemTime,
    ) -> Option<(Duration, Source)> {
        if self.retries >= self.max_retries {
            return None;
        }
        let limited = self.statuses.contains(status);
        let unavailable = self.retry_503 && status == StatusCode::SERVICE_UNAVAILABLE;
        if !limited && !unavailable {
            return None;
        }
        let seen = self.rules.parse(headers, received_at);
        let (wait, source) = match (seen.retry_after, seen.wait_hint(received_at)) {
            (Some(_), Some(wait)) => (wait, Source::RetryAfter),
            (None, Some(wait)) if limited => (wait, Source::Reset),
            _ if limited => {
                // A fresh generator seeded from the thread's: clones of the policy
                // must not share a sequence, or their retries would collide again.
                let mut rng = fastrand::Rng::new();
                return Some((self.jittered(self.retries, &mut rng), Source::Backoff));
            }
            _ => return None,
        };
        let wait = wait.saturating_add(self.buffer);
        (wait <= self.max_wait).then_some((wait, source))
    }

    /// Decides on one response; counts the retry and traces it.
    fn next(&mut self, status: StatusCode, headers: &HeaderMap) -> Option<Sleep> {
        let (delay, source) = self.delay(status, headers, SystemTime::now())?;
        self.retries += 1;
        tracing::info!(
            target: "tower_quota::retry",
            retry = self.retries,
            max_retries = self.max_retries,
            status = status.as_u16(),
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            source = source.as_str(),
            "rate limited; retrying after the delay"
        );
        Some(tokio::time::sleep(delay))
    }
}

impl<B, RB, E> Policy<http::Request<B>, http::Response<RB>, E> for RetryPolicy
where
    B: Clone,
{
    type Future = Sleep;

    fn retry(
        &mut self,
        _req: &mut http::Request<B>,
        result: &mut Result<http::Response<RB>, E>,
    ) -> Option<Sleep> {
        let response = result.as_ref().ok()?;
        self.next(response.status(), response.headers())
    }

    fn clone_request(&mut self, req: &http::Request<B>) -> Option<http::Request<B>> {
        Some(req.clone())
    }
}

#[cfg(feature = "reqwest")]
impl<E> Policy<reqwest::Request, reqwest::Response, E> for RetryPolicy {
    type Future = Sleep;

    fn retry(
        &mut self,
        _req: &mut reqwest::Request,
        result: &mut Result<reqwest::Response, E>,
    ) -> Option<Sleep> {
        let response = result.as_ref().ok()?;
        self.next(response.status(), response.headers())
    }

    /// `None` for streaming bodies, which cannot be sent twice.
    fn clone_request(&mut self, req: &reqwest::Request) -> Option<reqwest::Request> {
        req.try_clone()
    }
}

/// A set of status codes, as a bitmap (statuses are 100..=999).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct StatusSet([u64; 16]);

impl StatusSet {
    fn with(mut self, status: StatusCode) -> StatusSet {
        let code = usize::from(status.as_u16());
        if let Some(word) = self.0.get_mut(code / 64) {
            *word |= 1 << (code % 64);
        }
        self
    }

    fn contains(self, status: StatusCode) -> bool {
        let code = usize::from(status.as_u16());
        self.0
            .get(code / 64)
            .is_some_and(|w| w & (1 << (code % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn status_set_holds_what_was_added() {
        let s = StatusSet::default()
            .with(StatusCode::TOO_MANY_REQUESTS)
            .with(StatusCode::FORBIDDEN);
        assert!(s.contains(StatusCode::TOO_MANY_REQUESTS));
        assert!(s.contains(StatusCode::FORBIDDEN));
        assert!(!s.contains(StatusCode::OK));
        let odd = StatusCode::from_u16(999).unwrap();
        assert!(StatusSet::default().with(odd).contains(odd));
    }

    #[test]
    fn decisions_by_status_and_headers() {
        let now = SystemTime::now();
        let p = RetryPolicy::new();
        let ra = headers(&[("retry-after", "7")]);
        let none = HeaderMap::new();
        let tmr = StatusCode::TOO_MANY_REQUESTS;
        let d = |p: &RetryPolicy, s, h| p.delay(s, h, now);
        assert_eq!(
            d(&p, tmr, &ra),
            Some((Duration::from_secs(7), Source::RetryAfter))
        );
        assert_eq!(
            d(&p, StatusCode::SERVICE_UNAVAILABLE, &ra).map(|x| x.1),
            Some(Source::RetryAfter)
        );
        assert_eq!(d(&p, StatusCode::SERVICE_UNAVAILABLE, &none), None);
        assert_eq!(
            d(
                &p.clone().retry_503(false),
                StatusCode::SERVICE_UNAVAILABLE,
                &ra
            ),
            None
        );
        assert_eq!(d(&p, StatusCode::FORBIDDEN, &ra), None);
        assert!(d(
            &p.clone().status(StatusCode::FORBIDDEN),
            StatusCode::FORBIDDEN,
            &ra
        )
        .is_some());
        assert_eq!(d(&p, StatusCode::OK, &ra), None);
        assert_eq!(d(&p, tmr, &none).map(|x| x.1), Some(Source::Backoff));
        // Over the maximum wait: given back, not retried early.
        assert_eq!(
            d(&p.clone().max_wait(Duration::from_secs(5)), tmr, &ra),
            None
        );
        // The buffer is added to what the server says.
        assert_eq!(
            d(&p.clone().buffer(Duration::from_millis(250)), tmr, &ra).map(|x| x.0),
            Some(Duration::from_millis(7250))
        );
        // An exhausted window's reset, when there is no Retry-After.
        let reset = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "12")]);
        assert_eq!(
            d(&p, tmr, &reset),
            Some((Duration::from_secs(12), Source::Reset))
        );
        let mut spent = p.clone();
        spent.retries = 3;
        assert_eq!(d(&spent, tmr, &ra), None);
    }

    proptest! {
        #[test]
        fn full_jitter_stays_under_the_ceiling(
            seed: u64,
            n in 0u32..80,
            base_ms in 0u64..10_000,
            cap_ms in 0u64..100_000,
        ) {
            let p = RetryPolicy::new()
                .backoff(Duration::from_millis(base_ms), Duration::from_millis(cap_ms))
                .max_wait(Duration::from_secs(3600));
            let ceiling = Duration::from_millis(base_ms)
                .saturating_mul(2u32.saturating_pow(n))
                .min(Duration::from_millis(cap_ms));
            prop_assert_eq!(p.backoff_ceiling(n), ceiling);
            let mut rng = fastrand::Rng::with_seed(seed);
            for _ in 0..16 {
                prop_assert!(p.jittered(n, &mut rng) <= ceiling);
            }
        }
    }
}
