//! Fixtures from the seed documents, the testkit's dialects and the IETF drafts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;

/// 2026-05-19T13:59:30Z.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_779_199_170)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn window(
    name: Option<&str>,
    window: Option<u64>,
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<ResetAt>,
) -> WindowObservation {
    WindowObservation {
        name: name.map(str::to_owned),
        window: window.map(secs),
        limit,
        remaining,
        reset,
    }
}

#[test]
fn seed004_success_headers_with_reset_in_milliseconds() {
    // What the campaign API sends on a 2xx: the reset is Unix *milliseconds*.
    let h = map(&[
        ("X-RateLimit-Limit", "60"),
        ("X-RateLimit-Remaining", "59"),
        ("X-RateLimit-Reset", "1779199230123"),
    ]);
    let reset = Some(ResetAt::At(
        UNIX_EPOCH + Duration::from_millis(1_779_199_230_123),
    ));
    for rules in [
        HeaderRules::standard(),
        HeaderRules::standard().reset_unit(ResetUnit::EpochMillis),
    ] {
        let seen = rules.parse(&h, now());
        assert_eq!(
            seen.windows,
            [window(None, None, Some(60), Some(59), reset)]
        );
        assert_eq!(seen.retry_after, None);
        assert_eq!(seen.wait_hint(now()), None);
    }
    // Told seconds, the same value is a time 56 000 years away: absent.
    let wrong = HeaderRules::standard().reset_unit(ResetUnit::EpochSeconds);
    assert_eq!(wrong.parse(&h, now()).windows[0].reset, None);
}

#[test]
fn seed004_429_with_retry_after_in_seconds() {
    let h = map(&[
        ("x-ratelimit-limit", "20"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "1779199230000"),
        ("retry-after", "15"),
        ("date", "Tue, 19 May 2026 13:59:30 GMT"),
    ]);
    let seen = HeaderRules::standard().parse(&h, now() + Duration::from_millis(300));
    assert_eq!(seen.retry_after, Some(ResetAt::After(secs(15))));
    assert_eq!(seen.date, Some(now()));
    assert_eq!(seen.windows[0].remaining, Some(0));
    assert_eq!(seen.wait_hint(now()), Some(secs(15)));
    // Without Retry-After, the exhausted window's reset, measured on the server's clock.
    let mut h = h;
    h.remove("retry-after");
    let seen = HeaderRules::standard().parse(&h, now() + secs(5));
    assert_eq!(seen.wait_hint(now() + secs(5)), Some(secs(60)));
}

#[test]
fn seed004_fail_open_response_has_no_headers() {
    let seen = HeaderRules::standard().parse(&HeaderMap::new(), now());
    assert!(seen.is_empty());
    assert_eq!(seen, Observation::default());
}

#[test]
fn retry_after_as_http_date() {
    let h = map(&[
        ("retry-after", "Tue, 19 May 2026 14:00:00 GMT"),
        ("date", "Tue, 19 May 2026 13:59:30 GMT"),
    ]);
    let seen = HeaderRules::standard().parse(&h, now() + secs(2));
    assert_eq!(
        seen.retry_after,
        Some(ResetAt::At(UNIX_EPOCH + secs(1_779_199_200)))
    );
    // Measured against the server's Date, not the (skewed) local clock.
    assert_eq!(seen.wait_hint(now() + secs(2)), Some(secs(30)));
}

#[test]
fn seed000_vendor_headers_one_pair_per_window() {
    // As the testkit's CRM dialect sends them, shortest window first.
    let h = map(&[
        ("x-rate-limit-minute", "200"),
        ("x-minute-requests-left", "185"),
        ("x-rate-limit-hourly", "600"),
        ("x-hourly-requests-left", "585"),
        ("x-rate-limit-24-hour", "6000"),
        ("x-24-hour-requests-left", "5985"),
    ]);
    let rules = HeaderRules::standard()
        .vendor(
            VendorSet::new("minute", "x-rate-limit-minute", "x-minute-requests-left")
                .window(secs(60)),
        )
        .vendor(
            VendorSet::new("hour", "x-rate-limit-hourly", "x-hourly-requests-left")
                .window(secs(3600)),
        )
        .vendor(
            VendorSet::new("day", "x-rate-limit-24-hour", "x-24-hour-requests-left")
                .window(secs(86_400)),
        );
    let seen = rules.parse(&h, now());
    assert_eq!(
        seen.windows,
        [
            window(Some("minute"), Some(60), Some(200), Some(185), None),
            window(Some("hour"), Some(3600), Some(600), Some(585), None),
            window(Some("day"), Some(86_400), Some(6000), Some(5985), None),
        ]
    );
    // Undeclared, the vendor's headers are not guessed at.
    assert!(HeaderRules::standard().parse(&h, now()).is_empty());
}

#[test]
fn only_declared_ignores_standard_headers_but_not_retry_after() {
    let h = map(&[
        ("x-ratelimit-limit", "10"),
        ("ratelimit-limit", "10"),
        ("x-quota", "5"),
        ("x-quota-left", "1"),
        ("retry-after", "3"),
    ]);
    let rules = HeaderRules::standard()
        .only_declared()
        .vendor(VendorSet::new("quota", "x-quota", "x-quota-left"));
    let seen = rules.parse(&h, now());
    assert_eq!(
        seen.windows,
        [window(Some("quota"), None, Some(5), Some(1), None)]
    );
    assert_eq!(seen.retry_after, Some(ResetAt::After(secs(3))));
}

#[test]
fn openai_style_duration_resets() {
    let h = map(&[
        ("x-ratelimit-limit-requests", "500"),
        ("x-ratelimit-remaining-requests", "499"),
        ("x-ratelimit-reset-requests", "120ms"),
    ]);
    let rules = HeaderRules::standard().vendor(
        VendorSet::new(
            "requests",
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
        )
        .reset("x-ratelimit-reset-requests", ResetUnit::DurationString),
    );
    let seen = rules.parse(&h, now());
    assert_eq!(
        seen.windows,
        [window(
            Some("requests"),
            None,
            Some(500),
            Some(499),
            Some(ResetAt::After(Duration::from_millis(120)))
        )]
    );
}

#[test]
fn ietf_draft_08_to_10_named_policies() {
    // draft-ietf-httpapi-ratelimit-headers-08..10, section 5 examples.
    let h = map(&[
        ("RateLimit-Policy", "\"default\";q=100;w=10"),
        ("RateLimit", "\"default\";r=50;t=30"),
    ]);
    let seen = HeaderRules::standard().parse(&h, now());
    let after = |n| Some(ResetAt::After(secs(n)));
    assert_eq!(
        seen.windows,
        [window(
            Some("default"),
            Some(10),
            Some(100),
            Some(50),
            after(30)
        )]
    );
    // Two policies on two lines; only the exhausted one reported.
    let h = map(&[
        ("RateLimit-Policy", "\"burst\";q=100;w=60"),
        ("RateLimit-Policy", "\"daily\";q=1000;w=86400"),
        ("RateLimit", "\"daily\";r=0;t=36000"),
    ]);
    let seen = HeaderRules::standard().parse(&h, now());
    assert_eq!(
        seen.windows,
        [
            window(Some("burst"), Some(60), Some(100), None, None),
            window(
                Some("daily"),
                Some(86_400),
                Some(1000),
                Some(0),
                after(36_000)
            ),
        ]
    );
    assert_eq!(seen.wait_hint(now()), Some(secs(36_000)));
    // A partition key and a quota unit are read past; an unknown policy stands alone.
    let h = map(&[
        (
            "RateLimit-Policy",
            "\"peruser\";q=100;qu=\"requests\";w=60;pk=:cHsdsRa894==:",
        ),
        (
            "RateLimit",
            "\"peruser\";r=99;t=59;pk=:cHsdsRa894==:, \"other\";r=1",
        ),
    ]);
    let seen = HeaderRules::standard().parse(&h, now());
    assert_eq!(
        seen.windows,
        [
            window(Some("peruser"), Some(60), Some(100), Some(99), after(59)),
            window(Some("other"), None, None, Some(1), None),
        ]
    );
}

#[test]
fn ietf_draft_07_dictionary() {
    // draft-ietf-httpapi-ratelimit-headers-07: `RateLimit` as a dictionary.
    let h = map(&[
        ("RateLimit", "limit=10, remaining=1, reset=7"),
        ("RateLimit-Policy", "10;w=1"),
    ]);
    let seen = HeaderRules::standard().parse(&h, now());
    assert!(seen.windows.contains(&window(
        None,
        None,
        Some(10),
        Some(1),
        Some(ResetAt::After(secs(7)))
    )));
}

#[test]
fn ietf_draft_06_separate_fields_and_policy() {
    // draft-ietf-httpapi-ratelimit-headers-06, section 5 examples.
    let after = |n| Some(ResetAt::After(secs(n)));
    let h = map(&[
        ("RateLimit-Limit", "10"),
        ("RateLimit-Remaining", "1"),
        ("RateLimit-Reset", "7"),
        (
            "RateLimit-Policy",
            "10;w=1, 50;w=60, 1000;w=3600, 5000;w=86400",
        ),
    ]);
    let seen = HeaderRules::standard().parse(&h, now());
    assert_eq!(
        seen.windows,
        [
            window(None, Some(1), Some(10), Some(1), after(7)),
            window(None, Some(60), Some(50), None, None),
            window(None, Some(3600), Some(1000), None, None),
            window(None, Some(86_400), Some(5000), None, None),
        ]
    );
    // Drafts -00 to -02: quota policies inside RateLimit-Limit, `window=` spelled out.
    let h = map(&[
        ("RateLimit-Limit", "100, 100;window=60"),
        ("RateLimit-Remaining", "150"),
        ("RateLimit-Reset", "40"),
    ]);
    let seen = HeaderRules::standard().parse(&h, now());
    assert_eq!(
        seen.windows,
        [window(None, Some(60), Some(100), Some(100), after(40))],
        "remaining above the limit is clamped"
    );
}

#[test]
fn x_rate_limit_spellings_and_extras() {
    let h = map(&[
        ("X-Rate-Limit-Limit", "5000"),
        ("x-ratelimit-used", "42"),
        ("X-RateLimit-Reset-After", "1.5"),
    ]);
    let seen = HeaderRules::standard().parse(&h, now());
    assert_eq!(
        seen.windows,
        [window(
            None,
            None,
            Some(5000),
            Some(4958),
            Some(ResetAt::After(Duration::from_millis(1500)))
        )]
    );
}

#[test]
fn duplicates_keep_the_conservative_reading() {
    let h = map(&[
        ("x-ratelimit-limit", "100"),
        ("x-ratelimit-limit", "80"),
        ("x-ratelimit-remaining", "50, 30"),
        ("x-ratelimit-remaining", "garbage"),
        ("x-ratelimit-reset", "10"),
        ("x-ratelimit-reset", "20"),
        ("retry-after", "5"),
        ("retry-after", "Tue, 19 May 2026 14:00:00 GMT"),
        ("date", "Tue, 19 May 2026 13:59:30 GMT"),
        ("date", "Tue, 19 May 2026 13:59:31 GMT"),
    ]);
    let seen = HeaderRules::standard().parse(&h, now());
    assert_eq!(
        seen.windows,
        [window(
            None,
            None,
            Some(80),
            Some(30),
            Some(ResetAt::After(secs(20)))
        )]
    );
    assert_eq!(
        seen.retry_after,
        Some(ResetAt::At(UNIX_EPOCH + secs(1_779_199_200)))
    );
    assert_eq!(seen.date, None, "disagreeing dates are absent");
}

#[test]
fn hostile_values_are_absent() {
    for bad in [
        "-1",
        "NaN",
        "1e309",
        "",
        " ",
        "0x1F",
        &"9".repeat(40),
        "1,2,3x",
    ] {
        let h = map(&[
            ("x-ratelimit-remaining", bad),
            ("ratelimit", bad),
            ("ratelimit-policy", bad),
            ("retry-after", bad),
            ("date", bad),
        ]);
        let seen = HeaderRules::standard().parse(&h, now());
        assert!(
            seen.windows
                .iter()
                .all(|w| w.remaining.is_none_or(|r| r <= 3)),
            "{bad:?}: {seen:?}"
        );
        assert_eq!(seen.retry_after, None, "{bad:?}");
        assert_eq!(seen.date, None, "{bad:?}");
    }
    let mut h = HeaderMap::new();
    h.insert(
        "x-ratelimit-limit",
        HeaderValue::from_bytes(b"1\xff0").unwrap(),
    );
    h.insert("retry-after", HeaderValue::from_bytes(b"\xfe\xff").unwrap());
    assert!(HeaderRules::standard().parse(&h, now()).is_empty());
}

#[test]
fn host_rules_pick_the_declared_host_first() {
    let millis = HeaderRules::standard().reset_unit(ResetUnit::EpochMillis);
    let rules = HostRules::new(HeaderRules::standard())
        .host("Api.Example.com", millis.clone())
        .host(
            "other.example:8443",
            HeaderRules::standard().only_declared(),
        );
    assert_eq!(rules.for_host(Some("api.example.com")), &millis);
    assert_eq!(rules.for_host(Some("api.example.com:443")), &millis);
    assert_eq!(
        rules.for_host(Some("other.example:8443")),
        &HeaderRules::standard().only_declared()
    );
    assert_eq!(
        rules.for_host(Some("other.example")),
        &HeaderRules::standard()
    );
    assert_eq!(rules.for_host(Some("[::1]:80")), &HeaderRules::standard());
    assert_eq!(rules.for_host(None), &HeaderRules::standard());
}
