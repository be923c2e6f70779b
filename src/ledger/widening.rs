//! How much longer a window holds its units after a slow response.
//!
//! A window's ring holds the instant each request *left*; the server counts it
//! when it *arrives*, which may be any time before its response comes back. The
//! limiter's margin lengthens every window to cover the usual spread of that
//! delay. When a response comes back later than the margin (a cold connection,
//! a TLS handshake, a congested link), the request may have been counted that
//! much later, and a window that freed its unit one window after it left would
//! let the next request in while the server still counts it: a 429.
//!
//! A [`Widening`] remembers the worst such excess, and until when it matters:
//! a request counted no later than its response `r` stops counting at
//! `r + window`, so after that no decision needs the extra time. A sliding
//! window counts every unit that much longer; a fixed one counts a unit that
//! left up to the margin and the excess before a boundary in the window after
//! it too. Decisions read one word; only a slow response writes it.
//!
//! The word packs the deadline in units of 2^20 ns (about 1 ms, 40 bits: 36
//! years) and the excess in units of 2^14 ns (about 16 us, 24 bits: up to
//! 274 s), both rounded up: the error is always on the safe side. An excess
//! longer than that is held at 274 s.

use std::sync::atomic::{AtomicU64, Ordering};

const UNTIL_SHIFT: u32 = 20;
const EXTRA_SHIFT: u32 = 14;
const EXTRA_BITS: u32 = 24;
const EXTRA_MASK: u64 = (1 << EXTRA_BITS) - 1;
const UNTIL_MAX: u64 = (1 << (64 - EXTRA_BITS)) - 1;

/// The longest excess a window remembers, in nanoseconds.
#[cfg(test)]
const MAX_EXTRA: u64 = EXTRA_MASK << EXTRA_SHIFT;

/// A window's extra length after slow responses: see the module's notes.
#[derive(Debug, Default)]
pub(crate) struct Widening(AtomicU64);

impl Widening {
    /// The extra length a departure at `d` must allow for: zero unless a slow
    /// response said so and `d` is before that stops mattering.
    #[inline(always)]
    pub(crate) fn extra_at(&self, d: u64) -> u64 {
        let v = self.0.load(Ordering::Acquire);
        if v == 0 {
            return 0;
        }
        let (until, extra) = unpack(v);
        if d < until {
            extra
        } else {
            0
        }
    }

    /// Units counted by the server up to `extra` ns later than the ring says
    /// must be held that much longer until `until`; `now` tells an expired
    /// widening (replaced) from a live one (kept, and widened further if
    /// needed). Both values are rounded up.
    pub(crate) fn widen(&self, extra: u64, until: u64, now: u64) {
        if extra == 0 {
            return;
        }
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            let (old_until, old_extra) = unpack(current);
            let new = if current == 0 || old_until <= now {
                pack(extra, until)
            } else {
                pack(extra.max(old_extra), until.max(old_until))
            };
            if new == current {
                return;
            }
            match self
                .0
                .compare_exchange_weak(current, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// The widening in force at `now`: its extra length and until when.
    pub(crate) fn at(&self, now: u64) -> Option<(u64, u64)> {
        let v = self.0.load(Ordering::Acquire);
        let (until, extra) = unpack(v);
        (v != 0 && now < until).then_some((extra, until))
    }
}

fn pack(extra: u64, until: u64) -> u64 {
    let extra = extra.div_ceil(1 << EXTRA_SHIFT).clamp(1, EXTRA_MASK);
    let until = until.div_ceil(1 << UNTIL_SHIFT).min(UNTIL_MAX);
    (until << EXTRA_BITS) | extra
}

fn unpack(v: u64) -> (u64, u64) {
    (
        (v >> EXTRA_BITS) << UNTIL_SHIFT,
        (v & EXTRA_MASK) << EXTRA_SHIFT,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn nothing_is_added_until_a_slow_response_says_so() {
        let w = Widening::default();
        assert_eq!(w.extra_at(0), 0);
        assert_eq!(w.extra_at(u64::MAX), 0);
        assert_eq!(w.at(0), None);
        w.widen(0, 100 * MS, 0);
        assert_eq!(w.extra_at(0), 0, "no excess, no widening");
    }

    #[test]
    fn the_extra_applies_before_its_deadline_only_and_rounds_up() {
        let w = Widening::default();
        w.widen(30 * MS, 500 * MS, 10 * MS);
        let extra = w.extra_at(0);
        assert!(
            (30 * MS..30 * MS + (1 << EXTRA_SHIFT)).contains(&extra),
            "{extra}"
        );
        assert_eq!(w.extra_at(499 * MS), extra);
        let Some((_, until)) = w.at(0) else {
            panic!("a live widening")
        };
        assert!((500 * MS..500 * MS + (1 << UNTIL_SHIFT)).contains(&until));
        assert_eq!(w.extra_at(until), 0, "stops at its deadline");
        assert_eq!(w.at(until), None);
    }

    #[test]
    fn a_live_widening_only_grows_and_an_expired_one_is_replaced() {
        let w = Widening::default();
        w.widen(30 * MS, 500 * MS, 0);
        // Smaller and earlier: the live one still covers it.
        w.widen(10 * MS, 300 * MS, 100 * MS);
        assert!(w.extra_at(450 * MS) >= 30 * MS);
        // Larger, later: both grow.
        w.widen(50 * MS, 700 * MS, 200 * MS);
        assert!(w.extra_at(650 * MS) >= 50 * MS);
        // After the deadline a small one replaces it.
        w.widen(5 * MS, 1_500 * MS, 800 * MS);
        let extra = w.extra_at(900 * MS);
        assert!((5 * MS..6 * MS).contains(&extra), "{extra}");
    }

    #[test]
    fn huge_values_saturate_instead_of_wrapping() {
        let w = Widening::default();
        w.widen(u64::MAX, u64::MAX, 0);
        assert_eq!(w.extra_at(1 << 59), MAX_EXTRA);
        const { assert!(MAX_EXTRA > 270_000 * MS) };
    }
}
