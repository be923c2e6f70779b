//! The snapshot as a plain terminal table.

use std::fmt::Write as _;

use super::snapshot::Snapshot;
use super::text;

/// The table's columns: heading, and whether values are right-aligned.
const COLUMNS: [(&str, bool); 9] = [
    ("BUCKET", false),
    ("WINDOW", false),
    ("USED/LIMIT", true),
    ("%", true),
    ("HEALTH", false),
    ("PER MIN", true),
    ("FREES IN", true),
    ("WAITING", true),
    ("429S", true),
];

/// `s` with control characters (terminal escape sequences in a label) made
/// visible instead of interpreted.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The snapshot as an aligned text table, one row per window, followed by a
/// line per blocked bucket.
///
/// A bucket's label and 429 count appear on its first window's row only.
///
/// ```
/// use std::sync::Arc;
/// use tower_quota::clock::Nanos;
/// use tower_quota::ledger::Bucket;
/// use tower_quota::quota::Quota;
/// use tower_quota::report::{render_table, Counters, Snapshot, Thresholds};
///
/// let bucket = Arc::new(Bucket::new("GET.people", Quota::per_minute(100)));
/// let snapshot = Snapshot::of(&[("global", &bucket, Counters::default())], Nanos::ZERO, &Thresholds::default());
/// let table = render_table(&snapshot);
/// assert!(table.starts_with("BUCKET"));
/// let row = table.lines().nth(1).unwrap_or_default();
/// assert!(row.starts_with("GET.people  1m"));
/// assert!(row.contains(" 0/100 "));
/// ```
pub fn render_table(snapshot: &Snapshot) -> String {
    let mut rows: Vec<[String; 9]> = Vec::new();
    for bucket in &snapshot.buckets {
        for (i, w) in bucket.windows.iter().enumerate() {
            let first = i == 0;
            let window = if w.fixed {
                format!("{} fixed", text::window_ms(w.window_ms))
            } else {
                text::window_ms(w.window_ms)
            };
            rows.push([
                if first {
                    printable(&bucket.label)
                } else {
                    String::new()
                },
                window,
                format!("{}/{}", w.used, w.limit),
                text::number(w.percent_used),
                w.health.to_string(),
                text::number(w.per_minute_rate),
                w.frees_in_ms.map_or_else(|| "-".to_string(), text::wait),
                w.waiting.to_string(),
                if first {
                    bucket.counters.rate_limited.to_string()
                } else {
                    String::new()
                },
            ]);
        }
    }
    let mut widths = COLUMNS.map(|(heading, _)| heading.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let headings = COLUMNS.map(|(heading, _)| heading.to_string());
    for row in std::iter::once(&headings).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let (_, right) = COLUMNS[i];
            let pad = widths[i] - cell.chars().count();
            if i > 0 {
                line.push_str("  ");
            }
            if right {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if let Some(st) = &snapshot.store {
        let _ = writeln!(
            out,
            "shared store ({}): {}; {} decisions, {} errors, {} failovers; usage above is this process's",
            printable(&st.store),
            st.health,
            st.decisions,
            st.errors,
            st.failovers
        );
    }
    for c in &snapshot.credits {
        let _ = writeln!(
            out,
            "credits {}: {}/{} ({}%, {}), next period in {}",
            printable(&c.name),
            c.spent,
            c.limit,
            text::number(c.percent_used),
            c.health,
            text::wait(c.next_period_in_ms)
        );
    }
    for bucket in &snapshot.buckets {
        if let Some(ms) = bucket.blocked_for_ms {
            let _ = writeln!(
                out,
                "{}: blocked for {} (server said 429)",
                printable(&bucket.label),
                text::wait(ms)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(printable("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(printable("plain é"), "plain é");
    }
}
