//! A fixed ring of counters keyed by period number (hour or day since the Unix
//! epoch), updated without locks.
//!
//! Slot `n % N` holds the counts of period `n`. Each counter is one `u64` word
//! holding the period it counts and its count, so a recorder that finds a
//! stale period in the word replaces it with a single compare-and-swap: no
//! separate reset step that another recorder could race with. Memory is fixed
//! at two words per slot whatever the traffic.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of a word that hold the count; the rest hold the period number.
const COUNT_BITS: u32 = 36;
/// The largest count a word holds (68.7 billion per period); counts saturate.
const MAX_COUNT: u64 = (1 << COUNT_BITS) - 1;
/// The largest period number a word holds (2^28 hours is 30,000 years).
pub(crate) const MAX_PERIOD: u64 = (1 << (64 - COUNT_BITS)) - 1;

fn unpack(word: u64) -> (u64, u64) {
    (word >> COUNT_BITS, word & MAX_COUNT)
}

fn pack(period: u64, count: u64) -> u64 {
    (period << COUNT_BITS) | count
}

/// Adds one to `word` for `period`; an event older than the word's period is
/// dropped (its slot already counts a newer period, so it is out of the ring).
fn bump(word: &AtomicU64, period: u64) {
    let mut current = word.load(Ordering::Relaxed);
    loop {
        let (held, count) = unpack(current);
        let next = if held == period && count < MAX_COUNT {
            pack(period, count + 1)
        } else if held < period {
            pack(period, 1)
        } else {
            return;
        };
        match word.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

/// The count `word` holds for `period`, or 0 if it holds another period.
fn read(word: &AtomicU64, period: u64) -> u64 {
    let (held, count) = unpack(word.load(Ordering::Relaxed));
    if held == period {
        count
    } else {
        0
    }
}

/// One period's counters.
#[derive(Debug)]
struct Slot {
    requests: AtomicU64,
    rate_limited: AtomicU64,
}

/// `N` slots of request and rate-limited counts, keyed by period number.
#[derive(Debug)]
pub(crate) struct Ring<const N: usize> {
    slots: [Slot; N],
}

impl<const N: usize> Ring<N> {
    pub(crate) fn new() -> Self {
        Ring {
            slots: std::array::from_fn(|_| Slot {
                requests: AtomicU64::new(0),
                rate_limited: AtomicU64::new(0),
            }),
        }
    }

    fn slot(&self, period: u64) -> &Slot {
        // `N` is a non-zero constant: the index is always in range.
        &self.slots[(period % N as u64) as usize]
    }

    /// Counts one request in `period` (`period` must be at most [`MAX_PERIOD`]).
    pub(crate) fn record(&self, period: u64, rate_limited: bool) {
        let slot = self.slot(period);
        bump(&slot.requests, period);
        if rate_limited {
            bump(&slot.rate_limited, period);
        }
    }

    /// The requests and rate-limited requests counted in `period`.
    ///
    /// Read while others record, the two counts may be a few events apart; the
    /// rate-limited count never exceeds the request count.
    pub(crate) fn get(&self, period: u64) -> (u64, u64) {
        let slot = self.slot(period);
        let limited = read(&slot.rate_limited, period);
        let requests = read(&slot.requests, period);
        (requests, limited.min(requests))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_starts_from_zero_and_old_events_are_dropped() {
        let ring = Ring::<3>::new();
        ring.record(1, false);
        ring.record(1, true);
        assert_eq!(ring.get(1), (2, 1));
        ring.record(4, false); // same slot, newer period
        assert_eq!(ring.get(1), (0, 0));
        assert_eq!(ring.get(4), (1, 0));
        ring.record(1, true); // too old for the slot now
        assert_eq!(ring.get(4), (1, 0));
        assert_eq!(ring.get(7), (0, 0));
    }

    #[test]
    fn period_zero_and_the_largest_period() {
        let ring = Ring::<2>::new();
        assert_eq!(ring.get(0), (0, 0));
        ring.record(0, true);
        assert_eq!(ring.get(0), (1, 1));
        ring.record(MAX_PERIOD, false);
        assert_eq!(ring.get(MAX_PERIOD), (1, 0));
    }

    #[test]
    fn counts_saturate() {
        let word = AtomicU64::new(pack(5, MAX_COUNT - 1));
        bump(&word, 5);
        bump(&word, 5);
        assert_eq!(read(&word, 5), MAX_COUNT);
    }
}
