//! What a usage body's window names mean.
//!
//! Seed 000 names its windows (`"minute"`, `"hour"`, `"day"`) instead of giving
//! their lengths, and other vendors say `"second"`, `"week"` or `"month"`. A
//! seed is only useful if each name becomes the exact length of one of the
//! bucket's windows, so the mapping is a table the user can see, extend and
//! replace, rather than a guess buried in a parser. A name the table does not
//! know is skipped with a warning: a wrong length would charge the wrong window.
//!
//! Tests compress time (the testkit's `Config::time_scale(60.0)` makes an API
//! minute last one real second); [`WindowNames::scaled`] applies the same
//! compression to the table.

use std::time::Duration;

/// A table from window names to window lengths.
///
/// ```
/// use std::time::Duration;
/// use tower_quota::seed::WindowNames;
///
/// let names = WindowNames::standard().with("fortnight", Duration::from_secs(14 * 86_400));
/// assert_eq!(names.get("minute"), Some(Duration::from_secs(60)));
/// assert_eq!(names.get("fortnight"), Some(Duration::from_secs(1_209_600)));
/// assert_eq!(names.get("decade"), None);
///
/// // Time compression for tests: an API minute lasts one real second.
/// let fast = WindowNames::standard().scaled(60.0);
/// assert_eq!(fast.get("minute"), Some(Duration::from_secs(1)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowNames {
    entries: Vec<(String, Duration)>,
}

impl WindowNames {
    /// One month in the standard table: 30 days.
    ///
    /// Calendar months last 28 to 31 days and a client cannot know which one a
    /// server means. For a quota this is the conservative choice only if the
    /// server's month is at least as long: otherwise replace it with
    /// [`WindowNames::with`]`("month", ...)`. 30 days is what most billing
    /// periods and vendors' "per month" limits mean in practice.
    pub const MONTH: Duration = Duration::from_secs(30 * 86_400);

    /// An empty table: every name is unknown until added with [`WindowNames::with`].
    pub fn empty() -> WindowNames {
        WindowNames {
            entries: Vec::new(),
        }
    }

    /// `second` 1 s, `minute` 60 s, `hour` 3600 s, `day` 86 400 s, `week` 7
    /// days, `month` 30 days (see [`WindowNames::MONTH`]).
    pub fn standard() -> WindowNames {
        WindowNames::empty()
            .with("second", Duration::from_secs(1))
            .with("minute", Duration::from_secs(60))
            .with("hour", Duration::from_secs(3600))
            .with("day", Duration::from_secs(86_400))
            .with("week", Duration::from_secs(7 * 86_400))
            .with("month", WindowNames::MONTH)
    }

    /// The table with `name` meaning `length`, replacing an earlier meaning.
    /// Names are compared exactly (`"Minute"` is not `"minute"`).
    pub fn with(mut self, name: impl Into<String>, length: Duration) -> WindowNames {
        let name = name.into();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = length,
            None => self.entries.push((name, length)),
        }
        self
    }

    /// The table with every length divided by `factor`: API time runs `factor`
    /// times faster than real time, as with the testkit's `Config::time_scale`
    /// (60: a `"minute"` lasts one second).
    ///
    /// A `factor` that is not finite or not positive leaves the table as it is;
    /// lengths never drop below one nanosecond.
    pub fn scaled(mut self, factor: f64) -> WindowNames {
        if !factor.is_finite() || factor <= 0.0 {
            return self;
        }
        for (_, length) in &mut self.entries {
            let scaled = Duration::try_from_secs_f64(length.as_secs_f64() / factor);
            *length = scaled.unwrap_or(Duration::MAX).max(Duration::from_nanos(1));
        }
        self
    }

    /// The length of window `name`, if the table knows it.
    pub fn get(&self, name: &str) -> Option<Duration> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, length)| *length)
    }

    /// The names and lengths, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Duration)> {
        self.entries.iter().map(|(n, d)| (n.as_str(), *d))
    }
}

impl Default for WindowNames {
    /// [`WindowNames::standard`].
    fn default() -> WindowNames {
        WindowNames::standard()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_table() {
        let n = WindowNames::standard();
        let got: Vec<(&str, u64)> = n.iter().map(|(k, d)| (k, d.as_secs())).collect();
        assert_eq!(
            got,
            [
                ("second", 1),
                ("minute", 60),
                ("hour", 3600),
                ("day", 86_400),
                ("week", 604_800),
                ("month", 2_592_000),
            ]
        );
        assert_eq!(WindowNames::default(), n);
        assert_eq!(n.get("Minute"), None);
    }

    #[test]
    fn with_replaces_and_extends() {
        let n = WindowNames::standard()
            .with("month", Duration::from_secs(31 * 86_400))
            .with("quarter", Duration::from_secs(91 * 86_400));
        assert_eq!(n.get("month"), Some(Duration::from_secs(31 * 86_400)));
        assert_eq!(n.get("quarter"), Some(Duration::from_secs(91 * 86_400)));
        assert_eq!(n.iter().count(), 7);
        assert_eq!(WindowNames::empty().get("minute"), None);
    }

    #[test]
    fn scaling_compresses_time_and_ignores_nonsense() {
        let n = WindowNames::standard().scaled(60.0);
        assert_eq!(n.get("minute"), Some(Duration::from_secs(1)));
        assert_eq!(n.get("hour"), Some(Duration::from_secs(60)));
        assert_eq!(n.get("second"), Some(Duration::from_nanos(16_666_667)));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(WindowNames::standard().scaled(bad), WindowNames::standard());
        }
        let tiny = WindowNames::standard().scaled(1e300);
        assert_eq!(tiny.get("second"), Some(Duration::from_nanos(1)));
        let huge = WindowNames::standard().scaled(1e-300);
        assert_eq!(huge.get("second"), Some(Duration::MAX));
    }
}
