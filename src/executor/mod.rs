//! Where a slice's attempts run: on this machine (the worktree pool), or
//! as jobs of a cluster scheduler.
//!
//! Only the agent's run and its commit move: the planner, the event log,
//! the gates, the integrator and the proof stay with the process that
//! drives the goal. A remote attempt starts from commits sent to it, and
//! its commit comes back into `refs/omk/<goal>/<slice>/attempt-<n>`, where
//! it is checked as a local commit is (its start, its write scope, its
//! links) before anything else sees it. Another scheduler (Kubernetes
//! Jobs) is another variant here with its own submit, state and cancel;
//! nothing else changes.

pub mod slurm;
pub mod watch;
pub mod worker;

use serde::{Deserialize, Serialize};

/// Which executor runs a goal's attempts (`--executor`, `[executor] kind`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Executor {
    /// Worktree slots of this machine's pool.
    #[default]
    Local,
    /// `sbatch` jobs running `omk worker`.
    Slurm(slurm::Settings),
}

impl Executor {
    /// Whether attempts run on this machine.
    pub fn is_local(&self) -> bool {
        matches!(self, Executor::Local)
    }
}

/// The ref a remote attempt's commit is brought into.
pub fn attempt_ref(goal: &str, slice: &str, attempt: u32) -> String {
    format!("refs/omk/{goal}/{slice}/attempt-{attempt}")
}
