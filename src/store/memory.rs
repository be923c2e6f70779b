//! The in-process store: the engine's own decision behind the store trait.
//!
//! A [`RedisStore`](crate::store::RedisStore) keeps one of these as its
//! fallback: with a share of `1/k` of each limit, `k` processes that all fall
//! back stay within the limit together. It also mirrors what the process sent
//! through the shared store, and its part of what the store counted for all
//! processes, so that on failing over its share already counts both.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, ClockOffset, Nanos, TokioClock};
use crate::ledger::{
    acquire, Bucket, DepartureWatch, Grant, InFlight, MaxWait, Refusal, Reservation, WindowCount,
};
use crate::quota::{Limits, Quota};
use crate::store::health::HealthCell;
use crate::store::{
    with_waited, Correction, Reserved, SharedBucket, SharedStore, StoreFuture, StoreGrant,
    StoreStatus,
};

type Map = papaya::HashMap<Arc<str>, Arc<Bucket>, foldhash::fast::RandomState>;

/// A bucket's share of a shared store's counts: per window, as of when, and
/// the bucket's longest window.
type Told = (Box<[WindowCount]>, Nanos, Duration);

/// Buckets in this process's memory, named like a shared store's.
#[derive(Debug)]
pub struct MemoryStore {
    buckets: Map,
    share: u32,
    cap: usize,
    clock: TokioClock,
    health: HealthCell,
    /// Names buckets within this process (a per-process random seed).
    ids: foldhash::quality::RandomState,
    /// Per bucket, its share of what a shared store last counted, per window,
    /// when, and its longest window (after which the counts raise nothing;
    /// see [`MemoryStore::mirror`]); at most `cap` of them.
    told: papaya::HashMap<Arc<str>, Told, foldhash::fast::RandomState>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// A store that keeps each limit whole, with at most 100,000 buckets.
    pub fn new() -> MemoryStore {
        MemoryStore::share_of(1, 100_000)
    }

    /// A store that keeps `1/processes` of each limit (at least 1 unit per
    /// window), with at most `cap` buckets.
    pub fn share_of(processes: u32, cap: usize) -> MemoryStore {
        MemoryStore {
            buckets: papaya::HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .build(),
            share: processes.max(1),
            cap: cap.max(1),
            clock: TokioClock::new(),
            health: HealthCell::new(),
            ids: foldhash::quality::RandomState::default(),
            told: papaya::HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .build(),
        }
    }

    /// The local bucket of `shared`, made on first use, its limits kept in
    /// step with `shared`'s, marked in flight until the [`InFlight`] is
    /// dropped: a full store never evicts it while the caller charges or
    /// corrects it.
    ///
    /// Evictions go through the bucket's retire protocol (`Bucket::retire`):
    /// an evicted bucket takes no mark and no charge, so a lookup that found
    /// it just before the eviction looks again, and what it charges or learns
    /// lands in the bucket the id goes on using. A bucket made again after an
    /// eviction needs no floor here: every caller reads the store's clock
    /// after its lookup, so later than the eviction that made room, by which
    /// time the evicted bucket's units had stopped counting.
    ///
    /// The mark lasts for the call, not for the request: a response slower
    /// than the bucket's longest window, at a full store, may find the
    /// bucket evicted and its lateness then widens the id's new, empty
    /// bucket (its 429's block still holds there).
    fn bucket(&self, shared: &SharedBucket) -> Result<InFlight, Refusal> {
        loop {
            let b = self.lookup(shared)?;
            if b.mark_unless_evicted() {
                return Ok(InFlight::marked(b));
            }
            // Retired and still in the map: whoever finds it takes it out
            // (this bucket only, never one made for the id since).
            let _gone = self
                .buckets
                .pin()
                .remove_if(&shared.id, |_, v| Arc::ptr_eq(v, &b));
        }
    }

    fn lookup(&self, shared: &SharedBucket) -> Result<Arc<Bucket>, Refusal> {
        let map = self.buckets.pin();
        if let Some(b) = map.get(&shared.id) {
            for (i, w) in shared.windows.iter().enumerate() {
                let limit = (w.limit / self.share).max(1);
                if b.limit(i).is_some_and(|l| l != limit) {
                    if let Some(l) = std::num::NonZeroU32::new(limit) {
                        b.set_limit(i, l);
                    }
                }
            }
            return Ok(b.clone());
        }
        if map.len() >= self.cap {
            let now = self.clock.now().as_u64();
            // The bucket's own test: counts alone would forget a 429's block,
            // a pacer ahead, and units a fixed window still counts from its
            // margin before the period's start. A bucket marked in flight is
            // not idle, and one retired takes no more charges. papaya may ask
            // twice about one entry (when a resize moved it meanwhile), and
            // the second time a bucket this retain retired is evicted: out.
            map.retain(|_, b| !(b.is_evicted() || b.retire(now, |_| ())));
            if map.len() >= self.cap {
                return Err(Refusal::TooManyKeys {
                    scope: Arc::from("memory store"),
                    cap: self.cap,
                });
            }
        }
        let quotas = shared.windows.iter().filter_map(|w| {
            let margin = w.margin.min(w.length);
            let q = Quota::new((w.limit / self.share).max(1), w.length - margin)?;
            let q = match w.anchor {
                Some(a) => q.fixed(self.clock.monotonic_at(a, ClockOffset::ZERO)),
                None => q,
            };
            Some(q.with_margin(margin))
        });
        let fresh = Arc::new(Bucket::new(shared.label.clone(), Limits::new(quotas)));
        Ok(map.get_or_insert(shared.id.clone(), fresh).clone())
    }

    fn buckets_of(&self, shared: &[SharedBucket]) -> Result<Vec<InFlight>, Refusal> {
        shared.iter().map(|s| self.bucket(s)).collect()
    }

    /// Decides at once (the in-memory decision never waits for anything).
    pub(crate) fn decide(
        &self,
        buckets: &[SharedBucket],
        cost: u32,
        max_wait: Option<Duration>,
    ) -> Result<StoreGrant, Refusal> {
        self.decide_watching(buckets, cost, max_wait, Duration::ZERO, false)
            .map(|(grant, _)| grant)
    }

    /// Decides at once for a request that has `waited` already (it decides
    /// again at its departure), with `max_wait` what is left of its longest
    /// wait: a refusal tells the whole wait, and a reservation is held to
    /// the deadline at its departure. With a reservation, if `watch`, also
    /// a watch on how much later than planned it leaves (a slow response
    /// may push it): a shared store's share records its departures for
    /// Redis, and the record follows it.
    pub(crate) fn decide_watching(
        &self,
        buckets: &[SharedBucket],
        cost: u32,
        max_wait: Option<Duration>,
        waited: Duration,
        watch: bool,
    ) -> Result<(StoreGrant, Option<DepartureWatch>), Refusal> {
        let local = self.buckets_of(buckets)?;
        self.catch_up(buckets, &local);
        let now = self.clock.now();
        let deadline = max_wait.map(|w| now + w);
        let max_wait = max_wait.map_or(MaxWait::Forever, MaxWait::Up);
        self.health
            .decisions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let local: Vec<&Arc<Bucket>> = local.iter().map(InFlight::bucket).collect();
        let grant = acquire(&local, cost, now, max_wait).map_err(|r| with_waited(r, waited))?;
        Ok(match grant {
            Grant::Now => (StoreGrant::Now, None),
            Grant::Later(reservation) => {
                let watching = watch.then(|| reservation.watch());
                let reserved = MemoryReserved {
                    wait: reservation.departure().saturating_since(now),
                    reservation,
                    clock: self.clock.clone(),
                    asked: now - waited,
                    deadline,
                    label: buckets
                        .first()
                        .map_or_else(|| Arc::from("(no bucket)"), |b| b.label.clone()),
                };
                (StoreGrant::Later(Box::new(reserved)), watching)
            }
        })
    }

    /// Counts a departure the shared store admitted, where it fits: on failing
    /// over, the share then starts from what this process already sent. Keeps
    /// each window's share of what the shared store counts for all processes
    /// (`counts`, per bucket and window, if it said), to raise the share's
    /// count to when it next decides ([`MemoryStore::catch_up`]).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn mirror(&self, buckets: &[SharedBucket], cost: u32, counts: &[Vec<Option<u64>>]) {
        let Ok(local) = self.buckets_of(buckets) else {
            return;
        };
        let now = self.clock.now();
        let told = self.told.pin();
        for (i, b) in local.iter().enumerate() {
            let _ = acquire(&[b.bucket()], cost, now, MaxWait::Never);
            let Some(counts) = counts.get(i) else {
                continue;
            };
            let share = u64::from(self.share);
            let ours: Box<[WindowCount]> = counts
                .iter()
                .enumerate()
                .filter_map(|(window, n)| {
                    n.map(|n| WindowCount {
                        window,
                        used: n.div_ceil(share),
                        frees_at: None,
                    })
                })
                .collect();
            let id = &buckets[i].id;
            if told.len() >= self.cap && !told.contains_key(id) {
                // Full: what can no longer raise anything makes room.
                told.retain(|_, (_, at, longest)| *at + *longest > now);
            }
            if told.len() < self.cap || told.contains_key(id) {
                told.insert(id.clone(), (ours, now, buckets[i].longest()));
            }
        }
    }

    /// Before the share decides for `shared`: raises each window to its share
    /// of what the shared store last counted for all processes, once. With `k`
    /// processes that each hold `1/k` of a limit `L`, one told that `U` are in
    /// use keeps at most `(L - U) / k` to send (or less, if it sent more than
    /// `U / k` itself), so the `k` shares together stay within `L`, but for
    /// what the others sent after its last answer. Raised together, so that a
    /// long window's count fills no shorter one
    /// ([`Bucket::raise_used_together`]), as of the answer's time.
    fn catch_up(&self, shared: &[SharedBucket], local: &[InFlight]) {
        if self.told.is_empty() {
            return;
        }
        let told = self.told.pin();
        for (s, b) in shared.iter().zip(local) {
            if let Some((counts, at, _)) = told.remove(&s.id) {
                b.bucket().raise_used_together(counts, *at, *at);
            }
        }
    }
}

struct MemoryReserved {
    reservation: Reservation,
    wait: Duration,
    /// The store's clock (the reservation's timeline).
    clock: TokioClock,
    /// When the request asked: a refusal tells the whole wait from then.
    asked: Nanos,
    /// The latest it may leave, by the longest wait it asked with (`None`:
    /// any wait): a slow response that widens the reservation past it must
    /// not make the request wait longer than its caller allows.
    deadline: Option<Nanos>,
    /// The bucket a refusal names (the request's first).
    label: Arc<str>,
}

impl Reserved for MemoryReserved {
    fn wait(&self) -> Duration {
        self.wait
    }

    fn depart(self: Box<Self>) -> StoreFuture {
        // A slow response since the reservation was made may ask it to leave
        // later (the local engine's rule, as in the layer), but never past
        // the deadline: refused (the reservation dropped gives its room
        // back), with the whole wait.
        let later = self.reservation.widened_departure();
        if self.deadline.is_some_and(|deadline| later > deadline) {
            return Box::pin(std::future::ready(Err(Refusal::WouldWait {
                bucket: self.label.clone(),
                wait: later.saturating_since(self.asked),
            })));
        }
        let wait = later.saturating_since(self.clock.now());
        Box::pin(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            self.reservation.depart();
            Ok(StoreGrant::Now)
        })
    }
}

impl SharedStore for MemoryStore {
    fn acquire(
        &self,
        buckets: Vec<SharedBucket>,
        cost: u32,
        max_wait: Option<Duration>,
    ) -> StoreFuture {
        Box::pin(std::future::ready(self.decide(&buckets, cost, max_wait)))
    }

    fn correct(&self, bucket: &SharedBucket, correction: Correction) {
        let Ok(marked) = self.bucket(bucket) else {
            return;
        };
        let b = marked.bucket();
        let now = self.clock.now();
        match correction {
            Correction::Used { window, used } => {
                b.raise_used(window, used, now, None);
            }
            Correction::Block { duration } => b.block_until(now + duration),
            Correction::Limit { window, limit } => {
                if let Some(l) = std::num::NonZeroU32::new((limit / self.share).max(1)) {
                    b.set_limit(window, l);
                }
            }
            Correction::Late { window, late } => b.widen(window, late, now),
        }
    }

    fn correct_used(&self, bucket: &SharedBucket, counts: &[(usize, u64)]) {
        let Ok(marked) = self.bucket(bucket) else {
            return;
        };
        let b = marked.bucket();
        let now = self.clock.now();
        let counts: Vec<WindowCount> = counts
            .iter()
            .map(|&(window, used)| WindowCount {
                window,
                used,
                frees_at: None,
            })
            .collect();
        b.raise_used_together(&counts, now, now);
    }

    fn status(&self) -> StoreStatus {
        self.health.status("memory")
    }

    fn bucket_id(&self, scope: &str, raw: &[u8]) -> Arc<str> {
        use std::hash::BuildHasher;
        Arc::from(format!("{scope}:{:016x}", self.ids.hash_one(raw)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SharedWindow;

    fn bucket(store: &MemoryStore, name: &str) -> SharedBucket {
        let window = SharedWindow {
            limit: 10,
            length: Duration::from_secs(60),
            anchor: None,
            margin: Duration::ZERO,
        };
        SharedBucket::new("route", store.bucket_id("route", name.as_bytes()), [window])
    }

    #[tokio::test(start_paused = true)]
    async fn a_share_counts_its_part_of_what_all_sent_and_forgets_it_once_stale() {
        let store = MemoryStore::share_of(2, 2);
        let (a, b, c) = (
            bucket(&store, "a"),
            bucket(&store, "b"),
            bucket(&store, "c"),
        );
        let now_or_never = |x: &SharedBucket| {
            store
                .decide(std::slice::from_ref(x), 1, Some(Duration::ZERO))
                .is_ok()
        };
        // All processes together sent 8 of 10 in `a` and in `b`; this one
        // sent 1 of each. The map of counts is full.
        store.mirror(std::slice::from_ref(&a), 1, &[vec![Some(8)]]);
        store.mirror(std::slice::from_ref(&b), 1, &[vec![Some(8)]]);
        // A window on, those counts can raise nothing, and make room for `c`'s.
        tokio::time::advance(Duration::from_secs(61)).await;
        store.mirror(std::slice::from_ref(&c), 1, &[vec![Some(8)], vec![Some(1)]]);
        // Its share (5) counts its part (4), not its own 1: one more to send.
        assert!(now_or_never(&c));
        assert!(!now_or_never(&c), "4 + 1 of a share of 5: `c` was told");
        // Junk or missing counts raise nothing: its own 1, and 4 more.
        tokio::time::advance(Duration::from_secs(61)).await;
        let d = bucket(&store, "d");
        store.mirror(std::slice::from_ref(&d), 1, &[vec![None]]);
        assert_eq!((0..6).filter(|_| now_or_never(&d)).count(), 4);
    }

    /// A full store evicting a bucket that a caller has just found: the
    /// caller's charge must count where the id's later decisions look. The
    /// lookup marks the bucket, so the eviction passes it over; once
    /// unmarked and idle, it goes.
    #[tokio::test(start_paused = true)]
    async fn a_bucket_found_for_a_charge_is_not_evicted_under_it() {
        let store = MemoryStore::share_of(1, 1);
        let (a, b) = (bucket(&store, "a"), bucket(&store, "b"));
        let found = store.bucket(&a).expect("room for `a`");
        // A window later `a` is idle but for the caller about to charge it.
        tokio::time::advance(Duration::from_secs(61)).await;
        let refused = store.decide(std::slice::from_ref(&b), 1, Some(Duration::ZERO));
        assert!(
            matches!(refused, Err(Refusal::TooManyKeys { cap: 1, .. })),
            "{refused:?}"
        );
        let now = store.clock.now();
        for _ in 0..10 {
            let g = acquire(&[found.bucket()], 1, now, MaxWait::Never);
            assert!(matches!(g, Ok(Grant::Now)), "{g:?}");
        }
        drop(found);
        // The ten count: `a` has no room left in this window.
        let spent = store.decide(std::slice::from_ref(&a), 1, Some(Duration::ZERO));
        assert!(matches!(spent, Err(Refusal::WouldWait { .. })), "{spent:?}");
        // A window on, `a` holds nothing and is marked by nobody: `b` gets
        // its place, and a charge on the evicted bucket is refused, never lost.
        tokio::time::advance(Duration::from_secs(61)).await;
        let stale = store.lookup(&a).expect("`a` is still there");
        let admitted = store.decide(std::slice::from_ref(&b), 1, Some(Duration::ZERO));
        assert!(matches!(admitted, Ok(StoreGrant::Now)), "{admitted:?}");
        let lost = acquire(&[&stale], 1, store.clock.now(), MaxWait::Never);
        assert!(matches!(lost, Err(Refusal::Retired { .. })), "{lost:?}");
        assert!(!stale.mark_in_flight(), "an evicted bucket takes no mark");
    }

    /// A bucket retired and still in the map (papaya's `retain` may ask
    /// about an entry again after a resize moved it, and the second time
    /// the bucket it retired the first time is no longer idle): a lookup of
    /// its id takes it out and makes a new one, instead of waiting for good,
    /// and a full store's eviction takes it out to make room.
    #[tokio::test(start_paused = true)]
    async fn a_retired_bucket_left_in_the_map_is_taken_out() {
        let store = Arc::new(MemoryStore::share_of(1, 1));
        let (a, b) = (bucket(&store, "a"), bucket(&store, "b"));
        let later = Nanos::from_secs(3_600).as_u64();
        let old = store.lookup(&a).expect("room for `a`");
        assert!(old.retire(later, |_| ()));
        assert!(!old.retire(later, |_| ()), "asked twice: not idle now");
        // On a thread of its own, so that a lookup waiting for good fails
        // the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        let (runtime, on_it, for_a) = (tokio::runtime::Handle::current(), store.clone(), a.clone());
        std::thread::spawn(move || {
            let _runtime = runtime.enter();
            let _ = tx.send(on_it.decide(std::slice::from_ref(&for_a), 1, Some(Duration::ZERO)));
        });
        let again = rx.recv_timeout(Duration::from_secs(10));
        assert!(matches!(again, Ok(Ok(StoreGrant::Now))), "{again:?}");
        let new = store.lookup(&a).expect("the new bucket");
        assert!(!Arc::ptr_eq(&new, &old) && !new.is_evicted());
        // Retired in place again: the full store makes room for `b`.
        tokio::time::advance(Duration::from_secs(3_600)).await;
        assert!(new.retire(store.clock.now().as_u64(), |_| ()));
        let admitted = store.decide(std::slice::from_ref(&b), 1, Some(Duration::ZERO));
        assert!(matches!(admitted, Ok(StoreGrant::Now)), "{admitted:?}");
        assert_eq!(store.buckets.len(), 1);
    }

    /// Four threads deciding for 4,096 ids at a store of 16, windows of a
    /// microsecond: evictions, resizes and retried `retain` questions all the
    /// time. Every thread gets through its decisions (a retired bucket left
    /// in the map made lookups wait for good: all threads stuck within two
    /// seconds), and the map never holds more than its cap.
    #[test]
    fn many_threads_at_a_full_store_never_wait_for_good() {
        const THREADS: u64 = 4;
        const EACH: u64 = 50_000;
        let store = Arc::new(MemoryStore::share_of(1, 16));
        let window = SharedWindow {
            limit: 1_000,
            length: Duration::from_micros(1),
            anchor: None,
            margin: Duration::ZERO,
        };
        let ids: Arc<Vec<SharedBucket>> = Arc::new(
            (0..4_096u64)
                .map(|i| {
                    let id = store.bucket_id("route", &i.to_le_bytes());
                    SharedBucket::new("route", id, [window])
                })
                .collect(),
        );
        let (tx, rx) = std::sync::mpsc::channel();
        for t in 0..THREADS {
            let (store, ids, tx) = (store.clone(), ids.clone(), tx.clone());
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t);
                let mut decided = 0;
                for _ in 0..EACH {
                    let id = &ids[rng.usize(..ids.len())];
                    let g = store.decide(std::slice::from_ref(id), 1, Some(Duration::ZERO));
                    decided += u64::from(!matches!(g, Err(Refusal::Retired { .. })));
                }
                let _ = tx.send(decided);
            });
        }
        for _ in 0..THREADS {
            let done = rx.recv_timeout(Duration::from_secs(60));
            assert_eq!(done, Ok(EACH), "a thread stuck, or told `Retired`");
        }
        assert!(store.buckets.len() <= 16, "{}", store.buckets.len());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_store_keeps_a_blocked_bucket_that_counts_nothing() {
        let store = MemoryStore::share_of(1, 1);
        let (a, b) = (bucket(&store, "a"), bucket(&store, "b"));
        let now_or_never =
            |x: &SharedBucket| store.decide(std::slice::from_ref(x), 1, Some(Duration::ZERO));
        // A 429 blocked `a` for two minutes (two windows); it has sent nothing.
        store.correct(
            &a,
            Correction::Block {
                duration: Duration::from_secs(120),
            },
        );
        // The store is full: `b` is refused rather than `a`'s block forgotten.
        let refused = now_or_never(&b);
        assert!(
            matches!(refused, Err(Refusal::TooManyKeys { cap: 1, .. })),
            "{refused:?}"
        );
        let blocked = now_or_never(&a);
        assert!(
            matches!(blocked, Err(Refusal::WouldWait { .. })),
            "{blocked:?}"
        );
        // A window later `a` counts nothing, and is still blocked: kept.
        tokio::time::advance(Duration::from_secs(61)).await;
        let refused = now_or_never(&b);
        assert!(
            matches!(refused, Err(Refusal::TooManyKeys { .. })),
            "{refused:?}"
        );
        // Once the block is over, `a` holds nothing and `b` gets its place.
        tokio::time::advance(Duration::from_secs(60)).await;
        let admitted = now_or_never(&b);
        assert!(matches!(admitted, Ok(StoreGrant::Now)), "{admitted:?}");
    }

    /// A reservation within the longest wait that a slow response then
    /// widened past it: the store slept to the widened departure without
    /// looking at the cap, and the request left 1.9 s after it asked under
    /// a cap of 1.5 s. It is refused at its departure, with the whole wait.
    #[tokio::test(start_paused = true)]
    async fn a_reservation_widened_past_the_longest_wait_is_refused() {
        let store = MemoryStore::new();
        let one = SharedBucket::new(
            "route",
            store.bucket_id("route", b"GET /one"),
            [SharedWindow {
                limit: 1,
                length: Duration::from_secs(1),
                anchor: None,
                margin: Duration::ZERO,
            }],
        );
        let ask = |max_wait| store.acquire(vec![one.clone()], 1, max_wait);
        assert!(matches!(ask(None).await, Ok(StoreGrant::Now)));
        tokio::time::advance(Duration::from_millis(5)).await;
        let asked = tokio::time::Instant::now();
        let held = match ask(Some(Duration::from_millis(1_500))).await {
            Ok(StoreGrant::Later(r)) => r,
            other => panic!("expected a reservation, got {other:?}"),
        };
        // The unit sent first was answered 0.9 s late: the window holds it
        // until 1.9 s.
        store.correct(
            &one,
            Correction::Late {
                window: 0,
                late: Duration::from_millis(900),
            },
        );
        tokio::time::sleep(held.wait()).await;
        let left = held.depart().await;
        match left {
            Err(Refusal::WouldWait { wait, .. }) => {
                assert!(wait > Duration::from_millis(1_500), "{wait:?}");
            }
            other => panic!(
                "{other:?} {:?} after it asked, under a cap of 1.5 s",
                asked.elapsed()
            ),
        }
        // Refused, it holds nothing: the next one leaves at 1.9 s (not a
        // window after it).
        let next = ask(None).await;
        assert!(
            matches!(&next, Ok(StoreGrant::Later(r)) if r.wait() < Duration::from_secs(1)),
            "{next:?}"
        );
    }
}
