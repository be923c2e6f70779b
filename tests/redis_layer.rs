//! The layer with a Redis store: two limiters (two processes' worth) whose
//! local clocks disagree by seconds share one API key's window exactly.
#![cfg(feature = "redis")]

mod redis_drive;
mod redis_server;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use redis_drive::{drive, max_in_window, per_key, unix_micros};
use redis_server::RedisServer;
use tower_quota::clock::{Clock, Nanos, TokioClock};
use tower_quota::report::{render_html, render_table, Thresholds};
use tower_quota::store::{RedisStore, StoreHealth};
use tower_quota::Limiter;

const LIMIT: u32 = 20;
const WINDOW: Duration = Duration::from_millis(500);
/// The limiter's margin: how much later than Redis admitted it a request may
/// reach the inner service (where its departure is taken) and still count in
/// Redis's window. 25 ms was a fifth of what a busy CI machine may deschedule
/// a process for (see `tests/redis_processes.rs`, which failed that way).
const MARGIN: Duration = Duration::from_millis(100);
const SECRET: &str = "sk_live_shared_secret";

/// A clock `by` ahead of (or behind) the real one, on both timelines.
struct Skewed {
    inner: TokioClock,
    ahead: bool,
    by: Duration,
}

impl Clock for Skewed {
    fn now(&self) -> Nanos {
        let t = self.inner.now().as_duration();
        Nanos::from_duration(if self.ahead {
            t + self.by
        } else {
            t.saturating_sub(self.by)
        })
    }

    fn wall_origin(&self) -> SystemTime {
        self.inner.wall_origin()
    }
}

fn limiter(server: &RedisServer, ahead: bool, by: Duration) -> Arc<Limiter<Skewed>> {
    let store = RedisStore::builder(server.url())
        .prefix("skew")
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let clock = Skewed {
        inner: TokioClock::new(),
        ahead,
        by,
    };
    per_key(
        Limiter::builder().clock(clock),
        store,
        LIMIT,
        WINDOW,
        MARGIN,
    )
}

/// Two limiters whose clocks run 7 s ahead and 3 s behind share one API
/// key's window through Redis: nothing refused, never more than the limit in
/// any window, at least 90 % of four windows' allowance used, both counted,
/// and the report says the store is connected without naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_with_skewed_clocks_share_the_window_exactly() {
    let Some(server) = RedisServer::start("redis layer: clock skew") else {
        return;
    };
    let fast = limiter(&server, true, Duration::from_secs(7));
    let slow = limiter(&server, false, Duration::from_secs(3));
    let departures = Arc::new(Mutex::new(Vec::new()));
    let start = unix_micros();
    let padded = u64::try_from((WINDOW + MARGIN).as_micros()).unwrap_or(u64::MAX);
    let until = start + 4 * padded;
    let (a, b) = tokio::join!(
        drive(fast.clone(), departures.clone(), SECRET, 8, until),
        drive(slow.clone(), departures.clone(), SECRET, 8, until),
    );
    assert_eq!(a + b, 0, "nothing refused: the layer waits without a cap");
    let d = departures.lock().map(|d| d.clone()).unwrap_or_default();
    let window_us = u64::try_from(WINDOW.as_micros()).unwrap_or(u64::MAX);
    assert!(
        max_in_window(&d, window_us) <= LIMIT as usize,
        "{} departures in one window of {WINDOW:?} (limit {LIMIT})",
        max_in_window(&d, window_us)
    );
    // Four padded windows from a cold start: four full allowances.
    let within = d.iter().filter(|&&t| t < until).count();
    assert!(
        within >= (4 * LIMIT as usize) * 9 / 10,
        "{within} of {} departures: below 90 %",
        4 * LIMIT
    );
    // Both took part.
    for l in [&fast, &slow] {
        let status = l.store_status().unwrap_or_else(|| panic!("shared"));
        assert_eq!(status.health, StoreHealth::Connected);
        assert!(status.decisions > 10, "{status:?}");
    }
    // The report says where the store stands, as data, as a table, as a page.
    let snapshot = fast.snapshot(&Thresholds::default());
    assert_eq!(
        snapshot.store.as_ref().map(|s| s.health),
        Some(StoreHealth::Connected)
    );
    let table = render_table(&snapshot);
    assert!(table.contains("shared store (redis): connected"), "{table}");
    let now = SystemTime::now();
    let page = render_html(
        &snapshot,
        &fast.history().summary_24h(now),
        &fast.history().daily(now),
    );
    assert!(page.contains("Shared store (redis): connected"), "{page}");
    assert!(!table.contains("sk_live") && !page.contains("sk_live"));
    // The API key is nowhere in Redis's key names.
    let keys = server.keys().await;
    assert!(!keys.is_empty());
    for k in keys {
        assert!(
            k.starts_with("skew:api_key:") && !k.contains("sk_live"),
            "{k}"
        );
    }
}

#[tokio::test]
async fn a_seed_one_process_applies_holds_for_the_others() {
    use tower::{Service, ServiceExt};
    use tower_quota::ledger::MaxWait;
    use tower_quota::route::MethodResource;
    use tower_quota::seed::{Seed, SeedEntry, SeedRoute, SeedScope, SeedSource, SeedWindow};
    use tower_quota::OtherRoutes;

    let Some(server) = RedisServer::start("redis layer: seeds shared") else {
        return;
    };
    let minute = Duration::from_secs(60);
    let process = || {
        let store = RedisStore::builder(server.url())
            .prefix("seeds")
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        Limiter::builder()
            .routes(
                MethodResource::seed002(),
                move |_| Some(tower_quota::quota::Quota::new(100, minute)?.into()),
                OtherRoutes::Unlimited,
            )
            .margin(Duration::ZERO)
            .max_wait(MaxWait::Never)
            .shared(store)
            .build()
    };
    let (a, b) = (process(), process());
    // Process a reads the usage endpoint: GET.people allows 3 a minute, 1 used.
    let mut seed = Seed::new(SeedSource::PartnerUsage);
    let mut entry = SeedEntry::new(
        SeedRoute::MethodResource("GET.people".into()),
        SeedScope::Global,
    );
    entry.windows.push(SeedWindow {
        name: "minute".into(),
        window: minute,
        limit: 3,
        used: Some(1),
        remaining: Some(2),
        reset: None,
    });
    seed.entries.push(entry);
    assert!(a.apply_seed(&seed, a.clock().now()).changed());
    tokio::time::sleep(Duration::from_millis(50)).await; // corrections are sent in the background
                                                         // Process b never saw the seed, yet may send only the 2 left.
    let departures = Arc::new(Mutex::new(Vec::new()));
    let mut svc = tower_quota::QuotaService::new(redis_drive::recorder(departures.clone()), b);
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        let mut req = redis_drive::Request::new(());
        *req.uri_mut() = http::Uri::from_static("/people?page=1");
        let ready = svc.ready().await.unwrap_or_else(|e| panic!("{e}"));
        outcomes.push(ready.call(req).await.is_ok());
    }
    assert_eq!(outcomes, [true, true, false, false]);
}
