//! A departure reserved in the future, given back if it is dropped unused.

use std::sync::Arc;

use super::bucket::{Bucket, Claim};
use crate::clock::Nanos;

/// Room reserved in one or more buckets for a request that leaves later.
///
/// Sleep until [`Reservation::departure`], then call [`Reservation::depart`].
/// Dropping the reservation first (a cancelled request, a timed-out caller) gives
/// its room back: at once if it was the newest reservation in a bucket, otherwise
/// as soon as the reservations after it are gone too (they were placed around it).
#[derive(Debug)]
#[must_use = "a reservation dropped before its departure gives its room back"]
pub struct Reservation {
    departure: Nanos,
    claims: Vec<(Arc<Bucket>, Claim)>,
}

impl Reservation {
    pub(crate) fn new(departure: Nanos, claims: Vec<(Arc<Bucket>, Claim)>) -> Reservation {
        Reservation { departure, claims }
    }

    /// When the request may leave.
    pub fn departure(&self) -> Nanos {
        self.departure
    }

    /// When the request may leave given what responses taught since the
    /// reservation was made: its [`departure`](Reservation::departure), or
    /// later if a slow response widened a window of its buckets meanwhile
    /// (see [`Bucket::note_latency`]). Sleep until then before departing.
    pub fn widened_departure(&self) -> Nanos {
        let d = self.departure.as_u64();
        let at = self
            .claims
            .iter()
            .map(|(b, c)| b.widened_departure(c.start, c.cost, d))
            .fold(d, u64::max);
        Nanos::new(at)
    }

    /// The request has left: keep it counted.
    pub fn depart(mut self) {
        for (bucket, claim) in self.claims.drain(..) {
            bucket.settle(&claim);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        for (bucket, claim) in self.claims.drain(..).rev() {
            bucket.release(claim);
        }
    }
}
