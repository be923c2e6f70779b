use std::sync::Arc;
use std::time::Duration;
use tower_quota::clock::Nanos;
use tower_quota::ledger::{acquire, Bucket, MaxWait};
use tower_quota::quota::{Limits, Quota};
fn main() {
    let b = Arc::new(Bucket::new(
        "s",
        Limits::new([
            Quota::per_minute(200),
            Quota::per_hour(600),
            Quota::per_day(6000),
        ]),
    ));
    let mut now = Nanos::ZERO;
    let mut n = 0u64;
    for _ in 0..20_000_000u64 {
        now = now + Duration::from_millis(14_400);
        if acquire(&[&b], 1, now, MaxWait::Never).is_ok() {
            n += 1;
        }
    }
    println!("{n}");
}
