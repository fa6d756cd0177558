//! The rollout report as a self-contained HTML page with inline SVG charts (no
//! scripts, no external files), so it opens anywhere and can be attached to a CI run.

use super::decision::Decision;
use super::metrics::{StepMetrics, quantile};
use std::fmt::Write;

const STREAM: &str = "#2563eb";
const REGULAR: &str = "#f59e0b";
const ERROR: &str = "#dc2626";
const FALLBACK: &str = "#7c3aed";

/// Renders the whole report.
pub fn html(title: &str, steps: &[(String, StepMetrics, Decision)]) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
<style>body{{font:15px/1.45 system-ui,sans-serif;max-width:1000px;margin:24px auto;padding:0 16px;color:#111}}\
table{{border-collapse:collapse;margin:12px 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
th{{background:#f3f4f6}}td.l,th.l{{text-align:left}}.rollback{{color:{ERROR};font-weight:700}}\
.proceed{{color:#15803d;font-weight:700}}.warn{{color:#b45309;font-weight:700}}svg{{display:block;margin:8px 0 24px}}</style>\
</head><body><h1>{t}</h1>",
        t = escape(title)
    );
    page.push_str("<h2>Steps and verdicts</h2><table><tr><th class=\"l\">step</th><th>sessions</th><th>adoption</th><th>streams</th><th>error rate</th><th>fallback rate</th><th>visible errors</th><th>TTFT p50 stream / regular</th><th>TTFT p99 stream / regular</th><th class=\"l\">verdict</th></tr>");
    for (label, m, d) in steps {
        let class = match d.verdict {
            super::decision::Verdict::Proceed => "proceed",
            super::decision::Verdict::RollBack => "rollback",
            _ => "warn",
        };
        let _ = write!(
            page,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{:.1} %</td><td>{}</td><td>{:.2} %</td><td>{:.2} %</td><td>{}</td><td>{} / {}</td><td>{} / {}</td><td class=\"l {class}\">{}{}</td></tr>",
            escape(label),
            m.sessions,
            m.adoption() * 100.0,
            m.streaming_started,
            m.error_rate() * 100.0,
            m.fallback_rate() * 100.0,
            m.visible_errors,
            ms(quantile(&m.ttft_stream_ms, 0.5)),
            ms(quantile(&m.ttft_regular_ms, 0.5)),
            ms(quantile(&m.ttft_stream_ms, 0.99)),
            ms(quantile(&m.ttft_regular_ms, 0.99)),
            d.verdict,
            if d.reasons.is_empty() {
                String::new()
            } else {
                format!(": {}", escape(&d.reasons.join("; ")))
            }
        );
    }
    page.push_str("</table>");
    page.push_str("<h2>Time to first text, streaming vs regular</h2><p>Percentiles of virtual milliseconds from send to the first text the user sees: the first streamed token, or the whole regular answer.</p>");
    page.push_str(&ttft_chart(steps));
    page.push_str("<h2>Error and fallback rates per step</h2><p>Streaming failures and fallbacks per stream started; the dashed line is the document's 1 % rollback threshold.</p>");
    page.push_str(&rate_chart(steps));
    if let Some((label, last, _)) = steps
        .iter()
        .rev()
        .find(|(_, m, _)| !m.ttft_stream_ms.is_empty() || !m.ttft_regular_ms.is_empty())
    {
        let _ = write!(
            page,
            "<h2>Distribution of time to first text: {}</h2>",
            escape(label)
        );
        page.push_str(&histogram(last));
    }
    page.push_str("</body></html>\n");
    page
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v} ms"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 900.0;
const H: f64 = 260.0;
const LEFT: f64 = 60.0;
const BOTTOM: f64 = 30.0;

fn svg_open(out: &mut String, label: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{}\" role=\"img\" aria-label=\"{}\" font-size=\"12\">",
        H + 20.0,
        escape(label)
    );
}

/// Y axis with `ticks` gridlines up to `max`, labelled by `fmt`.
fn axis(out: &mut String, max: f64, fmt: impl Fn(f64) -> String) {
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = H - BOTTOM - (H - BOTTOM - 10.0) * f64::from(i) / 4.0;
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e5e7eb\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 4.0,
            fmt(v)
        );
    }
}

fn bar(out: &mut String, x: f64, w: f64, v: f64, max: f64, color: &str, title: &str) {
    let h = if max > 0.0 {
        (H - BOTTOM - 10.0) * v / max
    } else {
        0.0
    };
    let _ = write!(
        out,
        "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{color}\"><title>{}</title></rect>",
        H - BOTTOM - h,
        escape(title)
    );
}

fn legend(out: &mut String, items: &[(&str, &str)]) {
    for (i, (name, color)) in items.iter().enumerate() {
        let x = LEFT + 10.0 + 160.0 * i as f64;
        let _ = write!(
            out,
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{name}</text>",
            H + 6.0,
            x + 16.0,
            H + 16.0
        );
    }
}

fn ttft_chart(steps: &[(String, StepMetrics, Decision)]) -> String {
    let mut out = String::new();
    svg_open(&mut out, "time to first text per step");
    let values: Vec<[Option<u64>; 4]> = steps
        .iter()
        .map(|(_, m, _)| {
            [
                quantile(&m.ttft_stream_ms, 0.5),
                quantile(&m.ttft_stream_ms, 0.95),
                quantile(&m.ttft_regular_ms, 0.5),
                quantile(&m.ttft_regular_ms, 0.95),
            ]
        })
        .collect();
    let max = values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    axis(&mut out, max, |v| format!("{:.1} s", v / 1000.0));
    let group = (W - LEFT) / steps.len().max(1) as f64;
    let colors = [STREAM, "#93c5fd", REGULAR, "#fcd34d"];
    let names = ["stream p50", "stream p95", "regular p50", "regular p95"];
    for (i, ((label, m, _), vals)) in steps.iter().zip(&values).enumerate() {
        let x0 = LEFT + group * i as f64 + group * 0.1;
        let w = group * 0.8 / 4.0;
        for (j, v) in vals.iter().enumerate() {
            if let Some(v) = v {
                bar(
                    &mut out,
                    x0 + w * j as f64,
                    w - 2.0,
                    *v as f64,
                    max,
                    colors[j],
                    &format!("{} at {:.0} %: {v} ms", names[j], m.percentage),
                );
            }
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x0 + group * 0.4,
            H - BOTTOM + 16.0,
            escape(label)
        );
    }
    legend(
        &mut out,
        &[
            (names[0], colors[0]),
            (names[1], colors[1]),
            (names[2], colors[2]),
            (names[3], colors[3]),
        ],
    );
    out.push_str("</svg>");
    out
}

fn rate_chart(steps: &[(String, StepMetrics, Decision)]) -> String {
    let mut out = String::new();
    svg_open(&mut out, "error and fallback rates per step");
    let max = steps
        .iter()
        .map(|(_, m, _)| m.error_rate().max(m.fallback_rate()))
        .fold(0.02, f64::max)
        * 1.1;
    axis(&mut out, max, |v| format!("{:.1} %", v * 100.0));
    let threshold_y = H - BOTTOM - (H - BOTTOM - 10.0) * 0.01 / max;
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" x2=\"{W}\" y1=\"{threshold_y:.1}\" y2=\"{threshold_y:.1}\" stroke=\"{ERROR}\" stroke-dasharray=\"6 4\"/>"
    );
    let group = (W - LEFT) / steps.len().max(1) as f64;
    for (i, (label, m, _)) in steps.iter().enumerate() {
        let x0 = LEFT + group * i as f64 + group * 0.2;
        let w = group * 0.6 / 2.0;
        bar(
            &mut out,
            x0,
            w - 2.0,
            m.error_rate(),
            max,
            ERROR,
            &format!(
                "error rate at {:.0} %: {:.2} %",
                m.percentage,
                m.error_rate() * 100.0
            ),
        );
        bar(
            &mut out,
            x0 + w,
            w - 2.0,
            m.fallback_rate(),
            max,
            FALLBACK,
            &format!(
                "fallback rate at {:.0} %: {:.2} %",
                m.percentage,
                m.fallback_rate() * 100.0
            ),
        );
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x0 + w,
            H - BOTTOM + 16.0,
            escape(label)
        );
    }
    legend(
        &mut out,
        &[("error rate", ERROR), ("fallback rate", FALLBACK)],
    );
    out.push_str("</svg>");
    out
}

fn histogram(m: &StepMetrics) -> String {
    let mut out = String::new();
    svg_open(&mut out, "distribution of time to first text");
    let top = m
        .ttft_stream_ms
        .iter()
        .chain(&m.ttft_regular_ms)
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    const BINS: usize = 30;
    let bin_of = |v: u64| ((v as f64 / top * BINS as f64) as usize).min(BINS - 1);
    let mut stream = [0usize; BINS];
    let mut regular = [0usize; BINS];
    m.ttft_stream_ms
        .iter()
        .for_each(|v| stream[bin_of(*v)] += 1);
    m.ttft_regular_ms
        .iter()
        .for_each(|v| regular[bin_of(*v)] += 1);
    let max = stream
        .iter()
        .chain(&regular)
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    axis(&mut out, max, |v| format!("{v:.0}"));
    let w = (W - LEFT) / BINS as f64;
    for b in 0..BINS {
        let x = LEFT + w * b as f64;
        let range = format!(
            "{:.0}–{:.0} ms",
            top * b as f64 / BINS as f64,
            top * (b + 1) as f64 / BINS as f64
        );
        bar(
            &mut out,
            x + 1.0,
            w / 2.0 - 1.0,
            stream[b] as f64,
            max,
            STREAM,
            &format!("stream {range}: {}", stream[b]),
        );
        bar(
            &mut out,
            x + w / 2.0,
            w / 2.0 - 1.0,
            regular[b] as f64,
            max,
            REGULAR,
            &format!("regular {range}: {}", regular[b]),
        );
    }
    for i in 0..=5 {
        let x = LEFT + (W - LEFT) * f64::from(i) / 5.0;
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:.1} s</text>",
            H - BOTTOM + 16.0,
            top * f64::from(i) / 5.0 / 1000.0
        );
    }
    legend(&mut out, &[("streaming", STREAM), ("regular", REGULAR)]);
    out.push_str("</svg>");
    out
}
