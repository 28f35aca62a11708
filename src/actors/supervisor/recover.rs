//! What happened after the log: a controller that died may have merged
//! or committed work it did not record. Resume reads it back from git, as
//! events, before the goal goes on.

use ractor::ActorProcessingErr;

use crate::actors::slice;
use crate::git::Repo;
use crate::state::{GoalState, SliceStatus};
use crate::store::events::EventBody;

/// The branch move the log missed: the last controller moved the
/// integration branch forward to a candidate commit the gates passed but
/// stopped before recording it. The branch must point at the recorded
/// commit or at one of the candidate's; anything else moved it, and omk
/// does not build on a history it did not write. A branch someone deleted
/// is made again where the log says it was, by the integrator as it starts
/// (the branch's one writer).
pub(super) fn recover_integration(
    repo: &Repo,
    known: &GoalState,
) -> Result<Vec<EventBody>, ActorProcessingErr> {
    let branch = &known.integration.branch;
    let recorded = &known.integration.commit;
    let name = format!("refs/heads/{branch}");
    let Some(actual) = repo.ref_target(&name)? else {
        return Ok(vec![]);
    };
    if &actual == recorded {
        return Ok(vec![]);
    }
    match known.integration.candidate.iter().find(|l| l.commit == actual) {
        Some(link) => Ok(vec![EventBody::IntegrationAdvanced {
            commit: link.commit.clone(),
            tree: link.tree.clone(),
            recreated: false,
        }]),
        None => Err(format!(
            "the integration branch {branch} points at {actual}, not at the recorded {recorded} or a commit omk merged after it: it was moved outside omk, so the goal cannot be resumed safely"
        )
        .into()),
    }
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
        let ours = repo.commit_message(&head).is_ok_and(|m| {
            crate::git::conventions::is_attempt_commit(&m, &known.goal_id, &s.id, s.attempts)
        });
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
                gated: false,
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

/// Where the integrator and the gate actor start: the goal's branch and the
/// heads of its integration, and its limits, from the log and what recovery
/// found after it (for a new goal, its `goal_started`).
pub(super) struct StartingPoint {
    pub goal_id: String,
    pub integration_branch: String,
    /// Where the branch points.
    pub green: String,
    /// The candidate's tip.
    pub tip: String,
    pub limits: crate::state::Limits,
}

pub(super) fn starting_point(
    first: &GoalState,
    recovered: &[EventBody],
) -> Result<StartingPoint, ActorProcessingErr> {
    let (goal_id, integration_branch, tip) = match (&first.goal_id, recovered.first()) {
        (id, _) if !id.is_empty() => (
            id.clone(),
            first.integration.branch.clone(),
            first.integration.tip().to_string(),
        ),
        (
            _,
            Some(EventBody::GoalStarted {
                goal_id,
                integration_branch,
                base_commit,
                ..
            }),
        ) => (
            goal_id.clone(),
            integration_branch.clone(),
            base_commit.clone(),
        ),
        _ => return Err("the first event must be goal_started".into()),
    };
    // The branch, where the log missed its last move.
    let green = recovered
        .iter()
        .find_map(|b| match b {
            EventBody::IntegrationAdvanced { commit, .. } => Some(commit.clone()),
            _ => None,
        })
        .unwrap_or_else(|| match first.integration.commit.is_empty() {
            true => tip.clone(),
            false => first.integration.commit.clone(),
        });
    let limits = match recovered.first() {
        Some(EventBody::GoalStarted { limits, .. }) => limits.clone(),
        _ => first.settings.limits.clone(),
    };
    Ok(StartingPoint {
        goal_id,
        integration_branch,
        green,
        tip,
        limits,
    })
}
