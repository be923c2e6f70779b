//! Applying seeds to buckets: matching windows, replacing limits, raising
//! counts at `as_of`, skipping what does not fit.

use std::time::Duration;

use tower_quota::clock::Nanos;
use tower_quota::ledger::Bucket;
use tower_quota::quota::{Limits, Quota};
use tower_quota::seed::{
    apply_to_bucket, parse_crm_usage, LimitChange, SeedScope, SeedWindow, SkipReason, WindowNames,
};

/// Seed 000's example, its closing brace restored.
fn seed000() -> String {
    format!(
        "{}\n}}",
        include_str!("../src/seed/fixtures/seed000_truncated.json")
    )
}

fn window(name: &str, secs: u64, limit: u64, used: Option<u64>) -> SeedWindow {
    SeedWindow {
        name: name.into(),
        window: Duration::from_secs(secs),
        limit,
        used,
        remaining: used.map(|u| limit.saturating_sub(u)),
        reset: None,
    }
}

fn day_hour_minute(minute: u32, hour: u32, day: u32) -> Limits {
    Limits::new([
        Quota::per_minute(minute),
        Quota::per_hour(hour),
        Quota::per_day(day),
    ])
}

#[test]
fn the_documents_first_entry_is_applied_conservatively_and_only_once() {
    let seed = parse_crm_usage(seed000().as_bytes(), &WindowNames::standard()).expect("parses");
    let entry = seed
        .entry(SeedScope::Key, "api/v1/contacts#search")
        .expect("listed");
    let bucket = Bucket::new("api/v1/contacts#search", day_hour_minute(200, 600, 6000));
    let as_of = Nanos::from_secs(100);
    let applied = apply_to_bucket(&bucket, &entry.windows, as_of, |_| None);
    assert!(applied.limits_changed.is_empty() && applied.skipped.is_empty());
    // The day's 500 (the conservative reading of "consumed" and "left_over").
    // The minute's 10 go in the log; the hour says it holds 5, fewer than the
    // minute's 10 (the document's own numbers), so the day's other 490 left
    // before the hour began: they count in the day only, and the minute
    // still has 190 to give at once.
    assert_eq!(applied.units_added, 500);
    let state = bucket.state(as_of);
    assert_eq!(
        state.windows.iter().map(|w| w.used).collect::<Vec<_>>(),
        [10, 10, 500]
    );
    assert_eq!(state.next_departure, as_of);
    assert_eq!(bucket.earliest_departure(190, as_of), Ok(as_of));
    assert_eq!(
        bucket.earliest_departure(191, as_of),
        Ok(as_of + Duration::from_secs(60)),
        "the minute's own 10 free a minute after the body"
    );
    // The same body again, later: the server's units are already counted.
    let again = apply_to_bucket(
        &bucket,
        &entry.windows,
        as_of + Duration::from_secs(1),
        |_| None,
    );
    assert_eq!(again.units_added, 0);
    assert!(!again.changed());
}

#[test]
fn known_reset_times_place_units_where_they_free() {
    let bucket = Bucket::new("b", Quota::per_hour(600));
    let as_of = Nanos::from_secs(4000);
    let frees = as_of + Duration::from_secs(600);
    let windows = [window("hour", 3600, 600, Some(100))];
    let applied = apply_to_bucket(&bucket, &windows, as_of, |_| Some(frees));
    assert_eq!(applied.units_added, 100);
    assert_eq!(
        bucket.state(frees - Duration::from_secs(1)).windows[0].used,
        100
    );
    assert_eq!(bucket.state(frees).windows[0].used, 0);
    // Without a reset they count a full window after `as_of`.
    let unknown = Bucket::new("u", Quota::per_hour(600));
    apply_to_bucket(&unknown, &windows, as_of, |_| None);
    let just_before = as_of + Duration::from_secs(3599);
    assert_eq!(unknown.state(just_before).windows[0].used, 100);
    assert_eq!(
        unknown.state(as_of + Duration::from_secs(3600)).windows[0].used,
        0
    );
}

#[test]
fn limits_are_replaced_up_and_down_and_unknown_lengths_are_skipped() {
    let bucket = Bucket::new("b", day_hour_minute(100, 600, 6000).capacity(300));
    let windows = [
        window("minute", 60, 200, None),
        window("hour", 3600, 500, None),
        window("second", 1, 5, Some(1)),
        window("day", 86_400, 6000, None),
    ];
    let applied = apply_to_bucket(&bucket, &windows, Nanos::ZERO, |_| None);
    assert_eq!(
        applied.limits_changed,
        [
            LimitChange {
                window: Duration::from_secs(60),
                from: 100,
                to: 200,
                exact: true,
            },
            LimitChange {
                window: Duration::from_secs(3600),
                from: 600,
                to: 500,
                exact: true,
            },
        ]
    );
    assert_eq!(applied.skipped.len(), 1);
    assert_eq!(applied.skipped[0].name, "second");
    assert_eq!(applied.skipped[0].reason, SkipReason::NoSuchWindow);
    assert_eq!(applied.units_added, 0, "a skipped window adds nothing");
    assert_eq!(
        (bucket.limit(0), bucket.limit(1), bucket.limit(2)),
        (Some(200), Some(500), Some(6000))
    );
}

#[test]
fn padded_windows_match_and_too_large_limits_are_kept_out() {
    let padded = Limits::from(Quota::per_minute(100)).padded(|w| w / 20);
    let bucket = Bucket::new("b", padded);
    assert_eq!(bucket.window_length(0), Some(Duration::from_secs(63)));
    let windows = [window("minute", 60, 80, Some(3))];
    let applied = apply_to_bucket(&bucket, &windows, Nanos::ZERO, |_| None);
    assert_eq!(bucket.limit(0), Some(80));
    assert_eq!(applied.units_added, 3);

    let too_far = Bucket::new("c", Limits::from(Quota::per_minute(100)).padded(|w| w / 5));
    let applied = apply_to_bucket(&too_far, &windows, Nanos::ZERO, |_| None);
    assert_eq!(applied.skipped[0].reason, SkipReason::NoSuchWindow);

    let huge = [window("minute", 60, u64::from(u32::MAX) + 1, None)];
    let b = Bucket::new("d", Quota::per_minute(100));
    let applied = apply_to_bucket(&b, &huge, Nanos::ZERO, |_| None);
    assert_eq!(applied.skipped[0].reason, SkipReason::LimitTooLarge);
    assert_eq!(b.limit(0), Some(100));
}

#[test]
fn a_limit_beyond_the_buckets_capacity_is_applied_and_flagged() {
    // The server says 25 a minute, to a bucket built for 1 and to one whose
    // minute sits beside an hour and a day.
    let minute_25 =
        |b: &Bucket| apply_to_bucket(b, &[window("minute", 60, 25, None)], Nanos::ZERO, |_| None);
    let bucket = Bucket::new("b", Quota::per_minute(1));
    let applied = minute_25(&bucket);
    assert_eq!(bucket.limit(0), Some(25));
    assert_eq!(applied.limits_changed.len(), 1);
    assert!(
        !applied.limits_changed[0].exact,
        "built for 1: 25 is not counted exactly"
    );

    // Beside an hour and a day, the minute shares the day's ring (6000 back):
    // 25 is counted exactly.
    let shared = Bucket::new("s", day_hour_minute(1, 600, 6000));
    let applied = minute_25(&shared);
    assert_eq!(shared.capacity(0), Some(6000));
    assert!(applied.limits_changed[0].exact);
}

#[test]
fn a_zero_limit_blocks_for_one_window() {
    let bucket = Bucket::new("b", Quota::per_minute(100));
    let as_of = Nanos::from_secs(10);
    let windows = [window("minute", 60, 0, Some(0))];
    let applied = apply_to_bucket(&bucket, &windows, as_of, |_| None);
    let until = as_of + Duration::from_secs(60);
    assert_eq!(applied.blocked_until, Some(until));
    assert!(applied.changed());
    assert_eq!(bucket.blocked_until(as_of), Some(until));
    assert_eq!(bucket.limit(0), Some(100));
}
