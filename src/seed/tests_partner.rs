//! Seed 002's parser against the document's example, and hostile bodies.

use std::time::Duration;

use super::*;

/// The example response of seed 002, verbatim.
const EXAMPLE: &str = include_str!("fixtures/seed002.json");

const MINUTE: Duration = Duration::from_secs(60);

fn limit_of(seed: &Seed, scope: SeedScope, label: &str) -> Option<u64> {
    seed.entry(scope, label).map(|e| e.windows[0].limit)
}

#[test]
fn the_documents_example() {
    let seed = parse_partner_usage(EXAMPLE.as_bytes(), PARTNER_DEFAULT_WINDOW).expect("parses");
    assert_eq!(seed.source, SeedSource::PartnerUsage);
    assert!(seed.warnings.is_empty());
    assert_eq!(seed.entries.len(), 3);
    assert_eq!(seed.entries[0].route, SeedRoute::Default);
    assert_eq!(
        seed.entries[1].route,
        SeedRoute::MethodResource("GET.people".into())
    );
    assert_eq!(limit_of(&seed, SeedScope::Global, "default"), Some(750));
    assert_eq!(limit_of(&seed, SeedScope::Global, "GET.people"), Some(100));
    assert_eq!(limit_of(&seed, SeedScope::PerAccount, "default"), Some(25));
    assert_eq!(limit_of(&seed, SeedScope::PerAccount, "GET.people"), None);
    let w = &seed.entries[2].windows[0];
    assert_eq!(
        (w.name.as_str(), w.window, w.used, w.remaining, w.reset),
        ("configured", MINUTE, None, None, None)
    );
    let summary = seed.summary.expect("a summary");
    assert_eq!(
        summary,
        DaySummary {
            system: "your-system".into(),
            period: "last_24h".into(),
            total_requests: 1247,
            rate_limited_requests: 23,
            rate_limit_percentage: 1.84,
            peak_hour: Some("2026-05-19T14:00:00Z".into()),
        }
    );
}

#[test]
fn the_window_is_configured_and_never_zero() {
    let hour = Duration::from_secs(3600);
    let seed = parse_partner_usage(EXAMPLE.as_bytes(), hour).expect("parses");
    assert!(seed.entries.iter().all(|e| e.windows[0].window == hour));
    assert_eq!(
        parse_partner_usage(EXAMPLE.as_bytes(), Duration::ZERO).unwrap_err(),
        SeedError::ZeroWindow
    );
}

#[test]
fn every_truncation_of_the_example_is_an_error() {
    let bytes = EXAMPLE.as_bytes();
    for cut in 0..bytes.len() {
        let err = parse_partner_usage(&bytes[..cut], MINUTE).unwrap_err();
        assert!(matches!(err, SeedError::Truncated { .. }), "{cut}: {err:?}");
    }
}

#[test]
fn shapes_that_are_not_the_format_are_errors() {
    let cases: [(&str, &str); 5] = [
        ("[]", "(the whole body)"),
        (r#"{"system": "s"}"#, "usage"),
        (r#"{"usage": 5}"#, "usage"),
        (r#"{"usage": {}}"#, "usage.current_limits"),
        (
            r#"{"usage": {"current_limits": [1]}}"#,
            "usage.current_limits",
        ),
    ];
    for (text, path) in cases {
        let err = parse_partner_usage(text.as_bytes(), MINUTE).unwrap_err();
        assert!(
            matches!(&err, SeedError::UnexpectedShape { at, .. } if at == path),
            "{text}: {err:?}"
        );
    }
    let empty = r#"{"usage": {"current_limits": {}}}"#;
    assert_eq!(
        parse_partner_usage(empty.as_bytes(), MINUTE).unwrap_err(),
        SeedError::NoFigures
    );
}

#[test]
fn hostile_limits_and_unknown_scopes_are_skipped_with_warnings() {
    let text = r#"{"usage": {"current_limits": {
        "across_all_accounts": {"default": -750, "GET.people": 100.5, "POST.people": "9",
                                "GET.accounts": 4294967296, "": 5, "PUT.people": 10},
        "per_team": {"default": 5},
        "per_account": 25
    }}}"#;
    let seed = parse_partner_usage(text.as_bytes(), MINUTE).expect("one good limit");
    assert_eq!(seed.entries.len(), 1);
    assert_eq!(limit_of(&seed, SeedScope::Global, "PUT.people"), Some(10));
    let kinds: Vec<&WarningKind> = seed.warnings.iter().map(|w| &w.kind).collect();
    let bad = |problem| WarningKind::BadValue {
        field: "limit",
        problem,
    };
    assert_eq!(kinds[0], &WarningKind::BadSummary { field: "system" });
    assert_eq!(kinds[1], &bad(BadCount::Negative));
    assert_eq!(kinds[2], &bad(BadCount::NotInteger));
    assert_eq!(kinds[3], &bad(BadCount::NotANumber("a string")));
    assert_eq!(kinds[4], &bad(BadCount::TooLarge));
    assert!(matches!(kinds[5], WarningKind::BadRouteKey(_)));
    assert_eq!(kinds[6], &WarningKind::UnknownScope);
    assert_eq!(kinds[7], &WarningKind::NotAnObject { found: "a number" });
    assert_eq!(kinds.len(), 8);
    assert_eq!(seed.warnings[1].route.as_deref(), Some("default"));
    assert_eq!(
        seed.warnings[1].window.as_deref(),
        Some("across_all_accounts")
    );
}

#[test]
fn a_malformed_summary_is_left_out_and_the_limits_still_count() {
    for (field, from, to) in [
        ("total_requests", "1247", "-1"),
        ("rate_limited_requests", "23", "\"23\""),
        ("rate_limit_percentage", "1.84", "101"),
        ("rate_limit_percentage", "1.84", "-0.5"),
        ("peak_hour", "\"2026-05-19T14:00:00Z\"", "14"),
        ("system", "\"your-system\"", "null"),
    ] {
        let text = EXAMPLE.replace(
            &format!("\"{field}\": {from}"),
            &format!("\"{field}\": {to}"),
        );
        assert_ne!(text, EXAMPLE, "{field}");
        let seed = parse_partner_usage(text.as_bytes(), MINUTE).expect("limits remain");
        assert!(seed.summary.is_none(), "{field}");
        assert_eq!(seed.entries.len(), 3);
        assert_eq!(
            seed.warnings
                .iter()
                .map(|w| w.kind.clone())
                .collect::<Vec<_>>(),
            [WarningKind::BadSummary { field }]
        );
    }
}

#[test]
fn no_traffic_and_other_periods() {
    let text = EXAMPLE
        .replace(
            "\"peak_hour\": \"2026-05-19T14:00:00Z\"",
            "\"peak_hour\": null",
        )
        .replace(
            "\"rate_limit_percentage\": 1.84",
            "\"rate_limit_percentage\": 0",
        )
        .replace("last_24h", "last_7d");
    let seed = parse_partner_usage(text.as_bytes(), MINUTE).expect("parses");
    let summary = seed.summary.expect("kept");
    assert_eq!(summary.peak_hour, None);
    assert_eq!(summary.rate_limit_percentage, 0.0);
    assert_eq!(summary.period, "last_7d");
    assert_eq!(seed.warnings.len(), 1);
    assert_eq!(seed.warnings[0].kind, WarningKind::UnexpectedPeriod);
    // A summary alone is still worth reporting.
    let only = text.replace(
        r#""across_all_accounts": { "default": 750, "GET.people": 100 },
      "per_account": { "default": 25 }"#,
        "",
    );
    let seed = parse_partner_usage(only.as_bytes(), MINUTE).expect("summary only");
    assert!(seed.entries.is_empty() && seed.summary.is_some());
}

#[test]
fn repeated_fields_are_read_conservatively() {
    // A second `current_limits`, or a second `usage`, is read too: the
    // smallest ceiling of each route wins.
    let body = r#"{"system": "s", "period": "last_24h", "usage": {
        "total_requests": 10, "rate_limited_requests": 1, "rate_limit_percentage": 10,
        "peak_hour": null,
        "current_limits": {"across_all_accounts": {"default": 750, "GET.people": 100}},
        "current_limits": {"across_all_accounts": {"default": 50}},
        "total_requests": 20, "rate_limited_requests": 4, "rate_limit_percentage": 20},
      "usage": {"current_limits": {"per_account": {"default": 25}},
        "total_requests": 12, "rate_limited_requests": 2, "rate_limit_percentage": 16.67}}"#;
    let seed = parse_partner_usage(body.as_bytes(), MINUTE).expect("parses");
    assert_eq!(limit_of(&seed, SeedScope::Global, "default"), Some(50));
    assert_eq!(limit_of(&seed, SeedScope::Global, "GET.people"), Some(100));
    assert_eq!(limit_of(&seed, SeedScope::PerAccount, "default"), Some(25));
    // The summary keeps the largest counts: more traffic is the safe report.
    let summary = seed.summary.as_ref().expect("a summary");
    assert_eq!(
        (
            summary.total_requests,
            summary.rate_limited_requests,
            summary.rate_limit_percentage
        ),
        (20, 4, 20.0)
    );
    assert!(seed.warnings.iter().any(|w| w.kind
        == WarningKind::Repeated {
            field: "total_requests"
        }));

    // Names that contradict each other leave the summary out.
    let body = EXAMPLE.replacen(
        r#""system": "your-system","#,
        r#""system": "your-system", "system": "another","#,
        1,
    );
    let seed = parse_partner_usage(body.as_bytes(), MINUTE).expect("parses");
    assert!(seed.summary.is_none());
    assert!(seed
        .warnings
        .iter()
        .any(|w| w.kind == WarningKind::BadSummary { field: "system" }));
    // A second `usage` that is not an object is not the format.
    let body = EXAMPLE.replacen(
        r#""period": "last_24h","#,
        r#""period": "last_24h", "usage": 3,"#,
        1,
    );
    let err = parse_partner_usage(body.as_bytes(), MINUTE).unwrap_err();
    assert!(matches!(err, SeedError::UnexpectedShape { .. }), "{err:?}");
}
