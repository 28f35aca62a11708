//! The end of a goal: the last event, the slots given back. (Delivery
//! follows, by [`crate::deliver`], once the supervisor has stopped.)

use ractor::{ActorProcessingErr, ActorRef};

use super::{SupervisorMsg, SupervisorState};
use crate::actors::off_runtime;
use crate::state::GoalStatus;
use crate::store::events::EventBody;

impl SupervisorState {
    /// Records the end, hands the state over, and stops.
    pub(super) fn finish(
        &mut self,
        status: GoalStatus,
        reason: Option<String>,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), ActorProcessingErr> {
        self.record(EventBody::GoalFinished { status, reason })?;
        // A candidate the branch took needs holding no more; one left
        // (a cancel) stays held for `resume`.
        if self.state.integration.candidate.is_empty() {
            let held = crate::git::conventions::candidate_ref(&self.state.goal_id);
            if let Err(e) = off_runtime(|| self.repo.release(&held)) {
                tracing::warn!(error = %e, "could not let the candidate's ref go");
            }
        }
        let held: Vec<_> = self.slots.keys().cloned().collect();
        for owner in held {
            self.release_slot(&owner);
        }
        self.reporter.finish();
        self.cancel.cancel();
        if let Some(done) = self.done.take() {
            let _ = done.send(self.state.clone());
        }
        myself.stop(None);
        Ok(())
    }
}
