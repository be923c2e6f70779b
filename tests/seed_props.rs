//! Properties of the seed parsers and of applying seeds.
//!
//! - Generated well-formed bodies of both formats read back to the right
//!   numbers (the conservative reading for seed 000), with one warning per
//!   inconsistent window.
//! - Arbitrary bytes, every truncation of a valid body, and hostile values
//!   never panic; truncations are always [`SeedError::Truncated`].
//! - A field given several times in one object reads as its conservative
//!   value, whatever the order: the smallest limit and left over, the largest
//!   consumed; a repeated seed 002 `current_limits` gives each route its
//!   smallest ceiling.
//! - Applying a seed never lowers what a bucket counts, and leaves every
//!   matched window's limit at exactly the server's (never above it).

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tower_quota::clock::Nanos;
use tower_quota::ledger::{acquire, Bucket, Grant, MaxWait};
use tower_quota::quota::{Limits, Quota};
use tower_quota::route::format_stats_key;
use tower_quota::seed::{
    apply_to_bucket, parse_crm_usage, parse_partner_usage, SeedError, SeedScope, SeedWindow,
    WarningKind, WindowNames,
};

const NAMES: [(&str, u64); 3] = [("minute", 60), ("hour", 3600), ("day", 86_400)];

/// One generated seed 000 window: name index, limit, consumed, left over.
type CrmWindow = (usize, u64, u64, u64);

fn crm_window() -> impl Strategy<Value = CrmWindow> {
    let limit = prop_oneof![0..=300u64, Just(u64::from(u32::MAX))];
    (0..3usize, limit, any::<u64>(), any::<u64>()).prop_flat_map(|(n, limit, c, l)| {
        // Mostly consistent figures, sometimes anything.
        let consistent = (0..=limit).prop_map(move |c| (n, limit, c, limit - c));
        prop_oneof![
            3 => consistent,
            1 => Just((n, limit, c % 1000, l % 1000)),
            1 => Just((n, limit, c, l)),
        ]
    })
}

/// Distinct routes, each with distinct window names.
fn crm_body() -> impl Strategy<Value = Vec<((String, String), Vec<CrmWindow>)>> {
    let name = "[a-z_]{1,8}";
    let route = (
        ("api/v1/", name).prop_map(|(p, n)| format!("{p}{n}")),
        "[a-z\"\\\\é_]{1,8}",
    );
    let windows = prop::collection::vec(crm_window(), 1..4).prop_map(|mut ws: Vec<CrmWindow>| {
        ws.sort_by_key(|w| w.0);
        ws.dedup_by_key(|w| w.0);
        ws
    });
    prop::collection::btree_map(route, windows, 1..6).prop_map(|m| m.into_iter().collect())
}

fn render_crm(routes: &[((String, String), Vec<CrmWindow>)]) -> String {
    let entries: Vec<String> = routes
        .iter()
        .map(|((c, a), ws)| {
            let key = serde_json::Value::from(format_stats_key(c, a)).to_string();
            let windows: Vec<String> = ws
                .iter()
                .map(|(n, limit, consumed, left)| {
                    format!(
                        "\"{}\": {{\"limit\": {limit}, \"consumed\": {consumed}, \"left_over\": {left}}}",
                        NAMES[*n].0
                    )
                })
                .collect();
            format!("  {key}: {{\n    {}\n  }}", windows.join(",\n    "))
        })
        .collect();
    format!("{{\n{}\n}}", entries.join(",\n"))
}

/// Generated seed 002 figures: global limits, per-account limits, total, limited.
type PartnerBody = (Vec<(String, u64)>, Vec<(String, u64)>, u64, u64);

fn partner_body() -> impl Strategy<Value = PartnerBody> {
    let limits = prop::collection::btree_map(
        prop_oneof![Just("default".to_owned()), "(GET|POST)\\.[a-z]{1,6}"],
        0..=u64::from(u32::MAX),
        0..4,
    )
    .prop_map(|m| m.into_iter().collect::<Vec<_>>());
    (limits.clone(), limits, any::<u64>(), any::<u64>())
}

fn render_partner(
    global: &[(String, u64)],
    account: &[(String, u64)],
    total: u64,
    limited: u64,
) -> String {
    let obj = |pairs: &[(String, u64)]| {
        let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
        format!("{{ {} }}", inner.join(", "))
    };
    format!(
        "{{\n  \"system\": \"s\",\n  \"period\": \"last_24h\",\n  \"usage\": {{\n    \"total_requests\": {total},\n    \"rate_limited_requests\": {limited},\n    \"rate_limit_percentage\": 12.5,\n    \"peak_hour\": null,\n    \"current_limits\": {{\n      \"across_all_accounts\": {},\n      \"per_account\": {}\n    }}\n  }}\n}}",
        obj(global),
        obj(account)
    )
}

/// A hostile JSON value for a count.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| serde_json::Value::from(x).to_string()),
        "[0-9]{20,40}",
        "\"[a-z0-9]{0,5}\"",
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("[1, 2]".to_owned()),
        Just("{\"limit\": 5}".to_owned()),
        Just("-0".to_owned()),
        Just("1e999".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn crm_bodies_read_back_conservatively(routes in crm_body()) {
        let body = render_crm(&routes);
        let seed = parse_crm_usage(body.as_bytes(), &WindowNames::standard())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
        prop_assert_eq!(seed.entries.len(), routes.len());
        let mut inconsistent = 0;
        for (entry, ((c, a), ws)) in seed.entries.iter().zip(&routes) {
            prop_assert_eq!(entry.scope, SeedScope::Key);
            prop_assert_eq!(entry.route.label(), format!("{c}#{a}"));
            prop_assert_eq!(entry.windows.len(), ws.len());
            for (n, limit, consumed, left) in ws {
                let w = entry.window(NAMES[*n].0).expect("each window");
                let remaining = (*left).min(limit.saturating_sub(*consumed));
                prop_assert_eq!(w.window, Duration::from_secs(NAMES[*n].1));
                prop_assert_eq!(w.limit, *limit);
                prop_assert_eq!(w.remaining, Some(remaining));
                prop_assert_eq!(w.used, Some(limit - remaining));
                if consumed.checked_add(*left) != Some(*limit) {
                    inconsistent += 1;
                }
            }
        }
        prop_assert_eq!(seed.warnings.len(), inconsistent);
        let all_inconsistent = seed
            .warnings
            .iter()
            .all(|w| matches!(w.kind, WarningKind::Inconsistent { .. }));
        prop_assert!(all_inconsistent);
    }

    #[test]
    fn partner_bodies_read_back((global, account, total, limited) in partner_body()) {
        let body = render_partner(&global, &account, total, limited);
        let seed = parse_partner_usage(body.as_bytes(), Duration::from_secs(60))
            .map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
        prop_assert!(seed.warnings.is_empty());
        prop_assert_eq!(seed.entries.len(), global.len() + account.len());
        for (scope, pairs) in [(SeedScope::Global, &global), (SeedScope::PerAccount, &account)] {
            for (label, limit) in pairs {
                let e = seed.entry(scope, label).expect("listed");
                prop_assert_eq!(e.windows[0].limit, *limit);
                prop_assert_eq!(e.windows[0].used, None);
            }
        }
        let summary = seed.summary.expect("summary");
        prop_assert_eq!((summary.total_requests, summary.rate_limited_requests), (total, limited));
    }

    #[test]
    fn repeated_crm_figures_read_as_the_tightest(
        figures in prop::collection::vec((0..3usize, 0..=1000u64), 1..10),
        base in (1..=1000u64, 0..=1000u64, 0..=1000u64),
    ) {
        // One of each field, then the repeats in any order among them.
        const FIELDS: [&str; 3] = ["limit", "consumed", "left_over"];
        let mut pairs = vec![
            ("limit", base.0),
            ("consumed", base.1),
            ("left_over", base.2),
        ];
        pairs.extend(figures.iter().map(|(f, v)| (FIELDS[*f], *v)));
        let of = |field| pairs.iter().filter(move |(f, _)| *f == field).map(|(_, v)| *v);
        let limit = of("limit").min().unwrap_or(0);
        let consumed = of("consumed").max().unwrap_or(0);
        let left_over = of("left_over").min().unwrap_or(0);
        let window: Vec<String> = pairs.iter().map(|(f, v)| format!("\"{f}\": {v}")).collect();
        let body = format!(r#"{{"[\"api/v1/a\", \"b\"]": {{"minute": {{{}}}}}}}"#, window.join(", "));
        let seed = parse_crm_usage(body.as_bytes(), &WindowNames::standard())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
        let w = seed.entries[0].window("minute").expect("read");
        let remaining = left_over.min(limit.saturating_sub(consumed));
        prop_assert_eq!((w.limit, w.remaining, w.used), (limit, Some(remaining), Some(limit - remaining)));
        for field in FIELDS {
            let mut values: Vec<u64> = of(field).collect();
            values.dedup();
            let distinct = values.iter().any(|v| *v != values[0]);
            let warned = seed.warnings.iter().any(|w| w.kind == WarningKind::Repeated { field });
            prop_assert_eq!(warned, distinct, "{}", field);
        }
    }

    #[test]
    fn repeated_partner_limits_read_as_the_smallest(
        (first, _, total, limited) in partner_body(),
        (second, _, _, _) in partner_body(),
    ) {
        let body = render_partner(&first, &[], total, limited);
        let again = render_partner(&second, &[], total, limited);
        // The second body's `current_limits`, repeated in the first's `usage`.
        let Some(limits) = again.find("\"current_limits\"") else {
            return Err(TestCaseError::fail("rendered"));
        };
        let Some(end) = again.rfind("}\n}") else {
            return Err(TestCaseError::fail("rendered"));
        };
        let Some(at) = body.find("\"current_limits\"") else {
            return Err(TestCaseError::fail("rendered"));
        };
        let body = format!("{}{},\n    {}", &body[..at], &again[limits..end], &body[at..]);
        let seed = parse_partner_usage(body.as_bytes(), Duration::from_secs(60))
            .map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
        for (label, _) in first.iter().chain(&second) {
            let smallest = first
                .iter()
                .chain(&second)
                .filter(|(l, _)| l == label)
                .map(|(_, v)| *v)
                .min();
            let read = seed.entry(SeedScope::Global, label).map(|e| e.windows[0].limit);
            prop_assert_eq!(read, smallest, "{}\n{}", label, body);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_crm_usage(&bytes, &WindowNames::standard());
        let _ = parse_partner_usage(&bytes, Duration::from_secs(60));
    }

    #[test]
    fn hostile_values_never_panic_and_what_is_kept_adds_up(
        values in prop::collection::vec(hostile(), 6),
    ) {
        let body = format!(
            r#"{{"[\"api/v1/a\", \"b\"]": {{"minute": {{"limit": {}, "consumed": {}, "left_over": {}}},
                "day": {{"limit": {}, "consumed": {}, "left_over": {}}}}}}}"#,
            values[0], values[1], values[2], values[3], values[4], values[5]
        );
        if let Ok(seed) = parse_crm_usage(body.as_bytes(), &WindowNames::standard()) {
            for w in seed.entries.iter().flat_map(|e| &e.windows) {
                prop_assert!(w.limit <= u64::from(u32::MAX));
                prop_assert_eq!(w.used.zip(w.remaining).map(|(u, r)| u + r), Some(w.limit));
            }
        }
        let partner = format!(
            r#"{{"system": {}, "period": {}, "usage": {{"total_requests": {}, "rate_limited_requests": {},
                "rate_limit_percentage": {}, "peak_hour": {}, "current_limits": {{"per_account": {{"default": {}}}}}}}}}"#,
            values[0], values[1], values[2], values[3], values[4], values[5], values[0]
        );
        if let Ok(seed) = parse_partner_usage(partner.as_bytes(), Duration::from_secs(60)) {
            for w in seed.entries.iter().flat_map(|e| &e.windows) {
                prop_assert!(w.limit <= u64::from(u32::MAX));
            }
        }
    }

    #[test]
    fn applying_never_lowers_counts_nor_raises_limits_above_the_servers(
        configured in prop::collection::vec((0..3usize, 1..50u32), 1..4),
        sent in prop::collection::vec(0..120_000u64, 0..40),
        seeds in prop::collection::vec((0..4usize, 0..80u64, prop::option::of(0..200u64)), 0..5),
        as_of_ms in 120_000..200_000u64,
    ) {
        let lengths = [60u64, 3600, 86_400, 1];
        let mut quotas: Vec<Quota> = Vec::new();
        for (n, limit) in &configured {
            let window = Duration::from_secs(lengths[*n]);
            if !quotas.iter().any(|q| q.window() == window) {
                quotas.push(Quota::new(*limit, window).expect("non-zero"));
            }
        }
        let bucket = Arc::new(Bucket::new("b", Limits::new(quotas.clone()).capacity(100)));
        let mut times = sent.clone();
        times.sort_unstable();
        for t in times {
            if let Ok(Grant::Later(r)) = acquire(&[&bucket], 1, Nanos::from_millis(t), MaxWait::Never) {
                r.depart();
            }
        }
        let as_of = Nanos::from_millis(as_of_ms);
        let before = bucket.state(as_of);
        let windows: Vec<SeedWindow> = seeds
            .iter()
            .map(|(n, limit, used)| SeedWindow {
                name: n.to_string(),
                window: Duration::from_secs(lengths[*n]),
                limit: *limit,
                used: *used,
                remaining: used.map(|u| limit.saturating_sub(u)),
                reset: None,
            })
            .collect();
        let applied = apply_to_bucket(&bucket, &windows, as_of, |_| None);
        let after = bucket.state(as_of);
        prop_assert!(after.units_charged >= before.units_charged);
        for (i, (b, a)) in before.windows.iter().zip(&after.windows).enumerate() {
            prop_assert!(a.used + a.reserved >= b.used + b.reserved, "window {}", i);
            let server: Vec<u64> = windows
                .iter()
                .filter(|w| w.window == b.window)
                .map(|w| w.limit)
                .collect();
            match server.iter().copied().rfind(|l| *l > 0) {
                Some(last) => prop_assert_eq!(u64::from(a.limit), last),
                None => prop_assert_eq!(a.limit, b.limit),
            }
            for w in windows.iter().filter(|w| w.window == b.window) {
                if let Some(used) = w.used {
                    // What the server counted is counted, up to what the
                    // window can ever admit (its limit or its capacity).
                    let most = u64::from(a.limit.max(bucket.capacity(i).unwrap_or(0)));
                    let used = used.min(most);
                    prop_assert!(a.used + a.reserved >= used, "window {}: {} < {}", i, a.used + a.reserved, used);
                }
            }
        }
        let matched = windows
            .iter()
            .filter(|w| before.windows.iter().any(|b| b.window == w.window))
            .count();
        prop_assert_eq!(applied.skipped.len(), windows.len() - matched);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn every_truncation_is_an_error(routes in crm_body(), (g, a, t, l) in partner_body()) {
        for body in [render_crm(&routes), render_partner(&g, &a, t, l)] {
            let bytes = body.as_bytes();
            for cut in 0..bytes.len() {
                let crm = parse_crm_usage(&bytes[..cut], &WindowNames::standard());
                prop_assert!(matches!(crm, Err(SeedError::Truncated { .. })), "{}: {:?}", cut, crm);
                let partner = parse_partner_usage(&bytes[..cut], Duration::from_secs(60));
                prop_assert!(matches!(partner, Err(SeedError::Truncated { .. })), "{}: {:?}", cut, partner);
            }
        }
    }
}
