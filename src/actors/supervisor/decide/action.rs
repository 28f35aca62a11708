//! What the decider answers: the actions the supervisor carries out, and
//! the facts it reports back to be decided on.

use crate::actors::gate::Priority;
use crate::ids::{CommitId, SliceId, TreeId};
use crate::state::GoalStatus;
use crate::store::events::RetryCause;

/// Something the supervisor must carry out.
#[must_use]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Record that a pending slice can never start.
    Block {
        /// The slice.
        slice: SliceId,
        /// Which dependency did not merge, in words.
        reason: String,
    },
    /// Start the next attempt of a pending slice.
    Start {
        /// The slice.
        slice: SliceId,
        /// The commit it starts from, and is judged against.
        start_commit: CommitId,
        /// The failed commit a feedback attempt goes on from, checked out
        /// on top of `start_commit`'s history.
        work_from: Option<CommitId>,
    },
    /// Record that a slice's attempt failed: its actor ended without a result.
    Fail {
        /// The slice.
        slice: SliceId,
        /// The attempt.
        attempt: u32,
        /// Why, in words.
        reason: String,
    },
    /// Stop the actor of a slice whose attempt has reported its end.
    StopAttempt {
        /// The slice.
        slice: SliceId,
    },
    /// Send a committed slice to the gates — once a merge probe says its
    /// commit conflicts neither with the integration nor with one of
    /// `ahead` (see [`Decider::on_probe`]): else its gates would be spent
    /// for nothing.
    Gate {
        /// The slice.
        slice: SliceId,
        /// Slices that committed before it, are still on their way to the
        /// integration, and changed a path it changed (or a folder of one).
        ahead: Vec<SliceId>,
        /// How urgent its gate job is.
        priority: Priority,
    },
    /// Run the gates of a slice whose merge probe found no conflict.
    RunGates {
        /// The slice.
        slice: SliceId,
        /// How urgent its gate job is.
        priority: Priority,
    },
    /// Record that a committed slice conflicts with the integration before
    /// its gates ran.
    Conflict {
        /// The slice.
        slice: SliceId,
        /// The conflicting paths.
        paths: Vec<String>,
        /// The candidate commit it conflicts with.
        onto: CommitId,
    },
    /// Record that a slice's gates wait for a slice ahead whose commit
    /// conflicts with it: once that one merged, its conflict is real.
    Defer {
        /// The slice.
        slice: SliceId,
        /// The slice ahead.
        behind: SliceId,
        /// The conflicting paths.
        paths: Vec<String>,
    },
    /// Send a verified slice to the integrator, to merge onto the candidate.
    Merge {
        /// The slice.
        slice: SliceId,
    },
    /// Give a slice whose attempt failed another, told what went wrong.
    Retry {
        /// The slice.
        slice: SliceId,
        /// What went wrong.
        cause: RetryCause,
        /// Where the next attempt works from.
        redo: Redo,
    },
    /// Give back the slot of a slice that no longer needs its tree.
    Release {
        /// The slice.
        slice: SliceId,
    },
    /// Record that a budget ran out, and cancel the running agents.
    Exhaust {
        /// Which budget, in words.
        reason: String,
    },
    /// Cancel every running agent and gate.
    CancelAll,
    /// Run the slice gates on the base commit.
    CheckBase {
        /// How urgent the job is.
        priority: Priority,
    },
    /// Run the integration gates on a candidate commit.
    Integrate {
        /// The commit.
        commit: CommitId,
        /// Its tree.
        tree: TreeId,
        /// How urgent the job is.
        priority: Priority,
    },
    /// Move the integration branch forward to a candidate commit the
    /// integration gates passed.
    Advance {
        /// The commit.
        commit: CommitId,
        /// Its tree.
        tree: TreeId,
    },
    /// Take a slice out of the candidate: its merge is the first on which
    /// an integration gate fails. The candidate goes back to `onto`, and
    /// the slices merged after it are merged again.
    Eject {
        /// The slice.
        slice: SliceId,
        /// The gate that failed.
        gate: String,
        /// The tree of its merge.
        tree: TreeId,
        /// The candidate commit before its merge (or the branch).
        onto: CommitId,
        /// The slices merged after it, in order.
        remerge: Vec<SliceId>,
    },
    /// Record what reproducing a pull request's failed check found.
    Reproduced(crate::store::landing::Reproduced),
    /// End the goal.
    Finish {
        /// How it ends.
        status: GoalStatus,
        /// Why, when not ready.
        reason: Option<String>,
    },
}

/// Where the next attempt of a failed slice works from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redo {
    /// From the failed attempt's commit, which it fixes: its gates failed
    /// or its commit was refused, but the rest of its work stands.
    ItsCommit,
    /// From the integration's tip, without its change, which it makes
    /// again: its change conflicts with, or breaks, the others' work.
    OnTheIntegration,
}

/// What a merge probe found for a committed slice before its gates: the
/// first conflict, if any. The probe is the supervisor's (it runs git);
/// what follows from it is [`Decider::on_probe`]'s.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// Its commit merges cleanly onto the candidate and every slice ahead.
    Clean,
    /// Its commit conflicts with the candidate `onto` on `paths`.
    Integration {
        /// The candidate's tip.
        onto: CommitId,
        /// The conflicting paths.
        paths: Vec<String>,
    },
    /// Its commit conflicts with slice `ahead`'s on `paths`.
    Ahead {
        /// The slice ahead.
        ahead: SliceId,
        /// The conflicting paths.
        paths: Vec<String>,
    },
}
