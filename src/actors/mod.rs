//! The actor system that runs a goal.
//!
//! ```text
//!                 ┌──────────── Supervisor ────────────┐
//!                 │ owns GoalState + the event log     │
//!                 └──┬───────────┬──────────────┬──────┘
//!        spawns, one │           │ GateHandle   │ IntegratorHandle
//!        per attempt ▼           ▼ ::run        ▼ ::merge/advance
//!               SliceActor   GateActor      IntegratorActor
//!                     \          |             /
//!                      SupervisorMsg::Report(EventBody)
//! ```
//!
//! Children share no goal state: each reports what it did as an event, and
//! the supervisor, the log's single writer, records it, folds it into the
//! state and decides what happens next. The gate actor and the integrator
//! are driven through handles with a method per intention; their message
//! enums, at the top of their files, are private.

pub mod gate;
pub mod integrator;
pub mod limiter;
pub mod slice;
pub mod supervisor;

pub use supervisor::{Supervisor, SupervisorArgs, SupervisorMsg};

/// Runs blocking git work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> crate::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| crate::Error::Task(e.to_string()))?
}

/// Runs short blocking work (a worktree added, an fsync) on the current
/// worker without stalling the others: the runtime moves its other tasks
/// away first. Used where the caller must wait for the result in order, as
/// the supervisor does for what it records.
pub(crate) fn off_runtime<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
