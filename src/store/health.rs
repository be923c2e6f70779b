//! Where a shared store stands: what the user and the report see.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

/// The health of a shared store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreHealth {
    /// Every decision is made by the shared store.
    Connected,
    /// Decisions are shared, but recent calls failed or were slow.
    Degraded,
    /// The shared store is away: decisions use this process's share of each
    /// limit (`FaultPolicy::LocalShare`, feature `redis`).
    FailingOver,
    /// The shared store is away and requests are refused
    /// (`FaultPolicy::FailClosed`, feature `redis`).
    Failing,
}

impl fmt::Display for StoreHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreHealth::Connected => "connected",
            StoreHealth::Degraded => "degraded",
            StoreHealth::FailingOver => "failing over to a local share",
            StoreHealth::Failing => "failing (requests refused)",
        })
    }
}

/// A shared store's status: its health and what it has been through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStatus {
    /// Which store (`memory`, `redis`).
    pub store: String,
    /// Its health now.
    pub health: StoreHealth,
    /// Decisions it made.
    pub decisions: u64,
    /// Calls that failed or timed out.
    pub errors: u64,
    /// Times it left the shared store for the fallback.
    pub failovers: u64,
}

/// The counters behind a [`StoreStatus`], updated without locks.
#[derive(Debug)]
pub(crate) struct HealthCell {
    health: AtomicU8,
    pub(crate) decisions: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) failovers: AtomicU64,
}

impl HealthCell {
    pub(crate) fn new() -> HealthCell {
        HealthCell {
            health: AtomicU8::new(0),
            decisions: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
        }
    }

    pub(crate) fn get(&self) -> StoreHealth {
        decode(self.health.load(Ordering::Relaxed))
    }

    /// Sets the health; the previous one.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn set(&self, h: StoreHealth) -> StoreHealth {
        let v = match h {
            StoreHealth::Connected => 0,
            StoreHealth::Degraded => 1,
            StoreHealth::FailingOver => 2,
            StoreHealth::Failing => 3,
        };
        let old_health = decode(self.health.swap(v, Ordering::Relaxed));
        if old_health != h {
            tracing::warn!(from = %old_health, to = %h, "shared store health changed");
        }
        old_health
    }

    pub(crate) fn status(&self, store: &str) -> StoreStatus {
        StoreStatus {
            store: store.to_owned(),
            health: self.get(),
            decisions: self.decisions.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            failovers: self.failovers.load(Ordering::Relaxed),
        }
    }
}

fn decode(v: u8) -> StoreHealth {
    match v {
        0 => StoreHealth::Connected,
        1 => StoreHealth::Degraded,
        2 => StoreHealth::FailingOver,
        _ => StoreHealth::Failing,
    }
}
