//! Decisions per second per process against a loopback Redis, beside the
//! in-memory store, in the same run; then p50/p99 decision latency with 64
//! decisions in flight.
//!
//! `cargo bench --features redis --bench redis` (starts its own
//! `redis-server` on a free port; skips with a notice where it is missing).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tower_quota::store::{MemoryStore, RedisStore, SharedBucket, SharedStore, SharedWindow};

#[path = "../tests/redis_server/mod.rs"]
mod redis_server;

const IN_FLIGHT: usize = 64;

fn buckets(store: &dyn SharedStore) -> Vec<SharedBucket> {
    // The allowing path: every decision writes (a window that never fills).
    vec![SharedBucket::new(
        "api_key",
        store.bucket_id("api_key", b"bench"),
        [SharedWindow {
            limit: 100_000_000,
            length: Duration::from_secs(1),
            anchor: None,
            margin: Duration::ZERO,
        }],
    )]
}

/// `n` decisions, `in_flight` at a time; each one's latency.
async fn run(store: Arc<dyn SharedStore>, n: u64, in_flight: usize) -> Vec<Duration> {
    let b = buckets(&*store);
    let per_task = n.div_ceil(in_flight as u64);
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (store, b) = (store.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_task as usize);
            for _ in 0..per_task {
                let t = Instant::now();
                let grant = store.acquire(b.clone(), 1, None).await;
                assert!(grant.is_ok(), "{grant:?}");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    all
}

fn bench(c: &mut Criterion) {
    let Some(server) = redis_server::RedisServer::start("bench: redis decisions") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let redis: Arc<dyn SharedStore> = rt.block_on(async {
        RedisStore::builder(server.url())
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    });
    let memory: Arc<dyn SharedStore> = Arc::new(MemoryStore::new());
    let mut g = c.benchmark_group("store_decision");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(5));
    for (name, store) in [("redis", &redis), ("memory", &memory)] {
        for in_flight in [1, IN_FLIGHT] {
            g.bench_function(format!("{name}/{in_flight}_in_flight"), |b| {
                b.iter_custom(|iters| {
                    let store = store.clone();
                    rt.block_on(async move {
                        let t = Instant::now();
                        run(store, iters, in_flight).await;
                        t.elapsed()
                    })
                })
            });
        }
    }
    g.finish();
    // Latency percentiles, which criterion does not report: queueing grows
    // with what is in flight (Little's law), so each level is shown.
    for in_flight in [1, 8, 16, 32, IN_FLIGHT] {
        let t = Instant::now();
        let mut lat = rt.block_on(run(redis.clone(), 40_000, in_flight));
        let rate = lat.len() as f64 / t.elapsed().as_secs_f64();
        lat.sort_unstable();
        let pct = |p: usize| lat.get(lat.len() * p / 100).copied().unwrap_or_default();
        println!(
            "redis, {in_flight:>2} in flight: {rate:>7.0} decisions/s, p50 {:?}, p99 {:?}, max {:?}",
            pct(50),
            pct(99),
            lat.last().copied().unwrap_or_default(),
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
