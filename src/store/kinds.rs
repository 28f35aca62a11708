//! The words omk's records are made of — statuses, delivery modes —
//! shared by the events (which hold them) and the state (the fold over the
//! events). They depend on nothing of omk's: errors and the rest may use
//! them freely.

use serde::{Deserialize, Serialize};

/// Where a finished goal's result goes (`--deliver`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Deliver {
    /// Leave the result on `omk/<goal>/integration`.
    #[default]
    Branch,
    /// Also fast-forward the base branch, if it has not moved and is not checked out.
    Ff,
    /// Push the integration branch and the proof to a remote.
    Push,
    /// Push, then open or update a GitHub pull request into the base branch.
    Pr,
    /// As `pr`, then land it: merge once its required checks pass and the
    /// repository allows it (`omk goal land`).
    Land,
}

impl Deliver {
    /// Whether it pushes to a remote.
    pub fn pushes(self) -> bool {
        matches!(self, Deliver::Push | Deliver::Pr | Deliver::Land)
    }

    /// Whether it opens (or updates) a pull request.
    pub fn opens_pull_request(self) -> bool {
        matches!(self, Deliver::Pr | Deliver::Land)
    }
}

/// How a goal's result is delivered, besides where (`--squash`, `--draft`,
/// `--remote`), fixed when the goal starts so that a resumed goal delivers
/// as asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverOptions {
    /// Deliver one commit on top of the base with the integration tree.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub squash: bool,
    /// Open the pull request as a draft.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draft: bool,
    /// The remote to push to; default the base branch's upstream, else `origin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
}

impl DeliverOptions {
    /// Whether nothing but the defaults is asked (left out of the log).
    pub fn is_default(&self) -> bool {
        *self == DeliverOptions::default()
    }
}

/// What a delivery did, or why it did not (the `delivery` event, and the
/// proof's `delivery`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// How it was delivered (absent in logs of older versions: `ff`).
    #[serde(default = "ff")]
    pub to: Deliver,
    /// The branch it was delivered to: the base branch for `ff`, the pushed
    /// branch for `push` and `pr`, the local branch for `branch`.
    pub branch: String,
    /// Whether it happened.
    pub delivered: bool,
    /// What happened, or why not, in a sentence.
    pub reason: String,
    /// The remote pushed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// The refs pushed, each with the commit it was pushed at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pushed: Vec<PushedRef>,
    /// With `--squash`: the one commit on top of the base with the
    /// integration tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub squash_commit: Option<String>,
    /// The ref the proof was pushed to (`refs/omk/proofs/<goal-id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_ref: Option<String>,
    /// The pull request opened or updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequest>,
    /// Slices left out of a partial delivery (`--partial`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

fn ff() -> Deliver {
    Deliver::Ff
}

/// A ref a delivery pushed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedRef {
    /// The full ref name on the remote.
    pub name: String,
    /// The commit it points at.
    pub commit: String,
}

/// A pull request a delivery opened or updated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub url: String,
    /// Whether this delivery opened it (else it updated an open one).
    pub created: bool,
}

/// The status of a goal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoalStatus {
    /// Still running.
    #[default]
    Running,
    /// Every slice merged and every integration gate passed on the final tree.
    Ready,
    /// The run ended without `ready`.
    NotReady,
    /// The run could not go on.
    Blocked,
    /// A budget ran out.
    NeedsBudget,
    /// The run was cancelled.
    Cancelled,
    /// omk itself failed.
    Failed,
}

/// The status of a slice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SliceStatus {
    /// Waiting for its dependencies, a free slot, or a retry.
    #[default]
    Pending,
    /// Its agent is working.
    Running,
    /// Its gates are running.
    Gating,
    /// Waiting for the integrator.
    Merging,
    /// In the integration branch.
    Merged,
    /// The agent failed, changed nothing, or omk could not commit its work.
    Failed,
    /// It still conflicted after its last attempt.
    Conflict,
    /// Its commit touched paths outside its write scope.
    ScopeViolation,
    /// A gate failed on its commit.
    GateFailed,
    /// The run was cancelled before it finished.
    Cancelled,
}

impl SliceStatus {
    /// Whether the slice will not change any more.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            SliceStatus::Pending
                | SliceStatus::Running
                | SliceStatus::Gating
                | SliceStatus::Merging
        )
    }
}

macro_rules! display_as_serde {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let v = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
                f.write_str(v.as_str().unwrap_or_default())
            }
        }
    )*};
}
display_as_serde!(GoalStatus, SliceStatus, Deliver);
