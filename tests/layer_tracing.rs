//! Waits, refusals, corrections, 429s and slow responses are traced with
//! bucket labels, never with the API key. Alone in its binary: tracing caches
//! each callsite's interest the first time it fires, so another test firing it
//! first without a subscriber would hide it from this one.

use std::convert::Infallible;

use http::{Request, Response};
use tower::{ServiceBuilder, ServiceExt};
use tower_quota::clock::TokioClock;
use tower_quota::QuotaLayer;

#[allow(dead_code)] // `answer` and `one_route` serve the other layer tests
mod common;
use common::{limiter, request, SECRET};

mod capture;
use capture::Capture;

/// Waits, refusals, corrections and 429s are traced with bucket labels, never
/// with the API key.
#[test]
fn events_name_buckets_and_never_the_api_key() {
    let capture = Capture::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build();
    let Ok(rt) = rt else { return };
    tracing::subscriber::with_default(capture.clone(), || {
        rt.block_on(async {
            let clock = TokioClock::new();
            let lim = limiter(clock, 1);
            let inner = tower::service_fn(|_req: Request<()>| async {
                // Slower than the margin (none here): the windows are held open.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                let resp = Response::builder()
                    .status(429)
                    .header("x-ratelimit-limit", "5")
                    .header("x-ratelimit-remaining", "0")
                    .header("retry-after", "1")
                    .body(());
                Ok::<_, Infallible>(resp.unwrap_or_default())
            });
            let svc = ServiceBuilder::new()
                .layer(QuotaLayer::new(lim))
                .service(inner);
            for _ in 0..3 {
                let _ = svc.clone().oneshot(request()).await;
            }
        })
    });
    let lines = capture.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("rate limited by the server")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("GET /v1/campaigns/:id")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("holding the window open") && l.contains("late=10ms")),
        "{lines:#?}"
    );
    assert!(lines.iter().all(|l| !l.contains(SECRET)), "{lines:#?}");
}
