//! `RetryPolicy` for `reqwest::Request` / `reqwest::Response`: cloneable requests
//! are retried, streaming bodies (which `try_clone` refuses) never are.
#![cfg(feature = "reqwest")]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_quota::retry::RetryPolicy;

/// A 429 with `Retry-After: 3` first, then 200; counts calls.
async fn send(req: reqwest::Request) -> (u16, u32) {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let mut svc = ServiceBuilder::new().retry(RetryPolicy::new()).service_fn(
        move |_req: reqwest::Request| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut r = http::Response::new(String::new());
                if n == 0 {
                    *r.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
                    r.headers_mut().insert("retry-after", "3".parse().unwrap());
                }
                Ok::<_, std::convert::Infallible>(reqwest::Response::from(r))
            }
        },
    );
    let r = svc.ready().await.unwrap().call(req).await.unwrap();
    (r.status().as_u16(), calls.load(Ordering::SeqCst))
}

fn request() -> reqwest::Request {
    let url = "http://api.example/v1/leads".parse().unwrap();
    reqwest::Request::new(reqwest::Method::POST, url)
}

#[tokio::test(start_paused = true)]
async fn a_cloneable_request_is_retried_after_retry_after() {
    let mut req = request();
    *req.body_mut() = Some(reqwest::Body::from("{}"));
    let start = Instant::now();
    assert_eq!(send(req).await, (200, 2));
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_streaming_body_is_never_retried() {
    let mut req = request();
    *req.body_mut() = Some(reqwest::Body::wrap(String::from("{}")));
    assert!(req.try_clone().is_none());
    assert_eq!(send(req).await, (429, 1));
}
