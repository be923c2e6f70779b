//! Redis stopped in the middle of a run and started again: the fault policy
//! holds, nothing panics, the run completes, and the store goes back to Redis.
#![cfg(feature = "redis")]

mod redis_drive;
mod redis_kit;
mod redis_server;

use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis_drive::{drive, unix_micros};
use redis_kit::{sliding, warm};
use redis_server::RedisServer;
use tower_quota::ledger::Refusal;
use tower_quota::quota::Quota;
use tower_quota::scope::KeySource;
use tower_quota::store::{
    Correction, FaultPolicy, RedisStore, SharedBucket, SharedStore, StoreGrant, StoreHealth,
};
use tower_quota::Limiter;

fn store(server: &RedisServer, policy: FaultPolicy) -> Arc<RedisStore> {
    store_at(&server.url(), policy, 4096)
}

/// A store that makes at most `in_flight` calls at once.
fn store_with(server: &RedisServer, policy: FaultPolicy, in_flight: usize) -> Arc<RedisStore> {
    store_at(&server.url(), policy, in_flight)
}

/// A store of Redis at `url` (a closed [`Gate`] fails a call at once, as a
/// stopped Redis does).
fn store_at(url: &str, policy: FaultPolicy, in_flight: usize) -> Arc<RedisStore> {
    redis_kit::store_at(url, "faults", policy, in_flight)
}

/// A share of each limit for one of `n` processes.
fn share(n: u32) -> FaultPolicy {
    FaultPolicy::LocalShare {
        processes: NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN),
    }
}

fn bucket(store: &RedisStore, limit: u32) -> Vec<SharedBucket> {
    sliding(store, "GET /x", limit, Duration::from_secs(30))
}

/// Admissions now (never waiting) until the first refusal, up to `most`.
async fn admit_now(s: &RedisStore, b: &[SharedBucket], most: usize) -> (usize, Option<Refusal>) {
    for n in 0..most {
        match s.acquire(b.to_vec(), 1, Some(Duration::ZERO)).await {
            Ok(StoreGrant::Now) => {}
            Ok(StoreGrant::Later(_)) => panic!("a zero wait must not reserve"),
            Err(e) => return (n, Some(e)),
        }
    }
    (most, None)
}

/// Until the store answers from Redis again (it retries every 100 ms).
async fn until_back(s: &RedisStore, b: &[SharedBucket]) {
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = s.acquire(b.to_vec(), 1, Some(Duration::ZERO)).await;
        if s.status().health == StoreHealth::Connected {
            return;
        }
    }
    panic!("the store never went back to Redis: {:?}", s.status());
}

#[tokio::test]
async fn fail_closed_refuses_with_a_typed_error_while_redis_is_away() {
    let Some(mut server) = RedisServer::start("redis faults: fail closed") else {
        return;
    };
    let s = store(&server, FaultPolicy::FailClosed);
    let b = bucket(&s, 100);
    assert_eq!(admit_now(&s, &b, 3).await, (3, None));
    server.stop();
    let (n, refusal) = admit_now(&s, &b, 3).await;
    assert_eq!(n, 0);
    match refusal {
        Some(r @ Refusal::StoreUnavailable { .. }) => {
            let text = r.to_string();
            assert!(
                text.contains("unavailable") && !text.contains("redis://"),
                "{text}"
            );
        }
        other => panic!("expected StoreUnavailable, got {other:?}"),
    }
    assert_eq!(s.status().health, StoreHealth::Failing);
    assert!(s.status().failovers >= 1);
    server.restart();
    until_back(&s, &b).await;
    // A restarted Redis lost everything: the window starts again.
    let (n, _) = admit_now(&s, &b, 5).await;
    assert_eq!(n, 5);
}

#[tokio::test]
async fn local_share_decides_from_its_share_and_hands_it_back_to_redis() {
    let Some(mut server) = RedisServer::start("redis faults: local share") else {
        return;
    };
    let s = store(&server, share(2));
    let b = bucket(&s, 10);
    server.stop();
    // Half of 10 for this process while Redis is away.
    let (n, refusal) = admit_now(&s, &b, 10).await;
    assert_eq!(n, 5, "{refusal:?}");
    assert!(
        matches!(refusal, Some(Refusal::WouldWait { .. })),
        "{refusal:?}"
    );
    assert_eq!(s.status().health, StoreHealth::FailingOver);
    server.restart();
    until_back(&s, &b).await;
    // Redis was told of the 5 (and of the probe that found it back): at most
    // 4 more fit in the window, not 10.
    let (n, _) = admit_now(&s, &b, 10).await;
    assert!(
        n <= 4,
        "{n} admitted: the share's departures were forgotten"
    );
}

/// Two processes on one key, and Redis goes away. Each share counts its part
/// of what they all sent (the count Redis gave with its last answer), so the
/// two stay within the limit together even when one of them sent most of the
/// window; counting only its own sends, the quiet one sent half the limit on
/// top. When they sent evenly, the shares still fill the window.
#[tokio::test]
async fn shares_that_fail_over_together_stay_within_the_limit() {
    let Some(mut server) = RedisServer::start("redis faults: shares within the limit") else {
        return;
    };
    let busy = store(&server, share(2));
    let quiet = store(&server, share(2));
    let uneven = bucket(&busy, 10);
    let even = sliding(&busy, "GET /even", 10, Duration::from_secs(30));
    assert_eq!(admit_now(&busy, &even, 2).await, (2, None));
    assert_eq!(admit_now(&quiet, &even, 2).await, (2, None));
    assert_eq!(admit_now(&busy, &uneven, 8).await, (8, None));
    assert_eq!(admit_now(&quiet, &uneven, 1).await, (1, None));
    server.stop();
    let busy_more = admit_now(&busy, &uneven, 10).await.0;
    let quiet_more = admit_now(&quiet, &uneven, 10).await.0;
    assert!(
        9 + busy_more + quiet_more <= 10,
        "9 sent, then {busy_more} and {quiet_more} from the shares: over the limit of 10"
    );
    assert_eq!(busy.status().health, StoreHealth::FailingOver);
    let (busy_even, quiet_even) = (
        admit_now(&busy, &even, 10).await.0,
        admit_now(&quiet, &even, 10).await.0,
    );
    assert_eq!(
        (busy_even, quiet_even),
        (3, 3),
        "each half of the 6 left: the window fills"
    );
}

/// Sixteen tasks drive a key through the layer while Redis is stopped for
/// 400 ms and started again: under either policy the run completes without
/// a panic, the report shows the outage, fail closed refuses meanwhile and
/// the share does not, and the store goes back to Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_through_an_outage_completes_under_either_policy() {
    for policy in [FaultPolicy::FailClosed, share(4)] {
        let Some(mut server) = RedisServer::start("redis faults: outage mid-run") else {
            return;
        };
        let s = store(&server, policy);
        let limiter = Limiter::builder()
            .per_api_key(
                KeySource::header("x-api-key"),
                Quota::new(40, Duration::from_millis(500)).unwrap_or_else(|| panic!("quota")),
                100,
            )
            .max_wait(tower_quota::ledger::MaxWait::Up(Duration::from_secs(2)))
            .shared(s.clone())
            .build();
        let departures = Arc::new(Mutex::new(Vec::new()));
        let start = unix_micros();
        let run = tokio::spawn(drive(
            limiter.clone(),
            departures.clone(),
            "key",
            16,
            start + 1_600_000,
        ));
        tokio::time::sleep(Duration::from_millis(400)).await;
        server.stop();
        tokio::time::sleep(Duration::from_millis(400)).await;
        // The report shows the outage.
        let during = limiter
            .snapshot(&tower_quota::report::Thresholds::default())
            .store
            .map(|st| st.health);
        server.restart();
        let refused = run
            .await
            .unwrap_or_else(|e| panic!("the run panicked: {e}"));
        let sent = departures.lock().map(|d| d.len()).unwrap_or(0);
        match policy {
            FaultPolicy::FailClosed => {
                assert_eq!(during, Some(StoreHealth::Failing));
                assert!(refused > 0, "fail closed refuses during the outage");
            }
            FaultPolicy::LocalShare { .. } => {
                assert_eq!(during, Some(StoreHealth::FailingOver));
                assert_eq!(refused, 0, "the share kept requests going");
            }
        }
        assert!(sent >= 40, "{policy:?}: only {sent} sent");
        // Back to Redis: by the end of the run as a rule, but a busy machine
        // may restart Redis late or fail a call just after.
        until_back(&s, &sliding(&s, "GET /back", 100, Duration::from_secs(30))).await;
    }
}

/// Sixteen requests at once through a store allowed one call in flight: one
/// goes to Redis, the fifteen others get the fault policy (fail closed) at
/// once, and Redis is not taken for away.
#[tokio::test]
async fn past_its_calls_in_flight_a_request_gets_the_policy_and_redis_stays_connected() {
    let Some(server) = RedisServer::start("redis faults: calls in flight") else {
        return;
    };
    let s = store_with(&server, FaultPolicy::FailClosed, 1);
    warm(&s).await;
    let b = bucket(&s, 100);
    // Sixteen at once, one call allowed in flight: the first goes to Redis,
    // the others are refused at once instead of queueing.
    let all = futures_join(16, || s.acquire(b.clone(), 1, None)).await;
    let admitted = all
        .iter()
        .filter(|g| matches!(g, Ok(StoreGrant::Now)))
        .count();
    let refused = all
        .iter()
        .filter(|g| matches!(g, Err(Refusal::StoreUnavailable { reason, .. }) if reason.contains("in flight")))
        .count();
    assert_eq!((admitted, refused), (1, 15));
    // Not an outage: the next request goes to Redis.
    assert_eq!(s.status().health, StoreHealth::Connected);
    assert!(matches!(s.acquire(b, 1, None).await, Ok(StoreGrant::Now)));
}

/// `n` futures made by `f`, polled together on this task.
async fn futures_join<F: std::future::Future>(n: usize, f: impl Fn() -> F) -> Vec<F::Output> {
    let mut futures: Vec<_> = (0..n).map(|_| Box::pin(f())).collect();
    let mut out: Vec<Option<F::Output>> = (0..n).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// A limit smaller than the number of processes has no whole unit for each
/// share: rounded up to one, four shares of a limit of 2 sent 4. While
/// Redis is away such a bucket is refused as StoreUnavailable; a limit of 8
/// still gives each of the four its 2.
#[tokio::test]
async fn shares_of_a_limit_below_the_process_count_send_nothing() {
    let Some(mut server) = RedisServer::start("redis faults: shares below one") else {
        return;
    };
    let stores: Vec<_> = (0..4).map(|_| store(&server, share(4))).collect();
    let small = sliding(&stores[0], "GET /small", 2, Duration::from_secs(30));
    let eight = sliding(&stores[0], "GET /eight", 8, Duration::from_secs(30));
    server.stop();
    for s in &stores {
        let (n, refusal) = admit_now(s, &small, 10).await;
        assert_eq!(n, 0, "sent from a share of a limit of 2 among 4");
        match refusal {
            Some(Refusal::StoreUnavailable { reason, .. }) => {
                assert!(reason.contains("limit of 2"), "{reason}");
            }
            other => panic!("expected StoreUnavailable, got {other:?}"),
        }
        assert_eq!(admit_now(s, &eight, 10).await.0, 2);
    }
}
/// A request decided from the share because too many calls were in flight
/// was recorded for Redis, but only a failover handed the record over: while
/// Redis stayed connected the unit was never counted there, and another
/// process sent its own units on top of it.
#[tokio::test]
async fn units_decided_past_the_calls_in_flight_are_counted_in_redis() {
    let Some(server) = RedisServer::start("redis faults: overload counted") else {
        return;
    };
    let a = store_with(&server, share(2), 1);
    let b = store(&server, share(2));
    let four = bucket(&a, 4);
    warm(&a).await;
    // Two at once from `a`: one through Redis, one from its share.
    let (first, second) = tokio::join!(
        a.acquire(four.clone(), 1, Some(Duration::ZERO)),
        a.acquire(four.clone(), 1, Some(Duration::ZERO))
    );
    assert!(matches!(
        (first, second),
        (Ok(StoreGrant::Now), Ok(StoreGrant::Now))
    ));
    assert_eq!(a.status().health, StoreHealth::Connected);
    let (sent, _) = admit_now(&b, &four, 10).await;
    assert_eq!(
        sent, 2,
        "2 sent by `a`, then {sent} by `b` in a window of 4"
    );
}

/// The share's record of what it admitted was pruned by the longest window
/// of the request at hand: a request in a 500 ms bucket, a second after
/// five in a 60 s bucket, deleted those five before Redis was back to hear
/// of them.
#[tokio::test]
async fn a_short_buckets_request_keeps_a_long_buckets_record() {
    let Some(mut server) = RedisServer::start("redis faults: record kept") else {
        return;
    };
    let s = store(&server, share(2));
    let long = sliding(&s, "GET /long", 10, Duration::from_secs(60));
    let short = sliding(&s, "GET /short", 100, Duration::from_millis(500));
    server.stop();
    assert_eq!(admit_now(&s, &long, 10).await.0, 5, "its share of 10");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(admit_now(&s, &short, 1).await.0, 1);
    server.restart();
    until_back(&s, &short).await;
    let other = store(&server, FaultPolicy::FailClosed);
    let (n, _) = admit_now(&other, &long, 10).await;
    assert_eq!(
        n, 5,
        "5 sent a second ago, then {n} more in a 60 s window of 10"
    );
}

/// A reservation the share granted was recorded at its decision, not at its
/// departure: handed to Redis more than a window after the decision, it was
/// forgotten though it had left only just before, and another process sent
/// into the window it still filled.
#[tokio::test]
async fn a_shares_reservation_counts_in_redis_from_its_departure() {
    let Some(mut server) = RedisServer::start("redis faults: share's reservation") else {
        return;
    };
    let s = store(&server, share(1));
    let one = sliding(&s, "GET /one", 1, Duration::from_secs(1));
    server.stop();
    assert_eq!(admit_now(&s, &one, 1).await.0, 1);
    let held = match s.acquire(one.clone(), 1, None).await {
        Ok(StoreGrant::Later(r)) => r,
        other => panic!("expected a reservation, got {other:?}"),
    };
    tokio::time::sleep(held.wait()).await;
    assert!(matches!(held.depart().await, Ok(StoreGrant::Now)));
    server.restart();
    until_back(&s, &sliding(&s, "GET /probe", 100, Duration::from_secs(1))).await;
    // The reservation left a moment ago: the window holds it for a second.
    let other = store(&server, FaultPolicy::FailClosed);
    let refusal = other.acquire(one, 1, Some(Duration::ZERO)).await;
    assert!(
        matches!(refusal, Err(Refusal::WouldWait { .. })),
        "{refusal:?} in a window of 1 that the share's departure fills"
    );
}

/// A reservation the share granted was recorded at its planned departure,
/// and a slow response then pushed its departure 1 s later (told to the
/// share; Redis, away, never heard of it). Redis came back before it left
/// and was told the planned departure: it freed the window a second before
/// the unit that really left did, and another process sent into it.
#[tokio::test]
async fn a_shares_reservation_that_a_slow_response_delays_counts_from_when_it_leaves() {
    let Some(mut server) = RedisServer::start("redis faults: share's late reservation") else {
        return;
    };
    let s = store(&server, share(1));
    let second = Duration::from_secs(1);
    let probe = sliding(&s, "GET /probe", 100, second);
    assert_eq!(admit_now(&s, &probe, 1).await.0, 1, "warming up");
    let one = sliding(&s, "GET /one", 1, second);
    server.stop();
    let t0 = std::time::Instant::now();
    assert_eq!(admit_now(&s, &one, 1).await.0, 1);
    let held = match s.acquire(one.clone(), 1, None).await {
        Ok(StoreGrant::Later(r)) => r,
        other => panic!("expected a reservation, got {other:?}"),
    };
    s.correct(
        &one[0],
        Correction::Late {
            window: 0,
            late: second,
        },
    );
    server.restart();
    until_back(&s, &probe).await;
    assert!(
        t0.elapsed() < Duration::from_millis(800),
        "back before the departure"
    );
    tokio::time::sleep(held.wait().saturating_sub(t0.elapsed())).await;
    assert!(matches!(held.depart().await, Ok(StoreGrant::Now)));
    // Left at 2 s: 0.4 s past the planned departure's window, well within its own.
    tokio::time::sleep_until((t0 + Duration::from_millis(2_400)).into()).await;
    let other = store(&server, FaultPolicy::FailClosed);
    let refusal = other.acquire(one, 1, Some(Duration::ZERO)).await;
    assert!(
        matches!(refusal, Err(Refusal::WouldWait { .. })),
        "{refusal:?} in a window of 1 that the share's late departure fills"
    );
}

/// Redis answered a decision and failed right after, before the store had
/// handed it the share's departures: the hand-over's calls failed, and the
/// departures were gone from the record, so Redis never counted them. (The
/// departures are now handed over before the decision that Redis answers;
/// whichever call finds Redis away again, they count there once.)
#[tokio::test]
async fn a_hand_over_that_fails_keeps_the_departures_for_the_next_answer() {
    let Some(server) = RedisServer::start("redis faults: hand-over fails") else {
        return;
    };
    let gate = Gate::start(server.port()).await;
    let s = store_at(&gate.url(), share(2), 4096);
    let long = sliding(&s, "GET /long", 10, Duration::from_secs(60));
    let probe = sliding(&s, "GET /probe", 100, Duration::from_secs(60));
    assert_eq!(admit_now(&s, &probe, 1).await.0, 1);
    gate.close();
    assert_eq!(admit_now(&s, &long, 10).await.0, 5, "its share of 10");
    // Redis answers the next decision, and is away again at once.
    gate.open_until_a_decision();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = s.acquire(probe.clone(), 1, Some(Duration::ZERO)).await;
        if gate.is_closed() {
            break;
        }
    }
    assert!(gate.is_closed(), "no decision reached Redis");
    // The next call finds Redis away again.
    let _ = s.acquire(probe.clone(), 1, Some(Duration::ZERO)).await;
    assert_eq!(s.status().health, StoreHealth::FailingOver, "away again");
    gate.open();
    until_back(&s, &probe).await;
    let other = store(&server, FaultPolicy::FailClosed);
    let (n, _) = admit_now(&other, &long, 10).await;
    assert_eq!(
        n, 5,
        "5 sent from the share, then {n} more in a window of 10"
    );
}

/// A TCP relay to a Redis server that a test can close (every connection
/// dropped, and every new one until it opens again), also right after the
/// next reply to a decision passes, before the store can say anything more.
struct Gate {
    port: u16,
    state: Arc<GateState>,
}

#[derive(Default)]
struct GateState {
    closed: std::sync::atomic::AtomicBool,
    /// Close after the next decision's reply (`*3`, `:0`: admitted).
    after_a_decision: std::sync::atomic::AtomicBool,
    relays: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Gate {
    async fn start(upstream: u16) -> Gate {
        let (listener, port) = redis_server::loopback_listener().await;
        let state = Arc::new(GateState::default());
        let accepting = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if accepting.closed.load(Ordering::SeqCst) {
                    continue;
                }
                let relay = tokio::spawn(relay(client, upstream, accepting.clone()));
                if let Ok(mut relays) = accepting.relays.lock() {
                    relays.push(relay.abort_handle());
                }
            }
        });
        Gate { port, state }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn close(&self) {
        self.state.closed.store(true, Ordering::SeqCst);
        if let Ok(mut relays) = self.state.relays.lock() {
            for relay in relays.drain(..) {
                relay.abort();
            }
        }
    }

    fn open(&self) {
        self.state.after_a_decision.store(false, Ordering::SeqCst);
        self.state.closed.store(false, Ordering::SeqCst);
    }

    fn open_until_a_decision(&self) {
        self.state.after_a_decision.store(true, Ordering::SeqCst);
        self.state.closed.store(false, Ordering::SeqCst);
    }

    fn is_closed(&self) -> bool {
        self.state.closed.load(Ordering::SeqCst)
    }
}

/// Relays one connection until either side ends it or the gate closes.
async fn relay(client: tokio::net::TcpStream, upstream: u16, state: Arc<GateState>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = from_client.read(&mut buf).await {
            if n == 0 || state.closed.load(Ordering::SeqCst) {
                return;
            }
            if to_server.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = from_server.read(&mut buf).await {
            let reply = &buf[..n];
            let decision = reply.windows(8).any(|w| w == b"*3\r\n:0\r\n");
            // Closed before the reply goes on, so that nothing the store
            // sends after reading it gets through.
            let last = decision && state.after_a_decision.swap(false, Ordering::SeqCst);
            if last {
                state.closed.store(true, Ordering::SeqCst);
            }
            if n == 0 || to_client.write_all(reply).await.is_err() || last {
                return;
            }
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}
