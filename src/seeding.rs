//! Applying a [`Seed`] to a live [`Limiter`]: which of its buckets each entry
//! of a usage body describes.
//!
//! The rules are documented on [`Limiter::apply_seed`].

use std::collections::HashSet;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use crate::clock::{Clock, Nanos};
use crate::ledger::{Bucket, KeyedBuckets};
use crate::limiter::Limiter;
use crate::quota::{Limits, Quota};
use crate::seed::{
    apply_to_bucket, Applied, RoundTrip, Seed, SeedEntry, SeedRoute, SeedScope, SeedSource,
};
use crate::store::{Correction, SharedBucket};

/// The most routes a seed may give buckets of their own when the
/// configuration gives undeclared routes none (undeclared routes
/// [`OtherRoutes::Unlimited`](crate::OtherRoutes::Unlimited) or
/// [`OtherRoutes::Shared`](crate::OtherRoutes::Shared)): a usage body listing
/// a million routes must not make a million buckets. Past it, a route's
/// figures are skipped with [`SeedSkip::TooManyReportedRoutes`]; declare the
/// routes you use, or give undeclared routes buckets of their own with a cap
/// ([`OtherRoutes::Each`](crate::OtherRoutes::Each)).
pub const MAX_REPORTED_ROUTES: usize = 1_000;

/// What [`Limiter::apply_seed`] did with a seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedReport {
    /// Which usage endpoint the seed came from.
    pub source: SeedSource,
    /// When the usage request was sent: the client's own requests since then
    /// were counted on top of the server's figures.
    pub sent: Nanos,
    /// When its answer was received: the instant the figures were applied as of.
    pub as_of: Nanos,
    /// One row per bucket (or template) an entry was applied to, in the order
    /// applied.
    pub applied: Vec<AppliedSeedEntry>,
    /// The entries (or parts of them) that changed nothing, and why.
    pub skipped: Vec<SkippedSeedEntry>,
}

impl SeedReport {
    /// Whether any bucket changed (a limit, a count, a block).
    pub fn changed(&self) -> bool {
        self.applied.iter().any(|a| a.applied.changed())
    }

    /// How many limits the server's replaced, over every bucket.
    pub fn limits_changed(&self) -> usize {
        self.applied
            .iter()
            .map(|a| a.applied.limits_changed.len())
            .sum()
    }

    /// Units added for usage the server counted and the limiter had not.
    pub fn units_added(&self) -> u64 {
        self.applied
            .iter()
            .map(|a| a.applied.units_added)
            .fold(0, u64::saturating_add)
    }

    /// The rows of the entry labelled `route` (`default` for the catch-all).
    pub fn rows_for<'a>(&'a self, route: &'a str) -> impl Iterator<Item = &'a AppliedSeedEntry> {
        self.applied.iter().filter(move |a| a.route == route)
    }
}

/// One seed entry applied to one bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedSeedEntry {
    /// The entry's route label (`api/v1/contacts#search`, `GET.people`,
    /// `default`).
    pub route: String,
    /// The entry's scope.
    pub scope: SeedScope,
    /// What kind of bucket it went to.
    pub target: SeedTarget,
    /// The bucket's label (account buckets: the scope and a fingerprint, never
    /// the key), or `"<scope> (new buckets)"` for a template.
    pub bucket: Arc<str>,
    /// What changed.
    pub applied: Applied,
}

/// What kind of bucket a seed entry was applied to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeedTarget {
    /// A route the router declares.
    DeclaredRoute,
    /// The own bucket of a route the router does not declare
    /// ([`OtherRoutes::Each`](crate::OtherRoutes::Each)), created if needed.
    UndeclaredRoute,
    /// The bucket all undeclared routes share
    /// ([`OtherRoutes::Shared`](crate::OtherRoutes::Shared)); `default` only.
    SharedOtherRoutes,
    /// The limits buckets of undeclared routes are created with from now on
    /// ([`OtherRoutes::Each`](crate::OtherRoutes::Each)); `default` only.
    /// Usage counts are not carried over to buckets not yet created.
    NewRouteBuckets,
    /// A route neither declared nor given buckets of its own by the
    /// configuration (undeclared routes unlimited or shared): the server's
    /// report gives it one.
    ReportedRoute,
    /// An account bucket that existed when the seed was applied.
    Account,
    /// The limits account buckets are created with from now on (`default`
    /// only). Usage counts are not carried over to buckets not yet created.
    NewAccountBuckets,
}

/// A seed entry, or a part of one, that changed nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedSeedEntry {
    /// The entry's route label.
    pub route: String,
    /// The entry's scope.
    pub scope: SeedScope,
    /// Why.
    pub reason: SeedSkip,
}

/// Why a seed entry changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeedSkip {
    /// The limiter charges no route buckets (it was built without
    /// [`LimiterBuilder::routes`](crate::LimiterBuilder::routes)).
    NoRouter,
    /// An undeclared route whose entry has no window a bucket can hold (a
    /// limit of zero, or beyond `u32`).
    NoUsableWindows,
    /// The route would need a bucket of its own, and the scope of undeclared
    /// routes is full of busy buckets.
    TooManyRoutes,
    /// The route would need a bucket of its own, and seeds have already given
    /// [`MAX_REPORTED_ROUTES`] undeclared routes one.
    TooManyReportedRoutes,
    /// Per-account figures, and the limiter has no account scope.
    NoAccountScope,
    /// Per-account figures for one route: the limiter keeps one bucket per
    /// account, not per account and route.
    PerAccountRoute,
}

impl fmt::Display for SeedSkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SeedSkip::NoRouter => "the limiter has no route buckets: configure `LimiterBuilder::routes`",
            SeedSkip::NoUsableWindows => "the server reported no window a bucket can hold for this undeclared route: check the usage payload",
            SeedSkip::TooManyRoutes => "no bucket could be made for this undeclared route (the scope is full): raise the cap of `OtherRoutes::Each`",
            SeedSkip::TooManyReportedRoutes => "the server reported more undeclared routes than the limiter makes buckets for (MAX_REPORTED_ROUTES): declare the routes you use in the router, or use `OtherRoutes::Each`",
            SeedSkip::NoAccountScope => "per-account figures, but the limiter has no account scope: configure `LimiterBuilder::per_account`",
            SeedSkip::PerAccountRoute => "per-account figures for a single route: the limiter keeps one bucket per account",
        })
    }
}

impl<C: Clock> Limiter<C> {
    /// Applies what a usage endpoint said (`seed`, asked for and received
    /// during `trip` on this limiter's clock) to the buckets it describes, and
    /// reports what was applied and what was skipped.
    ///
    /// Pass the [`RoundTrip`] of the usage request: the client's own requests
    /// sent while it was on its way may be missing from the server's figures,
    /// and are counted on top of them (DESIGN.md, contract 5). A single
    /// instant is a round trip of no length: right only when nothing can have
    /// been sent meanwhile.
    ///
    /// [`apply_to_bucket`](crate::seed::apply_to_bucket) applies one entry to
    /// one bucket; this method finds the buckets:
    ///
    /// | seed entry | buckets |
    /// | --- | --- |
    /// | a route (`api/v1/contacts#search`, `GET.people`) in scope [`SeedScope::Key`] or [`SeedScope::Global`] | the route bucket the router declares under that label; else, with [`OtherRoutes::Each`](crate::OtherRoutes::Each), the undeclared route's own bucket (created now if needed); else a bucket of its own the seed gives it ([`SeedTarget::ReportedRoute`], at most [`MAX_REPORTED_ROUTES`] of them), charged beside the shared one if undeclared routes share one |
    /// | `default` in scope `Key` or `Global` | every declared route without an entry of its own, the bucket of [`OtherRoutes::Shared`](crate::OtherRoutes::Shared), every bucket of [`OtherRoutes::Each`](crate::OtherRoutes::Each) *and* the limits its buckets are created with from now on |
    /// | `default` in scope [`SeedScope::PerAccount`] | every account bucket that exists now |
    ///
    /// Defaults are applied first, so a route's own entry has the last word.
    ///
    /// What is skipped, and why (each is in [`SeedReport::skipped`], with what to
    /// do about it in its [`Display`](std::fmt::Display)):
    /// - a route the router does not declare, past [`MAX_REPORTED_ROUTES`]
    ///   such routes when undeclared routes are
    ///   [`OtherRoutes::Unlimited`](crate::OtherRoutes::Unlimited) or
    ///   [`OtherRoutes::Shared`](crate::OtherRoutes::Shared), or when the
    ///   scope of [`OtherRoutes::Each`](crate::OtherRoutes::Each) is full;
    /// - per-account figures for one route: the limiter keeps one bucket per
    ///   account, not per account and route;
    /// - a window the bucket does not have: see [`Applied::skipped`](crate::seed::Applied::skipped).
    ///
    /// Nothing in a report is secret: routes are the server's own labels, and
    /// account buckets are named by their scope and a fingerprint.
    ///
    /// Limits the server states replace the configured ones, up or down;
    /// counts it states only ever raise the limiter's (DESIGN.md, contract 5).
    /// Safe to call while traffic flows, and as often as the server is polled.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::Method;
    /// use tower_quota::clock::{Clock, ManualClock};
    /// use tower_quota::quota::{Limits, Quota};
    /// use tower_quota::route::Rails;
    /// use tower_quota::seed::{parse_crm_usage, WindowNames};
    /// use tower_quota::{Limiter, OtherRoutes};
    ///
    /// let clock = ManualClock::new();
    /// let limiter = Limiter::builder()
    ///     .clock(clock.clone())
    ///     .routes(Rails::seed000(), |_| Some(Quota::per_minute(200).into()), OtherRoutes::Unlimited)
    ///     .margin(Duration::ZERO)
    ///     .build();
    /// let body = br#"{"[\"api/v1/contacts\", \"search\"]": {
    ///   "minute": { "limit": 100, "consumed": 30, "left_over": 70 } } }"#;
    /// let seed = parse_crm_usage(body, &WindowNames::standard())?;
    /// let report = limiter.apply_seed(&seed, clock.now());
    /// assert_eq!((report.limits_changed(), report.units_added()), (1, 30));
    ///
    /// let bucket = limiter.route_bucket(&Method::POST, "/api/v1/contacts/search").expect("declared");
    /// let minute = &bucket.state(clock.now()).windows[0];
    /// assert_eq!((minute.limit, minute.used), (100, 30));
    /// # Ok::<(), tower_quota::seed::SeedError>(())
    /// ```
    pub fn apply_seed(&self, seed: &Seed, trip: impl Into<RoundTrip>) -> SeedReport {
        let trip = trip.into();
        let mut report = SeedReport {
            source: seed.source,
            sent: trip.sent,
            as_of: trip.received,
            applied: Vec::new(),
            skipped: Vec::new(),
        };
        // Defaults first: a route's own entry has the last word.
        let (defaults, routes): (Vec<&SeedEntry>, Vec<&SeedEntry>) = seed
            .entries
            .iter()
            .partition(|e| e.route == SeedRoute::Default);
        for entry in defaults.into_iter().chain(routes) {
            match entry.scope {
                SeedScope::Key | SeedScope::Global => match entry.route {
                    SeedRoute::Default => self.seed_route_default(seed, entry, trip, &mut report),
                    _ => self.seed_route(entry, trip, &mut report),
                },
                SeedScope::PerAccount => self.seed_accounts(entry, trip, &mut report),
            }
        }
        tracing::info!(
            target: "tower_quota::seed",
            source = ?seed.source,
            buckets = report.applied.len(),
            limits_changed = report.limits_changed(),
            units_added = report.units_added(),
            skipped = report.skipped.len(),
            "seed applied"
        );
        report
    }

    /// One route's entry: its declared bucket, or its own undeclared one.
    fn seed_route(&self, entry: &SeedEntry, trip: RoundTrip, report: &mut SeedReport) {
        let label = entry.route.label();
        let Some(router) = self.router() else {
            return skip(report, entry, SeedSkip::NoRouter);
        };
        if let Some(bucket) = router
            .find(label)
            .and_then(|id| self.route_buckets().get(id.index()))
        {
            return self.applied_route(report, entry, SeedTarget::DeclaredRoute, bucket, trip);
        }
        if let Some(each) = self.each_other_buckets() {
            // The key the layer uses for an undeclared route is the router's
            // name for it, which is the server's label.
            let key = label.to_owned();
            // Marked while the seed is applied: not evicted under it.
            match each.bucket_in_flight(&key, self.clock().now()) {
                Ok(on_it) => {
                    let bucket = on_it.bucket();
                    self.applied_route(report, entry, SeedTarget::UndeclaredRoute, bucket, trip);
                    // An eviction must not send the route back to the default.
                    let limits: Vec<u32> = (0..bucket.window_count())
                        .map(|i| bucket.limit(i).unwrap_or(0))
                        .collect();
                    each.remember_limits(&key, &limits);
                }
                Err(_) => skip(report, entry, SeedSkip::TooManyRoutes),
            }
        } else {
            // Undeclared routes are unlimited or share one bucket, but the server
            // reports limits for this one: it gets a bucket of its own with them
            // (and, if shared, still counts against the shared one too).
            let quotas = entry
                .windows
                .iter()
                .filter_map(|w| Quota::new(u32::try_from(w.limit).ok()?, w.window));
            let limits = Limits::new(quotas);
            if limits.quotas().is_empty() {
                return skip(report, entry, SeedSkip::NoUsableWindows);
            }
            let Some(bucket) = self.report_route(label, limits, MAX_REPORTED_ROUTES) else {
                return skip(report, entry, SeedSkip::TooManyReportedRoutes);
            };
            self.applied_route(report, entry, SeedTarget::ReportedRoute, &bucket, trip);
        }
    }

    /// The catch-all: every route bucket without an entry of its own, and the
    /// limits of undeclared routes' buckets.
    fn seed_route_default(
        &self,
        seed: &Seed,
        entry: &SeedEntry,
        trip: RoundTrip,
        report: &mut SeedReport,
    ) {
        let Some(router) = self.router() else {
            return skip(report, entry, SeedSkip::NoRouter);
        };
        // Collected once: a body may list thousands of routes.
        let own: HashSet<&str> = seed
            .entries
            .iter()
            .filter(|e| matches!(e.scope, SeedScope::Key | SeedScope::Global))
            .map(|e| e.route.label())
            .collect();
        for (i, bucket) in self.route_buckets().iter().enumerate() {
            let Ok(id) = u32::try_from(i) else { break };
            if !own.contains(router.label(crate::route::RouteId(id))) {
                self.applied_route(report, entry, SeedTarget::DeclaredRoute, bucket, trip);
            }
        }
        if let Some(bucket) = self.shared_other_bucket() {
            self.applied_route(report, entry, SeedTarget::SharedOtherRoutes, bucket, trip);
        }
        if let Some(each) = self.each_other_buckets() {
            // Marked while the seed is applied: not evicted under it.
            for on_it in each.buckets_in_flight() {
                let bucket = on_it.bucket();
                self.applied_route(report, entry, SeedTarget::UndeclaredRoute, bucket, trip);
            }
            template(report, each, entry, SeedTarget::NewRouteBuckets, trip);
        }
    }

    /// Per-account figures: the catch-all goes to every account bucket.
    fn seed_accounts(&self, entry: &SeedEntry, trip: RoundTrip, report: &mut SeedReport) {
        let Some(accounts) = self.account_buckets() else {
            return skip(report, entry, SeedSkip::NoAccountScope);
        };
        if entry.route != SeedRoute::Default {
            return skip(report, entry, SeedSkip::PerAccountRoute);
        }
        for on_it in &accounts {
            applied(report, entry, SeedTarget::Account, on_it.bucket(), trip);
        }
        if let Some(keyed) = self.account_scope() {
            template(report, keyed, entry, SeedTarget::NewAccountBuckets, trip);
        }
    }
}

impl<C: Clock> Limiter<C> {
    /// [`applied`] to a route bucket, shared with the other processes when the
    /// allowance is shared: the server's limits and counts for a route hold for
    /// all of them. (Account buckets are named by their key, which a seed's
    /// entry does not give: they learn from their own responses.)
    fn applied_route(
        &self,
        report: &mut SeedReport,
        entry: &SeedEntry,
        target: SeedTarget,
        bucket: &Bucket,
        trip: RoundTrip,
    ) {
        applied(report, entry, target, bucket, trip);
        let (Some(store), Some(row)) = (&self.shared, report.applied.last()) else {
            return;
        };
        let id = store.bucket_id("route", bucket.label().as_bytes());
        let shared = SharedBucket::of("route", id, bucket, self.clock());
        for change in &row.applied.limits_changed {
            if let Some(window) =
                (0..bucket.window_count()).find(|&i| bucket.window_length(i) == Some(change.window))
            {
                store.correct(
                    &shared,
                    Correction::Limit {
                        window,
                        limit: change.to,
                    },
                );
            }
        }
        if row.applied.units_added > 0 {
            let state = bucket.state(self.clock().now());
            let used: Vec<(usize, u64)> =
                state.windows.iter().map(|w| w.used).enumerate().collect();
            store.correct_used(&shared, &used);
        }
        if let Some(until) = row.applied.blocked_until {
            let duration = until.saturating_since(self.clock().now());
            store.correct(&shared, Correction::Block { duration });
        }
    }
}

fn applied(
    report: &mut SeedReport,
    entry: &SeedEntry,
    target: SeedTarget,
    bucket: &Bucket,
    trip: RoundTrip,
) {
    let applied = apply_to_bucket(bucket, &entry.windows, trip, |_| None);
    report_row(report, entry, target, bucket, applied);
}

/// The report's row for `entry`, applied to `bucket`.
fn report_row(
    report: &mut SeedReport,
    entry: &SeedEntry,
    target: SeedTarget,
    bucket: &Bucket,
    applied: Applied,
) {
    report.applied.push(AppliedSeedEntry {
        route: entry.route.label().to_owned(),
        scope: entry.scope,
        target,
        bucket: bucket.label().clone(),
        applied,
    });
}

fn skip(report: &mut SeedReport, entry: &SeedEntry, reason: SeedSkip) {
    tracing::debug!(target: "tower_quota::seed", route = %entry.route.label(), scope = ?entry.scope, %reason, "seed entry skipped");
    report.skipped.push(SkippedSeedEntry {
        route: entry.route.label().to_owned(),
        scope: entry.scope,
        reason,
    });
}

/// Applies `entry`'s limits to the limits `keyed` creates buckets with.
///
/// A probe bucket with the template's current limits goes through
/// [`apply_to_bucket`], so windows are matched exactly as for real buckets;
/// the limits it ends with become the template's. Counts are left out: a
/// bucket not yet created has sent nothing. The report gets a row for it.
fn template<K>(
    report: &mut SeedReport,
    keyed: &KeyedBuckets<K>,
    entry: &SeedEntry,
    target: SeedTarget,
    trip: RoundTrip,
) where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
{
    let probe = Bucket::new(
        format!("{} (new buckets)", keyed.scope()),
        keyed.configured_limits().clone(),
    );
    let current = |i| keyed.limit(i).and_then(NonZeroU32::new);
    for i in 0..probe.window_count() {
        if let Some(limit) = current(i) {
            probe.set_limit(i, limit);
        }
    }
    let mut windows = entry.windows.clone();
    for w in &mut windows {
        w.used = None;
        w.remaining = None;
    }
    let applied = apply_to_bucket(&probe, &windows, trip, |_| None);
    for i in 0..probe.window_count() {
        if let Some(limit) = probe.limit(i).and_then(NonZeroU32::new) {
            if current(i) != Some(limit) {
                keyed.set_limit(i, limit);
            }
        }
    }
    report_row(report, entry, target, &probe, applied);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::Method;

    use super::*;
    use crate::clock::ManualClock;
    use crate::quota::{Limits, Quota};
    use crate::route::MethodResource;
    use crate::scope::KeySource;
    use crate::seed::{parse_partner_usage, PARTNER_DEFAULT_WINDOW};
    use crate::OtherRoutes;

    fn minute(n: u32) -> Limits {
        Quota::per_minute(n).into()
    }

    const BODY: &[u8] = br#"{"system": "s", "period": "last_24h", "usage": {
      "total_requests": 0, "rate_limited_requests": 0, "rate_limit_percentage": 0,
      "peak_hour": null, "current_limits": {
        "across_all_accounts": { "default": 750, "GET.people": 100, "POST.accounts": 40 },
        "per_account": { "default": 25, "GET.people": 5 } } } }"#;

    #[test]
    fn seed002_defaults_overrides_and_accounts_reach_their_buckets() {
        let clock = ManualClock::new();
        let limiter = crate::Limiter::builder()
            .clock(clock.clone())
            .routes(
                MethodResource::seed002(),
                |l| (l == "GET.people").then(|| minute(120)),
                OtherRoutes::Each {
                    limits: minute(800),
                    cap: 10,
                },
            )
            .per_account(KeySource::header("x-api-key"), minute(30), 10)
            .margin(Duration::ZERO)
            .build();
        // An account bucket and an undeclared route's bucket exist already.
        let req = http::Request::get("/things/1")
            .header("x-api-key", "k")
            .body(())
            .unwrap_or_default();
        let charged = limiter.charge(&req, clock.now());
        assert_eq!(charged.map(|c| c.buckets.len()).unwrap_or(0), 2);

        let seed = parse_partner_usage(BODY, PARTNER_DEFAULT_WINDOW).expect("valid body");
        let report = limiter.apply_seed(&seed, clock.now());

        let limit = |m: Method, p: &str| {
            limiter
                .route_bucket(&m, p)
                .and_then(|b| b.limit(0))
                .unwrap_or(0)
        };
        assert_eq!(limit(Method::GET, "/people/1"), 100);
        assert_eq!(limit(Method::GET, "/things/1"), 750, "existing undeclared");
        assert_eq!(limit(Method::GET, "/new/1"), 750, "created after the seed");
        assert_eq!(limit(Method::POST, "/accounts"), 40, "its own entry wins");
        let accounts = limiter.account_buckets().unwrap_or_default();
        assert_eq!(
            accounts
                .iter()
                .map(|b| b.bucket().limit(0))
                .collect::<Vec<_>>(),
            [Some(25)]
        );
        let reasons: Vec<SeedSkip> = report.skipped.iter().map(|s| s.reason).collect();
        assert_eq!(reasons, [SeedSkip::PerAccountRoute]);
        assert!(report
            .applied
            .iter()
            .any(|a| a.target == SeedTarget::NewAccountBuckets));
        // An account first seen after the seed starts from the seeded limit.
        let fresh = limiter
            .account_scope()
            .and_then(|k| k.bucket(&0xFEED, Nanos::ZERO).ok())
            .and_then(|b| b.limit(0));
        assert_eq!(fresh, Some(25));
        assert!(report
            .applied
            .iter()
            .any(|a| a.target == SeedTarget::NewRouteBuckets));
    }

    #[test]
    fn seeds_need_somewhere_to_go() {
        let limiter = crate::Limiter::builder().clock(ManualClock::new()).build();
        let seed = parse_partner_usage(BODY, PARTNER_DEFAULT_WINDOW).expect("valid body");
        let report = limiter.apply_seed(&seed, Nanos::ZERO);
        assert!(!report.changed());
        assert!(report
            .skipped
            .iter()
            .all(|s| matches!(s.reason, SeedSkip::NoRouter | SeedSkip::NoAccountScope)));
        assert_eq!(report.skipped.len(), 5);
        assert!(SeedSkip::NoUsableWindows
            .to_string()
            .contains("usage payload"));
    }
}
