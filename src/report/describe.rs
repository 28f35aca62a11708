//! What people read about events: one line each, the same in the live
//! display, the plain log lines, `replay` and the demo.

use crate::agent;
use crate::gate::GateResult;
use crate::store::events::{EventBody, Raised, RetryCause};
use crate::words::short;

/// One line for people about an event, used by the progress reporter,
/// `replay` and the demo: what agents and file names put in it is shown,
/// never obeyed by the terminal (see [`crate::shown`]).
pub fn describe(body: &EventBody) -> String {
    crate::shown::visible(&line(body)).into_owned()
}

fn line(body: &EventBody) -> String {
    match body {
        EventBody::GoalStarted { .. }
        | EventBody::GoalResumed { .. }
        | EventBody::GoalRetried { .. }
        | EventBody::GoalFinished { .. }
        | EventBody::BudgetExhausted { .. }
        | EventBody::Delivery(_)
        | EventBody::Landing(_)
        | EventBody::BaseChecked { .. } => line_goal(body),
        EventBody::SliceStarted { .. }
        | EventBody::AgentUpdate { .. }
        | EventBody::AgentFinished { .. }
        | EventBody::AgentRetry { .. }
        | EventBody::SliceCommitted { .. }
        | EventBody::SliceFailed { .. }
        | EventBody::SliceRetrying { .. }
        | EventBody::CheckoutTouched { .. }
        | EventBody::SliceBlocked { .. } => line_attempt(body),
        EventBody::GateStarted { .. }
        | EventBody::SetupReady { .. }
        | EventBody::GateFinished { .. }
        | EventBody::Verified { .. } => line_gates(body),
        EventBody::SliceMerged { .. }
        | EventBody::MergeConflict { .. }
        | EventBody::GatesDeferred { .. }
        | EventBody::IntegrationStarted { .. }
        | EventBody::IntegrationAdvanced { .. }
        | EventBody::SliceEjected { .. } => line_integration(body),
    }
}

/// The goal as a whole: started, resumed, retried, its base, budget, delivery, end.
fn line_goal(body: &EventBody) -> String {
    match body {
        EventBody::GoalStarted {
            goal,
            plan,
            base_commit,
            agent,
            ..
        } => format!(
            "goal started: \"{goal}\" — {} from {} with {agent}",
            crate::words::count(plan.slices.len(), "slice"),
            short(base_commit)
        ),
        EventBody::GoalResumed { pid, raised } if raised.is_empty() => {
            format!("goal resumed by process {pid}")
        }
        EventBody::GoalResumed { pid, raised } => {
            format!(
                "goal resumed by process {pid}, with {}",
                self::raised(raised)
            )
        }
        EventBody::GoalRetried { slices, .. } => match slices.is_empty() {
            true => "goal retried: the integration gates run again".into(),
            false => format!("goal retried: fresh attempts for {}", slices.join(", ")),
        },
        EventBody::BudgetExhausted { reason } => format!("budget exhausted: {reason}"),
        EventBody::BaseChecked {
            passed: true,
            gates,
        } => {
            format!("the base passes the slice gates ({})", names(gates))
        }
        EventBody::BaseChecked {
            passed: false,
            gates,
        } => {
            format!(
                "the base FAILS the slice gates ({}); no agent starts",
                names(gates)
            )
        }
        EventBody::Delivery(d) => crate::proof::delivery_line(d).replace('\n', "; "),
        EventBody::Landing(step) => landing(step),
        EventBody::GoalFinished { status, reason } => match reason {
            Some(r) => format!("goal finished: {status} — {r}"),
            None => format!("goal finished: {status}"),
        },
        _ => String::new(),
    }
}

/// A slice's attempt: started, its agent, committed, failed, blocked, sent back.
fn line_attempt(body: &EventBody) -> String {
    match body {
        EventBody::SliceStarted {
            attempt,
            start_commit,
            conflict_paths,
            sparse,
            work_from,
            ..
        } => {
            let mut s = format!("attempt {attempt} started from {}", short(start_commit));
            if let Some(from) = work_from {
                s += &format!(", going on from its last commit {}", short(from));
            }
            if let Some(dirs) = sparse {
                s += &format!(" in a sparse worktree of {}", dirs.join(", "));
            }
            if !conflict_paths.is_empty() {
                s += &format!(" (after conflict on {})", conflict_paths.join(", "));
            }
            s
        }
        EventBody::AgentUpdate { update, .. } => match update {
            agent::Update::Session { id } => format!("agent session {id}"),
            agent::Update::Usage {
                tokens_in,
                tokens_out,
            } => match tokens_out {
                Some(out) => format!("agent usage: {tokens_in} tokens in, {out} out"),
                None => format!("agent usage: {tokens_in} tokens in context"),
            },
            agent::Update::Approval { request, decision } => format!(
                "{} {}{} ({})",
                if decision.allow { "allowed" } else { "DENIED" },
                request.tool,
                request
                    .command
                    .as_ref()
                    .map(|c| format!(" `{c}`"))
                    .or_else(|| (!request.paths.is_empty())
                        .then(|| format!(" {}", request.paths.join(", "))))
                    .unwrap_or_default(),
                decision.rule
            ),
        },
        EventBody::AgentRetry {
            retry,
            delay_ms,
            reason,
            ..
        } => {
            format!("agent failed ({reason}); retry {retry} in {delay_ms}ms")
        }
        EventBody::SliceRetrying { attempt, cause, .. } => {
            let why = match cause {
                RetryCause::Gate { gate } => format!("gate `{gate}` failed"),
                RetryCause::Scope => "its commit was refused".to_string(),
                RetryCause::Conflict => "it conflicted".to_string(),
                RetryCause::Integration { gate, .. } => {
                    format!("integration gate `{gate}` failed with it merged")
                }
            };
            format!("attempt {attempt}: {why}; another attempt, told what went wrong")
        }
        EventBody::AgentFinished { report, .. } => format!(
            "agent finished: {} after {}",
            report.exit,
            crate::words::human_duration(std::time::Duration::from_millis(report.duration_ms))
        ),
        EventBody::SliceCommitted {
            commit,
            changed_files,
            ..
        } => format!(
            "committed {} ({})",
            short(commit),
            crate::words::count(changed_files.len(), "file")
        ),
        EventBody::SliceFailed { status, reason, .. } => format!("{status}: {reason}"),
        EventBody::SliceBlocked { reason, .. } => format!("blocked: {reason}"),
        EventBody::CheckoutTouched { evidence, .. } => {
            format!("CHANGED THE USER'S REPOSITORY: {}", evidence.join("; "))
        }
        _ => String::new(),
    }
}

/// Gates and verdicts.
fn line_gates(body: &EventBody) -> String {
    match body {
        EventBody::GateStarted { gate, tree, .. } => {
            format!("gate {gate} started on tree {}", short(tree))
        }
        EventBody::SetupReady {
            setup,
            key,
            how,
            duration_ms,
            ..
        } => format!(
            "setup {setup} {} (key {}, {})",
            match how {
                crate::setup::How::Ran => "ran",
                crate::setup::How::Seeded => "seeded",
            },
            short(key),
            crate::words::human_duration(std::time::Duration::from_millis(*duration_ms))
        ),
        EventBody::GateFinished { result, .. } if result.cached => format!(
            "gate {} {} (cached: it passed on this tree in goal {}; log {})",
            result.name,
            if result.passed { "passed" } else { "FAILED" },
            result.from_goal.as_deref().unwrap_or("an earlier goal"),
            result.log.display()
        ),
        EventBody::GateFinished { result, .. } => format!(
            "gate {} {} ({}, {}ms)",
            result.name,
            if result.passed { "passed" } else { "FAILED" },
            result.outcome,
            result.duration_ms
        ),
        EventBody::Verified {
            interrupted: true, ..
        } => "gates interrupted: they run again on resume".into(),
        EventBody::Verified { passed, .. } => {
            if *passed {
                "verified".into()
            } else {
                "verification failed".into()
            }
        }
        _ => String::new(),
    }
}

/// The candidate and the branch.
fn line_integration(body: &EventBody) -> String {
    match body {
        EventBody::SliceMerged { commit, .. } => {
            format!("merged into the candidate as {}", short(commit))
        }
        EventBody::MergeConflict {
            attempt,
            paths,
            before_gates,
            ..
        } => format!(
            "attempt {attempt} conflicts on {}{}",
            paths.join(", "),
            match before_gates {
                true => " (found before its gates ran, so they were skipped)",
                false => "",
            }
        ),
        EventBody::GatesDeferred { behind, paths, .. } => format!(
            "gates wait: conflicts with `{behind}` on {}, which committed first; they run once it has merged or failed",
            paths.join(", ")
        ),
        EventBody::IntegrationStarted { commit, tree, .. } => format!(
            "integration gates start on candidate {} (tree {})",
            short(commit),
            short(tree)
        ),
        EventBody::IntegrationAdvanced {
            commit, recreated, ..
        } => format!(
            "integration gates passed: the integration branch {} {}",
            match recreated {
                true => "was gone, and is made again at",
                false => "moves to",
            },
            short(commit)
        ),
        EventBody::SliceEjected {
            gate,
            tree,
            remerge,
            ..
        } => {
            let mut s = format!(
                "taken out of the candidate: integration gate `{gate}` first fails with it merged (tree {})",
                short(tree)
            );
            if !remerge.is_empty() {
                s += &format!("; {} merge again", remerge.join(", "));
            }
            s
        }
        _ => String::new(),
    }
}

/// The raised limits, in words.
fn raised(r: &Raised) -> String {
    let mut parts = Vec::new();
    if let Some(n) = r.max_attempts {
        parts.push(format!("{n} attempts per slice"));
    }
    if let Some(ms) = r.budget_time_ms {
        parts.push(format!(
            "a time budget of {}",
            crate::words::human_duration(std::time::Duration::from_millis(ms))
        ));
    }
    if let Some(t) = r.budget_tokens {
        parts.push(format!("a token budget of {t}"));
    }
    if let Some(usd) = r.budget_usd {
        parts.push(format!("a budget of ${usd:.2}"));
    }
    parts.join(", ")
}

/// The names of gate results, for a line.
fn names(gates: &[GateResult]) -> String {
    gates
        .iter()
        .map(|g| format!("{} {}", g.name, if g.passed { "passed" } else { "failed" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A step of landing the pull request, in words.
fn landing(step: &crate::store::landing::LandStep) -> String {
    use crate::store::landing::{CheckState, Found, LandStep};
    match step {
        LandStep::Following { number, head } => {
            format!(
                "landing pull request #{number}: following its head {}",
                short(head)
            )
        }
        LandStep::Checked { checks } => {
            let count = |state| checks.iter().filter(|c| c.state == state).count();
            let failed: Vec<&str> = checks
                .iter()
                .filter(|c| c.state == CheckState::Failed)
                .map(|c| c.name.as_str())
                .collect();
            let mut line = format!(
                "checks: {} passed, {} pending, {} failed",
                count(CheckState::Passed),
                count(CheckState::Pending),
                failed.len()
            );
            if !failed.is_empty() {
                line += &format!(" ({})", failed.join(", "));
            }
            line
        }
        LandStep::Waiting { reason } => format!("waiting: {reason}"),
        LandStep::Reopened { head, asked, told } => {
            let from: Vec<String> = asked
                .iter()
                .map(|a| format!("{} → {}", a.from, a.slices.join(", ")))
                .collect();
            format!(
                "feedback on {}: {}; reopened {}",
                short(head),
                from.join("; "),
                told.iter()
                    .map(|t| t.slice.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        LandStep::Reproducing { head, check, gate } => format!(
            "reproducing check `{check}` of {} with gate `{gate}`",
            short(head)
        ),
        LandStep::Reproduced(r) => {
            let runs = format!("{} run{}", r.runs, if r.runs == 1 { "" } else { "s" });
            match &r.found {
                Found::NotReproduced => format!(
                    "gate `{}` passed where check `{}` failed ({runs}): the check's log decides",
                    r.gate, r.check
                ),
                Found::NotRun { why } => format!(
                    "gate `{}` could not reproduce check `{}`: {why}",
                    r.gate, r.check
                ),
                Found::Culprit { slice, tree, .. } => format!(
                    "gate `{}` reproduced check `{}`; it fails first on the merge of {slice} (tree {}, {runs})",
                    r.gate,
                    r.check,
                    short(tree)
                ),
            }
        }
        LandStep::Replied {
            comment,
            slice,
            commit,
        } => format!(
            "replied on comment {comment}: addressed by slice {slice} in {}",
            short(commit)
        ),
        LandStep::Merged { commit, method } => {
            format!("merged ({}) as {}", method.as_str(), short(commit))
        }
        LandStep::Stopped { reason } => format!("landing stopped: {reason}"),
    }
}
