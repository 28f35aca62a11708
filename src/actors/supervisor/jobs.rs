//! Sending work to the gate actor and the integrator.

use super::decide::Probe;
use super::{SupervisorState, BASE};
use crate::actors::blocking;
use crate::actors::gate::{GateJob, Judged, Priority};
use crate::actors::integrator::Contribution;
use crate::git::Merge;
use crate::ids::{CommitId, SliceId, TreeId};
use crate::store::events::EventBody;

impl SupervisorState {
    /// Probes, off the runtime's threads, whether a committed slice's
    /// commit would merge: onto the candidate's tip, then onto each slice
    /// `ahead` of it (both commits as they are, from their common
    /// ancestor: a conflict there is one once that slice has merged).
    /// Reports the first conflict; what follows is the decider's.
    pub(super) async fn probe(&mut self, slice: &str, ahead: &[SliceId]) -> crate::Result<Probe> {
        let Some(s) = self.state.slice(slice) else {
            return Ok(Probe::Clean);
        };
        let Some(commit) = s.commit.clone() else {
            return Ok(Probe::Clean);
        };
        let start = s.start_commit.clone();
        let tip = self.state.integration.tip().to_string();
        let theirs: Vec<(SliceId, String)> = ahead
            .iter()
            .filter_map(|other| {
                let c = self.state.slice(other)?.commit.clone()?;
                Some((other.clone(), c))
            })
            .collect();
        let repo = self.repo.clone();
        blocking(move || {
            if let Merge::Conflict(paths) = repo.merge_tree(&tip, &commit, start.as_deref())? {
                return Ok(Probe::Integration {
                    onto: tip.into(),
                    paths,
                });
            }
            for (ahead, theirs) in theirs {
                if let Merge::Conflict(paths) = repo.merge_tree(&theirs, &commit, None)? {
                    return Ok(Probe::Ahead { ahead, paths });
                }
            }
            Ok(Probe::Clean)
        })
        .await
    }

    /// Sends a committed slice to the gate actor, preferring the slot it
    /// committed in.
    pub(super) fn run_gates(&mut self, slice: &str, priority: Priority) -> crate::Result<()> {
        let Some(s) = self.state.slice(slice).cloned() else {
            return Ok(());
        };
        let (Some(commit), Some(tree)) = (s.commit, s.tree) else {
            return Ok(());
        };
        let task = match self.state.spec(slice) {
            Some(spec) if !spec.title.is_empty() => format!("{}\n\n{}", spec.title, spec.prompt),
            Some(spec) => spec.prompt.clone(),
            None => String::new(),
        };
        let subject = crate::review::Subject {
            id: slice.to_string(),
            task,
            from: s
                .start_commit
                .clone()
                .unwrap_or_else(|| self.state.base_commit.clone()),
            commit: commit.clone(),
        };
        let mut job = self.gate_job(
            Judged::Slice {
                id: slice.to_string(),
                attempt: s.attempts,
            },
            priority,
            s.worktree,
            commit.into(),
            tree.into(),
            s.sparse,
            self.state.slice_gates(slice),
            self.attempt_logs(slice, s.attempts),
        )?;
        job.subject = Some(subject);
        self.gates.run(job)
    }

    /// Sends a verified slice to the integrator.
    pub(super) fn merge(&mut self, slice: &str) -> crate::Result<()> {
        let Some(s) = self.state.slice(slice) else {
            return Ok(());
        };
        let Some(commit) = s.commit.clone() else {
            return Ok(());
        };
        let (title, task) = self
            .state
            .spec(slice)
            .map(|p| (p.title.clone(), p.prompt.clone()))
            .unwrap_or_default();
        let message = crate::git::conventions::contributed_message(
            &self.state.goal_id,
            &s.id,
            &title,
            &task,
            s.attempts,
        );
        self.integrator.merge(Contribution {
            slice: s.id.clone(),
            attempt: s.attempts,
            commit: commit.into(),
            start: s.start_commit.as_ref().map(Into::into),
            message,
            author: self.state.settings.limits.commit_author.clone(),
        })
    }

    /// Where gates (and setups) run in `slot`, with what they see and may write.
    pub(super) fn bench(&self, slot: std::path::PathBuf) -> crate::Result<crate::gate::Bench> {
        crate::pool::Pool::bench_in(slot, self.unplaced_bench())
    }

    /// What gates (and setups) see and may write, in no slot yet: a gate
    /// job takes its slot as it runs.
    pub(super) fn unplaced_bench(&self) -> crate::gate::Bench {
        let limits = &self.state.settings.limits;
        crate::gate::Bench {
            goal_id: self.state.goal_id.clone(),
            caches: limits
                .slot_cache
                .iter()
                .map(|name| (name.clone(), String::new()))
                .collect(),
            tmp: Default::default(),
            dir: Default::default(),
            env: limits.sandbox_env.clone(),
            writable: limits.sandbox_writable.clone(),
            readable: limits.sandbox_readable.clone(),
            network: limits.network.clone(),
            inherit: None,
            installs: limits.setups.iter().map(|s| s.fingerprint()).collect(),
        }
    }

    /// The goal's setups, if it has any, and their store.
    pub(super) fn setups(&self) -> Option<crate::setup::Setups> {
        let specs = &self.state.settings.limits.setups;
        (!specs.is_empty()).then(|| crate::setup::Setups {
            specs: specs.clone(),
            store: self.pool.setup_store(),
            downloads: self.pool.downloads(),
            base_tree: self.state.settings.base_tree.clone(),
        })
    }

    /// A gate job judging `commit` (whose tree is `tree`), preferring the
    /// slot `near` when it is free.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gate_job(
        &self,
        judged: Judged,
        priority: Priority,
        near: Option<std::path::PathBuf>,
        commit: CommitId,
        tree: TreeId,
        cone: Option<Vec<String>>,
        gates: Vec<crate::gate::GateSpec>,
        log_dir: std::path::PathBuf,
    ) -> crate::Result<GateJob> {
        let limits = &self.state.settings.limits;
        Ok(GateJob {
            priority,
            judged,
            bench: self.unplaced_bench(),
            near,
            commit,
            cone,
            keep: limits.slot_keep.clone(),
            tree,
            gates,
            subject: None,
            log_dir,
            fresh: false,
            setups: self.setups(),
        })
    }

    /// Takes a slot and sends the slice gates the base commit.
    pub(super) fn check_base(&mut self, priority: Priority) -> crate::Result<()> {
        let gates: Vec<crate::gate::GateSpec> = self
            .state
            .settings
            .gates
            .iter()
            // A review has no change to read on the base.
            .filter(|g| g.scope.judges_slices() && g.review.is_none())
            .cloned()
            .collect();
        let job = self.gate_job(
            Judged::Base,
            priority,
            None,
            (&self.state.base_commit).into(),
            (&self.state.settings.base_tree).into(),
            None,
            gates,
            self.goal.logs().join(BASE),
        )?;
        self.gates.run(job)
    }

    /// Sends the integration gates a candidate commit, preferring the slot
    /// of the last slice it merges (its tree is the closest at hand).
    pub(super) fn integrate(
        &mut self,
        commit: CommitId,
        tree: TreeId,
        priority: Priority,
    ) -> crate::Result<EventBody> {
        // A reproduction runs its one gate afresh, logged apart.
        let reproducing = self.state.integration.reproducing.as_ref();
        let mut gates = self.state.integration_gates();
        if let Some(r) = reproducing {
            gates.retain(|g| g.name == r.gate);
        }
        let mut log_dir = self.goal.logs().join(crate::plan::INTEGRATION);
        if reproducing.is_some() {
            let round = self
                .state
                .landing
                .as_ref()
                .map_or(0, |l| l.reproduced.len());
            log_dir = log_dir.join(format!("reproduce-{}", round + 1));
        }
        // The integration's change is what the candidate's merges up to
        // `commit` add to the branch.
        let candidate = &self.state.integration.candidate;
        let upto = candidate
            .iter()
            .position(|l| l.commit == commit)
            .map_or(candidate.len(), |i| i + 1);
        let merged = candidate[..upto]
            .iter()
            .map(|l| {
                let title = self.state.slice(&l.slice).map_or("", |s| s.title.as_str());
                format!("- {}: {title}", l.slice)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let subject = crate::review::Subject {
            id: crate::plan::INTEGRATION.to_string(),
            task: format!(
                "{}\n\nThe change merges the work of these slices, each reviewed on its own:\n{merged}",
                self.state.goal
            ),
            from: self.state.integration.commit.clone(),
            commit: commit.to_string(),
        };
        let near = candidate[..upto]
            .last()
            .and_then(|l| self.state.slice(&l.slice))
            .and_then(|s| s.worktree.clone());
        let mut job = self.gate_job(
            Judged::Integration,
            priority,
            near,
            commit.clone(),
            tree.clone(),
            None,
            gates,
            // One folder per candidate: a failed run's log is what its
            // culprit is shown, whatever runs after it.
            log_dir.join(commit.get(..12).unwrap_or(&commit)),
        )?;
        job.subject = Some(subject);
        job.fresh = reproducing.is_some();
        self.gates.run(job)?;
        Ok(EventBody::IntegrationStarted {
            commit: commit.into(),
            tree: tree.into(),
        })
    }
}
