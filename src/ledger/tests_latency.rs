//! A bucket's windows after slow responses (`Bucket::note_latency`): how long a
//! unit stays counted, for which windows, and how a reservation made before
//! the response leaves later.

use std::sync::Arc;
use std::time::Duration;

use super::{acquire, Bucket, Grant, KeyedBuckets, MaxWait, Refusal};
use crate::clock::Nanos;
use crate::quota::{Limits, Quota};

fn ms(n: u64) -> Nanos {
    Nanos::from_millis(n)
}

/// A bucket of 2 per 100 ms (sliding), its window padded by a 5 ms margin.
fn bucket(extra: impl IntoIterator<Item = Quota>) -> Arc<Bucket> {
    let quotas =
        std::iter::once(Quota::new(2, Duration::from_millis(100)).unwrap_or_else(|| panic!()));
    let limits = Limits::new(quotas.chain(extra)).padded(|_| Duration::from_millis(5));
    Arc::new(Bucket::new("GET /people", limits))
}

fn fill(b: &Arc<Bucket>, at: Nanos) {
    for _ in 0..2 {
        assert!(matches!(
            acquire(&[b], 1, at, MaxWait::Never),
            Ok(Grant::Now)
        ));
    }
}

fn next(b: &Bucket, from: Nanos) -> Nanos {
    b.earliest_departure(1, from)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_response_within_the_margin_changes_nothing() {
    let b = bucket([]);
    fill(&b, ms(0));
    b.note_latency(ms(0), ms(5));
    assert_eq!(next(&b, ms(0)), ms(105), "the window plus its margin");
    assert_eq!(b.state(ms(0)).windows[0].widened_by, Duration::ZERO);
}

#[test]
fn a_slow_response_holds_the_units_one_window_after_it() {
    let b = bucket([]);
    fill(&b, ms(0));
    b.note_latency(ms(0), ms(40));
    // Counted by the server as late as 40 ms: free from 140 ms (within the
    // rounding of the excess, 16 us), not from 105 ms.
    let at = next(&b, ms(0));
    assert!(
        at >= ms(140) && at < ms(140) + Duration::from_micros(20),
        "{at:?}"
    );
    // The server counts the slow request no longer than 40 + 100 ms (+ the
    // margin): a decision from then on needs no widening.
    assert_eq!(next(&b, ms(146)), ms(146));
    assert_eq!(b.state(ms(146)).windows[0].widened_by, Duration::ZERO);
}

#[test]
fn the_widening_expires_and_later_units_free_on_the_margin_again() {
    let b = bucket([]);
    fill(&b, ms(0));
    b.note_latency(ms(0), ms(40));
    fill(&b, ms(200));
    assert_eq!(
        next(&b, ms(200)),
        ms(305),
        "a window and its margin after 200 ms"
    );
}

/// 2 per 100 ms in fixed windows from 0, with a 5 ms margin.
fn fixed_bucket() -> Arc<Bucket> {
    let fixed = Quota::new(2, Duration::from_millis(100))
        .unwrap_or_else(|| panic!())
        .fixed(Nanos::ZERO);
    Arc::new(Bucket::new(
        "fixed",
        Limits::new([fixed]).padded(|_| Duration::from_millis(5)),
    ))
}

#[test]
fn a_fixed_window_counts_a_late_unit_in_the_window_after_it() {
    // Two leave 10 ms before the boundary at 100 ms: beyond the margin, so
    // the next window opens on the boundary...
    let b = fixed_bucket();
    fill(&b, ms(90));
    assert_eq!(next(&b, ms(90)), ms(100));
    // ...and still does after a response 8 ms later (3 ms past the margin:
    // the request reached the server by 98 ms)...
    b.note_latency(ms(90), ms(98));
    assert_eq!(next(&b, ms(90)), ms(100));
    // ...but not after one 20 ms later: the server may have counted it at
    // 110 ms, in the next window, so the one after is the next that opens.
    b.note_latency(ms(90), ms(110));
    assert_eq!(next(&b, ms(110)), ms(200));
    assert!(b.state(ms(110)).windows[0].widened_by >= Duration::from_millis(15));
}

#[test]
fn a_fixed_reservation_made_before_a_late_response_leaves_a_window_later() {
    let b = fixed_bucket();
    fill(&b, ms(90));
    let Ok(Grant::Later(r)) = acquire(&[&b], 1, ms(91), MaxWait::Forever) else {
        panic!("a reservation")
    };
    assert_eq!(r.departure(), ms(100));
    b.note_latency(ms(90), ms(110));
    assert_eq!(r.widened_departure(), ms(200));
    r.depart();
}

#[test]
fn each_window_keeps_its_own_deadline() {
    // 2 per 100 ms and 4 per 10 s: after the slow response, the long window
    // stays widened for 10 s, the short one for 100 ms only.
    let long = Quota::new(4, Duration::from_secs(10)).unwrap_or_else(|| panic!());
    let b = bucket([long]);
    fill(&b, ms(0));
    b.note_latency(ms(0), ms(40));
    let state = b.state(ms(200));
    assert_eq!(state.windows[0].widened_by, Duration::ZERO);
    assert!(state.windows[1].widened_by >= Duration::from_millis(35));
    // Two more fit the long window; the short one no longer adds anything.
    fill(&b, ms(200));
    assert!(next(&b, ms(200)) >= ms(10_040), "the long window, widened");
}

#[test]
fn a_reservation_made_before_a_slow_response_leaves_later() {
    let b = bucket([]);
    fill(&b, ms(0));
    let Ok(Grant::Later(r)) = acquire(&[&b], 1, ms(1), MaxWait::Forever) else {
        panic!("a reservation")
    };
    assert_eq!(r.departure(), ms(105));
    assert_eq!(r.widened_departure(), ms(105), "nothing slow yet");
    b.note_latency(ms(0), ms(40));
    let later = r.widened_departure();
    assert!(
        later >= ms(140) && later < ms(140) + Duration::from_micros(20),
        "{later:?}"
    );
    r.depart();
}

#[test]
fn an_absurd_round_trip_saturates_instead_of_overflowing() {
    let b = bucket([]);
    fill(&b, ms(0));
    b.note_latency(ms(0), Nanos::new(u64::MAX));
    b.note_latency(Nanos::new(u64::MAX), ms(0));
    let at = next(&b, ms(0));
    assert!(at >= ms(105), "{at:?}");
}

#[test]
fn a_keyed_bucket_is_not_evicted_while_a_late_response_holds_it() {
    let limits =
        Limits::new([Quota::new(2, Duration::from_millis(100)).unwrap_or_else(|| panic!())])
            .padded(|_| Duration::from_millis(5));
    let keys: KeyedBuckets<u32> = KeyedBuckets::new("account", limits, 1);
    assert!(keys.acquire(&1, 1, ms(0), MaxWait::Never).is_ok());
    let a = keys.bucket(&1, ms(0)).unwrap_or_else(|e| panic!("{e}"));
    a.note_latency(ms(0), ms(40));
    // Idle by its ring (105 ms after its last unit left), but the server may
    // count that unit until 145 ms: the scope is full.
    let early = keys.acquire(&2, 1, ms(110), MaxWait::Never);
    assert!(
        matches!(early, Err(Refusal::TooManyKeys { .. })),
        "{early:?}"
    );
    // Once the widening is over, it is evicted and the other key gets room.
    assert!(keys.acquire(&2, 1, ms(150), MaxWait::Never).is_ok());
    assert_eq!(keys.len(), 1);
}

#[test]
fn a_shared_store_hears_of_a_lasting_lateness_about_twice_a_window() {
    // 2 per 100 ms, 5 ms margin: a window of 105 ms.
    let b = bucket([]);
    let late = Duration::from_millis(30);
    assert!(b.late_is_news(0, late, ms(0)), "the first is news");
    assert!(!b.late_is_news(0, late, ms(10)), "the same again: told");
    assert!(!b.late_is_news(0, late / 2, ms(20)), "less: told");
    assert!(b.late_is_news(0, late * 2, ms(30)), "more: news");
    // Told at 30 ms until 135 ms: from 83 ms on it has less than half a
    // window to go, so the store hears again (and its count goes on).
    assert!(!b.late_is_news(0, late, ms(80)));
    assert!(b.late_is_news(0, late, ms(90)));
    assert!(!b.late_is_news(0, late, ms(100)));
    // Without such a window, never.
    assert!(!b.late_is_news(3, late, ms(100)));
}
