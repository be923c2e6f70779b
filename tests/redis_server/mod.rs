//! A real `redis-server` of the test's own, on a free loopback port.
//!
//! Where the binary is missing, [`RedisServer::start`] returns `None` after a
//! loud notice saying how to install it, so `cargo test` passes on a fresh
//! machine; `TOWER_QUOTA_REQUIRE_REDIS=1` (set by `.ci/run`, which installs it)
//! turns that into a failure.
#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`, stopped when dropped.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

fn binary() -> Option<&'static str> {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    found.then_some("redis-server")
}

/// Whether the test must fail rather than skip without Redis.
pub fn required() -> bool {
    std::env::var("TOWER_QUOTA_REQUIRE_REDIS").is_ok_and(|v| v == "1")
}

impl RedisServer {
    /// A fresh server, or `None` (after a loud notice) where Redis is missing.
    pub fn start(test: &str) -> Option<RedisServer> {
        if binary().is_none() {
            // Straight to stderr: the test harness captures `eprintln!` of a
            // passing test, and this notice must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: {test}: redis-server not found.\n\
                 *** Install it with `apt-get install redis-server` (Debian) to run it.\n"
            );
            assert!(
                !required(),
                "TOWER_QUOTA_REQUIRE_REDIS=1 but redis-server is not installed"
            );
            return None;
        }
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or_else(|e| panic!("no free port: {e}"));
            let mut server = RedisServer { port, child: None };
            if server.spawn() {
                return Some(server);
            }
        }
        panic!("redis-server did not start on a free port in 5 tries");
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    self.child = None;
                    return false;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop();
        false
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (its data is gone).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// A plain connection, for checking what the store wrote.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap_or_else(|e| panic!("{e}"))
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every key name in the server.
    pub async fn keys(&self) -> Vec<String> {
        redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut self.connection().await)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Until `cmd` answers `want`, for up to 5 s: how a test waits for what
    /// a store does in the background (a correction, a release) to be there
    /// for a call on any connection. A fixed sleep is not enough where the
    /// machine is busy.
    pub async fn until(&self, cmd: &redis::Cmd, want: i64) {
        let mut con = self.connection().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got: i64 = cmd
                .query_async(&mut con)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{cmd:?} answers {got}, not {want}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Keeps the server busy for `ms` with a script on a connection of its
    /// own (every other client's call waits), from 3 ms after this returns
    /// at the latest; the task's answer is `Some(1)` once it is done.
    pub async fn busy_for(&self, ms: u64) -> tokio::task::JoinHandle<Option<i64>> {
        let mut other = self.connection().await;
        // Its answer comes after the busy spell, past the default timeout.
        other.set_response_timeout(Duration::from_millis(ms + 5_000));
        let script = format!(
            "local t = redis.call('TIME'); local s = t[1] * 1e6 + t[2]; \
             repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - s > {}; return 1",
            ms * 1_000
        );
        let busy = tokio::spawn(async move {
            redis::cmd("EVAL")
                .arg(script)
                .arg(0)
                .query_async::<i64>(&mut other)
                .await
                .ok()
        });
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        busy
    }
}

/// A listener on a free loopback port, and the port: for a relay that
/// stands between a store and its server.
pub async fn loopback_listener() -> (tokio::net::TcpListener, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("no free port: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    (listener, port)
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
