//! `goal report --html`: one self-contained HTML file with the goal's
//! timeline as SVG and the proof's table.
//!
//! Nothing is loaded from anywhere: the styles are inline, there is no
//! script, and a Content-Security-Policy says so to the browser, so text an
//! agent wrote (a title, a failure's reason) can only ever show as text.
//! Each bar names itself in a hover title; a legend names the colours.

use std::fmt::Write;

use super::timeline::{Phase, Row, RowKind, Timeline};
use crate::state::{GoalState, GoalStatus, SliceStatus};
use crate::words::{count, short};

/// Width of the row names' column, in pixels.
const LABEL_W: f64 = 240.0;
/// Width of the time axis, in pixels.
const CHART_W: f64 = 1000.0;
/// Height of one row.
const ROW_H: f64 = 20.0;
/// Height of a bar within its row.
const BAR_H: f64 = 14.0;
/// Height of the time axis above the rows.
const AXIS_H: f64 = 24.0;
/// The narrowest a bar is drawn, so instants still show.
const MIN_BAR_W: f64 = 1.5;
/// The narrowest a failure is drawn: it must be seen at a glance.
const MIN_FAILED_W: f64 = 4.0;
/// A row's name is cut to this many characters (its hover title has it whole).
const NAME_CHARS: usize = 30;

/// The report of the goal `state` whose events make `timeline`.
pub fn html(state: &GoalState, timeline: &Timeline) -> String {
    let mut out = String::with_capacity(4096 + timeline.rows.len() * 1024);
    let title = format!(
        "omk goal {}: {}",
        state.goal_id,
        state.goal.lines().next().unwrap_or_default()
    );
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{}</title>
<style>{STYLE}</style>
</head>
<body>
"#,
        esc(&title)
    );
    header(&mut out, state, timeline);
    legend(&mut out);
    svg(&mut out, timeline);
    table(&mut out, state);
    out.push_str("</body>\n</html>\n");
    out
}

const STYLE: &str = "
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px}
.meta{color:#59636e;margin:0 0 12px}
.status-ready{color:#1a7f37}.status-bad{color:#cf222e}.status-running{color:#9a6700}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin:8px 0 12px;padding:0;list-style:none}
.legend li{display:flex;align-items:center;gap:6px}
.legend i{display:inline-block;width:14px;height:10px;border-radius:2px}
svg{display:block;font-size:12px}
svg text{fill:#1f2328}
svg .axis text{fill:#59636e}
svg .grid{stroke:#eaeef2;stroke-width:1}
svg .stripe{fill:#f6f8fa}
svg rect.bar:hover{stroke:#1f2328;stroke-width:1}
svg .mark{stroke:#1f2328;stroke-width:2}
svg .ejected{stroke:#cf222e;stroke-width:2;stroke-dasharray:3 2}
.p-waiting{fill:#d1d9e0;background:#d1d9e0}
.p-agent{fill:#218bff;background:#218bff}
.p-commit{fill:#8250df;background:#8250df}
.p-gate-queued{fill:#f5d77a;background:#f5d77a}
.p-gate{fill:#2da44e;background:#2da44e}
.p-merge{fill:#1b7c83;background:#1b7c83}
.p-setup{fill:#8a6d3b;background:#8a6d3b}
.failed{fill:#cf222e;background:#cf222e}
.mark-key{background:#1f2328;width:3px!important}
svg text.s-merged{fill:#1a7f37}svg text.s-bad{fill:#cf222e}svg text.s-other{fill:#59636e}
table{border-collapse:collapse;margin-top:20px}
th,td{border:1px solid #c4ccd5;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}
td.reason{max-width:520px;color:#59636e}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
";

/// The goal, its status, and where its result is.
fn header(out: &mut String, s: &GoalState, t: &Timeline) {
    let class = match s.status {
        GoalStatus::Ready => "status-ready",
        GoalStatus::Running => "status-running",
        _ => "status-bad",
    };
    let _ = writeln!(
        out,
        "<h1>{}</h1>",
        esc(s.goal.lines().next().unwrap_or_default())
    );
    let _ = write!(
        out,
        "<p class=\"meta\">goal <code>{}</code> · <b class=\"{class}\">{}</b>",
        esc(&s.goal_id),
        s.status
    );
    if let Some(r) = &s.reason {
        let _ = write!(out, " — {}", esc(r));
    }
    let merged = s
        .slices
        .iter()
        .filter(|sl| sl.status == SliceStatus::Merged)
        .count();
    let _ = write!(
        out,
        "<br>{} ({merged} merged) · {} · base <code>{}</code> · <code>{}</code> at <code>{}</code> (tree <code>{}</code>)",
        count(s.slices.len(), "slice"),
        seconds(t.span_ms),
        short(&s.base_commit),
        esc(&s.integration.branch),
        short(&s.integration.commit),
        short(&s.integration.tree),
    );
    if let Some(usage) = s.usage.summary() {
        let _ = write!(out, " · {usage}");
    }
    out.push_str("</p>\n");
}

/// What each colour means.
fn legend(out: &mut String) {
    out.push_str("<ul class=\"legend\">");
    for p in Phase::ALL {
        let _ = write!(
            out,
            "<li><i class=\"{}\"></i>{}</li>",
            phase_class(p),
            p.name()
        );
    }
    out.push_str("<li><i class=\"failed\"></i>failed</li>");
    out.push_str("<li><i class=\"mark-key\"></i>new attempt, branch advanced</li>");
    out.push_str("</ul>\n");
}

fn phase_class(p: Phase) -> &'static str {
    match p {
        Phase::Waiting => "p-waiting",
        Phase::Agent => "p-agent",
        Phase::Commit => "p-commit",
        Phase::GateQueued => "p-gate-queued",
        Phase::Gate => "p-gate",
        Phase::Merge => "p-merge",
        Phase::Setup => "p-setup",
    }
}

/// The timeline: an axis, then one row per slice (and the base check and
/// the integration), each bar a `rect` with its own hover title.
fn svg(out: &mut String, t: &Timeline) {
    let span = t.span_ms.max(1) as f64;
    let x = |ms: u64| LABEL_W + ms as f64 * CHART_W / span;
    let width = LABEL_W + CHART_W + 16.0;
    let height = AXIS_H + ROW_H * t.rows.len() as f64 + 4.0;
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"timeline of {} rows\">",
        t.rows.len()
    );
    for (i, _) in t.rows.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
        let y = AXIS_H + ROW_H * i as f64;
        let _ = writeln!(
            out,
            "<rect class=\"stripe\" x=\"0\" y=\"{y}\" width=\"{width}\" height=\"{ROW_H}\"/>"
        );
    }
    out.push_str("<g class=\"axis\">");
    let step = tick_step(t.span_ms);
    let mut tick = 0;
    while tick <= t.span_ms {
        let tx = x(tick);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{height}\"/><text x=\"{tx:.1}\" y=\"14\" text-anchor=\"middle\">{}</text>",
            AXIS_H - 4.0,
            seconds(tick)
        );
        tick += step;
    }
    out.push_str("</g>\n");
    for (i, row) in t.rows.iter().enumerate() {
        let top = AXIS_H + ROW_H * i as f64;
        let _ = write!(out, "<g class=\"row\" data-row=\"{}\">", esc(row.name()));
        row_name(out, row, top);
        let y = top + (ROW_H - BAR_H) / 2.0;
        // Failures last, on top, and never thinner than a glance needs:
        // a conflict found before any gate lasts no time at all.
        let (failed, rest): (Vec<_>, Vec<_>) = row.bars.iter().partition(|b| b.failed);
        for bar in rest.into_iter().chain(failed) {
            let bx = x(bar.start_ms);
            let min = if bar.failed { MIN_FAILED_W } else { MIN_BAR_W };
            let w = (x(bar.end_ms) - bx).max(min);
            let class = if bar.failed {
                "failed"
            } else {
                phase_class(bar.phase)
            };
            let attempt = match bar.attempt {
                0 => String::new(),
                n => format!(" · attempt {n}"),
            };
            let _ = write!(
                out,
                "<rect class=\"bar {class}\" x=\"{bx:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{BAR_H}\"><title>{}{attempt} · {}: {} ({} → {})</title></rect>",
                esc(row.name()),
                esc(&bar.label),
                seconds(bar.end_ms - bar.start_ms),
                seconds(bar.start_ms),
                seconds(bar.end_ms),
            );
        }
        for mark in &row.marks {
            let mx = x(mark.at_ms);
            let class = if mark.label.starts_with("ejected") {
                "ejected"
            } else {
                "mark"
            };
            let _ = write!(
                out,
                "<line class=\"{class}\" x1=\"{mx:.1}\" y1=\"{top}\" x2=\"{mx:.1}\" y2=\"{}\"><title>{} · {} at {}</title></line>",
                top + ROW_H,
                esc(row.name()),
                esc(&mark.label),
                seconds(mark.at_ms)
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
}

/// A row's name, coloured by how its slice stands.
fn row_name(out: &mut String, row: &Row, top: f64) {
    let class = match (&row.kind, row.status) {
        (RowKind::Slice(_), Some(SliceStatus::Merged)) => "s-merged",
        (RowKind::Slice(_), Some(s)) if s.is_final() => "s-bad",
        _ => "s-other",
    };
    let name = row.name();
    let shown: String = if name.chars().count() > NAME_CHARS {
        name.chars()
            .take(NAME_CHARS - 1)
            .chain(std::iter::once('…'))
            .collect()
    } else {
        name.to_string()
    };
    let status = row.status.map(|s| format!(": {s}")).unwrap_or_default();
    let _ = write!(
        out,
        "<text class=\"{class}\" x=\"6\" y=\"{}\"><title>{}{}</title>{}</text>",
        top + ROW_H / 2.0 + 4.0,
        esc(name),
        status,
        esc(&shown)
    );
}

/// The proof's table: a line per slice, then the integration.
fn table(out: &mut String, s: &GoalState) {
    out.push_str("<table>\n<thead><tr><th>slice</th><th>title</th><th>status</th><th>attempts</th><th>changes</th><th>gates</th><th>why not merged</th></tr></thead>\n<tbody>\n");
    for sl in &s.slices {
        let gates = sl
            .gates
            .iter()
            .map(|g| {
                let mark = if g.passed { "✓" } else { "✗" };
                let cached = if g.cached { " (cached)" } else { "" };
                format!("{mark} {}{cached}", esc(&g.name))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{gates}</td><td class=\"reason\">{}</td></tr>",
            esc(&sl.id),
            esc(&sl.title),
            sl.status,
            sl.attempts,
            count(sl.changed_files.len(), "file"),
            esc(sl.reason.as_deref().unwrap_or_default()),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    let i = &s.integration;
    let order = if i.order.is_empty() {
        "nothing".to_string()
    } else {
        i.order
            .iter()
            .map(|o| format!("<code>{}</code>", esc(o)))
            .collect::<Vec<_>>()
            .join(" → ")
    };
    let gates = i
        .gates
        .iter()
        .map(|g| {
            format!(
                "{} {} on <code>{}</code>",
                if g.passed { "✓" } else { "✗" },
                esc(&g.name),
                short(&g.tree)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "<p>Integration: merged in this order: {order}; tree <code>{}</code>{}.</p>",
        esc(&i.tree),
        if gates.is_empty() {
            String::new()
        } else {
            format!("; {gates}")
        }
    );
}

/// A time since the goal's start, or a span, as omk writes durations.
fn seconds(ms: u64) -> String {
    crate::words::human_duration(std::time::Duration::from_millis(ms))
}

/// The axis step that puts at most ten ticks on a span of `span_ms`.
fn tick_step(span_ms: u64) -> u64 {
    const STEPS: [u64; 16] = [
        100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000,
        600_000, 900_000, 1_800_000, 3_600_000,
    ];
    STEPS
        .into_iter()
        .find(|s| span_ms / s <= 10)
        .unwrap_or_else(|| span_ms.div_ceil(10).max(1))
}

/// `text` safe as HTML text or an attribute's value.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_text_is_escaped_and_ticks_stay_few() {
        assert_eq!(
            esc(r#"<script>"x" & 'y'</script>"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
        for span in [0, 1, 999, 12_345, 600_000, 7_200_000, 360_000_000] {
            let step = tick_step(span);
            assert!(step > 0 && span / step <= 10, "{span} ms by {step}");
        }
    }
}
