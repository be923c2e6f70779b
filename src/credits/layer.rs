//! The tower [`Layer`] for credit budgets.

use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::budget::CreditBudget;
use super::rule::CreditRule;
use super::service::CreditService;
use crate::clock::TokioClock;

/// What a request that may spend credits does when the budget is spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    /// Wait for the next period, if it starts within `max`; else fail at once
    /// with [`CreditError::Refused`](super::CreditError::Refused).
    ///
    /// Waiters do not all leave at the period's first instant: each leaves
    /// while the credits left cover, for every waiter already gone and not
    /// yet charged, the largest charge the budget has seen (the first always
    /// may). With 10 credits a period and 20 waiters whose responses cost 5,
    /// 2 leave and the period spends 10; without the gate all 20 would leave
    /// and spend 100. The others wait for a charge, then look again; those
    /// that would have to wait past `max` fail. A response costing more than
    /// the largest seen so far can still overdraw, and requests called while
    /// credits remain (not waiters) go at once, as before: they may pass
    /// waiters, and each may overdraw by its own cost.
    Wait {
        /// The longest a request may wait.
        max: Duration,
    },
    /// Fail at once with [`CreditError::Refused`](super::CreditError::Refused).
    Fail,
}

/// What every service of one layer shares.
#[derive(Debug)]
pub(crate) struct Meter<C> {
    pub(crate) budget: Arc<CreditBudget>,
    pub(crate) rule: CreditRule,
    pub(crate) exhausted: Exhausted,
    pub(crate) clock: C,
}

/// Checks a [`CreditBudget`] before each request and charges it after each
/// response, as a [`CreditRule`] says.
///
/// The clock must be the one the budget's [`Period`](super::Period) was
/// anchored on; by default a [`TokioClock`] whose origin is the layer's
/// creation. Clones share the budget.
///
/// Put it outside (before) a [`QuotaLayer`](crate::QuotaLayer): a request
/// waiting for credits then holds no room in the rate limits.
///
/// ```
/// use std::time::Duration;
/// use http::header::HeaderName;
/// use tower::ServiceBuilder;
/// use tower_quota::clock::Nanos;
/// use tower_quota::credits::{CreditBudget, CreditLayer, CreditRule, Exhausted, Period};
///
/// let month = Period::new(Duration::from_secs(31 * 86_400), Nanos::ZERO);
/// let budget = std::sync::Arc::new(CreditBudget::new("crm credits", 10_000, month));
/// let layer = CreditLayer::new(budget, CreditRule::seed001(HeaderName::from_static("x-records")))
///     .on_exhausted(Exhausted::Wait { max: Duration::from_secs(60) });
/// let svc = ServiceBuilder::new()
///     .layer(layer)
///     .service(tower::service_fn(|_req: http::Request<()>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(()))
///     }));
/// # drop(svc);
/// ```
#[derive(Debug)]
pub struct CreditLayer<C = TokioClock> {
    meter: Arc<Meter<C>>,
}

impl CreditLayer<TokioClock> {
    /// A layer spending `budget` by `rule`, failing fast when it is spent.
    pub fn new(budget: Arc<CreditBudget>, rule: CreditRule) -> CreditLayer<TokioClock> {
        CreditLayer {
            meter: Arc::new(Meter {
                budget,
                rule,
                exhausted: Exhausted::Fail,
                clock: TokioClock::new(),
            }),
        }
    }
}

impl<C> CreditLayer<C> {
    /// The same layer reading time from `clock`.
    pub fn with_clock<D>(self, clock: D) -> CreditLayer<D> {
        let (budget, rule, exhausted) = self.parts();
        CreditLayer {
            meter: Arc::new(Meter {
                budget,
                rule,
                exhausted,
                clock,
            }),
        }
    }

    /// What to do when the budget is spent (default: [`Exhausted::Fail`]).
    pub fn on_exhausted(self, exhausted: Exhausted) -> CreditLayer<C>
    where
        C: Clone,
    {
        let clock = self.meter.clock.clone();
        let (budget, rule, _) = self.parts();
        CreditLayer {
            meter: Arc::new(Meter {
                budget,
                rule,
                exhausted,
                clock,
            }),
        }
    }

    /// The shared budget.
    pub fn budget(&self) -> &Arc<CreditBudget> {
        &self.meter.budget
    }

    fn parts(&self) -> (Arc<CreditBudget>, CreditRule, Exhausted) {
        let m = &self.meter;
        (m.budget.clone(), m.rule.clone(), m.exhausted)
    }
}

impl<C> Clone for CreditLayer<C> {
    fn clone(&self) -> Self {
        CreditLayer {
            meter: self.meter.clone(),
        }
    }
}

impl<S, C> Layer<S> for CreditLayer<C> {
    type Service = CreditService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CreditService::new(inner, self.meter.clone())
    }
}
