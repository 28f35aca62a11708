//! `[[gate]]` entries checked into gates: every problem of every entry.

use super::file::GateEntry;
use super::*;

/// The gates `entries` describe; what is wrong with them goes to `problems`
/// (each naming its entry and field), and such an entry is left out.
pub(super) fn gates(
    entries: Vec<GateEntry>,
    read: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Vec<GateSpec> {
    let mut gates: Vec<GateSpec> = Vec::new();
    for (i, g) in entries.into_iter().enumerate() {
        let at = format!("gate[{i}] (`{}`)", g.name);
        match gate(g, &at, &gates, read) {
            Ok(spec) => gates.push(spec),
            Err(mut wrong) => problems.append(&mut wrong),
        }
    }
    gates
}

/// One gate, or everything wrong with it.
fn gate(
    g: GateEntry,
    at: &str,
    earlier: &[GateSpec],
    read: &impl Fn(&str) -> Option<String>,
) -> std::result::Result<GateSpec, Vec<String>> {
    let mut wrong = Vec::new();
    if g.name.trim().is_empty() {
        wrong.push(format!("{at}.name: empty"));
    }
    if earlier.iter().any(|x| x.name == g.name) {
        wrong.push(format!("{at}.name: duplicate gate name"));
    }
    let timeout = match &g.timeout {
        Some(t) => parse_duration(t).unwrap_or_else(|e| {
            wrong.push(format!("{at}.timeout: {e}"));
            DEFAULT_GATE_TIMEOUT
        }),
        None => DEFAULT_GATE_TIMEOUT,
    };
    let review = match g.kind.as_deref() {
        None | Some("command") => {
            let reviews_only = [
                ("agent", g.agent.is_some()),
                ("instructions", g.instructions.is_some()),
                ("preset", g.preset.is_some()),
                ("max_tokens", g.max_tokens.is_some()),
            ];
            for (field, _) in reviews_only.iter().filter(|(_, set)| *set) {
                wrong.push(format!(
                    "{at}.{field}: only a review gate takes it; add kind = \"review\""
                ));
            }
            None
        }
        Some("review") => review(&g, at, read).map_err(|e| wrong.push(e)).ok(),
        Some(other) => {
            wrong.push(format!(
                "{at}.kind: `{other}` is not a kind of gate; use \"command\" or \"review\""
            ));
            None
        }
    };
    let is_review = g.kind.as_deref() == Some("review");
    let command = match (is_review, g.command) {
        (true, Some(_)) => {
            wrong.push(format!(
                "{at}.command: a review gate runs an agent, not a command; remove it"
            ));
            String::new()
        }
        (true, None) => format!(
            "review by {}",
            g.agent.as_deref().unwrap_or("the goal's agent")
        ),
        (false, Some(c)) if !c.trim().is_empty() => c,
        (false, _) => {
            wrong.push(format!("{at}.command: empty or missing"));
            String::new()
        }
    };
    let allow_hosts = crate::sandbox::egress::AllowList::parse(&g.allow_hosts)
        .map_err(|e| wrong.push(format!("{at}.allow_hosts: {}", e.join("; "))))
        .unwrap_or_default();
    let cpus = match g.cpus {
        Some(0) => {
            wrong.push(format!("{at}.cpus: must be at least 1"));
            None
        }
        // A reviewer waits on its model, not on the cores.
        None if is_review => Some(1),
        n => n,
    };
    let ci = g.ci.filter(|check| {
        let problem = if check.trim().is_empty() {
            Some("empty; name the pull request check this gate reproduces".to_string())
        } else if !g.scope.judges_integration() {
            Some("only a gate that judges the integration (scope = \"integration\" or \"both\") reproduces a check".into())
        } else if is_review {
            Some("a review gate cannot reproduce a check; map a command gate".into())
        } else {
            earlier
                .iter()
                .find(|x| x.ci.as_ref() == Some(check))
                .map(|x| format!("check `{check}` is reproduced by gate `{}` already", x.name))
        };
        problem.map(|p| wrong.push(format!("{at}.ci: {p}"))).is_none()
    });
    if !wrong.is_empty() {
        return Err(wrong);
    }
    Ok(GateSpec {
        ci,
        allow_hosts,
        name: g.name,
        command,
        timeout,
        scope: g.scope,
        writable: g.writable,
        env: g.env,
        cpus,
        review,
    })
}

/// The review of a `kind = "review"` gate entry (named `at` in errors);
/// `read` finds its instructions file.
fn review(
    g: &GateEntry,
    at: &str,
    read: &impl Fn(&str) -> Option<String>,
) -> std::result::Result<crate::review::ReviewSpec, String> {
    use crate::review::{Preset, ReviewSpec, GENERAL};
    if let Some(agent) = &g.agent {
        crate::agent::AgentSpec::parse(agent).map_err(|e| format!("{at}.agent: {e}"))?;
    }
    let preset = match g.preset.as_deref() {
        None => None,
        Some(name) => Some(Preset::parse(name).ok_or_else(|| {
            format!("{at}.preset: `{name}` is not a preset; the one there is: \"security\"")
        })?),
    };
    let own = match g.instructions.as_deref().map(str::trim) {
        Some("") => return Err(format!("{at}.instructions: empty")),
        // A file of the repository at the base, else the text itself.
        Some(text) => Some(read(text).unwrap_or_else(|| text.to_string())),
        None => None,
    };
    let instructions = match (preset, own) {
        (Some(p), Some(own)) => format!("{}\n\n{own}", p.instructions()),
        (Some(p), None) => p.instructions().to_string(),
        (None, Some(own)) => own,
        (None, None) => GENERAL.to_string(),
    };
    if g.max_tokens == Some(0) {
        return Err(format!("{at}.max_tokens: must be at least 1"));
    }
    Ok(ReviewSpec {
        agent: g.agent.clone(),
        instructions,
        preset,
        max_tokens: g.max_tokens,
    })
}
