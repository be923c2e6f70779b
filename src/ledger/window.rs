//! One window of a bucket: a ring of departure times, exact or grouped.
//!
//! Units leave a bucket in a sorted order (see `head.rs`), so "at most `N` units
//! in any half-open interval of length `W`" is the same as "unit `j` leaves no
//! earlier than `W` after unit `j - N`". A window therefore only has to remember
//! the departure times of its last `N` units: a ring of `N` slots, one 8-byte word
//! each. The bounded variant keeps one slot per group of `G` consecutive units,
//! holding the time of the group's last unit, which is never earlier than any unit
//! of the group: the error is always on the safe side.
//!
//! Every window of a bucket counts every unit at the same time, so windows with
//! one group size (every exact window) share one ring ([`Ring`]), sized for the
//! largest of them and written by the first: one write per unit, not one per
//! window.
//!
//! A slot holds a time in its low 60 bits and the lap of the ring that wrote it
//! in its high 4 bits. A reader that finds another lap (a slot claimed but not yet
//! written, or already reused) uses the bucket's latest departure instead, which
//! is later than any unit's time: again the safe side. Readers never wait.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::head::Head;
use super::widening::Widening;
use crate::quota::{Alignment, Quota};

const LAP_SHIFT: u32 = 60;
const TIME_MASK: u64 = (1 << LAP_SHIFT) - 1;
const LAP_MASK: u64 = 0xF;
/// Units reserved ahead that a window keeps room for beyond its limit.
pub(crate) const RESERVED_HEADROOM: u64 = 1024;
/// The anchor of a sliding window (a fixed window's anchor is a time, at most
/// 2^60 ns).
const SLIDING: u64 = u64::MAX;

#[derive(Debug)]
pub(crate) struct Window {
    limit: AtomicU32,
    window: u64,
    /// Where a fixed window is aligned; [`SLIDING`] for a sliding one.
    anchor: u64,
    /// The extra length slow responses call for.
    widening: Widening,
    /// log2 of the units per slot (0 when exact): groups are found by shifts.
    gshift: u8,
    /// log2 of the number of slots (a power of two: index and lap by mask and shift).
    shift: u8,
    /// The largest limit this window keeps exact.
    capacity: u32,
    /// The safety margin in `window`, in nanoseconds. A fixed window keeps
    /// the server's boundaries (every `window - margin`) and counts a unit
    /// that left up to `margin` before a boundary in the window after it too.
    margin: u64,
    /// Whether this window writes the ring: windows of one bucket with the
    /// same group size share one ring (every window counts every unit, at the
    /// same departure time), and only the first of them writes it.
    writes: bool,
    slots: Arc<[AtomicU64]>,
}

/// The ring of departure times that the windows of a bucket with one group
/// size share: what [`Window::sharing`] needs to build one more window on it.
#[derive(Clone, Debug)]
pub(crate) struct Ring {
    slots: Arc<[AtomicU64]>,
    gshift: u8,
    capacity: u32,
}

impl Ring {
    /// A ring with room for limits up to `capacity` units in groups of `group`
    /// (a power of two; 1 when exact).
    pub(crate) fn new(group: u32, capacity: u32) -> Ring {
        let group = u64::from(group.max(1).next_power_of_two());
        // The lookback needs `capacity` units; counting the past window (for
        // corrections and reports) also needs the units reserved after now, so
        // the ring keeps room for up to RESERVED_HEADROOM of them; beyond that
        // counts are lower bounds, and corrections err on the safe side.
        let kept = u64::from(capacity) + u64::from(capacity).min(RESERVED_HEADROOM);
        // One slot per group of what is kept, plus the group being filled,
        // rounded up to a power of two so that no decision divides.
        let slots = (kept.div_ceil(group) + 1).next_power_of_two();
        Ring {
            slots: (0..slots).map(|_| AtomicU64::new(empty_slot())).collect(),
            gshift: group.trailing_zeros() as u8,
            capacity,
        }
    }
}

impl Window {
    /// A window for `quota` with a ring of its own, with room for limits up to
    /// `capacity` units.
    #[cfg(test)]
    pub(crate) fn new(quota: &Quota, storage: crate::quota::Storage, capacity: u32) -> Window {
        let capacity = capacity.max(quota.limit());
        Window::sharing(
            quota,
            &Ring::new(storage.group_for(capacity), capacity),
            true,
        )
    }

    /// A window for `quota` on `ring`, which it writes if `writes` (the first
    /// window built on a ring) and otherwise only reads.
    pub(crate) fn sharing(quota: &Quota, ring: &Ring, writes: bool) -> Window {
        let window = u64::try_from(quota.window().as_nanos())
            .unwrap_or(u64::MAX)
            .clamp(1, TIME_MASK);
        Window {
            limit: AtomicU32::new(quota.limit()),
            window,
            anchor: match quota.alignment() {
                Alignment::Sliding => SLIDING,
                Alignment::Fixed { anchor } => anchor.as_u64().min(TIME_MASK),
            },
            widening: Widening::default(),
            gshift: ring.gshift,
            shift: ring.slots.len().trailing_zeros() as u8,
            capacity: ring.capacity.max(quota.limit()),
            margin: u64::try_from(quota.margin().as_nanos())
                .unwrap_or(u64::MAX)
                .min(window - 1),
            writes,
            slots: Arc::clone(&ring.slots),
        }
    }

    #[inline]
    pub(crate) fn limit(&self) -> u32 {
        self.limit.load(Ordering::Acquire)
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }

    pub(crate) fn set_limit(&self, limit: u32) {
        self.limit.store(limit.max(1), Ordering::Release);
    }

    pub(crate) fn length(&self) -> u64 {
        self.window
    }

    /// The safety margin included in the window's length.
    pub(crate) fn margin(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.margin)
    }

    /// A fixed window's period: the server's window, without the margin.
    #[inline]
    fn period(&self) -> u64 {
        self.window - self.margin
    }

    #[inline]
    pub(crate) fn anchor(&self) -> Option<u64> {
        (self.anchor != SLIDING).then_some(self.anchor)
    }

    pub(crate) fn is_fixed(&self) -> bool {
        self.anchor != SLIDING
    }

    /// After a response that came back at `now`, `late` past the margin,
    /// holds every unit `late` longer until one window from `now`: a sliding
    /// window counts each unit that much longer, a fixed one counts a unit
    /// that left up to the margin and `late` before a boundary in the window
    /// after it too.
    pub(crate) fn widen(&self, late: std::time::Duration, now: u64) {
        let late = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
        self.widening
            .widen(late, now.saturating_add(self.window), now);
    }

    /// The widening in force at `now`, if any: how much longer, until when.
    pub(crate) fn widened_at(&self, now: u64) -> Option<(u64, u64)> {
        self.widening.at(now)
    }

    /// Bytes of state this window keeps (a shared ring counts in the window
    /// that writes it).
    pub(crate) fn footprint(&self) -> usize {
        let ring = if self.writes {
            self.slots.len() * std::mem::size_of::<AtomicU64>()
        } else {
            0
        };
        std::mem::size_of::<Window>() + ring
    }

    /// log2 of the units per slot (0 when exact).
    pub(crate) fn group_shift(&self) -> u8 {
        self.gshift
    }

    /// Whether this window writes its ring (the first window on it).
    pub(crate) fn writes(&self) -> bool {
        self.writes
    }

    /// Units per slot: 1 when exact, a power of two when bounded.
    #[cfg(test)]
    fn group(&self) -> u64 {
        1 << self.gshift
    }

    /// The earliest departure at or after `d` at which this window has room for
    /// `cost` more units after the `head.units` already charged.
    #[cfg(test)]
    pub(crate) fn earliest(&self, head: Head, cost: u64, d: u64) -> u64 {
        self.earliest_within(u64::from(self.limit()), head, cost, d, false)
    }

    /// [`Window::earliest`] for a `limit` the caller has already read; `idle`
    /// if the newest unit (`head.last`) left at least a window before `d`.
    #[inline]
    pub(crate) fn earliest_within(
        &self,
        limit: u64,
        head: Head,
        cost: u64,
        d: u64,
        idle: bool,
    ) -> u64 {
        let Some(back) = (head.units + cost).checked_sub(limit + 1) else {
            return d; // fewer than `limit` units ever: always room
        };
        let extra = self.widening.extra_at(d);
        if idle && extra == 0 {
            // No unit counts at `d`: a sliding window counts a unit that left
            // at `t` until `t + window`; a fixed one until the end of the
            // period that `t + margin` falls in, at most `t + window`.
            return d;
        }
        // `back` is the newest old unit that must have left the window.
        let t = if limit <= u64::from(self.capacity) {
            self.time_in_ring(back, head)
        } else {
            self.time_of(back, head)
        };
        self.after(t, d, extra)
    }

    /// The earliest departure at or after `d` given that the boundary unit
    /// (the newest that must no longer count) left at `t`, its window
    /// widened by `extra` after slow responses.
    #[inline(always)]
    pub(crate) fn after(&self, t: u64, d: u64, extra: u64) -> u64 {
        match self.anchor() {
            None => d.max(t.saturating_add(self.window).saturating_add(extra)),
            Some(anchor) => {
                // The window containing `d` on the server's boundaries counts
                // every unit that left in it, or up to the margin (and any
                // widening) before it: a request that left just before a
                // boundary may arrive after it. Lengthening a fixed window
                // instead would move its boundaries a margin further from the
                // server's every window.
                let p = self.period();
                let end = end_of(d, anchor, p);
                let reach = t.saturating_add(self.margin).saturating_add(extra);
                if reach >= end.saturating_sub(p) {
                    end
                } else {
                    d
                }
            }
        }
    }

    /// The first instant counted by the window that ends at `t`: `t - W + 1` for a
    /// sliding window (it counts `(t - W, t]`), the aligned start for a fixed one.
    pub(crate) fn opens(&self, t: u64) -> u64 {
        match self.anchor() {
            None if t >= self.window => t - self.window + 1,
            None => 0,
            Some(anchor) => end_of(t, anchor, self.period()).saturating_sub(self.period()),
        }
    }

    /// Where the server's window (this one without the margin) that counts
    /// at `t` begins: its first instant for a sliding one, its period's start
    /// for a fixed one. Before the timeline's 0 if need be: early on, an hour
    /// and a day both reach back past 0, by different lengths.
    pub(crate) fn server_begins(&self, t: u64) -> i128 {
        let p = self.period();
        match self.anchor() {
            None => i128::from(t) - i128::from(p) + 1,
            Some(anchor) => i128::from(end_of(t, anchor, p)) - i128::from(p),
        }
    }

    /// When the server's window stops counting, at the latest, a unit that
    /// reached it at `t`: a fixed window reckons from 0 if `t` is before the
    /// timeline began (later: the safe side).
    pub(crate) fn server_frees(&self, t: i128) -> u64 {
        let p = self.period();
        match self.anchor() {
            None => u64::try_from(t + i128::from(p)).unwrap_or(0),
            Some(anchor) => end_of(u64::try_from(t).unwrap_or(0), anchor, p),
        }
    }

    /// When the window that contains `t` stops counting a unit that left at `t`.
    pub(crate) fn frees(&self, t: u64) -> u64 {
        match self.anchor() {
            None => t.saturating_add(self.window),
            Some(anchor) => end_of(t.saturating_add(self.margin), anchor, self.period()),
        }
    }

    #[inline]
    fn lap(&self, group_index: u64) -> u64 {
        (group_index >> self.shift) & LAP_MASK
    }

    #[inline]
    fn slot(&self, group_index: u64) -> &AtomicU64 {
        &self.slots[group_index as usize & (self.slots.len() - 1)]
    }

    /// The group of unit `j` (no division in exact storage).
    #[inline]
    fn group_of(&self, j: u64) -> u64 {
        j >> self.gshift
    }

    /// A lower bound on the departure time of unit `j`: its own time when exact;
    /// in the bounded variant, the time of the last unit of the group before
    /// (units leave in order). 0 where the ring does not know.
    pub(crate) fn earliest_time_of(&self, j: u64, head: Head) -> u64 {
        self.known_time_of(j, head).unwrap_or(0)
    }

    /// [`Window::earliest_time_of`], `None` where the ring does not know.
    pub(crate) fn known_time_of(&self, j: u64, head: Head) -> Option<u64> {
        let before = if self.gshift == 0 {
            Some(j)
        } else {
            (j >> self.gshift << self.gshift).checked_sub(1)
        };
        match before {
            Some(u) if u < head.units && self.knows(u, head) => Some(self.time_of(u, head)),
            _ => None,
        }
    }

    /// Whether the ring holds the written time of unit `u`'s group.
    fn knows(&self, u: u64, head: Head) -> bool {
        let g = self.group_of(u);
        let newest_group = self.group_of(head.units - 1);
        g + (self.slots.len() as u64) > newest_group
            && (g + 1) << self.gshift <= head.units
            && self.slot(g).load(Ordering::Acquire) >> LAP_SHIFT == self.lap(g)
    }

    /// An upper bound on the departure time of unit `j` (< `head.units`).
    #[inline]
    pub(crate) fn time_of(&self, j: u64, head: Head) -> u64 {
        if head.units == 0 {
            return head.last;
        }
        let newest_group = self.group_of(head.units - 1);
        let oldest_kept = (newest_group + 1).saturating_sub(self.slots.len() as u64);
        // A limit raised past the ring's capacity looks further back than the
        // ring remembers: the oldest kept group is later, so it is safe to use.
        let g = self.group_of(j).max(oldest_kept);
        self.time_of_group(g, head)
    }

    /// [`Window::time_of`] for a unit the ring still remembers: one no more than
    /// `capacity` units before `head.units` (the decision's lookback, for limits
    /// within the capacity).
    #[inline]
    fn time_in_ring(&self, j: u64, head: Head) -> u64 {
        self.time_of_group(self.group_of(j), head)
    }

    #[inline]
    fn time_of_group(&self, g: u64, head: Head) -> u64 {
        if (g + 1) << self.gshift > head.units {
            return head.last; // the group is still filling
        }
        let v = self.slot(g).load(Ordering::Acquire);
        if v >> LAP_SHIFT == self.lap(g) {
            v & TIME_MASK
        } else {
            head.last
        }
    }

    /// Whether units `first..first + cost` end no group of `2^shift` units,
    /// and so none of any window whose groups are at least that large (groups
    /// are powers of two: each one's end is the end of a smaller one).
    #[inline]
    pub(crate) fn end_no_group(shift: u8, first: u64, cost: u64) -> bool {
        shift > 0 && first >> shift == first.saturating_add(cost) >> shift
    }

    /// Group indices whose last unit is among `first..first + cost`.
    #[inline]
    fn group_ends(&self, first: u64, cost: u64) -> std::ops::Range<u64> {
        let end = first.saturating_add(cost); // exclusive

        // group k ends with unit k*g + g - 1: from the first that ends at or
        // after `first` to the last before `end` (g = 2^gshift; exact: g = 1)
        let (from, to) = (first >> self.gshift, end >> self.gshift);
        if from >= to {
            return 0..0; // in the bounded variant, most claims end no group
        }
        // Of one claim, only the last turn of the ring survives in it: a claim
        // of millions of units (a server's count in a correction) costs one
        // turn, not millions of writes.
        from.max(to.saturating_sub(self.slots.len() as u64))..to
    }

    /// Writes the departure time `d` of units `first..first + cost`, pushing the
    /// values it displaces onto `saved` if given (to restore them on a pop).
    ///
    /// `d` must be no later than the head's `last` once these units are
    /// claimed (as every claim makes it): a bucket idle since `last` decides
    /// without reading its rings (`Bucket::earliest`), so a later time written
    /// here would never be seen.
    #[inline]
    pub(crate) fn record(&self, first: u64, cost: u64, d: u64, mut saved: Option<&mut Vec<u64>>) {
        if !self.writes {
            return; // another window of the bucket writes this ring
        }
        for g in self.group_ends(first, cost) {
            let lap = self.lap(g);
            let value = (lap << LAP_SHIFT) | (d & TIME_MASK);
            let slot = self.slot(g);
            // Write only over an older unit, and only if the slot still holds
            // what was read. Later units never leave earlier, so an earlier time
            // is an older unit; laps alone (four bits) would alias after sixteen
            // turns of the ring, which a claimer preempted between reading and
            // writing can sleep through (the stress test caught exactly that
            // with a plain store). On equal times the lap decides: units that
            // leave at one instant are fewer than a ring's turn (more would break
            // the window's limit), so the lap just behind ours is older. A slot
            // left unwritten (a newer unit got there first) reads as unknown:
            // the safe side.
            let old = slot.load(Ordering::Acquire);
            let (old_time, t) = (old & TIME_MASK, d & TIME_MASK);
            let behind = lap.wrapping_sub(old >> LAP_SHIFT) & LAP_MASK == 1;
            if old_time < t || (old_time == t && behind) {
                let _ = slot.compare_exchange(old, value, Ordering::AcqRel, Ordering::Relaxed);
            }
            if let Some(saved) = saved.as_deref_mut() {
                saved.push(old);
            }
        }
    }

    /// Puts back the values [`Window::record`] displaced for units
    /// `first..first + cost` (departing at `d`) before they are popped off the
    /// head (`back`), or writes ours again when the pop did not happen (not
    /// `back`); `saved` yields the displaced values in the order they were pushed.
    /// Each slot changes only if it still holds what the other direction wrote.
    pub(crate) fn swap_back(
        &self,
        first: u64,
        cost: u64,
        d: u64,
        saved: &mut impl Iterator<Item = u64>,
        back: bool,
    ) {
        if !self.writes {
            return; // as in `record`: the writer of the ring puts it back
        }
        for g in self.group_ends(first, cost) {
            let ours = (self.lap(g) << LAP_SHIFT) | (d & TIME_MASK);
            if let Some(old) = saved.next() {
                let (from, to) = if back { (ours, old) } else { (old, ours) };
                let _ =
                    self.slot(g)
                        .compare_exchange(from, to, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
    }

    /// How many charged units may leave at or after `t` (each unit counted at the
    /// upper bound of its time): an upper bound when the ring remembers that far.
    pub(crate) fn units_from(&self, t: u64, head: Head) -> u64 {
        self.count_from(t, head, |j| self.time_of(j, head))
    }

    /// How many charged units certainly leave at or after `t` (each unit counted
    /// at the lower bound of its time): a lower bound.
    pub(crate) fn units_surely_from(&self, t: u64, head: Head) -> u64 {
        self.count_from(t, head, |j| self.earliest_time_of(j, head))
    }

    /// Units `j` among those the ring remembers with `time(j) >= t`, for a
    /// non-decreasing `time`; units older than the ring are not counted.
    fn count_from(&self, t: u64, head: Head, time: impl Fn(u64) -> u64) -> u64 {
        if head.units == 0 || head.last < t {
            return 0;
        }
        let kept = (self.slots.len() as u64 - 1) << self.gshift;
        let (mut lo, mut hi) = (head.units.saturating_sub(kept), head.units - 1);
        if time(lo) >= t {
            return head.units - lo;
        }
        if time(hi) < t {
            return 0;
        }
        // invariant: time(lo) < t <= time(hi)
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if time(mid) >= t {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        head.units - hi
    }
}

/// Index of the fixed window (aligned to `anchor`, of length `w`) containing `t`.
fn index_of(t: u64, anchor: u64, w: u64) -> i128 {
    (i128::from(t) - i128::from(anchor)).div_euclid(i128::from(w))
}

/// The first instant after the fixed window containing `t`.
fn end_of(t: u64, anchor: u64, w: u64) -> u64 {
    let end = i128::from(anchor) + (index_of(t, anchor, w) + 1) * i128::from(w);
    u64::try_from(end).unwrap_or(u64::MAX)
}

/// A slot no lap ever matches before it is written: lap 15 of time 0 for ring
/// lap 0 (lap 15 only recurs after fifteen full turns, which overwrite it).
fn empty_slot() -> u64 {
    LAP_MASK << LAP_SHIFT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Nanos;
    use crate::quota::Storage;
    use std::num::NonZeroU32;
    use std::time::Duration;

    fn head(units: u64, last: u64) -> Head {
        Head::at(units, last)
    }

    fn q(limit: u32, ns: u64) -> Quota {
        Quota::new(limit, Duration::from_nanos(ns)).unwrap_or(Quota::per_second(1))
    }

    #[test]
    fn exact_ring_looks_back_limit_units() {
        let w = Window::new(&q(3, 100), Storage::Exact, 3);
        for (u, t) in [(0, 10), (1, 20), (2, 30)] {
            w.record(u, 1, t, None);
        }
        let h = head(3, 30);
        assert_eq!(
            w.earliest(h, 1, 30),
            110,
            "4th unit waits for the 1st to leave"
        );
        assert_eq!(w.earliest(h, 2, 30), 120);
        assert_eq!(w.earliest(head(2, 20), 1, 25), 25, "room for a third");
    }

    #[test]
    fn unwritten_slots_fall_back_to_the_latest_departure() {
        let w = Window::new(&q(2, 100), Storage::Exact, 2);
        w.record(0, 1, 10, None);
        // unit 1 claimed at 50 but not yet written
        assert_eq!(w.time_of(1, head(2, 50)), 50);
        assert_eq!(w.time_of(0, head(2, 50)), 10);
    }

    #[test]
    fn grouped_ring_is_never_earlier_than_exact() {
        let slots = NonZeroU32::new(4).unwrap_or(NonZeroU32::MIN);
        let w = Window::new(&q(16, 1000), Storage::Bounded { slots }, 16);
        assert_eq!(w.group(), 4);
        for u in 0..16 {
            w.record(u, 1, u * 10, None);
        }
        let h = head(16, 150);
        // exact: unit 0 at 0 frees at 1000; grouped: group 0 ends with unit 3 at 30
        assert_eq!(w.earliest(h, 1, 150), 1030);
        assert!(w.footprint() < Window::new(&q(16, 1000), Storage::Exact, 16).footprint());
    }

    #[test]
    fn fixed_windows_reset_at_aligned_boundaries() {
        let quota = q(2, 100).fixed(Nanos::new(50));
        let w = Window::new(&quota, Storage::Exact, 2);
        w.record(0, 2, 60, None); // two units in [50, 150)
        assert_eq!(w.earliest(head(2, 60), 1, 70), 150);
        // A unit in the previous window does not count in the next one.
        w.record(2, 1, 150, None);
        assert_eq!(w.earliest(head(3, 150), 1, 150), 150);
        assert_eq!(
            end_of(10, 50, 100),
            50,
            "windows before the anchor align too"
        );
        let early = Window::new(&q(1, 14).fixed(Nanos::new(15)), Storage::Exact, 1);
        early.record(0, 1, 0, None);
        assert_eq!(
            early.earliest(head(1, 0), 1, 0),
            1,
            "the window [-13, 1) ends at 1"
        );
    }

    #[test]
    fn restore_puts_back_what_a_claim_displaced() {
        let w = Window::new(&q(2, 100), Storage::Exact, 2); // 2 + 2 headroom + 1 = 5 slots
        w.record(0, 5, 40, None);
        let mut saved = Vec::new();
        w.record(5, 1, 50, Some(&mut saved)); // unit 5 reuses unit 0's slot
        assert_eq!(w.time_of(5, head(6, 50)), 50);
        w.swap_back(5, 1, 50, &mut saved.iter().copied(), true);
        assert_eq!(w.time_of(0, head(5, 40)), 40, "unit 0 is readable again");
        w.swap_back(5, 1, 50, &mut saved.iter().copied(), false);
        assert_eq!(w.time_of(5, head(6, 50)), 50);
    }

    #[test]
    fn a_window_fits_one_cache_line() {
        // The decision reads every window of a bucket: keep each in 64 bytes.
        assert!(
            std::mem::size_of::<Window>() <= 64,
            "{}",
            std::mem::size_of::<Window>()
        );
    }

    #[test]
    fn units_from_counts_by_time() {
        let w = Window::new(&q(10, 1000), Storage::Exact, 10);
        for u in 0..6 {
            w.record(u, 1, 100 + u * 10, None); // 100..150
        }
        let h = head(6, 150);
        assert_eq!(w.units_from(0, h), 6);
        assert_eq!(w.units_from(100, h), 6);
        assert_eq!(w.units_from(121, h), 3);
        assert_eq!(w.units_from(150, h), 1);
        assert_eq!(w.units_from(151, h), 0);
    }

    #[test]
    fn group_ends_cover_exactly_the_range() {
        let slots = NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN);
        let w = Window::new(&q(6, 10), Storage::Bounded { slots }, 6); // group 4
        assert_eq!(w.group(), 4);
        let ends: Vec<u64> = w.group_ends(0, 8).collect();
        assert_eq!(ends, vec![0, 1]); // units 3 and 7 end groups 0 and 1
        let ends: Vec<u64> = w.group_ends(4, 3).collect();
        assert!(ends.is_empty(), "units 4 to 6 end no group");
        let ends: Vec<u64> = w.group_ends(3, 1).collect();
        assert_eq!(ends, vec![0]);
        let exact = Window::new(&q(6, 10), Storage::Exact, 6);
        let ends: Vec<u64> = exact.group_ends(4, 3).collect();
        assert_eq!(ends, vec![4, 5, 6]);
        // A claim of a million units writes one turn of the ring, the last one.
        let ends: Vec<u64> = exact.group_ends(0, 1_000_000).collect();
        assert_eq!(ends.len(), exact.slots.len());
        assert_eq!(ends.last(), Some(&999_999));
    }

    #[test]
    fn units_that_end_no_finest_group_end_no_group_of_any_window() {
        let bounded = |slots: u32, limit: u32| {
            let slots = NonZeroU32::new(slots).unwrap_or(NonZeroU32::MIN);
            Window::new(&q(limit, 10), Storage::Bounded { slots }, limit)
        };
        // Groups of 1 (exact), 4, 16 and 64 units.
        let windows = [
            Window::new(&q(6, 10), Storage::Exact, 6),
            bounded(2, 6),
            bounded(2, 24),
            bounded(2, 96),
        ];
        let shifts: Vec<u8> = windows.iter().map(|w| w.gshift).collect();
        assert_eq!(shifts, [0, 2, 4, 6]);
        for first in 0..300 {
            for cost in 1..70 {
                for finest in &windows {
                    let none = Window::end_no_group(finest.gshift, first, cost);
                    for w in windows.iter().filter(|w| w.gshift >= finest.gshift) {
                        let ends = w.group_ends(first, cost).count();
                        if none {
                            assert_eq!(ends, 0, "{first}+{cost}: group {}", w.group());
                        }
                    }
                    if finest.gshift > 0 && !none {
                        assert!(finest.group_ends(first, cost).count() > 0, "{first}+{cost}");
                    }
                }
            }
        }
        // An exact window ends a group with every unit: never skipped.
        assert!(!Window::end_no_group(0, 5, 1));
        assert!(Window::end_no_group(2, u64::MAX - 1, 5), "no overflow");
    }
}
