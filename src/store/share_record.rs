//! The departures a Redis store's local share decided, for Redis to count.
//!
//! While Redis is away, or while more calls are in flight than allowed, a
//! `RedisStore` decides from its share of each limit and notes every departure
//! here; before Redis next decides for this process they are handed to it,
//! so that no window forgets them. An outage may note a great many: noting one costs amortised
//! O(1), and sorting them for the hand-over O(n).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::ledger::DepartureWatch;
use crate::store::SharedBucket;

/// A departure the share decided.
pub(crate) struct Departure {
    bucket: SharedBucket,
    cost: u32,
    /// When it leaves (a reservation's departure may be ahead).
    at: Instant,
    /// A reservation's: when it leaves, which a slow response may push
    /// later than `at`.
    leaving: Option<Arc<Leaving>>,
}

impl Departure {
    /// When it leaves; for a reservation, as Redis is (or is about to be)
    /// told, if `telling`.
    fn at(&self, telling: bool) -> Instant {
        self.leaving.as_ref().map_or(self.at, |l| l.at(telling))
    }

    /// Whether it still counts at `now` in a window of `length` (one still
    /// ahead does).
    fn counts_in(&self, length: Duration, now: Instant) -> bool {
        now.saturating_duration_since(self.at(false)) < length
    }
}

/// When a reservation the share granted leaves: as planned, or later if a
/// slow response pushes it (the share's reservation then sleeps longer).
/// Recorded at its planned departure and handed over as of it, it made
/// Redis free its windows that much before the unit that really left did.
/// The record follows it until Redis is told; pushed later after that, the
/// reservation is noted again, as of when it leaves (counted twice for a
/// while: more, never fewer).
pub(crate) struct Leaving(Mutex<LeavingState>);

struct LeavingState {
    planned: Instant,
    /// Until it leaves (or is dropped).
    watch: Option<DepartureWatch>,
    /// When Redis was told it leaves, once it was.
    told: Option<Instant>,
}

impl Leaving {
    /// A reservation planned to leave at `planned`, pushed later as `watch`
    /// says.
    pub(crate) fn new(planned: Instant, watch: DepartureWatch) -> Arc<Leaving> {
        Arc::new(Leaving(Mutex::new(LeavingState {
            planned,
            watch: Some(watch),
            told: None,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LeavingState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When it leaves, as far as is known now; if `telling`, what Redis is
    /// told, after which it moves no more.
    fn at(&self, telling: bool) -> Instant {
        let mut state = self.state();
        if let Some(told) = state.told {
            return told;
        }
        let at = state.current();
        if telling {
            state.told = Some(at);
        }
        at
    }

    /// It leaves now (`left`), or it was dropped: it moves no more. If it
    /// left later than Redis was told, when it left, to be noted again.
    pub(crate) fn settle(&self, left: bool) -> Option<Instant> {
        let mut state = self.state();
        let at = state.current();
        state.planned = at;
        state.watch = None;
        match state.told {
            Some(told) if left && at > told => Some(at),
            _ => None,
        }
    }
}

impl LeavingState {
    fn current(&self) -> Instant {
        let later = self
            .watch
            .as_ref()
            .map_or(Duration::ZERO, DepartureWatch::later_by);
        self.planned.checked_add(later).unwrap_or(self.planned)
    }
}

/// Below this many departures the record is not pruned: a pass over a few is
/// not worth making.
const PRUNED_FROM: usize = 64;

/// The share's departures that Redis has not heard of.
#[derive(Default)]
pub(crate) struct ShareRecord {
    departures: Vec<Departure>,
    /// How many the last pruning left. The record is pruned again only once
    /// it has doubled since: a pass over all of it at every decision made an
    /// outage's decisions O(n^2) under the store's mutex, and a pass per
    /// doubling costs each departure O(1), for at most twice the departures
    /// that still count (and `PRUNED_FROM`) in memory.
    kept: usize,
}

impl ShareRecord {
    /// Notes a departure in each of `buckets` at `at` (a reservation's
    /// departure, not its decision: a window counts it from when it leaves).
    /// Each departure is forgotten once its own bucket's longest window has
    /// passed (by the buckets at hand, a short window's request dropped a
    /// long window's departures before Redis heard of them).
    /// A reservation's `leaving` follows it past `at` (see [`Leaving`]).
    pub(crate) fn note(
        &mut self,
        buckets: &[SharedBucket],
        cost: u32,
        at: Instant,
        leaving: Option<&Arc<Leaving>>,
    ) {
        if self.departures.len() >= self.kept.max(PRUNED_FROM) * 2 {
            let now = Instant::now();
            self.departures
                .retain(|d| d.counts_in(d.bucket.longest(), now));
            self.kept = self.departures.len();
        }
        self.departures.extend(buckets.iter().map(|b| Departure {
            bucket: b.clone(),
            cost,
            at,
            leaving: leaving.cloned(),
        }));
    }

    /// Whether there is nothing to hand over.
    pub(crate) fn is_empty(&self) -> bool {
        self.departures.is_empty()
    }

    /// All of it, by bucket, for a hand-over; the record is left empty.
    pub(crate) fn take(&mut self) -> Vec<BucketDepartures> {
        self.kept = 0;
        by_bucket(std::mem::take(&mut self.departures))
    }

    /// Departures a hand-over did not get to tell, for the next one.
    pub(crate) fn put_back(&mut self, untold: impl IntoIterator<Item = BucketDepartures>) {
        for b in untold {
            self.departures.extend(b.departures);
        }
    }
}

/// One bucket's departures.
pub(crate) struct BucketDepartures {
    /// The bucket, as the latest of its departures saw it.
    pub(crate) bucket: SharedBucket,
    departures: Vec<Departure>,
}

impl BucketDepartures {
    /// What its departures that still count at `now` in a window of `length`
    /// add to that window: per departure time, when it leaves and its units.
    /// A reservation still ahead is told as of its departure, as late as a
    /// slow response has pushed it (told as of `now`, it freed the window a
    /// window after the hand-over rather than after it left); those that
    /// have left, together as of `now` (Redis counts them a little longer
    /// than they count: more, never fewer).
    pub(crate) fn adds(&self, length: Duration, now: Instant) -> Vec<(Instant, u64)> {
        let mut by_time: BTreeMap<Instant, u64> = BTreeMap::new();
        for d in &self.departures {
            let at = d.at(true);
            if now.saturating_duration_since(at) < length {
                *by_time.entry(at.max(now)).or_default() += u64::from(d.cost);
            }
        }
        by_time.into_iter().collect()
    }
}

/// `departures` by bucket, in the order each bucket first appears.
fn by_bucket(departures: Vec<Departure>) -> Vec<BucketDepartures> {
    let mut index: HashMap<Arc<str>, usize> = HashMap::new();
    let mut out: Vec<BucketDepartures> = Vec::new();
    for d in departures {
        match index.get(&d.bucket.id) {
            Some(&i) if i < out.len() => {
                let b = &mut out[i];
                b.bucket.clone_from(&d.bucket);
                b.departures.push(d);
            }
            _ => {
                index.insert(d.bucket.id.clone(), out.len());
                out.push(BucketDepartures {
                    bucket: d.bucket.clone(),
                    departures: vec![d],
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SharedWindow;

    fn bucket(name: &str, length: Duration) -> SharedBucket {
        let window = SharedWindow {
            limit: 10,
            length,
            anchor: None,
            margin: Duration::ZERO,
        };
        SharedBucket::new("route", name, [window])
    }

    /// Pruned by doubling, the record still forgets what no longer counts:
    /// it never holds more than twice what does (and `PRUNED_FROM`).
    #[test]
    fn the_record_forgets_what_no_longer_counts() {
        let mut record = ShareRecord::default();
        let (second, hour) = (
            [bucket("GET /second", Duration::from_secs(1))],
            [bucket("GET /hour", Duration::from_secs(3_600))],
        );
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(2))
            .unwrap_or_else(Instant::now);
        for _ in 0..10 {
            record.note(&hour, 1, Instant::now(), None);
        }
        for _ in 0..10_000 {
            record.note(&second, 1, long_ago, None);
            assert!(record.departures.len() <= 2 * PRUNED_FROM + 1);
        }
        let left = record.take();
        let hour_left: Vec<_> = left
            .iter()
            .filter(|b| &*b.bucket.id == "GET /hour")
            .collect();
        assert_eq!(hour_left.len(), 1);
        assert_eq!(
            hour_left[0]
                .adds(Duration::from_secs(3_600), Instant::now())
                .iter()
                .map(|&(_, units)| units)
                .collect::<Vec<_>>(),
            vec![10],
            "what still counts is kept"
        );
        assert!(record.departures.is_empty());
    }

    /// Each departure time is told on its own, a reservation ahead as of
    /// when it leaves: added together at the hand-over's time, a reservation
    /// ahead freed its window too early (and, capped at the limit with the
    /// unit before it, was lost).
    #[test]
    fn departures_are_told_by_their_own_times() {
        let mut record = ShareRecord::default();
        let one = [bucket("GET /one", Duration::from_secs(60))];
        let now = Instant::now();
        let ahead = Duration::from_secs(3);
        record.note(&one, 1, now, None);
        record.note(&one, 2, now + ahead, None);
        record.note(&one, 1, now + ahead, None);
        let told = record.take();
        let adds = told.first().map(|b| b.adds(Duration::from_secs(60), now));
        assert_eq!(adds, Some(vec![(now, 1), (now + ahead, 3)]));
    }
}
