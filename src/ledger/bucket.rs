//! A bucket: the windows, block and pacing that one key (a route, an account, an
//! API key) is charged against.
//!
//! A bucket's units form one sorted log shared by all its windows: every request
//! charged to the bucket counts in every window. A decision reads the head,
//! plans the earliest departure `d` from the windows' rings, and commits with one
//! compare-and-swap of the head; nothing on this path takes a lock.

use std::num::NonZeroU32;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::head::{Head, HeadCell};
use super::held::Held;
use super::learned::Learned;
use super::pacer::Pacer;
use super::refusal::Refusal;
use super::widening::Widening;
use super::window::{Ring, Window};
use super::windows::Windows;
use crate::clock::Nanos;
use crate::quota::Limits;

/// `Bucket::in_flight` of a bucket evicted or being evicted: no mark succeeds.
const RETIRED: u32 = u32::MAX;

/// The buckets a request is charged to, with the state each decision reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Snapshot {
    pub(crate) head: Head,
    pub(crate) tat: u64,
}

/// Units claimed in one bucket, as needed to give them back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Claim {
    pub(crate) start: u64,
    pub(crate) cost: u64,
    pub(crate) depart: u64,
    pub(crate) last_before: u64,
    /// The pacer's TAT after and before this claim, if the bucket is paced.
    pub(crate) paced: Option<(u64, u64)>,
    /// The ring values this claim displaced, window by window, if it may be
    /// given back.
    pub(crate) saved: Vec<u64>,
}

impl Claim {
    fn end(&self) -> u64 {
        self.start + self.cost
    }
}

/// Where a bucket stands: what [`Bucket::state`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketState {
    /// One entry per quota, in configuration order.
    pub windows: Vec<WindowState>,
    /// The bucket refuses departures before this instant (after a 429).
    pub blocked_until: Option<Nanos>,
    /// The earliest departure a request of cost 1 would get now.
    pub next_departure: Nanos,
    /// Units charged since the bucket was created (including reservations).
    pub units_charged: u64,
}

/// One window of a [`BucketState`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowState {
    /// The current limit.
    pub limit: u32,
    /// The window's length, with the limiter's safety margin.
    pub window: Duration,
    /// How much of `window` is the safety margin: the server's window, as
    /// configured, is `window - margin`.
    pub margin: Duration,
    /// Whether the window is aligned (fixed) rather than sliding.
    pub fixed: bool,
    /// Units that left inside the window ending now.
    pub used: u64,
    /// Units reserved to leave after now.
    pub reserved: u64,
    /// When the oldest unit counted in `used` stops counting, if any.
    pub frees_at: Option<Nanos>,
    /// How much longer than `window` units count for now, after a response
    /// that came back later than the margin (see [`Bucket::note_latency`]).
    pub widened_by: Duration,
}

/// A rate-limit bucket with one or more windows.
///
/// Create buckets once (for a route table) or through
/// [`KeyedBuckets`](super::KeyedBuckets) (for accounts and API keys), and charge
/// them with [`acquire`](super::acquire).
///
/// ```
/// use tower_quota::clock::Nanos;
/// use tower_quota::ledger::Bucket;
/// use tower_quota::quota::{Limits, Quota};
///
/// let bucket = Bucket::new("GET /v1/campaigns", Limits::from(Quota::per_minute(60)));
/// let state = bucket.state(Nanos::ZERO);
/// assert_eq!(state.windows[0].limit, 60);
/// assert_eq!(state.windows[0].used, 0);
/// ```
#[derive(Debug)]
pub struct Bucket {
    hot: Hot,
    label: Arc<str>,
    observed: AtomicU64,
    blocks: AtomicU64,
    /// Requests charged to the bucket still awaiting their responses
    /// (`in_flight.rs`): while any is, the bucket is not idle. `RETIRED`
    /// while it is evicted or being evicted.
    in_flight: AtomicU32,
    vacancies: OnceLock<Box<papaya::HashMap<u64, Claim>>>,
    /// Per window, the lateness a shared store was last told of (made on
    /// first use: only a limiter with a store tells one).
    told: OnceLock<Box<[Widening]>>,
    /// Per window, units a correction holds beside the log (`held.rs`), made
    /// on first use; decisions read them only before `Hot::held_until`.
    pub(super) held: OnceLock<Box<[Held]>>,
    /// What the server taught this bucket (response path only; decisions
    /// never touch it).
    pub(super) learned: Mutex<Learned>,
}

/// Everything a decision reads, in three adjacent cache lines: the fields
/// that rarely change and the first window (inline: most keyed buckets have
/// one) on the first two, the head every decision writes alone on the third.
/// Measured both ways (BENCHMARKS.md): with the fields on the head's line, two
/// threads on one bucket took 94 ns a decision instead of 60 (every write
/// invalidated what the other thread was reading). The inline window saves a
/// keyed decision one dependent cache miss ("Keyed decisions, counted" in
/// BENCHMARKS.md).
#[derive(Debug)]
#[repr(C)]
struct Hot {
    blocked_until: AtomicU64,
    pacer: Option<Box<Pacer>>,
    /// Whether the head may still be [`Head::SEALED`]: read on every lookup
    /// of a keyed bucket.
    sealed: AtomicBool,
    has_fixed: bool,
    /// log2 of the smallest group among the windows that write a ring (0 if
    /// one is exact): groups are powers of two, so where no group of this
    /// size ends, none ends, and a claim writes no ring.
    finest_group: u8,
    /// The longest window, margin included: a unit leaves every window by
    /// then (unless slow responses widened one).
    longest: u64,
    /// No window holds units beside its log (`held.rs`) at or after this
    /// instant: before it, decisions look at the holds (0: none ever).
    held_until: AtomicU64,
    windows: Windows,
    /// Alone on the third line.
    head: HeadCell,
}

impl Bucket {
    /// A bucket named `label` (shown in errors and reports: never put a secret in
    /// it) limited by `limits`.
    pub fn new(label: impl Into<Arc<str>>, limits: impl Into<Limits>) -> Bucket {
        let limits = limits.into();
        let windows = windows_of(&limits);
        Bucket {
            hot: Hot {
                head: HeadCell::new(Head::at(0, 0)),
                blocked_until: AtomicU64::new(0),
                has_fixed: windows.iter().any(Window::is_fixed),
                finest_group: windows
                    .iter()
                    .filter(|w| w.writes())
                    .map(Window::group_shift)
                    .min()
                    .unwrap_or(0),
                longest: windows.iter().map(Window::length).max().unwrap_or(0),
                held_until: AtomicU64::new(0),
                pacer: limits.pacing().map(|p| Box::new(Pacer::new(p))),
                sealed: AtomicBool::new(false),
                windows: Windows::from(windows),
            },
            label: label.into(),
            observed: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            learned: Mutex::new(Learned::default()),
            vacancies: OnceLock::new(),
            told: OnceLock::new(),
            held: OnceLock::new(),
        }
    }

    /// The bucket's windows, in configuration order.
    pub(super) fn window_list(&self) -> &[Window] {
        &self.hot.windows
    }

    /// The bucket's name.
    pub fn label(&self) -> &Arc<str> {
        &self.label
    }

    /// Bytes of state this bucket keeps (its windows' rings included).
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Bucket>() + self.label.len() + self.hot.windows.footprint()
    }

    #[inline]
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            head: self.hot.head.load(),
            tat: self.hot.pacer.as_ref().map_or(0, |p| p.load()),
        }
    }

    /// The earliest departure at or after `from` at which every window has room
    /// for `cost`, given the state in `s`.
    #[inline(always)]
    pub(crate) fn earliest(&self, s: &Snapshot, cost: u64, from: u64) -> Result<u64, Refusal> {
        if s.head.is_evicted() {
            return Err(self.retired());
        }
        if !s.head.has_room_for(cost) {
            return Err(self.exhausted());
        }
        let mut d = from
            .max(s.head.last)
            .max(self.hot.blocked_until.load(Ordering::Acquire));
        if let Some(p) = &self.hot.pacer {
            if cost > p.max_cost() {
                return Err(self.too_costly(cost, p.max_cost()));
            }
            d = d.max(p.earliest(s.tat, cost));
        }
        // Every unit left before `head.last`, the newest: once it has left
        // the longest window, no window need read its ring. A bucket idle
        // for a window (most keys of a keyed scope, most of the time) decides
        // without touching it.
        let idle = s.head.last.saturating_add(self.hot.longest) <= d;
        let holds = d < self.hot.held_until.load(Ordering::Acquire);
        for (i, w) in self.hot.windows.iter().enumerate() {
            let limit = u64::from(w.limit());
            if cost > limit {
                return Err(self.too_costly(cost, limit));
            }
            d = if holds {
                self.earliest_held(i, w, limit, s, cost, d, idle)
            } else {
                w.earliest_within(limit, s.head, cost, d, idle)
            };
        }
        if self.hot.has_fixed {
            d = self.settle_fixed(s, cost, d, idle);
        }
        Ok(d)
    }

    /// Fixed windows move `d` to a boundary, which may fill another window:
    /// looks again until no window moves it.
    #[inline(never)]
    fn settle_fixed(&self, s: &Snapshot, cost: u64, mut d: u64, idle: bool) -> u64 {
        loop {
            let before = d;
            let holds = d < self.hot.held_until.load(Ordering::Acquire);
            for (i, w) in self.hot.windows.iter().enumerate() {
                let limit = u64::from(w.limit());
                d = if holds {
                    self.earliest_held(i, w, limit, s, cost, d, idle)
                } else {
                    w.earliest_within(limit, s.head, cost, d, idle)
                };
            }
            if d == before {
                return d;
            }
        }
    }

    /// [`Window::earliest_within`] for window `i` while the bucket holds
    /// units beside its log (`held.rs`): before their deadline the window
    /// has that much less room; from it on, all of its limit.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn earliest_held(
        &self,
        i: usize,
        w: &Window,
        limit: u64,
        s: &Snapshot,
        cost: u64,
        d: u64,
        idle: bool,
    ) -> u64 {
        let (held, until) = self.held_at(i, d);
        if held == 0 {
            return w.earliest_within(limit, s.head, cost, d, idle);
        }
        if let Some(room) = limit.checked_sub(held).filter(|room| *room >= cost) {
            let a = w.earliest_within(room, s.head, cost, d, idle);
            if a < until {
                return a;
            }
        }
        w.earliest_within(limit, s.head, cost, d.max(until), idle)
    }

    /// The units window `i` holds beside its log at `d`, and until when.
    pub(super) fn held_at(&self, i: usize, d: u64) -> (u64, u64) {
        self.held
            .get()
            .and_then(|h| h.get(i))
            .map_or((0, 0), |h| h.at(d))
    }

    /// Holds `units` in window `i` beside its log until `until`, in place of
    /// a live hold if `fresh` (see `held.rs`); `false` (nothing changed) if
    /// they do not fit the word.
    pub(super) fn hold(&self, i: usize, units: u64, until: u64, now: u64, fresh: bool) -> bool {
        let held = self
            .held
            .get_or_init(|| self.hot.windows.iter().map(|_| Held::default()).collect());
        let Some(deadline) = held.get(i).and_then(|h| h.set(units, until, now, fresh)) else {
            return false;
        };
        // After the hold: a decision that reads the new deadline finds it.
        self.hot.held_until.fetch_max(deadline, Ordering::AcqRel);
        true
    }

    #[cold]
    #[inline(never)]
    fn retired(&self) -> Refusal {
        Refusal::Retired {
            bucket: self.label.clone(),
        }
    }

    #[cold]
    #[inline(never)]
    fn exhausted(&self) -> Refusal {
        Refusal::Exhausted {
            bucket: self.label.clone(),
        }
    }

    #[cold]
    #[inline(never)]
    fn too_costly(&self, cost: u64, limit: u64) -> Refusal {
        Refusal::CostExceedsLimit {
            bucket: self.label.clone(),
            cost,
            limit,
        }
    }

    /// Reads the state again after a lost race, starting from the head that
    /// won it.
    #[inline]
    pub(crate) fn refresh(&self, s: &mut Snapshot, head: Head) {
        s.head = head;
        if let Some(p) = &self.hot.pacer {
            s.tat = p.load();
        }
    }

    /// Takes the pacing slot at `d` (before the head is claimed); `Err` if pacing
    /// no longer allows `d` because another request was paced in between.
    #[inline]
    pub(crate) fn pace(&self, tat: &mut u64, cost: u64, d: u64) -> Result<Option<(u64, u64)>, ()> {
        let Some(p) = &self.hot.pacer else {
            return Ok(None);
        };
        loop {
            if p.earliest(*tat, cost) > d {
                return Err(());
            }
            match p.take(*tat, d, cost) {
                Ok(next) => return Ok(Some((next, *tat))),
                Err(current) => *tat = current,
            }
        }
    }

    /// Gives back a pacing slot taken by [`Bucket::pace`].
    pub(crate) fn unpace(&self, paced: Option<(u64, u64)>) {
        if let (Some(p), Some((after, before))) = (&self.hot.pacer, paced) {
            p.give_back(after, before);
        }
    }

    /// Commits `cost` units departing at `d` if the head is still `s.head`,
    /// for a departure that can no longer be given back (it leaves now).
    #[inline]
    pub(crate) fn commit(&self, s: &Snapshot, cost: u64, d: u64) -> Result<(), Head> {
        self.take_head(s, cost, d)?;
        self.record(s.head.units, cost, d, None);
        Ok(())
    }

    /// Writes the departure `d` of units `first..first + cost` into every
    /// window's ring, keeping what it displaces in `saved` if given.
    #[inline]
    fn record(&self, first: u64, cost: u64, d: u64, mut saved: Option<&mut Vec<u64>>) {
        if Window::end_no_group(self.hot.finest_group, first, cost) {
            return; // in the bounded variant, most claims end no group
        }
        for w in self.hot.windows.iter() {
            w.record(first, cost, d, saved.as_deref_mut());
        }
    }

    #[inline]
    fn take_head(&self, s: &Snapshot, cost: u64, d: u64) -> Result<(), Head> {
        let new = Head {
            units: s.head.units + cost,
            last: s.head.last.max(d),
            pops: s.head.pops,
        };
        self.hot.head.swap_from(s.head, new)
    }

    /// Commits `cost` units departing at `d` if the head is still `s.head`.
    /// With `keep_undo`, remembers what it overwrote so it can be given back.
    #[inline]
    pub(crate) fn claim(
        &self,
        s: &Snapshot,
        cost: u64,
        d: u64,
        paced: Option<(u64, u64)>,
        keep_undo: bool,
    ) -> Result<Claim, Head> {
        self.take_head(s, cost, d)?;
        let mut saved = Vec::new();
        self.record(s.head.units, cost, d, keep_undo.then_some(&mut saved));
        Ok(Claim {
            start: s.head.units,
            cost,
            depart: d,
            last_before: s.head.last,
            paced,
            saved,
        })
    }

    /// Gives back the units of `claim`, which never departed.
    ///
    /// The newest claim pops straight off the head. A claim with newer claims
    /// after it stays counted (later departures were planned around it) and is
    /// remembered as a vacancy, popped as soon as everything after it is gone.
    ///
    /// A vacancy is forgotten (its units stay counted) once it can no longer
    /// pop: when a claim after it departs for good ([`Bucket::settle`]).
    pub(crate) fn release(&self, claim: Claim) {
        self.unpace(claim.paced);
        if self.pop(&claim) {
            self.pop_vacancies_from(claim.start);
            return;
        }
        let end = claim.end();
        let vacancies = self.vacancies.get_or_init(Box::default);
        vacancies.pin().insert(end, claim);
        // The claims after this one may all have popped while we registered.
        fence(Ordering::SeqCst);
        self.pop_vacancies_from(end);
    }

    /// The units of `claim` left for good (its request departed): a claim
    /// given back before it can pop only if every claim after it pops too,
    /// which this one never will, so those vacancies are forgotten.
    pub(crate) fn settle(&self, claim: &Claim) {
        if let Some(vacancies) = self.vacancies.get() {
            let map = vacancies.pin();
            if !map.is_empty() {
                map.retain(|&end, _| end > claim.start);
            }
        }
    }

    fn pop(&self, c: &Claim) -> bool {
        let tail = self.hot.head.load();
        if tail.units != c.end() || tail.last != c.depart {
            return false; // not the newest claim
        }
        let mut saved = c.saved.iter().copied();
        for w in self.hot.windows.iter() {
            w.swap_back(c.start, c.cost, c.depart, &mut saved, true);
        }
        // A new pop count: a decision planned on `tail` (or any head before
        // this pop) can no longer commit (see `head.rs`).
        let before = Head {
            units: c.start,
            last: c.last_before,
            pops: tail.pops.wrapping_add(1),
        };
        if self.hot.head.swap_from(tail, before).is_ok() {
            fence(Ordering::SeqCst);
            return true;
        }
        let mut saved = c.saved.iter().copied();
        for w in self.hot.windows.iter() {
            w.swap_back(c.start, c.cost, c.depart, &mut saved, false);
        }
        false
    }

    fn pop_vacancies_from(&self, mut units: u64) {
        let Some(vacancies) = self.vacancies.get() else {
            return;
        };
        loop {
            let head = self.hot.head.load();
            if head.units != units {
                return;
            }
            let map = vacancies.pin();
            let Some(v) = map.remove(&units).cloned() else {
                return;
            };
            // `pop` itself checks that `v` is the newest claim (units and
            // latest departure), on a head it loads just before swapping.
            if self.pop(&v) {
                units = v.start;
            } else {
                map.insert(v.end(), v);
                return;
            }
        }
    }

    /// The earliest departure at or after `from` at which this bucket alone has
    /// room for `cost`, without charging anything.
    pub fn earliest_departure(&self, cost: u32, from: Nanos) -> Result<Nanos, Refusal> {
        let s = self.snapshot();
        self.earliest(&s, u64::from(cost.max(1)), from.as_u64())
            .map(Nanos::new)
    }

    /// Refuses departures before `until` (after a 429, until `Retry-After`).
    /// Never shortens an existing block.
    pub fn block_until(&self, until: Nanos) {
        self.hot
            .blocked_until
            .fetch_max(until.as_u64(), Ordering::AcqRel);
        self.blocks.fetch_add(1, Ordering::Relaxed);
    }

    /// How many times the bucket was blocked (each 429 from the server blocks it).
    pub fn times_blocked(&self) -> u64 {
        self.blocks.load(Ordering::Relaxed)
    }

    /// The instant before which departures are refused, if it is after `now`.
    pub fn blocked_until(&self, now: Nanos) -> Option<Nanos> {
        let b = self.hot.blocked_until.load(Ordering::Acquire);
        (b > now.as_u64()).then(|| Nanos::new(b))
    }

    /// The number of windows.
    pub fn window_count(&self) -> usize {
        self.hot.windows.len()
    }

    /// The largest limit window `index` was built to keep exactly: its
    /// configured limit, or more if reserved with [`Limits::capacity`] or if
    /// it shares its ring with a larger window of the bucket (exact windows
    /// of one bucket share one ring, sized for the largest).
    pub fn capacity(&self, index: usize) -> Option<u32> {
        self.hot.windows.get(index).map(Window::capacity)
    }

    /// The length of window `index`.
    pub fn window_length(&self, index: usize) -> Option<Duration> {
        self.hot
            .windows
            .get(index)
            .map(|w| Duration::from_nanos(w.length()))
    }

    /// How much of window `index`'s length is the limiter's safety margin.
    pub fn window_margin(&self, index: usize) -> Option<Duration> {
        self.hot.windows.get(index).map(Window::margin)
    }

    /// Where fixed window `index` is anchored; `None` if it slides.
    pub fn anchor(&self, index: usize) -> Option<Nanos> {
        self.hot
            .windows
            .get(index)
            .and_then(Window::anchor)
            .map(Nanos::new)
    }

    /// Records that a request charged to this bucket left at `sent` and its
    /// response (or its transport error) came back at `received`.
    ///
    /// The server counted the request at some instant in between. The margin
    /// covers the usual delay; when the response came back later than that,
    /// the request may have been counted that much later, so every window
    /// holds its units longer by the excess, until one window after
    /// `received` (when that request stops counting at the server whatever
    /// the delay was). In a sliding window a unit therefore frees no earlier
    /// than one window after the response that charged it came back; a fixed
    /// window counts a unit that left up to the margin and the excess before
    /// a boundary in the window after it too. A cold connection or a slow
    /// link does not turn into a 429 at the next window.
    ///
    /// Limits: a request still in flight a whole window after it left is not
    /// covered until its response comes back (the limiter cannot know how late
    /// it will be); and while a widening is live every decision of the window
    /// pays it, not only those after the slow unit (one word per window, no
    /// per-unit state).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_quota::clock::Nanos;
    /// use tower_quota::ledger::{acquire, Bucket, MaxWait};
    /// use tower_quota::quota::Quota;
    ///
    /// let ms = Nanos::from_millis;
    /// let bucket = std::sync::Arc::new(Bucket::new("GET /people", Quota::new(1, Duration::from_millis(100)).unwrap()));
    /// assert!(acquire(&[&bucket], 1, ms(0), MaxWait::Never).is_ok());
    /// assert_eq!(bucket.earliest_departure(1, ms(0)).unwrap(), ms(100));
    /// // Its response took 30 ms: the server may have counted it at 30 ms.
    /// bucket.note_latency(ms(0), ms(30));
    /// assert!(bucket.earliest_departure(1, ms(0)).unwrap() >= ms(130));
    /// ```
    pub fn note_latency(&self, sent: Nanos, received: Nanos) {
        for (index, late) in self.lateness(received.saturating_since(sent)) {
            self.widen(index, late, received);
        }
    }

    /// The windows a response that `took` this long came back late for, and
    /// by how much more than each one's margin allows.
    pub(crate) fn lateness(&self, took: Duration) -> impl Iterator<Item = (usize, Duration)> + '_ {
        self.hot
            .windows
            .iter()
            .enumerate()
            .filter_map(move |(index, w)| {
                Some((index, took.saturating_sub(w.margin()))).filter(|(_, late)| !late.is_zero())
            })
    }

    /// Whether window `index` is held open by a late response at `now`.
    pub(crate) fn is_widened(&self, index: usize, now: Nanos) -> bool {
        self.hot
            .windows
            .get(index)
            .is_some_and(|w| w.widened_at(now.as_u64()).is_some())
    }

    /// Whether a lateness of `late` at `now` in window `index` is news for a
    /// shared store: more than it was last told, or what it was told has less
    /// than half a window to go. If so, it counts as told now. Under a link
    /// that stays slow, every response is late; the store hears of it about
    /// twice a window, not once a response.
    pub(crate) fn late_is_news(&self, index: usize, late: Duration, now: Nanos) -> bool {
        let Some(w) = self.hot.windows.get(index) else {
            return false;
        };
        let told = self.told.get_or_init(|| {
            self.hot
                .windows
                .iter()
                .map(|_| Widening::default())
                .collect()
        });
        let Some(t) = told.get(index) else {
            return false;
        };
        let now = now.as_u64();
        let late = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
        let half = now.saturating_add(w.length() / 2);
        let covered = t
            .at(now)
            .is_some_and(|(extra, until)| extra >= late && until >= half);
        if !covered {
            t.widen(late, now.saturating_add(w.length()), now);
        }
        !covered
    }

    /// Holds window `index`'s units `late` longer, until one window
    /// after `now` (see [`Bucket::note_latency`]; a shared store applies a
    /// lateness another process saw this way).
    pub(crate) fn widen(&self, index: usize, late: Duration, now: Nanos) {
        if let Some(w) = self.hot.windows.get(index) {
            w.widen(late, now.as_u64());
        }
    }

    /// The earliest instant at or after `d` at which units `start..start +
    /// cost`, claimed for a departure at `d`, may leave, given the widening
    /// slow responses asked for since they were claimed (a reservation made
    /// before a slow response came back leaves that much later). Looks only
    /// at units the rings still hold: with more than a ring's headroom
    /// reserved after the claim, the claim leaves as planned.
    pub(crate) fn widened_departure(&self, start: u64, cost: u64, d: u64) -> u64 {
        let head = self.hot.head.load();
        let mut at = d;
        for w in self.hot.windows.iter() {
            let Some((extra, _)) = w.widened_at(d) else {
                continue;
            };
            let Some(back) = (start + cost).checked_sub(u64::from(w.limit()) + 1) else {
                continue;
            };
            if let Some(t) = w.known_time_of(back, head) {
                at = at.max(w.after(t, d, extra));
            }
        }
        at
    }

    /// Records that the server spoke about this bucket in the response to a
    /// request that left at `sent`; `true` if no later request's response has
    /// spoken yet. Responses come back out of order: only the newest may change
    /// a limit.
    pub fn note_observation(&self, sent: Nanos) -> bool {
        self.observed.fetch_max(sent.as_u64(), Ordering::AcqRel) <= sent.as_u64()
    }

    /// The current limit of window `index`.
    pub fn limit(&self, index: usize) -> Option<u32> {
        self.hot.windows.get(index).map(Window::limit)
    }

    /// Changes the limit of window `index` at run time, keeping what was counted.
    ///
    /// Lowering takes effect at the next decision. Raising beyond the capacity the
    /// bucket was built with (see [`Limits::capacity`]) stays safe but admits no
    /// more than that capacity per window. Returns `false` for an unknown window.
    pub fn set_limit(&self, index: usize, limit: NonZeroU32) -> bool {
        match self.hot.windows.get(index) {
            Some(w) => {
                w.set_limit(limit.get());
                true
            }
            None => false,
        }
    }

    /// Where the bucket stands at `now`, without charging anything.
    pub fn state(&self, now: Nanos) -> BucketState {
        let s = self.snapshot();
        let now_ns = now.as_u64();
        let windows = self
            .hot
            .windows
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let reserved = w.units_from(now_ns + 1, s.head);
                let opened = w.units_from(w.opens(now_ns), s.head);
                let logged = opened.saturating_sub(reserved);
                let frees_at = (logged > 0).then(|| {
                    let oldest = s.head.units.saturating_sub(opened);
                    w.frees(w.time_of(oldest, s.head))
                });
                // Units held beside the log count as used until they free.
                let (held, until) = self.held_at(i, now_ns);
                let frees_at = match (frees_at, held > 0) {
                    (Some(f), true) => Some(f.min(until)),
                    (None, true) => Some(until),
                    (f, false) => f,
                };
                let used = logged + held;
                let frees_at = frees_at.map(Nanos::new);
                WindowState {
                    limit: w.limit(),
                    window: Duration::from_nanos(w.length()),
                    margin: w.margin(),
                    fixed: w.is_fixed(),
                    used,
                    reserved,
                    frees_at,
                    widened_by: Duration::from_nanos(w.widened_at(now_ns).map_or(0, |(e, _)| e)),
                }
            })
            .collect();
        let next = self.earliest(&s, 1, now_ns).unwrap_or(u64::MAX);
        BucketState {
            windows,
            blocked_until: self.blocked_until(now),
            next_departure: Nanos::new(next),
            units_charged: if s.head.is_evicted() { 0 } else { s.head.units },
        }
    }

    /// Whether the bucket, as in snapshot `s`, holds nothing worth keeping at
    /// `now`: no request on its way, no unit that still counts in a window (a
    /// fixed window's margin included), and nothing else ([`Bucket::is_quiet`]).
    /// A store that drops such a bucket and makes it again later, no earlier
    /// than its units stop counting, loses nothing.
    pub(super) fn is_idle(&self, s: &Snapshot, now: u64) -> bool {
        // First (Acquire): once the last request on its way is done, every
        // correction its response made is seen below.
        self.in_flight.load(Ordering::Acquire) == 0
            && s.head.last.saturating_add(self.hot.longest) < now
            && s.tat <= now
            && self.is_quiet(now)
    }

    /// What an idle bucket must also be at `now`, none of which moves the
    /// head: no block, no pacing ahead, no widening, no hold.
    fn is_quiet(&self, now: u64) -> bool {
        self.hot.blocked_until.load(Ordering::Acquire) <= now
            && self.hot.pacer.as_ref().is_none_or(|p| p.load() <= now)
            // A late response's units may still count at the server after
            // the ring says they left: kept until the widening ends.
            && self.hot.windows.iter().all(|w| w.widened_at(now).is_none())
            // Units a correction holds beside the log count until their deadline.
            && self.hot.held_until.load(Ordering::Acquire) <= now
    }

    /// Marks an idle bucket as evicted; `false` if it was used meanwhile or a
    /// request is on its way (`in_flight.rs`). Before the head says so,
    /// `stops` learns the instant its last units stop counting in any window:
    /// whoever finds the bucket evicted may make the key a new one, which
    /// must start no earlier.
    pub(crate) fn retire(&self, now: u64, stops: impl FnOnce(u64)) -> bool {
        let s = self.snapshot();
        self.is_idle(&s, now) && self.retire_from(s, now, stops)
    }

    /// [`Bucket::retire`] once `s` was found idle at `now`.
    pub(super) fn retire_from(&self, s: Snapshot, now: u64, stops: impl FnOnce(u64)) -> bool {
        // No request on its way, and from here on none can mark the bucket:
        // eviction and marks meet on this one word.
        if self
            .in_flight
            .compare_exchange(0, RETIRED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        // A caller may have marked the bucket, blocked, widened or held it,
        // and unmarked it again since it was found idle: the count is 0 once
        // more, and none of those moves the head. Its change came before its
        // unmark, which the swap above read: looked for again, now that no
        // mark can come.
        if !self.is_quiet(now) {
            self.in_flight.store(0, Ordering::Release);
            return false;
        }
        stops(s.head.last.saturating_add(self.hot.longest));
        if self.hot.head.swap_from(s.head, Head::EVICTED).is_err() {
            // Charged since the snapshot (by a caller that did not mark it):
            // kept, and open to marks again.
            self.in_flight.store(0, Ordering::Release);
            return false;
        }
        true
    }

    /// Whether the bucket was evicted from its keyed scope (for good: an
    /// evicted head never changes again).
    pub(crate) fn is_evicted(&self) -> bool {
        self.hot.head.load().is_evicted()
    }

    /// One more request charged to the bucket is on its way (see
    /// [`InFlight`](super::InFlight)); `false`, and nothing marked, if the
    /// bucket is evicted or being evicted. Pairs with
    /// [`Bucket::unmark_in_flight`].
    pub(crate) fn mark_in_flight(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                n.checked_add(1).filter(|&n| n < RETIRED)
            })
            .is_ok()
    }

    /// [`Bucket::mark_in_flight`], waiting out an eviction still deciding
    /// about the bucket (a few instructions of another thread, after which
    /// it stays or is evicted); `false`, and nothing marked, once evicted.
    #[inline]
    pub(crate) fn mark_unless_evicted(&self) -> bool {
        loop {
            if self.mark_in_flight() {
                return true;
            }
            if self.is_evicted() {
                return false;
            }
            std::thread::yield_now();
        }
    }

    /// Its response has been observed (or it was dropped): once for every
    /// successful [`Bucket::mark_in_flight`].
    pub(crate) fn unmark_in_flight(&self) {
        // Release: an eviction that finds no request on its way afterwards
        // sees every correction made before this (a block, a widening, a hold).
        let before = self.in_flight.fetch_sub(1, Ordering::Release);
        // An unmark without its mark would wrap to RETIRED (a bucket that
        // takes no mark, and is not evicted: its lookups would wait for good).
        debug_assert!(before != 0 && before != RETIRED, "unmarked without a mark");
    }

    /// Seals a bucket not yet shared: it allows nothing until [`Bucket::open`].
    pub(crate) fn sealed(self) -> Bucket {
        Bucket {
            hot: Hot {
                head: HeadCell::new(Head::SEALED),
                sealed: AtomicBool::new(true),
                ..self.hot
            },
            ..self
        }
    }

    /// Opens a sealed bucket so that it leaves nothing before `start()` (the
    /// instant the bucket it replaces stopped counting); does nothing to an
    /// open one. Called by whoever found the bucket in its map, after finding
    /// it: `start()` then reads a floor at least as new as the eviction of
    /// any bucket the key had before.
    #[inline]
    pub(crate) fn open(&self, start: impl FnOnce() -> u64) {
        if self.hot.sealed.load(Ordering::Acquire) {
            let _ = self.hot.head.swap_from(Head::SEALED, Head::at(0, start()));
            // After the head is open: whoever reads `false` finds it open.
            self.hot.sealed.store(false, Ordering::Release);
        }
    }
}

/// The windows of a bucket limited by `limits`. Windows with one group size
/// (every exact window) share one ring, sized for the largest of them: a unit
/// leaves at one time for all of them, so it is written once, by the first.
fn windows_of(limits: &Limits) -> Vec<Window> {
    let storage = limits.storage_choice();
    let planned: Vec<(u32, u32)> = limits
        .quotas()
        .iter()
        .map(|q| {
            let capacity = limits.reserved_capacity().unwrap_or(0).max(q.limit());
            (storage.group_for(capacity), capacity)
        })
        .collect();
    let mut rings: Vec<(u32, Ring)> = Vec::new();
    limits
        .quotas()
        .iter()
        .zip(&planned)
        .map(|(q, &(group, _))| {
            if let Some((_, ring)) = rings.iter().find(|(g, _)| *g == group) {
                return Window::sharing(q, ring, false);
            }
            let capacity = planned
                .iter()
                .filter(|(g, _)| *g == group)
                .map(|&(_, c)| c)
                .max()
                .unwrap_or(0);
            let ring = Ring::new(group, capacity);
            let w = Window::sharing(q, &ring, true);
            rings.push((group, ring));
            w
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::Quota;

    /// Bounded windows of three group sizes: a claim that ends a group of
    /// any window writes that window's ring, whichever sizes the others
    /// have (a claim skips the rings only where the finest group does not
    /// end). An unwritten slot would read as unknown, and after sixteen laps
    /// as a stale departure.
    #[test]
    fn every_group_a_claim_ends_is_written_in_its_window() {
        let slots = std::num::NonZeroU32::new(4).unwrap_or(std::num::NonZeroU32::MIN);
        let quota =
            |limit, ns| Quota::new(limit, Duration::from_nanos(ns)).unwrap_or(Quota::per_second(1));
        let b = Bucket::new(
            "three",
            Limits::new([quota(32, 1_000), quota(8, 100), quota(128, 4_000)])
                .storage(crate::quota::Storage::Bounded { slots }),
        );
        let shifts: Vec<u8> = b.window_list().iter().map(Window::group_shift).collect();
        let mut distinct = shifts.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "three group sizes: {shifts:?}");
        assert!(b.window_list().iter().all(Window::writes), "three rings");
        let mut t = 0;
        for cost in [1u32, 1, 3, 1, 2, 5, 1, 1, 7, 1, 4, 1, 1, 9, 2, 1].repeat(8) {
            t += 10_000; // every window empty again: every claim leaves now
            let s = b.snapshot();
            assert!(b.commit(&s, u64::from(cost), t).is_ok());
            let head = b.snapshot().head;
            for (w, &shift) in b.window_list().iter().zip(&shifts) {
                let complete = head.units >> shift;
                if complete == 0 {
                    continue;
                }
                // The first unit after the last complete group: the ring
                // knows the group before it.
                let next = complete << shift;
                let known = w.known_time_of(next, head);
                let (group, units) = (complete - 1, head.units);
                assert!(
                    known.is_some(),
                    "shift {shift}: group {group} unwritten at {units}"
                );
                if units - u64::from(cost) < next {
                    assert_eq!(known, Some(t), "shift {shift}: ended by this claim");
                }
            }
        }
    }

    /// A waiter given back mid-queue whose successors then depart: its
    /// vacancy can never pop, and is forgotten (found by review: a thousand
    /// such cancellations kept a thousand vacancies for units long gone).
    #[test]
    fn vacancies_that_can_no_longer_pop_are_forgotten() {
        use crate::ledger::{acquire, Grant, MaxWait};
        let b = Arc::new(Bucket::new(
            "k",
            Quota::new(1, Duration::from_millis(10)).unwrap_or(Quota::per_second(1)),
        ));
        let vacancies = |b: &Bucket| b.vacancies.get().map_or(0, |v| v.len());
        let mut now = 0u64;
        for _ in 0..1_000 {
            let g = acquire(&[&b], 1, Nanos::new(now), MaxWait::Never);
            assert!(matches!(g, Ok(Grant::Now)), "{g:?}");
            let later = || acquire(&[&b], 1, Nanos::new(now), MaxWait::Forever);
            let (Ok(Grant::Later(mid)), Ok(Grant::Later(last))) = (later(), later()) else {
                panic!("two reservations")
            };
            drop(mid); // a timeout: `last` was planned after it
            assert_eq!(vacancies(&b), 1);
            now = last.departure().as_u64() + 20_000_000;
            last.depart();
            assert_eq!(vacancies(&b), 0, "settled by the departure after it");
        }
    }

    #[test]
    fn what_a_decision_reads_fits_three_cache_lines() {
        assert_eq!(std::mem::size_of::<Hot>(), 192);
        assert_eq!(std::mem::align_of::<Hot>(), 64);
        assert_eq!(std::mem::offset_of!(Hot, head), 128);
    }

    #[test]
    fn a_bucket_idle_for_its_longest_window_decides_without_its_rings() {
        let ms = Nanos::from_millis;
        let b = Bucket::new(
            "idle",
            Limits::new([
                Quota::new(2, Duration::from_millis(50)).unwrap_or(Quota::per_second(1)),
                Quota::new(2, Duration::from_millis(100)).unwrap_or(Quota::per_second(1)),
            ]),
        );
        for t in [10, 20] {
            assert!(b.commit(&b.snapshot(), 1, ms(t).as_u64()).is_ok());
        }
        // A time no unit has (later than the newest) put where the next
        // decision would look back: only a decision that reads the ring sees it.
        b.window_list()[0].record(0, 1, ms(500).as_u64(), None);
        let earliest = |d: u64| b.earliest(&b.snapshot(), 1, ms(d).as_u64()).ok();
        assert_eq!(
            earliest(120),
            Some(ms(120).as_u64()),
            "idle: the head decides"
        );
        assert_eq!(
            earliest(119),
            Some(ms(600).as_u64()),
            "not idle: the ring decides"
        );
        // A widened window may count the newest unit past its length: the
        // ring decides again (the widening is kept rounded up, to the safe side).
        b.window_list()[1].widen(Duration::from_millis(30), ms(100).as_u64());
        let widened = earliest(120).unwrap_or(0);
        assert!(
            (ms(630).as_u64()..ms(631).as_u64()).contains(&widened),
            "{widened}"
        );
    }

    #[test]
    fn exact_windows_share_one_ring_that_each_reads_for_itself() {
        let q = |n, ns| Quota::new(n, Duration::from_nanos(ns)).unwrap_or(Quota::per_second(1));
        // A window's footprint counts a ring only in the window that writes it.
        let writers = |b: &Bucket| {
            let alone = std::mem::size_of::<Window>();
            b.hot
                .windows
                .iter()
                .filter(|w| w.footprint() > alone)
                .count()
        };
        let b = Bucket::new("k", Limits::new([q(2, 100), q(3, 1_000)]));
        assert_eq!(writers(&b), 1, "one ring for both exact windows");
        let mut at = Vec::new();
        for _ in 0..4 {
            let s = b.snapshot();
            let d = b.earliest(&s, 1, 0).unwrap_or(u64::MAX);
            assert!(b.commit(&s, 1, d).is_ok());
            at.push(d);
        }
        // unit 2 waits for the 2/100 window, unit 3 for the 3/1000 one
        assert_eq!(at, [0, 0, 100, 1_000]);
        assert_eq!(
            b.capacity(0),
            Some(3),
            "the shared ring keeps 3 back for both"
        );

        // A bounded window (another group size) keeps a ring of its own.
        let mixed = Bucket::new("m", Limits::new([q(10, 100), q(1_000_000, 1_000)]));
        assert_eq!(writers(&mixed), 2);
        assert_eq!(mixed.capacity(0), Some(10));
    }

    #[test]
    fn a_bucket_out_of_units_refuses_instead_of_wrapping() {
        // u32::MAX units a millisecond, each request the whole window: 2^48
        // units take 65,536 requests (18 hours of a real byte budget). The
        // bucket starts 10 requests short of that (ring slots it never wrote
        // read as the latest departure: the safe side).
        let q = Quota::new(u32::MAX, Duration::from_millis(1)).unwrap_or(Quota::per_second(1));
        let b = Bucket::new("bytes", q);
        let cost = u64::from(u32::MAX);
        let start = Head::at(Head::MAX_UNITS / cost * cost - 10 * cost, 0);
        assert!(b.hot.head.swap_from(Head::at(0, 0), start).is_ok());
        let mut d = 0;
        let mut admitted = 0u64;
        let refusal = loop {
            let s = b.snapshot();
            match b.earliest(&s, cost, d) {
                Ok(at) => {
                    assert!(b.commit(&s, cost, at).is_ok(), "one thread: no race");
                    admitted += 1;
                    d = at;
                }
                Err(r) => break r,
            }
            assert!(admitted <= 10, "never refused: the count would wrap");
        };
        assert_eq!(
            refusal,
            Refusal::Exhausted {
                bucket: Arc::from("bytes")
            }
        );
        assert_eq!(admitted, 10, "every request that fits is admitted");
        let units = b.snapshot().head.units;
        assert!(units <= Head::MAX_UNITS && units + cost > Head::MAX_UNITS);
        // Smaller requests still fit what is left; a correction never crosses.
        let left = Head::MAX_UNITS - units;
        assert!(b.earliest(&b.snapshot(), left, d).is_ok());
        assert!(b.earliest(&b.snapshot(), left + 1, d).is_err());
        assert!(refusal.to_string().contains("2^48 units"));
        // A server that says the window is full adds nothing past the bound.
        let later = Nanos::new(d + 10_000_000);
        assert_eq!(b.raise_used(0, u64::from(u32::MAX), later, None), 0);
        assert_eq!(b.snapshot().head.units, units);
    }

    #[test]
    fn a_plan_made_before_a_pop_never_commits_after_it() {
        // 2 per 100 ns. Units 0 and 1 leave at 10 and 20.
        let q = Quota::new(2, Duration::from_nanos(100)).unwrap_or(Quota::per_second(1));
        let b = Bucket::new("k", q);
        let first = b.claim(&b.snapshot(), 1, 10, None, true);
        let second = b.claim(&b.snapshot(), 1, 20, None, true);
        let (Ok(first), Ok(second)) = (first, second) else {
            panic!("both claims fit");
        };
        // A slow decision reads the head and plans unit 2 for 110 (unit 0 at
        // 10 has left the window by then)...
        let stale = b.snapshot();
        assert_eq!(b.earliest(&stale, 1, 20), Ok(110));
        // ...while both are given back and claimed again: unit 0 now leaves
        // at 15, and the head reads (2 units, latest 20) as before.
        b.release(second);
        b.release(first);
        assert!(b.commit(&b.snapshot(), 1, 15).is_ok());
        assert!(b.commit(&b.snapshot(), 1, 20).is_ok());
        let now = b.snapshot();
        assert_eq!((now.head.units, now.head.last), (2, 20));
        // At 110, units at 15 and 20 are still in the window: the stale plan
        // would put 3 in one window of 2.
        assert!(
            b.commit(&stale, 1, 110).is_err(),
            "ABA: stale plan committed"
        );
        assert_eq!(b.earliest(&now, 1, 20), Ok(115));
    }

    #[test]
    fn a_hostile_used_count_fills_the_window_and_no_more() {
        let b = Bucket::new(
            "k",
            Limits::new([Quota::per_minute(10), Quota::per_hour(100)]),
        );
        let added = b.raise_used(0, u64::MAX, Nanos::new(1), None);
        assert_eq!(added, 100, "at most the largest window's capacity");
        let s = b.snapshot();
        assert_eq!((s.head.units, s.head.pops), (100, 0), "pops untouched");
        // The hour holds the 100 until they leave it; the bucket works on.
        let hour = Duration::from_secs(3600).as_nanos() as u64;
        let d = b.earliest(&s, 1, 2).unwrap_or(0);
        assert!(d > hour, "{d}");
        assert!(b.commit(&s, 1, d).is_ok());
        // Told again and again, it adds nothing more while the hour is full.
        for t in 2..100 {
            assert_eq!(b.raise_used(0, u64::MAX, Nanos::new(t), None), 0);
        }
        assert_eq!(b.snapshot().head.units, 101);
    }

    #[test]
    fn a_sealed_bucket_allows_nothing_until_opened_once() {
        let b = Bucket::new("k", Quota::per_second(5)).sealed();
        let s = b.snapshot();
        assert_eq!(b.earliest(&s, 1, 10), Ok(u64::MAX), "sealed: no departure");
        assert_eq!(b.state(Nanos::new(10)).units_charged, 0);
        b.open(|| 1_000);
        assert_eq!(b.hot.head.load(), Head::at(0, 1_000));
        b.open(|| 5_000);
        assert_eq!(
            b.hot.head.load().last,
            1_000,
            "opening twice changes nothing"
        );
        assert_eq!(b.earliest(&b.snapshot(), 1, 10), Ok(1_000));
        assert_eq!(b.earliest(&b.snapshot(), 1, 2_000), Ok(2_000));
    }

    #[test]
    fn retiring_tells_when_the_last_units_stop_counting() {
        let b = Bucket::new("k", Quota::per_second(5));
        let s = b.snapshot();
        assert!(b.claim(&s, 1, 100, None, false).is_ok());
        let mut stops = None;
        assert!(!b.retire(500, |u| stops = Some(u)), "still counting at 500");
        assert_eq!(stops, None);
        assert!(b.retire(2_000_000_000, |u| stops = Some(u)));
        assert_eq!(stops, Some(1_000_000_100));
        assert!(b.snapshot().head.is_evicted());
        assert!(!b.mark_in_flight(), "an evicted bucket takes no mark");
    }
}
