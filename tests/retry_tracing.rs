//! Every retry emits one tracing event, and no event carries the request's
//! URI, headers or body (which hold API keys).
//!
//! Alone in its binary so no other test's dispatcher affects callsite interest.

use std::convert::Infallible;

use http::{Request, Response, StatusCode};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_quota::retry::RetryPolicy;

mod capture;
use capture::Capture;

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn one_event_per_retry_without_secrets() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());

    let mut svc = ServiceBuilder::new()
        .retry(RetryPolicy::new().max_retries(2))
        .service_fn(|_req: Request<String>| async {
            let mut r = Response::new(String::from("{\"token\":\"sk-secret-in-body\"}"));
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            r.headers_mut().insert("retry-after", "1".parse().unwrap());
            r.headers_mut()
                .insert("set-cookie", "session=sk-secret-cookie".parse().unwrap());
            Ok::<_, Infallible>(r)
        });
    let req = Request::builder()
        .uri("https://api.example/v1/leads?api_key=sk-secret-in-query")
        .header("x-api-key", "sk-secret-in-header")
        .header("authorization", "Bearer sk-secret-bearer")
        .body(String::from("{\"key\":\"sk-secret-in-request-body\"}"))
        .unwrap();
    let r = svc.ready().await.unwrap().call(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    let lines = capture.lines();
    let retries: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("tower_quota::retry "))
        .collect();
    assert_eq!(retries.len(), 2, "{lines:#?}");
    assert!(retries[0].contains("retry=1"), "{}", retries[0]);
    assert!(retries[1].contains("retry=2"), "{}", retries[1]);
    for line in &retries {
        assert!(line.contains("status=429"), "{line}");
        assert!(line.contains("delay_ms=1000"), "{line}");
        assert!(line.contains("source=\"retry-after\""), "{line}");
    }
    for line in &lines {
        assert!(!line.contains("sk-secret"), "secret in {line}");
        assert!(!line.contains("api.example"), "URI in {line}");
    }
}
