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
use tower_quota::{Limiter, QuotaLayer};

#[allow(dead_code)] // `limiter` serves the other layer tests
mod common;
use common::{one_route, request};

const LIMIT: u32 = 10;
const WINDOW: Duration = Duration::from_secs(1);
const MARGIN: Duration = Duration::from_millis(10);
/// The detour of the first `LIMIT` requests on their way to the server.
const COLD: Duration = Duration::from_millis(300);

/// What a run saw: when each request reached the server, and how many the
/// server refused because its window was full.
struct Run {
    arrivals: Vec<Nanos>,
    refused: u32,
    statuses: Vec<StatusCode>,
    limiter: Arc<Limiter<TokioClock>>,
}

/// `requests` requests through a layer with `LIMIT` per `WINDOW` and a 10 ms
/// margin, to a server that enforces the same sliding window on arrival and
/// whose first `LIMIT` requests arrive `COLD` late (or fail in transport after
/// arriving, with `fail_cold`).
async fn run(requests: usize, hold: bool, fail_cold: bool) -> Run {
    let clock = TokioClock::new();
    let limiter = one_route(
        clock.clone(),
        Quota::new(LIMIT, WINDOW).unwrap_or_else(|| panic!()),
    )
    .max_wait(MaxWait::Forever)
    .margin(MARGIN)
    .hold_until_response(hold)
    .build();
    let arrivals = Arc::new(Mutex::new(Vec::<Nanos>::new()));
    let refused = Arc::new(AtomicU32::new(0));
    let calls = Arc::new(AtomicU32::new(0));
    let inner = {
        let (arrivals, refused, calls, clock) = (
            arrivals.clone(),
            refused.clone(),
            calls.clone(),
            clock.clone(),
        );
        tower::service_fn(move |_req: Request<()>| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let (arrivals, refused, clock) = (arrivals.clone(), refused.clone(), clock.clone());
            async move {
                let cold = n < LIMIT;
                if cold {
                    tokio::time::sleep(COLD).await;
                }
                let now = clock.now();
                // The server's sliding window: (now - WINDOW, now].
                let admitted = {
                    let mut a = arrivals.lock().unwrap_or_else(|e| e.into_inner());
                    let opens = now.as_u64().saturating_sub(WINDOW.as_nanos() as u64);
                    let counted = a.iter().filter(|t| t.as_u64() > opens).count();
                    let admitted = counted < LIMIT as usize;
                    if admitted {
                        a.push(now);
                    }
                    admitted
                };
                if !admitted {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
                if cold && fail_cold {
                    return Err::<Response<()>, _>("connection reset after the request was sent");
                }
                let status = if admitted { 200 } else { 429 };
                let resp = Response::builder().status(status).body(());
                Ok(resp.unwrap_or_default())
            }
        })
    };
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
    let arrivals = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    Run {
        arrivals,
        refused: refused.load(Ordering::SeqCst),
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
    let mut arrivals = run.arrivals.clone();
    arrivals.sort();
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
