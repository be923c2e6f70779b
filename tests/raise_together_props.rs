//! A server's counts of several windows at once, against the server's own
//! history: whatever the server saw (our requests and other clients'), once
//! its counts are raised together (`Bucket::raise_used_together`), no request
//! the engine admits afterwards finds a reported window full at the server.
//!
//! The server is brute force: a request counts when it *arrives*; another
//! client's is admitted only if every window (sliding, or fixed on its anchor)
//! has room; ours always count (the engine counts every one it sent, and one
//! the server refused would be a 429 the layer acts on: not modelled here).
//! Other clients' requests arrive at random times; ours leave when the engine
//! says (at once, or at a reserved departure), and arrive as they leave. The
//! report rides on one of our requests: the server counts when it arrives,
//! and the response comes back later (slow enough, often, to widen the
//! windows), while more of ours are decided, some reserved behind the
//! report's own. More reports may follow.
//!
//! Margins, and counts taken later than `sent`, are the unit tests' below.
//! In this test they would also find a gap `Bucket::raise_used` already had:
//! it takes our units that left up to a margin (and the report's latency)
//! before the server's window began as counted there, where the server may
//! have let them go; the units a co-consumer sent in their place are then
//! missed. Counting only what surely is cost seeds 002 and 004 their 95 %
//! utilisation (measured: 91-93 %), so it stays, and is noted. Only reported windows are checked after a
//! report: of the others the engine knows nothing, and only requests decided
//! after it: earlier ones were decided blind.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tower_quota::clock::Nanos;
use tower_quota::ledger::{acquire, Bucket, Grant, MaxWait, WindowCount};
use tower_quota::quota::{Limits, Quota};

const MS: u64 = 1_000_000;

#[derive(Clone, Debug)]
struct Win {
    limit: u32,
    /// The server's window.
    len_ms: u64,
    /// Where a fixed window's periods start; `None`: sliding.
    anchor_ms: Option<u64>,
}

impl Win {
    fn len(&self) -> u64 {
        self.len_ms * MS
    }

    /// Whether a request that arrived at `a` counts at the server at `x` (`a <= x`).
    fn counts(&self, a: u64, x: u64) -> bool {
        match self.anchor_ms {
            None => a + self.len() > x,
            Some(anchor) => {
                let anchor = (anchor * MS) as i128;
                let period = |v: u64| (v as i128 - anchor).div_euclid(self.len() as i128);
                period(a) == period(x)
            }
        }
    }

    fn count(&self, arrivals: &[u64], x: u64) -> u64 {
        arrivals
            .iter()
            .filter(|&&a| a <= x && self.counts(a, x))
            .count() as u64
    }
}

fn win() -> impl Strategy<Value = Win> {
    (1u32..=8, 2u64..=40, prop::option::weighted(0.3, 0u64..40)).prop_map(
        |(limit, len_ms, anchor_ms)| Win {
            limit,
            len_ms,
            anchor_ms: anchor_ms.map(|a| a % len_ms),
        },
    )
}

#[derive(Clone, Debug)]
enum Step {
    /// Time passes (ms).
    Pass(u64),
    /// Another client's request arrives now.
    Other,
    /// One of ours: reserve if need be, or only if it can leave now. It
    /// arrives as it leaves: one that arrives later and is overtaken by the
    /// report's request is taken as counted by `raise_used` (a gap of the
    /// correction itself, beside holds; see the closing note of this change).
    Ours { reserve: bool },
    /// One of ours carrying a report of the windows in `which` (a bit each),
    /// counted as it arrives; the answer comes with a later `Answer`, and
    /// requests of ours may be decided meanwhile.
    Report { which: u8 },
    /// The oldest report still unanswered comes back now.
    Answer,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u64..6).prop_map(Step::Pass),
        4 => Just(Step::Other),
        4 => any::<bool>().prop_map(|reserve| Step::Ours { reserve }),
        1 => (1u8..8).prop_map(|which| Step::Report { which }),
        1 => Just(Step::Answer),
    ]
}

fn case() -> impl Strategy<Value = (Vec<Win>, Vec<Step>)> {
    (
        prop::collection::vec(win(), 1..=3),
        prop::collection::vec(step(), 1..120),
    )
}

/// The server: arrivals it admitted, and ours still on their way.
#[derive(Default)]
struct Server {
    admitted: Vec<u64>,
    /// (arrival, the windows reported to the engine when it decided it)
    on_the_way: Vec<(u64, u8)>,
}

impl Server {
    /// Lets everything that arrives up to `t` arrive, in order. A request of
    /// ours must find room in every window reported to the engine before it
    /// was decided; `false` if one found none in another window (a 429 the
    /// layer would act on, which this test does not model: the case ends).
    fn arrive_until(&mut self, t: u64, windows: &[Win]) -> bool {
        self.on_the_way.sort_unstable();
        while let Some(&(a, informed)) = self.on_the_way.first().filter(|(a, _)| *a <= t) {
            self.on_the_way.remove(0);
            for (i, w) in windows.iter().enumerate() {
                if informed & (1 << i) != 0 {
                    let n = w.count(&self.admitted, a);
                    assert!(
                        n < u64::from(w.limit),
                        "ours arrived at {a} and found window {i} ({w:?}) full at the server \
                         ({n}); admitted: {:?}",
                        self.admitted
                    );
                }
            }
            if !self.has_room(a, windows, 0) {
                return false;
            }
            self.admitted.push(a);
        }
        true
    }

    fn has_room(&self, a: u64, windows: &[Win], keep: u64) -> bool {
        windows
            .iter()
            .all(|w| w.count(&self.admitted, a) + keep < u64::from(w.limit))
    }

    /// Another client's request at `a`, admitted if it leaves room for ours
    /// on their way (so that the engine's own requests, decided blind, are
    /// never what the server refuses).
    fn other(&mut self, a: u64, windows: &[Win]) {
        if self.has_room(a, windows, self.on_the_way.len() as u64) {
            self.admitted.push(a);
        }
    }
}

fn run(windows: &[Win], steps: &[Step]) {
    let quotas = windows.iter().map(|w| {
        let q =
            Quota::new(w.limit, Duration::from_millis(w.len_ms)).unwrap_or(Quota::per_second(1));
        match w.anchor_ms {
            Some(a) => q.fixed(Nanos::new(a * MS)),
            None => q,
        }
    });
    let bucket = Arc::new(Bucket::new("b", Limits::new(quotas)));
    let mut server = Server::default();
    let mut now = 0u64;
    let mut checked = 0u8;
    let mut others_stopped = false;
    let mut unanswered: Vec<(u64, u8, Vec<WindowCount>)> = Vec::new();
    // Leaves when the engine says; `None` if it would wait and may not.
    let decide = |now: u64, reserve: bool| -> Option<u64> {
        let wait = if reserve {
            MaxWait::Forever
        } else {
            MaxWait::Never
        };
        match acquire(&[&bucket], 1, Nanos::new(now), wait) {
            Ok(Grant::Now) => Some(now),
            Ok(Grant::Later(r)) => {
                let d = r.departure().as_u64();
                r.depart();
                Some(d)
            }
            Err(_) => None,
        }
    };
    for step in steps {
        match *step {
            Step::Pass(ms) => now += ms * MS,
            Step::Other => {
                if !server.arrive_until(now, windows) {
                    return;
                }
                if !others_stopped {
                    server.other(now, windows);
                }
            }
            Step::Ours { reserve } => {
                if let Some(d) = decide(now, reserve) {
                    server.on_the_way.push((d, checked));
                }
            }
            Step::Report { which } => {
                let which = which & ((1 << windows.len()) - 1);
                let Some(sent) = decide(now, true) else {
                    continue;
                };
                if !server.arrive_until(sent, windows) || !server.has_room(sent, windows, 0) {
                    return;
                }
                // The report's own request, as the server counts it.
                server.admitted.push(sent);
                let counts: Vec<WindowCount> = windows
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| which & (1 << i) != 0)
                    .map(|(i, w)| WindowCount {
                        window: i,
                        used: w.count(&server.admitted, sent),
                        frees_at: None,
                    })
                    .collect();
                unanswered.push((sent, which, counts));
                // Nothing the engine could know of after it.
                others_stopped = true;
                // What is decided after it, is so later: in a tie of one
                // instant `raise_used` takes a unit as counted (a clock
                // coarser than the decisions would need `sent` taken before
                // the request's own decision).
                now = now.max(sent + 1);
            }
            Step::Answer => {
                if unanswered.is_empty() {
                    continue;
                }
                let (sent, which, counts) = unanswered.remove(0);
                // What the layer does with a response: latency, then counts.
                bucket.note_latency(Nanos::new(sent), Nanos::new(now));
                bucket.raise_used_together(&counts, Nanos::new(sent), Nanos::new(now));
                checked |= which;
            }
        }
    }
    let _ = server.arrive_until(u64::MAX, windows);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(15_000)
    ))]

    #[test]
    fn counts_raised_together_never_put_the_server_over_a_limit((windows, steps) in case()) {
        run(&windows, &steps);
    }
}

fn count(window: usize, used: u64) -> WindowCount {
    WindowCount {
        window,
        used,
        frees_at: None,
    }
}

/// A bucket of seed 000's windows: 200 a minute, 600 an hour, 6,000 a day.
fn seed000() -> Bucket {
    Bucket::new(
        "search",
        Limits::new([
            Quota::per_minute(200),
            Quota::per_hour(600),
            Quota::per_day(6000),
        ]),
    )
}

/// Seed 000's shape, where raising each window alone held the first request
/// back for an hour: the minute's 190 leave at once, and not one more.
#[test]
fn a_day_of_usage_does_not_fill_the_minute_or_the_hour() {
    let bucket = seed000();
    let now = Nanos::from_secs(5);
    let added =
        bucket.raise_used_together(&[count(2, 3000), count(1, 100), count(0, 10)], now, now);
    assert_eq!(added, 3000);
    let used: Vec<u64> = bucket.state(now).windows.iter().map(|w| w.used).collect();
    assert_eq!(used, [10, 100, 3000]);
    assert_eq!(bucket.earliest_departure(190, now), Ok(now));
    let minute = now + Duration::from_secs(60);
    assert_eq!(bucket.earliest_departure(191, now), Ok(minute));
    // Each window alone: the day's 3,000 fill the hour for an hour.
    let alone = seed000();
    for (i, used) in [(0, 10), (1, 100), (2, 3000)] {
        alone.raise_used(i, used, now, None);
    }
    assert_eq!(
        alone.earliest_departure(1, now),
        Ok(now + Duration::from_secs(3600))
    );
    // The same report again adds nothing; a later one adds only what is new.
    let later = now + Duration::from_secs(1);
    let again = [count(0, 10), count(1, 100), count(2, 3000)];
    assert_eq!(bucket.raise_used_together(&again, later, later), 0);
    let more = [count(0, 10), count(1, 100), count(2, 3050)];
    assert_eq!(bucket.raise_used_together(&more, later, later), 50);
    assert_eq!(bucket.state(later).windows[2].used, 3050);
    assert_eq!(bucket.earliest_departure(190, later), Ok(later));
}

/// An hour's units beyond its minute reached the server before the minute
/// began there, `received` at the latest: held until an hour after that,
/// and then no longer; the minute never counts them.
#[test]
fn held_units_free_an_hour_after_the_minute_began_at_the_latest() {
    let bucket = Bucket::new(
        "b",
        Limits::new([Quota::per_minute(100), Quota::per_hour(300)]),
    );
    let sent = Nanos::from_secs(7200);
    let received = sent + Duration::from_millis(300);
    bucket.raise_used_together(&[count(0, 0), count(1, 300)], sent, received);
    // The minute began at `received - 60 s + 1 ns` at the latest.
    let frees = received - Duration::from_secs(60) + Duration::from_secs(3600);
    let d = bucket.earliest_departure(1, sent).unwrap_or(Nanos::ZERO);
    assert!(
        d >= frees,
        "{d:?} before {frees:?}: the server still counts them"
    );
    assert!(d <= frees + Duration::from_millis(2), "{d:?} vs {frees:?}");
    assert_eq!(bucket.state(d).windows[1].used, 0);
    assert_eq!(bucket.state(received).windows[1].used, 300);
    assert_eq!(
        bucket.state(received).windows[0].used,
        0,
        "the minute never sees them"
    );
}

// The four cases a review found in the first version of holds (each put a
// server's window over its limit), on the server model of the property test.

fn q(limit: u32, ms: u64) -> Quota {
    Quota::new(limit, Duration::from_millis(ms)).unwrap_or(Quota::per_second(1))
}

fn sliding(arrivals: &[u64], len: u64, x: u64) -> u64 {
    arrivals.iter().filter(|&&a| a <= x && a + len > x).count() as u64
}

/// Our next departure after a report raised as of `sent`..`received`, and
/// what the server's 1 s window holds when it arrives (at once).
fn next_after(b: &Arc<Bucket>, from: u64, arrivals: &mut Vec<u64>) -> u64 {
    let d = match acquire(&[b], 1, Nanos::new(from), MaxWait::Forever) {
        Ok(Grant::Now) => from,
        Ok(Grant::Later(r)) => {
            let d = r.departure().as_u64();
            r.depart();
            d
        }
        Err(e) => panic!("{e}"),
    };
    arrivals.push(d);
    sliding(arrivals, 1000 * MS, d)
}

/// Nine other requests at `others_ms`, ours at 1 s counted `took_ms` later
/// (and answered then): 100 ms and 1 s windows of 10, with 5 ms margins.
/// Returns what the server's 1 s window holds when our next request arrives.
fn report_counted_late(others_ms: u64, took_ms: u64) -> u64 {
    let limits = Limits::new([q(10, 100), q(10, 1000)]).padded(|_| Duration::from_millis(5));
    let b = Arc::new(Bucket::new("b", limits));
    let (sent, counted) = (1000 * MS, (1000 + took_ms) * MS);
    let mut arrivals = vec![others_ms * MS; 9];
    assert!(matches!(
        acquire(&[&b], 1, Nanos::new(sent), MaxWait::Never),
        Ok(Grant::Now)
    ));
    arrivals.push(counted);
    let (short, long) = (
        sliding(&arrivals, 100 * MS, counted),
        sliding(&arrivals, 1000 * MS, counted),
    );
    b.note_latency(Nanos::new(sent), Nanos::new(counted));
    b.raise_used_together(
        &[count(0, short), count(1, long)],
        Nanos::new(sent),
        Nanos::new(counted),
    );
    next_after(&b, counted, &mut arrivals)
}

/// The report's request was counted 5 ms after it left (within the margin).
#[test]
fn a_report_counted_after_it_left_holds_until_then() {
    assert!(report_counted_late(905, 5) <= 10);
}

/// A slow response (200 ms): the counts may be from 200 ms after it left.
#[test]
fn a_slow_report_holds_as_long_as_it_took() {
    assert!(report_counted_late(1100, 200) <= 10);
}

/// A fixed short window whose boundary falls between `sent` and the count:
/// the server's period is the new one.
#[test]
fn a_fixed_window_that_turned_over_in_flight_reckons_from_the_new_period() {
    let limits = Limits::new([q(10, 100).fixed(Nanos::ZERO), q(10, 1000)])
        .padded(|_| Duration::from_millis(5));
    let b = Arc::new(Bucket::new("b", limits));
    let mut arrivals = vec![999 * MS; 9];
    assert!(matches!(
        acquire(&[&b], 1, Nanos::from_millis(998), MaxWait::Never),
        Ok(Grant::Now)
    ));
    arrivals.push(1002 * MS);
    let fixed = arrivals.iter().filter(|&&a| a / (100 * MS) == 10).count() as u64;
    let long = sliding(&arrivals, 1000 * MS, 1002 * MS);
    b.note_latency(Nanos::from_millis(998), Nanos::from_millis(1002));
    b.raise_used_together(
        &[count(0, fixed), count(1, long)],
        Nanos::from_millis(998),
        Nanos::from_millis(1002),
    );
    assert!(next_after(&b, 1002 * MS, &mut arrivals) <= 10);
}

/// A reservation already reaches past the moment the short window's units
/// free, so its raise adds nothing: the long window's units that are not
/// provably older than the short window go in the log, not in a hold.
#[test]
fn only_units_provably_older_than_the_short_window_are_held() {
    let b = Arc::new(Bucket::new("b", Limits::new([q(8, 100), q(11, 1000)])));
    let other = Arc::new(Bucket::new("other", Limits::new([q(100, 1000)])));
    other.block_until(Nanos::from_millis(1110));
    let r = match acquire(&[&b, &other], 1, Nanos::from_millis(1000), MaxWait::Forever) {
        Ok(Grant::Later(r)) => r,
        other => panic!("{other:?}"),
    };
    let mut arrivals = vec![500 * MS; 5];
    arrivals.extend([1000 * MS; 5]);
    let at = Nanos::from_millis(1000);
    b.raise_used_together(&[count(0, 5), count(1, 10)], at, at);
    r.depart();
    arrivals.push(1110 * MS);
    let mut from = 1110 * MS;
    for _ in 0..10 {
        let n = next_after(&b, from, &mut arrivals);
        assert!(n <= 11, "the server's 1 s window holds {n}");
        from = *arrivals.last().unwrap_or(&from);
    }
}

/// A later report's count of the older units replaces the hold an earlier
/// one made: a count that fell frees what the server freed. (Added to it, a
/// hold could only grow until its deadline, pushed on by every report.)
#[test]
fn a_later_report_that_counts_fewer_frees_the_difference() {
    let bucket = Bucket::new(
        "b",
        Limits::new([Quota::per_minute(100), Quota::per_hour(300)]),
    );
    let t = Nanos::from_secs(7200);
    bucket.raise_used_together(&[count(0, 0), count(1, 300)], t, t);
    assert_eq!(bucket.earliest_departure(1, t).map(|d| d > t), Ok(true));
    let later = t + Duration::from_secs(600);
    bucket.raise_used_together(&[count(0, 0), count(1, 100)], later, later);
    assert_eq!(bucket.state(later).windows[1].used, 100);
    assert_eq!(bucket.earliest_departure(100, later), Ok(later));
    // An older report arriving late adds what it says beyond, never less.
    bucket.raise_used_together(&[count(0, 0), count(1, 150)], t, t);
    assert!(bucket.state(later).windows[1].used >= 100);
}

/// A report that does not count a window leaves the hold an older report
/// made there: it replaces holds only in the windows it counts. (Found by the
/// property above: the second report, of the 2 ms and 3 ms windows, dropped
/// the 20 ms window's hold of another client's request.)
#[test]
fn a_report_keeps_the_holds_of_windows_it_does_not_count() {
    let w = |limit, len_ms| Win {
        limit,
        len_ms,
        anchor_ms: None,
    };
    use Step::*;
    run(
        &[w(2, 2), w(8, 20), w(4, 3)],
        &[
            Other,
            Pass(5),
            Report { which: 6 },
            Report { which: 5 },
            Answer,
            Answer,
            Ours { reserve: true },
            Ours { reserve: true },
            Report { which: 1 },
            Ours { reserve: false },
            Ours { reserve: true },
            Ours { reserve: true },
        ],
    );
}
