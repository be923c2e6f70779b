//! The usage report as one self-contained HTML page.
//!
//! The page follows seed 003's usage page: a card per bucket with its usage,
//! limit, a progress bar coloured by health level, the percentage and the
//! per-minute rate limit; the 24-hour summary of seed 002; a bar chart of the
//! last 30 days whose bars show their date and count on hover. Everything is
//! inline (CSS and SVG, no script, no external asset), so the page can be
//! written to a file, mailed, or served as is. Every text is escaped.

use std::fmt::Write as _;

use super::history::{DailyCount, Summary24h};
use super::snapshot::{BucketReport, Snapshot, WindowReport};
use super::text;

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f6f7f9;color:#1d2330}\
main{max-width:960px;margin:0 auto;padding:24px}\
h1{font-size:1.5rem}h2{font-size:1.1rem;margin:0 0 4px}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:16px}\
.card{background:#fff;border-radius:8px;padding:16px;border-left:6px solid #999;box-shadow:0 1px 3px rgba(0,0,0,.1)}\
.card.health-healthy{border-left-color:#2e8b57}\
.card.health-approaching{border-left-color:#f5a623}\
.card.health-critical{border-left-color:#d93025}\
.scope,.meta{color:#5f6673;font-size:.85rem;margin:2px 0}\
.window{margin-top:12px}.usage{display:flex;justify-content:space-between;font-variant-numeric:tabular-nums}\
.bar{height:10px;background:#e4e7ec;border-radius:5px;overflow:hidden;margin:4px 0}\
.fill{height:100%}\
.fill.health-healthy{background:#2e8b57}\
.fill.health-approaching{background:#f5a623}\
.fill.health-critical{background:#d93025}\
.blocked{color:#d93025;font-weight:600}\
.summary dl{display:grid;grid-template-columns:max-content auto;gap:4px 16px}\
.summary dd{margin:0;font-variant-numeric:tabular-nums}\
section{margin-top:24px}\
.chart svg{width:100%;height:auto;background:#fff;border-radius:8px}\
.chart .hit{fill:transparent}.chart .requests{fill:#3b82f6}.chart .limited{fill:#d93025}\
.chart g:hover .requests{fill:#1d4ed8}\
.range{display:flex;justify-content:space-between;color:#5f6673;font-size:.85rem}";

/// Chart geometry, in SVG user units.
const SLOT: f64 = 20.0;
const BAR: f64 = 16.0;
const HEIGHT: f64 = 150.0;
const TOP: f64 = 10.0;

/// `s` with `&`, `<`, `>`, `"` and `'` replaced by character references, safe
/// in text and in quoted attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn window_html(out: &mut String, w: &WindowReport) {
    let kind = if w.fixed { "fixed" } else { "sliding" };
    let width = text::number(w.percent_used.clamp(0.0, 100.0));
    let _ = write!(
        out,
        "<div class=\"window\"><div class=\"usage\"><span>{used} / {limit} per {window} ({kind})</span>\
<span class=\"percent\">{percent}%</span></div>\
<div class=\"bar\" role=\"progressbar\" aria-valuemin=\"0\" aria-valuemax=\"100\" aria-valuenow=\"{width}\">\
<div class=\"fill {class}\" style=\"width:{width}%\"></div></div>\
<p class=\"meta\">Rate limit {rate}/min &middot; {health}",
        used = w.used,
        limit = w.limit,
        window = text::window_ms(w.window_ms),
        percent = text::number(w.percent_used),
        class = w.health.css_class(),
        rate = text::number(w.per_minute_rate),
        health = w.health,
    );
    if let Some(ms) = w.frees_in_ms {
        let _ = write!(out, " &middot; frees in {}", text::wait(ms));
    }
    if w.waiting > 0 {
        let _ = write!(out, " &middot; {} waiting", w.waiting);
    }
    out.push_str("</p></div>");
}

/// A card for a credit budget: spent against the period's credits.
fn credit_card_html(out: &mut String, c: &super::credit::CreditReport) {
    let class = c.health.css_class();
    let width = c.percent_used.clamp(0.0, 100.0);
    let _ = write!(
        out,
        "<article class=\"card credit {class}\"><h2>{name}</h2><p class=\"scope\">credits</p>\
<div class=\"window\"><div class=\"usage\"><span>{spent} / {limit} this period</span>\
<span class=\"percent\">{percent}%</span></div>\
<div class=\"bar\" role=\"progressbar\" aria-valuemin=\"0\" aria-valuemax=\"100\" aria-valuenow=\"{width}\">\
<div class=\"fill {class}\" style=\"width:{width}%\"></div></div>\
<p class=\"meta\">{remaining} left &middot; {health} &middot; next period in {next}</p></div></article>",
        name = escape(&c.name),
        spent = c.spent,
        limit = c.limit,
        percent = super::text::number(c.percent_used),
        remaining = c.remaining,
        health = c.health,
        next = super::text::wait(c.next_period_in_ms),
    );
}

fn card_html(out: &mut String, b: &BucketReport) {
    let _ = write!(
        out,
        "<article class=\"card {class}\"><h2>{label}</h2><p class=\"scope\">{scope}</p>",
        class = b.health.css_class(),
        label = escape(&b.label),
        scope = escape(&b.scope),
    );
    for w in &b.windows {
        window_html(out, w);
    }
    let _ = write!(
        out,
        "<p class=\"meta\">429 responses: {}</p>",
        b.counters.rate_limited
    );
    if let Some(ms) = b.blocked_for_ms {
        let _ = write!(
            out,
            "<p class=\"blocked\">Blocked for {} after a 429</p>",
            text::wait(ms)
        );
    }
    out.push_str("</article>");
}

fn summary_html(out: &mut String, s: &Summary24h) {
    let peak = s
        .peak_hour
        .as_deref()
        .map_or_else(|| "none".to_string(), escape);
    let _ = write!(
        out,
        "<section class=\"summary\"><h2>Last 24 hours</h2><dl>\
<dt>Total requests</dt><dd>{}</dd>\
<dt>Rate-limited requests</dt><dd>{}</dd>\
<dt>Rate-limited</dt><dd>{}%</dd>\
<dt>Peak hour</dt><dd>{}</dd></dl></section>",
        s.total_requests,
        s.rate_limited_requests,
        text::number(s.rate_limit_percentage),
        peak,
    );
}

fn chart_html(out: &mut String, days: &[DailyCount]) {
    let most = days.iter().map(|d| d.requests).max().unwrap_or(0).max(1) as f64;
    let scale = (HEIGHT - TOP) / most;
    let width = SLOT * days.len().max(1) as f64;
    let _ = write!(
        out,
        "<section class=\"chart\"><h2>Daily usage</h2>\
<svg viewBox=\"0 0 {width} {HEIGHT}\" role=\"img\" aria-label=\"Requests per day\">"
    );
    for (i, day) in days.iter().enumerate() {
        let x = SLOT * i as f64;
        let bar_x = x + (SLOT - BAR) / 2.0;
        let h = day.requests as f64 * scale;
        let limited = day.rate_limited.min(day.requests) as f64 * scale;
        let _ = write!(
            out,
            "<g class=\"day\"><title>{date}: {requests} requests, {limited_n} rate-limited</title>\
<rect class=\"hit\" x=\"{x}\" y=\"0\" width=\"{SLOT}\" height=\"{HEIGHT}\"/>\
<rect class=\"requests\" x=\"{bar_x}\" y=\"{y:.2}\" width=\"{BAR}\" height=\"{h:.2}\"/>\
<rect class=\"limited\" x=\"{bar_x}\" y=\"{y:.2}\" width=\"{BAR}\" height=\"{limited:.2}\"/></g>",
            date = escape(&day.date),
            requests = day.requests,
            limited_n = day.rate_limited,
            y = HEIGHT - h,
        );
    }
    out.push_str("</svg>");
    if let (Some(first), Some(last)) = (days.first(), days.last()) {
        let _ = write!(
            out,
            "<div class=\"range\"><span>{}</span><span>{}</span></div>",
            escape(&first.date),
            escape(&last.date)
        );
    }
    out.push_str("</section>");
}

/// The usage report as one self-contained HTML page: a card per bucket with a
/// progress bar per window (CSS class `health-healthy`, `health-approaching` or
/// `health-critical`), the 24-hour summary, and a bar chart of `daily` whose
/// bars carry their date and counts in an SVG `<title>` (shown on hover).
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, UNIX_EPOCH};
/// use tower_quota::clock::Nanos;
/// use tower_quota::ledger::Bucket;
/// use tower_quota::quota::Quota;
/// use tower_quota::report::{render_html, Counters, History, Snapshot, Thresholds};
///
/// let bucket = Arc::new(Bucket::new("GET.people", Quota::per_minute(100)));
/// let snapshot = Snapshot::of(&[("global", &bucket, Counters::default())], Nanos::ZERO, &Thresholds::default());
/// let history = History::new();
/// let now = UNIX_EPOCH + Duration::from_secs(1_779_199_200);
/// let page = render_html(&snapshot, &history.summary_24h(now), &history.daily(now));
/// assert!(page.starts_with("<!DOCTYPE html>"));
/// assert!(page.contains("class=\"card health-healthy\""));
/// ```
pub fn render_html(snapshot: &Snapshot, summary: &Summary24h, daily: &[DailyCount]) -> String {
    let mut out = String::with_capacity(8192);
    out.push_str(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>API usage</title><style>",
    );
    out.push_str(STYLE);
    out.push_str("</style></head><body><main><h1>API usage</h1><section class=\"cards\">");
    for b in &snapshot.buckets {
        card_html(&mut out, b);
    }
    for c in &snapshot.credits {
        credit_card_html(&mut out, c);
    }
    out.push_str("</section>");
    if let Some(st) = &snapshot.store {
        out.push_str(&format!(
            "<p class=\"store {}\">Shared store ({}): {}; {} decisions, {} errors, {} failovers. \
             Usage above is this process's own.</p>",
            match st.health {
                crate::store::StoreHealth::Connected => "healthy",
                crate::store::StoreHealth::Degraded | crate::store::StoreHealth::FailingOver =>
                    "warning",
                crate::store::StoreHealth::Failing => "critical",
            },
            escape(&st.store),
            st.health,
            st.decisions,
            st.errors,
            st.failovers
        ));
    }
    summary_html(&mut out, summary);
    chart_html(&mut out, daily);
    out.push_str("</main></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_text_and_attributes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
