//! The accounting engine: exact multi-window quotas on a lock-free hot path.
//!
//! The engine knows nothing of HTTP. It keeps [`Bucket`]s (one per route, account
//! or API key), each limited by several windows at once, and decides for a
//! request charged to a set of buckets when it may leave: now, at a reserved
//! departure in the future, or not at all (with a typed [`Refusal`]).
//!
//! Guarantees, each checked by the property tests in `tests/ledger_model.rs`
//! against a brute-force model:
//! - **exact windows**: no sliding window of any bucket ever holds more than its
//!   limit inside any half-open interval of its length (fixed windows: inside any
//!   aligned window);
//! - **no needless waiting**: a request leaves at the earliest instant at which
//!   every window of every bucket has room, given first-come-first-served order in
//!   each bucket;
//! - **all or nothing**: a request is charged to all its buckets or none;
//! - **first come, first served**: departures in a bucket follow the order of the
//!   decisions; a reservation, once made, is never pushed back;
//! - **cancellation gives back**: dropping a [`Reservation`] returns its room.
//!
//! Decisions take no lock: a bucket's state is one 128-bit head word updated by
//! compare-and-swap, plus rings of departure times that readers never wait on.

mod bucket;
mod decision;
mod head;
mod held;
mod in_flight;
mod keyed;
mod learned;
mod pacer;
mod refusal;
mod reservation;
#[cfg(test)]
mod tests_fixed;
#[cfg(test)]
mod tests_in_flight;
#[cfg(test)]
mod tests_latency;
mod widening;
mod window;
mod window_of_length;
mod windows;

pub use bucket::{Bucket, BucketState, WindowState};
pub use decision::{acquire, acquire_from, reserve_from, Grant, MaxWait, MAX_BUCKETS};
pub use in_flight::InFlight;
pub use keyed::KeyedBuckets;
pub use learned::WindowCount;
pub use refusal::Refusal;
pub(crate) use reservation::DepartureWatch;
pub use reservation::Reservation;
