//! What one response says about the server's limits, in one shape for every
//! header format.

use std::time::{Duration, SystemTime};

/// When a window resets or a retry may be sent.
///
/// Servers say it either as a delay from the response or as an instant on their
/// own wall clock; the two are kept apart because only the second needs the
/// server's clock offset to be turned into a local deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetAt {
    /// This long after the response was produced.
    After(Duration),
    /// At this instant on the **server's** wall clock.
    At(SystemTime),
}

impl ResetAt {
    /// The instant on the server's clock, given the server's "now" (its `Date`, or
    /// the local receive time when it sent none). `None` if it cannot be represented.
    pub fn instant(self, server_now: SystemTime) -> Option<SystemTime> {
        match self {
            ResetAt::After(d) => server_now.checked_add(d),
            ResetAt::At(t) => Some(t),
        }
    }

    /// How long to wait from `server_now` (zero if the instant has passed).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_quota::headers::ResetAt;
    ///
    /// let now = UNIX_EPOCH + Duration::from_secs(1_000);
    /// assert_eq!(ResetAt::After(Duration::from_secs(5)).wait(now), Duration::from_secs(5));
    /// let at = ResetAt::At(UNIX_EPOCH + Duration::from_secs(1_030));
    /// assert_eq!(at.wait(now), Duration::from_secs(30));
    /// assert_eq!(at.wait(now + Duration::from_secs(60)), Duration::ZERO);
    /// ```
    pub fn wait(self, server_now: SystemTime) -> Duration {
        match self {
            ResetAt::After(d) => d,
            ResetAt::At(t) => t.duration_since(server_now).unwrap_or(Duration::ZERO),
        }
    }

    /// The later of two resets, as seen from `server_now` (the conservative choice
    /// when a server contradicts itself).
    pub fn latest(self, other: ResetAt, server_now: SystemTime) -> ResetAt {
        if other.wait(server_now) > self.wait(server_now) {
            other
        } else {
            self
        }
    }
}

/// What a response says about one of the server's windows.
///
/// Every field is optional: servers send any subset, and a field that was
/// malformed is absent rather than guessed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowObservation {
    /// The IETF policy name, or the name of the declared vendor header set
    /// (`"minute"`); `None` for anonymous formats such as `X-RateLimit-*`.
    pub name: Option<String>,
    /// The window's length, when the format says it (IETF `w=`, or declared for a
    /// vendor header set).
    pub window: Option<Duration>,
    /// How many units the window allows.
    pub limit: Option<u64>,
    /// How many are left, never more than `limit`.
    pub remaining: Option<u64>,
    /// When the window resets.
    pub reset: Option<ResetAt>,
}

impl WindowObservation {
    /// Whether nothing was learned.
    pub fn is_empty(&self) -> bool {
        self.limit.is_none() && self.remaining.is_none() && self.reset.is_none()
    }

    /// Folds a contradicting reading of the same window into this one, keeping the
    /// conservative side of each field: the smaller limit and remaining, the longer
    /// window and the later reset.
    pub(crate) fn merge(&mut self, other: WindowObservation, server_now: SystemTime) {
        self.name = self.name.take().or(other.name);
        self.window = max_opt(self.window, other.window);
        self.limit = min_opt(self.limit, other.limit);
        self.remaining = min_opt(self.remaining, other.remaining);
        self.reset = match (self.reset, other.reset) {
            (Some(a), Some(b)) => Some(a.latest(b, server_now)),
            (a, b) => a.or(b),
        };
    }

    /// Makes the reading self-consistent: more remaining than the limit is read as
    /// the limit.
    pub(crate) fn clamp(&mut self) {
        if let (Some(limit), Some(remaining)) = (self.limit, self.remaining) {
            self.remaining = Some(remaining.min(limit));
        }
    }
}

/// What one response says about the server's limits.
///
/// Built by [`HeaderRules::parse`](crate::headers::HeaderRules::parse); empty when
/// the response carried no (usable) rate-limit headers, which must change nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    /// One entry per window the response describes, in the order: declared vendor
    /// sets, `X-RateLimit-*`, then the IETF fields.
    pub windows: Vec<WindowObservation>,
    /// From `Retry-After`: delta-seconds as [`ResetAt::After`], an HTTP-date as
    /// [`ResetAt::At`].
    pub retry_after: Option<ResetAt>,
    /// The server's `Date`, to estimate its clock offset.
    pub date: Option<SystemTime>,
}

impl Observation {
    /// Whether the response said nothing about limits.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() && self.retry_after.is_none()
    }

    /// The server's "now" for this response: its `Date` if it sent one, else the
    /// local receive time.
    pub fn server_now(&self, received_at: SystemTime) -> SystemTime {
        self.date.unwrap_or(received_at)
    }

    /// How long the server asks the client to hold off, measured from the response:
    /// `Retry-After` if present, else the latest reset of a window with nothing
    /// remaining, else `None`.
    ///
    /// Absolute instants are measured against the server's own `Date` when present,
    /// so a skewed local clock does not shorten the wait (`Date` has whole-second
    /// resolution, which can only lengthen it).
    pub fn wait_hint(&self, received_at: SystemTime) -> Option<Duration> {
        let now = self.server_now(received_at);
        if let Some(r) = self.retry_after {
            return Some(r.wait(now));
        }
        self.windows
            .iter()
            .filter(|w| w.remaining == Some(0))
            .filter_map(|w| w.reset)
            .map(|r| r.wait(now))
            .max()
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}
