//! Quotas: how many units may leave per window, and how a bucket's windows are kept.
//!
//! A [`Quota`] is one limit over one window, `200 per minute`. Servers enforce
//! several at once (seed 000: 200/minute, 600/hour and 6000/day on one route), so a
//! bucket is configured with [`Limits`]: a set of quotas that are all charged by
//! every request, plus optional [`Pacing`] and a choice of [`Storage`].
//!
//! Windows are **sliding** by default: at most `limit` units inside *any* half-open
//! interval of length `window`. That also satisfies a server that counts in fixed
//! windows, so it is the safe default. A **fixed** quota counts within aligned
//! windows `[anchor + k*window, anchor + (k+1)*window)`, for servers that reset at
//! known instants; it admits more around a reset and is only safe when the anchor
//! matches the server's.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::clock::Nanos;

/// How a quota's window moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Alignment {
    /// Any half-open interval of the window's length holds at most `limit` units.
    #[default]
    Sliding,
    /// Windows are aligned to `anchor` (e.g. a server's reset instant): each
    /// `[anchor + k*window, anchor + (k+1)*window)` holds at most `limit` units.
    Fixed {
        /// An instant at which a window starts.
        anchor: Nanos,
    },
}

/// `limit` units per `window`.
///
/// ```
/// use std::time::Duration;
/// use tower_quota::quota::Quota;
///
/// let q = Quota::per_minute(200);
/// assert_eq!(q.limit(), 200);
/// assert_eq!(q.window(), Duration::from_secs(60));
/// assert!(Quota::new(0, Duration::from_secs(1)).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    limit: NonZeroU32,
    window: Duration,
    alignment: Alignment,
    /// How much [`Limits::padded`] lengthened `window` (reports show the
    /// window without it).
    margin: Duration,
}

impl Quota {
    /// The longest window accepted (ten years); longer ones are clamped to it.
    pub const MAX_WINDOW: Duration = Duration::from_secs(10 * 366 * 86_400);

    /// `limit` units per sliding `window`; `None` if either is zero.
    pub fn new(limit: u32, window: Duration) -> Option<Quota> {
        let limit = NonZeroU32::new(limit)?;
        if window.is_zero() {
            return None;
        }
        Some(Quota {
            limit,
            window: window.min(Self::MAX_WINDOW),
            alignment: Alignment::Sliding,
            margin: Duration::ZERO,
        })
    }

    /// `limit` units per sliding `window`, for limits known to be non-zero.
    ///
    /// A zero `window` is raised to one nanosecond.
    pub fn with_limit(limit: NonZeroU32, window: Duration) -> Quota {
        Quota {
            limit,
            window: window.max(Duration::from_nanos(1)).min(Self::MAX_WINDOW),
            alignment: Alignment::Sliding,
            margin: Duration::ZERO,
        }
    }

    fn per(limit: u32, window: Duration) -> Quota {
        Quota::with_limit(NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN), window)
    }

    /// `limit` per second (a zero limit is raised to 1).
    pub fn per_second(limit: u32) -> Quota {
        Quota::per(limit, Duration::from_secs(1))
    }

    /// `limit` per minute (a zero limit is raised to 1).
    pub fn per_minute(limit: u32) -> Quota {
        Quota::per(limit, Duration::from_secs(60))
    }

    /// `limit` per hour (a zero limit is raised to 1).
    pub fn per_hour(limit: u32) -> Quota {
        Quota::per(limit, Duration::from_secs(3600))
    }

    /// `limit` per day (a zero limit is raised to 1).
    pub fn per_day(limit: u32) -> Quota {
        Quota::per(limit, Duration::from_secs(86_400))
    }

    /// The same quota counted in fixed windows aligned to `anchor`.
    pub fn fixed(mut self, anchor: Nanos) -> Quota {
        self.alignment = Alignment::Fixed { anchor };
        self
    }

    /// The same quota with its window lengthened by a safety `margin` (what
    /// [`Limits::padded`] does to each of its quotas). A sliding window is
    /// then `margin` longer; a fixed one keeps its boundaries and also counts
    /// what left up to `margin` before each of them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_quota::quota::Quota;
    ///
    /// let q = Quota::per_minute(60).with_margin(Duration::from_millis(50));
    /// assert_eq!(q.window(), Duration::from_millis(60_050));
    /// assert_eq!(q.margin(), Duration::from_millis(50));
    /// ```
    pub fn with_margin(mut self, margin: Duration) -> Quota {
        let padded = (self.window + margin).min(Quota::MAX_WINDOW);
        self.margin += padded.saturating_sub(self.window);
        self.window = padded;
        self
    }

    /// The most units per window.
    pub fn limit(&self) -> u32 {
        self.limit.get()
    }

    /// The window's length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How much of [`Quota::window`] is a safety margin added by
    /// [`Limits::padded`]: the server's window is `window() - margin()`.
    pub fn margin(&self) -> Duration {
        self.margin
    }

    /// Sliding or fixed.
    pub fn alignment(&self) -> Alignment {
        self.alignment
    }

    /// This quota's limit scaled to one minute (the "rate limit per minute" that
    /// usage pages show), rounded down.
    pub fn per_minute_rate(&self) -> f64 {
        f64::from(self.limit.get()) * 60.0 / self.window.as_secs_f64()
    }
}

/// Smoothing inside a bucket: requests are spread out instead of spent as one burst
/// at the start of each window (seed 003: "spread requests evenly rather than
/// sending bursts").
///
/// It follows governor's GCRA: one unit per `interval`, with up to `burst` units at
/// once, and is configured from a [`governor::Quota`] so governor users keep
/// their vocabulary. Pacing never lets units through faster than the quotas allow;
/// it only adds spacing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    interval: Duration,
    burst: NonZeroU32,
}

impl Pacing {
    /// One unit per `interval`, bursts of up to `burst`.
    pub fn new(interval: Duration, burst: NonZeroU32) -> Pacing {
        Pacing {
            interval: interval.max(Duration::from_nanos(1)),
            burst,
        }
    }

    /// Spreads `quota` evenly over its window: `limit` units per `window` become one
    /// unit every `window / limit`, with bursts of `burst`.
    pub fn spread(quota: &Quota, burst: NonZeroU32) -> Pacing {
        Pacing::new(quota.window() / quota.limit(), burst)
    }

    /// The time between two units once a burst is spent.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How many units may leave at once.
    pub fn burst(&self) -> NonZeroU32 {
        self.burst
    }
}

impl From<governor::Quota> for Pacing {
    fn from(q: governor::Quota) -> Pacing {
        Pacing::new(q.replenish_interval(), q.burst_size())
    }
}

/// How a bucket remembers what it has let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Storage {
    /// [`Storage::Exact`] for windows up to [`Storage::AUTO_EXACT_UP_TO`] units,
    /// [`Storage::Bounded`] with [`Storage::AUTO_SLOTS`] slots above.
    #[default]
    Auto,
    /// One 8-byte timestamp per unit of limit: every decision is exact.
    Exact,
    /// At most `slots` timestamps per window, each standing for a group of
    /// consecutive units (`limit / slots` rounded up to a power of two) and
    /// holding the latest of their departure times. The error is always on the
    /// safe side: a group frees room when its *last* unit leaves the window, so a
    /// unit may wait at most the time its group took to fill. At a steady rate
    /// that costs at most `2 / slots` of the window's allowance (0.05 % with
    /// 4096 slots).
    Bounded {
        /// Timestamps kept per window.
        slots: NonZeroU32,
    },
}

impl Storage {
    /// Windows with limits up to this are kept exactly under [`Storage::Auto`].
    pub const AUTO_EXACT_UP_TO: u32 = 16_384;
    /// Slots per window for large limits under [`Storage::Auto`].
    pub const AUTO_SLOTS: u32 = 4096;

    /// Units per slot for a window of `limit` units.
    pub(crate) fn group_for(self, limit: u32) -> u32 {
        let slots = match self {
            Storage::Exact => return 1,
            Storage::Auto if limit <= Self::AUTO_EXACT_UP_TO => return 1,
            Storage::Auto => Self::AUTO_SLOTS,
            Storage::Bounded { slots } => slots.get(),
        };
        // a power of two, so that finding a unit's group is a shift
        limit.div_ceil(slots).max(1).next_power_of_two()
    }
}

/// Everything that limits one bucket: its quotas (all charged by every request),
/// optional pacing, and how it stores its history.
///
/// ```
/// use tower_quota::quota::{Limits, Quota};
///
/// // seed 000's contacts/search route
/// let limits = Limits::new([Quota::per_minute(200), Quota::per_hour(600), Quota::per_day(6000)]);
/// assert_eq!(limits.quotas().len(), 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    quotas: Vec<Quota>,
    pacing: Option<Pacing>,
    storage: Storage,
    capacity: Option<u32>,
}

impl Limits {
    /// A bucket limited by every quota in `quotas`.
    pub fn new(quotas: impl IntoIterator<Item = Quota>) -> Limits {
        Limits {
            quotas: quotas.into_iter().collect(),
            pacing: None,
            storage: Storage::Auto,
            capacity: None,
        }
    }

    /// Adds pacing.
    pub fn paced(mut self, pacing: impl Into<Pacing>) -> Limits {
        self.pacing = Some(pacing.into());
        self
    }

    /// Chooses how history is stored.
    pub fn storage(mut self, storage: Storage) -> Limits {
        self.storage = storage;
        self
    }

    /// Reserves room for limits raised at run time up to `units` per window
    /// without losing exactness (by default, room for the configured limit).
    pub fn capacity(mut self, units: u32) -> Limits {
        self.capacity = Some(units);
        self
    }

    /// The same limits with every window lengthened by `margin(window)`: a
    /// request reaches the server a little after it leaves the client, and not
    /// always equally late, so a client that spaces departures exactly a window
    /// apart can still land two arrivals inside one server window. A fixed
    /// window keeps its boundaries (they are the server's) and counts what left
    /// up to the margin before each boundary in the window after it too
    /// (see [`Quota::with_margin`]).
    pub fn padded(mut self, margin: impl Fn(Duration) -> Duration) -> Limits {
        for q in &mut self.quotas {
            *q = q.with_margin(margin(q.window));
        }
        self
    }

    /// The quotas.
    pub fn quotas(&self) -> &[Quota] {
        &self.quotas
    }

    /// The pacing, if any.
    pub fn pacing(&self) -> Option<Pacing> {
        self.pacing
    }

    /// The storage choice.
    pub fn storage_choice(&self) -> Storage {
        self.storage
    }

    /// The reserved capacity, if set.
    pub fn reserved_capacity(&self) -> Option<u32> {
        self.capacity
    }
}

impl From<Quota> for Limits {
    fn from(q: Quota) -> Limits {
        Limits::new([q])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_limits_and_windows_are_refused_or_raised() {
        assert!(Quota::new(0, Duration::from_secs(1)).is_none());
        assert!(Quota::new(1, Duration::ZERO).is_none());
        assert_eq!(Quota::per_second(0).limit(), 1);
        let q = Quota::with_limit(NonZeroU32::MIN, Duration::ZERO);
        assert_eq!(q.window(), Duration::from_nanos(1));
        let huge = Quota::new(1, Duration::MAX).map(|q| q.window());
        assert_eq!(huge, Some(Quota::MAX_WINDOW));
    }

    #[test]
    fn storage_groups() {
        assert_eq!(Storage::Exact.group_for(1_000_000), 1);
        assert_eq!(Storage::Auto.group_for(6000), 1);
        assert_eq!(Storage::Auto.group_for(1_000_000), 256);
        let b = Storage::Bounded {
            slots: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
        };
        assert_eq!(b.group_for(1000), 16);
        assert_eq!(b.group_for(50), 1);
    }

    #[test]
    fn pacing_from_governor_quota() {
        let g = governor::Quota::per_minute(NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN));
        let p = Pacing::from(g);
        assert_eq!(p.interval(), Duration::from_millis(300));
        assert_eq!(p.burst().get(), 200);
        let spread = Pacing::spread(&Quota::per_minute(200), NonZeroU32::MIN);
        assert_eq!(spread.interval(), Duration::from_millis(300));
    }

    #[test]
    fn per_minute_rate() {
        assert_eq!(Quota::per_hour(600).per_minute_rate(), 10.0);
        assert_eq!(Quota::per_second(2).per_minute_rate(), 120.0);
    }
}
