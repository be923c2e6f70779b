//! Traffic through the layer for the Redis tests: many tasks, one key, and the
//! departures as the inner service saw them (contract 1: "leave the layer" is
//! the moment the request is handed to the inner service).
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tower::{Service, ServiceExt};
use tower_quota::clock::Clock;
use tower_quota::quota::Quota;
use tower_quota::scope::KeySource;
use tower_quota::store::SharedStore;
use tower_quota::{Limiter, LimiterBuilder, QuotaService};

pub type Request = http::Request<()>;
pub type Response = http::Response<()>;

/// Departures in microseconds since the Unix epoch (one machine: one clock).
pub type Departures = Arc<Mutex<Vec<u64>>>;

pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// `builder` limiting each `x-api-key` to `limit` per `window` (lengthened by
/// `margin`), shared through `store`.
pub fn per_key<C: Clock>(
    builder: LimiterBuilder<C>,
    store: Arc<impl SharedStore>,
    limit: u32,
    window: Duration,
    margin: Duration,
) -> Arc<Limiter<C>> {
    builder
        .per_api_key(
            KeySource::header("x-api-key"),
            Quota::new(limit, window).unwrap_or_else(|| panic!("quota")),
            100,
        )
        .margin(margin)
        .shared(store)
        .build()
}

/// An inner service that records when each request reached it.
pub fn recorder(
    departures: Departures,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone {
    tower::service_fn(move |_req: Request| {
        let t = unix_micros();
        if let Ok(mut d) = departures.lock() {
            d.push(t);
        }
        async { Ok::<_, Infallible>(Response::new(())) }
    })
}

/// A request with API key `key`.
pub fn request(key: &str) -> Request {
    let mut r = Request::new(());
    *r.uri_mut() = http::Uri::from_static("/v1/campaigns/7");
    if let Ok(v) = http::HeaderValue::from_str(key) {
        r.headers_mut().insert("x-api-key", v);
    }
    r
}

/// `tasks` tasks sending as fast as the layer lets them until `until` (Unix
/// µs); how many requests the layer refused.
pub async fn drive<C: Clock>(
    limiter: Arc<Limiter<C>>,
    departures: Departures,
    key: &str,
    tasks: usize,
    until: u64,
) -> usize {
    let svc = QuotaService::new(recorder(departures), limiter);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let mut svc = svc.clone();
        let key = key.to_owned();
        handles.push(tokio::spawn(async move {
            let mut refused = 0;
            while unix_micros() < until {
                let ready = match svc.ready().await {
                    Ok(s) => s,
                    Err(_) => break,
                };
                let left = Duration::from_micros(until.saturating_sub(unix_micros()));
                match tokio::time::timeout(left, ready.call(request(&key))).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => {
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(_) => break,
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for h in handles {
        refused += h.await.unwrap_or(0);
    }
    refused
}

/// The most departures in any half-open interval of `window_us`.
pub fn max_in_window(departures: &[u64], window_us: u64) -> usize {
    let mut d = departures.to_vec();
    d.sort_unstable();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..d.len() {
        while d[hi] - d[lo] >= window_us {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}
