//! The quickstart's promise, checked: the run of `examples/quickstart.rs`
//! (a client that learns every limit from seed 002's usage endpoint, 24 tasks
//! for eight accounts) gets no 429 and uses the shared ceiling in full.
//!
//! Real loopback HTTP in real time, compressed 120x (an API minute lasts
//! 500 ms): four windows, two seconds.
#![cfg(feature = "testkit")]

use std::time::Duration;

#[allow(dead_code)]
#[path = "../examples/quickstart/scenario.rs"]
mod scenario;

use scenario::{RunReport, Settings};
use tower_quota::testkit::Outcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_learns_its_limits_and_gets_no_429() {
    let settings = Settings {
        scale: 120.0,
        minutes: 4,
        // 5 % of the window: generous, for a loaded two-core machine.
        margin: Duration::from_millis(25),
    };
    let run = scenario::run(&settings)
        .await
        .unwrap_or_else(|e| panic!("the run failed: {e}"));
    // Every ceiling came from the usage endpoint, none from configuration.
    assert_eq!(run.seed.limits_changed(), 3, "{:?}", run.seed);
    assert_eq!((run.ceiling, run.account_ceiling), (100, 25));
    assert_eq!(
        run.rejected,
        0,
        "the server answered 429s:\n{}",
        rejections(&run)
    );
    assert_eq!(run.limited, 0);
    eprintln!(
        "admitted per window {:?}: {:.1} %",
        run.admitted_per_minute,
        100.0 * run.utilisation()
    );
    assert!(
        run.utilisation() >= 0.95,
        "the shared ceiling was used {:.1} %: {:?}",
        100.0 * run.utilisation(),
        run.admitted_per_minute
    );
    for b in run.server.stats().buckets {
        assert!(b.windows.iter().all(|w| !w.exceeded()), "{b:?}");
    }
    run.server.shutdown().await;
}

/// The server's 429s, one a line: when (ms into the run), who, and which
/// buckets refused, next to the admissions of the same buckets just before.
fn rejections(run: &RunReport) -> String {
    let events = run.server.recorder().events();
    let first = events.first().map(|e| e.at);
    let ms = |at: tower_quota::clock::Nanos| {
        first.map_or(0.0, |f| at.saturating_since(f).as_secs_f64() * 1e3)
    };
    events
        .iter()
        .filter(|e| e.outcome == Outcome::Rejected)
        .take(10)
        .map(|e| {
            format!(
                "{:9.1} ms {} blocked by {:?}",
                ms(e.at),
                e.caller,
                e.blocked_by
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
