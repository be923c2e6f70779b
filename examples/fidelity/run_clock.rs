//! The clock of one run, shared by the server and every client.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tower_quota::clock::{Clock, Nanos};

/// Tokio's clock, with its origin at the instant the run's traffic starts and
/// that origin mapped to a wall-clock time of our choosing.
///
/// Seed 000's server counts in fixed windows aligned to the wall clock. A run
/// that started at a random point of a (compressed) day would straddle a day
/// boundary on some runs and not on others, and the allowance, hence every
/// utilisation figure, would depend on luck. So the run starts at the
/// beginning of a server day, as a nightly job would: the origin is mapped to
/// a multiple of `align` since the Unix epoch.
#[derive(Clone, Debug)]
pub struct RunClock {
    origin: tokio::time::Instant,
    wall_origin: SystemTime,
}

impl RunClock {
    /// A clock whose origin is `delay` from now (it reads zero until then),
    /// mapped to the last multiple of `align` since the epoch before the real
    /// wall-clock time; `None` keeps the real time.
    pub fn starting_in(delay: Duration, align: Option<Duration>) -> RunClock {
        let wall = SystemTime::now() + delay;
        let wall_origin = match align {
            Some(align) if !align.is_zero() => {
                let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
                let whole = since.as_nanos() / align.as_nanos() * align.as_nanos();
                UNIX_EPOCH + Duration::from_nanos(u64::try_from(whole).unwrap_or(0))
            }
            _ => wall,
        };
        RunClock {
            origin: tokio::time::Instant::now() + delay,
            wall_origin,
        }
    }

    /// The tokio instant of the origin, when traffic starts.
    pub fn origin(&self) -> tokio::time::Instant {
        self.origin
    }

    /// The tokio instant of `t` on this clock.
    pub fn instant(&self, t: Nanos) -> tokio::time::Instant {
        self.origin + t.as_duration()
    }
}

impl Clock for RunClock {
    fn now(&self) -> Nanos {
        Nanos::from_duration(tokio::time::Instant::now().saturating_duration_since(self.origin))
    }

    fn wall_origin(&self) -> SystemTime {
        self.wall_origin
    }

    fn instant_at(&self, t: Nanos) -> Option<Instant> {
        Some(self.instant(t).into_std())
    }
}
