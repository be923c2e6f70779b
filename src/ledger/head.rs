//! A bucket's head: how many units it has ever charged and the latest departure.
//!
//! Both live in one 128-bit word so that a decision commits with a single
//! compare-and-swap (`cmpxchg16b` on x86_64, detected at run time by
//! `portable-atomic`). Units only grow, except when the newest reservation is
//! cancelled and pops itself off again; departures are never earlier than the
//! previous latest, so the units form a sorted log.
//!
//! A pop hands unit indices out again, at other times: the head alone could
//! then come back to a value a slower decision read before the pop, whose
//! plan (made from ring slots that have changed since) would wrongly pass
//! its compare-and-swap (ABA; the stress test caught 31 departures in a
//! window of 30). So the head also counts pops, in 16 bits beside 48 bits of
//! units: a decision planned before a pop never commits after it. It could
//! only be fooled by exactly 65,536 pops of one bucket between its read and its
//! swap that also bring units and latest departure back to what it read.
//! 2^48 units last 89 years at 100,000 requests a second, but only 18 hours
//! of a limit of `u32::MAX` units a second (a byte budget, say): past
//! [`Head::MAX_UNITS`] a bucket refuses what would cross it, in release
//! builds too, instead of wrapping its count.

use portable_atomic::AtomicU128;
use std::sync::atomic::Ordering;

/// A snapshot of a bucket's head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// Units charged so far; the next unit gets this index.
    pub(crate) units: u64,
    /// Departure time (ns) of the latest unit, or 0.
    pub(crate) last: u64,
    /// How many times a claim popped off this head (wrapping): makes every
    /// head after a pop differ from every head before it.
    pub(crate) pops: u16,
}

/// Units take the low 48 bits of the head's high word, pops the top 16.
const UNITS_MASK: u64 = (1 << 48) - 1;

impl Head {
    /// Marks a bucket that was evicted from a keyed map: no claim may succeed.
    pub(crate) const EVICTED: Head = Head {
        units: UNITS_MASK,
        last: u64::MAX,
        pops: u16::MAX,
    };

    /// Marks a bucket made for a keyed map and not yet opened: it holds nothing
    /// and allows no departure until [`Bucket::open`](super::bucket::Bucket::open)
    /// sets where it starts.
    pub(crate) const SEALED: Head = Head {
        units: 0,
        last: u64::MAX,
        pops: 0,
    };

    /// The most units one bucket counts: a request that would cross it is
    /// refused ([`Refusal::Exhausted`](super::Refusal::Exhausted)) rather than
    /// the count wrapped, which would hand out room the bucket does not have.
    pub(crate) const MAX_UNITS: u64 = UNITS_MASK - 1;

    /// Whether `cost` more units still fit the count.
    #[inline]
    pub(crate) fn has_room_for(self, cost: u64) -> bool {
        self.units + cost <= Head::MAX_UNITS
    }

    /// An open head at `last` with `units` charged and no pops yet.
    pub(crate) const fn at(units: u64, last: u64) -> Head {
        Head {
            units,
            last,
            pops: 0,
        }
    }

    #[inline]
    fn pack(self) -> u128 {
        debug_assert!(self.units <= UNITS_MASK, "2^48 units in one bucket");
        let high = (self.units & UNITS_MASK) | (u64::from(self.pops) << 48);
        (u128::from(high) << 64) | u128::from(self.last)
    }

    #[inline]
    fn unpack(v: u128) -> Head {
        let high = (v >> 64) as u64;
        Head {
            units: high & UNITS_MASK,
            last: v as u64,
            pops: (high >> 48) as u16,
        }
    }

    pub(crate) fn is_evicted(self) -> bool {
        self == Head::EVICTED
    }
}

/// The atomic cell holding a [`Head`], alone on its cache line so that the
/// fields every decision reads are not invalidated by every decision's write.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct HeadCell(AtomicU128);

impl HeadCell {
    pub(crate) fn new(head: Head) -> HeadCell {
        HeadCell(AtomicU128::new(head.pack()))
    }

    #[inline]
    pub(crate) fn load(&self) -> Head {
        Head::unpack(self.0.load(Ordering::Acquire))
    }

    /// Replaces `current` with `new`; on failure returns the head found.
    #[inline]
    pub(crate) fn swap_from(&self, current: Head, new: Head) -> Result<(), Head> {
        self.0
            .compare_exchange(
                current.pack(),
                new.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map(|_| ())
            .map_err(Head::unpack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_both_halves() {
        let h = Head {
            units: 0xBEEF_0000_0001,
            last: 0x0FFF_FFFF_FFFF_FFFF,
            pops: 0xDEAD,
        };
        assert_eq!(Head::unpack(h.pack()), h);
        assert_eq!(Head::unpack(Head::EVICTED.pack()), Head::EVICTED);
        let cell = HeadCell::new(Head::at(0, 0));
        assert_eq!(cell.load(), Head::at(0, 0));
        assert!(cell.swap_from(Head::at(0, 0), h).is_ok());
        assert_eq!(cell.swap_from(Head::at(0, 0), h), Err(h));
        let popped = Head {
            pops: 1,
            ..Head::at(0, 0)
        };
        assert_ne!(
            popped.pack(),
            Head::at(0, 0).pack(),
            "pops tell heads apart"
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_head_is_lock_free_on_this_machine() {
        // portable-atomic falls back to a lock only on CPUs without cmpxchg16b.
        assert!(
            AtomicU128::is_lock_free(),
            "cmpxchg16b missing: the decision path would take a lock"
        );
    }
}
