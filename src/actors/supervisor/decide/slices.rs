//! What each slice gets next: a start, its gates, the integrator, another
//! attempt — and the rules behind them.

use super::{Action, Decider, Phase, Redo};
use crate::actors::gate::Priority;
use crate::ids::SliceId;
use crate::state::{AttemptEnd, GoalState, SliceState, SliceStatus};
use crate::store::events::RetryCause;

impl Decider {
    /// Starts for the pending slices whose dependencies have merged, in
    /// dependency order, as many as the concurrency limit leaves room for.
    ///
    /// A feedback attempt after a failed gate or a refused commit goes on
    /// from that commit and is judged against the same start; a first
    /// attempt without dependencies starts from the base; dependent slices
    /// and other retries build on what is merged so far: the candidate's
    /// tip (the branch, and merges its gates have yet to judge).
    pub(super) fn ready_to_start(&self, state: &GoalState) -> Vec<Action> {
        let running = state
            .slices
            .iter()
            .filter(|s| s.status == SliceStatus::Running)
            .count();
        let room = state.settings.concurrency.saturating_sub(running);
        state
            .settings
            .order
            .iter()
            .filter_map(|&i| state.slices.get(i))
            .filter(|s| {
                s.status == SliceStatus::Pending && s.depends_on.iter().all(|d| state.integrated(d))
            })
            .take(room)
            .map(|s| {
                let start_commit = match (&s.work_from, &s.start_commit) {
                    (Some(_), Some(start)) => start.clone(),
                    _ if s.attempts == 0 && s.depends_on.is_empty() => state.base_commit.clone(),
                    _ => state.integration.tip().to_string(),
                };
                Action::Start {
                    slice: (&s.id).into(),
                    start_commit: start_commit.into(),
                    work_from: s
                        .work_from
                        .as_ref()
                        .filter(|_| s.start_commit.is_some())
                        .map(Into::into),
                }
            })
            .collect()
    }

    /// Another attempt for a slice whose attempt failed in a way another
    /// can repair, while attempts and budget remain and the goal is not
    /// stopping.
    pub(super) fn retry(&self, state: &GoalState, slice: &str) -> Option<Action> {
        let s = state.slice(slice)?;
        let (cause, redo) = repairable(s.ended.as_ref()?)?;
        let may = self.phase == Phase::Working
            && s.status.is_final()
            && s.status != SliceStatus::Merged
            && state.budget_exhausted.is_none()
            && s.attempts < state.settings.max_attempts;
        may.then(|| Action::Retry {
            slice: slice.into(),
            cause,
            redo,
        })
    }

    /// Where a slice with a result goes next: the gates or the integrator.
    pub(super) fn send_on(&self, state: &GoalState, slice: &str) -> Option<Action> {
        let s = state.slice(slice)?;
        s.commit.as_ref()?;
        s.tree.as_ref()?;
        let slice: SliceId = slice.into();
        match s.status {
            SliceStatus::Gating if s.gates_follow => None,
            SliceStatus::Gating => Some(Action::Gate {
                ahead: ahead_of(state, s).into_iter().map(SliceId::from).collect(),
                priority: slice_priority(state, &slice),
                slice,
            }),
            SliceStatus::Merging => Some(Action::Merge { slice }),
            _ => None,
        }
    }

    /// The held slices whose slice ahead is no longer on its way (it merged
    /// into the candidate, or failed): they go to their gates, checked again.
    pub(super) fn release(&mut self, state: &GoalState) -> Vec<Action> {
        let on_its_way = |id: &str| {
            state
                .slice(id)
                .is_some_and(|s| matches!(s.status, SliceStatus::Gating | SliceStatus::Merging))
        };
        let mut free: Vec<String> = self
            .held
            .iter()
            .filter(|(_, behind)| !on_its_way(behind))
            .map(|(slice, _)| slice.clone())
            .collect();
        free.sort_by_key(|id| state.slice(id).map(|s| s.committed_seq));
        free.into_iter()
            .filter_map(|id| {
                self.held.remove(&id);
                self.send_on(state, &id)
            })
            .collect()
    }
}

/// What another attempt can repair, and where it works from: a failed
/// gate or a refused commit is fixed on the attempt's commit; a conflict
/// or a broken integration is redone on the integration. An agent that
/// failed or timed out is not tried again: the same task would fail alike.
fn repairable(end: &AttemptEnd) -> Option<(RetryCause, Redo)> {
    match end {
        AttemptEnd::Failed(SliceStatus::ScopeViolation) => {
            Some((RetryCause::Scope, Redo::ItsCommit))
        }
        AttemptEnd::Failed(_) | AttemptEnd::GateFailed { gate: None } => None,
        AttemptEnd::GateFailed { gate: Some(gate) } => {
            Some((RetryCause::Gate { gate: gate.clone() }, Redo::ItsCommit))
        }
        AttemptEnd::Conflict => Some((RetryCause::Conflict, Redo::OnTheIntegration)),
        AttemptEnd::Ejected { gate, tree } => Some((
            RetryCause::Integration {
                gate: gate.clone(),
                tree: tree.clone(),
            },
            Redo::OnTheIntegration,
        )),
    }
}

/// How urgent a slice's gate job is: slices others wait for go first, with
/// the base check; then the integration's candidate; then the others. That
/// keeps the critical path short.
fn slice_priority(state: &GoalState, slice: &str) -> Priority {
    match state
        .slices
        .iter()
        .any(|s| s.depends_on.iter().any(|d| d == slice))
    {
        true => Priority::Critical,
        false => Priority::Other,
    }
}

/// The slices `s` could conflict with on their way to the integration:
/// committed before it, not yet merged into the candidate, and with a
/// changed path in common (or a file where the other has a folder). Only
/// earlier commits count, so two slices never wait for each other.
fn ahead_of(state: &GoalState, s: &SliceState) -> Vec<String> {
    use std::collections::HashSet;
    let with_folders = |files: &[String]| -> HashSet<String> {
        let mut all = HashSet::new();
        for f in files {
            all.insert(f.clone());
            let mut at = f.as_str();
            while let Some((parent, _)) = at.rsplit_once('/') {
                all.insert(parent.to_string());
                at = parent;
            }
        }
        all
    };
    let mine = with_folders(&s.changed_files);
    let mut ahead: Vec<&SliceState> = state
        .slices
        .iter()
        .filter(|o| {
            o.id != s.id
                && matches!(o.status, SliceStatus::Gating | SliceStatus::Merging)
                && o.commit.is_some()
                && o.committed_seq < s.committed_seq
                && (o.changed_files.iter().any(|f| mine.contains(f)) || {
                    let theirs = with_folders(&o.changed_files);
                    s.changed_files.iter().any(|f| theirs.contains(f))
                })
        })
        .collect();
    ahead.sort_by_key(|o| o.committed_seq);
    ahead.into_iter().map(|o| o.id.clone()).collect()
}
