//! `History` against seed 002's rules: hourly bucketing over the last 24 hours,
//! UTC days, concurrent recording, and a brute-force model.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use tower_quota::report::{History, Summary24h};

/// 2026-05-19T00:00:00Z
const MAY_19: u64 = 1_779_148_800;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn hours_and_days_split_at_midnight_utc() {
    let h = History::new();
    h.record(at(MAY_19 - 1), false); // 2026-05-18T23:59:59Z
    h.record(at(MAY_19 - 1), true);
    h.record(at(MAY_19), false); // 2026-05-19T00:00:00Z
    let now = at(MAY_19 + 600);
    let s = h.summary_24h(now);
    assert_eq!(s.total_requests, 3);
    assert_eq!(s.rate_limited_requests, 1);
    assert_eq!(s.rate_limit_percentage, 33.33);
    assert_eq!(s.peak_hour.as_deref(), Some("2026-05-18T23:00:00Z"));
    let days = h.daily(now);
    assert_eq!(days.len(), 30);
    assert_eq!(days[29].date, "2026-05-19");
    assert_eq!((days[29].requests, days[29].rate_limited), (1, 0));
    assert_eq!(days[28].date, "2026-05-18");
    assert_eq!((days[28].requests, days[28].rate_limited), (2, 1));
    assert_eq!(days[0].date, "2026-04-20");
    assert!(days[..28].iter().all(|d| d.requests == 0));
}

#[test]
fn an_event_24_hours_and_a_second_old_is_out() {
    let now = MAY_19 + 14 * 3600 + 1800;
    let h = History::new();
    h.record(at(now - 24 * 3600 - 1), true);
    assert_eq!(h.summary_24h(at(now)).total_requests, 0);
    assert_eq!(h.summary_24h(at(now)).peak_hour, None);
    // Still in the 30-day chart.
    assert_eq!(h.daily(at(now))[28].requests, 1);
    // The oldest hour bucket that counts starts 23 hours before the current one.
    h.record(at(MAY_19 + 15 * 3600), false);
    let later = MAY_19 + 38 * 3600 + 3599; // 2026-05-20T14:59:59Z
    let s = h.summary_24h(at(later));
    assert_eq!(s.total_requests, 1);
    assert_eq!(s.peak_hour.as_deref(), Some("2026-05-19T15:00:00Z"));
    assert_eq!(h.summary_24h(at(later + 1)).total_requests, 0);
}

#[test]
fn ties_go_to_the_latest_hour() {
    let h = History::new();
    h.record(at(MAY_19 + 3600), false);
    h.record(at(MAY_19 + 5 * 3600), false);
    let s = h.summary_24h(at(MAY_19 + 6 * 3600));
    assert_eq!(s.peak_hour.as_deref(), Some("2026-05-19T05:00:00Z"));
}

#[test]
fn slots_reused_a_day_later_start_from_zero() {
    let h = History::new();
    for _ in 0..5 {
        h.record(at(MAY_19 + 3600), true);
    }
    h.record(at(MAY_19 + 25 * 3600), false); // the same hourly slot, a day later
    let s = h.summary_24h(at(MAY_19 + 25 * 3600));
    assert_eq!((s.total_requests, s.rate_limited_requests), (1, 0));
    // A day 30 days later reuses the daily slot of May 19.
    let d = MAY_19 + 30 * 86_400;
    h.record(at(d), false);
    let days = h.daily(at(d));
    assert_eq!(days[29].requests, 1);
}

#[test]
fn many_threads_recording_lose_nothing() {
    let h = Arc::new(History::new());
    let now = MAY_19 + 12 * 3600;
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let h = Arc::clone(&h);
            std::thread::spawn(move || {
                for i in 0..10_000u64 {
                    // Spread over 48 hours so that slots are reused while others write.
                    let secs = now - ((i * 7 + t * 13) % (48 * 3600));
                    h.record(at(secs), i % 10 == 0);
                }
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().is_ok());
    }
    // The same events, counted one by one.
    let mut total = 0;
    let mut limited = 0;
    for t in 0..8u64 {
        for i in 0..10_000u64 {
            let secs = now - ((i * 7 + t * 13) % (48 * 3600));
            if secs / 3600 + 23 >= now / 3600 {
                total += 1;
                limited += u64::from(i % 10 == 0);
            }
        }
    }
    let s = h.summary_24h(at(now));
    assert_eq!(s.total_requests, total);
    assert_eq!(s.rate_limited_requests, limited);
    let days = h.daily(at(now));
    assert_eq!(days.iter().map(|d| d.requests).sum::<u64>(), 80_000);
}

/// The brute-force model: every event kept, filtered by hour number.
fn model(events: &[(u64, bool)], now: u64) -> Summary24h {
    let current = now / 3600;
    let mut hours: BTreeMap<u64, u64> = BTreeMap::new();
    let (mut total, mut limited) = (0u64, 0u64);
    for &(secs, rate_limited) in events {
        let hour = secs / 3600;
        if hour + 23 >= current && hour <= current {
            total += 1;
            limited += u64::from(rate_limited);
            *hours.entry(hour).or_default() += 1;
        }
    }
    let mut peak: Option<(u64, u64)> = None;
    for (&hour, &n) in &hours {
        if peak.is_none_or(|(_, most)| n >= most) {
            peak = Some((hour, n));
        }
    }
    let percentage = if total == 0 {
        0.0
    } else {
        (limited as f64 * 10_000.0 / total as f64).round() / 100.0
    };
    Summary24h {
        total_requests: total,
        rate_limited_requests: limited,
        rate_limit_percentage: percentage,
        peak_hour: peak.map(|(h, _)| {
            let day = h / 24 - MAY_19 / 86_400 + 19;
            format!("2026-05-{day:02}T{:02}:00:00Z", h % 24)
        }),
    }
}

proptest! {
    #[test]
    fn summary_and_days_match_a_list_of_events(
        // Events over three days from May 19 (so dates stay in May), recorded in
        // any order, none after the `now` of the query.
        events in prop::collection::vec((0u64..3 * 86_400, any::<bool>()), 0..200),
        now_offset in 0u64..3 * 86_400,
    ) {
        let now = MAY_19 + now_offset;
        let events: Vec<(u64, bool)> = events
            .into_iter()
            .map(|(s, l)| (MAY_19 + s.min(now_offset), l))
            .collect();
        let h = History::new();
        for &(secs, l) in &events {
            h.record(at(secs), l);
        }
        prop_assert_eq!(h.summary_24h(at(now)), model(&events, now));
        let today = now / 86_400;
        for d in h.daily(at(now)) {
            let day: u64 = d.date[8..].parse().unwrap_or(0);
            let day_number = MAY_19 / 86_400 + day - 19;
            let expected = events.iter().filter(|(s, _)| s / 86_400 == day_number).count() as u64;
            let expected_limited = events
                .iter()
                .filter(|(s, l)| *l && s / 86_400 == day_number)
                .count() as u64;
            if day_number <= today && day_number + 29 >= today {
                prop_assert_eq!(d.requests, expected);
                prop_assert_eq!(d.rate_limited, expected_limited);
            }
        }
    }
}
