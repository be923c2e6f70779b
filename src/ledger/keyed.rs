//! Buckets created on first use, for keys not known in advance (accounts, API
//! keys), with bounded memory.
//!
//! The map is `scc`'s `HashIndex`, whose reads are lock-free: lookups never
//! block, even while another thread inserts or evicts (but a lookup that marks its bucket in
//! flight waits out an eviction of it that is half done: a few instructions
//! of another thread). A bucket that has been idle for longer than
//! its longest window (and is neither blocked nor paced ahead) holds nothing
//! worth keeping; when the scope reaches its cap, such buckets are evicted. An
//! evicted bucket is first marked retired with a compare-and-swap on its head, so
//! a request that looked it up just before cannot be charged to it and lost: its
//! claim fails and it looks the key up again. A bucket with a request on its
//! way ([`InFlight`](super::InFlight)) is never idle: what the response
//! teaches lands in the bucket the key goes on using.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::bucket::Bucket;
use super::decision::{acquire_one, Grant, MaxWait};
use super::in_flight::InFlight;
use super::refusal::Refusal;
use crate::clock::Nanos;
use crate::quota::Limits;

/// A scope of buckets keyed by `K`, all built from the same [`Limits`].
///
/// Keys are never shown: a bucket's label is the scope's name and a short hash.
///
/// ```
/// use tower_quota::clock::Nanos;
/// use tower_quota::ledger::{KeyedBuckets, MaxWait};
/// use tower_quota::quota::Quota;
///
/// let accounts = KeyedBuckets::new("per_account", Quota::per_minute(25), 10_000);
/// for _ in 0..25 {
///     assert!(accounts.acquire(&"acct-1", 1, Nanos::ZERO, MaxWait::Never).is_ok());
/// }
/// assert!(accounts.acquire(&"acct-1", 1, Nanos::ZERO, MaxWait::Never).is_err());
/// assert!(accounts.acquire(&"acct-2", 1, Nanos::ZERO, MaxWait::Never).is_ok());
/// assert_eq!(accounts.len(), 2);
/// ```
pub struct KeyedBuckets<K> {
    scope: Arc<str>,
    limits: Limits,
    /// Limits set at run time per window (0: the configured one), for every
    /// bucket and the ones created later (see [`KeyedBuckets::set_limit`]).
    overrides: Box<[AtomicU32]>,
    cap: usize,
    map: scc::HashIndex<K, Arc<Bucket>, foldhash::fast::RandomState>,
    /// Buckets in `map`: counted here, as `HashIndex::len` reads the whole
    /// table.
    count: AtomicUsize,
    /// When the units of evicted buckets stop counting, per slot of the
    /// keys' fingerprints: a bucket made for a key leaves nothing before its
    /// slot's floor (see [`Bucket::open`]). Made again after an eviction, a
    /// key would otherwise let a caller that read its clock before the
    /// eviction (and was delayed) send into an empty bucket where the
    /// evicted one still counted units. Per slot, not one for the scope: a
    /// brand-new key is held back only by the evictions of keys that share
    /// its slot, not by every eviction of the moment (one for the scope
    /// refused new keys' first requests in fail-fast mode, with a wait of
    /// the callers' clock skew).
    floors: Box<[AtomicU64]>,
    /// Limits the server gave single keys (a seed's entry for one undeclared
    /// route), so that a bucket made for the key again after an eviction
    /// starts from them, not from the scope's. Read only when a bucket is made.
    remembered: papaya::HashMap<K, Box<[u32]>, foldhash::fast::RandomState>,
}

impl<K> fmt::Debug for KeyedBuckets<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedBuckets")
            .field("scope", &self.scope)
            .field("cap", &self.cap)
            .finish()
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedBuckets<K> {
    /// A scope named `scope` whose buckets follow `limits`, holding at most `cap`
    /// buckets at once.
    pub fn new(scope: impl Into<Arc<str>>, limits: impl Into<Limits>, cap: usize) -> Self {
        let cap = cap.max(1);
        let limits: Limits = limits.into();
        KeyedBuckets {
            scope: scope.into(),
            overrides: limits.quotas().iter().map(|_| AtomicU32::new(0)).collect(),
            limits,
            cap,
            // As many slots as the cap allows keys, from 64 to 4096 (8
            // bytes each, beside a bucket's 700 or more). Keys hash into
            // them, so some share a slot however many there are: the floor
            // holds back only keys whose slot an eviction raised.
            floors: (0..cap.min(4096).next_power_of_two().max(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            remembered: papaya::HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .build(),
            // HashIndex rather than papaya's map: its entries (key and
            // `Arc`) sit inline in its buckets, where papaya's are boxed one
            // by one, so a lookup follows one pointer less (BENCHMARKS.md,
            // "Keyed decisions, timed": 136-142 -> 97-99 ns a lookup over
            // 10,000 keys in random order, with a clock read). foldhash:
            // keys are the user's own account and key ids, and a seeded fast
            // hash costs 2-3 ns where SipHash costs 15.
            map: scc::HashIndex::with_capacity_and_hasher(
                cap.clamp(1, 1024),
                foldhash::fast::RandomState::default(),
            ),
            count: AtomicUsize::new(0),
        }
    }

    /// The scope's name.
    pub fn scope(&self) -> &Arc<str> {
        &self.scope
    }

    /// How many buckets the scope holds.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Whether the scope holds no bucket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bucket for `key`, created if needed.
    ///
    /// A caller that charges it and will correct it from the response (a
    /// block after a 429, say) takes it with
    /// [`KeyedBuckets::bucket_in_flight`] instead: otherwise a response slower
    /// than the longest window may find the bucket evicted, and its
    /// correction lost with it. A decision on a bucket evicted since this
    /// lookup fails with [`Refusal::Retired`]: look the key up again.
    pub fn bucket(&self, key: &K, now: Nanos) -> Result<Arc<Bucket>, Refusal> {
        loop {
            let b = self.with_bucket(key, now, Arc::clone)?;
            if !b.is_evicted() {
                return Ok(b);
            }
            // Evicted and not yet out of the map: taken out, the key made anew.
            self.forget_evicted(key);
        }
    }

    /// Runs `f` on the bucket for `key` without cloning its `Arc`, creating the
    /// bucket if needed (evicting idle ones when the scope is full).
    pub fn with_bucket<R>(
        &self,
        key: &K,
        now: Nanos,
        f: impl FnOnce(&Arc<Bucket>) -> R,
    ) -> Result<R, Refusal> {
        let guard = scc::Guard::new();
        if let Some(b) = self.map.peek(key, &guard) {
            b.open(|| self.floor(key));
            return Ok(f(b));
        }
        let b = self.insert(key, now)?;
        b.open(|| self.floor(key));
        Ok(f(&b))
    }

    /// Puts a sealed bucket for `key` in the map (or finds the one another
    /// thread put there), opened by whoever finds it first, reading the
    /// floor of its key's slot then. The map builds the bucket under its
    /// entry's lock, after any predecessor for the key was removed (and so
    /// evicted, its floor raised), so the floor could be read here as well;
    /// sealing keeps the rule in one place for every way a bucket is found
    /// (with papaya, which could insert a bucket built before the
    /// predecessor's eviction, it was needed).
    ///
    /// Out of line: inlined, the compiler hoisted the label's SipHash out of
    /// the lookup and ran it on every decision (about 90 of 520 instructions).
    #[cold]
    #[inline(never)]
    fn insert(&self, key: &K, now: Nanos) -> Result<Arc<Bucket>, Refusal> {
        if self.len() >= self.cap && self.evict_idle(now) == 0 && self.len() >= self.cap {
            return Err(Refusal::TooManyKeys {
                scope: self.scope.clone(),
                cap: self.cap,
            });
        }
        let b = match self.map.entry_sync(key.clone()) {
            scc::hash_index::Entry::Occupied(found) => found.get().clone(),
            scc::hash_index::Entry::Vacant(vacant) => {
                let label = format!("{}#{:08x}", self.scope, self.fingerprint(key));
                let b = Arc::new(Bucket::new(label, self.limits.clone()).sealed());
                self.count.fetch_add(1, Ordering::SeqCst);
                vacant.insert_entry(Arc::clone(&b));
                b
            }
        };
        // After the insertion: a concurrent `set_limit` either stored its
        // override before this read or finds this bucket in the map.
        self.apply_overrides(&b);
        self.apply_remembered(key, &b);
        Ok(b)
    }

    /// Charges `key`'s bucket alone (see [`acquire`](super::acquire)), retrying if the bucket is
    /// evicted between lookup and claim.
    pub fn acquire(
        &self,
        key: &K,
        cost: u32,
        now: Nanos,
        max_wait: MaxWait,
    ) -> Result<Grant, Refusal> {
        loop {
            match self.with_bucket(key, now, |b| acquire_one(b, cost, now, max_wait))? {
                // Evicted since the lookup: out of the map, if its evictor
                // has not taken it out yet, and the key looked up again.
                Err(Refusal::Retired { .. }) => self.forget_evicted(key),
                other => return other,
            }
        }
    }

    /// Every bucket the scope holds now (for reports), each once.
    pub fn buckets(&self) -> Vec<Arc<Bucket>> {
        let guard = scc::Guard::new();
        let mut all: Vec<Arc<Bucket>> = self.map.iter(&guard).map(|(_, b)| b.clone()).collect();
        // A table being resized may show an entry twice.
        all.sort_unstable_by_key(|b| Arc::as_ptr(b) as usize);
        all.dedup_by(|a, b| Arc::ptr_eq(a, b));
        all
    }

    /// Every bucket the scope holds now, each marked in flight
    /// ([`KeyedBuckets::bucket_in_flight`]) until its [`InFlight`] is
    /// dropped: for applying something to all of them (a seed's counts and
    /// limits) without an eviction taking what it applies. A bucket evicted
    /// meanwhile is left out: its key's next bucket starts from the scope's
    /// limits, which the caller changes with [`KeyedBuckets::set_limit`]. One
    /// that an eviction is still deciding about is waited for (a few
    /// instructions of another thread): it may stay.
    pub fn buckets_in_flight(&self) -> Vec<InFlight> {
        self.buckets()
            .into_iter()
            .filter(|b| b.mark_unless_evicted())
            .map(InFlight::marked)
            .collect()
    }

    /// Evicts every bucket idle at `now` (none with a request on its way:
    /// [`InFlight`](super::InFlight)); returns how many were evicted.
    pub fn evict_idle(&self, now: Nanos) -> usize {
        let guard = scc::Guard::new();
        let mut evicted = 0;
        for (k, b) in self.map.iter(&guard) {
            // The floor is raised before the head says evicted, so a bucket
            // made for the key once it is seen evicted starts after it.
            if b.retire(now.as_u64(), |until| self.raise_floor(k, until)) {
                self.forget_evicted(k);
                evicted += 1;
            }
        }
        evicted
    }

    /// Buckets made from now on for `key` (and the keys that share its slot)
    /// leave nothing before `until` (the evicted bucket's units stop
    /// counting then).
    pub(super) fn raise_floor(&self, key: &K, until: u64) {
        self.floor_slot(key).fetch_max(until, Ordering::SeqCst);
    }

    /// The instant before which a bucket made now for `key` leaves nothing.
    ///
    /// Out of line, like `insert`: inlined into a lookup, the compiler ran
    /// the key's fingerprint (a SipHash) on every decision, not only when a
    /// bucket is opened (81 instructions a keyed decision, counted).
    #[cold]
    #[inline(never)]
    fn floor(&self, key: &K) -> u64 {
        self.floor_slot(key).load(Ordering::SeqCst)
    }

    fn floor_slot(&self, key: &K) -> &AtomicU64 {
        &self.floors[self.floor_index(key)]
    }

    fn floor_index(&self, key: &K) -> usize {
        // The slots are a power of two: the fingerprint's low bits pick one.
        self.fingerprint(key) as usize & (self.floors.len() - 1)
    }

    /// Takes `key`'s bucket out of the map if it is evicted: whoever finds it
    /// first (its evictor, or a lookup of its key) removes it, and never a
    /// bucket made for the key since (evicted is for good, and the floor was
    /// raised before: a new one may be made).
    #[cold]
    pub(super) fn forget_evicted(&self, key: &K) {
        if self.map.remove_if_sync(key, |b| b.is_evicted()) {
            self.count.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The bucket for `key`, created if needed, marked as having a request
    /// on its way until the [`InFlight`](super::InFlight) is dropped: not
    /// evicted meanwhile, so that what the response teaches it (a 429's
    /// block, say) stays with the key. Take it before the decision and keep
    /// it until the response is observed.
    ///
    /// Finding the key's bucket evicted, it makes a new one; finding it being
    /// evicted (another thread between two steps), it looks again.
    pub fn bucket_in_flight(&self, key: &K, now: Nanos) -> Result<InFlight, Refusal> {
        self.bucket_marked(key, now).map(InFlight::marked)
    }

    /// [`KeyedBuckets::bucket_in_flight`], the mark owned by the caller.
    pub(crate) fn bucket_marked(&self, key: &K, now: Nanos) -> Result<Arc<Bucket>, Refusal> {
        loop {
            let guard = scc::Guard::new();
            let b = match self.map.peek(key, &guard) {
                Some(b) => b.clone(),
                None => self.insert(key, now)?,
            };
            // Marked before it is opened: a sealed bucket is never idle.
            if b.mark_unless_evicted() {
                b.open(|| self.floor(key));
                return Ok(b);
            }
            self.forget_evicted(key);
        }
    }

    fn fingerprint(&self, key: &K) -> u32 {
        // A fixed-key hash: stable across runs, 32 bits, not reversible to a
        // high-entropy API key.
        let h =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(key);
        (h >> 32) as u32 ^ h as u32
    }

    // ---- Run-time limits (added for seeding, src/seeding.rs) ----

    /// The limits the scope was configured with (before [`KeyedBuckets::set_limit`]).
    pub fn configured_limits(&self) -> &Limits {
        &self.limits
    }

    /// The limit of window `index` that buckets created now get: the one set
    /// with [`KeyedBuckets::set_limit`], else the configured one.
    pub fn limit(&self, index: usize) -> Option<u32> {
        let configured = self.limits.quotas().get(index)?.limit();
        let set = self.overrides.get(index)?.load(Ordering::SeqCst);
        Some(if set == 0 { configured } else { set })
    }

    /// Replaces the limit of window `index` in every bucket of the scope and in
    /// the ones created from now on (a server said so: DESIGN.md, contract 5).
    /// What the buckets counted is kept. Returns `false` for an unknown window.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use tower_quota::clock::Nanos;
    /// use tower_quota::ledger::KeyedBuckets;
    /// use tower_quota::quota::Quota;
    ///
    /// let accounts = KeyedBuckets::new("per_account", Quota::per_minute(30), 100);
    /// let old = accounts.bucket(&"acct-1", Nanos::ZERO).expect("room");
    /// assert!(accounts.set_limit(0, NonZeroU32::MIN.saturating_add(24)));
    /// let new = accounts.bucket(&"acct-2", Nanos::ZERO).expect("room");
    /// assert_eq!((old.limit(0), new.limit(0), accounts.limit(0)), (Some(25), Some(25), Some(25)));
    /// ```
    pub fn set_limit(&self, index: usize, limit: NonZeroU32) -> bool {
        let Some(slot) = self.overrides.get(index) else {
            return false;
        };
        slot.store(limit.get(), Ordering::SeqCst);
        for (_, b) in self.map.iter(&scc::Guard::new()) {
            b.set_limit(index, limit);
        }
        true
    }

    /// Remembers `key`'s limits as the server gave them (one per window, 0:
    /// the scope's): a bucket made for `key` after an eviction gets them. At
    /// most as many keys as the scope's cap are remembered.
    pub fn remember_limits(&self, key: &K, limits: &[u32]) {
        let map = self.remembered.pin();
        if map.len() < self.cap || map.contains_key(key) {
            map.insert(key.clone(), limits.into());
        }
    }

    fn apply_remembered(&self, key: &K, bucket: &Bucket) {
        if self.remembered.is_empty() {
            return;
        }
        let map = self.remembered.pin();
        for (i, l) in map.get(key).into_iter().flat_map(|l| l.iter().enumerate()) {
            if let Some(limit) = NonZeroU32::new(*l) {
                if bucket.limit(i) != Some(limit.get()) {
                    bucket.set_limit(i, limit);
                }
            }
        }
    }

    fn apply_overrides(&self, bucket: &Bucket) {
        for (i, slot) in self.overrides.iter().enumerate() {
            if let Some(limit) = NonZeroU32::new(slot.load(Ordering::SeqCst)) {
                if bucket.limit(i) != Some(limit.get()) {
                    bucket.set_limit(i, limit);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::quota::Quota;

    /// A cap of `usize::MAX` ("no cap") sizes the floors without overflow.
    #[test]
    fn any_cap_sizes_the_floors() {
        for (cap, slots) in [
            (0, 64),
            (1, 64),
            (100, 128),
            (4096, 4096),
            (usize::MAX, 4096),
        ] {
            let keys: KeyedBuckets<u64> = KeyedBuckets::new("per_key", Quota::per_second(1), cap);
            assert_eq!(keys.floors.len(), slots, "cap {cap}");
            let g = keys.acquire(&1, 1, Nanos::ZERO, MaxWait::Never);
            assert!(matches!(g, Ok(Grant::Now)), "cap {cap}: {g:?}");
        }
    }

    /// Every bucket, marked: none is evicted while the marks are held, and a
    /// bucket already evicted is not handed out.
    #[test]
    fn buckets_in_flight_are_kept_until_dropped() {
        let quota = Quota::new(3, Duration::from_nanos(1_000)).unwrap_or(Quota::per_second(1));
        let keys: KeyedBuckets<u32> = KeyedBuckets::new("per_key", quota, 16);
        for k in 0..4 {
            assert!(keys.acquire(&k, 1, Nanos::new(100), MaxWait::Never).is_ok());
        }
        let stale = keys.bucket(&0, Nanos::new(100)).expect("room");
        let marked = keys.buckets_in_flight();
        assert_eq!(marked.len(), 4);
        assert_eq!(keys.evict_idle(Nanos::new(5_000)), 0, "all marked");
        drop(marked);
        assert_eq!(keys.evict_idle(Nanos::new(5_000)), 4);
        assert!(stale.is_evicted());
        // Evicted and still in someone's hands: never marked again.
        assert!(!stale.mark_in_flight());
        assert!(keys.buckets_in_flight().is_empty());
    }

    /// A caller whose clock read 500, before an eviction at 2,000 of buckets
    /// whose units counted until 1,100: a key made again is held back until
    /// then, and so is a new key that shares an evicted key's slot; every
    /// other new key goes at once.
    #[test]
    fn an_eviction_holds_back_only_the_keys_of_its_slots() {
        let quota = Quota::new(3, Duration::from_nanos(1_000)).unwrap_or(Quota::per_second(1));
        let keys: KeyedBuckets<u32> = KeyedBuckets::new("per_key", quota, 256);
        assert_eq!(keys.floors.len(), 256);
        for k in 0..16 {
            let g = keys.acquire(&k, 1, Nanos::new(100), MaxWait::Never);
            assert!(matches!(g, Ok(Grant::Now)), "{g:?}");
        }
        assert_eq!(keys.evict_idle(Nanos::new(2_000)), 16);
        let held: Vec<usize> = (0..16).map(|k| keys.floor_index(&k)).collect();
        let stale = Nanos::new(500);
        let mut at_once = 0;
        for k in 1_000..1_200 {
            let g = keys.acquire(&k, 1, stale, MaxWait::Never);
            if held.contains(&keys.floor_index(&k)) {
                assert!(matches!(g, Err(Refusal::WouldWait { .. })), "{k}: {g:?}");
            } else {
                assert!(matches!(g, Ok(Grant::Now)), "{k}: {g:?}");
                at_once += 1;
            }
        }
        // 16 slots of 256: about one new key in 16 shares one.
        assert!(at_once >= 170, "{at_once} of 200 at once");
        for k in 0..16 {
            let g = keys.acquire(&k, 1, stale, MaxWait::Never);
            assert!(matches!(g, Err(Refusal::WouldWait { .. })), "{k}: {g:?}");
        }
    }
}
