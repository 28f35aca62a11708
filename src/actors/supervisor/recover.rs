//! What happened after the log: a controller that died may have merged
//! or committed work it did not record. Resume reads it back from git, as
//! events, before the goal goes on.

use ractor::ActorProcessingErr;

use crate::actors::slice;
use crate::git::Repo;
use crate::state::{GoalState, SliceStatus};
use crate::store::events::EventBody;

/// The merges the log missed: the last controller moved the integration
/// branch (one merge per slice it was sent, in order) but stopped before
/// recording them. Walking first parents back from the branch must reach the
/// recorded head through merges of slices the log shows as `merging`;
/// anything else moved the branch, and omk does not build on a history it
/// did not write.
pub(super) fn recover_integration(
    repo: &Repo,
    known: &GoalState,
) -> Result<Vec<EventBody>, ActorProcessingErr> {
    let branch = &known.integration.branch;
    let recorded = &known.integration.commit;
    let actual = repo
        .ref_target(&format!("refs/heads/{branch}"))?
        .ok_or_else(|| format!("the integration branch {branch} is gone; it cannot be resumed"))?;
    let mut missed = Vec::new();
    let mut at = actual.clone();
    while &at != recorded {
        let parents = repo.parents(&at)?;
        let merged = known.slices.iter().find(|s| {
            s.status == SliceStatus::Merging
                && parents.len() == 2
                && s.commit.as_ref() == Some(&parents[1])
                && !missed
                    .iter()
                    .any(|m: &EventBody| m.slice() == Some(s.id.as_str()))
        });
        let Some(s) = merged else {
            return Err(format!(
                "the integration branch {branch} points at {actual}, which does not descend from the recorded {recorded} through omk's merges: it was moved outside omk, so the goal cannot be resumed safely"
            )
            .into());
        };
        missed.push(EventBody::SliceMerged {
            slice: s.id.clone(),
            attempt: s.attempts,
            slice_commit: parents[1].clone(),
            tree: repo.tree_of(&at)?,
            commit: at.clone(),
        });
        at = parents[0].clone();
    }
    missed.reverse();
    Ok(missed)
}

/// Commits the last controller made for running slices but did not record:
/// they are taken as the slices' results instead of running the agents again.
pub(super) fn adopt_commits(repo: &Repo, known: &GoalState) -> Vec<EventBody> {
    let mut adopted = Vec::new();
    for s in known
        .slices
        .iter()
        .filter(|s| s.status == SliceStatus::Running)
    {
        let Some(start) = &s.start_commit else {
            continue;
        };
        let Ok(Some(head)) = repo.ref_target(&format!("refs/heads/{}", s.branch)) else {
            continue;
        };
        if &head == start {
            continue;
        }
        let trailers = [
            format!("Omk-Goal: {}", known.goal_id),
            format!("Omk-Slice: {}", s.id),
            format!("Omk-Attempt: {}", s.attempts),
        ];
        let ours = repo
            .commit_message(&head)
            .is_ok_and(|m| trailers.iter().all(|t| m.contains(t.as_str())));
        let Ok(changed) = repo.changed_files(start, &head) else {
            continue;
        };
        let (Ok(tree), true) = (repo.tree_of(&head), ours) else {
            continue;
        };
        let scope = known
            .spec(&s.id)
            .map(|spec| spec.write_scope.clone())
            .unwrap_or_default();
        let Ok(rejected) = slice::judge_commit(repo, &scope, &head, &changed) else {
            continue;
        };
        adopted.push(match rejected {
            None => EventBody::SliceCommitted {
                slice: s.id.clone(),
                attempt: s.attempts,
                commit: head,
                tree,
                changed_files: changed,
            },
            Some(slice::Rejected { reason, paths }) => EventBody::SliceFailed {
                slice: s.id.clone(),
                attempt: s.attempts,
                status: SliceStatus::ScopeViolation,
                reason,
                paths,
            },
        });
    }
    adopted
}
