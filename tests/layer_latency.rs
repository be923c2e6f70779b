//! Requests that reach the server late, on tokio's paused clock with an
//! in-process server (no sockets, so virtual time cannot run ahead of a request
//! in flight).
//!
//! The server counts a request when it *arrives*; the layer counts it when it
//! *leaves*. When the first requests of a run take a cold-connection detour
//! (300 ms here, a TLS handshake's worth) and the next ones do not, the next
//! window's requests would reach the server while it still counts the slow ones:
//! the 429s a client gets at the start of its second window. With
//! `hold_until_response` (the default) the layer holds the window open until one
//! window after the slow responses, and the server never sees more than its limit.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt};
use tower_quota::clock::{Clock, Nanos, TokioClock};
use tower_quota::ledger::MaxWait;
use tower_quota::quota::Quota;
use tower_quota::store::MemoryStore;
use tower_quota::{Limiter, QuotaLayer};

#[allow(dead_code)] // `limiter` serves the other layer tests
mod common;
use common::{one_route, request};

const LIMIT: u32 = 10;
const WINDOW: Duration = Duration::from_secs(1);
const MARGIN: Duration = Duration::from_millis(10);
/// The detour of the first `LIMIT` requests on their way to the server.
const COLD: Duration = Duration::from_millis(300);

/// A server that enforces `LIMIT` per `WINDOW` (sliding) on arrival, shared
/// by every client built on it.
#[derive(Clone, Default)]
struct Server {
    arrivals: Arc<Mutex<Vec<Nanos>>>,
    refused: Arc<AtomicU32>,
}

impl Server {
    /// One client's connection: its first `cold` requests arrive `COLD` late
    /// (and, with `fail_cold`, fail in transport after arriving).
    fn connection(
        &self,
        clock: TokioClock,
        cold: u32,
        fail_cold: bool,
    ) -> impl tower::Service<
        Request<()>,
        Response = Response<()>,
        Error = &'static str,
        Future = impl Send,
    > + Clone
           + Send {
        let server = self.clone();
        let calls = Arc::new(AtomicU32::new(0));
        tower::service_fn(move |_req: Request<()>| {
            let slow = calls.fetch_add(1, Ordering::SeqCst) < cold;
            let (server, clock) = (server.clone(), clock.clone());
            async move {
                if slow {
                    tokio::time::sleep(COLD).await;
                }
                let admitted = server.arrive(clock.now());
                if slow && fail_cold {
                    return Err("connection reset after the request was sent");
                }
                let status = if admitted { 200 } else { 429 };
                let resp = Response::builder().status(status).body(());
                Ok(resp.unwrap_or_default())
            }
        })
    }

    /// The server's decision for a request arriving at `now`: its window is
    /// `(now - WINDOW, now]`.
    fn arrive(&self, now: Nanos) -> bool {
        let mut a = self.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        let opens = now.as_u64().saturating_sub(WINDOW.as_nanos() as u64);
        let admitted = a.iter().filter(|t| t.as_u64() > opens).count() < LIMIT as usize;
        if admitted {
            a.push(now);
        } else {
            self.refused.fetch_add(1, Ordering::SeqCst);
        }
        admitted
    }

    fn arrivals(&self) -> Vec<Nanos> {
        let mut a = self.arrivals.lock().map(|a| a.clone()).unwrap_or_default();
        a.sort();
        a
    }

    fn refused(&self) -> u32 {
        self.refused.load(Ordering::SeqCst)
    }
}

/// A limiter of `LIMIT` per `WINDOW` with a 10 ms margin.
fn builder(clock: &TokioClock) -> tower_quota::LimiterBuilder<TokioClock> {
    one_route(
        clock.clone(),
        Quota::new(LIMIT, WINDOW).unwrap_or_else(|| panic!()),
    )
    .max_wait(MaxWait::Forever)
    .margin(MARGIN)
}

/// Sends `requests` requests at once through a layer on `limiter` to
/// `inner`; returns the statuses of those that got a response.
async fn send<S>(limiter: &Arc<Limiter<TokioClock>>, inner: S, requests: usize) -> Vec<StatusCode>
where
    S: tower::Service<Request<()>, Response = Response<()>, Error = &'static str>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter.clone()))
        .service(inner);
    let tasks: Vec<_> = (0..requests)
        .map(|_| {
            let s = svc.clone();
            tokio::spawn(async move { s.oneshot(request()).await.map(|r| r.status()).ok() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        if let Some(status) = t.await.unwrap_or_else(|e| panic!("{e}")) {
            statuses.push(status);
        }
    }
    statuses
}

/// What a run saw: when each request reached the server, and how many the
/// server refused because its window was full.
struct Run {
    arrivals: Vec<Nanos>,
    refused: u32,
    statuses: Vec<StatusCode>,
    limiter: Arc<Limiter<TokioClock>>,
}

/// `requests` requests at once through one layer, the first `LIMIT` of them
/// `COLD` late (or failing in transport after arriving, with `fail_cold`).
async fn run(requests: usize, hold: bool, fail_cold: bool) -> Run {
    let clock = TokioClock::new();
    let limiter = builder(&clock).hold_until_response(hold).build();
    let server = Server::default();
    let statuses = send(
        &limiter,
        server.connection(clock, LIMIT, fail_cold),
        requests,
    )
    .await;
    Run {
        arrivals: server.arrivals(),
        refused: server.refused(),
        statuses,
        limiter,
    }
}

fn ms(n: u64) -> Nanos {
    Nanos::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn slow_first_requests_do_not_turn_into_429s_in_the_next_window() {
    let run = run(30, true, false).await;
    assert_eq!(
        run.refused, 0,
        "the server refused requests: {:?}",
        run.arrivals
    );
    assert_eq!(run.statuses.len(), 30);
    assert!(run.statuses.iter().all(|s| *s == StatusCode::OK));
    let arrivals = run.arrivals.clone();
    // The slow ten arrived at 300 ms; the next ten left one window after their
    // responses (1300 ms), not one window plus the margin after they left
    // (1010 ms): no sooner, and no later than needed (within the rounding).
    assert!(arrivals[..10].iter().all(|t| *t == ms(300)), "{arrivals:?}");
    assert!(
        arrivals[10..20]
            .iter()
            .all(|t| *t >= ms(1300) && *t < ms(1302)),
        "{arrivals:?}"
    );
    // The last ten had reserved their departures (at 2020 ms) before any
    // response came back; the second ten left 290 ms after theirs, so the
    // last ten leave one window after the second ten reached the server (plus
    // up to the margin: a live widening merged with a newer one keeps the
    // larger excess and the later deadline).
    let (second, third) = (arrivals[19], arrivals[20]);
    let most = second + WINDOW + MARGIN + Duration::from_millis(2);
    assert!(third >= second + WINDOW && third < most, "{arrivals:?}");
}

#[tokio::test(start_paused = true)]
async fn without_holding_until_the_response_the_same_run_gets_a_429() {
    // The failure mode the default prevents, shown on the same server: the
    // second ten leave at 1010 ms, and the first of them gets a 429 (which
    // blocks the bucket, so the others wait behind the block).
    let run = run(30, false, false).await;
    assert!(
        run.refused >= 1,
        "refused {} of {:?}",
        run.refused,
        run.arrivals
    );
    assert!(run.statuses.contains(&StatusCode::TOO_MANY_REQUESTS));
}

#[tokio::test(start_paused = true)]
async fn a_transport_error_after_the_request_reached_the_server_widens_too() {
    let run = run(20, true, true).await;
    assert_eq!(
        run.refused, 0,
        "the server refused requests: {:?}",
        run.arrivals
    );
    assert_eq!(
        run.statuses.len(),
        10,
        "the ten cold requests failed in transport"
    );
}

#[tokio::test(start_paused = true)]
async fn the_bucket_state_shows_the_widening_and_it_expires() {
    let run = run(10, true, false).await;
    let bucket = run
        .limiter
        .route_bucket(&http::Method::GET, "/v1/campaigns/7")
        .unwrap_or_else(|| panic!("route bucket"));
    let now = run.limiter.clock().now();
    let widened = bucket.state(now).windows[0].widened_by;
    // 300 ms of round trip less the 10 ms margin, rounded up.
    assert!(
        widened >= Duration::from_millis(290) && widened < Duration::from_millis(291),
        "{widened:?}"
    );
    // One window (with its margin) after the responses came back at 300 ms,
    // within the deadline's rounding (1 ms), it is gone.
    assert!(bucket.state(ms(1309)).windows[0].widened_by > Duration::ZERO);
    let later = bucket.state(ms(1312)).windows[0].widened_by;
    assert_eq!(later, Duration::ZERO);
}

/// Two processes share one allowance through a store (here the in-process
/// `MemoryStore`; `tests/redis_store.rs` shows the same correction in Redis).
/// The first sends ten requests whose responses come back 300 ms late; the
/// second sends ten more just after the window: its own buckets know nothing
/// of the first's, and only the shared correction holds it back.
#[tokio::test(start_paused = true)]
async fn another_processs_slow_responses_hold_the_shared_window() {
    let clock = TokioClock::new();
    let store = Arc::new(MemoryStore::new());
    let first = builder(&clock).shared(store.clone()).build();
    let second = builder(&clock).shared(store).build();
    let server = Server::default();
    let statuses = send(&first, server.connection(clock.clone(), LIMIT, false), 10).await;
    assert_eq!(statuses.len(), 10);
    tokio::time::sleep_until(tokio::time::Instant::now() + Duration::from_millis(800)).await;
    let late = send(&second, server.connection(clock.clone(), 0, false), 10).await;
    assert!(late.iter().all(|s| *s == StatusCode::OK), "{late:?}");
    assert_eq!(server.refused(), 0, "{:?}", server.arrivals());
    let arrivals = server.arrivals();
    // One window after the first process's responses (at 300 ms).
    assert!(
        arrivals[10..].iter().all(|t| *t >= ms(1300)),
        "{arrivals:?}"
    );
}

/// The in-process store's own reservation, made before a lateness arrived,
/// leaves that much later (as a local one does in the layer).
#[tokio::test(start_paused = true)]
async fn a_memory_store_reservation_leaves_later_after_a_late_correction() {
    use tower_quota::store::{Correction, SharedBucket, SharedStore, SharedWindow, StoreGrant};
    let store = MemoryStore::new();
    let window = SharedWindow {
        limit: 2,
        length: Duration::from_millis(100),
        anchor: None,
        margin: Duration::ZERO,
    };
    let b = SharedBucket::new("route", store.bucket_id("route", b"GET /x"), [window]);
    for _ in 0..2 {
        let grant = store.acquire(vec![b.clone()], 1, None).await;
        assert!(matches!(grant, Ok(StoreGrant::Now)), "{grant:?}");
    }
    let held = match store.acquire(vec![b.clone()], 1, None).await {
        Ok(StoreGrant::Later(r)) => r,
        other => panic!("expected a reservation, got {other:?}"),
    };
    assert_eq!(held.wait(), Duration::from_millis(100));
    let start = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(40)).await;
    // The first two came back 40 ms late (the store's windows have no margin
    // of their own): they may have been counted at 40 ms.
    let late = Duration::from_millis(40);
    store.correct(&b, Correction::Late { window: 0, late });
    tokio::time::sleep_until(start + held.wait()).await;
    assert!(matches!(held.depart().await, Ok(StoreGrant::Now)));
    let left = start.elapsed();
    assert!(left >= Duration::from_millis(140), "{left:?}");
    assert!(left < Duration::from_millis(142), "{left:?}");
}

/// A caller that gives up on a request on its way (its own timeout, 2 s)
/// drops the response future: the request may still reach the server that
/// late, so its windows are held open for the 2 s as a response that slow
/// would hold them (found by review: a dropped request taught nothing).
#[tokio::test(start_paused = true)]
async fn a_request_dropped_on_its_way_holds_the_window_for_the_time_it_was_out() {
    let clock = TokioClock::new();
    let limiter = builder(&clock).build();
    let inner = tower::service_fn(|_req: Request<()>| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, &'static str>(Response::new(()))
    });
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter.clone()))
        .service(inner);
    let gave_up = tokio::time::timeout(Duration::from_secs(2), svc.oneshot(request())).await;
    assert!(gave_up.is_err(), "the caller's timeout fired");
    let bucket = limiter
        .route_bucket(&http::Method::GET, "/v1/campaigns/7")
        .unwrap_or_else(|| panic!("route bucket"));
    let state = bucket.state(clock.now());
    assert_eq!(state.units_charged, 1, "still counted");
    // 2 s on its way less the 10 ms margin, rounded up.
    let widened = state.windows[0].widened_by;
    assert!(
        widened >= Duration::from_millis(1990) && widened < Duration::from_millis(1991),
        "{widened:?}"
    );
}
