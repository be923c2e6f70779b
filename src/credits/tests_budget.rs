use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;

use super::*;
use crate::clock::ManualClock;

const SEC: Duration = Duration::from_secs(1);

fn ten_seconds_from_3s() -> Period {
    Period::new(10 * SEC, Nanos::from_secs(3))
}

#[test]
fn rolls_over_at_the_exact_boundary() {
    // Periods [3 s, 13 s), [13 s, 23 s), ...
    let budget = CreditBudget::new("b", 10, ten_seconds_from_3s());
    let last = Nanos::new(Nanos::from_secs(13).as_u64() - 1);
    budget.charge(10, Nanos::from_secs(3));
    assert_eq!(budget.spent(last), 10);
    assert_eq!(budget.remaining(last), 0);
    let refusal = budget.check(last).err();
    assert_eq!(
        refusal.map(|r| r.next_period_in),
        Some(Duration::from_nanos(1))
    );
    let first = Nanos::from_secs(13);
    assert_eq!(budget.spent(first), 0);
    assert_eq!(budget.remaining(first), 10);
    assert!(budget.check(first).is_ok());
    // The first charge of the new period replaces the old spend.
    assert_eq!(budget.charge(4, first), 4);
    assert_eq!(budget.spent(Nanos::from_secs(22)), 4);
    assert_eq!(budget.spent(Nanos::from_secs(23)), 0);
}

#[test]
fn periods_before_the_anchor_are_aligned_too() {
    // The anchor is in the future: the period holding t=0 is [-7 s, 3 s).
    let p = ten_seconds_from_3s();
    assert_eq!(p.next_start(Nanos::ZERO), Nanos::from_secs(3));
    assert_eq!(p.next_start(Nanos::from_secs(3)), Nanos::from_secs(13));
    assert!(p.index(Nanos::ZERO) < p.index(Nanos::from_secs(3)));
    let budget = CreditBudget::new("b", 5, p);
    budget.charge(5, Nanos::from_secs(1));
    let refusal = budget.check(Nanos::from_secs(1)).err();
    assert_eq!(refusal.map(|r| r.next_period_in), Some(2 * SEC));
    assert_eq!(budget.remaining(Nanos::from_secs(3)), 5);
}

#[test]
fn wall_clock_anchors_map_to_the_clock() {
    let origin = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let clock = ManualClock::with_wall_origin(origin);
    // A billing period that started 25 h before the clock's origin, daily.
    let p = Period::starting_at_wall(86_400 * SEC, origin - 25 * 3600 * SEC, &clock);
    assert_eq!(p.next_start(Nanos::ZERO), Nanos::from_secs(23 * 3600));
    // One that starts in an hour.
    let p = Period::starting_at_wall(86_400 * SEC, origin + 3600 * SEC, &clock);
    assert_eq!(p.next_start(Nanos::ZERO), Nanos::from_secs(3600));
    assert_eq!(p.length(), 86_400 * SEC);
}

#[test]
fn degenerate_periods_do_not_panic() {
    let p = Period::new(Duration::ZERO, Nanos::from_secs(5));
    assert_eq!(p.length(), Duration::from_nanos(1));
    let p = Period::new(Duration::MAX, Nanos::MAX);
    assert_eq!(p.next_start(Nanos::ZERO), Nanos::MAX);
    assert_eq!(p.next_start(Nanos::MAX), Nanos::MAX);
}

#[test]
fn overdraws_but_never_goes_negative() {
    let budget = CreditBudget::new("b", 100, ten_seconds_from_3s());
    let now = Nanos::from_secs(4);
    assert_eq!(budget.charge(98, now), 98);
    assert!(budget.check(now).is_ok(), "2 credits left: may start");
    assert_eq!(budget.charge(7, now), 105);
    assert_eq!(budget.spent(now), 105);
    assert_eq!(budget.remaining(now), 0);
    assert!(budget.check(now).is_err());
    assert_eq!(budget.charge(u64::MAX, now), u64::MAX, "saturates");
    assert_eq!(budget.remaining(now), 0);
}

#[test]
fn a_zero_budget_refuses_from_the_start() {
    let budget = CreditBudget::new("none", 0, ten_seconds_from_3s());
    assert!(budget.check(Nanos::ZERO).is_err());
}

#[test]
fn a_late_charge_counts_in_the_newer_period() {
    let budget = CreditBudget::new("b", 10, ten_seconds_from_3s());
    budget.charge(1, Nanos::from_secs(14));
    // Read before the rollover, charged after it: counted, not lost.
    budget.charge(3, Nanos::from_secs(12));
    assert_eq!(budget.spent(Nanos::from_secs(14)), 4);
}

#[test]
fn refusals_name_the_budget_and_say_what_to_do() {
    let budget = CreditBudget::new("crm credits", 1, ten_seconds_from_3s());
    budget.charge(1, Nanos::from_secs(3));
    let text = budget
        .check(Nanos::from_secs(3))
        .err()
        .map(|r| r.to_string())
        .unwrap_or_default();
    assert!(text.contains("`crm credits`"), "{text}");
    assert!(text.contains("10s"), "{text}");
    assert!(format!("{budget:?}").contains("spent: 1"));
}

#[test]
fn concurrent_charges_are_never_lost() {
    let budget = Arc::new(CreditBudget::new("b", 1_000, ten_seconds_from_3s()));
    let now = Nanos::from_secs(5);
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let budget = budget.clone();
            std::thread::spawn(move || {
                for _ in 0..5_000 {
                    budget.charge(i % 3 + 1, now);
                    assert!(budget.remaining(now) <= 1_000);
                }
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().is_ok());
    }
    let expected: u64 = (0..16).map(|i| (i % 3 + 1) * 5_000).sum();
    assert_eq!(budget.spent(now), expected);
    assert_eq!(budget.remaining(now), 0);
}

#[test]
fn concurrent_rollover_keeps_every_charge_of_the_new_period() {
    // Half the threads charge in [3 s, 13 s), half in [13 s, 23 s), at once.
    // Every new-period charge is kept; an old-period charge that lands after
    // the rollover counts in the new period (the safe side), so the new
    // period's spend lies between its own charges and all charges.
    let budget = Arc::new(CreditBudget::new("b", 1_000, ten_seconds_from_3s()));
    let threads: Vec<_> = (0..8u64)
        .map(|i| {
            let budget = budget.clone();
            let now = Nanos::from_secs(if i % 2 == 0 { 12 } else { 13 });
            std::thread::spawn(move || {
                for _ in 0..5_000 {
                    budget.charge(1, now);
                }
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().is_ok());
    }
    let spent = budget.spent(Nanos::from_secs(13));
    assert!((20_000..=40_000).contains(&spent), "{spent}");
}

proptest! {
    /// Against a model that keeps every charge with its period index, with
    /// times that only move forward.
    #[test]
    fn matches_a_model_of_charges_per_period(
        length_ms in 1u64..5_000,
        anchor_ms in 0u64..20_000,
        steps in proptest::collection::vec((0u64..3_000, 0u64..50), 1..60),
    ) {
        let period = Period::new(Duration::from_millis(length_ms), Nanos::from_millis(anchor_ms));
        let budget = CreditBudget::new("m", 100, period);
        let mut charges: Vec<(u64, u64)> = Vec::new();
        let mut now = 0u64;
        for (dt, credits) in steps {
            now += dt;
            let t = Nanos::from_millis(now);
            budget.charge(credits, t);
            charges.push((period.index(t), credits));
            let spent: u64 = charges.iter().filter(|(i, _)| *i == period.index(t)).map(|(_, c)| c).sum();
            prop_assert_eq!(budget.spent(t), spent);
            prop_assert_eq!(budget.remaining(t), 100u64.saturating_sub(spent));
            prop_assert_eq!(budget.check(t).is_ok(), spent < 100);
            let next = period.next_start(t);
            prop_assert!(next > t && next.saturating_since(t) <= period.length());
            prop_assert_eq!(period.index(next), period.index(t) + 1);
        }
    }
}
