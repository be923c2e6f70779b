//! The testkit server itself: exact limits under concurrency, the recorder's
//! statistics, time compression, latency, the co-consumer, bad input and the
//! lifecycle.
#![cfg(feature = "testkit")]

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http_body_util::Empty;
use tower_quota::clock::{ManualClock, Nanos};
use tower_quota::testkit::{Config, Dialect, Outcome, TestServer, Window, DEFAULT_API_KEY};

const KEY: [(&str, &str); 1] = [("x-api-key", DEFAULT_API_KEY)];

fn burst_config(clock: &ManualClock) -> Config {
    Config::new(Dialect::Campaign)
        .api_key("default", DEFAULT_API_KEY)
        .limit("GET /v1/burst", vec![Window::per_minute(20)])
        .clock(clock.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_burst_admits_exactly_the_limit() {
    let clock = ManualClock::new();
    let server = TestServer::start(burst_config(&clock)).await.expect("bind");
    let client = server.client();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .get("/v1/burst", &KEY)
                    .await
                    .map(|r| r.status.as_u16())
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("join").expect("request"));
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((ok, limited), (20, 44));

    let stats = server.stats();
    let b = stats
        .bucket("api_key", Some("default"), "GET /v1/burst")
        .expect("bucket");
    assert_eq!(
        (b.admitted, b.rejected, b.max_in_any_window()),
        (20, 44, 20)
    );
    assert!(stats.violations().is_empty());
    assert_eq!((stats.admitted, stats.rejected), (20, 44));
    // Everything happened at one instant: the allowance is one window's worth.
    assert_eq!(b.windows[0].allowance, 20);
    assert!((b.utilisation - 1.0).abs() < 1e-12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_bursts_on_two_windows_never_exceed_either() {
    let clock = ManualClock::new();
    let config = Config::new(Dialect::Campaign)
        .api_key("default", DEFAULT_API_KEY)
        .default_limit(vec![
            Window::sliding(5, Duration::from_secs(1)),
            Window::sliding(12, Duration::from_secs(10)),
        ])
        .clock(clock.clone());
    let server = TestServer::start(config).await.expect("bind");
    let client = server.client();
    let mut admitted = 0;
    // Bursts of 8 every 0.4 s for 4 s: the 1 s window and then the 10 s window bind.
    for step in 0..10u64 {
        clock.set(Nanos::from_millis(step * 400));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(
                    async move { client.get("/v1/x", &KEY).await.map(|r| r.status.as_u16()) },
                )
            })
            .collect();
        for t in tasks {
            if t.await.expect("join").expect("request") == 200 {
                admitted += 1;
            }
        }
    }
    assert_eq!(admitted, 12, "the 10 s window caps the run");
    let stats = server.stats();
    let b = stats
        .bucket("api_key", Some("default"), "GET /v1/x")
        .expect("bucket");
    let maxima: Vec<u64> = b.windows.iter().map(|w| w.max_in_any_window).collect();
    assert_eq!(maxima, [5, 12]);
    assert!(stats.violations().is_empty());
}

#[tokio::test]
async fn utilisation_is_admitted_units_over_the_run_allowance() {
    let clock = ManualClock::new();
    let server = TestServer::start(burst_config(&clock)).await.expect("bind");
    let client = server.client();
    for at in [0, 60] {
        clock.set(Nanos::from_secs(at));
        for _ in 0..20 {
            assert_eq!(
                client.get("/v1/burst", &KEY).await.expect("request").status,
                200
            );
        }
    }
    // A run of [0, 90 s] allows 20 * (floor(90 / 60) + 1) = 40 units: all used.
    clock.set(Nanos::from_secs(90));
    let stats = server.stats();
    assert_eq!(stats.run, Duration::from_secs(90));
    let b = stats
        .bucket("api_key", Some("default"), "GET /v1/burst")
        .expect("bucket");
    assert_eq!((b.admitted_units, b.windows[0].allowance), (40, 40));
    assert!((b.utilisation - 1.0).abs() < 1e-12);
    // Half a minute later another window opens: 40 of 60.
    clock.set(Nanos::from_secs(120));
    let b = server.stats();
    let b = b
        .bucket("api_key", Some("default"), "GET /v1/burst")
        .expect("bucket");
    assert!((b.utilisation - 40.0 / 60.0).abs() < 1e-12);
}

#[tokio::test]
async fn co_consumer_takes_part_of_the_allowance() {
    let clock = ManualClock::new();
    let server = TestServer::start(burst_config(&clock)).await.expect("bind");
    let client = server.client();
    assert!(server.consume("default", "GET /v1/burst", 15));
    assert!(
        !server.consume("default", "GET /v1/burst", 6),
        "all or nothing"
    );
    for remaining in ["4", "3", "2", "1", "0"] {
        let r = client.get("/v1/burst", &KEY).await.expect("request");
        assert_eq!(
            (r.status.as_u16(), r.header("x-ratelimit-remaining")),
            (200, Some(remaining))
        );
    }
    assert_eq!(
        client.get("/v1/burst", &KEY).await.expect("request").status,
        429
    );
    let stats = server.stats();
    let b = stats
        .bucket("api_key", Some("default"), "GET /v1/burst")
        .expect("bucket");
    assert_eq!(
        (b.admitted, b.co_consumed, b.rejected, b.max_in_any_window()),
        (5, 15, 1, 20)
    );
    let co = server
        .recorder()
        .events()
        .into_iter()
        .filter(|e| e.outcome == Outcome::CoConsumed)
        .count();
    assert_eq!(co, 1);
}

#[tokio::test]
async fn compressed_time_shrinks_windows_and_reports_real_time() {
    let clock = ManualClock::new();
    let config = burst_config(&clock).time_scale(60.0);
    let server = TestServer::start(config).await.expect("bind");
    let client = server.client();
    assert!(server.consume("default", "GET /v1/burst", 20));
    let r = client.get("/v1/burst", &KEY).await.expect("request");
    assert_eq!(r.status, 429);
    // An API minute lasts one real second: reset and Retry-After are real.
    assert_eq!(r.header("x-ratelimit-reset"), Some("86401000"));
    assert_eq!(r.header("retry-after"), Some("1"));
    clock.advance(Duration::from_millis(999));
    assert_eq!(
        client.get("/v1/burst", &KEY).await.expect("request").status,
        429
    );
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        client.get("/v1/burst", &KEY).await.expect("request").status,
        200
    );
    let stats = server.stats();
    let b = stats
        .bucket("api_key", Some("default"), "GET /v1/burst")
        .expect("bucket");
    assert_eq!(b.windows[0].real, Duration::from_secs(1));
    assert_eq!(b.windows[0].window.per, Duration::from_secs(60));
    // A run of 1 s at 20 per real second allows 2 windows' worth.
    assert_eq!(b.windows[0].allowance, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn latency_delivers_responses_out_of_order() {
    let clock = ManualClock::new();
    let server = TestServer::start(burst_config(&clock)).await.expect("bind");
    server.set_latency(Duration::from_millis(1)..Duration::from_millis(6));
    let client = server.client();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (client, tx) = (client.clone(), tx.clone());
            tokio::spawn(async move {
                let sent = Instant::now();
                let r = client.get("/v1/burst", &KEY).await.expect("request");
                assert!(sent.elapsed() >= Duration::from_millis(1));
                let remaining: u64 = r
                    .header("x-ratelimit-remaining")
                    .and_then(|v| v.parse().ok())
                    .expect("header");
                let _ = tx.send(remaining);
            })
        })
        .collect();
    drop(tx);
    for t in tasks {
        t.await.expect("join");
    }
    let mut arrival = Vec::new();
    while let Some(remaining) = rx.recv().await {
        arrival.push(remaining);
    }
    // Decisions were made in order 19, 18, ..., 4; the responses did not come back so.
    let mut sorted = arrival.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(sorted, (4..20).rev().collect::<Vec<u64>>());
    assert_ne!(
        arrival, sorted,
        "responses came back in decision order: {arrival:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    server.clear_latency();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_connections_hold_the_first_request_on_each_connection() {
    let clock = ManualClock::new();
    let handshake = Duration::from_millis(150);
    let server = TestServer::start(burst_config(&clock).cold_connections(handshake))
        .await
        .expect("bind");
    // One HTTP/1.1 connection each, so that reuse does not depend on when a
    // pooled client gets its connection back (a busy machine once sent the
    // second request on a new connection).
    let connection = || async {
        let stream = tokio::net::TcpStream::connect(server.addr())
            .await
            .expect("connect");
        let (send, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("handshake");
        tokio::spawn(conn);
        send
    };
    let timed = |send: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>| {
        let request = http::Request::get("/v1/burst")
            .header("host", "localhost")
            .header(KEY[0].0, KEY[0].1)
            .body(Empty::new())
            .expect("request");
        let sent = Instant::now();
        let response = send.send_request(request);
        async move {
            let status = response.await.expect("response").status();
            assert_eq!(status, 200);
            sent.elapsed()
        }
    };
    let mut first = connection().await;
    // The first request opens the connection: held for the handshake.
    let opening = timed(&mut first).await;
    assert!(opening >= handshake, "{opening:?}");
    // The next on it (keep-alive) is not held.
    first.ready().await.expect("the connection stays open");
    let reusing = timed(&mut first).await;
    assert!(reusing < handshake, "{reusing:?}");
    // A new connection is held again.
    let reopening = timed(&mut connection().await).await;
    assert!(reopening >= handshake, "{reopening:?}");
}

async fn raw(server: &TestServer, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply).await;
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test]
async fn bad_input_gets_4xx_never_a_panic() {
    let clock = ManualClock::new();
    let server = TestServer::start(burst_config(&clock)).await.expect("bind");
    let client = server.client();
    // A key that is not text, over a raw connection (the client refuses to send it).
    let reply = raw(
        &server,
        b"GET /v1/burst HTTP/1.1\r\nhost: x\r\nx-api-key: \xff\xfe\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    let reply = raw(&server, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    // A key sent twice is ambiguous.
    let twice = [
        ("x-api-key", DEFAULT_API_KEY),
        ("x-api-key", DEFAULT_API_KEY),
    ];
    assert_eq!(
        client
            .get("/v1/burst", &twice)
            .await
            .expect("request")
            .status,
        401
    );
    let big = "x".repeat((1 << 20) + 1);
    let r = client
        .send(Method::POST, "/v1/burst", &KEY, big.into())
        .await
        .expect("request");
    assert_eq!(r.status, 413);
    // The server is still there.
    assert_eq!(
        client.get("/v1/burst", &KEY).await.expect("request").status,
        200
    );
}

#[tokio::test]
async fn starts_fast_on_a_free_port_and_stops() {
    let started = Instant::now();
    let mut servers = Vec::new();
    for _ in 0..20 {
        servers.push(TestServer::start(Config::seed004()).await.expect("bind"));
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    let a = servers.remove(0);
    assert!(a.addr().ip().is_loopback());
    assert_eq!(a.base_url(), format!("http://{}", a.addr()));
    assert_ne!(a.addr(), servers[0].addr());
    let url = a.addr();
    let client = a.client();
    assert_eq!(
        client.get("/v1/users", &KEY).await.expect("request").status,
        200
    );
    a.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(url).await.is_err(),
        "shut down"
    );
    let b = servers.remove(0);
    let url = b.addr();
    drop(b);
    tokio::task::yield_now().await;
    let fresh = tower_quota::testkit::TestClient::new(format!("http://{url}"));
    assert!(fresh.get("/v1/users", &KEY).await.is_err(), "dropped");
}
