//! The IETF draft's own examples (draft-ietf-httpapi-ratelimit-headers, the
//! revision with `l=` quotas and token policy names; the later `q=` form with
//! quoted names is covered in src/headers/tests.rs), parsed as a client sees
//! them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use tower_quota::headers::{HeaderRules, ResetAt};

fn parse(fields: &[(&str, &str)]) -> tower_quota::headers::Observation {
    parse_at(fields, UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

fn parse_at(fields: &[(&str, &str)], received: SystemTime) -> tower_quota::headers::Observation {
    let mut h = HeaderMap::new();
    for (k, v) in fields {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.append(k, v);
        }
    }
    HeaderRules::standard().parse(&h, received)
}

fn after(r: Option<ResetAt>) -> Option<Duration> {
    match r {
        Some(ResetAt::After(d)) => Some(d),
        Some(ResetAt::At(t)) => t
            .duration_since(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .ok(),
        None => None,
    }
}

#[test]
fn a_policy_with_its_window_and_the_current_state() {
    // RateLimit-Policy: default;l=100;w=10 / RateLimit: default;r=50;t=5
    let obs = parse(&[
        ("ratelimit-policy", "default;l=100;w=10"),
        ("ratelimit", "default;r=50;t=5"),
    ]);
    let w = obs
        .windows
        .iter()
        .find(|w| w.name.as_deref() == Some("default"))
        .expect("default policy");
    assert_eq!(w.limit, Some(100));
    assert_eq!(w.window, Some(Duration::from_secs(10)));
    assert_eq!(w.remaining, Some(50));
    assert_eq!(after(w.reset), Some(Duration::from_secs(5)));
}

#[test]
fn several_policies() {
    // RateLimit-Policy: permin;l=50;w=60, perhr;l=1000;w=3600, perday;l=5000;w=86400
    let obs = parse(&[(
        "ratelimit-policy",
        "permin;l=50;w=60, perhr;l=1000;w=3600, perday;l=5000;w=86400",
    )]);
    let by = |n: &str| {
        obs.windows
            .iter()
            .find(|w| w.name.as_deref() == Some(n))
            .map(|w| (w.limit, w.window))
    };
    assert_eq!(
        by("permin"),
        Some((Some(50), Some(Duration::from_secs(60))))
    );
    assert_eq!(
        by("perhr"),
        Some((Some(1000), Some(Duration::from_secs(3600))))
    );
    assert_eq!(
        by("perday"),
        Some((Some(5000), Some(Duration::from_secs(86_400))))
    );
}

#[test]
fn the_state_alone() {
    // RateLimit: protection;r=50;t=30 and RateLimit: default;r=1;t=7
    for (field, name, r, t) in [
        ("protection;r=50;t=30", "protection", 50, 30),
        ("default;r=1;t=7", "default", 1, 7),
    ] {
        let obs = parse(&[("ratelimit", field)]);
        let w = obs
            .windows
            .iter()
            .find(|w| w.name.as_deref() == Some(name))
            .expect(name);
        assert_eq!(w.remaining, Some(r));
        assert_eq!(after(w.reset), Some(Duration::from_secs(t)));
    }
}

#[test]
fn a_large_window_and_a_daily_reset() {
    // RateLimit-Policy: somepolicy;l=10000;w=1000 / RateLimit: somepolicy;r=10000;t=10
    let obs = parse(&[
        ("ratelimit-policy", "somepolicy;l=10000;w=1000"),
        ("ratelimit", "somepolicy;r=10000;t=10"),
    ]);
    let w = obs
        .windows
        .iter()
        .find(|w| w.name.as_deref() == Some("somepolicy"))
        .expect("somepolicy");
    assert_eq!((w.limit, w.remaining), (Some(10_000), Some(10_000)));
    assert_eq!(w.window, Some(Duration::from_secs(1000)));
    // Date: Tue, 15 Nov 1994 08:00:00 GMT / RateLimit: daily;r=1;t=36000,
    // received that day (a Date decades from the local clock is ignored)
    let received = UNIX_EPOCH + Duration::from_secs(784_886_401);
    let obs = parse_at(
        &[
            ("date", "Tue, 15 Nov 1994 08:00:00 GMT"),
            ("ratelimit", "daily;r=1;t=36000"),
        ],
        received,
    );
    assert_eq!(
        obs.date,
        Some(UNIX_EPOCH + Duration::from_secs(784_886_400))
    );
    let w = obs
        .windows
        .iter()
        .find(|w| w.name.as_deref() == Some("daily"))
        .expect("daily");
    assert_eq!(w.remaining, Some(1));
    assert!(w.reset.is_some(), "the reset is read");
}
