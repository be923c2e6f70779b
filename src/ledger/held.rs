//! Units the server counts in one window, and in no shorter one, until an
//! instant: what a correction knows of usage older than a shorter window.
//!
//! A bucket's units form one log that every window counts (`bucket.rs`), so a
//! unit whose time is unknown is put in the log at the moment of the
//! correction: it then counts in every window for a full window. That is the
//! safe placement when nothing else is known, but it is far too strict when
//! the server also told the counts of the shorter windows. A usage body that
//! says "minute 10 of 200, hour 100 of 600, day 3,000 of 6,000" puts 2,900 of
//! the day's units before the last hour: in the log, they would fill the
//! minute and the hour windows and hold the first request back for an hour,
//! where the server admits 190 at once.
//!
//! A [`Held`] keeps such units beside the log, per window: the window counts
//! them until `until` (from when none of them can still count at the server),
//! and a window too short to count them holds none. Decisions read it only
//! while the bucket has a hold at all (one word on the bucket's first line).
//!
//! The word packs the deadline in units of 2^20 ns (about 1 ms, 40 bits: 36
//! years), rounded up, and the units exactly in 24 bits; a hold that would
//! pass 2^24 - 1 units is refused, and the caller puts the units in the log
//! instead (the safe side).

use std::sync::atomic::{AtomicU64, Ordering};

const UNTIL_SHIFT: u32 = 20;
const UNITS_BITS: u32 = 24;
/// The most units one window holds beside its log.
pub(crate) const MAX_HELD: u64 = (1 << UNITS_BITS) - 1;
const UNTIL_MAX: u64 = (1 << (64 - UNITS_BITS)) - 1;

/// One window's held units: see the module's notes.
#[derive(Debug, Default)]
pub(crate) struct Held(AtomicU64);

impl Held {
    /// The units held at `d` (0 once their deadline has passed) and the
    /// deadline: the window counts them at every instant before it.
    #[inline]
    pub(crate) fn at(&self, d: u64) -> (u64, u64) {
        let v = self.0.load(Ordering::Acquire);
        let (units, until) = unpack(v);
        if d < until {
            (units, until)
        } else {
            (0, 0)
        }
    }

    /// Holds `units` more until `until` (rounded up), beside what is held at
    /// `now`; a live hold keeps the later deadline for all of them (the safe
    /// side), an expired one is replaced. Returns the deadline now in force,
    /// or `None` (and changes nothing) if the units would not fit the word.
    #[cfg(test)]
    pub(crate) fn add(&self, units: u64, until: u64, now: u64) -> Option<u64> {
        self.set(units, until, now, false)
    }

    /// [`Held::add`], or with `fresh` (a newer report's own count of what
    /// the window holds) in place of a live hold whose deadline is no later:
    /// a report that counts fewer than the last frees what the server freed.
    pub(crate) fn set(&self, units: u64, until: u64, now: u64, fresh: bool) -> Option<u64> {
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            let (old_units, old_until) = unpack(current);
            let live = current != 0 && now < old_until;
            // A deadline no earlier (as stored, rounded up): a newer report.
            let replaces = fresh && unpack(pack(0, until)).1 >= old_until;
            let (units, until) = if live && !replaces {
                (old_units.checked_add(units)?, old_until.max(until))
            } else {
                (units, until)
            };
            if units > MAX_HELD {
                return None;
            }
            let new = pack(units, until);
            match self
                .0
                .compare_exchange_weak(current, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(unpack(new).1),
                Err(seen) => current = seen,
            }
        }
    }
}

fn pack(units: u64, until: u64) -> u64 {
    let until = until.div_ceil(1 << UNTIL_SHIFT).min(UNTIL_MAX);
    (until << UNITS_BITS) | units.min(MAX_HELD)
}

fn unpack(v: u64) -> (u64, u64) {
    (v & MAX_HELD, (v >> UNITS_BITS) << UNTIL_SHIFT)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn nothing_is_held_until_a_correction_says_so() {
        let h = Held::default();
        assert_eq!(h.at(0), (0, 0));
        assert_eq!(h.at(u64::MAX), (0, 0));
    }

    #[test]
    fn units_count_before_their_deadline_only_which_rounds_up() {
        let h = Held::default();
        let until = h.add(90, 500 * MS, 0).unwrap_or(0);
        assert!((500 * MS..501 * MS).contains(&until), "{until}");
        assert_eq!(h.at(0), (90, until));
        assert_eq!(h.at(until - 1), (90, until));
        assert_eq!(h.at(until), (0, 0), "gone at the deadline");
    }

    #[test]
    fn a_live_hold_adds_up_and_keeps_the_later_deadline() {
        let h = Held::default();
        let first = h.add(90, 500 * MS, 0).unwrap_or(0);
        let second = h.add(10, 300 * MS, 100 * MS).unwrap_or(0);
        assert_eq!(second, first, "the later deadline holds both");
        assert_eq!(h.at(400 * MS).0, 100);
        // Once expired, a new hold replaces it.
        let third = h.add(5, 900 * MS, 600 * MS).unwrap_or(0);
        assert_eq!(h.at(700 * MS), (5, third));
    }

    #[test]
    fn a_newer_report_replaces_a_live_hold_and_an_older_one_adds_to_it() {
        let h = Held::default();
        let first = h.add(90, 500 * MS, 0).unwrap_or(0);
        // Newer (a later deadline): its own count, fewer units than before.
        let newer = h.set(60, 600 * MS, 100 * MS, true).unwrap_or(0);
        assert!(newer > first);
        assert_eq!(h.at(100 * MS), (60, newer));
        // Older (an earlier deadline): added, under the later deadline.
        assert_eq!(h.set(5, 400 * MS, 100 * MS, true), Some(newer));
        assert_eq!(h.at(100 * MS).0, 65);
    }

    #[test]
    fn a_hold_past_the_word_is_refused_and_changes_nothing() {
        let h = Held::default();
        assert_eq!(h.add(MAX_HELD + 1, 10 * MS, 0), None);
        assert_eq!(h.at(0), (0, 0));
        assert!(h.add(MAX_HELD, 10 * MS, 0).is_some());
        assert_eq!(
            h.add(1, 10 * MS, 0),
            None,
            "a live hold that would overflow"
        );
        assert_eq!(h.at(0).0, MAX_HELD);
        // A huge deadline saturates instead of wrapping.
        let h = Held::default();
        let until = h.add(1, u64::MAX, 0).unwrap_or(0);
        assert!(until > 1 << 59, "{until}");
        assert_eq!(h.at(1 << 59).0, 1);
    }
}
