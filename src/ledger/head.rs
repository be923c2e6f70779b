//! A bucket's head: how many units it has ever charged and the latest departure.
//!
//! Both live in one 128-bit word so that a decision commits with a single
//! compare-and-swap (`cmpxchg16b` on x86_64, detected at run time by
//! `portable-atomic`). Units only grow, except when the newest reservation is
//! cancelled and pops itself off again; departures are never earlier than the
//! previous latest, so the units form a sorted log.

use portable_atomic::AtomicU128;
use std::sync::atomic::Ordering;

/// A snapshot of a bucket's head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// Units charged so far; the next unit gets this index.
    pub(crate) units: u64,
    /// Departure time (ns) of the latest unit, or 0.
    pub(crate) last: u64,
}

impl Head {
    /// Marks a bucket that was evicted from a keyed map: no claim may succeed.
    pub(crate) const EVICTED: Head = Head {
        units: u64::MAX,
        last: u64::MAX,
    };

    /// Marks a bucket made for a keyed map and not yet opened: it holds nothing
    /// and allows no departure until [`Bucket::open`](super::bucket::Bucket::open)
    /// sets where it starts.
    pub(crate) const SEALED: Head = Head {
        units: 0,
        last: u64::MAX,
    };

    #[inline]
    fn pack(self) -> u128 {
        (u128::from(self.units) << 64) | u128::from(self.last)
    }

    #[inline]
    fn unpack(v: u128) -> Head {
        Head {
            units: (v >> 64) as u64,
            last: v as u64,
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
            units: 0xDEAD_BEEF_0000_0001,
            last: 0x0FFF_FFFF_FFFF_FFFF,
        };
        assert_eq!(Head::unpack(h.pack()), h);
        let cell = HeadCell::new(Head { units: 0, last: 0 });
        assert_eq!(cell.load(), Head { units: 0, last: 0 });
        assert!(cell.swap_from(Head { units: 0, last: 0 }, h).is_ok());
        assert_eq!(cell.swap_from(Head { units: 0, last: 0 }, h), Err(h));
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
