//! The actor system that runs a goal.
//!
//! ```text
//!                 ┌──────────── Supervisor ────────────┐
//!                 │ owns GoalState + the event log     │
//!                 └──┬───────────┬──────────────┬──────┘
//!        spawns, one │           │ GateMsg::Run │ IntegratorMsg::Merge
//!        per attempt ▼           ▼              ▼
//!               SliceActor   GateActor      IntegratorActor
//!                     \          |             /
//!                      SupervisorMsg::Report(EventBody)
//! ```
//!
//! Children never share state: each reports what it did as an event, and the
//! supervisor, the log's single writer, records it, folds it into the state
//! and decides what happens next. Each actor's messages are the enum at the
//! top of its file.

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
