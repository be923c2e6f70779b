//! A credit budget: so many credits per period, spent after the fact.
//!
//! The budget's whole state is one 128-bit word, the index of the period it
//! counts and the credits spent in it, so that a charge and a rollover commit
//! together with one compare-and-swap: no lock, and no window in which another
//! thread could see the new period with the old period's spend.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use portable_atomic::AtomicU128;

use super::edge::EdgeGate;
use super::error::CreditRefusal;
use crate::clock::{Clock, ClockOffset, Nanos};

/// Fixed-length periods aligned to an anchor: `[anchor + k * length, anchor + (k + 1) * length)`
/// for every integer `k`, also before the anchor.
///
/// Calendar months have no fixed length: for a monthly plan, anchor the
/// budget at the current billing period's start with a 31-day length (the
/// longest month never resets early) and build a new budget when the plan's
/// next period begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    length: NonZeroU64,
    /// `anchor mod length`: where periods start within each `length`.
    phase: u64,
}

impl Period {
    /// Periods of `length` (at least 1 ns) with one starting at `anchor`.
    pub fn new(length: Duration, anchor: Nanos) -> Period {
        let nanos = u64::try_from(length.as_nanos()).unwrap_or(u64::MAX);
        let length = NonZeroU64::new(nanos).unwrap_or(NonZeroU64::MIN);
        Period {
            length,
            phase: anchor.as_u64() % length.get(),
        }
    }

    /// Periods of `length` with one starting at the wall-clock time `start`
    /// (a billing period's start), on `clock`'s timeline.
    pub fn starting_at_wall<C: Clock>(length: Duration, start: SystemTime, clock: &C) -> Period {
        let anchor = match start.duration_since(clock.wall_origin()) {
            Ok(_) => clock.monotonic_at(start, ClockOffset::ZERO),
            // Before the clock's origin: shift the anchor forward by whole periods.
            Err(e) => {
                let len = Period::new(length, Nanos::ZERO).length.get();
                let behind = u64::try_from(e.duration().as_nanos()).unwrap_or(u64::MAX) % len;
                Nanos::new((len - behind) % len)
            }
        };
        Period::new(length, anchor)
    }

    /// The length of one period.
    pub fn length(&self) -> Duration {
        Duration::from_nanos(self.length.get())
    }

    /// The index of the period holding `now`, counted from the period before
    /// the one holding the clock's origin (so indexes never go negative).
    pub fn index(&self, now: Nanos) -> u64 {
        let len = self.length.get();
        // `now + len - phase` never underflows because `phase < len`.
        let shifted = u128::from(now.as_u64()) + u128::from(len) - u128::from(self.phase);
        u64::try_from(shifted / u128::from(len)).unwrap_or(u64::MAX)
    }

    /// When the period after the one holding `now` starts.
    pub fn next_start(&self, now: Nanos) -> Nanos {
        let start =
            u128::from(self.index(now)) * u128::from(self.length.get()) + u128::from(self.phase);
        Nanos::new(u64::try_from(start).unwrap_or(u64::MAX))
    }
}

/// Credits per period, shared by every request that may spend them.
///
/// Credits are charged *after* the response, because only the response says
/// how many records it returned. [`check`](CreditBudget::check) admits a
/// request while any credit remains, even one that will cost more than what
/// remains: the server also decides after the fact, and refusing a request
/// that may well cost 0 would waste the allowance. So a period's spend may end
/// above its limit; [`remaining`](CreditBudget::remaining) then reads 0,
/// never less. Requests in flight together all start on the same remaining
/// credits, so the overdraw can reach one response's cost per request in
/// flight: cap concurrency (e.g. `tower::limit::ConcurrencyLimitLayer`) when
/// that matters. Requests that waited for a new period
/// ([`Exhausted::Wait`](super::Exhausted::Wait)) do not add to it all at
/// once: they leave only while the credits left cover the largest charge
/// seen for each of them in flight.
///
/// ```
/// use std::time::Duration;
/// use tower_quota::clock::Nanos;
/// use tower_quota::credits::{CreditBudget, Period};
///
/// let day = Period::new(Duration::from_secs(86_400), Nanos::ZERO);
/// let budget = CreditBudget::new("enrichment", 10, day);
/// let now = Nanos::from_secs(60);
/// assert!(budget.check(now).is_ok());
/// budget.charge(12, now); // the server reported 12 records: overdrawn
/// assert_eq!(budget.remaining(now), 0);
/// let refusal = budget.check(now).unwrap_err();
/// assert_eq!(refusal.next_period_in, Duration::from_secs(86_400 - 60));
/// assert_eq!(budget.remaining(Nanos::from_secs(86_400)), 10); // a new day
/// ```
pub struct CreditBudget {
    name: Arc<str>,
    limit: u64,
    period: Period,
    /// `(period index << 64) | spent`.
    state: AtomicU128,
    /// The largest single charge so far: what a request that waited is
    /// assumed to cost while it is in flight (`edge.rs`).
    largest_charge: AtomicU64,
    /// The gate requests that waited for a new period pass.
    edge: EdgeGate,
}

impl CreditBudget {
    /// A budget called `name` (shown in refusals and logs: never put a key in
    /// it) of `limit` credits per `period`, nothing spent yet.
    pub fn new(name: impl Into<Arc<str>>, limit: u64, period: Period) -> CreditBudget {
        CreditBudget {
            name: name.into(),
            limit,
            period,
            state: AtomicU128::new(0),
            largest_charge: AtomicU64::new(0),
            edge: EdgeGate::default(),
        }
    }

    /// The budget's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Credits per period.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The budget's periods.
    pub fn period(&self) -> Period {
        self.period
    }

    /// Credits spent in the period holding `now` (may exceed the limit).
    pub fn spent(&self, now: Nanos) -> u64 {
        let (index, spent) = unpack(self.state.load(Ordering::Acquire));
        let current = self.period.index(now);
        // A later index means another thread already rolled over with a later
        // `now`: its spend is the freshest there is.
        if index >= current {
            spent
        } else {
            0
        }
    }

    /// Credits left in the period holding `now`; 0 when overdrawn.
    pub fn remaining(&self, now: Nanos) -> u64 {
        self.limit.saturating_sub(self.spent(now))
    }

    /// Charges `credits` to the period holding `now`, after a response.
    ///
    /// The charge is never refused: the server has already spent them. A
    /// charge whose `now` was read just before another thread rolled the
    /// budget over to a later period counts in that later period: counting it
    /// is the safe side. Returns the period's spend after the charge.
    pub fn charge(&self, credits: u64, now: Nanos) -> u64 {
        // A load first: the largest rarely changes, and a load is cheaper.
        if credits > self.largest_charge.load(Ordering::Relaxed) {
            self.largest_charge.fetch_max(credits, Ordering::AcqRel);
        }
        let current = self.period.index(now);
        let mut old = self.state.load(Ordering::Acquire);
        loop {
            let (index, spent) = unpack(old);
            let new = if index >= current {
                (index, spent.saturating_add(credits))
            } else {
                (current, credits)
            };
            match self.state.compare_exchange_weak(
                old,
                pack(new),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return new.1,
                Err(actual) => old = actual,
            }
        }
    }

    /// The largest single charge so far.
    pub(super) fn largest_charge(&self) -> u64 {
        self.largest_charge.load(Ordering::Acquire)
    }

    /// The gate requests that waited for a new period pass.
    pub(super) fn edge(&self) -> &EdgeGate {
        &self.edge
    }

    /// Whether a request that may spend credits can start at `now`: yes while
    /// at least one credit remains, else a refusal with the time until the
    /// next period.
    pub fn check(&self, now: Nanos) -> Result<(), CreditRefusal> {
        if self.remaining(now) > 0 {
            Ok(())
        } else {
            Err(self.refusal(now))
        }
    }

    /// The refusal of a request at `now`: this budget, and the time until
    /// its next period.
    pub(super) fn refusal(&self, now: Nanos) -> CreditRefusal {
        CreditRefusal {
            budget: self.name.clone(),
            next_period_in: self.period.next_start(now).saturating_since(now),
        }
    }
}

impl fmt::Debug for CreditBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (index, spent) = unpack(self.state.load(Ordering::Acquire));
        f.debug_struct("CreditBudget")
            .field("name", &self.name)
            .field("limit", &self.limit)
            .field("period", &self.period)
            .field("period_index", &index)
            .field("spent", &spent)
            .field("waiters_in_flight", &self.edge.in_flight())
            .finish()
    }
}

fn pack((index, spent): (u64, u64)) -> u128 {
    (u128::from(index) << 64) | u128::from(spent)
}

fn unpack(v: u128) -> (u64, u64) {
    ((v >> 64) as u64, v as u64)
}

#[cfg(test)]
#[path = "tests_budget.rs"]
mod tests;
