//! Applying a seed's windows to a bucket of the engine.
//!
//! The server is the authority (DESIGN.md, contract 5), in two ways only:
//! - **a limit it states replaces ours**, up or down: a seed is an explicit
//!   statement of the current limits, as a new `X-RateLimit-Limit` is;
//! - **a count it states can only raise ours**
//!   ([`Bucket::raise_used`]): the units it counted that we did not (other
//!   processes, other clients of the same key, requests before we started) are
//!   added, and nothing is ever taken away.
//!
//! # Where the server's units are placed
//!
//! A usage body says how many units a window holds, not when they were sent,
//! nor exactly when the server counted them: some time between the moment the
//! usage request left ([`RoundTrip::sent`]) and the moment its answer arrived
//! ([`RoundTrip::received`]). Requests this client sent in between may or may
//! not be in the figures, so they are counted on top of them (DESIGN.md,
//! contract 5: the safe side), exactly as a response's headers are.
//!
//! Units whose times are unknown are placed at `sent`, or after the latest
//! departure already planned if that is later (so the client's own requests
//! of the round trip come first), and the engine counts them for a full window
//! after that: the same placement as for a response's headers
//! ([`Bucket::raise_used_together`]). At the server they stop counting at most
//! one window after `received`, so they may free here up to one round trip
//! early; the usage request's timeout bounds that, and counting the client's
//! own requests of the round trip, which can be many, matters more.
//!
//! The engine keeps one log per bucket, so units put in it count in every
//! window: a day's usage put there would fill the minute and the hour windows
//! for a minute and an hour after it. Only the shortest window's units
//! go there. A longer window's units beyond what it then counts are older than
//! every shorter window of the body (those would have counted them), so they
//! are held beside the log in the windows that reach back that far, and no
//! shorter window sees them ([`Bucket::raise_used_together`]). "Minute 10 of
//! 200, hour 100 of 600, day 3,000 of 6,000" leaves 190 requests to send at
//! once. When the server tells when its counts reset, pass that through
//! `frees_at_of`: the shortest window's units are then placed no later than
//! needed.

use std::num::NonZeroU32;
use std::time::Duration;

use super::model::SeedWindow;
use crate::clock::Nanos;
use crate::ledger::{Bucket, WindowCount};

/// When a usage body's figures were counted, as far as the client can tell:
/// after its request was sent and before its answer was received, both on the
/// limiter's clock.
///
/// Counts are raised from `sent`, so that the requests the client sent while
/// the usage request was on its way count on top of the server's figures
/// (they may be missing from them); a block for a zero limit runs from
/// `received`. A single instant converts into a round trip of no length: use
/// that only when nothing can have been sent meanwhile (a body read from a
/// file, a test), as it trusts the figures to include everything sent before.
///
/// ```
/// use tower_quota::clock::Nanos;
/// use tower_quota::seed::RoundTrip;
///
/// let trip = RoundTrip::new(Nanos::from_secs(5), Nanos::from_secs(4));
/// assert_eq!((trip.sent, trip.received), (Nanos::from_secs(5), Nanos::from_secs(5)));
/// assert_eq!(RoundTrip::from(Nanos::from_secs(7)).sent, Nanos::from_secs(7));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundTrip {
    /// When the usage request left the client.
    pub sent: Nanos,
    /// When its whole answer had arrived (never before `sent`).
    pub received: Nanos,
}

impl RoundTrip {
    /// The round trip from `sent` to `received`; a `received` before `sent`
    /// (clocks read out of order) is read as `sent`.
    pub fn new(sent: Nanos, received: Nanos) -> RoundTrip {
        RoundTrip {
            sent,
            received: received.max(sent),
        }
    }
}

impl From<Nanos> for RoundTrip {
    /// A round trip of no length at `at`.
    fn from(at: Nanos) -> RoundTrip {
        RoundTrip::new(at, at)
    }
}

/// What [`apply_to_bucket`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Limits replaced by the server's, window by window.
    pub limits_changed: Vec<LimitChange>,
    /// Units added to the bucket's log for usage the server counted and we had
    /// not (each unit counts in every window of the bucket).
    pub units_added: u64,
    /// Seed windows that changed nothing, and why.
    pub skipped: Vec<SkippedWindow>,
    /// The bucket was blocked until this instant because the server's limit
    /// is zero.
    pub blocked_until: Option<Nanos>,
}

impl Applied {
    /// Whether the bucket was changed at all.
    pub fn changed(&self) -> bool {
        !self.limits_changed.is_empty() || self.units_added > 0 || self.blocked_until.is_some()
    }
}

/// A limit the server replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitChange {
    /// The bucket's window.
    pub window: Duration,
    /// Its limit before.
    pub from: u32,
    /// The server's limit, now the bucket's.
    pub to: u32,
    /// Whether the bucket counts the new limit exactly. `false`: it was built
    /// for fewer units ([`Limits::capacity`](crate::quota::Limits::capacity)),
    /// so it stays safe but admits less than the limit allows.
    pub exact: bool,
}

/// A seed window that changed nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedWindow {
    /// The window's name in the seed.
    pub name: String,
    /// Its length in the seed.
    pub window: Duration,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Why a seed window was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The bucket has no window of this length (nor one up to 10 % longer):
    /// configure the window, or check the [`WindowNames`](super::WindowNames).
    NoSuchWindow,
    /// The limit does not fit the engine's `u32` limits; the bucket keeps its
    /// own, smaller one.
    LimitTooLarge,
}

/// Applies `windows` (one [`SeedEntry`](super::SeedEntry)'s) to `bucket`, as
/// the server counted them during `trip` (a [`RoundTrip`], or one instant
/// when nothing can have been sent meanwhile).
///
/// Each seed window goes to the bucket's window of the same length, or, for a
/// bucket built with [`Limits::padded`](crate::quota::Limits::padded), the
/// shortest one at most 10 % longer (a longer window under the same limit is
/// tighter); a seed window without one is skipped and reported. A different
/// limit replaces the bucket's (a zero limit blocks the bucket for one window
/// instead); the used counts are raised together with
/// [`Bucket::raise_used_together`] from `trip.sent` (the client's own requests
/// sent since count on top): the shortest window's units of unknown time at
/// `trip.received` (see the module docs for why), or as `frees_at_of` says
/// (the instant the window's units stop counting at the server, if known),
/// and a longer window's older units held where no shorter window sees them.
///
/// ```
/// use std::time::Duration;
/// use tower_quota::clock::Nanos;
/// use tower_quota::ledger::Bucket;
/// use tower_quota::quota::{Limits, Quota};
/// use tower_quota::seed::{apply_to_bucket, parse_crm_usage, SeedScope, WindowNames};
///
/// let body = br#"{"[\"api/v1/contacts\", \"search\"]": {
///   "day": { "limit": 5000, "consumed": 500, "left_over": 4500 },
///   "minute": { "limit": 200, "consumed": 10, "left_over": 190 } } }"#;
/// let seed = parse_crm_usage(body, &WindowNames::standard())?;
/// let entry = seed.entry(SeedScope::Key, "api/v1/contacts#search").expect("listed");
///
/// let bucket = Bucket::new(
///     "api/v1/contacts#search",
///     Limits::new([Quota::per_minute(200), Quota::per_day(6000)]),
/// );
/// let now = Nanos::from_secs(10);
/// let applied = apply_to_bucket(&bucket, &entry.windows, now, |_| None);
/// assert_eq!(applied.limits_changed[0].to, 5000);
/// assert_eq!(applied.units_added, 500);
/// assert_eq!(bucket.state(now).windows[1].used, 500);
/// # Ok::<(), tower_quota::seed::SeedError>(())
/// ```
pub fn apply_to_bucket(
    bucket: &Bucket,
    windows: &[SeedWindow],
    trip: impl Into<RoundTrip>,
    frees_at_of: impl Fn(&SeedWindow) -> Option<Nanos>,
) -> Applied {
    let trip = trip.into();
    let mut applied = Applied::default();
    // Shortest first, as the counts are raised below.
    let mut counts = Vec::new();
    let mut ordered: Vec<&SeedWindow> = windows.iter().collect();
    ordered.sort_by_key(|w| w.window);
    for w in ordered {
        let Some((index, length)) = window_for(bucket, w.window) else {
            skip(&mut applied, bucket, w, SkipReason::NoSuchWindow);
            continue;
        };
        match u32::try_from(w.limit) {
            Ok(0) => {
                let until = trip.received + length;
                bucket.block_until(until);
                applied.blocked_until = applied.blocked_until.max(Some(until));
                tracing::warn!(target: "tower_quota::seed", bucket = %bucket.label(), window = %w.name, "the server's limit is zero: blocked for one window");
            }
            Ok(limit) => set_limit(&mut applied, bucket, index, length, limit),
            Err(_) => skip(&mut applied, bucket, w, SkipReason::LimitTooLarge),
        }
        if let Some(used) = w.used {
            counts.push(WindowCount {
                window: index,
                used,
                frees_at: frees_at_of(w),
            });
        }
    }
    // Together: a longer window's units beyond a shorter one's are older than
    // it, and are held so that they never fill it (`Bucket::raise_used_together`).
    let added = bucket.raise_used_together(&counts, trip.sent, trip.received);
    if added > 0 {
        tracing::debug!(target: "tower_quota::seed", bucket = %bucket.label(), added, "the server counted more than we did");
    }
    applied.units_added = added;
    applied
}

/// The index and length of the bucket's window for a seed window of `length`
/// (see [`Bucket::window_of_length`]).
fn window_for(bucket: &Bucket, length: Duration) -> Option<(usize, Duration)> {
    let index = bucket.window_of_length(length)?;
    Some((index, bucket.window_length(index)?))
}

fn set_limit(applied: &mut Applied, bucket: &Bucket, index: usize, length: Duration, to: u32) {
    let Some(limit) = NonZeroU32::new(to) else {
        return;
    };
    let from = bucket.limit(index).unwrap_or(0);
    if from != to && bucket.set_limit(index, limit) {
        tracing::info!(target: "tower_quota::seed", bucket = %bucket.label(), window = ?length, from, to, "the server's limit replaces ours");
        let exact = bucket.capacity(index).is_some_and(|c| c >= to);
        if !exact {
            tracing::warn!(
                target: "tower_quota::seed",
                bucket = %bucket.label(),
                window = ?length,
                to,
                capacity = bucket.capacity(index).unwrap_or(0),
                "the server's limit is more than the bucket was built to count exactly: \
                 it stays safe but admits less; build it with Limits::capacity"
            );
        }
        applied.limits_changed.push(LimitChange {
            window: length,
            from,
            to,
            exact,
        });
    }
}

fn skip(applied: &mut Applied, bucket: &Bucket, w: &SeedWindow, reason: SkipReason) {
    tracing::warn!(target: "tower_quota::seed", bucket = %bucket.label(), window = %w.name, ?reason, "seed window skipped");
    applied.skipped.push(SkippedWindow {
        name: w.name.clone(),
        window: w.window,
        reason,
    });
}
