//! The tower [`Service`] for credit budgets: check before, charge after.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::error::CreditError;
use super::future::CreditFuture;
use super::layer::{Exhausted, Meter};
use super::rule::Pending;
use crate::clock::{Clock, TokioClock};
use crate::message::{HttpRequest, HttpResponse};

/// A client service behind a credit budget. See [`CreditLayer`](super::CreditLayer).
///
/// `poll_ready` is the inner service's. A request the rule says never spends
/// credits is sent at once, whatever the budget. Any other is sent while the
/// budget has at least one credit left; when it has none, the request fails
/// at once or waits in its future for the next period (a tokio timer, no
/// polling), as [`Exhausted`] says. A waiting request holds a clone of the
/// inner service and asks it for readiness again when it leaves; dropping its
/// future sends nothing and charges nothing.
#[derive(Debug)]
pub struct CreditService<S, C = TokioClock> {
    inner: S,
    meter: Arc<Meter<C>>,
}

impl<S, C> CreditService<S, C> {
    pub(crate) fn new(inner: S, meter: Arc<Meter<C>>) -> Self {
        CreditService { inner, meter }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Clone, C> Clone for CreditService<S, C> {
    fn clone(&self) -> Self {
        CreditService {
            inner: self.inner.clone(),
            meter: self.meter.clone(),
        }
    }
}

impl<S, C, Req> Service<Req> for CreditService<S, C>
where
    S: Service<Req> + Clone,
    S::Response: HttpResponse,
    Req: HttpRequest,
    C: Clock,
{
    type Response = S::Response;
    type Error = CreditError<S::Error>;
    type Future = CreditFuture<S, Req, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(CreditError::Service)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let meter = self.meter.clone();
        let pending = meter.rule.pending(req.method(), req.path());
        if matches!(pending, Pending::Free) {
            let future = self.inner.call(req);
            return CreditFuture::sent(meter, pending, future);
        }
        let now = meter.clock.now();
        let refusal = match meter.budget.check(now) {
            Ok(()) => {
                let future = self.inner.call(req);
                return CreditFuture::sent(meter, pending, future);
            }
            Err(refusal) => refusal,
        };
        match meter.exhausted {
            Exhausted::Wait { max } if refusal.next_period_in <= max => {
                tracing::debug!(
                    budget = %refusal.budget,
                    wait = ?refusal.next_period_in,
                    "credit budget spent; waiting for the next period"
                );
                // A clone goes with the request and asks for readiness when
                // it leaves; the service made ready stays here for the next
                // request (a waiter would hold a `ConcurrencyLimit` permit
                // for its whole wait).
                let later = self.inner.clone();
                let give_up = now + max;
                let until = now + refusal.next_period_in;
                CreditFuture::waiting(meter, pending, (until, give_up), req, later)
            }
            _ => {
                tracing::debug!(%refusal, "refused");
                CreditFuture::refused(meter, pending, refusal)
            }
        }
    }
}
