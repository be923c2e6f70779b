//! Why a request through the credit layer was not sent, or failed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A credit budget is spent: the request was not sent.
///
/// Carries the budget's name, never a key or a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditRefusal {
    /// The budget that is spent.
    pub budget: Arc<str>,
    /// How long until its next period starts and its credits come back.
    pub next_period_in: Duration,
}

impl fmt::Display for CreditRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "credit budget `{}` is spent; it renews in {:?}: wait, raise the budget, \
             or let the layer wait (Exhausted::Wait) for a longer time",
            self.budget, self.next_period_in
        )
    }
}

impl std::error::Error for CreditRefusal {}

/// What a request through [`CreditService`](super::CreditService) can fail with.
#[derive(Debug)]
pub enum CreditError<E> {
    /// The budget is spent and the layer was not allowed to wait that long.
    /// Nothing was sent, nothing was charged.
    Refused(CreditRefusal),
    /// The inner service failed. Nothing is charged: without a response there
    /// is no count to charge.
    Service(E),
}

impl<E> CreditError<E> {
    /// The refusal, if the budget refused.
    pub fn refusal(&self) -> Option<&CreditRefusal> {
        match self {
            CreditError::Refused(r) => Some(r),
            CreditError::Service(_) => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for CreditError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreditError::Refused(r) => write!(f, "not sent: {r}"),
            CreditError::Service(e) => write!(f, "{e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CreditError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CreditError::Refused(r) => Some(r),
            CreditError::Service(e) => Some(e),
        }
    }
}
