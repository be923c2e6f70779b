//! Short human-readable numbers and durations for the renderers.

use std::time::Duration;

/// A window length: `1s`, `1m`, `1h`, `1d`, `90s`, `250ms`.
pub(crate) fn window(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    for (unit, name) in [(86_400, "d"), (3600, "h"), (60, "m")] {
        if secs % unit == 0 {
            return format!("{}{name}", secs / unit);
        }
    }
    format!("{secs}s")
}

/// A window length given in milliseconds.
pub(crate) fn window_ms(ms: u64) -> String {
    window(Duration::from_millis(ms))
}

/// A wait in milliseconds: `250ms`, `12.3s`, `4m05s`, `2h07m`, `3d04h`.
pub(crate) fn wait(ms: u64) -> String {
    let secs = ms / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if secs < 60 {
        format!("{}.{}s", secs, (ms % 1000) / 100)
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else if secs < 86_400 {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    } else {
        format!("{}d{:02}h", secs / 86_400, (secs % 86_400) / 3600)
    }
}

/// A rate or percentage with at most two decimals and no trailing zeros.
pub(crate) fn number(x: f64) -> String {
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(window(Duration::from_secs(60)), "1m");
        assert_eq!(window(Duration::from_secs(3600)), "1h");
        assert_eq!(window(Duration::from_secs(86_400)), "1d");
        assert_eq!(window(Duration::from_secs(90)), "90s");
        assert_eq!(window(Duration::from_secs(1)), "1s");
        assert_eq!(window(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn waits() {
        assert_eq!(wait(250), "250ms");
        assert_eq!(wait(12_345), "12.3s");
        assert_eq!(wait(245_000), "4m05s");
        assert_eq!(wait(7_620_000), "2h07m");
        assert_eq!(wait(273_600_000), "3d04h");
    }

    #[test]
    fn numbers() {
        assert_eq!(number(60.0), "60");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(1.84), "1.84");
        assert_eq!(number(100.0), "100");
        assert_eq!(number(0.0), "0");
    }
}
