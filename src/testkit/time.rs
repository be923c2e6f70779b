//! The server's time: an injectable clock, compressed by a scale factor.
//!
//! The server measures everything on the monotonic timeline of a [`Clock`]
//! (real time). Limits are written in *API time* ("60 requests / 60 s"); with a
//! [`time_scale`](crate::testkit::Config::time_scale) of 60 an API minute lasts
//! one real second, so every API duration is divided by the scale once, when the
//! server starts, and from then on the server only deals in real time. That is
//! what makes compression invisible to a client: the reset times, `Retry-After`
//! values and hour labels it prints are real wall-clock values, computed from the
//! clock's wall origin ([`Clock::to_wall`]), so they are deterministic under a
//! [`ManualClock`](crate::clock::ManualClock).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::{Clock, Nanos};

/// The clock a server reads and the compression it applies.
#[derive(Clone)]
pub(crate) struct ServerTime {
    clock: Arc<dyn Clock>,
    scale: f64,
    /// Nanoseconds from the Unix epoch to the clock's origin: fixed windows and
    /// hour buckets are aligned to wall-clock boundaries, like a real server's.
    epoch_offset: u128,
}

impl fmt::Debug for ServerTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTime")
            .field("now", &self.clock.now())
            .field("scale", &self.scale)
            .finish()
    }
}

impl ServerTime {
    /// `scale` API seconds pass per real second; a non-finite or non-positive
    /// scale is treated as 1.
    pub(crate) fn new(clock: Arc<dyn Clock>, scale: f64) -> ServerTime {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        let epoch_offset = clock
            .wall_origin()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        ServerTime {
            clock,
            scale,
            epoch_offset,
        }
    }

    /// Now, on the clock's monotonic timeline.
    pub(crate) fn now(&self) -> Nanos {
        self.clock.now()
    }

    /// The real duration of an API duration (at least one nanosecond).
    pub(crate) fn real(&self, api: Duration) -> Duration {
        if self.scale == 1.0 {
            return api.max(Duration::from_nanos(1));
        }
        let nanos = (api.as_nanos() as f64 / self.scale).round();
        Duration::from_nanos(nanos.clamp(1.0, u64::MAX as f64) as u64)
    }

    /// Milliseconds since the Unix epoch at `t` ([`Clock::to_wall`]), rounded
    /// up so that a client waiting until then is never early.
    pub(crate) fn epoch_millis_ceil(&self, t: Nanos) -> u128 {
        let wall = self.clock.to_wall(t);
        let nanos = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        nanos.div_ceil(1_000_000)
    }

    /// The index of the wall-aligned window of length `real` that holds `t`.
    pub(crate) fn window_index(&self, t: Nanos, real: Duration) -> u128 {
        (self.epoch_offset + u128::from(t.as_u64())) / real.as_nanos().max(1)
    }

    /// The first instant of the wall-aligned window `index` of length `real`
    /// (the origin if that window began before it).
    pub(crate) fn window_start(&self, index: u128, real: Duration) -> Nanos {
        let start = index * real.as_nanos().max(1);
        let since_origin = start.saturating_sub(self.epoch_offset);
        Nanos::new(u64::try_from(since_origin).unwrap_or(u64::MAX))
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a wall-clock time (UTC, whole seconds).
pub(crate) fn iso8601(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        crate::report::date::format_day(days),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn iso8601_formats_utc() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_779_199_200);
        assert_eq!(iso8601(t), "2026-05-19T14:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661);
        assert_eq!(iso8601(leap), "2000-02-29T01:01:01Z");
    }

    #[test]
    fn compression_divides_api_durations() {
        let t = ServerTime::new(Arc::new(ManualClock::new()), 60.0);
        assert_eq!(t.real(Duration::from_secs(60)), Duration::from_secs(1));
        assert_eq!(t.real(Duration::from_secs(3600)), Duration::from_secs(60));
        let t = ServerTime::new(Arc::new(ManualClock::new()), f64::NAN);
        assert_eq!(t.real(Duration::from_secs(60)), Duration::from_secs(60));
    }

    #[test]
    fn windows_align_to_the_wall_clock() {
        let origin = UNIX_EPOCH + Duration::from_secs(90);
        let t = ServerTime::new(Arc::new(ManualClock::with_wall_origin(origin)), 1.0);
        let minute = Duration::from_secs(60);
        // The origin is 00:01:30, inside the window [00:01:00, 00:02:00).
        assert_eq!(t.window_index(Nanos::ZERO, minute), 1);
        assert_eq!(t.window_start(2, minute), Nanos::from_secs(30));
        assert_eq!(t.window_start(1, minute), Nanos::ZERO);
        assert_eq!(t.epoch_millis_ceil(Nanos::new(1)), 90_001);
    }
}
