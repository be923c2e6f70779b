//! The Redis store against a real `redis-server` of its own (see
//! `tests/redis_server/mod.rs` for the skip rule): the engine's contracts, one
//! atomic script per decision, key names, expiry, and NOSCRIPT.
#![cfg(feature = "redis")]

mod redis_kit;
mod redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use redis_kit::{reserved, warm};
use redis_server::RedisServer;
use tower_quota::ledger::Refusal;
use tower_quota::store::{
    Correction, RedisStore, SharedBucket, SharedStore, SharedWindow, StoreGrant, StoreHealth,
};

fn window(limit: u32, ms: u64) -> SharedWindow {
    SharedWindow {
        limit,
        length: Duration::from_millis(ms),
        anchor: None,
        margin: Duration::ZERO,
    }
}

fn bucket(store: &RedisStore, name: &str, windows: &[SharedWindow]) -> SharedBucket {
    SharedBucket::new(
        "route",
        store.bucket_id("route", name.as_bytes()),
        windows.iter().copied(),
    )
}

fn store(server: &RedisServer) -> Arc<RedisStore> {
    RedisStore::builder(server.url())
        .prefix("t")
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn now_or_wait(
    store: &RedisStore,
    b: &[SharedBucket],
    max: Option<Duration>,
) -> Option<Duration> {
    match store.acquire(b.to_vec(), 1, max).await {
        Ok(StoreGrant::Now) => Some(Duration::ZERO),
        Ok(StoreGrant::Later(r)) => Some(r.wait()),
        Err(Refusal::WouldWait { .. }) => None,
        Err(e) => panic!("unexpected refusal: {e}"),
    }
}

/// Asserts that `n` requests in a row are admitted at once.
async fn admit_now(store: &RedisStore, b: &[SharedBucket], n: usize) {
    for i in 0..n {
        assert_eq!(
            now_or_wait(store, b, Some(Duration::ZERO)).await,
            Some(Duration::ZERO),
            "request {i} of {n} was not admitted at once"
        );
    }
}

/// Until Redis holds `field` of hash `key` (or, without one, `key`): what a
/// correction sent in the background writes.
async fn until_written(server: &RedisServer, key: &str, field: Option<&str>) {
    let cmd = match field {
        Some(f) => redis::cmd("HEXISTS").arg(key).arg(f).clone(),
        None => redis::cmd("EXISTS").arg(key).clone(),
    };
    server.until(&cmd, 1).await;
}

/// Whether a departure known to lie between `lo` and `hi` may be the one
/// that lies between `at.0` and `at.1`. Local instants taken around each call
/// to Redis bracket the time Redis decided at, so they bracket a departure it
/// gave as a wait from then: a busy machine's delays widen the brackets
/// instead of failing the test. A 2 ms slack covers Redis's microsecond
/// clock against the monotonic one.
fn overlap(lo: Instant, hi: Instant, at: (Instant, Instant)) -> bool {
    let slack = Duration::from_millis(2);
    lo <= at.1 + slack && hi + slack >= at.0
}

/// A window of 5 per second admits 5, refuses a sixth that must not wait
/// with the wait until the first frees, and reserves the next five in FIFO
/// order: each leaves exactly one window after the admission it follows.
/// Every time is bracketed by local instants taken around the calls (see
/// [`overlap`]).
#[tokio::test]
async fn a_window_admits_its_limit_then_reserves_in_fifo_order() {
    let Some(server) = RedisServer::start("redis store: one window") else {
        return;
    };
    let s = store(&server);
    let length = Duration::from_millis(1_000);
    let b = [bucket(&s, "GET /x", &[window(5, 1_000)])];
    // 15 ms apart, so that the waiters' departures are too: a waiter given
    // another's place leaves at least 15 ms off the window after its own.
    let mut admitted = Vec::new();
    for _ in 0..5 {
        let before = Instant::now();
        admit_now(&s, &b, 1).await;
        admitted.push((before + length, Instant::now() + length));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    // Failing fast reserves nothing, and says when the first unit frees:
    // its wait counts from when it asked, somewhere in the call.
    let asked = Instant::now();
    match s.acquire(b.to_vec(), 1, Some(Duration::ZERO)).await {
        Err(Refusal::WouldWait { wait, .. }) => {
            let call = asked.elapsed();
            assert!(
                overlap(asked + wait - call, asked + wait + call, admitted[0]),
                "refused with a wait of {wait:?}, not until the first unit frees"
            );
        }
        other => panic!("expected WouldWait, got {other:?}"),
    }
    // Waiters get increasing departures: the 6th and 7th leave one window
    // after the 1st and 2nd.
    let mut held = Vec::new();
    for (i, &frees) in admitted.iter().enumerate() {
        let asked = Instant::now();
        match s.acquire(b.to_vec(), 1, None).await {
            Ok(StoreGrant::Later(r)) => {
                assert!(
                    overlap(asked + r.wait(), Instant::now() + r.wait(), frees),
                    "waiter {i} reserved {:?} ahead, not as unit {i} frees",
                    r.wait()
                );
                held.push(r);
            }
            other => panic!("expected a reservation, got {other:?}"),
        }
    }
    // The window is now full up to one window ahead.
    assert!(now_or_wait(&s, &b, Some(Duration::from_millis(1_000)))
        .await
        .is_none());
    assert_eq!(s.status().health, StoreHealth::Connected);
}

/// A reservation dropped before its departure is released in Redis: the
/// next waiter takes its slot, and Redis holds only the first unit and the
/// new reservation.
#[tokio::test]
async fn a_dropped_reservation_gives_its_room_back() {
    let Some(server) = RedisServer::start("redis store: cancellation") else {
        return;
    };
    let s = store(&server);
    let b = [bucket(&s, "GET /x", &[window(1, 5_000)])];
    assert_eq!(now_or_wait(&s, &b, None).await, Some(Duration::ZERO));
    let r = reserved(s.acquire(b.to_vec(), 1, None).await);
    let w = r.wait();
    assert!(w > Duration::from_secs(4));
    drop(r);
    // The release runs in the background: until only the first unit is
    // left. Then the next waiter gets the same slot.
    let key = format!("t:route:{}:0", b[0].id);
    server.until(redis::cmd("ZCARD").arg(&key), 1).await;
    let held = reserved(s.acquire(b.to_vec(), 1, None).await);
    assert!(
        held.wait() <= w,
        "{:?} should not queue behind a dropped {w:?}",
        held.wait()
    );
    let mut con = server.connection().await;
    let n: u64 = redis::cmd("ZCARD")
        .arg(&key)
        .query_async(&mut con)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        n, 2,
        "the first unit and the new reservation, not the dropped one"
    );
}

#[tokio::test]
async fn all_or_nothing_across_buckets_and_windows() {
    let Some(server) = RedisServer::start("redis store: all or nothing") else {
        return;
    };
    let s = store(&server);
    let tight = bucket(&s, "tight", &[window(2, 5_000)]);
    let wide = bucket(&s, "wide", &[window(3, 5_000), window(100, 60_000)]);
    let both = [tight.clone(), wide.clone()];
    admit_now(&s, &both, 2).await;
    // Refused by `tight`: nothing may be charged to `wide` (the chained-limiter bug).
    assert!(now_or_wait(&s, &both, Some(Duration::ZERO)).await.is_none());
    assert_eq!(
        now_or_wait(&s, std::slice::from_ref(&wide), Some(Duration::ZERO)).await,
        Some(Duration::ZERO)
    );
    assert!(
        now_or_wait(&s, std::slice::from_ref(&wide), Some(Duration::ZERO))
            .await
            .is_none()
    );
    // A cost above a window's limit can never fit.
    match s.acquire(vec![tight], 3, None).await {
        Err(Refusal::CostExceedsLimit { limit, .. }) => assert_eq!(limit, 2),
        other => panic!("expected CostExceedsLimit, got {other:?}"),
    }
}

#[tokio::test]
async fn a_waiter_bound_by_its_own_bucket_does_not_hold_the_shared_one() {
    let Some(server) = RedisServer::start("redis store: deferred buckets") else {
        return;
    };
    let s = store(&server);
    let global = bucket(&s, "global", &[window(100, 5_000)]);
    let busy = bucket(&s, "account 1", &[window(1, 5_000)]);
    let idle = bucket(&s, "account 2", &[window(1, 5_000)]);
    assert_eq!(
        now_or_wait(&s, &[global.clone(), busy.clone()], None).await,
        Some(Duration::ZERO)
    );
    // Account 1 waits ~5 s for its own window, without a place in the global one...
    let waiting = reserved(s.acquire(vec![global.clone(), busy], 1, None).await);
    assert!(waiting.wait() > Duration::from_secs(4));
    // ...so account 2 leaves at once.
    assert_eq!(
        now_or_wait(&s, &[global, idle], Some(Duration::ZERO)).await,
        Some(Duration::ZERO)
    );
}

#[tokio::test]
async fn fixed_windows_reset_on_their_anchor() {
    let Some(server) = RedisServer::start("redis store: fixed windows") else {
        return;
    };
    let s = store(&server);
    let fixed = SharedWindow {
        limit: 3,
        length: Duration::from_secs(3_600),
        anchor: Some(SystemTime::now() - Duration::from_secs(3_599)),
        margin: Duration::ZERO,
    };
    let b = [bucket(&s, "fixed", &[fixed])];
    admit_now(&s, &b, 3).await;
    // The aligned window ends within a second: the next unit waits for it,
    // not for an hour as a sliding window would make it.
    let w = now_or_wait(&s, &b, None).await.unwrap_or_default();
    assert!(
        w > Duration::ZERO && w <= Duration::from_millis(1_100),
        "{w:?}"
    );
}

/// Corrections one process sends (a count the server reported, a 429's
/// block, a new limit) hold for another process on the same Redis, once
/// they have reached it.
#[tokio::test]
async fn corrections_block_raise_and_change_limits_for_everyone() {
    let Some(server) = RedisServer::start("redis store: corrections") else {
        return;
    };
    let a = store(&server);
    let b = store(&server);
    let bucket_a = bucket(&a, "GET /x", &[window(10, 60_000)]);
    // The server counted 8 of 10: another process now has 2 left.
    a.correct(&bucket_a, Correction::Used { window: 0, used: 8 });
    until_written(&server, &format!("t:route:{}:0", bucket_a.id), None).await;
    admit_now(&b, std::slice::from_ref(&bucket_a), 2).await;
    assert!(
        now_or_wait(&b, std::slice::from_ref(&bucket_a), Some(Duration::ZERO))
            .await
            .is_none()
    );
    // A 429 blocks the bucket for everyone.
    let other = bucket(&a, "GET /y", &[window(10, 60_000)]);
    a.correct(
        &other,
        Correction::Block {
            duration: Duration::from_secs(2),
        },
    );
    until_written(&server, &format!("t:route:{}:m", other.id), Some("block")).await;
    let w = now_or_wait(&b, std::slice::from_ref(&other), None)
        .await
        .unwrap_or_default();
    assert!(w > Duration::from_millis(1_800), "{w:?}");
    // A new limit from the server applies to every process.
    let third = bucket(&a, "GET /z", &[window(10, 60_000)]);
    a.correct(
        &third,
        Correction::Limit {
            window: 0,
            limit: 1,
        },
    );
    until_written(&server, &format!("t:route:{}:m", third.id), Some("limit:0")).await;
    assert_eq!(
        now_or_wait(&b, std::slice::from_ref(&third), Some(Duration::ZERO)).await,
        Some(Duration::ZERO)
    );
    assert!(
        now_or_wait(&b, std::slice::from_ref(&third), Some(Duration::ZERO))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_redis_that_lost_its_scripts_gets_them_again() {
    let Some(server) = RedisServer::start("redis store: NOSCRIPT") else {
        return;
    };
    let s = store(&server);
    let b = [bucket(&s, "GET /x", &[window(10, 1_000)])];
    assert_eq!(now_or_wait(&s, &b, None).await, Some(Duration::ZERO));
    let mut con = server.connection().await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut con)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(now_or_wait(&s, &b, None).await, Some(Duration::ZERO));
    assert_eq!(s.status().errors, 0);
    assert_eq!(s.status().health, StoreHealth::Connected);
}

/// Key names carry the prefix and a hash of the API key, never the key
/// itself, and every key expires (here within twice the 2 s window).
#[tokio::test]
async fn keys_hash_the_api_key_carry_the_prefix_and_expire() {
    let Some(server) = RedisServer::start("redis store: key names") else {
        return;
    };
    let s = store(&server);
    let secret = "sk_live_very_secret_key";
    let b = [SharedBucket::new(
        "api_key",
        s.bucket_id("api_key", secret.as_bytes()),
        [window(10, 2_000)],
    )];
    assert_eq!(now_or_wait(&s, &b, None).await, Some(Duration::ZERO));
    s.correct(
        &b[0],
        Correction::Block {
            duration: Duration::from_millis(10),
        },
    );
    let meta = format!("t:api_key:{}:m", b[0].id);
    until_written(&server, &meta, Some("block")).await;
    let mut con = server.connection().await;
    let keys = server.keys().await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in &keys {
        assert!(k.starts_with("t:api_key:"), "{k}");
        assert!(!k.contains(secret) && !k.contains("sk_live"), "{k}");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(k)
            .query_async(&mut con)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(ttl > 0 && ttl <= 4_000, "{k} expires in {ttl} ms");
    }
}

#[tokio::test]
async fn a_waiter_bound_by_the_shared_bucket_still_holds_its_own_accounts_place() {
    let Some(server) = RedisServer::start("redis store: own buckets reserved") else {
        return;
    };
    let s = store(&server);
    let global = bucket(&s, "global", &[window(2, 2_000)]);
    let account = |name: &str| {
        SharedBucket::new(
            "account",
            s.bucket_id("account", name.as_bytes()),
            [window(1, 2_000)],
        )
    };
    for other in ["b", "c"] {
        assert_eq!(
            now_or_wait(&s, &[global.clone(), account(other)], None).await,
            Some(Duration::ZERO)
        );
    }
    let later = |g: Result<StoreGrant, Refusal>| match g {
        Ok(StoreGrant::Later(r)) => r,
        other => panic!("expected a reservation, got {other:?}"),
    };
    // a's first request waits for the global bucket (2 s)...
    let a1 = later(s.acquire(vec![global.clone(), account("a")], 1, None).await);
    // ...its second for its own account, one window after the first (4 s)...
    let a2 = later(s.acquire(vec![global.clone(), account("a")], 1, None).await);
    // ...so d takes the global bucket's other place at 2 s, not at 4 s.
    let d = later(s.acquire(vec![global, account("d")], 1, None).await);
    assert!(a1.wait() > Duration::from_millis(1_900) && a1.wait() <= Duration::from_secs(2));
    assert!(a2.wait() > Duration::from_millis(3_900), "{:?}", a2.wait());
    assert!(d.wait() <= Duration::from_secs(2), "d waits {:?}", d.wait());
}

#[tokio::test]
async fn at_its_departure_a_waiter_takes_the_deferred_bucket_or_decides_again() {
    let Some(server) = RedisServer::start("redis store: departures") else {
        return;
    };
    let s = store(&server);
    let shared = bucket(&s, "shared", &[window(2, 300)]);
    let own = SharedBucket::new("api_key", s.bucket_id("api_key", b"k"), [window(1, 300)]);
    let both = vec![shared.clone(), own];
    assert_eq!(now_or_wait(&s, &both, None).await, Some(Duration::ZERO));
    // Bound by its own bucket: the shared one is deferred to the departure.
    let r = reserved(s.acquire(both.clone(), 1, None).await);
    let departure = tokio::time::Instant::now() + r.wait();
    // Meanwhile someone else takes the shared bucket's last place, and
    // reserves the next one, at the waiter's departure.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        now_or_wait(&s, std::slice::from_ref(&shared), Some(Duration::ZERO)).await,
        Some(Duration::ZERO)
    );
    let held = reserved(s.acquire(vec![shared.clone()], 1, None).await);
    tokio::time::sleep_until(departure).await;
    // The shared bucket is full at the departure: the ticket is given back
    // and decided again, in one step, behind the other's reservation.
    let again = match r.depart().await {
        Ok(StoreGrant::Later(again)) => again,
        other => panic!("expected a new reservation, got {other:?}"),
    };
    assert!(again.wait() > Duration::ZERO && again.wait() <= Duration::from_millis(300));
    tokio::time::sleep(again.wait()).await;
    assert!(matches!(again.depart().await, Ok(StoreGrant::Now)));
    drop(held);
}

/// The system clock, `by` ahead on the wall.
struct Ahead(tower_quota::clock::SystemClock, Duration);

impl tower_quota::clock::Clock for Ahead {
    fn now(&self) -> tower_quota::clock::Nanos {
        self.0.now()
    }

    fn wall_origin(&self) -> SystemTime {
        self.0.wall_origin() + self.1
    }
}

/// Two processes whose clocks are 7 s apart, each told the server's reset on
/// its own clock, see the same fixed window: the one that did not fill it
/// waits until the shared reset.
#[tokio::test]
async fn fixed_windows_agree_between_clocks_seconds_apart() {
    let Some(server) = RedisServer::start("redis store: fixed windows, skewed clocks") else {
        return;
    };
    let skew = Duration::from_secs(7);
    let a = store(&server);
    let b = RedisStore::builder(server.url())
        .prefix("t")
        .clock(Ahead(tower_quota::clock::SystemClock::new(), skew))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    // Connected before the timed part; b has the default timeout (50 ms),
    // which a first call's connecting may pass on a busy machine.
    warm(&a).await;
    warm(&b).await;
    // The server's hour ends 0.8 s from now; each process knows it on its own
    // clock (b's runs 7 s ahead, so its reset reads 7 s later).
    let reset = SystemTime::now() + Duration::from_millis(800);
    let fixed = |anchor: SystemTime| SharedWindow {
        limit: 3,
        length: Duration::from_secs(3_600),
        anchor: Some(anchor),
        margin: Duration::ZERO,
    };
    let id = a.bucket_id("route", b"fixed");
    let in_a = [SharedBucket::new("route", id.clone(), [fixed(reset)])];
    let in_b = [SharedBucket::new("route", id, [fixed(reset + skew)])];
    admit_now(&a, &in_a, 3).await;
    // b sees the same full hour, ending at the same instant.
    let w = now_or_wait(&b, &in_b, None).await.unwrap_or_default();
    assert!(
        w > Duration::from_millis(600) && w <= Duration::from_millis(800),
        "b would wait {w:?}, not until the shared reset"
    );
}

/// A response that came back late widens the shared window for every process,
/// and a ticket reserved before the correction leaves later (decided again).
/// Both are checked against when the first two left, so a busy machine's
/// delays do not count against the widening.
#[tokio::test]
async fn a_late_response_widens_the_window_for_everyone() {
    let Some(server) = RedisServer::start("redis store: late responses") else {
        return;
    };
    let (a, b) = (store(&server), store(&server));
    warm(&a).await;
    warm(&b).await;
    let shared = bucket(&a, "GET /slow", &[window(2, 400)]);
    let one = std::slice::from_ref(&shared);
    let t0 = Instant::now();
    admit_now(&a, one, 2).await;
    // A third is reserved at the window's end (in 400 ms).
    let held = reserved(a.acquire(one.to_vec(), 1, None).await);
    let departure = tokio::time::Instant::now() + held.wait();
    // The first two come back 200 ms later than the margin allows: the
    // server may have counted them as late as now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.correct(
        &shared,
        Correction::Late {
            window: 0,
            late: Duration::from_millis(200),
        },
    );
    let meta = format!("t:route:{}:m", shared.id);
    until_written(&server, &meta, Some("late:0")).await;
    // Another process's request waits for the widened window: until one
    // window after the responses (600 ms from the start, about 370 ms from
    // now), where it would have waited for the held ticket (400 ms).
    // (The wait counts from when Redis decided: before the answer came.)
    let widened = t0 + Duration::from_millis(600);
    let w = now_or_wait(&b, one, None).await.unwrap_or_default();
    let answered = Instant::now();
    assert!(answered + w + Duration::from_millis(2) >= widened, "{w:?}");
    // At its departure (400 ms) the held ticket no longer fits: it is
    // decided again, behind the other process's request.
    tokio::time::sleep_until(departure).await;
    match held.depart().await {
        Ok(StoreGrant::Later(again)) => {
            let answered = Instant::now();
            assert!(
                answered + again.wait() + Duration::from_millis(2) >= widened,
                "{:?}",
                again.wait()
            );
        }
        other => panic!("expected a new reservation, got {other:?}"),
    }
}

/// A lateness holds a fixed window too: a unit that left just before a
/// boundary, whose response came back late, may have been counted after it.
/// A lateness for a window the bucket does not have changes nothing.
#[tokio::test]
async fn a_late_response_holds_a_fixed_window_too() {
    let Some(server) = RedisServer::start("redis store: late, fixed") else {
        return;
    };
    let s = store(&server);
    warm(&s).await;
    // 350 ms into a 400 ms window: the boundary is 50 ms away.
    let t0 = Instant::now();
    let fixed = SharedWindow {
        limit: 1,
        length: Duration::from_millis(400),
        anchor: Some(SystemTime::now() - Duration::from_millis(350)),
        margin: Duration::ZERO,
    };
    let b = bucket(&s, "GET /fixed", &[fixed]);
    let one = std::slice::from_ref(&b);
    admit_now(&s, one, 1).await;
    // Its response came back 100 ms late: it may count after the boundary,
    // so the next unit waits for the window after (about 450 ms, not 50).
    for window in [0, 7] {
        s.correct(
            &b,
            Correction::Late {
                window,
                late: Duration::from_millis(100),
            },
        );
    }
    until_written(&server, &format!("t:route:{}:m", b.id), Some("late:0")).await;
    let w = now_or_wait(&s, one, None).await.unwrap_or_default();
    let answered = Instant::now();
    assert!(
        answered + w + Duration::from_millis(2) >= t0 + Duration::from_millis(450),
        "the window after next: {w:?}"
    );
}

/// A fixed window with the client's margin keeps the server's boundaries
/// (every `length - margin`) and counts a unit that left within the margin
/// before a boundary in the window after it too.
#[tokio::test]
async fn a_fixed_windows_margin_keeps_the_servers_boundaries() {
    let Some(server) = RedisServer::start("redis store: fixed margin") else {
        return;
    };
    let s = store(&server);
    warm(&s).await;
    // The server's window: 200 ms; the client's margin: 100 ms. We are 150 ms
    // into a window, within the margin before the boundary at 200 ms.
    let fixed = SharedWindow {
        limit: 1,
        length: Duration::from_millis(300),
        anchor: Some(SystemTime::now() - Duration::from_millis(150)),
        margin: Duration::from_millis(100),
    };
    let b = bucket(&s, "GET /fixed-margin", &[fixed]);
    let one = std::slice::from_ref(&b);
    admit_now(&s, one, 1).await;
    // It counts in the next window too: the next unit leaves at 400 ms, about
    // 250 ms from now (a window on the padded length would say 150; one that
    // forgot the margin, 50).
    let w = now_or_wait(&s, one, None).await.unwrap_or_default();
    assert!(
        w > Duration::from_millis(200) && w <= Duration::from_millis(250),
        "{w:?}"
    );
}

/// The remaining life of `key`, in milliseconds (-2: no key, -1: no expiry).
async fn pttl(server: &RedisServer, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut server.connection().await)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A call never cuts a key's life short. A 429's block (10 s) must outlive
/// the corrections that follow it (the layer sends a 429's counts beside its
/// block), and reservations two seconds ahead in a window of 200 ms must
/// outlive a correction: each used to set the expiry back to the longest
/// window and a second, and the block, or the queue, was gone with the keys.
#[tokio::test]
async fn a_later_call_never_shortens_a_blocks_or_a_reservations_expiry() {
    let Some(server) = RedisServer::start("redis store: expiry only grows") else {
        return;
    };
    let s = store(&server);
    let blocked = bucket(&s, "GET /blocked", &[window(10, 1_000)]);
    s.correct(
        &blocked,
        Correction::Block {
            duration: Duration::from_secs(10),
        },
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    s.correct(&blocked, Correction::Used { window: 0, used: 1 });
    s.correct(
        &blocked,
        Correction::Limit {
            window: 0,
            limit: 10,
        },
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    // The block lives in the bucket's meta key.
    let left = pttl(&server, &format!("t:route:{}:m", blocked.id)).await;
    assert!(
        left > 9_000,
        "the block's key expires in {left} ms, inside it"
    );
    let queue = bucket(&s, "GET /queue", &[window(1, 200)]);
    let one = std::slice::from_ref(&queue);
    admit_now(&s, one, 1).await;
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(reserved(s.acquire(one.to_vec(), 1, None).await));
    }
    s.correct(&queue, Correction::Used { window: 0, used: 1 });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let left = pttl(&server, &format!("t:route:{}:0", queue.id)).await;
    assert!(
        left > 2_000,
        "the queue expires in {left} ms, before its last departure (2 s)"
    );
    drop(held);
}

/// Each call placed a fixed window's start at `now - phase` on Redis's
/// clock, so later by the call's own delay in reaching Redis. A waiter is
/// reserved exactly at the start its call saw; a call that Redis took up
/// 35 ms later (busy with another client's script, within the default 50 ms
/// timeout) saw the start after the reservation, pruned it, and admitted a
/// second unit in a fixed window of one.
#[tokio::test]
async fn calls_delayed_differently_agree_on_where_a_fixed_window_starts() {
    let Some(server) = RedisServer::start("redis store: fixed window starts agree") else {
        return;
    };
    // A timeout of 500 ms, so that a loaded machine cannot turn the 35 ms
    // into an outage.
    let s = store(&server);
    let fixed = SharedWindow {
        limit: 1,
        length: Duration::from_millis(400),
        anchor: Some(SystemTime::now() - Duration::from_millis(300)),
        margin: Duration::from_millis(20),
    };
    let b = [bucket(&s, "GET /fixed-delayed", &[fixed])];
    admit_now(&s, &b, 1).await;
    let held = reserved(s.acquire(b.to_vec(), 1, None).await);
    tokio::time::sleep(held.wait() + Duration::from_millis(10)).await;
    assert!(matches!(held.depart().await, Ok(StoreGrant::Now)));
    let mut other = server.connection().await;
    let busy = tokio::spawn(async move {
        let script = "local t = redis.call('TIME'); local s = t[1] * 1e6 + t[2]; \
            repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - s > 35000; return 1";
        let done: Result<i64, _> = redis::cmd("EVAL")
            .arg(script)
            .arg(0)
            .query_async(&mut other)
            .await;
        done.unwrap_or_else(|e| panic!("{e}"))
    });
    tokio::time::sleep(Duration::from_millis(3)).await;
    let second = now_or_wait(&s, &b, Some(Duration::ZERO)).await;
    assert_eq!(busy.await.ok(), Some(1), "Redis was not kept busy");
    assert_eq!(
        second, None,
        "a second unit admitted in the fixed window of one the waiter left in"
    );
}

/// The start a bucket keeps for a fixed window follows a new anchor (the
/// server's reset moved): a start seen far from the kept one replaces it.
#[tokio::test]
async fn a_fixed_window_follows_an_anchor_that_moved() {
    let Some(server) = RedisServer::start("redis store: fixed anchor moved") else {
        return;
    };
    let s = store(&server);
    let id = s.bucket_id("route", b"GET /moved");
    let ending_in = |d: Duration| {
        [SharedBucket::new(
            "route",
            id.clone(),
            [SharedWindow {
                limit: 3,
                length: Duration::from_secs(3_600),
                anchor: Some(SystemTime::now() + d),
                margin: Duration::ZERO,
            }],
        )]
    };
    admit_now(&s, &ending_in(Duration::from_millis(800)), 3).await;
    // The hour now ends in 30 minutes: the three count until then.
    let w = now_or_wait(&s, &ending_in(Duration::from_secs(1_800)), None)
        .await
        .unwrap_or_default();
    assert!(w > Duration::from_secs(1_790), "{w:?}");
}

/// Lua prints a number with 14 significant digits, and a time in
/// microseconds has 16: a score bound written as `'(' .. number` was rounded
/// to 100 us. A fixed window's end rounded down left out a reservation in the
/// window's last microseconds, and the window took one unit more than its
/// limit there.
#[tokio::test]
async fn score_bounds_are_exact_to_the_microsecond() {
    let Some(server) = RedisServer::start("redis store: exact bounds") else {
        return;
    };
    let s = store(&server);
    let mut con = server.connection().await;
    let hour = 3_600_000_000u64;
    let fixed = SharedWindow {
        limit: 2,
        length: Duration::from_micros(hour),
        anchor: Some(SystemTime::now() + Duration::from_secs(600)),
        margin: Duration::ZERO,
    };
    let b = [bucket(&s, "GET /exact", &[fixed])];
    admit_now(&s, &b, 1).await;
    // The window start the bucket keeps, moved 20 minutes earlier to a time
    // that 14 digits round down: ...37 us. (The call also decides in the
    // start it sees itself, whose boundary then falls between the first
    // unit and the end of the kept start's window: room in both of its.)
    let meta = format!("t:route:{}:m", b[0].id);
    let seen: Option<u64> = redis::cmd("HGET")
        .arg(&meta)
        .arg("anchor:0")
        .query_async(&mut con)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let start =
        seen.unwrap_or_else(|| panic!("no window start kept")) / 100 * 100 - 1_200_000_000 + 37;
    let _: i64 = redis::cmd("HSET")
        .arg(&meta)
        .arg("anchor:0")
        .arg(start)
        .query_async(&mut con)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let now = u64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros(),
    )
    .unwrap_or(u64::MAX);
    let end = start + hour * (now.saturating_sub(start) / hour + 1);
    // Another process's reservation a microsecond before the window ends.
    let key = format!("t:route:{}:0", b[0].id);
    let _: i64 = redis::cmd("ZADD")
        .arg(&key)
        .arg(end - 1)
        .arg("other:1")
        .query_async(&mut con)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let held = reserved(s.acquire(b.to_vec(), 1, None).await);
    let scores: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(&key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut con)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let last = scores.last().map_or(0, |(_, at)| *at as u64);
    assert_eq!(
        last, end,
        "reserved in the window of two that the first unit and the other's hold"
    );
    drop(held);
}

/// A waiter's deferred bucket whose limit dropped below the ticket's cost
/// made the script index past the window's set at the departure (a Lua
/// error), which the store took for Redis being away: the request was
/// refused as StoreUnavailable and the next, unrelated one too. The cost can
/// never fit: the departure says so, and Redis stays in use.
#[tokio::test]
async fn a_limit_lowered_below_a_waiters_cost_refuses_it_at_its_departure() {
    let Some(server) = RedisServer::start("redis store: lower limit at departure") else {
        return;
    };
    let s = store(&server);
    let shared = bucket(&s, "shared", &[window(5, 5_000)]);
    let own = SharedBucket::new("api_key", s.bucket_id("api_key", b"k"), [window(2, 300)]);
    let both = vec![shared.clone(), own];
    assert!(matches!(
        s.acquire(both.clone(), 2, None).await,
        Ok(StoreGrant::Now)
    ));
    // Bound by its own bucket: the shared one is deferred to the departure.
    let r = reserved(s.acquire(both, 2, None).await);
    s.correct(
        &shared,
        Correction::Limit {
            window: 0,
            limit: 1,
        },
    );
    tokio::time::sleep(r.wait() + Duration::from_millis(20)).await;
    match r.depart().await {
        Err(Refusal::CostExceedsLimit { cost, limit, .. }) => assert_eq!((cost, limit), (2, 1)),
        other => panic!("expected CostExceedsLimit, got {other:?}"),
    }
    let unrelated = [bucket(&s, "unrelated", &[window(100, 1_000)])];
    admit_now(&s, &unrelated, 1).await;
    assert_eq!(s.status().health, StoreHealth::Connected);
    assert_eq!(s.status().errors, 0);
}
