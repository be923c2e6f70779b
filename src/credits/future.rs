//! The response future: wait for credits, send, charge the response.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use super::edge::{poll_pass, EdgeTicket};
use super::error::{CreditError, CreditRefusal};
use super::layer::Meter;
use super::rule::Pending;
use crate::clock::{Clock, Nanos};
use crate::message::HttpResponse;

pin_project! {
    /// The future of a request through [`CreditService`](super::CreditService).
    ///
    /// Dropping it while it waits sends nothing and charges nothing.
    #[must_use = "futures do nothing unless polled"]
    pub struct CreditFuture<S: Service<Req>, Req, C> {
        #[pin]
        state: State<S, Req>,
        meter: Arc<Meter<C>>,
        pending: Pending,
        // Held by a request that waited for credits, from the gate to its
        // charge (`edge.rs`).
        ticket: Option<EdgeTicket>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S: Service<Req>, Req> {
        Refused { refusal: Option<CreditRefusal> },
        Waiting {
            // Until the next period; at the gate, until `give_up`.
            #[pin]
            sleep: Sleep,
            // The latest instant the request may still leave at.
            give_up: Nanos,
            // Whether it is kept back at the gate (`edge.rs`).
            at_gate: bool,
            request: Option<Req>,
            service: Option<S>,
        },
        Ready { request: Option<Req>, service: Option<S> },
        Sent { #[pin] future: S::Future },
    }
}

impl<S: Service<Req>, Req, C: Clock> CreditFuture<S, Req, C> {
    pub(crate) fn refused(meter: Arc<Meter<C>>, pending: Pending, refusal: CreditRefusal) -> Self {
        CreditFuture {
            state: State::Refused {
                refusal: Some(refusal),
            },
            meter,
            pending,
            ticket: None,
        }
    }

    pub(crate) fn sent(meter: Arc<Meter<C>>, pending: Pending, future: S::Future) -> Self {
        CreditFuture {
            state: State::Sent { future },
            meter,
            pending,
            ticket: None,
        }
    }

    pub(crate) fn waiting(
        meter: Arc<Meter<C>>,
        pending: Pending,
        (until, give_up): (Nanos, Nanos),
        request: Req,
        service: S,
    ) -> Self {
        let sleep = tokio::time::sleep_until(deadline(&meter.clock, until));
        CreditFuture {
            state: State::Waiting {
                sleep,
                give_up,
                at_gate: false,
                request: Some(request),
                service: Some(service),
            },
            meter,
            pending,
            ticket: None,
        }
    }
}

/// The tokio instant of `t` on `clock`.
fn deadline<C: Clock>(clock: &C, t: Nanos) -> tokio::time::Instant {
    match clock.instant_at(t) {
        Some(i) => tokio::time::Instant::from_std(i),
        None => tokio::time::Instant::now() + t.saturating_since(clock.now()),
    }
}

impl<S, Req, C> Future for CreditFuture<S, Req, C>
where
    S: Service<Req>,
    S::Response: HttpResponse,
    C: Clock,
{
    type Output = Result<S::Response, CreditError<S::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Refused { refusal } => {
                    let refusal = refusal
                        .take()
                        .unwrap_or_else(|| polled_after_completion(this.meter));
                    return Poll::Ready(Err(CreditError::Refused(refusal)));
                }
                StateProj::Waiting {
                    mut sleep,
                    give_up,
                    at_gate,
                    request,
                    service,
                } => {
                    if !*at_gate {
                        ready!(sleep.as_mut().poll(cx));
                    }
                    let now = this.meter.clock.now();
                    match poll_pass(&this.meter.budget, now, cx) {
                        Poll::Ready(Ok(ticket)) => {
                            *this.ticket = Some(ticket);
                            let (request, service) = (request.take(), service.take());
                            this.state.set(State::Ready { request, service });
                        }
                        // Other requests may have spent the new period already.
                        Poll::Ready(Err(refusal)) => {
                            *at_gate = false;
                            let until = now + refusal.next_period_in;
                            if until > *give_up {
                                tracing::debug!(%refusal, "refused after waiting");
                                this.state.set(State::Refused {
                                    refusal: Some(refusal),
                                });
                            } else {
                                sleep.as_mut().reset(deadline(&this.meter.clock, until));
                            }
                        }
                        // Kept back until a waiter gone before is charged, or
                        // until it may wait no longer.
                        Poll::Pending => {
                            if !*at_gate {
                                *at_gate = true;
                                sleep.as_mut().reset(deadline(&this.meter.clock, *give_up));
                            }
                            ready!(sleep.as_mut().poll(cx));
                            let refusal = this.meter.budget.refusal(now);
                            tracing::debug!(%refusal, "refused after waiting at the period's edge");
                            this.state.set(State::Refused {
                                refusal: Some(refusal),
                            });
                        }
                    }
                }
                StateProj::Ready { request, service } => {
                    let Some(svc) = service.as_mut() else {
                        return Poll::Ready(Err(CreditError::Refused(polled_after_completion(
                            this.meter,
                        ))));
                    };
                    if let Err(e) = ready!(svc.poll_ready(cx)) {
                        return Poll::Ready(Err(CreditError::Service(e)));
                    }
                    let Some(req) = request.take() else {
                        return Poll::Ready(Err(CreditError::Refused(polled_after_completion(
                            this.meter,
                        ))));
                    };
                    let future = svc.call(req);
                    this.state.set(State::Sent { future });
                }
                StateProj::Sent { future } => {
                    let result = ready!(future.poll(cx));
                    if let Ok(response) = &result {
                        charge(this.meter, this.pending, response);
                    }
                    // Charged, or failed (which costs nothing): what it may
                    // cost is no longer in flight.
                    drop(this.ticket.take());
                    return Poll::Ready(result.map_err(CreditError::Service));
                }
            }
        }
    }
}

/// Charges the budget what `response` costs.
fn charge<C: Clock>(meter: &Meter<C>, pending: &Pending, response: &impl HttpResponse) {
    let credits = meter
        .rule
        .charge(pending, response.status(), response.headers());
    if credits > 0 {
        let spent = meter.budget.charge(credits, meter.clock.now());
        tracing::debug!(
            budget = %meter.budget.name(),
            credits,
            spent,
            "credits charged"
        );
    }
}

/// What a future polled again after it completed reports.
fn polled_after_completion<C>(meter: &Meter<C>) -> CreditRefusal {
    CreditRefusal {
        budget: meter.budget.name().clone(),
        next_period_in: std::time::Duration::ZERO,
    }
}
