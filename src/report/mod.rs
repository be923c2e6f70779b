//! Where the client stands: usage against limits, health levels, the last 24
//! hours and the last 30 days, computed on the client side.
//!
//! Servers show their users a usage page (seed 003: a card per scope with usage,
//! limit, a coloured progress bar and the per-minute rate limit, and a 30-day
//! chart) and a usage endpoint (seed 002: a 24-hour summary bucketed hourly).
//! This module keeps the same picture locally, without polling anyone:
//! - [`Snapshot`]: every bucket's windows at one instant, taken from
//!   [`Bucket::state`](crate::ledger::Bucket::state) without locking, so it is
//!   cheap to take while traffic flows;
//! - [`Health`] and [`Thresholds`]: the healthy / approaching / critical levels;
//! - [`History`]: request outcomes counted in fixed, lock-free rings of hourly
//!   and daily counters, answering seed 002's [`Summary24h`] and the 30
//!   [`DailyCount`]s of the chart;
//! - with the `report` feature, `render_table` (a terminal table) and
//!   `render_html` (one self-contained page).
//!
//! Reports show bucket labels and scope names only. Keyed buckets are labelled
//! `scope#fingerprint`, so API keys and account keys never reach a report.

mod credit;
pub(crate) mod date;
mod health;
mod history;
#[cfg(feature = "report")]
mod html;
mod percent;
mod ring;
mod snapshot;
#[cfg(feature = "report")]
mod table;
#[cfg(feature = "report")]
mod text;

pub use credit::CreditReport;
pub use health::{Health, Thresholds};
pub use history::{DailyCount, History, Summary24h};
#[cfg(feature = "report")]
pub use html::render_html;
pub use snapshot::{BucketReport, Counters, Snapshot, WindowReport};
#[cfg(feature = "report")]
pub use table::render_table;
