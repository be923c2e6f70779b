//! The usage endpoint's credentials never show: not in `Debug`, not in
//! errors, not in what the refresher traces. Alone in its binary (see
//! `capture`).
#![cfg(feature = "testkit")]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use tower_quota::quota::{Limits, Quota};
use tower_quota::route::MethodResource;
use tower_quota::seed::{RefreshError, Refresher, UsageEndpoint};
use tower_quota::{Limiter, OtherRoutes};

mod capture;
use capture::Capture;

const PASSWORD: &str = "s3cret-in-the-url";
const SYSTEM_KEY: &str = "system-key-s3cret";
const API_KEY: &str = "api-key-s3cret";

fn assert_secret_free(what: &str, text: &str) {
    for secret in [PASSWORD, SYSTEM_KEY, API_KEY] {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

/// A URL with credentials in it is refused, and the refusal does not repeat
/// them.
#[test]
fn credentials_in_the_base_url_are_refused_without_showing_them() {
    for base in [
        format!("https://user:{PASSWORD}@crm.example.com"),
        format!("https://{PASSWORD}@crm.example.com/"),
        format!("http://user:{PASSWORD}@127.0.0.1:8080/prefix"),
    ] {
        let crm = UsageEndpoint::crm(&base, "master");
        let partner = UsageEndpoint::partner(&base, "sys", SYSTEM_KEY, API_KEY);
        for result in [crm, partner] {
            let shown = format!("{result:?}");
            assert_secret_free("the result", &shown);
            let Err(error) = result else {
                panic!("accepted credentials in the URL: {shown}");
            };
            assert_eq!(error, RefreshError::CredentialsInUrl);
            assert_secret_free("the error", &error.to_string());
            assert!(error.to_string().contains("UsageEndpoint::crm"), "{error}");
        }
    }
}

/// A refresher whose polls fail traces the failures, never a credential.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn failing_polls_trace_no_credential() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let limiter = Limiter::builder()
        .routes(
            MethodResource::seed002(),
            |_| Some(Limits::from(Quota::per_minute(100))),
            OtherRoutes::Unlimited,
        )
        .build();
    let endpoint = UsageEndpoint::partner("http://partner.test", "sys", SYSTEM_KEY, API_KEY)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_secret_free("the endpoint", &format!("{endpoint:?}"));
    let statuses = Arc::new(Mutex::new(vec![401u16, 403, 503, 200]));
    let server = tower::service_fn(move |_req: http::Request<()>| {
        let status = statuses
            .lock()
            .ok()
            .and_then(|mut s| s.pop())
            .unwrap_or(500);
        async move {
            let mut response = http::Response::new(Full::new(Bytes::from_static(b"<html>")));
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
            Ok::<_, std::io::Error>(response)
        }
    });
    let refresher =
        Refresher::new(limiter, server, endpoint).min_interval(std::time::Duration::ZERO);
    for _ in 0..4 {
        let error = refresher.refresh_once().await.err();
        assert!(error.is_some());
        assert_secret_free("the error", &format!("{error:?}"));
    }
    assert_secret_free("the status", &format!("{:?}", refresher.status()));
    assert_secret_free("the refresher", &format!("{refresher:?}"));
    let lines = capture.lines();
    let failures = lines
        .iter()
        .filter(|l| l.contains("usage refresh failed"))
        .count();
    assert_eq!(failures, 4, "{lines:#?}");
    for line in &lines {
        assert_secret_free("a trace", line);
    }
}
