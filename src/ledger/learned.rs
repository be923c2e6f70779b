//! What the server has taught a bucket: corrections of its count.
//!
//! Corrections run on the response path, once per response, one at a time per
//! bucket (a mutex here; decisions never take it). [`Bucket::raise_used`] raises
//! the count to the server's (DESIGN.md, contract 5) and remembers where it put
//! the units, so that responses arriving out of order do not add the same
//! excess twice.

use std::collections::VecDeque;

use super::bucket::Bucket;
use crate::clock::Nanos;

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
            // What we surely counted: a lower bound, so that we never add too few.
            let ours = w
                .units_surely_from(w.opens(as_of), s.head)
                .saturating_sub(w.units_from(as_of + 1, s.head));
            // Units earlier corrections placed after `as_of` (so not in `ours`)
            // for usage the server still counts at `as_of`: responses come back
            // out of order, and each must not add the same excess again.
            let pending: u64 = learned
                .recent
                .iter()
                .filter(|c| c.at > as_of && c.frees > as_of)
                .map(|c| c.units)
                .sum();
            // A window never admits more than its limit or its capacity, so
            // a count beyond that (the server's, untrusted) changes no
            // decision; counting it would let a hostile server grow the head's
            // 48 bits of units (`head.rs`) by any amount with every response.
            let used = used.min(u64::from(w.limit().max(w.capacity())));
            let excess = used.saturating_sub(ours.saturating_add(pending));
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
}
