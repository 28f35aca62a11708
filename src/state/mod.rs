//! A goal's state, derived only from its events.
//!
//! [`GoalState::apply`] is the one place where events change state; the
//! supervisor calls it for every event it records, and `replay` calls it on
//! the stored log. Serialized, a [`GoalState`] is the goal's proof.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::agent;
use crate::gate::{GateResult, GateSpec};
use crate::plan::{Plan, SliceSpec};

mod fold;
/// The sum of two counts either of which may be unknown: unknown only when
/// both are (tokens and costs that an agent may not report).
pub fn sum_known<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
pub(crate) mod tests;
pub use crate::store::kinds::{
    Deliver, DeliverOptions, Delivery, GoalStatus, PullRequest, PushedRef, SliceStatus,
};
pub use crate::store::limits::Limits;

/// How a slice's attempt ended, when it did not succeed, as its events
/// say. What follows from it (another attempt, told what) is decided in
/// `actors/supervisor/decide/`, not here.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptEnd {
    /// The attempt failed before its gates: `status` says how (an agent
    /// that failed or timed out, a commit refused).
    Failed(SliceStatus),
    /// Its gates failed; `gate` is the first that failed, when one reported.
    GateFailed {
        /// The gate.
        gate: Option<String>,
    },
    /// Its commit conflicts with the integration.
    Conflict,
    /// Its merge was taken out of the candidate: integration gate `gate`
    /// fails on `tree`, the first tree with its merge.
    Ejected {
        /// The gate.
        gate: String,
        /// The tree.
        tree: String,
    },
}

/// One slice's state; in the proof, one entry of `slices`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SliceState {
    pub id: String,
    pub title: String,
    pub status: SliceStatus,
    /// Why it is not merged, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The paths behind `reason`: outside the write scope, or in conflict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    pub attempts: u32,
    pub branch: String,
    /// The slice's own result commit: its last attempt's, which stays local.
    pub commit: Option<String>,
    /// What it contributed to the integration: one commit of its accepted
    /// tree on the commit it started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributed: Option<String>,
    pub tree: Option<String>,
    pub changed_files: Vec<String>,
    /// Every file its merged attempts changed, over all of them: what a
    /// failed check's log is matched against. Derived from the log.
    #[serde(skip)]
    pub merged_files: std::collections::BTreeSet<String>,
    /// Which gates judge it, and who chose them.
    #[serde(default)]
    pub gates_chosen: GateChoice,
    pub agent: Option<agent::Report>,
    /// The gates of its last attempt.
    pub gates: Vec<GateResult>,
    /// The slot its last attempt's agent worked in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<PathBuf>,
    /// The commit the last attempt started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_commit: Option<String>,
    /// The directories its worktree materializes, when sparse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse: Option<Vec<String>>,
    pub depends_on: Vec<String>,
    /// Every attempt that ended, and why (the last one too, once it has).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempt_history: Vec<AttemptRecord>,
    /// What went wrong in the last failed attempt, for the next one.
    #[serde(skip)]
    pub feedback: Option<String>,
    /// Where the next attempt's worktree starts, when not at its start
    /// commit: the failed attempt's own commit.
    #[serde(skip)]
    pub work_from: Option<String>,
    /// The agent session of the running attempt, as the agent reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The session an interrupted attempt resumes when it runs again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_session: Option<String>,
    /// It was recorded `slice_blocked`: a dependency will never merge.
    #[serde(skip)]
    pub blocked: bool,
    /// How its last attempt ended, when it did not succeed: a fact of the
    /// log; whether another attempt follows is the decider's to say.
    #[serde(skip)]
    pub ended: Option<AttemptEnd>,
    /// The gate running now, for progress displays.
    #[serde(skip)]
    pub current_gate: Option<String>,
    /// Its gates were stopped by a cancel: it waits for them to run again.
    #[serde(skip)]
    pub gates_interrupted: bool,
    /// Its gates ran with its attempt (on a cluster): their results are on
    /// their way, and no gate job is sent.
    #[serde(skip)]
    pub gates_follow: bool,
    /// How many times in a row its gates could not run on its commit (no
    /// verdict: omk's or the machine's failure, not the slice's).
    #[serde(skip)]
    pub unjudged: u32,
    /// The position in the log of its last attempt's commit: of two
    /// slices that conflict, the one that committed first is gated first.
    #[serde(skip)]
    pub committed_seq: u64,
}

/// Which gates judge a slice, and who chose them: never a planning agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GateChoice {
    /// The gates' names.
    pub gates: Vec<String>,
    /// Who chose them.
    pub by: GateChooser,
}

/// Who chose the gates of a slice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateChooser {
    /// Every per-slice gate of `omk.toml` (or the ones detected).
    #[default]
    Configuration,
    /// The user's own plan file named them.
    Plan,
}

/// How one attempt of a slice ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1 for the first.
    pub attempt: u32,
    /// How it ended: `merged`, or the status it failed with.
    pub status: SliceStatus,
    /// Why, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its commit, when it made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The last lines of the gate that failed it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
    /// Its agent's network, and the connections it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::sandbox::egress::NetworkRecord>,
}

impl SliceState {
    /// A blocked slice is judged again: its dependencies may merge now.
    fn unblock(&mut self) {
        if std::mem::take(&mut self.blocked) {
            self.reason = None;
        }
    }

    /// Keeps the failed gate's last lines with the attempt that just ended.
    fn note_excerpt(&mut self, excerpt: Option<String>) {
        if let Some(a) = self.attempt_history.last_mut() {
            a.excerpt = excerpt;
        }
    }

    /// The last lines of the gate that failed its last attempt, if one did.
    pub fn excerpt(&self) -> Option<&str> {
        match self.status {
            SliceStatus::Merged => None,
            _ => self.attempt_history.last()?.excerpt.as_deref(),
        }
    }

    /// Notes in the history how the current attempt ended, once.
    fn end_attempt(&mut self) {
        // An attempt run again after an interruption keeps its number.
        if self.attempt_history.last().map(|a| a.attempt) == Some(self.attempts) {
            self.attempt_history.pop();
        }
        self.attempt_history.push(AttemptRecord {
            attempt: self.attempts,
            status: self.status,
            reason: self.reason.clone(),
            commit: self.commit.clone(),
            excerpt: None,
            network: self.agent.as_ref().and_then(|a| a.network.clone()),
        });
    }
}

/// The integration: the branch, which only moves to trees the integration
/// gates passed, and the candidate on top of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    pub branch: String,
    /// Where the branch points: the newest green commit.
    pub commit: String,
    pub tree: String,
    /// The slices the branch holds, in the order they were merged.
    pub order: Vec<String>,
    /// Every integration gate result, on every candidate it judged.
    pub gates: Vec<GateResult>,
    /// Merges on top of the branch that the integration gates have not
    /// passed yet, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate: Vec<Link>,
    /// The candidate commit the integration gates are running on.
    #[serde(skip)]
    pub testing: Option<String>,
    /// How many times the integration gates could not run, per tree.
    #[serde(skip)]
    pub unjudged: std::collections::HashMap<String, u32>,
    /// The branch's merges, oldest first: each one's commit and tree are a
    /// state the branch passed through.
    #[serde(skip)]
    pub merges: Vec<Link>,
    /// A pull request's failed check being reproduced with its gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reproducing: Option<crate::store::landing::Reproduction>,
}

/// One merge of the candidate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub slice: String,
    pub commit: String,
    pub tree: String,
}

/// What the integration gates said of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeVerdict {
    /// Every integration gate passed on it.
    Passed,
    /// One failed on it.
    Failed,
    /// Not every gate has run on it.
    Unknown,
}

impl Integration {
    /// The commit the next merge goes onto: the candidate's tip, or the branch.
    pub fn tip(&self) -> &str {
        self.candidate
            .last()
            .map_or(self.commit.as_str(), |l| l.commit.as_str())
    }

    /// The latest result of integration gate `gate` on `tree`.
    /// (A gate that could not run judged nothing, and counts as no result.)
    pub fn last_result(&self, gate: &str, tree: &str) -> Option<&GateResult> {
        self.gates
            .iter()
            .rev()
            .find(|r| r.name == gate && r.tree == tree && r.outcome.judged())
    }

    /// The latest failure of integration gate `gate` on `tree`.
    pub fn last_failure(&self, gate: &str, tree: &str) -> Option<&GateResult> {
        self.gates
            .iter()
            .rev()
            .find(|r| r.name == gate && r.tree == tree && !r.passed && r.outcome.judged())
    }

    /// What the gates named `gates` said of `tree`, by each gate's latest result.
    pub fn verdict_on(&self, tree: &str, gates: &[GateSpec]) -> TreeVerdict {
        let mut all = true;
        for gate in gates {
            match self.last_result(&gate.name, tree) {
                Some(r) if !r.passed => return TreeVerdict::Failed,
                Some(_) => {}
                None => all = false,
            }
        }
        match all {
            true => TreeVerdict::Passed,
            false => TreeVerdict::Unknown,
        }
    }
}

/// Settings fixed when the goal started; not part of the proof.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub limits: Limits,
    pub plan: Option<Plan>,
    pub gates: Vec<GateSpec>,
    pub allow_no_gates: bool,
    pub max_attempts: u32,
    pub concurrency: usize,
    pub deliver: Deliver,
    pub deliver_options: DeliverOptions,
    pub base_tree: String,
    /// Each slice's position in `GoalState::slices` and the plan, so a
    /// lookup by id costs O(1) on a goal of thousands of slices.
    pub index: std::collections::HashMap<String, usize>,
    /// The slices' positions in dependency order (plan order on a cycle),
    /// computed once.
    pub order: Vec<usize>,
}

/// A goal's state; serialized, its proof.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GoalState {
    pub goal_id: String,
    pub goal: String,
    pub status: GoalStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub repository: PathBuf,
    pub base_commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ref: Option<String>,
    pub agent: String,
    pub slices: Vec<SliceState>,
    pub integration: Integration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// Every delivery before the last, oldest first: a redelivery does not
    /// lose what the first pushed or opened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_deliveries: Vec<Delivery>,
    /// Landing its pull request (`omk goal land`): the checks, the merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing: Option<crate::store::landing::Landing>,
    /// Tokens and cost of every agent attempt so far.
    pub usage: Usage,
    /// The slice gates' results on the base commit, once they ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_check: Option<BaseCheck>,
    /// Why the goal stopped starting work, when a budget ran out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_exhausted: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Where the event log ended when this proof was written: the supervisor
    /// pins it so `replay --verify` can tell a cut log from a whole one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_end: Option<LogEnd>,
    #[serde(skip)]
    pub settings: Settings,
}

/// The slice gates run on the base commit before any agent starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BaseCheck {
    /// Whether every one passed.
    pub passed: bool,
    /// Their results, on the base tree.
    pub gates: Vec<GateResult>,
}

/// The last event of the log a proof was written from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogEnd {
    /// Its sequence number (the number of events).
    pub events: u64,
    /// The SHA-256 of its line.
    pub hash: String,
}

/// Goal-wide usage: the sum of every finished attempt's report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens, `null` when no agent reported any.
    pub tokens_in: Option<u64>,
    /// Output tokens, `null` when no agent reported any.
    pub tokens_out: Option<u64>,
    /// Cost in US dollars, `null` when unknown.
    pub usd: Option<f64>,
}

impl Usage {
    /// `1234 tokens in, 210 out, $0.01`, or `None` when nothing was reported.
    pub fn summary(&self) -> Option<String> {
        if self.tokens_in.is_none() && self.tokens_out.is_none() && self.usd.is_none() {
            return None;
        }
        Some(format!(
            "{} tokens in, {} out{}",
            self.tokens_in.unwrap_or(0),
            self.tokens_out.unwrap_or(0),
            self.usd.map(|d| format!(", ${d:.2}")).unwrap_or_default()
        ))
    }

    fn add(&mut self, r: &agent::Report) {
        use crate::state::sum_known as sum;
        self.tokens_in = sum(self.tokens_in, r.tokens_in);
        self.tokens_out = sum(self.tokens_out, r.tokens_out);
        self.usd = sum(self.usd, r.usd);
    }
}

impl GoalState {
    /// The slice with this id.
    pub fn slice(&self, id: &str) -> Option<&SliceState> {
        let i = *self.settings.index.get(id)?;
        self.slices.get(i).filter(|s| s.id == id)
    }

    fn slice_mut(&mut self, id: &str) -> Option<&mut SliceState> {
        let i = *self.settings.index.get(id)?;
        self.slices.get_mut(i).filter(|s| s.id == id)
    }

    /// The plan entry of a slice.
    pub fn spec(&self, id: &str) -> Option<&SliceSpec> {
        let i = *self.settings.index.get(id)?;
        let plan = self.settings.plan.as_ref()?;
        plan.slices.get(i).filter(|s| s.id == id)
    }

    /// The gates that judge slice `id`: the plan's selection, else every per-slice gate.
    pub fn slice_gates(&self, id: &str) -> Vec<GateSpec> {
        let chosen = self.spec(id).and_then(|s| s.gates.clone());
        self.settings
            .gates
            .iter()
            .filter(|g| g.scope.judges_slices())
            .filter(|g| chosen.as_ref().is_none_or(|names| names.contains(&g.name)))
            .cloned()
            .collect()
    }

    /// The gates that judge the integration.
    pub fn integration_gates(&self) -> Vec<GateSpec> {
        self.settings
            .gates
            .iter()
            .filter(|g| g.scope.judges_integration())
            .cloned()
            .collect()
    }

    /// Whether slice `id` is on the integration branch: merged, and passed
    /// by the integration gates.
    pub fn integrated(&self, id: &str) -> bool {
        self.slice(id)
            .is_some_and(|s| s.status == SliceStatus::Merged)
            && !self.integration.candidate.iter().any(|l| l.slice == id)
    }

    /// Whether every slice has reached a state it will not leave.
    pub fn slices_settled(&self) -> bool {
        let blockers = self.blockers();
        self.slices
            .iter()
            .zip(&blockers)
            .all(|(s, b)| s.status.is_final() || b.is_some())
    }

    /// For each pending slice (by position), the first dependency that
    /// ended without merging or is blocked itself. One pass in dependency
    /// order: a chain of thousands costs what as many independent slices do.
    pub fn blockers(&self) -> Vec<Option<usize>> {
        let mut blocker: Vec<Option<usize>> = vec![None; self.slices.len()];
        for &i in &self.settings.order {
            let Some(slice) = self.slices.get(i) else {
                continue;
            };
            if slice.status != SliceStatus::Pending {
                continue;
            }
            blocker[i] = slice.depends_on.iter().find_map(|d| {
                let j = *self.settings.index.get(d)?;
                let dep = self.slices.get(j)?;
                let dead = (dep.status.is_final() && dep.status != SliceStatus::Merged)
                    || blocker[j].is_some();
                dead.then_some(j)
            });
        }
        blocker
    }

    /// The goal's final status and reason, by the contract's rule: `ready`
    /// only when every slice merged and every integration gate passed on the
    /// exact tree `integration.tree` names.
    pub fn verdict(&self) -> (GoalStatus, Option<String>) {
        if let Some(reason) = &self.budget_exhausted {
            if self.slices.iter().any(|s| s.status != SliceStatus::Merged) {
                return (
                    GoalStatus::NeedsBudget,
                    Some(format!(
                        "{reason}; finished work is merged, the rest needs more budget"
                    )),
                );
            }
        }
        let blockers = self.blockers();
        let unmerged: Vec<String> = self
            .slices
            .iter()
            .zip(&blockers)
            .filter(|(s, _)| !self.integrated(&s.id))
            .map(|(s, blocker)| match blocker {
                Some(dep) => format!("{} (blocked by {})", s.id, self.slices[*dep].id),
                None if s.status == SliceStatus::Merged => {
                    format!(
                        "{} (merged, but not yet passed by the integration gates)",
                        s.id
                    )
                }
                None => format!("{} ({})", s.id, s.status),
            })
            .collect();
        if !unmerged.is_empty() {
            return (
                GoalStatus::NotReady,
                Some(format!("not every slice merged: {}", unmerged.join(", "))),
            );
        }
        if self.settings.gates.is_empty() && !self.settings.allow_no_gates {
            return (
                GoalStatus::NotReady,
                Some("no gates are configured or detected, so nothing verified the result; add [[gate]] to omk.toml or pass --allow-no-gates".into()),
            );
        }
        // A slice whose plan chose no gate while there are slice gates was
        // verified by nothing of its own.
        let judges_slices = self.settings.gates.iter().any(|g| g.scope.judges_slices());
        let ungated: Vec<&str> = self
            .slices
            .iter()
            .filter(|s| judges_slices && self.slice_gates(&s.id).is_empty())
            .map(|s| s.id.as_str())
            .collect();
        if !ungated.is_empty() && !self.settings.allow_no_gates {
            return (
                GoalStatus::NotReady,
                Some(format!(
                    "{} ran no gate (the plan chose none for {}), so nothing verified {}; name a gate in the plan or pass --allow-no-gates",
                    ungated.join(", "),
                    if ungated.len() == 1 { "it" } else { "them" },
                    if ungated.len() == 1 { "it" } else { "them" },
                )),
            );
        }
        for gate in self.integration_gates() {
            match self
                .integration
                .last_result(&gate.name, &self.integration.tree)
            {
                Some(r) if r.passed => {}
                Some(r) => {
                    return (
                        GoalStatus::NotReady,
                        Some(format!(
                            "integration gate `{}` failed ({}); log: {}",
                            r.name,
                            r.outcome,
                            r.log.display()
                        )),
                    )
                }
                None => {
                    return (
                        GoalStatus::NotReady,
                        Some(format!(
                            "integration gate `{}` did not run on the final tree",
                            gate.name
                        )),
                    )
                }
            }
        }
        (GoalStatus::Ready, None)
    }
}
