//! The limiter: one shared allowance for any number of client stacks.
//!
//! A [`Limiter`] holds the buckets (per route, per account, per API key), the
//! rules for reading rate-limit headers, and the clock. Build one with
//! [`Limiter::builder`], wrap it in an `Arc`, and give it to as many
//! [`QuotaLayer`](crate::QuotaLayer)s and clones as you like: they all draw on the
//! same allowance (tower#794 asks for exactly this).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};

use crate::clock::{Clock, Nanos, TokioClock};
use crate::headers::HeaderRules;
use crate::ledger::{
    acquire, acquire_from, reserve_from, Bucket, Grant, InFlight, KeyedBuckets, MaxWait, Refusal,
    Reservation,
};
use crate::message::HttpRequest;
use crate::quota::Limits;
use crate::report::{Counters, History, Snapshot, Thresholds};
use crate::route::{RouteKey, Router};
use crate::scope::{KeyScope, KeySource};
use crate::store::{SharedBucket, SharedStore, StoreStatus};

type CostFn = dyn Fn(&dyn HttpRequest) -> u32 + Send + Sync;

/// Routes the router does not declare.
#[derive(Debug)]
pub enum OtherRoutes {
    /// Not limited in the route scope (accounts and API keys still apply).
    Unlimited,
    /// One bucket shared by all of them.
    Shared(Limits),
    /// A bucket each, created on first use (seed 004: "falls back to 60 requests /
    /// 60 s" per route), at most `cap` at once.
    Each {
        /// The limits of each.
        limits: Limits,
        /// The most buckets kept at once.
        cap: usize,
    },
}

/// What [`Limiter::decide`] grants.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Charged to every bucket: leave now.
    Now,
    /// Leave at the reservation's departure, after taking room in `deferred`.
    Later {
        reservation: Reservation,
        deferred: Vec<Arc<Bucket>>,
    },
}

/// Which of a request's buckets a response's rate-limit headers describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Target {
    /// The route bucket (the default; for a single API key, seed 004's per-key,
    /// per-route limits are the route buckets).
    #[default]
    Route,
    /// The account bucket.
    Account,
    /// The API-key bucket.
    ApiKey,
}

enum RouteBuckets {
    Unlimited,
    Shared(Arc<Bucket>),
    Each(Box<KeyedBuckets<String>>),
}

/// The buckets one request is charged to.
#[derive(Debug, Default)]
pub(crate) struct Charged {
    pub(crate) buckets: Vec<Arc<Bucket>>,
    /// The same buckets as the shared store names them (shared mode only).
    pub(crate) shared: Vec<SharedBucket>,
    route: Option<usize>,
    account: Option<usize>,
    api_key: Option<usize>,
    /// The keyed buckets among them (a bit per index in `buckets`), marked
    /// in flight until the response has been observed (its corrections must
    /// land in the bucket the key goes on using; see `ledger::InFlight`).
    /// Unmarked when the charge is dropped.
    in_flight: u8,
}

impl Charged {
    /// Adds `b`, a keyed scope's bucket marked in flight by its lookup: the
    /// charge owns the mark.
    fn push_keyed(&mut self, b: Arc<Bucket>) {
        match Self::bit(self.buckets.len()) {
            Some(bit) => self.in_flight |= bit,
            // Never: a request has at most four buckets (route, shared,
            // account, key). Unmarked, it would only be evictable.
            None => b.unmark_in_flight(),
        }
        self.buckets.push(b);
    }

    fn bit(index: usize) -> Option<u8> {
        u32::try_from(index).ok().and_then(|i| 1u8.checked_shl(i))
    }
}

impl Drop for Charged {
    fn drop(&mut self) {
        for (i, b) in self.buckets.iter().enumerate() {
            if Self::bit(i).is_some_and(|bit| self.in_flight & bit != 0) {
                b.unmark_in_flight();
            }
        }
    }
}

impl Charged {
    /// The charged buckets, `t`'s first.
    pub(crate) fn by_preference(&self, t: Target) -> impl Iterator<Item = &Arc<Bucket>> {
        let first = self.target(t);
        first.into_iter().chain(
            self.buckets
                .iter()
                .filter(move |b| first.is_none_or(|f| !Arc::ptr_eq(f, b))),
        )
    }

    /// The shared store's name for local bucket `b`.
    pub(crate) fn shared_of(&self, b: &Arc<Bucket>) -> Option<&SharedBucket> {
        let i = self.buckets.iter().position(|x| Arc::ptr_eq(x, b))?;
        self.shared.get(i)
    }

    pub(crate) fn target(&self, t: Target) -> Option<&Arc<Bucket>> {
        let i = match t {
            Target::Route => self.route,
            Target::Account => self.account,
            Target::ApiKey => self.api_key,
        };
        i.and_then(|i| self.buckets.get(i))
    }
}

/// The shared state of every [`QuotaLayer`](crate::QuotaLayer) built from it.
pub struct Limiter<C = TokioClock> {
    pub(crate) clock: C,
    router: Option<Box<dyn Router>>,
    routes: Vec<Arc<Bucket>>,
    other: RouteBuckets,
    accounts: Option<KeyScope>,
    api_keys: Option<KeyScope>,
    pub(crate) rules: HeaderRules,
    pub(crate) host_rules: Vec<(String, HeaderRules)>,
    pub(crate) max_wait: MaxWait,
    pub(crate) rate_limited: Vec<StatusCode>,
    cost: Option<Arc<CostFn>>,
    pub(crate) block_without_headers: Duration,
    pub(crate) target: Target,
    pub(crate) offset_ms: std::sync::atomic::AtomicI64,
    pub(crate) history: History,
    /// Routes the configuration did not declare but the server reported
    /// limits for (through a seed), when undeclared routes are otherwise
    /// unlimited or shared: the server is the authority.
    reported: papaya::HashMap<String, Arc<Bucket>, foldhash::fast::RandomState>,
    margin: Option<Duration>,
    /// Whether slow responses widen the windows (see `hold_until_response`).
    pub(crate) hold_until_response: bool,
    pub(crate) shared: Option<Arc<dyn SharedStore>>,
}

impl<C> fmt::Debug for Limiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("routes", &self.routes.len())
            .field("max_wait", &self.max_wait)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Limiter<TokioClock> {
    /// A builder with tokio's clock.
    pub fn builder() -> LimiterBuilder<TokioClock> {
        LimiterBuilder::new(TokioClock::new())
    }
}

impl<C: Clock> Limiter<C> {
    /// The clock every decision reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Requests answered in the last 24 hours and the last 30 days, and how many
    /// of them the server rate-limited (seed 002's summary, seed 003's chart),
    /// kept without polling anyone.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Where every bucket stands now: usage against limits, health levels,
    /// waiters, blocks and the 429s each has seen. Cheap enough to take while
    /// traffic flows: it reads each bucket once and charges nothing.
    pub fn snapshot(&self, thresholds: &Thresholds) -> Snapshot {
        let mut all: Vec<(&str, Arc<Bucket>)> =
            self.routes.iter().map(|b| ("route", b.clone())).collect();
        match &self.other {
            RouteBuckets::Shared(b) => all.push(("route", b.clone())),
            RouteBuckets::Each(k) => all.extend(k.buckets().into_iter().map(|b| ("route", b))),
            RouteBuckets::Unlimited => {}
        }
        all.extend(
            self.reported
                .pin()
                .iter()
                .map(|(_, b)| ("route", b.clone())),
        );
        if let Some(s) = &self.accounts {
            all.extend(s.buckets().into_iter().map(|b| ("per_account", b)));
        }
        if let Some(s) = &self.api_keys {
            all.extend(s.buckets().into_iter().map(|b| ("per_api_key", b)));
        }
        let rows: Vec<(&str, &Bucket, Counters)> = all
            .iter()
            .map(|(scope, b)| {
                let counters = Counters {
                    rate_limited: b.times_blocked(),
                };
                (*scope, &**b, counters)
            })
            .collect();
        let mut snapshot = Snapshot::of(&rows, self.clock.now(), thresholds);
        snapshot.store = self.store_status();
        snapshot
    }

    /// The shared store's status, if the allowance is shared
    /// ([`LimiterBuilder::shared`]).
    pub fn store_status(&self) -> Option<StoreStatus> {
        self.shared.as_ref().map(|s| s.status())
    }

    /// The buckets of the declared routes, in the router's order.
    pub fn route_buckets(&self) -> &[Arc<Bucket>] {
        &self.routes
    }

    /// The route bucket for `method` and `path`, if any (for tests and reports).
    pub fn route_bucket(&self, method: &Method, path: &str) -> Option<Arc<Bucket>> {
        let router = self.router.as_ref()?;
        match router.route(method, path)? {
            RouteKey::Known(id) => self.routes.get(id.index()).cloned(),
            RouteKey::Other(key) => self.undeclared(key, self.clock.now(), false).ok()?.0,
        }
    }

    /// The buckets of an undeclared route: its own (an `Each` bucket, or one the
    /// server reported) or the shared one, and the shared ceiling too when the
    /// route also has its own from the server. An `Each` bucket comes marked
    /// in flight if `charge`, and the third value says so (the caller then
    /// owns the mark).
    fn undeclared(
        &self,
        key: std::borrow::Cow<'_, str>,
        now: Nanos,
        charge: bool,
    ) -> Result<RouteCharge, Refusal> {
        Ok(match (&self.other, self.reported_route(&key)) {
            (RouteBuckets::Each(k), _) if charge => {
                (Some(k.bucket_marked(&key.into_owned(), now)?), None, true)
            }
            (RouteBuckets::Each(k), _) => (Some(k.bucket(&key.into_owned(), now)?), None, false),
            (RouteBuckets::Shared(shared), Some(own)) => (Some(own), Some(shared.clone()), false),
            (RouteBuckets::Unlimited, own) => (own, None, false),
            (RouteBuckets::Shared(b), None) => (Some(b.clone()), None, false),
        })
    }

    /// The buckets `req` is charged to.
    pub(crate) fn charge(&self, req: &dyn HttpRequest, now: Nanos) -> Result<Charged, Refusal> {
        let mut c = Charged::default();
        c.buckets.reserve_exact(3);
        if let Some(router) = &self.router {
            let (bucket, shared_too, marked) = match router.route(req.method(), req.path()) {
                Some(RouteKey::Known(id)) => (self.routes.get(id.index()).cloned(), None, false),
                Some(RouteKey::Other(key)) => self.undeclared(key, now, true)?,
                // Not rate limited (the usage endpoints, say): charged to no
                // scope at all, so a refresh is never held back by the quotas
                // it refreshes.
                None => return Ok(c),
            };
            if let Some(b) = bucket {
                c.route = Some(c.buckets.len());
                if marked {
                    c.push_keyed(b);
                } else {
                    c.buckets.push(b);
                }
            }
            c.buckets.extend(shared_too);
        }
        if let Some(store) = &self.shared {
            for b in &c.buckets {
                let id = store.bucket_id("route", b.label().as_bytes());
                c.shared.push(SharedBucket::of("route", id, b, &self.clock));
            }
        }
        for (scope, is_account) in [(&self.accounts, true), (&self.api_keys, false)] {
            let Some(scope) = scope else { continue };
            if let Some(b) = scope.bucket_marked(req, now)? {
                *(if is_account {
                    &mut c.account
                } else {
                    &mut c.api_key
                }) = Some(c.buckets.len());
                // In the charge at once, which owns its mark from here on.
                c.push_keyed(b);
                if let (Some(store), Some(raw), Some(b)) =
                    (&self.shared, scope.raw_key(req), c.buckets.last())
                {
                    let id = store.bucket_id(scope.name(), &raw);
                    c.shared
                        .push(SharedBucket::of(scope.name(), id, b, &self.clock));
                }
            }
        }
        Ok(c)
    }

    /// The bucket of an undeclared route the server reported, if any (only
    /// looked up once the server has reported one).
    fn reported_route(&self, key: &str) -> Option<Arc<Bucket>> {
        if self.reported.is_empty() {
            return None;
        }
        self.reported.pin().get(key).cloned()
    }

    /// The bucket of undeclared route `label`, made with `limits` (padded like
    /// every configured window) if the server reports it for the first time
    /// and fewer than `cap` routes are reported; `None` past the cap (two
    /// seeds applied at once may pass it by a route or two).
    pub(crate) fn report_route(
        &self,
        label: &str,
        limits: Limits,
        cap: usize,
    ) -> Option<Arc<Bucket>> {
        let reported = self.reported.pin();
        if let Some(bucket) = reported.get(label) {
            return Some(bucket.clone());
        }
        if reported.len() >= cap {
            return None;
        }
        let limits = pad(limits, self.margin);
        let bucket =
            reported.get_or_insert_with(label.to_owned(), || Arc::new(Bucket::new(label, limits)));
        Some(bucket.clone())
    }

    pub(crate) fn cost_of(&self, req: &dyn HttpRequest) -> u32 {
        self.cost.as_ref().map_or(1, |f| f(req).max(1))
    }

    /// Whether a shared store decides for `charged` after this process.
    pub(crate) fn asks_store(&self, charged: &Charged) -> bool {
        self.shared.is_some() && !charged.shared.is_empty()
    }

    /// What is left at `now` of the longest wait for a request first
    /// decided at `asked`.
    pub(crate) fn max_wait_left(&self, asked: Nanos, now: Nanos) -> MaxWait {
        match self.max_wait {
            MaxWait::Up(d) => MaxWait::Up(d.saturating_sub(now.saturating_since(asked))),
            other => other,
        }
    }

    /// The refusal for a request first decided at `asked` that may now leave
    /// only at `at`, if that is past the longest wait.
    pub(crate) fn past_max_wait(
        &self,
        charged: &Charged,
        asked: Nanos,
        at: Nanos,
    ) -> Option<Refusal> {
        let cap = self.max_wait.limit()?;
        let wait = at.saturating_since(asked);
        (wait > cap).then(|| Refusal::WouldWait {
            bucket: charged
                .buckets
                .first()
                .map_or_else(|| Arc::from("(no bucket)"), |b| b.label().clone()),
            wait,
        })
    }

    /// Admits `charged` now, or reserves its departure.
    ///
    /// A request charged to several buckets that must wait reserves in the
    /// buckets that bind it (whose own earliest departure is the request's) and
    /// in its own account and API-key buckets, and takes the others when it
    /// leaves ([`Admission::Later::deferred`]). Holding a place in, say, the
    /// shared global bucket while waiting for its own account would make every
    /// other account queue behind it there.
    ///
    /// `asked` is when the request was first decided: the limiter's
    /// [`MaxWait`] caps the whole wait from then, however often a 429 or a
    /// slow response sends it back to the queue.
    pub(crate) fn decide(
        &self,
        charged: &Charged,
        cost: u32,
        asked: Nanos,
        now: Nanos,
    ) -> Result<Admission, Refusal> {
        let max_wait = self.max_wait_left(asked, now);
        // A shared store decides after this process: until it has, even a
        // request with room here only holds it, and gives it back if the
        // store refuses (nothing stays charged for a request not sent).
        let hold = self.asks_store(charged);
        let take = |buckets: &[Arc<Bucket>], not_before: Nanos, max_wait: MaxWait| {
            if hold {
                reserve_from(buckets, cost, now, not_before, max_wait).map(Grant::Later)
            } else {
                acquire_from(buckets, cost, now, not_before, max_wait)
            }
        };
        let all = &charged.buckets;
        if all.len() < 2 {
            return match take(all, now, max_wait)? {
                Grant::Now => Ok(Admission::Now),
                Grant::Later(reservation) => Ok(Admission::Later {
                    reservation,
                    deferred: Vec::new(),
                }),
            };
        }
        match take(all, now, MaxWait::Never) {
            Ok(Grant::Now) => return Ok(Admission::Now),
            Ok(Grant::Later(reservation)) => {
                return Ok(Admission::Later {
                    reservation,
                    deferred: Vec::new(),
                })
            }
            Err(Refusal::WouldWait { .. }) => {}
            Err(other) => return Err(other),
        }
        let mut earliest = Vec::with_capacity(all.len());
        for b in all {
            earliest.push(b.earliest_departure(cost, now)?);
        }
        let d = earliest.iter().copied().max().unwrap_or(now);
        // The request's own buckets (its account's, its API key's) are always
        // reserved: only its own later requests queue behind it there, and
        // they must, or they would plan around a departure they cannot see
        // and give back a shared place at their turn that nobody then takes.
        let own = |i: usize| charged.account == Some(i) || charged.api_key == Some(i);
        let (binding, deferred): (Vec<_>, Vec<_>) = all
            .iter()
            .zip(&earliest)
            .enumerate()
            .partition(|(i, (_, e))| **e == d || own(*i));
        let binding: Vec<Arc<Bucket>> = binding.into_iter().map(|(_, (b, _))| b.clone()).collect();
        let deferred: Vec<Arc<Bucket>> =
            deferred.into_iter().map(|(_, (b, _))| b.clone()).collect();
        // Never earlier than `d`: a bucket that gained room meanwhile must not
        // let the request leave before the others can take it.
        match take(&binding, d, max_wait)? {
            Grant::Now => match acquire(&deferred, cost, now, MaxWait::Never)? {
                Grant::Now => Ok(Admission::Now),
                Grant::Later(reservation) => Ok(Admission::Later {
                    reservation,
                    deferred: Vec::new(),
                }),
            },
            Grant::Later(reservation) => Ok(Admission::Later {
                reservation,
                deferred,
            }),
        }
    }

    /// Which header rules apply to `host`: an index for [`Limiter::rules_at`].
    pub(crate) fn rules_for(&self, host: Option<&str>) -> usize {
        host.and_then(|h| {
            self.host_rules
                .iter()
                .position(|(name, _)| name.eq_ignore_ascii_case(h))
        })
        .map_or(0, |i| i + 1)
    }

    pub(crate) fn rules_at(&self, index: usize) -> &HeaderRules {
        match index.checked_sub(1).and_then(|i| self.host_rules.get(i)) {
            Some((_, r)) => r,
            None => &self.rules,
        }
    }

    // ---- Accessors for seeding (src/seeding.rs) ----

    /// The router, if routes are configured.
    pub(crate) fn router(&self) -> Option<&dyn Router> {
        self.router.as_deref()
    }

    /// The one bucket of undeclared routes ([`OtherRoutes::Shared`]).
    pub(crate) fn shared_other_bucket(&self) -> Option<&Arc<Bucket>> {
        match &self.other {
            RouteBuckets::Shared(b) => Some(b),
            _ => None,
        }
    }

    /// The buckets of undeclared routes, one each ([`OtherRoutes::Each`]).
    pub(crate) fn each_other_buckets(&self) -> Option<&KeyedBuckets<String>> {
        match &self.other {
            RouteBuckets::Each(k) => Some(k),
            _ => None,
        }
    }

    /// The per-account buckets that exist now, marked in flight until
    /// dropped (kept from eviction while something is applied to them);
    /// `None` without an account scope.
    pub(crate) fn account_buckets(&self) -> Option<Vec<InFlight>> {
        self.accounts
            .as_ref()
            .map(|s| s.keyed().buckets_in_flight())
    }

    pub(crate) fn account_scope(&self) -> Option<&KeyedBuckets<u64>> {
        self.accounts.as_ref().map(KeyScope::keyed)
    }
}

/// Configures a [`Limiter`].
///
/// ```
/// use std::time::Duration;
/// use tower_quota::{Limiter, OtherRoutes};
/// use tower_quota::ledger::MaxWait;
/// use tower_quota::quota::{Limits, Quota};
/// use tower_quota::route::Templates;
/// use tower_quota::scope::KeySource;
///
/// let limiter = Limiter::builder()
///     .routes(Templates::seed004(), |_| None, OtherRoutes::Each { limits: Quota::per_minute(60).into(), cap: 1000 })
///     .per_account(KeySource::header("x-account-id"), Quota::per_minute(25), 10_000)
///     .max_wait(MaxWait::Up(Duration::from_secs(30)))
///     .build();
/// assert!(limiter.route_buckets().len() > 5);
/// ```
pub struct LimiterBuilder<C> {
    clock: C,
    router: Option<Box<dyn Router>>,
    route_limits: Vec<Limits>,
    other: OtherRoutes,
    accounts: Option<(KeySource, Limits, usize)>,
    api_keys: Option<(KeySource, Limits, usize)>,
    rules: HeaderRules,
    host_rules: Vec<(String, HeaderRules)>,
    max_wait: MaxWait,
    rate_limited: Vec<StatusCode>,
    cost: Option<Arc<CostFn>>,
    block_without_headers: Duration,
    target: Target,
    margin: Option<Duration>,
    hold_until_response: bool,
    shared: Option<Arc<dyn SharedStore>>,
}

/// A route's own bucket, the shared ceiling it also counts against, and
/// whether the bucket came marked in flight (`Limiter::undeclared`).
type RouteCharge = (Option<Arc<Bucket>>, Option<Arc<Bucket>>, bool);

/// The default safety margin: 1 % of the window, at most 50 ms.
fn default_margin(window: Duration) -> Duration {
    (window / 100).min(Duration::from_millis(50))
}

/// `limits` with every window lengthened by `margin`, or by the default.
fn pad(limits: Limits, margin: Option<Duration>) -> Limits {
    match margin {
        Some(m) => limits.padded(|_| m),
        None => limits.padded(default_margin),
    }
}

impl<C: Clock> LimiterBuilder<C> {
    fn new(clock: C) -> Self {
        LimiterBuilder {
            clock,
            router: None,
            route_limits: Vec::new(),
            other: OtherRoutes::Unlimited,
            accounts: None,
            api_keys: None,
            rules: HeaderRules::standard(),
            host_rules: Vec::new(),
            max_wait: MaxWait::Forever,
            rate_limited: vec![StatusCode::TOO_MANY_REQUESTS],
            cost: None,
            block_without_headers: Duration::from_secs(1),
            target: Target::Route,
            margin: None,
            hold_until_response: true,
            shared: None,
        }
    }

    /// Shares the allowance with every process that uses the same `store`
    /// (e.g. a `RedisStore`, feature `redis`): each request is
    /// decided here first, then by the store, for all of them.
    pub fn shared(mut self, store: Arc<impl SharedStore>) -> Self {
        self.shared = Some(store);
        self
    }

    /// Lengthens every window by `margin` so that jitter in the time requests
    /// take to reach the server cannot land two inside one of its windows
    /// (default: 1 % of each window, at most 50 ms; at most 1 % of the allowance).
    pub fn margin(mut self, margin: Duration) -> Self {
        self.margin = Some(margin);
        self
    }

    /// Whether a unit stays counted until one window after its *response*
    /// came back, when that is later than its departure plus the margin
    /// (default: yes).
    ///
    /// The server counts a request when it arrives, which may be any time
    /// before its response. With this on, a response that took longer than
    /// the margin (a cold connection, a TLS handshake, a congested link)
    /// holds every window of its buckets open that much longer, until
    /// the request stops counting at the server, and reservations made
    /// meanwhile leave that much later: the next window's requests cannot
    /// reach the server while it still counts the slow one. The cost is the
    /// excess over the margin, once per window after a slow response; on a
    /// link whose every response takes longer than the margin, the allowance
    /// used falls to about `window / (window + round trip)`. Off, only the
    /// margin covers the delay.
    pub fn hold_until_response(mut self, hold: bool) -> Self {
        self.hold_until_response = hold;
        self
    }

    fn pad(&self, limits: Limits) -> Limits {
        pad(limits, self.margin)
    }

    /// Uses `clock` (e.g. a [`SystemClock`](crate::clock::SystemClock), or one
    /// shared with a test server).
    pub fn clock<C2: Clock>(self, clock: C2) -> LimiterBuilder<C2> {
        LimiterBuilder {
            clock,
            router: self.router,
            route_limits: self.route_limits,
            other: self.other,
            accounts: self.accounts,
            api_keys: self.api_keys,
            rules: self.rules,
            host_rules: self.host_rules,
            max_wait: self.max_wait,
            rate_limited: self.rate_limited,
            cost: self.cost,
            block_without_headers: self.block_without_headers,
            target: self.target,
            margin: self.margin,
            hold_until_response: self.hold_until_response,
            shared: self.shared,
        }
    }

    /// Charges requests to per-route buckets: `router` names the route,
    /// `limits(label)` gives each declared route's limits (`None`: the limits of
    /// `other`, in a bucket of its own), and `other` covers undeclared routes.
    pub fn routes(
        mut self,
        router: impl Router,
        limits: impl Fn(&str) -> Option<Limits>,
        other: OtherRoutes,
    ) -> Self {
        let fallback = match &other {
            OtherRoutes::Shared(l) | OtherRoutes::Each { limits: l, .. } => Some(l.clone()),
            OtherRoutes::Unlimited => None,
        };
        self.route_limits = (0..router.len())
            .map(|i| {
                let label = router.label(crate::route::RouteId(i as u32));
                limits(label)
                    .or_else(|| fallback.clone())
                    .unwrap_or_else(|| Limits::new([]))
            })
            .collect();
        self.router = Some(Box::new(router));
        self.other = other;
        self
    }

    /// Also charges each request to its account's bucket (seed 002's `per_account`).
    pub fn per_account(mut self, source: KeySource, limits: impl Into<Limits>, cap: usize) -> Self {
        self.accounts = Some((source, limits.into(), cap));
        self
    }

    /// Also charges each request to its API key's bucket. The key is hashed at
    /// once and never kept, logged or shown.
    pub fn per_api_key(mut self, source: KeySource, limits: impl Into<Limits>, cap: usize) -> Self {
        self.api_keys = Some((source, limits.into(), cap));
        self
    }

    /// How responses' rate-limit headers are read (default: the standard sets).
    pub fn headers(mut self, rules: HeaderRules) -> Self {
        self.rules = rules;
        self
    }

    /// Header rules for one host, preferred over the default for it.
    pub fn host_headers(mut self, host: impl Into<String>, rules: HeaderRules) -> Self {
        self.host_rules.push((host.into(), rules));
        self
    }

    /// How long a request may wait for room ([`MaxWait::Never`]: fail fast),
    /// in all, from when it is first decided: a waiter that a 429's block or a
    /// slow response pushes past it is refused when it finds out, with the
    /// whole wait it would have had.
    pub fn max_wait(mut self, max_wait: MaxWait) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The statuses that mean "rate limited" (default: 429; some APIs use 403).
    pub fn rate_limited_statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.rate_limited = statuses.into_iter().collect();
        self
    }

    /// The cost of each request (default 1).
    pub fn cost(mut self, f: impl Fn(&dyn HttpRequest) -> u32 + Send + Sync + 'static) -> Self {
        self.cost = Some(Arc::new(f));
        self
    }

    /// How long a 429 with neither `Retry-After` nor a reset blocks its bucket
    /// (default 1 s).
    pub fn block_without_headers(mut self, d: Duration) -> Self {
        self.block_without_headers = d;
        self
    }

    /// Which bucket responses' headers describe (default: the route's). A
    /// 429 whose headers name no window blocks this bucket, or, for a
    /// request charged to no bucket of this scope, the first bucket it was
    /// charged to (route, account, API key, in that order).
    pub fn correct(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    /// The limiter, ready to share.
    pub fn build(mut self) -> Arc<Limiter<C>> {
        let routes = match &self.router {
            Some(r) => (0..r.len())
                .map(|i| {
                    let label = r.label(crate::route::RouteId(i as u32));
                    let limits = self
                        .route_limits
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| Limits::new([]));
                    Arc::new(Bucket::new(label, self.pad(limits)))
                })
                .collect(),
            None => Vec::new(),
        };
        let other = match std::mem::replace(&mut self.other, OtherRoutes::Unlimited) {
            OtherRoutes::Unlimited => RouteBuckets::Unlimited,
            OtherRoutes::Shared(l) => {
                RouteBuckets::Shared(Arc::new(Bucket::new("other routes", self.pad(l))))
            }
            OtherRoutes::Each { limits, cap } => {
                RouteBuckets::Each(Box::new(KeyedBuckets::new("route", self.pad(limits), cap)))
            }
        };
        let accounts = self
            .accounts
            .take()
            .map(|(s, l, cap)| KeyScope::new("account", s, self.pad(l), cap));
        let api_keys = self
            .api_keys
            .take()
            .map(|(s, l, cap)| KeyScope::new("api_key", s, self.pad(l), cap));
        Arc::new(Limiter {
            clock: self.clock,
            router: self.router,
            routes,
            other,
            accounts,
            api_keys,
            rules: self.rules,
            host_rules: self.host_rules,
            max_wait: self.max_wait,
            rate_limited: self.rate_limited,
            cost: self.cost,
            block_without_headers: self.block_without_headers,
            target: self.target,
            offset_ms: std::sync::atomic::AtomicI64::new(0),
            history: History::new(),
            reported: papaya::HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .resize_mode(papaya::ResizeMode::Blocking)
                .build(),
            margin: self.margin,
            hold_until_response: self.hold_until_response,
            shared: self.shared,
        })
    }
}
