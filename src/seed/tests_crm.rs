//! Seed 000's parser against the document's own example, and hostile bodies.

use std::time::Duration;

use super::*;
use crate::route::{Rails, Router, SEED000_KEYS};

/// The example response of seed 000 exactly as the document prints it: cut
/// off before its final `}`.
const TRUNCATED: &str = include_str!("fixtures/seed000_truncated.json");

fn names() -> WindowNames {
    WindowNames::standard()
}

fn complete() -> String {
    format!("{TRUNCATED}\n}}")
}

fn kinds(seed: &Seed) -> Vec<(Option<&str>, Option<&str>, &WarningKind)> {
    seed.warnings
        .iter()
        .map(|w| (w.route.as_deref(), w.window.as_deref(), &w.kind))
        .collect()
}

#[test]
fn the_documents_example_is_truncated_and_refused_as_a_whole() {
    let err = parse_crm_usage(TRUNCATED.as_bytes(), &names()).unwrap_err();
    assert!(matches!(err, SeedError::Truncated { .. }), "{err:?}");
    // With the page's stray `0` after it, it is still refused.
    let with_tail = format!("{TRUNCATED}\n0\n");
    let err = parse_crm_usage(with_tail.as_bytes(), &names()).unwrap_err();
    assert!(matches!(err, SeedError::NotJson { .. }), "{err:?}");
}

#[test]
fn the_example_with_its_brace_restored_parses_conservatively() {
    let seed = parse_crm_usage(complete().as_bytes(), &names()).expect("complete");
    assert_eq!(seed.source, SeedSource::CrmUsageStats);
    assert_eq!(seed.entries.len(), 50);
    assert!(seed.summary.is_none());
    let first = &seed.entries[0];
    assert_eq!(first.route, SeedRoute::rails("api/v1/contacts", "search"));
    assert_eq!(first.scope, SeedScope::Key);
    let day = first.window("day").expect("day");
    assert_eq!(day.window, Duration::from_secs(86_400));
    assert_eq!(
        (day.limit, day.used, day.remaining),
        (6000, Some(500), Some(5500))
    );
    let hour = first.window("hour").expect("hour");
    assert_eq!(
        (hour.limit, hour.used, hour.remaining),
        (600, Some(5), Some(595))
    );
    let minute = first.window("minute").expect("minute");
    assert_eq!(
        (minute.limit, minute.used, minute.remaining),
        (200, Some(10), Some(190))
    );
    // Exactly the first entry's three windows contradict themselves.
    let inconsistent = |limit, consumed, left_over| WarningKind::Inconsistent {
        limit,
        consumed,
        left_over,
    };
    let route = Some("api/v1/contacts#search");
    assert_eq!(
        kinds(&seed),
        [
            (route, Some("day"), &inconsistent(6000, 500, 6000)),
            (route, Some("hour"), &inconsistent(600, 5, 600)),
            (route, Some("minute"), &inconsistent(200, 10, 200)),
        ]
    );
    // Consistent figures are taken as they are.
    let org = seed
        .entry(SeedScope::Key, "api/v1/organizations#show")
        .expect("listed");
    let day = org.window("day").expect("day");
    assert_eq!((day.used, day.remaining), (Some(3), Some(5997)));
    let export = seed
        .entry(SeedScope::Key, "api/v1/conversations#export")
        .expect("listed");
    assert_eq!(export.window("minute").map(|w| w.limit), Some(1));
}

#[test]
fn every_route_is_labelled_as_the_rails_router_labels_it_in_the_same_order() {
    let seed = parse_crm_usage(complete().as_bytes(), &names()).expect("complete");
    let rails = Rails::seed000();
    assert_eq!(seed.entries.len(), SEED000_KEYS.len());
    for (entry, (controller, action)) in seed.entries.iter().zip(SEED000_KEYS) {
        let SeedRoute::Rails {
            controller: c,
            action: a,
            label,
        } = &entry.route
        else {
            panic!("a Rails route")
        };
        assert_eq!((c.as_str(), a.as_str()), (controller, action));
        let id = rails.find_key(c, a).expect("declared");
        assert_eq!(rails.label(id), label);
        assert_eq!(entry.windows.len(), 3);
    }
}

fn body(windows: &str) -> String {
    format!(r#"{{"[\"api/v1/contacts\", \"search\"]": {{ {windows} }}}}"#)
}

#[test]
fn hostile_values_skip_their_window_with_a_warning() {
    let good = r#""minute": {"limit": 200, "consumed": 1, "left_over": 199}"#;
    let cases: [(&str, &'static str, BadCount); 8] = [
        ("-1", "limit", BadCount::Negative),
        ("6000.0", "limit", BadCount::NotInteger),
        ("\"6000\"", "limit", BadCount::NotANumber("a string")),
        ("null", "limit", BadCount::NotANumber("null")),
        ("4294967296", "limit", BadCount::TooLarge),
        ("1e400", "limit", BadCount::TooLarge),
        ("[]", "limit", BadCount::NotANumber("an array")),
        ("true", "limit", BadCount::NotANumber("a boolean")),
    ];
    for (value, field, problem) in cases {
        let windows =
            format!(r#""day": {{"limit": {value}, "consumed": 0, "left_over": 0}}, {good}"#);
        let text = body(&windows);
        let seed = match parse_crm_usage(text.as_bytes(), &names()) {
            Ok(seed) => seed,
            // 1e400 is beyond f64: serde_json refuses the whole body.
            Err(SeedError::NotJson { .. }) if value == "1e400" => continue,
            Err(e) => panic!("{value}: {e}"),
        };
        assert_eq!(seed.entries[0].windows.len(), 1, "{value}");
        assert_eq!(
            kinds(&seed),
            [(
                Some("api/v1/contacts#search"),
                Some("day"),
                &WarningKind::BadValue { field, problem }
            )],
            "{value}"
        );
    }
    let missing = body(r#""day": {"limit": 6000, "consumed": 0}"#);
    let err = parse_crm_usage(missing.as_bytes(), &names()).unwrap_err();
    assert_eq!(err, SeedError::NoFigures);
    let negative = body(r#""day": {"limit": 6000, "consumed": -5, "left_over": 6005}"#);
    assert_eq!(
        parse_crm_usage(negative.as_bytes(), &names()).unwrap_err(),
        SeedError::NoFigures
    );
}

#[test]
fn over_consumption_leaves_nothing() {
    let text = body(r#""hour": {"limit": 600, "consumed": 700, "left_over": 0}"#);
    let seed = parse_crm_usage(text.as_bytes(), &names()).expect("parses");
    let hour = seed.entries[0].window("hour").expect("hour");
    assert_eq!((hour.used, hour.remaining), (Some(600), Some(0)));
    assert_eq!(seed.warnings.len(), 1);
    let huge = body(r#""hour": {"limit": 600, "consumed": 18446744073709551615, "left_over": 1}"#);
    let seed = parse_crm_usage(huge.as_bytes(), &names()).expect("parses");
    let hour = seed.entries[0].window("hour").expect("hour");
    assert_eq!((hour.used, hour.remaining), (Some(600), Some(0)));
}

#[test]
fn unknown_windows_are_skipped_unless_the_table_knows_them() {
    let text = body(
        r#""30s": {"limit": 50, "consumed": 2, "left_over": 48},
           "minute": {"limit": 200, "consumed": 0, "left_over": 200}"#,
    );
    let seed = parse_crm_usage(text.as_bytes(), &names()).expect("parses");
    assert_eq!(seed.entries[0].windows.len(), 1);
    assert_eq!(seed.warnings[0].kind, WarningKind::UnknownWindow);
    assert_eq!(seed.warnings[0].window.as_deref(), Some("30s"));
    let wider = names().with("30s", Duration::from_secs(30));
    let seed = parse_crm_usage(text.as_bytes(), &wider).expect("parses");
    assert_eq!(
        seed.entries[0].window("30s").map(|w| w.window),
        Some(Duration::from_secs(30))
    );
    assert!(seed.warnings.is_empty());
    let fast = parse_crm_usage(text.as_bytes(), &names().scaled(60.0)).expect("parses");
    assert_eq!(
        fast.entries[0].window("minute").map(|w| w.window),
        Some(Duration::from_secs(1))
    );
}

#[test]
fn bad_keys_and_shapes() {
    let text = r#"{"api/v1/contacts#search": {"minute": {"limit": 1, "consumed": 0, "left_over": 1}},
        "[\"api/v1/people\", \"match\"]": 7,
        "[\"api/v1/people\", \"show\"]": {"minute": 3},
        "[\"api/v1/tasks\", \"create\"]": {"minute": {"limit": 9, "consumed": 0, "left_over": 9}}}"#;
    let seed = parse_crm_usage(text.as_bytes(), &names()).expect("one good route");
    assert_eq!(seed.entries.len(), 1);
    assert_eq!(seed.entries[0].route.label(), "api/v1/tasks#create");
    let k = kinds(&seed);
    assert_eq!(k.len(), 3);
    assert!(matches!(
        k[0],
        (
            Some("api/v1/contacts#search"),
            None,
            WarningKind::BadRouteKey(_)
        )
    ));
    assert_eq!(k[1].2, &WarningKind::NotAnObject { found: "a number" });
    assert_eq!(k[2].2, &WarningKind::NotAnObject { found: "a number" });
    for (text, found) in [("[]", "an array"), ("\"x\"", "a string"), ("null", "null")] {
        let err = parse_crm_usage(text.as_bytes(), &names()).unwrap_err();
        assert!(
            matches!(&err, SeedError::UnexpectedShape { found: f, .. } if *f == found),
            "{text}: {err:?}"
        );
    }
    assert_eq!(
        parse_crm_usage(b"{}", &names()).unwrap_err(),
        SeedError::NoFigures
    );
    assert!(matches!(
        parse_crm_usage(b"", &names()),
        Err(SeedError::Truncated { .. })
    ));
    assert!(matches!(
        parse_crm_usage(b"<html>502</html>", &names()),
        Err(SeedError::NotJson { .. })
    ));
    assert!(matches!(
        parse_crm_usage(&[0xff, 0xfe, b'{'], &names()),
        Err(SeedError::NotJson { .. })
    ));
}

#[test]
fn a_route_given_twice_keeps_the_tighter_figures() {
    let text = r#"{
      "[\"api/v1/contacts\", \"search\"]": {"minute": {"limit": 200, "consumed": 10, "left_over": 190}},
      "[\"api/v1/contacts\",\"search\"]": {"minute": {"limit": 100, "consumed": 5, "left_over": 95}},
      "[\"api/v1/contacts\", \"search\"]": {"minute": {"limit": 300, "consumed": 50, "left_over": 250}}
    }"#;
    let seed = parse_crm_usage(text.as_bytes(), &names()).expect("parses");
    assert_eq!(seed.entries.len(), 1);
    let minute = seed.entries[0].window("minute").expect("minute");
    assert_eq!(
        (minute.limit, minute.used, minute.remaining),
        (100, Some(50), Some(50))
    );
    assert_eq!(seed.warnings.len(), 2);
    assert!(seed
        .warnings
        .iter()
        .all(|w| w.kind == WarningKind::Duplicate));
}

#[test]
fn repeated_fields_are_read_conservatively() {
    // The tighter figures come second, then first: the same reading either way.
    for body in [
        r#"{"[\"api/v1/contacts\", \"search\"]": {"minute": {"limit": 6000, "consumed": 0,
            "left_over": 6000, "limit": 100, "consumed": 90, "left_over": 10}}}"#,
        r#"{"[\"api/v1/contacts\", \"search\"]": {"minute": {"limit": 100, "consumed": 90,
            "left_over": 10, "limit": 6000, "consumed": 0, "left_over": 6000}}}"#,
    ] {
        let seed = parse_crm_usage(body.as_bytes(), &names()).expect("valid");
        let w = seed.entries[0].window("minute").expect("read");
        assert_eq!((w.limit, w.used, w.remaining), (100, Some(90), Some(10)));
        let repeated: Vec<&WarningKind> = seed
            .warnings
            .iter()
            .map(|w| &w.kind)
            .filter(|k| matches!(k, WarningKind::Repeated { .. }))
            .collect();
        assert_eq!(
            repeated,
            [
                &WarningKind::Repeated { field: "limit" },
                &WarningKind::Repeated { field: "consumed" },
                &WarningKind::Repeated { field: "left_over" },
            ]
        );
    }
    // Each figure is read on its own: the smallest limit, the largest
    // consumed, the smallest left over, even from different occurrences:
    // remaining = min(50, 150 - 30).
    let body = br#"{"[\"api/v1/contacts\", \"search\"]": {"minute": {"limit": 200, "consumed": 5,
        "left_over": 50, "limit": 150, "consumed": 30, "left_over": 190}}}"#;
    let seed = parse_crm_usage(body, &names()).expect("valid");
    let w = seed.entries[0].window("minute").expect("read");
    assert_eq!((w.limit, w.used, w.remaining), (150, Some(100), Some(50)));
    // The same value twice is no contradiction.
    let body = br#"{"[\"api/v1/contacts\", \"search\"]": {"minute": {"limit": 200, "consumed": 5,
        "left_over": 195, "limit": 200}}}"#;
    let seed = parse_crm_usage(body, &names()).expect("valid");
    assert!(seed.warnings.is_empty(), "{:?}", seed.warnings);
    // A repeated figure one of whose values is not a count leaves the window out.
    let body = br#"{"[\"api/v1/contacts\", \"search\"]": {"minute": {"limit": 200, "consumed": 5,
        "left_over": 195, "limit": "lots"}, "hour": {"limit": 600, "consumed": 0, "left_over": 600}}}"#;
    let seed = parse_crm_usage(body, &names()).expect("the hour is usable");
    assert!(seed.entries[0].window("minute").is_none());
    assert!(seed.warnings.iter().any(|w| matches!(
        w.kind,
        WarningKind::BadValue {
            field: "limit",
            problem: BadCount::NotANumber("a string")
        }
    )));
}
