//! Time, as the engine sees it.
//!
//! Every decision needs "now", and reading a clock is the largest part of a
//! decision's cost, so the engine never reads one itself: callers pass a
//! [`Nanos`] in, taken from a [`Clock`] once per request. Tests use a
//! [`ManualClock`] and never sleep.
//!
//! Times are nanoseconds on a monotonic timeline that starts when the clock is
//! created. Servers speak wall-clock time (`X-RateLimit-Reset: 1716130800000`,
//! `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`); [`Clock::monotonic_at`] turns such an
//! instant into the monotonic timeline once, using a wall/monotonic pair taken
//! when the clock was created, so a later step of the wall clock (NTP, a user
//! changing the date) cannot move a reset time.

use std::fmt;
use std::ops::{Add, Sub};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A point on a clock's monotonic timeline, in nanoseconds since the clock's origin.
///
/// `u64` nanoseconds last 584 years; the engine stores them in 60 bits (36 years of
/// uptime), see [`Nanos::MAX`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Nanos(u64);

impl Nanos {
    /// The origin of the timeline.
    pub const ZERO: Nanos = Nanos(0);
    /// The latest representable instant (2^60 - 1 ns, about 36 years).
    pub const MAX: Nanos = Nanos((1 << 60) - 1);

    /// An instant `n` nanoseconds after the origin, saturating at [`Nanos::MAX`].
    pub const fn new(n: u64) -> Nanos {
        if n > Self::MAX.0 {
            Self::MAX
        } else {
            Nanos(n)
        }
    }

    /// An instant `d` after the origin, saturating at [`Nanos::MAX`].
    pub fn from_duration(d: Duration) -> Nanos {
        Nanos::new(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// An instant `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Nanos {
        Nanos::new(ms.saturating_mul(1_000_000))
    }

    /// An instant `s` seconds after the origin.
    pub const fn from_secs(s: u64) -> Nanos {
        Nanos::new(s.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the origin.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Time since the origin as a [`Duration`].
    pub const fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Nanos) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Nanos {
    type Output = Nanos;
    fn add(self, d: Duration) -> Nanos {
        Nanos::new(self.0.saturating_add(Nanos::from_duration(d).0))
    }
}

impl Sub<Duration> for Nanos {
    type Output = Nanos;
    /// Saturates at the origin.
    fn sub(self, d: Duration) -> Nanos {
        Nanos(self.0.saturating_sub(Nanos::from_duration(d).0))
    }
}

impl fmt::Debug for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", Duration::from_nanos(self.0))
    }
}

impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t+{:?}", Duration::from_nanos(self.0))
    }
}

/// A source of monotonic time for the engine and the layer.
///
/// Implementations must never go backwards and must be cheap: the layer reads
/// the clock once per request.
pub trait Clock: Send + Sync + 'static {
    /// The current instant on this clock's monotonic timeline.
    fn now(&self) -> Nanos;

    /// The wall-clock time at this clock's origin ([`Nanos::ZERO`]).
    fn wall_origin(&self) -> SystemTime;

    /// Converts a wall-clock instant (a server's reset time) to this clock's
    /// timeline, saturating at the origin for instants before it.
    ///
    /// `server_offset` is how far the server's clock runs ahead of ours (positive)
    /// or behind (negative), as estimated from its `Date` header; the instant is
    /// shifted by it before conversion, so a server whose clock is 2 s fast and
    /// says "resets at 12:00:02" resets at our 12:00:00.
    fn monotonic_at(&self, wall: SystemTime, server_offset: ClockOffset) -> Nanos {
        let local = server_offset.to_local(wall);
        match local.duration_since(self.wall_origin()) {
            Ok(d) => Nanos::from_duration(d),
            Err(_) => Nanos::ZERO,
        }
    }

    /// Converts an instant on this timeline to wall-clock time (for reports).
    fn to_wall(&self, t: Nanos) -> SystemTime {
        self.wall_origin() + t.as_duration()
    }

    /// The [`std::time::Instant`] of `t`, for timers; `None` for clocks that are
    /// not tied to real (or tokio's) time, such as [`ManualClock`].
    fn instant_at(&self, t: Nanos) -> Option<Instant> {
        let _ = t;
        None
    }
}

/// How far a server's clock is ahead of the local wall clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockOffset {
    ahead: bool,
    by: Duration,
}

impl ClockOffset {
    /// The server's clock agrees with ours.
    pub const ZERO: ClockOffset = ClockOffset {
        ahead: true,
        by: Duration::ZERO,
    };

    /// The server's clock runs `by` ahead of ours.
    pub fn ahead(by: Duration) -> ClockOffset {
        ClockOffset { ahead: true, by }
    }

    /// The server's clock runs `by` behind ours.
    pub fn behind(by: Duration) -> ClockOffset {
        ClockOffset { ahead: false, by }
    }

    /// The offset seen between a server's `Date` and our wall clock at the same moment.
    pub fn between(server: SystemTime, local: SystemTime) -> ClockOffset {
        match server.duration_since(local) {
            Ok(by) => ClockOffset::ahead(by),
            Err(e) => ClockOffset::behind(e.duration()),
        }
    }

    /// A server instant expressed on the local wall clock.
    pub fn to_local(self, server_instant: SystemTime) -> SystemTime {
        if self.ahead {
            server_instant.checked_sub(self.by).unwrap_or(UNIX_EPOCH)
        } else {
            server_instant
                .checked_add(self.by)
                .unwrap_or(server_instant)
        }
    }
}

/// The operating system's monotonic clock: `CLOCK_MONOTONIC`, the clock behind
/// [`std::time::Instant`].
///
/// It is truly monotonic, unlike raw TSC reads that can run fast or backwards on
/// some hypervisors (governor#299), and costs about 17 ns through the vDSO. On
/// Linux it is read with `rustix` straight from the vDSO, which saves the
/// `Instant` to `Duration` to `u128` conversions (about 4 ns); elsewhere through
/// `Instant`.
#[derive(Clone, Debug)]
pub struct SystemClock {
    origin: Instant,
    /// The raw monotonic reading at or just before `origin`.
    #[cfg(target_os = "linux")]
    origin_ns: u64,
    wall_origin: SystemTime,
}

/// Nanoseconds on `CLOCK_MONOTONIC`, the clock `Instant` reads on Linux.
#[cfg(target_os = "linux")]
#[inline]
fn monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    // Monotonic readings are never negative.
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> SystemClock {
        // Read before `Instant::now()`: this clock's readings are then never
        // behind the `Instant`s it gives timers, so a timer set for `t` fires
        // when `now()` reads `t` or later, never before.
        #[cfg(target_os = "linux")]
        let origin_ns = monotonic_ns();
        SystemClock {
            origin: Instant::now(),
            #[cfg(target_os = "linux")]
            origin_ns,
            wall_origin: SystemTime::now(),
        }
    }

    /// The [`Instant`] of a point on this clock's timeline (for timers).
    pub fn instant_at(&self, t: Nanos) -> Instant {
        self.origin + t.as_duration()
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    #[cfg(target_os = "linux")]
    #[inline]
    fn now(&self) -> Nanos {
        Nanos(monotonic_ns().saturating_sub(self.origin_ns))
    }

    #[cfg(not(target_os = "linux"))]
    #[inline]
    fn now(&self) -> Nanos {
        Nanos::from_duration(self.origin.elapsed())
    }

    fn wall_origin(&self) -> SystemTime {
        self.wall_origin
    }

    fn instant_at(&self, t: Nanos) -> Option<Instant> {
        Some(self.instant_at(t))
    }
}

/// Tokio's clock: the system's monotonic clock, or tokio's paused test clock
/// (`#[tokio::test(start_paused = true)]`), where sleeping costs no real time.
///
/// This is the layer's default: its waits are tokio timers on the same clock.
/// Clones share the origin.
#[derive(Clone, Debug)]
pub struct TokioClock {
    origin: tokio::time::Instant,
    wall_origin: SystemTime,
}

impl TokioClock {
    /// A clock whose origin is now (on tokio's timeline).
    pub fn new() -> TokioClock {
        TokioClock {
            origin: tokio::time::Instant::now(),
            wall_origin: SystemTime::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    #[inline]
    fn now(&self) -> Nanos {
        Nanos::from_duration(tokio::time::Instant::now().saturating_duration_since(self.origin))
    }

    fn wall_origin(&self) -> SystemTime {
        self.wall_origin
    }

    fn instant_at(&self, t: Nanos) -> Option<Instant> {
        Some((self.origin + t.as_duration()).into_std())
    }
}

/// A clock that moves only when told to: for tests and simulations.
///
/// Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use tower_quota::clock::{Clock, ManualClock, Nanos};
///
/// let clock = ManualClock::new();
/// assert_eq!(clock.now(), Nanos::ZERO);
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now(), Nanos::from_millis(1500));
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
    wall_origin: SystemTime,
}

impl ManualClock {
    /// A clock at [`Nanos::ZERO`] whose origin is the Unix epoch plus one day
    /// (so tests read simple wall-clock times).
    pub fn new() -> ManualClock {
        ManualClock::with_wall_origin(UNIX_EPOCH + Duration::from_secs(86_400))
    }

    /// A clock at [`Nanos::ZERO`] that maps its origin to `wall_origin`.
    pub fn with_wall_origin(wall_origin: SystemTime) -> ManualClock {
        ManualClock {
            now: Arc::new(AtomicU64::new(0)),
            wall_origin,
        }
    }

    /// Moves time forward by `d`.
    pub fn advance(&self, d: Duration) {
        let step = Nanos::from_duration(d).as_u64();
        let _ = self
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(Nanos::new(n.saturating_add(step)).as_u64())
            });
    }

    /// Moves time to `t`; a `t` in the past is ignored (the clock never goes back).
    pub fn set(&self, t: Nanos) {
        self.now.fetch_max(t.as_u64(), Ordering::AcqRel);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Nanos {
        Nanos(self.now.load(Ordering::Acquire))
    }

    fn wall_origin(&self) -> SystemTime {
        self.wall_origin
    }
}

impl<C: Clock> Clock for Arc<C> {
    #[inline]
    fn now(&self) -> Nanos {
        (**self).now()
    }
    fn wall_origin(&self) -> SystemTime {
        (**self).wall_origin()
    }
    fn instant_at(&self, t: Nanos) -> Option<Instant> {
        (**self).instant_at(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_saturate_instead_of_overflowing() {
        assert_eq!(Nanos::new(u64::MAX), Nanos::MAX);
        assert_eq!(Nanos::MAX + Duration::from_secs(10), Nanos::MAX);
        assert_eq!(Nanos::ZERO - Duration::from_secs(1), Nanos::ZERO);
        assert_eq!(Nanos::from_duration(Duration::MAX), Nanos::MAX);
    }

    #[test]
    fn manual_clock_never_goes_back() {
        let c = ManualClock::new();
        c.set(Nanos::from_secs(5));
        c.set(Nanos::from_secs(2));
        assert_eq!(c.now(), Nanos::from_secs(5));
        let shared = c.clone();
        shared.advance(Duration::from_secs(1));
        assert_eq!(c.now(), Nanos::from_secs(6));
    }

    #[test]
    fn wall_times_map_to_the_monotonic_timeline_with_the_server_offset() {
        let origin = UNIX_EPOCH + Duration::from_secs(1_000);
        let c = ManualClock::with_wall_origin(origin);
        let reset = origin + Duration::from_secs(30);
        assert_eq!(
            c.monotonic_at(reset, ClockOffset::ZERO),
            Nanos::from_secs(30)
        );
        // Server 2 s fast: its "30 s" is our 28 s.
        let fast = ClockOffset::ahead(Duration::from_secs(2));
        assert_eq!(c.monotonic_at(reset, fast), Nanos::from_secs(28));
        let slow = ClockOffset::behind(Duration::from_secs(2));
        assert_eq!(c.monotonic_at(reset, slow), Nanos::from_secs(32));
        // Before the origin: clamps to it.
        assert_eq!(c.monotonic_at(UNIX_EPOCH, ClockOffset::ZERO), Nanos::ZERO);
        assert_eq!(c.to_wall(Nanos::from_secs(30)), reset);
    }

    #[test]
    fn offset_between_server_and_local() {
        let local = UNIX_EPOCH + Duration::from_secs(100);
        let off = ClockOffset::between(local + Duration::from_secs(3), local);
        assert_eq!(off, ClockOffset::ahead(Duration::from_secs(3)));
        let off = ClockOffset::between(local - Duration::from_secs(3), local);
        assert_eq!(off, ClockOffset::behind(Duration::from_secs(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let c = TokioClock::new();
        assert_eq!(c.now(), Nanos::ZERO);
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(c.now(), Nanos::from_secs(90));
        let at = c
            .instant_at(Nanos::from_secs(100))
            .map(tokio::time::Instant::from_std);
        assert_eq!(
            at,
            Some(tokio::time::Instant::now() + Duration::from_secs(10))
        );
    }

    #[test]
    fn system_clock_is_monotonic() {
        let c = SystemClock::new();
        let mut prev = c.now();
        for _ in 0..1000 {
            let n = c.now();
            assert!(n >= prev);
            prev = n;
        }
    }
}
