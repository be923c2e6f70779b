//! Charging a request to its buckets: all or nothing, at the earliest departure.
//!
//! A request is charged to every bucket it names (its route, its account, its API
//! key), each with its own windows. The engine plans the earliest instant at which
//! *all* of them have room, then claims that instant in each bucket in turn. If a
//! bucket changed between planning and claiming (another thread got there first)
//! and no longer has room at that instant, the claims already made are given back
//! and the decision starts again: a request refused by one window never stays
//! charged to another.
//!
//! Departures in one bucket are first come, first served: a request never leaves
//! a bucket before one that was admitted or reserved in it earlier. A waiter in
//! a bucket it shares with others (an account's request waiting for the account's
//! own limit, say) holds its place in the shared bucket too.

use std::borrow::Borrow;
use std::sync::Arc;
use std::time::Duration;

use super::bucket::{Bucket, Claim, Snapshot};
use super::refusal::Refusal;
use super::reservation::Reservation;
use crate::clock::Nanos;

/// The most distinct buckets one request is charged to.
pub const MAX_BUCKETS: usize = 8;

/// How long a caller is willing to wait for room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxWait {
    /// Admit now or refuse, reserving nothing.
    Never,
    /// Reserve a departure up to this far ahead; refuse beyond.
    Up(Duration),
    /// Reserve whatever departure it takes.
    Forever,
}

impl MaxWait {
    /// The longest wait allowed; `None`: any.
    pub fn limit(self) -> Option<std::time::Duration> {
        match self {
            MaxWait::Never => Some(std::time::Duration::ZERO),
            MaxWait::Up(d) => Some(d),
            MaxWait::Forever => None,
        }
    }

    /// The longest wait allowed in nanoseconds (`u64::MAX`: any).
    #[inline]
    fn nanos(self) -> u64 {
        match self {
            MaxWait::Never => 0,
            MaxWait::Up(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            MaxWait::Forever => u64::MAX,
        }
    }
}

/// An admitted request.
#[derive(Debug)]
#[must_use = "a reservation dropped before its departure gives its room back"]
pub enum Grant {
    /// It may leave now; it is charged to every bucket.
    Now,
    /// It may leave at the reservation's departure time; dropping the reservation
    /// before then gives the room back.
    Later(Reservation),
}

impl Grant {
    /// When the request may leave, given the `now` of the decision.
    pub fn departure(&self, now: Nanos) -> Nanos {
        match self {
            Grant::Now => now,
            Grant::Later(r) => r.departure(),
        }
    }
}

/// Charges a request of `cost` units to every bucket in `buckets` at the earliest
/// departure at or after `now`, if it is within `max_wait`.
///
/// Buckets listed twice are charged once. `now` comes from the caller's
/// [`Clock`](crate::clock::Clock): reading it is most of a decision's cost, so the
/// engine never reads a clock itself.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tower_quota::clock::Nanos;
/// use tower_quota::ledger::{acquire, Bucket, Grant, MaxWait, Refusal};
/// use tower_quota::quota::Quota;
///
/// let route = Arc::new(Bucket::new("GET /people", Quota::per_second(2)));
/// let account = Arc::new(Bucket::new("account 7", Quota::per_second(1)));
/// let now = Nanos::ZERO;
/// assert!(matches!(acquire(&[&route, &account], 1, now, MaxWait::Never), Ok(Grant::Now)));
/// // The account is spent: fail fast with the wait, or reserve a departure.
/// let refused = acquire(&[&route, &account], 1, now, MaxWait::Never);
/// assert!(matches!(refused, Err(Refusal::WouldWait { wait, .. }) if wait == Duration::from_secs(1)));
/// match acquire(&[&route, &account], 1, now, MaxWait::Forever) {
///     Ok(Grant::Later(r)) => assert_eq!(r.departure(), Nanos::from_secs(1)),
///     other => panic!("expected a reservation, got {other:?}"),
/// }
/// ```
pub fn acquire<B: Borrow<Arc<Bucket>>>(
    buckets: &[B],
    cost: u32,
    now: Nanos,
    max_wait: MaxWait,
) -> Result<Grant, Refusal> {
    acquire_from(buckets, cost, now, now, max_wait)
}

/// Like [`acquire`], with the departure planned no earlier than `not_before`
/// (which counts against `max_wait` like any other wait).
///
/// A waiter charged to several buckets can reserve only in those that bind it,
/// at the instant they allow, and take the others when it leaves: then it does
/// not hold a place in a shared bucket that other requests could use meanwhile.
pub fn acquire_from<B: Borrow<Arc<Bucket>>>(
    buckets: &[B],
    cost: u32,
    now: Nanos,
    not_before: Nanos,
    max_wait: MaxWait,
) -> Result<Grant, Refusal> {
    decide_among::<B, false>(buckets, cost, now, not_before, max_wait)
}

/// Like [`acquire_from`], but a request that may leave now is reserved at
/// `now` too: charged in full, and given back if the reservation is dropped
/// before it departs. For a decision that something else may still
/// overturn, such as a shared store's answer for every process.
///
/// ```
/// use std::sync::Arc;
/// use tower_quota::clock::Nanos;
/// use tower_quota::ledger::{reserve_from, Bucket, MaxWait};
/// use tower_quota::quota::Quota;
///
/// let bucket = Arc::new(Bucket::new("GET /people", Quota::per_second(1)));
/// let held = reserve_from(&[&bucket], 1, Nanos::ZERO, Nanos::ZERO, MaxWait::Never).expect("room");
/// assert_eq!(held.departure(), Nanos::ZERO);
/// drop(held); // overturned: the room is back
/// assert_eq!(bucket.state(Nanos::ZERO).units_charged, 0);
/// ```
pub fn reserve_from<B: Borrow<Arc<Bucket>>>(
    buckets: &[B],
    cost: u32,
    now: Nanos,
    not_before: Nanos,
    max_wait: MaxWait,
) -> Result<Reservation, Refusal> {
    match decide_among::<B, true>(buckets, cost, now, not_before, max_wait)? {
        Grant::Later(reservation) => Ok(reservation),
        // Only a request charged to no bucket is admitted outright.
        Grant::Now => Ok(Reservation::new(now.max(not_before), Vec::new())),
    }
}

/// [`acquire_from`], or with `HOLD` [`reserve_from`].
fn decide_among<B: Borrow<Arc<Bucket>>, const HOLD: bool>(
    buckets: &[B],
    cost: u32,
    now: Nanos,
    not_before: Nanos,
    max_wait: MaxWait,
) -> Result<Grant, Refusal> {
    let cost = u64::from(cost.max(1));
    let start = now.max(not_before).as_u64();
    let now = now.as_u64();
    let max_wait = max_wait.nanos();
    if let [only] = buckets {
        return decide_one::<HOLD>(only.borrow(), cost, now, start, max_wait);
    }
    let Some(first) = buckets.first().map(Borrow::borrow) else {
        return Ok(Grant::Now); // charged to nothing: nothing limits it
    };
    // Each distinct bucket once, on the stack.
    let mut distinct: [&Arc<Bucket>; MAX_BUCKETS] = [first; MAX_BUCKETS];
    let mut n = 0;
    for b in buckets {
        let b = b.borrow();
        if distinct[..n].iter().any(|d| Arc::ptr_eq(d, b)) {
            continue;
        }
        if n == MAX_BUCKETS {
            return Err(Refusal::TooManyBuckets {
                given: buckets.len(),
                max: MAX_BUCKETS,
            });
        }
        distinct[n] = b;
        n += 1;
    }
    decide::<HOLD>(&distinct[..n], cost, now, start, max_wait)
}

/// [`acquire`] for one bucket (a keyed scope's), inlined into its caller.
#[inline]
pub(crate) fn acquire_one(
    b: &Arc<Bucket>,
    cost: u32,
    now: Nanos,
    max_wait: MaxWait,
) -> Result<Grant, Refusal> {
    let now = now.as_u64();
    decide_one::<false>(b, u64::from(cost.max(1)), now, now, max_wait.nanos())
}

/// The common case, one bucket: no arrays, and a lost race simply plans again.
/// With `HOLD`, a departure at `now` is reserved rather than committed.
#[inline(always)]
fn decide_one<const HOLD: bool>(
    b: &Arc<Bucket>,
    cost: u64,
    now: u64,
    start: u64,
    max_wait: u64,
) -> Result<Grant, Refusal> {
    let mut s = b.snapshot();
    loop {
        let d = b.earliest(&s, cost, start)?;
        if d - now > max_wait {
            return Err(Refusal::WouldWait {
                bucket: b.label().clone(),
                wait: Duration::from_nanos(d - now),
            });
        }
        let Ok(paced) = b.pace(&mut s.tat, cost, d) else {
            continue; // `pace` left the pacer's newer state in `s`
        };
        let lost = if d == now && !HOLD {
            match b.commit(&s, cost, d) {
                Ok(()) => return Ok(Grant::Now),
                Err(head) => head,
            }
        } else {
            match reserve_one(b, &s, cost, d, paced) {
                Ok(grant) => return Ok(grant),
                Err(head) => head,
            }
        };
        // Another decision got there first: plan again from the head it left.
        b.unpace(paced);
        b.refresh(&mut s, lost);
    }
}

/// Claims a reservation in one bucket (kept out of line: the admit-now path
/// stays small).
#[inline(never)]
fn reserve_one(
    b: &Arc<Bucket>,
    s: &Snapshot,
    cost: u64,
    d: u64,
    paced: Option<(u64, u64)>,
) -> Result<Grant, super::head::Head> {
    let claim = b.claim(s, cost, d, paced, true)?;
    let held = vec![(Arc::clone(b), claim)];
    Ok(Grant::Later(Reservation::new(Nanos::new(d), held)))
}

fn decide<const HOLD: bool>(
    buckets: &[&Arc<Bucket>],
    cost: u64,
    now: u64,
    start: u64,
    max_wait: u64,
) -> Result<Grant, Refusal> {
    let n = buckets.len();
    let mut snaps = [Snapshot {
        head: super::head::Head::at(0, 0),
        tat: 0,
    }; MAX_BUCKETS];
    'decide: loop {
        for (s, b) in snaps.iter_mut().zip(buckets) {
            *s = b.snapshot();
        }
        // Plan: the earliest instant every bucket has room, found as a fixed
        // point (a fixed window pushed to its boundary may move the others).
        let mut d = start;
        let mut binding = 0;
        loop {
            let before = d;
            for (i, b) in buckets.iter().enumerate() {
                let di = b.earliest(&snaps[i], cost, d)?;
                if di > d {
                    d = di;
                    binding = i;
                }
            }
            if d == before {
                break;
            }
        }
        if d - now > max_wait {
            return Err(Refusal::WouldWait {
                bucket: buckets[binding].label().clone(),
                wait: Duration::from_nanos(d - now),
            });
        }
        // Claim `d` in every bucket, or give everything back and plan again.
        // Only a claim that may be given back (a reservation, or one of several
        // buckets) remembers what it overwrote.
        let keep_undo = HOLD || n > 1 || d > now;
        let mut claims: [Option<Claim>; MAX_BUCKETS] = Default::default();
        for i in 0..n {
            let b = buckets[i];
            let Ok(paced) = b.pace(&mut snaps[i].tat, cost, d) else {
                undo(buckets, &mut claims[..i]);
                continue 'decide;
            };
            let claim = loop {
                match b.claim(&snaps[i], cost, d, paced, keep_undo) {
                    Ok(c) => break c,
                    Err(head) => {
                        snaps[i].head = head;
                        match b.earliest(&snaps[i], cost, d) {
                            Ok(again) if again == d => continue,
                            Ok(_) => {
                                b.unpace(paced);
                                undo(buckets, &mut claims[..i]);
                                continue 'decide;
                            }
                            Err(refusal) => {
                                b.unpace(paced);
                                undo(buckets, &mut claims[..i]);
                                return Err(refusal);
                            }
                        }
                    }
                }
            };
            claims[i] = Some(claim);
        }
        if d == now && !HOLD {
            return Ok(Grant::Now);
        }
        let held = buckets
            .iter()
            .zip(claims.iter_mut())
            .filter_map(|(b, c)| c.take().map(|c| (Arc::clone(b), c)))
            .collect();
        return Ok(Grant::Later(Reservation::new(Nanos::new(d), held)));
    }
}

fn undo(buckets: &[&Arc<Bucket>], claims: &mut [Option<Claim>]) {
    // Newest first, so that each pops straight off its head.
    for (b, c) in buckets.iter().zip(claims.iter_mut()).rev() {
        if let Some(c) = c.take() {
            b.release(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::Quota;

    /// A held decision with room now charges every bucket at once, gives it
    /// all back if dropped, and keeps it if it departs; without room it is
    /// refused or reserved like any other.
    #[test]
    fn a_held_decision_is_charged_in_full_and_given_back_whole() {
        let route = Arc::new(Bucket::new("route", Quota::per_second(2)));
        let key = Arc::new(Bucket::new("key", Quota::per_second(1)));
        let units = |b: &Bucket| b.state(Nanos::ZERO).units_charged;
        let both = [&route, &key];
        let held = reserve_from(&both, 1, Nanos::ZERO, Nanos::ZERO, MaxWait::Never);
        let Ok(held) = held else {
            panic!("room now: {held:?}")
        };
        assert_eq!(held.departure(), Nanos::ZERO);
        assert_eq!((units(&route), units(&key)), (1, 1));
        let refused = reserve_from(&both, 1, Nanos::ZERO, Nanos::ZERO, MaxWait::Never);
        assert!(
            matches!(refused, Err(Refusal::WouldWait { .. })),
            "{refused:?}"
        );
        drop(held);
        assert_eq!((units(&route), units(&key)), (0, 0), "given back whole");
        let Ok(kept) = reserve_from(&both, 1, Nanos::ZERO, Nanos::ZERO, MaxWait::Never) else {
            panic!("room again")
        };
        kept.depart();
        assert_eq!((units(&route), units(&key)), (1, 1), "departed: kept");
        let later = reserve_from(&both, 1, Nanos::ZERO, Nanos::ZERO, MaxWait::Forever);
        assert!(matches!(&later, Ok(r) if r.departure() == Nanos::from_secs(1)));
        let none: [&Arc<Bucket>; 0] = [];
        let free = reserve_from(&none, 1, Nanos::ZERO, Nanos::ZERO, MaxWait::Never);
        assert!(matches!(free, Ok(r) if r.departure() == Nanos::ZERO));
    }
}
