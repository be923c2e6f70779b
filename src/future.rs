//! The response future: wait for the departure, send, learn from the response.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use crate::clock::{Clock, Nanos};
use crate::error::Error;
use crate::ledger::{reserve_from, Bucket, MaxWait, Refusal, Reservation};
use crate::limiter::{Admission, Charged, Limiter};
use crate::message::HttpResponse;
use crate::store::{Reserved, StoreFuture, StoreGrant};

pin_project! {
    /// The future of a request through [`QuotaService`](crate::QuotaService).
    ///
    /// Dropping it while it waits gives the request's reserved room back.
    /// Dropping it while the request is on its way (a caller's timeout)
    /// keeps the request counted, and holds its windows open for the time it
    /// has been on its way, as a response that slow would (it may reach the
    /// server as late as that).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S: Service<Req>, Req, C: Clock> {
        // Before `charged`: fields drop in order, so a reservation `state`
        // holds is given back while the charge still marks its keyed buckets
        // in flight (kept from eviction).
        #[pin]
        state: State<S, Req>,
        limiter: Arc<Limiter<C>>,
        charged: Charged,
        // When the request was first decided: the limiter's longest wait
        // counts from here, across every return to the queue.
        asked: Nanos,
        sent: Nanos,
        rules: usize,
        cost: u32,
    }

    impl<S: Service<Req>, Req, C: Clock> PinnedDrop for ResponseFuture<S, Req, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let StateProj::Sent { .. } = this.state.project() {
                let now = this.limiter.clock.now();
                this.limiter.note_latency(this.charged, *this.sent, now);
            }
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S: Service<Req>, Req> {
        Refused { refusal: Refusal },
        Waiting {
            #[pin]
            sleep: Sleep,
            reservation: Option<Reservation>,
            // Buckets to take room in when the reservation's time comes.
            deferred: Vec<Arc<Bucket>>,
            request: Option<Req>,
            service: Option<S>,
        },
        // Decided here; now the shared store decides for every process. The
        // room held here departs once it admits, and is given back if it
        // refuses.
        Asking {
            future: StoreFuture,
            held: Vec<Reservation>,
            request: Option<Req>,
            service: Option<S>,
        },
        // The shared store reserved a departure.
        SharedWaiting {
            #[pin]
            sleep: Sleep,
            reserved: Option<Box<dyn Reserved>>,
            held: Vec<Reservation>,
            request: Option<Req>,
            service: Option<S>,
        },
        // Cleared to leave; what was charged for it is held until the inner
        // service takes it (given back if the future is dropped first).
        Ready { held: Vec<Reservation>, request: Option<Req>, service: Option<S> },
        Sent { #[pin] future: S::Future },
        // Its response (or error) was handed to the caller.
        Done { _spent: () },
    }
}

impl<S: Service<Req>, Req, C: Clock> ResponseFuture<S, Req, C> {
    pub(crate) fn refused(limiter: Arc<Limiter<C>>, refusal: Refusal) -> Self {
        ResponseFuture {
            state: State::Refused { refusal },
            limiter,
            charged: Charged::default(),
            asked: Nanos::ZERO,
            sent: Nanos::ZERO,
            rules: 0,
            cost: 0,
        }
    }

    pub(crate) fn sent(
        limiter: Arc<Limiter<C>>,
        charged: Charged,
        now: Nanos,
        rules: usize,
        future: S::Future,
    ) -> Self {
        ResponseFuture {
            state: State::Sent { future },
            limiter,
            charged,
            asked: now,
            sent: now,
            rules,
            cost: 0,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn waiting(
        limiter: Arc<Limiter<C>>,
        charged: Charged,
        asked: Nanos,
        rules: usize,
        cost: u32,
        (reservation, deferred): (Reservation, Vec<Arc<Bucket>>),
        request: Req,
        service: S,
    ) -> Self {
        let departure = reservation.departure();
        let (state, sent) = if departure <= asked && deferred.is_empty() {
            // Room now, held for a shared store's answer: asked at once, not
            // after a timer tick.
            let state = next_step(
                &limiter,
                &charged,
                cost,
                limiter.max_wait,
                vec![reservation],
                Some(request),
                Some(service),
            );
            (state, asked)
        } else {
            let state = State::Waiting {
                sleep: tokio::time::sleep_until(deadline(&*limiter, departure)),
                reservation: Some(reservation),
                deferred,
                request: Some(request),
                service: Some(service),
            };
            (state, departure)
        };
        ResponseFuture {
            state,
            limiter,
            charged,
            asked,
            sent,
            rules,
            cost,
        }
    }
}

/// The tokio instant of `t` on the limiter's clock.
fn deadline<C: Clock>(limiter: &Limiter<C>, t: Nanos) -> tokio::time::Instant {
    match limiter.clock.instant_at(t) {
        Some(i) => tokio::time::Instant::from_std(i),
        None => tokio::time::Instant::now() + t.saturating_since(limiter.clock.now()),
    }
}

impl<S, Req, C> Future for ResponseFuture<S, Req, C>
where
    S: Service<Req>,
    S::Response: HttpResponse,
    C: Clock,
{
    type Output = Result<S::Response, Error<S::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Refused { refusal } => {
                    return Poll::Ready(Err(Error::Limited(refusal.clone())))
                }
                StateProj::Waiting {
                    sleep,
                    reservation,
                    deferred,
                    request,
                    service,
                } => {
                    let mut sleep = sleep;
                    ready!(sleep.as_mut().poll(cx));
                    let now = this.limiter.clock.now();
                    // A slow response since we reserved may ask us to leave later,
                    // within the longest wait.
                    if let Some(later) = reservation
                        .as_ref()
                        .map(Reservation::widened_departure)
                        .filter(|&later| later > now)
                    {
                        match this.limiter.past_max_wait(this.charged, *this.asked, later) {
                            Some(refusal) => {
                                drop(reservation.take());
                                this.state.set(State::Refused { refusal });
                            }
                            None => sleep.as_mut().reset(deadline(&**this.limiter, later)),
                        }
                        continue;
                    }
                    let departure = reservation.as_ref().map_or(now, Reservation::departure);
                    // A 429 while we slept blocks its bucket past our slot: give the
                    // slot back and queue again behind the block, in order. The
                    // deferred buckets are taken now, or everything is decided again.
                    let blocked = this
                        .charged
                        .buckets
                        .iter()
                        .any(|b| b.blocked_until(departure).is_some());
                    // What is taken here is held until the request leaves: a
                    // shared store may still refuse it, and the inner service
                    // may not take it at once.
                    let mut held = Vec::new();
                    let taken = !blocked
                        && (deferred.is_empty() || hold_now(deferred, *this.cost, now, &mut held));
                    if taken {
                        held.extend(reservation.take());
                    } else {
                        drop(reservation.take());
                        match this
                            .limiter
                            .decide(this.charged, *this.cost, *this.asked, now)
                        {
                            Ok(Admission::Now) => *this.sent = now,
                            Ok(Admission::Later {
                                reservation: r,
                                deferred: d,
                            }) => {
                                *this.sent = r.departure();
                                sleep
                                    .as_mut()
                                    .reset(deadline(&**this.limiter, r.departure()));
                                *reservation = Some(r);
                                *deferred = d;
                                continue;
                            }
                            Err(refusal) => {
                                this.state.set(State::Refused { refusal });
                                continue;
                            }
                        }
                    }
                    let (request, service) = (request.take(), service.take());
                    let left = this.limiter.max_wait_left(*this.asked, now);
                    let next = next_step(
                        this.limiter,
                        this.charged,
                        *this.cost,
                        left,
                        held,
                        request,
                        service,
                    );
                    this.state.set(next);
                }
                StateProj::Asking {
                    future,
                    held,
                    request,
                    service,
                } => {
                    let grant = ready!(future.as_mut().poll(cx));
                    let (request, service, held) =
                        (request.take(), service.take(), std::mem::take(held));
                    match grant {
                        Ok(StoreGrant::Now) => {
                            *this.sent = this.limiter.clock.now();
                            this.state.set(State::Ready {
                                held,
                                request,
                                service,
                            });
                        }
                        Ok(StoreGrant::Later(reserved)) => {
                            let sleep = tokio::time::sleep(reserved.wait());
                            this.state.set(State::SharedWaiting {
                                sleep,
                                reserved: Some(reserved),
                                held,
                                request,
                                service,
                            });
                        }
                        // Not sent: what was held here is given back.
                        Err(refusal) => this.state.set(State::Refused { refusal }),
                    }
                }
                StateProj::SharedWaiting {
                    sleep,
                    reserved,
                    held,
                    request,
                    service,
                } => {
                    ready!(sleep.poll(cx));
                    let Some(reserved) = reserved.take() else {
                        return Poll::Ready(Err(Error::Limited(spent())));
                    };
                    let (request, service, held) =
                        (request.take(), service.take(), std::mem::take(held));
                    this.state.set(State::Asking {
                        future: reserved.depart(),
                        held,
                        request,
                        service,
                    });
                }
                StateProj::Ready {
                    held,
                    request,
                    service,
                } => {
                    let Some(svc) = service.as_mut() else {
                        return Poll::Ready(Err(Error::Limited(spent())));
                    };
                    if let Err(e) = ready!(svc.poll_ready(cx)) {
                        // Not sent: what was held for it is given back.
                        return Poll::Ready(Err(Error::Service(e)));
                    }
                    let Some(req) = request.take() else {
                        return Poll::Ready(Err(Error::Limited(spent())));
                    };
                    std::mem::take(held)
                        .into_iter()
                        .for_each(Reservation::depart);
                    // Its units were charged for `sent`; an inner service that
                    // was not ready then (a concurrency limit's permit) sends
                    // it later, and the server may count it that much later:
                    // held open as a late response would be, at once. `sent`
                    // stays the instant its units were charged for, so that
                    // its response's lateness counts from there too.
                    let now = this.limiter.clock.now();
                    if now > *this.sent {
                        this.limiter.note_latency(this.charged, *this.sent, now);
                    }
                    let future = svc.call(req);
                    this.state.set(State::Sent { future });
                }
                StateProj::Sent { future } => {
                    let outcome = ready!(future.poll(cx));
                    this.state.set(State::Done { _spent: () });
                    let response = match outcome {
                        Ok(response) => response,
                        Err(e) => {
                            // It may have reached the server all the same.
                            let now = this.limiter.clock.now();
                            this.limiter.note_latency(this.charged, *this.sent, now);
                            return Poll::Ready(Err(Error::Service(e)));
                        }
                    };
                    this.limiter.observe(
                        this.charged,
                        *this.sent,
                        *this.rules,
                        response.status(),
                        response.headers(),
                    );
                    return Poll::Ready(Ok(response));
                }
                StateProj::Done { .. } => return Poll::Ready(Err(Error::Limited(spent()))),
            }
        }
    }
}

/// After the local decision: ask the shared store, if there is one, else send.
/// `max_wait` is what is left of the longest wait; `held`, what this process
/// holds for the request until the store answers.
fn next_step<S: Service<Req>, Req, C: Clock>(
    limiter: &Limiter<C>,
    charged: &Charged,
    cost: u32,
    max_wait: MaxWait,
    held: Vec<Reservation>,
    request: Option<Req>,
    service: Option<S>,
) -> State<S, Req> {
    match &limiter.shared {
        Some(store) if limiter.asks_store(charged) => State::Asking {
            future: store.acquire(charged.shared.clone(), cost, max_wait.limit()),
            held,
            request,
            service,
        },
        _ => State::Ready {
            held,
            request,
            service,
        },
    }
}

/// Takes `cost` in `buckets` now, if they have room, held in `held` until
/// the request leaves.
fn hold_now(buckets: &[Arc<Bucket>], cost: u32, now: Nanos, held: &mut Vec<Reservation>) -> bool {
    match reserve_from(buckets, cost, now, now, MaxWait::Never) {
        Ok(r) => {
            held.push(r);
            true
        }
        Err(_) => false,
    }
}

/// What a future polled again after it completed reports.
fn spent() -> Refusal {
    Refusal::Retired {
        bucket: Arc::from("(response future polled after completion)"),
    }
}
