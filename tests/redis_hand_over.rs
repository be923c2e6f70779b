//! A Redis store hands its local share's departures to Redis when Redis
//! answers again (see `tests/redis_server/mod.rs` for the skip rule): each as
//! of its own departure, and none lost to a caller that stops waiting.
#![cfg(feature = "redis")]

mod redis_server;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use tower_quota::ledger::Refusal;
use tower_quota::store::{
    FaultPolicy, RedisStore, SharedBucket, SharedStore, SharedWindow, StoreGrant, StoreHealth,
};

/// A store of `server` with a share of each whole limit, at most `in_flight`
/// calls at once.
fn store(server: &RedisServer, policy: FaultPolicy, in_flight: usize) -> Arc<RedisStore> {
    RedisStore::builder(server.url())
        .prefix("hand-over")
        .policy(policy)
        .timeout(Duration::from_millis(500))
        .retry_every(Duration::from_millis(100))
        .max_in_flight(in_flight)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The whole of each limit for the one process that shares it.
fn whole_share() -> FaultPolicy {
    FaultPolicy::LocalShare {
        processes: NonZeroU32::MIN,
    }
}

/// A sliding bucket `name` of `limit` units per `length`.
fn sliding(s: &RedisStore, name: &str, limit: u32, length: Duration) -> Vec<SharedBucket> {
    vec![SharedBucket::new(
        "route",
        s.bucket_id("route", name.as_bytes()),
        [SharedWindow {
            limit,
            length,
            anchor: None,
            margin: Duration::ZERO,
        }],
    )]
}

/// The share admitted a unit and reserved the next one a window ahead while
/// its one call allowed in flight waited for a busy Redis. The hand-over
/// added both at Redis's time, capped together at the limit of 1: one unit,
/// which freed a window after the hand-over, and the reservation was lost.
/// Told as of its departure, it still fills the window after it has left.
#[tokio::test]
async fn a_reservation_ahead_at_the_hand_over_is_counted_from_its_departure() {
    let Some(server) = RedisServer::start("redis hand-over: reservation ahead") else {
        return;
    };
    let s = store(&server, whole_share(), 1);
    let window = Duration::from_millis(300);
    let one = sliding(&s, "GET /ahead", 1, window);
    let busy = server.busy_for(40).await;
    let probe = {
        let (s, probe) = (s.clone(), sliding(&s, "GET /probe", 100, window));
        tokio::spawn(async move { s.acquire(probe, 1, Some(Duration::ZERO)).await.is_ok() })
    };
    tokio::time::sleep(Duration::from_millis(3)).await;
    // The one call in flight is the probe's: these two are the share's.
    let t0 = Instant::now();
    let now = s.acquire(one.clone(), 1, Some(Duration::ZERO)).await;
    assert!(matches!(now, Ok(StoreGrant::Now)), "{now:?}");
    let held = match s.acquire(one.clone(), 1, None).await {
        Ok(StoreGrant::Later(r)) => r,
        other => panic!("expected a reservation from the share, got {other:?}"),
    };
    let departs = t0 + held.wait();
    assert_eq!(
        busy.await.ok().flatten(),
        Some(1),
        "Redis was not kept busy"
    );
    assert_eq!(probe.await.ok(), Some(true), "the probe reached Redis");
    assert_eq!(s.status().health, StoreHealth::Connected);
    tokio::time::sleep_until(departs.into()).await;
    assert!(matches!(held.depart().await, Ok(StoreGrant::Now)));
    // A window after the hand-over, and well within a window of the departure.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(Instant::now() < departs + window - Duration::from_millis(50));
    let other = store(&server, FaultPolicy::FailClosed, 4096);
    let g = other.acquire(one, 1, Some(Duration::ZERO)).await;
    assert!(
        matches!(g, Err(Refusal::WouldWait { .. })),
        "{g:?}: admitted in a window of 1 that the share's reservation fills"
    );
}

/// The hand-over ran inside the decision Redis answered, so inside the
/// request's own future: a caller that dropped it (a timeout around the
/// request) while the hand-over's calls were on their way lost every
/// departure not yet told, and another process sent a second unit into
/// windows of one.
#[tokio::test]
async fn a_caller_that_stops_waiting_loses_none_of_the_shares_departures() {
    let Some(mut server) = RedisServer::start("redis hand-over: dropped decision") else {
        return;
    };
    let s = store(&server, whole_share(), 4096);
    let minute = Duration::from_secs(60);
    let buckets: Vec<Vec<SharedBucket>> = (0..300)
        .map(|i| sliding(&s, &format!("GET /r{i}"), 1, minute))
        .collect();
    server.stop();
    for b in &buckets {
        let g = s.acquire(b.clone(), 1, Some(Duration::ZERO)).await;
        assert!(matches!(g, Ok(StoreGrant::Now)), "{g:?}");
    }
    server.restart();
    let probe = sliding(&s, "GET /probe", 1_000_000, minute);
    // A caller's timeout of 5 ms around each request, until the store is
    // back: 300 calls to hand over take longer.
    for _ in 0..400 {
        let asked = s.acquire(probe.clone(), 1, Some(Duration::ZERO));
        let _ = tokio::time::timeout(Duration::from_millis(5), asked).await;
        if s.status().health == StoreHealth::Connected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.status().health, StoreHealth::Connected);
    let other = store(&server, FaultPolicy::FailClosed, 4096);
    let mut second = 0;
    for b in &buckets {
        let g = other.acquire(b.clone(), 1, Some(Duration::ZERO)).await;
        second += usize::from(matches!(g, Ok(StoreGrant::Now)));
    }
    assert_eq!(second, 0, "{second} of 300 windows of 1 took a second unit");
}

/// The share's departures were handed to Redis only after Redis had
/// answered a call, so the first decision Redis made for this process when
/// it came back (and any made while the hand-over ran) counted none of them:
/// a window of 1 that the share had filled during the outage took a second
/// unit the moment Redis answered again.
#[tokio::test]
async fn the_first_decision_after_an_outage_counts_the_shares_departures() {
    let Some(mut server) = RedisServer::start("redis hand-over: first decision") else {
        return;
    };
    let s = store(&server, whole_share(), 4096);
    let one = sliding(&s, "GET /first", 1, Duration::from_secs(60));
    let other = sliding(&s, "GET /other", 100, Duration::from_secs(60));
    // Connected once, so that what follows is an outage and a return.
    let warm = s.acquire(other.clone(), 1, Some(Duration::ZERO)).await;
    assert!(matches!(warm, Ok(StoreGrant::Now)), "{warm:?}");
    server.stop();
    let g = s.acquire(one.clone(), 1, Some(Duration::ZERO)).await;
    assert!(matches!(g, Ok(StoreGrant::Now)), "the share's unit: {g:?}");
    assert_eq!(s.status().health, StoreHealth::FailingOver);
    server.restart();
    // Past `retry_every`: the next decision asks Redis.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = s.acquire(one.clone(), 1, Some(Duration::ZERO)).await;
    assert!(
        matches!(again, Err(Refusal::WouldWait { .. })),
        "{again:?}: a second unit in a window of 1 that the share filled"
    );
    assert_eq!(s.status().health, StoreHealth::Connected);
}

/// A process that decided from its share while Redis was away, and then sent
/// nothing more, never handed those departures over: the hand-over only
/// came with a decision of its own. Redis went on counting none of them, and
/// another process took the whole window again.
#[tokio::test]
async fn an_idle_process_hands_its_shares_departures_over() {
    let Some(mut server) = RedisServer::start("redis hand-over: idle process") else {
        return;
    };
    let two_processes = FaultPolicy::LocalShare {
        processes: NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN),
    };
    let s = store(&server, two_processes, 4096);
    let two = sliding(&s, "GET /idle", 2, Duration::from_secs(60));
    let warm = s.acquire(
        sliding(&s, "GET /warm", 100, Duration::from_secs(60)),
        1,
        None,
    );
    assert!(matches!(warm.await, Ok(StoreGrant::Now)));
    server.stop();
    let g = s.acquire(two.clone(), 1, Some(Duration::ZERO)).await;
    assert!(matches!(g, Ok(StoreGrant::Now)), "its share of 2: {g:?}");
    server.restart();
    // Several `retry_every`s, and this process asks nothing more.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let other = store(&server, FaultPolicy::FailClosed, 4096);
    let mut sent = 0;
    for _ in 0..2 {
        let g = other.acquire(two.clone(), 1, Some(Duration::ZERO)).await;
        sent += usize::from(matches!(g, Ok(StoreGrant::Now)));
    }
    assert_eq!(
        sent, 1,
        "1 sent from the share, then {sent} in a window of 2"
    );
}
