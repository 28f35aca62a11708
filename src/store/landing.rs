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
    /// What failed on `head` or what a reviewer asked, sent back to the
    /// slices it concerns: each of them is reopened for a feedback attempt
    /// on the integration, told what `told` says.
    Reopened {
        /// The head the checks failed on, or the review was of.
        head: String,
        /// Each piece of feedback and the slices it went to.
        asked: Vec<Asked>,
        /// What each reopened slice's agent is told.
        told: Vec<Told>,
    },
    /// A failed check is reproduced on this machine with the integration
    /// gate mapped to it (`ci`): the gate runs on `head`'s tree and, if it
    /// fails there, on the branch's merges to find the first it fails on.
    Reproducing {
        head: String,
        check: String,
        gate: String,
    },
    /// What the reproduction found.
    Reproduced(Reproduced),
    /// omk answered a review comment on its thread, naming the slice and
    /// the commit that addressed it.
    Replied {
        comment: u64,
        slice: String,
        commit: String,
    },
    /// It merged, as `commit`, by `method`.
    Merged { commit: String, method: MergeMethod },
    /// Landing stopped without a merge, and why.
    Stopped { reason: String },
}

/// A failed check being reproduced: the state of the integration while
/// its gate runs again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reproduction {
    /// The head the check failed on.
    pub head: String,
    pub check: String,
    pub gate: String,
    /// The gate's results in this reproduction, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<crate::gate::GateResult>,
}

impl Reproduction {
    /// Whether the gate passed on `tree` in this reproduction, if it ran there.
    pub fn passed_on(&self, tree: &str) -> Option<bool> {
        self.results
            .iter()
            .rev()
            .find(|r| r.tree == tree)
            .map(|r| r.passed)
    }
}

/// What reproducing a failed check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reproduced {
    /// The head the check failed on.
    pub head: String,
    pub check: String,
    pub gate: String,
    /// How many times the gate ran.
    pub runs: u32,
    pub found: Found,
}

/// What a reproduction found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Found {
    /// The gate passed on the head here: the check's log decides.
    NotReproduced,
    /// The gate could not run (no verdict): the check's log decides.
    NotRun { why: String },
    /// The gate failed on the head, and first on the merge of `slice`,
    /// whose tree is `tree`; `excerpt` is where its log shows the failure.
    Culprit {
        slice: String,
        tree: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        excerpt: Option<String>,
    },
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

/// One piece of feedback from the pull request, and the slices it went to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asked {
    /// Where it came from.
    pub from: Source,
    /// The slices it was sent to.
    pub slices: Vec<String>,
    /// What it said: a failed check's log (where the failure begins, then
    /// the end), or the reviewer's words, bounded and scrubbed.
    pub text: String,
}

/// Where feedback from a pull request came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A required check that failed.
    Check { name: String },
    /// A review that requested changes, by its words.
    Review { id: u64, author: String },
    /// A comment of such a review, on a line of a file.
    Comment {
        id: u64,
        author: String,
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<u64>,
    },
}

impl std::fmt::Display for Source {
    /// `check `test``, `review 7 by @ann`, `comment 9 by @ann on src/a.rs:3`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Check { name } => write!(f, "check `{name}`"),
            Source::Review { id, author } => write!(f, "review {id} by @{author}"),
            Source::Comment {
                id,
                author,
                path,
                line,
            } => {
                write!(f, "comment {id} by @{author} on {path}")?;
                match line {
                    Some(line) => write!(f, ":{line}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// What one reopened slice's agent is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Told {
    pub slice: String,
    pub feedback: String,
}

/// A reply omk wrote on a review comment's thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub comment: u64,
    pub slice: String,
    pub commit: String,
}

/// A head followed before the current one, with its checks as last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    pub head: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
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
    /// The heads omk pushed and followed before `head`, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Round>,
    /// Feedback sent back to the slices, with the head it was about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feedback: Vec<Sent>,
    /// The replies omk wrote on review comments' threads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<Reply>,
    /// Failed checks reproduced with their gates, and what each found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reproduced: Vec<Reproduced>,
}

/// Feedback sent back about one head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub head: String,
    pub asked: Vec<Asked>,
}

impl Landing {
    /// What reproducing check `check`'s failure on `head` found, if it was.
    pub fn reproduction(&self, head: &str, check: &str) -> Option<&Reproduced> {
        self.reproduced
            .iter()
            .rev()
            .find(|r| r.head == head && r.check == check)
    }

    /// Whether feedback from `from` was sent back already.
    pub fn addressed(&self, from: &Source) -> bool {
        self.feedback
            .iter()
            .flat_map(|s| &s.asked)
            .any(|a| match (&a.from, from) {
                // A check fails anew on every head; reviews and comments
                // are answered once.
                (Source::Check { .. }, _) => false,
                (a, b) => a == b,
            })
    }

    /// Folds one step in.
    pub fn apply(&mut self, step: &LandStep) {
        match step {
            // Another pull request starts afresh; a new head of the same
            // one keeps the story so far.
            LandStep::Following { number, head } if *number != self.number => {
                *self = Landing {
                    number: *number,
                    head: head.clone(),
                    ..Landing::default()
                }
            }
            LandStep::Following { head, .. } => {
                if *head != self.head {
                    self.earlier.push(Round {
                        head: std::mem::replace(&mut self.head, head.clone()),
                        checks: std::mem::take(&mut self.checks),
                    });
                }
                self.waiting = None;
                self.stopped = None;
            }
            LandStep::Reopened { head, asked, .. } => {
                self.feedback.push(Sent {
                    head: head.clone(),
                    asked: asked.clone(),
                });
                self.waiting = None;
            }
            LandStep::Replied {
                comment,
                slice,
                commit,
            } => self.replies.push(Reply {
                comment: *comment,
                slice: slice.clone(),
                commit: commit.clone(),
            }),
            LandStep::Reproducing { .. } => self.waiting = None,
            LandStep::Reproduced(found) => self.reproduced.push(found.clone()),
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
