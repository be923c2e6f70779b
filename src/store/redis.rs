//! One allowance for many processes, in Redis.
//!
//! Every decision is one call of one Lua script (`decide.lua`, loaded once and
//! called by hash; reloaded after `NOSCRIPT`), which reads the time from Redis
//! (`TIME`) so that processes with skewed clocks agree, and admits or reserves
//! in every window of every bucket at once. Each window is a sorted set of
//! departures (scores in microseconds on the Redis clock); keys expire when the
//! bucket has been idle for its longest window.
//!
//! A fixed window is sent as how far into its window this process's clock is
//! (its phase), so each call sees the window start on Redis's clock later
//! than the server's by the call's delay in reaching Redis, never earlier.
//! The bucket keeps one start per window, and `decide.lua` (`agreed_start`)
//! says exactly what holds; in short: a start seen earlier is kept at once
//! (it counts more in the current window and opens the next one as much
//! earlier: right when the server's start is that early); a start seen later
//! moves the kept one only once every call for a whole period has seen it
//! later, and then by the least of them, so that a delayed call never moves
//! it and a genuine move of the server's boundary is followed within about a
//! period; meanwhile each call also keeps to the start it saw itself, and a
//! start moved later goes on counting, for a period past the furthest
//! departure then held, what the earlier start counted.
//!
//! When Redis is unreachable, slow (past the timeout), or has more calls in
//! flight than allowed, the [`FaultPolicy`] applies: refuse with
//! [`Refusal::StoreUnavailable`], or decide from this process's share of each
//! limit. Redis is tried again every `retry_every`; before it decides anything
//! for this process again (and with each answer, and every `retry_every` in
//! the background while there are any) the departures made from the
//! share (while it was away, or while too many calls were in flight) are
//! added to it, each as of its own departure (a reservation still ahead, as
//! of when it leaves, as late as a slow response has pushed it), so no
//! window forgets them; while that hand-over runs, the share decides.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;

use crate::clock::{Clock, SystemClock};
use crate::ledger::Refusal;
use crate::store::health::HealthCell;
use crate::store::memory::MemoryStore;
use crate::store::redis_key;
use crate::store::share_record::{BucketDepartures, Leaving, ShareRecord};
use crate::store::{
    Correction, Reserved, SharedBucket, SharedStore, StoreFuture, StoreGrant, StoreHealth,
    StoreStatus,
};

/// What a [`RedisStore`] does while Redis is away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPolicy {
    /// Refuse requests with [`Refusal::StoreUnavailable`]: never risk a 429.
    FailClosed,
    /// Decide from `1/processes` of each limit in this process, and go back to
    /// Redis when it answers again. Every admission from Redis comes with what
    /// each window counts for all processes, and the share counts no less than
    /// its part of that (besides what this process sent itself): `processes`
    /// processes that all fail over stay within the limit together, even when
    /// one of them had sent most of the window, but for what the others sent
    /// after a process's last answer from Redis (at most what was in flight
    /// when it failed) and for their reservations then still ahead (the share
    /// reckons every counted unit to have left at that answer). A share that
    /// counted `U` of a limit `L` keeps `(L - U) / processes` to send until
    /// those units free.
    ///
    /// Shares are whole units, rounded down, so that they never add up to
    /// more than the limit. A window whose limit is smaller than `processes`
    /// has no whole unit for each process: while Redis is away, requests in
    /// its bucket are refused with [`Refusal::StoreUnavailable`] (the reason
    /// names the limit), as under [`FaultPolicy::FailClosed`], rather than
    /// give every process one unit and send up to `processes` in all.
    /// Buckets with larger limits keep going from their shares.
    LocalShare {
        /// How many processes share the allowance.
        processes: NonZeroU32,
    },
}

/// Configures a [`RedisStore`].
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    policy: FaultPolicy,
    timeout: Duration,
    retry_every: Duration,
    max_in_flight: usize,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .field("retry_every", &self.retry_every)
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

/// Why a [`RedisStore`] could not be built.
#[derive(Debug)]
pub struct RedisStoreError(String);

impl std::fmt::Display for RedisStoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot build the Redis store: {}", self.0)
    }
}

impl std::error::Error for RedisStoreError {}

impl RedisStoreBuilder {
    /// Key names start with `prefix` (default `tower-quota`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// What to do while Redis is away (default: [`FaultPolicy::FailClosed`]).
    pub fn policy(mut self, policy: FaultPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How long a decision may take before Redis counts as away (default 50 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long to keep to the fault policy before trying Redis again
    /// (default 1 s).
    pub fn retry_every(mut self, every: Duration) -> Self {
        self.retry_every = every;
        self
    }

    /// The most calls in flight at once; past it, the fault policy applies
    /// instead of a queue (default 4096).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// The clock the limiter uses, when it is not the system's: fixed windows
    /// are sent to Redis as how far into its window this clock is, so that
    /// processes whose clocks disagree agree on where windows start.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The store. It connects on first use (and reconnects by itself), so
    /// Redis may be down when it is built. Must be called within a tokio
    /// runtime.
    pub fn build(self) -> Result<Arc<RedisStore>, RedisStoreError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RedisStoreError("no tokio runtime is running".into()));
        }
        // The URL may hold a password: errors name only what kind of problem
        // it was.
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| RedisStoreError(format!("invalid Redis URL ({:?})", e.kind())))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(self.retry_every);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| RedisStoreError(format!("{:?}", e.kind())))?;
        let share = match self.policy {
            FaultPolicy::FailClosed => 1,
            FaultPolicy::LocalShare { processes } => processes.get(),
        };
        Ok(Arc::new(RedisStore(Arc::new(Inner {
            conn,
            script: redis::Script::new(include_str!("decide.lua")),
            prefix: self.prefix,
            policy: self.policy,
            timeout: self.timeout,
            retry_every: self.retry_every,
            in_flight: Arc::new(tokio::sync::Semaphore::new(self.max_in_flight)),
            max_in_flight: self.max_in_flight,
            share: MemoryStore::share_of(share, 100_000),
            fallen_back: Mutex::new(ShareRecord::default()),
            handing_over: AtomicBool::new(false),
            catching_up: AtomicBool::new(false),
            origin: Instant::now(),
            down_until: AtomicU64::new(0),
            health: HealthCell::new(),
            seed: fastrand::u64(..),
            next: AtomicU64::new(0),
            clock: self.clock,
        }))))
    }
}

/// A [`SharedStore`] in Redis.
///
/// Every decision is one call of one Lua script (loaded once and called by
/// hash; reloaded after `NOSCRIPT`), which reads the time from Redis (`TIME`)
/// and admits or reserves in every window of every bucket at once. Each window
/// is a sorted set of departures; keys are `prefix:scope:` and a salted SHA-256
/// of the bucket's name, and expire when idle. While Redis is unreachable, slow
/// or overloaded, the [`FaultPolicy`] applies; Redis is tried again every
/// `retry_every`, and the departures the local share admitted are handed to it
/// when it answers. [`SharedStore::status`] tells where it stands.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::num::NonZeroU32;
/// use tower_quota::store::{FaultPolicy, RedisStore};
/// use tower_quota::quota::Quota;
/// use tower_quota::scope::KeySource;
/// use tower_quota::Limiter;
///
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .prefix("crm-sync")
///     .policy(FaultPolicy::LocalShare { processes: NonZeroU32::new(4).unwrap() })
///     .build()?;
/// let limiter = Limiter::builder()
///     .per_api_key(KeySource::header("x-api-key"), Quota::per_minute(600), 10_000)
///     .shared(store)
///     .build();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RedisStore(Arc<Inner>);

struct Inner {
    conn: ConnectionManager,
    script: redis::Script,
    prefix: String,
    policy: FaultPolicy,
    timeout: Duration,
    retry_every: Duration,
    in_flight: Arc<tokio::sync::Semaphore>,
    max_in_flight: usize,
    /// This process's share: the fallback, mirroring what Redis admitted.
    share: MemoryStore,
    /// Departures decided from the share (Redis away, or too many calls in
    /// flight), to hand to Redis before it next decides for this process.
    fallen_back: Mutex<ShareRecord>,
    /// Whether a hand-over of the record to Redis is under way.
    handing_over: AtomicBool,
    /// Whether a task is waiting to hand the record over without a decision
    /// to carry it (see [`keep_handing_over`]).
    catching_up: AtomicBool,
    origin: Instant,
    /// Milliseconds since `origin` until which Redis is not asked.
    down_until: AtomicU64,
    health: HealthCell,
    seed: u64,
    next: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("policy", &self.policy)
            .field("health", &self.health.get())
            .finish_non_exhaustive()
    }
}

/// The most departure times one `add` call tells Redis (two arguments each).
const ADDS_PER_CALL: usize = 1_000;

/// Why a call was not made: more calls in flight than allowed.
const OVERLOADED: &str = "too many calls in flight";

/// Why a decision was not asked of Redis: the share's departures are still
/// being handed to it.
const HANDING_OVER: &str = "the local share's departures are being handed to Redis";

/// Whether a call that failed with `why` means Redis is away: not when it
/// was not made (too many calls in flight, or a hand-over under way).
fn is_outage(why: &str) -> bool {
    why != OVERLOADED && why != HANDING_OVER
}

/// The script's answer: a code, a number, a string.
type Reply = (i64, i64, String);

/// Which op a script call is, and its extra arguments.
enum Op {
    Acquire,
    Depart,
    Release,
    /// A window of the share's departures: per departure time, when it
    /// leaves and its units. How far ahead of now is measured as the call
    /// is made, beside its windows' phases.
    Add(usize, Vec<(Instant, u64)>),
    Raise(usize, u64),
    Block(Duration),
    Limit(usize, u32),
    Late(usize, Duration),
}

impl RedisStore {
    /// A builder for a store at `url` (`redis://host:port/db`).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: "tower-quota".into(),
            policy: FaultPolicy::FailClosed,
            timeout: Duration::from_millis(50),
            retry_every: Duration::from_secs(1),
            max_in_flight: 4096,
            clock: Arc::new(SystemClock::new()),
        }
    }
}

impl Inner {
    fn ticket(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:x}.{n:x}", self.seed)
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn is_down(&self) -> bool {
        self.millis() < self.down_until.load(Ordering::Relaxed)
    }

    /// One call of the script.
    async fn call(
        &self,
        op: &Op,
        id: &str,
        buckets: &[SharedBucket],
        flags: &[u8],
        cost: u32,
        max_wait: Option<Duration>,
    ) -> Result<Reply, &'static str> {
        let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
            return Err(OVERLOADED);
        };
        let mut inv = self.script.prepare_invoke();
        let name = match op {
            Op::Acquire => "acquire",
            Op::Depart => "depart",
            Op::Release => "release",
            Op::Add(..) => "add",
            Op::Raise(..) => "raise",
            Op::Block(_) => "block",
            Op::Limit(..) => "limit",
            Op::Late(..) => "late",
        };
        let max_wait_us = max_wait.map_or(-1, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        // Only a local share to fail over to needs what all processes sent.
        let name = match (op, self.policy) {
            (Op::Acquire, FaultPolicy::LocalShare { .. }) => "acquire:counts",
            (Op::Depart, FaultPolicy::LocalShare { .. }) => "depart:counts",
            _ => name,
        };
        inv.arg(name)
            .arg(id)
            .arg(cost)
            .arg(max_wait_us)
            .arg(1_000u64)
            .arg(buckets.len());
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        for (b, bucket) in buckets.iter().enumerate() {
            let (p, s, i) = (&self.prefix, bucket.scope, &bucket.id);
            inv.key(redis_key::meta(p, s, i));
            inv.arg(flags.get(b).copied().unwrap_or(0))
                .arg(bucket.windows.len());
            for (w, win) in bucket.windows.iter().enumerate() {
                inv.key(redis_key::window(p, s, i, w));
                let margin = win.margin.min(win.length);
                // A fixed window's phase is on the server's boundaries.
                let anchor = win.anchor.map_or(-1, |a| {
                    phase(a, self.clock.to_wall(self.clock.now()), win.length - margin)
                });
                inv.arg(win.limit)
                    .arg(micros(win.length).max(1))
                    .arg(anchor)
                    .arg(micros(margin).min(micros(win.length).max(1) - 1));
            }
        }
        match *op {
            Op::Add(w, ref departures) => {
                inv.arg(w).arg(departures.len());
                let now = Instant::now();
                for &(at, units) in departures {
                    inv.arg(units)
                        .arg(micros(at.saturating_duration_since(now)));
                }
            }
            Op::Raise(w, n) => {
                inv.arg(w).arg(n);
            }
            Op::Block(d) => {
                inv.arg(micros(d));
            }
            Op::Limit(w, l) => {
                inv.arg(w).arg(l);
            }
            Op::Late(w, late) => {
                inv.arg(w).arg(micros(late).max(1));
            }
            _ => {}
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, inv.invoke_async::<Reply>(&mut conn)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                Err("Redis is unreachable")
            }
            Ok(Err(_)) => Err("Redis refused the script"),
            Err(_) => Err("Redis answered too slowly"),
        }
    }

    /// Redis failed: apply the policy from now until `retry_every` from now.
    fn failed(&self, why: &'static str) {
        self.health.errors.fetch_add(1, Ordering::Relaxed);
        let until = self.millis() + u64::try_from(self.retry_every.as_millis()).unwrap_or(1000);
        let was_up = self.down_until.swap(until, Ordering::Relaxed) <= self.millis();
        if was_up {
            self.health.failovers.fetch_add(1, Ordering::Relaxed);
        }
        self.health.set(match self.policy {
            FaultPolicy::FailClosed => StoreHealth::Failing,
            FaultPolicy::LocalShare { .. } => StoreHealth::FailingOver,
        });
        tracing::warn!(reason = why, "shared store unavailable");
    }

    /// Whether there is nothing to hand Redis, none being handed over.
    fn nothing_to_hand_over(&self) -> bool {
        !self.handing_over.load(Ordering::Acquire) && self.fallen().is_empty()
    }
}

/// Redis answered: back to it, handing it what the share admitted meanwhile
/// (a decision made from the share while this call was on its way), and
/// healthy once that is told. If Redis fails the hand-over, it is away again
/// (the answer may also have been a late one, to a call made before it went
/// away). While another hand-over runs, the health is left to it.
async fn answered(inner: &Arc<Inner>, took: Duration) {
    let healthy = if took > inner.timeout / 2 {
        StoreHealth::Degraded
    } else {
        StoreHealth::Connected
    };
    if inner.nothing_to_hand_over() {
        inner.health.set(healthy);
        return;
    }
    match run_hand_over(inner).await {
        None => {}
        Some(Err(why)) if is_outage(why) => inner.failed(why),
        Some(_) => {
            inner.health.set(healthy);
        }
    }
}

/// Before Redis decides for this process: the share's departures are told
/// first. Told only after Redis's answer, they were missing from the very
/// decisions that needed them: the first one after an outage (and any made
/// while the hand-over ran) admitted into windows the share had filled.
///
/// `Err` (with the reason) when Redis failed the hand-over, or while another
/// hand-over runs: the request is then decided by the fault policy, from the
/// share, and its departure is told with the rest.
async fn hand_over_first(inner: &Arc<Inner>) -> Result<(), &'static str> {
    // Decisions made from the share while a round ran are told in the next:
    // a few rounds, each shorter than the last.
    for _ in 0..4 {
        if inner.nothing_to_hand_over() {
            return Ok(());
        }
        match run_hand_over(inner).await {
            None => return Err(HANDING_OVER),
            Some(Err(why)) => {
                if is_outage(why) {
                    inner.failed(why);
                }
                return Err(why);
            }
            Some(Ok(())) => {}
        }
    }
    if inner.nothing_to_hand_over() {
        Ok(())
    } else {
        Err(HANDING_OVER)
    }
}

/// Hands the record to Redis in a task of its own and waits for it (`None`
/// if a hand-over is under way already). A caller that stops waiting for
/// its request (a timeout, a `select!`) drops the wait, not the hand-over,
/// which would lose every departure not yet told.
async fn run_hand_over(inner: &Arc<Inner>) -> Option<Result<(), &'static str>> {
    if inner.handing_over.swap(true, Ordering::AcqRel) {
        return None;
    }
    // Made before the task: dropped unpolled, it still puts the record back
    // and lets the next hand-over start.
    let untold = Untold {
        buckets: inner.fallen().take().into(),
        inner: inner.clone(),
    };
    let handing = hand_over(untold);
    Some(match tokio::runtime::Handle::try_current() {
        Ok(rt) => rt.spawn(handing).await.unwrap_or(Err(HANDING_OVER)),
        Err(_) => handing.await,
    })
}

/// Hands Redis the share's departures, one `add` per bucket and window
/// (per [`ADDS_PER_CALL`] departure times) of those that still count in it,
/// each as of its own departure. Not only after an outage: a request decided
/// from the share because too many calls were in flight is recorded while
/// Redis stays connected, and must be counted there too.
///
/// Each call measures how far ahead its departures leave as it is made:
/// measured once for the whole hand-over, every call after a slow one placed
/// its departures that much later (a fixed window's unit that left just
/// before a boundary counted in the window after it).
///
/// The first call that fails ends it, and what Redis did not take goes back
/// to the record for its next answer: the failing bucket's departures (its
/// windows already told count them again: more, never fewer) and those of the
/// buckets after it. So do they if the hand-over's task is dropped.
async fn hand_over(mut untold: Untold) -> Result<(), &'static str> {
    let now = Instant::now();
    while let Some(told) = untold.buckets.front() {
        let bucket = &told.bucket;
        for (w, win) in bucket.windows.iter().enumerate() {
            for departures in told.adds(win.length, now).chunks(ADDS_PER_CALL) {
                untold
                    .inner
                    .call(
                        &Op::Add(w, departures.to_vec()),
                        &untold.inner.ticket(),
                        std::slice::from_ref(bucket),
                        &[0],
                        1,
                        None,
                    )
                    .await?;
            }
        }
        untold.buckets.pop_front();
    }
    Ok(())
}

/// The buckets a hand-over has yet to tell Redis of. However the hand-over
/// ends, they go back to the record for the next one, and the next one may
/// start.
struct Untold {
    inner: Arc<Inner>,
    buckets: VecDeque<BucketDepartures>,
}

impl Drop for Untold {
    fn drop(&mut self) {
        self.inner.fallen().put_back(self.buckets.drain(..));
        self.inner.handing_over.store(false, Ordering::Release);
    }
}

impl Inner {
    /// The fault policy's answer.
    fn fallback(
        self: &Arc<Self>,
        buckets: &[SharedBucket],
        cost: u32,
        longest: LongestWait,
        why: &'static str,
    ) -> Result<StoreGrant, Refusal> {
        let unavailable = |reason: Arc<str>| Refusal::StoreUnavailable {
            store: Arc::from("redis"),
            reason,
        };
        match self.policy {
            FaultPolicy::FailClosed => Err(unavailable(Arc::from(format!(
                "{why}; the fail-closed policy refuses meanwhile, a local-share policy \
                 would decide from this process's share"
            )))),
            FaultPolicy::LocalShare { processes } => {
                if let Some((bucket, limit)) = below_one_unit(buckets, processes) {
                    return Err(unavailable(Arc::from(format!(
                        "{why}; bucket {bucket}'s limit of {limit} leaves less than one unit \
                         to each of {processes} processes sharing it"
                    ))));
                }
                let (grant, watch) = self.share.decide_watching(
                    buckets,
                    cost,
                    longest.left(),
                    longest.waited(),
                    true,
                )?;
                let now = Instant::now();
                let grant = match (grant, watch) {
                    (StoreGrant::Later(reserved), Some(watch)) => {
                        let planned = now.checked_add(reserved.wait()).unwrap_or(now);
                        let leaving = Leaving::new(planned, watch);
                        self.fallen().note(buckets, cost, planned, Some(&leaving));
                        StoreGrant::Later(Box::new(ShareReserved {
                            reserved,
                            record: RecordedDeparture {
                                inner: self.clone(),
                                leaving,
                                buckets: buckets.to_vec(),
                                cost,
                            },
                        }))
                    }
                    (grant, _) => {
                        let leaves = match &grant {
                            StoreGrant::Now => Duration::ZERO,
                            StoreGrant::Later(r) => r.wait(),
                        };
                        self.note_fallback(buckets, cost, now.checked_add(leaves).unwrap_or(now));
                        grant
                    }
                };
                keep_handing_over(self);
                Ok(grant)
            }
        }
    }

    /// The share's departures (a panic elsewhere leaves the record usable).
    fn fallen(&self) -> MutexGuard<'_, ShareRecord> {
        self.fallen_back
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a departure the share decided in each of `buckets`, at `at`.
    fn note_fallback(&self, buckets: &[SharedBucket], cost: u32, at: Instant) {
        self.fallen().note(buckets, cost, at, None);
    }
}

/// A reservation the share granted: its record follows when it leaves.
struct ShareReserved {
    reserved: Box<dyn Reserved>,
    record: RecordedDeparture,
}

impl Reserved for ShareReserved {
    fn wait(&self) -> Duration {
        self.reserved.wait()
    }

    fn depart(self: Box<Self>) -> StoreFuture {
        let ShareReserved { reserved, record } = *self;
        record.left();
        reserved.depart()
    }
}

/// The record's entry of a share's reservation (see [`Leaving`]).
struct RecordedDeparture {
    inner: Arc<Inner>,
    leaving: Arc<Leaving>,
    buckets: Vec<SharedBucket>,
    cost: u32,
}

impl RecordedDeparture {
    /// The reservation leaves now, as late as slow responses have pushed
    /// it: if Redis was told an earlier departure, it is told this one too.
    fn left(self) {
        if let Some(at) = self.leaving.settle(true) {
            self.inner.fallen().note(&self.buckets, self.cost, at, None);
            keep_handing_over(&self.inner);
        }
    }
}

impl Drop for RecordedDeparture {
    /// Left or dropped, the entry moves no more.
    fn drop(&mut self) {
        let _ = self.leaving.settle(false);
    }
}

/// Makes sure the record reaches Redis even if this process decides nothing
/// more: a process that sent from its share during an outage and then went
/// idle never handed those departures over (the hand-over came only with a
/// decision), and other processes filled the windows they fill. A task
/// tries every `retry_every` while there is anything to hand over; it holds
/// the store weakly, so a dropped store ends it.
fn keep_handing_over(inner: &Arc<Inner>) {
    if inner.catching_up.swap(true, Ordering::AcqRel) {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        inner.catching_up.store(false, Ordering::Release);
        return;
    };
    let (weak, every) = (Arc::downgrade(inner), inner.retry_every);
    rt.spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(inner) = weak.upgrade() else {
                return;
            };
            if inner.nothing_to_hand_over() {
                inner.catching_up.store(false, Ordering::Release);
                // A departure noted meanwhile saw this task still running.
                if inner.nothing_to_hand_over() || inner.catching_up.swap(true, Ordering::AcqRel) {
                    return;
                }
                continue;
            }
            if inner.is_down() {
                continue;
            }
            match run_hand_over(&inner).await {
                Some(Err(why)) if is_outage(why) => inner.failed(why),
                _ => {}
            }
        }
    });
}

/// The first of `buckets` with a window whose limit leaves less than one
/// unit to each of `processes` shares, and that limit.
fn below_one_unit(buckets: &[SharedBucket], processes: NonZeroU32) -> Option<(&str, u32)> {
    buckets.iter().find_map(|b| {
        b.windows
            .iter()
            .find(|w| w.limit < processes.get())
            .map(|w| (&*b.label, w.limit))
    })
}

/// How far into its current window a fixed window with a window starting at
/// `anchor` is at `now`, in microseconds: what the script turns into an
/// anchor on Redis's clock. Only this process's clock enters it, so a clock
/// that is seconds off shifts nothing.
fn phase(anchor: SystemTime, now: SystemTime, length: Duration) -> i64 {
    let w = i128::try_from(length.as_micros())
        .unwrap_or(i128::MAX)
        .max(1);
    let micros = |t: SystemTime| match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_micros()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_micros()).unwrap_or(i128::MAX),
    };
    i64::try_from((micros(now) - micros(anchor)).rem_euclid(w)).unwrap_or(0)
}

/// Whether a correction may take a call in flight: only while at least half of
/// them are free, so that corrections never crowd decisions out.
fn room_for_correction(available: usize, max: usize) -> bool {
    available.saturating_mul(2) >= max
}

/// How long a request may wait in all: from when it asked the store, until
/// its deadline (`None`: any wait). Kept with a reservation, so that a
/// departure that decides again (a slow response widened a window, another
/// bucket filled up) is held to what is left, not given the whole wait again.
#[derive(Clone, Copy, Debug)]
struct LongestWait {
    asked: Instant,
    deadline: Option<Instant>,
}

impl LongestWait {
    /// Asked now, to leave within `max_wait`.
    fn from_now(max_wait: Option<Duration>) -> LongestWait {
        let asked = Instant::now();
        LongestWait {
            asked,
            // Past what an `Instant` holds: any wait.
            deadline: max_wait.and_then(|w| asked.checked_add(w)),
        }
    }

    /// What is left of it now.
    fn left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// How long the request has waited so far.
    fn waited(&self) -> Duration {
        self.asked.elapsed()
    }
}

/// Decides in Redis, or by the fault policy.
async fn decide(
    inner: Arc<Inner>,
    op: Op,
    id: String,
    buckets: Vec<SharedBucket>,
    flags: Vec<u8>,
    cost: u32,
    longest: LongestWait,
) -> Result<StoreGrant, Refusal> {
    if inner.is_down() {
        return inner.fallback(&buckets, cost, longest, "Redis is away (retrying soon)");
    }
    if let Err(why) = hand_over_first(&inner).await {
        return inner.fallback(&buckets, cost, longest, why);
    }
    let started = Instant::now();
    let reply = inner
        .call(&op, &id, &buckets, &flags, cost, longest.left())
        .await;
    let (code, n, s) = match reply {
        Ok(r) => r,
        // Too many calls of ours in flight: this request gets the fault
        // policy, but Redis is not away.
        Err(OVERLOADED) => return inner.fallback(&buckets, cost, longest, OVERLOADED),
        Err(why) => {
            inner.failed(why);
            // The call may have reserved before it failed: give it back.
            release(
                inner.clone(),
                id,
                buckets.clone(),
                vec![1; buckets.len()],
                cost,
            );
            return inner.fallback(&buckets, cost, longest, why);
        }
    };
    answered(&inner, started.elapsed()).await;
    inner.health.decisions.fetch_add(1, Ordering::Relaxed);
    let label = |i: &str| {
        i.parse::<usize>()
            .ok()
            .and_then(|i| buckets.get(i.wrapping_sub(1)))
            .map_or_else(|| Arc::from("shared store"), |b| b.label.clone())
    };
    match code {
        0 if n <= 0 => {
            // The share counts what this process sent and, with a local
            // share to fail over to, learns its part of what all sent.
            let counts = match inner.policy {
                FaultPolicy::LocalShare { .. } => counts_of(&s),
                FaultPolicy::FailClosed => Vec::new(),
            };
            inner.share.mirror(&buckets, cost, &counts);
            Ok(StoreGrant::Now)
        }
        0 => {
            let flags = s
                .bytes()
                .zip(&buckets)
                .map(|(c, b)| if c == b'1' { 2 } else { 1 } + own(b))
                .collect();
            Ok(StoreGrant::Later(Box::new(RedisReserved {
                inner,
                id,
                buckets,
                flags,
                cost,
                longest,
                wait: Duration::from_micros(n.unsigned_abs()),
                done: false,
            })))
        }
        // The whole wait, from when the request asked.
        1 => Err(Refusal::WouldWait {
            bucket: label(&s),
            wait: Duration::from_micros(n.unsigned_abs()).saturating_add(longest.waited()),
        }),
        _ => Err(Refusal::CostExceedsLimit {
            bucket: label(&s),
            cost: u64::from(cost),
            limit: n.unsigned_abs(),
        }),
    }
}

/// What the script says every window counts, all processes together, after
/// an admission (`|c,c;c`: per bucket, per window); `None` where a number
/// does not parse, nothing without the `|`.
fn counts_of(reply: &str) -> Vec<Vec<Option<u64>>> {
    let Some((_, counts)) = reply.split_once('|') else {
        return Vec::new();
    };
    counts
        .split(';')
        .map(|b| b.split(',').map(|n| n.trim().parse().ok()).collect())
        .collect()
}

/// 10 for the request's own buckets (an account's, an API key's), which a
/// waiter always reserves in: the script's flag offset.
fn own(b: &SharedBucket) -> u8 {
    if matches!(b.scope, "account" | "api_key") {
        10
    } else {
        0
    }
}

/// Gives a ticket back, in the background.
fn release(inner: Arc<Inner>, id: String, buckets: Vec<SharedBucket>, flags: Vec<u8>, cost: u32) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let _ = inner
                .call(&Op::Release, &id, &buckets, &flags, cost, None)
                .await;
        });
    }
}

struct RedisReserved {
    inner: Arc<Inner>,
    id: String,
    buckets: Vec<SharedBucket>,
    /// Per bucket: 1 holds the ticket, 2 is deferred to the departure.
    flags: Vec<u8>,
    cost: u32,
    /// The request's longest wait, from when it asked: a departure that
    /// decides again gets only what is left of it.
    longest: LongestWait,
    wait: Duration,
    done: bool,
}

impl Reserved for RedisReserved {
    fn wait(&self) -> Duration {
        self.wait
    }

    fn depart(mut self: Box<Self>) -> StoreFuture {
        self.done = true;
        let (inner, id, buckets, flags) = (
            self.inner.clone(),
            std::mem::take(&mut self.id),
            std::mem::take(&mut self.buckets),
            std::mem::take(&mut self.flags),
        );
        let (cost, longest) = (self.cost, self.longest);
        Box::pin(decide(inner, Op::Depart, id, buckets, flags, cost, longest))
    }
}

impl Drop for RedisReserved {
    fn drop(&mut self) {
        if !self.done {
            release(
                self.inner.clone(),
                std::mem::take(&mut self.id),
                std::mem::take(&mut self.buckets),
                std::mem::take(&mut self.flags),
                self.cost,
            );
        }
    }
}

impl SharedStore for RedisStore {
    fn acquire(
        &self,
        buckets: Vec<SharedBucket>,
        cost: u32,
        max_wait: Option<Duration>,
    ) -> StoreFuture {
        let inner = self.0.clone();
        let id = inner.ticket();
        let flags = buckets.iter().map(own).collect();
        Box::pin(decide(
            inner,
            Op::Acquire,
            id,
            buckets,
            flags,
            cost,
            LongestWait::from_now(max_wait),
        ))
    }

    fn correct(&self, bucket: &SharedBucket, correction: Correction) {
        self.0.share.correct(bucket, correction);
        self.tell_redis(bucket, correction);
    }

    fn correct_used(&self, bucket: &SharedBucket, counts: &[(usize, u64)]) {
        // The share keeps one log per bucket: together. Redis keeps each
        // window apart: one at a time.
        self.0.share.correct_used(bucket, counts);
        for &(window, used) in counts {
            self.tell_redis(bucket, Correction::Used { window, used });
        }
    }

    fn status(&self) -> StoreStatus {
        self.0.health.status("redis")
    }

    fn bucket_id(&self, scope: &str, raw: &[u8]) -> Arc<str> {
        Arc::from(redis_key::bucket_id(&self.0.prefix, scope, raw))
    }
}

impl RedisStore {
    /// Sends a correction to Redis, in the background.
    fn tell_redis(&self, bucket: &SharedBucket, correction: Correction) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // Decisions come first: a correction is dropped while Redis is away or
        // while half the calls allowed in flight are taken.
        if self.0.is_down()
            || !room_for_correction(self.0.in_flight.available_permits(), self.0.max_in_flight)
        {
            return;
        }
        let (inner, bucket) = (self.0.clone(), bucket.clone());
        rt.spawn(async move {
            let op = match correction {
                Correction::Used { window, used } => Op::Raise(window, used),
                Correction::Block { duration } => Op::Block(duration),
                Correction::Limit { window, limit } => Op::Limit(window, limit),
                Correction::Late { window, late } => Op::Late(window, late),
            };
            let id = inner.ticket();
            // Decisions find out for themselves whether Redis is away; a lost
            // correction only leaves the shared count where it was.
            if inner
                .call(&op, &id, std::slice::from_ref(&bucket), &[0], 1, None)
                .await
                .is_err()
            {
                inner.health.errors.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SharedWindow;

    #[test]
    fn corrections_leave_half_the_calls_in_flight_to_decisions() {
        assert!(room_for_correction(4096, 4096));
        assert!(room_for_correction(2048, 4096));
        assert!(!room_for_correction(2047, 4096));
        assert!(!room_for_correction(0, 1));
        assert!(room_for_correction(1, 1));
    }

    #[test]
    fn counts_after_an_admission_are_read_per_bucket_and_window() {
        assert_eq!(
            counts_of("01|3,40,500;7"),
            vec![vec![Some(3), Some(40), Some(500)], vec![Some(7)]]
        );
        assert_eq!(counts_of("|"), vec![vec![None]]);
        assert_eq!(counts_of("0"), Vec::<Vec<Option<u64>>>::new());
        // Untrusted: junk reads as unknown, never as a number or a panic.
        assert_eq!(
            counts_of("|x,-1,18446744073709551616;;9"),
            vec![vec![None, None, None], vec![None], vec![Some(9)]]
        );
    }

    #[test]
    fn the_phase_is_how_far_into_its_window_now_is() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Duration::from_secs(3_600);
        let ms = |n: u64| Duration::from_millis(n);
        assert_eq!(phase(t0, t0 + ms(1_500), hour), 1_500_000);
        // Any window start works as the anchor: before or after now.
        assert_eq!(phase(t0 + hour * 5, t0 + ms(1_500), hour), 1_500_000);
        assert_eq!(phase(t0 - hour * 30, t0 + ms(1_500), hour), 1_500_000);
        // Two clocks 7 s apart, each with the reset on its own reckoning, agree.
        let skew = Duration::from_secs(7);
        assert_eq!(phase(t0 + skew, t0 + ms(1_500) + skew, hour), 1_500_000);
        assert_eq!(phase(t0, t0, Duration::ZERO), 0);
    }

    /// Every decision from the share pruned the whole record under its
    /// mutex: an outage's n decisions cost O(n^2) (10k decisions took 2 s,
    /// then 6 s, 11 s, 14 s in release). 20,000 departures that all still
    /// count must be noted in far less than the 5 s allowed here (each is an
    /// allocation: milliseconds in all).
    #[tokio::test]
    async fn an_outages_departures_are_noted_in_amortised_constant_time() {
        let store = RedisStore::builder("redis://127.0.0.1:1/")
            .policy(FaultPolicy::LocalShare {
                processes: NonZeroU32::MIN,
            })
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let hour = SharedWindow {
            limit: 10_000_000,
            length: Duration::from_secs(3_600),
            anchor: None,
            margin: Duration::ZERO,
        };
        let many = [SharedBucket::new("route", "GET /many", [hour])];
        let started = Instant::now();
        for n in 0..20_000 {
            store.0.note_fallback(&many, 1, Instant::now());
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(5),
                "{n} departures took {took:?}"
            );
        }
    }
}
