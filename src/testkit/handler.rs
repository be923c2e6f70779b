//! One request, from bytes to response: the state every dialect shares, the
//! metering step (fault switch, limiter, recorder) and the injected latency.

use std::collections::HashMap;
use std::convert::Infallible;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::config::Config;
use super::dialect::Dialect;
use super::limiter::{Charge, Limiter, RealWindow, Verdict};
use super::limits::{BucketKey, ScopeBy};
use super::record::{Event, Outcome, Recorder};
use super::time::ServerTime;
use super::{dialect_campaign, dialect_crm, dialect_partner};
use crate::clock::Nanos;

/// The response type of every handler.
pub(crate) type Reply = Response<Full<Bytes>>;

/// Request bodies are read (so connections stay reusable) up to this size.
const MAX_BODY: usize = 1 << 20;

/// What metering decided for one request.
#[derive(Debug)]
pub(crate) enum Metered {
    /// Charged; the verdict's readings go into the headers.
    Admitted(Verdict),
    /// Refused with 429.
    Rejected(Verdict),
    /// Skipped the limiter under the fault switch: no headers.
    Unmetered,
}

/// Everything a running server shares between connections.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) time: ServerTime,
    pub(crate) limiter: Limiter,
    pub(crate) recorder: Recorder,
    fault: Mutex<f64>,
    metered: AtomicU64,
    latency: Mutex<Option<Range<Duration>>>,
    requests: AtomicU64,
    /// Seed 002's usage responses per system: when computed, and the bytes.
    pub(crate) usage_cache: Mutex<HashMap<String, (Nanos, Bytes)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(config: Config) -> Shared {
        let time = ServerTime::new(config.clock.clone(), config.time_scale);
        Shared {
            recorder: Recorder::new(time.clone()),
            time,
            limiter: Limiter::default(),
            fault: Mutex::new(config.fault),
            metered: AtomicU64::new(0),
            latency: Mutex::new(config.latency.clone()),
            requests: AtomicU64::new(0),
            usage_cache: Mutex::new(HashMap::new()),
            config,
        }
    }

    pub(crate) fn set_fault(&self, share: f64) {
        *lock(&self.fault) = share;
    }

    pub(crate) fn set_latency(&self, range: Option<Range<Duration>>) {
        *lock(&self.latency) = range;
    }

    /// Real windows of `route` in every scope, one charge per limited scope.
    pub(crate) fn charges(&self, caller: &str, route: &str) -> Vec<Charge> {
        self.config
            .scopes
            .iter()
            .filter_map(|scope| {
                let windows: Vec<RealWindow> = scope
                    .windows_for(route)
                    .iter()
                    .map(|w| RealWindow {
                        api: *w,
                        real: self.time.real(w.per),
                    })
                    .collect();
                if windows.is_empty() {
                    return None;
                }
                let caller = match scope.by {
                    ScopeBy::Caller => Some(caller),
                    ScopeBy::Everyone => None,
                };
                Some(Charge {
                    bucket: BucketKey::new(&scope.name, caller, route),
                    windows,
                })
            })
            .collect()
    }

    /// Decides one HTTP request of `caller` to `route`, and records it.
    pub(crate) fn meter(&self, caller: &str, system: Option<&str>, route: &str) -> Metered {
        let charges = self.charges(caller, route);
        let cost = self.config.cost_of(route);
        let event = |at, outcome, blocked_by| Event {
            at,
            caller: caller.to_owned(),
            system: system.map(str::to_owned),
            route: route.to_owned(),
            cost,
            buckets: charges.iter().map(|c| c.bucket.clone()).collect(),
            blocked_by,
            outcome,
        };
        if self.skips_limiter() {
            self.recorder
                .record(event(self.time.now(), Outcome::Unmetered, vec![]), []);
            return Metered::Unmetered;
        }
        let verdict = self.limiter.admit(&self.time, &charges, cost);
        let windows = charges
            .iter()
            .map(|c| (c.bucket.clone(), c.windows.clone()));
        if verdict.admitted {
            self.recorder
                .record(event(verdict.at, Outcome::Admitted, vec![]), windows);
            Metered::Admitted(verdict)
        } else {
            let blocked = verdict.blocked_by();
            self.recorder
                .record(event(verdict.at, Outcome::Rejected, blocked), windows);
            Metered::Rejected(verdict)
        }
    }

    /// Charges `units` to `caller`'s buckets of `route` as another client would.
    pub(crate) fn consume(&self, caller: &str, route: &str, units: u64) -> bool {
        let charges = self.charges(caller, route);
        let verdict = self.limiter.admit(&self.time, &charges, units);
        if verdict.admitted {
            let event = Event {
                at: verdict.at,
                caller: caller.to_owned(),
                system: None,
                route: route.to_owned(),
                cost: units,
                buckets: charges.iter().map(|c| c.bucket.clone()).collect(),
                blocked_by: vec![],
                outcome: Outcome::CoConsumed,
            };
            let windows = charges.into_iter().map(|c| (c.bucket, c.windows));
            self.recorder.record(event, windows);
        }
        verdict.admitted
    }

    /// Whether the next metered request skips the limiter. The `k`-th request
    /// skips when `floor((k + 1) * share)` passes an integer, so any prefix of
    /// `n` requests holds `floor(n * share)` skips: exact and deterministic.
    fn skips_limiter(&self) -> bool {
        let share = lock(&self.fault).clamp(0.0, 1.0);
        if share <= 0.0 || share.is_nan() {
            return false;
        }
        let k = self.metered.fetch_add(1, Ordering::Relaxed) as f64;
        ((k + 1.0) * share).floor() > (k * share).floor()
    }

    /// The delay of request `n`: a deterministic spread over the range.
    fn latency_for(&self, n: u64) -> Option<Duration> {
        let range = lock(&self.latency).clone()?;
        let span = range.end.checked_sub(range.start)?.as_nanos();
        if span == 0 {
            return Some(range.start);
        }
        let offset = u128::from(splitmix64(n)) % span;
        Some(range.start + Duration::from_nanos(u64::try_from(offset).unwrap_or(0)))
    }
}

fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Serves one request; the first on its connection after the configured
/// handshake ([`Config::cold_connections`]).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: http::Request<Incoming>,
    first_on_connection: bool,
) -> Result<Reply, Infallible> {
    let handshake = shared.config.cold_connections;
    if first_on_connection && !handshake.is_zero() {
        tokio::time::sleep(handshake).await;
    }
    let n = shared.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let reply = match Limited::new(body, MAX_BODY).collect().await {
        Err(_) => json(
            StatusCode::PAYLOAD_TOO_LARGE,
            r#"{"error":"payload too large"}"#,
        ),
        Ok(_) => respond(&shared, &parts),
    };
    if let Some(delay) = shared.latency_for(n) {
        tokio::time::sleep(delay).await;
    }
    Ok(reply)
}

fn respond(shared: &Shared, parts: &Parts) -> Reply {
    match shared.config.dialect {
        Dialect::Campaign => dialect_campaign::respond(shared, parts),
        Dialect::Partner => dialect_partner::respond(shared, parts),
        Dialect::Crm => dialect_crm::respond(shared, parts),
    }
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut reply = Response::new(Full::new(body.into()));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    reply
}

/// `200 {"route": route}`: what every dialect answers an admitted request.
pub(crate) fn route_ok(route: &str) -> Reply {
    json(
        StatusCode::OK,
        serde_json::json!({ "route": route }).to_string(),
    )
}

/// `{"error": message}` with `status`.
pub(crate) fn json_error(status: StatusCode, message: &str) -> Reply {
    json(status, serde_json::json!({ "error": message }).to_string())
}

/// The reply to a metered request: `route_ok`, or the dialect's 429
/// (`too_many`), with its rate-limit headers written by `headers` from the
/// verdict.
pub(crate) fn metered_reply(
    metered: Metered,
    route: &str,
    too_many: impl FnOnce() -> Reply,
    headers: impl Fn(&mut Reply, &Verdict),
) -> Reply {
    let (mut reply, verdict) = match metered {
        Metered::Unmetered => return route_ok(route),
        Metered::Admitted(v) => (route_ok(route), v),
        Metered::Rejected(v) => (too_many(), v),
    };
    headers(&mut reply, &verdict);
    reply
}

/// Sets a header whose value is built by the server (always valid ASCII).
pub(crate) fn set_header(reply: &mut Reply, name: &str, value: impl ToString) {
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(&value.to_string()),
    ) {
        reply.headers_mut().insert(name, value);
    }
}

/// A request header as text, `None` if absent, repeated or not visible ASCII.
pub(crate) fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    let mut values = parts.headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok().filter(|s| !s.is_empty())
}

/// Seed 004's header set (also used by seed 002): limit, remaining and reset
/// (epoch milliseconds) of the binding window, plus `Retry-After` (whole
/// seconds, rounded up, at least 1) on a 429 unless
/// [`Config::retry_after`] turned it off.
pub(crate) fn x_ratelimit(shared: &Shared, reply: &mut Reply, verdict: &Verdict) {
    let Some(r) = verdict.binding() else {
        return;
    };
    set_header(reply, "x-ratelimit-limit", r.limit);
    set_header(reply, "x-ratelimit-remaining", r.remaining);
    set_header(
        reply,
        "x-ratelimit-reset",
        shared.time.epoch_millis_ceil(r.reset),
    );
    if !verdict.admitted && shared.config.retry_after {
        set_header(reply, "retry-after", retry_after_secs(verdict.at, r.reset));
    }
}

/// Whole seconds from `at` to `until`, rounded up, at least 1.
pub(crate) fn retry_after_secs(at: Nanos, until: Nanos) -> u64 {
    until
        .saturating_since(at)
        .as_nanos()
        .div_ceil(1_000_000_000)
        .max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::testkit::Window;

    #[test]
    fn fault_share_is_exact_over_every_prefix() {
        let shared = Shared::new(
            Config::new(Dialect::Campaign)
                .clock(ManualClock::new())
                .fault(0.25),
        );
        let skips: Vec<bool> = (0..8).map(|_| shared.skips_limiter()).collect();
        assert_eq!(
            skips,
            [false, false, false, true, false, false, false, true]
        );
        shared.set_fault(0.0);
        assert!(!shared.skips_limiter());
    }

    #[test]
    fn latency_stays_in_its_range() {
        let range = Duration::from_millis(1)..Duration::from_millis(5);
        let shared = Shared::new(Config::new(Dialect::Campaign).latency(range.clone()));
        for n in 0..100 {
            let d = shared.latency_for(n).unwrap_or_default();
            assert!(range.contains(&d), "{d:?}");
        }
    }

    #[test]
    fn unlimited_scopes_charge_nothing() {
        let config =
            Config::new(Dialect::Partner).scope_default("per_account", vec![Window::per_minute(2)]);
        let shared = Shared::new(config.clock(ManualClock::new()));
        let charges = shared.charges("acme", "GET.people");
        assert_eq!(charges.len(), 1);
        assert_eq!(
            charges[0].bucket,
            BucketKey::new("per_account", Some("acme"), "GET.people")
        );
    }

    #[test]
    fn retry_after_can_be_left_out_of_429s() {
        let config = Config::new(Dialect::Campaign)
            .limit("GET /r", vec![Window::per_minute(1)])
            .clock(ManualClock::new());
        for send in [true, false] {
            let shared = Shared::new(config.clone().retry_after(send));
            assert!(matches!(
                shared.meter("c", None, "GET /r"),
                Metered::Admitted(_)
            ));
            let Metered::Rejected(verdict) = shared.meter("c", None, "GET /r") else {
                panic!("the second request must be refused");
            };
            let mut reply = json(StatusCode::TOO_MANY_REQUESTS, "{}");
            x_ratelimit(&shared, &mut reply, &verdict);
            assert_eq!(reply.headers().contains_key("retry-after"), send);
            assert!(reply.headers().contains_key("x-ratelimit-reset"));
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Nanos::ZERO, Nanos::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Nanos::ZERO, Nanos::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Nanos::ZERO, Nanos::ZERO), 1);
    }
}
