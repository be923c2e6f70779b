//! Which of a bucket's windows a server's window of a given length is.
//!
//! Servers name their windows' lengths (a seed's `"minute"`, a vendor header
//! set's declared window); buckets keep theirs lengthened by the limiter's
//! margin ([`Limits::padded`](crate::quota::Limits::padded)), 1 % by default.
//! Matching by equality would miss every padded window, so a server's window
//! is the bucket's window of the same length or the shortest one at most 10 %
//! longer (a longer window under the same limit is tighter, so still safe).

use std::time::Duration;

use super::bucket::Bucket;

impl Bucket {
    /// The index of the window a server's window of `length` is, if any.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_quota::ledger::Bucket;
    /// use tower_quota::quota::{Limits, Quota};
    ///
    /// let padded = Limits::new([Quota::per_minute(200), Quota::per_hour(600)])
    ///     .padded(|w| w / 100);
    /// let bucket = Bucket::new("r", padded);
    /// assert_eq!(bucket.window_of_length(Duration::from_secs(3600)), Some(1));
    /// assert_eq!(bucket.window_of_length(Duration::from_secs(1)), None);
    /// ```
    pub fn window_of_length(&self, length: Duration) -> Option<usize> {
        let slack = length / 10;
        (0..self.window_count())
            .filter_map(|i| self.window_length(i).map(|l| (i, l)))
            .filter(|(_, l)| *l >= length && *l - length <= slack)
            .min_by_key(|(_, l)| *l)
            .map(|(i, _)| i)
    }
}
