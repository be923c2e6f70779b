//! Does taking usage snapshots while traffic flows slow the decision path?
//!
//! Run: `cargo bench --bench report`. Issue #6's goal: by no more than 5 %.
//! One thread makes decisions on ten route buckets (measured) while a second
//! takes `Limiter::snapshot`, reading every bucket the decisions write: once a
//! millisecond (a thousand times more often than a dashboard or a metrics
//! exporter needs; the goal's case), and back to back (the worst case).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tower_quota::clock::{Clock, SystemClock};
use tower_quota::ledger::{acquire, MaxWait};
use tower_quota::quota::Quota;
use tower_quota::report::Thresholds;
use tower_quota::route::Templates;
use tower_quota::{Limiter, OtherRoutes};

fn snapshot_under_load(c: &mut Criterion) {
    let big = Quota::new(1_000_000, Duration::from_millis(10)).unwrap_or(Quota::per_second(1));
    let limiter = Limiter::builder()
        .clock(SystemClock::new())
        .routes(
            Templates::seed004(),
            |_| Some(big.into()),
            OtherRoutes::Unlimited,
        )
        .build();
    let buckets = limiter.route_buckets().to_vec();
    let clock = limiter.clock().clone();
    let mut g = c.benchmark_group("decision");
    let mut i = 0usize;
    g.bench_function("alone", |b| {
        b.iter(|| {
            i = (i + 1) % buckets.len();
            black_box(acquire(&[&buckets[i]], 1, clock.now(), MaxWait::Never).is_ok())
        })
    });
    for (name, pause) in [
        (
            "with a snapshot every millisecond",
            Some(Duration::from_millis(1)),
        ),
        ("with snapshots back to back", None),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let reporter = {
            let (limiter, stop) = (limiter.clone(), stop.clone());
            thread::spawn(move || {
                let mut taken = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    black_box(limiter.snapshot(&Thresholds::default()));
                    taken += 1;
                    if let Some(p) = pause {
                        thread::sleep(p);
                    }
                }
                taken
            })
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % buckets.len();
                black_box(acquire(&[&buckets[i]], 1, clock.now(), MaxWait::Never).is_ok())
            })
        });
        stop.store(true, Ordering::Relaxed);
        let taken = reporter.join().unwrap_or(0);
        eprintln!("{name}: {taken} snapshots taken meanwhile");
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = snapshot_under_load
}
criterion_main!(benches);
