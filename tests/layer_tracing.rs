//! Waits, refusals, corrections, 429s and slow responses are traced with
//! bucket labels, never with the API key. Alone in its binary: tracing caches
//! each callsite's interest the first time it fires, so another test firing it
//! first without a subscriber would hide it from this one.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use tower::{ServiceBuilder, ServiceExt};
use tower_quota::clock::TokioClock;
use tower_quota::QuotaLayer;

#[allow(dead_code)] // `answer` and `one_route` serve the other layer tests
mod common;
use common::{limiter, request, SECRET};

/// Records every event as `level target field=value ...`.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Line<'a>(&'a mut String);

impl tracing::field::Visit for Line<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = format!("{} {}", event.metadata().level(), event.metadata().target());
        event.record(&mut Line(&mut line));
        if let Ok(mut v) = self.0.lock() {
            v.push(line);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

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
    let lines = capture.0.lock().map(|v| v.clone()).unwrap_or_default();
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
