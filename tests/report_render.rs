//! The renderers: one card per bucket with its health class, the 30-day chart
//! with a title per bar, a page with no external asset, escaping, and no key in
//! any output.
#![cfg(feature = "report")]

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tower_quota::clock::Nanos;
use tower_quota::ledger::{acquire, Bucket, Grant, KeyedBuckets, MaxWait};
use tower_quota::quota::{Limits, Quota};
use tower_quota::report::{render_html, render_table, Counters, History, Snapshot, Thresholds};

/// 2026-05-19T14:00:00Z
const NOW: u64 = 1_779_199_200;

fn charged(label: &str, limit: u32, used: u32) -> Arc<Bucket> {
    let bucket = Arc::new(Bucket::new(label, Limits::from(Quota::per_minute(limit))));
    for _ in 0..used {
        assert!(matches!(
            acquire(&[&bucket], 1, Nanos::ZERO, MaxWait::Never),
            Ok(Grant::Now)
        ));
    }
    bucket
}

fn page_for(buckets: &[(&str, &Bucket, Counters)]) -> String {
    let snapshot = Snapshot::of(buckets, Nanos::from_secs(1), &Thresholds::default());
    let history = History::new();
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    for day in 0..30u64 {
        for i in 0..day {
            history.record(now - Duration::from_secs(day * 86_400), i % 5 == 0);
        }
    }
    render_html(&snapshot, &history.summary_24h(now), &history.daily(now))
}

#[test]
fn one_card_per_bucket_with_its_health_class() {
    let healthy = charged("GET.people", 100, 10);
    let approaching = charged("POST.people", 100, 80);
    let critical = charged("per_account#1a2b3c4d", 25, 25);
    let page = page_for(&[
        ("across_all_accounts", &healthy, Counters::default()),
        ("across_all_accounts", &approaching, Counters::default()),
        ("per_account", &critical, Counters { rate_limited: 3 }),
    ]);
    assert_eq!(page.matches("<article class=\"card ").count(), 3);
    assert_eq!(page.matches("class=\"card health-healthy\"").count(), 1);
    assert_eq!(page.matches("class=\"card health-approaching\"").count(), 1);
    assert_eq!(page.matches("class=\"card health-critical\"").count(), 1);
    // Each card's bar is coloured by its level, in card order.
    let fills: Vec<&str> = page
        .match_indices("class=\"fill ")
        .map(|(i, _)| &page[i + 12..i + 30])
        .collect();
    assert!(fills[0].starts_with("health-healthy"));
    assert!(fills[1].starts_with("health-approaching"));
    assert!(fills[2].starts_with("health-critical"));
    assert!(page.contains("style=\"width:80%\""));
    assert!(page.contains("Rate limit 25/min"));
    assert!(page.contains("429 responses: 3"));
    // The three colours are distinct.
    for class in ["health-healthy", "health-approaching", "health-critical"] {
        assert!(page.contains(&format!(".fill.{class}{{background:")));
    }
}

#[test]
fn the_chart_has_thirty_bars_with_date_and_count_on_hover() {
    let b = charged("GET.people", 100, 1);
    let page = page_for(&[("global", &b, Counters::default())]);
    assert_eq!(page.matches("<g class=\"day\"><title>").count(), 30);
    assert!(page.contains("<title>2026-05-19: 0 requests, 0 rate-limited</title>"));
    assert!(page.contains("<title>2026-05-18: 1 requests, 1 rate-limited</title>"));
    assert!(page.contains("<title>2026-04-20: 29 requests, 6 rate-limited</title>"));
    // The date range under the chart.
    assert!(page.contains("<span>2026-04-20</span><span>2026-05-19</span>"));
    // The 24-hour summary (today has no traffic in this history).
    assert!(page.contains("<dt>Total requests</dt><dd>0</dd>"));
    assert!(page.contains("<dt>Peak hour</dt><dd>none</dd>"));
}

#[test]
fn the_page_is_self_contained() {
    let b = charged("GET.people", 100, 1);
    let page = page_for(&[("global", &b, Counters::default())]);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("http://"));
    assert!(!page.contains("https://"));
    assert!(!page.contains("<script"));
    assert!(!page.contains("<link"));
    assert!(!page.contains("src="));
    assert!(page.contains("<style>"));
}

#[test]
fn a_hostile_label_is_escaped() {
    let hostile = r#"<script>alert("x")</script>&'"#;
    let b = charged(hostile, 100, 1);
    let page = page_for(&[("<b>scope</b>", &b, Counters::default())]);
    assert!(!page.contains("<script"));
    assert!(!page.contains("<b>"));
    assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"));
    assert!(page.contains("&lt;b&gt;scope&lt;/b&gt;"));
    // The terminal table shows escape sequences instead of sending them.
    let snapshot = Snapshot::of(
        &[("s", &charged("evil\u{1b}[2J", 10, 1), Counters::default())],
        Nanos::ZERO,
        &Thresholds::default(),
    );
    let table = render_table(&snapshot);
    assert!(!table.contains('\u{1b}'));
    assert!(table.contains("evil\\u{1b}[2J"));
}

#[test]
fn no_output_shows_an_api_key() {
    let key = "sk_live_4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c".to_string();
    let keys = KeyedBuckets::new("per_api_key", Quota::per_minute(60), 10);
    let Ok(bucket) = keys.bucket(&key, Nanos::ZERO) else {
        panic!("no bucket");
    };
    let snapshot = Snapshot::of(
        &[("per_api_key", &bucket, Counters::default())],
        Nanos::ZERO,
        &Thresholds::default(),
    );
    let history = History::new();
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let page = render_html(&snapshot, &history.summary_24h(now), &history.daily(now));
    let table = render_table(&snapshot);
    for out in [&page, &table] {
        assert!(out.contains("per_api_key#"));
        assert!(!out.contains(&key));
        assert!(!out.contains("sk_live"));
    }
}

#[test]
fn the_table_aligns_its_columns() {
    let short = Arc::new(Bucket::new(
        "a",
        Limits::new([
            Quota::per_minute(2),
            Quota::per_hour(600).fixed(Nanos::ZERO),
        ]),
    ));
    let grants: Vec<_> = (0..3)
        .map(|_| acquire(&[&short], 1, Nanos::ZERO, MaxWait::Forever))
        .collect();
    assert!(grants.iter().all(Result::is_ok));
    short.block_until(Nanos::from_secs(40));
    let long = charged("a-much-longer-label", 100, 50);
    let snapshot = Snapshot::of(
        &[
            ("routes", &short, Counters { rate_limited: 7 }),
            ("routes", &long, Counters::default()),
        ],
        Nanos::from_secs(10),
        &Thresholds::default(),
    );
    let table = render_table(&snapshot);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "BUCKET               WINDOW    USED/LIMIT     %  HEALTH    PER MIN  FREES IN  WAITING  429S"
    );
    assert_eq!(
        lines[1],
        "a                    1m               2/2   100  critical        2     50.0s        1     7"
    );
    assert_eq!(
        lines[2],
        "                     1h fixed       2/600  0.33  healthy        10    59m50s        1"
    );
    assert_eq!(
        lines[3],
        "a-much-longer-label  1m            50/100    50  healthy       100     50.0s        0     0"
    );
    assert_eq!(lines[4], "a: blocked for 30.0s (server said 429)");
    // Right-aligned cells end under the end of their heading.
    let end = lines[0].find("USED/LIMIT").unwrap_or(0) + "USED/LIMIT".len();
    for line in &lines[1..4] {
        assert!(line.as_bytes()[end - 1].is_ascii_digit(), "{line}");
        assert_eq!(line.as_bytes()[end], b' ', "{line}");
    }
}
