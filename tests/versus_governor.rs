//! Why an exact sliding window, in numbers: governor's GCRA, configured for
//! "N per W" with a burst of N (the natural way to spend an allowance), lets
//! almost 2N requests through inside one window of length W. A server that
//! enforces "N per W" answers the excess with 429s. The engine never does.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use governor::RateLimiter;
use tower_quota::clock::Nanos;
use tower_quota::ledger::{acquire, Bucket, Grant, MaxWait};
use tower_quota::quota::Quota;

const N: u32 = 60;
const W: Duration = Duration::from_secs(60);

/// Requests admitted in `[0, W)` when a client tries once every `step`.
fn governor_admitted(step: Duration) -> u32 {
    let burst = NonZeroU32::new(N).unwrap_or(NonZeroU32::MIN);
    let quota = governor::Quota::with_period(W / N)
        .map_or(governor::Quota::per_minute(burst), |q| q.allow_burst(burst));
    let clock = FakeRelativeClock::default();
    let limiter = RateLimiter::direct_with_clock(quota, clock.clone());
    let mut admitted = 0;
    let mut t = Duration::ZERO;
    while t < W {
        if limiter.check().is_ok() {
            admitted += 1;
        }
        clock.advance(step);
        t += step;
    }
    admitted
}

fn tower_quota_admitted(step: Duration) -> u32 {
    let bucket = Arc::new(Bucket::new("seed 004 default", Quota::per_minute(N)));
    let mut admitted = 0;
    let mut t = Duration::ZERO;
    while t < W {
        if let Ok(Grant::Now) = acquire(&[&bucket], 1, Nanos::from_duration(t), MaxWait::Never) {
            admitted += 1;
        }
        t += step;
    }
    admitted
}

#[test]
fn gcra_with_a_full_burst_overshoots_a_sliding_window_and_the_engine_does_not() {
    let step = Duration::from_millis(100);
    let theirs = governor_admitted(step);
    let ours = tower_quota_admitted(step);
    // GCRA: N at once, then one per W/N: 60 + 59 = 119 inside the first minute.
    assert_eq!(
        theirs,
        2 * N - 1,
        "governor admitted {theirs} in one {W:?} window"
    );
    assert_eq!(ours, N, "tower-quota admitted {ours}");
}

#[test]
fn gcra_made_safe_wastes_allowance() {
    // The only GCRA setting that never exceeds N per W is a burst of 1: then a
    // client that needs a batch of N at once waits (N-1) * W/N for the last one,
    // where the sliding window sends the whole batch at once.
    let quota =
        governor::Quota::with_period(W / N).unwrap_or(governor::Quota::per_minute(NonZeroU32::MIN));
    let clock = FakeRelativeClock::default();
    let limiter = RateLimiter::direct_with_clock(quota, clock.clone());
    let mut sent_at_once = 0;
    while limiter.check().is_ok() {
        sent_at_once += 1;
    }
    assert_eq!(sent_at_once, 1);
    let bucket = Arc::new(Bucket::new("batch", Quota::per_minute(N)));
    let ours = (0..N)
        .filter(|_| {
            matches!(
                acquire(&[&bucket], 1, Nanos::ZERO, MaxWait::Never),
                Ok(Grant::Now)
            )
        })
        .count();
    assert_eq!(ours, N as usize);
}
