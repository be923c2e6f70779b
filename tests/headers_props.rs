//! Property tests for header parsing: hostile input never panics and never
//! yields more remaining than the limit; well-formed values in every format
//! round-trip; duplicates resolve to the conservative reading.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use tower_quota::headers::{
    HeaderRules, Observation, ResetAt, ResetUnit, VendorSet, WindowObservation,
};

/// Every header name any rule reads.
const NAMES: [&str; 20] = [
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-reset-after",
    "x-ratelimit-used",
    "x-rate-limit-limit",
    "x-rate-limit-remaining",
    "x-rate-limit-reset",
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "retry-after",
    "date",
    "x-rate-limit-minute",
    "x-minute-requests-left",
    "x-minute-reset",
    "x-ratelimit-limit-requests",
    "x-ratelimit-reset-requests",
];

fn every_rule() -> Vec<HeaderRules> {
    let vendor = VendorSet::new("minute", "x-rate-limit-minute", "x-minute-requests-left")
        .window(Duration::from_secs(60));
    let units = [
        ResetUnit::Auto,
        ResetUnit::EpochSeconds,
        ResetUnit::EpochMillis,
        ResetUnit::DeltaSeconds,
        ResetUnit::DurationString,
        ResetUnit::Rfc3339,
        ResetUnit::HttpDate,
    ];
    units
        .into_iter()
        .map(|u| {
            HeaderRules::standard()
                .reset_unit(u)
                .vendor(vendor.clone().reset("x-minute-reset", u))
        })
        .collect()
}

fn check_sane(seen: &Observation) -> Result<(), TestCaseError> {
    prop_assert!(
        seen.windows.len() <= 64,
        "unbounded: {}",
        seen.windows.len()
    );
    for w in &seen.windows {
        if let (Some(l), Some(r)) = (w.limit, w.remaining) {
            prop_assert!(r <= l, "remaining {} > limit {}", r, l);
        }
        prop_assert!(w.name.as_ref().is_none_or(|n| n.len() <= 64));
    }
    Ok(())
}

fn received_at() -> impl Strategy<Value = SystemTime> {
    (0u64..4_000_000_000, 0u32..1_000_000_000).prop_map(|(s, n)| UNIX_EPOCH + Duration::new(s, n))
}

fn modern() -> impl Strategy<Value = SystemTime> {
    (1_600_000_000u64..2_000_000_000, 0u64..1000)
        .prop_map(|(s, ms)| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms))
}

/// Text that looks a bit like what servers send, and a bit like nothing at all.
fn texty() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,40}",
        "[0-9., ;=\"a-z:*()?@-]{0,40}",
        "-?[0-9]{0,45}(\\.[0-9]{0,12})?",
        Just("NaN".to_owned()),
        Just("1e309".to_owned()),
        Just("\"a\";q=10;w=60, \"a\";r=50;t=5".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_nor_overfill(
        values in prop::collection::vec((0usize..NAMES.len(), prop::collection::vec(any::<u8>(), 0..64)), 0..24),
        at in received_at(),
    ) {
        let mut h = HeaderMap::new();
        for (i, bytes) in values {
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                h.append(NAMES[i], v);
            }
        }
        for rules in every_rule() {
            let seen = rules.parse(&h, at);
            check_sane(&seen)?;
            let _ = seen.wait_hint(at);
        }
    }

    #[test]
    fn arbitrary_text_never_panics_nor_overfills(
        values in prop::collection::vec((0usize..NAMES.len(), texty()), 0..24),
        at in received_at(),
    ) {
        let mut h = HeaderMap::new();
        for (i, text) in values {
            if let Ok(v) = HeaderValue::from_str(&text) {
                h.append(NAMES[i], v);
            }
        }
        for rules in every_rule() {
            check_sane(&rules.parse(&h, at))?;
        }
    }

    #[test]
    fn x_ratelimit_round_trips_in_every_reset_notation(
        limit in 0u64..=1_000_000_000,
        used in 0u64..=1_000_000_000,
        delay_ms in 0u64..(30 * 86_400_000),
        now in modern(),
    ) {
        let remaining = limit.saturating_sub(used);
        let reset_at = now + Duration::from_millis(delay_ms);
        let epoch = reset_at.duration_since(UNIX_EPOCH).unwrap();
        let whole = UNIX_EPOCH + Duration::from_secs(epoch.as_secs());
        let cases = [
            (epoch.as_millis().to_string(), ResetUnit::EpochMillis, ResetAt::At(UNIX_EPOCH + Duration::from_millis(epoch.as_millis() as u64))),
            (epoch.as_secs().to_string(), ResetUnit::EpochSeconds, ResetAt::At(whole)),
            (format!("{}.{:03}", delay_ms / 1000, delay_ms % 1000), ResetUnit::DeltaSeconds, ResetAt::After(Duration::from_millis(delay_ms))),
            (httpdate::fmt_http_date(reset_at), ResetUnit::HttpDate, ResetAt::At(whole)),
        ];
        for (text, unit, expected) in cases {
            let mut h = HeaderMap::new();
            h.insert("x-ratelimit-limit", limit.into());
            h.insert("x-ratelimit-remaining", remaining.into());
            h.insert("x-ratelimit-reset", HeaderValue::from_str(&text).unwrap());
            for rules in [HeaderRules::standard(), HeaderRules::standard().reset_unit(unit)] {
                let seen = rules.parse(&h, now);
                let want = WindowObservation {
                    limit: Some(limit),
                    remaining: Some(remaining),
                    reset: Some(expected),
                    ..WindowObservation::default()
                };
                prop_assert_eq!(&seen.windows, &vec![want], "{} as {:?}", text, unit);
            }
        }
    }

    #[test]
    fn ietf_fields_round_trip(
        policies in prop::collection::vec((0u64..1_000_000, 0u64..1_000_000, 1u64..31_536_000, 0u64..86_400), 1..6),
        now in modern(),
    ) {
        // Current generation: named policies and their state.
        let policy: Vec<String> = policies.iter().enumerate()
            .map(|(i, (q, _, w, _))| format!("\"p{i}\";q={q};w={w}")).collect();
        let state: Vec<String> = policies.iter().enumerate()
            .map(|(i, (q, used, _, t))| format!("\"p{i}\";r={};t={t}", q.saturating_sub(*used))).collect();
        let mut h = HeaderMap::new();
        h.insert("ratelimit-policy", HeaderValue::from_str(&policy.join(", ")).unwrap());
        h.insert("ratelimit", HeaderValue::from_str(&state.join(",")).unwrap());
        let want: Vec<WindowObservation> = policies.iter().enumerate()
            .map(|(i, (q, used, w, t))| WindowObservation {
                name: Some(format!("p{i}")),
                window: Some(Duration::from_secs(*w)),
                limit: Some(*q),
                remaining: Some(q.saturating_sub(*used)),
                reset: Some(ResetAt::After(Duration::from_secs(*t))),
            })
            .collect();
        prop_assert_eq!(HeaderRules::standard().parse(&h, now).windows, want);

        // Older generation: the first policy is the current one.
        let (q, used, w, t) = policies[0];
        let mut h = HeaderMap::new();
        h.insert("ratelimit-limit", q.into());
        h.insert("ratelimit-remaining", q.saturating_sub(used).into());
        h.insert("ratelimit-reset", t.into());
        h.insert("ratelimit-policy", HeaderValue::from_str(&format!("{q};w={w}")).unwrap());
        let seen = HeaderRules::standard().parse(&h, now);
        let want = WindowObservation {
            window: Some(Duration::from_secs(w)),
            limit: Some(q),
            remaining: Some(q.saturating_sub(used)),
            reset: Some(ResetAt::After(Duration::from_secs(t))),
            ..WindowObservation::default()
        };
        prop_assert_eq!(seen.windows, vec![want]);
    }

    #[test]
    fn vendor_sets_and_retry_after_round_trip(
        limit in 0u64..1_000_000,
        left in 0u64..1_000_000,
        (h_, m, s, ms) in (0u64..100, 0u64..60, 0u64..60, 0u64..1000),
        retry in 0u64..86_400,
        now in modern(),
    ) {
        let rules = HeaderRules::standard().vendor(
            VendorSet::new("requests", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests")
                .reset("x-ratelimit-reset-requests", ResetUnit::DurationString),
        );
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit-requests", limit.into());
        h.insert("x-ratelimit-remaining-requests", left.into());
        let go = format!("{h_}h{m}m{s}.{ms:03}s");
        h.insert("x-ratelimit-reset-requests", HeaderValue::from_str(&go).unwrap());
        h.insert("retry-after", retry.into());
        let seen = rules.parse(&h, now);
        let delay = Duration::from_secs(h_ * 3600 + m * 60 + s) + Duration::from_millis(ms);
        prop_assert_eq!(seen.windows, vec![WindowObservation {
            name: Some("requests".to_owned()),
            window: None,
            limit: Some(limit),
            remaining: Some(left.min(limit)),
            reset: Some(ResetAt::After(delay)),
        }]);
        prop_assert_eq!(seen.retry_after, Some(ResetAt::After(Duration::from_secs(retry))));

        // Retry-After as an HTTP-date, measured against Date.
        let mut h = HeaderMap::new();
        h.insert("date", HeaderValue::from_str(&httpdate::fmt_http_date(now)).unwrap());
        let later = now + Duration::from_secs(retry);
        h.insert("retry-after", HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap());
        let seen = rules.parse(&h, now);
        prop_assert_eq!(seen.wait_hint(now), Some(Duration::from_secs(retry)));
    }

    #[test]
    fn duplicates_take_the_smallest_remaining_and_the_latest_reset(
        dups in prop::collection::vec((0u64..1000, 0u64..3600), 1..8),
        limit in 0u64..1000,
        now in modern(),
    ) {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit", limit.into());
        for (r, t) in &dups {
            h.append("x-ratelimit-remaining", (*r).into());
            h.append("x-ratelimit-reset", (*t).into());
        }
        let seen = HeaderRules::standard().parse(&h, now);
        let w = &seen.windows[0];
        let min_r = dups.iter().map(|d| d.0).min().unwrap();
        let max_t = dups.iter().map(|d| d.1).max().unwrap();
        prop_assert_eq!(w.remaining, Some(min_r.min(limit)));
        prop_assert_eq!(w.reset, Some(ResetAt::After(Duration::from_secs(max_t))));
    }
}

#[test]
fn hostile_values_in_every_header_are_absent() {
    let now = UNIX_EPOCH + Duration::from_secs(1_779_199_170);
    let forty = "9".repeat(40);
    let hostile = [
        "-1", "-0.5", "NaN", "nan", "inf", "1e309", "1E3", "", " ", "\t", &forty, "0x10", "1_000",
        "+5", "--1", "1..2", "\"", "\"\\", ";;;", "(((", ":abc",
    ];
    for bad in hostile {
        let mut h = HeaderMap::new();
        for name in NAMES {
            h.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(bad).unwrap(),
            );
            // Duplicated, to exercise the merge paths too.
            h.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(bad).unwrap(),
            );
        }
        for rules in every_rule() {
            let seen = rules.parse(&h, now);
            assert_eq!(seen, Observation::default(), "{bad:?} under {rules:?}");
        }
    }
    // Non-UTF-8 bytes.
    let mut h = HeaderMap::new();
    for name in NAMES {
        h.append(name, HeaderValue::from_bytes(b"\xff\xfe12").unwrap());
    }
    assert_eq!(
        HeaderRules::standard().parse(&h, now),
        Observation::default()
    );
    // Overlong values are ignored, whatever they hold.
    let mut h = HeaderMap::new();
    h.insert(
        "x-ratelimit-remaining",
        HeaderValue::from_str(&format!("5{}", " ".repeat(5000))).unwrap(),
    );
    h.insert(
        "ratelimit-policy",
        HeaderValue::from_str(&"\"a\";q=1, ".repeat(1000)).unwrap(),
    );
    let seen = HeaderRules::standard().parse(&h, now);
    assert!(seen.windows.iter().all(|w| w.remaining.is_none()));
    assert!(seen.windows.len() <= 16);
}
