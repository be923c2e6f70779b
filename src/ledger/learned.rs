//! What the server has taught a bucket: corrections of its count.
//!
//! Corrections run on the response path, once per response, one at a time per
//! bucket (a mutex here; decisions never take it). [`Bucket::raise_used`] raises
//! the count to the server's (DESIGN.md, contract 5) and remembers where it put
//! the units, so that responses arriving out of order do not add the same
//! excess twice. [`Bucket::raise_used_together`] takes several windows' counts
//! from one report: what a long window counts beyond a shorter one is older
//! than it, and is held beside the log (`held.rs`) where the shorter windows
//! do not count it.

use std::collections::VecDeque;

use super::bucket::{Bucket, Snapshot};
use super::held::MAX_HELD;
use super::window::Window;
use crate::clock::Nanos;

/// One window's count in a server's report, for [`Bucket::raise_used_together`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowCount {
    /// The window's index in the bucket.
    pub window: usize,
    /// The units the server counts in it.
    pub used: u64,
    /// When they stop counting there, if the server said (as for
    /// [`Bucket::raise_used`]).
    pub frees_at: Option<Nanos>,
}

/// Corrections remembered per bucket.
const RECENT_CORRECTIONS: usize = 32;

/// The learned state of a bucket.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    recent: VecDeque<Correction>,
}

/// Units a correction added: where they were placed, and when the server's
/// units they stand for free.
#[derive(Clone, Copy, Debug)]
struct Correction {
    at: u64,
    units: u64,
    frees: u64,
}

impl Bucket {
    /// Takes the server's word that window `index` had `used` units counted as of
    /// `as_of`, and, if known, that they stop counting at `frees_at`.
    ///
    /// Only ever raises the count: units this client cannot account for are added
    /// (every window of the bucket counts them, as they were real requests). They
    /// are placed after the latest departure already planned, so reservations
    /// made before the correction keep their times; if that is already past the
    /// moment the server's units free (`frees_at`, else the end of the window of
    /// `as_of`), nothing is added. Units that earlier corrections placed after
    /// `as_of`, for usage the server still counts then, count as ours: responses
    /// arrive out of order and must not add the same excess twice. A count above
    /// the window's limit and capacity is read as that much: the window admits
    /// no more either way. Returns the units added.
    ///
    /// A server that reports several windows at once says more than each
    /// count alone: pass them together to [`Bucket::raise_used_together`],
    /// which keeps a long window's older units out of the shorter ones.
    pub fn raise_used(
        &self,
        index: usize,
        used: u64,
        as_of: Nanos,
        frees_at: Option<Nanos>,
    ) -> u64 {
        let Some(w) = self.window_list().get(index) else {
            return 0;
        };
        // One correction at a time per bucket: each must see the others' units.
        let Ok(mut learned) = self.learned.lock() else {
            return 0;
        };
        loop {
            let s = self.snapshot();
            if s.head.is_evicted() {
                return 0;
            }
            let as_of = as_of.as_u64();
            let excess = trusted(w, used).saturating_sub(self.counted(index, &s, as_of, &learned));
            // A bucket out of units refuses every request anyway.
            if excess == 0 || !s.head.has_room_for(excess) {
                return 0;
            }
            let frees = frees_at.map_or_else(|| w.frees(as_of), Nanos::as_u64);
            let at = match frees_at {
                Some(f) if !w.is_fixed() => f.as_u64().saturating_sub(w.length()),
                Some(f) => f.as_u64().saturating_sub(1).max(as_of),
                None => as_of,
            }
            .max(s.head.last);
            // Units placed after the server's own free again describe nothing
            // (reservations already reach past them): they would only hold back
            // the future, and hold the reservations below them from popping when
            // those are cancelled.
            if at >= frees {
                return 0;
            }
            if self.claim(&s, excess, at, None, false).is_ok() {
                if learned.recent.len() == RECENT_CORRECTIONS {
                    learned.recent.pop_front();
                }
                learned.recent.push_back(Correction {
                    at,
                    units: excess,
                    frees,
                });
                return excess;
            }
        }
    }

    /// What window `index` surely counts at `as_of` in state `s`: a lower
    /// bound, so that a correction never adds too few. It includes units
    /// earlier corrections placed after `as_of` for usage the server still
    /// counts then (responses come back out of order, and each must not add
    /// the same excess again) and units held beside the log (`held.rs`).
    fn counted(&self, index: usize, s: &Snapshot, as_of: u64, learned: &Learned) -> u64 {
        let Some(w) = self.window_list().get(index) else {
            return 0;
        };
        let ours = w
            .units_surely_from(w.opens(as_of), s.head)
            .saturating_sub(w.units_from(as_of + 1, s.head));
        let pending: u64 = learned
            .recent
            .iter()
            .filter(|c| c.at > as_of && c.frees > as_of)
            .map(|c| c.units)
            .sum();
        ours.saturating_add(pending)
            .saturating_add(self.held_at(index, as_of).0)
    }

    /// Takes the server's counts of several windows of this bucket at once,
    /// counted in one instant between `sent` and `received` (one response's
    /// headers; a usage body read at `received`, with `sent` the same).
    ///
    /// Every count is raised as [`Bucket::raise_used`] does (from `sent`):
    /// units of unknown time go in the log, where every window counts them for
    /// a full window. But a longer window's units beyond a shorter one's (the
    /// server's two counts) reached the server before the shorter window
    /// began there, `received` at the latest: of what the longer window lacks,
    /// up to that many are held beside the log instead (`held.rs`), in every
    /// window that can still count them, until they stop counting at the
    /// server at the latest; the shorter windows no longer do. So "minute 10
    /// of 200, hour 100 of 600, day 3,000 of 6,000" leaves room for 190
    /// requests at once, where raising each window alone fills the hour for
    /// an hour. Returns the units added.
    ///
    /// ```
    /// use tower_quota::clock::Nanos;
    /// use tower_quota::ledger::{Bucket, WindowCount};
    /// use tower_quota::quota::{Limits, Quota};
    ///
    /// let b = Bucket::new("search", Limits::new([
    ///     Quota::per_minute(200), Quota::per_hour(600), Quota::per_day(6000),
    /// ]));
    /// let now = Nanos::from_secs(86_400);
    /// let count = |window, used| WindowCount { window, used, frees_at: None };
    /// let added = b.raise_used_together(&[count(0, 10), count(1, 100), count(2, 3000)], now, now);
    /// assert_eq!(added, 3000);
    /// let used: Vec<u64> = b.state(now).windows.iter().map(|w| w.used).collect();
    /// assert_eq!(used, [10, 100, 3000]);
    /// assert_eq!(b.earliest_departure(190, now), Ok(now), "the minute's 190 at once");
    /// ```
    pub fn raise_used_together(&self, counts: &[WindowCount], sent: Nanos, received: Nanos) -> u64 {
        let windows = self.window_list();
        let mut known: Vec<WindowCount> = counts
            .iter()
            .copied()
            .filter(|c| c.window < windows.len())
            .collect();
        // Shortest first; of two counts of one window, the larger.
        known.sort_by_key(|c| {
            (
                windows[c.window].length(),
                c.window,
                std::cmp::Reverse(c.used),
            )
        });
        known.dedup_by_key(|c| c.window);
        let Some(first) = known.first() else {
            return 0;
        };
        let shortest = windows[first.window].length();
        let received = received.max(sent).as_u64();
        // What each reported window counts: the report added the most any of
        // them grew by (a hold this report's count replaced may shrink one).
        let counts = |b: &Bucket| -> Vec<u64> {
            let state = b.state(sent);
            known
                .iter()
                .map(|c| {
                    state
                        .windows
                        .get(c.window)
                        .map_or(0, |w| w.used + w.reserved)
                })
                .collect()
        };
        let before = counts(self);
        // Each window handled so far: where it begins at the server at
        // `received` at the latest, the server's count in it, and what it
        // still lacks of that once raised (units `raise_used` could not
        // place, behind reservations that already reach past them).
        let mut handled: Vec<(i128, u64, u64)> = Vec::new();
        // Windows whose live hold this report cannot replace: those it does
        // not count, and those it has held units in already. The first hold
        // of a report in a window it counts is its own count, in place of an
        // older report's (which a window it does not count keeps).
        let mut touched: Vec<bool> = (0..windows.len())
            .map(|u| !known.iter().any(|c| c.window == u))
            .collect();
        for c in &known {
            let w = &windows[c.window];
            let begins = w.server_begins(received);
            // The widest shorter window inside this one.
            let below = handled
                .iter()
                .filter(|(b, _, _)| *b > begins)
                .min_by_key(|(b, _, _)| *b)
                .copied();
            if let Some((below, counted_below, lacking)) = below.filter(|_| w.length() > shortest) {
                let older = c.used.saturating_sub(counted_below);
                self.hold_older(
                    (c.window, c.used),
                    older,
                    lacking,
                    below,
                    (sent.as_u64(), received),
                    &mut touched,
                );
            }
            // The rest (all of the shortest window's) in the log.
            self.raise_used(c.window, c.used, sent, c.frees_at);
            handled.push((
                begins,
                c.used,
                self.lacking(c.window, c.used, sent.as_u64()),
            ));
        }
        let after = counts(self);
        after
            .iter()
            .zip(&before)
            .map(|(a, b)| a.saturating_sub(*b))
            .max()
            .unwrap_or(0)
    }

    /// What window `index` still lacks of the server's `used` as of `as_of`.
    fn lacking(&self, index: usize, used: u64, as_of: u64) -> u64 {
        let (Some(w), Ok(learned)) = (self.window_list().get(index), self.learned.lock()) else {
            return 0;
        };
        let s = self.snapshot();
        trusted(w, used).saturating_sub(self.counted(index, &s, as_of, &learned))
    }

    /// Holds up to `older` of the units window `k` lacks of `used` (as of
    /// `sent`), which reached the server before `below`, in every window that
    /// can still count them after `received`, until they stop counting at the
    /// server. The `lacking` units the shorter window could not place are
    /// recent, and among them: never held. In a window this report counts and
    /// has not `touched` yet, the units replace a live hold an older report made
    /// (they are this report's own count of it: a count that fell frees what
    /// the server freed); elsewhere they add to it. All those windows or none:
    /// a hold that would not fit one of them is not made (the caller puts the
    /// units in the log).
    fn hold_older(
        &self,
        (k, used): (usize, u64),
        older: u64,
        lacking: u64,
        below: i128,
        (sent, received): (u64, u64),
        touched: &mut [bool],
    ) {
        let windows = self.window_list();
        let Some(w) = windows.get(k) else {
            return;
        };
        // Under the lock: corrections one at a time, holds written by no one else.
        let Ok(learned) = self.learned.lock() else {
            return;
        };
        let s = self.snapshot();
        if s.head.is_evicted() {
            return;
        }
        // Each window to hold in: until when, whether this report's count
        // replaces its live hold, and the units of that hold kept otherwise.
        let targets: Vec<(usize, u64, bool, u64)> = windows
            .iter()
            .enumerate()
            .map(|(u, win)| (u, win.server_frees(below - 1)))
            .filter(|&(_, until)| until > received)
            .map(|(u, until)| {
                let (old_units, old_until) = self.held_at(u, received);
                let fresh = !touched.get(u).copied().unwrap_or(true) && until >= old_until;
                (u, until, fresh, if fresh { 0 } else { old_units })
            })
            .collect();
        // What `k` counts, less a hold this report's count replaces.
        let replaced = targets
            .iter()
            .find(|t| t.0 == k && t.2)
            .map_or(0, |_| self.held_at(k, sent).0);
        let counted = self.counted(k, &s, sent, &learned).saturating_sub(replaced);
        let units = trusted(w, used)
            .saturating_sub(counted)
            .saturating_sub(lacking)
            .min(older);
        if targets
            .iter()
            .any(|&(_, _, _, kept)| kept.saturating_add(units) > MAX_HELD)
        {
            return;
        }
        for &(u, until, fresh, _) in &targets {
            if units > 0 || fresh {
                self.hold(u, units, until, received, fresh);
            }
            if let Some(t) = touched.get_mut(u) {
                *t = true;
            }
        }
    }
}

/// The server's `used`, untrusted, as far as it can matter: a window never
/// admits more than its limit or its capacity, so a count beyond that changes
/// no decision; counting it would let a hostile server grow the head's 48 bits
/// of units (`head.rs`) by any amount with every response.
fn trusted(w: &Window, used: u64) -> u64 {
    used.min(u64::from(w.limit().max(w.capacity())))
}
