//! What landing a pull request records: the checks seen on the head omk
//! pushed, waits, the merge, or why it stopped (the `landing` event, and
//! the proof's `landing`).

use serde::{Deserialize, Serialize};

/// One step of landing a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum LandStep {
    /// Landing started (or was taken up again) on pull request `number`,
    /// whose head must stay `head`, the commit omk pushed.
    Following { number: u64, head: String },
    /// The checks on the head changed: every one as it is now.
    Checked { checks: Vec<Check> },
    /// The pull request cannot merge yet for a reason omk does not repair
    /// (an approval missing): it waits.
    Waiting { reason: String },
    /// It merged, as `commit`, by `method`.
    Merged { commit: String, method: MergeMethod },
    /// Landing stopped without a merge, and why.
    Stopped { reason: String },
}

/// A check on the head: a check run or a commit status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Its name (a check run's name, a status's context).
    pub name: String,
    /// Where it stands.
    pub state: CheckState,
    /// Whether branch protection requires it (all are, when omk cannot
    /// read the protection).
    pub required: bool,
    /// A failed check's summary, bounded and scrubbed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// Where a check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    /// Queued or running.
    Pending,
    /// Succeeded (or was skipped or neutral).
    Passed,
    /// Failed, timed out, was cancelled or needs action.
    Failed,
}

/// How a pull request is merged (`--merge-method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum MergeMethod {
    Merge,
    Squash,
    Rebase,
}

impl MergeMethod {
    /// As GitHub's API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMethod::Merge => "merge",
            MergeMethod::Squash => "squash",
            MergeMethod::Rebase => "rebase",
        }
    }
}

/// Where landing a goal's pull request stands (the proof's `landing`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Landing {
    /// The pull request.
    pub number: u64,
    /// The head it follows: the commit omk pushed and verified.
    pub head: String,
    /// The checks on it, as last seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// What it waits for, while it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// The merge commit, once merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<String>,
    /// The merge method used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<MergeMethod>,
    /// Why it stopped without a merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl Landing {
    /// Folds one step in.
    pub fn apply(&mut self, step: &LandStep) {
        match step {
            LandStep::Following { number, head } => {
                *self = Landing {
                    number: *number,
                    head: head.clone(),
                    ..Landing::default()
                }
            }
            LandStep::Checked { checks } => {
                self.checks = checks.clone();
                self.waiting = None;
            }
            LandStep::Waiting { reason } => self.waiting = Some(reason.clone()),
            LandStep::Merged { commit, method } => {
                self.merged = Some(commit.clone());
                self.method = Some(*method);
                self.waiting = None;
            }
            LandStep::Stopped { reason } => {
                self.stopped = Some(reason.clone());
                self.waiting = None;
            }
        }
    }
}
