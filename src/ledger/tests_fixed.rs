//! Fixed windows with the limiter's safety margin: they keep the server's
//! boundaries however long they run, and a unit that left within the margin
//! before a boundary counts in the window after it too.

use std::sync::Arc;
use std::time::Duration;

use super::{acquire, Bucket, Grant, MaxWait};
use crate::clock::Nanos;
use crate::quota::{Limits, Quota};

const MARGIN: Duration = Duration::from_millis(50);
const MINUTE: u64 = 60_000;

fn ms(n: u64) -> Nanos {
    Nanos::from_millis(n)
}

/// 10 per minute in fixed windows from 0, with a 50 ms margin.
fn bucket() -> Arc<Bucket> {
    let q = Quota::per_minute(10).fixed(Nanos::ZERO);
    Arc::new(Bucket::new("fixed", Limits::new([q]).padded(|_| MARGIN)))
}

/// Admits up to `n` at `at`; returns how many were admitted.
fn admit(b: &Arc<Bucket>, at: u64, n: usize) -> usize {
    (0..n)
        .filter(|_| matches!(acquire(&[b], 1, ms(at), MaxWait::Never), Ok(Grant::Now)))
        .count()
}

#[test]
fn the_server_never_sees_more_than_its_limit_however_long_the_window_runs() {
    // Half before a server boundary, half after, then as many as the client
    // lets go: the server's window after the boundary holds at most 10. With
    // the margin lengthening the window instead, its boundaries drifted 50 ms
    // a window: 5 s after 100 windows (15 in one server window), more than a
    // window after a day.
    for k in [1, 100, 1_440, 10_000] {
        let b = bucket();
        let boundary = k * MINUTE;
        let mut in_window = 0;
        admit(&b, boundary - 10_000, 5);
        in_window += admit(&b, boundary + 1_000, 5);
        in_window += admit(&b, boundary + 5_500, 10);
        in_window += admit(&b, boundary + 59_000, 10);
        assert_eq!(in_window, 10, "window {k}");
        // ...and the next one opens on the server's boundary, not later.
        assert_eq!(admit(&b, boundary + MINUTE, 10), 10, "window {}", k + 1);
    }
}

#[test]
fn a_unit_that_left_within_the_margin_before_a_boundary_counts_after_it_too() {
    let b = bucket();
    // 30 ms before the boundary: it may reach the server after it.
    assert_eq!(admit(&b, MINUTE - 30, 10), 10);
    assert_eq!(admit(&b, MINUTE, 1), 0, "counted in the next window too");
    let next = b
        .earliest_departure(1, ms(MINUTE))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(next, ms(2 * MINUTE));
    let state = b.state(ms(MINUTE - 20));
    assert_eq!(state.windows[0].frees_at, Some(ms(2 * MINUTE)));
}

#[test]
fn a_unit_that_left_before_the_margin_frees_at_the_boundary() {
    let b = bucket();
    assert_eq!(admit(&b, MINUTE - 51, 10), 10);
    assert_eq!(admit(&b, MINUTE, 10), 10, "a new window on the boundary");
    // The report still shows the window as the server's: 60 s from 0, the
    // margin apart.
    let state = b.state(ms(1));
    assert_eq!(
        state.windows[0].window,
        Duration::from_millis(MINUTE) + MARGIN
    );
    assert_eq!(state.windows[0].margin, MARGIN);
}
