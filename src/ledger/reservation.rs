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
        widened(
            self.departure,
            self.claims.iter().map(|(b, c)| (&**b, c.start, c.cost)),
        )
    }

    /// A watch on how much later than planned the reservation leaves, for a
    /// record of its departure kept elsewhere (a shared store's local share
    /// records its departures for Redis).
    pub(crate) fn watch(&self) -> DepartureWatch {
        DepartureWatch {
            departure: self.departure,
            claims: self
                .claims
                .iter()
                .map(|(b, c)| (b.clone(), c.start, c.cost))
                .collect(),
        }
    }

    /// The request has left: keep it counted.
    pub fn depart(mut self) {
        for (bucket, claim) in self.claims.drain(..) {
            bucket.settle(&claim);
        }
    }
}

/// The departure of units claimed at `departure`, given the widening that
/// slow responses asked for since (see [`Reservation::widened_departure`]).
fn widened<'a>(departure: Nanos, claims: impl Iterator<Item = (&'a Bucket, u64, u64)>) -> Nanos {
    let d = departure.as_u64();
    let at = claims
        .map(|(b, start, cost)| b.widened_departure(start, cost, d))
        .fold(d, u64::max);
    Nanos::new(at)
}

/// How much later than planned a [`Reservation`] leaves, as slow responses
/// widen its buckets' windows; it holds no room. Asked after the
/// reservation has left or been dropped, it may answer later still: ask
/// it only while the reservation waits.
#[derive(Debug)]
pub(crate) struct DepartureWatch {
    departure: Nanos,
    /// Per bucket: its claim's first unit and cost.
    claims: Vec<(Arc<Bucket>, u64, u64)>,
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl DepartureWatch {
    /// How much later than planned the reservation leaves now.
    pub(crate) fn later_by(&self) -> std::time::Duration {
        let claims = self
            .claims
            .iter()
            .map(|(b, start, cost)| (&**b, *start, *cost));
        widened(self.departure, claims).saturating_since(self.departure)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        for (bucket, claim) in self.claims.drain(..).rev() {
            bucket.release(claim);
        }
    }
}
