//! Why a delivery cannot start: what the error type names, with nothing of
//! omk's below it but the words of its records.

use crate::store::kinds::GoalStatus;

/// Why a delivery cannot even start; every one is found before anything
/// is pushed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliverError {
    /// No GitHub token in the environment, and no `gh` logged in.
    #[error("no GitHub token: set GH_TOKEN or GITHUB_TOKEN, or log in with `gh auth login`")]
    NoToken,
    /// `GH_REPO` is set but is not `owner/name`.
    #[error("GH_REPO `{0}` is not of the form owner/name")]
    BadGhRepo(String),
    /// The remote's URL names no GitHub repository.
    #[error(
        "cannot tell the GitHub repository from remote `{remote}` ({url}); set GH_REPO=owner/name"
    )]
    NotGitHub { remote: String, url: String },
    /// The remote to push to does not exist.
    #[error("the repository has no remote `{0}`; add it with `git remote add {0} URL`")]
    NoRemote(String),
    /// Fast-forwards and pull requests need the base to be a branch.
    #[error("the goal's base is a commit, not a branch, so there is no branch to {0}")]
    BaseNotBranch(&'static str),
    /// The goal did not end `ready`.
    #[error("goal {goal} is {status}, not ready")]
    NotReady { goal: String, status: GoalStatus },
}
