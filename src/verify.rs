//! Checking a goal's record: that its log is whole and unedited, that its
//! proof was written from it, and that the recorded slice commits merge,
//! with the integrator's own merge step, into the recorded integration
//! tree. `replay --verify` checks the goal's files here; `goal verify`
//! checks a proof pushed as `refs/omk/proofs/<goal-id>`, on any clone.
//!
//! The chain catches an edited or cut log; it does not stop someone who
//! rewrites the whole log and proof consistently. What it makes checkable
//! is that the branch under review is exactly what the recorded slice
//! commits merge into, the tree the recorded gates passed on.

use std::collections::HashMap;

use crate::error::Result;
use crate::git::{Merged, Repo};
use crate::state::GoalState;
use crate::store::events::{Event, EventBody, Scan};

/// A check's verdict: what held, line by line, or the first thing that did not.
pub type Verdict = std::result::Result<Vec<String>, String>;

/// A goal's log, checked whole and folded.
#[derive(Debug)]
pub struct Record {
    pub state: GoalState,
    pub events: Vec<Event>,
}

/// Checks that `log` is chained without a break and, given the `proof`
/// written with it, that the log holds the event the proof was written
/// after, unchanged.
pub fn check_record(log: &[u8], proof: Option<&[u8]>) -> std::result::Result<Record, String> {
    let scan = Scan::parse(log);
    scan.chain()
        .map_err(|broken| format!("the event log is not as written: {broken}"))?;
    if scan.events.is_empty() {
        return Err("the event log is empty".into());
    }
    if let Some(proof) = proof {
        let proof: GoalState = serde_json::from_slice(proof)
            .map_err(|e| format!("the proof is not a goal's proof: {e}"))?;
        let goal = scan.events.first().and_then(|e| match &e.body {
            EventBody::GoalStarted { goal_id, .. } => Some(goal_id.as_str()),
            _ => None,
        });
        if goal != Some(proof.goal_id.as_str()) {
            return Err(format!(
                "the proof is of goal {}, the log of {}",
                proof.goal_id,
                goal.unwrap_or("no goal")
            ));
        }
        if let Some(end) = proof.log_end {
            let n = end.events as usize;
            if scan.hashes.len() < n {
                return Err(format!(
                    "the log has {} events but its proof was written after event {n}: the log was cut",
                    scan.hashes.len()
                ));
            }
            if n > 0 && scan.hashes[n - 1] != end.hash {
                return Err(format!(
                    "event {n} is not the one the proof was written after: the log was rewritten"
                ));
            }
        }
    }
    let events = scan.events;
    Ok(Record {
        state: GoalState::from_events(&events),
        events,
    })
}

/// Re-merges every recorded merge, each onto the rebuilt commit of the one
/// it was recorded onto, and compares every tree with the record; the
/// rebuilt commit of where the branch was last moved must have the
/// recorded integration tree. The merges the branch is made of must all
/// rebuild. Merges into candidates that were dropped (a slice taken out,
/// the candidate rebuilt) are re-merged where this clone has what they
/// need — their slice commits are on no pushed branch — and the rest are
/// counted as skipped, with why; so a clone and the goal's own repository
/// report the same merges on the branch, and say what each left out.
pub fn rebuild(repo: &Repo, state: &GoalState, events: &[Event]) -> Result<Verdict> {
    if !repo.has_commit(&state.base_commit) {
        return Ok(Err(format!(
            "the base commit {} is not in this repository; fetch it",
            state.base_commit
        )));
    }
    let on_branch = branch_merges(state, events);
    // Recorded commit → the commit rebuilt for it.
    let mut rebuilt = HashMap::new();
    rebuilt.insert(state.base_commit.clone(), state.base_commit.clone());
    let mut last = state.base_commit.clone();
    let mut count = Count::default();
    // Each slice's latest start, from which the integrator merged it.
    let mut starts = HashMap::new();
    for e in events {
        let (slice, slice_commit, commit, tree, onto) = match &e.body {
            EventBody::SliceStarted {
                slice,
                start_commit,
                ..
            } => {
                starts.insert(slice.as_str(), start_commit.as_str());
                continue;
            }
            EventBody::SliceMerged {
                slice,
                slice_commit,
                commit,
                tree,
                onto,
                ..
            } => (slice, slice_commit, commit, tree, onto),
            _ => continue,
        };
        // Logs from before candidates merged each slice onto the last.
        let onto = match onto.is_empty() {
            true => std::mem::replace(&mut last, commit.clone()),
            false => {
                last = commit.clone();
                onto.clone()
            }
        };
        let onto = &onto;
        let kept = on_branch.contains(commit.as_str());
        let head = match (rebuilt.get(onto).cloned(), repo.has_commit(slice_commit)) {
            (Some(head), true) => head,
            (_, false) if kept => {
                return Ok(Err(format!(
                    "at event {}: slice {slice}'s commit {slice_commit}, which the branch holds, is not in this repository; fetch the goal's branch {}",
                    e.seq, state.integration.branch
                )));
            }
            (None, _) if kept => {
                return Ok(Err(format!(
                    "at event {}: slice {slice} was merged onto {onto}, which no recorded merge made",
                    e.seq
                )));
            }
            (_, false) => {
                count.lacking += 1;
                continue;
            }
            (None, true) => {
                count.onto_skipped += 1;
                continue;
            }
        };
        let start = starts.get(slice.as_str()).copied();
        let message = format!("omk verify: {slice}");
        let new = match repo.merge_slice(&head, slice_commit, start, &message)? {
            Merged::Commit { commit, tree: t } if &t == tree => commit,
            Merged::Commit { tree: t, .. } => {
                return Ok(Err(format!(
                    "at event {}: merging slice {slice} gives tree {t}, the log records {tree}",
                    e.seq
                )));
            }
            Merged::Conflict(paths) => {
                return Ok(Err(format!(
                    "at event {}: slice {slice} no longer merges cleanly ({})",
                    e.seq,
                    paths.join(", ")
                )));
            }
        };
        rebuilt.insert(commit.clone(), new);
        match kept {
            true => count.branch += 1,
            false => count.dropped += 1,
        }
    }
    let Some(head) = rebuilt.get(&state.integration.commit).cloned() else {
        return Ok(Err(format!(
            "the integration branch was recorded at {}, which no recorded merge made",
            state.integration.commit
        )));
    };
    let tree = repo.tree_of(&head)?;
    if tree != state.integration.tree {
        return Ok(Err(format!(
            "the rebuilt integration tree {tree} differs from the recorded {}",
            state.integration.tree
        )));
    }
    Ok(Ok(count.said(&state.base_commit, &tree)))
}

/// How the recorded merges were checked.
#[derive(Debug, Default)]
struct Count {
    /// Merges the branch is made of, rebuilt.
    branch: usize,
    /// Merges into dropped candidates, rebuilt.
    dropped: usize,
    /// Merges into dropped candidates whose slice commit is not here.
    lacking: usize,
    /// Merges into dropped candidates onto such a skipped one.
    onto_skipped: usize,
}

impl Count {
    /// What the check says: the branch's merges from `base` to `tree`, and
    /// the dropped candidates', with what was skipped and why.
    fn said(&self, base: &str, tree: &str) -> Vec<String> {
        let mut said = vec![format!(
            "{} merges on the branch from base {base} rebuild tree {tree}",
            self.branch
        )];
        let dropped = self.dropped + self.lacking + self.onto_skipped;
        if dropped == 0 {
            return said;
        }
        let mut line = format!(
            "{dropped} merges into dropped candidates (a slice taken out, the rest merged again): {} re-merged",
            self.dropped
        );
        if self.lacking > 0 {
            line += &format!(
                ", {} skipped whose slice commit is not in this repository (a dropped candidate's commits are on no pushed branch)",
                self.lacking
            );
        }
        if self.onto_skipped > 0 {
            line += &format!(", {} skipped merged onto one skipped", self.onto_skipped);
        }
        said.push(line);
        said
    }
}

/// The recorded merge commits the integration branch is made of: from
/// where it was last moved, back through what each was merged onto.
fn branch_merges<'a>(
    state: &'a GoalState,
    events: &'a [Event],
) -> std::collections::HashSet<&'a str> {
    let mut onto_of = HashMap::new();
    let mut last = state.base_commit.as_str();
    for e in events {
        if let EventBody::SliceMerged { commit, onto, .. } = &e.body {
            let onto = if onto.is_empty() { last } else { onto.as_str() };
            onto_of.insert(commit.as_str(), onto);
            last = commit.as_str();
        }
    }
    let mut chain = std::collections::HashSet::new();
    let mut at = state.integration.commit.as_str();
    while let Some(&onto) = onto_of.get(at) {
        if !chain.insert(at) {
            break;
        }
        at = onto;
    }
    chain
}

/// Checks that every branch named like the goal's integration branch here
/// (the local one, and remote-tracking ones) has the rebuilt `tree`.
pub fn check_branches(repo: &Repo, state: &GoalState, tree: &str) -> Result<Verdict> {
    let name = &state.integration.branch;
    let mut found = Vec::new();
    if let Some(commit) = repo.ref_target(&format!("refs/heads/{name}"))? {
        found.push((name.clone(), commit));
    }
    for (r, commit) in repo.refs_under("refs/remotes/")? {
        if r.ends_with(&format!("/{name}")) {
            found.push((r.trim_start_matches("refs/remotes/").to_string(), commit));
        }
    }
    if found.is_empty() {
        return Ok(Ok(vec![format!(
            "note: no branch {name} here; the record itself verifies"
        )]));
    }
    let mut said = Vec::new();
    for (branch, commit) in found {
        if repo.tree_of(&commit)? != tree {
            return Ok(Err(format!(
                "{branch} points at {commit}, whose tree differs from the recorded integration"
            )));
        }
        said.push(format!("{branch} has that tree"));
    }
    Ok(Ok(said))
}
