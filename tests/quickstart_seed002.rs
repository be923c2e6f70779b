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

use scenario::Settings;

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
    assert_eq!(run.rejected, 0, "the server answered 429s");
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
