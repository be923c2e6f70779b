//! The engine against a brute-force model, on random schedules.
//!
//! The model keeps, per bucket, the plain list of `(time, units)` entries in the
//! order they were charged, and finds a departure by trying every candidate
//! instant and counting entries window by window. It shares no code with the
//! engine. On every schedule (times, buckets, costs, multi-window quotas, sliding
//! and fixed windows, cancellations, corrections, blocks, limit changes) the test
//! checks:
//! (a) no window of any bucket ever holds more departures than its limit;
//! (b) every decision is the model's decision: the same departure, so the engine
//!     never makes a request wait when the model would admit it;
//! (c) departures in a bucket are first come, first served;
//! (d) a refused request charges no bucket (the state is unchanged);
//! (e) after an idle period longer than every window, nothing stale is counted.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tower_quota::clock::Nanos;
use tower_quota::ledger::{acquire, Bucket, Grant, MaxWait, Refusal, Reservation};
use tower_quota::quota::{Limits, Quota, Storage};

const MS: u64 = 1_000_000;
const CAPACITY: u32 = 6;

#[derive(Clone, Debug)]
struct WindowSpec {
    limit: u32,
    window_ms: u64,
    anchor_ms: Option<u64>,
    /// The limiter's safety margin (`Quota::with_margin`): a sliding window
    /// is that much longer, a fixed one keeps its boundaries and also counts
    /// what left up to it before each.
    margin_ms: u64,
}

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Acquire {
        buckets: Vec<usize>,
        cost: u32,
        wait: Option<Option<u64>>,
    },
    Cancel(usize),
    Depart(usize),
    RaiseUsed {
        bucket: usize,
        window: usize,
        used: u64,
        frees_in_ms: Option<u64>,
    },
    Block {
        bucket: usize,
        for_ms: u64,
    },
    SetLimit {
        bucket: usize,
        window: usize,
        limit: u32,
    },
    /// A response to a request sent `took_ms` ago comes back now: windows
    /// whose margin it outlasted hold their units longer for a window.
    Late {
        bucket: usize,
        took_ms: u64,
    },
}

fn window_spec() -> impl Strategy<Value = WindowSpec> {
    (
        1u32..=CAPACITY,
        1u64..=20,
        prop::option::weighted(0.25, 0u64..20),
        prop::option::weighted(0.3, 1u64..4),
    )
        .prop_map(|(limit, window_ms, anchor_ms, margin_ms)| WindowSpec {
            limit,
            window_ms,
            anchor_ms,
            // Shorter than the window (as the limiter's default, 1 %, is).
            margin_ms: margin_ms.unwrap_or(0).min(window_ms - 1),
        })
}

fn op(buckets: usize) -> impl Strategy<Value = Op> {
    let b = 0..buckets;
    prop_oneof![
        4 => (0u64..8).prop_map(Op::Advance),
        8 => (
            prop::collection::btree_set(0..buckets, 1..=buckets),
            1u32..=3,
            prop_oneof![Just(None), Just(Some(None)), (0u64..15).prop_map(|w| Some(Some(w)))],
        )
            .prop_map(|(bs, cost, wait)| Op::Acquire { buckets: bs.into_iter().collect(), cost, wait }),
        2 => (0usize..50).prop_map(Op::Cancel),
        2 => (0usize..50).prop_map(Op::Depart),
        1 => (b.clone(), 0usize..3, 0u64..=6, prop::option::of(0u64..20))
            .prop_map(|(bucket, window, used, frees_in_ms)| Op::RaiseUsed { bucket, window, used, frees_in_ms }),
        1 => (b.clone(), 0u64..15).prop_map(|(bucket, for_ms)| Op::Block { bucket, for_ms }),
        1 => (b.clone(), 0usize..3, 1u32..=CAPACITY).prop_map(|(bucket, window, limit)| Op::SetLimit { bucket, window, limit }),
        1 => (b, 0u64..6).prop_map(|(bucket, took_ms)| Op::Late { bucket, took_ms }),
    ]
}

fn schedule() -> impl Strategy<Value = (Vec<Vec<WindowSpec>>, Vec<Op>)> {
    prop::collection::vec(prop::collection::vec(window_spec(), 1..=3), 1..=3).prop_flat_map(
        |specs| {
            let n = specs.len();
            (Just(specs), prop::collection::vec(op(n), 1..120))
        },
    )
}

// ---------------------------------------------------------------- the model

#[derive(Clone, Debug)]
struct Entry {
    time: u64,
    units: u64,
    /// Reservation id; `None` for admitted-now requests and corrections.
    id: Option<usize>,
    cancelled: bool,
    departed: bool,
}

#[derive(Clone, Debug)]
struct ModelWindow {
    limit: u64,
    /// A sliding window's length (its margin included); a fixed window's
    /// period (the server's, without it).
    len: u64,
    anchor: Option<u64>,
    /// A fixed window also counts what left up to this before its start.
    margin: u64,
}

impl ModelWindow {
    fn index_of(&self, t: u64) -> i128 {
        (t as i128 - self.anchor.unwrap_or(0) as i128).div_euclid(self.len as i128)
    }

    /// The first instant after the fixed window containing `t`.
    fn end_of(&self, t: u64) -> u64 {
        (self.anchor.unwrap_or(0) as i128 + (self.index_of(t) + 1) * self.len as i128) as u64
    }

    /// Whether a unit that left at `t2` counts in the fixed window containing `t`.
    fn fixed_counts(&self, t2: u64, t: u64) -> bool {
        let start = self.end_of(t) as i128 - self.len as i128;
        t2 as i128 + self.margin as i128 >= start
    }

    /// What the server's window ending at `t` holds of `entries` as far as
    /// the client can tell: a fixed window from its start (a unit that left
    /// within the margin before it may have arrived before it; a correction
    /// then counts it as not ours, the safe side).
    fn server_count_at(&self, entries: &[Entry], t: u64) -> u64 {
        let unpadded = ModelWindow {
            margin: 0,
            ..self.clone()
        };
        unpadded.count_at(entries, t)
    }

    /// Units of `entries` counted by this window at `t` when all entries are <= t.
    fn count_at(&self, entries: &[Entry], t: u64) -> u64 {
        let from_excl = match self.anchor {
            None => Some(t.checked_sub(self.len)),
            Some(_) => Some(
                (self.end_of(t) as i128 - self.len as i128 - self.margin as i128 - 1)
                    .try_into()
                    .ok(),
            ),
        };
        entries
            .iter()
            .filter(|e| e.time <= t && from_excl.flatten().is_none_or(|f| e.time > f))
            .map(|e| e.units)
            .sum()
    }
}

#[derive(Clone, Debug)]
struct ModelBucket {
    windows: Vec<ModelWindow>,
    entries: Vec<Entry>,
    blocked: u64,
    /// (placed at, units, frees) of the last 32 corrections
    corrections: Vec<(u64, u64, u64)>,
}

impl ModelBucket {
    fn last(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.time)
    }

    fn fits(&self, t: u64, cost: u64) -> bool {
        self.windows
            .iter()
            .all(|w| w.count_at(&self.entries, t) + cost <= w.limit)
    }

    fn candidates(&self, out: &mut Vec<u64>) {
        for e in &self.entries {
            for w in &self.windows {
                out.push(e.time + w.len);
                out.push(w.end_of(e.time));
                out.push(w.end_of(e.time + w.margin));
            }
        }
    }

    /// Pops cancelled entries off the end of the list.
    fn pop_cancelled(&mut self) {
        while self.entries.last().is_some_and(|e| e.cancelled) {
            self.entries.pop();
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Now,
    Later(u64),
    Wait(u64),
    TooCostly,
}

fn model_decide(
    buckets: &[ModelBucket],
    which: &[usize],
    cost: u64,
    now: u64,
    wait: MaxWait,
) -> Outcome {
    if which
        .iter()
        .any(|&i| buckets[i].windows.iter().any(|w| cost > w.limit))
    {
        return Outcome::TooCostly;
    }
    let base = which
        .iter()
        .map(|&i| buckets[i].last().max(buckets[i].blocked))
        .fold(now, u64::max);
    let mut cands = vec![base];
    for &i in which {
        buckets[i].candidates(&mut cands);
    }
    cands.retain(|c| *c >= base);
    cands.sort_unstable();
    let d = cands
        .into_iter()
        .find(|&t| which.iter().all(|&i| buckets[i].fits(t, cost)))
        .unwrap_or(u64::MAX);
    let allowed = match wait {
        MaxWait::Never => d == now,
        MaxWait::Up(x) => u128::from(d - now) <= x.as_nanos(),
        MaxWait::Forever => true,
    };
    match (allowed, d == now) {
        (false, _) => Outcome::Wait(d - now),
        (true, true) => Outcome::Now,
        (true, false) => Outcome::Later(d),
    }
}

// ---------------------------------------------------------------- the run

/// A granted request in one bucket: (bucket, departure, units, limits in force
/// at the decision, reservation id).
type Granted = (usize, u64, u64, Vec<u64>, Option<usize>);

fn build(specs: &[Vec<WindowSpec>], storage: Storage) -> (Vec<Arc<Bucket>>, Vec<ModelBucket>) {
    let mut engine = Vec::new();
    let mut model = Vec::new();
    for (i, ws) in specs.iter().enumerate() {
        let quotas = ws.iter().map(|w| {
            let q = Quota::new(w.limit, Duration::from_millis(w.window_ms))
                .unwrap_or(Quota::per_second(1));
            match w.anchor_ms {
                Some(a) => q.fixed(Nanos::new(a * MS)),
                None => q,
            }
            .with_margin(Duration::from_millis(w.margin_ms))
        });
        let limits = Limits::new(quotas).storage(storage).capacity(CAPACITY);
        engine.push(Arc::new(Bucket::new(format!("b{i}"), limits)));
        model.push(ModelBucket {
            windows: ws
                .iter()
                .map(|w| ModelWindow {
                    limit: u64::from(w.limit),
                    len: match w.anchor_ms {
                        None => (w.window_ms + w.margin_ms) * MS,
                        Some(_) => w.window_ms * MS,
                    },
                    anchor: w.anchor_ms.map(|a| a * MS),
                    margin: w.margin_ms * MS,
                })
                .collect(),
            entries: Vec::new(),
            blocked: 0,
            corrections: Vec::new(),
        });
    }
    (engine, model)
}

fn engine_outcome(r: Result<Grant, Refusal>, now: u64) -> (Outcome, Option<Reservation>) {
    match r {
        Ok(Grant::Now) => (Outcome::Now, None),
        Ok(Grant::Later(res)) => (Outcome::Later(res.departure().as_u64()), Some(res)),
        Err(Refusal::WouldWait { wait, .. }) => (Outcome::Wait(wait.as_nanos() as u64), None),
        Err(Refusal::CostExceedsLimit { .. }) => (Outcome::TooCostly, None),
        Err(other) => panic!("unexpected refusal at {now}: {other}"),
    }
}

/// Checks (a): at each departure, the departures decided up to it that fall in
/// each window ending at it number at most the limit in force when it was decided.
fn check_windows(departures: &[(usize, u64, u64, Vec<u64>)], specs: &[Vec<ModelWindow>]) {
    // (bucket, time, units, limits at decision) in decision order
    for (k, (b, t, _, limits)) in departures.iter().enumerate() {
        for (wi, w) in specs[*b].iter().enumerate() {
            let in_window: u64 = departures[..=k]
                .iter()
                .filter(|(b2, t2, _, _)| b2 == b && *t2 <= *t)
                .filter(|(_, t2, _, _)| match w.anchor {
                    None => *t2 + w.len > *t,
                    Some(_) => w.fixed_counts(*t2, *t),
                })
                .map(|(_, _, u, _)| u)
                .sum();
            assert!(
                in_window <= limits[wi],
                "bucket {b} window {wi}: {in_window} units in the window ending at {t}, limit {}",
                limits[wi]
            );
        }
    }
}

fn run(specs: Vec<Vec<WindowSpec>>, ops: Vec<Op>, storage: Storage) {
    let (engine, mut model) = build(&specs, storage);
    let exact = storage == Storage::Exact;
    let mut now = 0u64;
    let mut outstanding: BTreeMap<usize, (Reservation, Vec<usize>)> = BTreeMap::new();
    let mut next_id = 0usize;
    // every granted request: (bucket, time, units, limits), in decision order;
    // cancelled ones are removed at the end
    let mut granted: Vec<Granted> = Vec::new();
    let mut cancelled_ids = Vec::new();
    let mut last_departure = vec![0u64; engine.len()];
    // After a late response the engine holds units longer than the model,
    // which knows no latency, until a window after it (at most 20 ms, kept
    // rounded up): until then it may wait longer than the model (never
    // shorter), so (b) is not checked for equality.
    let mut widened_until = 0u64;

    for op in ops {
        match op {
            Op::Advance(ms) => now += ms * MS,
            Op::Acquire {
                buckets,
                cost,
                wait,
            } => {
                let wait = match wait {
                    None => MaxWait::Never,
                    Some(None) => MaxWait::Forever,
                    Some(Some(ms)) => MaxWait::Up(Duration::from_millis(ms)),
                };
                let refs: Vec<&Arc<Bucket>> = buckets.iter().map(|&i| &engine[i]).collect();
                let before: Vec<_> = engine.iter().map(|b| b.state(Nanos::new(now))).collect();
                let (got, reservation) =
                    engine_outcome(acquire(&refs, cost, Nanos::new(now), wait), now);
                let want = model_decide(&model, &buckets, u64::from(cost), now, wait);
                if exact && now >= widened_until {
                    assert_eq!(
                        got, want,
                        "(b) decision at {now} for {buckets:?} cost {cost}"
                    );
                }
                // The earliest departure the model allows; bounded storage may only be later.
                let model_d = match want {
                    Outcome::Now => now,
                    Outcome::Later(x) => x,
                    Outcome::Wait(w) => now + w,
                    Outcome::TooCostly => u64::MAX,
                };
                let d = match got {
                    Outcome::Now => now,
                    Outcome::Later(d) => d,
                    Outcome::Wait(w) => {
                        assert!(
                            now + w >= model_d,
                            "engine's wait is shorter than the model's"
                        );
                        let after: Vec<_> =
                            engine.iter().map(|b| b.state(Nanos::new(now))).collect();
                        assert_eq!(before, after, "(d) a refused request changed the state");
                        continue;
                    }
                    Outcome::TooCostly => {
                        assert_eq!(want, Outcome::TooCostly);
                        continue;
                    }
                };
                assert!(
                    d >= model_d,
                    "engine admitted at {d}, before the model's {model_d}"
                );
                let id = reservation.as_ref().map(|_| {
                    next_id += 1;
                    next_id
                });
                for &i in &buckets {
                    assert!(
                        d >= last_departure[i],
                        "(c) departure {d} before an earlier one in bucket {i}"
                    );
                    last_departure[i] = d;
                    let limits = model[i].windows.iter().map(|w| w.limit).collect();
                    granted.push((i, d, u64::from(cost), limits, id));
                    model[i].entries.push(Entry {
                        time: d,
                        units: u64::from(cost),
                        id,
                        cancelled: false,
                        departed: false,
                    });
                }
                if let (Some(r), Some(id)) = (reservation, id) {
                    outstanding.insert(id, (r, buckets.clone()));
                }
            }
            Op::Cancel(k) | Op::Depart(k) if outstanding.is_empty() => {
                let _ = k;
            }
            Op::Cancel(k) => {
                let id = *outstanding.keys().nth(k % outstanding.len()).unwrap_or(&0);
                if let Some((r, buckets)) = outstanding.remove(&id) {
                    drop(r);
                    cancelled_ids.push(id);
                    for i in buckets {
                        for e in model[i].entries.iter_mut().filter(|e| e.id == Some(id)) {
                            e.cancelled = true;
                        }
                        model[i].pop_cancelled();
                        last_departure[i] = model[i].last();
                    }
                }
            }
            Op::Depart(k) => {
                let id = *outstanding.keys().nth(k % outstanding.len()).unwrap_or(&0);
                if let Some((r, buckets)) = outstanding.remove(&id) {
                    r.depart();
                    for i in buckets {
                        for e in model[i].entries.iter_mut().filter(|e| e.id == Some(id)) {
                            e.departed = true;
                        }
                    }
                }
            }
            Op::RaiseUsed {
                bucket,
                window,
                used,
                frees_in_ms,
            } => {
                let Some(w) = model[bucket].windows.get(window).cloned() else {
                    continue;
                };
                let used = used.min(w.limit);
                let frees_at = frees_in_ms.map(|ms| now + ms * MS);
                let added = engine[bucket].raise_used(
                    window,
                    used,
                    Nanos::new(now),
                    frees_at.map(Nanos::new),
                );
                let m = &mut model[bucket];
                let ours = w.server_count_at(&m.entries, now);
                let frees = frees_at.unwrap_or(match w.anchor {
                    None => now + w.len,
                    Some(_) => w.end_of(now + w.margin),
                });
                let p = match (frees_at, w.anchor) {
                    (Some(f), None) => f.saturating_sub(w.len),
                    (Some(f), Some(_)) => f.saturating_sub(1).max(now),
                    (None, _) => now,
                }
                .max(m.last());
                let pending: u64 = m
                    .corrections
                    .iter()
                    .filter(|(at, _, f)| *at > now && *f > now)
                    .map(|(_, u, _)| u)
                    .sum();
                let extra = if p >= frees {
                    0
                } else {
                    used.saturating_sub(ours + pending)
                };
                let reserved_ahead: u64 = m
                    .entries
                    .iter()
                    .filter(|e| e.time > now)
                    .map(|e| e.units)
                    .sum();
                // Exact while the reservations ahead fit the ring's headroom (the
                // capacity here); never fewer than needed beyond.
                assert!(
                    added >= extra,
                    "correction at {now} added {added} < {extra}"
                );
                if exact && reserved_ahead <= u64::from(CAPACITY) {
                    assert_eq!(added, extra, "correction at {now}");
                }
                if added > 0 {
                    if m.corrections.len() == 32 {
                        m.corrections.remove(0);
                    }
                    m.corrections.push((p, added, frees));
                    m.entries.push(Entry {
                        time: p,
                        units: added,
                        id: None,
                        cancelled: false,
                        departed: true,
                    });
                    last_departure[bucket] = p;
                }
            }
            Op::Late { bucket, took_ms } => {
                let sent = Nanos::new(now.saturating_sub(took_ms * MS));
                engine[bucket].note_latency(sent, Nanos::new(now));
                // (A response that outlasted no margin widens nothing; the
                // test does not tell, and skips (b) for a while either way.)
                if took_ms > 0 {
                    widened_until = widened_until.max(now + 25 * MS);
                }
            }
            Op::Block { bucket, for_ms } => {
                engine[bucket].block_until(Nanos::new(now + for_ms * MS));
                model[bucket].blocked = model[bucket].blocked.max(now + for_ms * MS);
            }
            Op::SetLimit {
                bucket,
                window,
                limit,
            } => {
                let Some(w) = model[bucket].windows.get_mut(window) else {
                    continue;
                };
                w.limit = u64::from(limit);
                assert!(engine[bucket]
                    .set_limit(window, NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN)));
            }
        }
    }

    // (a) over what actually departed (cancelled reservations never did)
    let departed: Vec<_> = granted
        .into_iter()
        .filter(|g| g.4.is_none_or(|id| !cancelled_ids.contains(&id)))
        .map(|(b, t, u, l, _)| (b, t, u, l))
        .collect();
    let windows: Vec<Vec<ModelWindow>> = model.iter().map(|m| m.windows.clone()).collect();
    check_windows(&departed, &windows);

    // (e) after an idle period longer than every window, nothing is counted
    drop(outstanding);
    let latest = model
        .iter()
        .map(|m| m.last().max(m.blocked))
        .max()
        .unwrap_or(0);
    // past the longest window (20 ms) and its margin (3), and every widening
    let idle = (latest + 24 * MS).max(widened_until);
    for b in &engine {
        let s = b.state(Nanos::new(idle));
        for w in &s.windows {
            assert_eq!((w.used, w.reserved), (0, 0), "(e) stale count after idling");
        }
        assert_eq!(
            s.next_departure,
            Nanos::new(idle),
            "(e) an idle bucket must admit at once"
        );
    }
}

proptest! {
    // 400 schedules by default; PROPTEST_CASES=20000 for a deeper hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        ..ProptestConfig::default()
    })]

    #[test]
    fn exact_engine_matches_the_model((specs, ops) in schedule()) {
        run(specs, ops, Storage::Exact);
    }

    #[test]
    fn bounded_engine_is_never_less_careful((specs, ops) in schedule()) {
        let slots = NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN);
        run(specs, ops, Storage::Bounded { slots });
    }

    #[test]
    fn limits_raised_past_the_capacity_are_never_exceeded((specs, ops) in raise_schedule()) {
        raised_limits_stay_limits(specs.clone(), ops.clone(), Storage::Exact);
        let slots = NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN);
        raised_limits_stay_limits(specs, ops, Storage::Bounded { slots });
    }
}

/// What a schedule of [`raised_limits_stay_limits`] does to its one bucket.
#[derive(Clone, Debug)]
enum RaiseOp {
    Advance(u64),
    Take(u32),
    SetLimit { window: usize, limit: u32 },
}

/// Runs `ops` on one bucket whose limits may be raised up to three times past
/// the capacity it was built with, and checks (a) against the limits in force:
/// beyond the capacity the lookback reaches past what the ring remembers, so
/// the engine falls back to the oldest time it keeps (later, so safe).
fn raised_limits_stay_limits(specs: Vec<WindowSpec>, ops: Vec<RaiseOp>, storage: Storage) {
    let (engine, model) = build(std::slice::from_ref(&specs), storage);
    let (bucket, windows) = (&engine[0], model[0].windows.clone());
    let mut limits: Vec<u64> = windows.iter().map(|w| w.limit).collect();
    let mut now = 0;
    let mut departures = Vec::new();
    for op in ops {
        match op {
            RaiseOp::Advance(ms) => now += ms * MS,
            RaiseOp::Take(cost) => {
                match acquire(&[bucket], cost, Nanos::new(now), MaxWait::Forever) {
                    Ok(Grant::Now) => departures.push((0, now, u64::from(cost), limits.clone())),
                    Ok(Grant::Later(r)) => {
                        departures.push((
                            0,
                            r.departure().as_u64(),
                            u64::from(cost),
                            limits.clone(),
                        ));
                        r.depart();
                    }
                    Err(Refusal::CostExceedsLimit { .. }) => {}
                    Err(other) => panic!("unexpected refusal: {other}"),
                }
            }
            RaiseOp::SetLimit { window, limit } => {
                if let Some(l) = limits.get_mut(window) {
                    *l = u64::from(limit);
                    assert!(
                        bucket.set_limit(window, NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN))
                    );
                }
            }
        }
    }
    check_windows(&departures, &[windows]);
}

fn raise_schedule() -> impl Strategy<Value = (Vec<WindowSpec>, Vec<RaiseOp>)> {
    (
        prop::collection::vec(window_spec(), 1..=3),
        prop::collection::vec(
            prop_oneof![
                3 => (0u64..6).prop_map(RaiseOp::Advance),
                8 => (1u32..=3).prop_map(RaiseOp::Take),
                1 => (0usize..3, 1u32..=3 * CAPACITY)
                    .prop_map(|(window, limit)| RaiseOp::SetLimit { window, limit }),
            ],
            1..150,
        ),
    )
}

#[test]
fn seed_000_three_windows_on_one_route() {
    // 200/minute, 600/hour, 6000/day: with everything sent as early as allowed,
    // the hour window binds after three minutes.
    let b = Arc::new(Bucket::new(
        "api/v1/contacts#search",
        Limits::new([
            Quota::per_minute(200),
            Quota::per_hour(600),
            Quota::per_day(6000),
        ]),
    ));
    let mut departures = Vec::new();
    for _ in 0..601 {
        match acquire(&[&b], 1, Nanos::ZERO, MaxWait::Forever) {
            Ok(Grant::Now) => departures.push(0),
            Ok(Grant::Later(r)) => {
                departures.push(r.departure().as_u64() / 1_000_000_000);
                r.depart();
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(departures[199], 0);
    assert_eq!(departures[200], 60);
    assert_eq!(departures[400], 120);
    assert_eq!(departures[599], 120);
    assert_eq!(
        departures[600], 3600,
        "the 601st request waits for the hour window"
    );
}

#[test]
fn cancelled_waiters_give_the_quota_back_in_any_order() {
    let b = Arc::new(Bucket::new("route", Quota::per_second(10)));
    let mut waiters = Vec::new();
    for i in 0..2000 {
        match acquire(&[&b], 1, Nanos::ZERO, MaxWait::Forever) {
            Ok(Grant::Now) => assert!(i < 10),
            Ok(Grant::Later(r)) => waiters.push(r),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(waiters.len(), 1990);
    // Drop them in a scrambled order: middle ones first, the newest last.
    let mut order: Vec<usize> = (0..waiters.len()).collect();
    order.sort_by_key(|i| (i * 7919) % 1990);
    let mut slots: Vec<Option<Reservation>> = waiters.into_iter().map(Some).collect();
    for i in order {
        slots[i] = None;
    }
    let s = b.state(Nanos::ZERO);
    assert_eq!(s.units_charged, 10, "only the ten admitted requests remain");
    assert_eq!(s.next_departure, Nanos::from_secs(1));
    // The quota is whole: the next second admits exactly ten more.
    let at_one = Nanos::from_secs(1);
    for _ in 0..10 {
        assert!(matches!(
            acquire(&[&b], 1, at_one, MaxWait::Never),
            Ok(Grant::Now)
        ));
    }
    assert!(acquire(&[&b], 1, at_one, MaxWait::Never).is_err());
}

#[test]
fn a_refused_request_charges_no_other_bucket() {
    let wide = Arc::new(Bucket::new("wide", Quota::per_second(100)));
    let narrow = Arc::new(Bucket::new("narrow", Quota::per_second(1)));
    assert!(matches!(
        acquire(&[&wide, &narrow], 1, Nanos::ZERO, MaxWait::Never),
        Ok(Grant::Now)
    ));
    for _ in 0..50 {
        let r = acquire(&[&wide, &narrow], 1, Nanos::ZERO, MaxWait::Never);
        assert!(matches!(r, Err(Refusal::WouldWait { ref bucket, .. }) if &**bucket == "narrow"));
    }
    assert_eq!(wide.state(Nanos::ZERO).windows[0].used, 1);
}

#[test]
fn a_request_costlier_than_a_window_is_refused_with_a_typed_error() {
    let b = Arc::new(Bucket::new("small", Quota::per_second(3)));
    let r = acquire(&[&b], 4, Nanos::ZERO, MaxWait::Forever);
    assert!(matches!(
        r,
        Err(Refusal::CostExceedsLimit {
            cost: 4,
            limit: 3,
            ..
        })
    ));
    assert_eq!(b.state(Nanos::ZERO).units_charged, 0);
}

#[test]
fn regression_vacancy_then_new_claims() {
    let specs = vec![vec![WindowSpec {
        limit: 1,
        window_ms: 1,
        anchor_ms: None,
        margin_ms: 0,
    }]];
    let ops = vec![
        Op::SetLimit {
            bucket: 0,
            window: 0,
            limit: 5,
        },
        Op::Block {
            bucket: 0,
            for_ms: 1,
        },
        Op::Acquire {
            buckets: vec![0],
            cost: 3,
            wait: Some(None),
        },
        Op::Acquire {
            buckets: vec![0],
            cost: 2,
            wait: Some(None),
        },
        Op::Cancel(2),
        Op::Acquire {
            buckets: vec![0],
            cost: 1,
            wait: None,
        },
        Op::Depart(0),
        Op::Cancel(0),
        Op::Acquire {
            buckets: vec![0],
            cost: 3,
            wait: Some(None),
        },
        Op::Acquire {
            buckets: vec![0],
            cost: 1,
            wait: None,
        },
    ];
    run(specs, ops, Storage::Exact);
}

#[test]
fn regression_block_then_correction() {
    let specs = vec![vec![WindowSpec {
        limit: 1,
        window_ms: 1,
        anchor_ms: None,
        margin_ms: 0,
    }]];
    let ops = vec![
        Op::SetLimit {
            bucket: 0,
            window: 0,
            limit: 2,
        },
        Op::Acquire {
            buckets: vec![0],
            cost: 1,
            wait: None,
        },
        Op::Block {
            bucket: 0,
            for_ms: 13,
        },
        Op::Acquire {
            buckets: vec![0],
            cost: 1,
            wait: Some(None),
        },
        Op::Advance(3),
        Op::Depart(0),
        Op::Advance(3),
        Op::Advance(7),
        Op::RaiseUsed {
            bucket: 0,
            window: 0,
            used: 2,
            frees_in_ms: None,
        },
    ];
    run(specs, ops, Storage::Exact);
}

#[test]
fn acquire_from_plans_no_earlier_than_asked() {
    use tower_quota::ledger::acquire_from;
    let b = Arc::new(Bucket::new("account", Quota::per_second(5)));
    // Room now, but the request must not leave before 300 ms (another bucket
    // binds it): it reserves exactly that instant.
    match acquire_from(
        &[&b],
        1,
        Nanos::ZERO,
        Nanos::from_millis(300),
        MaxWait::Forever,
    ) {
        Ok(Grant::Later(r)) => {
            assert_eq!(r.departure(), Nanos::from_millis(300));
            r.depart();
        }
        other => panic!("expected a reservation at 300 ms, got {other:?}"),
    }
    // The wait counts against the cap.
    let r = acquire_from(
        &[&b],
        1,
        Nanos::ZERO,
        Nanos::from_millis(300),
        MaxWait::Up(Duration::from_millis(100)),
    );
    assert!(
        matches!(r, Err(Refusal::WouldWait { wait, .. }) if wait == Duration::from_millis(300))
    );
    assert_eq!(
        b.earliest_departure(1, Nanos::ZERO).ok(),
        Some(Nanos::from_millis(300))
    );
}
