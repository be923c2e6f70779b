//! What the server has taught a bucket: corrections of its count.
//!
//! Corrections run on the response path, once per response, one at a time per
//! bucket (a mutex here; decisions never take it). [`Bucket::raise_used`] raises
//! the count to the server's (DESIGN.md, contract 5) and remembers where it put
//! the units, so that responses arriving out of order do not add the same
//! excess twice.

use std::collections::VecDeque;

use super::bucket::{Bucket, Snapshot};
use super::window::Window;
use crate::clock::Nanos;

/// One window's count in a server's report, for
/// [`Bucket::raise_used_together`]: the window's index, the units the server
/// counts in it, and when they stop counting there, if the server said.
pub type WindowCount = (usize, u64, Option<Nanos>);

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
    /// all as of `as_of` (one usage body, or one response's headers): `(window,
    /// used, frees_at)`, each as [`Bucket::raise_used`] takes it.
    ///
    /// The shortest window's units may have left at any moment of it, so they
    /// are raised as [`Bucket::raise_used`] does: in the log, counted by every
    /// window. A longer window's units beyond what it then counts cannot be in
    /// a shorter window reported here (that one would have counted them): they
    /// left before it begins. They are held beside the log (`held.rs`) in every
    /// window that reaches back before it, until they stop counting there at
    /// the latest, and shorter windows never see them. So "minute 10 of 200,
    /// hour 100 of 600, day 3,000 of 6,000" leaves room for 190 requests at
    /// once, where raising each window alone would fill the hour for an hour.
    /// Returns the units added.
    ///
    /// ```
    /// use tower_quota::clock::Nanos;
    /// use tower_quota::ledger::Bucket;
    /// use tower_quota::quota::{Limits, Quota};
    ///
    /// let b = Bucket::new("search", Limits::new([
    ///     Quota::per_minute(200), Quota::per_hour(600), Quota::per_day(6000),
    /// ]));
    /// let now = Nanos::from_secs(86_400);
    /// let added = b.raise_used_together(&[(0, 10, None), (1, 100, None), (2, 3000, None)], now);
    /// assert_eq!(added, 3000);
    /// let used: Vec<u64> = b.state(now).windows.iter().map(|w| w.used).collect();
    /// assert_eq!(used, [10, 100, 3000]);
    /// assert_eq!(b.earliest_departure(190, now), Ok(now), "the minute's 190 at once");
    /// ```
    pub fn raise_used_together(&self, counts: &[WindowCount], as_of: Nanos) -> u64 {
        let windows = self.window_list();
        let mut known: Vec<WindowCount> = counts
            .iter()
            .copied()
            .filter(|(i, _, _)| *i < windows.len())
            .collect();
        // Shortest first; of two counts of one window, the larger.
        known.sort_by_key(|&(i, used, _)| (windows[i].length(), i, std::cmp::Reverse(used)));
        known.dedup_by_key(|(i, _, _)| *i);
        let Some(&(first, ..)) = known.first() else {
            return 0;
        };
        let now = as_of.as_u64();
        let shortest = windows[first].length();
        let mut added = 0u64;
        // Where each window handled so far begins to count at `as_of`.
        let mut handled: Vec<i128> = Vec::new();
        for &(k, used, frees_at) in &known {
            let begins = windows[k].counts_from(now);
            let below = handled.iter().copied().filter(|&b| b > begins).min();
            let held = match below {
                Some(below) if windows[k].length() > shortest => {
                    self.hold_older(k, used, below, now)
                }
                _ => None,
            };
            let units = match held {
                Some(units) => units,
                None => self.raise_used(k, used, as_of, frees_at),
            };
            added = added.saturating_add(units);
            handled.push(begins);
        }
        added
    }

    /// Holds the units window `k` lacks of `used` at `now` in every window that
    /// counts what left before `below` (where a shorter window reported with
    /// it begins), until those units stop counting there. `None` if they do not
    /// fit the holds (the caller puts them in the log instead).
    fn hold_older(&self, k: usize, used: u64, below: i128, now: u64) -> Option<u64> {
        let windows = self.window_list();
        let w = windows.get(k)?;
        let learned = self.learned.lock().ok()?;
        let s = self.snapshot();
        if s.head.is_evicted() {
            return Some(0);
        }
        let excess = trusted(w, used).saturating_sub(self.counted(k, &s, now, &learned));
        if excess == 0 {
            return Some(0);
        }
        // Every unit held left before `below`: a window counts it until it
        // frees a unit that left just before then. A fixed window reckons
        // from 0 if that is before the timeline began (later: the safe side).
        let left_by = below - 1;
        for (u, win) in windows.iter().enumerate() {
            if win.counts_from(now) >= below {
                continue; // it counts nothing that left before `below`
            }
            let until = if win.is_fixed() {
                win.frees(u64::try_from(left_by).unwrap_or(0))
            } else {
                u64::try_from(left_by + i128::from(win.length())).unwrap_or(0)
            };
            if until > now && !self.hold(u, excess, until, now) {
                return None;
            }
        }
        Some(excess)
    }
}

/// The server's `used`, untrusted, as far as it can matter: a window never
/// admits more than its limit or its capacity, so a count beyond that changes
/// no decision; counting it would let a hostile server grow the head's 48 bits
/// of units (`head.rs`) by any amount with every response.
fn trusted(w: &Window, used: u64) -> u64 {
    used.min(u64::from(w.limit().max(w.capacity())))
}
