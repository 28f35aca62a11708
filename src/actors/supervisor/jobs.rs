//! Sending work to the gate actor and the integrator.

use super::decide::Probe;
use super::{Holder, SupervisorState, BASE};
use crate::actors::gate::{GateJob, Judged, Priority};
use crate::actors::integrator::Contribution;
use crate::actors::{blocking, off_runtime};
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

    /// Sends a committed slice to the gate actor, in the slot it committed in.
    pub(super) fn run_gates(&mut self, slice: &str, priority: Priority) -> crate::Result<()> {
        let Some(s) = self.state.slice(slice).cloned() else {
            return Ok(());
        };
        let (Some(commit), Some(tree), Some(slot)) = (s.commit, s.tree, s.worktree) else {
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
            slot,
            commit.into(),
            tree.into(),
            s.sparse,
            self.state.slice_gates(slice),
            self.attempt_logs(slice, s.attempts),
        )?;
        job.subject = Some(subject);
        self.gates.run(job)
    }

    /// Takes back the slot a resumed slice committed in, to gate it there
    /// (also while its gates wait).
    pub(super) fn hold_slot(&mut self, slice: &str) -> crate::Result<()> {
        let Some(slot) = self.state.slice(slice).and_then(|s| s.worktree.clone()) else {
            return Ok(());
        };
        let holder = Holder::Slice(slice.to_string());
        if !self.slots.contains_key(&holder) && slot.starts_with(self.pool.dir()) {
            self.pool.hold(&slot)?;
            self.slots.insert(holder, slot);
        }
        Ok(())
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
        let limits = &self.state.settings.limits;
        Ok(crate::gate::Bench {
            goal_id: self.state.goal_id.clone(),
            caches: crate::pool::Pool::caches(&slot, &limits.slot_cache)?,
            tmp: slot.with_extension("tmp"),
            dir: slot,
            env: limits.sandbox_env.clone(),
            writable: limits.sandbox_writable.clone(),
            readable: limits.sandbox_readable.clone(),
            network: limits.network.clone(),
            inherit: None,
            installs: limits.setups.iter().map(|s| s.fingerprint()).collect(),
        })
    }

    /// The goal's setups, if it has any, and their store.
    pub(super) fn setups(&self) -> Option<crate::setup::Setups> {
        let specs = &self.state.settings.limits.setups;
        (!specs.is_empty()).then(|| crate::setup::Setups {
            specs: specs.clone(),
            store: self.pool.setup_store(),
        })
    }

    /// A gate job judging `commit` (whose tree is `tree`) in `slot`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gate_job(
        &self,
        judged: Judged,
        priority: Priority,
        slot: std::path::PathBuf,
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
            bench: self.bench(slot)?,
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
        let worktree = off_runtime(|| self.pool.acquire(&self.repo, false))?;
        self.slots.insert(Holder::Base, worktree.clone());
        let job = self.gate_job(
            Judged::Base,
            priority,
            worktree,
            (&self.state.base_commit).into(),
            (&self.state.settings.base_tree).into(),
            None,
            gates,
            self.goal.logs().join(BASE),
        )?;
        self.gates.run(job)
    }

    /// Sends the integration gates a candidate commit, in the slot the
    /// integration holds for the whole goal.
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
        let worktree = match self.slots.get(&Holder::Integration) {
            Some(slot) => slot.clone(),
            None => {
                let slot = off_runtime(|| self.pool.acquire(&self.repo, false))?;
                self.slots.insert(Holder::Integration, slot.clone());
                slot
            }
        };
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
        let mut job = self.gate_job(
            Judged::Integration,
            priority,
            worktree.clone(),
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
            worktree,
        })
    }
}
