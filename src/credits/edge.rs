//! Requests that waited for a new period leave it while its credits cover them.
//!
//! A request that finds its budget spent may wait for the next period
//! ([`Exhausted::Wait`](super::Exhausted::Wait)). Every such request wakes at
//! the period's first instant and finds the budget full; if each then only
//! checked that a credit remained, all would leave at once, before any
//! response had been charged: with 10 credits and 20 waiters costing 5 each,
//! 20 requests would leave and spend 100. So waiters pass a gate: the first
//! goes while a credit remains (it may cost nothing), and each next one only
//! while the credits left cover, for every waiter gone and not yet charged,
//! the largest charge the budget has seen. The others sleep until one of
//! those is charged (or fails, or is dropped), then look again.
//!
//! Only waiters pass the gate: a request that finds credits left when it is
//! called still checks one atomic word and goes, so the hot path takes no
//! lock. The list of sleeping waiters is behind a mutex, taken only by
//! waiters and by the responses of requests that waited.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use super::budget::CreditBudget;
use super::error::CreditRefusal;
use crate::clock::Nanos;

/// The gate waiters pass at a period's edge, one per budget.
#[derive(Debug, Default)]
pub(crate) struct EdgeGate {
    /// What the waiters let through may still cost: for each one not yet
    /// charged, the largest charge seen when it went.
    in_flight: AtomicU64,
    /// Waiters kept back, woken when one of those is charged.
    kept_back: Mutex<Vec<Waker>>,
}

impl EdgeGate {
    /// Credits the waiters let through may still cost.
    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// `cost` more in flight, if `remaining` credits cover it: always when
    /// nothing is in flight (a credit remains, and the request may cost 0).
    fn reserve(&self, cost: u64, remaining: u64) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |in_flight| {
                let after = in_flight.saturating_add(cost);
                (in_flight == 0 || after <= remaining).then_some(after)
            })
            .is_ok()
    }

    /// `cost` no longer in flight: wakes every waiter kept back to look again.
    fn release(&self, cost: u64) {
        // Never below 0, even if a release were counted twice.
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(cost))
            });
        let kept_back = std::mem::take(
            &mut *self
                .kept_back
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for waker in kept_back {
            waker.wake();
        }
    }

    fn keep_back(&self, waker: &Waker) {
        let mut kept_back = self
            .kept_back
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A waiter polled twice while kept back is woken twice: harmless,
        // and cheaper than a search of the list per waiter.
        kept_back.push(waker.clone());
    }
}

/// A waiter let through the gate: what it may cost stays in flight until it
/// is dropped, once its response is charged (or it failed or was cancelled).
#[derive(Debug)]
pub(crate) struct EdgeTicket {
    budget: Arc<CreditBudget>,
    cost: u64,
}

impl Drop for EdgeTicket {
    fn drop(&mut self) {
        self.budget.edge().release(self.cost);
    }
}

/// Whether a request that waited for credits may leave at `now`: a ticket to
/// hold until its response is charged, a refusal when the budget is spent
/// (wait for the next period, or give up), or `Pending` until a waiter gone
/// before is charged.
pub(crate) fn poll_pass(
    budget: &Arc<CreditBudget>,
    now: Nanos,
    cx: &Context<'_>,
) -> Poll<Result<EdgeTicket, CreditRefusal>> {
    if let Err(refusal) = budget.check(now) {
        return Poll::Ready(Err(refusal));
    }
    let cost = budget.largest_charge().max(1);
    let pass = || {
        budget
            .edge()
            .reserve(cost, budget.remaining(now))
            .then(|| EdgeTicket {
                budget: budget.clone(),
                cost,
            })
    };
    if let Some(ticket) = pass() {
        return Poll::Ready(Ok(ticket));
    }
    budget.edge().keep_back(cx.waker());
    // A release between the first look and the registration woke no one.
    match pass() {
        Some(ticket) => Poll::Ready(Ok(ticket)),
        None => Poll::Pending,
    }
}
