//! Rendering a goal's proof for people: plain text and pull-request Markdown.
//!
//! The JSON form is the serialized [`GoalState`] itself.

use std::fmt::Write;

use crate::state::{GoalState, GoalStatus};
use crate::util::short;

fn gate_line(g: &crate::gate::GateResult) -> String {
    format!(
        "{} {} ({}, {} ms, tree {}{})",
        if g.passed { "✓" } else { "✗" },
        g.name,
        g.outcome,
        g.duration_ms,
        short(&g.tree),
        match (g.cached, &g.from_goal) {
            (true, Some(goal)) => format!(", cached from goal {goal}"),
            (true, None) => ", cached".to_string(),
            _ => String::new(),
        }
    )
}

/// `text` indented two spaces, as a Markdown list item's block, with its
/// backticks defused so it cannot close the block.
fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {}", l.replace("```", "`\u{200b}``")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A readable summary for a terminal.
pub fn text(s: &GoalState) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "goal {}: {}", s.goal_id, s.goal);
    let _ = write!(out, "status: {}", s.status);
    if let Some(r) = &s.reason {
        let _ = write!(out, " — {r}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "repository: {} (base {})",
        s.repository.display(),
        short(&s.base_commit)
    );
    let _ = writeln!(out, "slices:");
    for sl in &s.slices {
        let _ = write!(
            out,
            "  {:<16} {:<15} attempts {}",
            sl.id,
            sl.status.to_string(),
            sl.attempts
        );
        if let Some(c) = &sl.commit {
            let _ = write!(
                out,
                "  commit {} ({})",
                short(c),
                crate::util::count(sl.changed_files.len(), "file")
            );
        }
        let _ = writeln!(out);
        if let Some(r) = &sl.reason {
            let _ = writeln!(out, "  {:<16} {r}", "");
        }
        for line in sl.excerpt().into_iter().flat_map(str::lines) {
            let _ = writeln!(out, "  {:<16} │ {line}", "");
        }
        for g in &sl.gates {
            let _ = writeln!(out, "  {:<16} {}", "", gate_line(g));
        }
    }
    let i = &s.integration;
    let _ = writeln!(
        out,
        "integration: {} at {} (tree {}), merged: {}",
        i.branch,
        short(&i.commit),
        short(&i.tree),
        if i.order.is_empty() {
            "nothing".to_string()
        } else {
            i.order.join(" → ")
        }
    );
    for g in &i.gates {
        let _ = writeln!(out, "  {}", gate_line(g));
    }
    if let Some(d) = &s.delivery {
        let _ = writeln!(out, "delivery to {}: {}", d.branch, d.reason);
    }
    out
}

/// Markdown ready to paste as a pull-request body.
pub fn markdown(s: &GoalState) -> String {
    let mut out = String::new();
    let badge = match s.status {
        GoalStatus::Ready => "✅ ready",
        GoalStatus::Running => "⏳ running",
        _ => "❌ not ready",
    };
    let _ = writeln!(out, "## {}\n", s.goal);
    let _ = writeln!(out, "**Status:** {badge} (`{}`)", s.status);
    if let Some(r) = &s.reason {
        let _ = writeln!(out, "\n> {r}");
    }
    let _ = writeln!(
        out,
        "\nGoal `{}` · base `{}` · integration branch `{}` at `{}` (tree `{}`)\n",
        s.goal_id,
        short(&s.base_commit),
        s.integration.branch,
        short(&s.integration.commit),
        short(&s.integration.tree)
    );
    let _ = writeln!(out, "### Slices\n");
    let _ = writeln!(
        out,
        "| slice | status | attempts | commit | files | gates |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for sl in &s.slices {
        let gates = sl
            .gates
            .iter()
            .map(|g| {
                let cached = if g.cached { " (cached)" } else { "" };
                format!("{} {}{cached}", if g.passed { "✓" } else { "✗" }, g.name)
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            sl.id,
            sl.status,
            sl.attempts,
            sl.commit
                .as_deref()
                .map(|c| format!("`{}`", short(c)))
                .unwrap_or_default(),
            sl.changed_files.len(),
            gates
        );
    }
    let failures: Vec<_> = s
        .slices
        .iter()
        .filter_map(|sl| sl.reason.as_ref().map(|r| (sl, r)))
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\n### Problems\n");
        for (sl, r) in failures {
            let _ = writeln!(out, "- `{}`: {r}", sl.id);
            if let Some(excerpt) = sl.excerpt() {
                let _ = writeln!(out, "\n  ```\n{}\n  ```", indent(excerpt.trim_end()));
            }
        }
    }
    let retried: Vec<_> = s
        .slices
        .iter()
        .filter(|sl| sl.attempt_history.len() > 1)
        .collect();
    if !retried.is_empty() {
        let _ = writeln!(out, "\n### Attempts\n");
        for sl in retried {
            let _ = writeln!(out, "- `{}`:", sl.id);
            for a in &sl.attempt_history {
                let why = a
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "  {}. {}{why}", a.attempt, a.status);
            }
        }
    }
    let _ = writeln!(out, "\n### Integration gates\n");
    if s.integration.gates.is_empty() {
        let _ = writeln!(out, "_none ran_");
    }
    for g in &s.integration.gates {
        let _ = writeln!(out, "- {}", gate_line(g));
    }
    let _ = writeln!(
        out,
        "\n<sub>Proof: `omk goal proof {} --json` · check it: `omk goal replay {} --verify`</sub>",
        s.goal_id, s.goal_id
    );
    out
}
