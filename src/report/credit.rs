//! Credit budgets in the report, beside the request-rate buckets.

use serde::{Deserialize, Serialize};

use super::health::{Health, Thresholds};
use super::snapshot::Snapshot;
use crate::clock::Nanos;
use crate::credits::CreditBudget;

/// One credit budget of a [`Snapshot`]: spent against its limit this period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreditReport {
    /// The budget's name.
    pub name: String,
    /// Credits spent this period (may exceed `limit`: the server charges after
    /// the fact).
    pub spent: u64,
    /// Credits per period.
    pub limit: u64,
    /// Credits left this period.
    pub remaining: u64,
    /// `spent` as a percentage of `limit`, two decimals.
    pub percent_used: f64,
    /// The health level of `percent_used`.
    pub health: Health,
    /// Milliseconds until the next period starts.
    pub next_period_in_ms: u64,
}

impl CreditReport {
    /// Where `budget` stands at `now`.
    pub fn of(budget: &CreditBudget, now: Nanos, thresholds: &Thresholds) -> CreditReport {
        let spent = budget.spent(now);
        let limit = budget.limit();
        let percent = super::percent::percent(spent, limit).unwrap_or(100.0);
        CreditReport {
            name: budget.name().to_string(),
            spent,
            limit,
            remaining: budget.remaining(now),
            percent_used: percent,
            health: Health::of(percent, thresholds),
            next_period_in_ms: u64::try_from(
                budget
                    .period()
                    .next_start(now)
                    .saturating_since(now)
                    .as_millis(),
            )
            .unwrap_or(u64::MAX),
        }
    }
}

impl Snapshot {
    /// The same snapshot with `budgets` reported beside the buckets.
    pub fn with_credits(mut self, budgets: &[&CreditBudget], now: Nanos) -> Snapshot {
        self.credits = budgets
            .iter()
            .map(|b| CreditReport::of(b, now, &self.thresholds))
            .collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credits::Period;
    use std::time::Duration;

    #[test]
    fn a_budget_reports_spent_remaining_health_and_the_next_period() {
        let budget = CreditBudget::new(
            "credits",
            1000,
            Period::new(Duration::from_secs(60), Nanos::ZERO),
        );
        budget.charge(905, Nanos::from_secs(10));
        let r = CreditReport::of(&budget, Nanos::from_secs(15), &Thresholds::default());
        assert_eq!((r.spent, r.limit, r.remaining), (905, 1000, 95));
        assert_eq!(r.percent_used, 90.5);
        assert_eq!(r.health, Health::Critical);
        assert_eq!(r.next_period_in_ms, 45_000);
        let empty = Snapshot::of(&[], Nanos::ZERO, &Thresholds::default())
            .with_credits(&[&budget], Nanos::ZERO);
        assert_eq!(empty.credits.len(), 1);
    }
}
