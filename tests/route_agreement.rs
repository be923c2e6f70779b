//! On thousands of generated requests, each router names the route exactly as
//! the testkit's server of its seed does (`TestServer::route_of`): the same
//! known label, the same undeclared name (where `Templates` writes id-like
//! segments as `:id` and the server keeps the literal path, a bucket at least as
//! strict), and `None` exactly where the server answers 404.
#![cfg(feature = "testkit")]

use http::Method;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use tower_quota::clock::ManualClock;
use tower_quota::route::{MethodResource, Rails, RouteKey, Router, Templates, SEED000_KEYS};
use tower_quota::testkit::{Config, TestServer};

async fn server(config: Config) -> TestServer {
    TestServer::start(config.clock(ManualClock::new()))
        .await
        .expect("bind a loopback port")
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).expect("a method token")
}

/// Methods the servers know, upper case (the servers compare case-sensitively).
fn methods() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
    ])
}

/// Paths built from `words`: the vocabulary of a seed, ids, and strangers.
fn paths(words: Vec<&'static str>, max: usize) -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(words), 0..max),
        any::<bool>(),
    )
        .prop_map(|(segments, slash)| {
            let mut path = format!("/{}", segments.join("/"));
            if slash && path.len() > 1 {
                path.push('/');
            }
            path
        })
}

/// `exempt`: requests the server answers without metering, which the router
/// rightly leaves unlimited although `route_of` names them.
fn agree(
    router: &dyn Router,
    server: &TestServer,
    words: Vec<&'static str>,
    max: usize,
    exempt: &[(&str, &str)],
) {
    let mut runner = TestRunner::new(RunnerConfig::with_cases(3000));
    let strategy = (methods(), paths(words, max));
    let result = runner.run(&strategy, |(m, path)| {
        let theirs = server.route_of(m, &path);
        let ours = router.route(&method(m), &path);
        match (&ours, &theirs) {
            (Some(RouteKey::Known(id)), Some(t)) => prop_assert_eq!(router.label(*id), t.as_str()),
            (Some(RouteKey::Other(o)), Some(t)) => {
                prop_assert!(router.find(t).is_none(), "{} is declared", t);
                // Templates generalise ids; everything else must be identical.
                let same = o
                    .split('/')
                    .zip(t.split('/'))
                    .all(|(a, b)| a == b || a == ":id");
                prop_assert!(
                    same && o.split('/').count() == t.split('/').count(),
                    "{} vs {}",
                    o,
                    t
                );
            }
            (None, None) => {}
            (None, Some(_))
                if exempt.iter().any(|(em, ep)| {
                    *em == m && ep.trim_end_matches('/') == path.trim_end_matches('/')
                }) => {}
            _ => prop_assert!(
                false,
                "{} {}: ours {:?}, server {:?}",
                m,
                path,
                ours,
                theirs
            ),
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[tokio::test]
async fn generated_requests_are_named_as_the_servers_name_them() {
    let crm = server(Config::seed000()).await;
    let mut words = vec![
        "api", "v1", "v2", "5", "c-1", "widgets", "search", "show", "index",
    ];
    for (controller, action) in SEED000_KEYS {
        words.push(controller.rsplit('/').next().unwrap_or(controller));
        words.push(action);
    }
    let mut prefixed = words.clone();
    prefixed.retain(|w| *w != "api" && *w != "v1");
    agree(&Rails::seed000(), &crm, words, 6, &[]);
    // Mostly under the prefix, where the interesting cases are.
    let rails = Rails::seed000();
    let mut runner = TestRunner::new(RunnerConfig::with_cases(3000));
    let strategy = (methods(), paths(prefixed, 4));
    runner
        .run(&strategy, |(m, rest)| {
            let path = format!("/api/v1{rest}");
            let theirs = crm.route_of(m, &path);
            let ours = rails
                .route(&method(m), &path)
                .map(|k| k.name(&rails).to_owned());
            prop_assert_eq!(ours, theirs, "{} {}", m, path);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    crm.shutdown().await;

    let campaign = server(Config::seed004()).await;
    let words = vec![
        "v1",
        "analytics",
        "daily",
        "by-user",
        "leads",
        "add_to_campaign",
        "campaigns",
        "statistics",
        "users",
        "teams",
        "me",
        "42",
        "abc",
        "x",
    ];
    agree(&Templates::seed004(), &campaign, words, 5, &[]);
    campaign.shutdown().await;

    let partner = server(Config::seed002()).await;
    let words = vec!["people", "accounts", "rateLimit", "usage", "42", "People"];
    let exempt = [("GET", "/rateLimit/usage")];
    agree(&MethodResource::seed002(), &partner, words, 4, &exempt);
    partner.shutdown().await;
}
