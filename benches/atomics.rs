//! What this CPU's atomic instructions cost, one thread, the line in L1: the
//! floor under any lock-free decision, and so under the engine's goals that
//! are read on a manual clock (BENCHMARKS.md, "Goals of issue #2").
//!
//! Run: `cargo bench --bench atomics`.
//!
//! governor's decision on its manual clock is the clock's `fetch_add` and
//! one 64-bit compare-and-swap of its one word. The engine's is a 128-bit
//! load of a bucket's head and a 128-bit compare-and-swap (`cmpxchg16b`,
//! through `portable-atomic`, which picks the instruction at run time unless
//! the build targets a CPU that has it), plus the window's reads.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use portable_atomic::AtomicU128;

fn atomics(c: &mut Criterion) {
    let word = AtomicU64::new(0);
    let head = AtomicU128::new(0);
    let mut g = c.benchmark_group("atomics");
    g.bench_function("u64 fetch_add (governor's manual clock)", |b| {
        b.iter(|| black_box(word.fetch_add(1, Ordering::AcqRel)))
    });
    g.bench_function("u64 load and compare-and-swap (governor's decision)", |b| {
        b.iter(|| {
            let v = word.load(Ordering::Acquire);
            black_box(word.compare_exchange(v, v + 1, Ordering::AcqRel, Ordering::Acquire))
        })
    });
    g.bench_function("u128 load (the engine's head)", |b| {
        b.iter(|| black_box(head.load(Ordering::Acquire)))
    });
    g.bench_function("u128 load and compare-and-swap (the engine's claim)", |b| {
        b.iter(|| {
            let v = head.load(Ordering::Acquire);
            black_box(head.compare_exchange(v, v + 1, Ordering::AcqRel, Ordering::Acquire))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    targets = atomics
}
criterion_main!(benches);
