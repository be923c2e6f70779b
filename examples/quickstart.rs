//! The engine at work, in real time with compressed windows.
//!
//! Eight threads push 160 requests through one route bucket and one API-key
//! bucket, as fast as they can. The engine hands each a departure time; each
//! sleeps until then and "sends". At the end, the departures are checked against
//! every window and the utilisation is printed.
//!
//! (The embedded API server, the tower layer and the usage report join this
//! example as their issues land.)

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tower_quota::clock::{Clock, Nanos, SystemClock};
use tower_quota::ledger::{acquire, Bucket, Grant, MaxWait, Refusal};
use tower_quota::quota::{Limits, Quota};

const THREADS: usize = 8;
const PER_THREAD: usize = 20;

fn quota(limit: u32, ms: u64) -> Quota {
    Quota::new(limit, Duration::from_millis(ms)).unwrap_or_else(|| Quota::per_second(1))
}

fn main() {
    let clock = Arc::new(SystemClock::new());
    // Seed 004's GET /campaigns/:id is 120 per 60 s; compressed 120x: 20 per 500 ms.
    let route = Arc::new(Bucket::new("GET /v1/campaigns/:id", quota(20, 500)));
    // The API key also carries a two-window budget: 30 per second and 70 per 2 s.
    let key = Arc::new(Bucket::new(
        "api-key#demo",
        Limits::new([quota(30, 1000), quota(70, 2000)]),
    ));
    let departures = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();

    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (clock, route, key, departures) = (
                clock.clone(),
                route.clone(),
                key.clone(),
                departures.clone(),
            );
            thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    let now = clock.now();
                    let at = match acquire(&[&route, &key], 1, now, MaxWait::Forever) {
                        Ok(Grant::Now) => now,
                        Ok(Grant::Later(r)) => {
                            let at = r.departure();
                            thread::sleep(at.saturating_since(clock.now()));
                            r.depart();
                            at
                        }
                        Err(e) => {
                            eprintln!("refused: {e}");
                            continue;
                        }
                    };
                    if let Ok(mut d) = departures.lock() {
                        d.push(at);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let elapsed = started.elapsed();
    let mut d = departures.lock().map(|d| d.clone()).unwrap_or_default();
    d.sort();

    println!(
        "tower-quota quickstart: {} requests from {THREADS} threads in {elapsed:.2?}\n",
        d.len()
    );
    println!(
        "{:<24} {:>7} {:>9} {:>14} {:>12}",
        "bucket", "limit", "window", "max in window", "utilisation"
    );
    for (name, limit, ms) in [
        ("GET /v1/campaigns/:id", 20, 500),
        ("api-key#demo (1 s)", 30, 1000),
        ("api-key#demo (2 s)", 70, 2000),
    ] {
        let max = max_in_window(&d, Duration::from_millis(ms));
        let span = d
            .last()
            .map_or(Duration::ZERO, |l| l.saturating_since(d[0]));
        // The most a sliding window allows over the span: `limit` at the start and
        // `limit` more each time a window passes.
        let possible = limit as f64 * (1.0 + (span.as_secs_f64() * 1000.0 / ms as f64).floor());
        println!(
            "{name:<24} {limit:>7} {:>9} {max:>14} {:>11.1}%",
            format!("{ms} ms"),
            100.0 * d.len() as f64 / possible
        );
        assert!(max <= limit, "{name}: {max} departures inside one window");
    }

    // Fail fast instead of waiting: the typed refusal says which bucket and how long.
    let now = clock.now();
    match acquire(&[&route, &key], 1, now, MaxWait::Never) {
        Err(Refusal::WouldWait { bucket, wait }) => {
            println!("\nfail-fast: `{bucket}` would make the next request wait {wait:.0?}")
        }
        Ok(_) => println!("\nfail-fast: room was left, the request could go at once"),
        Err(e) => println!("\nfail-fast: {e}"),
    }
    let state = route.state(clock.now());
    println!(
        "peek: `{}` has {} of {} used, next departure at {}",
        route.label(),
        state.windows[0].used,
        state.windows[0].limit,
        state.next_departure
    );
}

/// The most departures inside any half-open interval of length `w`.
fn max_in_window(sorted: &[Nanos], w: Duration) -> u32 {
    let mut max = 0;
    let mut lo = 0;
    for (hi, t) in sorted.iter().enumerate() {
        while sorted[lo] + w <= *t {
            lo += 1;
        }
        max = max.max(hi - lo + 1);
    }
    max as u32
}
