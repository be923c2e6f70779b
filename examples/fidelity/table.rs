//! The rows as a markdown table.

use std::fmt::Write;
use std::time::Duration;

use super::measure::Row;

/// A markdown table of `rows`, one line per contender and scenario.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | contender | 429s | admitted (2xx) | utilisation | wall | added p50 | added p99 |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        let admitted = match r.co_consumed {
            0 => r.admitted.to_string(),
            co => format!("{} (+{co} co-consumer)", r.admitted),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {admitted} | {:.1} % | {:.1} s | {} | {} |",
            r.scenario,
            r.contender,
            r.rejected,
            100.0 * r.utilisation,
            r.wall.as_secs_f64(),
            millis(r.p50),
            millis(r.p99),
        );
    }
    out
}

fn millis(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}
