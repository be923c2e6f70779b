//! Pacing: governor's GCRA, able to reserve a slot in the future.
//!
//! governor's own limiter only admits at "now", so it cannot hold a place for a
//! waiter that departs later, nor give a slot back when a decision across
//! several buckets is undone. This is the same arithmetic on one atomic
//! theoretical arrival time (TAT): a unit of cost `n` conforms at `t` when
//! `t >= TAT + (n - burst) * T`, and then `TAT = max(TAT, t) + n * T`.
//! `tests::agrees_with_governor` checks it decision for decision.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::quota::Pacing;

#[derive(Debug)]
pub(crate) struct Pacer {
    tat: AtomicU64,
    interval: u64,
    burst: u64,
}

impl Pacer {
    pub(crate) fn new(p: Pacing) -> Pacer {
        Pacer {
            tat: AtomicU64::new(0),
            interval: u64::try_from(p.interval().as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
            burst: u64::from(p.burst().get()),
        }
    }

    /// The largest cost that can ever conform.
    pub(crate) fn max_cost(&self) -> u64 {
        self.burst
    }

    pub(crate) fn load(&self) -> u64 {
        self.tat.load(Ordering::Acquire)
    }

    /// The earliest time a unit of `cost` conforms, given the TAT snapshot `tat`.
    pub(crate) fn earliest(&self, tat: u64, cost: u64) -> u64 {
        let ahead = cost.saturating_mul(self.interval);
        let slack = self.burst.saturating_mul(self.interval);
        tat.saturating_add(ahead).saturating_sub(slack)
    }

    /// Takes the slot at `at` if the TAT is still `tat`.
    pub(crate) fn take(&self, tat: u64, at: u64, cost: u64) -> Result<u64, u64> {
        let next = tat
            .max(at)
            .saturating_add(cost.saturating_mul(self.interval));
        self.tat
            .compare_exchange(tat, next, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| next)
    }

    /// Gives a slot back if nothing was paced after it; otherwise leaves the extra
    /// spacing in place (the safe side).
    pub(crate) fn give_back(&self, taken_to: u64, previous: u64) {
        let _ = self
            .tat
            .compare_exchange(taken_to, previous, Ordering::AcqRel, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use governor::RateLimiter;
    use proptest::prelude::*;
    use std::num::NonZeroU32;
    use std::time::Duration;

    fn admit(p: &Pacer, at: u64, cost: u64) -> bool {
        let tat = p.load();
        if at >= p.earliest(tat, cost) {
            p.take(tat, at, cost).is_ok()
        } else {
            false
        }
    }

    proptest! {
        #[test]
        fn agrees_with_governor(
            per_sec in 1u32..50,
            burst in 1u32..10,
            steps in proptest::collection::vec((0u64..200, 1u32..4), 1..200),
        ) {
            let q = governor::Quota::per_second(NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
            let clock = FakeRelativeClock::default();
            let gov = RateLimiter::direct_with_clock(q, clock.clone());
            let ours = Pacer::new(Pacing::from(q));
            let mut now = 0u64;
            for (dt_ms, n) in steps {
                clock.advance(Duration::from_millis(dt_ms));
                now += dt_ms * 1_000_000;
                let theirs = match gov.check_n(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)) {
                    Ok(r) => r.is_ok(),
                    Err(_) => false,
                };
                let mine = u64::from(n) <= ours.max_cost() && admit(&ours, now, u64::from(n));
                prop_assert_eq!(theirs, mine, "at {}ms cost {}", now / 1_000_000, n);
            }
        }
    }

    #[test]
    fn future_slots_are_spaced_by_the_interval() {
        let p = Pacer::new(Pacing::new(Duration::from_nanos(10), NonZeroU32::MIN));
        let mut at = 0;
        for k in 0..5 {
            let tat = p.load();
            at = p.earliest(tat, 1).max(at);
            assert_eq!(at, k * 10);
            assert!(p.take(tat, at, 1).is_ok());
        }
        let before = p.load();
        let taken = p.take(before, 50, 1).unwrap_or(0);
        p.give_back(taken, before);
        assert_eq!(p.load(), before);
    }
}
