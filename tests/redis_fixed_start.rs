//! Where a fixed window starts on Redis's clock, against a real
//! `redis-server` of its own (see `tests/redis_server/mod.rs` for the skip
//! rule): calls delayed in reaching Redis never move it later, and a genuine
//! move of the server's boundary is followed.
#![cfg(feature = "redis")]

mod redis_kit;
mod redis_server;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use redis_kit::reserved;
use redis_server::RedisServer;
use tower_quota::ledger::Refusal;
use tower_quota::store::{
    Correction, FaultPolicy, RedisStore, SharedBucket, SharedStore, SharedWindow, StoreGrant,
};

fn store(server: &RedisServer) -> Arc<RedisStore> {
    store_with(server, FaultPolicy::FailClosed)
}

/// A store of `server` with fault policy `policy`.
fn store_with(server: &RedisServer, policy: FaultPolicy) -> Arc<RedisStore> {
    patient(server, policy, Duration::from_millis(500))
}

/// A store of `server` with fault policy `policy` that waits `timeout` for
/// each answer.
fn patient(server: &RedisServer, policy: FaultPolicy, timeout: Duration) -> Arc<RedisStore> {
    RedisStore::builder(server.url())
        .prefix("fixed")
        .policy(policy)
        .timeout(timeout)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The store, warmed up (see [`redis_kit::warm`]).
async fn warm(server: &RedisServer) -> Arc<RedisStore> {
    warmed(store(server)).await
}

/// `s`, warmed up (see [`redis_kit::warm`]).
async fn warmed(s: Arc<RedisStore>) -> Arc<RedisStore> {
    redis_kit::warm(&s).await;
    s
}

/// Bucket `id`'s fixed window of `limit` per `length` (`margin` of it the
/// limiter's), one of whose windows started at `anchor`.
fn fixed(
    id: &Arc<str>,
    limit: u32,
    length: Duration,
    margin: Duration,
    anchor: SystemTime,
) -> Vec<SharedBucket> {
    vec![SharedBucket::new(
        "route",
        id.clone(),
        [SharedWindow {
            limit,
            length,
            anchor: Some(anchor),
            margin,
        }],
    )]
}

/// The start bucket `id` keeps for its window 0, in microseconds on Redis's
/// clock.
async fn kept_start(server: &RedisServer, id: &str) -> i64 {
    let start: Option<i64> = redis::cmd("HGET")
        .arg(format!("fixed:route:{id}:m"))
        .arg("anchor:0")
        .query_async(&mut server.connection().await)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    start.unwrap_or_else(|| panic!("no start kept for {id}"))
}

/// The server's hour moved 10 minutes later, less than a quarter window: a
/// start seen that much later counted as the kept start seen late, so the
/// hour that holds 3 of 3 was taken to end in 0.8 s, and 3 more went into
/// the server's hour. A call that sees the moved hour keeps to it at once.
#[tokio::test]
async fn a_call_that_sees_a_boundary_moved_a_little_later_keeps_to_it() {
    let Some(server) = RedisServer::start("redis fixed start: moved a little later") else {
        return;
    };
    let s = warm(&server).await;
    let id = s.bucket_id("route", b"GET /moved-later");
    let hour = Duration::from_secs(3_600);
    let ending_in = |d: Duration| fixed(&id, 3, hour, Duration::ZERO, SystemTime::now() + d);
    for _ in 0..3 {
        let g = s
            .acquire(
                ending_in(Duration::from_millis(800)),
                1,
                Some(Duration::ZERO),
            )
            .await;
        assert!(matches!(g, Ok(StoreGrant::Now)), "{g:?}");
    }
    let later = ending_in(Duration::from_secs(600) + Duration::from_millis(800));
    let w = reserved(s.acquire(later, 1, None).await).wait();
    assert!(
        w > Duration::from_secs(590),
        "waits only {w:?}: 3 more would go into the server's hour of 3"
    );
}

/// A call that reached Redis 150 ms late (of a 380 ms period, within the
/// store's timeout of 500 ms) set a new, later start: the waiter reserved
/// at the start no longer counted, and a second unit went into a fixed
/// window of one. The kept start does not move for a delay.
#[tokio::test]
async fn a_call_delayed_past_a_quarter_window_still_counts_the_waiter() {
    let Some(server) = RedisServer::start("redis fixed start: delayed call") else {
        return;
    };
    let s = warm(&server).await;
    let id = s.bucket_id("route", b"GET /delayed");
    let b = fixed(
        &id,
        1,
        Duration::from_millis(400),
        Duration::from_millis(20),
        SystemTime::now() - Duration::from_millis(300),
    );
    let g = s.acquire(b.clone(), 1, Some(Duration::ZERO)).await;
    assert!(matches!(g, Ok(StoreGrant::Now)), "{g:?}");
    let held = reserved(s.acquire(b.clone(), 1, None).await);
    tokio::time::sleep(held.wait() + Duration::from_millis(10)).await;
    assert!(matches!(held.depart().await, Ok(StoreGrant::Now)));
    let start = kept_start(&server, &id).await;
    let busy = server.busy_for(150).await;
    let second = s.acquire(b.clone(), 1, Some(Duration::ZERO)).await;
    assert_eq!(
        busy.await.ok().flatten(),
        Some(1),
        "Redis was not kept busy"
    );
    assert!(
        matches!(second, Err(Refusal::WouldWait { .. })),
        "{second:?}: a second unit in the fixed window of one the waiter left in"
    );
    assert_eq!(
        kept_start(&server, &id).await,
        start,
        "a delay moved the start"
    );
}

/// The server's boundary moved 40 ms later (a period of 200 ms): less than
/// a quarter window, so the kept start never followed it. The kept
/// start follows once every call for a period has seen it later (two, when
/// jitter had already made a small candidate before the move), and keeps
/// counting what the earlier start counted: a unit reserved at the earlier
/// start's boundary, which the moved start places in the window before,
/// still fills the window until the earlier start's window ends. A start
/// seen earlier is kept at once.
#[tokio::test]
async fn a_moved_boundary_is_followed_within_two_periods_and_loses_nothing() {
    let Some(server) = RedisServer::start("redis fixed start: followed") else {
        return;
    };
    let s = warm(&server).await;
    let id = s.bucket_id("route", b"GET /followed");
    let (length, ms) = (Duration::from_millis(200), Duration::from_millis);
    let anchor = SystemTime::now() - ms(100);
    let old = fixed(&id, 1, length, Duration::ZERO, anchor);
    let t0 = Instant::now();
    let g = s.acquire(old.clone(), 1, Some(Duration::ZERO)).await;
    assert!(matches!(g, Ok(StoreGrant::Now)), "{g:?}");
    // Reserved at the next boundary, 100 ms from now; held to the end.
    let held = reserved(s.acquire(old.clone(), 1, None).await);
    // The kept start is the least delayed call's: a few more calls that see
    // the earlier start, so that one call slowed by a busy machine does not
    // place it late (then the move would look smaller than 40 ms).
    for _ in 0..4 {
        let g = s.acquire(old.clone(), 1, Some(Duration::ZERO)).await;
        assert!(matches!(g, Err(Refusal::WouldWait { .. })), "{g:?}");
        tokio::time::sleep(ms(1)).await;
    }
    let start = kept_start(&server, &id).await;
    let moved = fixed(&id, 1, length, Duration::ZERO, anchor + ms(40));
    // Until the earlier start's window that holds the reservation ends.
    while t0.elapsed() < ms(290) {
        let g = s.acquire(moved.clone(), 1, Some(Duration::ZERO)).await;
        assert!(
            matches!(g, Err(Refusal::WouldWait { .. })),
            "{g:?} at {:?}: a second unit with the reservation's",
            t0.elapsed()
        );
        tokio::time::sleep(ms(20)).await;
    }
    // Calls that see it moved until it is followed: within a period of the
    // first that saw it, or two where calls before the move had already
    // seen the kept start a little later (a candidate from their jitter,
    // followed first). Then a period more, to show it stays.
    let mut followed = kept_start(&server, &id).await - start;
    while t0.elapsed() < ms(900) {
        let _ = s.acquire(moved.clone(), 1, Some(Duration::ZERO)).await;
        followed = kept_start(&server, &id).await - start;
        if followed >= 35_000 && t0.elapsed() > ms(700) {
            break;
        }
        tokio::time::sleep(ms(20)).await;
    }
    assert!(
        (35_000..46_000).contains(&followed),
        "the start moved {followed} us, not 40 ms, in two periods and more"
    );
    drop(held);
    let earlier = fixed(&id, 1, length, Duration::ZERO, anchor + ms(20));
    let _ = s.acquire(earlier, 1, Some(Duration::ZERO)).await;
    let now_earlier = kept_start(&server, &id).await - start;
    assert!(
        (15_000..26_000).contains(&now_earlier),
        "a start seen 20 ms earlier moved it to {now_earlier} us"
    );
}

/// A waiter reserved at a boundary of the kept start, which then moves 30
/// ms earlier (a call saw it so): the window the waiter leaves in now also
/// holds the unit sent 20 ms before that boundary. At its departure it
/// decides again instead of leaving as the window's second unit: not before
/// the earlier start's next boundary. The set-up needs both first calls
/// within those 20 ms; where a busy machine missed that, it starts again on
/// a bucket of its own.
#[tokio::test]
async fn a_waiter_whose_window_an_earlier_start_fills_decides_again() {
    let Some(server) = RedisServer::start("redis fixed start: earlier start") else {
        return;
    };
    let s = warm(&server).await;
    let (length, ms) = (Duration::from_millis(200), Duration::from_millis);
    for attempt in 0..5 {
        let id = s.bucket_id("route", format!("GET /earlier/{attempt}").as_bytes());
        let t0 = Instant::now();
        let anchor = SystemTime::now() - ms(180);
        let b = fixed(&id, 1, length, Duration::ZERO, anchor);
        let g = s.acquire(b.clone(), 1, Some(Duration::ZERO)).await;
        assert!(matches!(g, Ok(StoreGrant::Now)), "{g:?}");
        let held = match s.acquire(b.clone(), 1, None).await {
            Ok(StoreGrant::Later(r)) if r.wait() <= ms(20) => r,
            // Decided past the boundary: not the case at hand.
            Ok(_) => continue,
            Err(e) => panic!("{e}"),
        };
        let earlier = fixed(&id, 1, length, Duration::ZERO, anchor - ms(30));
        let _ = s.acquire(earlier, 1, Some(Duration::ZERO)).await;
        tokio::time::sleep(held.wait()).await;
        let again = held.depart().await;
        // The earlier start's next boundary: 190 ms after `t0`.
        let answered = Instant::now();
        assert!(
            matches!(&again, Ok(StoreGrant::Later(r)) if answered + r.wait() + ms(2) >= t0 + ms(190)),
            "{again:?}: left in the window that the earlier start gives the first unit too"
        );
        return;
    }
    panic!("in 5 attempts, no two calls within the 20 ms before a boundary");
}

/// The server's window of 2 s starts 0.9 s after the start the bucket keeps
/// (a move the kept start follows only a period later). A waiter that saw
/// the moved start was reserved at the kept window's end, where the moved
/// window held nothing; then a response came back 0.8 s late, and the moved
/// window, widened, also counts the two units sent before it. At its
/// departure the waiter was checked in the kept start's window alone, and
/// left as the third unit of the moved window of 2.
#[tokio::test]
async fn a_waiter_leaves_only_where_the_start_it_saw_has_room_too() {
    let Some(server) = RedisServer::start("redis fixed start: waiter's own start") else {
        return;
    };
    let s = warm(&server).await;
    let id = s.bucket_id("route", b"GET /own-start");
    let (length, ms) = (Duration::from_secs(2), Duration::from_millis);
    let kept = SystemTime::now() - ms(300);
    let moved = kept + ms(900);
    for _ in 0..2 {
        let g = s.acquire(
            fixed(&id, 2, length, Duration::ZERO, kept),
            1,
            Some(Duration::ZERO),
        );
        assert!(
            matches!(g.await, Ok(StoreGrant::Now)),
            "the kept window's two"
        );
    }
    let seen = fixed(&id, 2, length, Duration::ZERO, moved);
    let asked = Instant::now();
    let held = reserved(s.acquire(seen.clone(), 1, None).await);
    assert!(
        held.wait() > ms(1_000),
        "at the kept window's end: {:?}",
        held.wait()
    );
    tokio::time::sleep_until((asked + held.wait() - ms(500)).into()).await;
    s.correct(
        &seen[0],
        Correction::Late {
            window: 0,
            late: ms(800),
        },
    );
    tokio::time::sleep_until((asked + held.wait()).into()).await;
    let left = held.depart().await;
    assert!(
        matches!(&left, Ok(StoreGrant::Later(r)) if r.wait() > ms(300)),
        "{left:?}: the third unit in the moved window of 2"
    );
}

/// What Redis tells a share every window counts was read in the kept
/// start's window alone. At 0.3 s into the kept window of 4 s, whose start
/// the server moved 1.8 s later, the moved window held the two units sent
/// just before the kept boundary and this process's one: 3 of 3. Redis said
/// 1, and the share, when Redis went away, sent two more into the server's
/// window of 3.
#[tokio::test]
async fn a_share_learns_what_the_start_its_process_saw_counts() {
    let Some(mut server) = RedisServer::start("redis fixed start: counts for a share") else {
        return;
    };
    let whole = FaultPolicy::LocalShare {
        processes: NonZeroU32::MIN,
    };
    let s = warmed(store_with(&server, whole)).await;
    let other = warm(&server).await;
    let id = s.bucket_id("route", b"GET /counted");
    let (length, ms) = (Duration::from_secs(4), Duration::from_millis);
    let kept = SystemTime::now() - ms(3_500);
    let moved = kept + ms(1_800);
    for _ in 0..2 {
        let g = other.acquire(
            fixed(&id, 3, length, Duration::ZERO, kept),
            1,
            Some(Duration::ZERO),
        );
        assert!(
            matches!(g.await, Ok(StoreGrant::Now)),
            "the kept window's two"
        );
    }
    tokio::time::sleep(ms(800)).await;
    let seen = fixed(&id, 3, length, Duration::ZERO, moved);
    let g = s.acquire(seen.clone(), 1, Some(Duration::ZERO)).await;
    assert!(
        matches!(g, Ok(StoreGrant::Now)),
        "{g:?}: the moved window's third"
    );
    server.stop();
    let g = s.acquire(seen, 1, Some(Duration::ZERO)).await;
    assert!(
        matches!(g, Err(Refusal::WouldWait { .. })),
        "{g:?}: the share sent a fourth into the moved window of 3"
    );
}

/// A store whose timeout is longer than three quarters of a fixed window:
/// a call that reached Redis 2.5 s into a window of 3 s whose start it
/// measured (Redis was busy) saw the start 0.5 s earlier than the kept one.
/// It moved the kept start there, as a start seen earlier should, and was
/// decided only in the moved window, which had just begun: a second unit
/// in the server's window of 1, which still held the first.
#[tokio::test]
async fn a_call_that_reaches_redis_most_of_a_window_late_still_counts_the_kept_start() {
    let Some(server) = RedisServer::start("redis fixed start: most of a window late") else {
        return;
    };
    let s = warmed(patient(
        &server,
        FaultPolicy::FailClosed,
        Duration::from_secs(5),
    ))
    .await;
    let id = s.bucket_id("route", b"GET /very-late");
    let ms = Duration::from_millis;
    let b = fixed(
        &id,
        1,
        ms(3_000),
        Duration::ZERO,
        SystemTime::now() - ms(50),
    );
    let g = s.acquire(b.clone(), 1, Some(Duration::ZERO)).await;
    assert!(matches!(g, Ok(StoreGrant::Now)), "{g:?}");
    let before = kept_start(&server, &id).await;
    let busy = server.busy_for(2_500).await;
    let g = s.acquire(b, 1, Some(Duration::ZERO)).await;
    assert_eq!(
        busy.await.ok().flatten(),
        Some(1),
        "Redis was not kept busy"
    );
    let moved = before - kept_start(&server, &id).await;
    assert!(
        (100_000..750_000).contains(&moved),
        "the late call moved the kept start {moved} us earlier"
    );
    assert!(
        matches!(g, Err(Refusal::WouldWait { .. })),
        "{g:?}: a second unit in the server's window of 1"
    );
}

/// The server's window of 2 s starts 0.5 s after the start the bucket
/// keeps, and it says it has counted 2 units (other clients') 0.8 s in.
/// The raise counted what the store holds from the kept start, the two
/// units this process sent at 0.1 s, and added nothing; once the kept
/// window was over, the server's, still open, took 3 more units of 3.
#[tokio::test]
async fn what_the_server_counts_is_raised_in_the_window_it_counts_in() {
    let Some(server) = RedisServer::start("redis fixed start: raised in the server's window")
    else {
        return;
    };
    let s = warm(&server).await;
    let id = s.bucket_id("route", b"GET /raised");
    let (length, ms) = (Duration::from_secs(2), Duration::from_millis);
    let started = Instant::now();
    let kept = SystemTime::now() - ms(100);
    for _ in 0..2 {
        let g = s.acquire(
            fixed(&id, 3, length, Duration::ZERO, kept),
            1,
            Some(Duration::ZERO),
        );
        assert!(
            matches!(g.await, Ok(StoreGrant::Now)),
            "the kept window's two"
        );
    }
    let seen = fixed(&id, 3, length, Duration::ZERO, kept + ms(500));
    tokio::time::sleep_until((started + ms(700)).into()).await;
    s.correct(&seen[0], Correction::Used { window: 0, used: 2 });
    // Past the kept window's end, within the server's.
    tokio::time::sleep_until((started + ms(2_100)).into()).await;
    let mut sent = 0;
    for _ in 0..3 {
        let g = s.acquire(seen.clone(), 1, Some(Duration::ZERO)).await;
        sent += usize::from(matches!(g, Ok(StoreGrant::Now)));
    }
    assert_eq!(
        sent, 1,
        "2 counted by the server, then {sent} in its window of 3"
    );
}
