//! The tower [`Service`]: charges each request, then sends it now or later.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use crate::clock::{Clock, TokioClock};
use crate::error::Error;
use crate::future::ResponseFuture;
use crate::limiter::{Admission, Limiter};
use crate::message::{HttpRequest, HttpResponse};

/// A client service behind the limiter. See [`QuotaLayer`](crate::QuotaLayer).
///
/// `poll_ready` is the inner service's. A request with room leaves at once; one
/// without waits for its reserved departure in its response future (dropping the
/// future gives the room back), or fails with [`Error::Limited`] if it would wait
/// longer than the limiter allows. Waiting requests hold a clone of the inner
/// service and ask it for readiness when they leave: what `poll_ready` reserved
/// in the inner service stays with this one, for the next request.
#[derive(Debug)]
pub struct QuotaService<S, C = TokioClock> {
    inner: S,
    limiter: Arc<Limiter<C>>,
}

impl<S, C> QuotaService<S, C> {
    /// `inner` behind `limiter`.
    pub fn new(inner: S, limiter: Arc<Limiter<C>>) -> Self {
        QuotaService { inner, limiter }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Clone, C> Clone for QuotaService<S, C> {
    fn clone(&self) -> Self {
        QuotaService {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
        }
    }
}

impl<S, C, Req> Service<Req> for QuotaService<S, C>
where
    S: Service<Req> + Clone,
    S::Response: HttpResponse,
    Req: HttpRequest,
    C: Clock,
{
    type Response = S::Response;
    type Error = Error<S::Error>;
    type Future = ResponseFuture<S, Req, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::Service)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let limiter = self.limiter.clone();
        let now = limiter.clock.now();
        // Its keyed buckets are marked in flight by the charge: none is
        // evicted before the charge is dropped, with the response observed.
        let charged = match limiter.charge(&req, now) {
            Ok(c) => c,
            Err(refusal) => return ResponseFuture::refused(limiter, refusal),
        };
        let rules = limiter.rules_for(req.host());
        let cost = limiter.cost_of(&req);
        let route = charged
            .target(crate::Target::Route)
            .map_or("unrouted", |b| &**b.label());
        match limiter.decide(&charged, cost, now, now) {
            // With a shared store to ask, room here comes as a reservation
            // (held until the store answers), never as `Now`.
            Ok(Admission::Now) => {
                crate::metrics::request(route, "admitted", None);
                let future = self.inner.call(req);
                ResponseFuture::sent(limiter, charged, now, rules, future)
            }
            Ok(Admission::Later {
                reservation,
                deferred,
            }) => {
                // A clone goes with the request and asks for readiness when
                // it leaves; the service made ready stays here for the next
                // request. A waiter that took it would hold what readiness
                // reserved (a `ConcurrencyLimit` permit, a `Buffer` slot) for
                // its whole wait, and hold back requests that have room.
                let later = self.inner.clone();
                let wait = reservation.departure().saturating_since(now);
                if wait.is_zero() {
                    crate::metrics::request(route, "admitted", None);
                } else {
                    crate::metrics::request(route, "waited", Some(wait));
                    tracing::debug!(?wait, route, "waiting for room");
                }
                ResponseFuture::waiting(
                    limiter,
                    charged,
                    now,
                    rules,
                    cost,
                    (reservation, deferred),
                    req,
                    later,
                )
            }
            Err(refusal) => {
                crate::metrics::request(route, "refused", None);
                tracing::debug!(%refusal, "refused");
                ResponseFuture::refused(limiter, refusal)
            }
        }
    }
}
