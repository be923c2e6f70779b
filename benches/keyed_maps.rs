//! The map under `KeyedBuckets`: one lookup over 10,000 keys in random order,
//! for the concurrent maps we could build on, in the same run.
//!
//! Run: `cargo bench --bench keyed_maps`. Figures: BENCHMARKS.md ("Keyed
//! decisions, timed"). The second group times one dependent cache miss by
//! working set, the unit the keyed figures are made of.
//!
//! Each iteration reads the clock (as every decision does: the vDSO's ordered
//! time-stamp read also keeps one iteration's cache misses from overlapping
//! the next's), looks a key up, and does what a decision does first with what
//! it found: reads a line of the value and writes another with a locked
//! instruction. The values are 384-byte blocks, the size of a bucket. "No map"
//! finds the block by index: the floor under every map.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

const KEYS: u64 = 10_000;

/// One cache line.
#[repr(align(64))]
struct Line(AtomicU64);

/// A stand-in for a bucket: the line a decision reads, the head it writes,
/// and the rest of its 384 bytes.
struct Value {
    read: Line,
    head: Line,
    _rest: [Line; 4],
}

impl Value {
    fn new() -> Arc<Value> {
        Arc::new(Value {
            read: Line(AtomicU64::new(1)),
            head: Line(AtomicU64::new(0)),
            _rest: std::array::from_fn(|_| Line(AtomicU64::new(0))),
        })
    }

    fn decide(&self) -> u64 {
        let step = self.read.0.load(Ordering::Acquire);
        self.head.0.fetch_add(step, Ordering::AcqRel)
    }
}

type Hasher = foldhash::fast::RandomState;

fn maps(c: &mut Criterion) {
    let mut order: Vec<u64> = (0..KEYS).collect();
    fastrand::Rng::with_seed(7).shuffle(&mut order);
    let by_index: Vec<Arc<Value>> = (0..KEYS).map(|_| Value::new()).collect();
    let papaya: papaya::HashMap<u64, Arc<Value>, Hasher> = papaya::HashMap::builder()
        .hasher(Hasher::default())
        .resize_mode(papaya::ResizeMode::Blocking)
        .build();
    let scc: scc::HashIndex<u64, Arc<Value>, Hasher> =
        scc::HashIndex::with_hasher(Hasher::default());
    let dashmap: dashmap::DashMap<u64, Arc<Value>, Hasher> =
        dashmap::DashMap::with_hasher(Hasher::default());
    // Inserted in turn, as keys arrive, so no map's values sit in key order.
    for k in 0..KEYS {
        papaya.pin().insert(k, Value::new());
        let _ = scc.insert_sync(k, Value::new());
        dashmap.insert(k, Value::new());
    }

    let mut g = c.benchmark_group("keyed-map-10k-shuffled");
    let mut i = 0usize;
    let mut next = || {
        i = (i + 1) % order.len();
        black_box(Instant::now());
        order[i]
    };
    g.bench_function("no map (by index)", |b| {
        b.iter(|| black_box(by_index[next() as usize].decide()))
    });
    g.bench_function("papaya HashMap", |b| {
        b.iter(|| {
            let k = next();
            black_box(papaya.pin().get(&k).map(|v| v.decide()))
        })
    });
    g.bench_function("scc HashIndex (tower-quota)", |b| {
        b.iter(|| {
            let k = next();
            let guard = scc::Guard::new();
            black_box(scc.peek(&k, &guard).map(|v| v.decide()))
        })
    });
    g.bench_function("dashmap (governor's keyed store)", |b| {
        b.iter(|| {
            let k = next();
            black_box(dashmap.get(&k).map(|v| v.decide()))
        })
    });
    g.finish();
}

/// What one dependent cache miss costs on this machine, by working set: a
/// walk through a random cycle of 64-byte lines (each load's address comes
/// from the load before), one step an iteration. It tells what a decision's
/// chain of dependent loads costs when its state fits the core's own cache
/// (governor's 10,000 keys: about 300 KB) and when it does not (ours: about
/// 6 MB).
fn memory_hops(c: &mut Criterion) {
    let mut g = c.benchmark_group("memory-hop");
    for kib in [256usize, 1024, 4096, 8192, 65536] {
        let lines = kib * 1024 / 64;
        let mut order: Vec<usize> = (0..lines).collect();
        fastrand::Rng::with_seed(11).shuffle(&mut order);
        // next[8 * line] is where the walk goes from `line` (8 words a line).
        let mut next = vec![0usize; lines * 8];
        for (i, &line) in order.iter().enumerate() {
            next[line * 8] = order[(i + 1) % lines] * 8;
        }
        let mut at = 0usize;
        g.bench_function(format!("{kib} KiB"), |b| {
            b.iter(|| {
                at = next[at];
                black_box(at)
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = maps, memory_hops
}
criterion_main!(benches);
