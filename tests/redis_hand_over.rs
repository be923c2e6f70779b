//! A Redis store hands its local share's departures to Redis when Redis
//! answers again (see `tests/redis_server/mod.rs` for the skip rule): each as
//! of its own departure, and none lost to a caller that stops waiting.
#![cfg(feature = "redis")]

mod redis_kit;
mod redis_server;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use redis_kit::{reserved, sliding};
use redis_server::RedisServer;
use tower_quota::ledger::Refusal;
use tower_quota::store::{
    FaultPolicy, RedisStore, SharedBucket, SharedStore, SharedWindow, StoreGrant, StoreHealth,
};

/// A store of `server` with a share of each whole limit, at most `in_flight`
/// calls at once.
fn store(server: &RedisServer, policy: FaultPolicy, in_flight: usize) -> Arc<RedisStore> {
    store_at(&server.url(), policy, in_flight)
}

/// A store of the Redis at `url`.
fn store_at(url: &str, policy: FaultPolicy, in_flight: usize) -> Arc<RedisStore> {
    redis_kit::store_at(url, "hand-over", policy, in_flight)
}

/// The whole of each limit for the one process that shares it.
fn whole_share() -> FaultPolicy {
    FaultPolicy::LocalShare {
        processes: NonZeroU32::MIN,
    }
}

/// Keeps the store's one call allowed in flight taken, by a probe that waits
/// `ms` for a busy Redis, so that what the store decides meanwhile is the
/// share's. The busy script's task, and the probe's (`true` once Redis
/// answered it, after the hand-over that its answer brings).
async fn probe_in_flight(
    server: &RedisServer,
    s: &Arc<RedisStore>,
    ms: u64,
) -> (
    tokio::task::JoinHandle<Option<i64>>,
    tokio::task::JoinHandle<bool>,
) {
    let busy = server.busy_for(ms).await;
    let probe = {
        let (s, probe) = (
            s.clone(),
            sliding(s, "GET /probe", 100, Duration::from_secs(60)),
        );
        tokio::spawn(async move { s.acquire(probe, 1, Some(Duration::ZERO)).await.is_ok() })
    };
    tokio::time::sleep(Duration::from_millis(3)).await;
    (busy, probe)
}

/// Once Redis is no longer busy: the probe of [`probe_in_flight`] was
/// answered (and the hand-over that its answer brings is done).
async fn probe_answered(
    busy: tokio::task::JoinHandle<Option<i64>>,
    probe: tokio::task::JoinHandle<bool>,
) {
    assert_eq!(
        busy.await.ok().flatten(),
        Some(1),
        "Redis was not kept busy"
    );
    assert_eq!(probe.await.ok(), Some(true), "the probe reached Redis");
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
    // Long enough that the check below, a window after the hand-over, still
    // falls well within a window of the departure on a busy machine.
    let window = Duration::from_millis(600);
    let one = sliding(&s, "GET /ahead", 1, window);
    let (busy, probe) = probe_in_flight(&server, &s, 40).await;
    // The one call in flight is the probe's: these two are the share's.
    let t0 = Instant::now();
    let now = s.acquire(one.clone(), 1, Some(Duration::ZERO)).await;
    assert!(matches!(now, Ok(StoreGrant::Now)), "{now:?}");
    let held = reserved(s.acquire(one.clone(), 1, None).await);
    let departs = t0 + held.wait();
    probe_answered(busy, probe).await;
    assert_eq!(s.status().health, StoreHealth::Connected);
    tokio::time::sleep_until(departs.into()).await;
    assert!(matches!(held.depart().await, Ok(StoreGrant::Now)));
    // A window after the hand-over, and well within a window of the departure.
    tokio::time::sleep(Duration::from_millis(150)).await;
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

/// A relay to the Redis on `upstream` that holds the first `add` call it
/// passes (a hand-over's first call) for `hold`, and its URL.
async fn holding_the_first_add(upstream: u16, hold: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (listener, port) = redis_server::loopback_listener().await;
    let held = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let held = held.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                let up = async {
                    let mut buf = vec![0u8; 1 << 16];
                    while let Ok(n @ 1..) = from_client.read(&mut buf).await {
                        let add = buf[..n].windows(9).any(|w| w == b"$3\r\nadd\r\n");
                        if add && !held.swap(true, Ordering::SeqCst) {
                            tokio::time::sleep(hold).await;
                        }
                        if to_server.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                };
                tokio::select! {
                    () = up => {}
                    _ = tokio::io::copy(&mut from_server, &mut to_client) => {}
                }
            });
        }
    });
    format!("redis://127.0.0.1:{port}/")
}

/// The hand-over measured how far ahead each departure leaves once, at its
/// start, and Redis placed each that far ahead of its own call: every call
/// after a slow one placed its departures that much later. A reservation
/// that left 150 ms before a fixed window's boundary, told after a first
/// call held 400 ms, was counted in the window after the boundary, which
/// then refused the unit it had room for (and the window it left in was
/// short of it).
#[tokio::test]
async fn each_departure_is_told_as_of_its_own_time_however_long_the_hand_over() {
    let Some(server) = RedisServer::start("redis hand-over: long hand-over") else {
        return;
    };
    let url = holding_the_first_add(server.port(), Duration::from_millis(400)).await;
    let s = store_at(&url, whole_share(), 1);
    let minute = Duration::from_secs(60);
    let warm = s.acquire(
        sliding(&s, "GET /warm", 100, minute),
        1,
        Some(Duration::ZERO),
    );
    assert!(matches!(warm.await, Ok(StoreGrant::Now)), "warming up");
    let pace = sliding(&s, "GET /pace", 1, Duration::from_millis(1_500));
    let (busy, probe) = probe_in_flight(&server, &s, 100).await;
    // The one call in flight is the probe's: these are the share's. `pace`
    // sends its unit now and binds the next request to 1.5 s from now, 150
    // ms before the boundary of a fixed window of 10 s.
    let t0 = Instant::now();
    let g = s.acquire(pace.clone(), 1, Some(Duration::ZERO)).await;
    assert!(matches!(g, Ok(StoreGrant::Now)), "{g:?}");
    let boundary = SystemTime::now() + Duration::from_millis(1_650);
    let fixed = SharedBucket::new(
        "route",
        s.bucket_id("route", b"GET /fixed"),
        [SharedWindow {
            limit: 1,
            length: Duration::from_secs(10),
            anchor: Some(boundary),
            margin: Duration::ZERO,
        }],
    );
    let both = vec![pace[0].clone(), fixed.clone()];
    let held = reserved(s.acquire(both, 1, None).await);
    let departs = t0 + held.wait();
    // The probe's answer brings the hand-over, and waits for it.
    probe_answered(busy, probe).await;
    assert!(
        Instant::now() + Duration::from_millis(200) < departs,
        "the hand-over must end well before the departure"
    );
    let other = store(&server, FaultPolicy::FailClosed, 4096);
    let warm = other.acquire(sliding(&other, "GET /warm", 100, minute), 1, None);
    assert!(matches!(warm.await, Ok(StoreGrant::Now)), "warming up");
    tokio::time::sleep_until(departs.into()).await;
    assert!(matches!(held.depart().await, Ok(StoreGrant::Now)));
    // 100 ms into the window after the boundary: nothing left in it.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let g = other.acquire(vec![fixed], 1, Some(Duration::ZERO)).await;
    assert!(
        matches!(g, Ok(StoreGrant::Now)),
        "{g:?}: the share's unit left before the boundary, in the window before"
    );
}
