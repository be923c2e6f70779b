//! Keyed decisions over 10,000 keys, for counting cache misses: a loop with
//! no clock, no criterion and no allocation per decision, so that a cache
//! simulator's figures are the decisions' own. Timing on this project's noisy
//! VM swings by 2x between runs of one binary (BENCHMARKS.md); simulated
//! misses do not move.
//!
//! ```sh
//! cargo bench --bench keyed_misses --no-run
//! B=$(ls -t target/release/deps/keyed_misses-* | grep -v '\.d$' | head -1)
//! for who in tower-quota governor; do for n in 100000 300000; do
//!   valgrind --tool=cachegrind --cache-sim=yes --LL=524288,8,64 \
//!     --cachegrind-out-file=/dev/null "$B" "$who" "$n" 10000 2>&1 | grep -E 'D1  misses|LLd misses'
//! done; done
//! ```
//!
//! A third argument sets the number of keys (10,000 by default).
//! Misses per decision are the difference between the two runs divided by
//! 200,000 (the setup's misses cancel). The simulated last level is this
//! machine's L2 per core (512 KB, 8-way). Under `cargo bench` (argument `--bench`) it runs both
//! for a moment and prints nanoseconds per decision, for a rough look only.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use tower_quota::clock::Nanos;
use tower_quota::ledger::{Grant, KeyedBuckets, MaxWait};
use tower_quota::quota::Quota;

/// `keys` keys in a fixed shuffled order (a seeded Fisher-Yates), as
/// `benches/decision.rs`'s shuffled rows visit them.
fn order(keys: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (0..keys).collect();
    fastrand::Rng::with_seed(7).shuffle(&mut order);
    order
}

/// Runs `n` decisions of tower-quota's keyed scope (10 per millisecond, as in
/// `benches/decision.rs`), spaced so that a key comes back after 100 µs or
/// more: every decision admits.
fn ours(n: u64, keys: u64) -> u64 {
    let order = order(keys);
    let quota = Quota::new(10, Duration::from_millis(1)).unwrap_or(Quota::per_second(1));
    let scope: KeyedBuckets<u64> = KeyedBuckets::new("per_key", quota, 2 * keys as usize);
    let step = (100_000 / keys).max(1_000);
    let mut now = 0;
    for k in 0..keys {
        let _ = scope.acquire(&k, 1, Nanos::new(now), MaxWait::Never);
    }
    let mut admitted = 0;
    for i in 0..n {
        now += step;
        let k = order[(i % keys) as usize];
        let grant = scope.acquire(&k, 1, Nanos::new(now), MaxWait::Never);
        admitted += u64::from(matches!(grant, Ok(Grant::Now)));
    }
    admitted
}

/// Runs `n` decisions of governor's keyed store (its default clock).
fn governor(n: u64, keys: u64) -> u64 {
    let order = order(keys);
    let max = NonZeroU32::new(u32::MAX).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(1_000_000).unwrap_or(NonZeroU32::MIN);
    let gov = governor::RateLimiter::dashmap(governor::Quota::per_second(max).allow_burst(burst));
    for k in 0..keys {
        let _ = gov.check_key(&k);
    }
    let mut admitted = 0;
    for i in 0..n {
        let k = order[(i % keys) as usize];
        admitted += u64::from(gov.check_key(&k).is_ok());
    }
    admitted
}

fn main() {
    let mut args = std::env::args().skip(1);
    let who = args.next().unwrap_or_default();
    let n = args.next().and_then(|n| n.parse().ok()).unwrap_or(300_000);
    let keys = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000u64)
        .max(1);
    let run = |who: &str, n: u64| match who {
        "tower-quota" => Some(ours(n, keys)),
        "governor" => Some(governor(n, keys)),
        _ => None,
    };
    if let Some(admitted) = run(&who, n) {
        println!("{who}: {admitted} of {n} admitted");
        return;
    }
    // `cargo bench` (or no arguments): a rough timing of both.
    for who in ["tower-quota", "governor"] {
        let started = Instant::now();
        let admitted = black_box(run(who, 1_000_000));
        let ns = started.elapsed().as_nanos() as f64 / 1_000_000.0;
        println!("{who}: {ns:.1} ns per decision (setup included), {admitted:?} admitted");
    }
}
