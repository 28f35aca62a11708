//! Rendering a goal's proof for people: plain text and pull-request Markdown.
//!
//! The JSON form is the serialized [`GoalState`] itself.

use std::fmt::Write;

use crate::git::Repo;
use crate::state::{GoalState, GoalStatus};
use crate::words::{count, short};

/// Writes the goal's proof file: its state, scrubbed, replacing the last
/// atomically.
pub fn write(goal: &crate::store::GoalDir, state: &GoalState) -> crate::Result<()> {
    let encode = |e: serde_json::Error| crate::Error::json("encoding proof", e);
    let mut proof = serde_json::to_value(state).map_err(encode)?;
    crate::redact::redact_json(&mut proof);
    let proof = serde_json::to_vec_pretty(&proof).map_err(encode)?;
    crate::files::write_atomic(&goal.proof(), &proof)
}

fn gate_line(g: &crate::gate::GateResult) -> String {
    crate::shown::visible(&gate_text(g)).into_owned()
}

fn gate_text(g: &crate::gate::GateResult) -> String {
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

/// What a delivery did, in a line: `delivered (pr): …` or `not delivered (push): …`.
pub fn delivery_line(d: &crate::state::Delivery) -> String {
    let mut line = match d.delivered {
        true => format!("delivered ({}): {}", d.to, d.reason),
        false => format!("not delivered ({}) to {}: {}", d.to, d.branch, d.reason),
    };
    if let Some(proof) = &d.proof_ref {
        line += &format!("\nproof pushed as {proof}");
    }
    if let Some(squash) = &d.squash_commit {
        line += &format!("\nsquashed into {}", short(squash));
    }
    line
}

/// A readable summary for a terminal.
pub fn text(s: &GoalState) -> String {
    let mut out = String::new();
    // What agents, gates and file names wrote is shown, never obeyed.
    let shown = |t: &str| crate::shown::visible(t).into_owned();
    let _ = writeln!(out, "goal {}: {}", s.goal_id, shown(&s.goal));
    let _ = write!(out, "status: {}", s.status);
    if let Some(r) = &s.reason {
        let _ = write!(out, " — {}", shown(r));
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
            standing(s, sl),
            sl.attempts
        );
        if let Some(c) = &sl.commit {
            let _ = write!(
                out,
                "  commit {} ({})",
                short(c),
                count(sl.changed_files.len(), "file")
            );
        }
        let _ = writeln!(out);
        if let Some(r) = &sl.reason {
            let _ = writeln!(out, "  {:<16} {}", "", shown(r));
        }
        for line in sl.excerpt().into_iter().flat_map(str::lines) {
            let _ = writeln!(out, "  {:<16} │ {}", "", shown(line));
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
        let _ = writeln!(out, "{}", delivery_line(d));
    }
    out
}

/// A slice's status as people read it: one merged into the candidate but
/// not (yet) on the integration branch says so, rather than `merged`.
fn standing(s: &GoalState, sl: &crate::state::SliceState) -> String {
    match sl.status {
        crate::state::SliceStatus::Merged if !s.integrated(&sl.id) => "in candidate".into(),
        status => status.to_string(),
    }
}

/// How many changed files a slice lists before they are folded away.
const FILES_SHOWN: usize = 10;

/// Markdown ready to paste as a pull-request body: it names no path of the
/// machine that ran the goal. With `pushed_to`, the remote its branch and
/// proof were pushed to, its commands work on any clone that fetches them
/// from there; without, it says how to check the goal where it ran. With
/// `repo`, each slice's diffstat is shown.
pub fn markdown(s: &GoalState, repo: Option<&Repo>, pushed_to: Option<&str>) -> String {
    let mut out = String::new();
    let portable = |text: &str| portable(text, s);
    let badge = match s.status {
        GoalStatus::Ready => "✅ ready",
        GoalStatus::Running => "⏳ running",
        _ => "❌ not ready",
    };
    let _ = writeln!(
        out,
        "## {}\n",
        cell(s.goal.lines().next().unwrap_or_default())
    );
    let _ = writeln!(out, "**Status:** {badge} (`{}`)", s.status);
    if let Some(r) = &s.reason {
        let _ = writeln!(out, "\n> {}", crate::shown::markdown(&portable(r)));
    }
    let base = match &s.base_ref {
        Some(b) => format!(
            "`{}` at `{}`",
            b.trim_start_matches("refs/heads/"),
            short(&s.base_commit)
        ),
        None => format!("`{}`", short(&s.base_commit)),
    };
    let _ = writeln!(
        out,
        "\nGoal `{}` · {} · base {base} · integration branch `{}` at `{}` (tree `{}`)\n",
        s.goal_id,
        count(s.slices.len(), "slice"),
        s.integration.branch,
        short(&s.integration.commit),
        short(&s.integration.tree)
    );
    slices(&mut out, s, repo);
    problems(&mut out, s, &portable);
    reviews(&mut out, s, &portable);
    network(&mut out, s);
    attempts(&mut out, s, &portable);
    integration(&mut out, s);
    verify(&mut out, s, pushed_to);
    out
}

/// The slices' table, and each one's task and changed files.
fn slices(out: &mut String, s: &GoalState, repo: Option<&Repo>) {
    let _ = writeln!(out, "### Slices\n");
    let _ = writeln!(
        out,
        "| slice | title | status | attempts | changes | gates |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for sl in &s.slices {
        let gates = sl
            .gates
            .iter()
            .map(gate_mark)
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            sl.id,
            cell(&sl.title),
            standing(s, sl),
            sl.attempts,
            changes(sl, repo),
            gates
        );
    }
    let _ = writeln!(out);
    let plan = s.settings.plan.as_ref();
    for sl in &s.slices {
        let prompt = plan
            .and_then(|p| p.slices.iter().find(|p| p.id == sl.id))
            .map(|p| p.prompt.trim())
            .filter(|p| !p.is_empty());
        if prompt.is_none() && sl.changed_files.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<details><summary><code>{}</code>: {}</summary>\n",
            sl.id,
            crate::words::count(sl.changed_files.len(), "changed file")
        );
        if let Some(prompt) = prompt {
            let _ = writeln!(out, "Task:\n\n```\n{}\n```\n", defuse(prompt));
        }
        let shown = sl.changed_files.iter().take(FILES_SHOWN);
        for f in shown {
            let _ = writeln!(out, "- <code>{}</code>", cell(f));
        }
        if sl.changed_files.len() > FILES_SHOWN {
            let _ = writeln!(out, "- … and {} more", sl.changed_files.len() - FILES_SHOWN);
        }
        let _ = writeln!(out, "\n</details>\n");
    }
}

/// Why each slice that did not merge did not, with its excerpt.
fn problems(out: &mut String, s: &GoalState, portable: &dyn Fn(&str) -> String) {
    let failures: Vec<_> = s
        .slices
        .iter()
        .filter_map(|sl| sl.reason.as_ref().map(|r| (sl, r)))
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "### Problems\n");
        for (sl, r) in failures {
            let _ = writeln!(
                out,
                "- `{}`: {}",
                sl.id,
                crate::shown::markdown(&portable(r))
            );
            if let Some(excerpt) = sl.excerpt() {
                let excerpt = portable(excerpt.trim_end());
                let _ = writeln!(out, "\n  ```\n{}\n  ```", indent(&excerpt));
            }
        }
        let _ = writeln!(out);
    }
}

/// Each retried slice's attempts, and why each ended.
fn attempts(out: &mut String, s: &GoalState, portable: &dyn Fn(&str) -> String) {
    let retried: Vec<_> = s
        .slices
        .iter()
        .filter(|sl| sl.attempt_history.len() > 1)
        .collect();
    if !retried.is_empty() {
        let _ = writeln!(out, "### Attempts\n");
        for sl in retried {
            let _ = writeln!(out, "- `{}`:", sl.id);
            for a in &sl.attempt_history {
                let why = a
                    .reason
                    .as_deref()
                    .map(|r| format!(": {}", crate::shown::markdown(&portable(r))))
                    .unwrap_or_default();
                let _ = writeln!(out, "  {}. {}{why}", a.attempt, a.status);
            }
        }
        let _ = writeln!(out);
    }
}

/// The merge order, the tree, the integration gates and the usage.
fn integration(out: &mut String, s: &GoalState) {
    let i = &s.integration;
    let _ = writeln!(out, "### Integration\n");
    let _ = writeln!(
        out,
        "Merged in this order: {}; tree `{}`.\n",
        if i.order.is_empty() {
            "nothing".to_string()
        } else {
            i.order
                .iter()
                .map(|o| format!("`{o}`"))
                .collect::<Vec<_>>()
                .join(" → ")
        },
        i.tree
    );
    if i.gates.is_empty() {
        let _ = writeln!(out, "_No integration gate ran._");
    }
    for g in &i.gates {
        let _ = writeln!(out, "- {}", gate_line(g));
    }
    if let Some(usage) = s.usage.summary() {
        let _ = writeln!(out, "\n### Usage\n\n{usage}");
    }
}

/// How to check the goal: on any clone when pushed, else where it ran.
fn verify(out: &mut String, s: &GoalState, pushed_to: Option<&str>) {
    let _ = writeln!(out, "\n### Verify it yourself\n");
    match pushed_to {
        Some(remote) => {
            let _ = writeln!(
                out,
                "In any clone, fetch the goal's branch and proof, then re-derive the integration tree from the recorded slice commits:\n"
            );
            let _ = writeln!(
                out,
                "```\ngit fetch {remote} '{}*:{}*' {}\nomk goal verify {}\n```",
                crate::git::conventions::PROOFS,
                crate::git::conventions::PROOFS,
                s.integration.branch,
                s.goal_id
            );
        }
        None => {
            let _ = writeln!(
                out,
                "The proof was not pushed. In the repository that ran the goal, re-derive the integration tree from the recorded slice commits:\n"
            );
            let _ = writeln!(out, "```\nomk goal replay {} --verify\n```", s.goal_id);
        }
    }
}

/// The network agents and gates had, and every connection the sandbox
/// refused them, by whom.
fn network(out: &mut String, s: &GoalState) {
    use crate::sandbox::egress::NetworkRecord;
    let refused = |n: &NetworkRecord| {
        n.refused
            .iter()
            .map(|r| match r.count {
                1 => format!("`{}:{}`", r.host, r.port),
                c => format!("`{}:{}` ({c}×)", r.host, r.port),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines = Vec::new();
    for sl in &s.slices {
        let mut agents: Vec<(u32, &NetworkRecord)> = sl
            .attempt_history
            .iter()
            .filter_map(|a| a.network.as_ref().map(|n| (a.attempt, n)))
            .collect();
        if !sl.attempt_history.iter().any(|a| a.attempt == sl.attempts) {
            if let Some(n) = sl.agent.as_ref().and_then(|a| a.network.as_ref()) {
                agents.push((sl.attempts, n));
            }
        }
        for (attempt, n) in agents.into_iter().filter(|(_, n)| !n.refused.is_empty()) {
            lines.push(format!(
                "- `{}`, attempt {attempt}, agent: refused {}",
                sl.id,
                refused(n)
            ));
        }
        for g in &sl.gates {
            if let Some(n) = g.network.as_ref().filter(|n| !n.refused.is_empty()) {
                lines.push(format!(
                    "- `{}`, gate `{}`: refused {}",
                    sl.id,
                    g.name,
                    refused(n)
                ));
            }
        }
    }
    for g in &s.integration.gates {
        if let Some(n) = g.network.as_ref().filter(|n| !n.refused.is_empty()) {
            lines.push(format!(
                "- integration, gate `{}`: refused {}",
                g.name,
                refused(n)
            ));
        }
    }
    let settings = &s.settings.limits.network;
    let _ = writeln!(
        out,
        "### Network
"
    );
    if settings.open {
        let _ = writeln!(
            out,
            "Agents and gates shared omk's own network (`[sandbox] network = \"open\"`).\n"
        );
    } else {
        let allowed = match settings.allow.is_empty() {
            true => "no host".to_string(),
            false => settings
                .allow
                .names()
                .iter()
                .map(|h| format!("`{h}`"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let _ = writeln!(
            out,
            "Agents and gates had a network of their own, with a way out only through omk's proxy: to {allowed}, and a Kimi agent to its model.\n"
        );
    }
    if lines.is_empty() {
        let _ = writeln!(out, "No connection was refused.\n");
    } else {
        let _ = writeln!(out, "{}\n", lines.join("\n"));
    }
}

/// Every review gate's verdict and findings, slice by slice, then the
/// integration's: what reviewers said, minor findings on approvals too.
fn reviews(out: &mut String, s: &GoalState, portable: &impl Fn(&str) -> String) {
    let slices = s
        .slices
        .iter()
        .map(|sl| (format!("`{}`", sl.id), &sl.gates));
    let all: Vec<_> = slices
        .chain(std::iter::once((
            "integration".to_string(),
            &s.integration.gates,
        )))
        .flat_map(|(who, gates)| {
            gates
                .iter()
                .filter_map(move |g| g.review.as_ref().map(|r| (who.clone(), g, r)))
        })
        .collect();
    if all.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Reviews\n");
    for (who, g, r) in all {
        let tokens = match (r.agent.tokens_in, r.agent.tokens_out) {
            (None, None) => String::new(),
            (i, o) => format!(", {} tokens", i.unwrap_or(0) + o.unwrap_or(0)),
        };
        let cached = if g.cached { ", cached" } else { "" };
        let _ = writeln!(
            out,
            "- {who} · {} {}: {}{tokens}{cached}",
            if g.passed { "✓" } else { "✗" },
            g.name,
            g.outcome
        );
        for f in &r.findings {
            let _ = writeln!(out, "  - {}", cell(&portable(&f.to_string())));
        }
    }
    let _ = writeln!(out);
}

/// A slice's changes in a table cell: files, and lines when `repo` has them.
fn changes(sl: &crate::state::SliceState, repo: Option<&Repo>) -> String {
    let files = count(sl.changed_files.len(), "file");
    let stat = repo
        .zip(sl.start_commit.as_deref().zip(sl.commit.as_deref()))
        .and_then(|(repo, (from, to))| repo.diff_stat(from, to).ok());
    match stat {
        Some((added, removed)) => format!("{files}, +{added} −{removed}"),
        None => files,
    }
}

/// `✓ name`, `✗ name` or `✓ name (cached)`.
fn gate_mark(g: &crate::gate::GateResult) -> String {
    let cached = if g.cached { " (cached)" } else { "" };
    format!("{} {}{cached}", if g.passed { "✓" } else { "✗" }, g.name)
}

/// Agent-written text (a title, a path) as plain text in Markdown: no
/// markup, no HTML, no cell break.
fn cell(text: &str) -> String {
    crate::shown::markdown(text)
}

/// Text safe inside a fenced block.
fn defuse(text: &str) -> String {
    text.replace("```", "`\u{200b}``")
}

/// `text` without the machine's own paths: a goal's files are named from
/// its directory (`logs/…`), the repository is "the repository".
fn portable(text: &str, s: &GoalState) -> String {
    let marker = format!("/goals/{}/", s.goal_id);
    let mut out = String::with_capacity(text.len());
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match word.find(&marker) {
            Some(at) if word.starts_with('/') => out.push_str(&word[at + marker.len()..]),
            _ => out.push_str(word),
        }
    }
    // A log of the goal's is on the machine that ran it: naming it in a
    // pull request says nothing (`; log: logs/a/gate-t.log` is dropped).
    static LOG_CLAUSE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let clause = LOG_CLAUSE
        .get_or_init(|| regex::Regex::new(r"(;\s*)?\blog: logs/\S+").expect("a valid pattern"));
    out = clause.replace_all(&out, "").into_owned();
    let root = s.repository.display().to_string();
    if root.len() > 1 {
        out = out.replace(&root, "<repository>");
    }
    // Worktree paths in gate output (`…/pool/slot-3/src/x.py`).
    match crate::store::home() {
        Ok(home) if home.as_os_str().len() > 1 => {
            out.replace(&*home.to_string_lossy(), "$OMK_HOME")
        }
        _ => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_markdown_names_no_path_of_the_machine_and_renders_no_agent_markup() {
        let s = GoalState {
            goal_id: "g1".into(),
            repository: "/home/me/repo".into(),
            ..GoalState::default()
        };
        assert_eq!(
            portable(
                "gate `t` failed; log: /home/me/.local/state/omk/repos/r-1/goals/g1/logs/a/gate-t.log in /home/me/repo/src",
                &s
            ),
            "gate `t` failed in <repository>/src"
        );
        assert_eq!(
            cell("<img src=x> | `x`\nnext"),
            "&lt;img src=x&gt; \\| \\`x\\`\\\\nnext"
        );
    }
}
