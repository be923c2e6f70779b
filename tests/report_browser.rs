//! The usage page in a real browser: headless Chromium loads the generated page,
//! the cards and bars are there with the colours of their health levels, and a
//! screenshot is saved (its path is printed, for CI to keep).
//!
//! Needs Debian's `chromium` (`apt-get install chromium`). Where it is missing
//! the test says so loudly and passes, unless `TOWER_QUOTA_REQUIRE_CHROMIUM=1`
//! (set by `.ci/run`, which installs it) makes that a failure.
#![cfg(feature = "report")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tower_quota::clock::Nanos;
use tower_quota::credits::{CreditBudget, Period};
use tower_quota::ledger::{acquire, Bucket, MaxWait};
use tower_quota::quota::Quota;
use tower_quota::report::{render_html, Counters, History, Snapshot, Thresholds};

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let out = Command::new("which").arg(name).output().ok()?;
            out.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
}

/// Runs Chromium headless on `page` with `extra` arguments; its stdout.
fn run(chromium: &Path, profile: &Path, extra: &[String], page: &Path) -> String {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| panic!("chromium did not start: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A page with three buckets at 50, 80 and 95 %, a credit budget at 40 % and
/// thirty days of history.
fn page() -> String {
    let buckets: Vec<(&str, Arc<Bucket>, u32)> = vec![
        (
            "route",
            Arc::new(Bucket::new("GET /v1/users", Quota::per_minute(100))),
            50,
        ),
        (
            "route",
            Arc::new(Bucket::new("GET /v1/campaigns/:id", Quota::per_minute(100))),
            80,
        ),
        (
            "per_account",
            Arc::new(Bucket::new("per_account#1a2b3c4d", Quota::per_minute(100))),
            95,
        ),
    ];
    for (_, b, n) in &buckets {
        for _ in 0..*n {
            let _ = acquire(&[b], 1, Nanos::ZERO, MaxWait::Never);
        }
    }
    let rows: Vec<(&str, &Bucket, Counters)> = buckets
        .iter()
        .map(|(scope, b, _)| (*scope, &**b, Counters { rate_limited: 0 }))
        .collect();
    let credits = CreditBudget::new(
        "enrichment credits",
        10_000,
        Period::new(Duration::from_secs(30 * 86_400), Nanos::ZERO),
    );
    credits.charge(4_000, Nanos::ZERO);
    let snapshot = Snapshot::of(&rows, Nanos::from_secs(1), &Thresholds::default())
        .with_credits(&[&credits], Nanos::from_secs(1));
    let now = UNIX_EPOCH + Duration::from_secs(1_779_000_000);
    let history = History::new();
    for day in 0..30u64 {
        for i in 0..(10 + day * 3) {
            let at = now - Duration::from_secs(day * 86_400 + i * 60);
            history.record(at, i % 17 == 0);
        }
    }
    let _ = SystemTime::now();
    render_html(&snapshot, &history.summary_24h(now), &history.daily(now))
}

/// Reads, in the browser, what a person would see: cards and their colours,
/// bars, the chart's days and their hover titles.
const CHECK: &str = r#"<script>
const rgb = el => getComputedStyle(el).backgroundColor;
const cards = [...document.querySelectorAll('.card')].map(c => ({
  title: c.querySelector('h2').textContent,
  border: getComputedStyle(c).borderLeftColor,
  fills: [...c.querySelectorAll('.fill')].map(f => ({ color: rgb(f), width: f.getBoundingClientRect().width, bar: f.parentElement.getBoundingClientRect().width })),
}));
const days = [...document.querySelectorAll('g.day')].map(g => g.querySelector('title').textContent);
const pre = document.createElement('pre');
pre.id = 'check';
pre.textContent = JSON.stringify({ cards, days });
document.body.appendChild(pre);
</script></body>"#;

#[test]
fn the_page_shows_cards_bars_and_colours_in_a_real_browser() {
    let Some(chromium) = chromium() else {
        let required = std::env::var("TOWER_QUOTA_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        // Straight to stderr: the harness captures `eprintln!` of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: headless browser test of the usage page: chromium not found.\n\
             *** Install it with `apt-get install chromium` (Debian) to run it.\n"
        );
        assert!(
            !required,
            "TOWER_QUOTA_REQUIRE_CHROMIUM=1 but chromium is not installed"
        );
        return;
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ci-artifacts");
    let _ = std::fs::create_dir_all(&dir);
    let html = page();
    let report = dir.join("usage-report.html");
    std::fs::write(&report, &html).unwrap_or_else(|e| panic!("write {}: {e}", report.display()));
    let checked = dir.join("usage-report-check.html");
    std::fs::write(&checked, html.replace("</body>", CHECK)).unwrap_or_else(|e| panic!("{e}"));
    let profile = std::env::temp_dir().join(format!("tower-quota-chromium-{}", std::process::id()));

    // What the browser rendered.
    let dom = run(&chromium, &profile, &["--dump-dom".into()], &checked);
    let json = dom
        .split("<pre id=\"check\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("the check did not run; DOM: {}", &dom[..dom.len().min(500)]))
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    let seen: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let cards = seen["cards"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        cards.len(),
        4,
        "one card per bucket and credit budget: {seen}"
    );
    let expect = [
        ("GET /v1/users", "rgb(46, 139, 87)", 0.50), // healthy: green
        ("GET /v1/campaigns/:id", "rgb(245, 166, 35)", 0.80), // approaching: amber
        ("per_account#1a2b3c4d", "rgb(217, 48, 37)", 0.95), // critical: red
        ("enrichment credits", "rgb(46, 139, 87)", 0.40), // credits, healthy
    ];
    for (card, (title, colour, share)) in cards.iter().zip(expect) {
        assert_eq!(card["title"], title);
        assert_eq!(card["border"], colour, "{title}: card border");
        let fill = &card["fills"][0];
        assert_eq!(fill["color"], colour, "{title}: progress bar colour");
        let width = fill["width"].as_f64().unwrap_or(0.0) / fill["bar"].as_f64().unwrap_or(1.0);
        assert!(
            (width - share).abs() < 0.02,
            "{title}: bar at {width:.3}, expected {share}"
        );
    }
    let days = seen["days"].as_array().cloned().unwrap_or_default();
    assert_eq!(days.len(), 30, "thirty bars in the daily chart");
    assert!(
        days.iter()
            .all(|d| d.as_str().is_some_and(|t| t.contains("requests"))),
        "{days:?}"
    );

    // A screenshot of the page as a person sees it.
    let shot = dir.join("usage-report.png");
    let _ = std::fs::remove_file(&shot);
    let _ = run(
        &chromium,
        &profile,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,1400".into(),
        ],
        &report,
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "screenshot missing or empty ({size} bytes)");
    println!("usage page screenshot (CI artifact): {}", shot.display());
    eprintln!("usage page screenshot (CI artifact): {}", shot.display());
    let _ = std::fs::remove_dir_all(&profile);
}
