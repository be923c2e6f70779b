//! A bucket as a shared store sees it: a stable name and its windows.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::ledger::Bucket;

/// One window of a [`SharedBucket`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedWindow {
    /// Units per window.
    pub limit: u32,
    /// The window's length.
    pub length: Duration,
    /// For a fixed window, the wall-clock instant one of its windows starts at
    /// (the server's reset); `None` for a sliding window.
    pub anchor: Option<SystemTime>,
    /// How much of `length` is the limiter's safety margin. A fixed window's
    /// boundaries are every `length - margin` (the server's), and it also
    /// counts what left up to `margin` before its start; a sliding window is
    /// simply `length` long.
    pub margin: Duration,
}

/// A bucket named the same in every process.
///
/// `id` is what processes agree on (a route's label, or a hash of an account
/// or API key made the same way everywhere); `label` is what errors and reports
/// show. Neither holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedBucket {
    /// The scope (`route`, `account`, `api_key`).
    pub scope: &'static str,
    /// The name every process gives this bucket (never a key in clear).
    pub id: Arc<str>,
    /// What errors and reports show.
    pub label: Arc<str>,
    /// Its windows, as configured (and corrected) in this process.
    pub windows: Vec<SharedWindow>,
}

impl SharedBucket {
    /// A bucket `id` in `scope` with `windows`.
    pub fn new(
        scope: &'static str,
        id: impl Into<Arc<str>>,
        windows: impl IntoIterator<Item = SharedWindow>,
    ) -> SharedBucket {
        let id = id.into();
        SharedBucket {
            scope,
            label: id.clone(),
            id,
            windows: windows.into_iter().collect(),
        }
    }

    /// Its longest window: after that long, nothing it sent counts anywhere.
    pub(crate) fn longest(&self) -> Duration {
        self.windows
            .iter()
            .map(|w| w.length)
            .max()
            .unwrap_or_default()
    }

    /// The shared view of local bucket `b`: its current limits and padded
    /// window lengths, fixed windows anchored on the wall clock.
    pub(crate) fn of<C: Clock>(
        scope: &'static str,
        id: Arc<str>,
        b: &Bucket,
        clock: &C,
    ) -> SharedBucket {
        let windows = (0..b.window_count())
            .filter_map(|i| {
                Some(SharedWindow {
                    limit: b.limit(i)?,
                    length: b.window_length(i)?,
                    anchor: b.anchor(i).map(|a| clock.to_wall(a)),
                    margin: b.window_margin(i)?,
                })
            })
            .collect();
        SharedBucket {
            scope,
            id,
            label: b.label().clone(),
            windows,
        }
    }
}
